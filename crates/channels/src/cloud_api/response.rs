//! Reading the Cloud API's answers: the message id of an accepted send, and for a refusal whether
//! the dispatcher may try again.
//!
//! The rule, in order: no response (network error, timeout), HTTP 5xx and HTTP 429 are transient
//! whatever the body says; any other refusal with Meta's error body (`{"error": {"code", "message",
//! "error_data": {"details"}, …}}`) is judged by its code through
//! [`explain_cloud_api_error`](openline_domain::provider_errors::explain_cloud_api_error) (so
//! 130429 throttling sent as HTTP 400 is still retried); a refusal we cannot read is permanent,
//! because retrying a request the provider does not understand only repeats the failure.
//!
//! Pure functions over status, headers and bytes, so every branch is tested without a server.

use super::json::{non_empty_text, object, text};
use crate::{ProviderAccepted, SendError};
use openline_domain::provider_errors::{explain_cloud_api_error, Retry};
use serde_json::Value;
use std::time::Duration;

/// Reads the body of a successful send: `{"messages": [{"id": "wamid…"}], "contacts": [{"wa_id"}]}`.
///
/// A 2xx without a message id is treated as a permanent failure rather than retried: the provider
/// may have sent the message, and a retry could deliver it twice.
pub(crate) fn parse_accepted(http_status: u16, body: &[u8]) -> Result<ProviderAccepted, SendError> {
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let first = |key: &str| {
        value
            .get(key)
            .and_then(Value::as_array)
            .and_then(|a| a.first())
            .cloned()
    };
    match first("messages").and_then(|m| non_empty_text(&m, "id")) {
        Some(provider_message_id) => Ok(ProviderAccepted {
            provider_message_id,
            wa_id: first("contacts").and_then(|c| non_empty_text(&c, "wa_id")),
        }),
        None => Err(SendError {
            retry: Retry::Permanent,
            code: None,
            http_status: Some(http_status),
            message: format!("The provider answered HTTP {http_status} without a message id; the message may or may not have been sent."),
            retry_after: None,
        }),
    }
}

/// Judges a non-2xx response.
pub(crate) fn classify_failure(http_status: u16, retry_after: Option<Duration>, body: &[u8]) -> SendError {
    let meta = MetaError::parse(body);
    let code = meta.as_ref().and_then(|m| m.code);
    let retry = if http_status == 429 || (500..=599).contains(&http_status) {
        Retry::Transient
    } else {
        code.map_or(Retry::Permanent, |c| explain_cloud_api_error(c).retry)
    };
    let message = match &meta {
        Some(m) => m.describe(),
        None => format!("The provider answered HTTP {http_status} without an error description."),
    };
    SendError {
        retry,
        code,
        http_status: Some(http_status),
        message,
        retry_after,
    }
}

/// The parts of Meta's error body we use. `fbtrace_id` is kept for the log: it is what Meta's
/// support asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MetaError {
    pub code: Option<i64>,
    pub subcode: Option<i64>,
    pub title: Option<String>,
    pub message: Option<String>,
    pub details: Option<String>,
    pub fbtrace_id: Option<String>,
}

impl MetaError {
    /// `None` unless the body is JSON with an `error` object.
    pub fn parse(body: &[u8]) -> Option<Self> {
        let value: Value = serde_json::from_slice(body).ok()?;
        let error = object(&value, "error")?;
        let int = |key: &str| {
            error
                .get(key)
                .and_then(|v| v.as_i64().or_else(|| v.as_str().and_then(|s| s.trim().parse().ok())))
        };
        Some(Self {
            code: int("code"),
            subcode: int("error_subcode"),
            title: non_empty_text(error, "error_user_title"),
            message: non_empty_text(error, "message"),
            details: object(error, "error_data").and_then(|d| non_empty_text(d, "details")),
            fbtrace_id: text(error, "fbtrace_id"),
        })
    }

    /// Title, message and details, without repeats, e.g. "(#131047) Re-engagement message: Message
    /// failed to send because more than 24 hours have passed…".
    pub fn describe(&self) -> String {
        let mut parts: Vec<&str> = Vec::new();
        for part in [&self.title, &self.message, &self.details].into_iter().flatten() {
            if !parts.contains(&part.as_str()) {
                parts.push(part);
            }
        }
        if parts.is_empty() {
            return match self.code {
                Some(code) => format!("The provider refused the request with code {code}."),
                None => "The provider refused the request without a description.".to_owned(),
            };
        }
        parts.join(": ")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn meta_error(code: i64, message: &str, details: &str) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"error": {
            "message": message, "type": "OAuthException", "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": details},
            "fbtrace_id": "Az8or2yhqkZfEZ-_4Qn_Bam"
        }}))
        .unwrap()
    }

    #[test]
    fn a_window_error_is_permanent_and_explains_itself() {
        let e = classify_failure(
            400,
            None,
            &meta_error(131047, "(#131047) Re-engagement message", "More than 24 hours"),
        );
        assert_eq!(
            (e.retry, e.code, e.http_status),
            (Retry::Permanent, Some(131047), Some(400))
        );
        assert_eq!(e.message, "(#131047) Re-engagement message: More than 24 hours");
    }

    #[test]
    fn throttling_is_transient_even_when_sent_as_http_400() {
        let e = classify_failure(400, None, &meta_error(130429, "(#130429) Rate limit hit", ""));
        assert_eq!(e.retry, Retry::Transient);
    }

    #[test]
    fn server_errors_are_transient_whatever_their_code_and_unreadable_refusals_permanent() {
        assert_eq!(
            classify_failure(503, None, &meta_error(131047, "x", "y")).retry,
            Retry::Transient
        );
        assert_eq!(classify_failure(500, None, b"<html>").retry, Retry::Transient);
        assert_eq!(classify_failure(400, None, b"<html>").retry, Retry::Permanent);
        assert_eq!(classify_failure(404, None, br#"{"error":{}}"#).retry, Retry::Permanent);
    }

    #[test]
    fn an_accepted_send_yields_the_message_id_and_resolved_wa_id() {
        let body = br#"{"messaging_product":"whatsapp","contacts":[{"input":"+16505551234","wa_id":"16505551234"}],"messages":[{"id":"wamid.HBgL"}]}"#;
        let accepted = parse_accepted(200, body).unwrap();
        assert_eq!(
            accepted,
            ProviderAccepted {
                provider_message_id: "wamid.HBgL".into(),
                wa_id: Some("16505551234".into())
            }
        );
        assert_eq!(parse_accepted(200, b"{}").unwrap_err().retry, Retry::Permanent);
    }
}
