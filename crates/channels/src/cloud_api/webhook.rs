//! Cloud API webhooks: a verified body turned into the events openline acts on.
//!
//! A body is `{"object", "entry": [{"id": waba, "changes": [{"field", "value"}]}]}`. Each change
//! becomes one or more [`CloudEvent`]s: a `messages` change yields one `Message` per inbound message
//! and one `Status` per delivery status; everything else (template, quality and account updates,
//! calls, business-app echoes, marketing preferences, errors-only values, fields Meta adds next) is
//! an `Other` carrying the raw value, so the server can archive what it does not act on.
//!
//! The rule that shapes this module: **nothing is silently dropped and nothing panics**. Every change
//! produces at least one event, malformed parts degrade to `Other` rather than failing the whole
//! body (which would make Meta redeliver it forever), and the only errors are a body that is not a
//! JSON object at all. Verify the signature (see [`crate::signature`]) before calling this.

use super::inbound::{map_message, ChangeOrigin};
// Re-exported here too: a webhook is where these come from.
pub use super::inbound::{InboundMessage, MediaRef};
use super::json::{array, non_empty_text, object, seconds_as_millis, text};
use openline_domain::{DeliveryStatus, Millis};
use serde_json::Value;

/// One thing that happened, as told by a webhook.
#[derive(Debug, Clone, PartialEq)]
#[expect(
    clippy::large_enum_variant,
    reason = "a webhook yields a handful of events that are consumed at once; boxing would only add noise to every match"
)]
pub enum CloudEvent {
    /// A contact wrote to us.
    Message(InboundMessage),
    /// One of our messages moved on (sent, delivered, read, failed, …).
    Status(StatusUpdate),
    /// Anything else, kept raw for the archive.
    Other(OtherEvent),
}

/// A delivery status for a message we sent.
#[derive(Debug, Clone, PartialEq)]
pub struct StatusUpdate {
    /// The WhatsApp Business Account (`entry[].id`).
    pub waba_id: String,
    /// Our business number that sent the message.
    pub phone_number_id: String,
    /// The id the provider gave the message when it accepted it (`wamid.…`).
    pub provider_message_id: String,
    /// The status in openline's terms: `sent`, `delivered`, `read` (and `played`, which only follows
    /// `read` for voice notes, as `read`), `failed`. `None` for statuses that do not move delivery
    /// forward (`deleted`, `warning`, anything new); `status_text` still says what it was.
    pub status: Option<DeliveryStatus>,
    /// The status exactly as Meta spelled it.
    pub status_text: String,
    /// Who the message was for (wa_id digits, or a group id for group messages).
    pub recipient_id: Option<String>,
    /// When the status changed, by Meta's clock, in epoch milliseconds; 0 if unreadable.
    pub timestamp_ms: Millis,
    /// Why it failed (usually one entry, for `failed`).
    pub errors: Vec<ProviderErrorDetail>,
    /// The status object exactly as received.
    pub raw: Value,
}

/// One error in a status or value's `errors[]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderErrorDetail {
    /// Meta's error code (e.g. 131047, 131026), to look up with
    /// `openline_domain::provider_errors::explain_cloud_api_error`.
    pub code: Option<i64>,
    /// Short title (e.g. "Re-engagement message").
    pub title: String,
    /// Meta's message (often the same as the title).
    pub message: String,
    /// The longer explanation from `error_data.details`.
    pub details: Option<String>,
}

/// A change openline does not map to a message or a status.
#[derive(Debug, Clone, PartialEq)]
pub struct OtherEvent {
    /// The WhatsApp Business Account, when the entry named one.
    pub waba_id: Option<String>,
    /// The webhook field (`message_template_status_update`, `account_update`, `calls`, …); for
    /// unmappable parts of a `messages` change, `messages`. Empty if the body named none.
    pub field: String,
    /// Our business number, when the change's metadata named one.
    pub phone_number_id: Option<String>,
    /// The change's `value` (or the unmappable item, or the whole body if it had no entries).
    pub raw: Value,
}

/// Why a webhook body could not be read at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookParseError {
    /// The body is not valid JSON.
    #[error("the webhook body is not JSON: {0}")]
    NotJson(String),
    /// The body is JSON but not an object.
    #[error("the webhook body is not a JSON object")]
    NotObject,
}

/// Parses a Cloud API webhook body into events, in the order they appear.
///
/// Errors only when the body is not a JSON object; every change of a well-formed body yields at
/// least one event.
pub fn parse_webhook(raw_body: &[u8]) -> Result<Vec<CloudEvent>, WebhookParseError> {
    let body: Value = serde_json::from_slice(raw_body).map_err(|e| WebhookParseError::NotJson(e.to_string()))?;
    if !body.is_object() {
        return Err(WebhookParseError::NotObject);
    }
    let entries = array(&body, "entry");
    if entries.is_empty() {
        return Ok(vec![other(None, "", None, body.clone())]);
    }
    let mut events = Vec::new();
    for entry in entries {
        let waba_id = text(entry, "id");
        let changes = array(entry, "changes");
        if changes.is_empty() {
            events.push(other(waba_id.clone(), "", None, entry.clone()));
        }
        for change in changes {
            parse_change(waba_id.as_deref(), change, &mut events);
        }
    }
    Ok(events)
}

fn parse_change(waba_id: Option<&str>, change: &Value, events: &mut Vec<CloudEvent>) {
    let field = text(change, "field").unwrap_or_default();
    let value = change.get("value").unwrap_or(&Value::Null);
    let metadata = object(value, "metadata").unwrap_or(&Value::Null);
    let origin = ChangeOrigin {
        waba_id: waba_id.unwrap_or_default().to_owned(),
        phone_number_id: text(metadata, "phone_number_id").unwrap_or_default(),
        display_phone_number: text(metadata, "display_phone_number").unwrap_or_default(),
    };
    let phone_number_id = non_empty_text(metadata, "phone_number_id");
    let before = events.len();

    // Only the `messages` field carries messages and delivery statuses. Other fields reuse the same
    // key names for other things (`calls` has call `statuses`, echoes have `message_echoes`), so
    // they stay raw rather than being mistaken for ours.
    if field == "messages" {
        let contacts = array(value, "contacts");
        for message in array(value, "messages") {
            match map_message(&origin, contacts, message) {
                Some(m) => events.push(CloudEvent::Message(m)),
                None => events.push(other(
                    waba_id.map(str::to_owned),
                    &field,
                    phone_number_id.clone(),
                    message.clone(),
                )),
            }
        }
        for status in array(value, "statuses") {
            match map_status(&origin, status) {
                Some(s) => events.push(CloudEvent::Status(s)),
                None => events.push(other(
                    waba_id.map(str::to_owned),
                    &field,
                    phone_number_id.clone(),
                    status.clone(),
                )),
            }
        }
        // Value-level errors (Meta could not deliver a webhook payload to us properly) are reported
        // on their own, even beside the message they concern, so they reach the archive.
        if !array(value, "errors").is_empty() {
            events.push(other(
                waba_id.map(str::to_owned),
                &field,
                phone_number_id.clone(),
                value.clone(),
            ));
        }
    }
    if events.len() == before {
        events.push(other(
            waba_id.map(str::to_owned),
            &field,
            phone_number_id,
            value.clone(),
        ));
    }
}

/// Maps one `statuses[]` entry; `None` when it has no message id to attach to.
fn map_status(origin: &ChangeOrigin, status: &Value) -> Option<StatusUpdate> {
    let provider_message_id = non_empty_text(status, "id")?;
    let status_text = text(status, "status").unwrap_or_default();
    Some(StatusUpdate {
        waba_id: origin.waba_id.clone(),
        phone_number_id: origin.phone_number_id.clone(),
        provider_message_id,
        status: delivery_status(&status_text),
        status_text,
        recipient_id: non_empty_text(status, "recipient_id"),
        timestamp_ms: seconds_as_millis(status, "timestamp").unwrap_or(0),
        errors: array(status, "errors").iter().map(error_detail).collect(),
        raw: status.clone(),
    })
}

/// Meta's status words in openline's terms. `played` (a voice note was listened to) can only follow
/// `read`, so it is read; `deleted`, `warning` and unknown words move nothing.
fn delivery_status(status_text: &str) -> Option<DeliveryStatus> {
    match status_text.to_ascii_lowercase().as_str() {
        "sent" => Some(DeliveryStatus::Sent),
        "delivered" => Some(DeliveryStatus::Delivered),
        "read" | "played" => Some(DeliveryStatus::Read),
        "failed" => Some(DeliveryStatus::Failed),
        _ => None,
    }
}

fn error_detail(error: &Value) -> ProviderErrorDetail {
    let code = error
        .get("code")
        .and_then(|c| c.as_i64().or_else(|| c.as_str().and_then(|s| s.trim().parse().ok())));
    let message = text(error, "message").unwrap_or_default();
    ProviderErrorDetail {
        code,
        title: text(error, "title").unwrap_or_else(|| message.clone()),
        message,
        details: object(error, "error_data").and_then(|d| non_empty_text(d, "details")),
    }
}

fn other(waba_id: Option<String>, field: &str, phone_number_id: Option<String>, raw: Value) -> CloudEvent {
    CloudEvent::Other(OtherEvent {
        waba_id,
        field: field.to_owned(),
        phone_number_id,
        raw,
    })
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_body_that_is_not_a_json_object_is_the_only_error() {
        assert!(matches!(parse_webhook(b"not json"), Err(WebhookParseError::NotJson(_))));
        assert_eq!(parse_webhook(b"[1,2]"), Err(WebhookParseError::NotObject));
        assert!(matches!(parse_webhook(b"{}").as_deref(), Ok([CloudEvent::Other(_)])));
    }

    #[test]
    fn a_message_without_an_id_is_kept_as_other_rather_than_dropped() {
        let body = br#"{"entry":[{"id":"1","changes":[{"field":"messages","value":{"messages":[{"type":"text"}]}}]}]}"#;
        let events = parse_webhook(body).unwrap();
        assert!(matches!(events.as_slice(), [CloudEvent::Other(o)] if o.field == "messages"));
    }

    #[test]
    fn call_statuses_are_not_mistaken_for_message_statuses() {
        let body = br#"{"entry":[{"id":"1","changes":[{"field":"calls","value":{"statuses":[{"id":"wacid.1","status":"RINGING","type":"call"}]}}]}]}"#;
        assert!(matches!(parse_webhook(body).unwrap().as_slice(), [CloudEvent::Other(o)] if o.field == "calls"));
    }

    #[test]
    fn played_counts_as_read_and_deleted_moves_nothing() {
        assert_eq!(delivery_status("played"), Some(DeliveryStatus::Read));
        assert_eq!(delivery_status("deleted"), None);
        assert_eq!(delivery_status("FAILED"), Some(DeliveryStatus::Failed));
    }
}
