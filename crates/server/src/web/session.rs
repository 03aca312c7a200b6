//! Who is using the web app, and the checks every state-changing form passes.
//!
//! `WebUser` is `CurrentUser` for pages: only a browser session counts (not an API token), and a
//! missing or expired session redirects to `/login?next=…` instead of answering JSON.
//!
//! CSRF: the token is derived from the session secret (SHA-256 of a fixed label and the secret), so
//! it is per session, needs no storage, and a page of another site cannot know it (the cookie is
//! HttpOnly). Forms carry it as `csrf`; scripts may send it as `X-CSRF-Token`. On top of it, a
//! request whose `Origin` (or, without one, `Referer`) names another site is refused.

use crate::auth::{self, CurrentUser};
use crate::error::AppError;
use crate::state::AppState;
use crate::web::views;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The signed-in user of a page, with what the layout shows and the session's CSRF token.
#[derive(Debug, Clone)]
pub struct WebUser {
    pub me: CurrentUser,
    /// The name of the user's own organization (shown in the header).
    pub org_name: String,
    /// The session's CSRF token, put in every form.
    pub csrf: String,
    /// Demo mode (the simulated phone is linked).
    pub demo: bool,
}

/// The CSRF token of a session: bound to the session secret, so it changes with every sign-in.
pub fn csrf_token(session_secret: &str) -> String {
    let mut h = Sha256::new();
    h.update(b"openline-web-csrf\0");
    h.update(session_secret.as_bytes());
    hex::encode(h.finalize())
}

/// Where to go to sign in, coming back to `parts`' page afterwards.
fn to_login(parts: &Parts) -> Response {
    let next = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let q: String = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("next", next)
        .finish();
    Redirect::to(&format!("/login?{q}")).into_response()
}

impl FromRequestParts<AppState> for WebUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Some(secret) = auth::session_cookie(&parts.headers) else {
            return Err(to_login(parts));
        };
        let me = match CurrentUser::from_request_parts(parts, state).await {
            Ok(me) if me.via_session => me,
            Ok(_) => return Err(to_login(parts)),
            Err(e) if e.status == StatusCode::UNAUTHORIZED => return Err(to_login(parts)),
            Err(e) => return Err(WebError::from(e).into_response()),
        };
        let org_id = me.user.org_id.clone();
        let org = state
            .store
            .read(move |c| openline_store::orgs::get(c, &org_id))
            .await
            .map_err(|e| WebError::from(AppError::from(e)).into_response())?;
        Ok(WebUser {
            me,
            org_name: org.name,
            csrf: csrf_token(&secret),
            demo: state.config.demo,
        })
    }
}

/// An error shown as a page: the status, and a message a person can act on.
#[derive(Debug)]
pub struct WebError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl WebError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn not_found(what: &str) -> Self {
        AppError::not_found(what).into()
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
}

impl From<AppError> for WebError {
    fn from(e: AppError) -> Self {
        if let Some(cause) = &e.internal {
            tracing::error!(cause = %cause, "web request failed");
        }
        Self {
            status: e.status,
            code: e.code,
            message: e.message,
        }
    }
}

impl From<openline_store::StoreError> for WebError {
    fn from(e: openline_store::StoreError) -> Self {
        AppError::from(e).into()
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        (self.status, views::error_page(self.status, self.code, &self.message)).into_response()
    }
}

/// The site's own origins: the configured public URL, and the `Host` the request came to.
fn own_origins(headers: &HeaderMap, state: &AppState) -> Vec<String> {
    let mut origins = Vec::new();
    if let Some(u) = state.config.public_url.as_deref() {
        if let Ok(parsed) = url::Url::parse(u) {
            origins.push(parsed.origin().ascii_serialization());
        }
    }
    if let Some(host) = headers.get(header::HOST).and_then(|h| h.to_str().ok()) {
        origins.push(format!("http://{host}"));
        origins.push(format!("https://{host}"));
    }
    origins
}

/// Refuses a state-changing request from another site: a foreign `Origin`, or without one a
/// foreign `Referer`. Requests with neither (not a browser) still need the CSRF token.
pub fn check_origin(headers: &HeaderMap, state: &AppState) -> Result<(), WebError> {
    let claimed = match headers.get(header::ORIGIN) {
        Some(o) => o.to_str().ok().map(str::to_owned),
        None => match headers.get(header::REFERER).and_then(|r| r.to_str().ok()) {
            Some(r) => Some(
                url::Url::parse(r)
                    .map(|u| u.origin().ascii_serialization())
                    .unwrap_or_default(),
            ),
            None => return Ok(()),
        },
    };
    let ok = claimed.is_some_and(|o| own_origins(headers, state).contains(&o));
    if ok {
        Ok(())
    } else {
        Err(WebError::forbidden(
            "This form was sent from another site. Open openline and try again from there.",
        ))
    }
}

/// Checks a state-changing request: same origin, and the session's CSRF token in the form field
/// `form_token` or the `X-CSRF-Token` header.
pub fn check_csrf(
    user: &WebUser,
    headers: &HeaderMap,
    state: &AppState,
    form_token: Option<&str>,
) -> Result<(), WebError> {
    check_origin(headers, state)?;
    let sent = form_token
        .filter(|t| !t.is_empty())
        .or_else(|| headers.get("x-csrf-token").and_then(|v| v.to_str().ok()))
        .unwrap_or_default();
    if bool::from(sent.as_bytes().ct_eq(user.csrf.as_bytes())) {
        Ok(())
    } else {
        Err(WebError::forbidden(
            "This form has expired or did not come from openline (the security token is missing or wrong). Reload the page and try again.",
        ))
    }
}

/// `Form<T>` whose rejection is a `WebError` page.
pub struct WebForm<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for WebForm<T> {
    type Rejection = WebError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        axum::Form::<T>::from_request(req, state)
            .await
            .map(|axum::Form(v)| WebForm(v))
            .map_err(|e| WebError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_form", e.body_text()))
    }
}

/// Requires the role to send (agents, supervisors, admins; not viewers).
pub fn require_sender(user: &WebUser) -> Result<(), WebError> {
    if user.me.user.role.can_send() {
        Ok(())
    } else {
        Err(WebError::forbidden(
            "Viewers can read conversations but not send messages or change contacts. Ask an admin for the agent role.",
        ))
    }
}
