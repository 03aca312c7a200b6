//! Duplicate sends through HTTP (issue 6): every send names its openline message to the provider
//! (Cloud API `biz_opaque_callback_data`, echoed by the simulator as by Meta; Twilio's
//! StatusCallback query), so a status for a second provider id of one message, as an attempt whose
//! answer was lost in a crash produces, confirms the duplicate, applies to the message, and shows in
//! the message and thread JSON.

use crate::common::*;
use openline_channels::twilio::signature::{sign_twilio_with, SignatureAlgorithm};
use openline_store::Backend;
use serde_json::{json, Value};

crate::both_backends! {
    a_cloud_api_status_naming_a_message_under_another_wamid_confirms_a_duplicate => cloud_api;
    a_twilio_status_callback_naming_a_message_under_another_sid_confirms_a_duplicate => twilio;
}

async fn thread_of(app: &TestApp, message: &Value) -> Vec<Value> {
    let (status, page) = app
        .get(&format!(
            "/api/v1/conversations/{}/messages",
            message["conversation_id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(status, 200, "{page}");
    page["items"].as_array().unwrap().clone()
}

async fn cloud_api(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in(AGENT).await;
    app.ada_opts_in().await;
    let ada = app.contact_id(ADA).await;
    let (status, sent) = app.send_text(&ada, "Your card is on its way").await;
    assert_eq!(status, 202, "{sent}");
    let id = sent["id"].as_str().unwrap().to_owned();
    let m = app
        .wait_for_message(&id, |m| m["status"] == "read" || m["status"] == "failed")
        .await;
    assert_eq!(m["status"], "read", "{m}");
    assert_eq!(m["possible_duplicate"], false, "{m}");
    assert_eq!(m["duplicate_confirmed"], false, "{m}");
    // The send carried the message's id and the simulator's statuses echoed it, as Meta's do.
    assert!(
        app.count("select count(*) from message_status_events where raw like '%biz_opaque_callback_data%'")
            .await
            >= 3,
        "sent, delivered and read named the message"
    );

    // A status for another wamid that names the message: a copy an earlier attempt got.
    let mut webhook: Value =
        serde_json::from_slice(&status_webhook("wamid.EARLIER-COPY", "delivered", 1_700_000_100)).unwrap();
    webhook["entry"][0]["changes"][0]["value"]["statuses"][0]["biz_opaque_callback_data"] = json!(id);
    let res = app.post_signed_webhook(&serde_json::to_vec(&webhook).unwrap()).await;
    assert_eq!(res.status(), 200);
    let (_, m) = app.get(&format!("/api/v1/messages/{id}")).await;
    assert_eq!(m["duplicate_confirmed"], true, "{m}");
    assert_eq!(m["possible_duplicate"], true, "{m}");
    assert_eq!(m["status"], "read", "statuses only move forward: {m}");
    let thread = thread_of(&app, &m).await;
    assert!(
        thread
            .iter()
            .any(|t| t["id"] == id.as_str() && t["duplicate_confirmed"] == true),
        "the thread shows it"
    );
    assert_eq!(
        app.count("select count(*) from journal where kind = 'message.duplicate_confirmed'")
            .await,
        1
    );
    // A status naming no message of ours, or naming it without a known id, changes nothing.
    let mut stray: Value = serde_json::from_slice(&status_webhook("wamid.STRAY", "failed", 1_700_000_200)).unwrap();
    stray["entry"][0]["changes"][0]["value"]["statuses"][0]["biz_opaque_callback_data"] = json!("msg_not_ours");
    assert_eq!(
        app.post_signed_webhook(&serde_json::to_vec(&stray).unwrap())
            .await
            .status(),
        200
    );
    let (_, after) = app.get(&format!("/api/v1/messages/{id}")).await;
    assert_eq!(after["status"], "read", "{after}");
    app.stop().await;
}

async fn twilio(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in(AGENT).await;
    let nora = app.contact_id(NORA).await;
    app.request_opt_in(NORA).await;
    app.wait_for_consent(NORA, "not_on_whatsapp").await;
    let (status, sent) = app
        .post(
            "/api/v1/messages",
            json!({"contact_id": nora, "text": "Your code is 123456", "channel": "sms"}),
        )
        .await;
    assert_eq!(status, 202, "{sent}");
    let id = sent["id"].as_str().unwrap().to_owned();
    // The simulator's status callbacks went to the tagged URL and were accepted (signed over it).
    let m = app
        .wait_for_message(&id, |m| m["status"] == "delivered" || m["status"] == "failed")
        .await;
    assert_eq!(m["status"], "delivered", "{m}");
    assert_eq!(m["duplicate_confirmed"], false, "{m}");

    let other_sid = "SM0000000000000000000000000000dup1";
    let p: Vec<(String, String)> = [
        ("MessageSid", other_sid),
        ("SmsSid", other_sid),
        ("MessageStatus", "delivered"),
        ("SmsStatus", "delivered"),
        ("AccountSid", "AC00000000000000000000000000000001"),
        ("From", "+15550002000"),
        ("To", NORA),
        ("ApiVersion", "2010-04-01"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let tagged = format!("{}?openline_message_id={id}", app.at("/webhooks/twilio"));
    let post = |url: String, signature: String| {
        app.http
            .post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", signature)
            .body(serde_urlencoded::to_string(&p).unwrap())
            .send()
    };
    // The query is part of what Twilio signs: a signature over the bare URL does not cover it.
    let bare = sign_twilio_with(
        SignatureAlgorithm::HmacSha1,
        "sim-twilio-auth-token",
        &app.at("/webhooks/twilio"),
        &p,
    );
    let refused = post(tagged.clone(), bare).await.unwrap();
    assert_eq!(refused.status(), 403);
    let (_, unchanged) = app.get(&format!("/api/v1/messages/{id}")).await;
    assert_eq!(
        unchanged["duplicate_confirmed"], false,
        "nothing half-stored: {unchanged}"
    );
    let signed = sign_twilio_with(SignatureAlgorithm::HmacSha1, "sim-twilio-auth-token", &tagged, &p);
    let accepted = post(tagged, signed).await.unwrap();
    assert_eq!(accepted.status(), 200);
    let (_, m) = app.get(&format!("/api/v1/messages/{id}")).await;
    assert_eq!(m["duplicate_confirmed"], true, "{m}");
    assert_eq!(m["possible_duplicate"], true, "{m}");
    assert_eq!(m["status"], "delivered", "{m}");
    app.stop().await;
}
