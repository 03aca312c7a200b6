//! Pacing through HTTP against the simulator: a sender number's throughput (set through the API)
//! is never exceeded however many contacts are written to at once, and one contact gets a short
//! burst and then one message every 6 seconds (with the injectable clock, never sleeps), while the
//! number's throughput setting refuses values Meta never grants.

use crate::common::*;
use openline_domain::clock::{Clock, ManualClock};
use openline_store::Backend;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const ADMIN: &str = "admin@demo.openline.dev";

crate::both_backends! {
    many_sends_to_many_contacts_never_exceed_the_numbers_throughput => throughput;
    one_contact_gets_a_burst_then_one_message_every_six_seconds => contact_spacing;
    throughput_is_set_by_admins_within_what_meta_grants => throughput_setting;
}

pub async fn put(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let res = app.http.put(app.at(path)).json(&body).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn whatsapp_sender(app: &TestApp) -> String {
    let (status, senders) = app.get("/api/v1/senders").await;
    assert_eq!(status, 200, "{senders}");
    senders
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["channel"] == "whatsapp")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// What the simulated phone received from the business (the provider's view, with its clock).
async fn received(app: &TestApp, phone: &str) -> Vec<Value> {
    let (_, msgs) = app.get(&format!("/sim/phones/{phone}/messages")).await;
    msgs.as_array()
        .unwrap()
        .iter()
        .filter(|m| m["direction"] == "from_business")
        .cloned()
        .collect()
}

async fn wait_until_received(app: &TestApp, phone: &str, n: usize) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let got = received(app, phone).await;
        if got.len() >= n {
            return got;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{phone} received {} of {n} messages",
            got.len()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn throughput(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in(ADMIN).await;
    let sender = whatsapp_sender(&app).await;
    let (status, s) = put(
        &app,
        &format!("/api/v1/senders/{sender}/throughput"),
        json!({"per_second": 4}),
    )
    .await;
    assert_eq!((status, s["throughput_per_s"].as_i64()), (200, Some(4)), "{s}");

    // Twelve new contacts are asked to opt in at once: twelve templates from one number.
    app.sign_in(AGENT).await;
    let phones: Vec<String> = (0..12).map(|i| format!("+4420794600{i:02}")).collect();
    for phone in &phones {
        let (status, c) = app.post("/api/v1/contacts", json!({"phone": phone})).await;
        assert_eq!(status, 201, "{c}");
    }
    for phone in &phones {
        let (status, body) = app.request_opt_in(phone).await;
        assert_eq!(status, 202, "{body}");
    }
    let mut at: Vec<i64> = Vec::new();
    for phone in &phones {
        let got = wait_until_received(&app, phone, 1).await;
        assert_eq!(got.len(), 1, "{phone}: {got:?}");
        assert_ne!(got[0]["status"], "failed", "{phone}: {got:?}");
        at.push(got[0]["timestamp_ms"].as_i64().unwrap());
    }
    at.sort_unstable();
    let most_in_a_second = (0..at.len())
        .map(|i| at[i..].iter().take_while(|t| **t < at[i] + 1_000).count())
        .max()
        .unwrap();
    assert!(most_in_a_second <= 4, "{most_in_a_second} sends in one second: {at:?}");
    assert!(at[11] - at[0] >= 2_000, "12 sends at 4/s take more than 2 s: {at:?}");
    app.stop().await;
}

async fn contact_spacing(backend: Backend) {
    let clock = ManualClock::starting_now();
    let app = spawn_app_with_clock(backend, Arc::new(clock.clone())).await;
    app.sign_in(AGENT).await;
    // The opt-in request and its confirmation are the first two messages of the burst.
    app.ada_opts_in().await;
    wait_until_received(&app, ADA, 2).await;
    let ada = app.contact_id(ADA).await;
    let mut ids = Vec::new();
    for i in 1..=10 {
        let (status, m) = app.send_text(&ada, &format!("Update {i}")).await;
        assert_eq!(status, 202, "{m}");
        ids.push(m["id"].as_str().unwrap().to_owned());
    }
    // A burst of ten: eight of the texts go at once, in order.
    let got = wait_until_received(&app, ADA, 10).await;
    assert_eq!(got[9]["text"], "Update 8");
    // The ninth waits for the contact's next token, 6 s away on the clock, back in the outbox.
    let store = app.handle.as_ref().unwrap().state.store.clone();
    let ninth = ids[8].clone();
    let now = clock.now();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let due = loop {
        let id = ninth.clone();
        let due = store
            .read(move |c| {
                c.query_opt(
                    "select next_attempt_at, attempts from outbox where message_id = ? and state = 'pending' and lease_until is null",
                    &[openline_store::Val::from(id.as_str())],
                )?
                .map(|r| Ok::<_, openline_store::StoreError>((r.i64(0)?, r.i64(1)?)))
                .transpose()
            })
            .await
            .unwrap();
        if let Some((due, attempts)) = due {
            if due > now {
                assert_eq!(attempts, 0, "pacing is not an attempt");
                break due;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "the ninth text was never paced");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(due, now + 6_000);
    assert_eq!(received(&app, ADA).await.len(), 10, "nothing more went before its time");
    // Each 6 s on the clock lets one more through, in order.
    clock.advance_ms(6_000);
    let got = wait_until_received(&app, ADA, 11).await;
    assert_eq!(got[10]["text"], "Update 9");
    clock.advance_ms(6_000);
    let got = wait_until_received(&app, ADA, 12).await;
    assert_eq!(got[11]["text"], "Update 10");
    let times: Vec<i64> = got.iter().map(|m| m["timestamp_ms"].as_i64().unwrap()).collect();
    assert_eq!(times[11] - times[10], 6_000, "{times:?}");
    app.stop().await;
}

async fn throughput_setting(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in(AGENT).await;
    let sender = whatsapp_sender(&app).await;
    let path = format!("/api/v1/senders/{sender}/throughput");
    let (status, err) = put(&app, &path, json!({"per_second": 100})).await;
    assert_eq!((status, err["error"].as_str()), (403, Some("forbidden")), "{err}");
    app.sign_in(ADMIN).await;
    for bad in [0, 1_001] {
        let (status, err) = put(&app, &path, json!({"per_second": bad})).await;
        assert_eq!(
            (status, err["error"].as_str()),
            (422, Some("throughput_out_of_range")),
            "{err}"
        );
    }
    let (status, err) = put(&app, "/api/v1/senders/snd_nope/throughput", json!({"per_second": 100})).await;
    assert_eq!(status, 404, "{err}");
    let (status, s) = put(&app, &path, json!({"per_second": 1_000})).await;
    assert_eq!((status, s["throughput_per_s"].as_i64()), (200, Some(1_000)), "{s}");
    let (_, list) = app.get("/api/v1/senders").await;
    assert!(list.as_array().unwrap().iter().any(|s| s["throughput_per_s"] == 1_000));
    // The archive says who changed it.
    let store = app.handle.as_ref().unwrap().state.store.clone();
    let org = s["org_id"].as_str().unwrap().to_owned();
    let entries = store
        .read(move |c| openline_store::journal::page(c, &org, 0, 10_000))
        .await
        .unwrap();
    let change = entries
        .iter()
        .rev()
        .find(|e| e.kind == "sender.throughput_changed")
        .expect("the change is archived");
    assert_eq!(change.payload["throughput_per_s"], 1_000, "{:?}", change.payload);
    assert_eq!(change.payload["actor"]["email"], ADMIN, "{:?}", change.payload);
    app.stop().await;
}
