//! Message templates: their definition (as submitted to the provider and kept by the store), the
//! validation that catches what Meta would reject, and rendering with parameters.
//!
//! Outside the 24-hour window a business may only send a template Meta has approved, with parameters
//! that match it. Meta reports mismatches only after the fact (132000: wrong number of parameters,
//! 132012: a parameter in the wrong format, 132001: not approved), by which time the agent has moved on.
//! So openline checks the same rules here, before anything is stored or sent: [`render`] is the one
//! place a template becomes text, and it refuses rather than let the provider refuse later.
//!
//! Components are kept as JSON in the store, in the shape of [`TemplateComponent`] (lowercase tags, close
//! to Meta's own `HEADER`/`BODY`/`FOOTER`/`BUTTONS` shape so the provider adapter maps them one to one).
//! An image header takes its image (a public https link) when the template is sent, and a URL button
//! may end in `{{1}}`, a suffix given when it is sent (Meta's "dynamic URL"); [`send_components`]
//! checks both. Not modelled yet, and refused by validation rather than silently mishandled:
//! parameters in a text header, and Meta's special authentication (one-time password) buttons.

use crate::model::text_enum;
use crate::DomainError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

mod body;
#[cfg(test)]
mod tests;

pub use body::{body_parameters, BodyParameters};

/// Longest template name Meta accepts.
pub const MAX_NAME_CHARS: usize = 512;
/// Longest body text, and longest body once rendered.
pub const MAX_BODY_CHARS: usize = 1024;
/// Longest header or footer text.
pub const MAX_HEADER_FOOTER_CHARS: usize = 60;
/// Longest button label.
pub const MAX_BUTTON_TEXT_CHARS: usize = 25;
/// Most buttons on one template, and most of them URL buttons.
pub const MAX_BUTTONS: usize = 10;
pub const MAX_URL_BUTTONS: usize = 2;
/// Longest single parameter value.
pub const MAX_PARAMETER_CHARS: usize = 1024;
/// How a URL button's address ends when it takes a parameter.
pub const DYNAMIC_URL_SUFFIX: &str = "{{1}}";
/// Longest URL (an image link, or a URL button's address with its suffix).
pub const MAX_URL_CHARS: usize = 2000;

text_enum! {
    /// Meta's template categories; they decide pricing and which content is allowed.
    pub enum TemplateCategory {
        Marketing => "marketing",
        Utility => "utility",
        Authentication => "authentication",
    }
}

/// Where the provider's review of a template stands. Only `Approved` may be sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum TemplateStatus {
    /// Submitted; the provider has not decided yet.
    Pending,
    Approved,
    /// Refused by the provider, with its reason (e.g. `INVALID_FORMAT`), shown to the admin.
    Rejected {
        reason: String,
    },
    /// Paused by the provider for low quality; it may come back.
    Paused,
    /// Disabled by the provider; it will not come back.
    Disabled,
}

impl TemplateStatus {
    /// The text the store writes in its status column (the reason goes in its own column).
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Approved => "approved",
            Self::Rejected { .. } => "rejected",
            Self::Paused => "paused",
            Self::Disabled => "disabled",
        }
    }

    /// Rebuilds a status from the store's two columns. A rejection without a recorded reason gets
    /// an empty one rather than failing to load.
    pub fn from_parts(status: &str, reason: Option<&str>) -> Option<Self> {
        Some(match status {
            "pending" => Self::Pending,
            "approved" => Self::Approved,
            "rejected" => Self::Rejected {
                reason: reason.unwrap_or_default().to_owned(),
            },
            "paused" => Self::Paused,
            "disabled" => Self::Disabled,
            _ => return None,
        })
    }

    pub fn is_approved(&self) -> bool {
        matches!(self, Self::Approved)
    }
}

/// The top of a template: a short text or an image.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "format", rename_all = "snake_case")]
pub enum TemplateHeader {
    Text {
        text: String,
    },
    /// An image chosen when the template is sent; `example_url` is the sample shown to reviewers.
    Image {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        example_url: Option<String>,
    },
}

/// A button under the message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TemplateButton {
    /// Sends `text` back as the contact's reply (and a payload the webhook carries).
    QuickReply { text: String },
    /// Opens `url` (`http://` or `https://`); a URL ending in `{{1}}` takes that suffix when the
    /// template is sent (e.g. `https://bank.example/appointments/{{1}}`).
    Url { text: String, url: String },
}

/// One part of a template, in Meta's order: header, body, footer, buttons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TemplateComponent {
    Header(TemplateHeader),
    /// The message text, with `{{1}}`-style positional or `{{name}}` named parameters (not both).
    Body {
        text: String,
    },
    /// Small grey text under the body; no parameters.
    Footer {
        text: String,
    },
    Buttons {
        buttons: Vec<TemplateButton>,
    },
}

/// A template as managed per sender (WABA): what was submitted and where its review stands.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Template {
    /// Lowercase letters, digits and underscores, at most 512 characters; unique per language.
    pub name: String,
    /// Meta's language code: `en`, `en_US`, `pt_BR`, `fil`.
    pub language: String,
    pub category: TemplateCategory,
    pub components: Vec<TemplateComponent>,
    pub status: TemplateStatus,
}

/// Parameter values for sending a template: a list for `{{1}}`-style templates, an object for
/// templates with named parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum TemplateParams {
    Positional(Vec<String>),
    Named(BTreeMap<String, String>),
}

impl Default for TemplateParams {
    fn default() -> Self {
        Self::Positional(Vec::new())
    }
}

fn invalid(message: impl Into<String>) -> DomainError {
    DomainError::new("template_invalid", message)
}

/// Checks a template definition against Meta's rules before it is submitted, so an admin learns
/// what to fix now instead of reading a rejection later. The approval status is not checked.
pub fn validate_template(template: &Template) -> Result<(), DomainError> {
    validate_name(&template.name)?;
    validate_language(&template.language)?;
    let count = |f: fn(&TemplateComponent) -> bool| template.components.iter().filter(|c| f(c)).count();
    if count(|c| matches!(c, TemplateComponent::Body { .. })) != 1 {
        return Err(invalid("A template needs exactly one body."));
    }
    for (what, n) in [
        ("header", count(|c| matches!(c, TemplateComponent::Header(_)))),
        ("footer", count(|c| matches!(c, TemplateComponent::Footer { .. }))),
        ("button list", count(|c| matches!(c, TemplateComponent::Buttons { .. }))),
    ] {
        if n > 1 {
            return Err(invalid(format!("A template may have at most one {what}.")));
        }
    }
    for component in &template.components {
        validate_component(component)?;
    }
    // Parses the body: malformed or mixed parameters, or a parameter at either end, are refused here.
    body_parameters(template)?;
    Ok(())
}

fn validate_name(name: &str) -> Result<(), DomainError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_CHARS
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(invalid(format!(
            "A template name uses only lowercase letters, digits and underscores, 1 to {MAX_NAME_CHARS} characters, like order_update_2."
        )))
    }
}

/// `ll`, `lll`, `ll_CC` or `lll_CC`: a lowercase language and an optional uppercase region.
fn validate_language(code: &str) -> Result<(), DomainError> {
    let (lang, region) = match code.split_once('_') {
        Some((l, r)) => (l, Some(r)),
        None => (code, None),
    };
    let lang_ok = (2..=3).contains(&lang.len()) && lang.bytes().all(|b| b.is_ascii_lowercase());
    let region_ok = region.is_none_or(|r| r.len() == 2 && r.bytes().all(|b| b.is_ascii_uppercase()));
    if lang_ok && region_ok {
        Ok(())
    } else {
        Err(invalid("The language must be a code like en, en_US or pt_BR."))
    }
}

fn validate_component(component: &TemplateComponent) -> Result<(), DomainError> {
    match component {
        TemplateComponent::Header(TemplateHeader::Text { text }) => short_static_text("header", text),
        TemplateComponent::Header(TemplateHeader::Image { .. }) => Ok(()),
        TemplateComponent::Body { text } => {
            let n = text.chars().count();
            if text.trim().is_empty() || n > MAX_BODY_CHARS {
                return Err(invalid(format!(
                    "The body must have 1 to {MAX_BODY_CHARS} characters; it has {n}."
                )));
            }
            Ok(())
        }
        TemplateComponent::Footer { text } => short_static_text("footer", text),
        TemplateComponent::Buttons { buttons } => validate_buttons(buttons),
    }
}

fn short_static_text(what: &str, text: &str) -> Result<(), DomainError> {
    let n = text.chars().count();
    if text.trim().is_empty() || n > MAX_HEADER_FOOTER_CHARS {
        return Err(invalid(format!(
            "The {what} must have 1 to {MAX_HEADER_FOOTER_CHARS} characters; it has {n}."
        )));
    }
    if text.contains("{{") {
        return Err(invalid(format!(
            "Parameters in the {what} are not supported; put them in the body."
        )));
    }
    Ok(())
}

fn validate_buttons(buttons: &[TemplateButton]) -> Result<(), DomainError> {
    if buttons.is_empty() || buttons.len() > MAX_BUTTONS {
        return Err(invalid(format!("A button list has 1 to {MAX_BUTTONS} buttons.")));
    }
    let urls = buttons
        .iter()
        .filter(|b| matches!(b, TemplateButton::Url { .. }))
        .count();
    if urls > MAX_URL_BUTTONS {
        return Err(invalid(format!(
            "A template may have at most {MAX_URL_BUTTONS} URL buttons."
        )));
    }
    for button in buttons {
        let (TemplateButton::QuickReply { text } | TemplateButton::Url { text, .. }) = button;
        let n = text.chars().count();
        if text.trim().is_empty() || n > MAX_BUTTON_TEXT_CHARS {
            return Err(invalid(format!(
                "A button label must have 1 to {MAX_BUTTON_TEXT_CHARS} characters; one has {n}."
            )));
        }
        if let TemplateButton::Url { url, .. } = button {
            let scheme_ok = url.starts_with("https://") || url.starts_with("http://");
            if !scheme_ok || url.len() > 2000 || url.chars().any(char::is_whitespace) {
                return Err(invalid("A URL button needs a web address starting with https://."));
            }
            let fixed = url.strip_suffix(DYNAMIC_URL_SUFFIX).unwrap_or(url);
            if fixed.contains("{{") || fixed.contains("}}") {
                return Err(invalid(
                    "A URL button may only take a parameter as {{1}} at the very end of its address.",
                ));
            }
        }
    }
    Ok(())
}

/// Renders the body of an approved template with `params`, checking every parameter first as Meta
/// would (count 132000, format 132012, approval 132001), so a template that renders here is one the
/// provider accepts. Returns the body text the contact will read (header, footer and buttons are
/// fixed and shown from the definition).
///
/// Codes: `template_not_approved`, `template_parameter_count` (missing, extra or unknown
/// parameters, or a list given for named parameters and vice versa), `template_parameter_invalid`
/// (empty, longer than 1024 characters, a newline or tab, more than 4 spaces in a row),
/// `template_too_long` (the rendered body exceeds 1024 characters), `template_invalid`.
pub fn render(template: &Template, params: &TemplateParams) -> Result<String, DomainError> {
    if !template.status.is_approved() {
        let why = match &template.status {
            TemplateStatus::Rejected { reason } if !reason.is_empty() => format!("rejected ({reason})"),
            other => other.as_str().to_owned(),
        };
        return Err(DomainError::new(
            "template_not_approved",
            format!(
                "The template {} ({}) is {why}; only approved templates can be sent. Choose an approved one.",
                template.name, template.language
            ),
        ));
    }
    body::render_body(template, params)
}

/// Checks one parameter value against Meta's format rules (132012). `which` names it in the message;
/// the value itself is never echoed, since it is usually personal data.
pub fn validate_parameter(which: &str, value: &str) -> Result<(), DomainError> {
    let bad = |why: &str| {
        Err(DomainError::new(
            "template_parameter_invalid",
            format!("Template parameter {which} {why}."),
        ))
    };
    if value.trim().is_empty() {
        return bad("is empty; every parameter needs a value");
    }
    let n = value.chars().count();
    if n > MAX_PARAMETER_CHARS {
        return bad(&format!(
            "has {n} characters; at most {MAX_PARAMETER_CHARS} are allowed"
        ));
    }
    if value.contains(['\n', '\r', '\t']) {
        return bad("contains a line break or tab, which WhatsApp does not allow in parameters");
    }
    if value.contains("     ") {
        return bad("contains more than 4 spaces in a row, which WhatsApp does not allow");
    }
    Ok(())
}

/// What a template send gives besides the body's parameters: the header's image and the suffixes
/// of URL buttons that end in `{{1}}`, checked and placed for the provider request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SendComponents {
    /// The image link for an image header.
    pub header_image_link: Option<String>,
    /// (button index among all the template's buttons, suffix), in button order.
    pub url_buttons: Vec<(usize, String)>,
}

fn https_link(what: &str, link: &str) -> Result<(), DomainError> {
    let ok = link.starts_with("https://")
        && link.len() > "https://".len()
        && link.chars().count() <= MAX_URL_CHARS
        && !link.chars().any(char::is_whitespace);
    if ok {
        Ok(())
    } else {
        Err(DomainError::new(
            "template_parameter_invalid",
            format!("The {what} must be a public https:// link of at most {MAX_URL_CHARS} characters, without spaces."),
        ))
    }
}

/// Checks a send's header image and URL-button suffixes against the template, as Meta would
/// (a missing or extra one is 132000, a malformed one 132012), and says where each goes.
///
/// Codes: `template_parameter_count` (an image header without an image, an image for a template
/// without one, or a different number of URL suffixes than the template's `{{1}}` URL buttons),
/// `template_parameter_invalid` (not an https link; a suffix that is empty, too long, or has spaces).
pub fn send_components(
    template: &Template,
    header_image_link: Option<&str>,
    url_parameters: &[String],
) -> Result<SendComponents, DomainError> {
    let count = |msg: String| Err(DomainError::new("template_parameter_count", msg));
    let image_header = template
        .components
        .iter()
        .any(|c| matches!(c, TemplateComponent::Header(TemplateHeader::Image { .. })));
    let header_image_link = match (image_header, header_image_link) {
        (true, Some(link)) => {
            https_link("header image", link)?;
            Some(link.to_owned())
        }
        (true, None) => {
            return count(format!(
                "The template {} has an image header: give the image's https link.",
                template.name
            ))
        }
        (false, Some(_)) => {
            return count(format!(
                "The template {} has no image header; send it without an image.",
                template.name
            ))
        }
        (false, None) => None,
    };
    let dynamic: Vec<usize> = template
        .components
        .iter()
        .filter_map(|c| match c {
            TemplateComponent::Buttons { buttons } => Some(buttons),
            _ => None,
        })
        .flatten()
        .enumerate()
        .filter(|(_, b)| matches!(b, TemplateButton::Url { url, .. } if url.ends_with(DYNAMIC_URL_SUFFIX)))
        .map(|(i, _)| i)
        .collect();
    if dynamic.len() != url_parameters.len() {
        return count(format!(
            "The template {} has {} URL button(s) that take a parameter; {} were given.",
            template.name,
            dynamic.len(),
            url_parameters.len()
        ));
    }
    let mut url_buttons = Vec::with_capacity(dynamic.len());
    for (n, (index, value)) in dynamic.into_iter().zip(url_parameters).enumerate() {
        validate_parameter(&format!("for URL button {}", n + 1), value)?;
        if value.chars().any(char::is_whitespace) || value.chars().count() > MAX_URL_CHARS {
            return Err(DomainError::new(
                "template_parameter_invalid",
                format!(
                    "Template parameter for URL button {} must be part of a web address: no spaces.",
                    n + 1
                ),
            ));
        }
        url_buttons.push((index, value.clone()));
    }
    Ok(SendComponents {
        header_image_link,
        url_buttons,
    })
}
