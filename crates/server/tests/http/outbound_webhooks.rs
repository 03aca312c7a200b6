//! Outbound webhooks, end to end: an admin subscribes a local receiver (an axum app on port 0
//! standing in for an archive or CRM) through the API, the demo's people message each other through
//! the simulator, and the receiver gets the journal's events, signed, in order, once per event id
//! after dedupe, even when it fails for a while.

use crate::both_backends;
use crate::common::{ADA, AGENT, BUSINESS_NUMBER, PASSWORD};
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use openline_domain::clock::{ManualClock, SharedClock, SystemClock};
use openline_server::config::Config;
use openline_server::ServerHandle;
use openline_store::testing::TestDb;
use openline_store::{journal, Backend};
use serde_json::{json, Value};
use sha2::Sha256;
use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ADMIN: &str = "admin@demo.openline.dev";
const HOUR: i64 = 3600 * 1000;

/// The real server with small, fast webhook settings (and whatever `tweak` changes).
struct App {
    url: String,
    http: reqwest::Client,
    handle: Option<ServerHandle>,
    _db: TestDb,
    _data: tempfile::TempDir,
}

async fn spawn(backend: Backend, clock: SharedClock, tweak: impl FnOnce(&mut Config)) -> App {
    let db = TestDb::new(backend);
    let data = tempfile::tempdir().unwrap();
    let mut config = Config {
        listen: "127.0.0.1:0".into(),
        data_dir: data.path().to_path_buf(),
        database_url: Some(match &db.url {
            openline_store::DatabaseUrl::Sqlite(p) => format!("sqlite://{}", p.display()),
            openline_store::DatabaseUrl::Postgres(u) => u.clone(),
        }),
        demo: true,
        ..Config::default()
    };
    // The receivers listen on 127.0.0.1.
    config.webhooks.allow_private = true;
    config.webhooks.timeout_ms = 300;
    config.webhooks.backoff_base_ms = 20;
    config.webhooks.backoff_max_ms = 150;
    config.webhooks.poll_ms = 25;
    config.webhooks.retry_hours = 24;
    tweak(&mut config);
    let handle = openline_server::start_with(config, clock, |sim| {
        sim.delivered_after_ms = 0;
        sim.read_after_ms = 0;
    })
    .await
    .unwrap();
    App {
        url: handle.url.clone(),
        http: reqwest::Client::builder()
            .cookie_store(true)
            .timeout(Duration::from_secs(20))
            .build()
            .unwrap(),
        handle: Some(handle),
        _db: db,
        _data: data,
    }
}

impl App {
    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.url));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }
    async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }
    async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }
    async fn sign_in(&self, email: &str) {
        let (status, body) = self
            .post("/api/v1/auth/login", json!({"email": email, "password": PASSWORD}))
            .await;
        assert_eq!(status, 200, "sign-in of {email}: {body}");
    }
    fn store(&self) -> openline_store::Store {
        self.handle.as_ref().unwrap().state.store.clone()
    }
    async fn subscribe(&self, url: &str, events: &[&str], include_sub: bool) -> (String, String, Value) {
        let (status, body) = self
            .post(
                "/api/v1/webhook-subscriptions",
                json!({"url": url, "events": events, "include_sub_organizations": include_sub, "description": "test archive"}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        let s = body["subscription"].clone();
        (
            s["id"].as_str().unwrap().to_owned(),
            body["secret"].as_str().unwrap().to_owned(),
            s,
        )
    }
    /// Ada is asked for consent and accepts (consent events, the opt-in template and her reply),
    /// then the agent writes to her and she answers: every event type but participant changes.
    async fn conversation_with_ada(&self) {
        self.sign_in(AGENT).await;
        let (_, page) = self.get("/api/v1/contacts?limit=200").await;
        let ada = page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["phone"] == ADA)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let (status, body) = self.post(&format!("/api/v1/contacts/{ada}/opt-in"), json!({})).await;
        assert_eq!(status, 202, "{body}");
        wait_until("Ada's consent is granted", || async {
            let (_, c) = self.get(&format!("/api/v1/contacts/{ada}/consent")).await;
            (c["consent"]["state"] == "granted").then_some(())
        })
        .await;
        let (status, sent) = self
            .post(
                "/api/v1/messages",
                json!({"contact_id": ada, "text": "Your statement is ready"}),
            )
            .await;
        assert!(status == 200 || status == 201 || status == 202, "{sent}");
        let id = sent["id"].as_str().unwrap().to_owned();
        wait_until("the agent's message is read", || async {
            let (_, m) = self.get(&format!("/api/v1/messages/{id}")).await;
            (m["status"] == "read").then_some(())
        })
        .await;
        let (status, body) = self
            .post(
                &format!("/sim/phones/{ADA}/messages"),
                json!({"to": BUSINESS_NUMBER, "text": "Thank you"}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
    }
    /// The journal entries after `cursors` that a subscription to `types` must deliver, per org.
    async fn expected(&self, cursors: &Value, orgs: &[String], types: &[&str]) -> BTreeMap<String, Vec<String>> {
        let mut out = BTreeMap::new();
        for org in orgs {
            let after = cursors
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["org_id"] == org.as_str())
                .map_or(0, |c| c["seq"].as_i64().unwrap());
            let o = org.clone();
            let entries = self
                .store()
                .read(move |c| journal::page(c, &o, after, 100_000))
                .await
                .unwrap();
            out.insert(
                org.clone(),
                entries
                    .iter()
                    .filter(|e| {
                        openline_store::webhooks_out::event_type_for(&e.kind)
                            .is_some_and(|t| types.contains(&"*") || types.contains(&t))
                    })
                    .map(|e| format!("{}:{}", e.org_id, e.seq))
                    .collect(),
            );
        }
        out
    }
    async fn demo_orgs(&self) -> Vec<String> {
        self.store()
            .read(|c| {
                c.query("select id from organizations order by created_at, id", &[])?
                    .iter()
                    .map(|r| r.string(0))
                    .collect()
            })
            .await
            .unwrap()
    }
    async fn head(&self, org: &str) -> i64 {
        let o = org.to_owned();
        self.store()
            .read(move |c| {
                Ok(
                    c.query_opt("select seq from journal_heads where org_id = ?", &[o.into()])?
                        .map(|r| r.i64(0))
                        .transpose()?
                        .unwrap_or(0),
                )
            })
            .await
            .unwrap()
    }
    async fn stop(mut self) {
        if let Some(h) = self.handle.take() {
            tokio::time::timeout(Duration::from_secs(10), h.shutdown())
                .await
                .expect("shutdown finishes")
                .unwrap();
        }
    }
}

async fn wait_until<T, F, Fut>(what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
}

/// How the receiver answers its n-th request.
#[derive(Clone, Copy, Debug)]
enum Answer {
    Ok,
    Fail,
    /// Holds the request far longer than openline's timeout (the event did arrive: a receiver that
    /// answered too late; openline must send it again).
    Hang,
}

#[derive(Debug, Clone)]
struct Received {
    event_id: String,
    header_event_id: String,
    signature: String,
    body: Vec<u8>,
    answer: String,
}

/// Which answer the n-th request gets; tests change it midway.
type Plan = Arc<Mutex<Box<dyn Fn(usize) -> Answer + Send>>>;

#[derive(Clone)]
struct Receiver {
    url: String,
    log: Arc<Mutex<Vec<Received>>>,
    plan: Plan,
}

impl Receiver {
    async fn start(plan: impl Fn(usize) -> Answer + Send + 'static) -> Self {
        let log: Arc<Mutex<Vec<Received>>> = Arc::default();
        let plan: Plan = Arc::new(Mutex::new(Box::new(plan)));
        let (l, p) = (log.clone(), plan.clone());
        let app = axum::Router::new().route(
            "/hook",
            axum::routing::post(move |headers: HeaderMap, body: Bytes| {
                let (log, plan) = (l.clone(), p.clone());
                async move {
                    let n = log.lock().unwrap().len();
                    let answer = (plan.lock().unwrap())(n);
                    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    log.lock().unwrap().push(Received {
                        event_id: v["id"].as_str().unwrap_or_default().to_owned(),
                        header_event_id: headers
                            .get("openline-event-id")
                            .and_then(|h| h.to_str().ok())
                            .unwrap_or_default()
                            .to_owned(),
                        signature: headers
                            .get("openline-signature")
                            .and_then(|h| h.to_str().ok())
                            .unwrap_or_default()
                            .to_owned(),
                        body: body.to_vec(),
                        answer: format!("{answer:?}"),
                    });
                    match answer {
                        Answer::Ok => StatusCode::OK,
                        Answer::Fail => StatusCode::INTERNAL_SERVER_ERROR,
                        Answer::Hang => {
                            tokio::time::sleep(Duration::from_secs(2)).await;
                            StatusCode::OK
                        }
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { url, log, plan }
    }
    fn set_plan(&self, plan: impl Fn(usize) -> Answer + Send + 'static) {
        *self.plan.lock().unwrap() = Box::new(plan);
    }
    fn received(&self) -> Vec<Received> {
        self.log.lock().unwrap().clone()
    }
    /// What a receiver that dedupes by event id processes, in arrival order.
    fn deduped(&self) -> Vec<Received> {
        let mut seen = HashSet::new();
        self.received()
            .into_iter()
            .filter(|r| seen.insert(r.event_id.clone()))
            .collect()
    }
    /// The deduped event ids per organization, in arrival order.
    fn by_org(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for r in self.deduped() {
            let org = r.event_id.rsplit_once(':').unwrap().0.to_owned();
            out.entry(org).or_default().push(r.event_id);
        }
        out
    }
}

/// The receiver's side of the signature check, written from the documentation (not openline's code).
fn signature_ok(secret: &str, header: &str, body: &[u8]) -> bool {
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = Some(v.to_owned()),
            Some(("v1", v)) => sigs.push(v.to_owned()),
            _ => {}
        }
    }
    let Some(t) = t else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    let expected = hex::encode(mac.finalize().into_bytes());
    sigs.contains(&expected)
}

fn drop_empty(m: BTreeMap<String, Vec<String>>) -> BTreeMap<String, Vec<String>> {
    m.into_iter().filter(|(_, v)| !v.is_empty()).collect()
}

async fn failing_receiver_gets_every_event_once(backend: Backend) {
    // Arrange: a receiver that answers 500 three times, then lets two requests time out, then works.
    let receiver = Receiver::start(|n| match n {
        0..=2 => Answer::Fail,
        3..=4 => Answer::Hang,
        _ => Answer::Ok,
    })
    .await;
    let app = spawn(backend, Arc::new(SystemClock), |_| {}).await;
    app.sign_in(ADMIN).await;
    let (id, secret, sub) = app.subscribe(&receiver.url, &["*"], true).await;
    assert!(secret.starts_with("whsec_"));

    // Act
    app.conversation_with_ada().await;

    // Assert: after dedupe, exactly the journal's matching entries, in journal order per organization.
    let orgs = app.demo_orgs().await;
    let got = wait_until("the receiver has every event", || async {
        let expected = drop_empty(app.expected(&sub["cursors"], &orgs, &["*"]).await);
        let got = receiver.by_org();
        (got == expected).then_some(got)
    })
    .await;
    let all: Vec<&String> = got.values().flatten().collect();
    let types: HashSet<String> = receiver
        .deduped()
        .iter()
        .map(|r| {
            serde_json::from_slice::<Value>(&r.body).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    for t in [
        "message.received",
        "message.sent",
        "message.status",
        "consent.changed",
        "participant.changed",
    ] {
        assert!(types.contains(t), "a {t} event was delivered: {types:?}");
    }
    for events in got.values() {
        let seqs: Vec<i64> = events
            .iter()
            .map(|e| e.rsplit_once(':').unwrap().1.parse().unwrap())
            .collect();
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in journal order: {seqs:?}");
    }
    let received = receiver.received();
    assert!(
        received.len() > all.len(),
        "the failed and timed-out attempts were sent again"
    );
    for r in &received {
        assert!(
            signature_ok(&secret, &r.signature, &r.body),
            "signature verifies: {}",
            r.signature
        );
        assert!(!signature_ok("whsec_wrong", &r.signature, &r.body));
        assert_eq!(r.header_event_id, r.event_id);
    }
    assert_eq!(received[0].answer, "Fail");
    assert_eq!(
        received[0].event_id, received[4].event_id,
        "the head event waited for the retries"
    );

    // The payload names the conversation, the participants and the archive entry.
    let sent = receiver
        .deduped()
        .into_iter()
        .map(|r| serde_json::from_slice::<Value>(&r.body).unwrap())
        .find(|v| v["type"] == "message.sent" && v["message"]["text"] == "Your statement is ready")
        .expect("the agent's message was delivered with its text");
    assert_eq!(sent["conversation"]["channel"], "whatsapp");
    assert_eq!(sent["message"]["direction"], "out");
    assert!(sent["participants"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["role"] == "contact" && p["address"] == ADA));
    assert!(sent["references"]["journal_hash"].as_str().unwrap().len() == 64);
    assert!(sent["occurred_at"].as_str().unwrap().ends_with('Z'));

    // The attempts are visible: 500s, timeouts, then deliveries.
    app.sign_in(ADMIN).await;
    let (status, attempts) = app
        .get(&format!("/api/v1/webhook-subscriptions/{id}/deliveries?limit=200"))
        .await;
    assert_eq!(status, 200, "{attempts}");
    let attempts = attempts.as_array().unwrap();
    assert!(attempts
        .iter()
        .any(|a| a["http_status"] == 500 && a["outcome"] == "failed"));
    assert!(attempts
        .iter()
        .any(|a| a["http_status"].is_null() && a["error"].as_str().unwrap_or_default().contains("timed out")));
    let first_delivery = attempts.iter().rev().find(|a| a["outcome"] == "delivered").unwrap();
    assert_eq!(first_delivery["attempt"], 6, "{first_delivery}");
    let (_, now) = app.get(&format!("/api/v1/webhook-subscriptions/{id}")).await;
    assert_eq!(now["state"], "active");
    assert!(now["pending"].is_null(), "{now}");
    app.stop().await;
}

async fn consent_only_subscription(backend: Backend) {
    let consent = Receiver::start(|_| Answer::Ok).await;
    let app = spawn(backend, Arc::new(SystemClock), |_| {}).await;
    app.sign_in(ADMIN).await;
    let (id, secret, sub) = app.subscribe(&consent.url, &["consent.changed"], true).await;

    app.conversation_with_ada().await;

    // Everything up to the journal's head has been looked at…
    let orgs = app.demo_orgs().await;
    app.sign_in(ADMIN).await;
    wait_until("the subscription has caught up with the journal", || async {
        let (_, s) = app.get(&format!("/api/v1/webhook-subscriptions/{id}")).await;
        for org in &orgs {
            let head = app.head(org).await;
            let at = s["cursors"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["org_id"] == org.as_str())
                .map_or(0, |c| c["seq"].as_i64().unwrap());
            if at < head
                && app
                    .expected(&s["cursors"], std::slice::from_ref(org), &["consent.changed"])
                    .await
                    .values()
                    .any(|v| !v.is_empty())
            {
                return None;
            }
        }
        Some(())
    })
    .await;
    // …and only the consent events were delivered: the request and Ada's acceptance.
    let expected = drop_empty(app.expected(&sub["cursors"], &orgs, &["consent.changed"]).await);
    assert_eq!(consent.by_org(), expected);
    let delivered = consent.deduped();
    assert!(delivered.len() >= 2, "{delivered:?}");
    let kinds: Vec<String> = delivered
        .iter()
        .map(|r| {
            let v: Value = serde_json::from_slice(&r.body).unwrap();
            assert_eq!(v["type"], "consent.changed", "{v}");
            assert!(v["message"].is_null());
            v["consent"]["kind"].as_str().unwrap().to_owned()
        })
        .collect();
    assert!(
        kinds.contains(&"requested".to_owned()) && kinds.contains(&"accepted".to_owned()),
        "{kinds:?}"
    );
    assert!(delivered.iter().all(|r| signature_ok(&secret, &r.signature, &r.body)));

    // After a rotation, deliveries verify with the new secret and, for a grace period, the old one.
    let (status, rotated) = app
        .post(&format!("/api/v1/webhook-subscriptions/{id}/rotate-secret"), json!({}))
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new_secret = rotated["secret"].as_str().unwrap().to_owned();
    assert_ne!(new_secret, secret);
    let before = consent.received().len();
    let (status, _) = app
        .call(
            reqwest::Method::PATCH,
            &format!("/api/v1/webhook-subscriptions/{id}"),
            Some(json!({"events": ["*"]})),
        )
        .await;
    assert_eq!(status, 200);
    app.sign_in(AGENT).await;
    let (status, body) = app
        .post(
            &format!("/sim/phones/{ADA}/messages"),
            json!({"to": BUSINESS_NUMBER, "text": "One more thing"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let after = wait_until("a delivery after the rotation", || async {
        let r = consent.received();
        (r.len() > before).then(|| r[before].clone())
    })
    .await;
    assert!(signature_ok(&new_secret, &after.signature, &after.body));
    assert!(signature_ok(&secret, &after.signature, &after.body));
    app.stop().await;
}

async fn never_another_organizations_events(backend: Backend) {
    let ours = Receiver::start(|_| Answer::Ok).await;
    let root_only = Receiver::start(|_| Answer::Ok).await;
    let theirs = Receiver::start(|_| Answer::Ok).await;
    let app = spawn(backend, Arc::new(SystemClock), |_| {}).await;
    // Another organization with its own admin and a contact who consents.
    let hash = openline_server::auth::hash_password_blocking(PASSWORD).unwrap();
    let (other_org, other_contact) = app
        .store()
        .write(move |c| {
            let now = openline_domain::clock::Clock::now(&SystemClock);
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
            let contact_id = openline_domain::ids::new_id("con");
            c.execute(
                "insert into contacts (id, org_id, phone, created_at, updated_at) values (?, ?, ?, ?, ?)",
                &[
                    contact_id.as_str().into(),
                    org.id.as_str().into(),
                    "+447700900099".into(),
                    now.into(),
                    now.into(),
                ],
            )?;
            Ok((org.id, contact_id))
        })
        .await
        .unwrap();
    app.sign_in("admin@other.example").await;
    let (theirs_id, _, _) = app.subscribe(&theirs.url, &["*"], true).await;
    app.sign_in(ADMIN).await;
    let (ours_id, _, ours_sub) = app.subscribe(&ours.url, &["*"], true).await;
    let (root_id, _, _) = app.subscribe(&root_only.url, &["*"], false).await;

    // The other organization's admin cannot see ours, nor we theirs.
    let (status, _) = app.get(&format!("/api/v1/webhook-subscriptions/{theirs_id}")).await;
    assert_eq!(status, 404);
    let (_, list) = app.get("/api/v1/webhook-subscriptions").await;
    let ids: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![ours_id.as_str(), root_id.as_str()]);
    assert!(!list.to_string().contains("whsec_"), "secrets are never listed: {list}");

    // Activity in both: the demo's conversation, and a consent event in the other organization.
    let (oo, oc) = (other_org.clone(), other_contact.clone());
    app.store()
        .write(move |c| {
            openline_store::consent::append(
                c,
                &openline_store::consent::NewConsentEvent {
                    org_id: &oo,
                    contact_id: &oc,
                    kind: "opted_in",
                    actor_user_id: None,
                    message_id: None,
                    provider_message_id: None,
                    evidence: &json!({"source": "branch visit"}),
                    at: openline_domain::clock::Clock::now(&SystemClock),
                },
            )
        })
        .await
        .unwrap();
    app.conversation_with_ada().await;

    let demo_orgs: Vec<String> = app.demo_orgs().await.into_iter().filter(|o| *o != other_org).collect();
    let expected_ours = wait_until("our receiver has our events", || async {
        let expected = drop_empty(app.expected(&ours_sub["cursors"], &demo_orgs, &["*"]).await);
        (ours.by_org() == expected).then_some(expected)
    })
    .await;
    assert!(!expected_ours.is_empty());
    let got_theirs = wait_until("their receiver has their event", || async {
        let d = theirs.deduped();
        (!d.is_empty()).then_some(d)
    })
    .await;
    assert!(got_theirs
        .iter()
        .all(|r| r.event_id.starts_with(&format!("{other_org}:"))));
    let v: Value = serde_json::from_slice(&got_theirs[0].body).unwrap();
    assert_eq!(v["organization"]["name"], "Other Bank");
    assert!(ours
        .received()
        .iter()
        .all(|r| !r.event_id.starts_with(&format!("{other_org}:"))));
    // The demo's messages are in its sub-organization: a root-only subscription gets none of them.
    assert!(
        root_only.received().is_empty(),
        "root-only got {:?}",
        root_only.received().iter().map(|r| &r.event_id).collect::<Vec<_>>()
    );
    app.stop().await;
}

async fn bad_requests_get_clear_codes(backend: Backend) {
    let app = spawn(backend, Arc::new(SystemClock), |c| c.webhooks.allow_private = false).await;
    app.sign_in(ADMIN).await;
    let create = |body: Value| app.post("/api/v1/webhook-subscriptions", body);
    for (body, code) in [
        (
            json!({"url": "http://127.0.0.1:9/hook", "events": ["*"]}),
            "webhook_url_private",
        ),
        (
            json!({"url": "http://localhost:9/hook", "events": ["*"]}),
            "webhook_url_private",
        ),
        (
            json!({"url": "http://169.254.169.254/latest", "events": ["*"]}),
            "webhook_url_private",
        ),
        (
            json!({"url": "ftp://archive.example.com/x", "events": ["*"]}),
            "webhook_url_invalid",
        ),
        (json!({"url": "not a url", "events": ["*"]}), "webhook_url_invalid"),
        (
            json!({"url": "https://203.0.114.9/hook", "events": ["message.deleted"]}),
            "webhook_event_unknown",
        ),
        (
            json!({"url": "https://203.0.114.9/hook", "events": []}),
            "webhook_events_empty",
        ),
    ] {
        let (status, err) = create(body.clone()).await;
        assert_eq!((status, err["error"].as_str()), (400, Some(code)), "{body} → {err}");
        assert!(!err["message"].as_str().unwrap().is_empty());
    }
    let (status, err) = create(json!({"url": "https://203.0.114.9/hook"})).await;
    assert_eq!((status, err["error"].as_str()), (422, Some("invalid_body")), "{err}");
    assert_eq!(
        app.get("/api/v1/webhook-subscriptions").await.1,
        json!([]),
        "nothing half-stored"
    );

    // A public address is accepted; creating and deleting are journaled without the secret.
    let (status, created) = create(json!({"url": "https://203.0.114.9/hook", "events": ["message.received"]})).await;
    assert_eq!(status, 201, "{created}");
    let id = created["subscription"]["id"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert!(created["subscription"]["secret_hint"]
        .as_str()
        .unwrap()
        .ends_with(&secret[secret.len() - 4..]));
    let (status, got) = app.get(&format!("/api/v1/webhook-subscriptions/{id}")).await;
    assert_eq!(status, 200);
    assert!(!got.to_string().contains(&secret), "the secret is shown once");
    let (status, _) = app
        .call(
            reqwest::Method::DELETE,
            &format!("/api/v1/webhook-subscriptions/{id}"),
            None,
        )
        .await;
    assert_eq!(status, 204);
    let (status, err) = app.get(&format!("/api/v1/webhook-subscriptions/{id}")).await;
    assert_eq!((status, err["error"].as_str()), (404, Some("not_found")));
    let kinds: Vec<(String, String)> = app
        .store()
        .read(|c| {
            c.query(
                "select kind, payload from journal where kind like 'webhook_subscription.%' order by seq",
                &[],
            )?
            .iter()
            .map(|r| Ok((r.string(0)?, r.string(1)?)))
            .collect()
        })
        .await
        .unwrap();
    assert_eq!(
        kinds.iter().map(|k| k.0.as_str()).collect::<Vec<_>>(),
        vec!["webhook_subscription.created", "webhook_subscription.deleted"]
    );
    assert!(kinds.iter().all(|k| !k.1.contains(&secret)));

    // Agents may not manage subscriptions.
    app.sign_in(AGENT).await;
    let (status, err) = create(json!({"url": "https://203.0.114.9/hook", "events": ["*"]})).await;
    assert_eq!((status, err["error"].as_str()), (403, Some("forbidden")));
    app.stop().await;
}

async fn parked_after_the_retry_period_and_resumed(backend: Backend) {
    let clock = ManualClock::starting_now();
    let receiver = Receiver::start(|_| Answer::Fail).await;
    let app = spawn(backend, Arc::new(clock.clone()), |_| {}).await;
    app.sign_in(ADMIN).await;
    let (id, _, _) = app.subscribe(&receiver.url, &["message.received"], true).await;
    let (status, body) = app
        .post(
            &format!("/sim/phones/{ADA}/messages"),
            json!({"to": BUSINESS_NUMBER, "text": "Are you there?"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let first = wait_until("the first attempt fails", || async {
        let (_, s) = app.get(&format!("/api/v1/webhook-subscriptions/{id}")).await;
        s["pending"]["event_id"].as_str().map(str::to_owned)
    })
    .await;
    // Time stands still: no retry is due until the clock moves.
    clock.advance_ms(3 * HOUR);
    wait_until("a retry", || async { (receiver.received().len() >= 2).then_some(()) }).await;
    // A day later the event still fails: the subscription is parked, visibly.
    clock.advance_ms(22 * HOUR);
    app.sign_in(ADMIN).await;
    let parked = wait_until("the subscription is parked", || async {
        let (_, s) = app.get(&format!("/api/v1/webhook-subscriptions/{id}")).await;
        (s["state"] == "parked").then_some(s)
    })
    .await;
    assert_eq!(parked["pending"]["event_id"], first.as_str());
    assert_eq!(parked["pending"]["last_error"], "HTTP 500 Internal Server Error");
    let (_, attempts) = app.get(&format!("/api/v1/webhook-subscriptions/{id}/deliveries")).await;
    assert_eq!(attempts[0]["outcome"], "parked", "{attempts}");
    let tried = receiver.received().len();
    clock.advance_ms(HOUR);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.received().len(), tried, "a parked subscription is not retried");

    // The receiver is fixed; an admin resumes and the event is delivered.
    receiver.set_plan(|_| Answer::Ok);
    let (status, resumed) = app
        .post(&format!("/api/v1/webhook-subscriptions/{id}/resume"), json!({}))
        .await;
    assert_eq!((status, resumed["state"].as_str()), (200, Some("active")), "{resumed}");
    wait_until("the parked event is delivered", || async {
        let (_, s) = app.get(&format!("/api/v1/webhook-subscriptions/{id}")).await;
        s["pending"].is_null().then_some(())
    })
    .await;
    let last = receiver.received().last().cloned().unwrap();
    assert_eq!(last.event_id, first);
    app.stop().await;
}

async fn shutdown_with_a_hanging_receiver(backend: Backend) {
    let receiver = Receiver::start(|_| Answer::Hang).await;
    let app = spawn(backend, Arc::new(SystemClock), |c| c.webhooks.timeout_ms = 1_000).await;
    app.sign_in(ADMIN).await;
    app.subscribe(&receiver.url, &["*"], true).await;
    let (status, _) = app
        .post(
            &format!("/sim/phones/{ADA}/messages"),
            json!({"to": BUSINESS_NUMBER, "text": "Hello?"}),
        )
        .await;
    assert_eq!(status, 200);
    wait_until("a delivery is in flight", || async {
        (!receiver.received().is_empty()).then_some(())
    })
    .await;
    // `stop` fails the test if shutdown takes longer than 10 seconds.
    app.stop().await;
}

both_backends! {
    a_receiver_that_fails_for_a_while_gets_every_event_once_per_id_in_order => failing_receiver_gets_every_event_once;
    a_subscription_to_consent_events_receives_only_those_signed_also_after_rotation => consent_only_subscription;
    a_subscription_never_receives_another_organizations_events => never_another_organizations_events;
    bad_urls_unknown_event_types_and_agents_get_clear_errors => bad_requests_get_clear_codes;
    an_event_failing_for_the_whole_retry_period_parks_the_subscription_until_resumed => parked_after_the_retry_period_and_resumed;
    shutdown_does_not_wait_for_a_hanging_receiver => shutdown_with_a_hanging_receiver;
}

/// A backfill (`deliver_existing_events`) of 2,000 archived events to a healthy receiver: every one
/// arrives exactly once (no retries were needed, so not even dedupe is), in journal order. Prints
/// the rate with `--nocapture`.
async fn backfill(backend: Backend) {
    let receiver = Receiver::start(|_| Answer::Ok).await;
    let app = spawn(backend, Arc::new(SystemClock), |_| {}).await;
    let orgs = app.demo_orgs().await;
    let org = orgs[1].clone();
    let n = 2000;
    let o = org.clone();
    app.store()
        .write(move |c| {
            for i in 0..n {
                let m = json!({"message": {"id": format!("msg_{i}"), "body": format!("archived {i}")}});
                journal::append(c, &o, "message.received", Some("msg"), &m, 1)?;
            }
            Ok(())
        })
        .await
        .unwrap();
    app.sign_in(ADMIN).await;
    let started = std::time::Instant::now();
    let (status, body) = app
        .post(
            "/api/v1/webhook-subscriptions",
            json!({"url": receiver.url, "events": ["message.received"], "include_sub_organizations": true,
                   "deliver_existing_events": true}),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    wait_until("the backfill is delivered", || async {
        (receiver.received().len() >= n).then_some(())
    })
    .await;
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "backfill on {backend:?}: {n} events in {secs:.2}s = {:.0}/s",
        n as f64 / secs
    );
    let expected = drop_empty(app.expected(&json!([]), &orgs, &["message.received"]).await);
    assert_eq!(receiver.by_org(), expected);
    assert_eq!(receiver.received().len(), receiver.deduped().len(), "no event twice");
    let texts: Vec<String> = receiver
        .received()
        .iter()
        .map(|r| {
            serde_json::from_slice::<Value>(&r.body).unwrap()["message"]["text"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(texts.first().map(String::as_str), Some("archived 0"));
    assert_eq!(texts.last().map(String::as_str), Some("archived 1999"));
    app.stop().await;
}

both_backends! {
    a_backfill_delivers_the_archive_in_order_exactly_once_to_a_healthy_receiver => backfill;
}

/// A receiver that answers with a redirect: openline does not follow it (the target could be
/// anywhere, including the internal network), records why, and retries the subscribed URL.
async fn redirects_are_not_followed(backend: Backend) {
    let followed = Arc::new(Mutex::new(0usize));
    let f = followed.clone();
    let app_router = axum::Router::new()
        .route(
            "/hook",
            axum::routing::post(|| async { (StatusCode::TEMPORARY_REDIRECT, [("location", "/elsewhere")]) }),
        )
        .route(
            "/elsewhere",
            axum::routing::post(move || {
                let f = f.clone();
                async move {
                    *f.lock().unwrap() += 1;
                    StatusCode::OK
                }
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app_router).await;
    });
    let app = spawn(backend, Arc::new(SystemClock), |_| {}).await;
    app.sign_in(ADMIN).await;
    let (id, _, _) = app.subscribe(&url, &["message.received"], true).await;
    let (status, _) = app
        .post(
            &format!("/sim/phones/{ADA}/messages"),
            json!({"to": BUSINESS_NUMBER, "text": "Redirect me"}),
        )
        .await;
    assert_eq!(status, 200);
    let attempts = wait_until("two attempts", || async {
        let (_, a) = app.get(&format!("/api/v1/webhook-subscriptions/{id}/deliveries")).await;
        (a.as_array().is_some_and(|a| a.len() >= 2)).then_some(a)
    })
    .await;
    assert_eq!(attempts[0]["http_status"], 307, "{attempts}");
    assert_eq!(attempts[0]["outcome"], "failed");
    assert!(attempts[0]["error"]
        .as_str()
        .unwrap()
        .contains("redirects are not followed"));
    assert_eq!(*followed.lock().unwrap(), 0, "the redirect was not followed");
    app.stop().await;
}

both_backends! {
    a_redirecting_receiver_is_not_followed_and_the_attempt_says_why => redirects_are_not_followed;
}
