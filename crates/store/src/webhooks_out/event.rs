//! The outbound webhook payload: one documented schema for every event, built from the archived
//! journal entry (what was true then) plus the facts that never change (a thread's channel and
//! contact).

use super::event_type_for;
use crate::journal::JournalEntry;
use crate::sql::Conn;
use crate::{params, StoreError};
use serde::Serialize;
use utoipa::ToSchema;

/// One outbound webhook event: what `POST`s to a subscribed URL carry, one event per request.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct WebhookEvent {
    /// `org_id:seq`: stable across retries; receivers dedupe by it.
    pub id: String,
    /// `message.received`, `message.sent`, `message.status`, `consent.changed`, `participant.changed`
    /// or `contact.number_changed`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// When it happened, RFC 3339 UTC.
    pub occurred_at: String,
    /// When it happened, epoch milliseconds.
    pub occurred_at_ms: i64,
    pub organization: EventOrganization,
    /// The thread it happened in (absent for consent events without a message).
    pub conversation: Option<EventConversation>,
    /// Who takes part: the contact, and the users in the thread at that moment (as archived).
    pub participants: Vec<EventParticipant>,
    pub message: Option<EventMessage>,
    pub consent: Option<EventConsent>,
    /// The archived journal entry's own payload, for participant changes and anything this schema
    /// does not name.
    #[schema(value_type = Option<Object>)]
    pub detail: Option<serde_json::Value>,
    /// Where this event is in the tamper-evident archive.
    pub references: EventReferences,
}

#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct EventOrganization {
    pub id: String,
    pub name: String,
}

#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct EventConversation {
    pub id: String,
    /// `whatsapp` or `sms`.
    pub channel: String,
}

#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct EventParticipant {
    /// `contact` (the external client) or `user` (an employee).
    pub role: String,
    pub id: String,
    pub name: Option<String>,
    /// The contact's phone number (E.164); users' e-mail addresses.
    pub address: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct EventMessage {
    pub id: String,
    /// `in`, `out` or `system`.
    pub direction: Option<String>,
    /// text, template, image, …
    pub kind: Option<String>,
    /// The text as archived (for outbound messages, what was sent after any DLP redaction).
    pub text: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub template: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub media: Option<serde_json::Value>,
    /// The delivery status at this event: queued, accepted, sent, delivered, read, failed, received, …
    pub status: Option<String>,
    pub author_user_id: Option<String>,
    pub provider_message_id: Option<String>,
    pub error_code: Option<i64>,
}

#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct EventConsent {
    pub id: String,
    pub contact_id: String,
    /// requested, accepted, rejected, opted_out, opted_in, undeliverable.
    pub kind: String,
    pub actor_user_id: Option<String>,
    pub message_id: Option<String>,
    #[schema(value_type = Object)]
    pub evidence: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, ToSchema, PartialEq)]
pub struct EventReferences {
    /// The journal entry's kind (`message.created`, `consent.accepted`, …).
    pub journal_kind: String,
    pub journal_seq: i64,
    pub journal_hash: String,
    pub journal_prev_hash: String,
}

fn str_field(v: &serde_json::Value, k: &str) -> Option<String> {
    v.get(k).and_then(|x| x.as_str()).map(str::to_owned)
}

/// Builds the event for a journal entry. Message text, template and participants come from the
/// archived entry (what was true then); the thread's channel and contact, which never change, are
/// looked up.
pub fn build_event(c: &mut dyn Conn, entry: &JournalEntry) -> Result<WebhookEvent, StoreError> {
    let event_type = event_type_for(&entry.kind).unwrap_or("journal.entry");
    let org_name = c
        .query_opt("select name from organizations where id = ?", params![&entry.org_id])?
        .map(|r| r.string(0))
        .transpose()?
        .unwrap_or_default();
    let p = &entry.payload;
    let mut message = None;
    let mut consent = None;
    let mut conversation_id: Option<String> = None;
    let mut contact_id: Option<String> = None;
    let mut user_ids: Option<Vec<String>> = None;
    let mut detail = None;
    if let Some(m) = p.get("message").filter(|m| m.is_object()) {
        // message.received / message.created / notice: the full message as archived.
        conversation_id = str_field(m, "conversation_id");
        user_ids = p
            .get("participants")
            .and_then(|v| serde_json::from_value(v.clone()).ok());
        message = Some(EventMessage {
            id: str_field(m, "id")
                .or_else(|| entry.subject_id.clone())
                .unwrap_or_default(),
            direction: str_field(m, "direction"),
            kind: str_field(m, "kind"),
            text: str_field(m, "body"),
            template: m.get("template").filter(|v| !v.is_null()).cloned(),
            media: m.get("media").filter(|v| !v.is_null()).cloned(),
            status: str_field(m, "status"),
            author_user_id: str_field(m, "author_user_id"),
            provider_message_id: str_field(m, "provider_message_id"),
            error_code: m.get("error_code").and_then(|v| v.as_i64()),
        });
    } else if entry.kind.starts_with("message.") {
        // A status change: the archived entry names the new status; the message's fixed facts are
        // looked up.
        let id = entry.subject_id.clone().unwrap_or_default();
        let row = c.query_opt(
            "select conversation_id, direction, kind, author_user_id, provider_message_id from messages where id = ?",
            params![&id],
        )?;
        let status = str_field(p, "status_now")
            .or_else(|| str_field(p, "status"))
            .or_else(|| match entry.kind.as_str() {
                "message.failed" => Some("failed".to_owned()),
                "message.cancelled" => Some("cancelled".to_owned()),
                "message.released" => Some("queued".to_owned()),
                _ => None,
            });
        if let Some(r) = &row {
            conversation_id = Some(r.string(0)?);
        }
        message = Some(EventMessage {
            direction: row.as_ref().map(|r| r.string(1)).transpose()?,
            kind: row.as_ref().map(|r| r.string(2)).transpose()?,
            text: None,
            template: None,
            media: None,
            status,
            author_user_id: row.as_ref().map(|r| r.opt_string(3)).transpose()?.flatten(),
            provider_message_id: str_field(p, "provider_message_id").or(row
                .as_ref()
                .map(|r| r.opt_string(4))
                .transpose()?
                .flatten()),
            error_code: p.get("error_code").and_then(|v| v.as_i64()),
            id,
        });
        detail = Some(p.clone());
    } else if entry.kind.starts_with("consent.") {
        contact_id = str_field(p, "contact_id");
        let message_id = str_field(p, "message_id");
        if let Some(mid) = &message_id {
            conversation_id = c
                .query_opt("select conversation_id from messages where id = ?", params![mid])?
                .map(|r| r.string(0))
                .transpose()?;
        }
        consent = Some(EventConsent {
            id: str_field(p, "id")
                .or_else(|| entry.subject_id.clone())
                .unwrap_or_default(),
            contact_id: contact_id.clone().unwrap_or_default(),
            kind: str_field(p, "kind").unwrap_or_else(|| entry.kind.trim_start_matches("consent.").to_owned()),
            actor_user_id: str_field(p, "actor_user_id"),
            message_id,
            evidence: p.get("evidence").cloned().unwrap_or(serde_json::Value::Null),
        });
    } else {
        // Participant and contact changes (and anything else): the archived payload as is, and the
        // contact it names (as it is now) among the participants.
        conversation_id = str_field(p, "conversation_id");
        contact_id = str_field(p, "contact_id");
        detail = Some(p.clone());
    }

    let mut conversation = None;
    if let Some(cid) = &conversation_id {
        if let Some(r) = c.query_opt(
            "select channel, contact_id from conversations where id = ?",
            params![cid],
        )? {
            conversation = Some(EventConversation {
                id: cid.clone(),
                channel: r.string(0)?,
            });
            contact_id = contact_id.or(Some(r.string(1)?));
            if user_ids.is_none() {
                // Not archived with the entry: the thread's participants now.
                user_ids = Some(
                    c.query(
                        "select user_id from participants where conversation_id = ? and left_at is null
                         order by joined_at, user_id",
                        params![cid],
                    )?
                    .iter()
                    .map(|r| r.string(0))
                    .collect::<Result<_, _>>()?,
                );
            }
        }
    }
    let mut participants = Vec::new();
    if let Some(cid) = &contact_id {
        if let Some(r) = c.query_opt(
            "select coalesce(name, whatsapp_name), phone from contacts where id = ?",
            params![cid],
        )? {
            participants.push(EventParticipant {
                role: "contact".into(),
                id: cid.clone(),
                name: r.opt_string(0)?,
                address: r.opt_string(1)?,
            });
        }
    }
    for uid in user_ids.unwrap_or_default() {
        let r = c.query_opt("select name, email from users where id = ?", params![&uid])?;
        participants.push(EventParticipant {
            role: "user".into(),
            name: r.as_ref().map(|r| r.string(0)).transpose()?,
            address: r.as_ref().map(|r| r.string(1)).transpose()?,
            id: uid,
        });
    }
    Ok(WebhookEvent {
        id: format!("{}:{}", entry.org_id, entry.seq),
        event_type: event_type.to_owned(),
        occurred_at: crate::export::rfc3339(entry.at),
        occurred_at_ms: entry.at,
        organization: EventOrganization {
            id: entry.org_id.clone(),
            name: org_name,
        },
        conversation,
        participants,
        message,
        consent,
        detail,
        references: EventReferences {
            journal_kind: entry.kind.clone(),
            journal_seq: entry.seq,
            journal_hash: entry.hash.clone(),
            journal_prev_hash: entry.prev_hash.clone(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_utc_with_milliseconds() {
        assert_eq!(crate::export::rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(crate::export::rfc3339(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(crate::export::rfc3339(1_795_000_000_000), "2026-11-18T11:06:40.000Z");
    }

    #[test]
    fn journal_kinds_map_to_the_documented_event_types() {
        assert_eq!(event_type_for("message.created"), Some("message.sent"));
        assert_eq!(event_type_for("message.status"), Some("message.status"));
        assert_eq!(event_type_for("consent.accepted"), Some("consent.changed"));
        assert_eq!(event_type_for("participant.joined"), Some("participant.changed"));
        assert_eq!(event_type_for("conversation.transferred"), Some("participant.changed"));
        assert_eq!(event_type_for("contact.number_changed"), Some("contact.number_changed"));
        assert_eq!(event_type_for("contact.identity_changed"), None);
        assert_eq!(event_type_for("user.created"), None);
        assert_eq!(event_type_for("webhook_subscription.created"), None);
    }
}
