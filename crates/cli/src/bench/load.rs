//! The load generator: unique, correctly signed Cloud API webhooks over loopback.
//!
//! Two ways to drive the server:
//! - **closed loop** ([`closed_loop`]): N workers, each sending its next request as soon as the last
//!   one is answered. Finds the peak rate; its latencies are those of a saturated server.
//! - **open loop** ([`open_loop`]): requests scheduled at a fixed rate, each sent at its intended time
//!   (whether or not earlier ones were answered) and its latency measured **from the intended time**.
//!   A server that stalls therefore cannot hide the requests that queued behind the stall (no
//!   coordinated omission): a late send counts as latency.

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::Request;
use hyper_util::rt::TokioIo;
use sha2::Sha256;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// The app secret the benchmark's server is configured with.
pub const APP_SECRET: &str = "bench-secret";
/// The registered business number (display form) and its Cloud API id.
pub const DISPLAY_NUMBER: &str = "15550001000";
pub const PHONE_NUMBER_ID: &str = "100000000000001";
/// Messages are spread over this many contacts, so contact and conversation upserts do real work.
pub const CONTACTS: u64 = 10_000;

/// `X-Hub-Signature-256` as Meta computes it: `sha256=` + hex(HMAC-SHA256(app secret, raw body)).
#[derive(Clone)]
pub struct Signer {
    mac: Hmac<Sha256>,
}

impl Signer {
    pub fn new(secret: &str) -> anyhow::Result<Self> {
        let mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|e| anyhow::anyhow!("HMAC key: {e}"))?;
        Ok(Self { mac })
    }

    pub fn sign(&self, body: &[u8]) -> String {
        let mut mac = self.mac.clone();
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }
}

/// The provider message id of the benchmark's `seq`-th message in run `run`.
pub fn wamid(run: &str, seq: u64) -> String {
    format!("{}{seq:012}", wamid_prefix(run))
}

/// What every provider message id of run `run` starts with (no `_` or `%`: usable in `like`).
pub fn wamid_prefix(run: &str) -> String {
    format!("wamid.BENCH{run}x")
}

/// A contact's WhatsApp id (its number's digits): 10,000 distinct, valid numbers.
fn contact_digits(seq: u64) -> String {
    format!("1555{:07}", 2_000_000 + seq % CONTACTS)
}

fn unix_seconds() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// A Cloud API text-message webhook, shaped exactly as Meta sends it.
pub fn message_body(run: &str, seq: u64) -> String {
    let from = contact_digits(seq);
    let contact = seq % CONTACTS;
    format!(
        concat!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"200000000000001","changes":[{{"field":"messages","value":{{"#,
            r#""messaging_product":"whatsapp","metadata":{{"display_phone_number":"{display}","phone_number_id":"{pnid}"}},"#,
            r#""contacts":[{{"profile":{{"name":"Bench Contact {contact}"}},"wa_id":"{from}"}}],"#,
            r#""messages":[{{"from":"{from}","id":"{wamid}","timestamp":"{ts}","type":"text","text":{{"body":"Benchmark message {seq}: hello, is my appointment still on?"}}}}]"#,
            r#"}}}}]}}]}}"#
        ),
        display = DISPLAY_NUMBER,
        pnid = PHONE_NUMBER_ID,
        contact = contact,
        from = from,
        wamid = wamid(run, seq),
        ts = unix_seconds(),
        seq = seq,
    )
}

/// A Cloud API status webhook (`sent`, `delivered`, `read`) for the message `wamid`.
pub fn status_body(wamid: &str, status: &str, recipient_seq: u64) -> String {
    format!(
        concat!(
            r#"{{"object":"whatsapp_business_account","entry":[{{"id":"200000000000001","changes":[{{"field":"messages","value":{{"#,
            r#""messaging_product":"whatsapp","metadata":{{"display_phone_number":"{display}","phone_number_id":"{pnid}"}},"#,
            r#""statuses":[{{"id":"{wamid}","status":"{status}","timestamp":"{ts}","recipient_id":"{to}"}}]"#,
            r#"}}}}]}}]}}"#
        ),
        display = DISPLAY_NUMBER,
        pnid = PHONE_NUMBER_ID,
        wamid = wamid,
        status = status,
        ts = unix_seconds(),
        to = contact_digits(recipient_seq),
    )
}

/// Makes the body of the request with sequence number `seq`.
pub type MakeBody = Arc<dyn Fn(u64) -> String + Send + Sync>;

/// How a request proves who sent it.
#[derive(Clone)]
pub enum Auth {
    /// A provider webhook: `X-Hub-Signature-256` over the body.
    Webhook(Signer),
    /// An API call: `Authorization: Bearer <token>`.
    Bearer(String),
}

/// The load generator's HTTP/1.1 client: hyper's connection-level API, one request at a time on
/// each connection, connections kept for reuse. A general-purpose client (reqwest: pooling keyed by
/// host, URL parsing, redirect and timeout layers per request) cost the generator about as much CPU
/// as the no-storage ceiling cost the server, and the two share this machine's cores: every
/// cycle the generator spends is one the server under test does not get.
pub struct Conns {
    /// `host:port`.
    addr: String,
    idle: std::sync::Mutex<Vec<SendRequest<Full<Bytes>>>>,
}

impl Conns {
    fn new(addr: String) -> Self {
        Self {
            addr,
            idle: std::sync::Mutex::new(Vec::new()),
        }
    }

    fn take_idle(&self) -> Option<SendRequest<Full<Bytes>>> {
        let mut idle = self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        while let Some(c) = idle.pop() {
            if !c.is_closed() {
                return Some(c);
            }
        }
        None
    }

    async fn connect(&self) -> Result<SendRequest<Full<Bytes>>, String> {
        let stream = tokio::net::TcpStream::connect(&self.addr)
            .await
            .map_err(|e| format!("connecting to {}: {e}", self.addr))?;
        let _ = stream.set_nodelay(true);
        let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| format!("HTTP handshake: {e}"))?;
        // Runs until the sender is dropped or the server closes the connection.
        tokio::spawn(conn);
        Ok(sender)
    }

    /// Sends `request` on an idle connection (or a new one), reads the answer to its end and keeps
    /// the connection; answers the status.
    async fn send(&self, request: Request<Full<Bytes>>) -> Result<u16, String> {
        let mut conn = match self.take_idle() {
            Some(c) => c,
            None => self.connect().await?,
        };
        conn.ready().await.map_err(|e| e.to_string())?;
        let res = conn.send_request(request).await.map_err(|e| e.to_string())?;
        let status = res.status().as_u16();
        res.into_body().collect().await.map_err(|e| e.to_string())?;
        self.idle
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(conn);
        Ok(status)
    }
}

/// `http://host:port/path` → (`host:port`, `/path`).
fn split_url(url: &str) -> (String, String) {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    match rest.find('/') {
        Some(i) => (rest[..i].to_owned(), rest[i..].to_owned()),
        None => (rest.to_owned(), "/".to_owned()),
    }
}

/// Where and what to send.
pub struct Target {
    conns: Conns,
    /// The path requests go to (for `get`, what `make` returns is appended).
    path: String,
    pub auth: Auth,
    /// `true`: `GET url + make(seq)`; `false`: `POST url` with `make(seq)` as the JSON body.
    pub get: bool,
    pub make: MakeBody,
    /// The next sequence number (shared by every run against this target).
    pub next: AtomicU64,
}

impl Target {
    /// Signed webhooks posted to `url` (`http://host:port/path`).
    pub fn new(url: &str, signer: Signer, make: MakeBody) -> Arc<Self> {
        Self::with(url, Auth::Webhook(signer), false, make)
    }

    /// API calls with a bearer token: `POST url` with a JSON body, or (`get`) `GET url + suffix`.
    pub fn api(url: &str, token: String, get: bool, make: MakeBody) -> Arc<Self> {
        Self::with(url, Auth::Bearer(token), get, make)
    }

    fn with(url: &str, auth: Auth, get: bool, make: MakeBody) -> Arc<Self> {
        let (addr, path) = split_url(url);
        Arc::new(Self {
            conns: Conns::new(addr),
            path,
            auth,
            get,
            make,
            next: AtomicU64::new(0),
        })
    }

    async fn send(&self, seq: u64) -> Result<u16, String> {
        let made = (self.make)(seq);
        let builder = Request::builder().header("host", &self.conns.addr);
        let builder = if self.get {
            builder.method("GET").uri(format!("{}{made}", self.path))
        } else {
            let builder = builder
                .method("POST")
                .uri(&self.path)
                .header("content-type", "application/json");
            match &self.auth {
                Auth::Webhook(signer) => builder.header("x-hub-signature-256", signer.sign(made.as_bytes())),
                Auth::Bearer(_) => builder,
            }
        };
        let builder = match &self.auth {
            Auth::Bearer(token) => builder.header("authorization", format!("Bearer {token}")),
            Auth::Webhook(_) => builder,
        };
        let body = if self.get { Bytes::new() } else { Bytes::from(made) };
        let request = builder.body(Full::new(body)).map_err(|e| e.to_string())?;
        // Generous: a request that times out may still have been stored, which the correctness
        // check would then report.
        match tokio::time::timeout(Duration::from_secs(60), self.conns.send(request)).await {
            Ok(outcome) => outcome,
            Err(_) => Err("no answer within 60 s".into()),
        }
    }
}

/// What one run did.
#[derive(Default)]
pub struct RunStats {
    /// Requests answered 2xx (for webhooks: acknowledged, hence committed; for sends: accepted).
    pub ok: u64,
    /// Requests answered with another status.
    pub rejected: u64,
    /// Requests that got no answer (connection errors).
    pub errors: u64,
    /// The first non-200 answer or error, for the notes.
    pub first_problem: Option<String>,
    /// Latency of every answered request, in microseconds.
    pub latencies_us: Vec<u32>,
    /// The sequence numbers answered 2xx.
    pub ok_seqs: Vec<u64>,
    /// From the first send to the last answer.
    pub elapsed: Duration,
}

impl RunStats {
    fn record(&mut self, seq: u64, outcome: Result<u16, String>, latency: Duration) {
        match outcome {
            Ok(status) if (200..300).contains(&status) => {
                self.ok += 1;
                self.ok_seqs.push(seq);
                self.latencies_us
                    .push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
            }
            Ok(status) => {
                self.rejected += 1;
                self.latencies_us
                    .push(u32::try_from(latency.as_micros()).unwrap_or(u32::MAX));
                self.first_problem.get_or_insert_with(|| format!("HTTP {status}"));
            }
            Err(e) => {
                self.errors += 1;
                self.first_problem.get_or_insert(e);
            }
        }
    }

    fn merge(&mut self, other: RunStats) {
        self.ok += other.ok;
        self.rejected += other.rejected;
        self.errors += other.errors;
        if self.first_problem.is_none() {
            self.first_problem = other.first_problem;
        }
        self.latencies_us.extend(other.latencies_us);
        self.ok_seqs.extend(other.ok_seqs);
    }

    /// Acknowledged requests per second.
    pub fn rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs > 0.0 {
            self.ok as f64 / secs
        } else {
            0.0
        }
    }

    /// The `q` quantile (0..=1) of the latencies, in milliseconds.
    pub fn quantile_ms(&mut self, q: f64) -> Option<f64> {
        if self.latencies_us.is_empty() {
            return None;
        }
        self.latencies_us.sort_unstable();
        let last = self.latencies_us.len() - 1;
        let i = ((last as f64) * q).round() as usize;
        self.latencies_us.get(i.min(last)).map(|&us| f64::from(us) / 1000.0)
    }
}

/// `concurrency` workers send back to back for `duration`; requests in flight at the end are
/// finished (and counted), never abandoned, so every acknowledgement is seen.
pub async fn closed_loop(target: Arc<Target>, concurrency: usize, duration: Duration) -> RunStats {
    let start = Instant::now();
    let deadline = start + duration;
    let mut workers = JoinSet::new();
    for _ in 0..concurrency.max(1) {
        let target = target.clone();
        workers.spawn(async move {
            let mut stats = RunStats::default();
            while Instant::now() < deadline {
                let seq = target.next.fetch_add(1, Ordering::Relaxed);
                let sent = Instant::now();
                let outcome = target.send(seq).await;
                stats.record(seq, outcome, sent.elapsed());
            }
            stats
        });
    }
    let mut total = RunStats::default();
    while let Some(done) = workers.join_next().await {
        if let Ok(stats) = done {
            total.merge(stats);
        }
    }
    total.elapsed = start.elapsed();
    total
}

/// Sends `rate` requests per second for `duration`, each at its scheduled time, and measures each
/// latency from that scheduled time. At most `max_in_flight` requests are outstanding (to bound
/// sockets and memory); a request that waits for a slot is late, and its lateness counts.
pub async fn open_loop(target: Arc<Target>, rate: f64, duration: Duration, max_in_flight: usize) -> RunStats {
    let count = (rate * duration.as_secs_f64()).round().max(1.0) as u64;
    let interval = Duration::from_secs_f64(1.0 / rate.max(1.0));
    let slots = Arc::new(tokio::sync::Semaphore::new(max_in_flight.max(1)));
    let mut total = RunStats::default();
    let mut in_flight = JoinSet::new();
    let start = Instant::now();
    for i in 0..count {
        let intended = start + interval.mul_f64(i as f64);
        tokio::time::sleep_until(intended).await;
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let target = target.clone();
        in_flight.spawn(async move {
            let seq = target.next.fetch_add(1, Ordering::Relaxed);
            let outcome = target.send(seq).await;
            drop(slot);
            (seq, outcome, intended.elapsed())
        });
        while let Some(done) = in_flight.try_join_next() {
            if let Ok((seq, outcome, latency)) = done {
                total.record(seq, outcome, latency);
            }
        }
    }
    while let Some(done) = in_flight.join_next().await {
        if let Ok((seq, outcome, latency)) = done {
            total.record(seq, outcome, latency);
        }
    }
    total.elapsed = start.elapsed();
    total
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_are_valid_cloud_api_webhooks_with_unique_ids() {
        let a: serde_json::Value = serde_json::from_str(&message_body("r1", 1)).unwrap();
        let b: serde_json::Value = serde_json::from_str(&message_body("r1", 2)).unwrap();
        let value = &a["entry"][0]["changes"][0]["value"];
        assert_eq!(value["metadata"]["phone_number_id"], PHONE_NUMBER_ID);
        assert_eq!(value["messages"][0]["type"], "text");
        assert_eq!(value["contacts"][0]["wa_id"], value["messages"][0]["from"]);
        assert_ne!(
            value["messages"][0]["id"],
            b["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
        );
        let s: serde_json::Value = serde_json::from_str(&status_body("wamid.X", "read", 3)).unwrap();
        assert_eq!(s["entry"][0]["changes"][0]["value"]["statuses"][0]["status"], "read");
    }

    #[test]
    fn signatures_match_metas_scheme() {
        // HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog"), a published test vector.
        let s = Signer::new("key").unwrap();
        assert_eq!(
            s.sign(b"The quick brown fox jumps over the lazy dog"),
            "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
    }

    #[test]
    fn quantiles() {
        let mut s = RunStats {
            latencies_us: (1..=100).map(|i| i * 1000).collect(),
            ..RunStats::default()
        };
        assert_eq!(s.quantile_ms(0.5), Some(51.0));
        assert_eq!(s.quantile_ms(0.99), Some(99.0));
        assert_eq!(RunStats::default().quantile_ms(0.5), None);
    }
}
