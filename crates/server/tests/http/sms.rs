//! SMS beside WhatsApp, through the Twilio adapter and the simulator's Twilio API: a contact who is
//! not on WhatsApp gets an SMS instead, answers by SMS, and the inbox shows both threads; Twilio
//! webhooks are verified (`X-Twilio-Signature`) before anything is stored.

use crate::common::*;
use openline_store::Backend;
use serde_json::json;
use std::time::Duration;

const SMS_NUMBER: &str = "+15550002000";

crate::both_backends! {
    not_on_whatsapp_then_an_sms_is_sent_and_answered_in_its_own_thread => sms_instead;
    a_forged_twilio_signature_is_refused_and_nothing_is_stored => forged_twilio;
}

async fn sms_instead(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in(AGENT).await;
    let nora = app.contact_id(NORA).await;
    app.request_opt_in(NORA).await;
    app.wait_for_consent(NORA, "not_on_whatsapp").await;

    // "Send an SMS instead?" – Yes.
    let (status, sent) = app
        .post(
            "/api/v1/messages",
            json!({"contact_id": nora, "text": "Hello Nora, this is your bank.", "channel": "sms"}),
        )
        .await;
    assert_eq!(status, 202, "{sent}");
    let m = app
        .wait_for_message(sent["id"].as_str().unwrap(), |m| {
            m["status"] == "delivered" || m["status"] == "failed"
        })
        .await;
    assert_eq!(m["status"], "delivered", "{m}");
    assert_eq!(m["provider"], "twilio");
    assert!(m["provider_message_id"].as_str().unwrap().starts_with("SM"));
    let (_, phone) = app.get(&format!("/sim/phones/{NORA}/messages")).await;
    assert!(
        phone
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["channel"] == "sms" && e["text"] == "Hello Nora, this is your bank."),
        "{phone}"
    );

    // Nora answers by SMS: it lands in the SMS thread, beside the WhatsApp one.
    let (status, reply) = app
        .post(
            &format!("/sim/phones/{NORA}/sms"),
            json!({"to": SMS_NUMBER, "text": "Thanks, call me later"}),
        )
        .await;
    assert_eq!((status, reply["webhook_status"].as_i64()), (200, Some(200)), "{reply}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let inbox = loop {
        let (_, inbox) = app.get("/api/v1/conversations").await;
        let channels: Vec<_> = inbox["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["contact_phone"] == NORA)
            .map(|c| c["channel"].clone())
            .collect();
        if channels.contains(&json!("sms")) && channels.contains(&json!("whatsapp")) {
            break inbox;
        }
        assert!(tokio::time::Instant::now() < deadline, "{inbox}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let sms_thread = inbox["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["channel"] == "sms")
        .unwrap();
    assert_eq!(sms_thread["last_message_preview"], "Thanks, call me later");
    let (_, thread) = app
        .get(&format!(
            "/api/v1/conversations/{}/messages",
            sms_thread["id"].as_str().unwrap()
        ))
        .await;
    let bodies: Vec<_> = thread["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(bodies, ["Hello Nora, this is your bank.", "Thanks, call me later"]);
    app.stop().await;
}

async fn forged_twilio(backend: Backend) {
    let app = spawn_app(backend).await;
    let params = vec![
        ("MessageSid".to_owned(), "SM00000000000000000000000000000001".to_owned()),
        ("AccountSid".to_owned(), "AC00000000000000000000000000000001".to_owned()),
        ("From".to_owned(), "+447700900055".to_owned()),
        ("To".to_owned(), SMS_NUMBER.to_owned()),
        ("Body".to_owned(), "forged".to_owned()),
        ("NumMedia".to_owned(), "0".to_owned()),
    ];
    let body = serde_urlencoded::to_string(&params).unwrap();
    let url = app.at("/webhooks/twilio");
    let forged = openline_channels::twilio::sign_twilio("not-the-token", &url, &params);
    let res = app
        .http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", forged)
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = app
        .http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(app.count("select count(*) from messages").await, 0);
    // Correctly signed, it is stored once, even when Twilio retries it.
    let good = openline_channels::twilio::sign_twilio("sim-twilio-auth-token", &url, &params);
    for _ in 0..2 {
        let res = app
            .http
            .post(&url)
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-twilio-signature", &good)
            .body(body.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    assert_eq!(
        app.count("select count(*) from messages where provider = 'twilio'")
            .await,
        1
    );
    app.stop().await;
}
