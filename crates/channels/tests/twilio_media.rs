//! Downloading a contact's media through Twilio against a mock REST API: basic auth on the media URL,
//! Twilio's redirect followed, hosts other than Twilio's never fetched, the size cap, and retry
//! decisions for Twilio's refusals.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use base64::Engine as _;
use openline_channels::twilio::{TwilioClient, TwilioConfig};
use openline_domain::provider_errors::Retry;
use std::time::Duration;
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const MEDIA_PATH: &str = "/2010-04-01/Accounts/AC123/Messages/MM1/Media/ME1";

fn client(server: &MockServer) -> TwilioClient {
    TwilioClient::new(TwilioConfig {
        base_url: server.uri(),
        account_sid: "AC123".into(),
        auth_token: "twilio-auth-token".into(),
        timeout: Duration::from_secs(5),
    })
    .unwrap()
}

fn basic() -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("AC123:twilio-auth-token")
    )
}

#[tokio::test]
async fn the_media_url_is_fetched_with_basic_auth_and_twilios_redirect_is_followed() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path(MEDIA_PATH))
        .and(header("authorization", basic().as_str()))
        .respond_with(ResponseTemplate::new(307).insert_header("location", "/cdn/ME1?Expires=1&Signature=x"))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/cdn/ME1"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(b"\x89PNG-bytes".to_vec(), "image/png"))
        .expect(1)
        .mount(&server)
        .await;
    let got = client(&server)
        .download_media(&format!("{}{MEDIA_PATH}", server.uri()), 1024)
        .await
        .unwrap();
    assert_eq!(got.bytes, b"\x89PNG-bytes");
    assert_eq!(got.content_type.as_deref(), Some("image/png"));
}

#[tokio::test]
async fn urls_and_redirects_off_twilios_hosts_are_never_fetched() {
    let server = MockServer::start().await;
    let elsewhere = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(b"x".to_vec()))
        .expect(0)
        .mount(&elsewhere)
        .await;
    let c = client(&server);
    // A media URL on another host, or of another account: refused before any request.
    for url in [
        format!("{}{MEDIA_PATH}", elsewhere.uri()),
        format!("{}/2010-04-01/Accounts/AC999/Messages/MM1/Media/ME1", server.uri()),
        "https://evil.example/picture.jpg".to_owned(),
        "not a url".to_owned(),
    ] {
        let e = c.download_media(&url, 1024).await.unwrap_err();
        assert_eq!(e.retry, Retry::Permanent, "{url}: {e:?}");
    }
    // Twilio's answer redirecting anywhere but its media CDN: refused, not followed.
    Mock::given(method("GET"))
        .and(path(MEDIA_PATH))
        .respond_with(ResponseTemplate::new(302).insert_header("location", format!("{}/steal", elsewhere.uri())))
        .mount(&server)
        .await;
    let e = c
        .download_media(&format!("{}{MEDIA_PATH}", server.uri()), 1024)
        .await
        .unwrap_err();
    assert_eq!(e.retry, Retry::Permanent);
    assert!(e.message.contains("not one of Twilio's media hosts"), "{}", e.message);
}

#[tokio::test]
async fn files_over_the_cap_are_refused_and_twilios_errors_become_retry_decisions() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/2010-04-01/Accounts/AC123/Messages/MM1/Media/BIG"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(vec![0u8; 2048], "image/jpeg"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/2010-04-01/Accounts/AC123/Messages/MM1/Media/DOWN"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/2010-04-01/Accounts/AC123/Messages/MM1/Media/GONE"))
        .respond_with(ResponseTemplate::new(404).set_body_json(serde_json::json!({
            "code": 20404, "message": "The requested resource was not found", "status": 404})))
        .mount(&server)
        .await;
    let c = client(&server);
    let url = |sid: &str| format!("{}/2010-04-01/Accounts/AC123/Messages/MM1/Media/{sid}", server.uri());
    let big = c.download_media(&url("BIG"), 1024).await.unwrap_err();
    assert_eq!(big.retry, Retry::Permanent);
    assert!(big.message.contains("larger"), "{}", big.message);
    let down = c.download_media(&url("DOWN"), 1024).await.unwrap_err();
    assert_eq!(down.retry, Retry::Transient);
    let gone = c.download_media(&url("GONE"), 1024).await.unwrap_err();
    assert_eq!(gone.http_status, Some(404));
    assert_eq!(gone.code, Some(20404));
}
