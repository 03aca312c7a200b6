//! The archive through HTTP, as an admin drives it: a seeded conversation (opt-in, Ada writes, the
//! agent answers, Ada sends a photo) exported as EML round-trips through a mail parser with the same
//! messages and attachments; JSONL and CSV exports; administrative entries name the admin; legal
//! holds, the purge and the recording switch through the API; agents are refused.

use crate::common::*;
use mail_parser::MimeHeaders;
use openline_store::Backend;
use serde_json::{json, Value};

const ADMIN: &str = "admin@demo.openline.dev";

crate::both_backends! {
    an_exported_conversation_round_trips_through_a_mail_parser => eml_round_trip;
    admins_manage_holds_recording_and_purges_and_every_change_names_them => archive_admin;
}

async fn seeded_conversation(app: &TestApp) -> (String, String) {
    app.sign_in(AGENT).await;
    app.ada_opts_in().await;
    let ada = app.contact_id(ADA).await;
    app.phone_writes(ADA, "Hello, could you rebalance my portfolio?").await;
    let (status, sent) = app
        .send_text(&ada, "Certainly. From tomorrow, 60/40 as discussed.")
        .await;
    assert_eq!(status, 202, "{sent}");
    let (status, body) = app
        .post(
            &format!("/sim/phones/{ADA}/images"),
            json!({"to": BUSINESS_NUMBER, "mime_type": "image/png", "data_base64": "iVBORw0KGgo=", "caption": "my statement"}),
        )
        .await;
    assert_eq!((status, body["webhook_status"].as_i64()), (200, Some(200)), "{body}");
    let (_, convs) = app.get("/api/v1/conversations").await;
    let conv = convs["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["contact_id"] == ada.as_str())
        .unwrap_or_else(|| panic!("Ada's conversation: {convs}"))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (ada, conv)
}

async fn messages_of(app: &TestApp, conv: &str) -> Vec<Value> {
    let (status, page) = app
        .get(&format!("/api/v1/conversations/{conv}/messages?limit=200"))
        .await;
    assert_eq!(status, 200, "{page}");
    let mut items = page["items"].as_array().unwrap().clone();
    items.sort_by_key(|m| (m["created_at"].as_i64(), m["id"].as_str().map(str::to_owned)));
    items
}

async fn export(app: &TestApp, query: &str) -> (u16, String, reqwest::header::HeaderMap) {
    let res = app
        .http
        .get(app.at(&format!("/api/v1/archive/export?{query}")))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    (status, res.text().await.unwrap(), headers)
}

async fn eml_round_trip(backend: Backend) {
    let app = spawn_app(backend).await;
    let (ada, conv) = seeded_conversation(&app).await;
    let (status, _, _) = export(&app, "format=eml").await;
    assert_eq!(status, 403, "agents cannot export the archive");
    let stored = messages_of(&app, &conv).await;
    assert!(stored.len() >= 3, "{stored:?}");
    // The picture's file is fetched into the blob store; the export attaches that copy.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(15);
    while app.count("select count(*) from media where state = 'stored'").await < 1 {
        assert!(tokio::time::Instant::now() < deadline, "the picture was never stored");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    app.sign_in(ADMIN).await;
    let (status, mbox, headers) = export(&app, &format!("format=eml&contact_id={ada}")).await;
    assert_eq!(status, 200, "{mbox}");
    assert_eq!(headers["content-type"], "application/mbox");

    // Parse the mbox back: each e-mail is one conversation-day of Ada's.
    let mut transcript = String::new();
    let mut attachments: Vec<(String, String, Vec<u8>)> = Vec::new();
    let mut mails = 0;
    for raw in mail_parser::mailbox::mbox::MessageIterator::new(mbox.as_bytes()) {
        let raw = raw.unwrap();
        let mail = mail_parser::MessageParser::default()
            .parse(raw.contents())
            .expect("each export is an RFC 5322 message");
        mails += 1;
        assert_eq!(
            mail.header_raw("X-Openline-Conversation").map(str::trim),
            Some(conv.as_str())
        );
        let participants: Vec<String> = mail
            .from()
            .into_iter()
            .chain(mail.to())
            .flat_map(|a| a.iter())
            .filter_map(|a| a.address().map(str::to_owned))
            .collect();
        assert!(
            participants
                .iter()
                .any(|a| a == "447700900001@whatsapp.openline.invalid"),
            "Ada is a participant: {participants:?}"
        );
        assert!(
            participants.iter().any(|a| a == AGENT),
            "the agent who wrote is a participant: {participants:?}"
        );
        assert!(mail.subject().unwrap().contains("WhatsApp conversation"));
        transcript.push_str(&mail.body_text(0).unwrap());
        for a in mail.attachments() {
            let name = a.attachment_name().unwrap().to_owned();
            let content_type = a
                .content_type()
                .map(|t| format!("{}/{}", t.ctype(), t.subtype().unwrap_or_default()))
                .unwrap_or_default();
            attachments.push((name, content_type, a.contents().to_vec()));
        }
    }
    assert!(mails >= 1);

    // The same messages, in order, with their authors; each media message as an attachment.
    let mut at = 0;
    for m in &stored {
        if let Some(body) = m["body"].as_str() {
            let found = transcript[at..]
                .find(body)
                .unwrap_or_else(|| panic!("`{body}` missing or out of order in:\n{transcript}"));
            at += found + body.len();
        }
    }
    assert!(transcript.contains(&format!("<{AGENT}>: Certainly.")), "{transcript}");
    assert!(transcript.contains("<447700900001@whatsapp.openline.invalid>: Hello, could you rebalance"));
    let media: Vec<&Value> = stored.iter().filter(|m| !m["media"].is_null()).collect();
    assert_eq!(media.len(), 1, "{stored:?}");
    assert_eq!(attachments.len(), 1, "{attachments:?}");
    assert_eq!(
        attachments[0].0,
        format!("media-{}.png", media[0]["id"].as_str().unwrap())
    );
    assert_eq!(attachments[0].1, "image/png");
    assert_eq!(
        attachments[0].2,
        b"\x89PNG\r\n\x1a\n".to_vec(),
        "the attachment is the stored copy of the picture"
    );
    assert!(
        transcript.contains(&format!(
            "[attachment media-{}.png: image/png]",
            media[0]["id"].as_str().unwrap()
        )),
        "{transcript}"
    );

    // JSON Lines: the journal's own entries, chained; CSV: metadata without message text.
    let (status, jsonl, _) = export(&app, &format!("format=jsonl&conversation_id={conv}")).await;
    assert_eq!(status, 200);
    let entries: Vec<Value> = jsonl.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(entries.iter().any(|e| e["kind"] == "message.received"));
    assert!(entries.iter().all(|e| e["hash"].as_str().unwrap().len() == 64));
    let (status, csv, _) = export(&app, "format=csv").await;
    assert_eq!(status, 200);
    assert!(csv.starts_with("seq,at,kind,subject_id,"), "{csv}");
    assert!(!csv.contains("rebalance"), "CSV carries metadata only");
    let (status, err, _) = export(&app, "format=pdf").await;
    assert_eq!(status, 422);
    assert!(err.contains("invalid_export_format"), "{err}");
    let (status, _, _) = export(&app, "format=csv&org_id=org_not_mine").await;
    assert_eq!(status, 404);
    let (status, _, _) = export(&app, "format=csv&contact_id=ct_nobody").await;
    assert_eq!(status, 404, "an unknown contact is not an empty export");
}

async fn archive_admin(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in(AGENT).await;
    app.phone_writes(ADA, "first words").await;
    let ada = app.contact_id(ADA).await;
    let (status, _) = app
        .post(
            "/api/v1/archive/holds",
            json!({"scope": "contact", "subject_id": ada, "reason": "x"}),
        )
        .await;
    assert_eq!(status, 403, "agents cannot place holds");

    let me = app.sign_in(ADMIN).await;
    let admin_id = me["user"]["id"].as_str().unwrap().to_owned();

    // A hold on Ada, with a reason; a bad scope and an empty reason are refused.
    let (status, err) = app
        .post(
            "/api/v1/archive/holds",
            json!({"scope": "planet", "subject_id": ada, "reason": "x"}),
        )
        .await;
    assert_eq!((status, err["error"].as_str()), (422, Some("invalid_hold_scope")));
    let (status, err) = app
        .post(
            "/api/v1/archive/holds",
            json!({"scope": "contact", "subject_id": ada, "reason": "  "}),
        )
        .await;
    assert_eq!((status, err["error"].as_str()), (422, Some("invalid_hold_reason")));
    let (status, hold) = app
        .post(
            "/api/v1/archive/holds",
            json!({"scope": "contact", "subject_id": ada, "reason": "FCA complaint 2026-118"}),
        )
        .await;
    assert_eq!(status, 201, "{hold}");
    assert_eq!(hold["created_by"]["email"], ADMIN);
    let (_, active) = app.get("/api/v1/archive/holds?active=true").await;
    assert_eq!(active.as_array().unwrap().len(), 1);

    // The purge runs (nothing has expired yet) and is journaled only when it removes something.
    let (status, reports) = app.post("/api/v1/archive/purge", json!({"dry_run": true})).await;
    assert_eq!(status, 200, "{reports}");
    assert!(
        reports.as_array().unwrap().iter().all(|r| r["purged"] == 0),
        "{reports}"
    );

    let id = hold["id"].as_str().unwrap();
    let (status, released) = app
        .post(&format!("/api/v1/archive/holds/{id}/release"), json!({}))
        .await;
    assert_eq!(status, 200, "{released}");
    assert_eq!(released["released_by"]["email"], ADMIN);
    let (status, _) = app
        .post(&format!("/api/v1/archive/holds/{id}/release"), json!({}))
        .await;
    assert_eq!(status, 404, "a released hold cannot be released again");

    // Settings: retention validated; recording off keeps content out of the archive.
    let res = app
        .http
        .put(app.at("/api/v1/archive/settings"))
        .json(&json!({"retention_days": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let res = app
        .http
        .put(app.at("/api/v1/archive/settings"))
        .json(&json!({"retention_days": 3650, "recording": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let settings: Value = res.json().await.unwrap();
    assert_eq!(
        (settings["retention_days"].as_i64(), settings["recording"].as_bool()),
        (Some(3650), Some(false))
    );
    // The agents' sub-organization (where Ada's conversation lives) inherits it.
    app.phone_writes(ADA, "my account number is 12345678").await;
    let (_, subs) = app.get("/api/v1/archive/verify").await;
    assert!(
        subs.as_array().unwrap().iter().all(|r| r["problem"].is_null()),
        "every chain verifies: {subs}"
    );
    let mut all = Vec::new();
    for r in subs.as_array().unwrap() {
        let org = r["org_id"].as_str().unwrap();
        let (status, lines, _) = export(&app, &format!("format=jsonl&org_id={org}")).await;
        assert_eq!(status, 200);
        all.extend(lines.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()));
    }
    let received: Vec<&Value> = all.iter().filter(|e| e["kind"] == "message.received").collect();
    assert_eq!(received.len(), 2, "{received:?}");
    assert_eq!(received[0]["payload"]["message"]["body"], "first words");
    assert_eq!(received[1]["payload"]["message"]["body"], Value::Null);
    assert_eq!(received[1]["payload"]["content_recorded"], false);

    // The admin is named on each change they made.
    let changes: Vec<&Value> = all
        .iter()
        .filter(|e| {
            matches!(
                e["kind"].as_str(),
                Some("legal_hold.set" | "legal_hold.released" | "organization.settings_changed")
            )
        })
        .collect();
    assert_eq!(changes.len(), 4, "hold, release, retention, recording: {changes:?}");
    assert!(changes
        .iter()
        .all(|e| e["payload"]["actor"]["email"] == ADMIN && e["payload"]["actor"]["id"] == admin_id.as_str()));

    // Checkpoints need a signing key; without one the admin is told how to make one.
    let (status, err) = app.post("/api/v1/archive/checkpoints", json!({})).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (409, Some("archive_signing_key_missing"))
    );
}
