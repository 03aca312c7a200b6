//! The `pacing` scenario (issue 4, scenario 4): the dispatcher of a real `openline serve` sending a
//! backlog through the WhatsApp simulator, with the sender number's throughput set to 80/s (Meta's
//! default) and then 1,000/s (the most Meta grants). One run per rate, each on a fresh server and
//! database, with its own simulator in this process configured for the same rate (so it answers
//! 130429 to anything over it, as Meta would) and a sink for its status webhooks (so the figures are
//! the dispatcher's, not webhook ingest's).
//!
//! A backlog of `rate × seconds` template messages, one per contact, is written to the database
//! held back, then released at once. Measured at the simulator, as each send arrives: the most sends
//! in any one-second window (must not exceed the rate), the achieved rate from the first send to the
//! last, and sends the simulator refused. Measured on the server: CPU time (`utime + stime` from
//! `/proc/PID/stat`) over the run.

use super::load::{DISPLAY_NUMBER, PHONE_NUMBER_ID};
use super::server::{Backend, BenchServer};
use super::{progress, Row};
use anyhow::{bail, Context};
use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use openline_domain::clock::{Clock, SystemClock};
use openline_domain::{Channel, MessageKind};
use openline_sim::{SimBusinessNumber, SimConfig, Simulator};
use openline_store::{contacts, conversations, messages, pacing, senders, Store};
use serde_json::json;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Throughputs measured, messages per second per number.
pub const RATES: [u32; 2] = [80, 1_000];
/// Messages written per transaction while seeding the backlog.
const SEED_BATCH: usize = 500;
/// Linux reports `/proc/PID/stat` times in USER_HZ ticks, fixed at 100 per second by its ABI.
const TICKS_PER_SECOND: f64 = 100.0;

/// What the simulator saw: when each send arrived (ms since the recorder started) and how it was
/// answered.
struct Recorder {
    start: Instant,
    accepted: Mutex<Vec<u64>>,
    refused: Mutex<Vec<u16>>,
}

impl Recorder {
    fn accepted(&self) -> usize {
        self.accepted.lock().map(|v| v.len()).unwrap_or(0)
    }
}

async fn record(rec: Arc<Recorder>, req: Request, next: Next) -> Response {
    let is_send = req.method() == Method::POST
        && req.uri().path().starts_with("/graph/")
        && req.uri().path().ends_with("/messages");
    let arrived = u64::try_from(rec.start.elapsed().as_millis()).unwrap_or(u64::MAX);
    let response = next.run(req).await;
    if is_send {
        if response.status() == StatusCode::OK {
            if let Ok(mut v) = rec.accepted.lock() {
                v.push(arrived);
            }
        } else if let Ok(mut v) = rec.refused.lock() {
            v.push(response.status().as_u16());
        }
    }
    response
}

/// The most arrival times (sorted, ms) within any one second.
fn most_in_one_second(sorted: &[u64]) -> usize {
    (0..sorted.len())
        .map(|i| sorted[i..].iter().take_while(|t| **t < sorted[i] + 1_000).count())
        .max()
        .unwrap_or(0)
}

/// The server's CPU time so far, in seconds (`utime + stime`).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after its closing parenthesis are
    // state (3), …, utime (14), stime (15).
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) / TICKS_PER_SECOND)
}

pub async fn run(backend: &Backend, seconds: f64) -> anyhow::Result<Vec<Row>> {
    let mut rows = Vec::new();
    for rate in RATES {
        rows.push(run_one(backend, rate, seconds).await?);
    }
    Ok(rows)
}

async fn run_one(backend: &Backend, rate: u32, seconds: f64) -> anyhow::Result<Row> {
    // The simulator, as Meta at this rate, recording every send.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("binding the simulator")?;
    let addr = listener.local_addr()?;
    let config = SimConfig {
        access_token: "x".into(),
        webhook_url: format!("http://{addr}/sink"),
        public_base_url: format!("http://{addr}"),
        business_numbers: vec![SimBusinessNumber {
            phone_number_id: PHONE_NUMBER_ID.into(),
            display_phone_number: DISPLAY_NUMBER.into(),
            waba_id: "300000000000001".into(),
            verified_name: "Bench".into(),
        }],
        personas: Vec::new(),
        delivered_after_ms: 0,
        read_after_ms: 0,
        throughput_per_s: rate,
        ..SimConfig::default()
    };
    let sim = Simulator::new(config, Arc::new(SystemClock));
    let rec = Arc::new(Recorder {
        start: Instant::now(),
        accepted: Mutex::new(Vec::new()),
        refused: Mutex::new(Vec::new()),
    });
    let layer_rec = rec.clone();
    let router = sim
        .router()
        .route("/sink", axum::routing::post(|| async { StatusCode::OK }))
        .layer(axum::middleware::from_fn(move |req: Request, next: Next| {
            record(layer_rec.clone(), req, next)
        }));
    let serving = tokio::spawn(async move { axum::serve(listener, router).await });

    progress(&format!("pacing: starting openline serve for {rate}/s"));
    let mut srv = BenchServer::start_with_env(
        backend,
        &[("OPENLINE_WHATSAPP_GRAPH_BASE_URL", format!("http://{addr}/graph"))],
    )
    .await?;
    let n = ((f64::from(rate) * seconds).ceil() as usize).max(2);
    progress(&format!("pacing: writing {n} messages to {n} contacts, held back"));
    let store = Store::open(&srv.database).map_err(|e| anyhow::anyhow!("opening the benchmark database: {e}"))?;
    seed(&store, rate, n).await?;

    progress(&format!("pacing: releasing them at {rate}/s"));
    let cpu_before = cpu_seconds(srv.pid);
    let started = Instant::now();
    let now = SystemClock.now();
    store
        .write(move |c| {
            c.execute(
                "update outbox set next_attempt_at = ? where state = 'pending'",
                &[openline_store::Val::from(now)],
            )
        })
        .await
        .map_err(|e| anyhow::anyhow!("releasing the backlog: {e}"))?;
    drop(store);
    let deadline = started + Duration::from_secs_f64(seconds * 5.0 + 60.0);
    while rec.accepted() < n {
        if Instant::now() > deadline {
            break;
        }
        if let Some(status) = srv.exited() {
            bail!("openline serve exited during the pacing run ({status})");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_before.zip(cpu_seconds(srv.pid)).map(|(a, b)| b - a);
    drop(srv);
    serving.abort();

    let mut at = rec.accepted.lock().map(|v| v.clone()).unwrap_or_default();
    at.sort_unstable();
    let refused = rec.refused.lock().map(|v| v.clone()).unwrap_or_default();
    let sent = at.len();
    let most = most_in_one_second(&at);
    let span_s = match (at.first(), at.last()) {
        (Some(f), Some(l)) if l > f => (l - f) as f64 / 1_000.0,
        _ => 0.0,
    };
    // Sends after the first, over the time they took: the rate the number was driven at.
    let achieved = (span_s > 0.0).then(|| (sent - 1) as f64 / span_s);

    let mut row = Row::new(format!("pacing@{rate}/s"));
    row.rate_per_s = achieved;
    let cpu_note = cpu.map_or_else(
        || "server CPU unavailable (reads /proc/PID/stat; Linux only)".to_owned(),
        |c| {
            format!(
                "server CPU {c:.2} s over {wall:.1} s ({:.0}% of one core)",
                100.0 * c / wall
            )
        },
    );
    row.notes = format!(
        "{sent} of {n} template sends to {n} contacts from one number set to {rate}/s, measured at the simulator: most in any one second {most} (limit {rate}), {achieved:.0}/s achieved; {} refused by the simulator; {cpu_note}",
        refused.len(),
        achieved = achieved.unwrap_or(0.0),
    );
    if sent < n {
        row.notes
            .push_str(&format!("; only {sent} of {n} sent before the deadline"));
    }
    row.extra.insert("configured_per_s".into(), json!(rate));
    row.extra.insert("messages".into(), json!(n));
    row.extra.insert("sent".into(), json!(sent));
    row.extra.insert("most_in_one_second".into(), json!(most));
    row.extra.insert("refused".into(), json!(refused.len()));
    row.extra.insert(
        "server_cpu_seconds".into(),
        json!(cpu.map(|c| (c * 100.0).round() / 100.0)),
    );
    row.extra.insert(
        "server_cpu_percent".into(),
        json!(cpu.map(|c| (1_000.0 * c / wall).round() / 10.0)),
    );
    Ok(row)
}

/// Writes `n` template messages to `n` new contacts from the benchmark's number, due far in the
/// future (so seeding does not race the dispatcher), and sets the number's throughput to `rate`.
async fn seed(store: &Store, rate: u32, n: usize) -> anyhow::Result<()> {
    let now = SystemClock.now();
    let sender = store
        .write(move |c| {
            let sender = senders::all(c)?
                .into_iter()
                .find(|s| s.phone_number_id == PHONE_NUMBER_ID)
                .ok_or(openline_store::StoreError::NotFound)?;
            pacing::set_sender_throughput(
                c,
                &sender.org_id,
                &sender.id,
                i64::from(rate),
                &openline_store::journal::Actor::Cli,
                now,
            )
        })
        .await
        .map_err(|e| anyhow::anyhow!("finding the benchmark's sender: {e}"))?;
    let held_until = now + 86_400_000;
    let template = json!({"name": "hello_world", "language": "en_US", "body_parameters": []});
    for start in (0..n).step_by(SEED_BATCH) {
        let end = (start + SEED_BATCH).min(n);
        let (sender, template) = (sender.clone(), template.clone());
        store
            .write(move |c| {
                for i in start..end {
                    let phone = format!("+1555{:07}", 2_000_000 + i);
                    let contact = contacts::create(c, &sender.org_id, &phone, None, now)?;
                    let conversation = conversations::find_or_create_open(
                        c,
                        &sender.org_id,
                        Channel::Whatsapp,
                        &contact.id,
                        &sender.id,
                        now,
                    )?;
                    messages::insert_outbound(
                        c,
                        &messages::NewOutbound {
                            org_id: &sender.org_id,
                            conversation_id: &conversation,
                            sender_id: &sender.id,
                            author_user_id: None,
                            kind: MessageKind::Template,
                            body: Some("Welcome and congratulations!!"),
                            template: Some(&template),
                            queue_reason: None,
                            business_initiated: true,
                            now,
                        },
                    )?;
                }
                c.execute(
                    "update outbox set next_attempt_at = ? where state = 'pending'",
                    &[openline_store::Val::from(held_until)],
                )
            })
            .await
            .map_err(|e| anyhow::anyhow!("seeding the backlog: {e}"))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_busiest_second_is_found_anywhere() {
        assert_eq!(most_in_one_second(&[]), 0);
        assert_eq!(most_in_one_second(&[0, 999, 1_000, 1_500, 1_999]), 3);
        assert_eq!(most_in_one_second(&[0, 1_000, 2_000]), 1);
    }

    #[test]
    fn cpu_time_is_read_for_this_process() {
        assert!(cpu_seconds(std::process::id()).is_some());
    }
}
