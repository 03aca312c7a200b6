//! The body's parameters: parsing `{{1}}` / `{{name}}` placeholders, and substituting values.

use super::{invalid, validate_parameter, Template, TemplateComponent, TemplateParams, MAX_BODY_CHARS};
use crate::DomainError;

/// The parameters a template's body takes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyParameters {
    /// `{{1}}` … `{{count}}`; `count` is 0 for a body without parameters.
    Positional { count: usize },
    /// `{{first_name}}`-style, each name once, in order of first appearance.
    Named { names: Vec<String> },
}

impl BodyParameters {
    /// How many values sending the template needs.
    pub fn count(&self) -> usize {
        match self {
            Self::Positional { count } => *count,
            Self::Named { names } => names.len(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Placeholder<'a> {
    Position(usize),
    Name(&'a str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Segment<'a> {
    Text(&'a str),
    Param(Placeholder<'a>),
}

/// Splits a body into literal text and placeholders. Every `{{` must open a well-formed placeholder:
/// a half-written one is a mistake the author wants to hear about, not text to send.
fn parse(text: &str) -> Result<Vec<Segment<'_>>, DomainError> {
    let mut segments = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("{{") {
        if open > 0 {
            segments.push(Segment::Text(&rest[..open]));
        }
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            return Err(invalid("The body has a {{ without a closing }}."));
        };
        let inner = &after[..close];
        segments.push(Segment::Param(placeholder(inner)?));
        rest = &after[close + 2..];
    }
    if !rest.is_empty() {
        segments.push(Segment::Text(rest));
    }
    Ok(segments)
}

fn placeholder(inner: &str) -> Result<Placeholder<'_>, DomainError> {
    let bytes = inner.as_bytes();
    let positional = !bytes.is_empty() && bytes.iter().all(u8::is_ascii_digit) && bytes[0] != b'0';
    if positional {
        if let Ok(n) = inner.parse::<usize>() {
            return Ok(Placeholder::Position(n));
        }
    }
    let named = bytes.first().is_some_and(u8::is_ascii_lowercase)
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_');
    if named {
        return Ok(Placeholder::Name(inner));
    }
    Err(invalid(format!(
        "{{{{{inner}}}}} is not a parameter: use {{{{1}}}}, {{{{2}}}}, … or a lowercase name like {{{{first_name}}}}."
    )))
}

fn body_text(template: &Template) -> Result<&str, DomainError> {
    template
        .components
        .iter()
        .find_map(|c| match c {
            TemplateComponent::Body { text } => Some(text.as_str()),
            _ => None,
        })
        .ok_or_else(|| invalid("A template needs exactly one body."))
}

/// The parameters the template's body takes: how many, and their names if named. Refuses bodies
/// that mix the two styles, skip a number (`{{1}}` then `{{3}}`), or start or end with a parameter
/// (Meta rejects all three).
pub fn body_parameters(template: &Template) -> Result<BodyParameters, DomainError> {
    let segments = parse(body_text(template)?)?;
    parameters_of(&segments)
}

fn parameters_of(segments: &[Segment<'_>]) -> Result<BodyParameters, DomainError> {
    let meaningful = |s: &&Segment<'_>| !matches!(s, Segment::Text(t) if t.trim().is_empty());
    let at_start = matches!(segments.iter().find(meaningful), Some(Segment::Param(_)));
    let at_end = matches!(segments.iter().rev().find(meaningful), Some(Segment::Param(_)));
    if at_start || at_end {
        return Err(invalid(
            "The body may not start or end with a parameter; add some text before or after it.",
        ));
    }
    let mut positions = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for segment in segments {
        match segment {
            Segment::Param(Placeholder::Position(n)) => positions.push(*n),
            Segment::Param(Placeholder::Name(name)) => {
                if !names.iter().any(|n| n == name) {
                    names.push((*name).to_owned());
                }
            }
            Segment::Text(_) => {}
        }
    }
    match (positions.is_empty(), names.is_empty()) {
        (false, false) => Err(invalid(
            "The body mixes numbered ({{1}}) and named ({{name}}) parameters; use one style.",
        )),
        (true, false) => Ok(BodyParameters::Named { names }),
        _ => {
            let count = positions.iter().copied().max().unwrap_or(0);
            let all_present = (1..=count).all(|n| positions.contains(&n));
            if all_present {
                Ok(BodyParameters::Positional { count })
            } else {
                Err(invalid(format!(
                    "Numbered parameters must run from {{{{1}}}} to {{{{{count}}}}} without gaps."
                )))
            }
        }
    }
}

fn count_error(message: String) -> DomainError {
    DomainError::new("template_parameter_count", message)
}

/// Substitutes `params` into the body of `template` after checking them all. Approval is checked
/// by the caller ([`super::render`]).
pub(super) fn render_body(template: &Template, params: &TemplateParams) -> Result<String, DomainError> {
    let segments = parse(body_text(template)?)?;
    let expected = parameters_of(&segments)?;
    check_params(&template.name, &expected, params)?;
    let value_of = |p: Placeholder<'_>| {
        let value = match (p, params) {
            (Placeholder::Position(n), TemplateParams::Positional(values)) => values.get(n - 1),
            (Placeholder::Name(n), TemplateParams::Named(values)) => values.get(n),
            _ => None,
        };
        value.map(String::as_str).unwrap_or_default()
    };
    let mut out = String::new();
    for segment in &segments {
        match segment {
            Segment::Text(t) => out.push_str(t),
            Segment::Param(p) => out.push_str(value_of(*p)),
        }
    }
    let n = out.chars().count();
    if n > MAX_BODY_CHARS {
        return Err(DomainError::new(
            "template_too_long",
            format!("With these parameters the message has {n} characters; WhatsApp accepts at most {MAX_BODY_CHARS}. Shorten the parameters."),
        ));
    }
    Ok(out)
}

/// The values given match what the body takes, in style, number and names, and each is well formed.
fn check_params(name: &str, expected: &BodyParameters, params: &TemplateParams) -> Result<(), DomainError> {
    let given = match params {
        TemplateParams::Positional(v) => v.len(),
        TemplateParams::Named(m) => m.len(),
    };
    match (expected, params) {
        _ if expected.count() == 0 => {
            if given > 0 {
                return Err(count_error(format!(
                    "The template {name} takes no parameters; {given} were given."
                )));
            }
        }
        (BodyParameters::Positional { count }, TemplateParams::Positional(values)) => {
            if values.len() != *count {
                return Err(count_error(format!(
                    "The template {name} takes {count} parameter(s); {given} were given."
                )));
            }
            for (i, v) in values.iter().enumerate() {
                validate_parameter(&format!("{{{{{}}}}}", i + 1), v)?;
            }
        }
        (BodyParameters::Named { names }, TemplateParams::Named(values)) => {
            let missing: Vec<&str> = names
                .iter()
                .filter(|n| !values.contains_key(*n))
                .map(String::as_str)
                .collect();
            let unknown: Vec<&str> = values
                .keys()
                .filter(|k| !names.contains(k))
                .map(String::as_str)
                .collect();
            if !missing.is_empty() || !unknown.is_empty() {
                return Err(count_error(format!(
                    "The template {name} takes the parameters {}; missing: {}; unknown: {}.",
                    names.join(", "),
                    list_or_none(&missing),
                    list_or_none(&unknown)
                )));
            }
            for (k, v) in values {
                validate_parameter(k, v)?;
            }
        }
        (BodyParameters::Positional { count }, TemplateParams::Named(_)) => {
            return Err(count_error(format!(
                "The template {name} takes {count} numbered parameter(s); give them as a list."
            )));
        }
        (BodyParameters::Named { names }, TemplateParams::Positional(_)) => {
            return Err(count_error(format!(
                "The template {name} takes named parameters ({}); give them as an object.",
                names.join(", ")
            )));
        }
    }
    Ok(())
}

fn list_or_none(items: &[&str]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}
