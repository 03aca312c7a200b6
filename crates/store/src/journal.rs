//! The archive: an append-only journal of everything that happened, one SHA-256 hash chain per
//! organization, written in the same transaction as the change it records (so an event is archived
//! exactly when it became true).
//!
//! Each entry stores its payload as canonical JSON (keys sorted) and
//! `hash = SHA-256(prev_hash | seq | org_id | at | kind | subject_id | payload)`. `verify` walks a chain
//! and reports the first entry that was edited (hash mismatch), deleted or inserted (a gap or an
//! extra in the sequence, or a broken link), or reordered (a broken link). Nothing in openline
//! updates or deletes an entry.

use crate::sql::{Backend, Conn};
use crate::{params, StoreError};
use serde::Serialize;
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

/// Appends an event to the organization's chain, inside the caller's transaction.
pub fn append(
    c: &mut dyn Conn,
    org_id: &str,
    kind: &str,
    subject_id: Option<&str>,
    payload: &serde_json::Value,
    at: i64,
) -> Result<i64, StoreError> {
    // serde_json's map keeps keys sorted, so this text is canonical.
    let payload = serde_json::to_string(payload).map_err(|e| StoreError::Decode(e.to_string()))?;
    c.execute(
        "insert into journal_heads (org_id, seq, hash) values (?, 0, ?) on conflict (org_id) do nothing",
        params![org_id, GENESIS],
    )?;
    let lock = match c.backend() {
        Backend::Postgres => " for update",
        Backend::Sqlite => "",
    };
    let head = c.query_one(
        &format!("select seq, hash from journal_heads where org_id = ?{lock}"),
        params![org_id],
    )?;
    let (prev_seq, prev_hash) = (head.i64(0)?, head.string(1)?);
    let seq = prev_seq + 1;
    let hash = entry_hash(&prev_hash, seq, org_id, at, kind, subject_id, &payload);
    c.execute(
        "insert into journal (org_id, seq, at, kind, subject_id, payload, prev_hash, hash) values (?, ?, ?, ?, ?, ?, ?, ?)",
        params![org_id, seq, at, kind, subject_id, &payload, &prev_hash, &hash],
    )?;
    c.execute(
        "update journal_heads set seq = ?, hash = ? where org_id = ?",
        params![seq, &hash, org_id],
    )?;
    Ok(seq)
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

/// What `verify` found for one chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ChainReport {
    pub org_id: String,
    pub entries: i64,
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

fn verify_chain(c: &mut dyn Conn, org_id: &str) -> Result<ChainReport, StoreError> {
    let rows = c.query(
        "select seq, at, kind, subject_id, payload, prev_hash, hash from journal where org_id = ? order by seq",
        params![org_id],
    )?;
    let mut expected_prev = GENESIS.to_owned();
    let mut expected_seq = 1i64;
    let mut problem = None;
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
            break;
        }
        expected_prev = hash;
        expected_seq += 1;
    }
    if problem.is_none() {
        if let Some(head) = c.query_opt("select seq, hash from journal_heads where org_id = ?", params![org_id])? {
            let (head_seq, head_hash) = (head.i64(0)?, head.string(1)?);
            if head_seq != expected_seq - 1 || (head_seq > 0 && head_hash != expected_prev) {
                problem = Some(ChainProblem {
                    seq: expected_seq,
                    what: format!(
                        "the chain ends at entry {} but its head says {head_seq} (entries removed from the end)",
                        expected_seq - 1
                    ),
                });
            }
        }
    }
    Ok(ChainReport {
        org_id: org_id.to_owned(),
        entries: rows.len() as i64,
        problem,
    })
}

/// Entries of one organization in order, `limit` after `after_seq` (for exports that stream).
pub fn page(c: &mut dyn Conn, org_id: &str, after_seq: i64, limit: i64) -> Result<Vec<JournalEntry>, StoreError> {
    c.query(
        "select org_id, seq, at, kind, subject_id, payload, prev_hash, hash from journal where org_id = ? and seq > ? order by seq limit ?",
        params![org_id, after_seq, limit],
    )?
    .iter()
    .map(|r| {
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
    })
    .collect()
}

/// Every organization that has a chain.
pub fn chains(c: &mut dyn Conn) -> Result<Vec<String>, StoreError> {
    c.query("select org_id from journal_heads order by org_id", &[])?
        .iter()
        .map(|r| r.string(0))
        .collect()
}
