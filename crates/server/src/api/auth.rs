//! Signing in and out, and API tokens.

use crate::auth::{self, CurrentUser};
use crate::error::{ApiJson, AppError, ErrorBody};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use openline_store::orgs::Organization;
use openline_store::users::{self, ApiToken, User};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Me {
    pub user: User,
    pub organization: Organization,
}

/// `POST /api/v1/auth/login`: checks e-mail and password, sets the session cookie, returns the user.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = Me), (status = 401, body = ErrorBody, description = "wrong e-mail or password")))]
pub async fn login(State(st): State<AppState>, ApiJson(req): ApiJson<LoginRequest>) -> Result<Response, AppError> {
    let email = req.email.clone();
    let found = st.store.read(move |c| users::find_for_login(c, &email)).await?;
    // Verify against a dummy hash when the user does not exist, so timing does not reveal which
    // e-mail addresses have accounts.
    let (user, hash) = match found {
        Some((u, h)) => (Some(u), h),
        None => (None, dummy_hash()),
    };
    let ok = auth::verify_password(req.password, hash).await;
    let user = match (ok, user) {
        (true, Some(u)) => u,
        _ => {
            return Err(AppError::new(
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
                "The e-mail address or password is not right.",
            ))
        }
    };
    let session = auth::random_secret();
    let (hash, uid, now) = (auth::digest(&session), user.id.clone(), st.now());
    let max_age = st.config.session_hours * 3600;
    let org_id = user.org_id.clone();
    let organization = st
        .store
        .write(move |c| {
            users::create_session(c, &hash, &uid, now, now + max_age * 1000)?;
            openline_store::orgs::get(c, &org_id)
        })
        .await?;
    let secure = st
        .config
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"));
    tracing::info!(user_id = %user.id, "signed in");
    Ok((
        [(header::SET_COOKIE, auth::session_set_cookie(&session, max_age, secure))],
        Json(Me { user, organization }),
    )
        .into_response())
}

/// An argon2 hash of a random password, checked when the e-mail is unknown (see `login`).
fn dummy_hash() -> String {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| auth::hash_password_blocking(&auth::random_secret()).unwrap_or_default())
        .clone()
}

/// `POST /api/v1/auth/logout`: ends the browser session.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", responses((status = 204)))]
pub async fn logout(State(st): State<AppState>, headers: HeaderMap) -> Result<Response, AppError> {
    if let Some(cookie) = auth::session_cookie(&headers) {
        let hash = auth::digest(&cookie);
        st.store.write(move |c| users::delete_session(c, &hash)).await?;
    }
    let secure = st
        .config
        .public_url
        .as_deref()
        .is_some_and(|u| u.starts_with("https://"));
    Ok((
        StatusCode::NO_CONTENT,
        [(header::SET_COOKIE, auth::session_clear_cookie(secure))],
    )
        .into_response())
}

/// `GET /api/v1/me`: who is signed in.
#[utoipa::path(get, path = "/api/v1/me", tag = "auth", responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
pub async fn me(State(st): State<AppState>, me: CurrentUser) -> Result<Json<Me>, AppError> {
    let org_id = me.user.org_id.clone();
    let organization = st.store.read(move |c| openline_store::orgs::get(c, &org_id)).await?;
    Ok(Json(Me {
        user: me.user,
        organization,
    }))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateTokenRequest {
    /// What the token is for, e.g. "CRM sync".
    pub name: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    pub id: String,
    pub name: String,
    /// The token itself. Shown once; only its digest is stored.
    pub token: String,
    pub created_at: i64,
}

/// `POST /api/v1/tokens`: creates an API token for the signed-in user. The token is shown once.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "auth", request_body = CreateTokenRequest,
    responses((status = 201, body = CreatedToken), (status = 422, body = ErrorBody)))]
pub async fn create_token(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiJson(req): ApiJson<CreateTokenRequest>,
) -> Result<(StatusCode, Json<CreatedToken>), AppError> {
    let name = req.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_name",
            "Give the token a name of 1 to 100 characters.",
        ));
    }
    let token = auth::new_api_token();
    let (hash, uid, now) = (auth::digest(&token), me.user.id.clone(), st.now());
    let actor = super::archive::actor(&me);
    let t = st
        .store
        .write(move |c| users::create_token_by(c, &uid, &name, &hash, &actor, now))
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            id: t.id,
            name: t.name,
            token,
            created_at: t.created_at,
        }),
    ))
}

/// `GET /api/v1/tokens`: the signed-in user's tokens (never the secrets).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "auth", responses((status = 200, body = Vec<ApiToken>)))]
pub async fn list_tokens(State(st): State<AppState>, me: CurrentUser) -> Result<Json<Vec<ApiToken>>, AppError> {
    let uid = me.user.id.clone();
    Ok(Json(st.store.read(move |c| users::list_tokens(c, &uid)).await?))
}

/// `DELETE /api/v1/tokens/{id}`: revokes one of the user's tokens; it stops working at once.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "auth", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn revoke_token(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    let (uid, now, actor) = (me.user.id.clone(), st.now(), super::archive::actor(&me));
    st.store
        .write(move |c| users::revoke_token_by(c, &uid, &id, &actor, now))
        .await
        .map_err(|e| match e {
            openline_store::StoreError::NotFound => AppError::not_found("token"),
            other => other.into(),
        })?;
    Ok(StatusCode::NO_CONTENT)
}
