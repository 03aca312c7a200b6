//! Template validation, parameters and rendering, with the errors Meta would otherwise return late.

use super::*;
use proptest::prelude::*;

fn body(text: &str) -> TemplateComponent {
    TemplateComponent::Body { text: text.to_owned() }
}

fn template(body_text: &str) -> Template {
    Template {
        name: "appointment_reminder".to_owned(),
        language: "en_US".to_owned(),
        category: TemplateCategory::Utility,
        components: vec![
            TemplateComponent::Header(TemplateHeader::Text {
                text: "Your appointment".to_owned(),
            }),
            body(body_text),
            TemplateComponent::Footer {
                text: "Reply STOP to opt out".to_owned(),
            },
            TemplateComponent::Buttons {
                buttons: vec![
                    TemplateButton::QuickReply {
                        text: "Confirm".to_owned(),
                    },
                    TemplateButton::Url {
                        text: "Reschedule".to_owned(),
                        url: "https://example.com/book".to_owned(),
                    },
                ],
            },
        ],
        status: TemplateStatus::Approved,
    }
}

fn positional(values: &[&str]) -> TemplateParams {
    TemplateParams::Positional(values.iter().map(|v| (*v).to_owned()).collect())
}

fn named(pairs: &[(&str, &str)]) -> TemplateParams {
    TemplateParams::Named(pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect())
}

fn code<T>(r: Result<T, DomainError>) -> Option<&'static str> {
    r.err().map(|e| e.code)
}

#[test]
fn a_well_formed_template_is_valid() {
    assert_eq!(validate_template(&template("Hello {{1}}, see you on {{2}}.")), Ok(()));
    assert_eq!(
        validate_template(&template("Hello {{first_name}}, see you soon.")),
        Ok(())
    );
    assert_eq!(validate_template(&template("No parameters at all.")), Ok(()));
}

#[test]
fn names_and_languages_follow_metas_rules() {
    for (name, ok) in [
        ("order_update_2", true),
        ("a", true),
        ("Order_update", false),
        ("order-update", false),
        ("order update", false),
        ("", false),
        ("é", false),
    ] {
        let mut t = template("Hi {{1}}.");
        t.name = name.to_owned();
        assert_eq!(validate_template(&t).is_ok(), ok, "{name}");
    }
    let mut t = template("Hi {{1}}.");
    t.name = "a".repeat(MAX_NAME_CHARS);
    assert!(validate_template(&t).is_ok());
    t.name.push('a');
    assert_eq!(code(validate_template(&t)), Some("template_invalid"));
    for (lang, ok) in [
        ("en", true),
        ("en_US", true),
        ("pt_BR", true),
        ("fil", true),
        ("EN", false),
        ("en-US", false),
        ("en_us", false),
        ("", false),
    ] {
        let mut t = template("Hi {{1}}.");
        t.language = lang.to_owned();
        assert_eq!(validate_template(&t).is_ok(), ok, "{lang}");
    }
}

#[test]
fn malformed_bodies_are_refused_with_template_invalid() {
    for bad in [
        "Hello {{1}} and {{name}}.",        // mixed styles
        "Hello {{1}} and {{3}}.",           // a gap
        "Hello {{2}}.",                     // does not start at 1
        "Hello {{1.",                       // unclosed
        "Hello {{ 1 }}.",                   // spaces
        "Hello {{First}}.",                 // uppercase name
        "Hello {{01}}.",                    // leading zero
        "Hello {{}}.",                      // empty
        "{{1}}, your order shipped.",       // starts with a parameter
        "Your order shipped, {{1}}",        // ends with a parameter
        "Your order shipped, {{name}}  \n", // ends with one, whitespace aside
        "   ",
    ] {
        assert_eq!(
            code(validate_template(&template(bad))),
            Some("template_invalid"),
            "{bad:?}"
        );
    }
    let long = format!("Hi {{{{1}}}} {}", "x".repeat(MAX_BODY_CHARS));
    assert_eq!(code(validate_template(&template(&long))), Some("template_invalid"));
}

#[test]
fn component_rules_are_checked() {
    let with = |components: Vec<TemplateComponent>| Template {
        components,
        ..template("unused")
    };
    let ok = body("Hello {{1}}.");
    assert_eq!(code(validate_template(&with(vec![]))), Some("template_invalid"));
    assert_eq!(
        code(validate_template(&with(vec![ok.clone(), ok.clone()]))),
        Some("template_invalid")
    );
    let footer = |t: &str| TemplateComponent::Footer { text: t.to_owned() };
    assert_eq!(
        code(validate_template(&with(vec![ok.clone(), footer("a"), footer("b")]))),
        Some("template_invalid")
    );
    assert_eq!(
        code(validate_template(&with(vec![ok.clone(), footer(&"x".repeat(61))]))),
        Some("template_invalid")
    );
    let header = |t: &str| TemplateComponent::Header(TemplateHeader::Text { text: t.to_owned() });
    assert_eq!(
        code(validate_template(&with(vec![header("Hi {{1}}"), ok.clone()]))),
        Some("template_invalid")
    );
    let image = TemplateComponent::Header(TemplateHeader::Image { example_url: None });
    assert_eq!(validate_template(&with(vec![image, ok.clone()])), Ok(()));
    let buttons = |b: Vec<TemplateButton>| TemplateComponent::Buttons { buttons: b };
    let qr = |t: &str| TemplateButton::QuickReply { text: t.to_owned() };
    let url = |u: &str| TemplateButton::Url {
        text: "Open".to_owned(),
        url: u.to_owned(),
    };
    assert_eq!(
        code(validate_template(&with(vec![ok.clone(), buttons(vec![])]))),
        Some("template_invalid")
    );
    assert_eq!(
        code(validate_template(&with(vec![
            ok.clone(),
            buttons(vec![qr(&"x".repeat(26))])
        ]))),
        Some("template_invalid")
    );
    assert_eq!(
        code(validate_template(&with(vec![ok.clone(), buttons(vec![qr("a"); 11])]))),
        Some("template_invalid")
    );
    assert_eq!(
        validate_template(&with(vec![ok.clone(), buttons(vec![qr("a"); 10])])),
        Ok(())
    );
    assert_eq!(
        code(validate_template(&with(vec![
            ok.clone(),
            buttons(vec![url("https://a.example"); 3])
        ]))),
        Some("template_invalid")
    );
    assert_eq!(
        code(validate_template(&with(vec![
            ok.clone(),
            buttons(vec![url("ftp://a.example")])
        ]))),
        Some("template_invalid")
    );
    assert_eq!(
        code(validate_template(&with(vec![
            ok.clone(),
            buttons(vec![url("https://a.example/{{1}}/x")])
        ]))),
        Some("template_invalid")
    );
}

#[test]
fn body_parameters_are_counted_and_named() {
    assert_eq!(
        body_parameters(&template("Hi {{1}}, on {{2}} at {{1}}.")),
        Ok(BodyParameters::Positional { count: 2 })
    );
    assert_eq!(
        body_parameters(&template("No parameters.")),
        Ok(BodyParameters::Positional { count: 0 })
    );
    let named_params = body_parameters(&template("Hi {{first_name}}, order {{order_id}} for {{first_name}}.")).unwrap();
    assert_eq!(
        named_params,
        BodyParameters::Named {
            names: vec!["first_name".to_owned(), "order_id".to_owned()]
        }
    );
    assert_eq!(named_params.count(), 2);
    // Single braces and a stray closing pair are just text.
    assert_eq!(
        body_parameters(&template("Use {curly} and }} freely, {{1}}!")),
        Ok(BodyParameters::Positional { count: 1 })
    );
}

#[test]
fn rendering_substitutes_every_occurrence() {
    let t = template("Hi {{1}}, see you on {{2}}. Bye {{1}}!");
    assert_eq!(
        render(&t, &positional(&["Ana", "Monday"])).unwrap(),
        "Hi Ana, see you on Monday. Bye Ana!"
    );
    let t = template("Hi {{name}}, your code is {{code}}.");
    assert_eq!(
        render(&t, &named(&[("code", "42"), ("name", "Ana")])).unwrap(),
        "Hi Ana, your code is 42."
    );
    let t = template("Thanks for your order.");
    assert_eq!(
        render(&t, &TemplateParams::default()).unwrap(),
        "Thanks for your order."
    );
    assert_eq!(render(&t, &named(&[])).unwrap(), "Thanks for your order.");
}

#[test]
fn only_approved_templates_render() {
    for status in [
        TemplateStatus::Pending,
        TemplateStatus::Rejected {
            reason: "INVALID_FORMAT".to_owned(),
        },
        TemplateStatus::Paused,
        TemplateStatus::Disabled,
    ] {
        let mut t = template("Hi {{1}}.");
        t.status = status.clone();
        let err = render(&t, &positional(&["Ana"])).unwrap_err();
        assert_eq!(err.code, "template_not_approved", "{status:?}");
        assert!(err.message.contains(status.as_str()));
    }
    let mut t = template("Hi {{1}}.");
    t.status = TemplateStatus::Rejected {
        reason: "INVALID_FORMAT".to_owned(),
    };
    assert!(render(&t, &positional(&["Ana"]))
        .unwrap_err()
        .message
        .contains("INVALID_FORMAT"));
}

#[test]
fn the_wrong_number_or_style_of_parameters_is_refused_before_sending() {
    let t = template("Hi {{1}}, see you on {{2}}.");
    let count = Some("template_parameter_count");
    assert_eq!(code(render(&t, &positional(&["Ana"]))), count);
    assert_eq!(code(render(&t, &positional(&["Ana", "Monday", "extra"]))), count);
    assert_eq!(code(render(&t, &named(&[("1", "Ana"), ("2", "Monday")]))), count);
    let t = template("Hi {{name}}, see you on {{day}}.");
    assert_eq!(code(render(&t, &named(&[("name", "Ana")]))), count);
    assert_eq!(
        code(render(&t, &named(&[("name", "Ana"), ("day", "Mon"), ("extra", "x")]))),
        count
    );
    assert_eq!(code(render(&t, &positional(&["Ana", "Monday"]))), count);
    let t = template("No parameters.");
    assert_eq!(code(render(&t, &positional(&["Ana"]))), count);
}

#[test]
fn badly_formatted_parameter_values_are_refused_as_meta_would() {
    let t = template("Hi {{1}}, welcome.");
    let invalid = Some("template_parameter_invalid");
    for bad in ["", "   ", "Ana\nSmith", "Ana\tSmith", "Ana\r", "Ana     Smith"] {
        assert_eq!(code(render(&t, &positional(&[bad]))), invalid, "{bad:?}");
    }
    assert_eq!(
        code(render(&t, &positional(&[&"x".repeat(MAX_PARAMETER_CHARS + 1)]))),
        invalid
    );
    assert!(
        render(&t, &positional(&["Ana    Smith"])).is_ok(),
        "four spaces are allowed"
    );
    let err = render(&t, &positional(&["secret\nvalue"])).unwrap_err();
    assert!(!err.message.contains("secret"), "parameter values are never echoed");
    assert_eq!(
        code(render(&t, &positional(&[&"x".repeat(MAX_PARAMETER_CHARS)]))),
        Some("template_too_long")
    );
}

#[test]
fn templates_round_trip_through_the_json_the_store_keeps() {
    let mut t = template("Hi {{1}}.");
    t.status = TemplateStatus::Rejected {
        reason: "INVALID_FORMAT".to_owned(),
    };
    let json = serde_json::to_value(&t).unwrap();
    assert_eq!(
        json["status"],
        serde_json::json!({"state": "rejected", "reason": "INVALID_FORMAT"})
    );
    assert_eq!(
        json["components"][0],
        serde_json::json!({"type": "header", "format": "text", "text": "Your appointment"})
    );
    assert_eq!(
        json["components"][1],
        serde_json::json!({"type": "body", "text": "Hi {{1}}."})
    );
    assert_eq!(
        json["components"][3]["buttons"][0],
        serde_json::json!({"type": "quick_reply", "text": "Confirm"})
    );
    assert_eq!(json["category"], "utility");
    let back: Template = serde_json::from_value(json).unwrap();
    assert_eq!(back, t);
    let components = serde_json::to_string(&t.components).unwrap();
    assert_eq!(
        serde_json::from_str::<Vec<TemplateComponent>>(&components).unwrap(),
        t.components
    );
    let params: TemplateParams = serde_json::from_str(r#"["Ana","Monday"]"#).unwrap();
    assert_eq!(params, positional(&["Ana", "Monday"]));
    let params: TemplateParams = serde_json::from_str(r#"{"name":"Ana"}"#).unwrap();
    assert_eq!(params, named(&[("name", "Ana")]));
}

#[test]
fn statuses_round_trip_through_the_store_columns() {
    for s in [
        TemplateStatus::Pending,
        TemplateStatus::Approved,
        TemplateStatus::Rejected {
            reason: "TAG_CONTENT_MISMATCH".to_owned(),
        },
        TemplateStatus::Paused,
        TemplateStatus::Disabled,
    ] {
        let reason = match &s {
            TemplateStatus::Rejected { reason } => Some(reason.as_str()),
            _ => None,
        };
        assert_eq!(TemplateStatus::from_parts(s.as_str(), reason), Some(s.clone()));
    }
    assert_eq!(TemplateStatus::from_parts("in_appeal", None), None);
    for c in TemplateCategory::ALL {
        assert_eq!(TemplateCategory::parse(c.as_str()), Some(*c));
    }
}

proptest! {
    /// Whatever the values, rendering either refuses with a parameter code or yields a body that
    /// contains each value and no placeholder.
    #[test]
    fn rendering_never_panics_and_leaves_no_placeholder(a in "\\PC{0,30}", b in "[ -~]{0,30}") {
        let t = template("Dear {{1}}, your ref is {{2}}.");
        match render(&t, &positional(&[&a, &b])) {
            Ok(text) => {
                prop_assert!(text.contains(a.as_str()) && text.contains(b.as_str()));
                prop_assert!(text.starts_with("Dear ") && text.ends_with('.'));
            }
            Err(e) => prop_assert!(e.code == "template_parameter_invalid", "{}", e.code),
        }
    }

    #[test]
    fn parsing_any_body_never_panics(text in "\\PC{0,60}") {
        let _ = body_parameters(&template(&text));
        let _ = render(&template(&text), &positional(&["x"]));
    }
}

fn with_media_and_links() -> Template {
    Template {
        name: "statement_ready".to_owned(),
        language: "en".to_owned(),
        category: TemplateCategory::Utility,
        components: vec![
            TemplateComponent::Header(TemplateHeader::Image { example_url: None }),
            body("Hello {{1}}, your statement is ready."),
            TemplateComponent::Buttons {
                buttons: vec![
                    TemplateButton::QuickReply {
                        text: "Thanks".to_owned(),
                    },
                    TemplateButton::Url {
                        text: "Open".to_owned(),
                        url: "https://bank.example/statements/{{1}}".to_owned(),
                    },
                    TemplateButton::Url {
                        text: "Help".to_owned(),
                        url: "https://bank.example/help".to_owned(),
                    },
                ],
            },
        ],
        status: TemplateStatus::Approved,
    }
}

#[test]
fn url_buttons_take_a_parameter_only_at_the_end() {
    assert_eq!(validate_template(&with_media_and_links()), Ok(()));
    for url in [
        "https://bank.example/{{1}}/statements",
        "https://bank.example/{{2}}",
        "https://bank.example/{{1}}{{1}}",
        "https://bank.example/}}",
    ] {
        let mut t = with_media_and_links();
        t.components[2] = TemplateComponent::Buttons {
            buttons: vec![TemplateButton::Url {
                text: "Open".to_owned(),
                url: url.to_owned(),
            }],
        };
        assert_eq!(validate_template(&t).unwrap_err().code, "template_invalid", "{url}");
    }
}

#[test]
fn a_send_gives_the_header_image_and_each_url_suffix() {
    let t = with_media_and_links();
    let ok = send_components(&t, Some("https://cdn.example/s.png"), &["2026-11".to_owned()]).unwrap();
    assert_eq!(ok.header_image_link.as_deref(), Some("https://cdn.example/s.png"));
    assert_eq!(ok.url_buttons, vec![(1, "2026-11".to_owned())]);
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    let table: &[(Option<&str>, Vec<String>, &str)] = &[
        (None, s(&["2026-11"]), "template_parameter_count"),
        (Some("https://cdn.example/s.png"), s(&[]), "template_parameter_count"),
        (
            Some("https://cdn.example/s.png"),
            s(&["a", "b"]),
            "template_parameter_count",
        ),
        (
            Some("http://cdn.example/s.png"),
            s(&["a"]),
            "template_parameter_invalid",
        ),
        (
            Some("https://cdn.example/a b.png"),
            s(&["a"]),
            "template_parameter_invalid",
        ),
        (
            Some("https://cdn.example/s.png"),
            s(&["a b"]),
            "template_parameter_invalid",
        ),
        (
            Some("https://cdn.example/s.png"),
            s(&[" "]),
            "template_parameter_invalid",
        ),
    ];
    for (link, params, code) in table {
        assert_eq!(
            send_components(&t, *link, params).unwrap_err().code,
            *code,
            "{link:?} {params:?}"
        );
    }
    // A template without an image header or dynamic URL takes neither.
    let plain = template("Hello {{1}}.");
    assert_eq!(send_components(&plain, None, &[]), Ok(SendComponents::default()));
    assert_eq!(
        send_components(&plain, Some("https://cdn.example/s.png"), &[])
            .unwrap_err()
            .code,
        "template_parameter_count"
    );
}
