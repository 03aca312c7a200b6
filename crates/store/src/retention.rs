//! Retention: how long an organization's archive is kept (the `retention_days` setting, inherited
//! from the nearest ancestor that set one; 7 years by default, what SEC 17a-4 and MiFID II ask for)
//! and the purge that removes what has expired.
//!
//! A purge removes only the *oldest* entries of a chain: from the oldest remaining entry up to, not
//! including, the first one that is unexpired or under a legal hold. So the chain stays one unbroken
//! run, and the purge appends an `archive.purged` entry naming the last entry it removed (sequence
//! number and hash), which is what lets `journal::verify` start from the oldest remaining entry. An
//! expired entry after a held one waits until the hold is released: a hold errs on keeping more.
//!
//! Message rows: the journal is the archive, so that is what retention governs. When a message's
//! archived entries are purged, the working copy in `messages` keeps its metadata (ids, times,
//! statuses, which the inbox and delivery history refer to) but loses its content (text, media
//! reference, template parameters, the provider's raw object), so no content outlives retention.

use crate::journal::Actor;
use crate::sql::{placeholders, Conn, Val};
use crate::{params, StoreError};
use serde::Serialize;
use utoipa::ToSchema;

/// Seven years of 365 days.
pub const DEFAULT_RETENTION_DAYS: i64 = 7 * 365;
const DAY_MS: i64 = 86_400_000;

/// The retention in force for an organization, in days.
pub fn retention_days(c: &mut dyn Conn, org_id: &str) -> Result<i64, StoreError> {
    Ok(crate::orgs::ancestor_settings(c, org_id)?
        .iter()
        .find_map(|s| s.get("retention_days").and_then(|v| v.as_i64()))
        .unwrap_or(DEFAULT_RETENTION_DAYS))
}

/// A retention between 1 day and 100 years.
pub fn valid_retention_days(days: i64) -> bool {
    (1..=36_500).contains(&days)
}

/// Sets an organization's retention in days (`None`: inherit from the parent again), journaled
/// as a settings change with who made it. Callers check `valid_retention_days` first.
pub fn set_retention_days(
    c: &mut dyn Conn,
    org_id: &str,
    days: Option<i64>,
    actor: &Actor,
    now: i64,
) -> Result<(), StoreError> {
    let value = days.map(serde_json::Value::from).unwrap_or(serde_json::Value::Null);
    crate::orgs::set_setting(c, org_id, "retention_days", value, actor, now)
}

/// The archive settings an organization set itself (`retention_days`, `recording`), `None` where it
/// inherits.
pub fn own_settings(c: &mut dyn Conn, org_id: &str) -> Result<(Option<i64>, Option<bool>), StoreError> {
    let r = c.query_one("select settings from organizations where id = ?", params![org_id])?;
    let settings: serde_json::Value = serde_json::from_str(&r.string(0)?).unwrap_or_default();
    Ok((
        settings.get("retention_days").and_then(|v| v.as_i64()),
        settings.get("recording").and_then(|v| v.as_bool()),
    ))
}

/// What a purge of one organization's chain did (or, dry, would do).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PurgeReport {
    pub org_id: String,
    pub retention_days: i64,
    /// Entries written before this time (epoch milliseconds) have expired.
    pub cutoff: i64,
    /// Entries removed (or that would be).
    pub purged: i64,
    /// The last entry removed.
    pub through_seq: Option<i64>,
    /// The legal hold that stopped the purge at an expired entry, if one did.
    pub held_by: Option<String>,
    /// Messages whose content was cleared from the working copy.
    pub messages_cleared: i64,
    pub dry_run: bool,
}

/// Purges every chain (see the module documentation).
pub fn purge_all(c: &mut dyn Conn, now: i64, dry_run: bool, actor: &Actor) -> Result<Vec<PurgeReport>, StoreError> {
    let mut out = Vec::new();
    for org in crate::journal::chains(c)? {
        out.push(purge(c, &org, now, dry_run, actor)?);
    }
    Ok(out)
}

/// Purges one organization's expired entries not under a hold, inside the caller's transaction.
pub fn purge(
    c: &mut dyn Conn,
    org_id: &str,
    now: i64,
    dry_run: bool,
    actor: &Actor,
) -> Result<PurgeReport, StoreError> {
    let days = retention_days(c, org_id)?;
    let cutoff = now.saturating_sub(days.saturating_mul(DAY_MS));
    let holds = crate::holds::coverage(c, org_id)?;
    let mut report = PurgeReport {
        org_id: org_id.to_owned(),
        retention_days: days,
        cutoff,
        purged: 0,
        through_seq: None,
        held_by: None,
        messages_cleared: 0,
        dry_run,
    };
    let mut through: Option<(i64, String)> = None;
    let mut messages: Vec<String> = Vec::new();
    let mut after = 0i64;
    'pages: loop {
        let page = crate::journal::page(c, org_id, after, 500)?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for e in &page {
            if e.at >= cutoff {
                break 'pages;
            }
            let payload = e.payload.to_string();
            if let Some(hold) = holds.hold_for(e.subject_id.as_deref(), &payload) {
                report.held_by = Some(hold.to_owned());
                break 'pages;
            }
            if matches!(e.kind.as_str(), "message.received" | "message.created") {
                messages.extend(e.subject_id.clone());
            }
            report.purged += 1;
            through = Some((e.seq, e.hash.clone()));
        }
    }
    let Some((through_seq, through_hash)) = through else {
        return Ok(report);
    };
    report.through_seq = Some(through_seq);
    report.messages_cleared = messages.len() as i64;
    if dry_run {
        return Ok(report);
    }
    c.execute(
        "delete from journal where org_id = ? and seq <= ?",
        params![org_id, through_seq],
    )?;
    for ids in messages.chunks(200) {
        let mut vals: Vec<Val> = vec![Val::from(org_id)];
        vals.extend(ids.iter().map(Val::from));
        c.execute(
            &format!(
                "update messages set body = null, media = null, template = null, raw = null where org_id = ? and id in ({})",
                placeholders(ids.len())
            ),
            &vals,
        )?;
    }
    crate::journal::record_by(
        c,
        org_id,
        "archive.purged",
        org_id,
        &serde_json::json!({
            "through_seq": through_seq, "through_hash": through_hash, "entries": report.purged,
            "cutoff": cutoff, "retention_days": days, "messages_cleared": report.messages_cleared,
        }),
        actor,
        now,
    )?;
    Ok(report)
}
