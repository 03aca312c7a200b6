//! `/webhooks/twilio`: Twilio's inbound-message and status-callback webhooks (SMS, and WhatsApp
//! through Twilio), form-encoded.
//!
//! The same path as the Cloud API's: verify `X-Twilio-Signature` (HMAC-SHA1 over the configured
//! public webhook URL and the sorted parameters under the auth token, or HMAC-SHA256 under a shared
//! key when Twilio's signature-settings header says so, constant time) before anything is read → classify →
//! commit in one transaction → answer 200 (an empty TwiML response) → publish. Messages are routed to
//! a sender by the number they were sent to (or the Messaging Service SID), never by a lookup that
//! pooled numbers could fail.

use crate::consent_flow::Effects;
use crate::error::AppError;
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use openline_channels::twilio::signature::{
    body_sha256_param, verify_twilio_body_signature, verify_twilio_signature_with, SignatureAlgorithm,
    SignatureSettings, BODY_SHA256_PARAM, SIGNATURE_HEADER, SIGNATURE_SETTINGS_HEADER,
};
use openline_channels::twilio::{classify, parse_form, TwilioEvent, TwilioInbound};
use openline_channels::SignatureError;
use openline_domain::{MessageKind, ProviderKind};
use openline_store::messages::{self, InboundOutcome, NewInbound, StatusReport};
use openline_store::senders::{self, Sender};
use openline_store::{provider_events, Conn, StoreError};

/// `POST /webhooks/twilio`
pub async fn receive_twilio_webhook(
    State(st): State<AppState>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let params = verified_params(&st, &uri, &headers, &body)?;
    // The openline message a status callback names (its URL carries it; the signature covers it).
    let callback_message_id = uri.query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == crate::twilio_send::CALLBACK_MESSAGE_PARAM)
            .map(|(_, v)| v.into_owned())
    });
    let event = classify(&params).map_err(|e| AppError::bad_request("invalid_webhook", e.to_string()))?;
    let sender = match &event {
        TwilioEvent::Inbound(m) => route(&st, m).await?,
        // A status names its message by Twilio's SID, unique across accounts and services, so it is
        // applied to that message whichever number or pool it went out from.
        TwilioEvent::Status(_) => None,
    };
    let now = st.now();
    let raw = serde_json::Value::Object(
        params
            .iter()
            .map(|(k, v)| (k.clone(), serde_json::Value::from(v.clone())))
            .collect(),
    );
    let (metric, fx) = st
        .store
        .write(move |c| {
            let mut fx = Effects::default();
            let metric = apply(
                c,
                event,
                sender.as_ref(),
                callback_message_id.as_deref(),
                &raw,
                now,
                &mut fx,
            )?;
            Ok((metric, fx))
        })
        .await?;
    st.metrics.webhook(metric);
    fx.publish(&st);
    Ok((
        [(header::CONTENT_TYPE, "text/xml")],
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response></Response>",
    )
        .into_response())
}

/// The webhook's parameters, once its signature has been checked: nothing in the body is read
/// before that, and nothing is stored.
///
/// How it is checked follows the request. Without `X-Twilio-Webhooks-Signature-Settings`, Twilio's
/// default: HMAC-SHA1 under the auth token. With it, a Webhook Setting signed with a SharedKey: the
/// configured shared key and the algorithm the header names (HMAC-SHA256 or SHA1); a header naming
/// anything else is refused. A form body is verified over its decoded parameters; a JSON body only
/// when the URL carries `bodySHA256`, against the hash of its raw bytes. The URL is always the
/// configured public one (Twilio signs what it requested, which a proxy hides from us), with the
/// `bodySHA256` Twilio appended to it, or for a form the query Twilio requested it with (a status
/// callback's `openline_message_id`, see [`crate::twilio_send::tagged_status_callback`]).
fn verified_params(
    st: &AppState,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Vec<(String, String)>, AppError> {
    let header_text = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (algorithm, key) = match header_text(SIGNATURE_SETTINGS_HEADER) {
        None => (SignatureAlgorithm::HmacSha1, st.config.twilio.auth_token.expose()),
        Some(settings) => {
            let settings = SignatureSettings::parse(settings).map_err(|e| refused(st, e))?;
            (settings.algorithm, st.config.twilio.webhook_shared_key.expose())
        }
    };
    if key.is_empty() {
        return Err(AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "webhooks_not_configured",
            if header_text(SIGNATURE_SETTINGS_HEADER).is_some() {
                "Twilio signed this webhook with a shared key (X-Twilio-Webhooks-Signature-Settings), and openline has none configured (OPENLINE_TWILIO_WEBHOOK_SHARED_KEY), so it cannot verify it."
            } else {
                "openline has no Twilio auth token configured (OPENLINE_TWILIO_AUTH_TOKEN), so it cannot verify webhooks."
            },
        ));
    }
    let signature = header_text(SIGNATURE_HEADER);
    let body_hash = uri
        .query()
        .and_then(|q| body_sha256_param(&format!("?{q}")).map(str::to_owned));
    let is_json = header_text(header::CONTENT_TYPE.as_str())
        .is_some_and(|ct| ct.trim_start().to_ascii_lowercase().starts_with("application/json"));
    match body_hash {
        Some(hash) if is_json => {
            let url = &st.twilio_webhook_url;
            let separator = if url.contains('?') { '&' } else { '?' };
            let signed_url = format!("{url}{separator}{BODY_SHA256_PARAM}={hash}");
            verify_twilio_body_signature(algorithm, key, &signed_url, body, signature).map_err(|e| refused(st, e))?;
            json_params(body).ok_or_else(|| {
                AppError::bad_request(
                    "invalid_webhook",
                    "The webhook body is not a JSON object of parameters.",
                )
            })
        }
        _ => {
            let params = parse_form(body).map_err(|e| AppError::bad_request("invalid_webhook", e.to_string()))?;
            let url = &st.twilio_webhook_url;
            let signed_url = match uri.query().filter(|q| !q.is_empty()) {
                Some(q) => format!("{url}{}{q}", if url.contains('?') { '&' } else { '?' }),
                None => url.clone(),
            };
            verify_twilio_signature_with(algorithm, key, &signed_url, &params, signature)
                .map_err(|e| refused(st, e))?;
            Ok(params)
        }
    }
}

/// A refused signature, counted, with the same words whichever check failed.
fn refused(st: &AppState, e: SignatureError) -> AppError {
    st.metrics.webhook("rejected");
    match e {
        SignatureError::Missing => AppError::new(
            StatusCode::UNAUTHORIZED,
            "signature_missing",
            "The X-Twilio-Signature header is missing.",
        ),
        _ => AppError::new(
            StatusCode::FORBIDDEN,
            "signature_invalid",
            "The X-Twilio-Signature does not match; check the auth token (or shared key) and that the webhook URL configured in openline is the one Twilio calls.",
        ),
    }
}

/// A JSON webhook's top-level fields as parameters: strings as they are, numbers and booleans as
/// their text, anything else (objects, arrays) as JSON text. `None` when the body is not an object.
fn json_params(body: &[u8]) -> Option<Vec<(String, String)>> {
    let serde_json::Value::Object(map) = serde_json::from_slice(body).ok()? else {
        return None;
    };
    Some(
        map.into_iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| {
                let text = match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, text)
            })
            .collect(),
    )
}

/// The sender an incoming message is for: by its Messaging Service when it names one (numbers pooled
/// in a service need not be registered one by one), else by its account and the number it was sent
/// to (see `senders::find_twilio_route`).
async fn route(st: &AppState, m: &TwilioInbound) -> Result<Option<Sender>, AppError> {
    let to_number =
        m.to.get(..WHATSAPP_PREFIX.len())
            .filter(|p| p.eq_ignore_ascii_case(WHATSAPP_PREFIX))
            .map_or(m.to.as_str(), |_| &m.to[WHATSAPP_PREFIX.len()..])
            .trim()
            .to_owned();
    let service = m.messaging_service_sid.clone();
    let account = m.account_sid.trim().to_owned();
    let default_account = st.config.twilio.account_sid.trim().to_owned();
    let channel = m.channel;
    Ok(st
        .store
        .read(move |c| {
            senders::find_twilio_route(
                c,
                &senders::TwilioRoute {
                    messaging_service_sid: service.as_deref(),
                    account_sid: &account,
                    to_number: &to_number,
                    channel,
                    default_account: &default_account,
                },
            )
        })
        .await?)
}

/// The address prefix of WhatsApp numbers at Twilio.
const WHATSAPP_PREFIX: &str = "whatsapp:";

fn apply(
    c: &mut dyn Conn,
    event: TwilioEvent,
    sender: Option<&Sender>,
    callback_message_id: Option<&str>,
    raw: &serde_json::Value,
    now: i64,
    fx: &mut Effects,
) -> Result<&'static str, StoreError> {
    match event {
        TwilioEvent::Inbound(m) => {
            let Some(sender) = sender else {
                tracing::warn!("Twilio webhook for a number openline does not know; kept as a provider event");
                provider_events::insert(c, "twilio", "messages_unrouted", None, Some(&m.to), raw, now)?;
                return Ok("unrouted");
            };
            let Some(phone) = m.phone.as_ref() else {
                provider_events::insert(c, "twilio", "messages_unattributed", None, Some(&m.to), raw, now)?;
                return Ok("unattributed");
            };
            // One message per file: openline's messages carry one file each (as WhatsApp's do), so
            // every picture of an MMS is stored, fetched, shown and archived on its own. The first
            // carries the text as its caption and Twilio's SID; the others `{SID}/{n}`, so a
            // redelivered webhook stores nothing twice. Without media, one text message.
            let parts: Vec<Option<&(String, Option<String>)>> = if m.media.is_empty() {
                vec![None]
            } else {
                m.media.iter().map(Some).collect()
            };
            let (stored_body, verdict) = super::dlp_inbound(c, &sender.org_id, m.body.as_deref())?;
            for (index, part) in parts.into_iter().enumerate() {
                let provider_message_id = if index == 0 {
                    m.message_sid.clone()
                } else {
                    format!("{}/{index}", m.message_sid)
                };
                let kind = part.map_or(MessageKind::Text, |(_, ct)| media_kind(ct.as_deref()));
                let media = part.map(|(url, ct)| serde_json::json!({"url": url, "mime_type": ct}));
                let first = index == 0;
                let outcome = messages::insert_inbound(
                    c,
                    &NewInbound {
                        org_id: &sender.org_id,
                        sender_id: &sender.id,
                        channel: m.channel,
                        provider: ProviderKind::Twilio,
                        from_phone: Some(phone.as_e164()),
                        wa_user_id: None,
                        profile_name: m.profile_name.as_deref(),
                        provider_message_id: &provider_message_id,
                        kind,
                        body: if first { stored_body.as_deref() } else { None },
                        media: media.as_ref(),
                        reply_to: None,
                        raw: Some(raw),
                        sent_at: now,
                        now,
                    },
                )?;
                let msg = match outcome {
                    InboundOutcome::Stored(msg) => msg,
                    // The whole webhook was stored before (one transaction): nothing more to do.
                    InboundOutcome::Duplicate if first => return Ok("duplicate"),
                    InboundOutcome::Duplicate => continue,
                };
                if let Some((url, content_type)) = part {
                    // Fetched by the media worker; the row is written with the message, so the
                    // webhook is acknowledged only once fetching it is recorded as work to do.
                    openline_store::media::insert_pending(
                        c,
                        &openline_store::media::NewPending {
                            org_id: &sender.org_id,
                            message_id: &msg.id,
                            provider: ProviderKind::Twilio.as_str(),
                            provider_media_id: url,
                            content_type: content_type.as_deref(),
                            filename: None,
                            expected_sha256: None,
                            now,
                        },
                    )?;
                    fx.wake_media = true;
                }
                let stored = super::StoredInbound {
                    message: *msg,
                    channel: m.channel,
                    verdict: if first { verdict.as_ref() } else { None },
                    original: if first { m.body.as_deref() } else { None },
                    reply_payload: if first { m.button_payload.as_deref() } else { None },
                    sender_id: &sender.id,
                    known: crate::consent_flow::Known::default(),
                };
                super::after_stored_inbound(c, stored, now, fx)?;
            }
            Ok("stored")
        }
        TwilioEvent::Status(s) => {
            let Some(status) = s.status else {
                provider_events::insert(c, "twilio", "status_other", None, s.from.as_deref(), raw, now)?;
                return Ok("other");
            };
            super::record_status(
                c,
                &StatusReport {
                    provider: ProviderKind::Twilio,
                    provider_message_id: &s.message_sid,
                    status,
                    error_code: s.error_code,
                    error_title: s.error_code.map(|_| s.status_text.as_str()),
                    at: now,
                    raw: Some(raw),
                    now,
                },
                callback_message_id,
                now,
                fx,
                None,
            )
        }
    }
}

/// The kind of message a file Twilio announced is, by its content type: pictures, videos and audio
/// as such, anything else (PDFs, vCards, …) a document.
fn media_kind(content_type: Option<&str>) -> MessageKind {
    let base = content_type
        .unwrap_or_default()
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match base.split('/').next().unwrap_or_default() {
        "image" => MessageKind::Image,
        "video" => MessageKind::Video,
        "audio" => MessageKind::Audio,
        _ => MessageKind::Document,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_files_kind_follows_its_content_type() {
        assert_eq!(media_kind(Some("image/jpeg")), MessageKind::Image);
        assert_eq!(media_kind(Some("IMAGE/PNG; q=1")), MessageKind::Image);
        assert_eq!(media_kind(Some("video/mp4")), MessageKind::Video);
        assert_eq!(media_kind(Some("audio/ogg")), MessageKind::Audio);
        assert_eq!(media_kind(Some("application/pdf")), MessageKind::Document);
        assert_eq!(media_kind(Some("text/vcard")), MessageKind::Document);
        assert_eq!(media_kind(None), MessageKind::Document);
    }
}
