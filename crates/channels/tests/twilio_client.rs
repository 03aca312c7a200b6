//! The Twilio client against a mock Twilio REST API: the request it makes (path, basic auth, form
//! fields), the SID it reads back, how every kind of refusal becomes a retry decision, and that every
//! form parameter it sends is one Twilio's official OpenAPI spec declares for creating a message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use openline_channels::twilio::{TwilioClient, TwilioConfig, TwilioMessage};
use openline_channels::{ChannelError, SendError};
use openline_domain::provider_errors::Retry;
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

const ACCOUNT_SID: &str = "AC123";
const AUTH_TOKEN: &str = "twilio-auth-token";
const MESSAGES_PATH: &str = "/2010-04-01/Accounts/AC123/Messages.json";

fn client_for(base_url: String, timeout: Duration) -> TwilioClient {
    TwilioClient::new(TwilioConfig {
        base_url,
        account_sid: ACCOUNT_SID.into(),
        auth_token: AUTH_TOKEN.into(),
        timeout,
    })
    .unwrap()
}

fn client(server: &MockServer) -> TwilioClient {
    client_for(server.uri(), Duration::from_secs(5))
}

fn whatsapp_text(body: &str) -> TwilioMessage {
    TwilioMessage {
        from: "whatsapp:+15550001000".into(),
        messaging_service_sid: None,
        to: "whatsapp:+447700900004".into(),
        body: Some(body.into()),
        media_urls: vec![],
        content_sid: None,
        content_variables: None,
        status_callback: Some("https://openline.example/webhooks/twilio/status".into()),
    }
}

/// A message using every field the client can send.
fn everything() -> TwilioMessage {
    TwilioMessage {
        body: Some("Your statement is attached".into()),
        media_urls: vec![
            "https://files.example/statement.pdf".into(),
            "https://files.example/summary.png".into(),
        ],
        content_sid: Some("HXb5b62575e6e4ff6129ad7c8efe1f983e".into()),
        content_variables: Some(json!({"1": "Alice", "2": "12 May"})),
        ..whatsapp_text("")
    }
}

/// Twilio's answer to a create, shaped like the example in its spec.
fn created(sid: &str) -> ResponseTemplate {
    ResponseTemplate::new(201).set_body_json(json!({
        "account_sid": ACCOUNT_SID, "api_version": "2010-04-01", "body": "Hello",
        "direction": "outbound-api", "error_code": null, "error_message": null,
        "from": "whatsapp:+15550001000", "num_media": "0", "num_segments": "1",
        "sid": sid, "status": "queued", "to": "whatsapp:+447700900004",
        "uri": format!("/2010-04-01/Accounts/{ACCOUNT_SID}/Messages/{sid}.json")
    }))
}

fn twilio_error(http_status: u16, code: i64, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(http_status).set_body_json(json!({
        "code": code, "message": message,
        "more_info": format!("https://www.twilio.com/docs/errors/{code}"), "status": http_status
    }))
}

fn form_of(request: &Request) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(&request.body).unwrap()
}

fn values<'a>(form: &'a [(String, String)], name: &str) -> Vec<&'a str> {
    form.iter()
        .filter(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .collect()
}

async fn send_against(
    response: ResponseTemplate,
    message: &TwilioMessage,
) -> (Result<String, SendError>, Vec<Request>) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .respond_with(response)
        .mount(&server)
        .await;
    let result = client(&server).send(message).await.map(|a| a.provider_message_id);
    (result, server.received_requests().await.unwrap_or_default())
}

#[tokio::test]
async fn a_whatsapp_text_is_posted_as_a_form_with_basic_auth_and_its_sid_comes_back() {
    let server = MockServer::start().await;
    let credentials = base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT_SID}:{AUTH_TOKEN}"));
    Mock::given(method("POST"))
        .and(path(MESSAGES_PATH))
        .and(header("authorization", format!("Basic {credentials}").as_str()))
        .and(header("content-type", "application/x-www-form-urlencoded"))
        .respond_with(created("SM1f0e8ae6ade43cb3c0ce4525424e404f"))
        .expect(1)
        .mount(&server)
        .await;

    let accepted = client(&server)
        .send(&whatsapp_text("Hello & welcome, 50% off!"))
        .await
        .unwrap();

    assert_eq!(accepted.provider_message_id, "SM1f0e8ae6ade43cb3c0ce4525424e404f");
    let requests = server.received_requests().await.unwrap();
    let form = form_of(&requests[0]);
    assert_eq!(
        form,
        vec![
            ("To".to_owned(), "whatsapp:+447700900004".to_owned()),
            ("From".to_owned(), "whatsapp:+15550001000".to_owned()),
            ("Body".to_owned(), "Hello & welcome, 50% off!".to_owned()),
            (
                "StatusCallback".to_owned(),
                "https://openline.example/webhooks/twilio/status".to_owned()
            ),
        ]
    );
}

#[tokio::test]
async fn a_template_sends_its_content_sid_and_variables_as_a_json_string_and_media_urls_repeat() {
    let (result, requests) = send_against(created("MM123"), &everything()).await;

    assert_eq!(result.unwrap(), "MM123");
    let form = form_of(&requests[0]);
    assert_eq!(values(&form, "ContentSid"), ["HXb5b62575e6e4ff6129ad7c8efe1f983e"]);
    let variables: Value = serde_json::from_str(values(&form, "ContentVariables")[0]).unwrap();
    assert_eq!(variables, json!({"1": "Alice", "2": "12 May"}));
    assert_eq!(
        values(&form, "MediaUrl"),
        [
            "https://files.example/statement.pdf",
            "https://files.example/summary.png"
        ]
    );
}

#[tokio::test]
async fn an_sms_through_a_messaging_service_names_the_service_instead_of_a_number() {
    let message = TwilioMessage {
        from: "+15550002000".into(),
        messaging_service_sid: Some("MG9752274e9e519418a7406176694466fa".into()),
        to: "+447700900004".into(),
        status_callback: None,
        ..whatsapp_text("Your appointment is at 10:00")
    };
    let (result, requests) = send_against(created("SM2"), &message).await;

    assert_eq!(result.unwrap(), "SM2");
    let form = form_of(&requests[0]);
    assert_eq!(
        values(&form, "MessagingServiceSid"),
        ["MG9752274e9e519418a7406176694466fa"]
    );
    assert!(values(&form, "From").is_empty());
    assert!(values(&form, "StatusCallback").is_empty());
}

#[tokio::test]
async fn refusals_become_retry_decisions_with_twilios_code() {
    let cases = [
        (
            twilio_error(400, 21211, "Invalid 'To' Phone Number: +4477009"),
            Retry::Permanent,
            Some(21211),
        ),
        (
            twilio_error(400, 21610, "Attempt to send to unsubscribed recipient"),
            Retry::Permanent,
            Some(21610),
        ),
        (
            twilio_error(
                400,
                63016,
                "Failed to send freeform message because you are outside the allowed window.",
            ),
            Retry::Permanent,
            Some(63016),
        ),
        (twilio_error(401, 20003, "Authenticate"), Retry::Permanent, Some(20003)),
        (
            twilio_error(400, 63018, "Rate limit exceeded for Channel"),
            Retry::Transient,
            Some(63018),
        ),
        (
            twilio_error(500, 20500, "Internal Server Error"),
            Retry::Transient,
            Some(20500),
        ),
        (
            ResponseTemplate::new(503).set_body_string("<html>down</html>"),
            Retry::Transient,
            None,
        ),
        (
            ResponseTemplate::new(400).set_body_string("not json"),
            Retry::Permanent,
            None,
        ),
    ];
    for (response, retry, code) in cases {
        let (result, _) = send_against(response, &whatsapp_text("hi")).await;
        let error = result.unwrap_err();
        assert_eq!((error.retry, error.code), (retry, code), "{error:?}");
        assert!(error.http_status.is_some());
    }
}

#[tokio::test]
async fn the_window_error_keeps_twilios_explanation_for_the_agent() {
    let (result, _) = send_against(
        twilio_error(400, 63016, "Failed to send freeform message because you are outside the allowed window. If you want to send messages outside the session window, use a Template."),
        &whatsapp_text("hi"),
    )
    .await;
    let error = result.unwrap_err();
    assert!(
        error.message.contains("outside the allowed window"),
        "{}",
        error.message
    );
    assert!(!error.message.contains(AUTH_TOKEN));
}

#[tokio::test]
async fn too_many_requests_is_transient_and_honours_retry_after() {
    let (result, _) = send_against(
        twilio_error(429, 20429, "Too Many Requests").insert_header("Retry-After", "7"),
        &whatsapp_text("hi"),
    )
    .await;
    let error = result.unwrap_err();
    assert_eq!(error.retry, Retry::Transient);
    assert_eq!(error.http_status, Some(429));
    assert_eq!(error.retry_after, Some(Duration::from_secs(7)));
}

#[tokio::test]
async fn a_created_answer_without_a_sid_is_not_retried() {
    let (result, _) = send_against(
        ResponseTemplate::new(201).set_body_json(json!({})),
        &whatsapp_text("hi"),
    )
    .await;
    assert_eq!(result.unwrap_err().retry, Retry::Permanent);
}

#[tokio::test]
async fn a_slow_provider_times_out_as_a_transient_failure() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(created("SM1").set_delay(Duration::from_secs(3)))
        .mount(&server)
        .await;

    let error = client_for(server.uri(), Duration::from_millis(200))
        .send(&whatsapp_text("hi"))
        .await
        .unwrap_err();

    assert_eq!((error.retry, error.http_status), (Retry::Transient, None));
    assert!(error.message.contains("did not answer"), "{}", error.message);
}

#[tokio::test]
async fn an_unreachable_provider_is_a_transient_failure() {
    // Port 9 (discard) on localhost is closed in any test environment we run in.
    let error = client_for("http://127.0.0.1:9".into(), Duration::from_secs(2))
        .send(&whatsapp_text("hi"))
        .await
        .unwrap_err();
    assert_eq!((error.retry, error.http_status), (Retry::Transient, None));
}

#[tokio::test]
async fn a_message_with_nothing_to_send_fails_without_a_request() {
    let (result, requests) = send_against(
        created("SM1"),
        &TwilioMessage {
            body: None,
            ..whatsapp_text("")
        },
    )
    .await;
    assert_eq!(result.unwrap_err().retry, Retry::Permanent);
    assert!(requests.is_empty());
}

#[test]
fn a_base_url_that_is_not_http_is_refused() {
    let error = TwilioClient::new(TwilioConfig {
        base_url: "api.twilio.com".into(),
        account_sid: ACCOUNT_SID.into(),
        auth_token: AUTH_TOKEN.into(),
        timeout: Duration::from_secs(1),
    })
    .unwrap_err();
    assert!(matches!(error, ChannelError::InvalidConfig(_)));
}

/// The form parameters Twilio's official OpenAPI spec declares for `POST
/// /2010-04-01/Accounts/{AccountSid}/Messages.json`.
fn declared_create_parameters() -> BTreeSet<String> {
    let spec_path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/twilio/twilio_api_v2010.json");
    let spec: Value = serde_json::from_slice(
        &std::fs::read(&spec_path).expect("shared/fixtures/twilio must sit beside the checkout"),
    )
    .unwrap();
    let operation = &spec["paths"]["/2010-04-01/Accounts/{AccountSid}/Messages.json"]["post"];
    assert_eq!(operation["operationId"], "CreateMessage");
    let schema = &operation["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"];
    let properties = schema["properties"]
        .as_object()
        .expect("the create operation declares its form properties");
    // `To` is the one parameter the spec requires; we always send it.
    assert_eq!(schema["required"], json!(["To"]));
    properties.keys().cloned().collect()
}

#[tokio::test]
async fn every_form_parameter_we_send_is_declared_by_twilios_spec_with_the_same_casing() {
    let declared = declared_create_parameters();
    let through_service = TwilioMessage {
        messaging_service_sid: Some("MG1".into()),
        ..everything()
    };
    for message in [everything(), through_service, whatsapp_text("hi")] {
        let (_, requests) = send_against(created("SM1"), &message).await;
        let sent: BTreeSet<String> = form_of(&requests[0]).into_iter().map(|(n, _)| n).collect();
        assert!(sent.contains("To"));
        let undeclared: Vec<&String> = sent.difference(&declared).collect();
        assert!(undeclared.is_empty(), "not in Twilio's spec: {undeclared:?}");
    }
    // The spec's array parameter is `MediaUrl`, taken as repeated fields, which is how we send it.
    assert!(declared.contains("MediaUrl") && declared.contains("ContentVariables"));
}
