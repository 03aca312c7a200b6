//! Reading Twilio's answers to `POST …/Messages.json`: the SID of an accepted message, and for a
//! refusal whether the dispatcher may try again.
//!
//! The rule, in order: no response (network error, timeout), HTTP 5xx and HTTP 429 are transient
//! whatever the body says; any other refusal with Twilio's error body (`{"code": 21211, "message",
//! "more_info", "status": 400}`) is judged by its code through
//! [`explain_twilio_error`](openline_domain::provider_errors::explain_twilio_error) (so 63018, the
//! WhatsApp rate limit, is retried even as HTTP 400); a refusal we cannot read is permanent.
//!
//! Twilio's spec documents only the 201 answer, so the error body here follows Twilio's published
//! error format and its helper libraries. Pure functions over status, headers and bytes.

use crate::{ProviderAccepted, SendError};
use openline_domain::provider_errors::{explain_twilio_error, Retry};
use serde_json::Value;
use std::time::Duration;

/// Reads the body of a successful create: the message resource, whose `sid` (`SM…`) status
/// callbacks will refer to.
///
/// A 2xx without a SID is a permanent failure rather than a retry: Twilio may have queued the
/// message, and a retry could deliver it twice.
pub(crate) fn parse_accepted(http_status: u16, body: &[u8]) -> Result<ProviderAccepted, SendError> {
    let value: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    match value
        .get("sid")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
    {
        Some(sid) => Ok(ProviderAccepted {
            provider_message_id: sid.to_owned(),
            wa_id: None,
        }),
        None => Err(SendError {
            retry: Retry::Permanent,
            code: None,
            http_status: Some(http_status),
            message: format!("The provider answered HTTP {http_status} without a message SID; the message may or may not have been sent."),
            retry_after: None,
        }),
    }
}

/// Judges a non-2xx response.
pub(crate) fn classify_failure(http_status: u16, retry_after: Option<Duration>, body: &[u8]) -> SendError {
    let twilio = TwilioError::parse(body);
    let code = twilio.as_ref().and_then(|t| t.code);
    let retry = if http_status == 429 || (500..=599).contains(&http_status) {
        Retry::Transient
    } else {
        code.map_or(Retry::Permanent, |c| explain_twilio_error(c).retry)
    };
    let message = match twilio.as_ref().and_then(|t| t.message.clone()) {
        Some(message) => message,
        None => match code {
            Some(code) => format!("The provider refused the request with code {code}."),
            None => format!("The provider answered HTTP {http_status} without an error description."),
        },
    };
    SendError {
        retry,
        code,
        http_status: Some(http_status),
        message,
        retry_after,
    }
}

/// Twilio's error body. `more_info` (the error's documentation page) is kept for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TwilioError {
    pub code: Option<i64>,
    pub message: Option<String>,
    pub more_info: Option<String>,
}

impl TwilioError {
    /// `None` unless the body is a JSON object naming a `code` or a `message`.
    pub fn parse(body: &[u8]) -> Option<Self> {
        let value: Value = serde_json::from_slice(body).ok()?;
        let text = |key: &str| {
            value
                .get(key)
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
        };
        let code = value
            .get("code")
            .and_then(|c| c.as_i64().or_else(|| c.as_str().and_then(|s| s.trim().parse().ok())));
        let error = Self {
            code,
            message: text("message"),
            more_info: text("more_info"),
        };
        (error.code.is_some() || error.message.is_some()).then_some(error)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn twilio_error(code: i64, message: &str, status: u16) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({
            "code": code, "message": message,
            "more_info": format!("https://www.twilio.com/docs/errors/{code}"), "status": status
        }))
        .unwrap()
    }

    #[test]
    fn an_invalid_number_is_permanent_and_keeps_twilios_words() {
        let e = classify_failure(400, None, &twilio_error(21211, "Invalid 'To' Phone Number", 400));
        assert_eq!(
            (e.retry, e.code, e.http_status),
            (Retry::Permanent, Some(21211), Some(400))
        );
        assert_eq!(e.message, "Invalid 'To' Phone Number");
    }

    #[test]
    fn the_whatsapp_rate_limit_is_transient_even_as_http_400() {
        assert_eq!(
            classify_failure(400, None, &twilio_error(63018, "Rate limit exceeded", 400)).retry,
            Retry::Transient
        );
    }

    #[test]
    fn server_errors_are_transient_and_unreadable_refusals_permanent() {
        assert_eq!(
            classify_failure(503, None, &twilio_error(21211, "x", 503)).retry,
            Retry::Transient
        );
        assert_eq!(classify_failure(502, None, b"<html>").retry, Retry::Transient);
        let unreadable = classify_failure(400, None, b"<html>");
        assert_eq!((unreadable.retry, unreadable.code), (Retry::Permanent, None));
        assert!(unreadable.message.contains("400"));
        assert_eq!(classify_failure(404, None, b"{}").retry, Retry::Permanent);
        assert_eq!(classify_failure(400, None, br#"{"code":"21610"}"#).code, Some(21610));
    }

    #[test]
    fn an_accepted_message_yields_its_sid_and_a_2xx_without_one_is_not_retried() {
        let accepted = parse_accepted(201, br#"{"sid":"SM1234","status":"queued"}"#).unwrap();
        assert_eq!(accepted.provider_message_id, "SM1234");
        assert_eq!(accepted.wa_id, None);
        assert_eq!(parse_accepted(201, b"{}").unwrap_err().retry, Retry::Permanent);
    }
}
