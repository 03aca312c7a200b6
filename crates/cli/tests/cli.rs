//! The `openline` binary as an operator uses it: every test runs the real executable (`migrate`,
//! `admin …`, `serve`, `sim`) as a child process against its own temporary directory and a fresh
//! database, on SQLite and on PostgreSQL wherever a database is involved.
//!
//! Children are spawned with `kill_on_drop`, and every wait is bounded, so a hung child fails its
//! test instead of hanging the suite. Output is captured; set `TEST_LOG=1` to see the children's
//! logs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use openline_store::testing::TestDb;
use serde_json::{json, Value};
use std::time::Duration;
use support::*;
/// Generates `sqlite::NAME` and `postgres::NAME` tests from `async fn NAME(db: TestDb)`.
macro_rules! on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::TestDb::sqlite()).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::TestDb::postgres()).await
                }
            )*
        }
    };
}

on_both_databases!(
    migrate_succeeds_and_running_it_again_changes_nothing,
    create_user_takes_the_password_from_stdin_and_refuses_a_second_user_with_the_same_email,
    create_user_without_input_generates_a_password_and_prints_it_once,
    create_user_refuses_an_unknown_role,
    a_created_token_is_printed_once_and_can_be_revoked,
    create_sender_registers_a_cloud_api_number_and_refuses_duplicates_and_unknown_organizations,
    create_sender_registers_twilio_numbers_with_their_messaging_service_and_account,
    demo_serve_prints_its_url_and_credentials_accepts_a_sign_in_and_stops_gracefully_on_sigterm,
    passwords_and_tokens_from_admin_commands_work_on_a_running_server,
    a_standalone_simulator_and_a_separately_started_openline_deliver_a_reply_until_it_is_read,
);

async fn migrate_succeeds_and_running_it_again_changes_nothing(db: TestDb) {
    let url = db.url.to_string();

    let first = run(&["migrate", "--database-url", &url], None).await.assert_ok();
    let second = run(&["migrate", "--database-url", &url], None).await.assert_ok();

    assert!(first.stdout.contains("migrations applied"), "{}", first.stdout);
    assert!(second.stdout.contains("migrations applied"), "{}", second.stdout);
}

#[tokio::test]
async fn a_database_url_of_an_unsupported_kind_fails_with_a_readable_message() {
    let mut cmd = openline();
    // Even when the operator asks for backtraces, a usage error is one sentence.
    cmd.env("RUST_BACKTRACE", "1");

    let ran = run_with(cmd, &["migrate", "--database-url", "mysql://x"], None).await;

    ran.assert_fails_saying("postgres://");
}

async fn create_user_takes_the_password_from_stdin_and_refuses_a_second_user_with_the_same_email(db: TestDb) {
    let url = db.url.to_string();

    let created = create_user(&url, "Acme", "a@acme.test", "agent", PASSWORD)
        .await
        .assert_ok();
    let again = create_user(&url, "Acme", "A@acme.test", "viewer", PASSWORD).await;

    assert!(
        created.stdout.contains("created agent a@acme.test"),
        "{}",
        created.stdout
    );
    assert!(
        !created.stdout.contains("password"),
        "a password given on stdin is not echoed: {}",
        created.stdout
    );
    again.assert_fails_saying("already exists");
}

async fn create_user_without_input_generates_a_password_and_prints_it_once(db: TestDb) {
    let url = db.url.to_string();

    let ran = admin(&url, "create-user --org Acme --email a@acme.test --role agent", None)
        .await
        .assert_ok();

    let shown: Vec<&str> = ran
        .stdout
        .lines()
        .filter_map(|l| l.strip_prefix("password (shown once): "))
        .collect();
    assert_eq!(shown.len(), 1, "exactly one generated password: {}", ran.stdout);
    assert!(shown[0].len() >= 12, "a strong password: {:?}", shown[0]);
}

async fn create_user_refuses_an_unknown_role(db: TestDb) {
    let url = db.url.to_string();

    let ran = create_user(&url, "Acme", "a@acme.test", "overlord", PASSWORD).await;

    ran.assert_fails_saying("--role must be admin, supervisor, agent or viewer");
}

async fn a_created_token_is_printed_once_and_can_be_revoked(db: TestDb) {
    let url = db.url.to_string();
    create_user(&url, "Acme", "a@acme.test", "agent", PASSWORD)
        .await
        .assert_ok();

    let (id, token) = create_token(&url, "a@acme.test").await;
    let revoked = admin(&url, &format!("revoke-token --email a@acme.test --id {id}"), None)
        .await
        .assert_ok();
    let twice = admin(&url, &format!("revoke-token --email a@acme.test --id {id}"), None).await;
    let unknown_user = admin(&url, "create-token --email nobody@acme.test", None).await;

    assert!(token.len() > 20, "{token}");
    assert!(revoked.stdout.contains("revoked"), "{}", revoked.stdout);
    twice.assert_fails_saying("already revoked");
    unknown_user.assert_fails_saying("no user with this e-mail address");
}

async fn create_sender_registers_a_cloud_api_number_and_refuses_duplicates_and_unknown_organizations(db: TestDb) {
    let url = db.url.to_string();
    create_org(&url, "Acme").await;
    let sender =
        |org: &str, phone: &str, id: &str| format!("create-sender --org {org} --phone {phone} --phone-number-id {id}");

    let created = admin(&url, &sender("Acme", "+15550001000", "100000000000001"), None)
        .await
        .assert_ok();
    let duplicate = admin(&url, &sender("Acme", "+15550002000", "100000000000001"), None).await;
    let unknown_org = admin(&url, &sender("Nobody", "+15550003000", "100000000000003"), None).await;
    let bad_phone = admin(&url, &sender("Acme", "555-CALL-NOW", "100000000000004"), None).await;

    assert!(
        created.stdout.contains("+15550001000") && created.stdout.contains("100000000000001"),
        "{}",
        created.stdout
    );
    duplicate.assert_fails_saying("already exists");
    unknown_org.assert_fails_saying("organization does not exist");
    bad_phone.assert_fails_saying("--phone");
}

async fn create_sender_registers_twilio_numbers_with_their_messaging_service_and_account(db: TestDb) {
    let url = db.url.to_string();
    create_org(&url, "Acme").await;
    const SERVICE: &str = "MG0123456789abcdef0123456789abcdef";
    const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";

    let sms = admin(
        &url,
        &format!("create-sender --org Acme --provider twilio --channel sms --phone +15550002000 --messaging-service-sid {SERVICE} --account-sid {ACCOUNT}"),
        None,
    )
    .await
    .assert_ok();
    // The same number on WhatsApp is another sender, known by its Twilio address; a second number of
    // the service registered by itself names its own.
    let own = admin(
        &url,
        &format!("create-sender --org Acme --provider twilio --channel sms --phone +15550002001 --phone-number-id +15550002001 --messaging-service-sid {SERVICE}"),
        None,
    )
    .await
    .assert_ok();
    assert!(own.stdout.contains("phone_number_id +15550002001"), "{}", own.stdout);
    let whatsapp = admin(
        &url,
        "create-sender --org Acme --provider twilio --phone +15550002000",
        None,
    )
    .await
    .assert_ok();
    let bad_service = admin(
        &url,
        "create-sender --org Acme --provider twilio --channel sms --phone +15550003000 --messaging-service-sid MG123",
        None,
    )
    .await;
    let sms_on_meta = admin(
        &url,
        "create-sender --org Acme --channel sms --phone +15550004000 --phone-number-id 1",
        None,
    )
    .await;
    let service_on_meta = admin(
        &url,
        &format!("create-sender --org Acme --phone +15550005000 --phone-number-id 2 --messaging-service-sid {SERVICE}"),
        None,
    )
    .await;
    let no_id_on_meta = admin(&url, "create-sender --org Acme --phone +15550006000", None).await;

    assert!(
        sms.stdout.contains("created SMS sender +15550002000")
            && sms.stdout.contains("twilio")
            && sms.stdout.contains(&format!("phone_number_id {SERVICE}")),
        "{}",
        sms.stdout
    );
    assert!(
        whatsapp.stdout.contains("created WhatsApp sender") && whatsapp.stdout.contains("whatsapp:+15550002000"),
        "{}",
        whatsapp.stdout
    );
    bad_service.assert_fails_saying("--messaging-service-sid must be MG followed by 32 hex digits");
    sms_on_meta.assert_fails_saying("--provider twilio");
    service_on_meta.assert_fails_saying("for Twilio senders");
    no_id_on_meta.assert_fails_saying("--phone-number-id is required");
}

async fn demo_serve_prints_its_url_and_credentials_accepts_a_sign_in_and_stops_gracefully_on_sigterm(db: TestDb) {
    let data = tempfile::tempdir().expect("temp dir");
    let url = db.url.to_string();
    let data_dir = data.path().to_str().expect("utf-8 path");

    let (mut server, base) = serve(
        &[
            "--demo",
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data_dir,
            "--database-url",
            &url,
        ],
        &[],
    )
    .await;
    // The banner ends with the API description's address.
    server.wait_for_line("API description: ").await;
    let printed = server.printed().join("\n");
    let me = sign_in(&http(), &base, "agent1@demo.openline.dev", "openline-demo").await;
    let status = server.terminate().await;

    assert!(
        printed.starts_with(&format!("openline is running at {base}\n")),
        "the URL comes first, alone on its line:\n{printed}"
    );
    assert!(
        printed.contains("agent1@demo.openline.dev") && printed.contains("\"openline-demo\""),
        "the demo credentials are printed:\n{printed}"
    );
    assert!(
        printed.contains(&format!("{base}/sim")),
        "the simulator's address is printed:\n{printed}"
    );
    assert_eq!(me["user"]["email"], "agent1@demo.openline.dev", "{me}");
    assert!(status.success(), "graceful shutdown exits 0, got {status}");
}

async fn passwords_and_tokens_from_admin_commands_work_on_a_running_server(db: TestDb) {
    let url = db.url.to_string();
    let data = tempfile::tempdir().expect("temp dir");
    create_user(&url, "Acme", "a@acme.test", "agent", PASSWORD)
        .await
        .assert_ok();
    let generated = admin(&url, "create-user --org Acme --email b@acme.test --role viewer", None)
        .await
        .assert_ok();
    let generated_password = generated
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("password (shown once): "))
        .expect("a generated password")
        .to_owned();
    let (token_id, token) = create_token(&url, "a@acme.test").await;
    let (server, base) = serve(
        &[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.path().to_str().expect("utf-8 path"),
            "--database-url",
            &url,
        ],
        &[],
    )
    .await;
    let client = http();
    let me_url = format!("{base}/api/v1/me");

    let a = sign_in(&http(), &base, "a@acme.test", PASSWORD).await;
    let b = sign_in(&http(), &base, "b@acme.test", &generated_password).await;
    let by_token = client.get(&me_url).bearer_auth(&token).send().await.expect("GET /me");
    let by_token_status = by_token.status();
    let by_token: Value = by_token.json().await.expect("JSON");
    admin(&url, &format!("revoke-token --email a@acme.test --id {token_id}"), None)
        .await
        .assert_ok();
    let after_revoke = client.get(&me_url).bearer_auth(&token).send().await.expect("GET /me");
    let after_revoke_status = after_revoke.status();
    let stopped = server.terminate().await;

    assert_eq!(a["user"]["role"], "agent", "{a}");
    assert_eq!(b["user"]["role"], "viewer", "{b}");
    assert_eq!(by_token_status, 200, "{by_token}");
    assert_eq!(by_token["user"]["email"], "a@acme.test", "{by_token}");
    assert_eq!(after_revoke_status, 401, "a revoked token stops working at once");
    assert!(stopped.success(), "{stopped}");
}

async fn a_standalone_simulator_and_a_separately_started_openline_deliver_a_reply_until_it_is_read(db: TestDb) {
    // Arrange: an organization with an agent and the simulator's business number, then the
    // simulator and openline as two processes that know each other only by URL.
    let url = db.url.to_string();
    let data = tempfile::tempdir().expect("temp dir");
    create_org(&url, "Acme").await;
    create_user(&url, "Acme", "agent@acme.test", "agent", PASSWORD)
        .await
        .assert_ok();
    admin(
        &url,
        "create-sender --org Acme --phone +15550001000 --phone-number-id 100000000000001 --waba-id 200000000000001",
        None,
    )
    .await
    .assert_ok();
    // The number's WABA already holds openline's opt-in template, approved (the standalone
    // simulator starts with it): openline's record of it, as submitting it through
    // `POST /api/v1/templates` and Meta's approval webhook would have left it.
    let store = openline_store::Store::open(&db.url).unwrap();
    store
        .write(|c| {
            let sender = openline_store::senders::all(c)?.into_iter().next().unwrap();
            let opt_in = openline_server::consent_flow::default_opt_in_template();
            openline_store::templates::create(c, &sender.org_id, &sender.id, &opt_in, None, 0)
        })
        .await
        .unwrap();
    drop(store);
    let (sim_port, openline_port) = (free_port(), free_port());
    let webhook_url = format!("http://127.0.0.1:{openline_port}/webhooks/whatsapp");
    let mut sim_cmd = openline();
    sim_cmd.args([
        "sim",
        "--listen",
        &format!("127.0.0.1:{sim_port}"),
        "--webhook-url",
        &webhook_url,
        "--status-delay-secs",
        "0",
    ]);
    let (sim, sim_line) = Running::start(sim_cmd, "simulator listening on ").await;
    let sim_base = sim_line.split_whitespace().next().expect("sim URL").to_owned();
    assert_eq!(sim_base, format!("http://127.0.0.1:{sim_port}"));
    let graph = format!("{sim_base}/graph");
    let (server, base) = serve(
        &[
            "--listen",
            &format!("127.0.0.1:{openline_port}"),
            "--data-dir",
            data.path().to_str().expect("utf-8 path"),
            "--database-url",
            &url,
        ],
        &[
            ("OPENLINE_WHATSAPP_GRAPH_BASE_URL", graph.as_str()),
            ("OPENLINE_WHATSAPP_ACCESS_TOKEN", "sim-access-token"),
            ("OPENLINE_WHATSAPP_APP_SECRET", "sim-app-secret"),
            ("OPENLINE_WHATSAPP_VERIFY_TOKEN", "x"),
        ],
    )
    .await;
    let client = http();
    sign_in(&client, &base, "agent@acme.test", PASSWORD).await;

    // Act: a WhatsApp user writes to the business; the agent finds them and replies.
    let written: Value = client
        .post(format!("{sim_base}/phones/+447700900009/messages"))
        .json(&json!({ "to": "15550001000", "text": "hi" }))
        .send()
        .await
        .expect("phone writes")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        written["webhook_status"], 200,
        "openline accepted the signed webhook: {written}"
    );
    let contacts = get_json(&client, &format!("{base}/api/v1/contacts?q=447700900009")).await;
    let contact = contacts["items"]
        .as_array()
        .and_then(|items| items.iter().find(|c| c["phone"] == "+447700900009"))
        .unwrap_or_else(|| panic!("the writer became a contact: {contacts}"))
        .clone();
    let inbox = get_json(&client, &format!("{base}/api/v1/conversations")).await;
    let conversation = inbox["items"]
        .as_array()
        .and_then(|items| items.iter().find(|c| c["contact_id"] == contact["id"]))
        .unwrap_or_else(|| panic!("a conversation with the contact: {inbox}"))
        .clone();
    let thread = get_json(
        &client,
        &format!(
            "{base}/api/v1/conversations/{}/messages",
            conversation["id"].as_str().expect("id")
        ),
    )
    .await;
    let sent = client
        .post(format!("{base}/api/v1/messages"))
        .json(&json!({ "contact_id": contact["id"], "text": "Hello from openline" }))
        .send()
        .await
        .expect("send reply");
    assert_eq!(sent.status(), 202);
    let sent: Value = sent.json().await.expect("JSON");
    // No consent yet: the reply is held until the contact opts in.
    assert_eq!(sent["queue_reason"], "awaiting_consent", "{sent}");
    let opt_in = client
        .post(format!(
            "{base}/api/v1/contacts/{}/opt-in",
            contact["id"].as_str().expect("contact id")
        ))
        .send()
        .await
        .expect("opt-in request");
    assert_eq!(opt_in.status(), 202);
    // The (manual) phone taps Yes on the opt-in request once it has arrived.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let request_id = loop {
        let seen = get_json(&client, &format!("{sim_base}/phones/+447700900009/messages")).await;
        let found = seen.as_array().and_then(|msgs| {
            msgs.iter()
                .find(|m| m["direction"] == "from_business" && m["type"] == "template")
                .and_then(|m| m["id"].as_str().map(str::to_owned))
        });
        if let Some(id) = found {
            break id;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the opt-in request never reached the phone: {seen}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let tapped = client
        .post(format!("{sim_base}/phones/+447700900009/buttons"))
        .json(&json!({ "message_id": request_id, "button": "OPTIN_YES" }))
        .send()
        .await
        .expect("tap Yes");
    assert_eq!(tapped.status(), 200, "{}", tapped.text().await.unwrap_or_default());
    let message_url = format!("{base}/api/v1/messages/{}", sent["id"].as_str().expect("message id"));
    let mut message = sent.clone();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while message["status"] != "read" {
        assert_ne!(
            message["status"], "failed",
            "the simulator refused the reply: {message}"
        );
        assert!(
            tokio::time::Instant::now() < deadline,
            "the reply never became read: {message}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        message = get_json(&client, &message_url).await;
    }
    let phone_sees = get_json(&client, &format!("{sim_base}/phones/+447700900009/messages")).await;
    let server_stopped = server.terminate().await;
    let sim_stopped = sim.terminate().await;

    // Assert: the inbound text reached the inbox, the reply reached the phone and came back read.
    assert!(
        thread.to_string().contains("\"hi\""),
        "the inbound text is in the conversation: {thread}"
    );
    assert!(
        phone_sees.to_string().contains("Hello from openline"),
        "the phone received the reply: {phone_sees}"
    );
    assert!(
        message["provider_message_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("wamid.")),
        "{message}"
    );
    assert!(server_stopped.success(), "{server_stopped}");
    assert!(sim_stopped.success(), "{sim_stopped}");
}

#[tokio::test]
async fn help_names_the_commands_and_their_flags() {
    let top = run(&["--help"], None).await.assert_ok();
    let serve = run(&["serve", "--help"], None).await.assert_ok();
    let create_user = run(&["admin", "create-user", "--help"], None).await.assert_ok();
    let create_sender = run(&["admin", "create-sender", "--help"], None).await.assert_ok();

    for command in ["serve", "migrate", "sim", "admin"] {
        assert!(top.stdout.contains(command), "--help names {command}:\n{}", top.stdout);
    }
    for flag in [
        "--listen",
        "--demo",
        "--data-dir",
        "--database-url",
        "--config",
        "--public-url",
    ] {
        assert!(
            serve.stdout.contains(flag),
            "serve --help names {flag}:\n{}",
            serve.stdout
        );
    }
    for flag in ["--org", "--email", "--role", "--name", "--database-url"] {
        assert!(
            create_user.stdout.contains(flag),
            "create-user --help names {flag}:\n{}",
            create_user.stdout
        );
    }
    for flag in [
        "--org",
        "--phone",
        "--phone-number-id",
        "--waba-id",
        "--throughput",
        "--provider",
        "--channel",
        "--messaging-service-sid",
        "--account-sid",
    ] {
        assert!(
            create_sender.stdout.contains(flag),
            "create-sender --help names {flag}:\n{}",
            create_sender.stdout
        );
    }
}

// ---- openline archive: signed checkpoints, holds, settings and exports from the command line. ----

macro_rules! archive_on_both_databases {
    ($($name:ident),* $(,)?) => {
        mod archive_sqlite {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name(super::TestDb::sqlite()).await } )*
        }
        mod archive_postgres {
            $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
               async fn $name() { super::$name(super::TestDb::postgres()).await } )*
        }
    };
}

archive_on_both_databases!(
    an_exported_checkpoint_catches_history_rewritten_with_every_hash_recomputed,
    holds_settings_purge_and_exports_work_from_the_command_line,
    a_running_server_signs_checkpoints_on_its_timer_and_an_auditor_checks_the_exported_file,
);

/// `openline archive WORDS… --database-url DB` with extra environment.
async fn archive(db: &str, words: &[&str], env: &[(&str, &str)]) -> Ran {
    let mut cmd = openline();
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut args = vec!["archive"];
    args.extend(words);
    args.extend(["--database-url", db]);
    run_with(cmd, &args, None).await
}

/// What an insider with database access does to rewrite history so that the hash chain alone
/// cannot tell: edit an entry, then recompute every hash after it and the chain's head.
async fn rewrite_history(url: &openline_store::DatabaseUrl, from: &'static str, to: &'static str) {
    use sha2::{Digest, Sha256};
    let store = openline_store::Store::open(url).unwrap();
    store
        .write(move |c| {
            c.execute(
                "update journal set payload = replace(payload, ?, ?)",
                openline_store::params![from, to],
            )?;
            let orgs: Vec<String> = c
                .query("select org_id from journal_heads", &[])?
                .iter()
                .map(|r| r.string(0))
                .collect::<Result<_, _>>()?;
            for org in orgs {
                let rows = c.query(
                    "select seq, at, kind, subject_id, payload from journal where org_id = ? order by seq",
                    openline_store::params![&org],
                )?;
                let mut prev = openline_store::journal::GENESIS.to_owned();
                for r in rows {
                    let (seq, at, kind, subject, payload) =
                        (r.i64(0)?, r.i64(1)?, r.string(2)?, r.opt_string(3)?, r.string(4)?);
                    let mut h = Sha256::new();
                    for part in [
                        prev.as_str(),
                        &seq.to_string(),
                        &org,
                        &at.to_string(),
                        &kind,
                        subject.as_deref().unwrap_or(""),
                        &payload,
                    ] {
                        h.update((part.len() as u64).to_be_bytes());
                        h.update(part.as_bytes());
                    }
                    let hash = hex::encode(h.finalize());
                    c.execute(
                        "update journal set prev_hash = ?, hash = ? where org_id = ? and seq = ?",
                        openline_store::params![&prev, &hash, &org, seq],
                    )?;
                    prev = hash;
                }
                c.execute(
                    "update journal_heads set hash = ? where org_id = ?",
                    openline_store::params![&prev, &org],
                )?;
            }
            Ok(())
        })
        .await
        .unwrap();
}

async fn an_exported_checkpoint_catches_history_rewritten_with_every_hash_recomputed(db: TestDb) {
    let url = db.url.to_string();
    create_org(&url, "Bank").await;
    create_user(&url, "Bank", "compliance@bank.test", "admin", PASSWORD)
        .await
        .assert_ok();
    let keys = run(&["archive", "keygen"], None).await.assert_ok();
    let lines: Vec<&str> = keys.stdout.lines().collect();
    let (secret, public) = (lines[1], lines[3]);
    assert_eq!((secret.len(), public.len()), (64, 64), "{}", keys.stdout);

    // Without a key, checkpointing says how to get one.
    archive(&url, &["checkpoint"], &[])
        .await
        .assert_fails_saying("openline archive keygen");
    let key = [("OPENLINE_ARCHIVE_SIGNING_KEY", secret)];
    let signed = archive(&url, &["checkpoint"], &key).await.assert_ok();
    assert!(signed.stdout.contains("1 new checkpoints"), "{}", signed.stdout);

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("checkpoints.json");
    let file = file.to_str().unwrap();
    archive(&url, &["checkpoints", "--export", "--output", file], &key)
        .await
        .assert_ok();
    let exported: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    assert_eq!(exported["public_key"], public);
    let ok = archive(&url, &["verify", "--checkpoints", file], &[]).await.assert_ok();
    assert!(ok.stdout.contains("1 signed checkpoints match"), "{}", ok.stdout);

    // The insider renames the user in the archive and recomputes every hash: the chain verifies,
    // the auditor's checkpoint does not.
    rewrite_history(&db.url, "compliance@bank.test", "nobody@bank.test").await;
    let fooled = archive(&url, &["verify"], &[]).await.assert_ok();
    assert!(fooled.stdout.starts_with("ok"), "{}", fooled.stdout);
    let caught = archive(&url, &["verify", "--checkpoints", file, "--public-key", public], &[]).await;
    assert!(!caught.status.success(), "{}", caught.stdout);
    assert!(
        caught.stdout.contains("REWRITTEN") && caught.stdout.contains("rewritten"),
        "{}",
        caught.stdout
    );
    // A checkpoints file that is not one is refused plainly.
    std::fs::write(file, "{}").unwrap();
    archive(&url, &["verify", "--checkpoints", file], &[])
        .await
        .assert_fails_saying("not a checkpoints export");
}

async fn holds_settings_purge_and_exports_work_from_the_command_line(db: TestDb) {
    let url = db.url.to_string();
    create_org(&url, "Bank").await;
    create_user(&url, "Bank", "agent@bank.test", "agent", PASSWORD)
        .await
        .assert_ok();

    let held = archive(
        &url,
        &[
            "hold",
            "--org",
            "Bank",
            "--user",
            "agent@bank.test",
            "--reason",
            "FINRA 4511 review",
        ],
        &[],
    )
    .await
    .assert_ok();
    let hold_id = held
        .stdout
        .split_whitespace()
        .find(|w| w.starts_with("hold_"))
        .unwrap()
        .to_owned();
    archive(
        &url,
        &["hold", "--org", "Bank", "--user", "nobody@bank.test", "--reason", "x"],
        &[],
    )
    .await
    .assert_fails_saying("no such user");
    let promoted = admin(&url, "set-role --email agent@bank.test --role supervisor", None)
        .await
        .assert_ok();
    assert!(
        promoted.stdout.contains("agent@bank.test is now supervisor"),
        "{}",
        promoted.stdout
    );
    admin(&url, "set-role --email agent@bank.test --role root", None)
        .await
        .assert_fails_saying("--role");
    let listed = archive(&url, &["holds"], &[]).await.assert_ok();
    assert!(listed.stdout.contains(&hold_id) && listed.stdout.contains("FINRA 4511 review"));

    let set = archive(
        &url,
        &[
            "settings",
            "--org",
            "Bank",
            "--retention-days",
            "3650",
            "--recording",
            "off",
        ],
        &[],
    )
    .await
    .assert_ok();
    assert!(
        set.stdout.contains("retention 3650 days, recording off"),
        "{}",
        set.stdout
    );
    archive(&url, &["settings", "--org", "Bank", "--retention-days", "0"], &[])
        .await
        .assert_fails_saying("--retention-days");

    // Nothing has expired: the purge removes nothing, and says so.
    let purged = archive(&url, &["purge", "--dry-run"], &[]).await.assert_ok();
    assert!(
        purged.stdout.contains("would purge      0 entries"),
        "{}",
        purged.stdout
    );
    archive(&url, &["release", "--id", &hold_id], &[]).await.assert_ok();
    archive(&url, &["release", "--id", &hold_id], &[])
        .await
        .assert_fails_saying("no active legal hold");

    // Exports: CSV metadata naming the CLI as the actor of each change; a bad format is refused.
    let csv = archive(&url, &["export", "--org", "Bank", "--format", "csv"], &[])
        .await
        .assert_ok();
    let rows: Vec<&str> = csv.stdout.lines().collect();
    assert!(rows[0].starts_with("seq,at,kind,"));
    for kind in [
        "legal_hold.set",
        "legal_hold.released",
        "organization.settings_changed",
        "user.role_changed",
    ] {
        assert!(
            rows.iter().any(|r| r.contains(kind) && r.contains(",cli,")),
            "{kind} by the CLI in:\n{}",
            csv.stdout
        );
    }
    let jsonl = archive(&url, &["export", "--org", "Bank", "--user", "agent@bank.test"], &[])
        .await
        .assert_ok();
    assert!(
        jsonl.stdout.lines().count() >= 3,
        "the user, their hold and its release: {}",
        jsonl.stdout
    );
    assert!(jsonl.stdout.lines().all(|l| serde_json::from_str::<Value>(l).is_ok()));
    archive(&url, &["export", "--org", "Bank", "--format", "pdf"], &[])
        .await
        .assert_fails_saying("--format must be jsonl, eml or csv");
    let ok = archive(&url, &["verify"], &[]).await.assert_ok();
    assert!(!ok.stdout.contains("BROKEN"), "{}", ok.stdout);
}

async fn a_running_server_signs_checkpoints_on_its_timer_and_an_auditor_checks_the_exported_file(db: TestDb) {
    let url = db.url.to_string();
    let data = tempfile::tempdir().unwrap();
    create_user(&url, "Bank", "compliance@bank.test", "admin", PASSWORD)
        .await
        .assert_ok();
    let keys = run(&["archive", "keygen"], None).await.assert_ok();
    let lines: Vec<&str> = keys.stdout.lines().collect();
    let (secret, public) = (lines[1].to_owned(), lines[3].to_owned());
    let (server, base) = serve(
        &[
            "--listen",
            "127.0.0.1:0",
            "--data-dir",
            data.path().to_str().unwrap(),
            "--database-url",
            &url,
        ],
        &[("OPENLINE_ARCHIVE_SIGNING_KEY", &secret)],
    )
    .await;
    let client = http();
    sign_in(&client, &base, "compliance@bank.test", PASSWORD).await;
    // The timer signs the chain heads shortly after start, without anyone asking.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let exported = loop {
        let v = get_json(&client, &format!("{base}/api/v1/archive/checkpoints")).await;
        if !v["checkpoints"].as_array().unwrap().is_empty() {
            break v;
        }
        assert!(tokio::time::Instant::now() < deadline, "no checkpoint was signed: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(exported["public_key"], public.as_str());
    // On demand: nothing moved since, so nothing new is signed.
    let res = client
        .post(format!("{base}/api/v1/archive/checkpoints"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(res.json::<Value>().await.unwrap(), json!([]));
    assert!(server.terminate().await.success());

    // The auditor checks the file the API gave them against the archive.
    let file = data.path().join("checkpoints.json");
    std::fs::write(&file, exported.to_string()).unwrap();
    let ok = archive(
        &url,
        &[
            "verify",
            "--checkpoints",
            file.to_str().unwrap(),
            "--public-key",
            &public,
        ],
        &[],
    )
    .await
    .assert_ok();
    assert!(ok.stdout.contains("signed checkpoints match"), "{}", ok.stdout);
}
