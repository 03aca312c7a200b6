//! What can go wrong in the store, in terms the server can map to an answer: not found, a uniqueness
//! conflict, overload (queues full: answer 503 with Retry-After), or a database fault (logged, 500).

use thiserror::Error;

#[derive(Debug, Clone, Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A unique constraint refused the write (e.g. an e-mail already in use).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The write or read queue is full; the caller should retry later.
    #[error("the database is busy; retry shortly")]
    Overloaded,
    /// The store has shut down.
    #[error("the database is shutting down")]
    Closed,
    /// A row did not have the shape the code expects (a bug or a bad migration).
    #[error("decode: {0}")]
    Decode(String),
    /// Any other database error; the text is for logs only.
    #[error("database: {0}")]
    Db(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        if let rusqlite::Error::SqliteFailure(f, msg) = &e {
            if f.code == rusqlite::ErrorCode::ConstraintViolation
                && (f.extended_code == 2067 || f.extended_code == 1555)
            {
                return StoreError::Conflict(msg.clone().unwrap_or_default());
            }
        }
        StoreError::Db(e.to_string())
    }
}

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> Self {
        if let Some(db) = e.as_db_error() {
            if db.code() == &postgres::error::SqlState::UNIQUE_VIOLATION {
                return StoreError::Conflict(db.constraint().unwrap_or_default().to_owned());
            }
            return StoreError::Db(format!("{}: {}", db.code().code(), db.message()));
        }
        StoreError::Db(e.to_string())
    }
}
