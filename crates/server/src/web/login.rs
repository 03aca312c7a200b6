//! Signing in and out with a form. The password check, the session and the slowing down of
//! repeated failures are `api::auth::login`'s (argon2, HttpOnly SameSite=Lax cookie, Secure over
//! TLS; after `api::auth::FREE_ATTEMPTS` failed sign-ins for one e-mail address from one client address, each
//! further attempt waits a delay that doubles with every failure, counted together with the JSON
//! sign-in's); this adds the form, the redirect back to the page that asked, and the form again
//! with the reason when signing in fails or must wait.

use crate::api::auth::{ClientAddr, LoginRequest};
use crate::error::ApiJson;
use crate::state::AppState;
use crate::web::session::{check_csrf, check_origin, WebError, WebForm, WebUser};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup, DOCTYPE};
use serde::Deserialize;

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

#[derive(Debug, Deserialize)]
pub struct SignInForm {
    pub email: String,
    pub password: String,
    pub next: Option<String>,
}

/// `POST /login`: signs in and goes to `next`; a wrong password shows the form again (401); too
/// many failures in a row answer 429 with how long to wait.
pub async fn sign_in(
    State(st): State<AppState>,
    client: ClientAddr,
    headers: HeaderMap,
    WebForm(form): WebForm<SignInForm>,
) -> Result<Response, WebError> {
    check_origin(&headers, &st)?;
    let next = safe_next(form.next.as_deref());
    let email = form.email.clone();
    let req = LoginRequest {
        email: form.email,
        password: form.password,
    };
    match crate::api::auth::login(State(st.clone()), client, ApiJson(req)).await {
        Ok(api_res) => {
            let mut res = Redirect::to(&next).into_response();
            if let Some(cookie) = api_res.headers().get(header::SET_COOKIE) {
                res.headers_mut().insert(header::SET_COOKIE, cookie.clone());
            }
            Ok(res)
        }
        Err(e) if e.status == StatusCode::UNAUTHORIZED || e.status == StatusCode::TOO_MANY_REQUESTS => {
            let page = login_form(&next, &email, Some(&e.message));
            let mut res = (e.status, page).into_response();
            if let Some(v) = e.retry_after.and_then(|s| HeaderValue::from_str(&s.to_string()).ok()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
            Ok(res)
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
