//! The HTTP client for the Cloud API's `POST /{version}/{phone-number-id}/messages`: sending
//! messages and read receipts to Meta's Graph API or to the simulator, which speaks the same paths.
//!
//! One client serves every business number of one access token; the phone number id is a
//! parameter of each call because a deployment usually has several senders. The client never logs
//! the access token, the request body or anything a contact wrote: only the phone number id, the
//! message kind, HTTP status, Meta's error code and trace id.

use super::outbound::mark_read_request_body;
use super::templates::SubmittedTemplate;
// Re-exported here too: they are what `send` takes and returns.
pub use super::outbound::OutboundMessage;
use super::response::{classify_failure, parse_accepted, MetaError};
pub use crate::{ChannelError, ProviderAccepted, SendError};
use openline_domain::provider_errors::Retry;
use serde_json::Value;
use std::error::Error as _;
use std::sync::Arc;
use std::time::Duration;
use url::Url;

/// `body` (a send's JSON) with `biz_opaque_callback_data` set to `data`, unless `data` is empty or
/// over Meta's 512 characters.
pub fn with_callback_data(mut body: Value, data: &str) -> Value {
    if !data.is_empty() && data.chars().count() <= 512 {
        if let Some(object) = body.as_object_mut() {
            object.insert("biz_opaque_callback_data".into(), Value::String(data.to_owned()));
        }
    }
    body
}

/// How to reach the Cloud API.
#[derive(Clone)]
pub struct CloudApiConfig {
    /// Where the Graph API lives: `https://graph.facebook.com`, or the simulator's
    /// `http://…/sim/graph`. Any path is kept; the version and phone number id are appended to it.
    pub base_url: String,
    /// The Graph API version, e.g. `v23.0`.
    pub api_version: String,
    /// The system-user access token sent as `Authorization: Bearer …`. Never printed.
    pub access_token: String,
    /// How long one request may take, connection included, before it counts as a (transient)
    /// failure.
    pub timeout: Duration,
}

impl std::fmt::Debug for CloudApiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloudApiConfig")
            .field("base_url", &self.base_url)
            .field("api_version", &self.api_version)
            .field("access_token", &"<redacted>")
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// A Cloud API client. Cloning is cheap and shares the connection pool.
#[derive(Clone, Debug)]
pub struct CloudApiClient {
    pub(super) http: reqwest::Client,
    pub(super) inner: Arc<Inner>,
}

/// What every clone shares. `Debug` goes through `config`, which redacts the token.
#[derive(Debug)]
pub(super) struct Inner {
    /// `config.base_url`, parsed and checked once so building request URLs cannot fail later.
    pub(super) base: Url,
    pub(super) config: CloudApiConfig,
}

impl CloudApiClient {
    /// Builds a client. Fails if the base URL is not an absolute http(s) URL, if the version is
    /// empty, or if the HTTP client cannot be built.
    pub fn new(config: CloudApiConfig) -> Result<Self, ChannelError> {
        let base = Url::parse(config.base_url.trim())
            .map_err(|e| ChannelError::InvalidConfig(format!("base_url {:?} is not a URL: {e}", config.base_url)))?;
        if !matches!(base.scheme(), "http" | "https") || base.cannot_be_a_base() {
            return Err(ChannelError::InvalidConfig(format!(
                "base_url {:?} must be an http(s) URL",
                config.base_url
            )));
        }
        if config.api_version.trim().is_empty() || config.api_version.contains('/') {
            return Err(ChannelError::InvalidConfig(format!(
                "api_version {:?} must look like v23.0",
                config.api_version
            )));
        }
        let http = crate::http::build_client(config.timeout)?;
        Ok(Self {
            http,
            inner: Arc::new(Inner { base, config }),
        })
    }

    /// Sends `message` from the business number `phone_number_id`.
    ///
    /// `Ok` means Meta accepted it and gave it an id; delivery is reported later by status webhooks.
    /// An `Err` says whether to retry (see [`SendError`]).
    pub async fn send(&self, phone_number_id: &str, message: &OutboundMessage) -> Result<ProviderAccepted, SendError> {
        let kind = message.kind().as_str();
        let (status, body) = self
            .post_messages(phone_number_id, &message.to_request_body(), kind)
            .await?;
        let accepted = parse_accepted(status, &body);
        if let Ok(accepted) = &accepted {
            tracing::debug!(phone_number_id, kind, provider_message_id = %accepted.provider_message_id, "cloud api accepted message");
        }
        accepted
    }

    /// [`send`](Self::send), tagged with `callback_data` (openline's message id) as
    /// `biz_opaque_callback_data`: Meta echoes it on every status webhook of the message, which is
    /// how a status for an attempt whose answer was lost (a crash mid-send) finds its message.
    /// Meta allows at most 512 characters; a longer tag is not sent.
    pub async fn send_with_callback_data(
        &self,
        phone_number_id: &str,
        message: &OutboundMessage,
        callback_data: &str,
    ) -> Result<ProviderAccepted, SendError> {
        let kind = message.kind().as_str();
        let body = with_callback_data(message.to_request_body(), callback_data);
        let (status, body) = self.post_messages(phone_number_id, &body, kind).await?;
        parse_accepted(status, &body)
    }

    /// Marks an inbound message (and the ones before it) as read, showing blue ticks to the contact.
    pub async fn mark_read(&self, phone_number_id: &str, provider_message_id: &str) -> Result<(), SendError> {
        self.post_messages(
            phone_number_id,
            &mark_read_request_body(provider_message_id),
            "read_receipt",
        )
        .await?;
        Ok(())
    }

    /// POSTs `body` to the messages endpoint and returns the status and body of a 2xx response;
    /// anything else becomes a [`SendError`].
    async fn post_messages(
        &self,
        phone_number_id: &str,
        body: &Value,
        kind: &str,
    ) -> Result<(u16, Vec<u8>), SendError> {
        let url = self.graph_url(phone_number_id, "messages")?;
        self.post_json(url, phone_number_id, body, kind).await
    }

    /// Submits a message template for Meta's review to the WhatsApp Business Account `waba_id`
    /// (`POST /{version}/{waba_id}/message_templates`). The answer carries Meta's template id and its
    /// first status (normally `PENDING`); later changes arrive as `message_template_status_update`
    /// webhooks.
    pub async fn submit_template(&self, waba_id: &str, template: &Value) -> Result<SubmittedTemplate, SendError> {
        let url = self.graph_url(waba_id, "message_templates")?;
        let (_, body) = self.post_json(url, waba_id, template, "template").await?;
        let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        match v.get("id").and_then(|i| {
            i.as_str()
                .map(str::to_owned)
                .or_else(|| i.as_i64().map(|n| n.to_string()))
        }) {
            Some(id) => Ok(SubmittedTemplate {
                id,
                status: v.get("status").and_then(Value::as_str).unwrap_or("PENDING").to_owned(),
            }),
            None => Err(SendError {
                retry: Retry::Permanent,
                code: None,
                http_status: None,
                message: "The provider accepted the template but returned no id.".into(),
                retry_after: None,
            }),
        }
    }

    /// POSTs JSON and returns the status and body of a 2xx response; anything else becomes a
    /// [`SendError`]. `object_id` (a number or account id) is logged, never the body or token.
    async fn post_json(
        &self,
        url: Url,
        object_id: &str,
        body: &Value,
        kind: &str,
    ) -> Result<(u16, Vec<u8>), SendError> {
        let phone_number_id = object_id;
        let response = self
            .http
            .post(url)
            .bearer_auth(&self.inner.config.access_token)
            .json(body)
            .send()
            .await
            .map_err(|e| self.transport_error(e, phone_number_id, kind))?;
        let status = response.status().as_u16();
        let retry_after = crate::http::retry_after(&response);
        let bytes = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(e, phone_number_id, kind))?;
        if (200..300).contains(&status) {
            return Ok((status, bytes.to_vec()));
        }
        let error = classify_failure(status, retry_after, &bytes);
        let meta = MetaError::parse(&bytes);
        tracing::warn!(
            phone_number_id,
            kind,
            http_status = status,
            code = error.code,
            subcode = meta.as_ref().and_then(|m| m.subcode),
            fbtrace_id = meta.as_ref().and_then(|m| m.fbtrace_id.as_deref()),
            transient = error.is_transient(),
            "cloud api refused request"
        );
        Err(error)
    }

    /// `{base_url}/{version}/{object_id}/{edge}`, each segment percent-encoded so an odd id cannot
    /// reach another path.
    pub(super) fn graph_url(&self, phone_number_id: &str, edge: &str) -> Result<Url, SendError> {
        let invalid = |why: &str| SendError {
            retry: Retry::Permanent,
            code: None,
            http_status: None,
            message: format!("The sender is misconfigured: {why}."),
            retry_after: None,
        };
        if phone_number_id.trim().is_empty() {
            return Err(invalid("it has no Cloud API id for this request"));
        }
        let mut url = self.inner.base.clone();
        url.path_segments_mut()
            .map_err(|_| invalid("the base URL cannot take a path"))?
            .pop_if_empty()
            .push(self.inner.config.api_version.trim())
            .push(phone_number_id.trim())
            .push(edge);
        Ok(url)
    }

    /// A request that got no usable response. The URL is left out of the description (it is
    /// logged separately as the phone number id), and the cause chain is kept: "error sending
    /// request" alone helps nobody.
    pub(super) fn transport_error(&self, error: reqwest::Error, phone_number_id: &str, kind: &str) -> SendError {
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
            phone_number_id,
            kind,
            timeout = error.is_timeout(),
            "cloud api request failed: {message}"
        );
        SendError::transport(message)
    }
}
