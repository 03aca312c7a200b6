//! What every provider adapter's HTTP side shares: how the client is built (timeouts, no redirects:
//! following one could replay a POST elsewhere with our credentials) and how `Retry-After` is read.

use crate::ChannelError;
use std::time::Duration;

/// The longest `Retry-After` we pass on; a larger value is more likely a misconfigured proxy than a
/// real instruction, and the dispatcher's own backoff takes over from there.
pub(crate) const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// An HTTP client for a provider API.
pub(crate) fn build_client(timeout: Duration) -> Result<reqwest::Client, ChannelError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("openline/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| ChannelError::HttpClient(e.to_string()))
}

/// Reads a `Retry-After` header given in seconds (capped at `MAX_RETRY_AFTER`). HTTP-date values are
/// read as absent (the dispatcher's backoff applies); Meta, Twilio and the simulator send seconds.
pub(crate) fn parse_retry_after(header: Option<&str>) -> Option<Duration> {
    let seconds: u64 = header?.trim().parse().ok()?;
    Some(Duration::from_secs(seconds).min(MAX_RETRY_AFTER))
}

/// The `Retry-After` of a provider's answer (see [`parse_retry_after`]).
pub(crate) fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    parse_retry_after(
        response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok()),
    )
}

/// Reads a successful download: its `Content-Type` and at most `max_bytes` of body, refused with
/// `too_large()` as soon as the announced length or the bytes received go past it; a read that
/// fails is mapped by `transport`. Both adapters' media downloads end here.
pub(crate) async fn read_capped_download(
    mut response: reqwest::Response,
    max_bytes: u64,
    too_large: impl Fn() -> crate::SendError,
    transport: impl Fn(reqwest::Error) -> crate::SendError,
) -> Result<crate::cloud_api::DownloadedMedia, crate::SendError> {
    if response.content_length().is_some_and(|n| n > max_bytes) {
        return Err(too_large());
    }
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(&transport)? {
        if (bytes.len() + chunk.len()) as u64 > max_bytes {
            return Err(too_large());
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(crate::cloud_api::DownloadedMedia { bytes, content_type })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_read_in_seconds_and_capped() {
        assert_eq!(parse_retry_after(Some(" 30 ")), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after(Some("999999999")), Some(MAX_RETRY_AFTER));
        assert_eq!(parse_retry_after(Some("Wed, 21 Oct 2015 07:28:00 GMT")), None);
        assert_eq!(parse_retry_after(None), None);
    }
}
