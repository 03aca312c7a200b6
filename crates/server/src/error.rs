//! One error type for every answer openline gives: an HTTP status, a stable snake_case code clients
//! branch on, and a message a person can act on: `{"error":"window_closed","message":"…"}`.
//! Internal causes never reach the client; they ride in a response extension to the `log_errors`
//! middleware, which logs them inside the request's span.

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::{header, request::Parts, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use openline_domain::DomainError;
use openline_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug)]
pub struct AppError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// Seconds after which a retry may succeed (503 overload).
    pub retry_after: Option<u64>,
    /// The real cause, for the log only.
    pub internal: Option<String>,
}

/// The error body every endpoint returns.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    /// Stable, machine-readable code, e.g. `invalid_json`, `not_found`, `window_closed`.
    pub error: String,
    /// What went wrong and what to do about it.
    pub message: String,
}

/// Carries an internal cause from `IntoResponse` to the logging middleware.
#[derive(Clone, Debug)]
pub struct InternalCause(pub String);

impl AppError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
            internal: None,
        }
    }
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }
    pub fn not_found(what: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("No such {what}, or you may not see it."),
        )
    }
    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "Sign in first, or send a valid API token as `Authorization: Bearer …`.",
        )
    }
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        Self {
            internal: Some(cause.to_string()),
            ..Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
                "Something went wrong on our side; it has been logged.",
            )
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.code.to_owned(),
            message: self.message,
        };
        let mut res = (self.status, axum::Json(body)).into_response();
        if let Some(secs) = self.retry_after {
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                res.headers_mut().insert(header::RETRY_AFTER, v);
            }
        }
        if let Some(cause) = self.internal {
            res.extensions_mut().insert(InternalCause(cause));
        }
        res
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => AppError::not_found("item"),
            StoreError::Conflict(_) => AppError::new(
                StatusCode::CONFLICT,
                "conflict",
                "This already exists (a unique value is already in use).",
            ),
            StoreError::Overloaded | StoreError::Closed => AppError {
                retry_after: Some(1),
                ..AppError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "overloaded",
                    "openline is busy; retry in a moment.",
                )
            },
            other => AppError::internal(other),
        }
    }
}

impl From<DomainError> for AppError {
    fn from(e: DomainError) -> Self {
        let status = match e.code {
            "forbidden_role" | "whatsapp_disabled" | "whatsapp_disabled_for_user" => StatusCode::FORBIDDEN,
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        AppError::new(status, e.code, e.message)
    }
}

/// `Json<T>` whose rejection is an `AppError`, so malformed JSON gets the same shape as every error.
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(ApiJson(v)),
            Err(JsonRejection::MissingJsonContentType(_)) => Err(AppError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Send the body as JSON with `Content-Type: application/json`.",
            )),
            Err(JsonRejection::JsonSyntaxError(e)) => Err(AppError::bad_request(
                "invalid_json",
                format!("The body is not valid JSON: {}", e.body_text()),
            )),
            Err(JsonRejection::JsonDataError(e)) => Err(AppError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_body",
                format!("The JSON does not have the expected fields: {}", e.body_text()),
            )),
            Err(other) => Err(AppError::bad_request("invalid_body", other.body_text())),
        }
    }
}

/// `Query<T>` whose rejection is an `AppError`.
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Query(v)| ApiQuery(v))
            .map_err(|e: QueryRejection| AppError::bad_request("invalid_query", e.body_text()))
    }
}

/// Logs the internal cause of 5xx answers inside the request span; the client saw only a generic text.
pub async fn log_errors(req: Request, next: axum::middleware::Next) -> Response {
    let res = next.run(req).await;
    if let Some(InternalCause(cause)) = res.extensions().get::<InternalCause>() {
        tracing::error!(status = res.status().as_u16(), cause = %cause, "request failed");
    }
    res
}

pub async fn not_found_fallback() -> AppError {
    AppError::new(
        StatusCode::NOT_FOUND,
        "no_route",
        "There is no such endpoint. The API is described at /api/openapi.json.",
    )
}
