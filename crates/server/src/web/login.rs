//! Signing in and out with a form. The password check and the session are `api::auth::login`'s
//! (argon2, HttpOnly SameSite=Lax cookie, Secure over TLS); this adds the form, the redirect back
//! to the page that asked, and slowing down repeated failures: after `FREE_ATTEMPTS` failed
//! sign-ins for one e-mail address from one client address, each further attempt must wait a
//! delay that doubles with every failure (5 s, 10 s, 20 s, … up to 15 minutes). The count is kept
//! in the database (so every node sees it) under a digest of both, and reset by a success.

use crate::api::auth::LoginRequest;
use crate::error::ApiJson;
use crate::state::AppState;
use crate::web::session::{check_csrf, check_origin, WebError, WebForm, WebUser};
use axum::extract::{ConnectInfo, FromRequestParts, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup, DOCTYPE};
use serde::Deserialize;
use std::net::SocketAddr;

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

#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    pub next: Option<String>,
}

/// Only a path on this site may be the target after signing in (never `//other.example`).
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.starts_with("/\\") => n.to_owned(),
        _ => "/messages".to_owned(),
    }
}

fn login_form(next: &str, email: &str, error: Option<&str>) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Sign in · openline" }
                link rel="stylesheet" href="/assets/app.css";
            }
            body class="login" {
                main id="main" class="narrow card" {
                    h1 { "Sign in to openline" }
                    @if let Some(e) = error {
                        p class="notice notice-error" role="alert" id="login-error" { (e) }
                    }
                    form method="post" action="/login" {
                        input type="hidden" name="next" value=(next);
                        label for="email" { "E-mail address" }
                        input id="email" name="email" type="email" autocomplete="username" required value=(email) autofocus;
                        label for="password" { "Password" }
                        input id="password" name="password" type="password" autocomplete="current-password" required;
                        button type="submit" class="primary" { "Sign in" }
                    }
                }
            }
        }
    }
}

/// `GET /login`
pub async fn login_page(Query(q): Query<LoginQuery>) -> Markup {
    login_form(&safe_next(q.next.as_deref()), "", None)
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

#[derive(Debug, Deserialize)]
pub struct SignInForm {
    pub email: String,
    pub password: String,
    pub next: Option<String>,
}

/// The throttling key: a digest of the e-mail address and the client's address.
fn throttle_key(email: &str, client: &str) -> String {
    crate::auth::digest(&format!("{}\0{client}", email.trim().to_lowercase()))
}

/// `POST /login`: signs in and goes to `next`; a wrong password shows the form again (401); too
/// many failures in a row answer 429 with how long to wait.
pub async fn sign_in(
    State(st): State<AppState>,
    ClientAddr(client): ClientAddr,
    headers: HeaderMap,
    WebForm(form): WebForm<SignInForm>,
) -> Result<Response, WebError> {
    check_origin(&headers, &st)?;
    let next = safe_next(form.next.as_deref());
    let key = throttle_key(&form.email, &client);
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
            let page = login_form(
                &next,
                &form.email,
                Some(&format!(
                    "Too many failed sign-ins for this e-mail address. Wait {secs} seconds, then try again."
                )),
            );
            let mut res = (StatusCode::TOO_MANY_REQUESTS, page).into_response();
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return Ok(res);
        }
    }
    let email = form.email.clone();
    let req = LoginRequest {
        email: form.email,
        password: form.password,
    };
    match crate::api::auth::login(State(st.clone()), ApiJson(req)).await {
        Ok(api_res) => {
            st.store
                .write(move |c| openline_store::web_throttle::clear(c, &key))
                .await?;
            let mut res = Redirect::to(&next).into_response();
            if let Some(cookie) = api_res.headers().get(header::SET_COOKIE) {
                res.headers_mut().insert(header::SET_COOKIE, cookie.clone());
            }
            Ok(res)
        }
        Err(e) if e.status == StatusCode::UNAUTHORIZED => {
            st.store
                .write(move |c| openline_store::web_throttle::record_failure(c, &key, now))
                .await?;
            let page = login_form(&next, &email, Some(&e.message));
            Ok((StatusCode::UNAUTHORIZED, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    pub csrf: Option<String>,
}

/// `POST /logout`: ends the session and returns to the sign-in page.
pub async fn sign_out(
    State(st): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    WebForm(form): WebForm<CsrfForm>,
) -> Result<Response, WebError> {
    check_csrf(&user, &headers, &st, form.csrf.as_deref())?;
    let api_res = crate::api::auth::logout(State(st), headers).await?;
    let mut res = Redirect::to("/login").into_response();
    if let Some(cookie) = api_res.headers().get(header::SET_COOKIE) {
        res.headers_mut().insert(header::SET_COOKIE, cookie.clone());
    }
    Ok(res)
}
