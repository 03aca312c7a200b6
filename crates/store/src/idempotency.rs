//! Idempotency keys: a client that retries a send with the same `Idempotency-Key` gets the first
//! answer again instead of a second message. The key and the answer are written in the same
//! transaction as the message, so there is no window where one exists without the other.

use crate::sql::Conn;
use crate::{params, StoreError};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResponse {
    pub request_hash: String,
    pub status: u16,
    pub body: String,
}

/// The statement [`find`] runs, for [`Conn::prefetch`].
pub fn find_read(user_id: &str, key: &str) -> (&'static str, Vec<crate::Val>) {
    (
        "select request_hash, response_status, response_body from idempotency_keys where user_id = ? and key = ?",
        params![user_id, key].to_vec(),
    )
}

pub fn find(c: &mut dyn Conn, user_id: &str, key: &str) -> Result<Option<StoredResponse>, StoreError> {
    let (sql, vals) = find_read(user_id, key);
    c.query_opt(sql, &vals)?
        .map(|r| {
            Ok(StoredResponse {
                request_hash: r.string(0)?,
                status: u16::try_from(r.i64(1)?).unwrap_or(200),
                body: r.string(2)?,
            })
        })
        .transpose()
}

pub fn save(c: &mut dyn Conn, user_id: &str, key: &str, response: &StoredResponse, now: i64) -> Result<(), StoreError> {
    c.execute(
        "insert into idempotency_keys (user_id, key, request_hash, response_status, response_body, created_at) values (?, ?, ?, ?, ?, ?)",
        params![user_id, key, &response.request_hash, i64::from(response.status), &response.body, now],
    )?;
    Ok(())
}
