//! The dispatcher against a mock Graph API (not the simulator): transient failures are retried with
//! backoff until accepted; permanent errors fail the message with the provider's code, once.

use openline_domain::{Channel, ProviderKind, Role};
use openline_server::config::{Config, Secret};
use openline_store::testing::TestDb;
use openline_store::{consent, contacts, messages, orgs, senders, users, Backend};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

crate::both_backends! {
    a_transient_provider_failure_is_retried_until_accepted => transient_then_accepted;
    a_permanent_provider_error_fails_the_message_without_retrying => permanent_error;
}

struct Rig {
    url: String,
    token: String,
    contact_id: String,
    handle: openline_server::ServerHandle,
    _db: TestDb,
    _data: tempfile::TempDir,
}

async fn rig(backend: Backend, graph: &MockServer) -> Rig {
    let db = TestDb::new(backend);
    let data = tempfile::tempdir().unwrap();
    let mut config = Config {
        listen: "127.0.0.1:0".into(),
        data_dir: data.path().to_path_buf(),
        database_url: Some(db.url.to_string()),
        ..Config::default()
    };
    config.whatsapp.graph_base_url = graph.uri();
    config.whatsapp.access_token = Secret::new("test-token");
    config.whatsapp.app_secret = Secret::new("test-secret");
    let handle = openline_server::start(config, Arc::new(openline_domain::clock::SystemClock))
        .await
        .unwrap();
    let token = openline_server::auth::new_api_token();
    let digest = openline_server::auth::digest(&token);
    let contact_id = handle
        .state
        .store
        .write(move |c| {
            let org = orgs::create(c, "Bank", None, "on", 1)?;
            let user = users::create(
                c,
                &users::NewUser {
                    org_id: &org.id,
                    team_id: None,
                    email: "a@bank.test",
                    name: "A",
                    role: Role::Agent,
                    password_hash: "x",
                },
                1,
            )?;
            users::create_token(c, &user.id, "t", &digest, 1)?;
            let sender = senders::create(
                c,
                &senders::NewSender {
                    org_id: &org.id,
                    channel: Channel::Whatsapp,
                    provider: ProviderKind::CloudApi,
                    phone_number: "+15550001000",
                    phone_number_id: "PNID",
                    waba_id: None,
                    display_name: "Bank",
                    throughput_per_s: 80,
                },
                1,
            )?;
            let contact = contacts::create(c, &org.id, "+447700900001", Some("Ada"), 1)?;
            // Ada agreed and wrote a moment ago: consent granted, window open.
            for kind in ["requested", "accepted"] {
                consent::append(
                    c,
                    &consent::NewConsentEvent {
                        org_id: &org.id,
                        contact_id: &contact.id,
                        kind,
                        actor_user_id: None,
                        message_id: None,
                        provider_message_id: None,
                        evidence: &json!({}),
                        at: 1,
                    },
                )?;
            }
            let now = openline_domain::clock::Clock::now(&openline_domain::clock::SystemClock);
            messages::insert_inbound(
                c,
                &messages::NewInbound {
                    org_id: &org.id,
                    sender_id: &sender.id,
                    channel: Channel::Whatsapp,
                    provider: ProviderKind::CloudApi,
                    from_phone: Some("+447700900001"),
                    wa_user_id: None,
                    profile_name: None,
                    provider_message_id: "wamid.IN",
                    kind: openline_domain::MessageKind::Text,
                    body: Some("hi"),
                    media: None,
                    reply_to: None,
                    raw: None,
                    sent_at: now,
                    now,
                },
            )?;
            Ok(contact.id)
        })
        .await
        .unwrap();
    Rig {
        url: handle.url.clone(),
        token,
        contact_id,
        handle,
        _db: db,
        _data: data,
    }
}

impl Rig {
    async fn send(&self, text: &str) -> Value {
        let res = reqwest::Client::new()
            .post(format!("{}/api/v1/messages", self.url))
            .bearer_auth(&self.token)
            .json(&json!({"contact_id": self.contact_id, "text": text}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 202);
        res.json().await.unwrap()
    }

    async fn wait(&self, id: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let m: Value = reqwest::Client::new()
                .get(format!("{}/api/v1/messages/{id}", self.url))
                .bearer_auth(&self.token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            if pred(&m) {
                return m;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "never reached the expected state: {m}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn transient_then_accepted(backend: Backend) {
    let graph = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v23.0/PNID/messages"))
        .respond_with(ResponseTemplate::new(500).set_body_json(json!({"error": {"message": "Service temporarily unavailable", "type": "OAuthException", "code": 2, "fbtrace_id": "x"}})))
        .up_to_n_times(2)
        .expect(2)
        .mount(&graph)
        .await;
    Mock::given(method("POST"))
        .and(path("/v23.0/PNID/messages"))
        .and(header("authorization", "Bearer test-token"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "messaging_product": "whatsapp",
            "contacts": [{"input": "447700900001", "wa_id": "447700900001"}],
            "messages": [{"id": "wamid.ACCEPTED"}]
        })))
        .expect(1)
        .mount(&graph)
        .await;
    let r = rig(backend, &graph).await;
    let sent = r.send("Retry me").await;
    let m = r
        .wait(sent["id"].as_str().unwrap(), |m| m["status"] == "accepted")
        .await;
    assert_eq!(m["provider_message_id"], "wamid.ACCEPTED");
    let requests = graph.received_requests().await.unwrap();
    assert_eq!(requests.len(), 3, "two failures, then one success");
    let body: Value = serde_json::from_slice(&requests[2].body).unwrap();
    assert_eq!(body["text"]["body"], "Retry me");
    assert_eq!(body["to"], "447700900001");
    r.handle.shutdown().await.unwrap();
}

async fn permanent_error(backend: Backend) {
    let graph = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v23.0/PNID/messages"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({"error": {
            "message": "(#131047) Re-engagement message", "type": "OAuthException", "code": 131047,
            "error_data": {"messaging_product": "whatsapp", "details": "Message failed to send because more than 24 hours have passed since the customer last replied to this number."},
            "fbtrace_id": "x"}})))
        .expect(1)
        .mount(&graph)
        .await;
    let r = rig(backend, &graph).await;
    let sent = r.send("Too late").await;
    let m = r.wait(sent["id"].as_str().unwrap(), |m| m["status"] == "failed").await;
    assert_eq!(m["error_code"], 131047);
    assert!(m["error_explanation"].as_str().unwrap().contains("template"), "{m}");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        graph.received_requests().await.unwrap().len(),
        1,
        "a permanent error is not retried"
    );
    r.handle.shutdown().await.unwrap();
}
