//! Webhook events that are not messages or statuses (template, quality and account updates, calls,
//! fields openline does not model yet), kept whole: nothing a provider tells us is dropped.

use crate::sql::Conn;
use crate::{params, StoreError};

pub fn insert(
    c: &mut dyn Conn,
    provider: &str,
    field: &str,
    waba_id: Option<&str>,
    phone_number_id: Option<&str>,
    raw: &serde_json::Value,
    now: i64,
) -> Result<String, StoreError> {
    let id = openline_domain::ids::new_id("pev");
    c.execute(
        "insert into provider_events (id, provider, field, waba_id, phone_number_id, raw, received_at) values (?, ?, ?, ?, ?, ?, ?)",
        params![&id, provider, field, waba_id, phone_number_id, raw.to_string(), now],
    )?;
    Ok(id)
}

pub fn count(c: &mut dyn Conn, field: &str) -> Result<i64, StoreError> {
    c.query_one("select count(*) from provider_events where field = ?", params![field])?
        .i64(0)
}
