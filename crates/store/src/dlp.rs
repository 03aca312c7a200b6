//! Data-loss prevention storage: each organization's policy, the rules that apply to it (its own over
//! its ancestors'), the verdict applied to a message, and the review queue of flagged messages. The
//! verdict holds match offsets only; when a body was redacted, the original text is kept in the
//! archive (journal) and nowhere else.

use crate::orgs::Scope;
use crate::sql::{Conn, Val};
use crate::{params, StoreError};
use openline_domain::dlp::{DlpPolicy, DlpRule, DlpVerdict};

/// Saves an organization's policy (already validated).
pub fn set_policy(
    c: &mut dyn Conn,
    org_id: &str,
    policy: &DlpPolicy,
    actor: &crate::journal::Actor,
    now: i64,
) -> Result<(), StoreError> {
    let text = serde_json::to_string(policy).map_err(|e| StoreError::Decode(e.to_string()))?;
    c.execute(
        "insert into dlp_policies (org_id, policy, updated_at) values (?, ?, ?)
         on conflict (org_id) do update set policy = excluded.policy, updated_at = excluded.updated_at",
        params![org_id, &text, now],
    )?;
    crate::journal::record_by(
        c,
        org_id,
        "dlp.policy_set",
        org_id,
        &serde_json::json!({"policy": policy}),
        actor,
        now,
    )?;
    Ok(())
}

pub fn get_policy(c: &mut dyn Conn, org_id: &str) -> Result<Option<DlpPolicy>, StoreError> {
    c.query_opt("select policy from dlp_policies where org_id = ?", params![org_id])?
        .map(|r| serde_json::from_str(&r.string(0)?).map_err(|e| StoreError::Decode(e.to_string())))
        .transpose()
}

/// The rules in force for an organization: its own policy's, then its ancestors' (nearer wins).
pub fn rules_for(c: &mut dyn Conn, org_id: &str) -> Result<Vec<DlpRule>, StoreError> {
    Ok(crate::org_config::chain(c, org_id)?.dlp_rules.clone())
}

/// Records the verdict applied to a message. `original` is the text before redaction, archived so
/// compliance keeps what was really written; it is stored nowhere else.
pub fn record_verdict(
    c: &mut dyn Conn,
    org_id: &str,
    message_id: &str,
    verdict: &DlpVerdict,
    original: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    let flagged = verdict.action == Some(openline_domain::dlp::DlpAction::Flag);
    let json = serde_json::to_string(verdict).map_err(|e| StoreError::Decode(e.to_string()))?;
    c.execute(
        "update messages set dlp_verdict = ?, dlp_flagged = ? where id = ?",
        params![&json, flagged, message_id],
    )?;
    crate::journal::record(
        c,
        org_id,
        "dlp.verdict",
        message_id,
        &serde_json::json!({"verdict": verdict, "original_text": original}),
        now,
    )?;
    Ok(())
}

/// Flagged messages awaiting review, newest first.
pub fn flagged(c: &mut dyn Conn, scope: &Scope, limit: i64) -> Result<Vec<crate::messages::Message>, StoreError> {
    let (ph, mut vals) = scope.in_list();
    vals.push(Val::I64(limit));
    let ids: Vec<String> = c
        .query(
            &format!(
                "select id from messages where org_id in ({ph}) and dlp_flagged = 1 and dlp_reviewed_at is null
                 order by created_at desc, id desc limit ?"
            ),
            &vals,
        )?
        .iter()
        .map(|r| r.string(0))
        .collect::<Result<_, _>>()?;
    ids.iter().map(|id| crate::messages::get_any(c, id)).collect()
}

/// Marks a flagged message reviewed. `NotFound` if the caller may not see it or it is not flagged.
pub fn review(c: &mut dyn Conn, scope: &Scope, message_id: &str, user_id: &str, now: i64) -> Result<(), StoreError> {
    let m = crate::messages::get(c, scope, message_id)?;
    let n = c.execute(
        "update messages set dlp_reviewed_at = ?, dlp_reviewed_by = ? where id = ? and dlp_flagged = 1 and dlp_reviewed_at is null",
        params![now, user_id, message_id],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    crate::journal::record(
        c,
        &m.org_id,
        "dlp.reviewed",
        &m.id,
        &serde_json::json!({"by": user_id}),
        now,
    )?;
    Ok(())
}
