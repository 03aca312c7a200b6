//! The phone API: a test or a person acting as a WhatsApp user.

use crate::support::*;
use base64::Engine;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn post(t: &TestSim, path: &str, body: Value) -> (u16, Value) {
    let r = t
        .http
        .post(format!("{}{path}", t.base))
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

#[tokio::test]
async fn a_phone_text_becomes_a_signed_inbound_webhook_in_metas_exact_shape() {
    let t = start().await;
    let answer = t.phone_writes("447700900001", "Olá, 😀 / ok").await;
    assert_eq!(answer["webhook_status"], 200);
    let hook = t.hooks.next().await;
    assert!(hook.signature_verifies());
    assert!(hook.raw.is_ascii());
    let raw = std::str::from_utf8(&hook.raw).unwrap();
    assert!(raw.contains(r"Ol\u00e1, \ud83d\ude00 \/ ok"), "{raw}");
    let expected = json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": "200000000000001",
            "changes": [{
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": {"display_phone_number": DISPLAY, "phone_number_id": PHONE_NUMBER_ID},
                    "contacts": [{"profile": {"name": "Ada Accepts"}, "wa_id": "447700900001"}],
                    "messages": [{
                        "from": "447700900001",
                        "id": answer["id"],
                        "timestamp": "1750000000",
                        "type": "text",
                        "text": {"body": "Olá, 😀 / ok"},
                    }],
                },
                "field": "messages",
            }],
        }],
    });
    assert_eq!(hook.json, expected);
    // The simulator's Debug output is safe to log: no secrets, nothing a phone wrote.
    let shown = format!("{:?}", t.sim);
    assert!(
        !shown.contains(SECRET) && !shown.contains(TOKEN) && !shown.contains("Olá"),
        "{shown}"
    );
}

#[tokio::test]
async fn the_phone_api_refuses_bad_phones_unknown_businesses_and_malformed_json_clearly() {
    let t = start().await;
    let (status, body) = post(&t, "/phones/12ab/messages", json!({"to": DISPLAY, "text": "hi"})).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_phone_number")));
    let (status, body) = post(
        &t,
        "/phones/+447700900001/messages",
        json!({"to": "15559999999", "text": "hi"}),
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (404, Some("unknown_business_number")));
    let (status, body) = post(
        &t,
        "/phones/+447700900004/messages",
        json!({"to": DISPLAY, "text": "hi"}),
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (409, Some("not_on_whatsapp")));
    let r = t
        .http
        .post(format!("{}/phones/447700900001/messages", t.base))
        .header("Content-Type", "application/json")
        .body("{oops")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_json");
    assert!(body["message"].as_str().unwrap().ends_with('.'));
}

#[tokio::test]
async fn a_phone_taps_a_button_of_a_template_it_received_and_sees_the_whole_conversation() {
    let t = start_with(0, |c| {
        c.templates.push(quick_reply_template(
            "appointment_reminder",
            "en_GB",
            2,
            &["Confirm", "Reschedule"],
        ))
    })
    .await;
    let (status, sent) = t
        .send(&json!({"messaging_product":"whatsapp","to":MANUAL,"type":"template","template":{
            "name":"appointment_reminder","language":{"code":"en_GB"},"components":[
              {"type":"body","parameters":[{"type":"text","text":"Ms Lovelace"},
                 {"type":"date_time","date_time":{"fallback_value":"Tuesday 10:00"}}]},
              {"type":"button","sub_type":"quick_reply","index":0,"parameters":[{"type":"payload","payload":"CONFIRM"}]},
              {"type":"button","sub_type":"quick_reply","index":1,"parameters":[{"type":"payload","payload":"RESCHEDULE"}]}]}}))
        .await;
    assert_eq!(status, 200);
    let id = sent["messages"][0]["id"].as_str().unwrap();
    t.hooks.next_where(|h| h.status() == Some("read")).await;

    let (status, body) = post(
        &t,
        &format!("/phones/{MANUAL}/buttons"),
        json!({"message_id": id, "button": "Maybe"}),
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (400, Some("unknown_button")));
    // The labels are the approved template's; the payloads are the send's.
    assert!(
        body["message"].as_str().unwrap().contains("Confirm, Reschedule"),
        "{body}"
    );
    let (status, body) = post(
        &t,
        &format!("/phones/{MANUAL}/buttons"),
        json!({"message_id": "wamid.nope", "button": "CONFIRM"}),
    )
    .await;
    assert_eq!((status, body["error"].as_str()), (404, Some("unknown_message")));

    let (status, tapped) = post(
        &t,
        &format!("/phones/{MANUAL}/buttons"),
        json!({"message_id": id, "button": "reschedule"}),
    )
    .await;
    assert_eq!(status, 200, "{tapped}");
    let hook = t.hooks.next().await;
    assert_eq!(
        hook.message()["button"],
        json!({"payload":"RESCHEDULE","text":"Reschedule"})
    );
    assert_eq!(hook.message()["context"], json!({"from": DISPLAY, "id": id}));

    let r = t
        .http
        .get(format!("{}/phones/{MANUAL}/messages", t.base))
        .send()
        .await
        .unwrap();
    let conversation: Value = r.json().await.unwrap();
    let conversation = conversation.as_array().unwrap();
    assert_eq!(conversation.len(), 2);
    assert_eq!(conversation[0]["direction"], "from_business");
    assert_eq!(conversation[0]["type"], "template");
    assert_eq!(conversation[0]["status"], "read");
    assert_eq!(conversation[0]["template"]["name"], "appointment_reminder");
    assert_eq!(
        conversation[0]["template"]["parameters"],
        json!(["Ms Lovelace", "Tuesday 10:00"])
    );
    assert_eq!(conversation[0]["buttons"][1]["text"], "Reschedule");
    assert_eq!(conversation[0]["buttons"][1]["id"], "RESCHEDULE");
    assert_eq!(
        conversation[0]["template"]["body"],
        "Hello Ms Lovelace and Tuesday 10:00."
    );
    assert_eq!(conversation[1]["direction"], "from_phone");
    assert_eq!(conversation[1]["type"], "button");
    assert_eq!(conversation[1]["id"], tapped["id"]);
    assert_eq!(conversation[1]["context_id"], id);
}

#[tokio::test]
async fn a_phone_image_is_sent_as_media_openline_can_download_with_the_token() {
    let t = start().await;
    let png = b"\x89PNG\r\n\x1a\nnot really a png".to_vec();
    let b64 = base64::engine::general_purpose::STANDARD.encode(&png);
    let (status, _) = post(
        &t,
        &format!("/phones/{ADA}/images"),
        json!({"to": PHONE_NUMBER_ID, "caption": "my passport", "mime_type": "image/png", "data_base64": b64}),
    )
    .await;
    assert_eq!(status, 200);
    let hook = t.hooks.next().await;
    assert!(hook.signature_verifies());
    let image = &hook.message()["image"];
    assert_eq!(hook.message()["type"], "image");
    assert_eq!(image["caption"], "my passport");
    assert_eq!(image["mime_type"], "image/png");
    use sha2::Digest;
    let digest = sha2::Sha256::digest(&png);
    assert_eq!(
        image["sha256"],
        base64::engine::general_purpose::STANDARD.encode(digest)
    );
    let media_id = image["id"].as_str().unwrap();

    let unauthorized = t
        .http
        .get(format!("{}/graph/v23.0/{media_id}", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(unauthorized.status().as_u16(), 401);
    let info: Value = t
        .http
        .get(format!("{}/graph/v23.0/{media_id}", t.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["id"], media_id);
    assert_eq!(info["mime_type"], "image/png");
    assert_eq!(info["file_size"], png.len().to_string());
    assert_eq!(info["sha256"], hex::encode(digest));
    let url = info["url"].as_str().unwrap();
    assert_eq!(url, format!("{}/media/{media_id}", t.base));
    let download = t.http.get(url).bearer_auth(TOKEN).send().await.unwrap();
    assert_eq!(download.headers()["content-type"], "image/png");
    assert_eq!(download.bytes().await.unwrap().as_ref(), png.as_slice());

    let missing = t
        .http
        .get(format!("{}/graph/v23.0/123", t.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 400);
}

#[tokio::test]
async fn a_webhook_refused_with_500_is_retried_until_openline_takes_it() {
    let t = start_with(1, |_| {}).await;
    let started = Instant::now();
    let answer = t.phone_writes(MANUAL, "Hello?").await;
    assert_eq!(answer["webhook_status"], 500);
    let hook = t.hooks.next().await;
    assert!(started.elapsed() >= Duration::from_millis(900), "retried after backoff");
    assert_eq!(hook.message()["id"], answer["id"]);
    assert!(hook.signature_verifies());
    assert_eq!(t.hooks.hits.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[tokio::test]
async fn phones_are_listed_with_their_behaviour_which_can_be_changed() {
    let t = start().await;
    let phones: Value = t
        .http
        .get(format!("{}/phones", t.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = phones
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Ada Accepts", "Dan Declines", "Sam Silent", "Nora NoWhatsApp"]);
    assert_eq!(phones[3]["behaviour"], "not_on_whatsapp");

    let r = t
        .http
        .put(format!("{}/phones/447700900004/behaviour", t.base))
        .json(&json!({"behaviour": "accepts"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (status, _) = post(
        &t,
        "/phones/447700900004/messages",
        json!({"to": DISPLAY, "text": "I'm here now"}),
    )
    .await;
    assert_eq!(status, 200);
    let bad = t
        .http
        .put(format!("{}/phones/447700900004/behaviour", t.base))
        .json(&json!({"behaviour": "sometimes"}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status().as_u16(), 400);
}

#[tokio::test]
async fn the_phone_api_is_described_by_an_openapi_document() {
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
        "/phones",
        "/phones/{phone}/messages",
        "/phones/{phone}/sms",
        "/phones/{phone}/buttons",
        "/phones/{phone}/images",
        "/phones/{phone}/behaviour",
    ] {
        assert!(doc["paths"][path].is_object(), "{path}");
    }
    assert!(doc["components"]["schemas"]["ConversationEntry"].is_object());
    assert!(doc["components"]["schemas"]["ConversationEntry"]["properties"]["channel"].is_object());
    assert!(doc["components"]["schemas"]["MessageChannel"].is_object());
    assert!(doc["components"]["schemas"]["SendSmsRequest"].is_object());
}

#[tokio::test]
async fn the_business_uploads_media_and_sends_it_by_id() {
    let t = start_with(0, |c| c.enforce_window = false).await;
    let boundary = "simboundary";
    let mut body = Vec::new();
    for (name, value) in [("messaging_product", "whatsapp"), ("type", "application/pdf")] {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    }
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"statement.pdf\"\r\nContent-Type: application/pdf\r\n\r\n").as_bytes(),
    );
    body.extend_from_slice(b"%PDF-1.4 statement");
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let upload = |auth: bool| {
        let mut req = t
            .http
            .post(format!("{}/graph/v23.0/{PHONE_NUMBER_ID}/media", t.base))
            .header("Content-Type", format!("multipart/form-data; boundary={boundary}"))
            .body(body.clone());
        if auth {
            req = req.bearer_auth(TOKEN);
        }
        req.send()
    };
    assert_eq!(upload(false).await.unwrap().status().as_u16(), 401);
    let r = upload(true).await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let uploaded: Value = r.json().await.unwrap();
    let media_id = uploaded["id"].as_str().unwrap();

    let info: Value = t
        .http
        .get(format!("{}/graph/v23.0/{media_id}", t.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["mime_type"], "application/pdf");

    let (status, _) = t
        .send(&json!({"messaging_product":"whatsapp","to":ADA,"type":"document",
            "document":{"id": media_id, "filename":"statement.pdf","caption":"Your statement"}}))
        .await;
    assert_eq!(status, 200);
    let conversation = t.sim.conversation(&openline_domain::PhoneNumber::parse(ADA).unwrap());
    assert_eq!(conversation[0].media_id.as_deref(), Some(media_id));
    assert_eq!(conversation[0].text.as_deref(), Some("Your statement"));

    // The phone shows what it received, with no token; nobody else's phone can.
    let shown = t
        .http
        .get(format!("{}/phones/{ADA}/media/{media_id}", t.base))
        .send()
        .await
        .unwrap();
    assert_eq!(shown.status().as_u16(), 200);
    assert_eq!(shown.headers()["content-type"], "application/pdf");
    assert_eq!(shown.headers()["x-content-type-options"], "nosniff");
    assert_eq!(shown.bytes().await.unwrap().as_ref(), b"%PDF-1.4 statement");
    for path in [
        format!("/phones/447700900002/media/{media_id}"),
        format!("/phones/{ADA}/media/123456"),
    ] {
        let r = t.http.get(format!("{}{path}", t.base)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 404, "{path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "media_not_found");
    }
}
