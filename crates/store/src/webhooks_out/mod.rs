//! Outbound webhooks: subscriptions (a URL, the event types it wants, the organization and optionally
//! its sub-organizations), the cursor each subscription has reached in each organization's journal,
//! and a record of every delivery attempt.
//!
//! The journal is the source of truth. Nothing on the ingest path writes here: the delivery worker
//! walks each subscribed chain from its cursor and delivers matching entries one at a time, so an
//! event cannot be missed (it is in the journal exactly when it became true) and a receiver sees each
//! organization's events in journal order. The event id is `org_id:seq`, stable across retries, so a
//! receiver that dedupes by it processes every event exactly once.
//!
//! Reading the "next matching entry" first reads the chain's head and then looks only up to it: the
//! head is written in the same transaction as the entry, so every entry up to it is committed, and a
//! cursor moved to the head never skips an entry that commits a moment later.

use crate::journal::Actor;
use crate::orgs::Scope;
use crate::sql::{Conn, Row, Val};
use crate::{params, StoreError};
use serde::Serialize;
use utoipa::ToSchema;

mod delivery;
mod event;
pub mod sealed;
pub use delivery::*;
pub use event::*;
pub use sealed::SecretsKey;

/// The event types a subscription can ask for. `*` asks for all of them.
pub const EVENT_TYPES: &[&str] = &[
    "message.received",
    "message.sent",
    "message.status",
    "consent.changed",
    "participant.changed",
    "contact.number_changed",
];

/// Which journal kinds each event type delivers, in `EVENT_TYPES` order: the one table both
/// directions read (`event_type_for`, and the worker's SQL filter in `delivery`). A kind ending in
/// `.` stands for every kind with that prefix.
pub const KINDS_OF_EVENT_TYPE: &[(&str, &[&str])] = &[
    ("message.received", &["message.received"]),
    ("message.sent", &["message.created"]),
    (
        "message.status",
        &[
            "message.accepted",
            "message.status",
            "message.failed",
            "message.released",
            "message.cancelled",
        ],
    ),
    ("consent.changed", &["consent."]),
    // A transfer changes who answers for the thread: a participant change to receivers.
    ("participant.changed", &["participant.", "conversation.transferred"]),
    // WhatsApp reported the contact moved to a new number and openline moved the contact with it:
    // a CRM keyed by phone number must follow.
    ("contact.number_changed", &["contact.number_changed"]),
];

/// Whether a journal kind is one a table entry names (exactly, or by its prefix ending in `.`).
fn kind_matches(pattern: &str, kind: &str) -> bool {
    if pattern.ends_with('.') {
        kind.starts_with(pattern)
    } else {
        kind == pattern
    }
}

/// The webhook event type a journal entry is delivered as, if any. Administrative entries (users,
/// templates, DLP policy, …) stay in the archive and its exports.
pub fn event_type_for(kind: &str) -> Option<&'static str> {
    KINDS_OF_EVENT_TYPE
        .iter()
        .find(|(_, kinds)| kinds.iter().any(|p| kind_matches(p, kind)))
        .map(|(t, _)| *t)
}

/// A subscription as admins see it (never its secret).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Subscription {
    pub id: String,
    /// The organization whose events are delivered.
    pub org_id: String,
    pub url: String,
    pub description: String,
    /// Event types delivered (`*` for all).
    pub events: Vec<String>,
    /// Also deliver the events of every organization below `org_id`.
    pub include_sub_organizations: bool,
    /// `active`; `disabled` by an admin; `parked` when the event at the head of the queue failed for
    /// the whole retry period (resume it to try again).
    pub state: String,
    /// The end of the signing secret, to tell which one a receiver holds (the secret itself is
    /// stored sealed, see `sealed`, and never read back except to sign).
    pub secret_hint: String,
    /// The event being retried, if the last attempt failed.
    pub pending: Option<PendingDelivery>,
    pub parked_at: Option<i64>,
    /// How far delivery has reached in each organization's journal (every entry up to `seq` was
    /// delivered or did not match).
    pub cursors: Vec<Cursor>,
    pub created_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// The head of a subscription's queue while it is failing.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct PendingDelivery {
    pub event_id: String,
    pub attempts: i64,
    pub failing_since: Option<i64>,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct Cursor {
    pub org_id: String,
    pub seq: i64,
}

/// One delivery attempt.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Attempt {
    pub id: String,
    pub event_id: String,
    pub event_type: String,
    /// 1 for the first try of this event, 2 for the first retry, …
    pub attempt: i64,
    pub at: i64,
    pub duration_ms: i64,
    /// The receiver's HTTP status, if it answered.
    pub http_status: Option<i64>,
    /// Why the attempt failed (timeout, connection refused, a non-2xx status, a refused address).
    pub error: Option<String>,
    /// `delivered`, `failed` (will be retried) or `parked` (retries exhausted).
    pub outcome: String,
    /// The first bytes of the receiver's answer.
    pub response_excerpt: Option<String>,
}

const COLS: &str = "id, org_id, url, description, events, include_sub_organizations, state, secret_hint,
    head_event_id, head_attempts, head_failing_since, next_attempt_at, last_error, parked_at,
    created_by, created_at, updated_at";

fn from_row(c: &mut dyn Conn, r: &Row) -> Result<Subscription, StoreError> {
    let id = r.string(0)?;
    let events: Vec<String> = serde_json::from_str(&r.string(4)?).map_err(|e| StoreError::Decode(e.to_string()))?;
    let cursors = c
        .query(
            "select org_id, seq from webhook_cursors where subscription_id = ? order by org_id",
            params![&id],
        )?
        .iter()
        .map(|r| {
            Ok(Cursor {
                org_id: r.string(0)?,
                seq: r.i64(1)?,
            })
        })
        .collect::<Result<_, StoreError>>()?;
    Ok(Subscription {
        org_id: r.string(1)?,
        url: r.string(2)?,
        description: r.string(3)?,
        events,
        include_sub_organizations: r.bool(5)?,
        state: r.string(6)?,
        secret_hint: r.string(7)?,
        pending: match r.opt_string(8)? {
            Some(event_id) => Some(PendingDelivery {
                event_id,
                attempts: r.i64(9)?,
                failing_since: r.opt_i64(10)?,
                next_attempt_at: r.i64(11)?,
                last_error: r.opt_string(12)?,
            }),
            None => None,
        },
        parked_at: r.opt_i64(13)?,
        created_by: r.opt_string(14)?,
        created_at: r.i64(15)?,
        updated_at: r.i64(16)?,
        cursors,
        id,
    })
}

/// What the journal records about a subscription: never its secret.
fn journal_view(s: &Subscription) -> serde_json::Value {
    serde_json::json!({
        "id": s.id, "url": s.url, "description": s.description, "events": s.events,
        "include_sub_organizations": s.include_sub_organizations, "state": s.state,
    })
}

pub struct NewSubscription<'a> {
    pub org_id: &'a str,
    pub url: &'a str,
    pub description: &'a str,
    pub events: &'a [String],
    pub include_sub_organizations: bool,
    /// The signing secret in plain text: sealed under `key` before it is stored.
    pub secret: &'a str,
    pub key: &'a SecretsKey,
    /// Deliver the events already in the journal too (a backfill), instead of only new ones.
    pub from_beginning: bool,
    pub actor: &'a Actor,
    pub now: i64,
}

/// The organizations whose chains a subscription walks.
pub(super) fn orgs_of(c: &mut dyn Conn, org_id: &str, include_sub: bool) -> Result<Vec<String>, StoreError> {
    if include_sub {
        crate::orgs::subtree(c, org_id)
    } else {
        Ok(vec![org_id.to_owned()])
    }
}

pub(super) fn head_seq(c: &mut dyn Conn, org_id: &str) -> Result<i64, StoreError> {
    crate::journal::flush_heads(c)?;
    Ok(
        c.query_opt("select seq from journal_heads where org_id = ?", params![org_id])?
            .map(|r| r.i64(0))
            .transpose()?
            .unwrap_or(0),
    )
}

/// Creates a subscription (journaled). Unless `from_beginning`, its cursors start at each chain's
/// head, so it receives what happens from now on.
pub fn create(c: &mut dyn Conn, n: &NewSubscription<'_>) -> Result<Subscription, StoreError> {
    let id = openline_domain::ids::new_id("whs");
    let events = serde_json::to_string(n.events).map_err(|e| StoreError::Decode(e.to_string()))?;
    let sealed_secret = sealed::seal(n.key, &id, n.secret)?;
    c.execute(
        "insert into webhook_subscriptions (id, org_id, url, description, events, include_sub_organizations, secret,
             secret_hint, state, created_by, created_at, updated_at)
         values (?, ?, ?, ?, ?, ?, ?, ?, 'active', ?, ?, ?)",
        params![
            &id,
            n.org_id,
            n.url,
            n.description,
            &events,
            n.include_sub_organizations,
            &sealed_secret,
            &sealed::hint(n.secret),
            match n.actor {
                Actor::User { id, .. } => Some(id.as_str()),
                _ => None,
            },
            n.now,
            n.now
        ],
    )?;
    let view = journal_view(&get_any(c, &id)?);
    crate::journal::record_by(c, n.org_id, "webhook_subscription.created", &id, &view, n.actor, n.now)?;
    // Cursors after the creation's own entry, so a new subscription starts with nothing to do.
    if !n.from_beginning {
        for org in orgs_of(c, n.org_id, n.include_sub_organizations)? {
            let seq = head_seq(c, &org)?;
            c.execute(
                "insert into webhook_cursors (subscription_id, org_id, seq) values (?, ?, ?)",
                params![&id, &org, seq],
            )?;
        }
    }
    get_any(c, &id)
}

pub fn get_any(c: &mut dyn Conn, id: &str) -> Result<Subscription, StoreError> {
    let r = c.query_one(
        &format!("select {COLS} from webhook_subscriptions where id = ?"),
        params![id],
    )?;
    from_row(c, &r)
}

/// A subscription of an organization the caller may see; `NotFound` otherwise.
pub fn get(c: &mut dyn Conn, scope: &Scope, id: &str) -> Result<Subscription, StoreError> {
    let (ph, mut vals) = scope.in_list();
    vals.insert(0, Val::from(id));
    let r = c.query_one(
        &format!("select {COLS} from webhook_subscriptions where id = ? and org_id in ({ph})"),
        &vals,
    )?;
    from_row(c, &r)
}

/// The subscriptions of the organizations the caller may see, oldest first.
pub fn list(c: &mut dyn Conn, scope: &Scope) -> Result<Vec<Subscription>, StoreError> {
    let (ph, vals) = scope.in_list();
    let rows = c.query(
        &format!("select {COLS} from webhook_subscriptions where org_id in ({ph}) order by created_at, id"),
        &vals,
    )?;
    rows.iter().map(|r| from_row(c, r)).collect()
}

/// What an admin may change; `None` leaves a field as it is.
#[derive(Debug, Default, Clone)]
pub struct SubscriptionChange {
    pub url: Option<String>,
    pub description: Option<String>,
    pub events: Option<Vec<String>>,
    /// `true` disables delivery (events keep accumulating in the journal and are delivered when it
    /// is enabled again); `false` enables it.
    pub disabled: Option<bool>,
}

/// Changes a subscription (journaled).
pub fn update(
    c: &mut dyn Conn,
    scope: &Scope,
    id: &str,
    change: &SubscriptionChange,
    actor: &Actor,
    now: i64,
) -> Result<Subscription, StoreError> {
    let before = get(c, scope, id)?;
    if let Some(url) = &change.url {
        c.execute(
            "update webhook_subscriptions set url = ? where id = ?",
            params![url, id],
        )?;
    }
    if let Some(d) = &change.description {
        c.execute(
            "update webhook_subscriptions set description = ? where id = ?",
            params![d, id],
        )?;
    }
    if let Some(events) = &change.events {
        let text = serde_json::to_string(events).map_err(|e| StoreError::Decode(e.to_string()))?;
        c.execute(
            "update webhook_subscriptions set events = ? where id = ?",
            params![&text, id],
        )?;
    }
    match change.disabled {
        Some(true) => {
            c.execute(
                "update webhook_subscriptions set state = 'disabled' where id = ?",
                params![id],
            )?;
        }
        Some(false) if before.state == "disabled" => {
            c.execute(
                "update webhook_subscriptions set state = 'active', next_attempt_at = 0 where id = ?",
                params![id],
            )?;
        }
        _ => {}
    }
    c.execute(
        "update webhook_subscriptions set updated_at = ? where id = ?",
        params![now, id],
    )?;
    let s = get_any(c, id)?;
    crate::journal::record_by(
        c,
        &s.org_id,
        "webhook_subscription.updated",
        id,
        &journal_view(&s),
        actor,
        now,
    )?;
    Ok(s)
}

/// Deletes a subscription with its cursors and attempts (journaled).
pub fn delete(c: &mut dyn Conn, scope: &Scope, id: &str, actor: &Actor, now: i64) -> Result<(), StoreError> {
    let s = get(c, scope, id)?;
    c.execute("delete from webhook_attempts where subscription_id = ?", params![id])?;
    c.execute("delete from webhook_cursors where subscription_id = ?", params![id])?;
    c.execute("delete from webhook_subscriptions where id = ?", params![id])?;
    crate::journal::record_by(
        c,
        &s.org_id,
        "webhook_subscription.deleted",
        id,
        &journal_view(&s),
        actor,
        now,
    )?;
    Ok(())
}

/// Replaces the signing secret (sealed under `key`; journaled, without the secret). The previous one
/// keeps signing beside it until `previous_valid_until`, so receivers can switch without missing a
/// delivery.
#[allow(clippy::too_many_arguments)]
pub fn rotate_secret(
    c: &mut dyn Conn,
    scope: &Scope,
    id: &str,
    new_secret: &str,
    key: &SecretsKey,
    previous_valid_until: i64,
    actor: &Actor,
    now: i64,
) -> Result<Subscription, StoreError> {
    get(c, scope, id)?;
    let sealed_secret = sealed::seal(key, id, new_secret)?;
    c.execute(
        "update webhook_subscriptions set previous_secret = secret, previous_secret_until = ?, secret = ?,
             secret_hint = ?, updated_at = ?
         where id = ?",
        params![previous_valid_until, &sealed_secret, &sealed::hint(new_secret), now, id],
    )?;
    let s = get_any(c, id)?;
    crate::journal::record_by(
        c,
        &s.org_id,
        "webhook_subscription.secret_rotated",
        id,
        &serde_json::json!({"id": id, "previous_valid_until": previous_valid_until}),
        actor,
        now,
    )?;
    Ok(s)
}

/// Resumes a parked (or failing) subscription: its head event is tried again now, with a fresh
/// retry period (journaled).
pub fn resume(c: &mut dyn Conn, scope: &Scope, id: &str, actor: &Actor, now: i64) -> Result<Subscription, StoreError> {
    get(c, scope, id)?;
    c.execute(
        "update webhook_subscriptions set state = 'active', parked_at = null, head_attempts = 0,
             head_failing_since = null, next_attempt_at = 0, updated_at = ?
         where id = ?",
        params![now, id],
    )?;
    let s = get_any(c, id)?;
    crate::journal::record_by(
        c,
        &s.org_id,
        "webhook_subscription.resumed",
        id,
        &serde_json::json!({"id": id}),
        actor,
        now,
    )?;
    Ok(s)
}

/// The latest attempts of a subscription the caller may see, newest first.
pub fn attempts(c: &mut dyn Conn, scope: &Scope, id: &str, limit: i64) -> Result<Vec<Attempt>, StoreError> {
    get(c, scope, id)?;
    c.query(
        "select id, event_id, event_type, attempt, at, duration_ms, http_status, error, outcome, response_excerpt
         from webhook_attempts where subscription_id = ? order by at desc, id desc limit ?",
        params![id, limit],
    )?
    .iter()
    .map(|r| {
        Ok(Attempt {
            id: r.string(0)?,
            event_id: r.string(1)?,
            event_type: r.string(2)?,
            attempt: r.i64(3)?,
            at: r.i64(4)?,
            duration_ms: r.i64(5)?,
            http_status: r.opt_i64(6)?,
            error: r.opt_string(7)?,
            outcome: r.string(8)?,
            response_excerpt: r.opt_string(9)?,
        })
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_type_has_its_kinds_and_each_kind_maps_back_to_its_type() {
        let types: Vec<&str> = KINDS_OF_EVENT_TYPE.iter().map(|(t, _)| *t).collect();
        assert_eq!(types, EVENT_TYPES);
        for (kind, want) in [
            ("message.received", Some("message.received")),
            ("message.created", Some("message.sent")),
            ("message.accepted", Some("message.status")),
            ("message.cancelled", Some("message.status")),
            ("consent.accepted", Some("consent.changed")),
            ("participant.removed", Some("participant.changed")),
            ("conversation.transferred", Some("participant.changed")),
            ("conversation.created", None),
            ("template.created", None),
            ("consent", None),
        ] {
            assert_eq!(event_type_for(kind), want, "{kind}");
        }
    }
}
