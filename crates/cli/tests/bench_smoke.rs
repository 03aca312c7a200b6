//! `openline bench --smoke`: every implemented scenario runs briefly against a real server, so the
//! benchmark cannot rot. No timing is asserted (this machine's speed is not the test's business);
//! the output's shape and the correctness check are.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use std::time::Duration;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_smoke_runs_every_scenario_and_every_acknowledged_webhook_is_stored_once() {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_openline"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("OPENLINE_") {
            cmd.env_remove(&key);
        }
    }
    cmd.args(["bench", "--smoke", "--json", "--backend", "sqlite"])
        .env("OPENLINE_LOG", "warn")
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(300), cmd.output())
        .await
        .expect("openline bench --smoke finished within 5 minutes")
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "bench failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );

    let rows: Vec<Value> = stdout
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let row = |name: &str| {
        rows.iter()
            .find(|r| r["scenario"] == name)
            .unwrap_or_else(|| panic!("no {name} row in:\n{stdout}"))
    };
    for r in &rows {
        for key in ["scenario", "rate_per_s", "p50_ms", "p99_ms", "ceiling_per_s"] {
            assert!(r.get(key).is_some(), "{key} missing from {r}");
        }
    }
    for name in ["ceiling", "ingest", "status"] {
        let r = row(name);
        assert_eq!(r["implemented"], true, "{r}");
        assert!(r["rate_per_s"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["p99_ms"].as_f64().is_some(), "{r}");
        assert!(r["ceiling_per_s"].as_f64().unwrap() > 0.0, "{r}");
    }
    assert!(
        rows.iter()
            .filter(|r| r["scenario"].as_str().unwrap().starts_with("ingest@"))
            .count()
            >= 2,
        "open-loop ingest rows:\n{stdout}"
    );

    let ingest = row("ingest");
    assert_eq!(ingest["stored_matches_acknowledged"], true, "{ingest}");
    assert!(ingest["acknowledged"].as_u64().unwrap() > 0, "{ingest}");
    assert_eq!(ingest["acknowledged"].as_u64(), ingest["stored"].as_u64(), "{ingest}");

    let memory = row("memory");
    assert!(memory["rss_peak_mib"].as_f64().is_some(), "{memory}");
    // Pacing: every message of the backlog reached the simulator at both rates, and the figures
    // are there (how close to the rate a debug build on a busy machine gets is not asserted).
    for name in ["pacing@80/s", "pacing@1000/s"] {
        let r = row(name);
        assert_eq!(r["implemented"], true, "{r}");
        assert!(r["messages"].as_u64().unwrap() > 0, "{r}");
        assert_eq!(r["sent"], r["messages"], "{r}");
        assert!(r["rate_per_s"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["most_in_one_second"].as_u64().unwrap() > 0, "{r}");
        assert!(r["server_cpu_seconds"].as_f64().is_some(), "{r}");
    }
    // API sends: every one accepted (202) and stored once, beside the same run's ceiling.
    let out = row("outbound");
    assert_eq!(out["stored_matches_accepted"], true, "{out}");
    assert!(out["accepted_all_runs"].as_u64().unwrap() > 0, "{out}");
    assert!(out["ceiling_per_s"].as_f64().is_some(), "{out}");
    for name in ["outbound", "outbound@100/s", "inbox list", "inbox open"] {
        let r = row(name);
        assert_eq!(r["implemented"], true, "{r}");
        assert!(r["rate_per_s"].as_f64().unwrap() > 0.0, "{r}");
        assert!(r["p99_ms"].as_f64().is_some(), "{r}");
        assert!(r["acknowledged"].as_u64().unwrap() > 0, "{r}");
        assert_eq!(r["rejected"], 0, "every request answered 2xx: {r}");
    }
    // The inbox was seeded at a hundredth of the full size: 10,000 messages.
    assert_eq!(row("inbox open")["messages"], 10_000);
}
