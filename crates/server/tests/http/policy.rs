//! WhatsApp Business policy through HTTP against the simulator's personas: the four opt-in outcomes
//! (accepts, declines, never answers, not on WhatsApp), opting out and back in, messages held until
//! consent and released in order, and the 24-hour window closing and re-opening (with an injected
//! clock; nothing sleeps for a day).

use crate::common::*;
use openline_domain::clock::ManualClock;
use openline_store::Backend;
use serde_json::json;
use std::sync::Arc;

const DAN: &str = "+447700900002";
const SAM: &str = "+447700900003";
const HOUR: i64 = 3_600_000;

crate::both_backends! {
    messages_wait_for_consent_and_go_in_order_once_the_contact_accepts => accepts;
    a_contact_who_declines_is_told_how_to_opt_in_and_cannot_be_written_to => declines;
    a_silent_contact_can_be_asked_again_only_after_24_hours => never_answers;
    a_number_not_on_whatsapp_is_reported_and_sms_is_offered => not_on_whatsapp;
    stop_opts_out_and_yes_opts_back_in => stop_and_yes;
    outside_the_window_free_form_waits_until_the_contact_writes_again => window;
    each_organization_chooses_its_opt_in_template_and_only_an_approved_one_is_sent => opt_in_template;
}

async fn accepts(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in(AGENT).await;
    let ada = app.contact_id(ADA).await;
    // Written before consent: held, with the reason and what to do.
    let (status, first) = app.send_text(&ada, "First, about your portfolio").await;
    assert_eq!(status, 202);
    assert_eq!(first["status"], "queued");
    assert_eq!(first["queue_reason"], "awaiting_consent");
    assert!(
        first["queue_explanation"].as_str().unwrap().contains("opt in"),
        "{first}"
    );
    let (_, second) = app.send_text(&ada, "Second, the meeting").await;
    assert_eq!(second["queue_reason"], "awaiting_consent");
    assert!(
        app.phone_received(ADA).await.is_empty(),
        "nothing reaches the phone before consent"
    );

    let mut events = app.http.get(app.at("/api/v1/events")).send().await.unwrap();
    let mut buf = String::new();
    let (status, sent) = app.request_opt_in(ADA).await;
    assert_eq!(status, 202, "{sent}");
    assert_eq!(sent["consent"]["state"], "pending");
    let ev = next_event(&mut events, "consent.changed", &mut buf).await;
    assert_eq!(ev["data"]["consent"]["state"], "pending");
    let ev = next_event(&mut events, "consent.changed", &mut buf).await;
    assert_eq!(ev["data"]["consent"]["state"], "granted", "the agent is told live");

    // Both held messages go, in order, after the confirmation.
    for m in [&first, &second] {
        app.wait_for_message(m["id"].as_str().unwrap(), |m| m["status"] == "read")
            .await;
    }
    let received = app.phone_received(ADA).await;
    assert_eq!(received[0], "openline_opt_in");
    assert!(received[1].starts_with("Thank you. You have agreed"), "{received:?}");
    assert_eq!(&received[2..], ["First, about your portfolio", "Second, the meeting"]);

    // The attestation record: who asked, the request, the answer with provider ids.
    let (_, consent) = app.get(&format!("/api/v1/contacts/{ada}/consent")).await;
    let history = consent["history"].as_array().unwrap();
    assert_eq!(
        history.iter().map(|e| e["kind"].as_str().unwrap()).collect::<Vec<_>>(),
        ["requested", "accepted"]
    );
    assert!(history[0]["actor_user_id"].is_string());
    assert_eq!(history[0]["message_id"], sent["message"]["id"]);
    assert!(history[1]["provider_message_id"]
        .as_str()
        .unwrap()
        .starts_with("wamid."));
    assert_eq!(history[1]["evidence"]["button_payload"], "OPTIN_YES");
    // Asking again once granted is refused with a clear code.
    let (status, err) = app.request_opt_in(ADA).await;
    assert_eq!((status, err["error"].as_str()), (422, Some("consent_already_granted")));
    app.stop().await;
}

async fn declines(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in(AGENT).await;
    let dan = app.contact_id(DAN).await;
    let (_, held) = app.send_text(&dan, "Hello Dan").await;
    assert_eq!(held["queue_reason"], "awaiting_consent");
    app.request_opt_in(DAN).await;
    let consent = app.wait_for_consent(DAN, "refused").await;
    assert_eq!(consent["history"][1]["kind"], "rejected");
    // Dan is told he opted out and how to opt in.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let got = app.phone_received(DAN).await;
        if got.iter().any(|t| t.contains("opt in at any time by replying YES")) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{got:?}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let (status, err) = app.send_text(&dan, "Are you sure?").await;
    assert_eq!((status, err["error"].as_str()), (422, Some("consent_refused")));
    assert!(err["message"].as_str().unwrap().contains("yes"));
    let (status, err) = app.request_opt_in(DAN).await;
    assert_eq!((status, err["error"].as_str()), (422, Some("consent_refused")));
    // The earlier message is still held (not lost, not sent) and can be cancelled.
    let (_, m) = app
        .get(&format!("/api/v1/messages/{}", held["id"].as_str().unwrap()))
        .await;
    assert_eq!(m["status"], "queued");
    let (_, queued) = app
        .get(&format!(
            "/api/v1/conversations/{}/queued",
            m["conversation_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(queued.as_array().unwrap().len(), 1);
    let (status, cancelled) = app
        .post(
            &format!("/api/v1/messages/{}/cancel", held["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!((status, cancelled["status"].as_str()), (200, Some("cancelled")));
    let (status, err) = app
        .post(
            &format!("/api/v1/messages/{}/cancel", held["id"].as_str().unwrap()),
            json!({}),
        )
        .await;
    assert_eq!((status, err["error"].as_str()), (409, Some("not_queued")));
    app.stop().await;
}

async fn never_answers(backend: Backend) {
    let clock = ManualClock::starting_now();
    let app = spawn_app_with_clock(backend, Arc::new(clock.clone())).await;
    app.sign_in(AGENT).await;
    let (status, _) = app.request_opt_in(SAM).await;
    assert_eq!(status, 202);
    let sam = app.contact_id(SAM).await;
    clock.advance_ms(23 * HOUR);
    app.sign_in(AGENT).await; // the 12-hour session expired meanwhile
    let (status, err) = app.request_opt_in(SAM).await;
    assert_eq!((status, err["error"].as_str()), (422, Some("opt_in_too_soon")));
    assert!(err["message"].as_str().unwrap().contains("UTC"), "says when: {err}");
    let (_, consent) = app.get(&format!("/api/v1/contacts/{sam}/consent")).await;
    assert_eq!(consent["consent"]["state"], "pending");
    assert!(consent["opt_in_request_possible_at"].is_i64());
    clock.advance_ms(HOUR + 60_000);
    let (status, again) = app.request_opt_in(SAM).await;
    assert_eq!(status, 202, "{again}");
    app.stop().await;
}

async fn not_on_whatsapp(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in(AGENT).await;
    let nora = app.contact_id(NORA).await;
    app.request_opt_in(NORA).await;
    let consent = app.wait_for_consent(NORA, "not_on_whatsapp").await;
    assert_eq!(consent["history"][1]["kind"], "undeliverable");
    assert_eq!(consent["history"][1]["evidence"]["error_code"], 131026);
    let (_, inbox) = app.get("/api/v1/conversations").await;
    let conv = inbox["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["contact_phone"] == NORA)
        .unwrap()
        .clone();
    let (_, thread) = app
        .get(&format!(
            "/api/v1/conversations/{}/messages",
            conv["id"].as_str().unwrap()
        ))
        .await;
    let notices: Vec<_> = thread["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["direction"] == "system")
        .collect();
    assert!(
        notices
            .iter()
            .any(|n| n["body"].as_str().unwrap().contains("Send an SMS instead?")),
        "{thread}"
    );
    let (status, err) = app.send_text(&nora, "Hello?").await;
    assert_eq!((status, err["error"].as_str()), (422, Some("not_on_whatsapp")));
    assert!(err["message"].as_str().unwrap().contains("SMS"));
    app.stop().await;
}

async fn stop_and_yes(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in(AGENT).await;
    app.ada_opts_in().await;
    let ada = app.contact_id(ADA).await;
    app.phone_writes(ADA, "STOP").await;
    app.wait_for_consent(ADA, "refused").await;
    let (status, err) = app.send_text(&ada, "Still there?").await;
    assert_eq!((status, err["error"].as_str()), (422, Some("consent_refused")));
    app.phone_writes(ADA, "yes").await;
    let consent = app.wait_for_consent(ADA, "granted").await;
    let kinds: Vec<_> = consent["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(kinds, ["requested", "accepted", "opted_out", "opted_in"]);
    let (status, m) = app.send_text(&ada, "Welcome back").await;
    assert_eq!(status, 202);
    app.wait_for_message(m["id"].as_str().unwrap(), |m| m["status"] == "read")
        .await;
    app.stop().await;
}

async fn window(backend: Backend) {
    let clock = ManualClock::starting_now();
    let app = spawn_app_with_clock(backend, Arc::new(clock.clone())).await;
    app.sign_in(AGENT).await;
    app.ada_opts_in().await;
    let ada = app.contact_id(ADA).await;
    let (_, inbox) = app.get("/api/v1/conversations").await;
    let conv_id = inbox["items"][0]["id"].as_str().unwrap().to_owned();
    let (_, conv) = app.get(&format!("/api/v1/conversations/{conv_id}")).await;
    assert_eq!(conv["window"]["open"], true);
    assert!(conv["window"]["remaining_ms"].as_i64().unwrap() > 23 * HOUR);

    // The business's own messages never extend the window.
    let (_, inside) = app.send_text(&ada, "Inside the window").await;
    app.wait_for_message(inside["id"].as_str().unwrap(), |m| m["status"] == "read")
        .await;
    clock.advance_ms(24 * HOUR + 60_000);
    app.sign_in(AGENT).await; // the 12-hour session expired meanwhile
    let (_, conv) = app.get(&format!("/api/v1/conversations/{conv_id}")).await;
    assert_eq!(conv["window"]["open"], false);
    let (status, held) = app.send_text(&ada, "After a day").await;
    assert_eq!(status, 202);
    assert_eq!(held["queue_reason"], "window_closed");
    assert!(
        held["queue_explanation"].as_str().unwrap().contains("template"),
        "{held}"
    );
    assert!(
        !app.phone_received(ADA).await.contains(&"After a day".to_owned()),
        "never handed to the provider"
    );

    // Ada writes again: the window re-opens and the held message goes.
    app.phone_writes(ADA, "Hi again").await;
    let m = app
        .wait_for_message(held["id"].as_str().unwrap(), |m| m["status"] == "read")
        .await;
    assert!(
        m["error_code"].is_null(),
        "the simulator (enforcing Meta's rule) accepted it: {m}"
    );
    let (_, conv) = app.get(&format!("/api/v1/conversations/{conv_id}")).await;
    assert_eq!(conv["window"]["open"], true);
    app.stop().await;
}

async fn put(app: &TestApp, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let res = app.http.put(app.at(path)).json(&body).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(serde_json::Value::Null))
}

/// Submits a template as the admin and has the simulator (Meta) approve it.
async fn approved_template(app: &TestApp, template: serde_json::Value) {
    let (status, t) = app.post("/api/v1/templates", template).await;
    assert_eq!(status, 201, "{t}");
    let (status, _) = app
        .post(
            &format!("/sim/templates/{}/approve", t["provider_template_id"].as_str().unwrap()),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(status, 200);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let (_, got) = app
            .get(&format!("/api/v1/templates/{}", t["id"].as_str().unwrap()))
            .await;
        if got["status"]["state"] == "approved" {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "never approved: {got}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

async fn opt_in_template(backend: Backend) {
    use serde_json::json;
    const ADMIN: &str = "admin@demo.openline.dev";
    const SETTING: &str = "/api/v1/settings/opt-in-template";
    let app = spawn_app(backend).await;
    app.sign_in(ADMIN).await;
    // Out of the box: openline's own template, approved (the demo seeds it).
    let (status, s) = app.get(SETTING).await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(
        (s["name"].as_str(), s["status"].as_str(), s["own_setting"].as_bool()),
        (Some("openline_opt_in"), Some("approved"), Some(false))
    );

    // The admin submits the bank's own wording and chooses it while Meta still reviews it.
    let consent_request = json!({
        "name": "bank_consent_request", "language": "en", "category": "utility",
        "components": [
            {"type": "body", "text": "Hello, this is {{1}}. May we write to you here on WhatsApp?"},
            {"type": "buttons", "buttons": [{"type": "quick_reply", "text": "Yes please"}, {"type": "quick_reply", "text": "No thanks"}]}
        ]
    });
    let (status, t) = app.post("/api/v1/templates", consent_request).await;
    assert_eq!(status, 201, "{t}");
    let (status, s) = put(&app, SETTING, json!({"name": "bank_consent_request", "language": "en"})).await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(
        (s["status"].as_str(), s["own_setting"].as_bool()),
        (Some("pending"), Some(true))
    );
    // Bad choices are refused with what to do.
    let (status, err) = put(&app, SETTING, json!({"name": "no_such_template", "language": "en"})).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (422, Some("template_not_found")),
        "{err}"
    );
    let (status, err) = put(&app, SETTING, json!({"name": "bank_consent_request"})).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (422, Some("opt_in_template_invalid")),
        "{err}"
    );

    // The sub-organization inherits the choice; agents may read it, not change it.
    app.sign_in(AGENT).await;
    let (_, s) = app.get(SETTING).await;
    assert_eq!(
        (s["name"].as_str(), s["own_setting"].as_bool()),
        (Some("bank_consent_request"), Some(false)),
        "{s}"
    );
    let (status, err) = put(&app, SETTING, json!({"name": "openline_opt_in", "language": "en"})).await;
    assert_eq!((status, err["error"].as_str()), (403, Some("forbidden")), "{err}");
    // Not approved yet: no opt-in request goes, and the agent is told why.
    let (status, err) = app.request_opt_in(ADA).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (422, Some("opt_in_template_not_approved")),
        "{err}"
    );
    assert!(err["message"].as_str().unwrap().contains("pending"), "{err}");
    assert!(app.phone_received(ADA).await.is_empty());

    // Once Meta approves it, the request goes with the bank's template, and Ada's Yes counts.
    app.sign_in(ADMIN).await;
    let (_, t) = app
        .get(&format!("/api/v1/templates/{}", t["id"].as_str().unwrap()))
        .await;
    app.post(
        &format!("/sim/templates/{}/approve", t["provider_template_id"].as_str().unwrap()),
        json!({}),
    )
    .await;
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    while app.get(SETTING).await.1["status"] != "approved" {
        assert!(tokio::time::Instant::now() < deadline, "never approved");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    app.sign_in(AGENT).await;
    let (status, sent) = app.request_opt_in(ADA).await;
    assert_eq!(status, 202, "{sent}");
    assert_eq!(sent["message"]["template"]["name"], "bank_consent_request");
    assert!(
        sent["message"]["body"]
            .as_str()
            .unwrap()
            .starts_with("Hello, this is Demo Bank Private Clients."),
        "{sent}"
    );
    app.wait_for_consent(ADA, "granted").await;
    assert_eq!(app.phone_received(ADA).await[0], "bank_consent_request");

    // A template that cannot carry an opt-in is refused when it is chosen, saying why, and the
    // choice stays as it was: no Yes/No quick replies; Yes and No the wrong way round (the Yes
    // payload goes on the first button); an image header or a URL button ending in {{1}}, which
    // need a picture link or an address suffix on every send while an opt-in request carries only
    // the organization's name.
    app.sign_in(ADMIN).await;
    let yes_no = json!({"type": "buttons", "buttons": [{"type": "quick_reply", "text": "Yes"}, {"type": "quick_reply", "text": "No"}]});
    let unsuitable = [
        (
            "plain_notice",
            json!([{"type": "body", "text": "Hello {{1}}, a notice from us."}]),
            "Yes and No quick replies",
        ),
        (
            "consent_no_first",
            json!([
                {"type": "body", "text": "Hello, {{1}} would like to write to you on WhatsApp."},
                {"type": "buttons", "buttons": [{"type": "quick_reply", "text": "No thanks"}, {"type": "quick_reply", "text": "Yes please"}]}
            ]),
            "wrong way round",
        ),
        (
            "consent_with_picture",
            json!([
                {"type": "header", "format": "image", "example_url": "https://cdn.bank.example/logo.png"},
                {"type": "body", "text": "Hello, {{1}} would like to write to you on WhatsApp."},
                yes_no.clone()
            ]),
            "image header",
        ),
        (
            "consent_with_link",
            json!([
                {"type": "body", "text": "Hello, {{1}} would like to write to you on WhatsApp."},
                {"type": "buttons", "buttons": [
                    {"type": "quick_reply", "text": "Yes"}, {"type": "quick_reply", "text": "No"},
                    {"type": "url", "text": "Our privacy notice", "url": "https://bank.example/privacy/{{1}}"}
                ]}
            ]),
            "URL button ending in {{1}}",
        ),
    ];
    for (name, components, why) in unsuitable {
        approved_template(
            &app,
            json!({"name": name, "language": "en", "category": "utility", "components": components}),
        )
        .await;
        let (status, err) = put(&app, SETTING, json!({"name": name, "language": "en"})).await;
        assert_eq!(
            (status, err["error"].as_str()),
            (422, Some("opt_in_template_unsuitable")),
            "{name}: {err}"
        );
        assert!(err["message"].as_str().unwrap().contains(why), "{name}: {err}");
        let (_, s) = app.get(SETTING).await;
        assert_eq!(
            s["name"], "bank_consent_request",
            "{name}: the choice is unchanged: {s}"
        );
    }
    // A fixed link is fine: nothing to fill in per send.
    approved_template(
        &app,
        json!({
            "name": "consent_with_privacy_link", "language": "en", "category": "utility",
            "components": [
                {"type": "body", "text": "Hello, {{1}} would like to write to you on WhatsApp."},
                {"type": "buttons", "buttons": [
                    {"type": "quick_reply", "text": "Yes"}, {"type": "quick_reply", "text": "No"},
                    {"type": "url", "text": "Our privacy notice", "url": "https://bank.example/privacy"}
                ]}
            ]
        }),
    )
    .await;
    let (status, s) = put(
        &app,
        SETTING,
        json!({"name": "consent_with_privacy_link", "language": "en"}),
    )
    .await;
    assert_eq!((status, s["status"].as_str()), (200, Some("approved")), "{s}");
    app.sign_in(AGENT).await;
    let (status, sent) = app.request_opt_in(SAM).await;
    assert_eq!(status, 202, "{sent}");
    assert_eq!(sent["message"]["template"]["name"], "consent_with_privacy_link");

    // A choice saved before openline checked this (written straight into the store, as an older
    // version could have) is refused when an agent asks, and nothing reaches the contact.
    app.sign_in(ADMIN).await;
    let org_id = app.get(SETTING).await.1["org_id"].as_str().unwrap().to_owned();
    app.handle
        .as_ref()
        .unwrap()
        .state
        .store
        .write(move |c| {
            openline_store::pacing::set_opt_in_template(
                c,
                &org_id,
                Some(("consent_with_picture", "en")),
                &openline_store::journal::Actor::System,
                0,
            )
        })
        .await
        .unwrap();
    app.sign_in(AGENT).await;
    let (status, err) = app.request_opt_in(DAN).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (422, Some("opt_in_template_unsuitable")),
        "{err}"
    );
    assert!(err["message"].as_str().unwrap().contains("image header"), "{err}");
    assert!(app.phone_received(DAN).await.is_empty());
    // Removing the choice brings back the default.
    app.sign_in(ADMIN).await;
    let (status, s) = put(&app, SETTING, json!({"name": null, "language": null})).await;
    assert_eq!((status, s["name"].as_str()), (200, Some("openline_opt_in")), "{s}");
    app.stop().await;
}
