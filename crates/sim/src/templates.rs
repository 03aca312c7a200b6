//! Message templates as Meta keeps them: a registry per WhatsApp Business Account, each template
//! with Meta's numeric id, its name, language, category, components (JSON as submitted) and review
//! status; the review decisions Meta takes (approve, reject with a reason, pause, disable), each
//! announced with a signed `message_template_status_update` webhook; and the check Meta makes when a
//! business sends a template (it must exist in that language, be approved and get as many parameters
//! as it has placeholders).
//!
//! Templates listed in [`crate::SimConfig::templates`] exist, approved, in every business number's
//! WABA from the start; others are submitted through `POST /{waba_id}/message_templates` and stay
//! `PENDING` until the admin API decides.

use crate::config::SimTemplate;
use crate::error::SimError;
use crate::graph::error::GraphError;
use crate::graph::validate::{OutboundMessage, SentParam};
use crate::state::{ButtonKind, ButtonView, SimState};
use crate::{ids, payloads, SimBusinessNumber, Simulator};
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::oneshot;
use utoipa::ToSchema;

/// A template's review status, as Meta spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TemplateStatus {
    /// Submitted, not reviewed yet: cannot be sent.
    Pending,
    /// Can be sent.
    Approved,
    /// Refused in review (see `rejected_reason`): cannot be sent.
    Rejected,
    /// Paused for low quality: sends fail with 132015 until it is approved again.
    Paused,
    /// Paused too often and permanently disabled: sends fail with 132016.
    Disabled,
}

impl TemplateStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "PENDING",
            Self::Approved => "APPROVED",
            Self::Rejected => "REJECTED",
            Self::Paused => "PAUSED",
            Self::Disabled => "DISABLED",
        }
    }
}

/// Why Meta rejected a template (the `reason` of a `REJECTED` status webhook).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RejectionReason {
    AbusiveContent,
    InvalidFormat,
    Promotional,
    TagContentMismatch,
    Scam,
    None,
}

impl RejectionReason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AbusiveContent => "ABUSIVE_CONTENT",
            Self::InvalidFormat => "INVALID_FORMAT",
            Self::Promotional => "PROMOTIONAL",
            Self::TagContentMismatch => "TAG_CONTENT_MISMATCH",
            Self::Scam => "SCAM",
            Self::None => "NONE",
        }
    }

    /// The `rejection_info` sentences Meta adds to a rejection webhook.
    fn explanation(self) -> (&'static str, &'static str) {
        match self {
            Self::AbusiveContent => (
                "Your template contains content that violates WhatsApp's policies.",
                "Remove threatening, abusive or otherwise policy-violating content.",
            ),
            Self::InvalidFormat => (
                "Your template's format is not valid, for example parameters placed next to each other or at the start or end of the body.",
                "Separate parameters with descriptive text and make sure each one is clearly contextualized.",
            ),
            Self::Promotional => (
                "Your template was submitted as UTILITY or AUTHENTICATION but contains promotional content.",
                "Submit it in the MARKETING category or remove the promotional content.",
            ),
            Self::TagContentMismatch => (
                "Your template's content does not match the category it was submitted in.",
                "Choose the category that fits the content.",
            ),
            Self::Scam => (
                "Your template looks like it is meant to deceive recipients.",
                "Make the template's purpose and sender clear.",
            ),
            Self::None => ("", ""),
        }
    }
}

/// A decision about a template, taken through the admin API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TemplateAction {
    Approve,
    Reject(RejectionReason),
    Pause,
    Disable,
}

impl TemplateAction {
    fn verb(self) -> &'static str {
        match self {
            Self::Approve => "approved",
            Self::Reject(_) => "rejected",
            Self::Pause => "paused",
            Self::Disable => "disabled",
        }
    }
}

/// Where a decision takes a template, or `None` when it cannot apply to the current status.
///
/// Approving works on a pending template, a rejected one (an appeal that succeeded) and a paused one
/// (Meta lifts pauses); rejecting only on a pending one; pausing only on an approved one; disabling
/// on an approved or paused one. A disabled template stays disabled, and nothing moves a template to
/// the status it already has.
pub fn next_status(current: TemplateStatus, action: TemplateAction) -> Option<TemplateStatus> {
    use TemplateStatus::*;
    match (current, action) {
        (Pending | Rejected | Paused, TemplateAction::Approve) => Some(Approved),
        (Pending, TemplateAction::Reject(_)) => Some(Rejected),
        (Approved, TemplateAction::Pause) => Some(Paused),
        (Approved | Paused, TemplateAction::Disable) => Some(Disabled),
        _ => None,
    }
}

/// A template in a WABA's registry.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct TemplateRecord {
    /// Meta's numeric id, as a string.
    #[schema(example = "1689556908129832")]
    pub id: String,
    /// The WhatsApp Business Account holding it.
    pub waba_id: String,
    #[schema(example = "openline_opt_in")]
    pub name: String,
    #[schema(example = "en")]
    pub language: String,
    /// `MARKETING`, `UTILITY` or `AUTHENTICATION`.
    #[schema(example = "UTILITY")]
    pub category: String,
    /// `POSITIONAL` (`{{1}}`) or `NAMED` (`{{first_name}}`).
    pub parameter_format: String,
    /// Meta's component JSON, exactly as submitted.
    #[schema(value_type = Object)]
    pub components: Value,
    pub status: TemplateStatus,
    /// Set while the template is rejected.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejected_reason: Option<RejectionReason>,
}

/// One button of a template's `BUTTONS` component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateButton {
    /// `QUICK_REPLY`, `URL`, `PHONE_NUMBER`, `OTP`, … (upper-cased).
    pub kind: String,
    pub text: String,
    /// A URL button's address; one ending in `{{1}}` takes a suffix with every send.
    pub url: Option<String>,
}

impl TemplateButton {
    /// A URL button whose address takes a suffix per send (Meta's dynamic URL).
    pub fn is_dynamic_url(&self) -> bool {
        self.kind == "URL" && self.url.as_deref().is_some_and(|u| u.ends_with("{{1}}"))
    }
}

impl TemplateRecord {
    /// The first component whose `type` is `kind` (compared case-insensitively, as Meta does).
    fn component(&self, kind: &str) -> Option<&serde_json::Map<String, Value>> {
        self.components.as_array()?.iter().find_map(|c| {
            let c = c.as_object()?;
            c.get("type")?.as_str()?.eq_ignore_ascii_case(kind).then_some(c)
        })
    }

    /// The body's text (`None` for authentication templates, whose body Meta writes).
    pub fn body_text(&self) -> Option<&str> {
        self.component("body")?.get("text")?.as_str()
    }

    /// The header's text, when the header is a `TEXT` one.
    pub fn header_text(&self) -> Option<&str> {
        let header = self.component("header")?;
        let format = header.get("format").and_then(Value::as_str).unwrap_or("TEXT");
        if !format.eq_ignore_ascii_case("text") {
            return None;
        }
        header.get("text")?.as_str()
    }

    /// Every button, in order; a send's button `index` counts in this list.
    pub fn buttons(&self) -> Vec<TemplateButton> {
        let Some(list) = self
            .component("buttons")
            .and_then(|c| c.get("buttons"))
            .and_then(Value::as_array)
        else {
            return Vec::new();
        };
        list.iter()
            .map(|b| TemplateButton {
                kind: b.get("type").and_then(Value::as_str).unwrap_or_default().to_uppercase(),
                text: b.get("text").and_then(Value::as_str).unwrap_or_default().to_string(),
                url: b.get("url").and_then(Value::as_str).map(str::to_string),
            })
            .collect()
    }

    /// The header's format (`TEXT`, `IMAGE`, `VIDEO`, `DOCUMENT`, upper-cased), if it has one.
    pub fn header_format(&self) -> Option<String> {
        let header = self.component("header")?;
        Some(
            header
                .get("format")
                .and_then(Value::as_str)
                .unwrap_or("TEXT")
                .to_uppercase(),
        )
    }

    fn is_named(&self) -> bool {
        self.parameter_format == "NAMED"
    }
}

/// The distinct placeholders of a template text, in order of first appearance: `{{1}}` gives `1`,
/// `{{first_name}}` gives `first_name`. Their number is how many parameters a send must give.
pub fn placeholders(text: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let inner = after[..end].trim();
        let valid = !inner.is_empty()
            && inner
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if valid && !found.iter().any(|f| f == inner) {
            found.push(inner.to_string());
        }
        rest = &after[end + 2..];
    }
    found
}

/// A template text with the send's parameters filled in, as the phone shows it.
fn render(text: &str, params: &[SentParam], named: bool) -> String {
    let mut out = text.to_string();
    for (i, key) in placeholders(text).iter().enumerate() {
        let value = if named {
            params.iter().find(|p| p.name.as_deref() == Some(key.as_str()))
        } else {
            key.parse::<usize>()
                .ok()
                .and_then(|n| n.checked_sub(1))
                .and_then(|n| params.get(n))
                .or_else(|| params.get(i))
        };
        if let Some(shown) = value.and_then(|p| p.shown.as_deref()) {
            out = out.replace(&format!("{{{{{key}}}}}"), shown);
        }
    }
    out
}

/// A template being added to the registry (from the config or a Graph submission).
#[derive(Debug, Clone)]
pub(crate) struct NewTemplate {
    pub name: String,
    pub language: String,
    pub category: String,
    pub parameter_format: String,
    pub components: Value,
}

impl SimState {
    /// The template with this name and language in this WABA.
    pub fn template(&self, waba_id: &str, name: &str, language: &str) -> Option<&TemplateRecord> {
        self.templates
            .iter()
            .find(|t| t.waba_id == waba_id && t.name == name && t.language == language)
    }

    /// Adds a template with a fresh Meta-like id.
    pub(crate) fn add_template(&mut self, waba_id: &str, new: NewTemplate, status: TemplateStatus) -> TemplateRecord {
        let record = TemplateRecord {
            id: ids::template_id(),
            waba_id: waba_id.to_string(),
            name: new.name,
            language: new.language,
            category: new.category,
            parameter_format: new.parameter_format,
            components: new.components,
            status,
            rejected_reason: None,
        };
        self.templates.push(record.clone());
        record
    }

    /// Puts the configured templates, approved, into every business number's WABA (once per WABA).
    pub(crate) fn seed_templates(&mut self, business_numbers: &[SimBusinessNumber], templates: &[SimTemplate]) {
        for business in business_numbers {
            for t in templates {
                if self.template(&business.waba_id, &t.name, &t.language).is_some() {
                    continue;
                }
                let new = NewTemplate {
                    name: t.name.clone(),
                    language: t.language.clone(),
                    category: t.category.to_uppercase(),
                    parameter_format: "POSITIONAL".into(),
                    components: t.components.clone(),
                };
                self.add_template(&business.waba_id, new, TemplateStatus::Approved);
            }
        }
    }
}

impl Simulator {
    /// Every template of every WABA, in the order they were created.
    pub fn templates(&self) -> Vec<TemplateRecord> {
        self.state().templates.clone()
    }

    /// Applies a review decision and queues the `message_template_status_update` webhook about it.
    /// Returns the template as it is now and a receiver for the first delivery attempt's status.
    pub fn change_template_status(
        &self,
        id: &str,
        action: TemplateAction,
    ) -> Result<(TemplateRecord, oneshot::Receiver<Option<u16>>), SimError> {
        let record = {
            let mut state = self.state();
            let Some(record) = state.templates.iter_mut().find(|t| t.id == id) else {
                return Err(SimError::not_found("unknown_template", "No template has that id."));
            };
            let Some(next) = next_status(record.status, action) else {
                return Err(SimError::new(
                    StatusCode::CONFLICT,
                    "invalid_transition",
                    format!(
                        "A {} template cannot be {}.",
                        record.status.as_str().to_lowercase(),
                        action.verb()
                    ),
                ));
            };
            record.status = next;
            record.rejected_reason = match action {
                TemplateAction::Reject(reason) => Some(reason),
                _ => None,
            };
            record.clone()
        };
        tracing::info!(template_id = %record.id, status = record.status.as_str(), "template status changed");
        let reason = match action {
            TemplateAction::Reject(r) => Some((r.as_str(), r.explanation())),
            _ => None,
        };
        let body = payloads::template_status_update(&record, reason, self.now());
        let rx = self.webhooks.enqueue(
            &format!("waba:{}", record.waba_id),
            "message_template_status_update",
            &body,
        );
        Ok((record, rx))
    }

    /// Checks a template send against the WABA's registry the way Meta does, and fills in what the
    /// phone will see: the rendered body, and the template's quick-reply buttons with their labels
    /// (the payload the send gave for that index, or the label when it gave none).
    ///
    /// Error codes, from Meta's Cloud API error-code table:
    /// - 132001 "Template does not exist": no template with that name in that language, or one that
    ///   is not approved (pending or rejected) — Meta treats both the same.
    /// - 132015 "Template is paused" and 132016 "Template is disabled".
    /// - 132000: the body (or a text header) gets a different number of parameters than it has
    ///   placeholders.
    pub(crate) fn resolve_template(
        &self,
        business: &SimBusinessNumber,
        msg: &mut OutboundMessage,
    ) -> Result<(), GraphError> {
        let (Some(view), Some(sent)) = (msg.template.as_mut(), msg.template_send.as_ref()) else {
            return Ok(());
        };
        let state = self.state();
        let Some(record) = state.template(&business.waba_id, &view.name, &view.language) else {
            return Err(GraphError::template_missing(&view.name, &view.language));
        };
        match record.status {
            TemplateStatus::Approved => {}
            TemplateStatus::Paused => return Err(GraphError::template_paused()),
            TemplateStatus::Disabled => return Err(GraphError::template_disabled()),
            TemplateStatus::Pending | TemplateStatus::Rejected => {
                return Err(GraphError::template_missing(&view.name, &view.language))
            }
        }
        if let Some(header) = record.header_text() {
            let expected = placeholders(header).len();
            if expected != sent.header.len() {
                return Err(GraphError::parameter_count("header", sent.header.len(), expected));
            }
        }
        // A media header takes its file with every send (Meta: 132000 when it is missing).
        if let Some(format) = record.header_format().filter(|f| f != "TEXT") {
            let wanted = format.to_lowercase();
            if !sent.header_media.contains(&wanted) {
                return Err(GraphError::parameter_count("header", sent.header_media.len(), 1));
            }
        }
        let body = record.body_text();
        let expected = body.map_or(0, |b| placeholders(b).len());
        if expected != sent.body.len() {
            return Err(GraphError::parameter_count("body", sent.body.len(), expected));
        }
        let buttons = record.buttons();
        // Every URL button ending in {{1}} needs its suffix, and only those take one.
        let dynamic = buttons.iter().filter(|b| b.is_dynamic_url()).count();
        if sent.url_buttons.len() != dynamic {
            return Err(GraphError::parameter_count("button", sent.url_buttons.len(), dynamic));
        }
        for (index, _) in &sent.url_buttons {
            if !buttons.get(*index).is_some_and(TemplateButton::is_dynamic_url) {
                return Err(GraphError::invalid_value(format!(
                    "Button at index {index} of the template is not a URL button that takes a parameter."
                )));
            }
        }
        for (index, _) in &sent.quick_replies {
            if buttons.get(*index).is_none_or(|b| b.kind != "QUICK_REPLY") {
                return Err(GraphError::invalid_value(format!(
                    "Button at index {index} of the template is not a quick reply button."
                )));
            }
        }
        msg.buttons = buttons
            .iter()
            .enumerate()
            .filter(|(_, b)| b.kind == "QUICK_REPLY")
            .map(|(i, b)| {
                let payload = sent
                    .quick_replies
                    .iter()
                    .find(|(index, _)| *index == i)
                    .and_then(|(_, p)| p.clone());
                ButtonView {
                    kind: ButtonKind::QuickReply,
                    id: payload.unwrap_or_else(|| b.text.clone()),
                    text: b.text.clone(),
                    description: None,
                }
            })
            .collect();
        view.body = body.map(|b| render(b, &sent.body, record.is_named()));
        msg.billing_category = Some(match record.category.as_str() {
            "MARKETING" => "marketing",
            "AUTHENTICATION" => "authentication",
            _ => "utility",
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_counted_once_each_in_order() {
        assert_eq!(placeholders("Hi {{1}}, code {{2}}; again {{1}}"), ["1", "2"]);
        assert_eq!(placeholders("Hi {{ first_name }}!"), ["first_name"]);
        assert!(placeholders("No {{}} {{Bad Name}} {{x").is_empty());
    }

    #[test]
    fn rendering_fills_positional_and_named_parameters() {
        let p = |name: Option<&str>, v: &str| SentParam {
            name: name.map(str::to_string),
            shown: Some(v.to_string()),
        };
        assert_eq!(
            render("{{2}} owes {{1}}", &[p(None, "£5"), p(None, "Ada")], false),
            "Ada owes £5"
        );
        assert_eq!(render("Hi {{name}}", &[p(Some("name"), "Ada")], true), "Hi Ada");
    }

    #[test]
    fn only_metas_transitions_are_allowed() {
        use TemplateAction::*;
        use TemplateStatus::*;
        assert_eq!(next_status(Pending, Approve), Some(Approved));
        assert_eq!(next_status(Pending, Reject(RejectionReason::Scam)), Some(Rejected));
        assert_eq!(next_status(Rejected, Approve), Some(Approved));
        assert_eq!(next_status(Approved, Pause), Some(Paused));
        assert_eq!(next_status(Paused, Approve), Some(Approved));
        assert_eq!(next_status(Paused, Disable), Some(Disabled));
        assert_eq!(next_status(Approved, Approve), None);
        assert_eq!(next_status(Approved, Reject(RejectionReason::None)), None);
        assert_eq!(next_status(Pending, Pause), None);
        assert_eq!(next_status(Disabled, Approve), None);
    }
}
