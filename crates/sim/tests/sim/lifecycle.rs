//! What happens after the Graph API accepted a message: signed status webhooks, Meta's delivery
//! rules (131026, 131047, 131050) and the personas' replies.

use crate::support::*;
use serde_json::{json, Value};

/// A simulator whose `marketing_opt_in` template (en_GB, one parameter) has these quick replies.
async fn start_with_quick_replies(labels: &[&str]) -> TestSim {
    start_with(0, |c| {
        c.templates
            .push(quick_reply_template("marketing_opt_in", "en_GB", 1, labels))
    })
    .await
}

/// A send of `marketing_opt_in` with these payloads for its quick replies.
fn template_with_quick_replies(to: &str, payloads: &[&str]) -> Value {
    let mut components = vec![json!({"type":"BODY","parameters":[{"type":"text","text":"Zoë"}]})];
    for (i, p) in payloads.iter().enumerate() {
        components.push(json!({"type":"BUTTON","sub_type":"QUICK_REPLY","index":i.to_string(),
            "parameters":[{"type":"payload","payload":p}]}));
    }
    json!({"messaging_product":"whatsapp","recipient_type":"individual","to":to,"type":"template",
        "template":{"name":"marketing_opt_in","language":{"code":"en_GB"},"components":components}})
}

fn hello_world(to: &str) -> Value {
    json!({"messaging_product":"whatsapp","to":to,"type":"template","template":{"name":"hello_world","language":{"code":"en_US"}}})
}

async fn send_ok(t: &TestSim, body: &Value) -> String {
    let (status, v) = t.send(body).await;
    assert_eq!(status, 200, "{v}");
    v["messages"][0]["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn a_send_yields_sent_delivered_and_read_webhooks_signed_over_the_raw_bytes() {
    let t = start().await;
    let id = send_ok(&t, &hello_world(MANUAL)).await;
    let mut seen = Vec::new();
    for expected in ["sent", "delivered", "read"] {
        let hook = t.hooks.next().await;
        assert!(hook.signature_verifies(), "signature of {expected}");
        assert_eq!(hook.content_type, "application/json");
        assert!(hook.raw.is_ascii());
        assert_eq!(hook.json["object"], "whatsapp_business_account");
        assert_eq!(hook.json["entry"][0]["id"], "200000000000001");
        assert_eq!(hook.json["entry"][0]["changes"][0]["field"], "messages");
        let v = hook.value();
        assert_eq!(
            v["metadata"],
            json!({"display_phone_number": DISPLAY, "phone_number_id": PHONE_NUMBER_ID})
        );
        let s = &v["statuses"][0];
        assert_eq!(s["id"], id.as_str());
        assert_eq!(s["recipient_id"], "447700900099");
        assert_eq!(s["timestamp"], "1750000000");
        seen.push(s["status"].as_str().unwrap().to_string());
        if expected == "sent" {
            assert!(s["conversation"]["id"].is_string());
            assert_eq!(s["conversation"]["expiration_timestamp"], "1750086400");
            assert_eq!(s["pricing"]["billable"], true);
            assert_eq!(s["pricing"]["pricing_model"], "CBP");
        }
    }
    assert_eq!(seen, ["sent", "delivered", "read"]);
    let conversation = t
        .sim
        .conversation(&openline_domain::PhoneNumber::parse(MANUAL).unwrap());
    assert_eq!(conversation[0].status, "read");
}

#[tokio::test]
async fn a_number_not_on_whatsapp_gets_a_single_failed_status_with_131026() {
    let t = start().await;
    let id = send_ok(&t, &hello_world(NORA)).await;
    let hook = t.hooks.next().await;
    assert!(hook.signature_verifies());
    let s = &hook.value()["statuses"][0];
    assert_eq!(s["id"], id.as_str());
    assert_eq!(s["status"], "failed");
    assert_eq!(s["errors"][0]["code"], 131026);
    assert_eq!(s["errors"][0]["title"], "Message undeliverable");
    t.hooks.assert_quiet_for(300).await;
}

#[tokio::test]
async fn free_form_fails_with_131047_outside_the_window_and_is_delivered_after_the_phone_writes() {
    let t = start().await;
    // Arrange: the phone has never written.
    t.send_text(MANUAL, "Your card is ready").await;
    let failed = t.hooks.next().await;
    assert_eq!(failed.status(), Some("failed"));
    assert_eq!(failed.value()["statuses"][0]["errors"][0]["code"], 131047);
    assert_eq!(
        failed.value()["statuses"][0]["errors"][0]["title"],
        "Re-engagement message"
    );

    // The phone writes, which opens the window.
    t.phone_writes(MANUAL, "Hi, is my card ready?").await;
    assert_eq!(t.hooks.next().await.message()["type"], "text");
    t.send_text(MANUAL, "Yes, it is").await;
    assert_eq!(t.hooks.next().await.status(), Some("sent"));
    assert_eq!(t.hooks.next().await.status(), Some("delivered"));
    assert_eq!(t.hooks.next().await.status(), Some("read"));

    // A day later the window has closed again.
    t.clock.advance_ms(24 * 3_600_000 + 1);
    t.send_text(MANUAL, "Anything else?").await;
    let late = t.hooks.next().await;
    assert_eq!(late.value()["statuses"][0]["errors"][0]["code"], 131047);
}

#[tokio::test]
async fn the_window_rule_can_be_switched_off() {
    let t = start_with(0, |c| c.enforce_window = false).await;
    t.send_text(MANUAL, "Hello").await;
    assert_eq!(t.hooks.next().await.status(), Some("sent"));
}

#[tokio::test]
async fn a_silent_persona_receives_but_never_reads() {
    let t = start_with_quick_replies(&["Yes", "No"]).await;
    send_ok(&t, &template_with_quick_replies(SAM, &["Yes", "No"])).await;
    assert_eq!(t.hooks.next().await.status(), Some("sent"));
    assert_eq!(t.hooks.next().await.status(), Some("delivered"));
    t.hooks.assert_quiet_for(400).await;
}

#[tokio::test]
async fn an_accepting_persona_taps_the_first_quick_reply_of_a_template_after_reading() {
    let t = start_with_quick_replies(&["Yes please", "No thanks"]).await;
    let id = send_ok(&t, &template_with_quick_replies(ADA, &["YES", "NO"])).await;
    let reply = t.hooks.next_where(|h| !h.value()["messages"].is_null()).await;
    assert!(reply.signature_verifies());
    let m = reply.message();
    assert_eq!(m["type"], "button");
    assert_eq!(m["button"], json!({"payload": "YES", "text": "Yes please"}));
    assert_eq!(m["context"], json!({"from": DISPLAY, "id": id}));
    assert_eq!(m["from"], "447700900001");
    assert_eq!(reply.value()["contacts"][0]["profile"]["name"], "Ada Accepts");
}

#[tokio::test]
async fn a_declining_persona_taps_the_no_button() {
    // The persona reads the labels; the webhook carries the payload.
    let t = start_with_quick_replies(&["Yes", "STOP", "Later"]).await;
    let id = send_ok(&t, &template_with_quick_replies(DAN, &["P0", "P1", "P2"])).await;
    let reply = t.hooks.next_where(|h| !h.value()["messages"].is_null()).await;
    assert_eq!(reply.message()["button"], json!({"payload": "P1", "text": "STOP"}));
    assert_eq!(reply.message()["context"]["id"], id.as_str());
}

#[tokio::test]
async fn personas_answer_interactive_reply_buttons_with_a_button_reply() {
    let t = start().await;
    // The persona must have written first: interactive messages are free-form.
    t.phone_writes(DAN, "Can I change my appointment?").await;
    let body = json!({"messaging_product":"whatsapp","to":DAN,"type":"interactive","interactive":{
        "type":"button","body":{"text":"Keep Tuesday 10:00?"},
        "action":{"buttons":[{"type":"reply","reply":{"id":"keep","title":"Keep it"}},
                              {"type":"reply","reply":{"id":"cancel","title":"No, cancel"}}]}}});
    let id = send_ok(&t, &body).await;
    let reply = t.hooks.next_where(|h| h.message()["type"] == "interactive").await;
    assert_eq!(
        reply.message()["interactive"],
        json!({"type":"button_reply","button_reply":{"id":"cancel","title":"No, cancel"}})
    );
    assert_eq!(reply.message()["context"]["id"], id.as_str());
}

async fn set_marketing(t: &TestSim, phone: &str, preference: &str) -> (u16, Value) {
    let r = t
        .http
        .post(format!("{}/phones/{phone}/marketing", t.base))
        .json(&json!({"to": DISPLAY, "preference": preference}))
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// The next status webhook about message `id`.
async fn status_of(t: &TestSim, id: &str) -> Value {
    let id = id.to_owned();
    let hook = t
        .hooks
        .next_where(move |h| h.value()["statuses"][0]["id"] == id.as_str())
        .await;
    assert!(hook.signature_verifies());
    hook.value()["statuses"][0].clone()
}

#[tokio::test]
async fn a_phone_that_stopped_marketing_tells_the_business_and_gets_marketing_templates_failed_with_131050() {
    let t = start_with_quick_replies(&["Yes", "No"]).await;
    let (status, v) = set_marketing(&t, MANUAL, "stop").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["preference"], "stop");
    assert_eq!(v["webhook_status"], 200);

    // Meta's user_preferences webhook, signed, in the shape of the pywa fixture.
    let hook = t.hooks.next().await;
    assert!(hook.signature_verifies());
    assert_eq!(hook.json["entry"][0]["id"], WABA_ID);
    let change = &hook.json["entry"][0]["changes"][0];
    assert_eq!(change["field"], "user_preferences");
    assert_eq!(
        change["value"]["metadata"],
        json!({"display_phone_number": DISPLAY, "phone_number_id": PHONE_NUMBER_ID})
    );
    assert_eq!(change["value"]["contacts"][0]["wa_id"], "447700900099");
    assert_eq!(
        change["value"]["user_preferences"],
        json!([{"wa_id": "447700900099", "detail": "User requested to stop marketing messages",
            "category": "marketing_messages", "value": "stop", "timestamp": 1_750_000_000}])
    );

    // A marketing template is accepted, then fails with 131050 and nothing else.
    let promo = send_ok(&t, &template_with_quick_replies(MANUAL, &["A", "B"])).await;
    let s = status_of(&t, &promo).await;
    assert_eq!(s["status"], "failed");
    assert_eq!(s["errors"][0]["code"], 131050);
    assert_eq!(
        s["errors"][0]["error_data"]["details"],
        "Unable to deliver the message. This recipient has chosen to stop receiving marketing messages on WhatsApp from your business."
    );
    t.hooks.assert_quiet_for(300).await;

    // A utility template is delivered as before.
    let utility = send_ok(&t, &hello_world(MANUAL)).await;
    assert_eq!(status_of(&t, &utility).await["status"], "sent");

    // Resumed, marketing is delivered again.
    let (status, v) = set_marketing(&t, MANUAL, "resume").await;
    assert_eq!(status, 200, "{v}");
    let hook = t
        .hooks
        .next_where(|h| h.json["entry"][0]["changes"][0]["field"] == "user_preferences")
        .await;
    assert_eq!(
        hook.json["entry"][0]["changes"][0]["value"]["user_preferences"][0]["value"],
        "resume"
    );
    let promo = send_ok(&t, &template_with_quick_replies(MANUAL, &["A", "B"])).await;
    assert_eq!(status_of(&t, &promo).await["status"], "sent");
}

#[tokio::test]
async fn the_marketing_control_refuses_unknown_businesses_bad_choices_and_phones_not_on_whatsapp() {
    let t = start().await;
    let (status, v) = set_marketing(&t, NORA, "stop").await;
    assert_eq!((status, v["error"].as_str()), (409, Some("not_on_whatsapp")));
    let r = t
        .http
        .post(format!("{}/phones/{MANUAL}/marketing", t.base))
        .json(&json!({"to": "15559999999", "preference": "stop"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let r = t
        .http
        .post(format!("{}/phones/{MANUAL}/marketing", t.base))
        .json(&json!({"to": DISPLAY, "preference": "later"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    t.hooks.assert_quiet_for(200).await;
}
