//! Marketing preferences: a contact who stops marketing messages in WhatsApp (Meta's
//! `user_preferences` webhook, driven by the real pywa fixture bodies, or a marketing template Meta
//! refuses with 131050) gets no marketing template from openline until they resume, while utility
//! templates and replies go on; the stop is in the consent ledger with its evidence, journaled, shown
//! by the API and on the contact's page, and recorded once however often Meta delivers it.

use crate::common::*;
use openline_store::Backend;
use serde_json::{json, Value};
use std::time::Duration;

crate::both_backends! {
    a_stop_blocks_marketing_templates_only_and_a_resume_lifts_it => stop_and_resume;
    a_redelivered_or_late_preference_is_recorded_once_and_a_forged_one_not_at_all => redelivered_late_and_forged;
    a_marketing_template_refused_with_131050_records_the_stop => refused_with_131050;
    the_simulated_phone_stops_and_resumes_through_a_signed_webhook => phone_control;
}

const ADMIN: &str = "admin@demo.openline.dev";
const DEMO_PHONE_NUMBER_ID: &str = "100000000000001";
const DEMO_WABA_ID: &str = "200000000000001";
/// Ada's WhatsApp id (digits).
const ADA_WA_ID: &str = "447700900001";
/// The fixture's timestamp (epoch seconds) of the resume and the sign-up.
const FIXTURE_TS: i64 = 1_731_705_721;

/// A case of the real pywa fixture, pointed at the demo number and at `wa_id`.
fn preference_body(case: &str, wa_id: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/pywa/user_marketing_preferences.json");
    let cases: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let mut body = cases[case].clone();
    body["entry"][0]["id"] = json!(DEMO_WABA_ID);
    let value = &mut body["entry"][0]["changes"][0]["value"];
    value["metadata"]["phone_number_id"] = json!(DEMO_PHONE_NUMBER_ID);
    value["user_preferences"][0]["wa_id"] = json!(wa_id);
    body
}

/// The fixture's resume turned into the stop Meta sends (its documented `detail` sentence), an hour
/// before the fixture's resume.
fn stop_body(wa_id: &str) -> Value {
    let mut body = preference_body("resume", wa_id);
    let pref = &mut body["entry"][0]["changes"][0]["value"]["user_preferences"][0];
    pref["value"] = json!("stop");
    pref["detail"] = json!("User requested to stop marketing messages");
    pref["timestamp"] = json!(FIXTURE_TS - 3600);
    body
}

async fn post_ok(app: &TestApp, body: &Value) {
    let res = app.post_signed_webhook(&serde_json::to_vec(body).unwrap()).await;
    let status = res.status();
    assert_eq!(status, 200, "{}", res.text().await.unwrap());
}

/// Submits a template as the admin and has the simulator (Meta) approve it.
async fn approved_template(app: &TestApp, template: Value) {
    let (status, t) = app.post("/api/v1/templates", template).await;
    assert_eq!(status, 201, "{t}");
    let (status, _) = app
        .post(
            &format!("/sim/templates/{}/approve", t["provider_template_id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (_, got) = app
            .get(&format!("/api/v1/templates/{}", t["id"].as_str().unwrap()))
            .await;
        if got["status"]["state"] == "approved" {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "never approved: {got}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The demo app with an approved marketing template (`spring_offer`) and an approved utility one
/// (`appointment_reminder`); Ada has opted in (so her window is open). Signed in as the agent.
async fn with_templates(backend: Backend) -> (TestApp, String) {
    let app = spawn_app(backend).await;
    app.sign_in(ADMIN).await;
    approved_template(
        &app,
        json!({"name": "spring_offer", "language": "en", "category": "marketing",
            "components": [{"type": "body", "text": "Hello {{1}}, our savings rate is up this spring."}]}),
    )
    .await;
    approved_template(
        &app,
        json!({"name": "appointment_reminder", "language": "en", "category": "utility",
            "components": [{"type": "body", "text": "Hello {{1}}, your appointment is on {{2}}."}]}),
    )
    .await;
    app.sign_in(AGENT).await;
    app.ada_opts_in().await;
    let ada = app.contact_id(ADA).await;
    (app, ada)
}

async fn send_offer(app: &TestApp, contact_id: &str) -> (u16, Value) {
    app.post(
        "/api/v1/messages",
        json!({"contact_id": contact_id, "template": {"name": "spring_offer", "language": "en", "parameters": ["Ada"]}}),
    )
    .await
}

async fn send_reminder(app: &TestApp, contact_id: &str) -> (u16, Value) {
    app.post(
        "/api/v1/messages",
        json!({"contact_id": contact_id, "template": {"name": "appointment_reminder", "language": "en", "parameters": ["Ada", "Friday"]}}),
    )
    .await
}

async fn consent_of(app: &TestApp, contact_id: &str) -> Value {
    let (status, c) = app.get(&format!("/api/v1/contacts/{contact_id}/consent")).await;
    assert_eq!(status, 200, "{c}");
    c
}

fn marketing_entries(consent: &Value) -> Vec<Value> {
    consent["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"].as_str().unwrap().starts_with("marketing_"))
        .cloned()
        .collect()
}

async fn notices_for(app: &TestApp, contact_id: &str) -> Vec<String> {
    let (_, inbox) = app.get("/api/v1/conversations?limit=200").await;
    let conv = inbox["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["contact_id"] == contact_id)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, page) = app
        .get(&format!("/api/v1/conversations/{conv}/messages?limit=200"))
        .await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == "notice")
        .map(|m| m["body"].as_str().unwrap().to_owned())
        .collect()
}

async fn stop_and_resume(backend: Backend) {
    let (app, ada) = with_templates(backend).await;
    assert_eq!(
        consent_of(&app, &ada).await["marketing"],
        json!({"state": "allowed", "since": null})
    );

    post_ok(&app, &stop_body(ADA_WA_ID)).await;

    // A marketing template is refused before anything is stored, saying what to do instead.
    let before = app.count("select count(*) from messages").await;
    let (status, err) = send_offer(&app, &ada).await;
    assert_eq!(status, 422, "{err}");
    assert_eq!(err["error"], "marketing_stopped");
    let message = err["message"].as_str().unwrap();
    assert!(message.contains("stopped marketing messages"), "{message}");
    assert!(message.contains("2024-11-15 20:22 UTC"), "{message}");
    assert!(message.contains("utility template"), "{message}");
    assert_eq!(
        app.count("select count(*) from messages").await,
        before,
        "nothing stored"
    );
    // A utility template and a reply inside the window go as before.
    let (status, sent) = send_reminder(&app, &ada).await;
    assert_eq!(status, 202, "{sent}");
    let (status, sent) = app.send_text(&ada, "Your card is on its way.").await;
    assert_eq!(status, 202, "{sent}");

    // The API shows the stop, its evidence, and consent unchanged.
    let consent = consent_of(&app, &ada).await;
    assert_eq!(consent["consent"]["state"], "granted", "{consent}");
    assert_eq!(
        consent["marketing"],
        json!({"state": "stopped", "since": (FIXTURE_TS - 3600) * 1000})
    );
    let entries = marketing_entries(&consent);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["kind"], "marketing_stopped");
    assert_eq!(entries[0]["at"], (FIXTURE_TS - 3600) * 1000);
    assert_eq!(entries[0]["evidence"]["source"], "user_preferences");
    assert_eq!(entries[0]["evidence"]["value"], "stop");
    assert_eq!(entries[0]["evidence"]["category"], "marketing_messages");
    assert_eq!(
        entries[0]["evidence"]["detail"],
        "User requested to stop marketing messages"
    );
    assert_eq!(entries[0]["evidence"]["phone_number_id"], DEMO_PHONE_NUMBER_ID);
    assert_eq!(
        app.count("select count(*) from journal where kind = 'consent.marketing_stopped'")
            .await,
        1
    );
    assert!(
        notices_for(&app, &ada)
            .await
            .iter()
            .any(|n| n.starts_with("Ada Accepts stopped marketing messages on WhatsApp.")),
        "the agents are told in the thread"
    );

    // The contact's page says so.
    let browser = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = browser
        .post(app.at("/login"))
        .header("origin", &app.url)
        .form(&[("email", AGENT), ("password", PASSWORD), ("next", "/messages")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let html = browser
        .get(app.at(&format!("/contacts/{ada}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("Marketing messages: stopped on <time datetime=\"1731702121000\">2024-11-15 20:22 UTC</time>"),
        "{html}"
    );

    // The fixture's resume lifts it: the same template now goes.
    post_ok(&app, &preference_body("resume", ADA_WA_ID)).await;
    let (status, sent) = send_offer(&app, &ada).await;
    assert_eq!(status, 202, "{sent}");
    let consent = consent_of(&app, &ada).await;
    assert_eq!(
        consent["marketing"],
        json!({"state": "allowed", "since": FIXTURE_TS * 1000})
    );
    let kinds: Vec<Value> = marketing_entries(&consent).iter().map(|e| e["kind"].clone()).collect();
    assert_eq!(kinds, [json!("marketing_stopped"), json!("marketing_resumed")]);
    let html = browser
        .get(app.at(&format!("/contacts/{ada}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Marketing messages: allowed (resumed on"), "{html}");
    app.stop().await;
}

async fn redelivered_late_and_forged(backend: Backend) {
    let (app, ada) = with_templates(backend).await;
    let stops = || async {
        app.count("select count(*) from consent_events where kind = 'marketing_stopped'")
            .await
    };

    // A forged signature: refused, nothing stored, not even the provider event.
    let body = serde_json::to_vec(&stop_body(ADA_WA_ID)).unwrap();
    let forged = app
        .http
        .post(app.at("/webhooks/whatsapp"))
        .header("content-type", "application/json")
        .header(
            "x-hub-signature-256",
            openline_channels::sign_meta(b"not-the-app-secret", &body),
        )
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);
    assert_eq!(stops().await, 0);
    assert_eq!(
        app.count("select count(*) from provider_events where field = 'user_preferences'")
            .await,
        0
    );
    let (status, sent) = send_offer(&app, &ada).await;
    assert_eq!(status, 202, "a forged stop changes nothing: {sent}");

    // Meta delivers the same stop twice: one entry, one journal entry.
    post_ok(&app, &stop_body(ADA_WA_ID)).await;
    post_ok(&app, &stop_body(ADA_WA_ID)).await;
    assert_eq!(stops().await, 1);
    assert_eq!(
        app.count("select count(*) from journal where kind = 'consent.marketing_stopped'")
            .await,
        1
    );

    // The resume, then the stop delivered once more, late: still resumed (the ledger goes by
    // when things happened), and still one stop.
    post_ok(&app, &preference_body("resume", ADA_WA_ID)).await;
    post_ok(&app, &stop_body(ADA_WA_ID)).await;
    assert_eq!(stops().await, 1);
    assert_eq!(consent_of(&app, &ada).await["marketing"]["state"], "allowed");

    // A sign-up through a sign-up link also lifts a stop, keeping its id as evidence.
    let mut later_stop = stop_body(ADA_WA_ID);
    later_stop["entry"][0]["changes"][0]["value"]["user_preferences"][0]["timestamp"] = json!(FIXTURE_TS + 60);
    post_ok(&app, &later_stop).await;
    assert_eq!(consent_of(&app, &ada).await["marketing"]["state"], "stopped");
    let mut signup = preference_body("signup", ADA_WA_ID);
    signup["entry"][0]["changes"][0]["value"]["user_preferences"][0]["timestamp"] = json!(FIXTURE_TS + 120);
    post_ok(&app, &signup).await;
    let consent = consent_of(&app, &ada).await;
    assert_eq!(consent["marketing"]["state"], "allowed", "{consent}");
    let last = marketing_entries(&consent).pop().unwrap();
    assert_eq!(last["kind"], "marketing_resumed");
    assert_eq!(last["evidence"]["signup_id"], "13176843987434774");

    // Someone openline never heard of becomes a contact with the stop recorded, so a contact added
    // later cannot be sent the promotions they stopped.
    post_ok(&app, &stop_body("447700900055")).await;
    let stranger = app.contact_id("+447700900055").await;
    assert_eq!(consent_of(&app, &stranger).await["marketing"]["state"], "stopped");

    // A preference for a number openline does not have is kept as a provider event only.
    let mut foreign = stop_body("447700900066");
    foreign["entry"][0]["changes"][0]["value"]["metadata"]["phone_number_id"] = json!("999999999999999");
    post_ok(&app, &foreign).await;
    assert_eq!(
        app.count("select count(*) from contacts where phone = '+447700900066'")
            .await,
        0
    );
    app.stop().await;
}

async fn refused_with_131050(backend: Backend) {
    let (app, ada) = with_templates(backend).await;
    // Ada stops promotions, but the webhook telling openline never arrives; Meta knows all the same.
    let sim = app.handle.as_ref().unwrap().sim.clone().unwrap();
    sim.set_marketing_choice(
        &openline_domain::PhoneNumber::parse(ADA).unwrap(),
        BUSINESS_NUMBER,
        openline_sim::MarketingChoice::Stop,
    )
    .unwrap();

    let (status, sent) = send_offer(&app, &ada).await;
    assert_eq!(status, 202, "openline does not know yet: {sent}");
    let failed = app
        .wait_for_message(sent["id"].as_str().unwrap(), |m| m["status"] == "failed")
        .await;
    assert_eq!(failed["error_code"], 131050);
    let why = failed["error_explanation"].as_str().unwrap();
    assert!(why.contains("stopped marketing messages"), "{why}");
    assert!(why.contains("utility template"), "{why}");

    // The failure is the evidence: recorded, shown, and the next marketing template is refused.
    let consent = consent_of(&app, &ada).await;
    assert_eq!(consent["marketing"]["state"], "stopped", "{consent}");
    let entries = marketing_entries(&consent);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["evidence"]["source"], "provider_error");
    assert_eq!(entries[0]["evidence"]["error_code"], 131050);
    assert_eq!(entries[0]["message_id"], sent["id"]);
    assert!(
        notices_for(&app, &ada)
            .await
            .iter()
            .any(|n| n.contains("has stopped marketing messages from your business")),
        "the agents are told in the thread"
    );
    let (status, err) = send_offer(&app, &ada).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (422, Some("marketing_stopped")),
        "{err}"
    );
    let (status, sent) = send_reminder(&app, &ada).await;
    assert_eq!(status, 202, "{sent}");
    app.stop().await;
}

async fn phone_control(backend: Backend) {
    let (app, ada) = with_templates(backend).await;
    // The simulated phone's page offers it, for the business's WhatsApp number.
    let html = app
        .http
        .get(app.at("/phone/+447700900001"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("data-business=\"15550001000\""), "{html}");
    assert!(
        html.contains("Stop promotions") && html.contains("Resume promotions"),
        "{html}"
    );
    let (status, v) = app
        .post(
            &format!("/sim/phones/{ADA}/marketing"),
            json!({"to": BUSINESS_NUMBER, "preference": "stop"}),
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["webhook_status"], 200, "openline acknowledged the webhook: {v}");
    assert_eq!(consent_of(&app, &ada).await["marketing"]["state"], "stopped");
    let (status, err) = send_offer(&app, &ada).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (422, Some("marketing_stopped")),
        "{err}"
    );

    let (status, v) = app
        .post(
            &format!("/sim/phones/{ADA}/marketing"),
            json!({"to": BUSINESS_NUMBER, "preference": "resume"}),
        )
        .await;
    assert_eq!((status, v["webhook_status"].as_i64()), (200, Some(200)), "{v}");
    assert_eq!(consent_of(&app, &ada).await["marketing"]["state"], "allowed");
    let (status, sent) = send_offer(&app, &ada).await;
    assert_eq!(status, 202, "{sent}");
    // The OpenAPI document describes the preference.
    let (_, doc) = app.get("/api/openapi.json").await;
    let schemas = &doc["components"]["schemas"];
    assert!(
        schemas["ContactConsent"]["properties"]["marketing"].is_object(),
        "{}",
        schemas["ContactConsent"]
    );
    assert!(
        schemas["MarketingPreference"].is_object(),
        "{}",
        schemas["MarketingPreference"]
    );
    // And the phone receives it.
    app.wait_for_message(sent["id"].as_str().unwrap(), |m| {
        matches!(m["status"].as_str(), Some("delivered" | "read"))
    })
    .await;
    assert!(app
        .phone_received(ADA)
        .await
        .iter()
        .any(|t| t.contains("spring_offer") || t.contains("savings rate")));
    app.stop().await;
}
