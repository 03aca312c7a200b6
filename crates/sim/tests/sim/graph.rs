//! The fake Graph API refuses what Meta refuses, in Meta's error shape, and accepts what Meta accepts.

use crate::support::*;
use serde_json::{json, Value};

fn assert_meta_error(body: &Value, code: i64) {
    let e = &body["error"];
    assert_eq!(e["code"], code, "{body}");
    assert_eq!(e["type"], "OAuthException", "{body}");
    assert!(e["message"].as_str().is_some_and(|m| !m.is_empty()), "{body}");
    assert!(e["fbtrace_id"].as_str().is_some_and(|t| t.starts_with('A')), "{body}");
}

#[tokio::test]
async fn a_send_without_the_right_bearer_token_is_refused_with_190() {
    let t = start().await;
    let body = json!({"messaging_product":"whatsapp","to":MANUAL,"text":{"body":"hi"}});
    for auth in [None, Some("Bearer wrong-token"), Some("Basic c2ltOnNpbQ==")] {
        let mut req = t.http.post(t.graph_url()).json(&body);
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401, "{auth:?}");
        assert_meta_error(&r.json().await.unwrap(), 190);
    }
}

#[tokio::test]
async fn an_unknown_phone_number_id_is_refused_with_100_and_subcode_33() {
    let t = start().await;
    let r = t
        .http
        .post(format!("{}/graph/v23.0/999/messages", t.base))
        .bearer_auth(TOKEN)
        .json(&json!({"messaging_product":"whatsapp","to":MANUAL,"text":{"body":"hi"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: Value = r.json().await.unwrap();
    assert_meta_error(&body, 100);
    assert_eq!(body["error"]["error_subcode"], 33);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Object with ID '999' does not exist"));
}

#[tokio::test]
async fn malformed_and_invalid_bodies_get_meta_shaped_400s_naming_the_problem() {
    let t = start().await;
    let long = "x".repeat(4097);
    let cases: Vec<(String, i64, &str)> = vec![
        ("{not json".into(), 100, "not valid JSON"),
        ("[]".into(), 100, "JSON object"),
        (json!({"to":MANUAL,"text":{"body":"hi"}}).to_string(), 100, "messaging_product"),
        (json!({"messaging_product":"sms","to":MANUAL,"text":{"body":"hi"}}).to_string(), 100, "messaging_product"),
        (json!({"messaging_product":"whatsapp","text":{"body":"hi"}}).to_string(), 100, "to is required"),
        (json!({"messaging_product":"whatsapp","to":"call me","text":{"body":"hi"}}).to_string(), 131009, "to"),
        (json!({"messaging_product":"whatsapp","to":MANUAL,"type":"fax"}).to_string(), 100, "type"),
        (json!({"messaging_product":"whatsapp","to":MANUAL,"type":"text"}).to_string(), 131008, "text"),
        (json!({"messaging_product":"whatsapp","to":MANUAL,"text":{}}).to_string(), 131008, "text.body"),
        (json!({"messaging_product":"whatsapp","to":MANUAL,"text":{"body":""}}).to_string(), 131009, "text.body"),
        (json!({"messaging_product":"whatsapp","to":MANUAL,"text":{"body":long}}).to_string(), 131009, "text.body"),
        (json!({"messaging_product":"whatsapp","to":MANUAL,"type":"template","template":{"language":{"code":"en"}}}).to_string(), 131008, "template.name"),
        (json!({"messaging_product":"whatsapp","to":MANUAL,"type":"template","template":{"name":"x"}}).to_string(), 131008, "template.language"),
        (json!({"messaging_product":"whatsapp","to":MANUAL,"type":"template","template":{"name":"x","language":{"code":"en"},"components":[{"type":"BODY","parameters":[{"type":"text"}]}]}}).to_string(), 131008, "parameters[0].text"),
        (json!({"messaging_product":"whatsapp","to":MANUAL,"type":"image","image":{}}).to_string(), 131008, "image.id or image.link"),
        (json!({"messaging_product":"whatsapp","to":MANUAL,"type":"interactive","interactive":{"type":"button","body":{"text":"?"},"action":{"buttons":[]}}}).to_string(), 131009, "buttons"),
        (json!({"messaging_product":"whatsapp","to":MANUAL,"type":"interactive","interactive":{"type":"button","body":{"text":"?"},"action":{"buttons":[{"type":"reply","reply":{"id":"a","title":"A title far longer than twenty"}}]}}}).to_string(), 131009, "title"),
        (json!({"messaging_product":"whatsapp","status":"read"}).to_string(), 131008, "message_id"),
    ];
    for (raw, code, detail) in cases {
        let r = t
            .http
            .post(t.graph_url())
            .bearer_auth(TOKEN)
            .header("Content-Type", "application/json")
            .body(raw.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 400, "{raw}");
        let body: Value = r.json().await.unwrap();
        assert_meta_error(&body, code);
        assert_eq!(body["error"]["error_data"]["messaging_product"], "whatsapp", "{raw}");
        let details = body["error"]["error_data"]["details"].as_str().unwrap_or_default();
        assert!(details.contains(detail), "{raw} -> {details}");
    }
}

#[tokio::test]
async fn a_successful_send_answers_like_meta() {
    let t = start().await;
    let (status, v) = t
        .send(
            &json!({"messaging_product":"whatsapp","to":"+44 7700 900099","type":"template",
            "template":{"name":"hello_world","language":{"code":"en_US"}}}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["messaging_product"], "whatsapp");
    assert_eq!(v["contacts"][0]["input"], "+44 7700 900099");
    assert_eq!(v["contacts"][0]["wa_id"], "447700900099");
    assert!(v["messages"][0]["id"].as_str().unwrap().starts_with("wamid."));
    assert_eq!(v["messages"][0]["message_status"], "accepted");

    let (status, read) = t
        .send(&json!({"messaging_product":"whatsapp","status":"read","message_id":"wamid.ABC="}))
        .await;
    assert_eq!((status, read), (200, json!({"success": true})));
}

#[tokio::test]
async fn sends_over_the_numbers_throughput_are_refused_with_130429_until_the_next_second() {
    let t = start_with(0, |c| c.throughput_per_s = 3).await;
    let template = json!({"messaging_product":"whatsapp","to":MANUAL,"type":"template",
        "template":{"name":"hello_world","language":{"code":"en_US"}}});
    for _ in 0..3 {
        assert_eq!(t.send(&template).await.0, 200);
    }
    let (status, body) = t.send(&template).await;
    assert_eq!(status, 400);
    assert_meta_error(&body, 130429);
    t.clock.advance_ms(1_000);
    assert_eq!(t.send(&template).await.0, 200);
}

/// Examples in Meta's collection that Meta's real API would refuse, and why.
const REFUSED_EXAMPLES: &[(&str, &str)] = &[
    // No `type`, so it defaults to text, yet the body is an interactive list and has no `text`.
    ("Send Reply to List Message", "text"),
    // Quick-reply text parameters given as JSON booleans (`true`/`false`), not strings.
    ("Send Sample Issue Resolution Template", "parameters[0].text"),
    // The header type is left as the placeholder `<HEADER_TYPE>`.
    ("Send Multi-Product Message", "interactive.header.type"),
];

#[tokio::test]
async fn every_example_in_metas_collection_that_meta_would_accept_is_accepted() {
    // The examples send templates a real account would have approved; this one has them.
    let t = start_with(0, |c| {
        // One template per name and language, yet the examples send `template-name` with a text
        // header, an image header or none: registered without a header (so neither is counted).
        let media = quick_reply_template("template-name", "language-and-locale-code", 3, &["A", "B"]);
        c.templates.extend([
            media,
            quick_reply_template("intro_catalog_offer", "en_US", 3, &[]),
            quick_reply_template("<TEMPLATE_NAME>", "en_US", 0, &[]),
        ]);
    })
    .await;
    let raw = std::fs::read_to_string("../../../shared/fixtures/meta/meta_send_message_examples.json").unwrap();
    // The examples address `{{Recipient-Phone-Number}}`; give them a real number.
    let raw = raw
        .replace("{{Recipient-Phone-Number}}", MANUAL)
        .replace("{{Recipient-WA-Phone-Number}}", MANUAL);
    let examples: serde_json::Map<String, Value> = serde_json::from_str(&raw).unwrap();
    assert!(examples.len() >= 40);
    for (name, body) in &examples {
        let (status, response) = t.send(body).await;
        match REFUSED_EXAMPLES.iter().find(|(n, _)| n == name) {
            None => assert_eq!(status, 200, "{name}: {response}"),
            Some((_, detail)) => {
                assert_eq!(status, 400, "{name} should be refused: {response}");
                let details = response["error"]["error_data"]["details"].as_str().unwrap();
                assert!(details.contains(detail), "{name}: {details}");
            }
        }
    }
}
