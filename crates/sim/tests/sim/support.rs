//! Test support: a simulator on port 0, and a tiny axum receiver standing in for openline's
//! webhook endpoint that records every POST (raw bytes and headers) and can refuse the first few.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use hmac::{Hmac, Mac};
use openline_domain::clock::{ManualClock, SharedClock};
use openline_sim::{SimConfig, SimTemplate, Simulator};
use serde_json::Value;
use sha2::Sha256;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Mutex};

pub const TOKEN: &str = "sim-access-token";
pub const SECRET: &str = "sim-app-secret";
pub const PHONE_NUMBER_ID: &str = "100000000000001";
pub const WABA_ID: &str = "200000000000001";
pub const DISPLAY: &str = "15550001000";
pub const ADA: &str = "+447700900001";
pub const DAN: &str = "+447700900002";
pub const SAM: &str = "+447700900003";
pub const NORA: &str = "+447700900004";
/// Not a persona: a normal WhatsApp user driven through the API.
pub const MANUAL: &str = "+447700900099";

/// One webhook as openline would receive it.
#[derive(Debug, Clone)]
pub struct Received {
    pub signature: String,
    pub content_type: String,
    pub raw: Bytes,
    pub json: Value,
}

impl Received {
    /// The first status or message in the body.
    pub fn value(&self) -> &Value {
        &self.json["entry"][0]["changes"][0]["value"]
    }
    pub fn status(&self) -> Option<&str> {
        self.value()["statuses"][0]["status"].as_str()
    }
    pub fn message(&self) -> &Value {
        &self.value()["messages"][0]
    }
    /// Whether the signature verifies over the raw bytes with the app secret.
    pub fn signature_verifies(&self) -> bool {
        let Some(hex_sig) = self.signature.strip_prefix("sha256=") else {
            return false;
        };
        let Ok(sig) = hex::decode(hex_sig) else { return false };
        let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
        mac.update(&self.raw);
        mac.verify_slice(&sig).is_ok()
    }
}

pub struct Receiver {
    pub url: String,
    rx: Mutex<mpsc::UnboundedReceiver<Received>>,
    /// How many requests were answered (including refusals).
    pub hits: Arc<AtomicU32>,
}

impl Receiver {
    /// The next webhook, or a panic after a few seconds.
    pub async fn next(&self) -> Received {
        tokio::time::timeout(Duration::from_secs(5), self.rx.lock().await.recv())
            .await
            .expect("no webhook arrived within 5s")
            .expect("receiver closed")
    }

    /// Waits for the next webhook satisfying `pred`, skipping others.
    pub async fn next_where(&self, pred: impl Fn(&Received) -> bool) -> Received {
        loop {
            let r = self.next().await;
            if pred(&r) {
                return r;
            }
        }
    }

    /// Asserts nothing more arrives within `ms`.
    pub async fn assert_quiet_for(&self, ms: u64) {
        let got = tokio::time::timeout(Duration::from_millis(ms), self.rx.lock().await.recv()).await;
        if let Ok(Some(r)) = got {
            panic!("unexpected webhook: {}", r.json);
        }
    }
}

/// Starts a receiver that answers 500 to the first `refuse_first` requests and 200 afterwards.
pub async fn start_receiver(refuse_first: u32) -> Receiver {
    let (tx, rx) = mpsc::unbounded_channel();
    let hits = Arc::new(AtomicU32::new(0));
    let counter = Arc::clone(&hits);
    let app = axum::Router::new().route(
        "/webhooks/whatsapp",
        post(move |headers: HeaderMap, raw: Bytes| {
            let tx = tx.clone();
            let counter = Arc::clone(&counter);
            async move {
                let n = counter.fetch_add(1, Ordering::SeqCst);
                if n < refuse_first {
                    return StatusCode::INTERNAL_SERVER_ERROR;
                }
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string()
                };
                let json = serde_json::from_slice(&raw).expect("webhook body is JSON");
                let _ = tx.send(Received {
                    signature: header("x-hub-signature-256"),
                    content_type: header("content-type"),
                    raw,
                    json,
                });
                StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/webhooks/whatsapp", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    Receiver {
        url,
        rx: Mutex::new(rx),
        hits,
    }
}

pub struct TestSim {
    pub base: String,
    pub sim: Arc<Simulator>,
    pub clock: ManualClock,
    pub hooks: Receiver,
    pub http: reqwest::Client,
}

impl TestSim {
    pub fn graph_url(&self) -> String {
        format!("{}/graph/v23.0/{PHONE_NUMBER_ID}/messages", self.base)
    }

    /// POSTs a body to the Graph messages endpoint with the right token.
    pub async fn send(&self, body: &Value) -> (u16, Value) {
        let r = self
            .http
            .post(self.graph_url())
            .bearer_auth(TOKEN)
            .json(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap())
    }

    /// A free-form text from the business to `to`; returns the wamid (panics unless accepted).
    pub async fn send_text(&self, to: &str, body: &str) -> String {
        let (status, v) = self
            .send(&serde_json::json!({"messaging_product":"whatsapp","to":to,"type":"text","text":{"body":body}}))
            .await;
        assert_eq!(status, 200, "{v}");
        v["messages"][0]["id"].as_str().unwrap().to_string()
    }

    /// The phone writes `text` to the business through the phone API.
    pub async fn phone_writes(&self, phone: &str, text: &str) -> Value {
        let r = self
            .http
            .post(format!("{}/phones/{phone}/messages", self.base))
            .json(&serde_json::json!({"to": DISPLAY, "text": text}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        r.json().await.unwrap()
    }
}

/// An approved template with `params` body placeholders (`{{1}}`…) and one quick reply per label.
pub fn quick_reply_template(name: &str, language: &str, params: usize, labels: &[&str]) -> SimTemplate {
    let body: Vec<String> = (1..=params).map(|i| format!("{{{{{i}}}}}")).collect();
    let mut components = vec![serde_json::json!({"type":"BODY","text":format!("Hello {}.", body.join(" and "))})];
    if !labels.is_empty() {
        let buttons: Vec<Value> = labels
            .iter()
            .map(|l| serde_json::json!({"type":"QUICK_REPLY","text":l}))
            .collect();
        components.push(serde_json::json!({"type":"BUTTONS","buttons":buttons}));
    }
    SimTemplate {
        name: name.into(),
        language: language.into(),
        category: "MARKETING".into(),
        components: Value::Array(components),
    }
}

/// A simulator with instant statuses and a manual clock, sending webhooks to a fresh receiver.
pub async fn start() -> TestSim {
    start_with(0, |_| {}).await
}

/// Like [`start`], with a receiver refusing the first `refuse_first` webhooks and a config tweak.
pub async fn start_with(refuse_first: u32, tweak: impl FnOnce(&mut SimConfig)) -> TestSim {
    let hooks = start_receiver(refuse_first).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let mut config = SimConfig {
        webhook_url: hooks.url.clone(),
        delivered_after_ms: 0,
        read_after_ms: 0,
        public_base_url: base.clone(),
        ..SimConfig::default()
    };
    tweak(&mut config);
    let clock = ManualClock::new(1_750_000_000_000);
    let shared: SharedClock = Arc::new(clock.clone());
    let sim = Simulator::new(config, shared);
    let app = sim.router();
    tokio::spawn(async move { axum::serve(listener, app).await });
    TestSim {
        base,
        sim,
        clock,
        hooks,
        http: reqwest::Client::new(),
    }
}
