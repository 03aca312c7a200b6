//! Running the `openline` binary from tests: one-shot commands with captured output, long-running
//! children (`serve`, `sim`) that are killed when dropped, and small HTTP helpers. Every wait is
//! bounded by [`STEP`].

use serde_json::{json, Value};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// Upper bound for one command, or for a server to start or stop (generous: debug builds on a
/// busy 2-core machine, argon2 hashing included).
pub const STEP: Duration = Duration::from_secs(60);

pub fn test_log() -> bool {
    std::env::var_os("TEST_LOG").is_some()
}

/// The binary, with a clean `OPENLINE_*` environment (the tests pass everything explicitly) and
/// killed if the test lets go of it.
pub fn openline() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_openline"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("OPENLINE_") {
            cmd.env_remove(&key);
        }
    }
    cmd.env("OPENLINE_LOG", if test_log() { "info" } else { "warn" });
    cmd.kill_on_drop(true);
    cmd
}

/// What a finished command did.
pub struct Ran {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Ran {
    pub fn assert_ok(self) -> Self {
        assert!(
            self.status.success(),
            "expected success, got {}\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
        self
    }

    /// Fails with a non-zero status and one readable `error: …` line containing `needle`.
    pub fn assert_fails_saying(self, needle: &str) -> Self {
        assert!(
            !self.status.success(),
            "expected failure, got success\nstdout:\n{}",
            self.stdout
        );
        assert!(
            self.stderr.contains("error: ") && self.stderr.contains(needle),
            "expected an error mentioning {needle:?}, got:\n{}",
            self.stderr
        );
        assert!(
            !self.stderr.contains("panicked") && !self.stderr.contains("backtrace"),
            "a failure must not panic or print a backtrace:\n{}",
            self.stderr
        );
        self
    }
}

/// Runs `openline ARGS` to completion. `stdin: None` gives it no input at all (`Stdio::null()`).
pub async fn run(args: &[&str], stdin: Option<&str>) -> Ran {
    run_with(openline(), args, stdin).await
}

pub async fn run_with(mut cmd: Command, args: &[&str], stdin: Option<&str>) -> Ran {
    cmd.args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn openline");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        // A command that refuses its arguments exits without reading its input; the pipe is then
        // broken, and its answer (read below) is what the test looks at.
        if let Err(e) = pipe.write_all(input.as_bytes()).await {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {e}");
        }
        // Dropping the pipe closes it: the command sees the end of its input.
    }
    let out = tokio::time::timeout(STEP, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("openline {args:?} did not finish within {STEP:?}"))
        .expect("wait for openline");
    Ran {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A long-running child (`serve` or `sim`), killed when dropped.
pub struct Running {
    child: Child,
    /// Every line it has printed to stdout so far (filled in the background).
    printed: Arc<Mutex<Vec<String>>>,
}

impl Running {
    /// Starts `cmd` and waits until it prints a line starting with `ready_prefix`; the rest of its
    /// output is drained in the background so it never blocks on a full pipe.
    pub async fn start(mut cmd: Command, ready_prefix: &str) -> (Self, String) {
        cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(if test_log() {
            Stdio::inherit()
        } else {
            Stdio::null()
        });
        let mut child = cmd.spawn().expect("spawn openline");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let printed = Arc::new(Mutex::new(Vec::new()));
        tokio::spawn(collect(lines, printed.clone()));
        let mut running = Self { child, printed };
        let rest = running.wait_for_line(ready_prefix).await;
        (running, rest)
    }

    /// Waits until the child prints a line starting with `prefix`; returns the rest of that line.
    pub async fn wait_for_line(&mut self, prefix: &str) -> String {
        let deadline = tokio::time::Instant::now() + STEP;
        loop {
            let found = self
                .printed()
                .iter()
                .find_map(|l| l.strip_prefix(prefix).map(str::to_owned));
            if let Some(rest) = found {
                return rest;
            }
            let exited = self.child.try_wait().expect("poll child");
            if exited.is_some() || tokio::time::Instant::now() > deadline {
                // Give the collector a moment to catch the last lines before reporting them.
                tokio::time::sleep(Duration::from_millis(100)).await;
                panic!(
                    "openline did not print {prefix:?} (exit status: {exited:?}); it printed:\n{}",
                    self.printed().join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub fn printed(&self) -> Vec<String> {
        self.printed.lock().expect("lock").clone()
    }

    /// Sends SIGKILL (a crash: nothing is flushed, nothing finishes) and waits for the exit.
    #[allow(dead_code)] // Only the restart tests crash a server.
    pub async fn kill(mut self) -> ExitStatus {
        self.child.start_kill().expect("send SIGKILL");
        tokio::time::timeout(STEP, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("openline did not die within {STEP:?} of SIGKILL"))
            .expect("wait for openline")
    }

    /// Sends SIGTERM (what `kill` and service managers send) and waits for the exit.
    pub async fn terminate(mut self) -> ExitStatus {
        let pid = self.child.id().expect("still running").to_string();
        let kill = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(&pid)
            .status()
            .expect("run kill");
        assert!(kill.success(), "kill -TERM {pid} failed");
        tokio::time::timeout(STEP, self.child.wait())
            .await
            .unwrap_or_else(|_| panic!("openline did not stop within {STEP:?} of SIGTERM"))
            .expect("wait for openline")
    }
}

/// Reads the child's stdout to its end, so it never blocks on a full pipe.
async fn collect(mut lines: Lines<BufReader<ChildStdout>>, into: Arc<Mutex<Vec<String>>>) {
    while let Ok(Some(line)) = lines.next_line().await {
        if test_log() {
            eprintln!("[openline stdout] {line}");
        }
        into.lock().expect("lock").push(line);
    }
}

/// `openline serve ARGS…` (plus `env`), once it says where it runs: the child and its base URL.
pub async fn serve(args: &[&str], env: &[(&str, &str)]) -> (Running, String) {
    let mut cmd = openline();
    cmd.arg("serve").args(args).envs(env.iter().copied());
    let (running, url) = Running::start(cmd, "openline is running at ").await;
    assert!(url.starts_with("http://127.0.0.1:"), "unexpected URL {url:?}");
    (running, url)
}

/// A port that was free a moment ago (for `openline sim`, whose peer must know it in advance).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind port 0")
        .local_addr()
        .expect("local addr")
        .port()
}

/// An HTTP client that keeps the session cookie, with a bounded timeout per request.
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .timeout(Duration::from_secs(30))
        .build()
        .expect("http client")
}

pub async fn sign_in(client: &reqwest::Client, base: &str, email: &str, password: &str) -> Value {
    let res = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({ "email": email, "password": password }))
        .send()
        .await
        .expect("login request");
    let status = res.status();
    let body: Value = res.json().await.expect("login body");
    assert_eq!(status, 200, "login as {email} failed: {body}");
    body
}

pub async fn get_json(client: &reqwest::Client, url: &str) -> Value {
    let res = client.get(url).send().await.expect("GET");
    let status = res.status();
    let body: Value = res.json().await.expect("JSON body");
    assert_eq!(status, 200, "GET {url}: {body}");
    body
}

/// A password that the admin commands accept (at least 12 characters).
pub const PASSWORD: &str = "correct-horse-battery-staple";

/// `openline admin WORDS… --database-url DB`: `words` is split on whitespace (no quoting).
pub async fn admin(db: &str, words: &str, stdin: Option<&str>) -> Ran {
    let mut args = vec!["admin"];
    args.extend(words.split_whitespace());
    args.extend(["--database-url", db]);
    run(&args, stdin).await
}

/// `create-org` with WhatsApp switched on (a root organization that inherits has it off).
pub async fn create_org(db: &str, name: &str) {
    admin(db, &format!("create-org --name {name} --whatsapp on"), None)
        .await
        .assert_ok();
}

/// `create-user` with `password` on stdin.
pub async fn create_user(db: &str, org: &str, email: &str, role: &str, password: &str) -> Ran {
    let words = format!("create-user --org {org} --email {email} --role {role}");
    admin(db, &words, Some(&format!("{password}\n"))).await
}

/// `create-token`: (token id, token).
pub async fn create_token(db: &str, email: &str) -> (String, String) {
    let ran = admin(db, &format!("create-token --email {email}"), None)
        .await
        .assert_ok();
    let id = ran
        .stdout
        .split(['(', ')'])
        .find(|part| part.starts_with("tok_"))
        .unwrap_or_else(|| panic!("no token id in {:?}", ran.stdout))
        .to_owned();
    let token = ran
        .stdout
        .lines()
        .last()
        .filter(|l| l.starts_with("olt_"))
        .unwrap_or_else(|| panic!("no olt_ token on the last line of {:?}", ran.stdout))
        .to_owned();
    (id, token)
}
