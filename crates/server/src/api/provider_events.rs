//! What Meta and Twilio tell openline besides messages and statuses (account and quality updates,
//! template category and quality changes, marketing preferences, events for unknown numbers), kept
//! whole as provider events and shown to admins: `GET /api/v1/provider-events`.

use crate::auth::CurrentUser;
use crate::error::{ApiQuery, AppError, ErrorBody};
use crate::state::AppState;
use axum::extract::State;
use axum::Json;
use openline_store::provider_events::{self, ProviderEvent};
use serde::Deserialize;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
pub struct ProviderEventsQuery {
    /// Only events of this webhook field, e.g. `account_update`, `phone_number_quality_update`,
    /// `template_category_update`, `message_template_quality_update`, `user_preferences`.
    pub field: Option<String>,
    /// 1 to 200, default 50.
    pub limit: Option<i64>,
}

/// `GET /api/v1/provider-events` (admins): the provider's non-message events about your
/// organizations' numbers and accounts, newest first, each with its field, when it was received and
/// the provider's value as sent. Events for numbers and accounts no organization has are shown to
/// admins of the root organization only.
#[utoipa::path(get, path = "/api/v1/provider-events", tag = "provider events", params(ProviderEventsQuery),
    responses((status = 200, body = Vec<ProviderEvent>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_provider_events(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiQuery(q): ApiQuery<ProviderEventsQuery>,
) -> Result<Json<Vec<ProviderEvent>>, AppError> {
    if !me.user.role.is_admin() {
        return Err(AppError::forbidden(
            "Only admins can see the provider's account events.",
        ));
    }
    let field = q.field.filter(|f| !f.is_empty());
    if let Some(f) = &field {
        if f.len() > 100
            || !f
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(AppError::bad_request(
                "invalid_field",
                "`field` is a webhook field name such as `account_update`: lowercase letters, digits and `_`.",
            ));
        }
    }
    let limit = super::page_limit(q.limit);
    let (scope, org_id) = (me.scope.clone(), me.user.org_id.clone());
    let events = st
        .store
        .read(move |c| provider_events::list(c, &scope, &org_id, field.as_deref(), limit))
        .await?;
    Ok(Json(events))
}
