//! Who is calling. Browsers sign in with e-mail and password (argon2) and get a session cookie
//! (HttpOnly, SameSite=Lax, Secure over TLS); API clients send `Authorization: Bearer <token>`.
//! Only SHA-256 digests of session ids and tokens are stored: both are 256-bit random values, so a
//! fast hash is as safe as a slow one and keeps every request cheap.
//!
//! `CurrentUser` is the extractor every protected handler takes; it carries the user's `Scope` (their
//! organization, plus sub-organizations for admins and supervisors), which every query is filtered by.

use crate::error::AppError;
use crate::state::AppState;
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};
use base64::Engine;
use openline_store::orgs::Scope;
use openline_store::users::User;
use rand::RngCore;
use sha2::{Digest, Sha256};

pub const SESSION_COOKIE: &str = "openline_session";
/// API tokens start with this, so they are recognisable in secret scanners.
pub const TOKEN_PREFIX: &str = "olt_";

/// A new random secret: 32 bytes, URL-safe base64.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub fn new_api_token() -> String {
    format!("{TOKEN_PREFIX}{}", random_secret())
}

pub fn digest(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Hashes a password with argon2id (on a blocking thread: it is deliberately slow).
pub async fn hash_password(password: String) -> Result<String, AppError> {
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
    })
    .await
    .map_err(AppError::internal)?
    .map_err(AppError::internal)
}

pub fn hash_password_blocking(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// Checks a password against a stored hash. A hash that cannot be parsed never matches.
pub async fn verify_password(password: String, hash: String) -> bool {
    tokio::task::spawn_blocking(move || {
        PasswordHash::new(&hash)
            .map(|h| Argon2::default().verify_password(password.as_bytes(), &h).is_ok())
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

/// The signed-in user and what they may see.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub user: User,
    pub scope: Scope,
    /// Signed in by cookie (a browser) rather than by API token.
    pub via_session: bool,
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| {
            v.split(';').find_map(|kv| {
                let (k, val) = kv.trim().split_once('=')?;
                (k == SESSION_COOKIE).then(|| val.to_owned())
            })
        })
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let (hash, via_session) = if let Some(token) = bearer(&parts.headers) {
            (digest(token), false)
        } else if let Some(cookie) = session_cookie(&parts.headers) {
            (digest(&cookie), true)
        } else {
            return Err(AppError::unauthorized());
        };
        let now = state.now();
        let found = state
            .store
            .read(move |c| {
                let user = if via_session {
                    openline_store::users::user_for_session(c, &hash, now)?
                } else {
                    openline_store::users::user_for_token(c, &hash)?
                };
                let Some(user) = user else { return Ok(None) };
                let org_ids = if user.role.sees_sub_organizations() {
                    openline_store::orgs::subtree(c, &user.org_id)?
                } else {
                    vec![user.org_id.clone()]
                };
                Ok(Some((user, Scope { org_ids })))
            })
            .await?;
        let (user, scope) = found.ok_or_else(AppError::unauthorized)?;
        Ok(CurrentUser {
            user,
            scope,
            via_session,
        })
    }
}

/// `Set-Cookie` for a new session.
pub fn session_set_cookie(value: &str, max_age_secs: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age_secs}{secure}")
}

pub fn session_clear_cookie(secure: bool) -> String {
    session_set_cookie("", 0, secure)
}
