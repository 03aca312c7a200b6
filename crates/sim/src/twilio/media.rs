//! Media through the fake Twilio, both ways.
//!
//! - Out (the business sends): a create request's `MediaUrl`s are fetched as Twilio fetches them,
//!   with a plain `GET` and no credentials, following redirects; the file lands on the phone's
//!   conversation (its `media_id`, served by `GET /phones/{phone}/media/{media_id}`). A URL that
//!   does not answer 2xx fails the message (11200 for SMS/MMS, 63019 for WhatsApp), as at Twilio.
//! - In (a phone sends an MMS): the file is kept as a Media resource `ME…` under the message and the
//!   webhook carries `NumMedia`, `MediaUrl0` and `MediaContentType0`. The Media URL
//!   (`/twilio/2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media/{MediaSid}`) requires
//!   HTTP basic auth with the account's credentials, as Twilio's does when HTTP auth on media is
//!   enforced, and answers with a redirect to a short-lived CDN URL (`/twilio/cdn/{MediaSid}`).

use super::lifecycle::twilio_queue;
use super::validate::MAX_BODY_CHARS;
use super::{require_basic_auth, API_VERSION};
use crate::error::SimError;
use crate::inbound::wait_first_attempt;
use crate::state::{ConversationEntry, Direction, MessageChannel, StoredMedia};
use crate::{ids, InboundOutcome, Simulator};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use openline_domain::PhoneNumber;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use std::time::Duration;

/// Twilio's limit on the media of one MMS.
pub const MAX_MMS_BYTES: usize = 5 * 1024 * 1024;
/// Twilio's error when it cannot fetch a `MediaUrl` (SMS/MMS).
pub const MEDIA_RETRIEVAL_FAILURE: i64 = 11200;
/// Twilio's error when WhatsApp media could not be downloaded.
pub const WHATSAPP_MEDIA_FAILED: i64 = 63019;

pub fn routes() -> Router<Arc<Simulator>> {
    Router::new()
        .route(
            "/twilio/2010-04-01/Accounts/{account_sid}/Messages/{message_sid}/Media/{media_sid}",
            get(media_resource),
        )
        .route("/twilio/cdn/{media_sid}", get(cdn))
}

/// `GET …/Messages/{MessageSid}/Media/{MediaSid}`: basic auth, then a redirect to the CDN.
async fn media_resource(
    State(sim): State<Arc<Simulator>>,
    Path((account_sid, _message_sid, media_sid)): Path<(String, String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(e) = require_basic_auth(&sim, &headers) {
        return e.into_response();
    }
    if account_sid != sim.config.twilio_account_sid {
        return super::TwilioError::unauthenticated().into_response();
    }
    if !sim.state().media.contains_key(&media_sid) {
        return (
            StatusCode::NOT_FOUND,
            axum::Json(
                serde_json::json!({"code": 20404, "message": "The requested resource was not found",
                "more_info": "https://www.twilio.com/docs/errors/20404", "status": 404}),
            ),
        )
            .into_response();
    }
    let base = sim.config.public_base_url.trim_end_matches('/');
    let location = format!("{base}/twilio/cdn/{media_sid}");
    match HeaderValue::from_str(&location) {
        Ok(v) => (StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, v)]).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// `GET /twilio/cdn/{MediaSid}`: the bytes, with their content type.
async fn cdn(State(sim): State<Arc<Simulator>>, Path(media_sid): Path<String>) -> Response {
    let Some((mime_type, bytes)) = sim
        .state()
        .media
        .get(&media_sid)
        .map(|m| (m.mime_type.clone(), m.bytes.clone()))
    else {
        return (StatusCode::NOT_FOUND, "media not found").into_response();
    };
    let content_type =
        HeaderValue::from_str(&mime_type).unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    ([(header::CONTENT_TYPE, content_type)], bytes).into_response()
}

/// A Media resource SID: `ME` and 32 hex digits.
fn media_sid() -> String {
    format!("ME{:032x}", ulid::Ulid::new().0)
}

/// The kind of conversation entry a file of `mime_type` is.
pub(crate) fn entry_kind(mime_type: &str) -> &'static str {
    match mime_type.split('/').next().unwrap_or_default() {
        "image" => "image",
        "video" => "video",
        "audio" => "audio",
        _ => "document",
    }
}

impl Simulator {
    /// Keeps a file as the Media resource `media_sid`, as Twilio keeps what phones send. Tests use
    /// it to make a media URL that failed start working.
    pub fn store_twilio_media(&self, media_sid: &str, mime_type: &str, bytes: Vec<u8>) {
        let sha256_hex = hex::encode(Sha256::digest(&bytes));
        self.state().media.insert(
            media_sid.to_owned(),
            StoredMedia {
                mime_type: mime_type.to_owned(),
                bytes,
                sha256_hex,
            },
        );
    }

    /// Fetches a message's `MediaUrl`s as Twilio does (no credentials, redirects followed, 5 MB at
    /// most in all) and keeps them; answers the first file's media id and type, or why it failed.
    pub(crate) async fn fetch_twilio_media(&self, urls: &[String]) -> Result<Option<(String, String)>, String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .map_err(|e| e.to_string())?;
        let mut first = None;
        let mut total = 0usize;
        for url in urls {
            let response = http.get(url).send().await.map_err(|e| e.without_url().to_string())?;
            let status = response.status();
            if !status.is_success() {
                tracing::info!(status = status.as_u16(), "twilio media url refused");
                return Err(format!("the media URL answered HTTP {}", status.as_u16()));
            }
            let mime_type = response
                .headers()
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("application/octet-stream")
                .to_owned();
            let bytes = response.bytes().await.map_err(|e| e.without_url().to_string())?;
            total += bytes.len();
            if total > MAX_MMS_BYTES {
                return Err("the media is larger than 5 MB".into());
            }
            let id = ids::media_id();
            self.store_twilio_media(&id, &mime_type, bytes.to_vec());
            if first.is_none() {
                first = Some((id, mime_type));
            }
        }
        Ok(first)
    }

    /// The phone sends a picture (an MMS, with optional text) to one of the business's SMS numbers:
    /// Twilio's incoming-message webhook with `NumMedia=1`, `MediaUrl0` (this simulator's Media
    /// resource, which needs basic auth) and `MediaContentType0`. Waits for the first attempt.
    pub async fn phone_sends_mms(
        &self,
        phone: &PhoneNumber,
        to: &str,
        text: Option<&str>,
        mime_type: &str,
        bytes: Vec<u8>,
    ) -> Result<InboundOutcome, SimError> {
        let text = text.map(str::trim).filter(|t| !t.is_empty());
        if text.is_some_and(|t| t.chars().count() > MAX_BODY_CHARS) {
            return Err(SimError::bad_request(
                "invalid_text",
                "The text must have at most 1600 characters.",
            ));
        }
        if bytes.is_empty() || bytes.len() > MAX_MMS_BYTES {
            return Err(SimError::bad_request(
                "invalid_media",
                "The file must have 1 byte to 5 MB.",
            ));
        }
        if !mime_type.contains('/') {
            return Err(SimError::bad_request("invalid_media", "mime_type must be a MIME type."));
        }
        let number = self.config.sms_number(to).ok_or_else(|| {
            SimError::not_found(
                "unknown_business_number",
                "No business SMS number here has that number.",
            )
        })?;
        let to_e164 = format!("+{}", number.trim().trim_start_matches('+'));
        let sid = format!("MM{:032x}", ulid::Ulid::new().0);
        let media = media_sid();
        self.store_twilio_media(&media, mime_type, bytes);
        let now = self.now();
        self.state().record(
            phone,
            ConversationEntry {
                id: sid.clone(),
                direction: Direction::FromPhone,
                business_number: to_e164.trim_start_matches('+').to_string(),
                channel: MessageChannel::Sms,
                kind: entry_kind(mime_type).into(),
                text: text.map(str::to_owned),
                template: None,
                buttons: Vec::new(),
                media_id: Some(media.clone()),
                context_id: None,
                status: "sent".into(),
                error_code: None,
                timestamp_ms: now,
            },
        );
        let account = self.config.twilio_account_sid.clone();
        let base = self.config.public_base_url.trim_end_matches('/');
        let media_url = format!("{base}/twilio/{API_VERSION}/Accounts/{account}/Messages/{sid}/Media/{media}");
        let params: Vec<(String, String)> = vec![
            ("SmsMessageSid".into(), sid.clone()),
            ("NumMedia".into(), "1".into()),
            ("SmsSid".into(), sid.clone()),
            ("SmsStatus".into(), "received".into()),
            ("Body".into(), text.unwrap_or_default().to_owned()),
            ("To".into(), to_e164),
            ("NumSegments".into(), "1".into()),
            ("MediaContentType0".into(), mime_type.to_owned()),
            ("MediaUrl0".into(), media_url),
            ("MessageSid".into(), sid.clone()),
            ("AccountSid".into(), account),
            ("From".into(), phone.as_e164().to_string()),
            ("ApiVersion".into(), API_VERSION.into()),
        ];
        let url = &self.config.twilio_webhook_url;
        let (signature, settings) = self.sign_twilio_webhook(url, &params);
        tracing::info!(message_sid = %sid, "phone mms sent");
        let rx = self.webhooks.enqueue_form(
            &twilio_queue(phone.digits()),
            url,
            "twilio.sms.inbound",
            &params,
            signature,
            settings,
        );
        Ok(wait_first_attempt(sid, rx).await)
    }
}
