//! The phone API: the simulator's own JSON API through which a test or a person acts as a WhatsApp
//! (or SMS) user — writing to a business, tapping buttons, sending images, texting an SMS number,
//! reading the conversation — and sets how a phone behaves. Documented with utoipa in [`SimApiDoc`], served at `/openapi.json`.
//!
//! `{phone}` accepts `+447700900001` or the digits `447700900001`. Errors are
//! `{"error":"snake_case_code","message":"A sentence."}`.

use crate::error::{ApiJson, ErrorBody, SimError};
use crate::personas::PersonaBehaviour;
use crate::state::{ButtonKind, ButtonView, ConversationEntry, Direction, MessageChannel, TemplateView};
use crate::{InboundOutcome, Simulator};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use base64::Engine;
use openline_domain::PhoneNumber;
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{OpenApi, ToSchema};

/// The OpenAPI document of the simulator's own API: the phone API and the template review API (the
/// Graph endpoints are Meta's and documented by Meta).
#[derive(OpenApi)]
#[openapi(
    info(title = "openline simulator: phone API", description = "Act as simulated WhatsApp (and SMS) users talking to the business, and as Meta's template reviewer."),
    paths(
        list_phones, send_text, send_sms, send_mms, list_messages, phone_media, tap_button, send_image, set_behaviour,
        set_marketing,
        crate::template_api::list_templates, crate::template_api::approve, crate::template_api::reject,
        crate::template_api::pause, crate::template_api::disable
    ),
    components(schemas(
        PhoneSummary, SendTextRequest, SendSmsRequest, SendMmsRequest, SentResponse, MessageChannel, TapButtonRequest, SendImageRequest, SetBehaviourRequest,
        ConversationEntry, TemplateView, ButtonView, ButtonKind, Direction, PersonaBehaviour, ErrorBody,
        SetMarketingRequest, crate::marketing::MarketingChoice, crate::marketing::MarketingOutcome,
        crate::templates::TemplateRecord, crate::templates::TemplateStatus, crate::templates::RejectionReason,
        crate::template_api::RejectRequest, crate::template_api::TemplateChanged
    )),
    tags(
        (name = "phones", description = "Simulated WhatsApp users"),
        (name = "templates", description = "Message templates under Meta's review")
    )
)]
pub struct SimApiDoc;

pub fn routes() -> Router<Arc<Simulator>> {
    Router::new()
        .route("/phones", get(list_phones))
        .route("/phones/{phone}/messages", post(send_text).get(list_messages))
        .route("/phones/{phone}/sms", post(send_sms))
        .route(
            "/phones/{phone}/mms",
            post(send_mms).layer(DefaultBodyLimit::max(7 * 1024 * 1024 + 64 * 1024)),
        )
        .route("/phones/{phone}/media/{media_id}", get(phone_media))
        .route("/phones/{phone}/buttons", post(tap_button))
        // Base64 of a 5 MB image, with room for the rest of the JSON.
        .route(
            "/phones/{phone}/images",
            post(send_image).layer(DefaultBodyLimit::max(7 * 1024 * 1024 + 64 * 1024)),
        )
        .route("/phones/{phone}/behaviour", put(set_behaviour))
        .route("/phones/{phone}/marketing", post(set_marketing))
        .route("/openapi.json", get(|| async { Json(SimApiDoc::openapi()) }))
}

/// A simulated phone.
#[derive(Debug, Serialize, ToSchema)]
pub struct PhoneSummary {
    /// E.164, e.g. `+447700900001`.
    #[schema(example = "+447700900001")]
    pub phone: String,
    /// The digits WhatsApp uses as `wa_id`.
    #[schema(example = "447700900001")]
    pub wa_id: String,
    /// The WhatsApp profile name.
    pub name: String,
    pub behaviour: PersonaBehaviour,
    /// How many messages its conversation holds (both directions).
    pub messages: usize,
    /// The business numbers (display digits) it stopped marketing messages from.
    pub marketing_stopped: Vec<String>,
}

/// Write a text to a business number.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SendTextRequest {
    /// The business number's display digits (`15550001000`) or its `phone_number_id`.
    #[schema(example = "15550001000")]
    pub to: String,
    #[schema(example = "Hello, I'd like to open an account")]
    pub text: String,
}

/// Text one of the business's SMS numbers (through Twilio).
#[derive(Debug, Deserialize, ToSchema)]
pub struct SendSmsRequest {
    /// The business SMS number, E.164 (`+15550002000`) or its digits.
    #[schema(example = "+15550002000")]
    pub to: String,
    #[schema(example = "Hi, is the branch open on Saturday?")]
    pub text: String,
}

/// What became of the phone's message.
#[derive(Debug, Serialize, ToSchema)]
pub struct SentResponse {
    /// The message's id: `wamid.…` for WhatsApp, Twilio's `SM…` SID for SMS.
    pub id: String,
    /// openline's HTTP status on the first delivery attempt; null when unreachable. Failed
    /// deliveries are retried in the background with exponential backoff.
    pub webhook_status: Option<u16>,
}

impl From<InboundOutcome> for SentResponse {
    fn from(o: InboundOutcome) -> Self {
        Self {
            id: o.id,
            webhook_status: o.webhook_status,
        }
    }
}

/// Tap a button of a business message this phone received.
#[derive(Debug, Deserialize, ToSchema)]
pub struct TapButtonRequest {
    /// The `wamid.` id of the business message.
    pub message_id: String,
    /// The button's label (case-insensitive) or its id / payload.
    #[schema(example = "Yes")]
    pub button: String,
}

/// Send an image to a business number.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SendImageRequest {
    /// The business number's display digits or `phone_number_id`.
    pub to: String,
    pub caption: Option<String>,
    /// `image/jpeg` or `image/png`.
    #[schema(example = "image/png")]
    pub mime_type: String,
    /// The image bytes, base64 (standard alphabet), at most 5 MB decoded.
    pub data_base64: String,
}

/// Change how a phone behaves.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SetBehaviourRequest {
    pub behaviour: PersonaBehaviour,
}

fn parse_phone(raw: &str) -> Result<PhoneNumber, SimError> {
    let raw = raw.trim();
    let parsed = if raw.starts_with('+') || raw.starts_with("00") {
        PhoneNumber::parse(raw)
    } else {
        PhoneNumber::from_wa_id(raw)
    };
    parsed.map_err(|e| SimError::bad_request("invalid_phone_number", e.message))
}

/// `GET /phones`: the personas and every phone that has written or been written to.
#[utoipa::path(get, path = "/phones", tag = "phones",
    responses((status = 200, description = "The phones, ordered by number", body = [PhoneSummary])))]
async fn list_phones(State(sim): State<Arc<Simulator>>) -> Json<Vec<PhoneSummary>> {
    let state = sim.state();
    let mut phones: Vec<PhoneSummary> = state
        .phones
        .values()
        .map(|p| PhoneSummary {
            phone: p.phone.as_e164().to_string(),
            wa_id: p.phone.digits().to_string(),
            name: p.name.clone(),
            behaviour: p.behaviour,
            messages: p.entries.len(),
            marketing_stopped: stopped_numbers(&sim, p),
        })
        .collect();
    phones.sort_by(|a, b| a.phone.cmp(&b.phone));
    Json(phones)
}

/// `POST /phones/{phone}/messages`: the phone writes a text to a business number.
///
/// Sends a signed `text` webhook to openline and opens the 24-hour window. Waits for the first
/// delivery attempt and reports its HTTP status.
#[utoipa::path(post, path = "/phones/{phone}/messages", tag = "phones",
    params(("phone" = String, Path, description = "`+447700900001` or `447700900001`")),
    request_body = SendTextRequest,
    responses(
        (status = 200, description = "Sent; see webhook_status", body = SentResponse),
        (status = 400, description = "Bad phone number or text", body = ErrorBody),
        (status = 404, description = "Unknown business number", body = ErrorBody),
        (status = 409, description = "The phone is not on WhatsApp", body = ErrorBody)))]
async fn send_text(
    State(sim): State<Arc<Simulator>>,
    Path(phone): Path<String>,
    ApiJson(req): ApiJson<SendTextRequest>,
) -> Result<Json<SentResponse>, SimError> {
    let phone = parse_phone(&phone)?;
    Ok(Json(sim.phone_sends_text(&phone, &req.to, &req.text).await?.into()))
}

/// `POST /phones/{phone}/sms`: the phone texts a business SMS number.
///
/// Sends Twilio's incoming-message webhook (form-encoded `MessageSid`, `AccountSid`, `From`, `To`,
/// `Body`, `NumMedia`, `SmsStatus=received`, …, signed with `X-Twilio-Signature`) to openline's
/// Twilio webhook URL. Any phone can send SMS, WhatsApp user or not. Waits for the first delivery
/// attempt and reports its HTTP status.
#[utoipa::path(post, path = "/phones/{phone}/sms", tag = "phones",
    params(("phone" = String, Path, description = "`+447700900001` or `447700900001`")),
    request_body = SendSmsRequest,
    responses(
        (status = 200, description = "Sent; see webhook_status. `id` is the `SM…` SID", body = SentResponse),
        (status = 400, description = "Bad phone number or text", body = ErrorBody),
        (status = 404, description = "Unknown business SMS number", body = ErrorBody)))]
async fn send_sms(
    State(sim): State<Arc<Simulator>>,
    Path(phone): Path<String>,
    ApiJson(req): ApiJson<SendSmsRequest>,
) -> Result<Json<SentResponse>, SimError> {
    let phone = parse_phone(&phone)?;
    Ok(Json(sim.phone_sends_sms(&phone, &req.to, &req.text).await?.into()))
}

/// A picture (or other file) a phone sends to a business SMS number as an MMS, through Twilio.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SendMmsRequest {
    /// The business SMS number, E.164 (`+15550002000`) or its digits.
    #[schema(example = "+15550002000")]
    pub to: String,
    /// Text sent with the file, if any.
    pub text: Option<String>,
    #[schema(example = "image/png")]
    pub mime_type: String,
    /// The file, base64 (at most 5 MB decoded).
    pub data_base64: String,
}

/// `POST /phones/{phone}/mms`: the phone sends a file to a business SMS number.
///
/// Sends Twilio's incoming-message webhook with `NumMedia=1`, `MediaUrl0` (the simulator's Twilio
/// Media resource, which requires basic auth and redirects to its CDN, as Twilio's does) and
/// `MediaContentType0`. Waits for the first delivery attempt and reports its HTTP status.
#[utoipa::path(post, path = "/phones/{phone}/mms", tag = "phones",
    params(("phone" = String, Path, description = "`+447700900001` or `447700900001`")),
    request_body = SendMmsRequest,
    responses(
        (status = 200, description = "Sent; see webhook_status. `id` is the `MM…` SID", body = SentResponse),
        (status = 400, description = "Bad phone number, text, type or data", body = ErrorBody),
        (status = 404, description = "Unknown business SMS number", body = ErrorBody)))]
async fn send_mms(
    State(sim): State<Arc<Simulator>>,
    Path(phone): Path<String>,
    ApiJson(req): ApiJson<SendMmsRequest>,
) -> Result<Json<SentResponse>, SimError> {
    let phone = parse_phone(&phone)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(req.data_base64.trim())
        .map_err(|_| SimError::bad_request("invalid_base64", "data_base64 is not valid base64."))?;
    Ok(Json(
        sim.phone_sends_mms(&phone, &req.to, req.text.as_deref(), req.mime_type.trim(), bytes)
            .await?
            .into(),
    ))
}

/// `GET /phones/{phone}/messages`: the conversation as the phone sees it, oldest first.
#[utoipa::path(get, path = "/phones/{phone}/messages", tag = "phones",
    params(("phone" = String, Path, description = "`+447700900001` or `447700900001`")),
    responses(
        (status = 200, description = "Messages both ways, oldest first", body = [ConversationEntry]),
        (status = 400, description = "Bad phone number", body = ErrorBody)))]
async fn list_messages(
    State(sim): State<Arc<Simulator>>,
    Path(phone): Path<String>,
) -> Result<Json<Vec<ConversationEntry>>, SimError> {
    let phone = parse_phone(&phone)?;
    Ok(Json(sim.conversation(&phone)))
}

/// `GET /phones/{phone}/media/{media_id}`: a picture (or other file) in the phone's conversation,
/// as the phone shows it: the business's upload it was sent, or one the phone sent itself.
///
/// Only media a message of this phone's conversation carried (its `media_id`) is served, with no
/// token (the phone API is open, as the simulator is a demo and test tool); Meta's own media URLs
/// (`/media/{id}`) still require the bearer token.
#[utoipa::path(get, path = "/phones/{phone}/media/{media_id}", tag = "phones",
    params(
        ("phone" = String, Path, description = "`+447700900001` or `447700900001`"),
        ("media_id" = String, Path, description = "The `media_id` of an entry of the conversation")),
    responses(
        (status = 200, description = "The bytes, with their content type", content_type = "application/octet-stream"),
        (status = 400, description = "Bad phone number", body = ErrorBody),
        (status = 404, description = "No message of this phone's conversation carried that media", body = ErrorBody)))]
async fn phone_media(
    State(sim): State<Arc<Simulator>>,
    Path((phone, media_id)): Path<(String, String)>,
) -> Result<Response, SimError> {
    let phone = parse_phone(&phone)?;
    let found = {
        let state = sim.state();
        let carried = state.phones.get(phone.digits()).is_some_and(|p| {
            p.entries
                .iter()
                .any(|e| e.media_id.as_deref() == Some(media_id.as_str()))
        });
        if carried {
            state
                .media
                .get(&media_id)
                .map(|m| (m.mime_type.clone(), m.bytes.clone()))
        } else {
            None
        }
    };
    let Some((mime_type, bytes)) = found else {
        return Err(SimError::not_found(
            "media_not_found",
            "No message of this phone's conversation carried that media.",
        ));
    };
    let content_type =
        HeaderValue::from_str(&mime_type).unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    Ok((
        StatusCode::OK,
        [
            (header::CONTENT_TYPE, content_type),
            (header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff")),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static("sandbox; default-src 'none'"),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=3600")),
        ],
        bytes,
    )
        .into_response())
}

/// `POST /phones/{phone}/buttons`: the phone taps a button of a business message it received.
///
/// A template quick reply becomes a `button` webhook, an interactive reply button an
/// `interactive.button_reply`, a list row an `interactive.list_reply`; each with `context`.
#[utoipa::path(post, path = "/phones/{phone}/buttons", tag = "phones",
    params(("phone" = String, Path, description = "`+447700900001` or `447700900001`")),
    request_body = TapButtonRequest,
    responses(
        (status = 200, description = "Tapped; see webhook_status", body = SentResponse),
        (status = 400, description = "No such button on that message", body = ErrorBody),
        (status = 404, description = "No such message for this phone", body = ErrorBody)))]
async fn tap_button(
    State(sim): State<Arc<Simulator>>,
    Path(phone): Path<String>,
    ApiJson(req): ApiJson<TapButtonRequest>,
) -> Result<Json<SentResponse>, SimError> {
    let phone = parse_phone(&phone)?;
    Ok(Json(
        sim.phone_taps_button(&phone, &req.message_id, &req.button)
            .await?
            .into(),
    ))
}

/// `POST /phones/{phone}/images`: the phone sends an image (stored as downloadable media).
#[utoipa::path(post, path = "/phones/{phone}/images", tag = "phones",
    params(("phone" = String, Path, description = "`+447700900001` or `447700900001`")),
    request_body = SendImageRequest,
    responses(
        (status = 200, description = "Sent; see webhook_status", body = SentResponse),
        (status = 400, description = "Bad phone number, type or data", body = ErrorBody),
        (status = 404, description = "Unknown business number", body = ErrorBody)))]
async fn send_image(
    State(sim): State<Arc<Simulator>>,
    Path(phone): Path<String>,
    ApiJson(req): ApiJson<SendImageRequest>,
) -> Result<Json<SentResponse>, SimError> {
    let phone = parse_phone(&phone)?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(req.data_base64.trim())
        .map_err(|_| SimError::bad_request("invalid_base64", "data_base64 is not valid base64."))?;
    Ok(Json(
        sim.phone_sends_image(&phone, &req.to, &req.mime_type, bytes, req.caption)
            .await?
            .into(),
    ))
}

/// `PUT /phones/{phone}/behaviour`: how the phone reacts from now on.
#[utoipa::path(put, path = "/phones/{phone}/behaviour", tag = "phones",
    params(("phone" = String, Path, description = "`+447700900001` or `447700900001`")),
    request_body = SetBehaviourRequest,
    responses(
        (status = 200, description = "The phone as it is now", body = PhoneSummary),
        (status = 400, description = "Bad phone number or behaviour", body = ErrorBody)))]
async fn set_behaviour(
    State(sim): State<Arc<Simulator>>,
    Path(phone): Path<String>,
    ApiJson(req): ApiJson<SetBehaviourRequest>,
) -> Result<Json<PhoneSummary>, SimError> {
    let phone = parse_phone(&phone)?;
    sim.set_behaviour(&phone, req.behaviour);
    let state = sim.state();
    let record = state.phones.get(phone.digits());
    Ok(Json(PhoneSummary {
        phone: phone.as_e164().to_string(),
        wa_id: phone.digits().to_string(),
        name: record.map_or_else(|| phone.as_e164().to_string(), |r| r.name.clone()),
        behaviour: req.behaviour,
        messages: record.map_or(0, |r| r.entries.len()),
        marketing_stopped: record.map(|r| stopped_numbers(&sim, r)).unwrap_or_default(),
    }))
}

/// The display digits of the business numbers a phone stopped marketing messages from, sorted.
fn stopped_numbers(sim: &Simulator, phone: &crate::state::PhoneRecord) -> Vec<String> {
    let mut numbers: Vec<String> = phone
        .marketing_stopped
        .iter()
        .map(|id| {
            sim.config
                .business_number(id)
                .map_or_else(|| id.clone(), |b| b.display_phone_number.clone())
        })
        .collect();
    numbers.sort();
    numbers
}

/// Stop or resume marketing messages from a business number.
#[derive(Debug, Deserialize, ToSchema)]
pub struct SetMarketingRequest {
    /// The business number's display digits (`15550001000`) or its `phone_number_id`.
    #[schema(example = "15550001000")]
    pub to: String,
    pub preference: crate::marketing::MarketingChoice,
}

/// `POST /phones/{phone}/marketing`: the phone stops (or resumes) marketing messages from a
/// business number, as with WhatsApp's "Stop promotions".
///
/// Sends openline the signed `user_preferences` webhook in Meta's shape (`category:
/// "marketing_messages"`, `value` `stop` or `resume`). While stopped, marketing templates from that
/// number fail with 131050 ("This recipient has chosen to stop receiving marketing messages on
/// WhatsApp from your business"); utility and authentication templates and replies are delivered
/// as before. Waits for the first delivery attempt and reports its HTTP status.
#[utoipa::path(post, path = "/phones/{phone}/marketing", tag = "phones",
    params(("phone" = String, Path, description = "`+447700900001` or `447700900001`")),
    request_body = SetMarketingRequest,
    responses(
        (status = 200, description = "Recorded and sent; see webhook_status", body = crate::marketing::MarketingOutcome),
        (status = 400, description = "Bad phone number or preference", body = ErrorBody),
        (status = 404, description = "Unknown business number", body = ErrorBody),
        (status = 409, description = "The phone is not on WhatsApp", body = ErrorBody)))]
async fn set_marketing(
    State(sim): State<Arc<Simulator>>,
    Path(phone): Path<String>,
    ApiJson(req): ApiJson<SetMarketingRequest>,
) -> Result<Json<crate::marketing::MarketingOutcome>, SimError> {
    let phone = parse_phone(&phone)?;
    Ok(Json(sim.phone_sets_marketing(&phone, &req.to, req.preference).await?))
}
