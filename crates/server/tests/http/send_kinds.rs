//! The rich session messages through HTTP, end to end against the simulator: locations, contact
//! cards, reply buttons and lists, reactions and quoted replies reach the simulated phone with their
//! content; a tapped button comes back as an inbound interactive reply in the thread; bad shapes are
//! refused with their codes and nothing is stored; policy (consent, window) and DLP treat them like
//! text; Twilio numbers refuse them before storing; reactions stay inside the caller's conversation.

use crate::common::*;
use openline_domain::clock::ManualClock;
use openline_domain::{Channel, ProviderKind};
use openline_store::{senders, Backend};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

crate::both_backends! {
    each_kind_reaches_the_phone_with_its_content => each_kind;
    a_tapped_reply_button_comes_back_as_an_interactive_reply_in_the_thread => round_trip;
    bad_shapes_are_refused_with_their_codes_and_nothing_is_stored => bad_shapes;
    without_consent_or_outside_the_window_they_wait_like_text => policy;
    dlp_blocks_a_card_number_in_a_button_title_or_a_list_row => dlp;
    reactions_stay_in_the_callers_conversation_and_organization => reaction_scope;
    twilio_numbers_refuse_the_cloud_api_only_kinds_before_storing => twilio_refuses;
    opening_a_thread_sends_one_read_receipt_and_only_through_the_cloud_api => read_receipts;
}

const HOUR: i64 = 3_600_000;

/// What the phone received from the business (entries as the simulator's phone API shows them).
async fn phone_entries(app: &TestApp, phone: &str) -> Vec<Value> {
    let (_, msgs) = app.get(&format!("/sim/phones/{phone}/messages")).await;
    msgs.as_array().unwrap().clone()
}

/// Polls the phone until an entry from the business with this wamid is there.
async fn on_phone(app: &TestApp, phone: &str, wamid: &str) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(e) = phone_entries(app, phone)
            .await
            .into_iter()
            .find(|e| e["id"] == wamid && e["direction"] == "from_business")
        {
            return e;
        }
        assert!(tokio::time::Instant::now() < deadline, "{wamid} never reached {phone}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sends and waits until the provider accepted it; returns the message and the phone's entry.
async fn send_delivered(app: &TestApp, body: Value) -> (Value, Value) {
    let (status, sent) = app.post("/api/v1/messages", body.clone()).await;
    assert_eq!(status, 202, "{body} → {sent}");
    assert_eq!(sent["status"], "queued");
    let m = app
        .wait_for_message(sent["id"].as_str().unwrap(), |m| {
            m["provider_message_id"].is_string() || m["status"] == "failed"
        })
        .await;
    assert!(m["error_code"].is_null(), "{m}");
    let entry = on_phone(app, ADA, m["provider_message_id"].as_str().unwrap()).await;
    (m, entry)
}

/// The messages of the contact's (only) conversation, oldest first.
async fn thread(app: &TestApp, conversation_id: &str) -> Vec<Value> {
    let (status, page) = app
        .get(&format!("/api/v1/conversations/{conversation_id}/messages?limit=200"))
        .await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

/// Ada opts in and writes; returns her contact id and the openline message of what she wrote.
async fn ada_writes(app: &TestApp, text: &str) -> (String, Value) {
    app.ada_opts_in().await;
    let ada = app.contact_id(ADA).await;
    let wrote = app.phone_writes(ADA, text).await;
    let wamid = wrote["id"].as_str().unwrap().to_owned();
    let (_, inbox) = app.get("/api/v1/conversations").await;
    let conversation = inbox["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["contact_id"] == ada.as_str())
        .unwrap_or(&inbox["items"][0])["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let inbound = thread(app, &conversation)
        .await
        .into_iter()
        .find(|m| m["provider_message_id"] == wamid.as_str())
        .expect("the inbound message is in the thread");
    (ada, inbound)
}

async fn refused(app: &TestApp, body: Value, code: &str) {
    let (status, err) = app.post("/api/v1/messages", body.clone()).await;
    assert_eq!((status, err["error"].as_str()), (422, Some(code)), "{body} → {err}");
    assert!(
        err["message"].as_str().is_some_and(|m| m.len() > 20),
        "an actionable message: {err}"
    );
}

fn buttons(contact: &str, titles: &[&str]) -> Value {
    let buttons: Vec<Value> = titles
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"id": format!("b{i}"), "title": t}))
        .collect();
    json!({"contact_id": contact, "interactive": {"type": "buttons", "body": "Did you pay 120 EUR to Acme?", "buttons": buttons}})
}

fn list(contact: &str, sections: Value) -> Value {
    json!({"contact_id": contact, "interactive": {"type": "list", "header": "Branches", "body": "Where shall we meet?",
        "footer": "Open 9 to 5", "button": "Choose a branch", "sections": sections}})
}

async fn each_kind(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in(AGENT).await;
    let (ada, inbound) = ada_writes(&app, "Where is your office?").await;
    let inbound_id = inbound["id"].as_str().unwrap();
    let inbound_wamid = inbound["provider_message_id"].as_str().unwrap();

    // A location, quoting Ada's question.
    let (m, entry) = send_delivered(
        &app,
        json!({"contact_id": ada, "reply_to": inbound_id,
            "location": {"latitude": 51.5155, "longitude": -0.0922, "name": "Office", "address": "1 Main St"}}),
    )
    .await;
    assert_eq!(
        (m["kind"].as_str(), m["body"].as_str()),
        (Some("location"), Some("📍 Office — 1 Main St"))
    );
    assert_eq!(m["reply_to"], inbound_wamid);
    assert_eq!(
        (entry["type"].as_str(), entry["text"].as_str()),
        (Some("location"), Some("Office"))
    );
    assert_eq!(
        entry["context_id"], inbound_wamid,
        "the phone shows the question quoted"
    );

    // A contact card.
    let (m, entry) = send_delivered(
        &app,
        json!({"contact_id": ada, "contacts": [{"name": {"formatted_name": "Ada Lovelace", "first_name": "Ada"},
            "phones": [{"phone": "+44 20 7946 0000", "type": "work"}], "emails": [{"email": "ada@bank.example"}],
            "org": {"company": "Bank", "title": "Adviser"}}]}),
    )
    .await;
    assert_eq!(m["kind"], "contacts");
    assert_eq!(m["body"], "Contact card: Ada Lovelace (Adviser, Bank)");
    assert_eq!(
        (entry["type"].as_str(), entry["text"].as_str()),
        (Some("contacts"), Some("Ada Lovelace"))
    );

    // A list: every row reaches the phone as something to choose.
    let (m, entry) = send_delivered(
        &app,
        list(
            &ada,
            json!([{"title": "London", "rows": [{"id": "ldn", "title": "Moorgate", "description": "1 Moorgate"}]},
                   {"title": "Paris", "rows": [{"id": "par", "title": "Opéra"}]}]),
        ),
    )
    .await;
    assert_eq!(m["kind"], "interactive");
    assert_eq!(
        m["body"],
        "Branches\nWhere shall we meet?\nOpen 9 to 5\n[Choose a branch] London: Moorgate (1 Moorgate); Paris: Opéra"
    );
    assert_eq!(entry["type"], "interactive");
    let rows: Vec<(&str, &str)> = entry["buttons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| (b["id"].as_str().unwrap(), b["text"].as_str().unwrap()))
        .collect();
    assert_eq!(rows, [("ldn", "Moorgate"), ("par", "Opéra")], "{entry}");

    // A text quoting Ada.
    let (m, entry) = send_delivered(
        &app,
        json!({"contact_id": ada, "text": "See the pin above", "reply_to": inbound_id}),
    )
    .await;
    assert_eq!(m["reply_to"], inbound_wamid);
    assert_eq!(entry["context_id"], inbound_wamid);

    // A reaction to Ada's message, then its removal.
    let (m, entry) = send_delivered(
        &app,
        json!({"contact_id": ada, "reaction": {"message_id": inbound_id, "emoji": "👍"}}),
    )
    .await;
    assert_eq!(
        (m["kind"].as_str(), m["body"].as_str()),
        (Some("reaction"), Some("Reacted 👍"))
    );
    assert_eq!(
        (entry["type"].as_str(), entry["text"].as_str()),
        (Some("reaction"), Some("👍"))
    );
    let (m, entry) = send_delivered(
        &app,
        json!({"contact_id": ada, "reaction": {"message_id": inbound_id, "emoji": ""}}),
    )
    .await;
    assert_eq!(m["body"], "Reaction removed");
    assert_eq!(
        (entry["type"].as_str(), entry["text"].as_str()),
        (Some("reaction"), Some(""))
    );

    // The archive holds each message with its structured content.
    let archived = app
        .count("select count(*) from journal where kind = 'message.created' and payload like '%\"latitude\":51.5155%'")
        .await;
    assert_eq!(archived, 1);
    let store = app.handle.as_ref().unwrap().state.store.clone();
    let reports = store.read(|c| openline_store::journal::verify(c, None)).await.unwrap();
    assert!(reports.iter().all(|r| r.problem.is_none()), "{reports:?}");
    app.stop().await;
}

async fn round_trip(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in(AGENT).await;
    let (ada, inbound) = ada_writes(&app, "I see a payment I don't know").await;
    let (m, entry) = send_delivered(&app, buttons(&ada, &["Confirm", "Not me"])).await;
    assert_eq!(m["body"], "Did you pay 120 EUR to Acme?\n[Confirm] [Not me]");
    let labels: Vec<&str> = entry["buttons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["text"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["Confirm", "Not me"]);
    let wamid = m["provider_message_id"].as_str().unwrap();
    // Ada taps "Not me" on her phone.
    let (status, tapped) = app
        .post(
            &format!("/sim/phones/{ADA}/buttons"),
            json!({"message_id": wamid, "button": "Not me"}),
        )
        .await;
    assert_eq!(status, 200, "{tapped}");
    assert_eq!(tapped["webhook_status"], 200);
    let reply_wamid = tapped["id"].as_str().unwrap();
    let conversation = inbound["conversation_id"].as_str().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let reply = loop {
        if let Some(r) = thread(&app, conversation)
            .await
            .into_iter()
            .find(|r| r["provider_message_id"] == reply_wamid)
        {
            break r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the reply never reached the thread"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(reply["direction"], "in");
    assert_eq!(reply["kind"], "interactive");
    assert_eq!(reply["body"], "Not me");
    assert_eq!(reply["reply_to"], wamid, "linked to the buttons it answers");
    assert_eq!(reply["conversation_id"], m["conversation_id"]);

    // A list row chosen on the phone comes back the same way, as a list reply.
    let (list_msg, _) = send_delivered(
        &app,
        list(
            &ada,
            json!([{"rows": [{"id": "ldn", "title": "Moorgate"}, {"id": "par", "title": "Opéra", "description": "Paris"}]}]),
        ),
    )
    .await;
    let list_wamid = list_msg["provider_message_id"].as_str().unwrap();
    let (status, chose) = app
        .post(
            &format!("/sim/phones/{ADA}/buttons"),
            json!({"message_id": list_wamid, "button": "par"}),
        )
        .await;
    assert_eq!(status, 200, "{chose}");
    let chose_wamid = chose["id"].as_str().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let row = loop {
        if let Some(r) = thread(&app, conversation)
            .await
            .into_iter()
            .find(|r| r["provider_message_id"] == chose_wamid)
        {
            break r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the list reply never reached the thread"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(
        (row["kind"].as_str(), row["body"].as_str()),
        (Some("interactive"), Some("Opéra"))
    );
    assert_eq!(row["reply_to"], list_wamid);

    // The OpenAPI document describes every kind and the read endpoint.
    let (_, doc) = app.get("/api/openapi.json").await;
    let props = &doc["components"]["schemas"]["SendMessageRequest"]["properties"];
    for field in [
        "text",
        "template",
        "media",
        "location",
        "contacts",
        "interactive",
        "reaction",
        "reply_to",
    ] {
        assert!(props[field].is_object(), "{field}: {props}");
    }
    assert!(doc["components"]["schemas"]["InteractiveSend"].is_object());
    assert!(doc["paths"]["/api/v1/conversations/{id}/read"]["post"].is_object());
    app.stop().await;
}

async fn bad_shapes(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in(AGENT).await;
    let (ada, inbound) = ada_writes(&app, "Hello").await;
    let inbound_id = inbound["id"].as_str().unwrap();
    let before = app.count("select count(*) from messages").await;
    let journal_before = app
        .count("select count(*) from journal where kind = 'message.created'")
        .await;
    let row = |i: usize| json!({"id": format!("r{i}"), "title": format!("Row {i}")});
    let eleven_rows: Vec<Value> = (0..11).map(row).collect();
    let eleven_sections: Vec<Value> = (0..11)
        .map(|i| json!({"title": format!("S{i}"), "rows": [row(i)]}))
        .collect();
    let cases = [
        (buttons(&ada, &["A", "B", "C", "D"]), "interactive_button_count"),
        (buttons(&ada, &[]), "interactive_button_count"),
        (
            buttons(&ada, &["Yes", "twenty-one characters"]),
            "interactive_button_title_invalid",
        ),
        (buttons(&ada, &["Confirm", "Confirm"]), "interactive_duplicate_title"),
        (
            json!({"contact_id": ada, "interactive": {"type": "buttons", "body": "x".repeat(1025), "buttons": [{"id": "a", "title": "A"}]}}),
            "interactive_body_invalid",
        ),
        (
            json!({"contact_id": ada, "interactive": {"type": "buttons", "body": "Pick", "buttons": [{"id": "a", "title": "A"}, {"id": "a", "title": "B"}]}}),
            "interactive_duplicate_id",
        ),
        (
            json!({"contact_id": ada, "interactive": {"type": "buttons", "body": "Pick", "buttons": [{"id": "i".repeat(257), "title": "A"}]}}),
            "interactive_button_id_invalid",
        ),
        (list(&ada, json!([{"rows": eleven_rows}])), "interactive_row_count"),
        (list(&ada, json!(eleven_sections)), "interactive_section_count"),
        (
            list(&ada, json!([{"rows": [{"id": "a", "title": "t".repeat(25)}]}])),
            "interactive_row_title_invalid",
        ),
        (
            list(
                &ada,
                json!([{"rows": [{"id": "a", "title": "A", "description": "d".repeat(73)}]}]),
            ),
            "interactive_row_description_invalid",
        ),
        (
            json!({"contact_id": ada, "interactive": {"type": "list", "body": "Pick", "button": "b".repeat(21),
                "sections": [{"rows": [{"id": "a", "title": "A"}]}]}}),
            "interactive_list_button_invalid",
        ),
        (
            json!({"contact_id": ada, "location": {"latitude": 91.0, "longitude": 0.0}}),
            "location_invalid",
        ),
        (json!({"contact_id": ada, "contacts": []}), "contacts_invalid"),
        (
            json!({"contact_id": ada, "contacts": [{"name": {"formatted_name": " "}}]}),
            "contacts_invalid",
        ),
        // A card's name is required by its shape.
        (json!({"contact_id": ada, "contacts": [{"phones": []}]}), "invalid_body"),
        (
            json!({"contact_id": ada, "text": "Hi", "location": {"latitude": 1.0, "longitude": 1.0}}),
            "text_or_template",
        ),
        (
            json!({"contact_id": ada, "reaction": {"message_id": "msg_doesnotexist", "emoji": "👍"}}),
            "reaction_target_not_found",
        ),
        (
            json!({"contact_id": ada, "reaction": {"message_id": inbound_id, "emoji": "ok"}}),
            "reaction_emoji_invalid",
        ),
        (
            json!({"contact_id": ada, "reaction": {"message_id": inbound_id, "emoji": "👍"}, "reply_to": inbound_id}),
            "reply_to_not_supported",
        ),
        (
            json!({"contact_id": ada, "text": "Quoting nothing", "reply_to": "msg_doesnotexist"}),
            "reply_target_not_found",
        ),
        (
            json!({"contact_id": ada, "channel": "sms", "location": {"latitude": 1.0, "longitude": 1.0}}),
            "kind_not_supported_on_sms",
        ),
    ];
    for (body, code) in cases {
        refused(&app, body, code).await;
    }
    assert_eq!(
        app.count("select count(*) from messages").await,
        before,
        "nothing stored"
    );
    assert_eq!(
        app.count("select count(*) from journal where kind = 'message.created'")
            .await,
        journal_before,
        "nothing journaled"
    );
    app.stop().await;
}

async fn policy(backend: Backend) {
    let clock = ManualClock::starting_now();
    let app = spawn_app_with_clock(backend, Arc::new(clock.clone())).await;
    app.sign_in(AGENT).await;
    // Without consent: each kind waits exactly as text does.
    let sam = app.contact_id("+447700900003").await;
    let (status, text) = app.send_text(&sam, "About your account").await;
    assert_eq!((status, text["queue_reason"].as_str()), (202, Some("awaiting_consent")));
    for body in [
        json!({"contact_id": sam, "location": {"latitude": 1.0, "longitude": 2.0}}),
        json!({"contact_id": sam, "contacts": [{"name": {"formatted_name": "Ada Lovelace"}}]}),
        buttons(&sam, &["Confirm", "Not me"]),
    ] {
        let (status, held) = app.post("/api/v1/messages", body).await;
        assert_eq!(status, 202, "{held}");
        assert_eq!(held["status"], "queued");
        assert_eq!(held["queue_reason"], text["queue_reason"], "{held}");
    }

    // Outside the window: held until Ada writes again, then delivered.
    let (ada, _) = ada_writes(&app, "Hello").await;
    clock.advance_ms(24 * HOUR + 60_000);
    app.sign_in(AGENT).await; // the session expired meanwhile
    let (status, held) = app
        .post(
            "/api/v1/messages",
            json!({"contact_id": ada, "location": {"latitude": 51.5, "longitude": -0.1, "name": "Branch"}}),
        )
        .await;
    assert_eq!(status, 202, "{held}");
    assert_eq!(held["queue_reason"], "window_closed");
    let (_, text) = app.send_text(&ada, "After a day").await;
    assert_eq!(text["queue_reason"], "window_closed", "the same as text");
    assert!(
        !phone_entries(&app, ADA).await.iter().any(|e| e["type"] == "location"),
        "never handed to the provider"
    );
    app.phone_writes(ADA, "Hi again").await;
    let m = app
        .wait_for_message(held["id"].as_str().unwrap(), |m| m["provider_message_id"].is_string())
        .await;
    let entry = on_phone(&app, ADA, m["provider_message_id"].as_str().unwrap()).await;
    assert_eq!(
        (entry["type"].as_str(), entry["text"].as_str()),
        (Some("location"), Some("Branch"))
    );
    app.stop().await;
}

async fn dlp(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in("admin@demo.openline.dev").await;
    let policy = json!({"id": "bank", "name": "Bank policy", "rules": [
        {"id": "cards", "name": "Payment cards", "detector": {"kind": "payment_card"}, "action": "block", "direction": "outbound"},
        {"id": "iban", "name": "Bank accounts", "detector": {"kind": "iban"}, "action": "redact", "direction": "both"}
    ]});
    let res = app
        .http
        .put(app.at("/api/v1/dlp/policy"))
        .json(&policy)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    app.sign_in(AGENT).await;
    let (ada, _) = ada_writes(&app, "Hello").await;
    let before = app.count("select count(*) from messages").await;
    for body in [
        buttons(&ada, &["Confirm", "4111 1111 1111 1111"]),
        list(
            &ada,
            json!([{"rows": [{"id": "a", "title": "Card", "description": "Your card 4111 1111 1111 1111"}]}]),
        ),
        json!({"contact_id": ada, "location": {"latitude": 1.0, "longitude": 1.0, "name": "Card 4111 1111 1111 1111"}}),
        json!({"contact_id": ada, "contacts": [{"name": {"formatted_name": "4111 1111 1111 1111"}}]}),
        // A redaction cannot mask a structured message: it is refused too.
        json!({"contact_id": ada, "interactive": {"type": "buttons", "body": "Pay to GB82 WEST 1234 5698 7654 32?",
            "buttons": [{"id": "y", "title": "Confirm"}]}}),
    ] {
        let (status, err) = app.post("/api/v1/messages", body.clone()).await;
        assert_eq!(
            (status, err["error"].as_str()),
            (422, Some("dlp_blocked")),
            "{body} → {err}"
        );
        assert!(!err["message"].as_str().unwrap().contains("4111"), "{err}");
    }
    assert_eq!(
        app.count("select count(*) from messages").await,
        before,
        "nothing stored"
    );
    // A near-miss (fails Luhn) passes.
    let (status, ok) = app
        .post("/api/v1/messages", buttons(&ada, &["Confirm", "4111 1111 1111 1112"]))
        .await;
    assert_eq!(status, 202, "{ok}");
    app.stop().await;
}

async fn reaction_scope(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in(AGENT).await;
    let (ada, inbound) = ada_writes(&app, "Hello").await;
    // Another organization's message, with a provider id, that the agent cannot see.
    let store = app.handle.as_ref().unwrap().state.store.clone();
    let foreign = store
        .write(|c| {
            let other = openline_store::orgs::create(c, "Other Bank", None, "on", 1)?;
            let sender = senders::create(
                c,
                &senders::NewSender {
                    org_id: &other.id,
                    channel: Channel::Whatsapp,
                    provider: ProviderKind::CloudApi,
                    phone_number: "+15550009999",
                    phone_number_id: "999999",
                    waba_id: None,
                    display_name: "Other",
                    throughput_per_s: 80,
                },
                1,
            )?;
            let stored = openline_store::messages::insert_inbound(
                c,
                &openline_store::messages::NewInbound {
                    org_id: &other.id,
                    sender_id: &sender.id,
                    channel: Channel::Whatsapp,
                    provider: ProviderKind::CloudApi,
                    from_phone: Some(ADA),
                    wa_user_id: Some("447700900001"),
                    profile_name: None,
                    provider_message_id: "wamid.OTHERORG",
                    kind: openline_domain::MessageKind::Text,
                    body: Some("Hello other bank"),
                    media: None,
                    reply_to: None,
                    raw: None,
                    sent_at: 1,
                    now: 1,
                },
            )?;
            match stored {
                openline_store::messages::InboundOutcome::Stored(m) => Ok(m.id),
                openline_store::messages::InboundOutcome::Duplicate => unreachable!(),
            }
        })
        .await
        .unwrap();
    let before = app.count("select count(*) from messages").await;
    refused(
        &app,
        json!({"contact_id": ada, "reaction": {"message_id": foreign, "emoji": "👍"}}),
        "reaction_target_not_found",
    )
    .await;
    // Ada's message, reacted to from another contact's conversation.
    let dan = app.contact_id("+447700900002").await;
    refused(
        &app,
        json!({"contact_id": dan, "reaction": {"message_id": inbound["id"], "emoji": "👍"}}),
        "reaction_target_other_conversation",
    )
    .await;
    // A message still queued (no provider id yet) cannot be reacted to.
    let sam = app.contact_id("+447700900003").await;
    let (_, queued) = app.send_text(&sam, "Waiting for consent").await;
    let before_queued = app.count("select count(*) from messages").await;
    refused(
        &app,
        json!({"contact_id": sam, "reaction": {"message_id": queued["id"], "emoji": "👍"}}),
        "reaction_target_not_sent",
    )
    .await;
    assert_eq!(app.count("select count(*) from messages").await, before_queued);
    assert_eq!(before + 1, before_queued);
    // Removing a reaction is a reaction with no emoji, and reaches the phone.
    let (m, entry) = send_delivered(
        &app,
        json!({"contact_id": ada, "reaction": {"message_id": inbound["id"], "emoji": ""}}),
    )
    .await;
    assert_eq!(
        (m["kind"].as_str(), m["body"].as_str()),
        (Some("reaction"), Some("Reaction removed"))
    );
    assert_eq!(
        (entry["type"].as_str(), entry["text"].as_str()),
        (Some("reaction"), Some(""))
    );
    app.stop().await;
}

async fn twilio_refuses(backend: Backend) {
    let app = spawn_app(backend).await;
    let store = app.handle.as_ref().unwrap().state.store.clone();
    // The root organization's WhatsApp number is on Twilio.
    let dan = store
        .write(|c| {
            let root = openline_store::orgs::find_by_name(c, openline_server::demo::DEMO_ORG)?.unwrap();
            senders::create(
                c,
                &senders::NewSender {
                    org_id: &root.id,
                    channel: Channel::Whatsapp,
                    provider: ProviderKind::Twilio,
                    phone_number: "+15550001000",
                    phone_number_id: "whatsapp:+15550001000",
                    waba_id: None,
                    display_name: "Demo Bank via Twilio",
                    throughput_per_s: 10,
                },
                0,
            )?;
            Ok(openline_store::contacts::create(c, &root.id, "+447700900099", Some("Dan"), 0)?.id)
        })
        .await
        .unwrap();
    app.sign_in("admin@demo.openline.dev").await;
    let before = app.count("select count(*) from messages").await;
    for body in [
        json!({"contact_id": dan, "location": {"latitude": 1.0, "longitude": 2.0}}),
        json!({"contact_id": dan, "contacts": [{"name": {"formatted_name": "Ada Lovelace"}}]}),
        buttons(&dan, &["Confirm", "Not me"]),
        json!({"contact_id": dan, "reaction": {"message_id": "msg_x", "emoji": "👍"}}),
        json!({"contact_id": dan, "text": "Quoting", "reply_to": "msg_x"}),
    ] {
        refused(&app, body, "kind_not_supported_by_provider").await;
    }
    assert_eq!(
        app.count("select count(*) from messages").await,
        before,
        "nothing stored"
    );
    app.stop().await;
}

async fn read_receipts(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in(AGENT).await;
    let (_, inbound) = ada_writes(&app, "Are you there?").await;
    let conversation = inbound["conversation_id"].as_str().unwrap();
    let wamid = inbound["provider_message_id"].as_str().unwrap().to_owned();
    let status_on_phone = |entries: Vec<Value>| {
        entries
            .into_iter()
            .find(|e| e["id"] == wamid.as_str())
            .map(|e| e["status"].clone())
            .unwrap()
    };
    assert_eq!(status_on_phone(phone_entries(&app, ADA).await), "sent", "not read yet");
    let read_path = format!("/api/v1/conversations/{conversation}/read");
    let (status, read) = app.post(&read_path, json!({})).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(read["read_receipt"], true);
    assert_eq!(read["message_id"], inbound["id"]);
    // The receipt goes after the answer: the phone's message turns read (blue ticks).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while status_on_phone(phone_entries(&app, ADA).await) != "read" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the receipt never reached the phone"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Opened again, by another agent too: nothing more to acknowledge.
    let (_, again) = app.post(&read_path, json!({})).await;
    assert_eq!(again["read_receipt"], false, "{again}");
    app.sign_in("agent2@demo.openline.dev").await;
    let (_, other_agent) = app.post(&read_path, json!({})).await;
    assert_eq!(other_agent["read_receipt"], false, "{other_agent}");
    assert_eq!(
        app.count("select count(*) from journal where kind = 'message.read_receipt'")
            .await,
        1
    );
    // Unknown threads are not found.
    let (status, _) = app.post("/api/v1/conversations/cnv_unknown/read", json!({})).await;
    assert_eq!(status, 404);
    // An SMS thread: never a receipt.
    let (status, sms) = app
        .post(
            &format!("/sim/phones/{ADA}/sms"),
            json!({"to": "+15550002000", "text": "By SMS now"}),
        )
        .await;
    assert_eq!((status, sms["webhook_status"].as_i64()), (200, Some(200)), "{sms}");
    let (_, inbox) = app.get("/api/v1/conversations").await;
    let sms_thread = inbox["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel"] == "sms" && c["contact_phone"] == ADA)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, read) = app
        .post(&format!("/api/v1/conversations/{sms_thread}/read"), json!({}))
        .await;
    assert_eq!((status, read["read_receipt"].as_bool()), (200, Some(false)), "{read}");
    app.stop().await;
}
