//! The requests the Cloud API client builds are checked against Meta's official OpenAPI spec
//! (`business-messaging-api_v23.0.yaml`), so a field we misspell or misplace fails here rather than
//! as a 400 from Meta in production.
//!
//! How: the spec is loaded as JSON, the request-body schema of `POST
//! /{Version}/{Phone-Number-ID}/messages` is found (`#/components/schemas/Message`), and because JSON
//! Schema validators ignore OpenAPI's `discriminator`, the branch for our message's `type` is taken
//! from the discriminator's mapping, as an OpenAPI tool would. The request is validated against a
//! root that is the whole spec document plus a top-level `$ref` to that branch, so every local
//! `#/components/...` reference resolves.
//!
//! The spec is stricter than the real API, and in two places wrong about its own examples. Those
//! exact violations are allow-listed below with the reason; any other violation fails the test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use jsonschema::error::ValidationErrorKind;
use openline_channels::cloud_api::{mark_read_request_body, MediaSource, MediaType, OutboundMessage};
use serde_json::{json, Value};
use std::path::Path;
use std::sync::OnceLock;

const MESSAGES_PATH: &str = "/{Version}/{Phone-Number-ID}/messages";

fn fixtures_dir() -> &'static Path {
    static DIR: OnceLock<std::path::PathBuf> = OnceLock::new();
    DIR.get_or_init(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/meta"))
}

/// Meta's spec as a JSON value, read once.
fn spec() -> &'static Value {
    static SPEC: OnceLock<Value> = OnceLock::new();
    SPEC.get_or_init(|| {
        let yaml = std::fs::read_to_string(fixtures_dir().join("business-messaging-api_v23.0.yaml"))
            .expect("shared/fixtures/meta must sit beside the checkout");
        serde_yaml::from_str(&yaml).expect("the spec is YAML that maps onto JSON")
    })
}

/// The `$ref` of the request body schema of the send-message operation.
fn request_schema_ref() -> &'static str {
    spec()["paths"][MESSAGES_PATH]["post"]["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        .as_str()
        .expect("the send operation's body is a $ref")
}

/// The schema a message of `message_type` must satisfy, chosen as OpenAPI's discriminator does.
fn branch_for(message_type: &str) -> String {
    let schema_name = request_schema_ref().rsplit('/').next().unwrap();
    let message_schema = &spec()["components"]["schemas"][schema_name];
    assert_eq!(message_schema["discriminator"]["propertyName"], "type");
    message_schema["discriminator"]["mapping"][message_type]
        .as_str()
        .unwrap_or_else(|| panic!("the spec has no branch for type {message_type}"))
        .to_owned()
}

/// One way a request breaks the spec, in a form that reads well in a failure message.
#[derive(Debug)]
struct Violation {
    instance_path: String,
    schema_path: String,
    kind: ValidationErrorKind,
    text: String,
}

/// Every violation of the spec by `request`, allow-listed ones included.
fn violations(request: &Value) -> Vec<Violation> {
    let message_type = request["type"].as_str().expect("every request has a type");
    let mut root = spec().clone();
    root["$ref"] = json!(branch_for(message_type));
    let validator = jsonschema::draft202012::new(&root).expect("the spec compiles as JSON Schema 2020-12");
    validator
        .iter_errors(request)
        .map(|e| Violation {
            instance_path: e.instance_path.to_string(),
            schema_path: e.schema_path.to_string(),
            text: e.to_string(),
            kind: e.kind,
        })
        .collect()
}

/// Violations that are the spec's fault, not ours.
fn is_allow_listed(v: &Violation) -> bool {
    match &v.kind {
        // Each message schema is `allOf: [BaseMessageProperties, {additionalProperties: false, …}]`.
        // `additionalProperties` only sees its own subschema's `properties`, so it rejects the base
        // properties every message needs (`messaging_product`, `recipient_type`, `to`, `context`):
        // no request, Meta's own examples included, can pass. Allowed only at the top level and only
        // for properties BaseMessageProperties declares.
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            let base = &spec()["components"]["schemas"]["BaseMessageProperties"]["properties"];
            v.instance_path.is_empty()
                && v.schema_path.ends_with("/allOf/1/additionalProperties")
                && unexpected.iter().all(|p| base.get(p).is_some())
        }
        // The button `index` pattern `^[2-6, 11-14]$` is a character class (one character of
        // "2-6", ",", " ", "1", "4"), contradicting its own description ("0-9") and example ("0"):
        // the first quick-reply button, index "0", cannot pass. Allowed only for that pattern on a
        // template button's index.
        ValidationErrorKind::Pattern { pattern } => {
            pattern == "^[2-6, 11-14]$"
                && v.instance_path.starts_with("/template/components/")
                && v.instance_path.ends_with("/index")
        }
        _ => false,
    }
}

fn assert_conforms(request: &Value) {
    let unexpected: Vec<Violation> = violations(request)
        .into_iter()
        .filter(|v| !is_allow_listed(v))
        .collect();
    assert!(
        unexpected.is_empty(),
        "request {request:#} breaks Meta's spec:\n{}",
        unexpected
            .iter()
            .map(|v| format!("  {} at {} ({})", v.text, v.instance_path, v.schema_path))
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[test]
fn the_send_operation_takes_a_message_discriminated_by_type() {
    assert_eq!(request_schema_ref(), "#/components/schemas/Message");
    assert_eq!(branch_for("text"), "#/components/schemas/TextMessage");
    assert_eq!(branch_for("template"), "#/components/schemas/TemplateMessage");
}

#[test]
fn text_messages_conform_to_metas_spec() {
    for reply_to in [
        None,
        Some("wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA".to_owned()),
    ] {
        for preview_url in [false, true] {
            let message = OutboundMessage::Text {
                to: "+16505551234".into(),
                body: "Your new card is ready: https://example.com/cards".into(),
                preview_url,
                reply_to: reply_to.clone(),
            };
            assert_conforms(&message.to_request_body());
        }
    }
}

#[test]
fn template_messages_conform_to_metas_spec() {
    let cases = [
        (vec![], vec![]),
        (vec!["Ms Nelson".to_owned(), "Tuesday 3 pm".to_owned()], vec![]),
        (
            vec!["Ms Nelson".to_owned()],
            vec!["CONFIRM".to_owned(), "RESCHEDULE".to_owned(), "STOP".to_owned()],
        ),
    ];
    for (body_parameters, quick_reply_payloads) in cases {
        let message = OutboundMessage::Template {
            to: "16505551234".into(),
            name: "appointment_reminder".into(),
            language: "en_US".into(),
            body_parameters,
            quick_reply_payloads,
            header_image_link: None,
            url_button_parameters: vec![],
        };
        assert_conforms(&message.to_request_body());
    }
}

#[test]
fn templates_with_a_header_image_and_url_suffixes_conform_to_metas_spec() {
    let message = OutboundMessage::Template {
        to: "16505551234".into(),
        name: "statement_ready".into(),
        language: "en".into(),
        body_parameters: vec!["Ms Nelson".to_owned()],
        quick_reply_payloads: vec!["THANKS".to_owned()],
        header_image_link: Some("https://cdn.example/statement.png".into()),
        url_button_parameters: vec![(1, "2026-11".into()), (2, "help".into())],
    };
    assert_conforms(&message.to_request_body());
}

#[test]
fn media_and_reaction_messages_conform_to_metas_spec() {
    for media_type in [
        MediaType::Image,
        MediaType::Video,
        MediaType::Audio,
        MediaType::Document,
        MediaType::Sticker,
    ] {
        for source in [
            MediaSource::Id("1003383421387256".into()),
            MediaSource::Link("https://example.com/f".into()),
        ] {
            let message = OutboundMessage::Media {
                to: "16505551234".into(),
                media_type,
                source,
                caption: Some("Statement for March".into()),
                filename: Some("statement.pdf".into()),
                reply_to: Some("wamid.earlier".into()),
            };
            assert_conforms(&message.to_request_body());
        }
    }
    for emoji in ["\u{1f44d}", ""] {
        let message = OutboundMessage::Reaction {
            to: "16505551234".into(),
            message_id: "wamid.in".into(),
            emoji: emoji.into(),
        };
        assert_conforms(&message.to_request_body());
    }
}

#[test]
fn the_allow_list_is_needed_by_metas_own_examples_too() {
    // If the spec were fixed, this would fail and the allow-list could go.
    let examples: Value =
        serde_json::from_slice(&std::fs::read(fixtures_dir().join("meta_send_message_examples.json")).unwrap())
            .unwrap();
    let text_example = &examples["Send Text Message"];
    let text_example = text_example.get("value").unwrap_or(text_example);
    let found = violations(text_example);
    assert!(!found.is_empty() && found.iter().all(is_allow_listed), "{found:?}");
    // And our text request has exactly the shape of Meta's example.
    let ours = OutboundMessage::Text {
        to: "1".into(),
        body: "x".into(),
        preview_url: false,
        reply_to: None,
    }
    .to_request_body();
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&ours), keys(text_example));
    assert_eq!(keys(&ours["text"]), keys(&text_example["text"]));
}

#[test]
fn the_check_catches_real_mistakes() {
    let good = OutboundMessage::Template {
        to: "16505551234".into(),
        name: "appointment_reminder".into(),
        language: "en_US".into(),
        body_parameters: vec!["Ms Nelson".into()],
        quick_reply_payloads: vec![],
        header_image_link: None,
        url_button_parameters: vec![],
    }
    .to_request_body();
    let mut mistakes = Vec::new();
    let mut no_recipient = good.clone();
    no_recipient.as_object_mut().unwrap().remove("to");
    mistakes.push(no_recipient);
    let mut no_language = good.clone();
    no_language["template"].as_object_mut().unwrap().remove("language");
    mistakes.push(no_language);
    let mut unknown_component = good.clone();
    unknown_component["template"]["components"][0]["type"] = json!("footer");
    mistakes.push(unknown_component);
    let mut text_with_stray_field = OutboundMessage::Text {
        to: "1".into(),
        body: "x".into(),
        preview_url: false,
        reply_to: None,
    }
    .to_request_body();
    text_with_stray_field["text"]["bold"] = json!(true);
    mistakes.push(text_with_stray_field);

    for mistake in mistakes {
        assert!(
            violations(&mistake).iter().any(|v| !is_allow_listed(v)),
            "not caught: {mistake:#}"
        );
    }
}

#[test]
fn the_read_receipt_has_the_shape_of_metas_own_example() {
    // The spec's Message schema has no branch for `{"status": "read", "message_id"}` (it has no
    // `type`), so it cannot be validated; we check ours against Meta's own example of it instead.
    let examples: Value =
        serde_json::from_slice(&std::fs::read(fixtures_dir().join("meta_send_message_examples.json")).unwrap())
            .unwrap();
    let example = &examples["Send typing indicator and read receipt"];
    let example = example.get("value").unwrap_or(example);
    let ours = mark_read_request_body("wamid.in");
    for key in ["messaging_product", "status", "message_id"] {
        assert!(example.get(key).is_some() && ours.get(key).is_some(), "{key}");
    }
    assert_eq!(ours["status"], example["status"]);
}
