//! `POST` and `GET /graph/{version}/{waba_id}/message_templates`: submitting a template for review
//! and listing a WABA's templates, in Meta's request and response shapes. A submission is checked as
//! Meta checks it (name, language, category, a `BODY` component, no duplicate name and language) and
//! starts `PENDING`; the admin API (`/templates/{id}/approve`, …) plays Meta's reviewer.

use super::error::GraphError;
use super::require_bearer;
use crate::templates::{NewTemplate, TemplateRecord, TemplateStatus};
use crate::{SimBusinessNumber, Simulator};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::sync::Arc;

/// The categories Meta accepts.
const CATEGORIES: &[&str] = &["MARKETING", "UTILITY", "AUTHENTICATION"];
/// The longest template name Meta accepts.
const MAX_NAME: usize = 512;
/// The longest body text Meta accepts.
const MAX_BODY: usize = 1024;

/// The business number whose WABA has this id (400, code 100 / subcode 33 when none has).
fn waba(sim: &Simulator, waba_id: &str, verb: &str) -> Result<SimBusinessNumber, GraphError> {
    sim.config
        .business_numbers
        .iter()
        .find(|b| b.waba_id == waba_id)
        .cloned()
        .ok_or_else(|| GraphError::unknown_object(waba_id, verb))
}

/// `POST /graph/{version}/{waba_id}/message_templates`: answers `{"id","status":"PENDING","category"}`.
pub async fn create_template(
    State(sim): State<Arc<Simulator>>,
    Path((_version, waba_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = (|| {
        require_bearer(&sim, &headers)?;
        let business = waba(&sim, &waba_id, "post")?;
        let new = validate_submission(&body)?;
        let mut state = sim.state();
        if state.template(&business.waba_id, &new.name, &new.language).is_some() {
            return Err(GraphError::template_refused(
                Some(2388024),
                "Content in This Language Already Exists",
                format!(
                    "There is already {} content for this template. You can create a new template and try again.",
                    language_name(&new.language)
                ),
            ));
        }
        let record = state.add_template(&business.waba_id, new, TemplateStatus::Pending);
        tracing::info!(template_id = %record.id, "template submitted");
        Ok(json!({ "id": record.id, "status": record.status.as_str(), "category": record.category }))
    })();
    match result {
        Ok(body) => Json(body).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Filters Meta's listing takes.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    name: Option<String>,
    language: Option<String>,
    status: Option<String>,
    category: Option<String>,
}

/// `GET /graph/{version}/{waba_id}/message_templates`: `{"data":[…],"paging":{"cursors":{…}}}`,
/// optionally filtered by `name` (a part of it, as Meta's search does), `language`, `status` and
/// `category`.
pub async fn list_templates(
    State(sim): State<Arc<Simulator>>,
    Path((_version, waba_id)): Path<(String, String)>,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
) -> Response {
    let result = (|| {
        require_bearer(&sim, &headers)?;
        let business = waba(&sim, &waba_id, "get")?;
        let state = sim.state();
        let eq = |want: &Option<String>, have: &str| want.as_ref().is_none_or(|w| w.eq_ignore_ascii_case(have));
        let data: Vec<Value> = state
            .templates
            .iter()
            .filter(|t| t.waba_id == business.waba_id)
            .filter(|t| query.name.as_ref().is_none_or(|n| t.name.contains(n.as_str())))
            .filter(|t| eq(&query.language, &t.language))
            .filter(|t| eq(&query.status, t.status.as_str()))
            .filter(|t| eq(&query.category, &t.category))
            .map(meta_view)
            .collect();
        let cursor = |i: usize| base64::engine::general_purpose::STANDARD.encode(i.to_string());
        let paging = if data.is_empty() {
            json!({ "cursors": {} })
        } else {
            json!({ "cursors": { "before": cursor(0), "after": cursor(data.len() - 1) } })
        };
        Ok::<_, GraphError>(json!({ "data": data, "paging": paging }))
    })();
    match result {
        Ok(body) => Json(body).into_response(),
        Err(e) => e.into_response(),
    }
}

/// A template in Meta's listing shape (its default fields).
fn meta_view(t: &TemplateRecord) -> Value {
    json!({
        "name": t.name,
        "parameter_format": t.parameter_format,
        "components": t.components,
        "language": t.language,
        "status": t.status.as_str(),
        "category": t.category,
        "id": t.id,
    })
}

fn refused(title: &str, message: impl Into<String>) -> GraphError {
    GraphError::template_refused(None, title, message)
}

/// Checks a submission as Meta does and reduces it to a registry entry.
fn validate_submission(raw: &[u8]) -> Result<NewTemplate, GraphError> {
    let value: Value = serde_json::from_slice(raw)
        .map_err(|_| GraphError::invalid_parameter("The request body is not valid JSON."))?;
    let Value::Object(body) = value else {
        return Err(GraphError::invalid_parameter("The request body must be a JSON object."));
    };
    let text = |key: &str| body.get(key).and_then(Value::as_str);
    let name = text("name").ok_or_else(|| refused("Template name is missing", "The parameter name is required."))?;
    let name_ok = !name.is_empty()
        && name.chars().count() <= MAX_NAME
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if !name_ok {
        return Err(refused(
            "Invalid template name",
            format!("The template name may only contain lowercase letters, numbers and underscores, and have at most {MAX_NAME} characters."),
        ));
    }
    let language =
        text("language").ok_or_else(|| refused("Language is missing", "The parameter language is required."))?;
    if !language_code_ok(language) {
        return Err(refused(
            "Invalid language",
            format!("{language} is not a supported language code, such as en or en_US."),
        ));
    }
    let category = text("category")
        .map(str::to_uppercase)
        .filter(|c| CATEGORIES.contains(&c.as_str()))
        .ok_or_else(|| {
            refused(
                "Invalid category",
                "The category must be one of MARKETING, UTILITY or AUTHENTICATION.",
            )
        })?;
    let parameter_format = match text("parameter_format").map(str::to_uppercase) {
        None => "POSITIONAL".to_string(),
        Some(f) if f == "POSITIONAL" || f == "NAMED" => f,
        Some(_) => {
            return Err(refused(
                "Invalid parameter format",
                "The parameter_format must be POSITIONAL or NAMED.",
            ))
        }
    };
    let Some(components) = body.get("components").and_then(Value::as_array) else {
        return Err(refused(
            "Components are missing",
            "The parameter components must be an array.",
        ));
    };
    let mut has_body = false;
    for component in components {
        let Some(component) = component.as_object() else {
            return Err(refused("Invalid component", "Every component must be a JSON object."));
        };
        let kind = component
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_uppercase();
        match kind.as_str() {
            "BODY" => {
                has_body = true;
                check_body(component, &category)?;
            }
            "HEADER" | "FOOTER" | "BUTTONS" | "CAROUSEL" | "LIMITED_TIME_OFFER" | "CALL_PERMISSION_REQUEST" => {}
            _ => return Err(refused("Invalid component", "A component has an unknown type.")),
        }
        if kind == "BUTTONS" {
            check_buttons(component)?;
        }
    }
    if !has_body {
        return Err(refused(
            "Message template body is missing",
            "A message template needs a BODY component.",
        ));
    }
    Ok(NewTemplate {
        name: name.to_string(),
        language: language.to_string(),
        category,
        parameter_format,
        components: Value::Array(components.clone()),
    })
}

/// The body's text is required (1 to 1024 characters), except for authentication templates, whose
/// body Meta writes itself.
fn check_body(component: &Map<String, Value>, category: &str) -> Result<(), GraphError> {
    match component.get("text").and_then(Value::as_str) {
        Some(t) if !t.trim().is_empty() && t.chars().count() <= MAX_BODY => Ok(()),
        None if category == "AUTHENTICATION" => Ok(()),
        _ => Err(refused(
            "Invalid body",
            format!("The body text must have 1 to {MAX_BODY} characters."),
        )),
    }
}

/// At most 10 buttons, each with a type; quick replies with a label of 1 to 25 characters.
fn check_buttons(component: &Map<String, Value>) -> Result<(), GraphError> {
    let Some(buttons) = component.get("buttons").and_then(Value::as_array) else {
        return Err(refused("Invalid buttons", "A BUTTONS component needs a buttons array."));
    };
    if buttons.is_empty() || buttons.len() > 10 {
        return Err(refused("Invalid buttons", "A template may have 1 to 10 buttons."));
    }
    for b in buttons {
        let kind = b.get("type").and_then(Value::as_str).unwrap_or_default();
        if kind.is_empty() {
            return Err(refused("Invalid buttons", "Every button needs a type."));
        }
        if kind.eq_ignore_ascii_case("quick_reply") {
            let label = b.get("text").and_then(Value::as_str).unwrap_or_default();
            if label.is_empty() || label.chars().count() > 25 {
                return Err(refused(
                    "Invalid buttons",
                    "A quick reply's text must have 1 to 25 characters.",
                ));
            }
        }
    }
    Ok(())
}

/// Meta's language codes look like `en`, `en_US`, `pt_BR`, `zh_CN`, `fil`.
fn language_code_ok(code: &str) -> bool {
    let mut parts = code.split('_');
    let lang_ok = parts
        .next()
        .is_some_and(|l| (2..=3).contains(&l.len()) && l.chars().all(|c| c.is_ascii_lowercase()));
    let region_ok = parts
        .next()
        .is_none_or(|r| (2..=3).contains(&r.len()) && r.chars().all(|c| c.is_ascii_uppercase()));
    lang_ok && region_ok && parts.next().is_none()
}

/// How Meta names a language in its sentences (a few; the code otherwise).
fn language_name(code: &str) -> String {
    let name = match code.split('_').next().unwrap_or(code) {
        "en" => "English",
        "fr" => "French",
        "de" => "German",
        "es" => "Spanish",
        "pt" => "Portuguese",
        "it" => "Italian",
        "nl" => "Dutch",
        _ => return code.to_string(),
    };
    name.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_codes_are_checked_loosely_like_metas() {
        for ok in ["en", "en_US", "pt_BR", "fil"] {
            assert!(language_code_ok(ok), "{ok}");
        }
        for bad in ["", "EN", "en-US", "english", "en_us", "en_US_x"] {
            assert!(!language_code_ok(bad), "{bad}");
        }
    }

    #[test]
    fn a_submission_needs_a_body_and_a_valid_name_and_category() {
        let ok = json!({"name":"a_1","language":"en","category":"utility","components":[{"type":"body","text":"Hi"}]});
        let t = validate_submission(ok.to_string().as_bytes()).map_err(|e| e.code);
        assert_eq!(t.map(|t| t.category), Ok("UTILITY".to_string()));
        for bad in [
            json!({"name":"Bad Name","language":"en","category":"UTILITY","components":[{"type":"BODY","text":"Hi"}]}),
            json!({"name":"a","language":"en","category":"SERVICE","components":[{"type":"BODY","text":"Hi"}]}),
            json!({"name":"a","language":"en","category":"UTILITY","components":[{"type":"FOOTER","text":"Hi"}]}),
            json!({"name":"a","language":"en","category":"UTILITY"}),
        ] {
            let refused = validate_submission(bad.to_string().as_bytes()).err().map(|e| e.code);
            assert_eq!(refused, Some(100), "{bad}");
        }
    }
}
