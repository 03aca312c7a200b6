//! The foundation's story: sign in, a client writes, the agent sees it live and replies, the reply's
//! status follows the provider; idempotent sends; duplicate and out-of-order webhooks; failures.

use crate::common::*;
use openline_store::Backend;
use serde_json::json;

crate::both_backends! {
    a_client_writes_the_agent_sees_it_live_replies_and_the_status_follows_the_provider => story;
    a_retried_send_with_the_same_idempotency_key_sends_one_message => idempotent_send;
    a_webhook_delivered_twice_stores_one_message => duplicate_webhook;
    a_late_delivered_status_never_overwrites_read => status_order;
    several_statuses_in_one_webhook_are_each_judged_as_alone => status_batch;
    a_number_not_on_whatsapp_fails_with_the_providers_code_and_an_explanation => not_on_whatsapp;
    the_inbox_lists_newest_activity_first_and_pages_by_cursor => inbox_paging;
    bad_requests_get_a_clear_error_and_store_nothing => bad_requests;
}

async fn story(backend: Backend) {
    let app = spawn_app(backend).await;
    let me = app.sign_in(AGENT).await;
    assert_eq!(me["user"]["role"], "agent");

    // The agent opens the live event stream.
    let mut events = app.http.get(app.at("/api/v1/events")).send().await.unwrap();
    assert_eq!(events.status(), 200);
    let mut buf = String::new();

    // Ada writes from her (simulated) phone; openline verifies, stores and streams it.
    app.phone_writes(ADA, "Hello, can you move my appointment? 😀").await;
    let ev = next_event(&mut events, "message.received", &mut buf).await;
    assert_eq!(ev["data"]["body"], "Hello, can you move my appointment? 😀");
    assert_eq!(ev["data"]["direction"], "in");

    let (_, inbox) = app.get("/api/v1/conversations").await;
    let conv = &inbox["items"][0];
    assert_eq!(conv["contact_phone"], ADA);
    assert_eq!(conv["channel"], "whatsapp");
    assert!(conv["last_inbound_at"].as_i64().is_some(), "the window opened");

    // Ada agrees to WhatsApp messages (the persona taps Yes on the opt-in request).
    app.ada_opts_in().await;

    // The agent replies; the message goes out through the Cloud API adapter to the simulator.
    let ada = app.contact_id(ADA).await;
    let (status, sent) = app.send_text(&ada, "Of course, Ada. Thursday at 10?").await;
    assert_eq!(status, 202, "{sent}");
    assert_eq!(sent["status"], "queued");
    let id = sent["id"].as_str().unwrap().to_owned();
    let read = app.wait_for_message(&id, |m| m["status"] == "read").await;
    assert!(read["provider_message_id"].as_str().unwrap().starts_with("wamid."));
    assert!(
        read["sent_at"].is_i64() && read["delivered_at"].is_i64() && read["read_at"].is_i64(),
        "{read}"
    );
    // Among the status events (the opt-in, the confirmation, …) is the reply's.
    loop {
        let ev = next_event(&mut events, "message.status", &mut buf).await;
        if ev["data"]["id"] == id.as_str() {
            break;
        }
    }

    // The phone really received it, as the simulator saw it.
    let (_, phone) = app.get(&format!("/sim/phones/{ADA}/messages")).await;
    assert!(
        phone
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["text"] == "Of course, Ada. Thursday at 10?"),
        "{phone}"
    );

    // The thread holds, in order: Ada's message, the opt-in request, the notice that it was sent, her
    // tap on Yes, the notice that she agreed, openline's confirmation to her, and the agent's reply.
    let conv_id = conv["id"].as_str().unwrap();
    let (_, thread) = app.get(&format!("/api/v1/conversations/{conv_id}/messages")).await;
    let kinds: Vec<_> = thread["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| format!("{}:{}", m["direction"].as_str().unwrap(), m["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            "in:text",
            "out:template",
            "system:notice",
            "in:interactive",
            "system:notice",
            "out:text",
            "out:text"
        ]
    );
    let bodies: Vec<_> = thread["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == "text" && (m["direction"] == "in" || m["author_user_id"].is_string()))
        .map(|m| m["body"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        bodies,
        [
            "Hello, can you move my appointment? 😀",
            "Of course, Ada. Thursday at 10?"
        ]
    );
    app.stop().await;
}

async fn idempotent_send(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in(AGENT).await;
    app.ada_opts_in().await;
    let ada = app.contact_id(ADA).await;
    let body = json!({"contact_id": ada, "text": "Only once, please"});
    let send = |b: serde_json::Value| {
        app.http
            .post(app.at("/api/v1/messages"))
            .header("Idempotency-Key", "order-42")
            .json(&b)
            .send()
    };
    let first = send(body.clone()).await.unwrap();
    assert_eq!(first.status(), 202);
    let first: serde_json::Value = first.json().await.unwrap();
    let again = send(body.clone()).await.unwrap();
    assert_eq!(again.status(), 202);
    assert_eq!(again.headers().get("idempotent-replayed").unwrap(), "true");
    let again: serde_json::Value = again.json().await.unwrap();
    assert_eq!(again["id"], first["id"], "the retry returns the first answer");
    let other = send(json!({"contact_id": ada, "text": "Something else"}))
        .await
        .unwrap();
    assert_eq!(other.status(), 422);
    assert_eq!(
        other.json::<serde_json::Value>().await.unwrap()["error"],
        "idempotency_key_reused"
    );
    app.wait_for_message(first["id"].as_str().unwrap(), |m| m["status"] == "read")
        .await;
    assert_eq!(
        app.count("select count(*) from messages where body = 'Only once, please'")
            .await,
        1
    );
    let (_, phone) = app.get(&format!("/sim/phones/{ADA}/messages")).await;
    let delivered = phone
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["text"] == "Only once, please")
        .count();
    assert_eq!(delivered, 1, "the provider received it once");
    app.stop().await;
}

async fn duplicate_webhook(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = text_webhook("wamid.DUPLICATE1", "447700900099", "Sent twice by Meta");
    assert_eq!(app.post_signed_webhook(&body).await.status(), 200);
    assert_eq!(
        app.post_signed_webhook(&body).await.status(),
        200,
        "a retry is acknowledged too"
    );
    assert_eq!(app.count("select count(*) from messages").await, 1);
    assert_eq!(
        app.count("select count(*) from contacts where phone = '+447700900099'")
            .await,
        1
    );
    app.stop().await;
}

/// A server whose agent sent Ada `text`, which the simulator has reported read: the app, the
/// message's id and its provider id.
async fn read_by_ada(backend: Backend, text: &str) -> (TestApp, String, String) {
    let app = spawn_app(backend).await;
    app.sign_in(AGENT).await;
    app.ada_opts_in().await;
    let ada = app.contact_id(ADA).await;
    let (_, sent) = app.send_text(&ada, text).await;
    let id = sent["id"].as_str().unwrap().to_owned();
    let m = app.wait_for_message(&id, |m| m["status"] == "read").await;
    let wamid = m["provider_message_id"].as_str().unwrap().to_owned();
    (app, id, wamid)
}

async fn status_order(backend: Backend) {
    let (app, id, wamid) = read_by_ada(backend, "Status test").await;
    // Meta retries an old `delivered` after `read`.
    assert_eq!(
        app.post_signed_webhook(&status_webhook(&wamid, "delivered", 1))
            .await
            .status(),
        200
    );
    let (_, m) = app.get(&format!("/api/v1/messages/{id}")).await;
    assert_eq!(m["status"], "read");
    app.stop().await;
}

/// Meta sends several statuses in one webhook at times (they are then stored together, their
/// messages looked up at once): each still ends as it would alone.
async fn status_batch(backend: Backend) {
    let (app, id, wamid) = read_by_ada(backend, "Statuses together").await;
    let events = |w: &str| -> &'static str {
        Box::leak(
            format!("select count(*) from message_status_events where provider_message_id = '{w}'").into_boxed_str(),
        )
    };
    let before = app.count(events(&wamid)).await;
    let mut body: serde_json::Value = serde_json::from_slice(&status_webhook(&wamid, "delivered", 1)).unwrap();
    let statuses = body["entry"][0]["changes"][0]["value"]["statuses"]
        .as_array_mut()
        .unwrap();
    let first = statuses[0].clone();
    for (w, status) in [
        (wamid.as_str(), "read"),
        ("wamid.NOBODY", "sent"),
        (wamid.as_str(), "delivered"),
    ] {
        let mut s = first.clone();
        s["id"] = json!(w);
        s["status"] = json!(status);
        statuses.push(s);
    }
    assert_eq!(
        app.post_signed_webhook(&serde_json::to_vec(&body).unwrap())
            .await
            .status(),
        200
    );
    let (_, m) = app.get(&format!("/api/v1/messages/{id}")).await;
    assert_eq!(m["status"], "read", "a late delivered never moves read back: {m}");
    assert_eq!(
        app.count(events(&wamid)).await,
        before,
        "delivered and read were recorded before; the repeats are duplicates"
    );
    assert_eq!(
        app.count(events("wamid.NOBODY")).await,
        1,
        "a status for no message is kept"
    );
    app.stop().await;
}

async fn not_on_whatsapp(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in(AGENT).await;
    let (status, sent) = app.request_opt_in(NORA).await;
    assert_eq!(status, 202, "{sent}");
    let m = app
        .wait_for_message(sent["message"]["id"].as_str().unwrap(), |m| m["status"] == "failed")
        .await;
    assert_eq!(m["error_code"], 131026);
    assert!(m["error_explanation"].as_str().unwrap().contains("SMS"), "{m}");
    app.stop().await;
}

async fn inbox_paging(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in(AGENT).await;
    for (i, phone) in ["+447700900001", "+447700900002", "+447700900003"].iter().enumerate() {
        app.phone_writes(phone, &format!("message {i}")).await;
    }
    let (_, p1) = app.get("/api/v1/conversations?limit=2").await;
    let phones: Vec<_> = p1["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["contact_phone"].clone())
        .collect();
    assert_eq!(phones, [json!("+447700900003"), json!("+447700900002")]);
    let cursor = p1["next_cursor"].as_str().unwrap();
    let (_, p2) = app.get(&format!("/api/v1/conversations?limit=2&cursor={cursor}")).await;
    assert_eq!(p2["items"].as_array().unwrap().len(), 1);
    assert_eq!(p2["items"][0]["contact_phone"], "+447700900001");
    assert!(p2["next_cursor"].is_null());
    let (status, err) = app.get("/api/v1/conversations?cursor=not-a-cursor").await;
    assert_eq!((status, err["error"].as_str()), (400, Some("invalid_cursor")));
    app.stop().await;
}

async fn bad_requests(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in(AGENT).await;
    let res = app
        .http
        .post(app.at("/api/v1/messages"))
        .header("content-type", "application/json")
        .body("{\"contact_id\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let err: serde_json::Value = res.json().await.unwrap();
    assert_eq!(err["error"], "invalid_json");
    assert!(err["message"].as_str().unwrap().len() > 10);

    let (status, err) = app.post("/api/v1/messages", json!({"contact": "x"})).await;
    assert_eq!((status, err["error"].as_str()), (422, Some("invalid_body")));
    let ada = app.contact_id(ADA).await;
    let (status, err) = app.send_text(&ada, "   ").await;
    assert_eq!((status, err["error"].as_str()), (422, Some("empty_message")));
    let (status, err) = app.send_text(&ada, &"x".repeat(4097)).await;
    assert_eq!((status, err["error"].as_str()), (422, Some("message_too_long")));
    let (status, err) = app.send_text("ct_doesnotexist", "hi").await;
    assert_eq!((status, err["error"].as_str()), (404, Some("not_found")));
    let (status, err) = app.post("/api/v1/contacts", json!({"phone": "07700 900123"})).await;
    assert_eq!((status, err["error"].as_str()), (422, Some("invalid_phone_number")));
    let (status, err) = app.post("/api/v1/contacts", json!({"phone": ADA})).await;
    assert_eq!((status, err["error"].as_str()), (409, Some("contact_exists")));
    let (status, created) = app
        .post(
            "/api/v1/contacts",
            json!({"phone": "+44 7700 900123", "name": "New Client"}),
        )
        .await;
    assert_eq!((status, created["phone"].as_str()), (201, Some("+447700900123")));
    assert_eq!(
        app.count("select count(*) from messages").await,
        0,
        "nothing was half-stored"
    );
    let (status, err) = app.get("/api/v1/nope").await;
    assert_eq!((status, err["error"].as_str()), (404, Some("no_route")));
    app.stop().await;
}
