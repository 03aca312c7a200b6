//! The web app: agents' inbox, contacts, the composer, the simulated phone (demo mode), a first
//! admin view and the compliance pages (supervisors and admins), server-rendered by this binary with maud (auto-escaped: message text is never HTML)
//! and a little JavaScript (`assets/app.js`: live updates over `/api/v1/events`, the window
//! countdown, the simulated phone).
//!
//! Every page checks the session, the user's role and organization on the server: unauthenticated
//! page requests are redirected to `/login`, another organization's thread or contact is a 404.
//! State-changing forms carry a per-session CSRF token (also accepted as an `X-CSRF-Token` header)
//! and must come from this origin. Every action goes through the same functions as the JSON API
//! (`api::messages::send_message`, `api::consent::request_opt_in`, …), so policy, DLP, idempotency
//! and the journal apply exactly as they do there.

pub mod admin;
pub mod assets;
pub mod compliance;
pub mod compliance_webhooks;
pub mod contacts;
pub mod inbox;
pub mod login;
pub mod participants;
pub mod phone;
pub mod session;
pub mod views;

use crate::state::AppState;
use axum::http::{header, HeaderValue};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;

/// The web app's routes (pages, form actions, assets).
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(inbox::home))
        .route("/login", get(login::login_page).post(login::sign_in))
        .route("/logout", post(login::sign_out))
        .route("/messages", get(inbox::list_threads))
        .route("/messages/{id}", get(inbox::show_thread))
        .route("/messages/{id}/cancel", post(inbox::cancel_queued))
        .route("/messages/{id}/participants", post(participants::add_colleague))
        .route(
            "/messages/{id}/participants/{user_id}/remove",
            post(participants::remove_participant),
        )
        .route("/messages/{id}/transfer", post(participants::transfer))
        .route("/compose", post(inbox::send_from_composer))
        .route(
            "/compose/picture",
            post(inbox::send_picture_from_composer)
                .layer(axum::extract::DefaultBodyLimit::max(inbox::MAX_PICTURE_FORM)),
        )
        .route("/contacts", get(contacts::list_contacts).post(contacts::create_contact))
        .route("/contacts/new", get(contacts::new_contact))
        .route(
            "/contacts/{id}",
            get(contacts::contact_details).post(contacts::update_contact),
        )
        .route("/contacts/{id}/edit", get(contacts::edit_contact))
        .route("/contacts/{id}/write", get(inbox::write_to_contact))
        .route("/contacts/{id}/opt-in", post(contacts::send_opt_in))
        .route("/phone", get(phone::pick_phone))
        .route("/phone/{number}", get(phone::show_phone))
        .route("/admin", get(admin::overview))
        .route("/admin/orgs/{id}/whatsapp", post(admin::set_org_whatsapp))
        .route("/admin/users/{id}/whatsapp", post(admin::set_user_whatsapp))
        .route("/compliance", get(compliance::compliance_page))
        .route("/compliance/export", get(compliance::download_export))
        .route("/compliance/checkpoints", get(compliance::download_checkpoints))
        .route("/compliance/holds", post(compliance::place_hold))
        .route("/compliance/holds/{id}/release", post(compliance::release_hold))
        .route("/compliance/dlp/{id}/review", post(compliance::review_flagged))
        .route("/compliance/webhooks", post(compliance_webhooks::create_subscription))
        .route(
            "/compliance/webhooks/{id}/enabled",
            post(compliance_webhooks::set_enabled),
        )
        .route("/assets/{file}", get(assets::serve_asset))
        .layer(axum::middleware::map_response(security_headers))
}

/// Pages load scripts, styles and data only from this site, cannot be framed (clickjacking), and
/// send no referrer elsewhere. The app has no inline script or style, so the policy costs nothing.
async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    res
}
