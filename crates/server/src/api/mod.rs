//! The REST API under `/api/v1`, JSON in and out, described by the OpenAPI document at
//! `/api/openapi.json` (generated from the handlers and types, so it cannot drift from them).

pub mod archive;
pub mod auth;
pub mod consent;
pub mod contacts;
pub mod conversations;
pub mod cursor;
pub mod dlp;
pub mod events;
pub mod media;
pub mod messages;
pub mod openapi;
pub mod pacing;
pub mod participants;
pub mod provider_events;
pub mod templates;
pub mod webhook_subscriptions;

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
        .route(
            "/api/v1/senders/{id}/throughput",
            axum::routing::put(pacing::put_throughput),
        )
        .route(
            "/api/v1/settings/opt-in-template",
            get(consent::get_opt_in_template).put(consent::put_opt_in_template),
        )
        .route("/api/v1/conversations", get(conversations::list_conversations))
        .route("/api/v1/conversations/{id}", get(conversations::get_conversation))
        .route("/api/v1/conversations/{id}/messages", get(conversations::list_messages))
        .route("/api/v1/conversations/{id}/read", post(messages::read_conversation))
        .route("/api/v1/conversations/{id}/queued", get(conversations::list_queued))
        .route(
            "/api/v1/conversations/{id}/participants",
            get(participants::list_participants).post(participants::add_participant),
        )
        .route(
            "/api/v1/conversations/{id}/participants/{user_id}",
            delete(participants::remove_participant),
        )
        .route(
            "/api/v1/conversations/{id}/transfer",
            post(participants::transfer_conversation),
        )
        .route(
            "/api/v1/media",
            post(media::upload_media).layer(axum::extract::DefaultBodyLimit::max(media::MAX_UPLOAD_BODY)),
        )
        .route("/api/v1/media/{id}", get(media::get_media))
        .route("/api/v1/messages", post(messages::post_message))
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
        .route(
            "/api/v1/webhook-subscriptions",
            get(webhook_subscriptions::list_subscriptions).post(webhook_subscriptions::create_subscription),
        )
        .route(
            "/api/v1/webhook-subscriptions/{id}",
            get(webhook_subscriptions::get_subscription)
                .patch(webhook_subscriptions::update_subscription)
                .delete(webhook_subscriptions::delete_subscription),
        )
        .route(
            "/api/v1/webhook-subscriptions/{id}/rotate-secret",
            post(webhook_subscriptions::rotate_secret),
        )
        .route(
            "/api/v1/webhook-subscriptions/{id}/resume",
            post(webhook_subscriptions::resume_subscription),
        )
        .route(
            "/api/v1/webhook-subscriptions/{id}/deliveries",
            get(webhook_subscriptions::list_deliveries),
        )
        .route(
            "/api/v1/archive/settings",
            get(archive::get_settings).put(archive::put_settings),
        )
        .route("/api/v1/archive/verify", get(archive::verify_archive))
        .route(
            "/api/v1/archive/checkpoints",
            get(archive::list_checkpoints).post(archive::create_checkpoints),
        )
        .route(
            "/api/v1/archive/holds",
            get(archive::list_holds).post(archive::create_hold),
        )
        .route("/api/v1/archive/holds/{id}/release", post(archive::release_hold))
        .route("/api/v1/archive/purge", post(archive::purge_archive))
        .route("/api/v1/archive/export", get(archive::export_archive))
        .route("/api/v1/provider-events", get(provider_events::list_provider_events))
        .route("/api/openapi.json", get(openapi::openapi_json))
}

/// Page size bounds shared by every list endpoint.
pub fn page_limit(requested: Option<i64>) -> i64 {
    requested.unwrap_or(50).clamp(1, 200)
}
