//! Twilio's Content API, for the one thing openline asks it: whether a Content template (`HX…`) is
//! approved by WhatsApp (`GET https://content.twilio.com/v1/Content/{Sid}/ApprovalRequests`, basic
//! auth with the account's credentials).
//!
//! The Content API lives on its own host. With Twilio's REST API base URL
//! (`https://api.twilio.com`) it is `https://content.twilio.com`; with any other base URL (the
//! simulator) it is that base URL + `/content`, where the simulator serves it.

use super::response::classify_failure;
use super::TwilioClient;
use crate::SendError;
use openline_domain::provider_errors::Retry;
use serde_json::Value;
use url::Url;

/// Twilio's Content API host.
pub const CONTENT_API: &str = "https://content.twilio.com";

/// Where WhatsApp's review of a Content template stands, as Twilio reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ContentApproval {
    /// WhatsApp approved it: it may be sent.
    Approved,
    /// Not (yet) approved: `unsubmitted`, `received`, `pending`, or anything Twilio adds.
    Pending(String),
    /// Rejected (or paused/disabled) by WhatsApp, with the reason Twilio gives.
    Refused { status: String, reason: Option<String> },
}

impl ContentApproval {
    /// Reads the `whatsapp` object of an ApprovalRequests answer.
    pub fn from_response(body: &Value) -> Self {
        let whatsapp = body.get("whatsapp");
        let status = whatsapp
            .and_then(|w| w.get("status"))
            .and_then(Value::as_str)
            .map(|s| s.trim().to_ascii_lowercase())
            .unwrap_or_default();
        match status.as_str() {
            "approved" => Self::Approved,
            "rejected" | "paused" | "disabled" => Self::Refused {
                reason: whatsapp
                    .and_then(|w| w.get("rejection_reason"))
                    .and_then(Value::as_str)
                    .map(str::trim)
                    .filter(|r| !r.is_empty())
                    .map(str::to_owned),
                status,
            },
            "" => Self::Pending("unsubmitted".into()),
            _ => Self::Pending(status),
        }
    }
}

impl TwilioClient {
    /// The Content API's base URL for this client (see the module documentation).
    pub fn content_base(&self) -> Result<Url, SendError> {
        let api = &self.inner.config.base_url;
        let parsed = Url::parse(api.trim()).map_err(|_| permanent("The Twilio base URL is not a URL."))?;
        let text = if parsed
            .host_str()
            .is_some_and(|h| h.eq_ignore_ascii_case("api.twilio.com"))
        {
            CONTENT_API.to_owned()
        } else {
            format!("{}/content", api.trim().trim_end_matches('/'))
        };
        Url::parse(&text).map_err(|_| permanent("The Twilio Content API URL is not a URL."))
    }

    /// `GET /v1/Content/{Sid}/ApprovalRequests`: WhatsApp's review of the Content template `sid`.
    pub async fn content_approval(&self, sid: &str) -> Result<ContentApproval, SendError> {
        let sid = sid.trim();
        if !(sid.len() == 34 && sid.starts_with("HX") && sid[2..].bytes().all(|b| b.is_ascii_hexdigit())) {
            return Err(permanent("A Content SID is HX followed by 32 hex digits."));
        }
        let mut url = self.content_base()?;
        url.path_segments_mut()
            .map_err(|_| permanent("The Twilio Content API URL cannot take a path."))?
            .pop_if_empty()
            .extend(["v1", "Content", sid, "ApprovalRequests"]);
        let account_sid = self.inner.config.account_sid.trim();
        let response = self
            .http
            .get(url)
            .basic_auth(account_sid, Some(&self.inner.config.auth_token))
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| SendError::transport(format!("Could not reach Twilio's Content API: {}", e.without_url())))?;
        let status = response.status().as_u16();
        let bytes = response.bytes().await.map_err(|e| {
            SendError::transport(format!(
                "Could not read Twilio's Content API answer: {}",
                e.without_url()
            ))
        })?;
        if !(200..300).contains(&status) {
            let error = classify_failure(status, None, &bytes);
            tracing::warn!(
                account_sid,
                http_status = status,
                code = error.code,
                "twilio content approval lookup refused"
            );
            return Err(error);
        }
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Ok(ContentApproval::from_response(&body))
    }
}

fn permanent(message: &str) -> SendError {
    SendError {
        retry: Retry::Permanent,
        code: None,
        http_status: None,
        message: message.to_owned(),
        retry_after: None,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn twilios_approval_statuses_are_read() {
        // The example of Twilio's spec (twilio_content_v1.json, getApproval).
        let spec = json!({"sid": "HXaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "account_sid": "ACaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "whatsapp": {"type": "whatsapp", "name": "tree_fiddy", "category": "UTILITY", "content_type": "twilio/location",
                "status": "approved", "rejection_reason": "", "allow_category_change": true}});
        assert_eq!(ContentApproval::from_response(&spec), ContentApproval::Approved);
        let rejected = json!({"whatsapp": {"status": "rejected", "rejection_reason": "Variables at the start"}});
        assert_eq!(
            ContentApproval::from_response(&rejected),
            ContentApproval::Refused {
                status: "rejected".into(),
                reason: Some("Variables at the start".into())
            }
        );
        assert_eq!(
            ContentApproval::from_response(&json!({"whatsapp": {"status": "pending"}})),
            ContentApproval::Pending("pending".into())
        );
        assert_eq!(
            ContentApproval::from_response(&json!({})),
            ContentApproval::Pending("unsubmitted".into())
        );
    }
}
