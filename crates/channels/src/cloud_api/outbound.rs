//! What openline asks the Cloud API to send, and the exact JSON body that asks for it.
//!
//! Building the body is a pure function so it can be checked against Meta's OpenAPI spec in tests
//! (see `tests/spec_conformance.rs`) without a network. Where the spec demands something the real
//! API merely tolerates, we send it so our requests are valid under both: `recipient_type:
//! "individual"` on every message and `policy: "deterministic"` on template languages. Component
//! and parameter types are lower-case, as the spec requires (the real API accepts either case).

use openline_domain::MessageKind;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

/// A message to send through the Cloud API.
#[derive(Debug, Clone, PartialEq)]
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
    /// A pin on a map, with an optional name and address.
    Location {
        /// The recipient, as for `Text`.
        to: String,
        location: Location,
        /// The provider message id this message replies to.
        reply_to: Option<String>,
    },
    /// One or more contact cards (at most [`MAX_CONTACT_CARDS`]).
    Contacts {
        /// The recipient, as for `Text`.
        to: String,
        contacts: Vec<ContactCard>,
        /// The provider message id this message replies to.
        reply_to: Option<String>,
    },
    /// Reply buttons or a list the contact chooses from; the choice comes back as an
    /// `interactive.button_reply` / `list_reply` webhook carrying the chosen id.
    Interactive {
        /// The recipient, as for `Text`.
        to: String,
        interactive: Interactive,
        /// The provider message id this message replies to.
        reply_to: Option<String>,
    },
}

/// Most contact cards in one message (Meta's `maxItems`).
pub const MAX_CONTACT_CARDS: usize = 5;
/// Most reply buttons in a button message.
pub const MAX_REPLY_BUTTONS: usize = 3;
/// Longest reply-button id, in characters.
pub const MAX_BUTTON_ID_CHARS: usize = 256;
/// Longest reply-button title, in characters.
pub const MAX_BUTTON_TITLE_CHARS: usize = 20;
/// Longest interactive body, in characters.
pub const MAX_INTERACTIVE_BODY_CHARS: usize = 1024;
/// Longest interactive header or footer text, in characters.
pub const MAX_HEADER_FOOTER_CHARS: usize = 60;
/// Longest text of the button that opens a list, in characters.
pub const MAX_LIST_BUTTON_CHARS: usize = 20;
/// Most sections in a list.
pub const MAX_LIST_SECTIONS: usize = 10;
/// Most rows in a list, all sections together.
pub const MAX_LIST_ROWS: usize = 10;
/// Longest section title, in characters.
pub const MAX_SECTION_TITLE_CHARS: usize = 24;
/// Longest row id, in characters.
pub const MAX_ROW_ID_CHARS: usize = 200;
/// Longest row title, in characters.
pub const MAX_ROW_TITLE_CHARS: usize = 24;
/// Longest row description, in characters.
pub const MAX_ROW_DESCRIPTION_CHARS: usize = 72;

/// A place on a map. Latitude and longitude are degrees (WGS 84).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Location {
    pub latitude: f64,
    pub longitude: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

/// A contact card: the typed subset of Meta's contact object openline sends (name, phones, emails,
/// organization). Field names are Meta's, so the card serializes straight into the request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactCard {
    pub name: ContactName,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phones: Vec<ContactPhone>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub emails: Vec<ContactEmail>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<ContactOrg>,
}

/// A contact card's name; `formatted_name` is what the phone shows and is required.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactName {
    pub formatted_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
}

/// Whether a phone number or email address is a home or work one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ContactInfoType {
    Home,
    Work,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactPhone {
    /// The number as it should be shown (`+1 650 555 1234`).
    pub phone: String,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ContactInfoType>,
    /// The WhatsApp id, which adds a "Message" button to the card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wa_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactEmail {
    pub email: String,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<ContactInfoType>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactOrg {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// An interactive message: reply buttons or a list, with an optional text header and footer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Interactive {
    /// Up to three buttons under the body.
    Buttons {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header: Option<String>,
        body: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        footer: Option<String>,
        buttons: Vec<ReplyButton>,
    },
    /// A button (`button` is its text) that opens a list of rows in sections.
    List {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        header: Option<String>,
        body: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        footer: Option<String>,
        button: String,
        sections: Vec<ListSection>,
    },
}

/// A reply button: `id` comes back when it is tapped, `title` is its label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyButton {
    pub id: String,
    pub title: String,
}

/// A section of a list; its title is required when the list has more than one section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListSection {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    pub rows: Vec<ListRow>,
}

/// A row of a list: `id` comes back when it is chosen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListRow {
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Why a rich message cannot be sent as given: a stable code and a sentence saying what to change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShapeError {
    pub code: &'static str,
    pub message: String,
}

fn shape(code: &'static str, message: impl Into<String>) -> ShapeError {
    ShapeError {
        code,
        message: message.into(),
    }
}

/// `text` must have 1..=`max` characters and not be only spaces.
fn check_text(text: &str, max: usize, code: &'static str, what: &str) -> Result<(), ShapeError> {
    let chars = text.chars().count();
    if text.trim().is_empty() {
        return Err(shape(code, format!("{what} is empty; give 1 to {max} characters.")));
    }
    if chars > max {
        return Err(shape(
            code,
            format!("{what} has {chars} characters; WhatsApp allows at most {max}. Shorten it."),
        ));
    }
    Ok(())
}

impl Interactive {
    /// The body text.
    pub fn body(&self) -> &str {
        match self {
            Self::Buttons { body, .. } | Self::List { body, .. } => body,
        }
    }

    /// Every text the contact sees (header, body, footer, button and row titles, row descriptions,
    /// section titles), for data-loss checks.
    pub fn visible_texts(&self) -> Vec<&str> {
        let (header, body, footer) = match self {
            Self::Buttons {
                header, body, footer, ..
            }
            | Self::List {
                header, body, footer, ..
            } => (header, body, footer),
        };
        let mut out: Vec<&str> = header.iter().chain(footer.iter()).map(String::as_str).collect();
        out.push(body);
        match self {
            Self::Buttons { buttons, .. } => out.extend(buttons.iter().map(|b| b.title.as_str())),
            Self::List { button, sections, .. } => {
                out.push(button);
                for s in sections {
                    out.extend(s.title.as_deref());
                    for r in &s.rows {
                        out.push(&r.title);
                        out.extend(r.description.as_deref());
                    }
                }
            }
        }
        out
    }

    /// Checks Meta's limits: 1–3 buttons with unique ids (≤256) and unique titles (≤20); a list with a
    /// button text (≤20), 1–10 sections, 1–10 rows in all with unique ids (≤200), titles (≤24) and
    /// descriptions (≤72); a body (≤1024), optional header and footer (≤60).
    pub fn check(&self) -> Result<(), ShapeError> {
        let (header, body, footer) = match self {
            Self::Buttons {
                header, body, footer, ..
            }
            | Self::List {
                header, body, footer, ..
            } => (header, body, footer),
        };
        check_text(body, MAX_INTERACTIVE_BODY_CHARS, "interactive_body_invalid", "The body")?;
        if let Some(h) = header {
            check_text(h, MAX_HEADER_FOOTER_CHARS, "interactive_header_invalid", "The header")?;
        }
        if let Some(f) = footer {
            check_text(f, MAX_HEADER_FOOTER_CHARS, "interactive_footer_invalid", "The footer")?;
        }
        let mut ids: Vec<&str> = Vec::new();
        match self {
            Self::Buttons { buttons, .. } => {
                if buttons.is_empty() || buttons.len() > MAX_REPLY_BUTTONS {
                    return Err(shape(
                        "interactive_button_count",
                        format!(
                            "A button message has 1 to {MAX_REPLY_BUTTONS} buttons; this one has {}. For more choices, send a list.",
                            buttons.len()
                        ),
                    ));
                }
                for (i, b) in buttons.iter().enumerate() {
                    let n = i + 1;
                    check_text(
                        &b.id,
                        MAX_BUTTON_ID_CHARS,
                        "interactive_button_id_invalid",
                        &format!("The id of button {n}"),
                    )?;
                    check_text(
                        &b.title,
                        MAX_BUTTON_TITLE_CHARS,
                        "interactive_button_title_invalid",
                        &format!("The title of button {n}"),
                    )?;
                    ids.push(&b.id);
                }
                // WhatsApp refuses two buttons with the same label (131009).
                if let Some((i, b)) = buttons
                    .iter()
                    .enumerate()
                    .find(|(i, b)| buttons[..*i].iter().any(|a| a.title == b.title))
                {
                    return Err(shape(
                        "interactive_duplicate_title",
                        format!(
                            "Button {} has the title {:?} of an earlier button; each button needs its own title.",
                            i + 1,
                            b.title
                        ),
                    ));
                }
            }
            Self::List { button, sections, .. } => {
                check_text(
                    button,
                    MAX_LIST_BUTTON_CHARS,
                    "interactive_list_button_invalid",
                    "The list's button text",
                )?;
                if sections.is_empty() || sections.len() > MAX_LIST_SECTIONS {
                    return Err(shape(
                        "interactive_section_count",
                        format!(
                            "A list has 1 to {MAX_LIST_SECTIONS} sections; this one has {}.",
                            sections.len()
                        ),
                    ));
                }
                let rows: usize = sections.iter().map(|s| s.rows.len()).sum();
                if rows == 0 || rows > MAX_LIST_ROWS || sections.iter().any(|s| s.rows.is_empty()) {
                    return Err(shape(
                        "interactive_row_count",
                        format!(
                            "A list has 1 to {MAX_LIST_ROWS} rows in all, and every section at least one; this one has {rows}."
                        ),
                    ));
                }
                for (i, s) in sections.iter().enumerate() {
                    let n = i + 1;
                    match &s.title {
                        Some(t) => check_text(
                            t,
                            MAX_SECTION_TITLE_CHARS,
                            "interactive_section_title_invalid",
                            &format!("The title of section {n}"),
                        )?,
                        None if sections.len() > 1 => {
                            return Err(shape(
                                "interactive_section_title_invalid",
                                format!(
                                    "Section {n} has no title; a list with several sections needs a title on each."
                                ),
                            ))
                        }
                        None => {}
                    }
                    for (j, r) in s.rows.iter().enumerate() {
                        let at = format!("row {} of section {n}", j + 1);
                        check_text(
                            &r.id,
                            MAX_ROW_ID_CHARS,
                            "interactive_row_id_invalid",
                            &format!("The id of {at}"),
                        )?;
                        check_text(
                            &r.title,
                            MAX_ROW_TITLE_CHARS,
                            "interactive_row_title_invalid",
                            &format!("The title of {at}"),
                        )?;
                        if let Some(d) = &r.description {
                            check_text(
                                d,
                                MAX_ROW_DESCRIPTION_CHARS,
                                "interactive_row_description_invalid",
                                &format!("The description of {at}"),
                            )?;
                        }
                        ids.push(&r.id);
                    }
                }
            }
        }
        let mut sorted = ids.clone();
        sorted.sort_unstable();
        if let Some(w) = sorted.windows(2).find(|w| w[0] == w[1]) {
            return Err(shape(
                "interactive_duplicate_id",
                format!("The id {:?} is used twice; each button or row needs its own id.", w[0]),
            ));
        }
        Ok(())
    }

    fn to_object(&self) -> Value {
        let (kind, header, body, footer) = match self {
            Self::Buttons {
                header, body, footer, ..
            } => ("button", header, body, footer),
            Self::List {
                header, body, footer, ..
            } => ("list", header, body, footer),
        };
        let action = match self {
            Self::Buttons { buttons, .. } => json!({
                "buttons": buttons
                    .iter()
                    .map(|b| json!({ "type": "reply", "reply": { "id": b.id, "title": b.title } }))
                    .collect::<Vec<_>>(),
            }),
            Self::List { button, sections, .. } => json!({ "button": button, "sections": sections }),
        };
        let mut object = Map::new();
        object.insert("type".into(), json!(kind));
        if let Some(h) = header {
            object.insert("header".into(), json!({ "type": "text", "text": h }));
        }
        object.insert("body".into(), json!({ "text": body }));
        if let Some(f) = footer {
            object.insert("footer".into(), json!({ "text": f }));
        }
        object.insert("action".into(), action);
        Value::Object(object)
    }
}

impl Location {
    /// Latitude in -90..=90 and longitude in -180..=180 (finite); name and address at most 1000
    /// characters each.
    pub fn check(&self) -> Result<(), ShapeError> {
        // NaN and infinities fall outside both ranges.
        let on_earth = (-90.0..=90.0).contains(&self.latitude) && (-180.0..=180.0).contains(&self.longitude);
        if !on_earth {
            return Err(shape(
                "location_invalid",
                "Latitude must be between -90 and 90 and longitude between -180 and 180 (degrees).",
            ));
        }
        for (what, text) in [("name", &self.name), ("address", &self.address)] {
            if let Some(t) = text {
                check_text(t, 1000, "location_invalid", &format!("The location's {what}"))?;
            }
        }
        Ok(())
    }
}

/// Checks a message's contact cards: 1 to [`MAX_CONTACT_CARDS`], each with a formatted name and
/// non-empty phone numbers and email addresses.
pub fn check_contact_cards(cards: &[ContactCard]) -> Result<(), ShapeError> {
    if cards.is_empty() || cards.len() > MAX_CONTACT_CARDS {
        return Err(shape(
            "contacts_invalid",
            format!(
                "Send 1 to {MAX_CONTACT_CARDS} contact cards in one message; this one has {}.",
                cards.len()
            ),
        ));
    }
    for (i, card) in cards.iter().enumerate() {
        let n = i + 1;
        check_text(
            &card.name.formatted_name,
            512,
            "contacts_invalid",
            &format!("The formatted_name of contact card {n}"),
        )?;
        if card.phones.iter().any(|p| p.phone.trim().is_empty()) {
            return Err(shape(
                "contacts_invalid",
                format!("Contact card {n} has an empty phone number."),
            ));
        }
        if card.emails.iter().any(|e| !e.email.contains('@')) {
            return Err(shape(
                "contacts_invalid",
                format!("Contact card {n} has an email address without an @."),
            ));
        }
    }
    Ok(())
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
            Self::Text { to, .. }
            | Self::Template { to, .. }
            | Self::Media { to, .. }
            | Self::Reaction { to, .. }
            | Self::Location { to, .. }
            | Self::Contacts { to, .. }
            | Self::Interactive { to, .. } => to,
        }
    }

    /// What the message is, in openline's terms.
    pub fn kind(&self) -> MessageKind {
        match self {
            Self::Text { .. } => MessageKind::Text,
            Self::Template { .. } => MessageKind::Template,
            Self::Reaction { .. } => MessageKind::Reaction,
            Self::Location { .. } => MessageKind::Location,
            Self::Contacts { .. } => MessageKind::Contacts,
            Self::Interactive { .. } => MessageKind::Interactive,
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
            // Meta's spec types latitude and longitude as strings (its example sends numbers); the API
            // takes either, so we send what the spec asks for.
            Self::Location { to, location, reply_to } => {
                let mut object = json!({
                    "latitude": location.latitude.to_string(),
                    "longitude": location.longitude.to_string(),
                });
                if let Some(name) = &location.name {
                    object["name"] = json!(name);
                }
                if let Some(address) = &location.address {
                    object["address"] = json!(address);
                }
                envelope(to, "location", object, reply_to.as_deref())
            }
            Self::Contacts { to, contacts, reply_to } => envelope(to, "contacts", json!(contacts), reply_to.as_deref()),
            Self::Interactive {
                to,
                interactive,
                reply_to,
            } => envelope(to, "interactive", interactive.to_object(), reply_to.as_deref()),
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

    fn buttons(titles: &[&str]) -> Interactive {
        Interactive::Buttons {
            header: None,
            body: "Is this your card?".into(),
            footer: None,
            buttons: titles
                .iter()
                .enumerate()
                .map(|(i, t)| ReplyButton {
                    id: format!("b{i}"),
                    title: (*t).into(),
                })
                .collect(),
        }
    }

    fn list(rows_per_section: &[usize]) -> Interactive {
        Interactive::List {
            header: Some("Branches".into()),
            body: "Pick a branch".into(),
            footer: None,
            button: "Choose".into(),
            sections: rows_per_section
                .iter()
                .enumerate()
                .map(|(s, n)| ListSection {
                    title: Some(format!("Region {s}")),
                    rows: (0..*n)
                        .map(|r| ListRow {
                            id: format!("s{s}r{r}"),
                            title: format!("Branch {r}"),
                            description: None,
                        })
                        .collect(),
                })
                .collect(),
        }
    }

    #[test]
    fn reply_buttons_are_checked_against_metas_limits() {
        assert!(buttons(&["Yes", "No"]).check().is_ok());
        assert_eq!(buttons(&[]).check().unwrap_err().code, "interactive_button_count");
        assert_eq!(
            buttons(&["a", "b", "c", "d"]).check().unwrap_err().code,
            "interactive_button_count"
        );
        let title_21 = "x".repeat(21);
        assert_eq!(
            buttons(&["Yes", &title_21]).check().unwrap_err().code,
            "interactive_button_title_invalid"
        );
        // Characters, not bytes: 20 emoji are fine.
        assert!(buttons(&[&"\u{1f600}".repeat(20)]).check().is_ok());
        let mut same_ids = buttons(&["Yes", "No"]);
        if let Interactive::Buttons { buttons, .. } = &mut same_ids {
            buttons[1].id = "b0".into();
        }
        assert_eq!(same_ids.check().unwrap_err().code, "interactive_duplicate_id");
        assert_eq!(
            buttons(&["Yes", "Yes"]).check().unwrap_err().code,
            "interactive_duplicate_title"
        );
        let mut long_body = buttons(&["Yes"]);
        if let Interactive::Buttons { body, .. } = &mut long_body {
            *body = "y".repeat(1025);
        }
        assert_eq!(long_body.check().unwrap_err().code, "interactive_body_invalid");
    }

    #[test]
    fn lists_are_checked_against_metas_limits() {
        assert!(list(&[4, 6]).check().is_ok());
        assert_eq!(list(&[6, 5]).check().unwrap_err().code, "interactive_row_count");
        assert_eq!(list(&[]).check().unwrap_err().code, "interactive_section_count");
        assert_eq!(list(&[1; 11]).check().unwrap_err().code, "interactive_section_count");
        let mut long_row = list(&[2]);
        if let Interactive::List { sections, .. } = &mut long_row {
            sections[0].rows[1].title = "r".repeat(25);
        }
        assert_eq!(long_row.check().unwrap_err().code, "interactive_row_title_invalid");
        let mut long_description = list(&[2]);
        if let Interactive::List { sections, .. } = &mut long_description {
            sections[0].rows[0].description = Some("d".repeat(73));
        }
        assert_eq!(
            long_description.check().unwrap_err().code,
            "interactive_row_description_invalid"
        );
        let mut untitled = list(&[1, 1]);
        if let Interactive::List { sections, .. } = &mut untitled {
            sections[1].title = None;
        }
        assert_eq!(untitled.check().unwrap_err().code, "interactive_section_title_invalid");
    }

    #[test]
    fn an_interactive_list_serializes_as_metas_example_does() {
        let body = OutboundMessage::Interactive {
            to: "1".into(),
            interactive: list(&[1]),
            reply_to: None,
        }
        .to_request_body();
        assert_eq!(
            body["interactive"],
            json!({
                "type": "list",
                "header": { "type": "text", "text": "Branches" },
                "body": { "text": "Pick a branch" },
                "action": { "button": "Choose", "sections": [
                    { "title": "Region 0", "rows": [{ "id": "s0r0", "title": "Branch 0" }] }
                ] },
            })
        );
        let one = list(&[1]);
        let visible = one.visible_texts();
        assert!(visible.contains(&"Branch 0") && visible.contains(&"Region 0") && visible.contains(&"Choose"));
    }

    #[test]
    fn locations_and_contact_cards_are_checked() {
        let place = |latitude, longitude| Location {
            latitude,
            longitude,
            name: None,
            address: None,
        };
        assert!(place(51.5, -0.12).check().is_ok());
        assert_eq!(place(91.0, 0.0).check().unwrap_err().code, "location_invalid");
        assert_eq!(place(0.0, f64::NAN).check().unwrap_err().code, "location_invalid");
        let card = |name: &str| ContactCard {
            name: ContactName {
                formatted_name: name.into(),
                first_name: None,
                last_name: None,
            },
            phones: vec![],
            emails: vec![],
            org: None,
        };
        assert!(check_contact_cards(&[card("Ada Lovelace")]).is_ok());
        assert_eq!(check_contact_cards(&[]).unwrap_err().code, "contacts_invalid");
        assert_eq!(check_contact_cards(&[card(" ")]).unwrap_err().code, "contacts_invalid");
        assert_eq!(
            check_contact_cards(&vec![card("A"); 6]).unwrap_err().code,
            "contacts_invalid"
        );
    }
}
