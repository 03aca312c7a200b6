//! What openline asks the Cloud API to send, and the exact JSON body that asks for it.
//!
//! Building the body is a pure function so it can be checked against Meta's OpenAPI spec in tests
//! (see `tests/spec_conformance.rs`) without a network. Where the spec demands something the real
//! API merely tolerates, we send it so our requests are valid under both: `recipient_type:
//! "individual"` on every message and `policy: "deterministic"` on template languages. Component
//! and parameter types are lower-case, as the spec requires (the real API accepts either case).

use openline_domain::MessageKind;
use serde_json::{json, Map, Value};

/// A message to send through the Cloud API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboundMessage {
    /// Free-form text; only allowed inside the contact's 24-hour window.
    Text {
        /// The recipient: wa_id digits or an E.164 number (`+16505551234`); sent as given.
        to: String,
        /// The text (up to 4096 characters).
        body: String,
        /// Whether WhatsApp should render a preview of the first URL in `body`.
        preview_url: bool,
        /// The provider message id this message replies to (shown quoted on the phone).
        reply_to: Option<String>,
    },
    /// An approved template; the only kind allowed outside the window.
    Template {
        /// The recipient, as for `Text`.
        to: String,
        /// The template's name as approved (e.g. `order_update`).
        name: String,
        /// The approved language/locale code (e.g. `en_US`).
        language: String,
        /// Values for the body's `{{1}}`, `{{2}}`, … in order; empty when the body has none.
        body_parameters: Vec<String>,
        /// Payloads for the template's quick-reply buttons, by button index (0, 1, …); returned in
        /// the `button` webhook when the contact taps one.
        quick_reply_payloads: Vec<String>,
        /// The image of an image header: a public https link Meta downloads.
        header_image_link: Option<String>,
        /// Suffixes of URL buttons whose address ends in `{{1}}`: (button index, suffix).
        url_button_parameters: Vec<(usize, String)>,
    },
    /// An image, video, audio, document or sticker, by uploaded media id or public link.
    Media {
        /// The recipient, as for `Text`.
        to: String,
        /// Which media type to send.
        media_type: MediaType,
        /// Where the file is.
        source: MediaSource,
        /// The caption under images, videos and documents (Meta ignores it for audio and stickers,
        /// so it is not sent for them).
        caption: Option<String>,
        /// The file name shown for documents (not sent for other types).
        filename: Option<String>,
        /// The provider message id this message replies to.
        reply_to: Option<String>,
    },
    /// A reaction to a message; an empty `emoji` removes our earlier reaction.
    Reaction {
        /// The recipient, as for `Text`.
        to: String,
        /// The provider message id reacted to.
        message_id: String,
        /// The emoji, or `""` to remove the reaction.
        emoji: String,
    },
}

/// The media types the Cloud API sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaType {
    Image,
    Video,
    Audio,
    Document,
    Sticker,
}

impl MediaType {
    /// Meta's name for the type, used as both `type` and the object's key.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Image => "image",
            Self::Video => "video",
            Self::Audio => "audio",
            Self::Document => "document",
            Self::Sticker => "sticker",
        }
    }

    fn takes_caption(self) -> bool {
        matches!(self, Self::Image | Self::Video | Self::Document)
    }
}

/// Where the file of a media message is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaSource {
    /// A media id returned by an earlier upload (`POST /{phone-number-id}/media`).
    Id(String),
    /// A public http(s) URL Meta downloads from.
    Link(String),
}

impl OutboundMessage {
    /// The recipient the message is addressed to.
    pub fn to(&self) -> &str {
        match self {
            Self::Text { to, .. } | Self::Template { to, .. } | Self::Media { to, .. } | Self::Reaction { to, .. } => {
                to
            }
        }
    }

    /// What the message is, in openline's terms.
    pub fn kind(&self) -> MessageKind {
        match self {
            Self::Text { .. } => MessageKind::Text,
            Self::Template { .. } => MessageKind::Template,
            Self::Reaction { .. } => MessageKind::Reaction,
            Self::Media { media_type, .. } => match media_type {
                MediaType::Image => MessageKind::Image,
                MediaType::Video => MessageKind::Video,
                MediaType::Audio => MessageKind::Audio,
                MediaType::Document => MessageKind::Document,
                MediaType::Sticker => MessageKind::Sticker,
            },
        }
    }

    /// The JSON body of `POST /{version}/{phone-number-id}/messages` for this message.
    pub fn to_request_body(&self) -> Value {
        match self {
            Self::Text {
                to,
                body,
                preview_url,
                reply_to,
            } => envelope(
                to,
                "text",
                json!({ "body": body, "preview_url": preview_url }),
                reply_to.as_deref(),
            ),
            Self::Template {
                to,
                name,
                language,
                body_parameters,
                quick_reply_payloads,
                header_image_link,
                url_button_parameters,
            } => envelope(
                to,
                "template",
                template_object(
                    name,
                    language,
                    body_parameters,
                    quick_reply_payloads,
                    header_image_link.as_deref(),
                    url_button_parameters,
                ),
                None,
            ),
            Self::Media {
                to,
                media_type,
                source,
                caption,
                filename,
                reply_to,
            } => {
                let mut media = Map::new();
                match source {
                    MediaSource::Id(id) => media.insert("id".into(), json!(id)),
                    MediaSource::Link(link) => media.insert("link".into(), json!(link)),
                };
                if let Some(caption) = caption.as_ref().filter(|_| media_type.takes_caption()) {
                    media.insert("caption".into(), json!(caption));
                }
                if let Some(filename) = filename.as_ref().filter(|_| *media_type == MediaType::Document) {
                    media.insert("filename".into(), json!(filename));
                }
                envelope(to, media_type.as_str(), Value::Object(media), reply_to.as_deref())
            }
            Self::Reaction { to, message_id, emoji } => envelope(
                to,
                "reaction",
                json!({ "message_id": message_id, "emoji": emoji }),
                None,
            ),
        }
    }
}

/// The body that marks an inbound message as read (blue ticks on the contact's phone).
pub fn mark_read_request_body(provider_message_id: &str) -> Value {
    json!({ "messaging_product": "whatsapp", "status": "read", "message_id": provider_message_id })
}

/// The fields every message shares, with the type-specific object under the key named by its type.
fn envelope(to: &str, message_type: &str, content: Value, reply_to: Option<&str>) -> Value {
    let mut body = Map::new();
    body.insert("messaging_product".into(), json!("whatsapp"));
    body.insert("recipient_type".into(), json!("individual"));
    body.insert("to".into(), json!(to));
    body.insert("type".into(), json!(message_type));
    body.insert(message_type.into(), content);
    if let Some(id) = reply_to {
        body.insert("context".into(), json!({ "message_id": id }));
    }
    Value::Object(body)
}

fn template_object(
    name: &str,
    language: &str,
    body_parameters: &[String],
    quick_reply_payloads: &[String],
    header_image_link: Option<&str>,
    url_button_parameters: &[(usize, String)],
) -> Value {
    let mut components = Vec::new();
    if let Some(link) = header_image_link {
        components.push(json!({
            "type": "header",
            "parameters": [{ "type": "image", "image": { "link": link } }],
        }));
    }
    if !body_parameters.is_empty() {
        let parameters: Vec<Value> = body_parameters
            .iter()
            .map(|text| json!({ "type": "text", "text": text }))
            .collect();
        components.push(json!({ "type": "body", "parameters": parameters }));
    }
    for (index, payload) in quick_reply_payloads.iter().enumerate() {
        components.push(json!({
            "type": "button",
            "sub_type": "quick_reply",
            "index": index.to_string(),
            "parameters": [{ "type": "payload", "payload": payload }],
        }));
    }
    for (index, suffix) in url_button_parameters {
        components.push(json!({
            "type": "button",
            "sub_type": "url",
            "index": index.to_string(),
            "parameters": [{ "type": "text", "text": suffix }],
        }));
    }
    let mut template = json!({ "name": name, "language": { "policy": "deterministic", "code": language } });
    if !components.is_empty() {
        template["components"] = Value::Array(components);
    }
    template
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_carries_the_quoted_message_id_in_context() {
        let body = OutboundMessage::Text {
            to: "+16505551234".into(),
            body: "Yes, in blue".into(),
            preview_url: false,
            reply_to: Some("wamid.abc".into()),
        }
        .to_request_body();
        assert_eq!(body["context"], json!({ "message_id": "wamid.abc" }));
        assert_eq!(body["to"], "+16505551234");
    }

    #[test]
    fn a_template_without_parameters_sends_no_components() {
        let body = OutboundMessage::Template {
            to: "16505551234".into(),
            name: "hello_world".into(),
            language: "en_US".into(),
            body_parameters: vec![],
            quick_reply_payloads: vec![],
            header_image_link: None,
            url_button_parameters: vec![],
        }
        .to_request_body();
        assert_eq!(
            body["template"],
            json!({ "name": "hello_world", "language": { "policy": "deterministic", "code": "en_US" } })
        );
    }

    #[test]
    fn a_header_image_and_url_suffixes_go_in_their_components() {
        let body = OutboundMessage::Template {
            to: "16505551234".into(),
            name: "statement_ready".into(),
            language: "en".into(),
            body_parameters: vec!["Ada".into()],
            quick_reply_payloads: vec![],
            header_image_link: Some("https://cdn.example/s.png".into()),
            url_button_parameters: vec![(1, "2026-11".into())],
        }
        .to_request_body();
        assert_eq!(
            body["template"]["components"],
            json!([
                { "type": "header", "parameters": [{ "type": "image", "image": { "link": "https://cdn.example/s.png" } }] },
                { "type": "body", "parameters": [{ "type": "text", "text": "Ada" }] },
                { "type": "button", "sub_type": "url", "index": "1", "parameters": [{ "type": "text", "text": "2026-11" }] },
            ])
        );
    }

    #[test]
    fn captions_and_file_names_go_only_where_meta_reads_them() {
        let audio = OutboundMessage::Media {
            to: "1".into(),
            media_type: MediaType::Audio,
            source: MediaSource::Id("42".into()),
            caption: Some("ignored".into()),
            filename: Some("ignored.ogg".into()),
            reply_to: None,
        };
        assert_eq!(audio.to_request_body()["audio"], json!({ "id": "42" }));
        assert_eq!(audio.kind(), MessageKind::Audio);
        let document = OutboundMessage::Media {
            to: "1".into(),
            media_type: MediaType::Document,
            source: MediaSource::Link("https://example.com/a.pdf".into()),
            caption: Some("Your invoice".into()),
            filename: Some("invoice.pdf".into()),
            reply_to: None,
        };
        assert_eq!(
            document.to_request_body()["document"],
            json!({ "link": "https://example.com/a.pdf", "caption": "Your invoice", "filename": "invoice.pdf" })
        );
    }
}
