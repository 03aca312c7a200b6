//! The OpenAPI document, generated from the handlers and types; the simulator's phone API is
//! nested under `/sim` (where demo mode serves it).

use axum::Json;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(title = "openline", description = "Compliant WhatsApp Business messaging: REST API, webhooks and the simulator."),
    paths(
        super::auth::login, super::auth::logout, super::auth::me,
        super::auth::create_token, super::auth::list_tokens, super::auth::revoke_token,
        super::contacts::list_contacts, super::contacts::create_contact, super::contacts::get_contact,
        super::contacts::list_senders,
        super::conversations::list_conversations, super::conversations::get_conversation,
        super::conversations::list_messages,
        super::messages::post_message, super::messages::get_message, super::messages::cancel_message,
        super::messages::read_conversation,
        super::media::upload_media, super::media::get_media,
        super::conversations::list_queued,
        super::participants::list_participants, super::participants::add_participant,
        super::participants::remove_participant, super::participants::transfer_conversation,
        super::consent::request_opt_in, super::consent::get_consent,
        super::consent::get_opt_in_template, super::consent::put_opt_in_template, super::pacing::put_throughput,
        super::templates::create_template, super::templates::list_templates, super::templates::get_template,
        super::templates::preview_template,
        super::dlp::get_policy, super::dlp::put_policy, super::dlp::list_flagged, super::dlp::review_message,
        super::events::stream_events,
        super::archive::get_settings, super::archive::put_settings, super::archive::verify_archive,
        super::archive::create_checkpoints, super::archive::list_checkpoints, super::archive::list_holds,
        super::archive::create_hold, super::archive::release_hold, super::archive::purge_archive,
        super::archive::export_archive,
        super::webhook_subscriptions::create_subscription, super::webhook_subscriptions::list_subscriptions,
        super::webhook_subscriptions::get_subscription, super::webhook_subscriptions::update_subscription,
        super::webhook_subscriptions::delete_subscription, super::webhook_subscriptions::rotate_secret,
        super::webhook_subscriptions::resume_subscription, super::webhook_subscriptions::list_deliveries,
        crate::webhooks::whatsapp::verify_subscription, crate::webhooks::whatsapp::receive_webhook,
        super::provider_events::list_provider_events,
    ),
    components(schemas(openline_store::webhooks_out::WebhookEvent)),
    modifiers(&Security),
    security(("bearer" = []), ("session" = [])),
    tags(
        (name = "auth", description = "Sign in, sessions and API tokens"),
        (name = "contacts"), (name = "consent", description = "Opt-in requests and the consent ledger"), (name = "conversations"), (name = "messages"), (name = "media", description = "Files: uploads to send, and the files of messages"), (name = "templates"), (name = "dlp", description = "Data-loss prevention"), (name = "events"),
        (name = "webhooks", description = "What providers call"),
        (name = "provider events", description = "Account, quality and template events from the providers, kept whole (admins)"),
        (name = "archive", description = "The tamper-evident archive: retention, recording, legal holds, signed checkpoints, exports"),
        (name = "webhook subscriptions", description = "Outbound webhooks: events delivered to your archive or CRM, signed with `Openline-Signature`; each request's body is a `WebhookEvent`"),
    )
)]
pub struct ApiDoc;

struct Security;
impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(crate::auth::SESSION_COOKIE))),
        );
    }
}

pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi().nest("/sim", openline_sim::SimApiDoc::openapi())
}

/// `GET /api/openapi.json`
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(document())
}
