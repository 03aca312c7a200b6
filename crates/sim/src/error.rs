//! Errors of the simulator's own API (the phone API), as openline shapes its errors:
//! `{"error":"snake_case_code","message":"A sentence."}` with a fitting HTTP status.
//! (Graph API errors have Meta's shape instead; see `graph::error`.)

use axum::extract::rejection::JsonRejection;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::Serialize;
use utoipa::ToSchema;

/// A refusal from the phone API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct SimError {
    pub status: StatusCode,
    /// Stable, machine-readable, snake_case.
    pub code: &'static str,
    /// A sentence a person can act on.
    pub message: String,
}

/// The JSON body of a [`SimError`].
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    #[schema(example = "invalid_phone_number")]
    pub error: String,
    pub message: String,
}

impl SimError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn not_found(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }
}

impl IntoResponse for SimError {
    fn into_response(self) -> Response {
        tracing::info!(
            code = self.code,
            status = self.status.as_u16(),
            "phone api request refused"
        );
        (
            self.status,
            Json(ErrorBody {
                error: self.code.to_string(),
                message: self.message,
            }),
        )
            .into_response()
    }
}

/// `Json<T>` whose rejection is a [`SimError`], so malformed JSON gets the same error shape.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = SimError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => Err(json_error(&rejection)),
        }
    }
}

fn json_error(rejection: &JsonRejection) -> SimError {
    let (code, what) = match rejection {
        JsonRejection::MissingJsonContentType(_) => (
            "unsupported_media_type",
            "Send a JSON body with Content-Type: application/json.",
        ),
        JsonRejection::JsonSyntaxError(_) => ("invalid_json", "The request body is not valid JSON."),
        JsonRejection::JsonDataError(_) => ("invalid_request", "The request body does not have the expected fields"),
        _ => ("invalid_request", "The request body could not be read."),
    };
    let message = match rejection {
        // serde's message names the field and position, never the values sent.
        JsonRejection::JsonDataError(e) => format!("{what}: {}.", e.body_text()),
        _ => what.to_string(),
    };
    let status = match rejection {
        JsonRejection::MissingJsonContentType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        _ => StatusCode::BAD_REQUEST,
    };
    SimError::new(status, code, message)
}
