//! Signing in and out, and API tokens.
//!
//! Repeated failed sign-ins are slowed down, for the JSON sign-in here and the web form
//! (`web::login`, which goes through [`login`]) alike: after [`FREE_ATTEMPTS`] failed sign-ins for
//! one e-mail address from one client address, each further attempt must wait a delay that doubles
//! with every failure (5 s, 10 s, 20 s, … up to 15 minutes), answered `429 too_many_sign_ins` with
//! `Retry-After`. The count is kept in the database (so every node sees it) under a digest of both
//! (one key for both paths, so they count together), and reset by a success.

use crate::auth::{self, CurrentUser};
use crate::error::{ApiJson, AppError, ErrorBody};
use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use openline_store::orgs::Organization;
use openline_store::users::{self, ApiToken, User};
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
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

/// Failed sign-ins allowed before the waiting starts.
pub const FREE_ATTEMPTS: i64 = 3;
/// The first wait; it doubles with every further failure.
pub const FIRST_DELAY_MS: i64 = 5_000;
/// The longest wait.
pub const MAX_DELAY_MS: i64 = 15 * 60_000;

/// How long after the last failure the next attempt must wait, given `failures` in a row.
pub fn delay_after(failures: i64) -> i64 {
    if failures < FREE_ATTEMPTS {
        return 0;
    }
    let doublings = (failures - FREE_ATTEMPTS).min(20) as u32;
    FIRST_DELAY_MS.saturating_mul(1_i64 << doublings).min(MAX_DELAY_MS)
}

/// The client's IP address as the socket saw it ("unknown" when served without connection info,
/// e.g. in `oneshot` tests). Forwarded-for headers are not trusted: anyone can set them.
pub struct ClientAddr(pub String);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map_or_else(|| "unknown".to_owned(), |ConnectInfo(a)| a.ip().to_string()),
        ))
    }
}

/// The throttling key: a digest of the e-mail address and the client's address.
fn throttle_key(email: &str, client: &str) -> String {
    auth::digest(&format!("{}\0{client}", email.trim().to_lowercase()))
}

/// `POST /api/v1/auth/login`: checks e-mail and password, sets the session cookie, returns the user.
/// Too many failures in a row for one e-mail address from one client address answer 429 (see the
/// module's documentation), the right password included, until the wait is over.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses(
        (status = 200, body = Me),
        (status = 401, body = ErrorBody, description = "wrong e-mail or password (`invalid_credentials`)"),
        (status = 429, body = ErrorBody, description = "too many failed sign-ins for this e-mail address from this client (`too_many_sign_ins`); wait the seconds in `Retry-After`",
            headers(("Retry-After" = u64, description = "Seconds to wait before trying again")))))]
pub async fn login(
    State(st): State<AppState>,
    ClientAddr(client): ClientAddr,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Response, AppError> {
    let key = throttle_key(&req.email, &client);
    let now = st.now();
    let k = key.clone();
    let failures = st
        .store
        .read(move |c| openline_store::web_throttle::failures(c, &k))
        .await?;
    if let Some((n, last)) = failures {
        let wait_until = last + delay_after(n);
        if now < wait_until {
            let secs = (wait_until - now + 999) / 1000;
            tracing::warn!(failures = n, "sign-in refused: too many failed attempts");
            let mut e = AppError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_sign_ins",
                format!("Too many failed sign-ins for this e-mail address. Wait {secs} seconds, then try again."),
            );
            e.retry_after = u64::try_from(secs).ok();
            return Err(e);
        }
    }
    match check_and_start_session(&st, req).await {
        Ok(res) => {
            st.store
                .write(move |c| openline_store::web_throttle::clear(c, &key))
                .await?;
            Ok(res)
        }
        Err(e) if e.status == StatusCode::UNAUTHORIZED => {
            st.store
                .write(move |c| openline_store::web_throttle::record_failure(c, &key, now))
                .await?;
            Err(e)
        }
        Err(e) => Err(e),
    }
}

/// Checks e-mail and password; on success starts a session (the cookie) and answers the user.
async fn check_and_start_session(st: &AppState, req: LoginRequest) -> Result<Response, AppError> {
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
