//! The HTTP client for Twilio's `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`: sending
//! WhatsApp and SMS messages to Twilio or to the simulator, which speaks the same path.
//!
//! One client serves one Twilio account (its SID and auth token, sent as HTTP basic auth); the
//! sender number is part of each message, because an account usually has several. The client never
//! logs the auth token, the request body or anything a contact wrote: only the account SID, HTTP
//! status, Twilio's error code and its documentation link.

use super::outbound::TwilioMessage;
use super::response::{classify_failure, parse_accepted, TwilioError};
pub use crate::{ChannelError, ProviderAccepted, SendError};
use openline_domain::provider_errors::Retry;
use std::error::Error as _;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// The REST API version in every Messages path; Twilio has never changed it.
const API_VERSION: &str = "2010-04-01";

/// How to reach Twilio.
#[derive(Clone)]
pub struct TwilioConfig {
    /// Where the REST API lives: `https://api.twilio.com`, or the simulator's `http://…/sim/twilio`.
    /// Any path is kept; `/2010-04-01/Accounts/{sid}/Messages.json` is appended to it.
    pub base_url: String,
    /// The account (`AC…`) the messages are sent from; the basic-auth user name.
    pub account_sid: String,
    /// The account's auth token: the basic-auth password, and the key of webhook signatures.
    /// Never printed.
    pub auth_token: String,
    /// How long one request may take, connection included, before it counts as a (transient)
    /// failure.
    pub timeout: Duration,
}

impl std::fmt::Debug for TwilioConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TwilioConfig")
            .field("base_url", &self.base_url)
            .field("account_sid", &self.account_sid)
            .field("auth_token", &"<redacted>")
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A Twilio Messages client. Cloning is cheap and shares the connection pool.
#[derive(Clone, Debug)]
pub struct TwilioClient {
    pub(super) http: reqwest::Client,
    pub(super) inner: Arc<Inner>,
}

/// What every clone shares. `Debug` goes through `config`, which redacts the token.
#[derive(Debug)]
pub(super) struct Inner {
    /// `{base_url}/2010-04-01/Accounts/{sid}/Messages.json`, built and checked once so sending
    /// cannot fail on a bad URL later.
    pub(super) messages_url: Url,
    pub(super) config: TwilioConfig,
}

impl TwilioClient {
    /// Builds a client. Fails if the base URL is not an absolute http(s) URL, if the account SID or
    /// auth token is blank (or the SID has a `/`), or if the HTTP client cannot be built.
    pub fn new(config: TwilioConfig) -> Result<Self, ChannelError> {
        let invalid = |why: String| ChannelError::InvalidConfig(why);
        let mut messages_url = Url::parse(config.base_url.trim())
            .map_err(|e| invalid(format!("base_url {:?} is not a URL: {e}", config.base_url)))?;
        if !matches!(messages_url.scheme(), "http" | "https") {
            return Err(invalid(format!(
                "base_url {:?} must be an http(s) URL",
                config.base_url
            )));
        }
        let account_sid = config.account_sid.trim();
        if account_sid.is_empty() || account_sid.contains('/') {
            return Err(invalid(format!(
                "account_sid {:?} must look like AC followed by 32 hex digits",
                config.account_sid
            )));
        }
        if config.auth_token.trim().is_empty() {
            return Err(invalid("auth_token is empty".into()));
        }
        messages_url
            .path_segments_mut()
            .map_err(|_| invalid(format!("base_url {:?} cannot take a path", config.base_url)))?
            .pop_if_empty()
            .extend([API_VERSION, "Accounts", account_sid, "Messages.json"]);
        let http = crate::http::build_client(config.timeout)?;
        Ok(Self {
            http,
            inner: Arc::new(Inner { messages_url, config }),
        })
    }

    /// Sends `message`.
    ///
    /// `Ok` means Twilio accepted it and gave it a SID (`SM…`, the `provider_message_id`); delivery
    /// is reported later by status callbacks. An `Err` says whether to retry (see [`SendError`]). A
    /// message Twilio would refuse outright (no recipient, no sender, nothing to send) fails
    /// permanently without a request.
    pub async fn send(&self, message: &TwilioMessage) -> Result<ProviderAccepted, SendError> {
        if let Some(problem) = message.problem() {
            return Err(SendError {
                retry: Retry::Permanent,
                code: None,
                http_status: None,
                message: format!("The message was not sent: {problem}."),
                retry_after: None,
            });
        }
        let account_sid = self.inner.config.account_sid.trim();
        let form = serde_urlencoded::to_string(message.form_params()).map_err(|e| SendError {
            retry: Retry::Permanent,
            code: None,
            http_status: None,
            message: format!("The message could not be encoded for the provider: {e}."),
            retry_after: None,
        })?;
        let response = self
            .http
            .post(self.inner.messages_url.clone())
            .basic_auth(account_sid, Some(&self.inner.config.auth_token))
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header(reqwest::header::ACCEPT, "application/json")
            .body(form)
            .send()
            .await
            .map_err(|e| self.transport_error(e))?;
        let status = response.status().as_u16();
        let retry_after = crate::http::retry_after(&response);
        let bytes = response.bytes().await.map_err(|e| self.transport_error(e))?;
        if (200..300).contains(&status) {
            let accepted = parse_accepted(status, &bytes);
            if let Ok(accepted) = &accepted {
                tracing::debug!(account_sid, provider_message_id = %accepted.provider_message_id, "twilio accepted message");
            }
            return accepted;
        }
        let error = classify_failure(status, retry_after, &bytes);
        let twilio = TwilioError::parse(&bytes);
        tracing::warn!(
            account_sid,
            http_status = status,
            code = error.code,
            more_info = twilio.as_ref().and_then(|t| t.more_info.as_deref()),
            transient = error.is_transient(),
            "twilio refused message"
        );
        Err(error)
    }

    /// A request that got no usable response. The URL is left out (it holds the account SID, which
    /// is logged on its own), and the cause chain is kept: "error sending request" alone helps
    /// nobody.
    fn transport_error(&self, error: reqwest::Error) -> SendError {
        let error = error.without_url();
        let message = if error.is_timeout() {
            format!("The provider did not answer within {:?}.", self.inner.config.timeout)
        } else {
            let mut message = format!("Could not reach the provider: {error}");
            let mut source = error.source();
            while let Some(cause) = source {
                message.push_str(": ");
                message.push_str(&cause.to_string());
                source = cause.source();
            }
            message
        };
        tracing::warn!(
            account_sid = self.inner.config.account_sid.trim(),
            timeout = error.is_timeout(),
            "twilio request failed: {message}"
        );
        SendError::transport(message)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn config(base_url: &str) -> TwilioConfig {
        TwilioConfig {
            base_url: base_url.into(),
            account_sid: "AC123".into(),
            auth_token: "very-secret-token".into(),
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn the_messages_url_keeps_the_base_path_and_debug_never_shows_the_token() {
        let client = TwilioClient::new(config("http://127.0.0.1:9/sim/twilio/")).unwrap();
        assert_eq!(
            client.inner.messages_url.as_str(),
            "http://127.0.0.1:9/sim/twilio/2010-04-01/Accounts/AC123/Messages.json"
        );
        let shown = format!("{client:?} {:?}", config("https://api.twilio.com"));
        assert!(!shown.contains("very-secret-token"), "{shown}");
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn unusable_configurations_are_refused() {
        for bad in [
            config("api.twilio.com"),
            config("ftp://api.twilio.com"),
            config("mailto:x@example.com"),
            TwilioConfig {
                account_sid: " ".into(),
                ..config("https://api.twilio.com")
            },
            TwilioConfig {
                account_sid: "AC1/../x".into(),
                ..config("https://api.twilio.com")
            },
            TwilioConfig {
                auth_token: "".into(),
                ..config("https://api.twilio.com")
            },
        ] {
            assert!(
                matches!(TwilioClient::new(bad.clone()), Err(ChannelError::InvalidConfig(_))),
                "{bad:?}"
            );
        }
    }
}
