//! Message templates as Meta's `POST /{waba_id}/message_templates` takes them: openline's template
//! (validated by `openline_domain::templates`) turned into Meta's upper-case component format, with
//! the example values Meta requires for every parameter.

use openline_domain::templates::{
    body_parameters, BodyParameters, Template, TemplateButton, TemplateComponent, TemplateHeader, DYNAMIC_URL_SUFFIX,
};
use serde_json::{json, Value};

/// What Meta answered to a submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubmittedTemplate {
    /// Meta's id for the template; status webhooks refer to it.
    pub id: String,
    /// Its first status, as Meta spells it (`PENDING`, sometimes `APPROVED` at once).
    pub status: String,
}

/// The JSON body Meta's template endpoint takes.
pub fn template_request_body(t: &Template) -> Value {
    let params = body_parameters(t).ok();
    let mut components = Vec::new();
    for c in &t.components {
        components.push(match c {
            TemplateComponent::Header(TemplateHeader::Text { text }) => {
                json!({"type": "HEADER", "format": "TEXT", "text": text})
            }
            TemplateComponent::Header(TemplateHeader::Image { example_url }) => json!({
                "type": "HEADER", "format": "IMAGE",
                "example": {"header_handle": [example_url.clone().unwrap_or_default()]},
            }),
            TemplateComponent::Body { text } => {
                let mut body = json!({"type": "BODY", "text": text});
                match &params {
                    Some(BodyParameters::Positional { count }) if *count > 0 => {
                        let examples: Vec<String> = (1..=*count).map(|i| format!("example {i}")).collect();
                        body["example"] = json!({"body_text": [examples]});
                    }
                    Some(BodyParameters::Named { names }) if !names.is_empty() => {
                        let examples: Vec<Value> = names
                            .iter()
                            .map(|n| json!({"param_name": n, "example": format!("example {n}")}))
                            .collect();
                        body["example"] = json!({"body_text_named_params": examples});
                    }
                    _ => {}
                }
                body
            }
            TemplateComponent::Footer { text } => json!({"type": "FOOTER", "text": text}),
            TemplateComponent::Buttons { buttons } => json!({
                "type": "BUTTONS",
                "buttons": buttons.iter().map(|b| match b {
                    TemplateButton::QuickReply { text } => json!({"type": "QUICK_REPLY", "text": text}),
                    // A URL ending in {{1}} takes a suffix per send; Meta wants an example of one.
                    TemplateButton::Url { text, url } => match url.strip_suffix(DYNAMIC_URL_SUFFIX) {
                        Some(base) => json!({"type": "URL", "text": text, "url": url, "example": [format!("{base}example")]}),
                        None => json!({"type": "URL", "text": text, "url": url}),
                    },
                }).collect::<Vec<_>>(),
            }),
        });
    }
    let mut body = json!({
        "name": t.name,
        "language": t.language,
        "category": t.category.as_str().to_uppercase(),
        "components": components,
    });
    if matches!(params, Some(BodyParameters::Named { .. })) {
        body["parameter_format"] = json!("NAMED");
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use openline_domain::templates::{TemplateCategory, TemplateStatus};

    #[test]
    fn a_template_becomes_metas_upper_case_components_with_examples() {
        let t = Template {
            name: "appointment_reminder".into(),
            language: "en".into(),
            category: TemplateCategory::Utility,
            components: vec![
                TemplateComponent::Body {
                    text: "Hello {{1}}, your appointment is on {{2}}.".into(),
                },
                TemplateComponent::Footer {
                    text: "Demo Bank".into(),
                },
                TemplateComponent::Buttons {
                    buttons: vec![
                        TemplateButton::QuickReply { text: "Confirm".into() },
                        TemplateButton::Url {
                            text: "Reschedule".into(),
                            url: "https://bank.example/book/{{1}}".into(),
                        },
                    ],
                },
            ],
            status: TemplateStatus::Pending,
        };
        let b = template_request_body(&t);
        assert_eq!(b["category"], "UTILITY");
        assert_eq!(b["components"][0]["type"], "BODY");
        assert_eq!(
            b["components"][0]["example"]["body_text"][0].as_array().unwrap().len(),
            2
        );
        assert_eq!(b["components"][2]["buttons"][0]["type"], "QUICK_REPLY");
        assert_eq!(
            b["components"][2]["buttons"][1]["example"],
            json!(["https://bank.example/book/example"])
        );
        assert!(b.get("parameter_format").is_none());
    }
}
