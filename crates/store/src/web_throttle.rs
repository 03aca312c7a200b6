//! Failed sign-ins, counted per key (a digest of e-mail and client address), so the web app can
//! slow repeated guesses down. Kept in the database so every node sees the same count.

use crate::sql::Conn;
use crate::{params, StoreError};

/// How many sign-ins in a row failed for `key`, and when the last one did.
pub fn failures(c: &mut dyn Conn, key: &str) -> Result<Option<(i64, i64)>, StoreError> {
    match c.query_opt(
        "select failures, last_failure_at from login_failures where key = ?",
        params![key],
    )? {
        Some(r) => Ok(Some((r.i64(0)?, r.i64(1)?))),
        None => Ok(None),
    }
}

/// Counts one more failure for `key`; returns the new count.
pub fn record_failure(c: &mut dyn Conn, key: &str, now: i64) -> Result<i64, StoreError> {
    c.execute(
        "insert into login_failures (key, failures, last_failure_at) values (?, 1, ?)
         on conflict (key) do update set failures = login_failures.failures + 1, last_failure_at = excluded.last_failure_at",
        params![key, now],
    )?;
    Ok(failures(c, key)?.map_or(1, |(n, _)| n))
}

/// Forgets the failures for `key` (after a successful sign-in).
pub fn clear(c: &mut dyn Conn, key: &str) -> Result<(), StoreError> {
    c.execute("delete from login_failures where key = ?", params![key])?;
    Ok(())
}
