//! Delivery across a crash (issue 6): the real binary, SIGKILLed while it is sending, restarted on
//! the same database, delivers every accepted message, and any message the phone got twice is one
//! openline flagged as a duplicate.
//!
//! A standalone simulator answers each send only after `--send-latency-ms`, with the message
//! already on the phone: killing openline the moment a new message shows on a phone kills it while
//! at least that send's answer is on its way, so the provider has a message whose id openline never
//! recorded. Pass or fail never depends on timing beyond generous waits: the assertions hold for
//! any interleaving (a message may arrive once or twice, never three times, and twice only if
//! flagged).

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)]
mod support;

use openline_store::testing::TestDb;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;
use support::*;

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

on_both_databases!(a_server_killed_while_sending_delivers_every_message_at_least_once_and_flags_every_duplicate);

/// Phones (manual: the test taps their opt-in) and messages per phone. A contact takes a burst of
/// ten before the pair limit spaces sends six seconds apart; with the opt-in request that leaves
/// eight each.
const PHONES: [&str; 5] = [
    "+447700900021",
    "+447700900022",
    "+447700900023",
    "+447700900024",
    "+447700900025",
];
const PER_PHONE: usize = 8;
/// How long the simulator takes to answer an accepted send.
const LATENCY_MS: &str = "700";
/// The claim's lease (60 s) runs out before a crashed node's rows are sent again: wait well past it.
const DELIVERY_WAIT: Duration = Duration::from_secs(240);

async fn poll<T, F, Fut>(what: &str, wait: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// What a phone received from the business: the texts, in order.
async fn phone_texts(client: &reqwest::Client, sim: &str, phone: &str) -> Vec<Value> {
    let seen = get_json(client, &format!("{sim}/phones/{phone}/messages")).await;
    seen.as_array()
        .expect("a list")
        .iter()
        .filter(|m| m["direction"] == "from_business")
        .cloned()
        .collect()
}

async fn start_server(port: u16, data: &str, db: &str, graph: &str) -> (Running, String) {
    serve(
        &[
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
            data,
            "--database-url",
            db,
        ],
        &[
            ("OPENLINE_WHATSAPP_GRAPH_BASE_URL", graph),
            ("OPENLINE_WHATSAPP_ACCESS_TOKEN", "sim-access-token"),
            ("OPENLINE_WHATSAPP_APP_SECRET", "sim-app-secret"),
            ("OPENLINE_WHATSAPP_VERIFY_TOKEN", "x"),
        ],
    )
    .await
}

/// The phone writes first (opening the 24-hour window), the agent asks for consent, the phone taps
/// Yes: the contact's id once openline has the consent.
async fn opted_in_contact(client: &reqwest::Client, base: &str, sim: &str, phone: &str) -> String {
    let written: Value = client
        .post(format!("{sim}/phones/{phone}/messages"))
        .json(&json!({ "to": "15550001000", "text": "hi" }))
        .send()
        .await
        .expect("phone writes")
        .json()
        .await
        .expect("JSON");
    assert_eq!(written["webhook_status"], 200, "{written}");
    let digits = phone.trim_start_matches('+');
    let contact = poll("the contact", Duration::from_secs(30), || async {
        let contacts = get_json(client, &format!("{base}/api/v1/contacts?q={digits}")).await;
        contacts["items"]
            .as_array()
            .and_then(|items| items.iter().find(|c| c["phone"] == phone))
            .and_then(|c| c["id"].as_str().map(str::to_owned))
    })
    .await;
    let asked = client
        .post(format!("{base}/api/v1/contacts/{contact}/opt-in"))
        .send()
        .await
        .expect("opt-in request");
    assert_eq!(asked.status(), 202);
    let request_id = poll("the opt-in request on the phone", Duration::from_secs(30), || async {
        phone_texts(client, sim, phone)
            .await
            .iter()
            .find(|m| m["type"] == "template")
            .and_then(|m| m["id"].as_str().map(str::to_owned))
    })
    .await;
    let tapped = client
        .post(format!("{sim}/phones/{phone}/buttons"))
        .json(&json!({ "message_id": request_id, "button": "OPTIN_YES" }))
        .send()
        .await
        .expect("tap Yes");
    assert_eq!(tapped.status(), 200, "{}", tapped.text().await.unwrap_or_default());
    poll("consent", Duration::from_secs(30), || async {
        let consent = get_json(client, &format!("{base}/api/v1/contacts/{contact}/consent")).await;
        (consent["consent"]["state"] == "granted").then_some(())
    })
    .await;
    contact
}

async fn a_server_killed_while_sending_delivers_every_message_at_least_once_and_flags_every_duplicate(db: TestDb) {
    // Arrange: an organization with an agent and the simulator's number; a slow simulator; openline
    // on a file (or PostgreSQL) database; five contacts who opted in.
    let url = db.url.to_string();
    let data_dir = tempfile::tempdir().expect("temp dir");
    let data = data_dir.path().to_str().expect("utf-8 path").to_owned();
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
    let mut sim_cmd = openline();
    sim_cmd.args([
        "sim",
        "--listen",
        &format!("127.0.0.1:{sim_port}"),
        "--webhook-url",
        &format!("http://127.0.0.1:{openline_port}/webhooks/whatsapp"),
        "--status-delay-secs",
        "0",
        "--send-latency-ms",
        LATENCY_MS,
    ]);
    let (sim_proc, sim_line) = Running::start(sim_cmd, "simulator listening on ").await;
    let sim = sim_line.split_whitespace().next().expect("sim URL").to_owned();
    let graph = format!("{sim}/graph");
    let (server, base) = start_server(openline_port, &data, &url, &graph).await;
    let client = http();
    sign_in(&client, &base, "agent@acme.test", PASSWORD).await;
    let mut contacts = Vec::new();
    for phone in PHONES {
        contacts.push(opted_in_contact(&client, &base, &sim, phone).await);
    }
    // The opt-in requests and confirmations are all answered (the kill must hit a test message).
    poll("the opt-in exchanges to settle", Duration::from_secs(60), || async {
        let conversations = get_json(&client, &format!("{base}/api/v1/conversations")).await;
        for conv in conversations["items"].as_array().expect("items") {
            let thread = get_json(
                &client,
                &format!(
                    "{base}/api/v1/conversations/{}/messages",
                    conv["id"].as_str().expect("id")
                ),
            )
            .await;
            let unsettled = thread["items"]
                .as_array()
                .expect("items")
                .iter()
                .any(|m| m["direction"] == "out" && m["provider_message_id"].is_null());
            if unsettled {
                return None;
            }
        }
        Some(())
    })
    .await;
    let before: HashMap<&str, usize> = {
        let mut m = HashMap::new();
        for phone in PHONES {
            m.insert(phone, phone_texts(&client, &sim, phone).await.len());
        }
        m
    };

    // Act: accept 40 messages, then kill openline the moment a new one shows on a phone (its send's
    // answer is still on its way), and start it again on the same database.
    let mut accepted: Vec<(String, String, String)> = Vec::new(); // (message id, phone, text)
    for round in 0..PER_PHONE {
        for (phone, contact) in PHONES.iter().zip(&contacts) {
            let text = format!("restart test {phone} #{round}");
            let res = client
                .post(format!("{base}/api/v1/messages"))
                .json(&json!({ "contact_id": contact, "text": text }))
                .send()
                .await
                .expect("send");
            assert_eq!(res.status(), 202, "{}", res.text().await.unwrap_or_default());
            let sent: Value = res.json().await.expect("JSON");
            assert!(sent["queue_reason"].is_null(), "released at once: {sent}");
            accepted.push((sent["id"].as_str().expect("id").to_owned(), phone.to_string(), text));
        }
    }
    poll("a send on its way", Duration::from_secs(60), || async {
        for phone in PHONES {
            if phone_texts(&client, &sim, phone).await.len() > before[phone] {
                return Some(());
            }
        }
        None
    })
    .await;
    let killed = server.kill().await;
    assert!(!killed.success(), "SIGKILL ends it without a clean exit: {killed}");
    let (server, base) = start_server(openline_port, &data, &url, &graph).await;
    let client = http();
    sign_in(&client, &base, "agent@acme.test", PASSWORD).await;

    // Every accepted message is sent: its provider's answer recorded (an early `sent` status alone
    // does not count: a message whose answer was lost in the crash is sent again once its claim's
    // lease runs out).
    let deadline = tokio::time::Instant::now() + DELIVERY_WAIT;
    loop {
        let mut pending = Vec::new();
        for (id, _, _) in &accepted {
            let m = get_json(&client, &format!("{base}/api/v1/messages/{id}")).await;
            if !matches!(m["status"].as_str(), Some("sent" | "delivered" | "read"))
                || m["provider_message_id"].is_null()
            {
                pending.push(m);
            }
        }
        if pending.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} messages never reached sent, e.g. {}",
            pending.len(),
            pending[0]
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Arrivals, from the simulator's record of each phone.
    let mut arrivals: HashMap<String, usize> = HashMap::new();
    for phone in PHONES {
        for m in phone_texts(&client, &sim, phone).await {
            if let Some(text) = m["text"].as_str().filter(|t| t.starts_with("restart test")) {
                *arrivals.entry(text.to_owned()).or_default() += 1;
            }
        }
    }
    // A duplicate's first copy reports its statuses too (naming the message): wait until each
    // message that arrived twice is confirmed, as far as the statuses allow.
    let twice: Vec<&(String, String, String)> = accepted
        .iter()
        .filter(|(_, _, text)| arrivals.get(text).copied().unwrap_or(0) >= 2)
        .collect();
    for (id, _, text) in &twice {
        let m = poll("a confirmed duplicate", Duration::from_secs(60), || async {
            let m = get_json(&client, &format!("{base}/api/v1/messages/{id}")).await;
            (m["duplicate_confirmed"] == true).then_some(m)
        })
        .await;
        assert_eq!(m["possible_duplicate"], true, "{text}: {m}");
    }
    // The thread shows the flag as well.
    let conversations = get_json(&client, &format!("{base}/api/v1/conversations")).await;
    let flagged_in_threads: Vec<Value> = {
        let mut n = Vec::new();
        for conv in conversations["items"].as_array().expect("items") {
            let thread = get_json(
                &client,
                &format!(
                    "{base}/api/v1/conversations/{}/messages?limit=100",
                    conv["id"].as_str().expect("id")
                ),
            )
            .await;
            n.extend(
                thread["items"]
                    .as_array()
                    .expect("items")
                    .iter()
                    .filter(|m| m["duplicate_confirmed"] == true)
                    .filter(|m| m["body"].as_str().is_some_and(|b| b.starts_with("restart test")))
                    .cloned(),
            );
        }
        n
    };

    let mut latest: HashMap<String, Value> = HashMap::new();
    for (id, _, _) in &accepted {
        latest.insert(
            id.clone(),
            get_json(&client, &format!("{base}/api/v1/messages/{id}")).await,
        );
    }
    let server_stopped = server.terminate().await;
    let sim_stopped = sim_proc.terminate().await;

    // Assert.
    for (id, phone, text) in &accepted {
        let n = arrivals.get(text).copied().unwrap_or(0);
        let m = &latest[id];
        assert!(n >= 1, "{text} never reached {phone}: {m}");
        assert!(n <= 2, "{text} reached {phone} {n} times: {m}");
        if n == 2 {
            assert_eq!(m["possible_duplicate"], true, "{text} arrived twice unflagged: {m}");
            assert_eq!(m["duplicate_confirmed"], true, "{text}: {m}");
        } else {
            assert_eq!(
                m["duplicate_confirmed"], false,
                "{text} arrived once but is confirmed twice: {m}"
            );
        }
    }
    let store = openline_store::Store::open(&db.url).unwrap();
    let provider_ids: Vec<(String, String)> = store
        .read(|c| {
            c.query("select message_id, provider_message_id from message_provider_ids", &[])?
                .iter()
                .map(|r| Ok((r.string(0)?, r.string(1)?)))
                .collect()
        })
        .await
        .unwrap();
    assert_eq!(
        flagged_in_threads.len(),
        twice.len(),
        "the threads show each confirmed duplicate: {flagged_in_threads:#?}\narrivals: {arrivals:?}\nprovider ids: {provider_ids:?}"
    );
    // The kill came while a send's answer was on its way (a new message had reached a phone and
    // the simulator answers only after LATENCY_MS): that message was sent again after the restart.
    assert!(
        !twice.is_empty(),
        "the crash hit no send in flight; arrivals: {arrivals:?}"
    );
    assert!(server_stopped.success(), "{server_stopped}");
    assert!(sim_stopped.success(), "{sim_stopped}");
}
