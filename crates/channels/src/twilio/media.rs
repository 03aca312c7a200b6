//! Downloading the media a contact sent through Twilio: the `MediaUrl{n}` of an incoming-message
//! webhook, fetched with the account's credentials (HTTP basic auth, account SID and auth token).
//!
//! A media URL is `https://api.twilio.com/2010-04-01/Accounts/{AccountSid}/Messages/{MessageSid}/Media/{MediaSid}`.
//! Twilio answers it with a redirect to a short-lived URL on its media CDN (`mms.twiliocdn.com` when
//! the account enforces HTTP auth on media, `s3-external-1.amazonaws.com` for media stored without
//! it). Because the webhook, not openline, chooses the URL, downloads are guarded like the Cloud
//! API's:
//!
//! - The first URL must be on the REST API's own origin (`api.twilio.com`, or the simulator's
//!   configured base URL) and under this account's path, so credentials go nowhere else.
//! - A redirect may go to the same origin, or over https to one of [`TWILIO_MEDIA_HOSTS`]; the
//!   credentials are sent only to the REST API's origin, never to the CDN (its URL carries its own
//!   short-lived authorization).
//! - The size cap is enforced on `Content-Length` and again while the body streams in.
//!
//! Nothing here logs the auth token, a URL's query string or the bytes.

use super::response::classify_failure;
use super::TwilioClient;
use crate::cloud_api::DownloadedMedia;
use crate::SendError;
use openline_domain::provider_errors::Retry;
use url::Url;

/// The hosts Twilio redirects media downloads to (its media CDN), besides the REST API's own.
/// `.twiliocdn.com` is any subdomain of it.
pub const TWILIO_MEDIA_HOSTS: &[&str] = &["mms.twiliocdn.com", ".twiliocdn.com", "s3-external-1.amazonaws.com"];

/// How many redirects a download follows.
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

fn too_large(max: u64) -> SendError {
    refused(format!(
        "The file is larger than openline accepts ({} MB).",
        max / (1024 * 1024)
    ))
}

/// Whether `host` is one of Twilio's media CDN hosts.
pub fn is_twilio_media_host(host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    TWILIO_MEDIA_HOSTS
        .iter()
        .any(|pattern| match pattern.strip_prefix('.') {
            Some(suffix) => host.ends_with(&format!(".{suffix}")),
            None => host == *pattern,
        })
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str()
            .is_some_and(|h| b.host_str().is_some_and(|k| h.eq_ignore_ascii_case(k)))
        && a.port_or_known_default() == b.port_or_known_default()
}

impl TwilioClient {
    /// The REST API's origin and path prefix this account's media live under
    /// (`{base}/2010-04-01/Accounts/{sid}/`).
    fn media_prefix(&self) -> Url {
        let mut prefix = self.inner.messages_url.clone();
        // `…/Accounts/{sid}/Messages.json` → `…/Accounts/{sid}/`
        if let Ok(mut segments) = prefix.path_segments_mut() {
            segments.pop().push("");
        }
        prefix
    }

    /// Whether `url` is a media URL openline may fetch with this account's credentials: on the REST
    /// API's origin (`https://api.twilio.com`, or the simulator), under this account's path.
    pub fn media_url_allowed(&self, url: &Url) -> bool {
        let prefix = self.media_prefix();
        same_origin(url, &prefix) && url.path().starts_with(prefix.path())
    }

    /// Downloads a `MediaUrl` of an incoming message, following Twilio's redirect to its media CDN,
    /// with at most `max_bytes`. A URL or redirect it does not allow, or a larger file, is refused
    /// permanently (retrying cannot help); Twilio's other answers are judged as for any request
    /// (5xx and 429 transient).
    pub async fn download_media(&self, url: &str, max_bytes: u64) -> Result<DownloadedMedia, SendError> {
        let mut current = Url::parse(url.trim()).map_err(|_| refused("The media URL is not a URL."))?;
        if !self.media_url_allowed(&current) {
            return Err(refused(format!(
                "The media URL points at {}, which is not this Twilio account's media; openline does not fetch it.",
                current.host_str().unwrap_or("no host")
            )));
        }
        let api = self.media_prefix();
        let account_sid = self.inner.config.account_sid.trim();
        let mut redirects = 0;
        let response = loop {
            let mut request = self.http.get(current.clone());
            if same_origin(&current, &api) {
                request = request.basic_auth(account_sid, Some(&self.inner.config.auth_token));
            }
            let response = request.send().await.map_err(|e| self.media_transport_error(e))?;
            if !response.status().is_redirection() {
                break response;
            }
            redirects += 1;
            let next = response
                .headers()
                .get(reqwest::header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|location| current.join(location).ok())
                .ok_or_else(|| refused("Twilio redirected the media download without a usable Location."))?;
            let allowed = same_origin(&next, &api)
                || (next.scheme() == "https" && next.host_str().is_some_and(is_twilio_media_host));
            if redirects > MAX_REDIRECTS || !allowed {
                return Err(refused(format!(
                    "The media download was redirected to {}, which is not one of Twilio's media hosts.",
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
            error.message = match error.code {
                Some(code) => format!(
                    "Twilio's media host answered HTTP {status} (code {code}): {}",
                    error.message
                ),
                None => format!("Twilio's media host answered HTTP {status}."),
            };
            tracing::warn!(
                account_sid,
                http_status = status,
                code = error.code,
                "twilio media download refused"
            );
            return Err(error);
        }
        crate::http::read_capped_download(
            response,
            max_bytes,
            || too_large(max_bytes),
            |e| self.media_transport_error(e),
        )
        .await
    }

    fn media_transport_error(&self, error: reqwest::Error) -> SendError {
        let error = error.without_url();
        let message = if error.is_timeout() {
            format!(
                "Twilio's media host did not answer within {:?}.",
                self.inner.config.timeout
            )
        } else {
            format!("Could not reach Twilio's media host: {error}")
        };
        tracing::warn!(
            account_sid = self.inner.config.account_sid.trim(),
            "twilio media download failed: {message}"
        );
        SendError::transport(message)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::twilio::TwilioConfig;
    use std::time::Duration;

    fn client(base: &str) -> TwilioClient {
        TwilioClient::new(TwilioConfig {
            base_url: base.into(),
            account_sid: "AC123".into(),
            auth_token: "token".into(),
            timeout: Duration::from_secs(1),
        })
        .unwrap()
    }

    #[test]
    fn only_this_accounts_media_on_the_api_origin_is_fetched() {
        let c = client("https://api.twilio.com");
        let ok = |u: &str| c.media_url_allowed(&Url::parse(u).unwrap());
        assert!(ok(
            "https://api.twilio.com/2010-04-01/Accounts/AC123/Messages/MM1/Media/ME1"
        ));
        assert!(!ok(
            "https://api.twilio.com/2010-04-01/Accounts/AC999/Messages/MM1/Media/ME1"
        ));
        assert!(!ok(
            "http://api.twilio.com/2010-04-01/Accounts/AC123/Messages/MM1/Media/ME1"
        ));
        assert!(!ok(
            "https://api.twilio.com.evil.example/2010-04-01/Accounts/AC123/Messages/MM1/Media/ME1"
        ));
        assert!(!ok("https://mms.twiliocdn.com/AC123/abc"));
        let sim = client("http://127.0.0.1:9000/sim/twilio");
        assert!(sim.media_url_allowed(
            &Url::parse("http://127.0.0.1:9000/sim/twilio/2010-04-01/Accounts/AC123/Messages/MM1/Media/ME1").unwrap()
        ));
        assert!(!sim.media_url_allowed(
            &Url::parse("http://127.0.0.1:9001/sim/twilio/2010-04-01/Accounts/AC123/Messages/MM1/Media/ME1").unwrap()
        ));
    }

    #[test]
    fn twilios_cdn_hosts_are_recognised_and_nothing_else() {
        assert!(is_twilio_media_host("mms.twiliocdn.com"));
        assert!(is_twilio_media_host("media.us1.TWILIOCDN.com"));
        assert!(is_twilio_media_host("s3-external-1.amazonaws.com"));
        assert!(!is_twilio_media_host("twiliocdn.com.evil.example"));
        assert!(!is_twilio_media_host("eviltwiliocdn.com"));
        assert!(!is_twilio_media_host("bucket.s3.amazonaws.com"));
    }
}
