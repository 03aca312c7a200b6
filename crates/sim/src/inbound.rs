//! Phones writing to the business: a text, a tapped button, an image. Each becomes a signed
//! webhook to openline and opens (or extends) the 24-hour window for that business number.
//!
//! These are the use cases behind the phone API, and handy in-process for tests.

use crate::error::SimError;
use crate::payloads;
use crate::personas::PersonaBehaviour;
use crate::state::{ButtonKind, ConversationEntry, Direction, MessageChannel, StoredMedia};
use crate::{ids, SimBusinessNumber, Simulator};
use base64::Engine;
use openline_domain::PhoneNumber;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::time::Duration;
use tokio::sync::oneshot;

/// How long a phone API call waits for the first webhook attempt (it may queue behind a retrying
/// one for the same phone).
const FIRST_ATTEMPT_WAIT: Duration = Duration::from_secs(15);
/// The largest image a phone may send (WhatsApp's limit is 5 MB).
pub const MAX_IMAGE_BYTES: usize = 5 * 1024 * 1024;

/// What became of something a phone sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboundOutcome {
    /// The `wamid.` id of the phone's message.
    pub id: String,
    /// The HTTP status openline answered the first delivery attempt with; `None` when unreachable
    /// (or not known in time). Failed deliveries keep being retried in the background.
    pub webhook_status: Option<u16>,
}

impl Simulator {
    /// The phone sends a text to a business number (its display digits or `phone_number_id`).
    pub async fn phone_sends_text(
        &self,
        phone: &PhoneNumber,
        to: &str,
        text: &str,
    ) -> Result<InboundOutcome, SimError> {
        if text.trim().is_empty() || text.chars().count() > 4096 {
            return Err(SimError::bad_request(
                "invalid_text",
                "The text must have 1 to 4096 characters.",
            ));
        }
        let business = self.business_for_phone(phone, to)?;
        let message = json!({ "type": "text", "text": { "body": text } });
        let entry = self.phone_entry(&business, "text", Some(text.to_string()), None, None);
        let (id, rx) = self.send_inbound(&business, phone, entry, message);
        Ok(wait_first_attempt(id, rx).await)
    }

    /// The phone taps a button (by label or id) of a business message it received.
    pub async fn phone_taps_button(
        &self,
        phone: &PhoneNumber,
        message_id: &str,
        button: &str,
    ) -> Result<InboundOutcome, SimError> {
        let (id, rx) = self.tap_button(phone, message_id, button)?;
        Ok(wait_first_attempt(id, rx).await)
    }

    /// The phone sends an image; it is stored as media openline can download.
    pub async fn phone_sends_image(
        &self,
        phone: &PhoneNumber,
        to: &str,
        mime_type: &str,
        bytes: Vec<u8>,
        caption: Option<String>,
    ) -> Result<InboundOutcome, SimError> {
        if !matches!(mime_type, "image/jpeg" | "image/png") {
            return Err(SimError::bad_request(
                "unsupported_media_type",
                "Images must be image/jpeg or image/png.",
            ));
        }
        if bytes.is_empty() || bytes.len() > MAX_IMAGE_BYTES {
            return Err(SimError::bad_request(
                "invalid_image",
                "The image must have 1 byte to 5 MB.",
            ));
        }
        let business = self.business_for_phone(phone, to)?;
        let digest = Sha256::digest(&bytes);
        let media_id = ids::media_id();
        self.state().media.insert(
            media_id.clone(),
            StoredMedia {
                mime_type: mime_type.to_string(),
                bytes,
                sha256_hex: hex::encode(digest),
            },
        );
        let mut image = json!({
            "mime_type": mime_type,
            "sha256": base64::engine::general_purpose::STANDARD.encode(digest),
            "id": media_id,
        });
        if let Some(c) = &caption {
            image["caption"] = json!(c);
        }
        let message = json!({ "type": "image", "image": image });
        let entry = self.phone_entry(&business, "image", caption, Some(media_id), None);
        let (id, rx) = self.send_inbound(&business, phone, entry, message);
        Ok(wait_first_attempt(id, rx).await)
    }

    /// Taps a button without waiting for the webhook (personas use this from their lifecycle task).
    pub(crate) fn tap_button(
        &self,
        phone: &PhoneNumber,
        message_id: &str,
        button: &str,
    ) -> Result<(String, oneshot::Receiver<Option<u16>>), SimError> {
        let original = self
            .state()
            .entry(phone, message_id)
            .filter(|e| e.direction == Direction::FromBusiness)
            .cloned()
            .ok_or_else(|| {
                SimError::not_found(
                    "unknown_message",
                    "This phone received no business message with that id.",
                )
            })?;
        let wanted = button.trim();
        let Some(chosen) = original
            .buttons
            .iter()
            .find(|b| b.id == wanted || b.text.eq_ignore_ascii_case(wanted))
        else {
            let labels: Vec<&str> = original.buttons.iter().map(|b| b.text.as_str()).collect();
            let message = if labels.is_empty() {
                "That message has no buttons to tap.".to_string()
            } else {
                format!(
                    "That message has no such button; its buttons are: {}.",
                    labels.join(", ")
                )
            };
            return Err(SimError::bad_request("unknown_button", message));
        };
        let business = self.business_for_phone(phone, &original.business_number)?;
        let context = payloads::reply_context(&business, message_id);
        let (kind, message) = match chosen.kind {
            ButtonKind::QuickReply => (
                "button",
                json!({ "context": context, "type": "button", "button": { "payload": chosen.id, "text": chosen.text } }),
            ),
            ButtonKind::Reply => (
                "interactive",
                json!({ "context": context, "type": "interactive", "interactive": {
                    "type": "button_reply", "button_reply": { "id": chosen.id, "title": chosen.text } } }),
            ),
            ButtonKind::ListRow => {
                let mut row = json!({ "id": chosen.id, "title": chosen.text });
                if let Some(d) = &chosen.description {
                    row["description"] = json!(d);
                }
                (
                    "interactive",
                    json!({ "context": context, "type": "interactive", "interactive": {
                    "type": "list_reply", "list_reply": row } }),
                )
            }
        };
        let entry = self.phone_entry(
            &business,
            kind,
            Some(chosen.text.clone()),
            None,
            Some(message_id.to_string()),
        );
        Ok(self.send_inbound(&business, phone, entry, message))
    }

    /// The business number a phone addresses, refusing phones that are not on WhatsApp.
    fn business_for_phone(&self, phone: &PhoneNumber, to: &str) -> Result<SimBusinessNumber, SimError> {
        if self.state().behaviour_of(phone) == PersonaBehaviour::NotOnWhatsapp {
            return Err(SimError::new(
                axum::http::StatusCode::CONFLICT,
                "not_on_whatsapp",
                "This phone is not on WhatsApp, so it cannot send WhatsApp messages.",
            ));
        }
        self.config.business_number(to).cloned().ok_or_else(|| {
            SimError::not_found(
                "unknown_business_number",
                "No business number here has that display number or phone_number_id.",
            )
        })
    }

    fn phone_entry(
        &self,
        business: &SimBusinessNumber,
        kind: &str,
        text: Option<String>,
        media_id: Option<String>,
        context_id: Option<String>,
    ) -> ConversationEntry {
        ConversationEntry {
            id: ids::message_id(),
            direction: Direction::FromPhone,
            business_number: business.display_phone_number.clone(),
            channel: MessageChannel::Whatsapp,
            kind: kind.to_string(),
            text,
            template: None,
            buttons: Vec::new(),
            media_id,
            context_id,
            status: "sent".into(),
            error_code: None,
            timestamp_ms: self.now(),
        }
    }

    /// Records the phone's message, opens the window and queues the webhook.
    fn send_inbound(
        &self,
        business: &SimBusinessNumber,
        phone: &PhoneNumber,
        entry: ConversationEntry,
        message: Value,
    ) -> (String, oneshot::Receiver<Option<u16>>) {
        let now = entry.timestamp_ms;
        let id = entry.id.clone();
        let kind = entry.kind.clone();
        let profile_name = {
            let mut state = self.state();
            let record = state.phone_mut(phone);
            record.last_inbound_ms.insert(business.phone_number_id.clone(), now);
            let name = record.name.clone();
            state.record(phone, entry);
            name
        };
        let body = payloads::inbound_message(business, phone, &profile_name, &id, now, message);
        tracing::info!(message_id = %id, kind = %kind, "phone message sent");
        let rx = self.webhooks.enqueue(phone.digits(), &format!("message.{kind}"), &body);
        (id, rx)
    }
}

pub(crate) async fn wait_first_attempt(id: String, rx: oneshot::Receiver<Option<u16>>) -> InboundOutcome {
    let webhook_status = match tokio::time::timeout(FIRST_ATTEMPT_WAIT, rx).await {
        Ok(Ok(status)) => status,
        _ => None,
    };
    InboundOutcome { id, webhook_status }
}
