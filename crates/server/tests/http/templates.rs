//! Templates through HTTP with the simulator as Meta: submit, approval and rejection by webhook,
//! preview, sending an approved template outside the window, parameter checks before anything is
//! sent, and the messaging-limit tier holding business-initiated conversations beyond its cap.

use crate::common::*;
use openline_domain::clock::ManualClock;
use openline_store::Backend;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const ADMIN: &str = "admin@demo.openline.dev";
const HOUR: i64 = 3_600_000;

crate::both_backends! {
    an_approved_template_restarts_a_conversation_after_the_window_closed => approved_template;
    a_rejected_template_shows_its_reason_and_cannot_be_sent => rejected_template;
    past_the_messaging_limit_business_initiated_templates_wait => messaging_limit;
    held_templates_go_once_the_rolling_24_hours_have_room_again => messaging_limit_timer;
    a_header_image_and_a_url_button_suffix_reach_the_provider => image_and_url_button;
    a_missing_or_malformed_header_image_or_url_suffix_is_refused_and_nothing_is_stored => image_and_url_button_refused;
}

fn reminder() -> Value {
    json!({
        "name": "appointment_reminder",
        "language": "en",
        "category": "utility",
        "components": [
            {"type": "body", "text": "Hello {{1}}, your appointment is on {{2}}."},
            {"type": "footer", "text": "Demo Bank"}
        ]
    })
}

/// An image header, a body, and a quick reply before a URL button that takes a suffix (so the
/// suffix's button index, 1, counts every button).
fn statement() -> Value {
    json!({
        "name": "statement_ready",
        "language": "en",
        "category": "utility",
        "components": [
            {"type": "header", "format": "image", "example_url": "https://cdn.bank.example/sample.png"},
            {"type": "body", "text": "Hello {{1}}, your statement is ready."},
            {"type": "buttons", "buttons": [
                {"type": "quick_reply", "text": "Thanks"},
                {"type": "url", "text": "Open statement", "url": "https://bank.example/statements/{{1}}"}
            ]}
        ]
    })
}

const STATEMENT_IMAGE: &str = "https://cdn.bank.example/statements/2026-04.png";

/// The statement template submitted and approved; Ada has opted in. Returns the app and Ada's id.
async fn with_statement_template(backend: Backend) -> (TestApp, String) {
    let app = spawn_app(backend).await;
    app.sign_in(ADMIN).await;
    let (status, t) = app.post("/api/v1/templates", statement()).await;
    assert_eq!(status, 201, "{t}");
    let (status, _) = app
        .post(
            &format!("/sim/templates/{}/approve", t["provider_template_id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!(status, 200);
    wait_for_template(&app, t["id"].as_str().unwrap(), "approved").await;
    app.sign_in(AGENT).await;
    app.ada_opts_in().await;
    let ada = app.contact_id(ADA).await;
    (app, ada)
}

fn send_statement(contact_id: &str, extra: Value) -> Value {
    let mut template = json!({"name": "statement_ready", "language": "en", "parameters": ["Ada"]});
    for (k, v) in extra.as_object().unwrap() {
        template[k] = v.clone();
    }
    json!({"contact_id": contact_id, "template": template})
}

async fn image_and_url_button(backend: Backend) {
    let (app, ada) = with_statement_template(backend).await;
    let (status, sent) = app
        .post(
            "/api/v1/messages",
            send_statement(
                &ada,
                json!({"header_image": {"link": STATEMENT_IMAGE}, "url_button_suffixes": ["ST-2026-04"]}),
            ),
        )
        .await;
    assert_eq!(status, 202, "{sent}");
    assert_eq!(sent["body"], "Hello Ada, your statement is ready.");
    // What the dispatcher builds the header and button components from.
    assert_eq!(sent["template"]["header_image_link"], STATEMENT_IMAGE, "{sent}");
    assert_eq!(sent["template"]["url_buttons"], json!([[1, "ST-2026-04"]]), "{sent}");
    // The simulator, like Meta, refuses (132000) an image-header template sent without its image
    // and a suffix that is missing or not at a `{{1}}` URL button's index: read means both arrived.
    let m = app
        .wait_for_message(sent["id"].as_str().unwrap(), |m| {
            m["status"] == "read" || m["status"] == "failed"
        })
        .await;
    assert_eq!(m["status"], "read", "{m}");
    assert!(app.phone_received(ADA).await.iter().any(|t| t == "statement_ready"));
    let (_, shown) = app.get(&format!("/sim/phones/{ADA}/messages")).await;
    let shown = shown
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["template"]["name"] == "statement_ready")
        .cloned()
        .unwrap();
    assert_eq!(
        shown["template"]["body"], "Hello Ada, your statement is ready.",
        "{shown}"
    );
    // The OpenAPI document describes the new fields.
    let (_, doc) = app.get("/api/openapi.json").await;
    let props = &doc["components"]["schemas"]["TemplateSend"]["properties"];
    assert!(
        props["header_image"].is_object() && props["url_button_suffixes"].is_object(),
        "{props}"
    );
    app.stop().await;
}

async fn image_and_url_button_refused(backend: Backend) {
    let (app, ada) = with_statement_template(backend).await;
    let stored = app.count("select count(*) from messages").await;
    let image = json!({"link": STATEMENT_IMAGE});
    for (extra, code, mentions) in [
        (
            json!({"url_button_suffixes": ["ST-2026-04"]}),
            "template_parameter_count",
            "image",
        ),
        (
            json!({"header_image": {"link": "http://cdn.bank.example/s.png"}, "url_button_suffixes": ["ST-2026-04"]}),
            "template_parameter_invalid",
            "https://",
        ),
        (
            json!({"header_image": {"link": "ftp://cdn.bank.example/s.png"}, "url_button_suffixes": ["ST-2026-04"]}),
            "template_parameter_invalid",
            "https://",
        ),
        (json!({"header_image": image}), "template_parameter_count", "URL button"),
        (
            json!({"header_image": image, "url_button_suffixes": ["a", "b"]}),
            "template_parameter_count",
            "URL button",
        ),
        (
            json!({"header_image": image, "url_button_suffixes": ["x".repeat(1025)]}),
            "template_parameter_invalid",
            "1024",
        ),
        (
            json!({"header_image": image, "url_button_suffixes": ["ST 2026"]}),
            "template_parameter_invalid",
            "no spaces",
        ),
    ] {
        let (status, err) = app.post("/api/v1/messages", send_statement(&ada, extra.clone())).await;
        assert_eq!((status, err["error"].as_str()), (422, Some(code)), "{extra}: {err}");
        assert!(err["message"].as_str().unwrap().contains(mentions), "{extra}: {err}");
    }
    // An unknown field in the image object is malformed JSON for this API, not ignored.
    let (status, _) = app
        .post(
            "/api/v1/messages",
            send_statement(
                &ada,
                json!({"header_image": {"url": STATEMENT_IMAGE}, "url_button_suffixes": ["ST-2026-04"]}),
            ),
        )
        .await;
    assert!((400..500).contains(&status), "{status}");
    assert_eq!(
        app.count("select count(*) from messages").await,
        stored,
        "nothing stored for a refused send"
    );
    app.stop().await;
}

async fn wait_for_template(app: &TestApp, id: &str, state: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (_, t) = app.get(&format!("/api/v1/templates/{id}")).await;
        if t["status"]["state"] == state {
            return t;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "template never became {state}: {t}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn approved_template(backend: Backend) {
    let clock = ManualClock::starting_now();
    let app = spawn_app_with_clock(backend, Arc::new(clock.clone())).await;
    // An agent may not submit templates; an admin may.
    app.sign_in(AGENT).await;
    let (status, err) = app.post("/api/v1/templates", reminder()).await;
    assert_eq!((status, err["error"].as_str()), (403, Some("forbidden")));
    app.sign_in(ADMIN).await;
    let (status, bad) = app.post("/api/v1/templates", json!({"name": "Bad Name", "language": "en", "category": "utility", "components": [{"type": "body", "text": "x"}]})).await;
    assert_eq!(
        (status, bad["error"].as_str()),
        (422, Some("template_invalid")),
        "{bad}"
    );
    let (status, t) = app.post("/api/v1/templates", reminder()).await;
    assert_eq!(status, 201, "{t}");
    assert_eq!(t["status"]["state"], "pending");
    let provider_id = t["provider_template_id"].as_str().unwrap().to_owned();
    let id = t["id"].as_str().unwrap().to_owned();
    let (status, dup) = app.post("/api/v1/templates", reminder()).await;
    assert_eq!((status, dup["error"].as_str()), (409, Some("template_exists")));

    // Ada agrees; a day passes; the window is closed.
    app.sign_in(AGENT).await;
    app.ada_opts_in().await;
    let ada = app.contact_id(ADA).await;
    clock.advance_ms(25 * HOUR);
    app.sign_in(AGENT).await;
    let send = |params: Value| json!({"contact_id": ada, "template": {"name": "appointment_reminder", "language": "en", "parameters": params}});
    let (status, err) = app.post("/api/v1/messages", send(json!(["Ada", "Thursday"]))).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (422, Some("template_not_approved")),
        "pending cannot be sent"
    );

    // Meta (the simulator) approves it; the webhook moves it to approved.
    let (status, _) = app
        .post(&format!("/sim/templates/{provider_id}/approve"), json!({}))
        .await;
    assert_eq!(status, 200);
    wait_for_template(&app, &id, "approved").await;
    let (status, preview) = app
        .post(
            &format!("/api/v1/templates/{id}/preview"),
            json!({"parameters": ["Ada", "Thursday"]}),
        )
        .await;
    assert_eq!(
        (status, preview["text"].as_str()),
        (200, Some("Hello Ada, your appointment is on Thursday."))
    );
    let (status, err) = app.post("/api/v1/messages", send(json!(["Ada"]))).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (422, Some("template_parameter_count")),
        "checked before sending"
    );
    let (status, err) = app
        .post("/api/v1/messages", send(json!(["Ada", "Thursday\nat 10"])))
        .await;
    assert_eq!(
        (status, err["error"].as_str()),
        (422, Some("template_parameter_invalid"))
    );

    // Free text written now is held for the window; the template sent after it still goes at
    // once, since it is what restarts the conversation (it does not wait behind the free text).
    let (status, held) = app
        .post(
            "/api/v1/messages",
            json!({"contact_id": ada, "text": "Are you free on Thursday?"}),
        )
        .await;
    assert_eq!(
        (status, held["queue_reason"].as_str()),
        (202, Some("window_closed")),
        "{held}"
    );
    let (status, sent) = app.post("/api/v1/messages", send(json!(["Ada", "Thursday"]))).await;
    assert_eq!(status, 202, "{sent}");
    assert!(sent["queue_reason"].is_null(), "{sent}");
    assert_eq!(sent["kind"], "template");
    assert_eq!(sent["body"], "Hello Ada, your appointment is on Thursday.");
    let m = app
        .wait_for_message(sent["id"].as_str().unwrap(), |m| {
            m["status"] == "read" || m["status"] == "failed"
        })
        .await;
    assert_eq!(
        m["status"], "read",
        "the simulator, enforcing Meta's rules, delivered it outside the window: {m}"
    );
    let held_id = held["id"].as_str().unwrap();
    let (_, still) = app.get(&format!("/api/v1/messages/{held_id}")).await;
    assert_eq!(still["queue_reason"], "window_closed", "{still}");
    // Ada answers the template: the window opens and the held free text follows.
    app.phone_writes(ADA, "Yes, Thursday works").await;
    app.wait_for_message(held_id, |m| m["status"] == "read").await;
    let (status, list) = app.get("/api/v1/templates").await;
    assert_eq!(status, 200);
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == "appointment_reminder"));
    app.stop().await;
}

async fn rejected_template(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in(ADMIN).await;
    let (_, t) = app.post("/api/v1/templates", reminder()).await;
    let (provider_id, id) = (
        t["provider_template_id"].as_str().unwrap().to_owned(),
        t["id"].as_str().unwrap().to_owned(),
    );
    let (status, _) = app
        .post(
            &format!("/sim/templates/{provider_id}/reject"),
            json!({"reason": "INVALID_FORMAT"}),
        )
        .await;
    assert_eq!(status, 200);
    let t = wait_for_template(&app, &id, "rejected").await;
    assert_eq!(t["status"]["reason"], "INVALID_FORMAT");
    app.sign_in(AGENT).await;
    app.ada_opts_in().await;
    let ada = app.contact_id(ADA).await;
    let (status, err) = app
        .post("/api/v1/messages", json!({"contact_id": ada, "template": {"name": "appointment_reminder", "language": "en", "parameters": ["Ada", "Friday"]}}))
        .await;
    assert_eq!((status, err["error"].as_str()), (422, Some("template_not_approved")));
    let (status, err) = app
        .post(
            "/api/v1/messages",
            json!({"contact_id": ada, "template": {"name": "no_such_template", "language": "en"}}),
        )
        .await;
    assert_eq!((status, err["error"].as_str()), (422, Some("template_not_found")));
    let (status, err) = app.post("/api/v1/messages", json!({"contact_id": ada})).await;
    assert_eq!((status, err["error"].as_str()), (422, Some("text_or_template")));
    app.stop().await;
}

/// Ada opts in; a day later 250 other contacts were reached with business-initiated conversations,
/// so a template to Ada is held by the messaging limit. Returns the app, the clock and the held message.
async fn held_by_the_messaging_limit(backend: Backend) -> (TestApp, ManualClock, Value) {
    let clock = ManualClock::starting_now();
    let app = spawn_app_with_clock(backend, Arc::new(clock.clone())).await;
    app.sign_in(ADMIN).await;
    let (_, t) = app.post("/api/v1/templates", reminder()).await;
    app.post(
        &format!("/sim/templates/{}/approve", t["provider_template_id"].as_str().unwrap()),
        json!({}),
    )
    .await;
    wait_for_template(&app, t["id"].as_str().unwrap(), "approved").await;
    app.sign_in(AGENT).await;
    app.ada_opts_in().await;
    let ada = app.contact_id(ADA).await;

    // A day later (Ada's window is closed), 250 other contacts were reached with business-initiated
    // conversations in the last 24 hours.
    clock.advance_ms(25 * HOUR);
    let store = app.handle.as_ref().unwrap().state.store.clone();
    let now = openline_domain::clock::Clock::now(&clock);
    let org_ada = ada.clone();
    store
        .write(move |c| {
            let contact = openline_store::contacts::get_any(c, &org_ada)?;
            let sender =
                openline_store::senders::for_org(c, &contact.org_id, openline_domain::Channel::Whatsapp)?.unwrap();
            for i in 0..250 {
                let ct = openline_store::contacts::create(c, &contact.org_id, &format!("+4420790{i:05}"), None, now)?;
                let conv = openline_store::conversations::find_or_create_open(
                    c,
                    &contact.org_id,
                    openline_domain::Channel::Whatsapp,
                    &ct.id,
                    &sender.id,
                    now,
                )?;
                let m = openline_store::messages::insert_outbound(
                    c,
                    &openline_store::messages::NewOutbound {
                        org_id: &contact.org_id,
                        conversation_id: &conv,
                        sender_id: &sender.id,
                        author_user_id: None,
                        kind: openline_domain::MessageKind::Template,
                        body: Some("x"),
                        template: None,
                        queue_reason: Some("window_closed"),
                        business_initiated: true,
                        now,
                    },
                )?;
                // Sent (not held): only messages that went out count against the limit.
                c.execute(
                    "update messages set queue_reason = null, status = 'sent' where id = ?",
                    openline_store::params![&m.id],
                )?;
            }
            Ok(())
        })
        .await
        .unwrap();
    app.sign_in(AGENT).await;
    let send = json!({"contact_id": ada, "template": {"name": "appointment_reminder", "language": "en", "parameters": ["Ada", "Monday"]}});
    let (status, held) = app.post("/api/v1/messages", send.clone()).await;
    assert_eq!(status, 202, "{held}");
    assert_eq!(held["queue_reason"], "messaging_limit", "{held}");
    assert!(held["queue_explanation"].as_str().unwrap().contains("limit"));
    (app, clock, held)
}

async fn messaging_limit(backend: Backend) {
    let (app, _clock, held) = held_by_the_messaging_limit(backend).await;
    // Inside the window the limit does not apply: Ada writes, and the held template goes.
    app.phone_writes(ADA, "Hello?").await;
    app.wait_for_message(held["id"].as_str().unwrap(), |m| m["status"] == "read")
        .await;
    app.stop().await;
}

async fn messaging_limit_timer(backend: Backend) {
    let (app, clock, held) = held_by_the_messaging_limit(backend).await;
    let id = held["id"].as_str().unwrap();
    // The dispatcher re-checks held messages every 10 s: one re-check later, with the 250 still
    // inside the rolling 24 hours, the template is still held (it does not make room for itself).
    clock.advance_ms(11_000);
    tokio::time::sleep(std::time::Duration::from_millis(2_500)).await;
    let (_, m) = app.get(&format!("/api/v1/messages/{id}")).await;
    assert_eq!(
        (m["status"].as_str(), m["queue_reason"].as_str()),
        (Some("queued"), Some("messaging_limit"))
    );
    // Ada does not write. A day later the 250 conversations have left the rolling 24 hours: the
    // dispatcher's timer finds room under the tier and sends the held template on its own.
    clock.advance_ms(24 * HOUR + 60_000);
    app.sign_in(AGENT).await; // a day later the session has expired
    let sent = app.wait_for_message(id, |m| m["status"] == "read").await;
    assert!(sent["queue_reason"].is_null(), "{sent}");
    assert!(app
        .phone_received(ADA)
        .await
        .iter()
        .any(|t| t == "appointment_reminder"));
    app.stop().await;
}
