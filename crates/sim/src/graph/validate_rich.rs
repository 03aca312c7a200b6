//! Checking the two rich message types, templates and interactive messages, and extracting what the
//! phone shows: the template's filled-in parameters and every tappable button.
//!
//! Real clients send component and sub-type names in either case (`BODY`, `body`, `QUICK_REPLY`),
//! and Meta accepts both, so names are compared lower-cased. This is only the shape of the request;
//! whether the template exists, is approved and gets the right number of parameters is checked
//! against the WABA's registry afterwards (`crate::templates`).

use super::error::GraphError;
use super::validate::{check_len, optional_str, required_str, validate_media_object, SentParam, Shown, TemplateSend};
use crate::state::{ButtonKind, ButtonView, TemplateView};
use serde_json::{Map, Value};

const COMPONENT_TYPES: &[&str] = &[
    "header",
    "body",
    "footer",
    "button",
    "buttons",
    "carousel",
    "limited_time_offer",
];
const PARAMETER_TYPES: &[&str] = &[
    "text",
    "currency",
    "date_time",
    "image",
    "document",
    "video",
    "location",
    "payload",
    "action",
    "coupon_code",
    "limited_time_offer",
    "product",
    "order_status",
    "tap_target_configuration",
    "expiration_time_ms",
];
const INTERACTIVE_TYPES: &[&str] = &[
    "button",
    "list",
    "product",
    "product_list",
    "catalog_message",
    "flow",
    "cta_url",
    "location_request_message",
    "address_message",
    "order_details",
    "order_status",
    "call_permission_request",
    "voice_call",
];

pub fn validate_template(template: &Map<String, Value>) -> Result<Shown, GraphError> {
    let name = required_str(template, "name", "template.name")?;
    check_len(name, 1, 512, "template.name")?;
    let Some(language) = template.get("language") else {
        return Err(GraphError::missing("template.language"));
    };
    let Some(language) = language.as_object() else {
        return Err(GraphError::invalid_value(
            "Param template.language must be a JSON object.",
        ));
    };
    let code = required_str(language, "code", "template.language.code")?;
    check_len(code, 2, 64, "template.language.code")?;
    if let Some(policy) = optional_str(language, "policy", "template.language.policy")? {
        if policy != "deterministic" {
            return Err(GraphError::invalid_value(
                "Param template.language.policy must be 'deterministic'.",
            ));
        }
    }
    let mut parameters = Vec::new();
    let mut buttons = Vec::new();
    let mut send = TemplateSend::default();
    let no_components = Vec::new();
    let components = match template.get("components") {
        None | Some(Value::Null) => &no_components,
        Some(Value::Array(list)) => list,
        Some(_) => return Err(GraphError::invalid_value("Param template.components must be an array.")),
    };
    for (i, component) in components.iter().enumerate() {
        let path = format!("template.components[{i}]");
        let Some(component) = component.as_object() else {
            return Err(GraphError::invalid_value(format!(
                "Param {path} must be a JSON object."
            )));
        };
        let kind = required_str(component, "type", &format!("{path}.type"))?.to_lowercase();
        if !COMPONENT_TYPES.contains(&kind.as_str()) {
            return Err(GraphError::invalid_value(format!(
                "Param {path}.type is not a template component type."
            )));
        }
        let params = template_parameters(component, &path)?;
        if kind == "button" {
            if let Some((index, suffix)) = url_button(component, &params, &path)? {
                send.url_buttons.push((index, suffix));
            } else if let Some((index, payload)) = template_button(component, &params, &path)? {
                if let Some(label) = &payload {
                    // Replaced by the registered template's labels once it is found.
                    buttons.push(ButtonView {
                        kind: ButtonKind::QuickReply,
                        id: label.clone(),
                        text: label.clone(),
                        description: None,
                    });
                }
                send.quick_replies.push((index, payload));
            }
        } else if kind == "header" || kind == "body" {
            parameters.extend(params.iter().filter_map(|p| rendered(p)));
            let sent = params.iter().map(|p| SentParam {
                name: p.get("parameter_name").and_then(Value::as_str).map(str::to_string),
                shown: rendered(p),
            });
            if kind == "header" {
                send.header_media.extend(
                    params
                        .iter()
                        .filter_map(|p| p.get("type").and_then(Value::as_str).map(str::to_lowercase))
                        .filter(|t| matches!(t.as_str(), "image" | "video" | "document")),
                );
                send.header.extend(sent);
            } else {
                send.body.extend(sent);
            }
        }
    }
    let view = TemplateView {
        name: name.to_string(),
        language: code.to_string(),
        parameters,
        body: None,
    };
    Ok(Shown {
        template: Some(view),
        buttons,
        template_send: Some(send),
        ..Shown::default()
    })
}

/// The component's parameters, each checked for a known type and the value that type requires.
fn template_parameters<'a>(
    component: &'a Map<String, Value>,
    path: &str,
) -> Result<Vec<&'a Map<String, Value>>, GraphError> {
    let list = match component.get("parameters") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => {
            return Err(GraphError::invalid_value(format!(
                "Param {path}.parameters must be an array."
            )))
        }
    };
    let mut out = Vec::with_capacity(list.len());
    for (j, param) in list.iter().enumerate() {
        let ppath = format!("{path}.parameters[{j}]");
        let Some(param) = param.as_object() else {
            return Err(GraphError::invalid_value(format!(
                "Param {ppath} must be a JSON object."
            )));
        };
        let kind = required_str(param, "type", &format!("{ppath}.type"))?.to_lowercase();
        if !PARAMETER_TYPES.contains(&kind.as_str()) {
            return Err(GraphError::invalid_value(format!(
                "Param {ppath}.type is not a parameter type."
            )));
        }
        match kind.as_str() {
            "text" => {
                let text = required_str(param, "text", &format!("{ppath}.text"))?;
                check_len(text, 1, 32_768, &format!("{ppath}.text"))?;
            }
            "payload" => {
                required_str(param, "payload", &format!("{ppath}.payload"))?;
            }
            "currency" | "date_time" => {
                let Some(inner) = param.get(&kind).and_then(Value::as_object) else {
                    return Err(GraphError::missing(&format!("{ppath}.{kind}")));
                };
                required_str(inner, "fallback_value", &format!("{ppath}.{kind}.fallback_value"))?;
            }
            "image" | "document" | "video" => {
                let Some(inner) = param.get(&kind).and_then(Value::as_object) else {
                    return Err(GraphError::missing(&format!("{ppath}.{kind}")));
                };
                validate_media_object(&format!("{ppath}.{kind}"), inner)?;
            }
            _ => {}
        }
        out.push(param);
    }
    Ok(out)
}

/// How a parameter reads on the phone: its text, or the fallback of a currency or date.
fn rendered(param: &Map<String, Value>) -> Option<String> {
    let kind = param.get("type")?.as_str()?.to_lowercase();
    match kind.as_str() {
        "text" => param.get("text")?.as_str().map(str::to_string),
        "currency" | "date_time" => param.get(&kind)?.get("fallback_value")?.as_str().map(str::to_string),
        _ => None,
    }
}

/// A URL button component (`sub_type: url`): its index and the one text parameter, the suffix of
/// the button's address. `None` for other buttons.
fn url_button(
    component: &Map<String, Value>,
    params: &[&Map<String, Value>],
    path: &str,
) -> Result<Option<(usize, String)>, GraphError> {
    let is_url = component
        .get("sub_type")
        .and_then(Value::as_str)
        .is_some_and(|s| s.eq_ignore_ascii_case("url"));
    if !is_url {
        return Ok(None);
    }
    let index = match component.get("index") {
        Some(Value::Number(n)) => n.as_u64().filter(|n| *n <= 9),
        Some(Value::String(s)) => s.parse::<u64>().ok().filter(|n| *n <= 9),
        Some(_) => None,
        None => return Err(GraphError::missing(&format!("{path}.index"))),
    };
    let Some(index) = index.and_then(|n| usize::try_from(n).ok()) else {
        return Err(GraphError::invalid_value(format!(
            "Param {path}.index must be a number from 0 to 9."
        )));
    };
    match params {
        [one] if one.get("type").and_then(Value::as_str) == Some("text") => {
            let suffix = one.get("text").and_then(Value::as_str).unwrap_or_default();
            Ok(Some((index, suffix.to_string())))
        }
        _ => Err(GraphError::invalid_value(format!(
            "Param {path}.parameters must hold exactly one text parameter: the URL's suffix."
        ))),
    }
}

/// A button component: checks `sub_type` and `index`; a quick reply gives its index and the payload
/// (or text) it carries, which the phone sends back when the button is tapped.
fn template_button(
    component: &Map<String, Value>,
    params: &[&Map<String, Value>],
    path: &str,
) -> Result<Option<(usize, Option<String>)>, GraphError> {
    let sub_type = required_str(component, "sub_type", &format!("{path}.sub_type"))?.to_lowercase();
    let index = match component.get("index") {
        Some(Value::Number(n)) => n.as_u64().filter(|n| *n <= 9),
        Some(Value::String(s)) => s.parse::<u64>().ok().filter(|n| *n <= 9),
        Some(_) => None,
        None => return Err(GraphError::missing(&format!("{path}.index"))),
    };
    let Some(index) = index.and_then(|n| usize::try_from(n).ok()) else {
        return Err(GraphError::invalid_value(format!(
            "Param {path}.index must be a number from 0 to 9."
        )));
    };
    if sub_type != "quick_reply" {
        return Ok(None);
    }
    let payload = params
        .first()
        .and_then(|param| param.get("payload").or_else(|| param.get("text")))
        .and_then(Value::as_str)
        .map(str::to_string);
    Ok(Some((index, payload)))
}

pub fn validate_interactive(interactive: &Map<String, Value>) -> Result<Shown, GraphError> {
    let kind = required_str(interactive, "type", "interactive.type")?;
    if !INTERACTIVE_TYPES.contains(&kind) {
        return Err(GraphError::invalid_value(
            "Param interactive.type is not an interactive message type.",
        ));
    }
    if let Some(header) = interactive.get("header") {
        validate_header(header)?;
    }
    let body = match interactive.get("body") {
        None if matches!(kind, "button" | "list") => return Err(GraphError::missing("interactive.body")),
        None => None,
        Some(Value::Object(b)) => {
            let text = required_str(b, "text", "interactive.body.text")?;
            check_len(
                text,
                1,
                if kind == "list" { 4096 } else { 1024 },
                "interactive.body.text",
            )?;
            Some(text.to_string())
        }
        Some(_) => {
            return Err(GraphError::invalid_value(
                "Param interactive.body must be a JSON object.",
            ))
        }
    };
    if let Some(footer) = interactive.get("footer") {
        let Some(footer) = footer.as_object() else {
            return Err(GraphError::invalid_value(
                "Param interactive.footer must be a JSON object.",
            ));
        };
        check_len(
            required_str(footer, "text", "interactive.footer.text")?,
            1,
            60,
            "interactive.footer.text",
        )?;
    }
    let Some(action) = interactive.get("action") else {
        return Err(GraphError::missing("interactive.action"));
    };
    let Some(action) = action.as_object() else {
        return Err(GraphError::invalid_value(
            "Param interactive.action must be a JSON object.",
        ));
    };
    let buttons = match kind {
        "button" => reply_buttons(action)?,
        "list" => list_rows(action)?,
        _ => Vec::new(),
    };
    Ok(Shown {
        text: body,
        buttons,
        ..Shown::default()
    })
}

fn validate_header(header: &Value) -> Result<(), GraphError> {
    let Some(header) = header.as_object() else {
        return Err(GraphError::invalid_value(
            "Param interactive.header must be a JSON object.",
        ));
    };
    let kind = required_str(header, "type", "interactive.header.type")?;
    match kind {
        "text" => check_len(
            required_str(header, "text", "interactive.header.text")?,
            1,
            60,
            "interactive.header.text",
        ),
        "image" | "video" | "document" => match header.get(kind).and_then(Value::as_object) {
            Some(media) => validate_media_object(&format!("interactive.header.{kind}"), media).map(|_| ()),
            None => Err(GraphError::missing(&format!("interactive.header.{kind}"))),
        },
        _ => Err(GraphError::invalid_value(
            "Param interactive.header.type must be text, image, video or document.",
        )),
    }
}

fn reply_buttons(action: &Map<String, Value>) -> Result<Vec<ButtonView>, GraphError> {
    let Some(list) = action.get("buttons").and_then(Value::as_array) else {
        return Err(GraphError::missing("interactive.action.buttons"));
    };
    if list.is_empty() || list.len() > 3 {
        return Err(GraphError::invalid_value(
            "Param interactive.action.buttons must have 1 to 3 buttons.",
        ));
    }
    let mut out: Vec<ButtonView> = Vec::new();
    for (i, button) in list.iter().enumerate() {
        let path = format!("interactive.action.buttons[{i}]");
        if button.get("type").and_then(Value::as_str) != Some("reply") {
            return Err(GraphError::invalid_value(format!("Param {path}.type must be 'reply'.")));
        }
        let Some(reply) = button.get("reply").and_then(Value::as_object) else {
            return Err(GraphError::missing(&format!("{path}.reply")));
        };
        let id = required_str(reply, "id", &format!("{path}.reply.id"))?;
        check_len(id, 1, 256, &format!("{path}.reply.id"))?;
        let title = required_str(reply, "title", &format!("{path}.reply.title"))?;
        check_len(title, 1, 20, &format!("{path}.reply.title"))?;
        if out.iter().any(|b| b.id == id || b.text == title) {
            return Err(GraphError::invalid_value("Buttons must have unique ids and titles."));
        }
        out.push(ButtonView {
            kind: ButtonKind::Reply,
            id: id.into(),
            text: title.into(),
            description: None,
        });
    }
    Ok(out)
}

fn list_rows(action: &Map<String, Value>) -> Result<Vec<ButtonView>, GraphError> {
    check_len(
        required_str(action, "button", "interactive.action.button")?,
        1,
        20,
        "interactive.action.button",
    )?;
    let Some(sections) = action.get("sections").and_then(Value::as_array) else {
        return Err(GraphError::missing("interactive.action.sections"));
    };
    if sections.is_empty() || sections.len() > 10 {
        return Err(GraphError::invalid_value(
            "Param interactive.action.sections must have 1 to 10 sections.",
        ));
    }
    let mut out: Vec<ButtonView> = Vec::new();
    for (i, section) in sections.iter().enumerate() {
        let path = format!("interactive.action.sections[{i}]");
        let Some(section) = section.as_object() else {
            return Err(GraphError::invalid_value(format!(
                "Param {path} must be a JSON object."
            )));
        };
        match optional_str(section, "title", &format!("{path}.title"))? {
            Some(t) => check_len(t, 1, 24, &format!("{path}.title"))?,
            None if sections.len() > 1 => return Err(GraphError::missing(&format!("{path}.title"))),
            None => {}
        }
        let Some(rows) = section.get("rows").and_then(Value::as_array).filter(|r| !r.is_empty()) else {
            return Err(GraphError::missing(&format!("{path}.rows")));
        };
        for (j, row) in rows.iter().enumerate() {
            let rpath = format!("{path}.rows[{j}]");
            let Some(row) = row.as_object() else {
                return Err(GraphError::invalid_value(format!(
                    "Param {rpath} must be a JSON object."
                )));
            };
            let id = required_str(row, "id", &format!("{rpath}.id"))?;
            check_len(id, 1, 200, &format!("{rpath}.id"))?;
            let title = required_str(row, "title", &format!("{rpath}.title"))?;
            check_len(title, 1, 24, &format!("{rpath}.title"))?;
            let description = optional_str(row, "description", &format!("{rpath}.description"))?;
            if let Some(d) = description {
                check_len(d, 0, 72, &format!("{rpath}.description"))?;
            }
            if out.iter().any(|b| b.id == id) {
                return Err(GraphError::invalid_value("List rows must have unique ids."));
            }
            out.push(ButtonView {
                kind: ButtonKind::ListRow,
                id: id.into(),
                text: title.into(),
                description: description.map(str::to_string),
            });
        }
    }
    if out.len() > 10 {
        return Err(GraphError::invalid_value(
            "A list message may have at most 10 rows in total.",
        ));
    }
    Ok(out)
}
