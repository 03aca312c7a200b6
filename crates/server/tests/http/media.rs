//! Media end to end: a phone's picture is fetched from the (simulated) provider, verified and kept
//! in the blob store; a failed download is retried and never loses its message; the API serves the
//! bytes only to the message's organization; uploads are checked against WhatsApp's limits; an
//! agent's picture reaches the phone.

use crate::common::*;
use base64::Engine;
use openline_store::Backend;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::time::Duration;

crate::both_backends! {
    a_phones_picture_is_stored_and_served_only_to_its_organization => picture_stored_and_served;
    a_wrong_sha256_is_retried_and_the_message_is_kept => wrong_sha_retried;
    a_blob_store_failure_is_retried_until_the_picture_is_stored => blob_failure_then_stored;
    the_pywa_image_webhook_is_fetched_and_stored => pywa_image;
    an_agents_picture_reaches_the_simulated_phone => agent_sends_picture;
    uploads_are_checked_against_whatsapps_limits => upload_limits;
    the_web_composer_sends_a_picture_once_and_refuses_a_large_one => web_picture;
    after_the_last_attempt_the_file_is_failed_and_the_message_kept => last_attempt;
}

/// A small PNG-looking file (the simulator checks the type, not the pixels).
fn picture(seed: u8) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend((0..4096u32).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)));
    bytes
}

fn sha_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The media row of a message, as (state, attempts, last_error, sha256, stored_path).
type Row = (String, i64, Option<String>, Option<String>, Option<String>);

async fn media_row(app: &TestApp, message_id: &str) -> Option<Row> {
    let store = app.handle.as_ref().unwrap().state.store.clone();
    let id = message_id.to_owned();
    store
        .read(move |c| {
            c.query_opt(
                "select state, attempts, last_error, sha256, stored_path from media where message_id = ?",
                openline_store::params![&id],
            )?
            .map(|r| {
                Ok((
                    r.string(0)?,
                    r.i64(1)?,
                    r.opt_string(2)?,
                    r.opt_string(3)?,
                    r.opt_string(4)?,
                ))
            })
            .transpose()
        })
        .await
        .unwrap()
}

/// Polls the message's media row until `pred` holds.
async fn wait_media(app: &TestApp, message_id: &str, pred: impl Fn(&Row) -> bool) -> Row {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let row = media_row(app, message_id).await;
        if let Some(r) = row.as_ref().filter(|r| pred(r)) {
            return r.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "media never reached the expected state: {row:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The openline message id of the inbound message with this provider id.
async fn message_id_for(app: &TestApp, wamid: &str) -> String {
    let store = app.handle.as_ref().unwrap().state.store.clone();
    let wamid = wamid.to_owned();
    store
        .read(move |c| {
            c.query_one(
                "select id from messages where provider_message_id = ?",
                openline_store::params![&wamid],
            )?
            .string(0)
        })
        .await
        .unwrap()
}

/// The simulated phone sends a picture; returns the provider message id.
async fn phone_sends_picture(app: &TestApp, phone: &str, bytes: &[u8], caption: &str) -> String {
    let (status, body) = app
        .post(
            &format!("/sim/phones/{phone}/images"),
            json!({"to": BUSINESS_NUMBER, "mime_type": "image/png", "caption": caption,
                   "data_base64": base64::engine::general_purpose::STANDARD.encode(bytes)}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["webhook_status"], 200, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

/// Uploads a file to the simulated Graph API, as the business would; returns Meta's media id.
async fn upload_to_sim(app: &TestApp, bytes: &[u8], mime: &str) -> String {
    let (content_type, body) = openline_channels::cloud_api::media::multipart_body(bytes, mime, Some("f.png"));
    let res = app
        .http
        .post(app.at("/sim/graph/v23.0/100000000000001/media"))
        .bearer_auth(openline_sim::SimConfig::default().access_token)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    v["id"].as_str().unwrap().to_owned()
}

/// An image webhook from `from_digits` for the demo number.
fn image_webhook(wamid: &str, from_digits: &str, media_id: &str, sha256: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "200000000000001", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": BUSINESS_NUMBER, "phone_number_id": "100000000000001"},
            "contacts": [{"profile": {"name": "Webhook Tester"}, "wa_id": from_digits}],
            "messages": [{"from": from_digits, "id": wamid, "timestamp": "1700000000", "type": "image",
                "image": {"mime_type": "image/png", "sha256": sha256, "id": media_id, "caption": "statement"}}]
        }}]}]
    }))
    .unwrap()
}

async fn picture_stored_and_served(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in(AGENT).await;
    let bytes = picture(1);
    let wamid = phone_sends_picture(&app, ADA, &bytes, "my receipt").await;
    let message_id = message_id_for(&app, &wamid).await;
    let (_, _, _, sha, path) = wait_media(&app, &message_id, |r| r.0 == "stored").await;
    assert_eq!(sha.as_deref(), Some(sha_hex(&bytes).as_str()));
    let blobs = app.handle.as_ref().unwrap().state.blobs.clone();
    assert_eq!(
        blobs.get(&path.unwrap()).await.unwrap(),
        bytes,
        "the blob holds the same bytes"
    );
    assert_eq!(
        app.count("select count(*) from journal where kind = 'media.stored'")
            .await,
        1,
        "the archive records the stored file"
    );

    let metrics = app
        .http
        .get(app.at("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("openline_media_downloads_total{outcome=\"stored\"} 1"),
        "{metrics}"
    );

    // The API serves the same bytes, marked so a browser never sniffs them into something else.
    let res = app
        .http
        .get(app.at(&format!("/api/v1/media/{message_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/png");
    assert_eq!(res.headers()["x-content-type-options"], "nosniff");
    let disposition = res.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert!(disposition.starts_with("inline; filename="), "{disposition}");
    let served = res.bytes().await.unwrap();
    assert_eq!(served.as_ref(), bytes.as_slice());
    assert_eq!(sha_hex(&served), sha_hex(&bytes));

    // The thread in the web app shows the picture inline, from the same route.
    let (_, m) = app.get(&format!("/api/v1/messages/{message_id}")).await;
    let page = app
        .http
        .get(app.at(&format!("/messages/{}", m["conversation_id"].as_str().unwrap())))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains(&format!("src=\"/api/v1/media/{message_id}\"")),
        "the picture is inline: {page}"
    );

    // Another organization's user gets a 404, as for anything else of this organization.
    let eve = other_org_user(&app).await;
    let res = eve
        .get(app.at(&format!("/api/v1/media/{message_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"], "not_found");
    app.stop().await;
}

/// A signed-in admin of a second organization.
async fn other_org_user(app: &TestApp) -> reqwest::Client {
    let store = app.handle.as_ref().unwrap().state.store.clone();
    let hash = openline_server::auth::hash_password_blocking("another-org-password").unwrap();
    store
        .write(move |c| {
            let org = openline_store::orgs::create(c, "Other Bank", None, "on", 1)?;
            openline_store::users::create(
                c,
                &openline_store::users::NewUser {
                    org_id: &org.id,
                    team_id: None,
                    email: "eve@other.example",
                    name: "Eve",
                    role: openline_domain::Role::Admin,
                    password_hash: &hash,
                },
                1,
            )
        })
        .await
        .unwrap();
    let eve = reqwest::Client::builder().cookie_store(true).build().unwrap();
    let res = eve
        .post(app.at("/api/v1/auth/login"))
        .json(&json!({"email": "eve@other.example", "password": "another-org-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    eve
}

async fn wrong_sha_retried(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in(AGENT).await;
    let media_id = upload_to_sim(&app, &picture(2), "image/png").await;
    let wrong = base64::engine::general_purpose::STANDARD.encode([0x11u8; 32]);
    let res = app
        .post_signed_webhook(&image_webhook("wamid.WRONGSHA", "447700900001", &media_id, &wrong))
        .await;
    assert_eq!(res.status(), 200);
    let message_id = message_id_for(&app, "wamid.WRONGSHA").await;
    let (state, attempts, error, sha, _) = wait_media(&app, &message_id, |r| r.1 >= 2 && r.2.is_some()).await;
    assert_eq!(state, "pending", "still retried");
    assert!(attempts >= 2);
    assert!(error.unwrap().contains("SHA-256"));
    assert!(sha.is_none(), "nothing was stored");
    let (status, m) = app.get(&format!("/api/v1/messages/{message_id}")).await;
    assert_eq!(status, 200, "the message is kept: {m}");
    assert_eq!(m["kind"], "image");
    assert_eq!(m["body"], "statement");
    let (status, err) = app.get(&format!("/api/v1/media/{message_id}")).await;
    assert_eq!((status, err["error"].as_str()), (409, Some("media_not_ready")), "{err}");
    app.stop().await;
}

async fn blob_failure_then_stored(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in(AGENT).await;
    // The blob store's directory cannot be created: a file stands where it should be.
    let root = app.handle.as_ref().unwrap().state.blobs.root().to_path_buf();
    std::fs::write(&root, b"in the way").unwrap();
    let bytes = picture(3);
    let wamid = phone_sends_picture(&app, ADA, &bytes, "").await;
    let message_id = message_id_for(&app, &wamid).await;
    let (state, _, error, _, _) = wait_media(&app, &message_id, |r| r.2.is_some()).await;
    assert_eq!(state, "pending");
    assert!(error.unwrap().contains("blob store"));
    let (status, _) = app.get(&format!("/api/v1/messages/{message_id}")).await;
    assert_eq!(status, 200, "the message is kept while its file is missing");
    std::fs::remove_file(&root).unwrap();
    let (_, attempts, _, sha, _) = wait_media(&app, &message_id, |r| r.0 == "stored").await;
    assert!(attempts >= 2, "stored on a retry");
    assert_eq!(sha.as_deref(), Some(sha_hex(&bytes).as_str()));
    app.stop().await;
}

async fn pywa_image(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in(AGENT).await;
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/pywa/message.json");
    let cases: Value = serde_json::from_slice(&std::fs::read(root).unwrap()).unwrap();
    let mut body = cases["image"].clone();
    let bytes = picture(4);
    let media_id = upload_to_sim(&app, &bytes, "image/jpeg").await;
    let value = body.pointer_mut("/entry/0/changes/0/value").unwrap();
    value["metadata"]["phone_number_id"] = json!("100000000000001");
    // pywa's sha256 is a truncated example ("4654+8g="): unverifiable, so it is not held against the file.
    assert_eq!(value["messages"][0]["image"]["sha256"], "4654+8g=");
    value["messages"][0]["image"]["id"] = json!(media_id);
    let wamid = value["messages"][0]["id"].as_str().unwrap().to_owned();
    let res = app.post_signed_webhook(&serde_json::to_vec(&body).unwrap()).await;
    assert_eq!(res.status(), 200);
    let message_id = message_id_for(&app, &wamid).await;
    let (_, _, _, sha, _) = wait_media(&app, &message_id, |r| r.0 == "stored").await;
    assert_eq!(sha.as_deref(), Some(sha_hex(&bytes).as_str()));
    app.stop().await;
}

/// Uploads a file through openline's API; returns (status, body).
async fn upload(app: &TestApp, client: &reqwest::Client, bytes: &[u8], mime: &str) -> (u16, Value) {
    let (content_type, body) = openline_channels::cloud_api::media::multipart_body(bytes, mime, Some("photo.png"));
    let res = client
        .post(app.at("/api/v1/media"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn agent_sends_picture(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in(AGENT).await;
    app.ada_opts_in().await;
    let bytes = picture(5);
    let (status, uploaded) = upload(&app, &app.http, &bytes, "image/png").await;
    assert_eq!(status, 201, "{uploaded}");
    assert_eq!(uploaded["sha256"], sha_hex(&bytes));
    assert_eq!(uploaded["size_bytes"], bytes.len());
    let media_id = uploaded["id"].as_str().unwrap().to_owned();

    let ada = app.contact_id(ADA).await;
    let (status, sent) = app
        .post(
            "/api/v1/messages",
            json!({"contact_id": ada, "media": {"id": media_id, "caption": "your statement"}}),
        )
        .await;
    assert_eq!(status, 202, "{sent}");
    assert_eq!(sent["kind"], "image");
    assert_eq!(sent["body"], "your statement");
    let id = sent["id"].as_str().unwrap().to_owned();
    app.wait_for_message(&id, |m| {
        matches!(m["status"].as_str(), Some("sent" | "delivered" | "read"))
    })
    .await;

    // The phone got an image with the caption, and the simulated provider holds the same bytes.
    let (_, entries) = app.get(&format!("/sim/phones/{ADA}/messages")).await;
    let image = entries
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["direction"] == "from_business" && e["type"] == "image")
        .unwrap_or_else(|| panic!("no image reached the phone: {entries}"))
        .clone();
    assert_eq!(image["text"], "your statement");
    let provider_media = image["media_id"].as_str().unwrap();
    let token = openline_sim::SimConfig::default().access_token;
    let info: Value = app
        .http
        .get(app.at(&format!("/sim/graph/v23.0/{provider_media}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["sha256"], sha_hex(&bytes));
    let got = app
        .http
        .get(info["url"].as_str().unwrap())
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(got.as_ref(), bytes.as_slice());

    // The sent message's file is served by its message id too, and the archive has its SHA-256.
    let res = app
        .http
        .get(app.at(&format!("/api/v1/media/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.bytes().await.unwrap().as_ref(), bytes.as_slice());
    let store = app.handle.as_ref().unwrap().state.store.clone();
    let mid = id.clone();
    let archived = store
        .read(move |c| {
            c.query_one(
                "select payload from journal where kind = 'message.created' and subject_id = ?",
                openline_store::params![&mid],
            )?
            .string(0)
        })
        .await
        .unwrap();
    assert!(archived.contains(&sha_hex(&bytes)), "{archived}");

    // The same upload sent again: served for the second message too, and shown inline for both.
    let (status, again) = app
        .post(
            "/api/v1/messages",
            json!({"contact_id": ada, "media": {"id": media_id}}),
        )
        .await;
    assert_eq!(status, 202, "{again}");
    assert!(again["body"].is_null(), "no caption, no body: {again}");
    let id2 = again["id"].as_str().unwrap().to_owned();
    app.wait_for_message(&id2, |m| {
        matches!(m["status"].as_str(), Some("sent" | "delivered" | "read"))
    })
    .await;
    let res = app
        .http
        .get(app.at(&format!("/api/v1/media/{id2}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.bytes().await.unwrap().as_ref(), bytes.as_slice());
    let page = app
        .http
        .get(app.at(&format!("/messages/{}", sent["conversation_id"].as_str().unwrap())))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for m in [&id, &id2] {
        assert!(
            page.contains(&format!("src=\"/api/v1/media/{m}\"")),
            "{m} inline: {page}"
        );
    }

    // The EML export attaches the stored copy of the sent picture.
    app.sign_in("admin@demo.openline.dev").await;
    let conv = sent["conversation_id"].as_str().unwrap();
    let mbox = app
        .http
        .get(app.at(&format!("/api/v1/archive/export?format=eml&conversation_id={conv}")))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    let mut found = None;
    for raw in mail_parser::mailbox::mbox::MessageIterator::new(mbox.as_ref()) {
        let raw = raw.unwrap();
        let mail = mail_parser::MessageParser::default().parse(raw.contents()).unwrap();
        for a in mail.attachments() {
            use mail_parser::MimeHeaders;
            if a.attachment_name() == Some(format!("media-{id}.png").as_str()) {
                found = Some(a.contents().to_vec());
            }
        }
    }
    assert_eq!(
        found.as_deref(),
        Some(bytes.as_slice()),
        "the export carries the picture"
    );
    app.stop().await;
}

async fn upload_limits(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in(AGENT).await;
    let mut big = picture(6);
    big.resize(5 * 1024 * 1024 + 1, 0);
    let (status, err) = upload(&app, &app.http, &big, "image/png").await;
    assert_eq!((status, err["error"].as_str()), (413, Some("media_too_large")), "{err}");
    assert!(err["message"].as_str().unwrap().contains("5 MB"), "{err}");

    let (status, err) = upload(&app, &app.http, b"GIF89a....", "image/gif").await;
    assert_eq!(
        (status, err["error"].as_str()),
        (415, Some("media_type_unsupported")),
        "{err}"
    );

    let (status, err) = upload(&app, &app.http, b"<html><script>alert(1)</script>", "image/png").await;
    assert_eq!(
        (status, err["error"].as_str()),
        (415, Some("media_type_mismatch")),
        "{err}"
    );

    let mut sticker = b"RIFF\0\0\0\0WEBPVP8 ".to_vec();
    sticker.resize(100 * 1024 + 1, 0);
    let (status, err) = upload(&app, &app.http, &sticker, "image/webp").await;
    assert_eq!((status, err["error"].as_str()), (413, Some("media_too_large")), "{err}");

    let res = app
        .http
        .post(app.at("/api/v1/media"))
        .header("content-type", "multipart/form-data; boundary=x")
        .body("--x\r\nContent-Disposition: form-data; name=\"caption\"\r\n\r\nhi\r\n--x--\r\n")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"], "media_missing");
    assert_eq!(
        app.count("select count(*) from media").await,
        0,
        "nothing refused was stored"
    );

    // A file is sent only by its own organization.
    let (status, uploaded) = upload(&app, &app.http, &picture(7), "image/png").await;
    assert_eq!(status, 201);
    let media_id = uploaded["id"].as_str().unwrap().to_owned();
    let eve = other_org_user(&app).await;
    let res = eve
        .get(app.at(&format!("/api/v1/media/{media_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    app.phone_writes(ADA, "hello").await;
    let ada = app.contact_id(ADA).await;
    let (status, err) = app
        .post(
            "/api/v1/messages",
            json!({"contact_id": ada, "media": {"id": media_id}, "channel": "sms"}),
        )
        .await;
    // The demo's SMS number is on Twilio: there the file goes as an MMS (see `twilio_media`).
    assert_eq!((status, err["kind"].as_str()), (202, Some("image")), "{err}");
    let (status, err) = app
        .post(
            "/api/v1/messages",
            json!({"contact_id": ada, "media": {"id": "med_nope"}}),
        )
        .await;
    assert_eq!((status, err["error"].as_str()), (404, Some("not_found")), "{err}");
    app.stop().await;
}

/// The value of the hidden input `name` in the picture form of a page.
fn picture_form_field(html: &str, name: &str) -> String {
    let form = &html[html.find("id=\"picture-form\"").expect("the page has a picture form")..];
    let marker = format!("name=\"{name}\" value=\"");
    let start = form.find(&marker).unwrap() + marker.len();
    form[start..start + form[start..].find('"').unwrap()].to_owned()
}

/// A multipart body of text fields and one file part.
fn form_body(fields: &[(&str, &str)], file: Option<(&[u8], &str)>) -> (String, Vec<u8>) {
    let boundary = "openline-test-boundary-7f3a";
    let mut body = Vec::new();
    for (k, v) in fields {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n").as_bytes(),
        );
    }
    if let Some((bytes, mime)) = file {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.png\"\r\nContent-Type: {mime}\r\n\r\n")
                .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn web_picture(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in(AGENT).await;
    app.ada_opts_in().await;
    let ada = app.contact_id(ADA).await;
    let (_, inbox) = app.get("/api/v1/conversations").await;
    let conv = inbox["items"][0]["id"].as_str().unwrap().to_owned();

    let b = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = b
        .post(app.at("/login"))
        .header("origin", &app.url)
        .form(&[("email", AGENT), ("password", PASSWORD), ("next", "/messages")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let html = b
        .get(app.at(&format!("/messages/{conv}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains("accept=\"image/jpeg,image/png\""),
        "the + menu offers pictures"
    );
    assert!(html.contains("capture=\"environment\""), "with the camera on phones");
    let (csrf, key) = (
        picture_form_field(&html, "csrf"),
        picture_form_field(&html, "idempotency_key"),
    );

    let bytes = picture(8);
    let post = |file: Option<(Vec<u8>, &'static str)>| {
        let (b, ada, csrf, key, url, origin) = (
            b.clone(),
            ada.clone(),
            csrf.clone(),
            key.clone(),
            app.at("/compose/picture"),
            app.url.clone(),
        );
        async move {
            let fields = [
                ("csrf", csrf.as_str()),
                ("idempotency_key", key.as_str()),
                ("contact_id", ada.as_str()),
                ("channel", "whatsapp"),
                ("caption", "from the branch"),
            ];
            let (content_type, body) = form_body(&fields, file.as_ref().map(|(f, m)| (f.as_slice(), *m)));
            b.post(url)
                .header("origin", origin)
                .header("content-type", content_type)
                .body(body)
                .send()
                .await
                .unwrap()
        }
    };
    let res = post(Some((bytes.clone(), "image/png"))).await;
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    // A double click sends once.
    let res = post(Some((bytes.clone(), "image/png"))).await;
    assert_eq!(res.status(), 303);
    let (_, thread) = app.get(&format!("/api/v1/conversations/{conv}/messages")).await;
    let images: Vec<&Value> = thread["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["kind"] == "image" && m["direction"] == "out")
        .collect();
    assert_eq!(images.len(), 1, "{thread}");
    assert_eq!(images[0]["body"], "from the branch");
    let id = images[0]["id"].as_str().unwrap().to_owned();
    app.wait_for_message(&id, |m| {
        matches!(m["status"].as_str(), Some("sent" | "delivered" | "read"))
    })
    .await;
    let html = b
        .get(app.at(&format!("/messages/{conv}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        html.contains(&format!("src=\"/api/v1/media/{id}\"")),
        "the sent picture shows inline"
    );
    let res = b.get(app.at(&format!("/api/v1/media/{id}"))).send().await.unwrap();
    assert_eq!(res.bytes().await.unwrap().as_ref(), bytes.as_slice());

    // A picture over WhatsApp's 5 MB is refused with the reason, on a fresh form.
    let html = b
        .get(app.at(&format!("/messages/{conv}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let key2 = picture_form_field(&html, "idempotency_key");
    assert_ne!(key, key2);
    let mut big = picture(9);
    big.resize(5 * 1024 * 1024 - 1000, 0);
    big.extend(std::iter::repeat_n(0u8, 2000));
    let (content_type, body) = form_body(
        &[
            ("csrf", csrf.as_str()),
            ("idempotency_key", key2.as_str()),
            ("contact_id", ada.as_str()),
            ("channel", "whatsapp"),
        ],
        Some((&big, "image/png")),
    );
    let res = b
        .post(app.at("/compose/picture"))
        .header("origin", &app.url)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    assert!(res.text().await.unwrap().contains("5 MB"));
    // Without the form's token nothing is stored.
    let before = app.count("select count(*) from media").await;
    let (content_type, body) = form_body(
        &[("csrf", "wrong"), ("contact_id", ada.as_str()), ("channel", "whatsapp")],
        Some((&bytes, "image/png")),
    );
    let res = b
        .post(app.at("/compose/picture"))
        .header("origin", &app.url)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(app.count("select count(*) from media").await, before);
    app.stop().await;
}

async fn last_attempt(backend: Backend) {
    // Few, quick attempts, so the last one comes within the test.
    let db = openline_store::testing::TestDb::new(backend);
    let data = tempfile::tempdir().unwrap();
    let mut config = openline_server::config::Config {
        listen: "127.0.0.1:0".into(),
        data_dir: data.path().to_path_buf(),
        database_url: Some(db.url.to_string()),
        demo: true,
        ..openline_server::config::Config::default()
    };
    config.media.max_attempts = 3;
    config.media.retry_base_ms = 50;
    let handle = openline_server::start(config, std::sync::Arc::new(openline_domain::clock::SystemClock))
        .await
        .unwrap();
    let http = reqwest::Client::builder().cookie_store(true).build().unwrap();
    let at = |p: &str| format!("{}{p}", handle.url);
    let res = http
        .post(at("/api/v1/auth/login"))
        .json(&json!({"email": AGENT, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // A media id the provider does not know: every lookup is refused.
    let body = image_webhook("wamid.GONE", "447700900001", "999999999", "");
    let res = http
        .post(at("/webhooks/whatsapp"))
        .header("content-type", "application/json")
        .header(
            "x-hub-signature-256",
            openline_channels::sign_meta(APP_SECRET.as_bytes(), &body),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let store = handle.state.store.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let (message_id, attempts, error) = loop {
        let row = store
            .read(|c| {
                c.query_opt(
                    "select md.message_id, md.attempts, md.last_error from media md join messages m on m.id = md.message_id
                     where m.provider_message_id = 'wamid.GONE' and md.state = 'failed'",
                    &[],
                )?
                .map(|r| Ok((r.string(0)?, r.i64(1)?, r.opt_string(2)?)))
                .transpose()
            })
            .await
            .unwrap();
        if let Some(r) = row {
            break r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the download was never given up"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(attempts, 3);
    assert!(error.is_some());
    let res = http
        .get(at(&format!("/api/v1/media/{message_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"], "media_unavailable");
    let res = http
        .get(at(&format!("/api/v1/messages/{message_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "the message is kept");
    let m: Value = res.json().await.unwrap();
    let page = http
        .get(at(&format!("/messages/{}", m["conversation_id"].as_str().unwrap())))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("could not be fetched"), "the thread says so");
    handle.shutdown().await.unwrap();
    drop(db);
}
