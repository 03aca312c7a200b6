//! Media through the Cloud API: resolving an inbound media id to its download URL
//! (`GET /{version}/{media_id}`), downloading the bytes with the bearer token, and uploading a file
//! to send (`POST /{version}/{phone_number_id}/media`, multipart).
//!
//! Downloads are where a provider's answer makes openline fetch a URL, so they are guarded: only
//! http(s), only hosts the [`DownloadPolicy`] allows (the Graph API's own host, e.g. the simulator,
//! and Meta's media CDN hosts), a redirect only to the same host, and a size cap enforced on the
//! `Content-Length` and again while the body streams in. Nothing here logs a token, a URL's query or
//! the bytes.

use super::json::{non_empty_text, scalar_text};
use super::response::classify_failure;
use super::CloudApiClient;
use crate::SendError;
use openline_domain::provider_errors::Retry;
use serde_json::Value;
use sha2::{Digest, Sha256};
use url::Url;

/// What `GET /{media_id}` says about a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaInfo {
    /// Where the bytes are (needs the bearer token; expires after minutes).
    pub url: String,
    pub mime_type: Option<String>,
    /// The SHA-256 Meta computed, lower-case hex, when it gave a readable one.
    pub sha256: Option<String>,
    /// The size in bytes Meta reports.
    pub file_size: Option<u64>,
}

/// A downloaded file.
#[derive(Clone, PartialEq, Eq)]
pub struct DownloadedMedia {
    pub bytes: Vec<u8>,
    /// The response's `Content-Type`, when it sent one.
    pub content_type: Option<String>,
}

impl std::fmt::Debug for DownloadedMedia {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DownloadedMedia")
            .field("bytes", &self.bytes.len())
            .field("content_type", &self.content_type)
            .finish()
    }
}

/// Which URLs a download may fetch, and how much.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadPolicy {
    /// The largest file accepted, in bytes.
    pub max_bytes: u64,
    /// Hosts allowed besides the Graph API's own: an exact host name, or `.example.com` for any
    /// subdomain of `example.com`.
    pub allowed_hosts: Vec<String>,
}

impl DownloadPolicy {
    /// Meta's media hosts (the download URLs Meta hands out live on these).
    pub fn meta_hosts() -> Vec<String> {
        ["lookaside.fbsbx.com", ".fbsbx.com", ".fbcdn.net", ".whatsapp.net"]
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    fn host_allowed(&self, host: &str) -> bool {
        let host = host.to_ascii_lowercase();
        self.allowed_hosts.iter().any(|pattern| {
            let pattern = pattern.trim().to_ascii_lowercase();
            match pattern.strip_prefix('.') {
                Some(suffix) => host.ends_with(&format!(".{suffix}")) || host == suffix,
                None => host == pattern,
            }
        })
    }
}

/// How many same-host redirects a download follows.
const MAX_REDIRECTS: usize = 3;

fn refused(message: impl Into<String>) -> SendError {
    SendError {
        retry: Retry::Permanent,
        code: None,
        http_status: None,
        message: message.into(),
        retry_after: None,
    }
}

/// Reads a SHA-256 as Meta writes it, hex (the media URL's answer) or base64 (webhooks), into
/// lower-case hex; `None` when it is neither (e.g. a truncated value in an example payload).
pub fn normalize_sha256(value: &str) -> Option<String> {
    use base64::Engine;
    let v = value.trim();
    if v.len() == 64 && v.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Some(v.to_ascii_lowercase());
    }
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(v)
        .or_else(|_| base64::engine::general_purpose::URL_SAFE.decode(v))
        .ok()?;
    (bytes.len() == 32).then(|| hex::encode(bytes))
}

impl CloudApiClient {
    /// Whether `url` is one openline may fetch under `policy`: on the Graph API's own origin (scheme,
    /// host and port: the simulator's in demo mode), or over https on a host the policy allows.
    pub fn download_allowed(&self, url: &Url, policy: &DownloadPolicy) -> bool {
        let base = &self.inner.base;
        let Some(host) = url.host_str() else { return false };
        let same_origin = url.scheme() == base.scheme()
            && base.host_str().is_some_and(|h| h.eq_ignore_ascii_case(host))
            && url.port_or_known_default() == base.port_or_known_default();
        same_origin || (url.scheme() == "https" && policy.host_allowed(host))
    }

    /// `GET /{version}/{media_id}`: the file's download URL, type, SHA-256 and size.
    pub async fn media_info(&self, media_id: &str) -> Result<MediaInfo, SendError> {
        if media_id.trim().is_empty() {
            return Err(refused("The message has no media id to fetch."));
        }
        let mut url = self.inner.base.clone();
        url.path_segments_mut()
            .map_err(|_| refused("The sender is misconfigured: the base URL cannot take a path."))?
            .pop_if_empty()
            .push(self.inner.config.api_version.trim())
            .push(media_id.trim());
        let response = self
            .http
            .get(url)
            .bearer_auth(&self.inner.config.access_token)
            .send()
            .await
            .map_err(|e| self.transport_error(e, media_id, "media_info"))?;
        let status = response.status().as_u16();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(e, media_id, "media_info"))?;
        if !(200..300).contains(&status) {
            let error = classify_failure(status, None, &bytes);
            tracing::warn!(
                media_id,
                http_status = status,
                code = error.code,
                "cloud api refused a media lookup"
            );
            return Err(error);
        }
        let v: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let Some(url) = non_empty_text(&v, "url") else {
            return Err(SendError {
                retry: Retry::Transient,
                code: None,
                http_status: Some(status),
                message: "The provider's answer about the media has no download URL.".into(),
                retry_after: None,
            });
        };
        Ok(MediaInfo {
            url,
            mime_type: non_empty_text(&v, "mime_type"),
            sha256: non_empty_text(&v, "sha256").and_then(|s| normalize_sha256(&s)),
            file_size: v.get("file_size").and_then(scalar_text).and_then(|s| s.parse().ok()),
        })
    }

    /// Downloads a media URL with the bearer token, under `policy`: a URL or redirect it does not
    /// allow, or a file larger than `max_bytes`, is refused (permanently: retrying cannot help).
    pub async fn download_media(&self, url: &str, policy: &DownloadPolicy) -> Result<DownloadedMedia, SendError> {
        let mut current = Url::parse(url.trim()).map_err(|_| refused("The provider's media URL is not a URL."))?;
        if !self.download_allowed(&current, policy) {
            return Err(refused(format!(
                "The provider's media URL points at {}, which is not a media host openline fetches from.",
                current.host_str().unwrap_or("no host")
            )));
        }
        let mut redirects = 0;
        let response = loop {
            let response = self
                .http
                .get(current.clone())
                .bearer_auth(&self.inner.config.access_token)
                .send()
                .await
                .map_err(|e| self.transport_error(e, "media", "media_download"))?;
            if !response.status().is_redirection() {
                break response;
            }
            redirects += 1;
            let next = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|loc| current.join(loc).ok())
                .ok_or_else(|| refused("The media host redirected without a usable Location."))?;
            if redirects > MAX_REDIRECTS || next.host_str() != current.host_str() || next.scheme() != current.scheme() {
                return Err(refused(format!(
                    "The media host redirected to {}; openline follows redirects only on the same host.",
                    next.host_str().unwrap_or("no host")
                )));
            }
            current = next;
        };
        let status = response.status().as_u16();
        if !(200..300).contains(&status) {
            let retry_after = crate::http::retry_after(&response);
            let body = response.bytes().await.unwrap_or_default();
            let mut error = classify_failure(status, retry_after, &body);
            if (400..500).contains(&status) && error.code.is_none() {
                error.message = format!("The media host answered HTTP {status}.");
            }
            tracing::warn!(http_status = status, "media download refused");
            return Err(error);
        }
        crate::http::read_capped_download(
            response,
            policy.max_bytes,
            || too_large(policy.max_bytes),
            |e| self.transport_error(e, "media", "media_download"),
        )
        .await
    }

    /// `POST /{version}/{phone_number_id}/media`: uploads a file to send; answers Meta's media id.
    pub async fn upload_media(
        &self,
        phone_number_id: &str,
        bytes: &[u8],
        mime_type: &str,
        filename: Option<&str>,
    ) -> Result<String, SendError> {
        let url = self.graph_url(phone_number_id, "media")?;
        let (content_type, body) = multipart_body(bytes, mime_type, filename);
        let response = self
            .http
            .post(url)
            .bearer_auth(&self.inner.config.access_token)
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body)
            .send()
            .await
            .map_err(|e| self.transport_error(e, phone_number_id, "media_upload"))?;
        let status = response.status().as_u16();
        let retry_after = crate::http::retry_after(&response);
        let body = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(e, phone_number_id, "media_upload"))?;
        if !(200..300).contains(&status) {
            let error = classify_failure(status, retry_after, &body);
            tracing::warn!(
                phone_number_id,
                http_status = status,
                code = error.code,
                "cloud api refused a media upload"
            );
            return Err(error);
        }
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        v.get("id")
            .and_then(scalar_text)
            .filter(|id| !id.is_empty())
            .ok_or_else(|| SendError {
                retry: Retry::Transient,
                code: None,
                http_status: Some(status),
                message: "The provider accepted the upload but returned no media id.".into(),
                retry_after: None,
            })
    }
}

fn too_large(max: u64) -> SendError {
    refused(format!(
        "The media file is larger than openline accepts ({} MB).",
        max / (1024 * 1024)
    ))
}

/// A `multipart/form-data` body with `messaging_product=whatsapp`, `type` and `file`, and its
/// content type. The boundary is derived from the file's hash, so it does not occur in the file.
pub fn multipart_body(bytes: &[u8], mime_type: &str, filename: Option<&str>) -> (String, Vec<u8>) {
    let boundary = format!("openline-{}", &hex::encode(Sha256::digest(bytes))[..32]);
    let clean = |s: &str| -> String { s.chars().filter(|c| !matches!(c, '"' | '\r' | '\n' | '\\')).collect() };
    let mime = clean(mime_type);
    let name = clean(filename.unwrap_or("file"));
    let mut body = Vec::with_capacity(bytes.len() + 512);
    for (field, value) in [("messaging_product", "whatsapp"), ("type", mime.as_str())] {
        body.extend_from_slice(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    }
    body.extend_from_slice(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\nContent-Type: {mime}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn sha256_is_read_as_hex_or_base64_and_junk_is_ignored() {
        let hex = "ab".repeat(32);
        assert_eq!(normalize_sha256(&hex.to_uppercase()), Some(hex.clone()));
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode([0xabu8; 32]);
        assert_eq!(normalize_sha256(&b64), Some(hex));
        assert_eq!(normalize_sha256("4654+8g="), None, "pywa's truncated example value");
    }

    #[test]
    fn hosts_match_exactly_or_by_subdomain() {
        let p = DownloadPolicy {
            max_bytes: 1,
            allowed_hosts: DownloadPolicy::meta_hosts(),
        };
        assert!(p.host_allowed("lookaside.fbsbx.com"));
        assert!(p.host_allowed("scontent.xx.fbcdn.net"));
        assert!(!p.host_allowed("fbcdn.net.evil.example"));
        assert!(!p.host_allowed("127.0.0.1"));
    }
}
