//! `/webhooks/whatsapp`: Meta's Cloud API webhooks (or the simulator's).
//!
//! `GET` answers Meta's subscription handshake. `POST` follows one path: verify `X-Hub-Signature-256`
//! over the raw body (constant time; missing → 401, wrong → 403, nothing stored) → parse → commit every
//! event of the body in one transaction (messages with their contacts and threads, statuses, other
//! events kept whole) → answer 200 → publish live events. A retried webhook is a no-op; a status for
//! a message not known yet is kept and applied when the message's provider id is recorded. If the
//! commit fails, the answer is 5xx and Meta retries: nothing acknowledged is lost.

use crate::consent_flow::{Effects, Known};
use crate::error::{AppError, ErrorBody};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use openline_channels::cloud_api::{parse_webhook, CloudEvent, InboundMessage, StatusUpdate};
use openline_channels::signature::{verify_meta_signature, SignatureError};
use openline_domain::{Channel, PhoneNumber, ProviderKind};
use openline_store::contacts::{self, PhoneChange};
use openline_store::conversations;
use openline_store::messages::{self, InboundOutcome, NewInbound, NewSystemMessage, StatusLookahead, StatusReport};
use openline_store::provider_events;
use openline_store::senders::Sender;
use openline_store::{Conn, StoreError};
use serde::Deserialize;
use utoipa::IntoParams;

#[derive(Debug, Deserialize, IntoParams)]
pub struct VerifyQuery {
    #[serde(rename = "hub.mode")]
    #[param(rename = "hub.mode")]
    pub mode: Option<String>,
    #[serde(rename = "hub.verify_token")]
    #[param(rename = "hub.verify_token")]
    pub verify_token: Option<String>,
    #[serde(rename = "hub.challenge")]
    #[param(rename = "hub.challenge")]
    pub challenge: Option<String>,
}

/// `GET /webhooks/whatsapp`: Meta's verification handshake. Answers `hub.challenge` when
/// `hub.mode=subscribe` and `hub.verify_token` matches the configured token; 403 otherwise.
#[utoipa::path(get, path = "/webhooks/whatsapp", tag = "webhooks", params(VerifyQuery),
    responses((status = 200, description = "the challenge, as text"), (status = 403, body = ErrorBody)))]
pub async fn verify_subscription(
    State(st): State<AppState>,
    axum::extract::Query(q): axum::extract::Query<VerifyQuery>,
) -> Response {
    let expected = st.config.whatsapp.verify_token.expose();
    let token_ok = !expected.is_empty()
        && q.verify_token
            .as_deref()
            .is_some_and(|t| bool::from(subtle::ConstantTimeEq::ct_eq(t.as_bytes(), expected.as_bytes())));
    match (q.mode.as_deref(), token_ok, q.challenge) {
        (Some("subscribe"), true, Some(challenge)) => (StatusCode::OK, challenge).into_response(),
        _ => AppError::forbidden("The verify token does not match openline's configured verify token.").into_response(),
    }
}

/// `POST /webhooks/whatsapp`: receives Cloud API webhooks. 200 only after the events are committed.
#[utoipa::path(post, path = "/webhooks/whatsapp", tag = "webhooks",
    params(("X-Hub-Signature-256" = String, Header, description = "sha256=HMAC-SHA256(app secret, raw body), hex")),
    request_body(content = Object, description = "A Cloud API webhook body", content_type = "application/json"),
    responses((status = 200, description = "committed"), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 400, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn receive_webhook(
    State(st): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, AppError> {
    let secret = st.config.whatsapp.app_secret.expose();
    if secret.is_empty() {
        // With an empty key anyone could forge a signature: refuse everything until it is set.
        return Err(AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "webhooks_not_configured",
            "openline has no WhatsApp app secret configured (OPENLINE_WHATSAPP_APP_SECRET), so it cannot verify webhooks.",
        ));
    }
    let header = headers.get("x-hub-signature-256").and_then(|v| v.to_str().ok());
    if let Err(e) = verify_meta_signature(secret.as_bytes(), &body, header) {
        st.metrics.webhook("rejected");
        return Err(match e {
            SignatureError::Missing => AppError::new(
                StatusCode::UNAUTHORIZED,
                "signature_missing",
                "The X-Hub-Signature-256 header is missing; webhooks must be signed with the app secret.",
            ),
            _ => AppError::new(
                StatusCode::FORBIDDEN,
                "signature_invalid",
                "The X-Hub-Signature-256 signature does not match the body; check the app secret.",
            ),
        });
    }
    let events = parse_webhook(&body).map_err(|e| AppError::bad_request("invalid_webhook", e.to_string()))?;

    // Resolve the business numbers first (cached), so the transaction does only writes.
    let mut routed = Vec::with_capacity(events.len());
    for ev in events {
        let sender = match &ev {
            CloudEvent::Message(m) => st.sender_for(ProviderKind::CloudApi, &m.phone_number_id).await?,
            // A marketing preference is recorded for the organization owning the number.
            CloudEvent::Other(o) if o.field == "user_preferences" => match o.phone_number_id.as_deref() {
                Some(id) => st.sender_for(ProviderKind::CloudApi, id).await?,
                None => None,
            },
            _ => None,
        };
        routed.push((ev, sender));
    }
    // Stored with the other webhooks arriving at the same time, in one transaction (see `batch`).
    let (metrics, effects) = st.ingest.submit(routed, st.now()).await?;
    for m in metrics {
        st.metrics.webhook(m);
    }
    effects.publish(&st);
    Ok(StatusCode::OK)
}

/// Applies one event inside the webhook's transaction; returns its metric label. A status of a
/// batch comes with what the batch looked up at once for its statuses (see
/// `messages::StatusLookahead`).
pub(super) fn apply(
    c: &mut dyn Conn,
    ev: &CloudEvent,
    sender: Option<&Sender>,
    now: i64,
    fx: &mut Effects,
    ahead: Option<&mut StatusLookahead>,
) -> Result<&'static str, StoreError> {
    match ev {
        CloudEvent::Message(m) => match sender {
            Some(s) => store_message(c, m, s, now, fx),
            None => {
                // A number openline does not know: keep the event rather than lose it.
                tracing::warn!(phone_number_id = %m.phone_number_id, "webhook for an unknown business number kept as a provider event");
                provider_events::insert(
                    c,
                    "cloud_api",
                    "messages_unrouted",
                    Some(&m.waba_id),
                    Some(&m.phone_number_id),
                    &m.raw,
                    now,
                )?;
                Ok("unrouted")
            }
        },
        CloudEvent::Status(s) => store_status(c, s, now, fx, ahead),
        CloudEvent::Other(o) => {
            provider_events::insert(
                c,
                "cloud_api",
                &o.field,
                o.waba_id.as_deref(),
                o.phone_number_id.as_deref(),
                &o.raw,
                now,
            )?;
            if o.field == "message_template_status_update" {
                template_status(c, o.waba_id.as_deref(), &o.raw, now, fx)?;
            }
            if o.field == "user_preferences" {
                // Kept whole above; the stop or resume goes to the contact's consent ledger.
                crate::marketing::apply_user_preferences(c, o, sender, now, fx)?;
            }
            Ok("other")
        }
    }
}

fn store_message(
    c: &mut dyn Conn,
    m: &InboundMessage,
    sender: &Sender,
    now: i64,
    fx: &mut Effects,
) -> Result<&'static str, StoreError> {
    let Some((phone, wa_user_id)) = identity(m) else {
        // No way to tell who wrote: keep it whole instead of guessing a contact.
        provider_events::insert(
            c,
            "cloud_api",
            "messages_unattributed",
            Some(&m.waba_id),
            Some(&m.phone_number_id),
            &m.raw,
            now,
        )?;
        return Ok("unattributed");
    };
    let media = media_reference(m);
    let (stored_body, verdict) = super::dlp_inbound(c, &sender.org_id, m.body.as_deref())?;
    let new = new_inbound(
        m,
        sender,
        phone.as_ref(),
        wa_user_id.as_deref(),
        stored_body.as_deref(),
        media.as_ref(),
        now,
    );
    // A `system` message is WhatsApp speaking about the contact, not the contact writing: it must not
    // open or extend the 24-hour window (Meta's own window ignores it), nor count as a consent answer.
    let outcome = if is_system(m) {
        messages::insert_system_inbound(c, &new)?
    } else {
        messages::insert_inbound(c, &new)?
    };
    after_insert(c, m, sender, (outcome, Known::default()), verdict.as_ref(), now, fx)
}

/// WhatsApp speaking about the contact (a changed number, a changed identity), not the contact writing.
pub(super) fn is_system(m: &InboundMessage) -> bool {
    m.provider_type() == "system"
}

/// Who wrote: their number and WhatsApp user id (the user id stands in when the number is
/// withheld); `None` when neither is known.
pub(super) fn identity(m: &InboundMessage) -> Option<(Option<PhoneNumber>, Option<String>)> {
    let phone = m
        .wa_id
        .as_deref()
        .or(Some(m.from.as_str()))
        .and_then(|d| PhoneNumber::from_wa_id(d).ok());
    let wa_user_id = m
        .user_id
        .clone()
        .or_else(|| phone.is_none().then(|| m.from.clone()))
        .filter(|u| !u.is_empty());
    (phone.is_some() || wa_user_id.is_some()).then_some((phone, wa_user_id))
}

/// The media reference stored with a media message.
pub(super) fn media_reference(m: &InboundMessage) -> Option<serde_json::Value> {
    m.media.as_ref().map(|md| {
        serde_json::json!({
            "id": md.id, "mime_type": md.mime_type, "sha256": md.sha256, "caption": md.caption,
            "filename": md.filename, "voice": md.voice, "animated": md.animated,
        })
    })
}

/// The message as the store takes it, `stored_body` being the text after DLP.
pub(super) fn new_inbound<'a>(
    m: &'a InboundMessage,
    sender: &'a Sender,
    phone: Option<&'a PhoneNumber>,
    wa_user_id: Option<&'a str>,
    stored_body: Option<&'a str>,
    media: Option<&'a serde_json::Value>,
    now: i64,
) -> NewInbound<'a> {
    NewInbound {
        org_id: &sender.org_id,
        sender_id: &sender.id,
        channel: Channel::Whatsapp,
        provider: ProviderKind::CloudApi,
        from_phone: phone.map(PhoneNumber::as_e164),
        wa_user_id,
        profile_name: m.profile_name.as_deref(),
        provider_message_id: &m.provider_message_id,
        kind: m.kind,
        body: stored_body,
        media,
        reply_to: m.context_message_id.as_deref(),
        raw: Some(&m.raw),
        sent_at: if m.timestamp_ms > 0 { m.timestamp_ms } else { now },
        now,
    }
}

/// What follows storing a message (or recognising a duplicate): its file queued for fetching, its
/// DLP verdict, consent and held messages (`known`: what the caller knows of the contact), the live
/// event, and for a `system` message its notice.
pub(super) fn after_insert(
    c: &mut dyn Conn,
    m: &InboundMessage,
    sender: &Sender,
    (outcome, known): (InboundOutcome, Known),
    verdict: Option<&openline_domain::dlp::DlpVerdict>,
    now: i64,
    fx: &mut Effects,
) -> Result<&'static str, StoreError> {
    Ok(match outcome {
        InboundOutcome::Stored(msg) => {
            if let Some(md) = &m.media {
                // The file is fetched by the media worker; its row is written with the message, so the
                // webhook is acknowledged only once fetching it is recorded as work to do.
                openline_store::media::insert_pending(
                    c,
                    &openline_store::media::NewPending {
                        org_id: &sender.org_id,
                        message_id: &msg.id,
                        provider: ProviderKind::CloudApi.as_str(),
                        provider_media_id: &md.id,
                        content_type: md.mime_type.as_deref(),
                        filename: md.filename.as_deref(),
                        expected_sha256: md
                            .sha256
                            .as_deref()
                            .and_then(openline_channels::cloud_api::media::normalize_sha256)
                            .as_deref(),
                        now,
                    },
                )?;
                fx.wake_media = true;
            }
            let conversation_id = msg.conversation_id.clone();
            let stored = super::StoredInbound {
                message: *msg,
                channel: Channel::Whatsapp,
                verdict,
                original: m.body.as_deref(),
                reply_payload: m.reply_payload.as_deref(),
                sender_id: &sender.id,
                known,
            };
            if is_system(m) {
                super::after_stored_system_inbound(c, stored, now, fx)?;
                system_notice(c, m, &sender.org_id, &conversation_id, now, fx)?;
            } else {
                super::after_stored_inbound(c, stored, now, fx)?;
            }
            "stored"
        }
        InboundOutcome::Duplicate => "duplicate",
    })
}

/// What WhatsApp's `system` messages mean for the agents: a contact who moved to a new number is
/// moved with it (same contact, same threads; refused, and said so, when another contact already has
/// that number), and a contact whose identity changed is flagged; each with a notice in the thread
/// and a journal entry, in the webhook's transaction. Other system types stay as stored above.
fn system_notice(
    c: &mut dyn Conn,
    m: &InboundMessage,
    org_id: &str,
    conversation_id: &str,
    now: i64,
    fx: &mut Effects,
) -> Result<(), StoreError> {
    let contact_id = conversations::contact_of(c, conversation_id)?;
    let contact = contacts::get_any(c, &contact_id)?;
    let who = contact
        .name
        .clone()
        .or_else(|| contact.whatsapp_name.clone())
        .or_else(|| contact.phone.clone())
        .unwrap_or_else(|| "The contact".to_owned());
    let old = contact.phone.clone().unwrap_or_else(|| "a withheld number".to_owned());
    let body = match m.system_type() {
        Some("user_changed_number") => {
            let Some(new) = m.changed_to_wa_id().and_then(|d| PhoneNumber::from_wa_id(d).ok()) else {
                return Ok(());
            };
            let new = new.as_e164();
            match contacts::change_phone(c, &contact_id, new, now)? {
                PhoneChange::Changed => {
                    tracing::info!(contact_id = %contact_id, "contact changed their WhatsApp number");
                    // Open pages and API clients showing the old number hear of it live (outbound
                    // webhook subscribers get the journaled `contact.number_changed`).
                    let moved = contacts::get_any(c, &contact_id)?;
                    fx.other.push((
                        "contact.updated",
                        org_id.to_owned(),
                        serde_json::to_value(&moved).unwrap_or_default(),
                    ));
                    format!(
                        "{who} changed their WhatsApp number from {old} to {new}. Messages now go to the new number."
                    )
                }
                PhoneChange::Taken { other_contact_id } => {
                    tracing::warn!(contact_id = %contact_id, other_contact_id = %other_contact_id,
                        "number change not applied: another contact has the new number");
                    format!(
                        "{who} changed their WhatsApp number from {old} to {new}, but another contact already has {new}. \
                         The two contacts were not merged: this contact keeps {old}. Check which contact is the right one."
                    )
                }
                PhoneChange::Unchanged => return Ok(()),
            }
        }
        Some("customer_identity_changed") => {
            contacts::record_identity_change(c, &contact_id, conversation_id, now)?;
            format!(
                "{who}'s WhatsApp identity changed (new phone or reinstall). Confirm who you are talking to before sharing anything sensitive."
            )
        }
        _ => return Ok(()),
    };
    let notice = messages::insert_notice(
        c,
        &NewSystemMessage {
            org_id,
            conversation_id,
            body: &body,
            now,
        },
    )?;
    fx.messages.push(("message.created", notice));
    Ok(())
}

fn store_status(
    c: &mut dyn Conn,
    s: &StatusUpdate,
    now: i64,
    fx: &mut Effects,
    ahead: Option<&mut StatusLookahead>,
) -> Result<&'static str, StoreError> {
    let Some(status) = s.status else {
        // `deleted`, `warning` and future statuses: kept whole, nothing moves.
        provider_events::insert(
            c,
            "cloud_api",
            "status_other",
            Some(&s.waba_id),
            Some(&s.phone_number_id),
            &s.raw,
            now,
        )?;
        return Ok("other");
    };
    let err = s.errors.first();
    super::record_status(
        c,
        &StatusReport {
            provider: ProviderKind::CloudApi,
            provider_message_id: &s.provider_message_id,
            status,
            error_code: err.and_then(|e| e.code),
            error_title: err.map(|e| e.title.as_str()),
            at: if s.timestamp_ms > 0 { s.timestamp_ms } else { now },
            raw: Some(&s.raw),
            now,
        },
        // openline tags each send with its message id (see the dispatcher); Meta echoes it.
        s.raw.get("biz_opaque_callback_data").and_then(|v| v.as_str()),
        now,
        fx,
        ahead,
    )
}

/// Meta's `message_template_status_update`: the template's approval status changes (kept whole as a
/// provider event too, above).
fn template_status(
    c: &mut dyn Conn,
    waba_id: Option<&str>,
    value: &serde_json::Value,
    now: i64,
    fx: &mut Effects,
) -> Result<(), StoreError> {
    use openline_domain::templates::TemplateStatus;
    let text = |k: &str| {
        value.get(k).and_then(|v| {
            v.as_str()
                .map(str::to_owned)
                .or_else(|| v.as_i64().map(|n| n.to_string()))
        })
    };
    let status = match text("event").unwrap_or_default().to_ascii_uppercase().as_str() {
        "APPROVED" | "REINSTATED" => TemplateStatus::Approved,
        "REJECTED" => TemplateStatus::Rejected {
            reason: text("reason").unwrap_or_else(|| "NONE".into()),
        },
        "PAUSED" | "FLAGGED" => TemplateStatus::Paused,
        "DISABLED" | "PENDING_DELETION" | "DELETED" => TemplateStatus::Disabled,
        "PENDING" => TemplateStatus::Pending,
        _ => return Ok(()),
    };
    let changed = openline_store::templates::set_status_from_provider(
        c,
        text("message_template_id").as_deref(),
        waba_id,
        text("message_template_name").as_deref(),
        text("message_template_language").as_deref(),
        &status,
        now,
    )?;
    for t in changed {
        let data = serde_json::to_value(&t).unwrap_or_default();
        fx.other.push(("template.status", t.org_id.clone(), data));
    }
    Ok(())
}
