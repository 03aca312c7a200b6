//! Checking a send request the way the Cloud API does, and reducing it to what the simulated phone
//! will see. Works on `serde_json::Value` rather than typed structs so every refusal can name the
//! exact parameter, as Meta's `error_data.details` does. Templates and interactive messages, the two
//! rich types, are checked in [`super::validate_rich`].

use super::error::GraphError;
use super::validate_rich::{validate_interactive, validate_template};
use crate::state::{ButtonView, TemplateView};
use openline_domain::PhoneNumber;
use serde_json::{Map, Value};

/// The most characters a text message body may have.
pub const MAX_TEXT_BODY: usize = 4096;

/// The types this fake accepts in `type`.
const MESSAGE_TYPES: &[&str] = &[
    "text",
    "template",
    "interactive",
    "image",
    "document",
    "audio",
    "video",
    "sticker",
    "reaction",
    "location",
    "contacts",
];

/// What a valid request asks for: a message, or marking an inbound message read.
#[derive(Debug, Clone, PartialEq)]
pub enum SendRequest {
    Message(Box<OutboundMessage>),
    MarkRead { message_id: String },
}

/// A business message reduced to what the phone shows.
#[derive(Debug, Clone, PartialEq)]
pub struct OutboundMessage {
    /// `to` exactly as given (echoed in `contacts[].input`).
    pub to_input: String,
    pub recipient: PhoneNumber,
    /// The message `type`.
    pub kind: String,
    pub text: Option<String>,
    pub template: Option<TemplateView>,
    pub buttons: Vec<ButtonView>,
    pub media_id: Option<String>,
    pub context_id: Option<String>,
    /// Templates: what the send gave for each component, checked against the registry.
    pub template_send: Option<TemplateSend>,
    /// Templates: the pricing category, from the registered template's category.
    pub billing_category: Option<&'static str>,
    /// `biz_opaque_callback_data`: the sender's tag, echoed on every status webhook of the message.
    pub callback_data: Option<String>,
}

/// One parameter of a template send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentParam {
    /// `parameter_name`, for templates with named parameters.
    pub name: Option<String>,
    /// How it reads on the phone (text, or a currency's or date's fallback value).
    pub shown: Option<String>,
}

/// What a template send gave, component by component.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateSend {
    pub header: Vec<SentParam>,
    pub body: Vec<SentParam>,
    /// Quick-reply button components: (index, payload if given).
    pub quick_replies: Vec<(usize, Option<String>)>,
    /// Media parameters of the header, by type (`image`, `video`, `document`).
    pub header_media: Vec<String>,
    /// URL button components: (index, the URL suffix).
    pub url_buttons: Vec<(usize, String)>,
}

impl OutboundMessage {
    pub fn is_template(&self) -> bool {
        self.kind == "template"
    }
}

/// What a rich-type validator found worth showing.
#[derive(Debug, Default)]
pub struct Shown {
    pub text: Option<String>,
    pub template: Option<TemplateView>,
    pub buttons: Vec<ButtonView>,
    pub media_id: Option<String>,
    pub template_send: Option<TemplateSend>,
}

/// Validates a raw request body.
pub fn validate_send(raw: &[u8]) -> Result<SendRequest, GraphError> {
    let value: Value = serde_json::from_slice(raw)
        .map_err(|_| GraphError::invalid_parameter("The request body is not valid JSON."))?;
    let Value::Object(body) = value else {
        return Err(GraphError::invalid_parameter("The request body must be a JSON object."));
    };
    match body.get("messaging_product") {
        None => {
            return Err(GraphError::invalid_parameter(
                "The parameter messaging_product is required.",
            ))
        }
        Some(Value::String(p)) if p == "whatsapp" => {}
        Some(_) => {
            return Err(GraphError::invalid_parameter(
                "Param messaging_product must be one of {WHATSAPP}.",
            ));
        }
    }
    if let Some(status) = body.get("status") {
        return validate_mark_read(&body, status);
    }
    match body.get("recipient_type") {
        None => {}
        Some(Value::String(t)) if t == "individual" => {}
        Some(_) => return Err(GraphError::invalid_value("Param recipient_type must be 'individual'.")),
    }
    let to_input = match body.get("to") {
        None => return Err(GraphError::invalid_parameter("The parameter to is required.")),
        Some(Value::String(to)) if !to.trim().is_empty() => to.clone(),
        Some(_) => return Err(GraphError::invalid_value("Param to must be a non-empty string.")),
    };
    let recipient = parse_recipient(&to_input)?;
    let kind = match body.get("type") {
        None => "text".to_string(),
        Some(Value::String(t)) if MESSAGE_TYPES.contains(&t.as_str()) => t.clone(),
        Some(_) => {
            return Err(GraphError::invalid_parameter(format!(
                "Param type must be one of {{{}}}.",
                MESSAGE_TYPES.join(", ").to_uppercase()
            )))
        }
    };
    let context_id = validate_context(&body)?;
    let callback_data = match body.get("biz_opaque_callback_data") {
        None | Some(Value::Null) => None,
        Some(Value::String(d)) if d.chars().count() <= 512 => Some(d.clone()),
        Some(_) => {
            return Err(GraphError::invalid_value(
                "Param biz_opaque_callback_data must be a string of at most 512 characters.",
            ))
        }
    };
    // `contacts` is the one type whose content is an array; it is checked from `body` below.
    let no_content = Map::new();
    let content = match body.get(&kind) {
        Some(Value::Object(content)) => content,
        Some(Value::Array(_)) if kind == "contacts" => &no_content,
        Some(_) => {
            return Err(GraphError::invalid_value(format!(
                "Param {kind} must be a JSON object."
            )))
        }
        None => return Err(GraphError::missing(&kind)),
    };
    let shown = match kind.as_str() {
        "text" => validate_text(content)?,
        "template" => validate_template(content)?,
        "interactive" => validate_interactive(content)?,
        "image" | "document" | "audio" | "video" | "sticker" => validate_media(&kind, content)?,
        "reaction" => validate_reaction(content)?,
        "location" => validate_location(content)?,
        _ => validate_contacts(body.get("contacts"))?,
    };
    Ok(SendRequest::Message(Box::new(OutboundMessage {
        to_input,
        recipient,
        kind,
        text: shown.text,
        template: shown.template,
        buttons: shown.buttons,
        media_id: shown.media_id,
        context_id,
        template_send: shown.template_send,
        billing_category: None,
        callback_data,
    })))
}

fn validate_mark_read(body: &Map<String, Value>, status: &Value) -> Result<SendRequest, GraphError> {
    if status.as_str() != Some("read") {
        return Err(GraphError::invalid_value("Param status must be 'read'."));
    }
    match body.get("message_id") {
        Some(Value::String(id)) if id.starts_with("wamid.") => Ok(SendRequest::MarkRead { message_id: id.clone() }),
        Some(_) => Err(GraphError::invalid_value("Param message_id must be a wamid.")),
        None => Err(GraphError::missing("message_id")),
    }
}

/// Meta accepts `+16505551234`, `16505551234` and formatted forms; the `wa_id` is the digits.
fn parse_recipient(to: &str) -> Result<PhoneNumber, GraphError> {
    let digits: String = to.chars().filter(char::is_ascii_digit).collect();
    let only_phone_chars = to.chars().all(|c| c.is_ascii_digit() || " +-().".contains(c));
    if !only_phone_chars {
        return Err(GraphError::invalid_value("Param to must be a phone number."));
    }
    PhoneNumber::from_wa_id(&digits).map_err(|_| GraphError::invalid_value("Param to must be a phone number."))
}

fn validate_context(body: &Map<String, Value>) -> Result<Option<String>, GraphError> {
    match body.get("context") {
        None => Ok(None),
        Some(Value::Object(c)) => match c.get("message_id") {
            Some(Value::String(id)) if !id.is_empty() => Ok(Some(id.clone())),
            Some(_) => Err(GraphError::invalid_value(
                "Param context.message_id must be a non-empty string.",
            )),
            None => Err(GraphError::missing("context.message_id")),
        },
        Some(_) => Err(GraphError::invalid_value("Param context must be a JSON object.")),
    }
}

/// A required string field, refused with 131008 when absent and 131009 when not a string.
pub(super) fn required_str<'a>(obj: &'a Map<String, Value>, key: &str, path: &str) -> Result<&'a str, GraphError> {
    match obj.get(key) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(GraphError::invalid_value(format!("Param {path} must be a string."))),
        None => Err(GraphError::missing(path)),
    }
}

/// An optional string field, refused with 131009 when present but not a string.
pub(super) fn optional_str<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<&'a str>, GraphError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(GraphError::invalid_value(format!("Param {path} must be a string."))),
    }
}

/// Refuses a string longer than `max` characters (Meta counts characters, not bytes).
pub(super) fn check_len(s: &str, min: usize, max: usize, path: &str) -> Result<(), GraphError> {
    let n = s.chars().count();
    if n < min || n > max {
        return Err(GraphError::invalid_value(format!(
            "Param {path} must be {min} to {max} characters long."
        )));
    }
    Ok(())
}

fn validate_text(text: &Map<String, Value>) -> Result<Shown, GraphError> {
    let body = required_str(text, "body", "text.body")?;
    check_len(body, 1, MAX_TEXT_BODY, "text.body")?;
    match text.get("preview_url") {
        None | Some(Value::Bool(_)) => {}
        Some(_) => return Err(GraphError::invalid_value("Param text.preview_url must be a boolean.")),
    }
    Ok(Shown {
        text: Some(body.to_string()),
        ..Shown::default()
    })
}

/// A media object: exactly one of `id` (uploaded media) or `link` (an HTTPS URL Meta downloads).
pub(super) fn validate_media_object(kind: &str, media: &Map<String, Value>) -> Result<Option<String>, GraphError> {
    let id = optional_str(media, "id", &format!("{kind}.id"))?;
    let link = optional_str(media, "link", &format!("{kind}.link"))?;
    match (id, link) {
        (Some(id), None) if !id.is_empty() => Ok(Some(id.to_string())),
        (None, Some(link)) if !link.is_empty() => Ok(None),
        (Some(_), Some(_)) => Err(GraphError::invalid_value(format!(
            "Param {kind} must have either id or link, not both."
        ))),
        _ => Err(GraphError::missing(&format!("{kind}.id or {kind}.link"))),
    }
}

fn validate_media(kind: &str, media: &Map<String, Value>) -> Result<Shown, GraphError> {
    let media_id = validate_media_object(kind, media)?;
    let caption = optional_str(media, "caption", &format!("{kind}.caption"))?;
    if caption.is_some() && !matches!(kind, "image" | "video" | "document") {
        return Err(GraphError::invalid_value(format!(
            "Param {kind}.caption is not allowed for {kind} messages."
        )));
    }
    if let Some(c) = caption {
        check_len(c, 0, 1024, &format!("{kind}.caption"))?;
    }
    optional_str(media, "filename", &format!("{kind}.filename"))?;
    Ok(Shown {
        text: caption.map(str::to_string),
        media_id,
        ..Shown::default()
    })
}

fn validate_reaction(reaction: &Map<String, Value>) -> Result<Shown, GraphError> {
    required_str(reaction, "message_id", "reaction.message_id")?;
    // An empty emoji removes a reaction, so only its type is checked.
    let emoji = required_str(reaction, "emoji", "reaction.emoji")?;
    Ok(Shown {
        text: Some(emoji.to_string()),
        ..Shown::default()
    })
}

fn validate_location(location: &Map<String, Value>) -> Result<Shown, GraphError> {
    for key in ["latitude", "longitude"] {
        let ok = match location.get(key) {
            Some(Value::Number(_)) => true,
            Some(Value::String(s)) => s.parse::<f64>().is_ok(),
            Some(_) => false,
            None => return Err(GraphError::missing(&format!("location.{key}"))),
        };
        if !ok {
            return Err(GraphError::invalid_value(format!(
                "Param location.{key} must be a number."
            )));
        }
    }
    let name = optional_str(location, "name", "location.name")?;
    let address = optional_str(location, "address", "location.address")?;
    Ok(Shown {
        text: name.or(address).map(str::to_string),
        ..Shown::default()
    })
}

fn validate_contacts(contacts: Option<&Value>) -> Result<Shown, GraphError> {
    let Some(Value::Array(list)) = contacts else {
        return Err(GraphError::invalid_value("Param contacts must be an array."));
    };
    if list.is_empty() {
        return Err(GraphError::missing("contacts[0]"));
    }
    let mut names = Vec::new();
    for (i, contact) in list.iter().enumerate() {
        let Some(name) = contact.get("name").and_then(Value::as_object) else {
            return Err(GraphError::missing(&format!("contacts[{i}].name")));
        };
        names.push(required_str(name, "formatted_name", &format!("contacts[{i}].name.formatted_name"))?.to_string());
    }
    Ok(Shown {
        text: Some(names.join(", ")),
        ..Shown::default()
    })
}
