//! Contacts (the clients an organization messages) and the senders (business numbers) they are
//! messaged from.

use crate::api::{cursor, page_limit};
use crate::auth::CurrentUser;
use crate::error::{ApiJson, ApiQuery, AppError, ErrorBody};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use openline_domain::PhoneNumber;
use openline_store::contacts::{self, Contact};
use openline_store::senders::{self, Sender};
use openline_store::StoreError;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, IntoParams)]
pub struct ListContactsQuery {
    /// Matches name, WhatsApp profile name or phone number.
    pub q: Option<String>,
    pub cursor: Option<String>,
    /// 1 to 200, default 50.
    pub limit: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactPage {
    pub items: Vec<Contact>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// `GET /api/v1/contacts`: the contacts the caller may see, oldest first, paginated.
#[utoipa::path(get, path = "/api/v1/contacts", tag = "contacts", params(ListContactsQuery),
    responses((status = 200, body = ContactPage), (status = 400, body = ErrorBody)))]
pub async fn list_contacts(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiQuery(q): ApiQuery<ListContactsQuery>,
) -> Result<Json<ContactPage>, AppError> {
    let limit = page_limit(q.limit);
    let after = q.cursor.as_deref().map(cursor::decode).transpose()?.map(|(_, id)| id);
    let scope = me.scope.clone();
    let items = st
        .store
        .read(move |c| contacts::list(c, &scope, q.q.as_deref(), after.as_deref(), limit))
        .await?;
    let next_cursor = (items.len() as i64 == limit)
        .then(|| items.last().map(|c| cursor::encode(c.created_at, &c.id)))
        .flatten();
    Ok(Json(ContactPage { items, next_cursor }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateContactRequest {
    /// International format, e.g. `+447700900123`.
    pub phone: String,
    pub name: Option<String>,
    /// The organization to create it in; default: the caller's own.
    pub org_id: Option<String>,
}

/// `POST /api/v1/contacts`: adds a contact. One contact per phone number per organization.
#[utoipa::path(post, path = "/api/v1/contacts", tag = "contacts", request_body = CreateContactRequest,
    responses((status = 201, body = Contact), (status = 409, body = ErrorBody, description = "contact_exists"),
        (status = 422, body = ErrorBody, description = "invalid_phone_number")))]
pub async fn create_contact(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiJson(req): ApiJson<CreateContactRequest>,
) -> Result<(StatusCode, Json<Contact>), AppError> {
    if !me.user.role.can_send() {
        return Err(AppError::forbidden("Viewers cannot add contacts."));
    }
    let phone = PhoneNumber::parse(&req.phone)?;
    let org_id = req.org_id.unwrap_or_else(|| me.user.org_id.clone());
    if !me.scope.contains(&org_id) {
        return Err(AppError::not_found("organization"));
    }
    let name = req.name.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty());
    if name.as_ref().is_some_and(|n| n.chars().count() > 200) {
        return Err(AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_name",
            "Names are at most 200 characters.",
        ));
    }
    let now = st.now();
    let contact = st
        .store
        .write(move |c| contacts::create(c, &org_id, phone.as_e164(), name.as_deref(), now))
        .await
        .map_err(|e| match e {
            StoreError::Conflict(_) => AppError::new(
                StatusCode::CONFLICT,
                "contact_exists",
                "A contact with this phone number already exists in the organization.",
            ),
            other => other.into(),
        })?;
    Ok((StatusCode::CREATED, Json(contact)))
}

/// `GET /api/v1/contacts/{id}`
#[utoipa::path(get, path = "/api/v1/contacts/{id}", tag = "contacts", params(("id" = String, Path)),
    responses((status = 200, body = Contact), (status = 404, body = ErrorBody)))]
pub async fn get_contact(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<Contact>, AppError> {
    let scope = me.scope.clone();
    st.store
        .read(move |c| contacts::get(c, &scope, &id))
        .await
        .map(Json)
        .map_err(|e| match e {
            StoreError::NotFound => AppError::not_found("contact"),
            other => other.into(),
        })
}

/// `GET /api/v1/senders`: the business numbers the caller's organizations send from.
#[utoipa::path(get, path = "/api/v1/senders", tag = "contacts", responses((status = 200, body = Vec<Sender>)))]
pub async fn list_senders(State(st): State<AppState>, me: CurrentUser) -> Result<Json<Vec<Sender>>, AppError> {
    let scope = me.scope.clone();
    Ok(Json(st.store.read(move |c| senders::list(c, &scope)).await?))
}
