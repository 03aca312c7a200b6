//! The archive: an append-only journal of everything that happened, one SHA-256 hash chain per
//! organization, written in the same transaction as the change it records (so an event is archived
//! exactly when it became true).
//!
//! Each entry stores its payload as canonical JSON (keys sorted) and
//! `hash = SHA-256(prev_hash | seq | org_id | at | kind | subject_id | payload)`. `verify` walks a chain
//! and reports the first entry that was edited (hash mismatch), deleted or inserted (a gap or an
//! extra in the sequence, or a broken link), or reordered (a broken link). Nothing in openline
//! updates or deletes an entry, except a retention purge (`retention.rs`), which removes only the
//! oldest expired entries and appends an `archive.purged` entry naming the last one it removed, so
//! `verify` can start from the oldest remaining entry.
//!
//! Administrative entries carry their `actor` (a user, the CLI or the system: `record_by`). When an
//! organization's `recording` setting is off, message content (text, media references, template
//! parameters, DLP originals) is left out of its entries; consent evidence is always kept. The
//! resolved switch lives on the chain head, which `append` reads anyway, so it costs nothing extra.

use crate::sql::{Backend, Conn, Val};
use crate::{params, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

/// The `prev_hash` of every chain's first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// One archived event.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct JournalEntry {
    pub org_id: String,
    pub seq: i64,
    pub at: i64,
    /// e.g. `message.received`, `message.sent`, `message.status`, `consent.accepted`, `template.created`.
    pub kind: String,
    pub subject_id: Option<String>,
    #[schema(value_type = Object)]
    pub payload: serde_json::Value,
    pub prev_hash: String,
    pub hash: String,
}

fn entry_hash(
    prev_hash: &str,
    seq: i64,
    org_id: &str,
    at: i64,
    kind: &str,
    subject_id: Option<&str>,
    payload: &str,
) -> String {
    let mut h = Sha256::new();
    for part in [
        prev_hash,
        &seq.to_string(),
        org_id,
        &at.to_string(),
        kind,
        subject_id.unwrap_or(""),
        payload,
    ] {
        // Length-prefixed, so no two different entries encode to the same bytes.
        h.update((part.len() as u64).to_be_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Who made an administrative change: a signed-in user (by API or web), the `openline` command
/// line, or openline itself (a worker, the demo seed, a provider's webhook).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Actor {
    User { id: String, email: String },
    Cli,
    System,
}

impl Actor {
    pub fn user(id: impl Into<String>, email: impl Into<String>) -> Self {
        Actor::User {
            id: id.into(),
            email: email.into(),
        }
    }
}

/// Entry kinds that carry message content, dropped when recording is off.
fn strip_content(kind: &str, payload: &serde_json::Value) -> Option<serde_json::Value> {
    let mut p = payload.clone();
    let obj = p.as_object_mut()?;
    let mut stripped = false;
    if kind.starts_with("message.") {
        if let Some(m) = obj.get_mut("message").and_then(|m| m.as_object_mut()) {
            for key in ["body", "media", "raw"] {
                if m.get(key).is_some_and(|v| !v.is_null()) {
                    m.insert(key.to_owned(), serde_json::Value::Null);
                    stripped = true;
                }
            }
            // A template's name and language say what was sent; its parameters are content.
            if let Some(t) = m.get_mut("template").and_then(|t| t.as_object_mut()) {
                t.retain(|k, _| k == "name" || k == "language");
                stripped = true;
            }
        }
    }
    if kind == "dlp.verdict" && obj.remove("original_text").is_some() {
        stripped = true;
    }
    if !stripped {
        return None;
    }
    obj.insert("content_recorded".to_owned(), serde_json::Value::Bool(false));
    Some(p)
}

/// The heads of the chains appended to in the current transaction, not yet written back:
/// organization → (seq, hash, recording). Updating the one `journal_heads` row per entry cost two
/// statements each and, on PostgreSQL, a new row version each (the row bloated to megabytes within
/// seconds of ingest); the head is now read (and on PostgreSQL locked) once per transaction and
/// written once, before commit.
#[derive(Debug, Default, Clone)]
pub struct PendingHeads(std::collections::HashMap<String, (i64, String, bool)>);

/// Writes the pending heads back to `journal_heads` and forgets them. The writer calls this before
/// every commit; code that reads or writes `journal_heads` inside a write transaction calls it
/// first. (Once written, a later append reads the row again; on PostgreSQL the row stays locked
/// until the transaction ends.)
pub fn flush_heads(c: &mut dyn Conn) -> Result<(), StoreError> {
    let pending = std::mem::take(c.pending_heads());
    for (org_id, (seq, hash, _)) in pending.0 {
        c.execute_later(
            "update journal_heads set seq = ?, hash = ? where org_id = ?",
            vec![Val::I64(seq), Val::Text(hash), Val::Text(org_id)],
        )?;
    }
    Ok(())
}

/// Appends an event to the organization's chain, inside the caller's transaction.
pub fn append(
    c: &mut dyn Conn,
    org_id: &str,
    kind: &str,
    subject_id: Option<&str>,
    payload: &serde_json::Value,
    at: i64,
) -> Result<i64, StoreError> {
    append_many(
        c,
        org_id,
        &[NewEntry {
            kind,
            subject_id,
            payload,
            at,
        }],
    )
}

/// One event for [`append_many`].
#[derive(Debug, Clone, Copy)]
pub struct NewEntry<'a> {
    pub kind: &'a str,
    pub subject_id: Option<&'a str>,
    pub payload: &'a serde_json::Value,
    pub at: i64,
}

/// The most entries one `insert` statement carries.
const ROWS_PER_INSERT: usize = 64;

/// Appends events to the organization's chain in order, with as few statements as their number
/// allows (one `insert` per [`ROWS_PER_INSERT`] entries): a batch of webhooks archives its messages
/// together. Returns the last entry's sequence number (the head's, when `entries` is empty).
pub fn append_many(c: &mut dyn Conn, org_id: &str, entries: &[NewEntry<'_>]) -> Result<i64, StoreError> {
    let (mut seq, mut prev_hash, recording) = match c.pending_heads().0.get(org_id) {
        Some(head) => head.clone(),
        None => read_head(c, org_id)?,
    };
    let mut rows: Vec<Val> = Vec::with_capacity(entries.len().min(ROWS_PER_INSERT) * 8);
    let mut in_statement = 0;
    for e in entries {
        let kept = if recording {
            None
        } else {
            strip_content(e.kind, e.payload)
        };
        // serde_json's map keeps keys sorted, so this text is canonical.
        let payload = serde_json::to_string(kept.as_ref().unwrap_or(e.payload))
            .map_err(|err| StoreError::Decode(err.to_string()))?;
        seq += 1;
        let hash = entry_hash(&prev_hash, seq, org_id, e.at, e.kind, e.subject_id, &payload);
        rows.extend([
            Val::from(org_id),
            Val::I64(seq),
            Val::I64(e.at),
            Val::from(e.kind),
            Val::from(e.subject_id),
            Val::Text(payload),
            Val::Text(std::mem::replace(&mut prev_hash, hash.clone())),
            Val::Text(hash),
        ]);
        in_statement += 1;
        if in_statement == ROWS_PER_INSERT {
            insert_entries(c, in_statement, std::mem::take(&mut rows))?;
            in_statement = 0;
        }
    }
    if in_statement > 0 {
        insert_entries(c, in_statement, rows)?;
    }
    c.pending_heads()
        .0
        .insert(org_id.to_owned(), (seq, prev_hash, recording));
    Ok(seq)
}

/// Appends each entry to its organization's chain (`(org_id, entry)` pairs; each organization's in
/// the order given): one [`append_many`] per organization, the organizations in sorted order, the
/// order in which every transaction takes their chain heads (locked on PostgreSQL).
pub fn append_by_org(c: &mut dyn Conn, entries: &[(&str, NewEntry<'_>)]) -> Result<(), StoreError> {
    let mut orgs: Vec<&str> = entries.iter().map(|(org, _)| *org).collect();
    orgs.sort_unstable();
    orgs.dedup();
    for org in orgs {
        let chain: Vec<NewEntry<'_>> = entries.iter().filter(|(o, _)| *o == org).map(|(_, e)| *e).collect();
        append_many(c, org, &chain)?;
    }
    Ok(())
}

fn insert_entries(c: &mut dyn Conn, n: usize, rows: Vec<Val>) -> Result<(), StoreError> {
    c.execute_later(
        &format!(
            "insert into journal (org_id, seq, at, kind, subject_id, payload, prev_hash, hash) values {}",
            crate::sql::value_rows(n, "(?, ?, ?, ?, ?, ?, ?, ?)")
        ),
        rows,
    )?;
    Ok(())
}

/// The chain's head as stored (locked on PostgreSQL until the transaction ends), created if the
/// organization has no chain yet.
fn read_head(c: &mut dyn Conn, org_id: &str) -> Result<(i64, String, bool), StoreError> {
    let lock = match c.backend() {
        Backend::Postgres => " for update",
        Backend::Sqlite => "",
    };
    let select = format!("select seq, hash, recording from journal_heads where org_id = ?{lock}");
    // The head exists after an organization's first entry: read it first, create it only if missing.
    let head = match c.query_opt(&select, params![org_id])? {
        Some(head) => head,
        None => {
            c.execute(
                "insert into journal_heads (org_id, seq, hash) values (?, 0, ?) on conflict (org_id) do nothing",
                params![org_id, GENESIS],
            )?;
            c.query_one(&select, params![org_id])?
        }
    };
    Ok((head.i64(0)?, head.string(1)?, head.bool(2)?))
}

/// Archives a serialisable record (a message, a consent event, …).
pub fn record<T: Serialize>(
    c: &mut dyn Conn,
    org_id: &str,
    kind: &str,
    subject_id: &str,
    value: &T,
    at: i64,
) -> Result<i64, StoreError> {
    let payload = serde_json::to_value(value).map_err(|e| StoreError::Decode(e.to_string()))?;
    append(c, org_id, kind, Some(subject_id), &payload, at)
}

/// Archives an administrative change with who made it: the record's fields plus `actor` (a record
/// that is not a JSON object is kept under `record`).
pub fn record_by<T: Serialize>(
    c: &mut dyn Conn,
    org_id: &str,
    kind: &str,
    subject_id: &str,
    value: &T,
    actor: &Actor,
    at: i64,
) -> Result<i64, StoreError> {
    let mut payload = serde_json::to_value(value).map_err(|e| StoreError::Decode(e.to_string()))?;
    let actor = serde_json::to_value(actor).map_err(|e| StoreError::Decode(e.to_string()))?;
    match payload.as_object_mut() {
        Some(obj) => {
            obj.insert("actor".to_owned(), actor);
        }
        None => payload = serde_json::json!({"record": payload, "actor": actor}),
    }
    append(c, org_id, kind, Some(subject_id), &payload, at)
}

/// Whether message content is archived for an organization: its `recording` setting, else the
/// nearest ancestor's; on when nobody set one.
pub fn recording_enabled(c: &mut dyn Conn, org_id: &str) -> Result<bool, StoreError> {
    for settings in crate::orgs::ancestor_settings(c, org_id)? {
        if let Some(on) = settings.get("recording").and_then(|v| v.as_bool()) {
            return Ok(on);
        }
    }
    Ok(true)
}

/// Re-resolves the recording switch of an organization and everything below it onto their chain
/// heads (after the setting changed, or when an organization is created below one with recording
/// off).
pub fn refresh_recording(c: &mut dyn Conn, org_id: &str) -> Result<(), StoreError> {
    flush_heads(c)?;
    for org in crate::orgs::subtree(c, org_id)? {
        let on = recording_enabled(c, &org)?;
        c.execute(
            "insert into journal_heads (org_id, seq, hash, recording) values (?, 0, ?, ?)
             on conflict (org_id) do update set recording = excluded.recording",
            params![&org, GENESIS, on as i64],
        )?;
    }
    Ok(())
}

/// What `verify` found for one chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ChainReport {
    pub org_id: String,
    pub entries: i64,
    /// The oldest entry still held (entries before it were purged under the retention policy, as
    /// the chain's `archive.purged` entry attests); 1 when nothing was purged.
    pub first_seq: i64,
    /// The first problem, if any: which entry and what is wrong with it.
    pub problem: Option<ChainProblem>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ChainProblem {
    pub seq: i64,
    pub what: String,
}

/// Walks every chain (or one organization's) and reports the first broken entry of each.
pub fn verify(c: &mut dyn Conn, org_id: Option<&str>) -> Result<Vec<ChainReport>, StoreError> {
    flush_heads(c)?;
    let orgs: Vec<String> = match org_id {
        Some(o) => vec![o.to_owned()],
        None => c
            .query(
                "select org_id from journal_heads union select distinct org_id from journal order by 1",
                &[],
            )?
            .iter()
            .map(|r| r.string(0))
            .collect::<Result<_, _>>()?,
    };
    let mut out = Vec::with_capacity(orgs.len());
    for org in orgs {
        out.push(verify_chain(c, &org)?);
    }
    Ok(out)
}

/// Entries read per query while verifying, so a chain of any length is checked in bounded memory.
const VERIFY_PAGE: i64 = 2000;

fn verify_page(
    c: &mut dyn Conn,
    org_id: &str,
    after_seq: i64,
    through_seq: i64,
) -> Result<Vec<crate::sql::Row>, StoreError> {
    c.query(
        "select seq, at, kind, subject_id, payload, prev_hash, hash from journal
         where org_id = ? and seq > ? and seq <= ? order by seq limit ?",
        params![org_id, after_seq, through_seq, VERIFY_PAGE],
    )
}

/// The chain's head as committed: its sequence number and hash.
fn committed_head(c: &mut dyn Conn, org_id: &str) -> Result<Option<(i64, String)>, StoreError> {
    c.query_opt("select seq, hash from journal_heads where org_id = ?", params![org_id])?
        .map(|h| Ok((h.i64(0)?, h.string(1)?)))
        .transpose()
}

fn verify_chain(c: &mut dyn Conn, org_id: &str) -> Result<ChainReport, StoreError> {
    // The head is read first and the walk stops at it: each statement may see later commits (a
    // reader has no snapshot across statements), and entries other transactions commit meanwhile
    // are checked by the next verification, not mistaken for tampering. Entries and their head are
    // committed together, so everything up to the head read here is already in place.
    let head = committed_head(c, org_id)?;
    let through = head.as_ref().map_or(i64::MAX, |(seq, _)| *seq);
    let entries = c
        .query_one(
            "select count(*) from journal where org_id = ? and seq <= ?",
            params![org_id, through],
        )?
        .i64(0)?;
    let mut rows = verify_page(c, org_id, i64::MIN, through)?;
    let mut expected_prev = GENESIS.to_owned();
    let mut expected_seq = 1i64;
    let mut problem = None;
    // A purge removed the oldest entries: the latest `archive.purged` entry (itself verified as
    // part of the chain below) must name exactly the entry before the oldest remaining one.
    if let Some(first) = rows.first() {
        let (first_seq, first_prev) = (first.i64(0)?, first.string(5)?);
        if first_seq > 1 {
            match last_purge(c, org_id)? {
                Some((through_seq, through_hash)) if through_seq == first_seq - 1 && through_hash == first_prev => {
                    expected_seq = first_seq;
                    expected_prev = first_prev;
                }
                Some((through_seq, _)) => {
                    problem = Some(ChainProblem {
                        seq: through_seq + 1,
                        what: format!(
                            "entries {} to {} are missing (deleted), and the last purge only removed entries up to {through_seq}",
                            through_seq + 1,
                            first_seq - 1
                        ),
                    })
                }
                None => {}
            }
        }
    }
    let first_seq = expected_seq;
    'pages: while problem.is_none() && !rows.is_empty() {
        for r in &rows {
            let (seq, at, kind, subject, payload, prev, hash) = (
                r.i64(0)?,
                r.i64(1)?,
                r.string(2)?,
                r.opt_string(3)?,
                r.string(4)?,
                r.string(5)?,
                r.string(6)?,
            );
            let what = if seq > expected_seq {
                Some(format!("entries {expected_seq} to {} are missing (deleted)", seq - 1))
            } else if seq < expected_seq {
                Some("the sequence goes backwards (an inserted or reordered entry)".to_owned())
            } else if prev != expected_prev {
                Some("it does not follow the entry before it (inserted, deleted or reordered entries)".to_owned())
            } else if entry_hash(&prev, seq, org_id, at, &kind, subject.as_deref(), &payload) != hash {
                Some("its content was altered after it was written".to_owned())
            } else {
                None
            };
            if let Some(what) = what {
                problem = Some(ChainProblem {
                    seq: seq.min(expected_seq),
                    what,
                });
                break 'pages;
            }
            expected_prev = hash;
            expected_seq += 1;
        }
        let last = rows.last().map(|r| r.i64(0)).transpose()?.unwrap_or(i64::MAX);
        rows = verify_page(c, org_id, last, through)?;
    }
    if problem.is_none() {
        if let Some((head_seq, head_hash)) = &head {
            if *head_seq != expected_seq - 1 || (*head_seq > 0 && *head_hash != expected_prev) {
                problem = Some(ChainProblem {
                    seq: expected_seq,
                    what: format!(
                        "the chain ends at entry {} but its head says {head_seq} (entries removed from the end)",
                        expected_seq - 1
                    ),
                });
            } else if let Some(beyond) = c
                .query_one(
                    "select min(seq) from journal where org_id = ? and seq > ?",
                    params![org_id, *head_seq],
                )?
                .opt_i64(0)?
            {
                // Entries past the head: new ones committed since it was read (the head has moved on
                // too), or rows put there by hand (the head has not).
                if committed_head(c, org_id)?.map_or(0, |(seq, _)| seq) < beyond {
                    problem = Some(ChainProblem {
                        seq: beyond,
                        what: format!(
                            "entries from {beyond} on follow the chain's head ({head_seq}): inserted after it"
                        ),
                    });
                }
            }
        }
    }
    Ok(ChainReport {
        org_id: org_id.to_owned(),
        entries,
        first_seq,
        problem,
    })
}

/// The last entry the latest purge removed (its sequence number and hash), from the chain's newest
/// `archive.purged` entry.
pub(crate) fn last_purge(c: &mut dyn Conn, org_id: &str) -> Result<Option<(i64, String)>, StoreError> {
    let Some(r) = c.query_opt(
        "select payload from journal where org_id = ? and kind = 'archive.purged' order by seq desc limit 1",
        params![org_id],
    )?
    else {
        return Ok(None);
    };
    let p: serde_json::Value = serde_json::from_str(&r.string(0)?).map_err(|e| StoreError::Decode(e.to_string()))?;
    Ok(p.get("through_seq")
        .and_then(|v| v.as_i64())
        .zip(p.get("through_hash").and_then(|v| v.as_str()).map(str::to_owned)))
}

/// The entry with this sequence number in an organization's chain, if it is still held.
pub fn entry(c: &mut dyn Conn, org_id: &str, seq: i64) -> Result<Option<JournalEntry>, StoreError> {
    Ok(page(c, org_id, seq - 1, 1)?.into_iter().find(|e| e.seq == seq))
}

/// Entries of one organization in order, `limit` after `after_seq` (for exports that stream).
pub fn page(c: &mut dyn Conn, org_id: &str, after_seq: i64, limit: i64) -> Result<Vec<JournalEntry>, StoreError> {
    c.query(
        &format!("select {ENTRY_COLS} from journal where org_id = ? and seq > ? order by seq limit ?"),
        params![org_id, after_seq, limit],
    )?
    .iter()
    .map(entry_from_row)
    .collect()
}

/// Entries of one organization after `after_seq` whose time is in `[since, until)`, in order.
pub fn page_in_range(
    c: &mut dyn Conn,
    org_id: &str,
    after_seq: i64,
    since: Option<i64>,
    until: Option<i64>,
    limit: i64,
) -> Result<Vec<JournalEntry>, StoreError> {
    c.query(
        &format!(
            "select {ENTRY_COLS} from journal
             where org_id = ? and seq > ? and at >= ? and at < ? order by seq limit ?"
        ),
        params![
            org_id,
            after_seq,
            since.unwrap_or(i64::MIN),
            until.unwrap_or(i64::MAX),
            limit
        ],
    )?
    .iter()
    .map(entry_from_row)
    .collect()
}

/// The columns [`entry_from_row`] reads, in its order.
pub(crate) const ENTRY_COLS: &str = "org_id, seq, at, kind, subject_id, payload, prev_hash, hash";

pub(crate) fn entry_from_row(r: &crate::sql::Row) -> Result<JournalEntry, StoreError> {
    Ok(JournalEntry {
        org_id: r.string(0)?,
        seq: r.i64(1)?,
        at: r.i64(2)?,
        kind: r.string(3)?,
        subject_id: r.opt_string(4)?,
        payload: serde_json::from_str(&r.string(5)?).map_err(|e| StoreError::Decode(e.to_string()))?,
        prev_hash: r.string(6)?,
        hash: r.string(7)?,
    })
}

/// Switches archiving of message content on or off for an organization and the sub-organizations
/// that inherit from it (`None`: inherit from the parent again). Journaled as a settings change.
pub fn set_recording(
    c: &mut dyn Conn,
    org_id: &str,
    on: Option<bool>,
    actor: &Actor,
    now: i64,
) -> Result<(), StoreError> {
    let value = on.map(serde_json::Value::Bool).unwrap_or(serde_json::Value::Null);
    crate::orgs::set_setting(c, org_id, "recording", value, actor, now)?;
    refresh_recording(c, org_id)
}

/// Every organization that has a chain.
pub fn chains(c: &mut dyn Conn) -> Result<Vec<String>, StoreError> {
    flush_heads(c)?;
    c.query("select org_id from journal_heads order by org_id", &[])?
        .iter()
        .map(|r| r.string(0))
        .collect()
}
