//! Who takes part in a conversation: colleagues sharing one client thread. A participant row is
//! opened when a user joins (by writing in the thread, or added by a colleague) and closed when they
//! leave or are removed; rejoining opens a new row, so the table is the thread's full history. The
//! thread's owner (`conversations.owner_user_id`) is handed over by a transfer.
//!
//! Every change is journaled in the same transaction with who made it: `participant.joined` (the
//! actor is who added them), `participant.left`, `participant.removed` and
//! `conversation.transferred` (from, to).
//!
//! Who may act (a supervisor removing someone, an owner transferring) is the caller's decision; this
//! module checks the facts: the conversation is in the caller's scope, the colleague belongs to it.

use crate::journal::Actor;
use crate::orgs::Scope;
use crate::sql::{Conn, Row};
use crate::{params, StoreError};
use openline_domain::Role;
use serde::Serialize;
use utoipa::ToSchema;

/// A user's time in a thread.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct Participant {
    pub conversation_id: String,
    pub user_id: String,
    pub name: String,
    pub email: String,
    pub role: Role,
    pub joined_at: i64,
    /// When they left or were removed; absent while they take part.
    pub left_at: Option<i64>,
    /// Whether they own the thread now.
    pub owner: bool,
}

/// Why a change was refused, in terms a caller can act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The user is unknown, disabled, or not in the conversation's organization (or, for a
    /// supervisor or admin, one above it).
    NotAColleague,
    /// Viewers cannot message clients, so they cannot take part or own a thread.
    CannotSend,
    /// The user does not take part in the thread now.
    NotAParticipant,
}

/// What a change did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// It happened and was journaled (with this entry's sequence number).
    Done { seq: i64 },
    /// It was true already (already a participant, already the owner): nothing was written.
    Unchanged,
}

/// The outcome of a change: done or unchanged, or refused.
pub type Outcome = Result<Change, Refusal>;

/// The conversation's organization and owner, if the caller may see it (`NotFound` otherwise).
fn conversation_in_scope(c: &mut dyn Conn, scope: &Scope, id: &str) -> Result<(String, Option<String>), StoreError> {
    let r = c
        .query_opt(
            "select org_id, owner_user_id from conversations where id = ?",
            params![id],
        )?
        .ok_or(StoreError::NotFound)?;
    let org_id = r.string(0)?;
    if !scope.contains(&org_id) {
        return Err(StoreError::NotFound);
    }
    Ok((org_id, r.opt_string(1)?))
}

/// The user, if they are a colleague for a thread of `org_id`: an enabled user of that
/// organization, or a supervisor or admin of one above it (who sees it anyway).
fn colleague(c: &mut dyn Conn, org_id: &str, user_id: &str) -> Result<Result<(String, Role), Refusal>, StoreError> {
    let Some(r) = c.query_opt(
        "select org_id, email, role from users where id = ? and disabled_at is null",
        params![user_id],
    )?
    else {
        return Ok(Err(Refusal::NotAColleague));
    };
    let (user_org, email, role) = (r.string(0)?, r.string(1)?, r.parsed(2, Role::parse)?);
    let belongs = user_org == org_id
        || role.sees_sub_organizations() && crate::orgs::ancestors(c, org_id)?.iter().any(|o| o.id == user_org);
    if !belongs {
        return Ok(Err(Refusal::NotAColleague));
    }
    if !role.can_send() {
        return Ok(Err(Refusal::CannotSend));
    }
    Ok(Ok((email, role)))
}

pub(crate) fn current_row(c: &mut dyn Conn, conversation_id: &str, user_id: &str) -> Result<Option<i64>, StoreError> {
    let (sql, vals) = current_row_read(conversation_id, user_id);
    c.query_opt(sql, &vals)?.map(|r| r.i64(0)).transpose()
}

/// Whether the user is in the thread now, as [`crate::conversations::join`] asks it, for
/// [`Conn::prefetch`].
pub fn current_row_read(conversation_id: &str, user_id: &str) -> (&'static str, Vec<crate::Val>) {
    (
        "select joined_at from participants where conversation_id = ? and user_id = ? and left_at is null
         order by joined_at desc limit 1",
        params![conversation_id, user_id].to_vec(),
    )
}

const COLS: &str = "p.conversation_id, p.user_id, u.name, u.email, u.role, p.joined_at, p.left_at,
    case when v.owner_user_id = p.user_id and p.left_at is null then 1 else 0 end";

fn from_row(r: &Row) -> Result<Participant, StoreError> {
    Ok(Participant {
        conversation_id: r.string(0)?,
        user_id: r.string(1)?,
        name: r.string(2)?,
        email: r.string(3)?,
        role: r.parsed(4, Role::parse)?,
        joined_at: r.i64(5)?,
        left_at: r.opt_i64(6)?,
        owner: r.i64(7)? != 0,
    })
}

/// The thread's participants, in the order they joined: those taking part now, or with
/// `include_past` everyone who ever did (one row per stay). `NotFound` outside the caller's scope.
pub fn list(
    c: &mut dyn Conn,
    scope: &Scope,
    conversation_id: &str,
    include_past: bool,
) -> Result<Vec<Participant>, StoreError> {
    conversation_in_scope(c, scope, conversation_id)?;
    let current = if include_past { "" } else { " and p.left_at is null" };
    c.query(
        &format!(
            "select {COLS} from participants p join users u on u.id = p.user_id
             join conversations v on v.id = p.conversation_id
             where p.conversation_id = ?{current} order by p.joined_at, p.user_id"
        ),
        params![conversation_id],
    )?
    .iter()
    .map(from_row)
    .collect()
}

/// Opens a participant row and journals `participant.joined`, unless the user takes part already.
/// `added_by` is who added them (the actor); a user who joined by writing is their own actor.
pub(crate) fn open(
    c: &mut dyn Conn,
    org_id: &str,
    conversation_id: &str,
    user_id: &str,
    actor: &Actor,
    now: i64,
) -> Result<Change, StoreError> {
    if current_row(c, conversation_id, user_id)?.is_some() {
        return Ok(Change::Unchanged);
    }
    // A stay is keyed by its start: one who left and is added back within the same millisecond
    // starts a millisecond later, so both stays are kept.
    let last = c
        .query_one(
            "select max(joined_at) from participants where conversation_id = ? and user_id = ?",
            params![conversation_id, user_id],
        )?
        .opt_i64(0)?;
    let joined_at = last.map_or(now, |l| now.max(l + 1));
    c.execute_later(
        "insert into participants (conversation_id, user_id, joined_at) values (?, ?, ?)",
        params![conversation_id, user_id, joined_at].to_vec(),
    )?;
    // Participant changes are part of the record: who could see and write in the thread, from when.
    let seq = crate::journal::record_by(
        c,
        org_id,
        "participant.joined",
        conversation_id,
        &serde_json::json!({"conversation_id": conversation_id, "user_id": user_id, "joined_at": joined_at}),
        actor,
        now,
    )?;
    Ok(Change::Done { seq })
}

/// Adds a colleague to the thread (journaled `participant.joined`, the actor being who added
/// them). Unchanged if they take part already.
pub fn add(
    c: &mut dyn Conn,
    scope: &Scope,
    conversation_id: &str,
    user_id: &str,
    actor: &Actor,
    now: i64,
) -> Result<Outcome, StoreError> {
    let (org_id, _) = conversation_in_scope(c, scope, conversation_id)?;
    if let Err(refused) = colleague(c, &org_id, user_id)? {
        return Ok(Err(refused));
    }
    Ok(Ok(open(c, &org_id, conversation_id, user_id, actor, now)?))
}

/// Closes the user's stay: `participant.left` when they leave themselves, `participant.removed`
/// when someone else removes them. An owner who goes no longer owns the thread (the entry says so).
fn close(
    c: &mut dyn Conn,
    scope: &Scope,
    conversation_id: &str,
    user_id: &str,
    kind: &str,
    actor: &Actor,
    now: i64,
) -> Result<Outcome, StoreError> {
    let (org_id, owner) = conversation_in_scope(c, scope, conversation_id)?;
    let Some(joined_at) = current_row(c, conversation_id, user_id)? else {
        return Ok(Err(Refusal::NotAParticipant));
    };
    let left_at = now.max(joined_at);
    c.execute(
        "update participants set left_at = ? where conversation_id = ? and user_id = ? and joined_at = ?",
        params![left_at, conversation_id, user_id, joined_at],
    )?;
    let was_owner = owner.as_deref() == Some(user_id);
    if was_owner {
        c.execute(
            "update conversations set owner_user_id = null, updated_at = ? where id = ?",
            params![now, conversation_id],
        )?;
    }
    let seq = crate::journal::record_by(
        c,
        &org_id,
        kind,
        conversation_id,
        &serde_json::json!({
            "conversation_id": conversation_id,
            "user_id": user_id,
            "joined_at": joined_at,
            "left_at": left_at,
            "was_owner": was_owner,
        }),
        actor,
        now,
    )?;
    Ok(Ok(Change::Done { seq }))
}

/// The user leaves the thread themselves (`participant.left`).
pub fn leave(
    c: &mut dyn Conn,
    scope: &Scope,
    conversation_id: &str,
    user_id: &str,
    actor: &Actor,
    now: i64,
) -> Result<Outcome, StoreError> {
    close(c, scope, conversation_id, user_id, "participant.left", actor, now)
}

/// Someone else (a supervisor or admin: the caller decides) removes the user
/// (`participant.removed`).
pub fn remove(
    c: &mut dyn Conn,
    scope: &Scope,
    conversation_id: &str,
    user_id: &str,
    actor: &Actor,
    now: i64,
) -> Result<Outcome, StoreError> {
    close(c, scope, conversation_id, user_id, "participant.removed", actor, now)
}

/// The thread's owner now, if any. `NotFound` outside the caller's scope.
pub fn owner(c: &mut dyn Conn, scope: &Scope, conversation_id: &str) -> Result<Option<String>, StoreError> {
    Ok(conversation_in_scope(c, scope, conversation_id)?.1)
}

/// Hands the thread to a colleague (`conversation.transferred`, from and to), who joins it if they
/// did not take part yet. Unchanged if they own it already.
pub fn transfer(
    c: &mut dyn Conn,
    scope: &Scope,
    conversation_id: &str,
    to_user_id: &str,
    actor: &Actor,
    now: i64,
) -> Result<Outcome, StoreError> {
    let (org_id, from) = conversation_in_scope(c, scope, conversation_id)?;
    if let Err(refused) = colleague(c, &org_id, to_user_id)? {
        return Ok(Err(refused));
    }
    if from.as_deref() == Some(to_user_id) {
        return Ok(Ok(Change::Unchanged));
    }
    open(c, &org_id, conversation_id, to_user_id, actor, now)?;
    c.execute(
        "update conversations set owner_user_id = ?, updated_at = ? where id = ?",
        params![to_user_id, now, conversation_id],
    )?;
    let seq = crate::journal::record_by(
        c,
        &org_id,
        "conversation.transferred",
        conversation_id,
        &serde_json::json!({
            "conversation_id": conversation_id,
            "from_user_id": from,
            "to_user_id": to_user_id,
            "transferred_at": now,
        }),
        actor,
        now,
    )?;
    Ok(Ok(Change::Done { seq }))
}
