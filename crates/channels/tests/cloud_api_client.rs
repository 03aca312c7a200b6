//! The Cloud API client against a mock Graph API: the requests it makes, the ids it reads back, and
//! how every kind of refusal turns into a retry decision the dispatcher can act on.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openline_channels::cloud_api::{CloudApiClient, CloudApiConfig, OutboundMessage};
use openline_channels::SendError;
use openline_domain::provider_errors::Retry;
use serde_json::{json, Value};
use std::time::Duration;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "EAAG-secret-token";
const PHONE_NUMBER_ID: &str = "106540352242922";
const MESSAGES_PATH: &str = "/v23.0/106540352242922/messages";

fn client_for(base_url: String, timeout: Duration) -> CloudApiClient {
    CloudApiClient::new(CloudApiConfig {
        base_url,
        api_version: "v23.0".into(),
        access_token: TOKEN.into(),
        timeout,
    })
    .unwrap()
}

fn client(server: &MockServer) -> CloudApiClient {
    client_for(server.uri(), Duration::from_secs(5))
}

fn text(body: &str) -> OutboundMessage {
    OutboundMessage::Text {
        to: "+16505551234".into(),
        body: body.into(),
        preview_url: false,
        reply_to: None,
    }
}

fn accepted_body() -> Value {
    json!({
        "messaging_product": "whatsapp",
        "contacts": [{ "input": "+16505551234", "wa_id": "16505551234" }],
        "messages": [{ "id": "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA" }]
    })
}

fn meta_error(http_status: u16, code: i64, message: &str, details: &str) -> ResponseTemplate {
    ResponseTemplate::new(http_status).set_body_json(json!({
        "error": {
            "message": message,
            "type": "OAuthException",
            "code": code,
            "error_data": { "messaging_product": "whatsapp", "details": details },
            "error_subcode": 2494010,
            "fbtrace_id": "AbCdEfGh123"
        }
    }))
}

/// Sends one text through a server answering with `response` and returns the error.
async fn send_error(response: ResponseTemplate) -> SendError {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .respond_with(response)
        .mount(&server)
        .await;
    client(&server).send(PHONE_NUMBER_ID, &text("Hello")).await.unwrap_err()
}

#[tokio::test]
async fn a_text_is_posted_to_the_numbers_messages_endpoint_with_the_bearer_token() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header("content-type", "application/json"))
        .and(body_json(json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "+16505551234",
            "type": "text",
            "text": { "body": "Your card is ready", "preview_url": true },
            "context": { "message_id": "wamid.earlier" }
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(accepted_body()))
        .expect(1)
        .mount(&server)
        .await;

    let message = OutboundMessage::Text {
        to: "+16505551234".into(),
        body: "Your card is ready".into(),
        preview_url: true,
        reply_to: Some("wamid.earlier".into()),
    };
    let accepted = client(&server).send(PHONE_NUMBER_ID, &message).await.unwrap();

    assert_eq!(
        accepted.provider_message_id,
        "wamid.HBgLMTY1MDUwNzY1MjAVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA"
    );
    assert_eq!(accepted.wa_id.as_deref(), Some("16505551234"));
}

#[tokio::test]
async fn a_template_sends_its_body_parameters_and_quick_reply_payloads() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .and(body_json(json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "16505551234",
            "type": "template",
            "template": {
                "name": "appointment_reminder",
                "language": { "policy": "deterministic", "code": "en_US" },
                "components": [
                    { "type": "body", "parameters": [
                        { "type": "text", "text": "Ms Nelson" },
                        { "type": "text", "text": "3 pm" }
                    ] },
                    { "type": "button", "sub_type": "quick_reply", "index": "0",
                      "parameters": [{ "type": "payload", "payload": "CONFIRM" }] },
                    { "type": "button", "sub_type": "quick_reply", "index": "1",
                      "parameters": [{ "type": "payload", "payload": "STOP" }] }
                ]
            }
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(accepted_body()))
        .expect(1)
        .mount(&server)
        .await;

    let message = OutboundMessage::Template {
        to: "16505551234".into(),
        name: "appointment_reminder".into(),
        language: "en_US".into(),
        body_parameters: vec!["Ms Nelson".into(), "3 pm".into()],
        quick_reply_payloads: vec!["CONFIRM".into(), "STOP".into()],
        header_image_link: None,
        url_button_parameters: vec![],
    };
    client(&server).send(PHONE_NUMBER_ID, &message).await.unwrap();
}

#[tokio::test]
async fn a_base_url_with_a_path_such_as_the_simulators_keeps_it() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/sim/graph{MESSAGES_PATH}")))
        .respond_with(ResponseTemplate::new(200).set_body_json(accepted_body()))
        .expect(1)
        .mount(&server)
        .await;

    let client = client_for(format!("{}/sim/graph/", server.uri()), Duration::from_secs(5));
    client.send(PHONE_NUMBER_ID, &text("Hello")).await.unwrap();
}

#[tokio::test]
async fn mark_read_posts_a_read_status_for_the_message() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(body_json(
            json!({ "messaging_product": "whatsapp", "status": "read", "message_id": "wamid.in" }),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({ "success": true })))
        .expect(1)
        .mount(&server)
        .await;

    client(&server).mark_read(PHONE_NUMBER_ID, "wamid.in").await.unwrap();
}

#[tokio::test]
async fn outside_the_window_131047_is_permanent_and_carries_metas_explanation() {
    let e = send_error(meta_error(
        400,
        131047,
        "(#131047) Re-engagement message",
        "Message failed to send because more than 24 hours have passed since the customer last replied to this number.",
    ))
    .await;
    assert_eq!(
        (e.retry, e.code, e.http_status),
        (Retry::Permanent, Some(131047), Some(400))
    );
    assert!(
        e.message
            .starts_with("(#131047) Re-engagement message: Message failed to send"),
        "{}",
        e.message
    );
    assert!(
        !e.message.contains("Hello"),
        "the message text must not leak into errors"
    );
}

#[tokio::test]
async fn throughput_error_130429_is_transient() {
    let e = send_error(meta_error(
        400,
        130429,
        "(#130429) Rate limit hit",
        "Cloud API message throughput has been reached.",
    ))
    .await;
    assert_eq!((e.retry, e.code), (Retry::Transient, Some(130429)));
}

#[tokio::test]
async fn an_expired_token_190_is_permanent() {
    let e = send_error(meta_error(
        401,
        190,
        "Error validating access token: Session has expired",
        "",
    ))
    .await;
    assert_eq!(
        (e.retry, e.code, e.http_status),
        (Retry::Permanent, Some(190), Some(401))
    );
    assert!(!e.message.contains(TOKEN));
}

#[tokio::test]
async fn a_server_error_is_transient() {
    let e = send_error(ResponseTemplate::new(500).set_body_string("upstream exploded")).await;
    assert_eq!((e.retry, e.code, e.http_status), (Retry::Transient, None, Some(500)));
}

#[tokio::test]
async fn http_429_is_transient_and_honours_retry_after() {
    let e = send_error(meta_error(429, 80007, "(#80007) Rate limit", "").insert_header("Retry-After", "7")).await;
    assert_eq!((e.retry, e.http_status), (Retry::Transient, Some(429)));
    assert_eq!(e.retry_after, Some(Duration::from_secs(7)));
}

#[tokio::test]
async fn a_non_json_400_is_permanent() {
    let e = send_error(ResponseTemplate::new(400).set_body_string("<html>Bad Request</html>")).await;
    assert_eq!((e.retry, e.code, e.http_status), (Retry::Permanent, None, Some(400)));
}

#[tokio::test]
async fn a_provider_that_does_not_answer_in_time_is_transient() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(accepted_body())
                .set_delay(Duration::from_secs(3)),
        )
        .mount(&server)
        .await;

    let client = client_for(server.uri(), Duration::from_millis(200));
    let e = client.send(PHONE_NUMBER_ID, &text("Hello")).await.unwrap_err();

    assert_eq!((e.retry, e.http_status), (Retry::Transient, None));
    assert!(e.message.contains("did not answer"), "{}", e.message);
}

#[tokio::test]
async fn a_provider_that_cannot_be_reached_is_transient() {
    // Bind a port, then free it: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let client = client_for(format!("http://127.0.0.1:{port}"), Duration::from_secs(2));

    let e = client.send(PHONE_NUMBER_ID, &text("Hello")).await.unwrap_err();

    assert_eq!((e.retry, e.http_status), (Retry::Transient, None));
    assert!(e.message.starts_with("Could not reach the provider"), "{}", e.message);
    if std::env::var_os("TEST_LOG").is_some() {
        eprintln!("{}", e.message);
    }
    assert!(
        !e.message.contains(TOKEN) && !e.message.contains("Hello"),
        "{}",
        e.message
    );
}

#[tokio::test]
async fn a_2xx_without_a_message_id_is_not_retried_to_avoid_a_double_send() {
    let e = send_error(ResponseTemplate::new(200).set_body_json(json!({ "messaging_product": "whatsapp" }))).await;
    assert_eq!((e.retry, e.http_status), (Retry::Permanent, Some(200)));
}

#[test]
fn the_access_token_never_appears_in_debug_output() {
    let config = CloudApiConfig {
        base_url: "https://graph.facebook.com".into(),
        api_version: "v23.0".into(),
        access_token: TOKEN.into(),
        timeout: Duration::from_secs(10),
    };
    assert!(!format!("{config:?}").contains(TOKEN));
    let client = CloudApiClient::new(config).unwrap();
    assert!(!format!("{client:?}").contains(TOKEN));
}

#[test]
fn an_unusable_base_url_or_version_is_refused_at_construction() {
    for (base_url, version) in [
        ("graph.facebook.com", "v23.0"),
        ("ftp://x", "v23.0"),
        ("https://graph.facebook.com", ""),
    ] {
        let config = CloudApiConfig {
            base_url: base_url.into(),
            api_version: version.into(),
            access_token: TOKEN.into(),
            timeout: Duration::from_secs(1),
        };
        assert!(CloudApiClient::new(config).is_err(), "{base_url} {version}");
    }
}

#[tokio::test]
async fn reply_buttons_are_posted_as_metas_interactive_object_and_a_131009_refusal_is_permanent() {
    use openline_channels::cloud_api::outbound::{Interactive, ReplyButton};
    let message = OutboundMessage::Interactive {
        to: "16505551234".into(),
        interactive: Interactive::Buttons {
            header: None,
            body: "Did you pay 120 EUR?".into(),
            footer: Some("Bank".into()),
            buttons: vec![
                ReplyButton {
                    id: "yes".into(),
                    title: "Yes".into(),
                },
                ReplyButton {
                    id: "no".into(),
                    title: "Not me".into(),
                },
            ],
        },
        reply_to: None,
    };
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .and(body_json(json!({
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            "to": "16505551234",
            "type": "interactive",
            "interactive": {
                "type": "button",
                "body": { "text": "Did you pay 120 EUR?" },
                "footer": { "text": "Bank" },
                "action": { "buttons": [
                    { "type": "reply", "reply": { "id": "yes", "title": "Yes" } },
                    { "type": "reply", "reply": { "id": "no", "title": "Not me" } }
                ] }
            }
        })))
        .respond_with(ResponseTemplate::new(200).set_body_json(accepted_body()))
        .expect(1)
        .mount(&server)
        .await;
    let accepted = client(&server).send(PHONE_NUMBER_ID, &message).await.unwrap();
    assert!(accepted.provider_message_id.starts_with("wamid."));

    let refusing = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .respond_with(meta_error(
            400,
            131009,
            "(#131009) Parameter value is not valid",
            "Button title length invalid. Min length: 1, Max length: 20",
        ))
        .mount(&refusing)
        .await;
    let e = client(&refusing).send(PHONE_NUMBER_ID, &message).await.unwrap_err();
    assert_eq!(
        (e.retry, e.code, e.http_status),
        (Retry::Permanent, Some(131009), Some(400))
    );
}
