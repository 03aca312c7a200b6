//! Twilio's Content API approval lookup against a mock: the path, basic auth, and WhatsApp's review
//! read from the answer; a missing template is Twilio's 404.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use openline_channels::twilio::{ContentApproval, TwilioClient, TwilioConfig};
use serde_json::json;
use std::time::Duration;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const SID: &str = "HXb5b62575e6e4ff6129ad7c8efe1f983e";

#[tokio::test]
async fn the_approval_is_fetched_with_basic_auth_and_read() {
    let server = MockServer::start().await;
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("AC123:token")
    );
    Mock::given(method("GET"))
        .and(path(format!("/content/v1/Content/{SID}/ApprovalRequests")))
        .and(header("authorization", basic.as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "sid": SID, "account_sid": "AC123",
            "whatsapp": {"type": "whatsapp", "name": "reminder", "status": "rejected", "rejection_reason": "Bad variables"}
        })))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path(
            "/content/v1/Content/HX00000000000000000000000000000000/ApprovalRequests",
        ))
        .respond_with(
            ResponseTemplate::new(404).set_body_json(json!({"code": 20404, "message": "Not found", "status": 404})),
        )
        .mount(&server)
        .await;
    let client = TwilioClient::new(TwilioConfig {
        base_url: server.uri(),
        account_sid: "AC123".into(),
        auth_token: "token".into(),
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    assert_eq!(
        client.content_approval(SID).await.unwrap(),
        ContentApproval::Refused {
            status: "rejected".into(),
            reason: Some("Bad variables".into())
        }
    );
    let missing = client
        .content_approval("HX00000000000000000000000000000000")
        .await
        .unwrap_err();
    assert_eq!(missing.http_status, Some(404));
    // Not a Content SID: refused without a request.
    assert!(client.content_approval("HX1/../../x").await.is_err());
    // Twilio's own REST API base means Twilio's Content API host.
    let real = TwilioClient::new(TwilioConfig {
        base_url: "https://api.twilio.com".into(),
        account_sid: "AC123".into(),
        auth_token: "token".into(),
        timeout: Duration::from_secs(5),
    })
    .unwrap();
    assert_eq!(real.content_base().unwrap().as_str(), "https://content.twilio.com/");
}
