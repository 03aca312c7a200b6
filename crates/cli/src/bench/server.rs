//! The server under test: a real `openline serve`, a child process of this same binary, on a free
//! loopback port and a fresh database (a temporary SQLite data dir, or a new PostgreSQL database that
//! is dropped afterwards), with the benchmark's sender registered by `openline admin` beforehand.
//! Dropping [`BenchServer`] kills the child and removes the database.

use super::load::{APP_SECRET, DISPLAY_NUMBER, PHONE_NUMBER_ID};
use anyhow::{bail, Context};
use openline_store::DatabaseUrl;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// How long the server may take to answer `/readyz` (debug builds on a busy machine are slow).
const READY_WITHIN: Duration = Duration::from_secs(60);

pub enum Backend {
    Sqlite,
    /// The server to create the benchmark's database on (its path names an existing database to
    /// connect to for `create database`).
    Postgres(String),
}

pub struct BenchServer {
    child: std::process::Child,
    pub url: String,
    pub pid: u32,
    pub database: DatabaseUrl,
    pub log: PathBuf,
    // Dropped after the child is killed (in `Drop::drop`), in this order.
    _dir: tempfile::TempDir,
    _pg: Option<PgDatabase>,
}

impl Drop for BenchServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A database created for one benchmark run, dropped with it.
struct PgDatabase {
    admin_url: String,
    name: String,
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let sql = format!("drop database if exists {} with (force)", self.name);
        if let Err(e) = pg_batch(&self.admin_url, &sql) {
            eprintln!("warning: could not drop the benchmark database {}: {e}", self.name);
        }
    }
}

/// Runs SQL with the synchronous PostgreSQL client on a plain thread (it must not run on a tokio
/// runtime thread).
fn pg_batch(url: &str, sql: &str) -> anyhow::Result<()> {
    std::thread::scope(|s| {
        s.spawn(|| -> anyhow::Result<()> {
            let mut client = postgres::Client::connect(url, postgres::NoTls)
                .with_context(|| format!("cannot connect to PostgreSQL at {}", redact(url)))?;
            client.batch_execute(sql)?;
            Ok(())
        })
        .join()
        .unwrap_or_else(|_| Err(anyhow::anyhow!("the PostgreSQL thread panicked")))
    })
}

/// The URL without its password, for messages.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => match url[s + 3..at].split_once(':') {
            Some((user, _)) => format!("{}{user}:***{}", &url[..s + 3], &url[at..]),
            None => url.to_owned(),
        },
        _ => url.to_owned(),
    }
}

/// `url` with its database name replaced by `name`.
fn with_database(url: &str, name: &str) -> anyhow::Result<String> {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let after_scheme = base.find("://").map(|i| i + 3).context("not a URL")?;
    let host_end = base[after_scheme..]
        .find('/')
        .map(|i| after_scheme + i)
        .unwrap_or(base.len());
    let mut out = format!("{}/{name}", &base[..host_end]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    Ok(out)
}

fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!("{:x}{:x}", std::process::id(), nanos % (1 << 48))
}

/// The binary with a clean `OPENLINE_*` environment plus the benchmark's settings: the run does not
/// depend on the operator's configuration.
fn openline(exe: &Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(exe);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("OPENLINE_") {
            cmd.env_remove(&key);
        }
    }
    cmd.env("OPENLINE_LOG", "warn")
        .env("OPENLINE_WHATSAPP_APP_SECRET", APP_SECRET)
        .env("OPENLINE_WHATSAPP_ACCESS_TOKEN", "x")
        .env("OPENLINE_WHATSAPP_VERIFY_TOKEN", "x")
        .env("OPENLINE_BENCH_CEILING", "1")
        // Sends (there are none in these scenarios) must never leave the machine.
        .env("OPENLINE_WHATSAPP_GRAPH_BASE_URL", "http://127.0.0.1:9/graph");
    cmd
}

async fn admin(exe: &Path, db_args: &[String], args: &[&str]) -> anyhow::Result<()> {
    let out = openline(exe)
        .arg("admin")
        .args(args)
        .args(db_args)
        .stdin(Stdio::null())
        .output()
        .await
        .context("running openline admin")?;
    if !out.status.success() {
        bail!(
            "openline admin {} failed: {}",
            args.first().copied().unwrap_or_default(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn free_port() -> anyhow::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

impl BenchServer {
    pub async fn start(backend: &Backend) -> anyhow::Result<Self> {
        Self::start_with_env(backend, &[]).await
    }

    /// [`Self::start`], with extra environment for `openline serve` (e.g. a Graph API base URL
    /// pointing at a simulator the benchmark runs).
    pub async fn start_with_env(backend: &Backend, env: &[(&str, String)]) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("finding the openline binary")?;
        let dir = tempfile::Builder::new()
            .prefix("openline-bench-")
            .tempdir()
            .context("creating a temporary data directory")?;
        let (database, pg) = match backend {
            Backend::Sqlite => (DatabaseUrl::Sqlite(dir.path().join("openline.db")), None),
            Backend::Postgres(admin_url) => {
                let name = format!("openline_bench_{}", unique_suffix());
                pg_batch(admin_url, &format!("create database {name}"))
                    .with_context(|| format!("creating the benchmark database {name}"))?;
                let pg = PgDatabase {
                    admin_url: admin_url.clone(),
                    name: name.clone(),
                };
                (DatabaseUrl::Postgres(with_database(admin_url, &name)?), Some(pg))
            }
        };
        let mut db_args = vec!["--data-dir".to_owned(), dir.path().display().to_string()];
        if let DatabaseUrl::Postgres(url) = &database {
            db_args.push("--database-url".to_owned());
            db_args.push(url.clone());
        }

        admin(&exe, &db_args, &["create-org", "--name", "Bench", "--whatsapp", "on"]).await?;
        let phone = format!("+{DISPLAY_NUMBER}");
        admin(
            &exe,
            &db_args,
            &[
                "create-sender",
                "--org",
                "Bench",
                "--phone",
                &phone,
                "--phone-number-id",
                PHONE_NUMBER_ID,
            ],
        )
        .await?;

        let port = free_port()?;
        let log = dir.path().join("serve.log");
        let log_file = std::fs::File::create(&log).context("creating the server's log file")?;
        let mut cmd = openline(&exe).into_std();
        for (key, value) in env {
            cmd.env(key, value);
        }
        cmd.arg("serve")
            .args(&db_args)
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file);
        let child = cmd.spawn().context("starting openline serve")?;
        let pid = child.id();
        let mut server = Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
            pid,
            database,
            log,
            _dir: dir,
            _pg: pg,
        };
        server.wait_ready().await?;
        Ok(server)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
        let deadline = tokio::time::Instant::now() + READY_WITHIN;
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "openline serve exited ({status}) before it was ready:\n{}",
                    log_tail(&self.log)
                );
            }
            if let Ok(res) = client.get(format!("{}/readyz", self.url)).send().await {
                if res.status().is_success() {
                    return Ok(());
                }
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "openline serve was not ready within {READY_WITHIN:?}:\n{}",
                    log_tail(&self.log)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The child's resident memory in bytes (Linux: `VmRSS` in `/proc/PID/status`).
    pub fn rss_bytes(&self) -> Option<u64> {
        rss_of(self.pid)
    }

    /// Counts of the server's `webhook_events` metric by outcome (stored, duplicate, status, …).
    pub async fn webhook_outcomes(
        &self,
        client: &reqwest::Client,
    ) -> anyhow::Result<std::collections::BTreeMap<String, u64>> {
        let text = client.get(format!("{}/metrics", self.url)).send().await?.text().await?;
        Ok(parse_outcomes(&text))
    }

    /// Whether the child has exited (a crash under load).
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

pub fn rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

fn parse_outcomes(text: &str) -> std::collections::BTreeMap<String, u64> {
    let mut out = std::collections::BTreeMap::new();
    for line in text.lines() {
        if line.starts_with('#') || !line.contains("webhook_events") {
            continue;
        }
        let Some(start) = line.find("outcome=\"").map(|i| i + 9) else {
            continue;
        };
        let Some(len) = line[start..].find('"') else {
            continue;
        };
        let value = line
            .rsplit(' ')
            .next()
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or_default();
        *out.entry(line[start..start + len].to_owned()).or_insert(0) += value as u64;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_names_and_redaction() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "b1").unwrap(),
            "postgres://postgres@127.0.0.1:5432/b1"
        );
        assert_eq!(
            with_database("postgres://u:p@h/test?sslmode=disable", "b1").unwrap(),
            "postgres://u:p@h/b1?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://h:5432", "b1").unwrap(),
            "postgres://h:5432/b1"
        );
        assert_eq!(redact("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
    }

    #[test]
    fn outcomes_from_prometheus_text() {
        let text = "# TYPE openline_webhook_events counter\nopenline_webhook_events_total{outcome=\"stored\"} 12\nopenline_webhook_events_total{outcome=\"orphan_status\"} 3\nother 1\n";
        let m = parse_outcomes(text);
        assert_eq!(m.get("stored"), Some(&12));
        assert_eq!(m.get("orphan_status"), Some(&3));
        assert_eq!(m.len(), 2);
    }
}
