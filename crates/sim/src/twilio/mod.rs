//! The fake Twilio Messages API: `POST /twilio/2010-04-01/Accounts/{AccountSid}/Messages.json`, for
//! SMS and for WhatsApp through Twilio, checked in the order Twilio checks it: HTTP basic auth with
//! the account SID and auth token first (401, code 20003), then the form parameters (400, codes
//! 21604 / 21211 / 21603 / 21606 / 21910 / 21602 / 21617 / 21609, see `validate`). An accepted
//! message is answered 201 with Twilio's Message resource (`resource`) and then plays out its status
//! callbacks (`lifecycle`), signed with `X-Twilio-Signature` over the callback URL.
//!
//! Media both ways (`MediaUrl` fetched like Twilio fetches it; a phone's MMS as a Media resource
//! behind basic auth) lives in `media`.
//!
//! Phones texting the business over SMS live in `sms`: an inbound-message webhook to
//! [`crate::SimConfig::twilio_webhook_url`], signed the same way.
//!
//! Twilio documents its error body (`{"code","message","more_info","status"}`) but not the order of
//! its checks; the order here is the one its documentation examples and helper libraries suggest.

mod content;
mod lifecycle;
mod media;
pub(crate) mod resource;
mod sms;
mod validate;

use crate::graph::constant_time_eq;
use crate::Simulator;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use base64::Engine;
use openline_channels::twilio::{sign_twilio, sign_twilio_with, SignatureAlgorithm, SignatureSettings};
use serde_json::json;
use std::sync::Arc;

/// The REST API version of the Messages API, in every path and in `ApiVersion`.
pub const API_VERSION: &str = "2010-04-01";
/// The address prefix of WhatsApp senders and recipients at Twilio.
pub const WHATSAPP_PREFIX: &str = "whatsapp:";

pub fn routes() -> Router<Arc<Simulator>> {
    Router::new()
        .route(
            "/twilio/2010-04-01/Accounts/{account_sid}/Messages.json",
            post(create_message),
        )
        .merge(media::routes())
        .merge(content::routes())
}

/// A refusal in Twilio's shape: `{"code", "message", "more_info", "status"}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TwilioError {
    pub status: StatusCode,
    pub code: u32,
    pub message: String,
}

impl TwilioError {
    pub fn bad_request(code: u32, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code,
            message: message.into(),
        }
    }

    /// Wrong, missing or unreadable credentials, or an account other than the one authenticated.
    pub fn unauthenticated() -> Self {
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: 20003,
            message: "Authenticate".into(),
        }
    }
}

impl IntoResponse for TwilioError {
    fn into_response(self) -> Response {
        tracing::info!(
            code = self.code,
            status = self.status.as_u16(),
            "twilio request refused"
        );
        let body = json!({
            "code": self.code,
            "message": self.message,
            "more_info": format!("https://www.twilio.com/docs/errors/{}", self.code),
            "status": self.status.as_u16(),
        });
        let mut response = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Basic realm=\"Twilio API\""),
            );
        }
        response
    }
}

impl Simulator {
    /// Signs a Twilio webhook to `url` as Twilio would for this account: HMAC-SHA1 under the auth
    /// token, or, with a shared key configured, HMAC-SHA256 under its secret plus the
    /// `X-Twilio-Webhooks-Signature-Settings` value that says so.
    pub(crate) fn sign_twilio_webhook(&self, url: &str, params: &[(String, String)]) -> (String, Option<String>) {
        match &self.config.twilio_shared_key {
            None => (sign_twilio(&self.config.twilio_auth_token, url, params), None),
            Some(key) => {
                let algorithm = SignatureAlgorithm::HmacSha256;
                let settings = SignatureSettings {
                    key_sid: Some(key.sid.clone()),
                    algorithm,
                };
                (
                    sign_twilio_with(algorithm, &key.secret, url, params),
                    Some(settings.header_value()),
                )
            }
        }
    }
}

/// Refuses a request without `Authorization: Basic base64(account_sid:auth_token)` (401, 20003).
fn require_basic_auth(sim: &Simulator, headers: &HeaderMap) -> Result<(), TwilioError> {
    let credentials = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic ")))
        .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok())
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .ok_or_else(TwilioError::unauthenticated)?;
    let (user, password) = credentials.split_once(':').ok_or_else(TwilioError::unauthenticated)?;
    let user_ok = constant_time_eq(user.as_bytes(), sim.config.twilio_account_sid.as_bytes());
    let password_ok = constant_time_eq(password.as_bytes(), sim.config.twilio_auth_token.as_bytes());
    if user_ok && password_ok && !sim.config.twilio_auth_token.is_empty() {
        Ok(())
    } else {
        Err(TwilioError::unauthenticated())
    }
}

/// `POST /twilio/2010-04-01/Accounts/{AccountSid}/Messages.json`
///
/// Form parameters as Twilio takes them (`To`, `From` or `MessagingServiceSid`, `Body`, `MediaUrl`
/// repeated, `ContentSid`, `ContentVariables`, `StatusCallback`). Answers 201 with the Message
/// resource, `status: queued` (`accepted` through a Messaging Service).
async fn create_message(
    State(sim): State<Arc<Simulator>>,
    Path(account_sid): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = (|| {
        require_basic_auth(&sim, &headers)?;
        // Credentials are per account: they open no other account's resources.
        if account_sid != sim.config.twilio_account_sid {
            return Err(TwilioError::unauthenticated());
        }
        // A body that is not form data has no `To`, and is refused as such.
        let params: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
        let send = validate::validate(&sim.config, &params)?;
        Ok(sim.accept_twilio_send(send))
    })();
    match result {
        Ok(resource) => (StatusCode::CREATED, Json(resource)).into_response(),
        Err(e) => e.into_response(),
    }
}
