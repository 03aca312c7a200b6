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
    /// `error_user_title` and `error_user_msg`, which Meta adds to template management errors.
    /// Boxed to keep the error small.
    pub user: Option<Box<(String, String)>>,
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
            user: None,
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
            user: None,
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
            user: None,
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
            user: None,
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
            user: None,
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
            user: None,
        }
    }

    /// 400, code 132001: no approved template with this name in this language.
    pub fn template_missing(name: &str, language: &str) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: 132001,
            subcode: None,
            message: "(#132001) Template name does not exist in the translation".into(),
            details: Some(format!("template name ({name}) does not exist in {language}")),
            user: None,
        }
    }

    /// 400, code 132015: the template is paused for low quality.
    pub fn template_paused() -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: 132015,
            subcode: None,
            message: "(#132015) Template is Paused".into(),
            details: Some("Template is paused due to low quality so it cannot be sent in a template message.".into()),
            user: None,
        }
    }

    /// 400, code 132016: the template was paused too often and is disabled for good.
    pub fn template_disabled() -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: 132016,
            subcode: None,
            message: "(#132016) Template is disabled".into(),
            details: Some(
                "Template has been paused too many times due to low quality and is now permanently disabled.".into(),
            ),
            user: None,
        }
    }

    /// 400, code 132000: a component got a different number of parameters than it has placeholders.
    pub fn parameter_count(component: &str, given: usize, expected: usize) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: 132000,
            subcode: None,
            message: "(#132000) Number of parameters does not match the expected number of params".into(),
            details: Some(format!(
                "{component}: number of localizable_params ({given}) does not match the expected number of params ({expected})"
            )),
            user: None,
        }
    }

    /// 400, code 100: a template submission Meta refuses, with the title and sentence Meta shows.
    pub fn template_refused(subcode: Option<i64>, title: &str, message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            code: 100,
            subcode,
            message: "Invalid parameter".into(),
            details: None,
            user: Some(Box::new((title.to_string(), message.into()))),
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
        if let Some((title, message)) = self.user.as_deref() {
            error["is_transient"] = json!(false);
            error["error_user_title"] = json!(title);
            error["error_user_msg"] = json!(message);
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
