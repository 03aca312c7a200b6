//! The compliance pages and the thread's participants panel through HTTP, as a browser uses them:
//! who may open them, legal holds placed and released from the form (journaled with who did it),
//! exports downloaded from the form, webhook subscriptions whose secret is shown once and kept
//! sealed in the database while deliveries still verify with it, and colleagues added to a thread.

use crate::common::*;
use axum::body::Bytes;
use axum::http::HeaderMap;
use openline_store::Backend;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;

crate::both_backends! {
    supervisors_and_admins_open_the_compliance_page_and_agents_get_403 => who_may_open;
    a_hold_placed_and_released_from_the_page_is_journaled_with_its_actor => holds_from_the_page;
    an_export_downloaded_from_the_page_parses_in_each_format => export_from_the_page;
    a_webhook_secret_is_shown_once_kept_sealed_and_deliveries_still_verify_with_it => sealed_webhook_secrets;
    a_colleague_is_added_removed_and_the_thread_handed_over_from_the_panel => participants_panel;
    signed_checkpoints_are_listed_and_downloaded_with_the_public_key => checkpoints_from_the_page;
}

const ADMIN: &str = "admin@demo.openline.dev";
const SUPERVISOR: &str = "supervisor@demo.openline.dev";
const AGENT2: &str = "agent2@demo.openline.dev";

/// A browser: keeps cookies, does not follow redirects (so tests see them).
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// Signs `email` in through the form; returns the browser and the session's CSRF token.
async fn signed_in(app: &TestApp, email: &str) -> (reqwest::Client, String) {
    let b = browser();
    let res = b
        .post(app.at("/login"))
        .header("origin", &app.url)
        .form(&[("email", email), ("password", PASSWORD), ("next", "/messages")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "sign-in of {email}");
    let (_, html) = page(app, &b, "/messages").await;
    (b, csrf_of(&html))
}

async fn page(app: &TestApp, b: &reqwest::Client, path: &str) -> (u16, String) {
    let res = b.get(app.at(path)).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.text().await.unwrap())
}

async fn post_form(app: &TestApp, b: &reqwest::Client, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    let res = b
        .post(app.at(path))
        .header("origin", &app.url)
        .form(form)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.text().await.unwrap())
}

fn csrf_of(html: &str) -> String {
    let marker = "name=\"csrf-token\" content=\"";
    let start = html.find(marker).unwrap() + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

/// The first `value="PREFIX…"` in a page, without the quotes.
fn value_starting(html: &str, prefix: &str) -> String {
    let marker = format!("value=\"{prefix}");
    let start = html.find(&marker).unwrap() + "value=\"".len();
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

async fn user_id(app: &TestApp, email: &'static str) -> String {
    let store = app.handle.as_ref().unwrap().state.store.clone();
    store
        .read(move |c| {
            c.query_one("select id from users where email = ?", openline_store::params![email])?
                .string(0)
        })
        .await
        .unwrap()
}

/// The journal's entries of `kind`, payloads parsed.
async fn journal_of(app: &TestApp, kind: &'static str) -> Vec<Value> {
    let store = app.handle.as_ref().unwrap().state.store.clone();
    store
        .read(move |c| {
            c.query(
                "select payload from journal where kind = ? order by org_id, seq",
                openline_store::params![kind],
            )?
            .iter()
            .map(|r| Ok(serde_json::from_str(&r.string(0)?).unwrap()))
            .collect()
        })
        .await
        .unwrap()
}

async fn who_may_open(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in(AGENT).await;
    app.phone_writes(ADA, "hello").await;

    let (admin, _) = signed_in(&app, ADMIN).await;
    let (status, html) = page(&app, &admin, "/compliance").await;
    assert_eq!(status, 200);
    assert!(html.contains("Chain intact through entry"), "the archive's state");
    assert!(html.contains("Webhook subscriptions"), "admins manage subscriptions");
    assert!(html.contains("href=\"/compliance\""), "the navigation links it");

    let (supervisor, _) = signed_in(&app, SUPERVISOR).await;
    let (status, html) = page(&app, &supervisor, "/compliance").await;
    assert_eq!(status, 200);
    assert!(html.contains("Legal holds") && html.contains("Download export"));
    assert!(
        !html.contains("Subscribe a URL"),
        "subscriptions stay with admins, as in the API"
    );

    let (agent, token) = signed_in(&app, AGENT).await;
    let (status, html) = page(&app, &agent, "/compliance").await;
    assert_eq!(status, 403);
    assert!(html.contains("data-code=\"forbidden\""), "{html}");
    let (_, inbox) = page(&app, &agent, "/messages").await;
    assert!(!inbox.contains("href=\"/compliance\""), "no link for agents");
    assert_eq!(page(&app, &agent, "/compliance/export?format=jsonl").await.0, 403);
    assert_eq!(page(&app, &agent, "/compliance/checkpoints").await.0, 403);
    // Nor can an agent place a hold or subscribe a URL by posting the forms.
    let org = user_org(&app, AGENT).await;
    let subject = format!("organization:{org}");
    let (status, _) = post_form(
        &app,
        &agent,
        "/compliance/holds",
        &[("csrf", &token), ("subject", &subject), ("reason", "agent's try")],
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = post_form(
        &app,
        &agent,
        "/compliance/webhooks",
        &[("csrf", &token), ("url", "https://example.com/h"), ("events", "*")],
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(app.count("select count(*) from legal_holds").await, 0);
    assert_eq!(app.count("select count(*) from webhook_subscriptions").await, 0);
    app.stop().await;
}

async fn user_org(app: &TestApp, email: &'static str) -> String {
    let store = app.handle.as_ref().unwrap().state.store.clone();
    store
        .read(move |c| {
            c.query_one(
                "select org_id from users where email = ?",
                openline_store::params![email],
            )?
            .string(0)
        })
        .await
        .unwrap()
}

async fn holds_from_the_page(backend: Backend) {
    let app = spawn_app(backend).await;
    let (sup, token) = signed_in(&app, SUPERVISOR).await;
    let (_, html) = page(&app, &sup, "/compliance").await;
    let subject = value_starting(&html, "organization:");

    // Bad input: refused with the API's codes, nothing stored.
    let (status, html) = post_form(
        &app,
        &sup,
        "/compliance/holds",
        &[("csrf", &token), ("subject", &subject), ("reason", "   ")],
    )
    .await;
    assert_eq!(status, 422);
    assert!(html.contains("data-code=\"invalid_hold_reason\""), "{html}");
    let (status, html) = post_form(
        &app,
        &sup,
        "/compliance/holds",
        &[
            ("csrf", &token),
            ("subject", "organization:org_nope"),
            ("reason", "Matter 7"),
        ],
    )
    .await;
    assert_eq!(status, 404, "{html}");
    let (status, html) = post_form(
        &app,
        &sup,
        "/compliance/holds",
        &[("csrf", &token), ("subject", "planet:earth"), ("reason", "Matter 7")],
    )
    .await;
    assert_eq!(status, 422);
    assert!(html.contains("data-code=\"invalid_hold_scope\""), "{html}");
    let (status, _) = post_form(
        &app,
        &sup,
        "/compliance/holds",
        &[("csrf", "wrong"), ("subject", &subject), ("reason", "Matter 7")],
    )
    .await;
    assert_eq!(status, 403, "without the form's token");
    assert_eq!(app.count("select count(*) from legal_holds").await, 0);

    // Placed from the form: listed as active, journaled with the supervisor as its actor.
    let (status, _) = post_form(
        &app,
        &sup,
        "/compliance/holds",
        &[
            ("csrf", &token),
            ("subject", &subject),
            ("reason", "Matter 2026-114 <subpoena>"),
        ],
    )
    .await;
    assert_eq!(status, 303);
    let (_, html) = page(&app, &sup, "/compliance").await;
    assert!(html.contains("Matter 2026-114 &lt;subpoena&gt;"), "listed, escaped");
    let set = journal_of(&app, "legal_hold.set").await;
    assert_eq!(set.len(), 1);
    assert_eq!(set[0]["actor"]["email"], SUPERVISOR, "{}", set[0]);
    assert_eq!(set[0]["reason"], "Matter 2026-114 <subpoena>");

    // Released from the page: journaled with who released it; releasing again is a 404.
    let hold_id = set[0]["id"].as_str().unwrap().to_owned();
    let release = format!("/compliance/holds/{hold_id}/release");
    assert!(html.contains(&format!("action=\"{release}\"")));
    let (status, _) = post_form(&app, &sup, &release, &[("csrf", &token)]).await;
    assert_eq!(status, 303);
    let released = journal_of(&app, "legal_hold.released").await;
    assert_eq!(released.len(), 1);
    assert_eq!(released[0]["actor"]["email"], SUPERVISOR, "{}", released[0]);
    assert_eq!(
        app.count("select count(*) from legal_holds where released_at is not null")
            .await,
        1
    );
    let (status, _) = post_form(&app, &sup, &release, &[("csrf", &token)]).await;
    assert_eq!(status, 404);
    let (_, html) = page(&app, &sup, "/compliance").await;
    assert!(
        !html.contains(&format!("action=\"{release}\"")),
        "a released hold has no release button"
    );
    app.stop().await;
}

async fn export_from_the_page(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in(AGENT).await;
    app.phone_writes(ADA, "Please sell my bonds").await;
    let (sup, _) = signed_in(&app, SUPERVISOR).await;
    let org = user_org(&app, AGENT).await;

    let res = sup
        .get(app.at(&format!(
            "/compliance/export?org_id={org}&format=jsonl&user_id=&contact_id=&conversation_id=&since=&until="
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("attachment"));
    let body = res.text().await.unwrap();
    let lines: Vec<Value> = body
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is JSON"))
        .collect();
    assert!(lines.len() >= 2, "{body}");
    assert!(body.contains("Please sell my bonds"));

    // A date range before anything happened holds none of it.
    let (status, old) = page(
        &app,
        &sup,
        &format!("/compliance/export?org_id={org}&format=jsonl&since=2001-01-01&until=2001-01-31"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(!old.contains("Please sell my bonds"));
    assert!(old.lines().count() < lines.len());

    let (status, csv) = page(&app, &sup, &format!("/compliance/export?org_id={org}&format=csv")).await;
    assert_eq!(status, 200);
    // Metadata only: a header and one row per entry, no message text.
    let header = csv.lines().next().unwrap_or_default();
    assert!(header.contains(','), "a header row: {header}");
    assert!(csv.lines().count() >= 2 && csv.contains("message.received"), "{csv}");
    assert!(!csv.contains("Please sell my bonds"));

    let (status, eml) = page(&app, &sup, &format!("/compliance/export?org_id={org}&format=eml")).await;
    assert_eq!(status, 200);
    assert!(eml.starts_with("From "), "an mbox");
    assert!(eml.contains("Please sell my bonds"));

    // Bad input is named, not half-exported.
    let (status, html) = page(&app, &sup, &format!("/compliance/export?org_id={org}&format=pdf")).await;
    assert_eq!(status, 422);
    assert!(html.contains("invalid_export_format"), "{html}");
    let (status, html) = page(&app, &sup, &format!("/compliance/export?org_id={org}&since=2025-02-30")).await;
    assert_eq!(status, 422);
    assert!(html.contains("invalid_date"), "{html}");
    let (status, _) = page(&app, &sup, "/compliance/export?org_id=org_elsewhere").await;
    assert_eq!(status, 404, "an organization outside the supervisor's");
    app.stop().await;
}

/// What a receiver got: the signature header and the body.
type Deliveries = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

async fn receiver() -> (String, Deliveries) {
    let got: Deliveries = Arc::default();
    let g = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let g = g.clone();
            async move {
                let sig = headers
                    .get("openline-signature")
                    .and_then(|h| h.to_str().ok())
                    .unwrap_or_default()
                    .to_owned();
                g.lock().unwrap().push((sig, body.to_vec()));
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{addr}/hook"), got)
}

async fn wait_for_deliveries(got: &Deliveries, n: usize) -> Vec<(String, Vec<u8>)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let now = got.lock().unwrap().clone();
        if now.len() >= n {
            return now;
        }
        assert!(tokio::time::Instant::now() < deadline, "only {} deliveries", now.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn stored_secret(app: &TestApp) -> (String, String) {
    let store = app.handle.as_ref().unwrap().state.store.clone();
    store
        .read(|c| {
            let r = c.query_one("select secret, secret_hint from webhook_subscriptions", &[])?;
            Ok((r.string(0)?, r.string(1)?))
        })
        .await
        .unwrap()
}

async fn sealed_webhook_secrets(backend: Backend) {
    let app = spawn_app_configured(backend, |c| {
        c.webhooks.allow_private = true;
        c.webhooks.poll_ms = 25;
    })
    .await;
    let (hook_url, got) = receiver().await;
    let (admin, token) = signed_in(&app, ADMIN).await;

    // A bad URL is refused with the API's code, nothing stored.
    let (status, html) = post_form(
        &app,
        &admin,
        "/compliance/webhooks",
        &[("csrf", &token), ("url", "ftp://archive.example"), ("events", "*")],
    )
    .await;
    assert_eq!(status, 400);
    assert!(html.contains("webhook_url_invalid"), "{html}");
    assert_eq!(app.count("select count(*) from webhook_subscriptions").await, 0);

    // Subscribed from the page (two event types ticked): the answer shows the secret, once.
    let res = admin
        .post(app.at("/compliance/webhooks"))
        .header("origin", &app.url)
        .form(&[
            ("csrf", token.as_str()),
            ("url", hook_url.as_str()),
            ("events", "message.received"),
            ("events", "consent.changed"),
            ("description", "records archive"),
            // The demo's conversations are in the sub-organization below the admin's.
            ("include_sub_organizations", "true"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let html = res.text().await.unwrap();
    let marker = "data-testid=\"webhook-secret\">";
    let start = html.find(marker).expect("the secret is shown") + marker.len();
    let secret = html[start..start + html[start..].find('<').unwrap()].to_owned();
    assert!(secret.starts_with("whsec_") && secret.len() > 30, "{secret}");
    assert!(html.contains("message.received, consent.changed"));

    // Kept sealed: the row holds neither the secret nor a piece of it, only the hint.
    let (stored, hint) = stored_secret(&app).await;
    assert!(stored.starts_with("sealed1:"), "{stored}");
    assert!(!stored.contains(&secret[6..]), "not in plain text");
    assert_eq!(hint, format!("…{}", &secret[secret.len() - 4..]));
    // Never shown again: not on the page, not in the API, not in the journal.
    let (_, html) = page(&app, &admin, "/compliance").await;
    assert!(!html.contains(&secret));
    assert!(html.contains(&hint), "the hint tells which secret the receiver holds");
    app.sign_in(ADMIN).await;
    let (_, listed) = app.get("/api/v1/webhook-subscriptions").await;
    assert!(!listed.to_string().contains(&secret));
    assert!(journal_of(&app, "webhook_subscription.created")
        .await
        .iter()
        .all(|p| !p.to_string().contains(&secret)));

    // Deliveries are signed with it: the receiver verifies.
    app.phone_writes(ADA, "for the archive").await;
    let deliveries = wait_for_deliveries(&got, 1).await;
    let now = openline_domain::clock::Clock::now(&openline_domain::clock::SystemClock) / 1000;
    let (sig, body) = &deliveries[0];
    openline_server::workers::outbound_webhooks::verify_signature(&secret, sig, body, now, 300)
        .expect("the delivery verifies with the secret shown once");
    assert!(openline_server::workers::outbound_webhooks::verify_signature("whsec_other", sig, body, now, 300).is_err());
    // The page lists the attempt and its result. The receiver has the delivery before the worker has
    // recorded its outcome (after the answer), so the page may take a moment to say so.
    let mut html = String::new();
    for _ in 0..100 {
        html = page(&app, &admin, "/compliance").await.1;
        if html.contains("data-outcome=\"delivered\"") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(html.contains("data-outcome=\"delivered\""), "{html}");

    // A row from before sealing (plain text) is sealed by the start-up step, and still signs.
    let state = app.handle.as_ref().unwrap().state.clone();
    let plain = secret.clone();
    let key = state.webhook_secrets_key.clone();
    let sealed_now = state
        .store
        .write(move |c| {
            c.execute(
                "update webhook_subscriptions set secret = ?, secret_hint = ''",
                openline_store::params![&plain],
            )?;
            openline_store::webhooks_out::sealed::seal_plaintext_secrets(c, &key)
        })
        .await
        .unwrap();
    assert_eq!(sealed_now, 1);
    let (stored_again, hint_again) = stored_secret(&app).await;
    assert!(stored_again.starts_with("sealed1:") && stored_again != stored);
    assert_eq!(hint_again, hint);
    app.phone_writes(ADA, "again for the archive").await;
    let deliveries = wait_for_deliveries(&got, 2).await;
    let (sig, body) = &deliveries[1];
    openline_server::workers::outbound_webhooks::verify_signature(&secret, sig, body, now, 300)
        .expect("still verifies after the migration");

    // Disabled from the page: journaled, the page offers to enable it again.
    let sub_id = {
        let marker = "data-subscription=\"";
        let start = html.find(marker).unwrap() + marker.len();
        html[start..start + html[start..].find('"').unwrap()].to_owned()
    };
    let (status, _) = post_form(
        &app,
        &admin,
        &format!("/compliance/webhooks/{sub_id}/enabled"),
        &[("csrf", &token), ("enabled", "false")],
    )
    .await;
    assert_eq!(status, 303);
    assert_eq!(
        app.count("select count(*) from webhook_subscriptions where state = 'disabled'")
            .await,
        1
    );
    let updated = journal_of(&app, "webhook_subscription.updated").await;
    assert_eq!(updated.last().unwrap()["actor"]["email"], ADMIN);
    let (_, html) = page(&app, &admin, "/compliance").await;
    assert!(html.contains(">Enable<"));
    app.stop().await;
}

async fn participants_panel(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in(AGENT).await;
    app.phone_writes(ADA, "who is handling my account?").await;
    let (_, inbox) = app.get("/api/v1/conversations").await;
    let conv = inbox["items"][0]["id"].as_str().unwrap().to_owned();
    let (agent2, sup) = (user_id(&app, AGENT2).await, user_id(&app, SUPERVISOR).await);
    let thread = format!("/messages/{conv}");

    let (amir, token) = signed_in(&app, AGENT).await;
    let (status, html) = page(&app, &amir, &thread).await;
    assert_eq!(status, 200);
    assert!(html.contains("id=\"participants\"") && html.contains("Add a colleague"));
    assert!(html.contains(&format!("value=\"{agent2}\"")), "Bea is offered");

    // Bad input: an unknown colleague is refused with the API's code, nothing journaled.
    let add = format!("{thread}/participants");
    let (status, html) = post_form(&app, &amir, &add, &[("csrf", &token), ("user_id", "usr_nobody")]).await;
    assert_eq!(status, 422);
    assert!(html.contains("data-code=\"not_a_colleague\""), "{html}");
    assert!(journal_of(&app, "participant.joined")
        .await
        .iter()
        .all(|p| !p.to_string().contains("usr_nobody")));

    // Amir adds Bea from the panel: she is listed, journaled with Amir as the one who added her.
    let (status, _) = post_form(&app, &amir, &add, &[("csrf", &token), ("user_id", &agent2)]).await;
    assert_eq!(status, 303);
    let (_, html) = page(&app, &amir, &thread).await;
    assert!(html.contains(&format!("data-user=\"{agent2}\"")), "Bea takes part");
    let joined = journal_of(&app, "participant.joined").await;
    let bea_joined = joined
        .iter()
        .find(|p| p.to_string().contains(&agent2))
        .expect("journaled");
    assert_eq!(bea_joined["actor"]["email"], AGENT, "{bea_joined}");

    // An agent may not remove a colleague (the API's 403); a supervisor may.
    let remove_bea = format!("{thread}/participants/{agent2}/remove");
    let (status, _) = post_form(&app, &amir, &remove_bea, &[("csrf", &token)]).await;
    assert_eq!(status, 403);
    let (sue, sue_token) = signed_in(&app, SUPERVISOR).await;
    let (status, _) = post_form(&app, &sue, &remove_bea, &[("csrf", &sue_token)]).await;
    assert_eq!(status, 303);
    let (_, html) = page(&app, &amir, &thread).await;
    assert!(!html.contains(&format!("data-user=\"{agent2}\"")), "Bea was removed");
    let removed = journal_of(&app, "participant.removed").await;
    assert_eq!(removed.last().unwrap()["actor"]["email"], SUPERVISOR);

    // The supervisor hands the thread to herself: she owns it and takes part.
    let (status, _) = post_form(
        &app,
        &sue,
        &format!("{thread}/transfer"),
        &[("csrf", &sue_token), ("user_id", &sup)],
    )
    .await;
    assert_eq!(status, 303);
    let (_, parts) = app.get(&format!("/api/v1/conversations/{conv}/participants")).await;
    assert_eq!(parts["owner_user_id"], sup.as_str(), "{parts}");
    let (_, html) = page(&app, &amir, &thread).await;
    assert!(html.contains(">owner<"));
    app.stop().await;
}

async fn checkpoints_from_the_page(backend: Backend) {
    let key = "07".repeat(32);
    let app = spawn_app_configured(backend, |c| {
        c.archive.signing_key = openline_server::config::Secret::new(key.clone());
        c.archive.checkpoint_minutes = 0;
    })
    .await;
    app.sign_in(AGENT).await;
    app.phone_writes(ADA, "sign this").await;
    let (sup, _) = signed_in(&app, SUPERVISOR).await;
    let (_, html) = page(&app, &sup, "/compliance").await;
    assert!(html.contains("No checkpoints yet."));
    assert!(!html.contains("No archive signing key is configured"));

    // Signed (through the API, with the key parsed at start-up), then listed and downloadable.
    app.sign_in(ADMIN).await;
    let (status, made) = app.post("/api/v1/archive/checkpoints", serde_json::json!({})).await;
    assert_eq!(status, 201, "{made}");
    let (_, html) = page(&app, &sup, "/compliance").await;
    assert!(html.contains("Download all checkpoints"), "{html}");
    let res = sup.get(app.at("/compliance/checkpoints")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("openline-checkpoints.json"));
    let file: Value = res.json().await.unwrap();
    let expected =
        openline_store::checkpoints::public_key_hex(&openline_store::checkpoints::parse_signing_key(&key).unwrap());
    assert_eq!(file["public_key"], expected.as_str());
    let listed = file["checkpoints"].as_array().unwrap();
    assert!(!listed.is_empty());
    assert!(listed.iter().all(|c| c["public_key"] == expected.as_str()));
    app.stop().await;
}
