//! WhatsApp's system messages and account events, from the real fixture bodies signed and posted to
//! `/webhooks/whatsapp`: a contact who changed number is moved (same contact, same thread) with a
//! notice and a journal entry, never merged into another contact; an identity change is flagged in
//! the thread; account, quality and preference events are listed to admins of the organizations
//! they concern, and to nobody else.

use crate::common::*;
use openline_domain::clock::{Clock, ManualClock};
use openline_store::Backend;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

crate::both_backends! {
    a_changed_number_moves_the_contact_with_a_notice => number_change;
    a_number_another_contact_has_is_not_merged => number_taken;
    an_identity_change_warns_the_agents => identity_change;
    provider_events_are_listed_to_their_organizations_admins_only => provider_events;
    a_system_message_neither_opens_the_window_nor_releases_held_messages => system_message_and_window;
    a_number_change_reaches_live_clients_and_signed_webhooks => number_change_is_announced;
}

const ADMIN: &str = "admin@demo.openline.dev";
const DEMO_PHONE_NUMBER_ID: &str = "100000000000001";
const DEMO_WABA_ID: &str = "200000000000001";

fn fixture(file: &str, case: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/fixtures/pywa")
        .join(file);
    let cases: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    cases[case].clone()
}

/// Points the body at the demo account (and number, when it names one).
fn to_demo(mut body: Value) -> Value {
    for e in body["entry"].as_array_mut().unwrap() {
        e["id"] = Value::from(DEMO_WABA_ID);
        for ch in e["changes"].as_array_mut().unwrap() {
            if let Some(md) = ch.pointer_mut("/value/metadata").and_then(Value::as_object_mut) {
                md.insert("phone_number_id".into(), Value::from(DEMO_PHONE_NUMBER_ID));
            }
        }
    }
    body
}

/// The fixture's system message, sent by `from` (digits), for the demo number.
fn system_body(case: &str, from: &str, new_wa_id: Option<&str>) -> Vec<u8> {
    let mut body = to_demo(fixture("system.json", case));
    let value = body.pointer_mut("/entry/0/changes/0/value").unwrap();
    if let Some(contacts) = value.get_mut("contacts").and_then(Value::as_array_mut) {
        contacts[0]["wa_id"] = Value::from(from);
    }
    let message = value.pointer_mut("/messages/0").unwrap();
    message["from"] = Value::from(from);
    if let Some(w) = new_wa_id {
        message["system"]["wa_id"] = Value::from(w);
    }
    serde_json::to_vec(&body).unwrap()
}

/// [`system_body`], dated `at_ms` (the fixtures carry their own, long-past timestamps).
fn system_body_at(case: &str, from: &str, new_wa_id: Option<&str>, wamid: &str, at_ms: i64) -> Vec<u8> {
    let mut body: Value = serde_json::from_slice(&system_body(case, from, new_wa_id)).unwrap();
    let message = body.pointer_mut("/entry/0/changes/0/value/messages/0").unwrap();
    message["timestamp"] = Value::from((at_ms / 1000).to_string());
    message["id"] = Value::from(wamid);
    serde_json::to_vec(&body).unwrap()
}

async fn post_ok(app: &TestApp, body: &[u8]) {
    let res = app.post_signed_webhook(body).await;
    let status = res.status();
    assert_eq!(status, 200, "{}", res.text().await.unwrap());
}

/// The contact's thread (the demo shows one per contact here) and its messages.
async fn thread_of(app: &TestApp, contact_id: &str) -> (String, Vec<Value>) {
    let (_, inbox) = app.get("/api/v1/conversations?limit=200").await;
    let conv = inbox["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["contact_id"] == contact_id)
        .unwrap_or_else(|| panic!("a thread for {contact_id}: {inbox}"))["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, page) = app
        .get(&format!("/api/v1/conversations/{conv}/messages?limit=200"))
        .await;
    (conv, page["items"].as_array().unwrap().clone())
}

fn notices(messages: &[Value]) -> Vec<String> {
    messages
        .iter()
        .filter(|m| m["kind"] == "notice")
        .map(|m| m["body"].as_str().unwrap().to_owned())
        .collect()
}

async fn journal(app: &TestApp, kind: &'static str) -> Vec<Value> {
    let store = app.handle.as_ref().unwrap().state.store.clone();
    let payloads = store
        .read(move |c| {
            c.query(
                "select payload from journal where kind = ? order by at, seq",
                &[kind.into()],
            )?
            .iter()
            .map(|r| r.string(0))
            .collect::<Result<Vec<String>, _>>()
        })
        .await
        .unwrap();
    payloads.iter().map(|p| serde_json::from_str(p).unwrap()).collect()
}

async fn number_change(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in(AGENT).await;
    post_ok(
        &app,
        &text_webhook("wamid.BEFORE", "447700900001", "Hello from my old phone"),
    )
    .await;
    let ada = app.contact_id(ADA).await;
    let (conv, _) = thread_of(&app, &ada).await;

    let change = system_body("phone_number_change", "447700900001", Some("447700900077"));
    post_ok(&app, &change).await;
    // Meta retries: the same change a second time changes nothing more.
    post_ok(&app, &change).await;

    let (_, contact) = app.get(&format!("/api/v1/contacts/{ada}")).await;
    assert_eq!(contact["phone"], "+447700900077", "{contact}");
    let (same_conv, messages) = thread_of(&app, &ada).await;
    assert_eq!(same_conv, conv, "the history stays in the same thread");
    assert_eq!(
        notices(&messages),
        ["Ada Accepts changed their WhatsApp number from +447700900001 to +447700900077. Messages now go to the new number."]
    );
    let entries = journal(&app, "contact.number_changed").await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["contact_id"], ada.as_str());
    assert_eq!(entries[0]["old_phone"], "+447700900001");
    assert_eq!(entries[0]["new_phone"], "+447700900077");

    // Her next message, from the new number, lands on the same contact and thread.
    post_ok(
        &app,
        &text_webhook("wamid.AFTER", "447700900077", "Hello from my new phone"),
    )
    .await;
    let (after_conv, messages) = thread_of(&app, &ada).await;
    assert_eq!(after_conv, conv);
    assert!(
        messages.iter().any(|m| m["body"] == "Hello from my new phone"),
        "{messages:?}"
    );
    assert_eq!(
        app.count("select count(*) from contacts where phone in ('+447700900077', '+447700900001')")
            .await,
        1,
        "no second contact for either number"
    );
    app.stop().await;
}

async fn number_taken(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in(AGENT).await;
    post_ok(&app, &text_webhook("wamid.OLD", "447700900001", "Hi")).await;
    let ada = app.contact_id(ADA).await;
    let nora = app.contact_id(NORA).await;
    // Ada says she moved to Nora's number: two contacts are never merged behind the agents' backs.
    post_ok(
        &app,
        &system_body("phone_number_change", "447700900001", Some("447700900004")),
    )
    .await;
    let (_, contact) = app.get(&format!("/api/v1/contacts/{ada}")).await;
    assert_eq!(contact["phone"], ADA, "{contact}");
    let (_, other) = app.get(&format!("/api/v1/contacts/{nora}")).await;
    assert_eq!(other["phone"], NORA, "{other}");
    let (_, messages) = thread_of(&app, &ada).await;
    let said = notices(&messages);
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(
        said[0].starts_with("Ada Accepts changed their WhatsApp number from +447700900001 to +447700900004, but another contact already has +447700900004."),
        "{}",
        said[0]
    );
    assert!(said[0].contains("not merged"), "{}", said[0]);
    assert!(journal(&app, "contact.number_changed").await.is_empty());
    app.stop().await;
}

async fn identity_change(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in(AGENT).await;
    post_ok(&app, &text_webhook("wamid.FIRST", "447700900001", "Hi")).await;
    let ada = app.contact_id(ADA).await;
    post_ok(&app, &system_body("identity_change", "447700900001", None)).await;
    let (conv, messages) = thread_of(&app, &ada).await;
    assert_eq!(
        notices(&messages),
        ["Ada Accepts's WhatsApp identity changed (new phone or reinstall). Confirm who you are talking to before sharing anything sensitive."]
    );
    let entries = journal(&app, "contact.identity_changed").await;
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!(entries[0]["contact_id"], ada.as_str());
    assert_eq!(entries[0]["conversation_id"], conv.as_str());
    let (_, contact) = app.get(&format!("/api/v1/contacts/{ada}")).await;
    assert_eq!(contact["phone"], ADA, "an identity change keeps the number");
    app.stop().await;
}

async fn provider_events(backend: Backend) {
    let app = spawn_app(backend).await;
    // Three events about the demo account or number, and one about an account nobody here has.
    let ours = [
        to_demo(fixture("account_update.json", "account_restriction")),
        to_demo(fixture("template_quality_update.json", "yellow")),
        to_demo(fixture("user_marketing_preferences.json", "resume")),
    ];
    let foreign = fixture("account_update.json", "account_deleted");
    for body in ours.iter().chain([&foreign]) {
        post_ok(&app, &serde_json::to_vec(body).unwrap()).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    // Another top-level organization with its own admin.
    let hash = openline_server::auth::hash_password_blocking(PASSWORD).unwrap();
    let store = app.handle.as_ref().unwrap().state.store.clone();
    store
        .write(move |c| {
            let now = openline_domain::clock::Clock::now(&openline_domain::clock::SystemClock);
            let org = openline_store::orgs::create(c, "Other Bank", None, "on", now)?;
            openline_store::users::create(
                c,
                &openline_store::users::NewUser {
                    org_id: &org.id,
                    team_id: None,
                    email: "admin@other.example",
                    name: "Other Admin",
                    role: openline_domain::Role::Admin,
                    password_hash: &hash,
                },
                now,
            )?;
            Ok(())
        })
        .await
        .unwrap();

    // An agent may not look.
    app.sign_in(AGENT).await;
    let (status, body) = app.get("/api/v1/provider-events").await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"], "forbidden");

    // The demo's admin (of the root organization) sees all four, newest first.
    app.sign_in(ADMIN).await;
    let (status, all) = app.get("/api/v1/provider-events").await;
    assert_eq!(status, 200, "{all}");
    let all = all.as_array().unwrap().clone();
    let fields: Vec<&str> = all.iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(
        fields,
        [
            "account_update",
            "user_preferences",
            "message_template_quality_update",
            "account_update"
        ],
        "{all:?}"
    );
    let times: Vec<i64> = all.iter().map(|e| e["received_at"].as_i64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");
    assert_eq!(all[0]["raw"]["event"], "ACCOUNT_DELETED");
    assert_eq!(all[2]["raw"]["new_quality_score"], "YELLOW");
    assert_eq!(all[3]["waba_id"], DEMO_WABA_ID);

    let (_, accounts) = app.get("/api/v1/provider-events?field=account_update").await;
    let events: Vec<&str> = accounts
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["raw"]["event"].as_str().unwrap())
        .collect();
    assert_eq!(events, ["ACCOUNT_DELETED", "ACCOUNT_RESTRICTION"]);
    let (_, one) = app.get("/api/v1/provider-events?limit=1").await;
    assert_eq!(one.as_array().unwrap().len(), 1);
    let (status, bad) = app.get("/api/v1/provider-events?field=Robert%27);drop").await;
    assert_eq!(status, 400, "{bad}");
    assert_eq!(bad["error"], "invalid_field");
    let (status, bad) = app.get("/api/v1/provider-events?limit=many").await;
    assert_eq!(status, 400, "{bad}");

    // Another organization's admin sees none of them: not the demo's, not the unrouted one.
    app.sign_in("admin@other.example").await;
    let (status, theirs) = app.get("/api/v1/provider-events").await;
    assert_eq!(status, 200, "{theirs}");
    assert_eq!(theirs, serde_json::json!([]));
    app.stop().await;
}

async fn system_message_and_window(backend: Backend) {
    const HOUR: i64 = 3_600_000;
    let clock = ManualClock::starting_now();
    let app = spawn_app_with_clock(backend, Arc::new(clock.clone())).await;
    app.sign_in(AGENT).await;
    app.ada_opts_in().await;
    let ada = app.contact_id(ADA).await;
    let (conv, _) = thread_of(&app, &ada).await;
    clock.advance_ms(24 * HOUR + 60_000);
    app.sign_in(AGENT).await; // the 12-hour session expired meanwhile
    let (_, thread) = app.get(&format!("/api/v1/conversations/{conv}")).await;
    assert_eq!(thread["window"]["open"], false, "{thread}");
    let closed_at = thread["window"]["expires_at"].clone();
    let (status, held) = app.send_text(&ada, "After a day").await;
    assert_eq!(status, 202, "{held}");
    assert_eq!(held["queue_reason"], "window_closed");

    // WhatsApp reports, just now, that Ada's identity changed and then that she changed number.
    // Neither is Ada writing to the business: the window stays closed and nothing held goes.
    let now = clock.now();
    post_ok(
        &app,
        &system_body_at("identity_change", "447700900001", None, "wamid.SYS1", now),
    )
    .await;
    post_ok(
        &app,
        &system_body_at(
            "phone_number_change",
            "447700900001",
            Some("447700900099"),
            "wamid.SYS2",
            now,
        ),
    )
    .await;
    let (_, messages) = thread_of(&app, &ada).await;
    let said = notices(&messages);
    assert!(
        said.iter().any(|n| n.contains("WhatsApp identity changed"))
            && said.iter().any(|n| n.contains("changed their WhatsApp number")),
        "both still appear as notices: {said:?}"
    );
    let (_, thread) = app.get(&format!("/api/v1/conversations/{conv}")).await;
    assert_eq!(thread["window"]["open"], false, "{thread}");
    assert_eq!(thread["window"]["expires_at"], closed_at, "{thread}");
    let (_, still) = app
        .get(&format!("/api/v1/messages/{}", held["id"].as_str().unwrap()))
        .await;
    assert_eq!(
        (still["status"].as_str(), still["queue_reason"].as_str()),
        (Some("queued"), Some("window_closed")),
        "{still}"
    );
    let (status, refused) = app.send_text(&ada, "Still after a day").await;
    assert_eq!(status, 202, "{refused}");
    assert_eq!(refused["queue_reason"], "window_closed", "{refused}");

    // Ada really writes (from her new number): the window opens and both held messages go.
    post_ok(
        &app,
        &serde_json::to_vec(&{
            let mut body: Value =
                serde_json::from_slice(&text_webhook("wamid.REAL", "447700900099", "Hi, new phone")).unwrap();
            body["entry"][0]["changes"][0]["value"]["messages"][0]["timestamp"] =
                Value::from((clock.now() / 1000).to_string());
            body
        })
        .unwrap(),
    )
    .await;
    let (_, thread) = app.get(&format!("/api/v1/conversations/{conv}")).await;
    assert_eq!(thread["window"]["open"], true, "{thread}");
    for m in [&held, &refused] {
        let (_, now_m) = app
            .get(&format!("/api/v1/messages/{}", m["id"].as_str().unwrap()))
            .await;
        assert!(now_m["queue_reason"].is_null(), "released: {now_m}");
    }
    app.stop().await;
}

/// The receiver's side of the signature check, from the README (not openline's code): `t=…,v1=…`
/// where `v1` is hex HMAC-SHA256 of `"<t>.<raw body>"` under the subscription's secret.
fn signature_ok(secret: &str, header: &str, body: &[u8]) -> bool {
    use hmac::Mac;
    let t = header.split(',').find_map(|p| p.strip_prefix("t="));
    let Some(t) = t else { return false };
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let expected = hex::encode(mac.finalize().into_bytes());
    header
        .split(',')
        .filter_map(|p| p.strip_prefix("v1="))
        .any(|v| v == expected)
}

async fn number_change_is_announced(backend: Backend) {
    use wiremock::matchers::method;
    use wiremock::{Mock, MockServer, ResponseTemplate};
    // A CRM subscribed to number changes (a local receiver; the poll is quick for the test).
    let crm = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&crm)
        .await;
    let app = spawn_app_configured(backend, |c| {
        c.webhooks.allow_private = true;
        c.webhooks.poll_ms = 25;
    })
    .await;
    app.sign_in(ADMIN).await;
    let (status, sub) = app
        .post(
            "/api/v1/webhook-subscriptions",
            serde_json::json!({"url": format!("{}/hook", crm.uri()), "events": ["contact.number_changed"],
                "include_sub_organizations": true}),
        )
        .await;
    assert_eq!(status, 201, "{sub}");
    let secret = sub["secret"].as_str().unwrap().to_owned();
    post_ok(&app, &text_webhook("wamid.BEFORE", "447700900001", "Hello")).await;
    let ada = app.contact_id(ADA).await;
    let mut live = app.http.get(app.at("/api/v1/events")).send().await.unwrap();
    let mut buf = String::new();

    let change = system_body("phone_number_change", "447700900001", Some("447700900077"));
    post_ok(&app, &change).await;
    post_ok(&app, &change).await; // Meta retries: announced once.

    // An open page (or API client) hears of it at once, with the contact as the API shows it.
    let ev = next_event(&mut live, "contact.updated", &mut buf).await;
    assert_eq!(ev["data"]["id"], ada.as_str(), "{ev}");
    assert_eq!(ev["data"]["phone"], "+447700900077", "{ev}");

    // The CRM receives it, signed, naming both numbers and the contact as it now is.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let request = loop {
        let got = crm.received_requests().await.unwrap_or_default();
        if let Some(r) = got.first() {
            break r.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the subscriber never received it"
        );
        tokio::time::sleep(Duration::from_millis(30)).await;
    };
    let header = |name: &str| {
        request
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    assert!(signature_ok(&secret, &header("openline-signature"), &request.body));
    assert!(!signature_ok(
        "whsec_wrong",
        &header("openline-signature"),
        &request.body
    ));
    assert_eq!(header("openline-event-type"), "contact.number_changed");
    let event: Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(event["type"], "contact.number_changed", "{event}");
    assert_eq!(event["detail"]["contact_id"], ada.as_str(), "{event}");
    assert_eq!(event["detail"]["old_phone"], ADA, "{event}");
    assert_eq!(event["detail"]["new_phone"], "+447700900077", "{event}");
    assert_eq!(event["participants"][0]["role"], "contact", "{event}");
    assert_eq!(event["participants"][0]["address"], "+447700900077", "{event}");
    assert_eq!(event["references"]["journal_kind"], "contact.number_changed");

    // Only the change itself: not Ada's message, not the retried webhook.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let ids: std::collections::HashSet<String> = crm
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| {
            serde_json::from_slice::<Value>(&r.body).unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    app.stop().await;
}
