//! The outcomes every provider adapter reports, whatever protocol it speaks: a send was accepted
//! (`ProviderAccepted`), a send failed and may or may not be retried (`SendError`), or the adapter
//! could not even be built (`ChannelError`).
//!
//! `SendError` is a plain struct rather than an enum of causes because the dispatcher needs the same
//! four facts from every failure (retry or not, the provider's code, the HTTP status, when to try
//! again) and the agent needs one safe sentence; the cause is folded into `message`.

use openline_domain::provider_errors::Retry;
use std::time::Duration;

/// The provider took the message: it now has an id, and status webhooks will follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderAccepted {
    /// The provider's id for the message (`wamid.…` on the Cloud API); status webhooks refer to it.
    pub provider_message_id: String,
    /// The WhatsApp id the provider resolved the recipient to, when it says (it may differ from the
    /// number we sent to, e.g. for Brazilian and Mexican numbers).
    pub wa_id: Option<String>,
}

/// A send or read receipt that did not go through.
///
/// Safe to show and log: `message` holds the provider's own description (title, message, details)
/// or a description of the transport failure, never the request body, the recipient's message or
/// the access token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    /// Whether the dispatcher should try again later (throttling, outages, timeouts) or give up.
    pub retry: Retry,
    /// The provider's error code (Meta's `error.code`, e.g. 131047), when it sent one.
    pub code: Option<i64>,
    /// The HTTP status of the response; `None` when no response arrived (network error, timeout).
    pub http_status: Option<u16>,
    /// A description safe to show to the agent and to log.
    pub message: String,
    /// How long the provider asked us to wait (`Retry-After`), when it did.
    pub retry_after: Option<Duration>,
}

impl SendError {
    /// A failure before any response arrived: connection refused, DNS, TLS, timeout. Always
    /// transient: the provider may be back in a moment.
    pub fn transport(message: impl Into<String>) -> Self {
        Self {
            retry: Retry::Transient,
            code: None,
            http_status: None,
            message: message.into(),
            retry_after: None,
        }
    }

    /// Whether the dispatcher may try again.
    pub fn is_transient(&self) -> bool {
        self.retry == Retry::Transient
    }
}

/// An adapter that cannot be built from its configuration.
#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    /// The configuration is unusable (e.g. a base URL that is not an absolute http(s) URL).
    #[error("invalid channel configuration: {0}")]
    InvalidConfig(String),
    /// The HTTP client could not be built (e.g. the TLS backend failed to initialise).
    #[error("could not build the HTTP client: {0}")]
    HttpClient(String),
}
