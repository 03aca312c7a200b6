//! Legal holds: while a hold is active, the retention purge removes nothing it covers. A hold covers
//! a whole organization (and its sub-organizations), one user (every entry naming them: messages
//! they wrote, conversations they took part in, changes they made) or one contact (their
//! conversations, messages, consent). Setting and releasing a hold are journaled with who did it and
//! why; holds are never deleted, only released.

use crate::journal::Actor;
use crate::orgs::Scope;
use crate::sql::{placeholders, Conn, Row, Val};
use crate::{params, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LegalHold {
    pub id: String,
    /// The organization whose archive it holds (the user's or contact's organization).
    pub org_id: String,
    /// `organization`, `user` or `contact`.
    pub scope: String,
    /// The organization, user or contact held.
    pub subject_id: String,
    /// Why (a matter or case reference), as the admin gave it.
    pub reason: String,
    pub created_by: Actor,
    pub created_at: i64,
    pub released_by: Option<Actor>,
    pub released_at: Option<i64>,
}

/// What a hold covers, as an admin asks for it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
pub struct NewHold {
    /// `organization`, `user` or `contact`.
    pub scope: String,
    /// The organization, user or contact id.
    pub subject_id: String,
    pub reason: String,
}

const COLS: &str = "id, org_id, scope, subject_id, reason, created_by, created_at, released_by, released_at";

fn actor_from(text: &str) -> Result<Actor, StoreError> {
    serde_json::from_str(text).map_err(|e| StoreError::Decode(e.to_string()))
}

fn from_row(r: &Row) -> Result<LegalHold, StoreError> {
    Ok(LegalHold {
        id: r.string(0)?,
        org_id: r.string(1)?,
        scope: r.string(2)?,
        subject_id: r.string(3)?,
        reason: r.string(4)?,
        created_by: actor_from(&r.string(5)?)?,
        created_at: r.i64(6)?,
        released_by: r.opt_string(7)?.as_deref().map(actor_from).transpose()?,
        released_at: r.opt_i64(8)?,
    })
}

/// Why a hold cannot be set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HoldError {
    InvalidScope,
    EmptyReason,
    /// No such organization, user or contact within the caller's scope.
    UnknownSubject,
    Store(String),
}

impl From<StoreError> for HoldError {
    fn from(e: StoreError) -> Self {
        HoldError::Store(e.to_string())
    }
}

/// Places a hold. The subject must be in `scope` (the caller's organizations).
pub fn set(c: &mut dyn Conn, scope: &Scope, h: &NewHold, actor: &Actor, now: i64) -> Result<LegalHold, HoldError> {
    let reason = h.reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 {
        return Err(HoldError::EmptyReason);
    }
    let table = match h.scope.as_str() {
        "organization" => "organizations",
        "user" => "users",
        "contact" => "contacts",
        _ => return Err(HoldError::InvalidScope),
    };
    let org_col = if table == "organizations" { "id" } else { "org_id" };
    let org_id = c
        .query_opt(
            &format!("select {org_col} from {table} where id = ?"),
            params![&h.subject_id],
        )?
        .map(|r| r.string(0))
        .transpose()?
        .filter(|o| scope.contains(o))
        .ok_or(HoldError::UnknownSubject)?;
    let id = openline_domain::ids::new_id("hold");
    let by = serde_json::to_string(actor).map_err(|e| HoldError::Store(e.to_string()))?;
    c.execute(
        &format!("insert into legal_holds ({COLS}) values (?, ?, ?, ?, ?, ?, ?, null, null)"),
        params![&id, &org_id, &h.scope, &h.subject_id, reason, &by, now],
    )?;
    let hold = get(c, &id)?;
    crate::journal::record_by(c, &org_id, "legal_hold.set", &id, &hold, actor, now)?;
    Ok(hold)
}

pub fn get(c: &mut dyn Conn, id: &str) -> Result<LegalHold, StoreError> {
    from_row(&c.query_one(&format!("select {COLS} from legal_holds where id = ?"), params![id])?)
}

/// Releases an active hold in the caller's scope; `NotFound` otherwise.
pub fn release(c: &mut dyn Conn, scope: &Scope, id: &str, actor: &Actor, now: i64) -> Result<LegalHold, StoreError> {
    let hold = get(c, id)?;
    if !scope.contains(&hold.org_id) || hold.released_at.is_some() {
        return Err(StoreError::NotFound);
    }
    let by = serde_json::to_string(actor).map_err(|e| StoreError::Decode(e.to_string()))?;
    c.execute(
        "update legal_holds set released_by = ?, released_at = ? where id = ? and released_at is null",
        params![&by, now, id],
    )?;
    let hold = get(c, id)?;
    crate::journal::record_by(c, &hold.org_id, "legal_hold.released", id, &hold, actor, now)?;
    Ok(hold)
}

/// Holds in the caller's scope, newest first (released ones too, unless `active_only`).
pub fn list(c: &mut dyn Conn, scope: &Scope, active_only: bool) -> Result<Vec<LegalHold>, StoreError> {
    let (ph, vals) = scope.in_list();
    let active = if active_only { " and released_at is null" } else { "" };
    c.query(
        &format!("select {COLS} from legal_holds where org_id in ({ph}){active} order by created_at desc, id"),
        &vals,
    )?
    .iter()
    .map(from_row)
    .collect()
}

/// What the active holds on an organization's archive cover.
#[derive(Debug, Clone, Default)]
pub struct Coverage {
    /// A hold on the organization or an ancestor: nothing may be purged.
    pub whole: Option<String>,
    /// (hold id, ids whose appearance in an entry puts it under that hold).
    pub ids: Vec<(String, Vec<String>)>,
}

impl Coverage {
    /// The hold an entry falls under, if any: one naming a held user or contact, or one of the held
    /// contact's conversations or messages (as subject or anywhere in its payload).
    pub fn hold_for(&self, subject_id: Option<&str>, payload: &str) -> Option<&str> {
        if let Some(w) = &self.whole {
            return Some(w);
        }
        self.ids
            .iter()
            .find(|(_, ids)| crate::export::names_any(subject_id, payload, ids))
            .map(|(hold, _)| hold.as_str())
    }
}

/// The active holds covering an organization's archive.
pub fn coverage(c: &mut dyn Conn, org_id: &str) -> Result<Coverage, StoreError> {
    let ancestors: Vec<String> = crate::orgs::ancestors(c, org_id)?.into_iter().map(|o| o.id).collect();
    let ph = placeholders(ancestors.len());
    let vals: Vec<Val> = ancestors.iter().map(Val::from).collect();
    let whole = c
        .query_opt(
            &format!(
                "select id from legal_holds where scope = 'organization' and released_at is null and subject_id in ({ph}) order by created_at limit 1"
            ),
            &vals,
        )?
        .map(|r| r.string(0))
        .transpose()?;
    let mut ids = Vec::new();
    for r in c.query(
        "select id, scope, subject_id from legal_holds where org_id = ? and released_at is null and scope <> 'organization' order by created_at",
        params![org_id],
    )? {
        let (hold, scope, subject) = (r.string(0)?, r.string(1)?, r.string(2)?);
        // A contact's hold covers its conversations and their messages, as an export of the
        // contact selects them.
        let covered = if scope == "contact" {
            crate::export::thread_ids(c, org_id, "contact_id", &subject, Some(&subject))?
        } else {
            vec![subject]
        };
        ids.push((hold, covered));
    }
    Ok(Coverage { whole, ids })
}
