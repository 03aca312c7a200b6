//! Read receipts from the web app: an agent opening a thread with unread messages in the browser
//! reads it the way `POST /api/v1/conversations/{id}/read` does — the contact's phone shows their
//! latest message read (blue ticks), once, journaled with the agent — and a new message arriving
//! while the thread is in view is read too, but not while the page is in a background tab.

use crate::common::*;
use openline_store::Backend;
use serde_json::Value;
use std::time::Duration;

crate::both_backends! {
    opening_a_thread_in_the_browser_sends_one_read_receipt_and_only_while_in_view => opening_a_thread;
}

/// A browser signed in through the sign-in form (cookies kept, redirects not followed).
async fn browser_signed_in(app: &TestApp, email: &str) -> reqwest::Client {
    let b = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = b
        .post(app.at("/login"))
        .header("origin", &app.url)
        .form(&[("email", email), ("password", PASSWORD), ("next", "/messages")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "sign-in of {email}");
    b
}

/// The thread page as the browser asks for it: a navigation, or the live refresh (`Some(visible)`).
async fn open(app: &TestApp, b: &reqwest::Client, conversation: &str, refresh_in_view: Option<bool>) {
    let mut req = b.get(app.at(&format!("/messages/{conversation}")));
    if let Some(visible) = refresh_in_view {
        req = req
            .header("x-requested-with", "fetch")
            .header("x-openline-visible", if visible { "1" } else { "0" });
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), 200);
}

/// The status the simulated phone shows for a message it sent (`sent`, then `read`).
async fn status_on_phone(app: &TestApp, wamid: &str) -> String {
    let (_, entries) = app.get(&format!("/sim/phones/{ADA}/messages")).await;
    entries
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == wamid)
        .map(|e| e["status"].as_str().unwrap_or_default().to_owned())
        .unwrap_or_else(|| panic!("{wamid} on the phone: {entries}"))
}

async fn wait_until_read_on_phone(app: &TestApp, wamid: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while status_on_phone(app, wamid).await != "read" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the receipt for {wamid} never reached the phone"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The read receipts journaled: (message id, payload).
async fn receipts(app: &TestApp) -> Vec<(String, Value)> {
    let store = app.handle.as_ref().unwrap().state.store.clone();
    store
        .read(|c| {
            c.query(
                "select subject_id, payload from journal where kind = 'message.read_receipt' order by seq",
                &[],
            )?
            .iter()
            .map(|r| Ok((r.string(0)?, serde_json::from_str(&r.string(1)?).unwrap())))
            .collect()
        })
        .await
        .unwrap()
}

async fn unread(app: &TestApp, conversation: &str) -> i64 {
    let (_, c) = app.get(&format!("/api/v1/conversations/{conversation}")).await;
    c["unread_count"].as_i64().unwrap()
}

/// The openline message id of the inbound message with this wamid.
async fn message_id(app: &TestApp, conversation: &str, wamid: &str) -> String {
    let (_, page) = app
        .get(&format!("/api/v1/conversations/{conversation}/messages?limit=200"))
        .await;
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["provider_message_id"] == wamid)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

async fn opening_a_thread(backend: Backend) {
    // Arrange: Ada agreed and then wrote; the agent has not looked yet.
    let app = spawn_app(backend).await;
    app.sign_in(AGENT).await;
    let store = app.handle.as_ref().unwrap().state.store.clone();
    let agent_id = store
        .read(|c| {
            c.query_one("select id from users where email = ?", &[AGENT.into()])?
                .string(0)
        })
        .await
        .unwrap();
    app.ada_opts_in().await;
    let ada = app.contact_id(ADA).await;
    let wrote = app.phone_writes(ADA, "Are you there?").await;
    let first = wrote["id"].as_str().unwrap().to_owned();
    let (_, inbox) = app.get("/api/v1/conversations").await;
    let conversation = inbox["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["contact_id"] == ada.as_str())
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(unread(&app, &conversation).await > 0);
    assert_eq!(status_on_phone(&app, &first).await, "sent", "not read yet");
    assert!(receipts(&app).await.is_empty());

    // Act: the agent opens the thread in the browser.
    let b = browser_signed_in(&app, AGENT).await;
    open(&app, &b, &conversation, None).await;

    // Assert: Ada's phone shows her latest message read; one receipt, journaled with the agent.
    wait_until_read_on_phone(&app, &first).await;
    assert_eq!(unread(&app, &conversation).await, 0);
    let journaled = receipts(&app).await;
    assert_eq!(journaled.len(), 1, "{journaled:?}");
    assert_eq!(journaled[0].0, message_id(&app, &conversation, &first).await);
    assert_eq!(journaled[0].1["provider_message_id"], first.as_str());
    assert_eq!(journaled[0].1["read_by"], agent_id.as_str(), "{:?}", journaled[0]);

    // Opened again, and refreshed live: nothing more to acknowledge.
    open(&app, &b, &conversation, None).await;
    open(&app, &b, &conversation, Some(true)).await;
    assert_eq!(receipts(&app).await.len(), 1, "at most once per message");

    // Ada writes while the page sits in a background tab: its live refresh reads nothing.
    let wrote = app.phone_writes(ADA, "Hello?").await;
    let second = wrote["id"].as_str().unwrap().to_owned();
    open(&app, &b, &conversation, Some(false)).await;
    assert_eq!(unread(&app, &conversation).await, 1, "unread while nobody looks");
    assert_eq!(receipts(&app).await.len(), 1);
    assert_eq!(status_on_phone(&app, &second).await, "sent");

    // The tab comes back into view: the refresh reads it, and her new message gets its receipt.
    open(&app, &b, &conversation, Some(true)).await;
    wait_until_read_on_phone(&app, &second).await;
    assert_eq!(unread(&app, &conversation).await, 0);
    let journaled = receipts(&app).await;
    assert_eq!(journaled.len(), 2, "{journaled:?}");
    assert_eq!(journaled[1].1["provider_message_id"], second.as_str());
    app.stop().await;
}
