//! Graph API errors exactly as Meta shapes them:
//! `{"error":{"message","type":"OAuthException","code","error_data":{"messaging_product","details"},
//! "error_subcode"?,"fbtrace_id"}}`, with the HTTP status Meta uses for each.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// A refusal from the fake Graph API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphError {
    pub status: StatusCode,
    pub code: i64,
    pub subcode: Option<i64>,
    pub message: String,
    /// `error_data.details`: what exactly was wrong.
    pub details: Option<String>,
}

impl GraphError {
    /// 401, code 190: the access token is missing or wrong.
    pub fn invalid_token(missing: bool) -> Self {
        let message = if missing {
            "An active access token must be used to query information about the current user."
        } else {
            "Invalid OAuth access token - Cannot parse access token"
        };
        Self {
            status: StatusCode::UNAUTHORIZED,
            code: 190,
            subcode: None,
            message: message.into(),
            details: None,
        }
    }

    /// 400, code 100, subcode 33: no such object (an unknown phone number or media id).
    pub fn unknown_object(id: &str, verb: &str) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: 100,
            subcode: Some(33),
            message: format!(
                "Unsupported {verb} request. Object with ID '{id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api"
            ),
            details: None,
        }
    }

    /// 400, code 100: the request is malformed or a top-level parameter is wrong.
    pub fn invalid_parameter(details: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: 100,
            subcode: None,
            message: "(#100) Invalid parameter".into(),
            details: Some(details.into()),
        }
    }

    /// 400, code 131008: a required parameter is missing.
    pub fn missing(parameter: &str) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: 131008,
            subcode: None,
            message: "(#131008) Required parameter is missing".into(),
            details: Some(format!("The parameter {parameter} is required.")),
        }
    }

    /// 400, code 131009: a parameter's value is not valid.
    pub fn invalid_value(details: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: 131009,
            subcode: None,
            message: "(#131009) Parameter value is not valid".into(),
            details: Some(details.into()),
        }
    }

    /// 400, code 130429: the business number's throughput is exhausted for this second.
    pub fn rate_limited() -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: 130429,
            subcode: None,
            message: "(#130429) Rate limit hit".into(),
            details: Some("Cloud API message throughput has been reached.".into()),
        }
    }
}

impl IntoResponse for GraphError {
    fn into_response(self) -> Response {
        let mut error = json!({
            "message": self.message,
            "type": "OAuthException",
            "code": self.code,
        });
        if let Some(details) = &self.details {
            error["error_data"] = json!({ "messaging_product": "whatsapp", "details": details });
        }
        if let Some(subcode) = self.subcode {
            error["error_subcode"] = json!(subcode);
        }
        error["fbtrace_id"] = json!(crate::ids::fbtrace_id());
        tracing::info!(code = self.code, status = self.status.as_u16(), "graph request refused");
        let mut response = (self.status, Json(json!({ "error": error }))).into_response();
        if self.code == 190 {
            // Graph answers bad tokens with this header too.
            response.headers_mut().insert(
                "WWW-Authenticate",
                axum::http::HeaderValue::from_static("OAuth \"Facebook Platform\" \"invalid_token\""),
            );
        }
        response
    }
}
