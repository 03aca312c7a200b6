//! A Twilio Content template registered while WhatsApp's review is pending becomes usable once
//! approved, without registering it again: openline asks Twilio's Content API
//! (`GET /v1/Content/{Sid}/ApprovalRequests`) again when a send uses it and on a timer. Twilio is a
//! local mock (wiremock) whose answer the test changes, in front of a production-mode server (no
//! simulator) with its organization, admin, Twilio number and contact written directly.

use crate::common::*;
use openline_server::config::Secret;
use openline_store::Backend;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use wiremock::matchers::{method, path, path_regex};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

crate::both_backends! {
    a_send_asks_twilio_again_and_goes_once_the_template_is_approved => asked_again_on_send;
    pending_templates_are_asked_about_on_a_timer_until_their_review_ends => asked_again_on_a_timer;
}

const ACCOUNT: &str = "AC0123456789abcdef0123456789abcdef";
const STATEMENT: &str = "HX11111111111111111111111111111111";
const PROMO: &str = "HX22222222222222222222222222222222";
const ADMIN: &str = "admin@bank.example";

/// Twilio, as far as openline asks it: WhatsApp's review of each Content template (changed by the
/// test) and the Messages API accepting sends.
struct Twilio {
    server: MockServer,
    reviews: Arc<Mutex<Vec<(String, String)>>>,
}

impl Twilio {
    async fn start() -> Self {
        let server = MockServer::start().await;
        let reviews: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let r = reviews.clone();
        Mock::given(method("GET"))
            .and(path_regex(r"^/content/v1/Content/HX[0-9a-f]{32}/ApprovalRequests$"))
            .respond_with(move |req: &Request| {
                let sid = req.url.path().split('/').nth(4).unwrap_or_default().to_owned();
                let status = r
                    .lock()
                    .unwrap()
                    .iter()
                    .find(|(s, _)| *s == sid)
                    .map(|(_, st)| st.clone());
                match status {
                    Some(status) => ResponseTemplate::new(200).set_body_json(json!({
                        "sid": sid, "account_sid": ACCOUNT,
                        "whatsapp": {"type": "whatsapp", "name": "t", "category": "UTILITY", "status": status,
                            "rejection_reason": if status == "rejected" { "Variables at the start." } else { "" }},
                        "url": format!("https://content.twilio.com/v1/Content/{sid}/ApprovalRequests"),
                    })),
                    None => ResponseTemplate::new(404).set_body_json(json!({"code": 20404, "status": 404,
                        "message": "The requested resource was not found"})),
                }
            })
            .mount(&server)
            .await;
        Mock::given(method("POST"))
            .and(path(format!("/2010-04-01/Accounts/{ACCOUNT}/Messages.json")))
            .respond_with(ResponseTemplate::new(201).set_body_json(
                json!({"sid": "SM0123456789abcdef0123456789abcdef", "status": "queued", "account_sid": ACCOUNT}),
            ))
            .mount(&server)
            .await;
        Self { server, reviews }
    }

    fn review(&self, sid: &str, status: &str) {
        let mut reviews = self.reviews.lock().unwrap();
        reviews.retain(|(s, _)| s != sid);
        reviews.push((sid.to_owned(), status.to_owned()));
    }

    async fn requests(&self, method_name: &str, path_part: &str) -> Vec<Request> {
        self.server
            .received_requests()
            .await
            .unwrap_or_default()
            .into_iter()
            .filter(|r| r.method.as_str() == method_name && r.url.path().contains(path_part))
            .collect()
    }
}

/// A production-mode server talking to `twilio`, with a bank, its admin, a WhatsApp number on
/// Twilio and Dan, who opted in. Returns the app, the number's id and Dan's id.
async fn bank(backend: Backend, twilio: &Twilio, refresh_ms: u64) -> (TestApp, String, String) {
    let base = twilio.server.uri();
    let app = spawn_app_configured(backend, move |c| {
        c.demo = false;
        c.twilio.base_url = base;
        c.twilio.account_sid = ACCOUNT.into();
        c.twilio.auth_token = Secret::new("twilio-auth-token");
        c.twilio.approval_refresh_ms = refresh_ms;
    })
    .await;
    let hash = openline_server::auth::hash_password_blocking(PASSWORD).unwrap();
    let store = app.handle.as_ref().unwrap().state.store.clone();
    let (sender, dan) = store
        .write(move |c| {
            let now = openline_domain::clock::Clock::now(&openline_domain::clock::SystemClock);
            let org = openline_store::orgs::create(c, "Bank", None, "on", now)?;
            openline_store::users::create(
                c,
                &openline_store::users::NewUser {
                    org_id: &org.id,
                    team_id: None,
                    email: ADMIN,
                    name: "Bank Admin",
                    role: openline_domain::Role::Admin,
                    password_hash: &hash,
                },
                now,
            )?;
            let sender = openline_store::senders::create(
                c,
                &openline_store::senders::NewSender {
                    org_id: &org.id,
                    channel: openline_domain::Channel::Whatsapp,
                    provider: openline_domain::ProviderKind::Twilio,
                    phone_number: "+15550001000",
                    phone_number_id: "whatsapp:+15550001000",
                    waba_id: None,
                    display_name: "Bank via Twilio",
                    throughput_per_s: 10,
                },
                now,
            )?;
            let dan = openline_store::contacts::create(c, &org.id, "+447700900002", Some("Dan"), now)?;
            openline_store::consent::append(
                c,
                &openline_store::consent::NewConsentEvent {
                    org_id: &org.id,
                    contact_id: &dan.id,
                    kind: "opted_in",
                    actor_user_id: None,
                    message_id: None,
                    provider_message_id: None,
                    evidence: &json!({"source": "test"}),
                    at: now,
                },
            )?;
            Ok((sender.id, dan.id))
        })
        .await
        .unwrap();
    app.sign_in(ADMIN).await;
    (app, sender, dan)
}

async fn register(app: &TestApp, sender: &str, name: &str, sid: &str) -> Value {
    let (status, t) = app
        .post(
            "/api/v1/templates",
            json!({"sender_id": sender, "name": name, "language": "en", "category": "utility", "content_sid": sid,
                "components": [{"type": "body", "text": "Hello {{1}}, your statement is ready."}]}),
        )
        .await;
    assert_eq!(status, 201, "{t}");
    t
}

async fn send(app: &TestApp, dan: &str, name: &str) -> (u16, Value) {
    app.post(
        "/api/v1/messages",
        json!({"contact_id": dan, "template": {"name": name, "language": "en", "parameters": ["Dan"]}}),
    )
    .await
}

async fn template_state(app: &TestApp, id: &str) -> Value {
    let (status, t) = app.get(&format!("/api/v1/templates/{id}")).await;
    assert_eq!(status, 200, "{t}");
    t["status"].clone()
}

/// The `template.status` journal entries: (template id, payload).
async fn journaled_statuses(app: &TestApp) -> Vec<(String, Value)> {
    let store = app.handle.as_ref().unwrap().state.store.clone();
    store
        .read(|c| {
            c.query(
                "select subject_id, payload from journal where kind = 'template.status' order by seq",
                &[],
            )?
            .iter()
            .map(|r| Ok((r.string(0)?, serde_json::from_str(&r.string(1)?).unwrap())))
            .collect()
        })
        .await
        .unwrap()
}

async fn asked_again_on_send(backend: Backend) {
    // Arrange: registered while WhatsApp's review is pending (no timer: only sends ask).
    let twilio = Twilio::start().await;
    twilio.review(STATEMENT, "pending");
    let (app, sender, dan) = bank(backend, &twilio, 0).await;
    let template = register(&app, &sender, "statement_ready", STATEMENT).await;
    assert_eq!(template["status"]["state"], "pending", "{template}");
    let id = template["id"].as_str().unwrap().to_owned();

    // Still pending when a send asks: refused as before, nothing stored or sent.
    let (status, refused) = send(&app, &dan, "statement_ready").await;
    assert_eq!(
        (status, refused["error"].as_str()),
        (422, Some("template_not_approved")),
        "{refused}"
    );
    assert_eq!(
        twilio.requests("GET", STATEMENT).await.len(),
        2,
        "asked at registration and at the send"
    );
    assert_eq!(app.count("select count(*) from messages").await, 0);

    // WhatsApp approves it; the next send asks, learns it, and the template goes out.
    twilio.review(STATEMENT, "approved");
    let (status, sent) = send(&app, &dan, "statement_ready").await;
    assert_eq!(status, 202, "{sent}");
    assert_eq!(template_state(&app, &id).await["state"], "approved");
    let statuses = journaled_statuses(&app).await;
    assert_eq!(statuses.len(), 1, "{statuses:?}");
    assert_eq!(statuses[0].0, id);
    assert_eq!(statuses[0].1["status"]["state"], "approved", "{statuses:?}");
    assert_eq!(statuses[0].1["actor"]["type"], "system", "{statuses:?}");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let to_twilio = loop {
        if let Some(r) = twilio.requests("POST", "/Messages.json").await.pop() {
            break r;
        }
        assert!(tokio::time::Instant::now() < deadline, "the send never reached Twilio");
        tokio::time::sleep(Duration::from_millis(30)).await;
    };
    let form: Vec<(String, String)> = serde_urlencoded::from_bytes(&to_twilio.body).unwrap();
    assert!(form.contains(&("ContentSid".into(), STATEMENT.into())), "{form:?}");

    // Approved now: later sends do not ask again.
    let (status, again) = send(&app, &dan, "statement_ready").await;
    assert_eq!(status, 202, "{again}");
    assert_eq!(twilio.requests("GET", STATEMENT).await.len(), 3);
    app.stop().await;
}

async fn asked_again_on_a_timer(backend: Backend) {
    // Arrange: two templates pending, asked about every 100 ms.
    let twilio = Twilio::start().await;
    twilio.review(STATEMENT, "pending");
    twilio.review(PROMO, "received");
    let (app, sender, _) = bank(backend, &twilio, 100).await;
    let statement = register(&app, &sender, "statement_ready", STATEMENT).await;
    let promo = register(&app, &sender, "promo", PROMO).await;
    let (sid_statement, sid_promo) = (
        statement["id"].as_str().unwrap().to_owned(),
        promo["id"].as_str().unwrap().to_owned(),
    );
    let mut live = app.http.get(app.at("/api/v1/events")).send().await.unwrap();
    let mut buf = String::new();
    // Asked again while nothing changes: still pending, nothing journaled.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while twilio.requests("GET", STATEMENT).await.len() < 3 {
        assert!(tokio::time::Instant::now() < deadline, "the timer never asked");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    assert_eq!(template_state(&app, &sid_statement).await["state"], "pending");
    assert!(journaled_statuses(&app).await.is_empty());

    // Act: WhatsApp approves one and rejects the other; nobody sends anything.
    twilio.review(STATEMENT, "approved");
    twilio.review(PROMO, "rejected");

    // Assert: both reviews are recorded once each, by the system, and open pages hear of them.
    let ev = next_event(&mut live, "template.status", &mut buf).await;
    assert!(
        [sid_statement.as_str(), sid_promo.as_str()].contains(&ev["data"]["id"].as_str().unwrap_or_default()),
        "{ev}"
    );
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (a, b) = (
            template_state(&app, &sid_statement).await,
            template_state(&app, &sid_promo).await,
        );
        if a["state"] == "approved" && b["state"] == "rejected" {
            assert_eq!(b["reason"], "Variables at the start.", "{b}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "never settled: {a} {b}");
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    // Settled reviews are not asked about any more.
    let asked = twilio.requests("GET", STATEMENT).await.len();
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(twilio.requests("GET", STATEMENT).await.len(), asked);
    let statuses = journaled_statuses(&app).await;
    assert_eq!(statuses.len(), 2, "{statuses:?}");
    for (_, entry) in &statuses {
        assert_eq!(entry["actor"]["type"], "system", "{statuses:?}");
    }
    app.stop().await;
}
