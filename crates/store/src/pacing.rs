//! What pacing and the limits timer need from the store: putting a claimed outbox row back until the
//! pacer's slot (without counting an attempt), a sender's throughput, and the contacts whose
//! messages wait for room under the organization's messaging limit.

use crate::sql::Conn;
use crate::{params, StoreError};

/// Puts a claimed row back, due at `at`: the pacer says its contact or number must wait. Not an
/// attempt (the claim counted one; this takes it back), so pacing never exhausts a message's retries.
pub fn defer_claim(c: &mut dyn Conn, outbox_id: &str, at: i64, now: i64) -> Result<(), StoreError> {
    c.execute(
        "update outbox set next_attempt_at = ?, lease_until = null,
           attempts = case when attempts > 0 then attempts - 1 else 0 end, updated_at = ?
         where id = ? and state = 'pending'",
        params![at, now, outbox_id],
    )?;
    Ok(())
}

/// Sets how many messages per second a sender number may send (validated by the caller against
/// `openline_domain::limits::Throughput`). `NotFound` for an unknown sender.
pub fn set_sender_throughput(
    c: &mut dyn Conn,
    org_id: &str,
    sender_id: &str,
    per_second: i64,
    actor: &crate::journal::Actor,
    now: i64,
) -> Result<crate::senders::Sender, StoreError> {
    let n = c.execute(
        "update senders set throughput_per_s = ? where id = ? and org_id = ?",
        params![per_second, sender_id, org_id],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    let sender = crate::senders::get_any(c, sender_id)?;
    crate::journal::record_by(
        c,
        org_id,
        "sender.throughput_changed",
        sender_id,
        &serde_json::json!({ "throughput_per_s": per_second }),
        actor,
        now,
    )?;
    Ok(sender)
}

/// A contact with messages held for room under the messaging limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitHold {
    pub org_id: String,
    pub contact_id: String,
    pub sender_id: String,
}

/// Contacts with messages held by the messaging limit, the one waiting longest first (so held
/// templates are released in the order they were written when room appears).
pub fn messaging_limit_holds(c: &mut dyn Conn, limit: i64) -> Result<Vec<LimitHold>, StoreError> {
    c.query(
        "select m.org_id, v.contact_id, v.sender_id, min(m.created_at) as first_at
         from messages m join conversations v on v.id = m.conversation_id
         where m.queue_reason = 'messaging_limit' and m.status = 'queued'
         group by m.org_id, v.contact_id, v.sender_id
         order by first_at limit ?",
        params![limit],
    )?
    .iter()
    .map(|r| {
        Ok(LimitHold {
            org_id: r.string(0)?,
            contact_id: r.string(1)?,
            sender_id: r.string(2)?,
        })
    })
    .collect()
}

/// The opt-in template an organization uses, `(name, language)`: its own setting
/// (`opt_in_template`), else the nearest ancestor's; `None` when nobody set one.
pub fn opt_in_template(c: &mut dyn Conn, org_id: &str) -> Result<Option<(String, String)>, StoreError> {
    Ok(crate::orgs::ancestor_settings(c, org_id)?.iter().find_map(opt_in_of))
}

/// The opt-in template the organization itself chose (not inherited), if any.
pub fn own_opt_in_template(c: &mut dyn Conn, org_id: &str) -> Result<Option<(String, String)>, StoreError> {
    let r = c.query_one("select settings from organizations where id = ?", params![org_id])?;
    let settings: serde_json::Value = serde_json::from_str(&r.string(0)?).unwrap_or_default();
    Ok(opt_in_of(&settings))
}

/// `(name, language)` of the `opt_in_template` in one organization's settings.
fn opt_in_of(settings: &serde_json::Value) -> Option<(String, String)> {
    let t = &settings["opt_in_template"];
    match (t["name"].as_str(), t["language"].as_str()) {
        (Some(name), Some(language)) => Some((name.to_owned(), language.to_owned())),
        _ => None,
    }
}

/// Sets (or with `None` removes, so the parent's applies) an organization's opt-in template,
/// journaled as `organization.opt_in_template_changed`.
pub fn set_opt_in_template(
    c: &mut dyn Conn,
    org_id: &str,
    template: Option<(&str, &str)>,
    actor: &crate::journal::Actor,
    now: i64,
) -> Result<(), StoreError> {
    let value = template.map(|(name, language)| serde_json::json!({ "name": name, "language": language }));
    crate::orgs::replace_setting(
        c,
        org_id,
        "opt_in_template",
        value.as_ref().unwrap_or(&serde_json::Value::Null),
    )?;
    crate::journal::record_by(
        c,
        org_id,
        "organization.opt_in_template_changed",
        org_id,
        &serde_json::json!({ "opt_in_template": value }),
        actor,
        now,
    )?;
    Ok(())
}
