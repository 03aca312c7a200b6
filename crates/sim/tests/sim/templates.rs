//! Message templates as Meta keeps them: submitted through the Graph API, reviewed through the
//! simulator's admin API (each decision a signed `message_template_status_update` webhook), and
//! checked on every template send (132001, 132000, 132015, 132016).

use crate::support::*;
use serde_json::{json, Value};

fn templates_url(t: &TestSim, waba: &str) -> String {
    format!("{}/graph/v23.0/{waba}/message_templates", t.base)
}

async fn submit(t: &TestSim, body: &Value) -> (u16, Value) {
    let r = t
        .http
        .post(templates_url(t, WABA_ID))
        .bearer_auth(TOKEN)
        .json(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

async fn list(t: &TestSim, query: &str) -> (u16, Value) {
    let r = t
        .http
        .get(format!("{}{query}", templates_url(t, WABA_ID)))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

/// `POST /templates/{id}/{action}` on the admin API.
async fn decide(t: &TestSim, id: &str, action: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = t.http.post(format!("{}/templates/{id}/{action}", t.base));
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn order_update() -> Value {
    json!({"name":"order_update","language":"en_US","category":"UTILITY","components":[
        {"type":"HEADER","format":"TEXT","text":"Order {{1}}"},
        {"type":"BODY","text":"Hi {{1}}, your order {{2}} has shipped.","example":{"body_text":[["Ada","A-1"]]}},
        {"type":"FOOTER","text":"Reply STOP to opt out"},
        {"type":"BUTTONS","buttons":[{"type":"URL","text":"Track","url":"https://example.com/t/{{1}}"},
                                    {"type":"QUICK_REPLY","text":"Thanks"},
                                    {"type":"QUICK_REPLY","text":"Stop updates"}]}]})
}

fn send_order_update(to: &str, body_params: &[&str]) -> Value {
    let params: Vec<Value> = body_params.iter().map(|p| json!({"type":"text","text":p})).collect();
    json!({"messaging_product":"whatsapp","to":to,"type":"template","template":{
        "name":"order_update","language":{"code":"en_US"},"components":[
            {"type":"header","parameters":[{"type":"text","text":"A-1"}]},
            {"type":"body","parameters":params},
            {"type":"button","sub_type":"url","index":"0","parameters":[{"type":"text","text":"A-1"}]},
            {"type":"button","sub_type":"quick_reply","index":"2","parameters":[{"type":"payload","payload":"STOP_UPDATES"}]}]}})
}

/// openline's opt-in request exactly as its server sends it.
fn openline_opt_in(to: &str) -> Value {
    json!({"messaging_product":"whatsapp","recipient_type":"individual","to":to,"type":"template","template":{
        "name":"openline_opt_in","language":{"code":"en","policy":"deterministic"},"components":[
            {"type":"body","parameters":[{"type":"text","text":"Acme Bank"}]},
            {"type":"button","sub_type":"quick_reply","index":"0","parameters":[{"type":"payload","payload":"OPTIN_YES"}]},
            {"type":"button","sub_type":"quick_reply","index":"1","parameters":[{"type":"payload","payload":"OPTIN_NO"}]}]}})
}

fn assert_send_refused(status: u16, body: &Value, code: i64) {
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert_eq!(body["error"]["type"], "OAuthException", "{body}");
    assert_eq!(body["error"]["error_data"]["messaging_product"], "whatsapp", "{body}");
}

/// The one `message_template_status_update` change in a webhook, after checking the envelope.
fn template_change(hook: &Received) -> &Value {
    assert!(hook.signature_verifies(), "signature");
    assert_eq!(hook.json["object"], "whatsapp_business_account");
    let entry = &hook.json["entry"][0];
    assert_eq!(entry["id"], WABA_ID);
    assert_eq!(entry["time"], 1_750_000_000);
    assert_eq!(entry["changes"][0]["field"], "message_template_status_update");
    &entry["changes"][0]["value"]
}

#[tokio::test]
async fn a_submitted_template_is_pending_until_approved_then_announced_and_sendable() {
    let t = start().await;
    let (status, created) = submit(&t, &order_update()).await;
    assert_eq!(status, 200, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    assert!(id.len() >= 15 && id.chars().all(|c| c.is_ascii_digit()), "{id}");
    assert_eq!(created, json!({"id": id, "status": "PENDING", "category": "UTILITY"}));

    // Pending: Meta answers as if it did not exist.
    let (status, body) = t.send(&send_order_update(MANUAL, &["Ada", "A-1"])).await;
    assert_send_refused(status, &body, 132001);
    t.hooks.assert_quiet_for(200).await;

    let (status, approved) = decide(&t, &id, "approve", None).await;
    assert_eq!(status, 200, "{approved}");
    assert_eq!(approved["template"]["status"], "APPROVED");
    assert_eq!(approved["webhook_status"], 200);
    let hook = t.hooks.next().await;
    assert_eq!(
        template_change(&hook),
        &json!({"event":"APPROVED","message_template_id":id.parse::<u64>().unwrap(),
            "message_template_name":"order_update","message_template_language":"en_US",
            "reason":"NONE","message_template_category":"UTILITY"})
    );

    let (status, sent) = t.send(&send_order_update(MANUAL, &["Ada", "A-1"])).await;
    assert_eq!(status, 200, "{sent}");
    let wamid = sent["messages"][0]["id"].as_str().unwrap().to_string();
    let delivered = t.hooks.next_where(|h| h.status() == Some("sent")).await;
    assert_eq!(delivered.value()["statuses"][0]["pricing"]["category"], "utility");
    let seen = t
        .sim
        .conversation(&openline_domain::PhoneNumber::parse(MANUAL).unwrap());
    let entry = seen.iter().find(|e| e.id == wamid).unwrap();
    let template = entry.template.as_ref().unwrap();
    assert_eq!(template.body.as_deref(), Some("Hi Ada, your order A-1 has shipped."));
    // Only the quick replies are tappable; the payload given for index 2, the label for index 1.
    let buttons: Vec<(&str, &str)> = entry.buttons.iter().map(|b| (b.id.as_str(), b.text.as_str())).collect();
    assert_eq!(buttons, [("Thanks", "Thanks"), ("STOP_UPDATES", "Stop updates")]);
}

#[tokio::test]
async fn a_rejection_carries_metas_reason_and_the_template_cannot_be_sent() {
    let t = start().await;
    let (_, created) = submit(&t, &order_update()).await;
    let id = created["id"].as_str().unwrap();

    let (status, body) = decide(&t, id, "reject", Some(json!({"reason":"MADE_UP"}))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_request")),
        "{body}"
    );
    let (status, rejected) = decide(&t, id, "reject", Some(json!({"reason":"INVALID_FORMAT"}))).await;
    assert_eq!(status, 200, "{rejected}");
    assert_eq!(rejected["template"]["status"], "REJECTED");
    assert_eq!(rejected["template"]["rejected_reason"], "INVALID_FORMAT");

    let hook = t.hooks.next().await;
    let change = template_change(&hook);
    assert_eq!(change["event"], "REJECTED");
    assert_eq!(change["reason"], "INVALID_FORMAT");
    assert_eq!(change["message_template_name"], "order_update");
    assert!(change["rejection_info"]["reason"].as_str().unwrap().contains("format"));

    let (status, body) = t.send(&send_order_update(MANUAL, &["Ada", "A-1"])).await;
    assert_send_refused(status, &body, 132001);
    assert_eq!(
        body["error"]["message"],
        "(#132001) Template name does not exist in the translation"
    );
    assert_eq!(
        body["error"]["error_data"]["details"],
        "template name (order_update) does not exist in en_US"
    );
    // A rejected template can be approved on appeal, but not rejected again.
    let (status, body) = decide(&t, id, "reject", Some(json!({"reason":"SCAM"}))).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("invalid_transition")),
        "{body}"
    );
}

#[tokio::test]
async fn unknown_templates_and_languages_fail_with_132001() {
    let t = start().await;
    for (name, lang) in [
        ("no_such_template", "en"),
        ("openline_opt_in", "fr"),
        ("hello_world", "en"),
    ] {
        let (status, body) = t
            .send(&json!({"messaging_product":"whatsapp","to":MANUAL,"type":"template",
                "template":{"name":name,"language":{"code":lang}}}))
            .await;
        assert_send_refused(status, &body, 132001);
    }
}

#[tokio::test]
async fn a_wrong_number_of_parameters_fails_with_132000() {
    let t = start().await;
    let mut none = openline_opt_in(MANUAL);
    none["template"]["components"].as_array_mut().unwrap().remove(0);
    let mut two = openline_opt_in(MANUAL);
    two["template"]["components"][0]["parameters"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type":"text","text":"extra"}));
    for body in [none, two] {
        let (status, refused) = t.send(&body).await;
        assert_send_refused(status, &refused, 132000);
        assert_eq!(
            refused["error"]["message"],
            "(#132000) Number of parameters does not match the expected number of params"
        );
        assert!(refused["error"]["error_data"]["details"]
            .as_str()
            .unwrap()
            .starts_with("body: number of localizable_params"));
    }
    // A text header's placeholders count too.
    let (_, created) = submit(&t, &order_update()).await;
    decide(&t, created["id"].as_str().unwrap(), "approve", None).await;
    let mut headless = send_order_update(MANUAL, &["Ada", "A-1"]);
    headless["template"]["components"].as_array_mut().unwrap().remove(0);
    let (status, refused) = t.send(&headless).await;
    assert_send_refused(status, &refused, 132000);
    // A URL button ending in {{1}} needs its suffix, and only such a button takes one.
    let mut no_suffix = send_order_update(MANUAL, &["Ada", "A-1"]);
    no_suffix["template"]["components"].as_array_mut().unwrap().remove(2);
    let (status, refused) = t.send(&no_suffix).await;
    assert_send_refused(status, &refused, 132000);
    assert!(
        refused["error"]["error_data"]["details"]
            .as_str()
            .unwrap()
            .starts_with("button:"),
        "{refused}"
    );
    let mut wrong_index = send_order_update(MANUAL, &["Ada", "A-1"]);
    wrong_index["template"]["components"][2]["index"] = json!("1");
    let (status, refused) = t.send(&wrong_index).await;
    assert_send_refused(status, &refused, 131009);
    let (status, ok) = t.send(&send_order_update(MANUAL, &["Ada", "A-1"])).await;
    assert_eq!(status, 200, "{ok}");
    // An image header takes its image with every send.
    let statement = json!({"name":"statement_ready","language":"en","category":"UTILITY","components":[
        {"type":"HEADER","format":"IMAGE","example":{"header_handle":["https://example.com/s.png"]}},
        {"type":"BODY","text":"Hello {{1}}, your statement is ready.","example":{"body_text":[["Ada"]]}}]});
    let (_, created) = submit(&t, &statement).await;
    decide(&t, created["id"].as_str().unwrap(), "approve", None).await;
    let send_statement = |header: Option<Value>| {
        let mut components = vec![json!({"type":"body","parameters":[{"type":"text","text":"Ada"}]})];
        if let Some(h) = header {
            components.insert(0, h);
        }
        json!({"messaging_product":"whatsapp","to":MANUAL,"type":"template","template":{
            "name":"statement_ready","language":{"code":"en"},"components":components}})
    };
    let image = json!({"type":"header","parameters":[{"type":"image","image":{"link":"https://example.com/s.png"}}]});
    let (status, refused) = t.send(&send_statement(None)).await;
    assert_send_refused(status, &refused, 132000);
    let (status, ok) = t.send(&send_statement(Some(image))).await;
    assert_eq!(status, 200, "{ok}");
    // A quick-reply payload for a button that is not a quick reply.
    let mut wrong_button = openline_opt_in(MANUAL);
    wrong_button["template"]["components"][2]["index"] = json!("5");
    let (status, refused) = t.send(&wrong_button).await;
    assert_send_refused(status, &refused, 131009);
}

#[tokio::test]
async fn the_seeded_opt_in_sends_as_openline_sends_it_and_the_personas_answer_with_its_payloads() {
    let t = start().await;
    let (status, sent) = t.send(&openline_opt_in(MANUAL)).await;
    assert_eq!(status, 200, "{sent}");
    t.hooks.next_where(|h| h.status() == Some("read")).await;
    let (_, seen) = {
        let r = t
            .http
            .get(format!("{}/phones/{MANUAL}/messages", t.base))
            .send()
            .await
            .unwrap();
        (r.status().as_u16(), r.json::<Value>().await.unwrap())
    };
    let m = &seen[0];
    assert_eq!(m["template"]["name"], "openline_opt_in");
    assert_eq!(m["template"]["parameters"], json!(["Acme Bank"]));
    assert_eq!(
        m["template"]["body"],
        "Hello! Acme Bank would like to send you messages on WhatsApp. Do you agree? Tap Yes or No (or reply YES or NO)."
    );
    assert_eq!(
        m["buttons"],
        json!([{"kind":"quick_reply","id":"OPTIN_YES","text":"Yes"},
               {"kind":"quick_reply","id":"OPTIN_NO","text":"No"}])
    );

    for (persona, payload, label) in [(ADA, "OPTIN_YES", "Yes"), (DAN, "OPTIN_NO", "No")] {
        let (status, sent) = t.send(&openline_opt_in(persona)).await;
        assert_eq!(status, 200, "{sent}");
        let id = sent["messages"][0]["id"].as_str().unwrap().to_string();
        let reply = t.hooks.next_where(|h| h.message()["type"] == "button").await;
        assert!(reply.signature_verifies());
        assert_eq!(
            reply.message()["button"],
            json!({"payload": payload, "text": label}),
            "{persona}"
        );
        assert_eq!(reply.message()["context"]["id"], id.as_str());
    }
}

#[tokio::test]
async fn templates_are_listed_in_metas_shape_and_filtered() {
    let t = start().await;
    submit(&t, &order_update()).await;
    let (status, listed) = list(&t, "").await;
    assert_eq!(status, 200, "{listed}");
    let data = listed["data"].as_array().unwrap();
    let names: Vec<&str> = data.iter().map(|d| d["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["openline_opt_in", "hello_world", "order_update"]);
    let opt_in = &data[0];
    let mut keys: Vec<&str> = opt_in.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "category",
            "components",
            "id",
            "language",
            "name",
            "parameter_format",
            "status"
        ]
    );
    assert_eq!(opt_in["status"], "APPROVED");
    assert_eq!(opt_in["category"], "UTILITY");
    assert_eq!(opt_in["language"], "en");
    assert_eq!(opt_in["components"][1]["buttons"][1]["text"], "No");
    assert!(opt_in["id"].as_str().unwrap().chars().all(|c| c.is_ascii_digit()));
    assert_eq!(
        data[2]["components"],
        order_update()["components"],
        "components as submitted"
    );
    assert_eq!(data[2]["status"], "PENDING");
    assert!(listed["paging"]["cursors"]["before"].is_string());
    assert!(listed["paging"]["cursors"]["after"].is_string());

    let (_, pending) = list(&t, "?status=PENDING").await;
    assert_eq!(pending["data"].as_array().unwrap().len(), 1);
    let (_, by_name) = list(&t, "?name=hello").await;
    assert_eq!(by_name["data"][0]["name"], "hello_world");
    let (_, none) = list(&t, "?name=nothing").await;
    assert_eq!(none, json!({"data": [], "paging": {"cursors": {}}}));

    // The admin API sees the same registry, with the WABA.
    let admin: Value = t
        .http
        .get(format!("{}/templates", t.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(admin.as_array().unwrap().len(), 3);
    assert_eq!(admin[2]["waba_id"], WABA_ID);
}

#[tokio::test]
async fn a_duplicate_or_invalid_submission_gets_metas_error() {
    let t = start().await;
    let (status, body) = submit(
        &t,
        &json!({"name":"openline_opt_in","language":"en","category":"UTILITY",
            "components":[{"type":"BODY","text":"Again {{1}}"}]}),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let e = &body["error"];
    assert_eq!(e["code"], 100);
    assert_eq!(e["error_subcode"], 2388024);
    assert_eq!(e["message"], "Invalid parameter");
    assert_eq!(e["type"], "OAuthException");
    assert_eq!(e["error_user_title"], "Content in This Language Already Exists");
    assert!(e["error_user_msg"].as_str().unwrap().contains("English"));
    assert!(e["fbtrace_id"].as_str().unwrap().starts_with('A'));
    // The same name in another language is another translation, and fine.
    let (status, body) = submit(
        &t,
        &json!({"name":"openline_opt_in","language":"fr","category":"UTILITY",
            "components":[{"type":"BODY","text":"{{1}} souhaite vous écrire."}]}),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    let long = "a".repeat(513);
    for bad in [
        json!({"name":"Order-Update","language":"en","category":"UTILITY","components":[{"type":"BODY","text":"x"}]}),
        json!({"name":long,"language":"en","category":"UTILITY","components":[{"type":"BODY","text":"x"}]}),
        json!({"name":"a","language":"en","category":"PROMO","components":[{"type":"BODY","text":"x"}]}),
        json!({"name":"a","language":"en","category":"UTILITY","components":[{"type":"HEADER","format":"TEXT","text":"x"}]}),
        json!({"name":"a","language":"english","category":"UTILITY","components":[{"type":"BODY","text":"x"}]}),
    ] {
        let (status, body) = submit(&t, &bad).await;
        assert_eq!((status, &body["error"]["code"]), (400, &json!(100)), "{bad} -> {body}");
        assert!(body["error"]["error_user_msg"].is_string(), "{body}");
    }
}

#[tokio::test]
async fn paused_and_disabled_templates_fail_with_132015_and_132016() {
    let t = start().await;
    let admin: Value = t
        .http
        .get(format!("{}/templates", t.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = admin[0]["id"].as_str().unwrap().to_string();
    assert_eq!(admin[0]["name"], "openline_opt_in");

    let (status, _) = decide(&t, &id, "pause", None).await;
    assert_eq!(status, 200);
    let change = template_change(&t.hooks.next().await).clone();
    assert_eq!(change["event"], "PAUSED");
    assert!(change["other_info"]["title"].is_string());
    let (status, body) = t.send(&openline_opt_in(MANUAL)).await;
    assert_send_refused(status, &body, 132015);

    let (status, _) = decide(&t, &id, "disable", None).await;
    assert_eq!(status, 200);
    assert_eq!(template_change(&t.hooks.next().await)["event"], "DISABLED");
    let (status, body) = t.send(&openline_opt_in(MANUAL)).await;
    assert_send_refused(status, &body, 132016);

    let (status, body) = decide(&t, &id, "approve", None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (409, Some("invalid_transition")),
        "{body}"
    );
    let (status, body) = decide(&t, "123", "approve", None).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (404, Some("unknown_template")),
        "{body}"
    );
    t.hooks.assert_quiet_for(200).await;
}

#[tokio::test]
async fn the_template_endpoints_need_the_token_and_a_known_waba() {
    let t = start().await;
    let r = t.http.get(templates_url(&t, WABA_ID)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = t
        .http
        .post(templates_url(&t, WABA_ID))
        .bearer_auth("wrong")
        .json(&order_update())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    for post in [false, true] {
        let url = templates_url(&t, "999");
        let req = if post {
            t.http.post(url).json(&order_update())
        } else {
            t.http.get(url)
        };
        let r = req.bearer_auth(TOKEN).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 400);
        let body: Value = r.json().await.unwrap();
        assert_eq!(
            (&body["error"]["code"], &body["error"]["error_subcode"]),
            (&json!(100), &json!(33))
        );
    }
}

#[tokio::test]
async fn the_openapi_document_describes_the_template_api() {
    let t = start().await;
    let doc: Value = t
        .http
        .get(format!("{}/openapi.json", t.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for path in [
        "/templates",
        "/templates/{id}/approve",
        "/templates/{id}/reject",
        "/templates/{id}/pause",
        "/templates/{id}/disable",
    ] {
        assert!(doc["paths"][path].is_object(), "{path}");
    }
    let reasons = &doc["components"]["schemas"]["RejectionReason"]["enum"];
    assert_eq!(reasons.as_array().unwrap().len(), 6, "{reasons}");
}
