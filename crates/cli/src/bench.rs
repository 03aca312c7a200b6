//! `openline bench`: starts a real `openline serve` (a child process of this binary) on a fresh
//! database, drives it over loopback with its own load generator, and prints one table.
//!
//! Every figure stands beside the **ceiling measured in the same run**: `POST /bench/ceiling` on the
//! same server does the same signature check and JSON parse as `/webhooks/whatsapp` but stores
//! nothing, so "ingest is 0.4 × the ceiling" holds on a noisy machine where absolute rates do not.
//! The load generator shares the machine with the server, on both the ceiling and the measured run.
//!
//! Scenarios (issue 4): `ceiling`, `ingest` (closed-loop peak, then open-loop at 1,000/s and 4,000/s
//! with latency measured from each request's intended send time), `status` (sent/delivered/read
//! webhooks), `memory` (the server's RSS idle and at its peak during ingest), `pacing` (the dispatcher
//! against the simulator at 80/s and 1,000/s per number; see `bench/pacing.rs`), `outbound` (API
//! sends through authentication, policy and the outbox commit) and `inbox` (listing and opening
//! threads at 1,000,000 messages; see `bench/api.rs`). After ingest, the messages in the database are
//! counted and compared with the webhooks acknowledged: every acknowledged webhook must be stored
//! exactly once; after outbound, the sends stored are compared with the sends accepted.

mod api;
mod load;
mod pacing;
mod server;

use anyhow::{bail, Context};
use clap::{Args, ValueEnum};
use load::{RunStats, Signer, Target};
use serde_json::{json, Value};
use server::{Backend, BenchServer};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Args)]
pub struct BenchArgs {
    /// Which scenario to run (ingest, status and memory also run the ceiling and ingest they need)
    #[arg(long, value_enum, default_value_t = Scenario::All)]
    scenario: Scenario,
    /// Seconds per measured run
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// The database the server runs on
    #[arg(long, value_enum, default_value_t = BackendArg::Sqlite)]
    backend: BackendArg,
    /// PostgreSQL server (and an existing database on it to connect to) where a fresh
    /// `openline_bench_…` database is created, and dropped afterwards
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    database_url: String,
    /// Print one JSON object per scenario (one per line) instead of the table
    #[arg(long)]
    json: bool,
    /// Every implemented scenario for about a second: checks that the benchmark works, not speed
    #[arg(long)]
    smoke: bool,
    /// Seconds of sending per rate in the pacing scenario (--smoke: 1.5)
    #[arg(long, default_value_t = 20.0)]
    pacing_seconds: f64,
    /// Connections of the closed-loop (peak rate) runs. Group commit shares one durable commit
    /// among the requests waiting, so the peak needs enough of them in flight (Meta delivers a busy
    /// number's webhooks over many connections); 64 gives about half the peak of 256 here
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    All,
    Ceiling,
    Ingest,
    Status,
    Outbound,
    Pacing,
    Inbox,
    Memory,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum BackendArg {
    Sqlite,
    Postgres,
}

/// Fixed rates of the open-loop ingest runs (issue 4's targets are stated at 4,000/s).
const OPEN_LOOP_RATES: [f64; 2] = [1_000.0, 4_000.0];
/// The same in smoke mode, low enough for a debug build to keep up (smoke checks that the
/// benchmark works, not how fast the server is).
const SMOKE_OPEN_LOOP_RATES: [f64; 2] = [100.0, 400.0];
/// Outstanding requests an open-loop run allows before a send waits (and is measured as late).
const MAX_IN_FLIGHT: usize = 1_024;

/// One line of the report.
struct Row {
    scenario: String,
    implemented: bool,
    rate_per_s: Option<f64>,
    p50_ms: Option<f64>,
    p99_ms: Option<f64>,
    ceiling_per_s: Option<f64>,
    notes: String,
    extra: serde_json::Map<String, Value>,
}

impl Row {
    fn new(scenario: impl Into<String>) -> Self {
        Self {
            scenario: scenario.into(),
            implemented: true,
            rate_per_s: None,
            p50_ms: None,
            p99_ms: None,
            ceiling_per_s: None,
            notes: String::new(),
            extra: serde_json::Map::new(),
        }
    }

    fn measured(scenario: &str, stats: &mut RunStats, ceiling: Option<f64>, notes: String) -> Self {
        let mut row = Self::new(scenario);
        row.rate_per_s = Some(stats.rate());
        row.p50_ms = stats.quantile_ms(0.50);
        row.p99_ms = stats.quantile_ms(0.99);
        row.ceiling_per_s = ceiling;
        row.notes = notes;
        row.extra.insert("acknowledged".into(), json!(stats.ok));
        row.extra
            .insert("rejected".into(), json!(stats.rejected + stats.errors));
        if let Some(p) = &stats.first_problem {
            row.notes.push_str(&format!(
                "; {} not acknowledged (first: {p})",
                stats.rejected + stats.errors
            ));
        }
        row
    }

    fn ratio(&self) -> Option<f64> {
        match (self.rate_per_s, self.ceiling_per_s) {
            (Some(r), Some(c)) if c > 0.0 => Some(r / c),
            _ => None,
        }
    }

    fn to_json(&self, common: &Value) -> Value {
        let round = |v: Option<f64>, places: i32| {
            v.map(|x| {
                let f = 10f64.powi(places);
                (x * f).round() / f
            })
        };
        let mut obj = serde_json::Map::new();
        obj.insert("scenario".into(), json!(self.scenario));
        obj.insert("implemented".into(), json!(self.implemented));
        obj.insert("rate_per_s".into(), json!(round(self.rate_per_s, 1)));
        obj.insert("p50_ms".into(), json!(round(self.p50_ms, 3)));
        obj.insert("p99_ms".into(), json!(round(self.p99_ms, 3)));
        obj.insert("ceiling_per_s".into(), json!(round(self.ceiling_per_s, 1)));
        obj.insert("ratio".into(), json!(round(self.ratio(), 3)));
        obj.insert("notes".into(), json!(self.notes));
        for (k, v) in &self.extra {
            obj.insert(k.clone(), v.clone());
        }
        // A row's own figures win: the pacing rows carry their own `seconds`.
        if let Value::Object(c) = common {
            for (k, v) in c {
                obj.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        Value::Object(obj)
    }
}

/// Progress goes to stderr, so stdout is only the table (or the JSON lines).
fn progress(msg: &str) {
    eprintln!("bench: {msg}");
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

pub async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let seconds = if args.smoke { 1.0 } else { args.seconds };
    if !(seconds > 0.0 && seconds <= 3600.0) {
        bail!("--seconds must be more than 0 and at most 3600");
    }
    let run_for = Duration::from_secs_f64(seconds);
    let want = |s: Scenario| args.scenario == Scenario::All || args.scenario == s;
    // The scenarios run on the first server (outbound needs only its ceiling).
    let on_first_server = [
        Scenario::Ceiling,
        Scenario::Ingest,
        Scenario::Status,
        Scenario::Memory,
        Scenario::Outbound,
    ];
    let run_server = on_first_server.iter().any(|&s| want(s));
    let run_ingest = want(Scenario::Ingest) || want(Scenario::Status) || want(Scenario::Memory);

    let backend = match args.backend {
        BackendArg::Sqlite => Backend::Sqlite,
        BackendArg::Postgres => Backend::Postgres(args.database_url.clone()),
    };
    let backend_name = match args.backend {
        BackendArg::Sqlite => "sqlite",
        BackendArg::Postgres => "postgres",
    };
    let build = if cfg!(debug_assertions) { "debug" } else { "release" };
    let common = json!({
        "backend": backend_name,
        "seconds": seconds,
        "build": build,
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
    });

    let mut rows = Vec::new();
    // What the table's header says each run lasted: the pacing scenario has its own duration.
    let mut durations = Vec::new();
    if run_server || want(Scenario::Inbox) {
        durations.push(format!("{seconds} s per run"));
    }
    let mut correctness: Option<(u64, i64, i64)> = None;
    let mut ceiling: Option<f64> = None;
    if run_server {
        progress(&format!("starting openline serve on {backend_name} ({build} build)"));
        let mut srv = BenchServer::start(&backend).await?;
        // For reading the server's outcome counters; the load itself goes through `load::Target`.
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .context("building the HTTP client")?;
        let signer = Signer::new(load::APP_SECRET)?;
        let run_id = format!("{:x}", std::process::id());

        // Idle memory, before any load.
        tokio::time::sleep(Duration::from_millis(if args.smoke { 200 } else { 1_000 })).await;
        let rss_idle = srv.rss_bytes();

        // 1. The ceiling: same bodies, same signature check and parse, nothing stored.
        progress(&format!(
            "ceiling: closed loop, {} connections, {seconds} s",
            args.concurrency
        ));
        let ceiling_run = {
            let rid = run_id.clone();
            let make: load::MakeBody = Arc::new(move |seq| load::message_body(&format!("c{rid}"), seq));
            let target = Target::new(&format!("{}/bench/ceiling", srv.url), signer.clone(), make);
            load::closed_loop(target, args.concurrency, run_for).await
        };
        check_alive(&mut srv)?;
        ceiling = (ceiling_run.ok > 0).then(|| ceiling_run.rate());
        let mut ceiling_run = ceiling_run;
        rows.push(Row::measured(
            "ceiling",
            &mut ceiling_run,
            ceiling,
            format!(
                "closed loop, {} connections: signature check + JSON parse, no storage",
                args.concurrency
            ),
        ));

        // 2. Ingest: the full pipeline, acknowledged after the durable commit.
        let mut acked_seqs: Vec<u64> = Vec::new();
        let mut rss_peak = None;
        if run_ingest {
            let peak = Arc::new(AtomicU64::new(rss_idle.unwrap_or_default()));
            let sampler = {
                let peak = peak.clone();
                let pid = srv.pid;
                tokio::spawn(async move {
                    loop {
                        if let Some(rss) = server::rss_of(pid) {
                            peak.fetch_max(rss, Ordering::Relaxed);
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                })
            };
            let rid = run_id.clone();
            let make: load::MakeBody = Arc::new(move |seq| load::message_body(&rid, seq));
            let target = Target::new(&format!("{}/webhooks/whatsapp", srv.url), signer.clone(), make);
            progress(&format!(
                "ingest: closed loop, {} connections, {seconds} s",
                args.concurrency
            ));
            let mut peak_run = load::closed_loop(target.clone(), args.concurrency, run_for).await;
            check_alive(&mut srv)?;
            let mut row = Row::measured(
                "ingest",
                &mut peak_run,
                ceiling,
                format!(
                    "closed loop, {} connections: verify, parse, upsert contact + conversation, insert message, journal, durable commit",
                    args.concurrency
                ),
            );
            acked_seqs.append(&mut peak_run.ok_seqs);
            let mut open_rows = Vec::new();
            let rates = if args.smoke {
                SMOKE_OPEN_LOOP_RATES
            } else {
                OPEN_LOOP_RATES
            };
            for rate in rates {
                progress(&format!("ingest: open loop at {rate}/s, {seconds} s"));
                let mut open = load::open_loop(target.clone(), rate, run_for, MAX_IN_FLIGHT).await;
                check_alive(&mut srv)?;
                let achieved = open.rate();
                let mut notes =
                    format!("open loop at {rate:.0}/s offered; latency from each request's intended send time");
                if achieved < rate * 0.95 {
                    notes.push_str(&format!("; fell behind: {achieved:.0}/s achieved"));
                }
                let r = Row::measured(&format!("ingest@{rate:.0}/s"), &mut open, ceiling, notes);
                acked_seqs.append(&mut open.ok_seqs);
                open_rows.push(r);
            }
            sampler.abort();
            rss_peak = Some(peak.load(Ordering::Relaxed));

            // Correctness: every acknowledged webhook is stored, exactly once.
            let acked = acked_seqs.len() as u64;
            let (stored, distinct) = count_stored(&srv, &run_id).await?;
            let matches = check_passes(acked, stored, distinct);
            row.extra.insert("acknowledged".into(), json!(acked));
            row.extra.insert("stored".into(), json!(stored));
            row.extra.insert("stored_distinct".into(), json!(distinct));
            row.extra.insert("stored_matches_acknowledged".into(), json!(matches));
            row.notes.push_str(&format!(
                "; check: {acked} acknowledged (all ingest runs), {stored} stored ({})",
                if matches { "match" } else { "MISMATCH" }
            ));
            correctness = Some((acked, stored, distinct));
            if want(Scenario::Ingest) {
                rows.push(row);
                rows.extend(open_rows);
            }
        }

        // 3. Status webhooks for the messages ingest stored.
        if want(Scenario::Status) {
            if acked_seqs.is_empty() {
                let mut row = Row::new("status");
                row.notes = "skipped: ingest stored no messages to report statuses for".into();
                rows.push(row);
            } else {
                acked_seqs.sort_unstable();
                let seqs = Arc::new(acked_seqs.clone());
                let rid = run_id.clone();
                let make: load::MakeBody = Arc::new(move |seq| {
                    const STATUSES: [&str; 3] = ["sent", "delivered", "read"];
                    let n = seqs.len() as u64;
                    let msg = seqs.get(((seq / 3) % n) as usize).copied().unwrap_or_default();
                    load::status_body(&load::wamid(&rid, msg), STATUSES[(seq % 3) as usize], msg)
                });
                let target = Target::new(&format!("{}/webhooks/whatsapp", srv.url), signer.clone(), make);
                let before = srv.webhook_outcomes(&client).await.unwrap_or_default();
                progress(&format!(
                    "status: closed loop, {} connections, {seconds} s",
                    args.concurrency
                ));
                let mut run = load::closed_loop(target, args.concurrency, run_for).await;
                check_alive(&mut srv)?;
                let after = srv.webhook_outcomes(&client).await.unwrap_or_default();
                let delta = |k: &str| {
                    after.get(k).copied().unwrap_or_default()
                        - before
                            .get(k)
                            .copied()
                            .unwrap_or_default()
                            .min(after.get(k).copied().unwrap_or_default())
                };
                let (applied, stale, dup, orphan) = (
                    delta("status"),
                    delta("status_stale"),
                    delta("duplicate"),
                    delta("orphan_status"),
                );
                let mut row = Row::measured(
                    "status",
                    &mut run,
                    ceiling,
                    format!(
                        "closed loop, {} connections; sent/delivered/read for the inbound messages ingest stored (this run has no outbound messages, so the statuses target inbound ids: same lookup, status event, update and journal work); outcomes: {applied} applied, {stale} stale, {dup} duplicate, {orphan} orphan",
                        args.concurrency
                    ),
                );
                row.extra.insert(
                    "outcomes".into(),
                    json!({"applied": applied, "stale": stale, "duplicate": dup, "orphan": orphan}),
                );
                rows.push(row);
            }
        }

        if want(Scenario::Memory) {
            let mut row = Row::new("memory");
            let idle = rss_idle.map(mib);
            let peak = rss_peak.map(mib);
            row.notes = match (idle, peak) {
                (Some(i), Some(p)) => format!("RSS of openline serve: {i:.1} MiB idle, {p:.1} MiB peak during ingest"),
                _ => "RSS unavailable (reads /proc/PID/status; Linux only)".into(),
            };
            row.extra
                .insert("rss_idle_mib".into(), json!(idle.map(|v| (v * 10.0).round() / 10.0)));
            row.extra
                .insert("rss_peak_mib".into(), json!(peak.map(|v| (v * 10.0).round() / 10.0)));
            rows.push(row);
        }
        drop(srv);
    }

    if want(Scenario::Pacing) {
        let pacing_seconds = if args.smoke { 1.5 } else { args.pacing_seconds };
        if !(pacing_seconds > 0.0 && pacing_seconds <= 3600.0) {
            bail!("--pacing-seconds must be more than 0 and at most 3600");
        }
        for mut row in pacing::run(&backend, pacing_seconds).await? {
            row.extra.insert("seconds".into(), json!(pacing_seconds));
            rows.push(row);
        }
        durations.push(format!("pacing {pacing_seconds} s of sending per rate"));
    }

    if want(Scenario::Outbound) {
        rows.extend(api::outbound(&backend, run_for, args.concurrency, ceiling, args.smoke).await?);
    }
    if want(Scenario::Inbox) {
        rows.extend(api::inbox(&backend, run_for, args.smoke).await?);
    }

    if args.json {
        for row in &rows {
            println!("{}", row.to_json(&common));
        }
    } else {
        print_table(&rows, backend_name, &durations.join(", "), build);
        if let Some((acked, stored, distinct)) = correctness {
            let ok = check_passes(acked, stored, distinct);
            println!(
                "correctness: {acked} webhooks acknowledged, {stored} messages stored ({distinct} distinct provider ids): {}",
                if ok { "match" } else { "MISMATCH" }
            );
        }
    }
    if let Some((acked, stored, distinct)) = correctness {
        if !check_passes(acked, stored, distinct) {
            bail!("{acked} webhooks were acknowledged but {stored} messages ({distinct} distinct) were stored");
        }
    }
    Ok(())
}

/// Every acknowledged webhook stored, exactly once.
fn check_passes(acknowledged: u64, stored: i64, distinct: i64) -> bool {
    stored == distinct && u64::try_from(stored).is_ok_and(|s| s == acknowledged)
}

fn check_alive(srv: &mut BenchServer) -> anyhow::Result<()> {
    if let Some(status) = srv.exited() {
        let log = std::fs::read_to_string(&srv.log).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        bail!("openline serve exited under load ({status}):\n{}", tail.join("\n"));
    }
    Ok(())
}

/// Messages of this run in the database, and how many distinct provider ids they have. Counted
/// through a second connection while the server runs: an acknowledged webhook is committed.
async fn count_stored(srv: &BenchServer, run_id: &str) -> anyhow::Result<(i64, i64)> {
    let store = openline_store::Store::open(&srv.database)
        .map_err(|e| anyhow::anyhow!("opening the benchmark database to count messages: {e}"))?;
    let pattern = format!("{}%", load::wamid_prefix(run_id));
    store
        .read(move |c| {
            let row = c.query_one(
                "select count(*), count(distinct provider_message_id) from messages where provider_message_id like ?",
                &[openline_store::sql::Val::from(pattern.as_str())],
            )?;
            Ok((row.i64(0)?, row.i64(1)?))
        })
        .await
        .map_err(|e| anyhow::anyhow!("counting stored messages: {e}"))
}

/// `durations` says how long the runs lasted (`5 s per run, pacing 20 s of sending per rate`).
fn print_table(rows: &[Row], backend: &str, durations: &str, build: &str) {
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let durations = if durations.is_empty() {
        String::new()
    } else {
        format!("{durations}, ")
    };
    println!("openline bench: {backend}, {durations}{cpus} CPUs, {build} build (load generator on the same machine)");
    if build == "debug" {
        println!("(a debug build: figures are not representative; measure with a release build)");
    }
    let num = |v: Option<f64>, places: usize| v.map_or_else(|| "-".to_owned(), |x| format!("{x:.places$}"));
    let header = ["scenario", "rate/s", "p50 ms", "p99 ms", "ceiling/s", "ratio", "notes"];
    let cells: Vec<[String; 7]> = rows
        .iter()
        .map(|r| {
            [
                r.scenario.clone(),
                num(r.rate_per_s, 0),
                num(r.p50_ms, 2),
                num(r.p99_ms, 2),
                num(r.ceiling_per_s, 0),
                num(r.ratio(), 2),
                r.notes.clone(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &cells {
        for (w, c) in widths.iter_mut().zip(row.iter()).take(6) {
            *w = (*w).max(c.len());
        }
    }
    let line = |cols: [&str; 7]| {
        let mut s = String::new();
        for (i, c) in cols.iter().enumerate() {
            if i == 0 || i == 6 {
                s.push_str(&format!("{c:<w$}", w = if i == 6 { 0 } else { widths[i] }));
            } else {
                s.push_str(&format!("{c:>w$}", w = widths[i]));
            }
            if i < 6 {
                s.push_str("  ");
            }
        }
        println!("{}", s.trim_end());
    };
    line(header);
    for row in &cells {
        line([&row[0], &row[1], &row[2], &row[3], &row[4], &row[5], &row[6]]);
    }
}
