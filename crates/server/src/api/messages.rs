//! Sending messages. Every send passes the pure policy decision in `domain`, then one transaction
//! stores the message, its outbox row and the idempotency key's answer; the dispatcher sends it.

use crate::auth::CurrentUser;
use crate::consent_flow;
use crate::error::{ApiJson, AppError, ErrorBody};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use openline_channels::cloud_api::outbound::{check_contact_cards, ContactCard, Interactive, Location, ShapeError};
use openline_domain::dlp;
use openline_domain::policy::{decide_send, Outgoing, SendDecision, SendFacts, EARLIER_MESSAGE_WAITING, WINDOW_CLOSED};
use openline_domain::templates::{
    body_parameters, render, send_components, BodyParameters, SendComponents, TemplateButton, TemplateCategory,
    TemplateComponent, TemplateParams, DYNAMIC_URL_SUFFIX, MAX_URL_CHARS,
};
use openline_domain::{Channel, DomainError, MessageKind, ProviderKind};
use openline_store::messages::{self, Message, NewOutbound};
use openline_store::{contacts, conversations, idempotency, orgs, senders, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

/// The web composer's send: text, a template or a file (see [`SendRequest`] for every kind).
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SendMessageRequest {
    pub contact_id: String,
    pub text: Option<String>,
    pub template: Option<TemplateSend>,
    pub channel: Option<Channel>,
    pub media: Option<MediaSend>,
}

impl From<SendMessageRequest> for SendRequest {
    fn from(r: SendMessageRequest) -> Self {
        Self {
            contact_id: r.contact_id,
            text: r.text,
            template: r.template,
            channel: r.channel,
            media: r.media,
            location: None,
            contacts: None,
            interactive: None,
            reaction: None,
            reply_to: None,
        }
    }
}

/// A message to send: exactly one of `text`, `template`, `media`, `location`, `contacts`,
/// `interactive` or `reaction`.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[schema(as = SendMessageRequest)]
#[serde(deny_unknown_fields)]
pub struct SendRequest {
    pub contact_id: String,
    /// The text to send (1 to 4096 characters). Give either `text` or `template`.
    pub text: Option<String>,
    /// An approved template with its parameters: the only kind of message WhatsApp allows outside
    /// the 24-hour window.
    pub template: Option<TemplateSend>,
    /// `whatsapp` (default) or `sms`.
    pub channel: Option<Channel>,
    /// A file uploaded with `POST /api/v1/media` (a picture, video, audio, document or sticker),
    /// with an optional caption. WhatsApp only; it needs consent and an open window, like text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<MediaSend>,
    /// A place on a map. WhatsApp Cloud API numbers only; needs consent and an open window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<LocationSend>,
    /// One to five contact cards. WhatsApp Cloud API numbers only; needs consent and an open window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contacts: Option<Vec<ContactCardSend>>,
    /// Reply buttons or a list; the contact's choice comes back as an inbound `interactive` message
    /// replying to this one. WhatsApp Cloud API numbers only; needs consent and an open window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interactive: Option<InteractiveSend>,
    /// A reaction to a message of this contact's WhatsApp conversation (`emoji: ""` removes ours).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reaction: Option<ReactionSend>,
    /// The openline id (`msg_…`) of a message of this contact's WhatsApp conversation to reply to:
    /// the phone shows it quoted. With `text`, `media`, `location`, `contacts` or `interactive`, on
    /// WhatsApp Cloud API numbers; the message must have reached the provider.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reply_to: Option<String>,
}

/// A place on a map.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LocationSend {
    /// Degrees, -90 to 90.
    #[schema(example = 51.5155)]
    pub latitude: f64,
    /// Degrees, -180 to 180.
    #[schema(example = -0.0922)]
    pub longitude: f64,
    /// The place's name, shown above the address (at most 1000 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "Moorgate branch")]
    pub name: Option<String>,
    /// At most 1000 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "1 Moorgate, London EC2R 6AB")]
    pub address: Option<String>,
}

/// A contact card (the subset of WhatsApp's card openline sends).
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactCardSend {
    pub name: ContactNameSend,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phones: Vec<ContactPhoneSend>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<ContactEmailSend>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<ContactOrgSend>,
}

/// The name on a contact card; `formatted_name` (required) is what the phone shows.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactNameSend {
    #[schema(example = "Ada Lovelace")]
    pub formatted_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
}

/// Home or work.
#[derive(Debug, Clone, Copy, Deserialize, Serialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum ContactInfoTypeSend {
    #[serde(alias = "home")]
    Home,
    #[serde(alias = "work")]
    Work,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactPhoneSend {
    #[schema(example = "+44 20 7946 0000")]
    pub phone: String,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ContactInfoTypeSend>,
    /// The number's WhatsApp id (digits): adds a "Message" button to the card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wa_id: Option<String>,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactEmailSend {
    pub email: String,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ContactInfoTypeSend>,
}

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ContactOrgSend {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// Reply buttons (`type: "buttons"`: 1–3 buttons, id ≤ 256 and title ≤ 20 characters) or a list
/// (`type: "list"`: a button text ≤ 20, 1–10 sections, at most 10 rows in all, row id ≤ 200, title ≤
/// 24, description ≤ 72). Body 1–1024 characters; optional header and footer text ≤ 60. Ids must be
/// unique; every text is checked by DLP.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum InteractiveSend {
    Buttons {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header: Option<String>,
        body: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        footer: Option<String>,
        buttons: Vec<ReplyButtonSend>,
    },
    List {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header: Option<String>,
        body: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        footer: Option<String>,
        /// The text of the button that opens the list.
        button: String,
        sections: Vec<ListSectionSend>,
    },
}

/// A reply button: `id` comes back in the contact's reply, `title` is its label.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyButtonSend {
    #[schema(example = "yes")]
    pub id: String,
    #[schema(example = "Yes")]
    pub title: String,
}

/// A section of a list; needs a title when the list has several.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ListSectionSend {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub rows: Vec<ListRowSend>,
}

/// A row of a list: `id` comes back in the contact's reply.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ListRowSend {
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A reaction to a message of the contact's WhatsApp conversation.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReactionSend {
    /// The openline id (`msg_…`) of the message reacted to; it must have reached the provider.
    pub message_id: String,
    /// One emoji, or `""` to remove openline's earlier reaction.
    #[schema(example = "👍")]
    pub emoji: String,
}

/// A file to send, by the id `POST /api/v1/media` answered.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MediaSend {
    /// The uploaded file's id (`med_…`).
    pub id: String,
    /// Shown under a picture, video or document (at most 1024 characters); checked by DLP like text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
}

/// The longest caption WhatsApp shows under a picture, video or document.
pub const MAX_CAPTION_CHARS: usize = 1024;

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateSend {
    pub name: String,
    pub language: String,
    /// `["Ada", "Thursday"]` for `{{1}}`-style bodies, or `{"name": "Ada"}` for named ones.
    #[serde(default)]
    pub parameters: TemplateParams,
    /// The header's image, required when the template has an image header and refused otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_image: Option<HeaderImage>,
    /// The suffix for each URL button whose address ends in `{{1}}`, in button order: `["A1B2"]`
    /// opens `https://bank.example/appointments/A1B2` for `https://bank.example/appointments/{{1}}`.
    /// One per such button (none for templates without one); no spaces, and the whole address
    /// at most 2000 characters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub url_button_suffixes: Vec<String>,
}

/// An image for a template's image header, fetched by the provider when it sends the message.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeaderImage {
    /// A public `https://` address of a JPEG or PNG image (at most 2000 characters, no spaces).
    #[schema(example = "https://cdn.bank.example/statement.png")]
    pub link: String,
}

/// What is being sent, resolved inside the transaction.
struct Content {
    kind: MessageKind,
    body: String,
    template: Option<serde_json::Value>,
    /// URL button suffixes: sent to the contact beside the body, so DLP checks them too.
    url_suffixes: Vec<String>,
    outgoing: Outgoing,
    /// A media message's file reference (`{"media_id", "content_type", "sha256", "size_bytes"}`).
    media: Option<serde_json::Value>,
    /// A location's, contact cards', interactive message's or reaction's structured content, from
    /// which the dispatcher builds the provider request; `body` is its human-readable rendering
    /// (and holds every text the contact sees, so DLP scans all of it).
    rich: Option<serde_json::Value>,
}

fn unprocessable(code: &'static str, message: impl Into<String>) -> AppError {
    AppError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
}

impl From<ShapeError> for AppError {
    fn from(e: ShapeError) -> Self {
        unprocessable(e.code, e.message)
    }
}

/// A rich message's structured content: the request's part as JSON, read back as the adapter's type
/// (same field names), so what is stored is exactly what the dispatcher will send.
fn typed<T: Serialize, U: serde::de::DeserializeOwned>(part: &T) -> Result<(serde_json::Value, U), AppError> {
    let value = serde_json::to_value(part).map_err(AppError::internal)?;
    let typed = serde_json::from_value(value.clone()).map_err(AppError::internal)?;
    Ok((value, typed))
}

fn rich(kind: MessageKind, body: String, key: &str, value: serde_json::Value) -> Content {
    Content {
        kind,
        body,
        template: None,
        url_suffixes: Vec::new(),
        outgoing: Outgoing::FreeForm,
        media: None,
        rich: Some(serde_json::json!({ key: value })),
    }
}

/// `📍 Moorgate branch — 1 Moorgate`, or the coordinates when the place has no name or address.
fn resolve_location(l: &LocationSend) -> Result<Content, AppError> {
    let (value, location): (_, Location) = typed(l)?;
    location.check()?;
    let label = match (&location.name, &location.address) {
        (Some(n), Some(a)) => format!("{n} — {a}"),
        (Some(t), None) | (None, Some(t)) => t.clone(),
        (None, None) => format!("{}, {}", location.latitude, location.longitude),
    };
    Ok(rich(MessageKind::Location, format!("📍 {label}"), "location", value))
}

/// `Contact card: Ada Lovelace (Bank)`; every name and organization the cards show.
fn resolve_contacts(cards: &[ContactCardSend]) -> Result<Content, AppError> {
    let (value, typed_cards): (_, Vec<ContactCard>) = typed(&cards)?;
    check_contact_cards(&typed_cards)?;
    let names: Vec<String> = typed_cards
        .iter()
        .map(|c| {
            let org: Vec<&str> = c
                .org
                .iter()
                .flat_map(|o| [&o.title, &o.department, &o.company])
                .filter_map(|x| x.as_deref())
                .collect();
            if org.is_empty() {
                c.name.formatted_name.clone()
            } else {
                format!("{} ({})", c.name.formatted_name, org.join(", "))
            }
        })
        .collect();
    let label = if names.len() == 1 {
        "Contact card"
    } else {
        "Contact cards"
    };
    Ok(rich(
        MessageKind::Contacts,
        format!("{label}: {}", names.join(", ")),
        "contacts",
        value,
    ))
}

/// The header, body and footer on their lines, then `[Yes] [No]` for buttons or `[Choose] Region:
/// Row (description); …` for a list: every text the contact sees.
fn resolve_interactive(i: &InteractiveSend) -> Result<Content, AppError> {
    let (value, interactive): (_, Interactive) = typed(i)?;
    interactive.check()?;
    let (header, body, footer) = match &interactive {
        Interactive::Buttons {
            header, body, footer, ..
        }
        | Interactive::List {
            header, body, footer, ..
        } => (header, body, footer),
    };
    let mut lines: Vec<String> = header.iter().cloned().collect();
    lines.push(body.clone());
    lines.extend(footer.iter().cloned());
    lines.push(match &interactive {
        Interactive::Buttons { buttons, .. } => buttons
            .iter()
            .map(|b| format!("[{}]", b.title))
            .collect::<Vec<_>>()
            .join(" "),
        Interactive::List { button, sections, .. } => {
            let sections: Vec<String> = sections
                .iter()
                .map(|s| {
                    let rows: Vec<String> = s
                        .rows
                        .iter()
                        .map(|r| match &r.description {
                            Some(d) => format!("{} ({d})", r.title),
                            None => r.title.clone(),
                        })
                        .collect();
                    match &s.title {
                        Some(t) => format!("{t}: {}", rows.join(", ")),
                        None => rows.join(", "),
                    }
                })
                .collect();
            format!("[{button}] {}", sections.join("; "))
        }
    });
    Ok(rich(MessageKind::Interactive, lines.join("\n"), "interactive", value))
}

/// The longest emoji sequence taken (family and flag sequences are several code points).
const MAX_EMOJI_CHARS: usize = 16;

/// A reaction to a message of this contact's WhatsApp conversation that reached the provider.
fn resolve_reaction(
    c: &mut dyn openline_store::Conn,
    r: &ReactionSend,
    scope: &orgs::Scope,
    org_id: &str,
    contact_id: &str,
) -> Result<Result<Content, AppError>, StoreError> {
    let emoji = r.emoji.trim();
    if !emoji.is_empty()
        && (emoji.chars().count() > MAX_EMOJI_CHARS
            || emoji.chars().any(|ch| ch.is_ascii_alphanumeric() || ch.is_whitespace()))
    {
        return Ok(Err(unprocessable(
            "reaction_emoji_invalid",
            "A reaction is one emoji (like 👍), or \"\" to remove openline's reaction.",
        )));
    }
    let target = match resolve_target(c, scope, &r.message_id, org_id, contact_id, Target::Reaction)? {
        Ok(t) => t,
        Err(e) => return Ok(Err(e)),
    };
    let body = if emoji.is_empty() {
        "Reaction removed".to_owned()
    } else {
        format!("Reacted {emoji}")
    };
    let value = serde_json::json!({
        "message_id": r.message_id, "provider_message_id": target, "emoji": emoji,
    });
    Ok(Ok(rich(MessageKind::Reaction, body, "reaction", value)))
}

/// What refers to an earlier message.
#[derive(Clone, Copy)]
enum Target {
    Reaction,
    Reply,
}

/// The provider message id of a message a reaction or reply refers to: it must be one the caller may
/// see, in this contact's WhatsApp conversation (of this organization), and already with the provider.
fn resolve_target(
    c: &mut dyn openline_store::Conn,
    scope: &orgs::Scope,
    message_id: &str,
    org_id: &str,
    contact_id: &str,
    target: Target,
) -> Result<Result<String, AppError>, StoreError> {
    let (not_found, other, not_sent, what) = match target {
        Target::Reaction => (
            "reaction_target_not_found",
            "reaction_target_other_conversation",
            "reaction_target_not_sent",
            "react to",
        ),
        Target::Reply => (
            "reply_target_not_found",
            "reply_target_other_conversation",
            "reply_target_not_sent",
            "reply to",
        ),
    };
    let m = match messages::get(c, scope, message_id) {
        Ok(m) => m,
        Err(StoreError::NotFound) => {
            return Ok(Err(unprocessable(
                not_found,
                format!("There is no message {message_id:?} to {what}. Give the openline id (msg_…) of a message of this contact's conversation."),
            )))
        }
        Err(e) => return Err(e),
    };
    if m.org_id != org_id
        || m.direction == openline_domain::Direction::System
        || conversations::contact_of(c, &m.conversation_id)? != contact_id
    {
        return Ok(Err(unprocessable(
            other,
            format!("Message {message_id:?} is not in this contact's conversation; you can only {what} messages of the same conversation."),
        )));
    }
    match (m.provider, m.provider_message_id) {
        (Some(ProviderKind::CloudApi), Some(id)) => Ok(Ok(id)),
        (Some(_), Some(_)) => Ok(Err(unprocessable(
            other,
            format!("Message {message_id:?} was not sent or received through this contact's WhatsApp Cloud API conversation."),
        ))),
        _ => Ok(Err(unprocessable(
            not_sent,
            format!("Message {message_id:?} has not reached WhatsApp yet, so you cannot {what} it. Wait until it is sent."),
        ))),
    }
}

/// Resolves the request's text or template (found for the sender, parameters checked and rendered).
fn resolve_content(
    c: &mut dyn openline_store::Conn,
    req: &SendRequest,
    sender_id: &str,
    scope: &orgs::Scope,
    contact: &contacts::Contact,
) -> Result<Result<Content, AppError>, StoreError> {
    let given = [
        req.text.is_some(),
        req.template.is_some(),
        req.media.is_some(),
        req.location.is_some(),
        req.contacts.is_some(),
        req.interactive.is_some(),
        req.reaction.is_some(),
    ];
    if given.iter().filter(|g| **g).count() != 1 {
        return Ok(Err(unprocessable(
            "text_or_template",
            "Give exactly one of `text`, `template` (with its name, language and parameters), `media` (an uploaded file's id, with an optional caption), `location`, `contacts`, `interactive` or `reaction`.",
        )));
    }
    if let Some(l) = &req.location {
        return Ok(resolve_location(l));
    }
    if let Some(cards) = &req.contacts {
        return Ok(resolve_contacts(cards));
    }
    if let Some(i) = &req.interactive {
        return Ok(resolve_interactive(i));
    }
    if let Some(r) = &req.reaction {
        return resolve_reaction(c, r, scope, &contact.org_id, &contact.id);
    }
    match (&req.text, &req.template, &req.media) {
        (Some(text), None, None) => Ok(Ok(Content {
            kind: MessageKind::Text,
            body: text.clone(),
            template: None,
            url_suffixes: Vec::new(),
            outgoing: Outgoing::FreeForm,
            media: None,
            rich: None,
        })),
        (None, None, Some(m)) => resolve_media(c, m, scope),
        (None, Some(t), None) => {
            let Some(record) = openline_store::templates::find(c, sender_id, &t.name, &t.language)? else {
                return Ok(Err(AppError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "template_not_found",
                    format!(
                        "There is no template {:?} in language {:?} for this number.",
                        t.name, t.language
                    ),
                )));
            };
            let body = match render(&record.template, &t.parameters) {
                Ok(b) => b,
                Err(e) => return Ok(Err(e.into())),
            };
            let header_link = t.header_image.as_ref().map(|h| h.link.as_str());
            let extras = match send_components(&record.template, header_link, &t.url_button_suffixes)
                .map_err(AppError::from)
                .and_then(|x| url_lengths(&record.template, &x).map(|()| x))
            {
                Ok(x) => x,
                Err(e) => return Ok(Err(e)),
            };
            // The Cloud API takes body parameters in order; named ones go in order of first appearance.
            let ordered: Vec<String> = match (&t.parameters, body_parameters(&record.template)) {
                (TemplateParams::Positional(v), _) => v.clone(),
                (TemplateParams::Named(map), Ok(BodyParameters::Named { names })) => {
                    names.iter().filter_map(|n| map.get(n).cloned()).collect()
                }
                (TemplateParams::Named(map), _) => map.values().cloned().collect(),
            };
            let mut stored = serde_json::json!({
                "name": record.template.name, "language": record.template.language,
                "body_parameters": ordered, "template_id": record.id,
            });
            // What the dispatcher turns into the header and URL button components.
            if let Some(link) = extras.header_image_link {
                stored["header_image_link"] = link.into();
            }
            if !extras.url_buttons.is_empty() {
                stored["url_buttons"] = serde_json::json!(extras.url_buttons);
            }
            Ok(Ok(Content {
                kind: MessageKind::Template,
                body,
                template: Some(stored),
                url_suffixes: t.url_button_suffixes.clone(),
                outgoing: Outgoing::Template {
                    approved: record.template.status.is_approved(),
                    marketing: record.template.category == TemplateCategory::Marketing,
                },
                media: None,
                rich: None,
            }))
        }
        _ => Ok(Err(AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "text_or_template",
            "Give exactly one of `text`, `template` (with its name, language and parameters) or `media` (an uploaded file's id, with an optional caption).",
        ))),
    }
}

/// Resolves an uploaded file to send: it must be one the user's organizations stored, of a type
/// WhatsApp sends; its caption is the message's body.
fn resolve_media(
    c: &mut dyn openline_store::Conn,
    m: &MediaSend,
    scope: &orgs::Scope,
) -> Result<Result<Content, AppError>, StoreError> {
    let file = match openline_store::media::get(c, scope, &m.id) {
        Ok(f) => f,
        Err(StoreError::NotFound) => return Ok(Err(AppError::not_found("uploaded file"))),
        Err(e) => return Err(e),
    };
    if file.state != openline_store::media::MediaState::Stored {
        return Ok(Err(AppError::new(
            StatusCode::CONFLICT,
            "media_not_ready",
            "This file is not stored yet, so it cannot be sent. Try again in a moment.",
        )));
    }
    let content_type = file.content_type.clone().unwrap_or_default();
    let Some(limit) = super::media::limit_for(&content_type, &[]) else {
        return Ok(Err(AppError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "media_type_unsupported",
            format!("WhatsApp cannot send {content_type:?} files."),
        )));
    };
    let caption = m.caption.clone().unwrap_or_default();
    let chars = caption.chars().count();
    if chars > MAX_CAPTION_CHARS {
        return Ok(Err(AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "caption_too_long",
            format!("The caption has {chars} characters; WhatsApp shows at most {MAX_CAPTION_CHARS}. Shorten it."),
        )));
    }
    if !caption.trim().is_empty()
        && !matches!(
            limit.kind,
            MessageKind::Image | MessageKind::Video | MessageKind::Document
        )
    {
        return Ok(Err(AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "caption_not_supported",
            format!(
                "WhatsApp shows no caption under {} messages. Send the text as its own message.",
                limit.kind
            ),
        )));
    }
    Ok(Ok(Content {
        kind: limit.kind,
        body: caption,
        template: None,
        url_suffixes: Vec::new(),
        outgoing: Outgoing::FreeForm,
        media: Some(serde_json::json!({
            "media_id": file.id, "content_type": content_type, "sha256": file.sha256,
            "size_bytes": file.size_bytes, "filename": file.filename,
        })),
        rich: None,
    }))
}

/// A URL button's address with its suffix must stay a URL the provider takes (at most
/// `MAX_URL_CHARS`); the suffix alone is checked by `send_components`.
fn url_lengths(template: &openline_domain::templates::Template, extras: &SendComponents) -> Result<(), AppError> {
    let buttons: Vec<&TemplateButton> = template
        .components
        .iter()
        .filter_map(|c| match c {
            TemplateComponent::Buttons { buttons } => Some(buttons),
            _ => None,
        })
        .flatten()
        .collect();
    for (n, (index, suffix)) in extras.url_buttons.iter().enumerate() {
        let Some(TemplateButton::Url { url, .. }) = buttons.get(*index) else {
            continue;
        };
        let fixed = url.strip_suffix(DYNAMIC_URL_SUFFIX).unwrap_or(url);
        let total = fixed.chars().count() + suffix.chars().count();
        if total > MAX_URL_CHARS {
            return Err(AppError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "template_parameter_invalid",
                format!(
                    "Template parameter for URL button {} makes the button's address {total} characters long; at most {MAX_URL_CHARS} are allowed. Use a shorter suffix.",
                    n + 1
                ),
            ));
        }
    }
    Ok(())
}

/// The refusal an agent sees when DLP blocks a message: it names the rules, never the matched text.
fn dlp_blocked(v: &dlp::DlpVerdict) -> AppError {
    AppError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "dlp_blocked",
        format!(
            "Your organization's data-loss policy does not allow this message ({}). Remove the sensitive information and send it again.",
            v.deciding_rules().join(", ")
        ),
    )
}

/// What the transaction decided.
enum Outcome {
    Created(Box<Message>),
    Replayed { status: u16, body: String },
    Refused(AppError),
}

/// `POST /api/v1/messages`: sends a text, an approved template, a file, a location, contact cards,
/// reply buttons or a list (`interactive`), or a reaction to a contact. All but templates are session
/// messages: they need consent and an open 24-hour window (held or refused exactly like text), and
/// DLP checks every text the contact will see (a redaction rule refuses a structured message rather
/// than mask it). Locations, contact cards, interactive messages, reactions and `reply_to` need a
/// WhatsApp Cloud API number (422 `kind_not_supported_by_provider` on Twilio,
/// `kind_not_supported_on_sms` on SMS); shapes over WhatsApp's limits are refused with 422 and a code
/// naming the part (`interactive_button_count`, `interactive_button_title_invalid`,
/// `interactive_row_count`, `location_invalid`, `contacts_invalid`, `reaction_emoji_invalid`,
/// `reaction_target_not_found`, `reaction_target_other_conversation`, …), nothing stored. A template with an
/// image header needs `template.header_image.link` (https only), and one with URL buttons ending in
/// `{{1}}` needs `template.url_button_suffixes`; missing, extra or malformed ones are refused with
/// 422 `template_parameter_count` or `template_parameter_invalid` before anything is stored.
/// Answers 202 with the message (status `queued`); its status then follows the provider (`accepted`, `sent`, `delivered`, `read` or
/// `failed` with the provider's code and an explanation), by `GET /api/v1/messages/{id}` or live
/// events.
///
/// Idempotent with an `Idempotency-Key` header: a retry with the same key and body returns the first
/// answer (with `Idempotent-Replayed: true`) and sends nothing; the same key with a different body
/// is refused (422 `idempotency_key_reused`).
#[utoipa::path(post, path = "/api/v1/messages", tag = "messages", request_body = SendRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: at most one message per key")),
    responses((status = 202, body = Message), (status = 404, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn post_message(
    State(st): State<AppState>,
    me: CurrentUser,
    headers: HeaderMap,
    ApiJson(req): ApiJson<SendRequest>,
) -> Result<Response, AppError> {
    send(st, me, headers, req).await
}

/// The web composer's send (text, template or file): the same path as [`post_message`].
pub async fn send_message(
    State(st): State<AppState>,
    me: CurrentUser,
    headers: HeaderMap,
    ApiJson(req): ApiJson<SendMessageRequest>,
) -> Result<Response, AppError> {
    send(st, me, headers, req.into()).await
}

async fn send(st: AppState, me: CurrentUser, headers: HeaderMap, req: SendRequest) -> Result<Response, AppError> {
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => {
            let k = v.to_str().map(str::trim).unwrap_or_default().to_owned();
            if k.is_empty() || k.len() > 255 {
                return Err(AppError::bad_request(
                    "invalid_idempotency_key",
                    "Idempotency-Key must be 1 to 255 visible characters.",
                ));
            }
            Some(k)
        }
    };
    let request_hash = hex::encode(Sha256::digest(serde_json::to_vec(&req).map_err(AppError::internal)?));
    let now = st.now();
    let media_links_available = crate::media_links::available(&st.config);
    let channel = req.channel.unwrap_or(Channel::Whatsapp);
    if let Some(t) = &req.template {
        // A Twilio Content template registered while WhatsApp's review was pending may be approved
        // by now (Twilio sends no webhook): asked again before the checks below.
        crate::workers::template_approvals::before_send(&st, &me.scope, &req.contact_id, channel, &t.name, &t.language)
            .await;
    }
    // Every refusal below is decided before the first write and answered as `Ok`: the job fails
    // only if the database does, so it needs no savepoint of its own.
    let outcome = st
        .store
        .write_unguarded(move |c| {
            // The job's first reads, sent at once: the contact, the configuration's token (read
            // by the first configuration answer, the sender) and the Idempotency-Key's record.
            let (contact_sql, contact_vals) = contacts::get_read(&me.scope, &req.contact_id);
            let mut first = vec![
                (contact_sql.as_str(), contact_vals),
                openline_store::org_config::token_read(),
            ];
            if let Some(k) = &key {
                first.push(idempotency::find_read(&me.user.id, k));
            }
            c.prefetch(&first)?;
            if let Some(k) = &key {
                if let Some(prev) = idempotency::find(c, &me.user.id, k)? {
                    if prev.request_hash != request_hash {
                        return Ok(Outcome::Refused(AppError::new(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            "idempotency_key_reused",
                            "This Idempotency-Key was used for a different request. Use a new key for a new message.",
                        )));
                    }
                    return Ok(Outcome::Replayed {
                        status: prev.status,
                        body: prev.body,
                    });
                }
            }
            let contact = match contacts::get(c, &me.scope, &req.contact_id) {
                Ok(ct) => ct,
                Err(StoreError::NotFound) => return Ok(Outcome::Refused(AppError::not_found("contact"))),
                Err(e) => return Err(e),
            };
            if contact.phone.is_none() {
                return Ok(Outcome::Refused(
                    DomainError::new(
                        "contact_has_no_phone",
                        "This contact has no phone number to send to. Add one to the contact first.",
                    )
                    .into(),
                ));
            }
            let Some(sender) = senders::for_org(c, &contact.org_id, channel)? else {
                return Ok(Outcome::Refused(AppError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "no_sender",
                    format!("Your organization has no {channel} number to send from. An admin can add one."),
                )));
            };
            // Locations, contact cards, interactive messages, reactions and quoted replies exist only
            // on WhatsApp through the Cloud API: refused before anything is stored.
            let rich_kind =
                req.location.is_some() || req.contacts.is_some() || req.interactive.is_some() || req.reaction.is_some();
            if rich_kind || req.reply_to.is_some() {
                let what = if rich_kind {
                    "Locations, contact cards, interactive messages and reactions"
                } else {
                    "Quoted replies (`reply_to`)"
                };
                if channel != Channel::Whatsapp {
                    return Ok(Outcome::Refused(unprocessable(
                        "kind_not_supported_on_sms",
                        format!("{what} are sent through WhatsApp; on SMS, openline sends text only."),
                    )));
                }
                if sender.provider != ProviderKind::CloudApi {
                    return Ok(Outcome::Refused(unprocessable(
                        "kind_not_supported_by_provider",
                        format!("{what} can be sent only from a WhatsApp Cloud API number; this organization's WhatsApp number is on {}. Send text, a file or a template instead.", sender.provider.as_str()),
                    )));
                }
            }
            let mut content = match resolve_content(c, &req, &sender.id, &me.scope, &contact)? {
                Ok(content) => content,
                Err(e) => return Ok(Outcome::Refused(e)),
            };
            // SMS carries files only as MMS through Twilio, which needs a public link to fetch them.
            if let Some(e) =
                crate::twilio_send::media_refusal(&sender, channel, content.media.as_ref(), media_links_available)
            {
                return Ok(Outcome::Refused(e));
            }
            let reply_to = match &req.reply_to {
                None => None,
                Some(_) if matches!(content.kind, MessageKind::Template | MessageKind::Reaction) => {
                    return Ok(Outcome::Refused(unprocessable(
                        "reply_to_not_supported",
                        format!("WhatsApp does not quote a message in a {} message. Leave out `reply_to`.", content.kind),
                    )))
                }
                Some(id) => match resolve_target(c, &me.scope, id, &contact.org_id, &contact.id, Target::Reply)? {
                    Ok(provider_id) => Some(provider_id),
                    Err(e) => return Ok(Outcome::Refused(e)),
                },
            };
            // Data-loss prevention: a blocked message is never stored or sent; a redacted one is sent
            // masked, with the original kept only in the archive.
            let rules = openline_store::dlp::rules_for(c, &contact.org_id)?;
            let verdict =
                (!rules.is_empty()).then(|| dlp::scan(&rules, openline_domain::Direction::Out, &content.body));
            // A suffix cannot be masked (it would break the link): any Block or Redact match refuses.
            if let Some(v) = (!rules.is_empty())
                .then(|| {
                    content
                        .url_suffixes
                        .iter()
                        .map(|s| dlp::scan(&rules, openline_domain::Direction::Out, s))
                        .find(|v| v.is_blocked() || v.redacted.is_some())
                })
                .flatten()
            {
                return Ok(Outcome::Refused(dlp_blocked(&v)));
            }
            let mut original = None;
            if let Some(v) = &verdict {
                let masks = v.redacted.is_some();
                // Templates and structured messages cannot be sent masked: a match refuses them.
                if v.is_blocked() || (masks && (content.kind == MessageKind::Template || content.rich.is_some())) {
                    return Ok(Outcome::Refused(dlp_blocked(v)));
                }
                if let Some(redacted) = &v.redacted {
                    original = Some(std::mem::replace(&mut content.body, redacted.clone()));
                }
            }
            // The reads the decision and the thread need, sent at once (one round trip on PostgreSQL
            // instead of one each): the consent ledger, the window, the messages held for the
            // contact and the contact's open thread.
            let (consent_sql, consent_vals) = openline_store::consent::events_for_read(&contact.org_id, &contact.id);
            let mut reads = vec![
                (consent_sql.as_str(), consent_vals),
                conversations::last_inbound_read(&contact.org_id, &contact.id, &sender.id),
                conversations::open_thread_read(&contact.org_id, channel, &contact.id, &sender.id),
            ];
            if channel == Channel::Whatsapp {
                reads.push(messages::held_reasons_read(&contact.org_id, &contact.id));
            }
            c.prefetch(&reads)?;
            let facts = SendFacts {
                channel,
                author_role: me.user.role,
                org_whatsapp_enabled: orgs::whatsapp_enabled(c, &contact.org_id)?,
                user_whatsapp_enabled: me.user.whatsapp_enabled,
                // A file without a caption is still something to send.
                text: if content.media.is_some() && content.body.trim().is_empty() {
                    content.kind.as_str()
                } else {
                    &content.body
                },
                outgoing: content.outgoing,
                contact: consent_flow::contact_facts(c, &contact.org_id, &contact.id, &sender.id, now)?,
            };
            let mut queue_reason = match decide_send(&facts, now) {
                SendDecision::SendNow => None,
                SendDecision::Queue { reason, .. } => Some(reason),
                SendDecision::Reject(e) => return Ok(Outcome::Refused(e.into())),
            };
            // Order is kept: while earlier messages to this contact wait, a new one waits behind them.
            // A template passes free text held only for the closed window: it is what restarts the
            // conversation (the same rule as `release_queued`).
            if queue_reason.is_none() && channel == Channel::Whatsapp {
                let held = messages::held_reasons_for_contact(c, &contact.org_id, &contact.id)?;
                let restarts = matches!(facts.outgoing, Outgoing::Template { .. })
                    && held
                        .iter()
                        .all(|r| matches!(r.as_str(), WINDOW_CLOSED | EARLIER_MESSAGE_WAITING));
                if !held.is_empty() && !restarts {
                    queue_reason = Some(EARLIER_MESSAGE_WAITING);
                }
            }
            let conversation_id =
                conversations::find_or_create_open(c, &contact.org_id, channel, &contact.id, &sender.id, now)?;
            // Whether the agent is in the thread, and who is (archived with the message): together.
            c.prefetch(&[
                openline_store::participants::current_row_read(&conversation_id, &me.user.id),
                messages::participants_read(&conversation_id),
            ])?;
            conversations::join(c, &conversation_id, &me.user.id, now)?;
            let message = messages::insert_outbound_rich(
                c,
                &NewOutbound {
                    org_id: &contact.org_id,
                    conversation_id: &conversation_id,
                    sender_id: &sender.id,
                    author_user_id: Some(&me.user.id),
                    kind: content.kind,
                    // A file's caption is its body; a file without one has none.
                    body: Some(content.body.as_str()).filter(|b| content.media.is_none() || !b.trim().is_empty()),
                    template: content.template.as_ref(),
                    queue_reason,
                    business_initiated: !facts.contact.window.is_open(),
                    now,
                },
                &messages::OutboundExtras {
                    media: content.media.as_ref(),
                    content: content.rich.as_ref(),
                    reply_to: reply_to.as_deref(),
                },
            )?;
            if let Some(media_id) = req.media.as_ref().map(|m| m.id.as_str()) {
                openline_store::media::link_to_message(c, media_id, &message.id, now)?;
            }
            let message = match verdict.filter(|v| v.action.is_some()) {
                Some(v) => {
                    openline_store::dlp::record_verdict(c, &message.org_id, &message.id, &v, original.as_deref(), now)?;
                    messages::get_any(c, &message.id)?
                }
                None => message,
            };
            if let Some(k) = &key {
                let body = serde_json::to_string(&message).map_err(|e| StoreError::Decode(e.to_string()))?;
                idempotency::save(
                    c,
                    &me.user.id,
                    k,
                    &idempotency::StoredResponse {
                        request_hash,
                        status: 202,
                        body,
                    },
                    now,
                )?;
            }
            Ok(Outcome::Created(Box::new(message)))
        })
        .await?;
    match outcome {
        Outcome::Created(message) => {
            st.dispatcher_wake.notify_one();
            st.events.message("message.created", &message);
            Ok((StatusCode::ACCEPTED, Json(*message)).into_response())
        }
        Outcome::Replayed { status, body } => {
            let mut res = (
                StatusCode::from_u16(status).unwrap_or(StatusCode::ACCEPTED),
                [(
                    axum::http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                body,
            )
                .into_response();
            res.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            Ok(res)
        }
        Outcome::Refused(e) => Err(e),
    }
}

/// What opening a thread did.
#[derive(Debug, Serialize, ToSchema)]
pub struct ThreadRead {
    /// Whether a read receipt for the contact's latest message is on its way to the provider (blue
    /// ticks on the contact's phone). False when there was nothing to acknowledge: no message from
    /// the contact, an SMS or Twilio thread, or a message already acknowledged.
    pub read_receipt: bool,
    /// The openline id of the message acknowledged.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
}

/// `POST /api/v1/conversations/{id}/read`: an agent opened the thread. Its unread count goes back
/// to 0 and, on WhatsApp Cloud API threads, the provider is told the contact's latest message was
/// read — at most once per message, whoever opens the thread. The receipt is sent after the answer,
/// never delaying it; if the provider cannot be reached it is not retried (the next message from the
/// contact gets its own). Viewers read without sending receipts.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/read", tag = "conversations", params(("id" = String, Path)),
    responses((status = 200, body = ThreadRead), (status = 404, body = ErrorBody)))]
pub async fn read_conversation(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<ThreadRead>, AppError> {
    read_thread(&st, &me, id).await.map(Json)
}

/// What `POST /api/v1/conversations/{id}/read` does, shared with the web app's thread page (which
/// reads a thread when an agent opens it, or sees a new message in it): unread back to 0 and, at
/// most once per message, the provider told the contact's latest message was read.
pub(crate) async fn read_thread(st: &AppState, me: &CurrentUser, id: String) -> Result<ThreadRead, AppError> {
    let (scope, now, user_id, sends) = (me.scope.clone(), st.now(), me.user.id.clone(), me.user.role.can_send());
    let receipt = st
        .store
        .write(move |c| {
            // Not found for a thread the caller may not see, viewers included.
            conversations::get(c, &scope, &id)?;
            openline_store::web_contacts::mark_read(c, &scope, &id)?;
            if !sends {
                return Ok(None);
            }
            messages::claim_read_receipt(c, &scope, &id, &user_id, now)
        })
        .await
        .map_err(|e| match e {
            StoreError::NotFound => AppError::not_found("conversation"),
            other => other.into(),
        })?;
    let message_id = receipt.as_ref().map(|r| r.message_id.clone());
    if let Some(r) = receipt {
        let cloud = st.cloud.clone();
        tokio::spawn(async move {
            match cloud.mark_read(&r.phone_number_id, &r.provider_message_id).await {
                Ok(()) => tracing::info!(message_id = %r.message_id, "read receipt sent"),
                Err(e) => {
                    tracing::warn!(message_id = %r.message_id, code = ?e.code, http_status = ?e.http_status, "read receipt not sent")
                }
            }
        });
    }
    Ok(ThreadRead {
        read_receipt: message_id.is_some(),
        message_id,
    })
}

/// `GET /api/v1/messages/{id}`: one message with its current delivery status.
#[utoipa::path(get, path = "/api/v1/messages/{id}", tag = "messages", params(("id" = String, Path)),
    responses((status = 200, body = Message), (status = 404, body = ErrorBody)))]
pub async fn get_message(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<Message>, AppError> {
    let scope = me.scope.clone();
    st.store
        .read(move |c| messages::get(c, &scope, &id))
        .await
        .map(Json)
        .map_err(|e| match e {
            StoreError::NotFound => AppError::not_found("message"),
            other => other.into(),
        })
}

/// `POST /api/v1/messages/{id}/cancel`: withdraws a queued message before it is sent. 409
/// `not_queued` once it has been handed to the provider.
#[utoipa::path(post, path = "/api/v1/messages/{id}/cancel", tag = "messages", params(("id" = String, Path)),
    responses((status = 200, body = Message), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn cancel_message(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<Message>, AppError> {
    if !me.user.role.can_send() {
        return Err(AppError::forbidden("Viewers cannot cancel messages."));
    }
    let (scope, now) = (me.scope.clone(), st.now());
    let m = st
        .store
        .write(move |c| messages::cancel(c, &scope, &id, now))
        .await
        .map_err(|e| match e {
            StoreError::NotFound => AppError::not_found("message"),
            StoreError::Conflict(_) => AppError::new(
                StatusCode::CONFLICT,
                "not_queued",
                "This message is not waiting in the queue any more (it was sent, failed or cancelled).",
            ),
            other => other.into(),
        })?;
    st.events.message("message.status", &m);
    Ok(Json(m))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use openline_domain::templates::{Template, TemplateCategory, TemplateStatus};

    fn with_url(url: &str) -> Template {
        Template {
            name: "t".into(),
            language: "en".into(),
            category: TemplateCategory::Utility,
            components: vec![
                TemplateComponent::Body { text: "Hi".into() },
                TemplateComponent::Buttons {
                    buttons: vec![TemplateButton::Url {
                        text: "Open".into(),
                        url: url.into(),
                    }],
                },
            ],
            status: TemplateStatus::Approved,
        }
    }

    #[test]
    fn a_url_button_address_with_its_suffix_is_at_most_2000_characters() {
        let base = format!("https://bank.example/{}", "p".repeat(1_500));
        let t = with_url(&format!("{base}{DYNAMIC_URL_SUFFIX}"));
        let fits = "s".repeat(MAX_URL_CHARS - base.len());
        let ok = send_components(&t, None, std::slice::from_ref(&fits)).unwrap();
        assert!(url_lengths(&t, &ok).is_ok());
        let long = send_components(&t, None, &[format!("{fits}s")]).unwrap();
        let err = url_lengths(&t, &long).unwrap_err();
        assert_eq!(
            (err.status, err.code),
            (StatusCode::UNPROCESSABLE_ENTITY, "template_parameter_invalid")
        );
    }
}
