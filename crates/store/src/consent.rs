//! The consent ledger: append-only, one row per event with its evidence (who asked, the opt-in
//! message and the reply with their provider ids). Nothing here updates or deletes a row; the current
//! state is derived from the events by `openline_domain::consent`.

use crate::orgs::Scope;
use crate::sql::{Conn, Row, Val};
use crate::{params, StoreError};
use serde::Serialize;
use utoipa::ToSchema;

/// One ledger entry, as the attestation record shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConsentRecord {
    pub id: String,
    pub org_id: String,
    pub contact_id: String,
    /// What happened: requested, accepted, rejected, opted_out, opted_in, undeliverable, and for
    /// marketing messages marketing_stopped, marketing_resumed.
    pub kind: String,
    /// The user who asked (for requests).
    pub actor_user_id: Option<String>,
    /// openline's message that carried the request or the reply.
    pub message_id: Option<String>,
    /// The provider's id for that message.
    pub provider_message_id: Option<String>,
    /// Further evidence: the reply's text or button payload, the provider's error, the template used.
    #[schema(value_type = Object)]
    pub evidence: serde_json::Value,
    pub at: i64,
}

const COLS: &str = "id, org_id, contact_id, kind, actor_user_id, message_id, provider_message_id, evidence, at";

fn from_row(r: &Row) -> Result<ConsentRecord, StoreError> {
    Ok(ConsentRecord {
        id: r.string(0)?,
        org_id: r.string(1)?,
        contact_id: r.string(2)?,
        kind: r.string(3)?,
        actor_user_id: r.opt_string(4)?,
        message_id: r.opt_string(5)?,
        provider_message_id: r.opt_string(6)?,
        evidence: r.opt_json(7)?.unwrap_or(serde_json::Value::Null),
        at: r.i64(8)?,
    })
}

pub struct NewConsentEvent<'a> {
    pub org_id: &'a str,
    pub contact_id: &'a str,
    pub kind: &'a str,
    pub actor_user_id: Option<&'a str>,
    pub message_id: Option<&'a str>,
    pub provider_message_id: Option<&'a str>,
    pub evidence: &'a serde_json::Value,
    pub at: i64,
}

pub fn append(c: &mut dyn Conn, e: &NewConsentEvent<'_>) -> Result<ConsentRecord, StoreError> {
    insert(c, e, "", e.at)?.ok_or_else(|| StoreError::Decode("a consent event was not inserted".into()))
}

/// Appends an entry unless the same one is already there, for events a provider may deliver more
/// than once (marketing preferences: one entry per organization, contact, kind and moment, see
/// migration 0015). `None` when it was recorded before: nothing is written or journaled again.
/// Safe against two nodes receiving the same webhook at once (the unique index decides). `e.at` is
/// when it happened (the provider's time, which orders the ledger); the journal entry is dated
/// `now`, when openline learned of it, like every other entry of the archive.
pub fn append_once(c: &mut dyn Conn, e: &NewConsentEvent<'_>, now: i64) -> Result<Option<ConsentRecord>, StoreError> {
    insert(c, e, " on conflict do nothing", now)
}

/// Inserts the entry (`on_conflict`: what to do when the unique index already holds it) and
/// journals it dated `journaled_at`; `None` when nothing was inserted.
fn insert(
    c: &mut dyn Conn,
    e: &NewConsentEvent<'_>,
    on_conflict: &str,
    journaled_at: i64,
) -> Result<Option<ConsentRecord>, StoreError> {
    let id = openline_domain::ids::new_id("cns");
    let inserted = c.execute(
        &format!("insert into consent_events ({COLS}) values (?, ?, ?, ?, ?, ?, ?, ?, ?){on_conflict}"),
        params![
            &id,
            e.org_id,
            e.contact_id,
            e.kind,
            e.actor_user_id,
            e.message_id,
            e.provider_message_id,
            e.evidence.to_string(),
            e.at
        ],
    )?;
    if inserted == 0 {
        return Ok(None);
    }
    let record = from_row(&c.query_one(&format!("select {COLS} from consent_events where id = ?"), params![&id])?)?;
    crate::journal::record(
        c,
        e.org_id,
        &format!("consent.{}", e.kind),
        &record.id,
        &record,
        journaled_at,
    )?;
    Ok(Some(record))
}

/// The statement [`events_for`] runs, for [`Conn::prefetch`].
pub fn events_for_read(org_id: &str, contact_id: &str) -> (String, Vec<Val>) {
    (
        format!("select {COLS} from consent_events where org_id = ? and contact_id = ?"),
        params![org_id, contact_id].to_vec(),
    )
}

/// The contact's ledger, oldest first (unscoped: for the server's own decisions).
pub fn events_for(c: &mut dyn Conn, org_id: &str, contact_id: &str) -> Result<Vec<ConsentRecord>, StoreError> {
    // In order of time, then id (byte order). Sorted here rather than by the database: the index
    // gives the rows by time already, and sorting a contact's few events here is cheaper than the
    // temporary b-tree SQLite builds for the `id` tie-break, on every send.
    let (sql, vals) = events_for_read(org_id, contact_id);
    let mut events = c
        .query(&sql, &vals)?
        .iter()
        .map(from_row)
        .collect::<Result<Vec<_>, _>>()?;
    events.sort_by(|a, b| (a.at, a.id.as_bytes()).cmp(&(b.at, b.id.as_bytes())));
    Ok(events)
}

/// The contact's ledger for a caller who may see the contact (the attestation record).
pub fn history(c: &mut dyn Conn, scope: &Scope, contact_id: &str) -> Result<Vec<ConsentRecord>, StoreError> {
    let (ph, mut vals) = scope.in_list();
    vals.insert(0, Val::from(contact_id));
    c.query(
        &format!("select {COLS} from consent_events where contact_id = ? and org_id in ({ph}) order by at, id"),
        &vals,
    )?
    .iter()
    .map(from_row)
    .collect()
}

/// The request a provider message carried (to link a reply or a delivery failure to it).
pub fn request_for_message(c: &mut dyn Conn, message_id: &str) -> Result<Option<ConsentRecord>, StoreError> {
    c.query_opt(
        &format!(
            "select {COLS} from consent_events where message_id = ? and kind = 'requested' order by at desc limit 1"
        ),
        params![message_id],
    )?
    .as_ref()
    .map(from_row)
    .transpose()
}
