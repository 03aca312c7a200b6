//! Errors raised by the pure rules. Each carries a stable snake_case code that the API returns as-is,
//! so clients can branch on it; the message is written for the person who has to act on it.

use thiserror::Error;

/// A rule said no. `code` is stable (clients branch on it); `message` explains what to do.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{code}: {message}")]
pub struct DomainError {
    /// Stable, machine-readable, snake_case.
    pub code: &'static str,
    /// A sentence a person can act on.
    pub message: String,
}

impl DomainError {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}
