//! Media through Twilio end to end: a phone's MMS is fetched from the (simulated) Twilio with basic
//! auth through its CDN redirect, stored by SHA-256 and served to the agent; an agent's picture goes
//! out as a signed, expiring public link that Twilio fetches; forged and expired links are refused;
//! media URLs off Twilio's hosts are never fetched; a failing download is retried and the message
//! kept. And Twilio Content templates: registered with the status of WhatsApp's review that
//! Twilio's Content API reports, and only approved ones sent.

use crate::common::*;
use base64::Engine;
use openline_channels::twilio::signature::{sign_twilio_with, SignatureAlgorithm};
use openline_store::Backend;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::time::Duration;

crate::both_backends! {
    a_picture_from_a_phone_through_twilio_is_stored_with_its_sha256_and_served => inbound_picture;
    an_agents_picture_reaches_the_phone_through_twilio_by_a_signed_link => outbound_picture;
    forged_and_expired_public_media_links_are_refused => public_links_refused;
    media_urls_off_twilios_hosts_are_not_fetched_and_each_file_is_its_own_message => off_host_not_fetched;
    a_failing_twilio_download_is_retried_without_losing_the_message => failing_download_retried;
    a_twilio_template_is_registered_with_whatsapps_review_and_only_an_approved_one_is_sent => content_approval;
    pictures_go_both_ways_on_whatsapp_through_twilio => whatsapp_through_twilio;
}

const SMS_NUMBER: &str = "+15550002000";
const AUTH_TOKEN: &str = "sim-twilio-auth-token";
const SIM_ACCOUNT: &str = "AC00000000000000000000000000000001";

fn picture(seed: u8) -> Vec<u8> {
    let mut bytes = b"\x89PNG\r\n\x1a\n".to_vec();
    bytes.extend((0..4096u32).map(|i| (i as u8).wrapping_mul(17).wrapping_add(seed)));
    bytes
}

fn sha_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// (message id, state, attempts, last_error, sha256, stored_path) of the media rows of messages
/// whose provider id starts with `sid`, in provider id order.
type Row = (String, String, i64, Option<String>, Option<String>, Option<String>);

async fn media_rows(app: &TestApp, sid: &str) -> Vec<Row> {
    let store = app.handle.as_ref().unwrap().state.store.clone();
    let pattern = format!("{sid}%");
    store
        .read(move |c| {
            c.query(
                "select m.id, md.state, md.attempts, md.last_error, md.sha256, md.stored_path
                 from messages m join media md on md.message_id = m.id
                 where m.provider_message_id like ? order by m.provider_message_id",
                openline_store::params![&pattern],
            )?
            .iter()
            .map(|r| {
                Ok((
                    r.string(0)?,
                    r.string(1)?,
                    r.i64(2)?,
                    r.opt_string(3)?,
                    r.opt_string(4)?,
                    r.opt_string(5)?,
                ))
            })
            .collect()
        })
        .await
        .unwrap()
}

async fn wait_rows(app: &TestApp, sid: &str, pred: impl Fn(&[Row]) -> bool) -> Vec<Row> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let rows = media_rows(app, sid).await;
        if pred(&rows) {
            return rows;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "media never reached the expected state: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Posts an inbound Twilio webhook signed as Twilio signs it (HMAC-SHA1 under the auth token).
async fn post_signed(app: &TestApp, params: &[(String, String)]) -> (u16, Value) {
    let signature = sign_twilio_with(
        SignatureAlgorithm::HmacSha1,
        AUTH_TOKEN,
        &app.at("/webhooks/twilio"),
        params,
    );
    let res = app
        .http
        .post(app.at("/webhooks/twilio"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-twilio-signature", signature)
        .body(serde_urlencoded::to_string(params).unwrap())
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

fn mms_params(sid: &str, body: &str, media: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut p: Vec<(String, String)> = vec![
        ("MessageSid".into(), sid.into()),
        ("SmsSid".into(), sid.into()),
        ("AccountSid".into(), SIM_ACCOUNT.into()),
        ("From".into(), "+447700900077".into()),
        ("To".into(), SMS_NUMBER.into()),
        ("Body".into(), body.into()),
        ("NumMedia".into(), media.len().to_string()),
        ("ApiVersion".into(), "2010-04-01".into()),
    ];
    for (i, (url, content_type)) in media.iter().enumerate() {
        p.push((format!("MediaUrl{i}"), (*url).into()));
        p.push((format!("MediaContentType{i}"), (*content_type).into()));
    }
    p
}

/// The simulator's Twilio Media URL of `media_sid` (basic auth, then a CDN redirect).
fn sim_media_url(app: &TestApp, message_sid: &str, media_sid: &str) -> String {
    app.at(&format!(
        "/sim/twilio/2010-04-01/Accounts/{SIM_ACCOUNT}/Messages/{message_sid}/Media/{media_sid}"
    ))
}

async fn inbound_picture(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in(AGENT).await;
    let bytes = picture(1);
    let (status, sent) = app
        .post(
            &format!("/sim/phones/{NORA}/mms"),
            json!({"to": SMS_NUMBER, "text": "my new card",  "mime_type": "image/png",
                "data_base64": base64::engine::general_purpose::STANDARD.encode(&bytes)}),
        )
        .await;
    assert_eq!((status, sent["webhook_status"].as_i64()), (200, Some(200)), "{sent}");
    let sid = sent["id"].as_str().unwrap().to_owned();
    let rows = wait_rows(&app, &sid, |r| r.len() == 1 && r[0].1 == "stored").await;
    let (message_id, _, _, _, sha, path) = rows[0].clone();
    assert_eq!(sha.as_deref(), Some(sha_hex(&bytes).as_str()));
    let blobs = app.handle.as_ref().unwrap().state.blobs.clone();
    assert_eq!(blobs.get(&path.unwrap()).await.unwrap(), bytes);

    // The agent sees a picture with its text as the caption, and gets the same bytes.
    let (status, m) = app.get(&format!("/api/v1/messages/{message_id}")).await;
    assert_eq!(status, 200, "{m}");
    assert_eq!(
        (m["kind"].as_str(), m["body"].as_str()),
        (Some("image"), Some("my new card")),
        "{m}"
    );
    assert_eq!(m["provider"], "twilio");
    let res = app
        .http
        .get(app.at(&format!("/api/v1/media/{message_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "image/png");
    assert_eq!(res.bytes().await.unwrap().to_vec(), bytes);

    // The archive records the stored file with its hash, in the transaction that stored it.
    let store = app.handle.as_ref().unwrap().state.store.clone();
    let payload: Value = store
        .read(|c| {
            let r = c.query_one("select payload from journal where kind = 'media.stored'", &[])?;
            Ok(serde_json::from_str(&r.string(0)?).unwrap())
        })
        .await
        .unwrap();
    assert_eq!(payload["sha256"], sha_hex(&bytes));
    assert_eq!(payload["message_id"], message_id.as_str());
    // Without the account's credentials the simulated Twilio media URL refuses, as Twilio's does.
    let media_url = store
        .read(move |c| {
            c.query_one(
                "select provider_media_id from media where message_id = ?",
                openline_store::params![&message_id],
            )?
            .string(0)
        })
        .await
        .unwrap();
    let anonymous = reqwest::get(&media_url).await.unwrap();
    assert_eq!(anonymous.status(), 401);
    app.stop().await;
}

/// Uploads a file through openline's API; returns (status, body).
async fn upload(app: &TestApp, bytes: &[u8], mime: &str, name: &str) -> (u16, Value) {
    let (content_type, body) = openline_channels::cloud_api::media::multipart_body(bytes, mime, Some(name));
    let res = app
        .http
        .post(app.at("/api/v1/media"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn outbound_picture(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in(AGENT).await;
    let nora = app.contact_id(NORA).await;
    app.request_opt_in(NORA).await;
    app.wait_for_consent(NORA, "not_on_whatsapp").await;
    let bytes = picture(9);
    let (status, uploaded) = upload(&app, &bytes, "image/png", "card.png").await;
    assert_eq!(status, 201, "{uploaded}");
    let media_id = uploaded["id"].as_str().unwrap().to_owned();

    let (status, sent) = app
        .post(
            "/api/v1/messages",
            json!({"contact_id": nora, "channel": "sms", "media": {"id": media_id, "caption": "your new card"}}),
        )
        .await;
    assert_eq!(status, 202, "{sent}");
    assert_eq!(sent["kind"], "image");
    let id = sent["id"].as_str().unwrap().to_owned();
    let m = app
        .wait_for_message(&id, |m| m["status"] == "delivered" || m["status"] == "failed")
        .await;
    assert_eq!(m["status"], "delivered", "{m}");
    assert_eq!(m["provider"], "twilio");

    // Twilio (the simulator) fetched the signed link: the phone shows the picture with its caption.
    let (_, entries) = app.get(&format!("/sim/phones/{NORA}/messages")).await;
    let entry = entries
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|e| e["direction"] == "from_business")
        .unwrap()
        .clone();
    assert_eq!(
        (entry["type"].as_str(), entry["text"].as_str()),
        (Some("image"), Some("your new card")),
        "{entry}"
    );
    let on_phone = app
        .http
        .get(app.at(&format!(
            "/sim/phones/{NORA}/media/{}",
            entry["media_id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(on_phone.status(), 200);
    assert_eq!(on_phone.bytes().await.unwrap().to_vec(), bytes);

    // An MMS carries at most 5 MB: a larger file WhatsApp would take is refused before it is stored.
    let mut video = b"\x00\x00\x00\x18ftypmp42".to_vec();
    video.resize(6 * 1024 * 1024, 7);
    let (status, uploaded) = upload(&app, &video, "video/mp4", "clip.mp4").await;
    assert_eq!(status, 201, "{uploaded}");
    let before = app.count("select count(*) from messages").await;
    let (status, refused) = app
        .post(
            "/api/v1/messages",
            json!({"contact_id": nora, "channel": "sms", "media": {"id": uploaded["id"]}}),
        )
        .await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (413, Some("media_too_large_for_mms")),
        "{refused}"
    );
    assert_eq!(
        app.count("select count(*) from messages").await,
        before,
        "nothing stored"
    );
    app.stop().await;
}

async fn public_links_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in(AGENT).await;
    let bytes = picture(3);
    let (_, uploaded) = upload(&app, &bytes, "image/png", "p.png").await;
    let media_id = uploaded["id"].as_str().unwrap().to_owned();
    let config = app.handle.as_ref().unwrap().state.config.clone();
    let now = openline_domain::clock::Clock::now(&openline_domain::clock::SystemClock);
    let anonymous = reqwest::Client::new();
    let get = |url: String| {
        let anonymous = anonymous.clone();
        async move {
            let res = anonymous.get(url).send().await.unwrap();
            let status = res.status().as_u16();
            let body = res.bytes().await.unwrap().to_vec();
            (status, body)
        }
    };
    // A link openline made works with no session at all.
    let good = openline_server::media_links::link(&config, &media_id, now).unwrap();
    assert!(good.starts_with(&app.at("/media/public/")), "{good}");
    assert_eq!(get(good.clone()).await, (200, bytes.clone()));
    let code = |body: &[u8]| serde_json::from_slice::<Value>(body).unwrap()["error"].clone();

    // Expired: signed by openline, but more than an hour ago.
    let old = openline_server::media_links::link(&config, &media_id, now - 2 * 3600 * 1000).unwrap();
    let (status, body) = get(old).await;
    assert_eq!((status, code(&body)), (403, json!("media_link_expired")));
    // Forged: another signature, a stretched expiry, another file's link, or none at all.
    let url = url::Url::parse(&good).unwrap();
    let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    let (exp, sig) = (q["exp"].clone(), q["sig"].clone());
    let base = app.at(&format!("/media/public/{media_id}"));
    let (_, other) = upload(&app, &picture(4), "image/png", "q.png").await;
    let forged = [
        format!("{base}?exp={exp}&sig={}", "0".repeat(64)),
        format!("{base}?exp={}&sig={sig}", exp.parse::<i64>().unwrap() + 86_400),
        format!(
            "{}?exp={exp}&sig={sig}",
            app.at(&format!("/media/public/{}", other["id"].as_str().unwrap()))
        ),
        base.clone(),
        format!("{base}?exp=&sig="),
    ];
    for url in forged {
        let (status, body) = get(url.clone()).await;
        assert_eq!((status, code(&body)), (403, json!("media_link_invalid")), "{url}");
    }
    // A file a contact sent is never public, even with a valid signature.
    let store = app.handle.as_ref().unwrap().state.store.clone();
    let inbound_id = store
        .write(|c| {
            let org = openline_store::orgs::find_by_name(c, openline_server::demo::DEMO_ORG)?.unwrap();
            c.execute(
                "insert into media (id, org_id, direction, provider, provider_media_id, state, attempts, next_attempt_at,
                     created_at, updated_at) values ('med_inbound_test', ?, 'in', 'twilio', 'x', 'failed', 0, 0, 0, 0)",
                openline_store::params![&org.id],
            )?;
            Ok("med_inbound_test".to_owned())
        })
        .await
        .unwrap();
    let signed = openline_server::media_links::link(&config, &inbound_id, now).unwrap();
    assert_eq!(get(signed).await.0, 404);
    app.stop().await;
}

async fn off_host_not_fetched(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in(AGENT).await;
    let elsewhere = wiremock::MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_bytes(picture(0)))
        .mount(&elsewhere)
        .await;
    let sim = app.handle.as_ref().unwrap().sim.clone().unwrap();
    let good = picture(6);
    let media_sid = "ME000000000000000000000000000000a1";
    sim.store_twilio_media(media_sid, "image/png", good.clone());
    let sid = "MM000000000000000000000000000000a1";
    // The first URL looks like Twilio's but is on another host; the second is Twilio's (the simulator's).
    let off_host = format!(
        "{}/2010-04-01/Accounts/{SIM_ACCOUNT}/Messages/{sid}/Media/ME1",
        elsewhere.uri()
    );
    let on_host = sim_media_url(&app, sid, media_sid);
    let params = mms_params(sid, "two files", &[(&off_host, "image/png"), (&on_host, "image/png")]);
    let (status, body) = post_signed(&app, &params).await;
    assert_eq!(status, 200, "{body}");
    let rows = wait_rows(&app, sid, |r| r.len() == 2 && r[0].1 == "failed" && r[1].1 == "stored").await;
    // One message per file: the first carries the text, the second is its own picture.
    assert!(
        rows[0].3.as_deref().unwrap_or_default().contains("does not fetch"),
        "{rows:?}"
    );
    assert_eq!(rows[0].2, 1, "refused once, not retried: {rows:?}");
    assert_eq!(rows[1].4.as_deref(), Some(sha_hex(&good).as_str()));
    assert!(
        elsewhere.received_requests().await.unwrap().is_empty(),
        "the off-host URL was never requested"
    );
    let (_, first) = app.get(&format!("/api/v1/messages/{}", rows[0].0)).await;
    assert_eq!(
        (first["kind"].as_str(), first["body"].as_str()),
        (Some("image"), Some("two files")),
        "{first}"
    );
    let (_, second) = app.get(&format!("/api/v1/messages/{}", rows[1].0)).await;
    assert_eq!(second["body"], Value::Null, "{second}");
    // Redelivered, the webhook stores nothing twice.
    let (status, _) = post_signed(&app, &params).await;
    assert_eq!(status, 200);
    assert_eq!(media_rows(&app, sid).await.len(), 2);
    assert_eq!(
        app.count("select count(*) from messages where provider = 'twilio' and direction = 'in'")
            .await,
        2
    );
    app.stop().await;
}

async fn failing_download_retried(backend: Backend) {
    let app = spawn_app_configured(backend, |c| {
        c.media.retry_base_ms = 50;
        c.media.retry_max_ms = 100;
    })
    .await;
    app.sign_in(AGENT).await;
    let sim = app.handle.as_ref().unwrap().sim.clone().unwrap();
    let sid = "MM000000000000000000000000000000b2";
    let media_sid = "ME000000000000000000000000000000b2";
    // Twilio does not have the file yet (404): the download fails and is tried again.
    let params = mms_params(sid, "", &[(&sim_media_url(&app, sid, media_sid), "image/png")]);
    let (status, body) = post_signed(&app, &params).await;
    assert_eq!(status, 200, "{body}");
    let rows = wait_rows(&app, sid, |r| r.len() == 1 && r[0].2 >= 2).await;
    assert_eq!(rows[0].1, "pending", "{rows:?}");
    assert!(rows[0].3.as_deref().unwrap_or_default().contains("404"), "{rows:?}");
    let (status, m) = app.get(&format!("/api/v1/messages/{}", rows[0].0)).await;
    assert_eq!(
        (status, m["kind"].as_str()),
        (200, Some("image")),
        "the message is kept: {m}"
    );
    // Once Twilio serves it, the next attempt stores it.
    let bytes = picture(8);
    sim.store_twilio_media(media_sid, "image/png", bytes.clone());
    let rows = wait_rows(&app, sid, |r| r.len() == 1 && r[0].1 == "stored").await;
    assert_eq!(rows[0].4.as_deref(), Some(sha_hex(&bytes).as_str()));
    assert_eq!(
        app.count("select count(*) from journal where kind = 'media.stored'")
            .await,
        1
    );
    app.stop().await;
}

/// A WhatsApp number on Twilio (the simulator's WhatsApp number, reached through its Twilio API) in
/// the demo's root organization, and Dan, who agreed to hear from it: (sender id, Dan's contact id).
async fn twilio_whatsapp_setup(app: &TestApp) -> (String, String) {
    let store = app.handle.as_ref().unwrap().state.store.clone();
    store
        .write(|c| {
            let root = openline_store::orgs::find_by_name(c, openline_server::demo::DEMO_ORG)?.unwrap();
            let sender = openline_store::senders::create(
                c,
                &openline_store::senders::NewSender {
                    org_id: &root.id,
                    channel: openline_domain::Channel::Whatsapp,
                    provider: openline_domain::ProviderKind::Twilio,
                    phone_number: "+15550001000",
                    phone_number_id: "whatsapp:+15550001000",
                    waba_id: None,
                    display_name: "Demo Bank via Twilio",
                    throughput_per_s: 10,
                },
                0,
            )?;
            let contact = openline_store::contacts::create(c, &root.id, "+447700900002", Some("Dan"), 0)?;
            let now = openline_domain::clock::Clock::now(&openline_domain::clock::SystemClock);
            openline_store::consent::append(
                c,
                &openline_store::consent::NewConsentEvent {
                    org_id: &root.id,
                    contact_id: &contact.id,
                    kind: "opted_in",
                    actor_user_id: None,
                    message_id: None,
                    provider_message_id: None,
                    evidence: &json!({"source": "test"}),
                    at: now,
                },
            )?;
            Ok((sender.id, contact.id))
        })
        .await
        .unwrap()
}

async fn content_approval(backend: Backend) {
    const PENDING: &str = "HX11111111111111111111111111111111";
    const REJECTED: &str = "HX22222222222222222222222222222222";
    let app = spawn_app_configured_with_sim(
        backend,
        |_| {},
        |sim| {
            for (sid, name, approval) in [(PENDING, "statement_ready", "pending"), (REJECTED, "promo", "rejected")] {
                sim.twilio_contents.push(openline_sim::SimTwilioContent {
                    sid: sid.into(),
                    friendly_name: name.into(),
                    language: "en".into(),
                    body: "Hello {{1}}".into(),
                    whatsapp_approval: approval.into(),
                });
            }
        },
    )
    .await;
    let (sender, dan) = twilio_whatsapp_setup(&app).await;
    app.sign_in("admin@demo.openline.dev").await;
    let register = |name: &str, sid: &str| {
        json!({"sender_id": sender, "name": name, "language": "en", "category": "utility", "content_sid": sid,
            "components": [{"type": "body", "text": "Hello {{1}}, your statement is ready."}]})
    };
    let (status, approved) = app
        .post(
            "/api/v1/templates",
            register("appointment_reminder", "HXb5b62575e6e4ff6129ad7c8efe1f983e"),
        )
        .await;
    assert_eq!(
        (status, approved["status"]["state"].as_str()),
        (201, Some("approved")),
        "{approved}"
    );
    let (status, pending) = app
        .post("/api/v1/templates", register("statement_ready", PENDING))
        .await;
    assert_eq!(
        (status, pending["status"]["state"].as_str()),
        (201, Some("pending")),
        "{pending}"
    );
    let (status, rejected) = app.post("/api/v1/templates", register("promo", REJECTED)).await;
    assert_eq!(
        (status, rejected["status"]["state"].as_str()),
        (201, Some("rejected")),
        "{rejected}"
    );
    // A SID the Twilio account does not hold is not registered at all.
    let (status, unknown) = app
        .post(
            "/api/v1/templates",
            register("other", "HX33333333333333333333333333333333"),
        )
        .await;
    assert_eq!(
        (status, unknown["error"].as_str()),
        (422, Some("content_sid_unknown")),
        "{unknown}"
    );

    // Only the approved one is sent; the pending one is refused before anything is stored.
    let (status, refused) = app
        .post(
            "/api/v1/messages",
            json!({"contact_id": dan, "template": {"name": "statement_ready", "language": "en", "parameters": ["Dan"]}}),
        )
        .await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (422, Some("template_not_approved")),
        "{refused}"
    );
    let (status, sent) = app
        .post(
            "/api/v1/messages",
            json!({"contact_id": dan, "template": {"name": "appointment_reminder", "language": "en",
                "parameters": ["Dan"]}}),
        )
        .await;
    assert_eq!(status, 202, "{sent}");
    app.stop().await;
}

async fn whatsapp_through_twilio(backend: Backend) {
    // The simulator has no WhatsApp-through-Twilio phone to open its own window: it does not enforce it.
    let app = spawn_app_configured_with_sim(backend, |_| {}, |sim| sim.enforce_window = false).await;
    let (_, dan) = twilio_whatsapp_setup(&app).await;
    app.sign_in("admin@demo.openline.dev").await;
    // Dan sends a picture over WhatsApp through Twilio (which keeps it as a Media resource).
    let sim = app.handle.as_ref().unwrap().sim.clone().unwrap();
    let incoming = picture(11);
    let (sid, media_sid) = (
        "MM000000000000000000000000000000c3",
        "ME000000000000000000000000000000c3",
    );
    sim.store_twilio_media(media_sid, "image/jpeg", incoming.clone());
    let mut params = mms_params(sid, "", &[(&sim_media_url(&app, sid, media_sid), "image/jpeg")]);
    for (name, value) in params.iter_mut() {
        match name.as_str() {
            "From" => *value = "whatsapp:+447700900002".into(),
            "To" => *value = "whatsapp:+15550001000".into(),
            _ => {}
        }
    }
    params.push(("ProfileName".into(), "Dan".into()));
    let (status, body) = post_signed(&app, &params).await;
    assert_eq!(status, 200, "{body}");
    let rows = wait_rows(&app, sid, |r| r.len() == 1 && r[0].1 == "stored").await;
    assert_eq!(rows[0].4.as_deref(), Some(sha_hex(&incoming).as_str()));
    let (_, m) = app.get(&format!("/api/v1/messages/{}", rows[0].0)).await;
    assert_eq!(m["kind"], "image", "{m}");

    // The reply with a picture goes out through Twilio as WhatsApp media, fetched from the signed link.
    let outgoing = picture(12);
    let (status, uploaded) = upload(&app, &outgoing, "image/png", "reply.png").await;
    assert_eq!(status, 201, "{uploaded}");
    let (status, sent) = app
        .post(
            "/api/v1/messages",
            json!({"contact_id": dan, "media": {"id": uploaded["id"], "caption": "here is yours"}}),
        )
        .await;
    assert_eq!(status, 202, "{sent}");
    let id = sent["id"].as_str().unwrap().to_owned();
    let m = app
        .wait_for_message(&id, |m| {
            matches!(m["status"].as_str(), Some("delivered" | "read" | "failed"))
        })
        .await;
    assert_ne!(m["status"], "failed", "{m}");
    assert_eq!(m["provider"], "twilio");
    let (_, entries) = app.get("/sim/phones/+447700900002/messages").await;
    let entry = entries
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|e| e["direction"] == "from_business")
        .unwrap()
        .clone();
    assert_eq!(
        (entry["channel"].as_str(), entry["type"].as_str()),
        (Some("whatsapp"), Some("image")),
        "{entry}"
    );
    assert_eq!(entry["text"], "here is yours");
    let on_phone = app
        .http
        .get(app.at(&format!(
            "/sim/phones/+447700900002/media/{}",
            entry["media_id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(on_phone.bytes().await.unwrap().to_vec(), outgoing);
    app.stop().await;
}
