//! Messages from contacts: one entry of a webhook's `value.messages[]` turned into an
//! [`InboundMessage`].
//!
//! Every message type Meta documents maps to a [`MessageKind`]; types openline cannot show yet
//! (orders, system notices, edits, deletions, anything new) become `Unsupported` with the provider's
//! object kept in `raw`, so nothing a contact sent is ever dropped and later code can re-read it.
//! The text an agent most needs to see goes in `body`: the text itself, a media caption, the title of
//! the button the contact tapped, the reaction emoji, a location's name or coordinates.

use super::json::{array, non_empty_text, object, scalar_text, seconds_as_millis, text};
use openline_domain::{MessageKind, Millis};
use serde_json::Value;

/// A message a contact sent to one of our business numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundMessage {
    /// The WhatsApp Business Account the number belongs to (`entry[].id`).
    pub waba_id: String,
    /// Meta's id of our business number that received the message (`metadata.phone_number_id`).
    pub phone_number_id: String,
    /// Our business number as displayed (`metadata.display_phone_number`, digits).
    pub display_phone_number: String,
    /// The sender as Meta gave it: the contact's wa_id (digits), or a business-scoped user id when
    /// the contact's number is withheld. Empty only if Meta sent neither.
    pub from: String,
    /// The contact's WhatsApp id (phone digits), from `contacts[]` or a numeric `from`.
    pub wa_id: Option<String>,
    /// The contact's business-scoped user id (BSUID, `US.…`), from `contacts[].user_id` or the
    /// message's `from_user_id`.
    pub user_id: Option<String>,
    /// The contact's WhatsApp profile name, as they set it (not verified).
    pub profile_name: Option<String>,
    /// Meta's id of this message (`wamid.…`): unique, so a redelivered webhook is recognised.
    pub provider_message_id: String,
    /// When the contact sent it, by Meta's clock, in epoch milliseconds; 0 if Meta gave no readable
    /// timestamp (the server should then use its own receipt time).
    pub timestamp_ms: Millis,
    /// What the message carries.
    pub kind: MessageKind,
    /// The text to show: text body, media caption, tapped button or list row title, reaction emoji
    /// (empty when a reaction was removed), location name or `"lat,long"`, shared contacts' names,
    /// system notice text, edited text.
    pub body: Option<String>,
    /// The attached media, for image, video, audio, document and sticker messages.
    pub media: Option<MediaRef>,
    /// The message this one refers to: the one replied to (`context.id`), reacted to
    /// (`reaction.message_id`), or edited or deleted (`original_message_id`).
    pub context_message_id: Option<String>,
    /// What a tapped button or chosen row means to us: a quick-reply button's `payload`, an
    /// interactive reply's `id`, a flow's `response_json`, a call permission `response`.
    pub reply_payload: Option<String>,
    /// The message object exactly as received, for the archive and for types mapped to
    /// `Unsupported`.
    pub raw: Value,
}

impl InboundMessage {
    /// Meta's message `type` as sent (`"text"`, `"button"`, `"edit"`, …); empty if absent. Finer than
    /// `kind`, which folds several types into one.
    pub fn provider_type(&self) -> &str {
        self.raw.get("type").and_then(Value::as_str).unwrap_or("")
    }

    /// For an edit (`type: "edit"`), the id of the message the contact edited; `body` holds the new
    /// text or caption.
    pub fn edited_message_id(&self) -> Option<&str> {
        self.original_message_id_for("edit")
    }

    /// For a deletion (`type: "revoke"`), the id of the message the contact deleted for everyone.
    pub fn revoked_message_id(&self) -> Option<&str> {
        self.original_message_id_for("revoke")
    }

    /// For a system message (`type: "system"`), what happened as Meta names it:
    /// `"user_changed_number"` (the contact moved to another number) or
    /// `"customer_identity_changed"` (a new phone or a reinstall); `None` for other messages.
    pub fn system_type(&self) -> Option<&str> {
        if self.provider_type() != "system" {
            return None;
        }
        self.raw.get("system")?.get("type")?.as_str().filter(|t| !t.is_empty())
    }

    /// For a `user_changed_number` system message, the contact's new WhatsApp id (phone digits).
    pub fn changed_to_wa_id(&self) -> Option<&str> {
        if self.system_type()? != "user_changed_number" {
            return None;
        }
        self.raw.get("system")?.get("wa_id")?.as_str().filter(|w| !w.is_empty())
    }

    fn original_message_id_for(&self, provider_type: &str) -> Option<&str> {
        self.raw.get(provider_type)?.get("original_message_id")?.as_str()
    }
}

/// A media attachment as announced in a webhook. The bytes are fetched separately (Graph
/// `GET /{media-id}`), by a worker, because the URL expires and needs the access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaRef {
    /// Meta's media id, to fetch the file with.
    pub id: String,
    /// The MIME type Meta reports (e.g. `image/jpeg`, `audio/ogg; codecs=opus`).
    pub mime_type: Option<String>,
    /// The file's SHA-256 as Meta reports it (base64), to check the download against.
    pub sha256: Option<String>,
    /// The caption the contact wrote under the media.
    pub caption: Option<String>,
    /// The original file name (documents).
    pub filename: Option<String>,
    /// A download URL, when the webhook includes one (it still needs the access token).
    pub url: Option<String>,
    /// Whether an audio message was recorded as a voice note.
    pub voice: bool,
    /// Whether a sticker is animated.
    pub animated: bool,
}

/// Where a change came from, shared by every event it produces.
#[derive(Debug, Clone, Default)]
pub(crate) struct ChangeOrigin {
    pub waba_id: String,
    pub phone_number_id: String,
    pub display_phone_number: String,
}

/// Maps one `messages[]` entry. `None` when it has no id: without one it cannot be stored or
/// deduplicated, so the caller reports it as an `Other` event instead.
pub(crate) fn map_message(origin: &ChangeOrigin, contacts: &[Value], message: &Value) -> Option<InboundMessage> {
    let provider_message_id = non_empty_text(message, "id")?;
    let from = text(message, "from")
        .or_else(|| text(message, "from_user_id"))
        .unwrap_or_default();
    let contact = find_contact(contacts, &from);
    let provider_type = text(message, "type").unwrap_or_default();
    let content = map_content(&provider_type, message);
    let wa_id = contact
        .and_then(|c| non_empty_text(c, "wa_id"))
        .or_else(|| (!from.is_empty() && from.bytes().all(|b| b.is_ascii_digit())).then(|| from.clone()));
    let user_id = contact
        .and_then(|c| non_empty_text(c, "user_id"))
        .or_else(|| non_empty_text(message, "from_user_id"));
    let context_message_id = content
        .refers_to
        .or_else(|| object(message, "context").and_then(|c| non_empty_text(c, "id")));
    Some(InboundMessage {
        waba_id: origin.waba_id.clone(),
        phone_number_id: origin.phone_number_id.clone(),
        display_phone_number: origin.display_phone_number.clone(),
        from,
        wa_id,
        user_id,
        profile_name: contact
            .and_then(|c| object(c, "profile"))
            .and_then(|p| non_empty_text(p, "name")),
        provider_message_id,
        timestamp_ms: seconds_as_millis(message, "timestamp").unwrap_or(0),
        kind: content.kind,
        body: content.body,
        media: content.media,
        context_message_id,
        reply_payload: content.reply_payload,
        raw: message.clone(),
    })
}

/// The sender's entry in `value.contacts[]`: the one whose wa_id or user id is the sender, or the only
/// one there is (Meta sends one contact per message webhook).
fn find_contact<'a>(contacts: &'a [Value], from: &str) -> Option<&'a Value> {
    contacts
        .iter()
        .find(|c| {
            !from.is_empty()
                && (text(c, "wa_id").as_deref() == Some(from) || text(c, "user_id").as_deref() == Some(from))
        })
        .or(match contacts {
            [only] => Some(only),
            _ => None,
        })
}

/// What a message's type-specific object says, before it is joined with who sent it.
struct Content {
    kind: MessageKind,
    body: Option<String>,
    media: Option<MediaRef>,
    reply_payload: Option<String>,
    /// A message this one points at that is not in `context` (reactions, edits, deletions).
    refers_to: Option<String>,
}

impl Content {
    fn of(kind: MessageKind) -> Self {
        Self {
            kind,
            body: None,
            media: None,
            reply_payload: None,
            refers_to: None,
        }
    }
    fn with_body(kind: MessageKind, body: Option<String>) -> Self {
        Self { body, ..Self::of(kind) }
    }
}

fn map_content(provider_type: &str, message: &Value) -> Content {
    use MessageKind as K;
    let part = |key: &str| object(message, key).unwrap_or(&Value::Null);
    match provider_type {
        "text" => Content::with_body(K::Text, text(part("text"), "body")),
        "image" => media_content(K::Image, part("image")),
        "video" => media_content(K::Video, part("video")),
        "audio" | "voice" => media_content(K::Audio, part(provider_type)),
        "document" => media_content(K::Document, part("document")),
        "sticker" => media_content(K::Sticker, part("sticker")),
        "location" => Content::with_body(K::Location, location_body(part("location"))),
        "contacts" => Content::with_body(K::Contacts, contacts_body(array(message, "contacts"))),
        "button" => {
            let button = part("button");
            Content {
                reply_payload: text(button, "payload"),
                ..Content::with_body(K::Interactive, text(button, "text"))
            }
        }
        "interactive" => interactive_content(part("interactive")),
        "reaction" => {
            let reaction = part("reaction");
            Content {
                // A removed reaction arrives with an empty or missing emoji: keep it as "" so the
                // inbox can clear the reaction rather than ignore the event.
                refers_to: non_empty_text(reaction, "message_id"),
                ..Content::with_body(K::Reaction, Some(text(reaction, "emoji").unwrap_or_default()))
            }
        }
        "system" => Content::with_body(K::Unsupported, non_empty_text(part("system"), "body")),
        "order" => Content::with_body(K::Unsupported, non_empty_text(part("order"), "text")),
        "edit" => edit_content(part("edit")),
        "revoke" => Content {
            refers_to: non_empty_text(part("revoke"), "original_message_id"),
            ..Content::of(K::Unsupported)
        },
        // "unsupported", "request_welcome", "unknown", and whatever Meta adds next.
        _ => Content::of(K::Unsupported),
    }
}

fn media_content(kind: MessageKind, media: &Value) -> Content {
    let caption = non_empty_text(media, "caption");
    let media_ref = non_empty_text(media, "id").map(|id| MediaRef {
        id,
        mime_type: non_empty_text(media, "mime_type"),
        sha256: non_empty_text(media, "sha256"),
        caption: caption.clone(),
        filename: non_empty_text(media, "filename"),
        url: non_empty_text(media, "url"),
        voice: media.get("voice").and_then(Value::as_bool).unwrap_or(false),
        animated: media.get("animated").and_then(Value::as_bool).unwrap_or(false),
    });
    Content {
        media: media_ref,
        ..Content::with_body(kind, caption)
    }
}

/// A location's name when the contact chose a place, else its coordinates as `"lat,long"`.
fn location_body(location: &Value) -> Option<String> {
    non_empty_text(location, "name").or_else(|| {
        let lat = location.get("latitude").and_then(scalar_text)?;
        let long = location.get("longitude").and_then(scalar_text)?;
        Some(format!("{lat},{long}"))
    })
}

/// The shared contacts' display names, comma-separated.
fn contacts_body(cards: &[Value]) -> Option<String> {
    let names: Vec<String> = cards
        .iter()
        .filter_map(|card| object(card, "name").and_then(|n| non_empty_text(n, "formatted_name")))
        .collect();
    (!names.is_empty()).then(|| names.join(", "))
}

/// Replies to interactive messages: buttons and list rows (title shown, id as payload), flows
/// (`nfm_reply`: its summary shown, the response JSON as payload) and call permission answers.
fn interactive_content(interactive: &Value) -> Content {
    let reply_type = text(interactive, "type").unwrap_or_default();
    let reply = object(interactive, &reply_type).unwrap_or(&Value::Null);
    let (body, payload) = match reply_type.as_str() {
        "button_reply" | "list_reply" => (non_empty_text(reply, "title"), text(reply, "id")),
        "nfm_reply" => (non_empty_text(reply, "body"), text(reply, "response_json")),
        "call_permission_reply" => (text(reply, "response"), text(reply, "response")),
        _ => (None, None),
    };
    Content {
        reply_payload: payload,
        ..Content::with_body(MessageKind::Interactive, body)
    }
}

/// An edit carries the whole new message; its text or caption becomes the body. The kind stays
/// `Unsupported` so an edit is never mistaken for a fresh message; [`InboundMessage::edited_message_id`]
/// says which message changed.
fn edit_content(edit: &Value) -> Content {
    let new_message = object(edit, "message").unwrap_or(&Value::Null);
    let new_type = text(new_message, "type").unwrap_or_default();
    let new_body = map_content(&new_type, new_message).body;
    Content {
        refers_to: non_empty_text(edit, "original_message_id"),
        ..Content::with_body(MessageKind::Unsupported, new_body)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    fn system(system: Value) -> InboundMessage {
        let message = json!({"from": "972987654321", "id": "wamid.S", "timestamp": "1753851315",
            "system": system, "type": "system"});
        map_message(&ChangeOrigin::default(), &[], &message).unwrap()
    }

    #[test]
    fn a_number_change_names_the_new_number() {
        let m = system(json!({"body": "User A changed from 972987654321 to 972912345678",
            "wa_id": "972912345678", "type": "user_changed_number"}));
        assert_eq!(m.system_type(), Some("user_changed_number"));
        assert_eq!(m.changed_to_wa_id(), Some("972912345678"));
        assert_eq!(m.kind, MessageKind::Unsupported);
    }

    #[test]
    fn an_identity_change_has_no_new_number_and_other_messages_no_system_type() {
        let m = system(json!({"body": "User identity changed", "type": "customer_identity_changed"}));
        assert_eq!(m.system_type(), Some("customer_identity_changed"));
        assert_eq!(m.changed_to_wa_id(), None);
        let without_number = system(json!({"type": "user_changed_number"}));
        assert_eq!(without_number.changed_to_wa_id(), None);
        let text = map_message(
            &ChangeOrigin::default(),
            &[],
            &json!({"from": "1", "id": "wamid.T", "type": "text", "text": {"body": "hi"}, "system": {"type": "x"}}),
        )
        .unwrap();
        assert_eq!(text.system_type(), None);
    }
}
