//! `spawn_app`: the real server on port 0 with a fresh database (SQLite file or PostgreSQL database)
//! and the simulator in demo mode, plus small helpers that read like what a client does.

use openline_domain::clock::SharedClock;
use openline_server::config::Config;
use openline_server::ServerHandle;
use openline_store::testing::TestDb;
use openline_store::Backend;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

pub struct TestApp {
    pub url: String,
    pub http: reqwest::Client,
    pub handle: Option<ServerHandle>,
    _db: TestDb,
    _data: tempfile::TempDir,
}

pub const AGENT: &str = "agent1@demo.openline.dev";
pub const PASSWORD: &str = openline_server::demo::DEMO_PASSWORD;
pub const BUSINESS_NUMBER: &str = "15550001000";
pub const ADA: &str = "+447700900001";
pub const NORA: &str = "+447700900004";
pub const APP_SECRET: &str = "sim-app-secret";

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with_clock(backend, Arc::new(openline_domain::clock::SystemClock)).await
}

pub async fn spawn_app_with_clock(backend: Backend, clock: SharedClock) -> TestApp {
    spawn_app_in_mode(backend, clock, true).await
}

/// The server as production runs it: no demo data, no simulator (and nothing under `/sim`).
pub async fn spawn_production_app(backend: Backend) -> TestApp {
    spawn_app_in_mode(backend, Arc::new(openline_domain::clock::SystemClock), false).await
}

async fn spawn_app_in_mode(backend: Backend, clock: SharedClock, demo: bool) -> TestApp {
    if std::env::var("TEST_LOG").is_ok() {
        // Quiet unless asked: TEST_LOG=1 shows the server's logs for a failing test.
        let _ = tracing_subscriber::fmt()
            .with_test_writer()
            .with_env_filter("info")
            .try_init();
    }
    let db = TestDb::new(backend);
    let data = tempfile::tempdir().unwrap();
    let config = Config {
        listen: "127.0.0.1:0".into(),
        data_dir: data.path().to_path_buf(),
        database_url: Some(match &db.url {
            openline_store::DatabaseUrl::Sqlite(p) => format!("sqlite://{}", p.display()),
            openline_store::DatabaseUrl::Postgres(u) => u.clone(),
        }),
        demo,
        ..Config::default()
    };
    let handle = openline_server::start_with(config, clock, |sim| {
        sim.delivered_after_ms = 0;
        sim.read_after_ms = 0;
    })
    .await
    .expect("server starts");
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    TestApp {
        url: handle.url.clone(),
        http,
        handle: Some(handle),
        _db: db,
        _data: data,
    }
}

impl TestApp {
    pub fn at(&self, path: &str) -> String {
        format!("{}{}", self.url, path)
    }

    pub async fn sign_in(&self, email: &str) -> Value {
        let res = self
            .http
            .post(self.at("/api/v1/auth/login"))
            .json(&json!({"email": email, "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "sign-in of {email}");
        res.json().await.unwrap()
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        let res = self.http.get(self.at(path)).send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let res = self.http.post(self.at(path)).json(&body).send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    pub async fn contact_id(&self, phone: &str) -> String {
        let (_, page) = self.get("/api/v1/contacts?limit=200").await;
        page["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["phone"] == phone)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The simulated WhatsApp user `phone` writes to the demo business number.
    pub async fn phone_writes(&self, phone: &str, text: &str) -> Value {
        let (status, body) = self
            .post(
                &format!("/sim/phones/{phone}/messages"),
                json!({"to": BUSINESS_NUMBER, "text": text}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["webhook_status"], 200, "openline acknowledged the webhook: {body}");
        body
    }

    pub async fn send_text(&self, contact_id: &str, text: &str) -> (u16, Value) {
        self.post("/api/v1/messages", json!({"contact_id": contact_id, "text": text}))
            .await
    }

    /// Sends the opt-in request to the contact with this phone number.
    pub async fn request_opt_in(&self, phone: &str) -> (u16, Value) {
        let id = self.contact_id(phone).await;
        self.post(&format!("/api/v1/contacts/{id}/opt-in"), json!({})).await
    }

    /// Polls the contact's consent until it is in `state` (granted, refused, pending, not_on_whatsapp).
    pub async fn wait_for_consent(&self, phone: &str, state: &str) -> Value {
        let id = self.contact_id(phone).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let (_, c) = self.get(&format!("/api/v1/contacts/{id}/consent")).await;
            if c["consent"]["state"] == state {
                return c;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "consent never became {state}: {c}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Ada (the persona who accepts) is asked and agrees; her tap also opens the window.
    pub async fn ada_opts_in(&self) {
        let (status, body) = self.request_opt_in(ADA).await;
        assert_eq!(status, 202, "{body}");
        self.wait_for_consent(ADA, "granted").await;
    }

    /// What the simulated phone has received from the business, as text.
    pub async fn phone_received(&self, phone: &str) -> Vec<String> {
        let (_, msgs) = self.get(&format!("/sim/phones/{phone}/messages")).await;
        msgs.as_array()
            .unwrap()
            .iter()
            .filter(|m| m["direction"] == "from_business")
            .map(|m| {
                m["text"]
                    .as_str()
                    .or(m["template"]["name"].as_str())
                    .unwrap_or_default()
                    .to_owned()
            })
            .collect()
    }

    /// Polls a message until `pred` holds (the dispatcher and webhooks are asynchronous).
    pub async fn wait_for_message(&self, id: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let (_, m) = self.get(&format!("/api/v1/messages/{id}")).await;
            if pred(&m) {
                return m;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "message never reached the expected state: {m}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Posts a webhook body to openline signed with the simulator's app secret.
    pub async fn post_signed_webhook(&self, body: &[u8]) -> reqwest::Response {
        self.http
            .post(self.at("/webhooks/whatsapp"))
            .header("content-type", "application/json")
            .header(
                "x-hub-signature-256",
                openline_channels::sign_meta(APP_SECRET.as_bytes(), body),
            )
            .body(body.to_vec())
            .send()
            .await
            .unwrap()
    }

    pub async fn count(&self, sql: &'static str) -> i64 {
        let store = self.handle.as_ref().unwrap().state.store.clone();
        store.read(move |c| c.query_one(sql, &[])?.i64(0)).await.unwrap()
    }

    pub async fn stop(mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown().await.unwrap();
        }
    }
}

/// A Cloud API text-message webhook for the demo number, as Meta shapes it.
pub fn text_webhook(wamid: &str, from_digits: &str, text: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "200000000000001", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": BUSINESS_NUMBER, "phone_number_id": "100000000000001"},
            "contacts": [{"profile": {"name": "Webhook Tester"}, "wa_id": from_digits}],
            "messages": [{"from": from_digits, "id": wamid, "timestamp": "1700000000", "type": "text", "text": {"body": text}}]
        }}]}]
    }))
    .unwrap()
}

/// A Cloud API status webhook.
pub fn status_webhook(wamid: &str, status: &str, ts: i64) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": "200000000000001", "changes": [{"field": "messages", "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": BUSINESS_NUMBER, "phone_number_id": "100000000000001"},
            "statuses": [{"id": wamid, "status": status, "timestamp": ts.to_string(), "recipient_id": "447700900001"}]
        }}]}]
    }))
    .unwrap()
}

/// Reads server-sent events until one of `kind` arrives (or times out).
pub async fn next_event(stream: &mut reqwest::Response, kind: &str, buf: &mut String) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        while let Some(pos) = buf.find("\n\n") {
            let frame: String = buf.drain(..pos + 2).collect();
            let mut ev = None;
            let mut data = String::new();
            for line in frame.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    ev = Some(v.trim().to_owned());
                }
                if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim());
                }
            }
            if ev.as_deref() == Some(kind) {
                return serde_json::from_str(&data).unwrap();
            }
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let chunk = tokio::time::timeout(left, stream.chunk())
            .await
            .expect("event in time")
            .unwrap()
            .expect("stream open");
        buf.push_str(&String::from_utf8_lossy(&chunk));
    }
}

/// The demo app with its configuration adjusted before start-up (a public URL behind a proxy, a
/// Twilio shared key, …).
pub async fn spawn_app_configured(backend: Backend, configure: impl FnOnce(&mut Config)) -> TestApp {
    spawn_app_configured_with_sim(backend, configure, |_| {}).await
}

/// `spawn_app_configured`, with the in-process simulator adjusted too.
pub async fn spawn_app_configured_with_sim(
    backend: Backend,
    configure: impl FnOnce(&mut Config),
    tune_sim: impl FnOnce(&mut openline_sim::SimConfig),
) -> TestApp {
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
    configure(&mut config);
    let handle = openline_server::start_with(config, Arc::new(openline_domain::clock::SystemClock), |sim| {
        sim.delivered_after_ms = 0;
        sim.read_after_ms = 0;
        tune_sim(sim);
    })
    .await
    .expect("server starts");
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();
    TestApp {
        url: handle.url.clone(),
        http,
        handle: Some(handle),
        _db: db,
        _data: data,
    }
}
