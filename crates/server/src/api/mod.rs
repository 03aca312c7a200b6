//! The REST API under `/api/v1`, JSON in and out, described by the OpenAPI document at
//! `/api/openapi.json` (generated from the handlers and types, so it cannot drift from them).

pub mod auth;
pub mod consent;
pub mod contacts;
pub mod conversations;
pub mod cursor;
pub mod dlp;
pub mod events;
pub mod messages;
pub mod openapi;
pub mod templates;

use crate::state::AppState;
use axum::routing::{delete, get, post};
use axum::Router;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/v1/auth/login", post(auth::login))
        .route("/api/v1/auth/logout", post(auth::logout))
        .route("/api/v1/me", get(auth::me))
        .route("/api/v1/tokens", get(auth::list_tokens).post(auth::create_token))
        .route("/api/v1/tokens/{id}", delete(auth::revoke_token))
        .route(
            "/api/v1/contacts",
            get(contacts::list_contacts).post(contacts::create_contact),
        )
        .route("/api/v1/contacts/{id}", get(contacts::get_contact))
        .route("/api/v1/contacts/{id}/opt-in", post(consent::request_opt_in))
        .route("/api/v1/contacts/{id}/consent", get(consent::get_consent))
        .route("/api/v1/senders", get(contacts::list_senders))
        .route("/api/v1/conversations", get(conversations::list_conversations))
        .route("/api/v1/conversations/{id}", get(conversations::get_conversation))
        .route("/api/v1/conversations/{id}/messages", get(conversations::list_messages))
        .route("/api/v1/conversations/{id}/queued", get(conversations::list_queued))
        .route("/api/v1/messages", post(messages::send_message))
        .route("/api/v1/messages/{id}", get(messages::get_message))
        .route("/api/v1/messages/{id}/cancel", post(messages::cancel_message))
        .route("/api/v1/messages/{id}/review", post(dlp::review_message))
        .route("/api/v1/dlp/policy", get(dlp::get_policy).put(dlp::put_policy))
        .route("/api/v1/dlp/flagged", get(dlp::list_flagged))
        .route(
            "/api/v1/templates",
            get(templates::list_templates).post(templates::create_template),
        )
        .route("/api/v1/templates/{id}", get(templates::get_template))
        .route("/api/v1/templates/{id}/preview", post(templates::preview_template))
        .route("/api/v1/events", get(events::stream_events))
        .route("/api/openapi.json", get(openapi::openapi_json))
}

/// Page size bounds shared by every list endpoint.
pub fn page_limit(requested: Option<i64>) -> i64 {
    requested.unwrap_or(50).clamp(1, 200)
}
