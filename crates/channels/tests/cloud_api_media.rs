//! The Cloud API media calls against a mock Graph API: resolving a media id, downloading under the
//! download policy (bearer token, provider hosts only, same-host redirects only, size cap), and the
//! multipart upload.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openline_channels::cloud_api::{CloudApiClient, CloudApiConfig, DownloadPolicy};
use serde_json::json;
use std::time::Duration;
use wiremock::matchers::{body_string_contains, header, header_regex, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const TOKEN: &str = "EAAG-secret-token";

fn client(server: &MockServer) -> CloudApiClient {
    CloudApiClient::new(CloudApiConfig {
        base_url: server.uri(),
        api_version: "v23.0".into(),
        access_token: TOKEN.into(),
        timeout: Duration::from_secs(5),
    })
    .unwrap()
}

fn policy(max_bytes: u64) -> DownloadPolicy {
    DownloadPolicy {
        max_bytes,
        allowed_hosts: DownloadPolicy::meta_hosts(),
    }
}

#[tokio::test]
async fn a_media_id_resolves_to_its_url_type_hash_and_size() {
    let server = MockServer::start().await;
    let sha = "ab".repeat(32);
    Mock::given(method("GET"))
        .and(path("/v23.0/1234567890"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "messaging_product": "whatsapp",
            "url": format!("{}/media/1234567890", server.uri()),
            "mime_type": "image/jpeg",
            "sha256": sha,
            "file_size": "303833",
            "id": "1234567890"
        })))
        .mount(&server)
        .await;
    let info = client(&server).media_info("1234567890").await.unwrap();
    assert_eq!(info.url, format!("{}/media/1234567890", server.uri()));
    assert_eq!(info.mime_type.as_deref(), Some("image/jpeg"));
    assert_eq!(info.sha256.as_deref(), Some(sha.as_str()));
    assert_eq!(info.file_size, Some(303_833));
}

#[tokio::test]
async fn an_unknown_media_id_is_a_refusal_with_metas_code() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/v23.0/nope"))
        .respond_with(ResponseTemplate::new(400).set_body_json(json!({
            "error": {"message": "Unsupported get request.", "type": "GraphMethodException", "code": 100, "error_subcode": 33}
        })))
        .mount(&server)
        .await;
    let err = client(&server).media_info("nope").await.unwrap_err();
    assert_eq!(err.code, Some(100));
    assert_eq!(err.http_status, Some(400));
}

#[tokio::test]
async fn a_download_carries_the_bearer_token_and_returns_the_bytes() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/media/1"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .respond_with(
            ResponseTemplate::new(200)
                .insert_header("content-type", "image/png")
                .set_body_bytes(b"PNGDATA".to_vec()),
        )
        .mount(&server)
        .await;
    let got = client(&server)
        .download_media(&format!("{}/media/1", server.uri()), &policy(1024))
        .await
        .unwrap();
    assert_eq!(got.bytes, b"PNGDATA");
    assert_eq!(got.content_type.as_deref(), Some("image/png"));
}

#[tokio::test]
async fn urls_off_the_providers_hosts_are_never_fetched() {
    let server = MockServer::start().await;
    let c = client(&server);
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://10.0.0.7/media/1",
        "https://evil.example/media/1",
        "file:///etc/passwd",
        "ftp://lookaside.fbsbx.com/x",
        "http://lookaside.fbsbx.com/x",
    ] {
        let err = c.download_media(url, &policy(1024)).await.unwrap_err();
        assert!(!err.is_transient(), "{url}: {err}");
    }
    // The Graph API's own host on another port is another service.
    let other_port = format!("http://127.0.0.1:{}/media/1", server.address().port().wrapping_add(1));
    let err = c.download_media(&other_port, &policy(1024)).await.unwrap_err();
    assert!(err.message.contains("not a media host"), "{err}");
    assert!(server.received_requests().await.unwrap().is_empty());
}

#[tokio::test]
async fn a_redirect_to_another_host_is_refused_and_one_on_the_same_host_followed() {
    let server = MockServer::start().await;
    let port = server.address().port();
    Mock::given(method("GET"))
        .and(path("/media/away"))
        .respond_with(
            ResponseTemplate::new(302).insert_header("location", format!("http://localhost:{port}/media/2").as_str()),
        )
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/media/here"))
        .respond_with(ResponseTemplate::new(302).insert_header("location", "/media/2"))
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/media/2"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(b"ok".to_vec()))
        .mount(&server)
        .await;
    let c = client(&server);
    let err = c
        .download_media(&format!("{}/media/away", server.uri()), &policy(1024))
        .await
        .unwrap_err();
    assert!(err.message.contains("same host"), "{err}");
    let got = c
        .download_media(&format!("{}/media/here", server.uri()), &policy(1024))
        .await
        .unwrap();
    assert_eq!(got.bytes, b"ok");
}

#[tokio::test]
async fn a_file_over_the_cap_is_refused() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/media/big"))
        .respond_with(ResponseTemplate::new(200).set_body_bytes(vec![7u8; 4096]))
        .mount(&server)
        .await;
    let err = client(&server)
        .download_media(&format!("{}/media/big", server.uri()), &policy(1024))
        .await
        .unwrap_err();
    assert!(!err.is_transient());
    assert!(err.message.contains("larger"), "{err}");
}

#[tokio::test]
async fn an_upload_is_multipart_with_product_type_and_file_and_answers_the_id() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v23.0/PNID/media"))
        .and(header("authorization", format!("Bearer {TOKEN}").as_str()))
        .and(header_regex(
            "content-type",
            "^multipart/form-data; boundary=openline-[0-9a-f]{32}$",
        ))
        .and(body_string_contains("name=\"messaging_product\"\r\n\r\nwhatsapp\r\n"))
        .and(body_string_contains("name=\"type\"\r\n\r\nimage/png\r\n"))
        .and(body_string_contains(
            "name=\"file\"; filename=\"photo.png\"\r\nContent-Type: image/png\r\n\r\nPNGDATA\r\n",
        ))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"id": "987654321"})))
        .expect(1)
        .mount(&server)
        .await;
    let id = client(&server)
        .upload_media("PNID", b"PNGDATA", "image/png", Some("photo.png"))
        .await
        .unwrap();
    assert_eq!(id, "987654321");
}

#[tokio::test]
async fn an_upload_refused_with_a_5xx_is_transient() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v23.0/PNID/media"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&server)
        .await;
    let err = client(&server)
        .upload_media("PNID", b"x", "image/png", None)
        .await
        .unwrap_err();
    assert!(err.is_transient());
}

/// Meta's spec (`business-messaging-api_v23.0.yaml`) describes the upload as `multipart/form-data`
/// with `file` (binary) and `messaging_product`; our body carries each of its fields (and `type`,
/// which the real API requires although the spec does not list it).
#[test]
fn the_upload_body_has_every_field_of_metas_spec() {
    let yaml = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/fixtures/meta/business-messaging-api_v23.0.yaml"),
    )
    .expect("shared/fixtures/meta must sit beside the checkout");
    let spec: serde_json::Value = serde_yaml::from_str(&yaml).unwrap();
    let schema = &spec["paths"]["/{Version}/{Phone-Number-ID}/media"]["post"]["requestBody"]["content"]
        ["multipart/form-data"]["schema"];
    let fields: Vec<&str> = schema["properties"]
        .as_object()
        .expect("the spec describes the multipart upload")
        .keys()
        .map(String::as_str)
        .collect();
    assert!(
        fields.contains(&"file") && fields.contains(&"messaging_product"),
        "{fields:?}"
    );
    let (content_type, body) =
        openline_channels::cloud_api::media::multipart_body(b"\x89PNG\r\n\x1a\n", "image/png", Some("p.png"));
    assert!(content_type.starts_with("multipart/form-data; boundary="));
    let text = String::from_utf8_lossy(&body);
    for field in fields.iter().chain(&["type"]) {
        assert!(
            text.contains(&format!("Content-Disposition: form-data; name=\"{field}\"")),
            "missing {field}: {text}"
        );
    }
    assert_eq!(
        schema["properties"]["file"]["format"], "binary",
        "the file goes as bytes, not as a path or base64"
    );
}
