//! The delivery worker's side of outbound webhooks: which subscriptions have work, leases so one
//! node delivers for a subscription at a time, the next journal entries after each chain's cursor,
//! and recording attempts with the cursor moves they make.

use super::{head_seq, orgs_of, Cursor, KINDS_OF_EVENT_TYPE};
use crate::journal::JournalEntry;
use crate::sql::{placeholders, Conn, Val};
use crate::{params, StoreError};

/// The SQL condition on `kind` selecting the journal entries of these event types.
fn kind_filter(types: &[String]) -> (String, Vec<Val>) {
    let all = types.iter().any(|t| t == "*");
    let mut exact: Vec<&str> = Vec::new();
    let mut prefixes: Vec<String> = Vec::new();
    for (t, kinds) in KINDS_OF_EVENT_TYPE {
        if !all && !types.iter().any(|w| w == t) {
            continue;
        }
        for k in *kinds {
            if k.ends_with('.') {
                prefixes.push(format!("{k}%"));
            } else {
                exact.push(k);
            }
        }
    }
    let mut parts = Vec::new();
    let mut vals: Vec<Val> = Vec::new();
    if !exact.is_empty() {
        parts.push(format!("kind in ({})", placeholders(exact.len())));
        vals.extend(exact.iter().map(|k| Val::from(*k)));
    }
    for p in prefixes {
        parts.push("kind like ?".to_owned());
        vals.push(Val::from(p));
    }
    if parts.is_empty() {
        return ("1 = 0".to_owned(), vals);
    }
    (format!("({})", parts.join(" or ")), vals)
}

/// What the worker needs to deliver for a subscription, secrets included.
#[derive(Clone)]
pub struct DeliveryTarget {
    pub id: String,
    pub org_id: String,
    pub url: String,
    pub events: Vec<String>,
    pub include_sub_organizations: bool,
    pub secret: String,
    /// The secret before the last rotation, while it still signs.
    pub previous_secret: Option<String>,
    /// The event being retried, if the last attempt failed.
    pub head_event_id: Option<String>,
    pub head_attempts: i64,
    pub head_failing_since: Option<i64>,
}

impl std::fmt::Debug for DeliveryTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliveryTarget")
            .field("id", &self.id)
            .field("org_id", &self.org_id)
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// Active subscriptions whose next attempt is due, not leased by another node.
pub fn due(c: &mut dyn Conn, now: i64, limit: i64) -> Result<Vec<String>, StoreError> {
    c.query(
        "select id from webhook_subscriptions
         where state = 'active' and next_attempt_at <= ? and (lease_until is null or lease_until < ?)
         order by next_attempt_at, id limit ?",
        params![now, now, limit],
    )?
    .iter()
    .map(|r| r.string(0))
    .collect()
}

/// Of the due subscriptions, those with something to do: a failing event to retry, or a chain whose
/// head has moved past the cursor. Read-only, so idle subscriptions cost no writes.
pub fn due_with_work(c: &mut dyn Conn, now: i64, limit: i64) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    // Idle subscriptions are due forever (their next attempt is "now"), so look past them all.
    for id in due(c, now, i64::MAX)? {
        if out.len() as i64 >= limit {
            break;
        }
        let Some(r) = c.query_opt(
            "select org_id, include_sub_organizations, head_event_id from webhook_subscriptions where id = ?",
            params![&id],
        )?
        else {
            continue;
        };
        if r.opt_string(2)?.is_some() {
            out.push(id);
            continue;
        }
        for org in orgs_of(c, &r.string(0)?, r.bool(1)?)? {
            let cursor = c
                .query_opt(
                    "select seq from webhook_cursors where subscription_id = ? and org_id = ?",
                    params![&id, &org],
                )?
                .map(|r| r.i64(0))
                .transpose()?
                .unwrap_or(0);
            if head_seq(c, &org)? > cursor {
                out.push(id.clone());
                break;
            }
        }
    }
    Ok(out)
}

/// Takes (or renews) the lease on a subscription for `owner` until `until`, if it is active and due,
/// and returns it with its secrets opened with `key`; `None` if another node holds it or it is not
/// due. A secret that does not open (another key) is a `Decode` error naming the subscription.
pub fn claim(
    c: &mut dyn Conn,
    key: &super::SecretsKey,
    id: &str,
    owner: &str,
    until: i64,
    now: i64,
) -> Result<Option<DeliveryTarget>, StoreError> {
    let n = c.execute(
        "update webhook_subscriptions set lease_owner = ?, lease_until = ?
         where id = ? and state = 'active' and next_attempt_at <= ?
           and (lease_until is null or lease_until < ? or lease_owner = ?)",
        params![owner, until, id, now, now, owner],
    )?;
    if n == 0 {
        return Ok(None);
    }
    let r = c.query_one(
        "select id, org_id, url, events, include_sub_organizations, secret, previous_secret, previous_secret_until,
             head_attempts, head_failing_since, head_event_id
         from webhook_subscriptions where id = ?",
        params![id],
    )?;
    let previous_until = r.opt_i64(7)?;
    let sub_id = r.string(0)?;
    let previous_secret = match r.opt_string(6)?.filter(|_| previous_until.is_some_and(|u| u > now)) {
        Some(p) => Some(super::sealed::open(key, &sub_id, &p)?),
        None => None,
    };
    Ok(Some(DeliveryTarget {
        id: r.string(0)?,
        org_id: r.string(1)?,
        url: r.string(2)?,
        events: serde_json::from_str(&r.string(3)?).map_err(|e| StoreError::Decode(e.to_string()))?,
        include_sub_organizations: r.bool(4)?,
        secret: super::sealed::open(key, &sub_id, &r.string(5)?)?,
        previous_secret,
        head_attempts: r.i64(8)?,
        head_failing_since: r.opt_i64(9)?,
        head_event_id: r.opt_string(10)?,
    }))
}

/// Gives the lease back (shutdown, or nothing more to deliver now).
pub fn release(c: &mut dyn Conn, id: &str, owner: &str) -> Result<(), StoreError> {
    c.execute(
        "update webhook_subscriptions set lease_owner = null, lease_until = null where id = ? and lease_owner = ?",
        params![id, owner],
    )?;
    Ok(())
}

/// The next entry to deliver, if any, and the cursors that can move past entries that do not match
/// (to save with the next write).
#[derive(Debug, Clone)]
pub struct NextEvent {
    pub entry: Option<JournalEntry>,
    /// Chains whose cursor can move to `seq` because nothing up to it matches.
    pub skipped_to: Vec<Cursor>,
}

/// The next entries to deliver, in delivery order, and the cursors that can move past entries that
/// do not match.
#[derive(Debug, Clone)]
pub struct NextEvents {
    pub entries: Vec<JournalEntry>,
    pub skipped_to: Vec<Cursor>,
}

/// Finds the next entry to deliver (see `next_events`).
pub fn next_event(c: &mut dyn Conn, t: &DeliveryTarget) -> Result<NextEvent, StoreError> {
    let next = next_events(c, t, 1)?;
    Ok(NextEvent {
        entry: next.entries.into_iter().next(),
        skipped_to: next.skipped_to,
    })
}

/// Finds up to `limit` entries to deliver across the subscription's organizations. Within a chain
/// they are in sequence order (always); across chains they are interleaved by time, then
/// organization and sequence. Delivering them in this order and moving each chain's cursor to the
/// entry just delivered keeps the cursor's meaning: everything up to it was delivered or does not
/// match.
pub fn next_events(c: &mut dyn Conn, t: &DeliveryTarget, limit: i64) -> Result<NextEvents, StoreError> {
    let limit = limit.max(1);
    let (filter, filter_vals) = kind_filter(&t.events);
    let mut chains: Vec<std::collections::VecDeque<JournalEntry>> = Vec::new();
    let mut skipped_to = Vec::new();
    for org in orgs_of(c, &t.org_id, t.include_sub_organizations)? {
        let cursor = c
            .query_opt(
                "select seq from webhook_cursors where subscription_id = ? and org_id = ?",
                params![&t.id, &org],
            )?
            .map(|r| r.i64(0))
            .transpose()?
            .unwrap_or(0);
        // The head first: every entry up to it is committed (see the module comment).
        let head = head_seq(c, &org)?;
        if head <= cursor {
            continue;
        }
        let mut vals = vec![Val::from(&org), Val::from(cursor), Val::from(head)];
        vals.extend(filter_vals.iter().cloned());
        vals.push(Val::from(limit));
        // The entries themselves, in the same query (not one more query per entry).
        let chain: std::collections::VecDeque<crate::journal::JournalEntry> = c
            .query(
                &format!(
                    "select {} from journal where org_id = ? and seq > ? and seq <= ? and {filter} order by seq limit ?",
                    crate::journal::ENTRY_COLS
                ),
                &vals,
            )?
            .iter()
            .map(crate::journal::entry_from_row)
            .collect::<Result<_, _>>()?;
        let Some(first) = chain.front().map(|e| e.seq) else {
            skipped_to.push(Cursor { org_id: org, seq: head });
            continue;
        };
        if first > cursor + 1 {
            skipped_to.push(Cursor {
                org_id: org.clone(),
                seq: first - 1,
            });
        }
        chains.push(chain);
    }
    let mut entries = Vec::new();
    while entries.len() < limit as usize {
        let pick = chains
            .iter()
            .enumerate()
            .filter_map(|(i, ch)| ch.front().map(|e| (i, (e.at, e.org_id.clone(), e.seq))))
            .min_by(|a, b| a.1.cmp(&b.1))
            .map(|(i, _)| i);
        let Some(e) = pick.and_then(|i| chains.get_mut(i)).and_then(|ch| ch.pop_front()) else {
            break;
        };
        entries.push(e);
    }
    Ok(NextEvents { entries, skipped_to })
}

/// Moves cursors forward (never back).
pub fn advance_cursors(c: &mut dyn Conn, subscription_id: &str, cursors: &[Cursor]) -> Result<(), StoreError> {
    for cur in cursors {
        c.execute(
            "insert into webhook_cursors (subscription_id, org_id, seq) values (?, ?, ?)
             on conflict (subscription_id, org_id) do update set seq = excluded.seq
             where webhook_cursors.seq < excluded.seq",
            params![subscription_id, &cur.org_id, cur.seq],
        )?;
    }
    Ok(())
}

/// The result of one delivery attempt.
#[derive(Debug, Clone)]
pub struct AttemptResult<'a> {
    pub event_id: &'a str,
    pub event_type: &'a str,
    /// The delivered entry's chain and sequence (the cursor moves there on success).
    pub org_id: &'a str,
    pub seq: i64,
    /// 1 for the first try of this event, 2 for the first retry, …
    pub attempt: i64,
    pub at: i64,
    pub duration_ms: i64,
    pub http_status: Option<i64>,
    pub error: Option<&'a str>,
    pub response_excerpt: Option<&'a str>,
    pub delivered: bool,
    /// When to try again if it failed.
    pub next_attempt_at: i64,
    /// It failed and the retry period is over: park the subscription.
    pub park: bool,
    /// A delivery renews the lease until then.
    pub lease_until: i64,
}

/// Records an attempt and its consequence in one transaction: on success the cursor moves past the
/// event and the head is cleared; on failure the head's retry state is kept (or the subscription is
/// parked, journaled). Returns `false` (and records nothing) if the subscription was deleted,
/// disabled or leased by another node meanwhile.
pub fn record_attempt(
    c: &mut dyn Conn,
    subscription_id: &str,
    owner: &str,
    skipped_to: &[Cursor],
    a: &AttemptResult<'_>,
) -> Result<bool, StoreError> {
    let changed = if a.delivered {
        c.execute(
            "update webhook_subscriptions set head_event_id = null, head_attempts = 0, head_failing_since = null,
                 next_attempt_at = 0, last_error = null, lease_until = case when lease_until < ? then ? else lease_until end
             where id = ? and lease_owner = ? and state = 'active'",
            params![a.lease_until, a.lease_until, subscription_id, owner],
        )?
    } else {
        let error = a.error.unwrap_or("failed");
        c.execute(
            "update webhook_subscriptions set
                 head_attempts = ?,
                 head_failing_since = case when head_event_id = ? then coalesce(head_failing_since, ?) else ? end,
                 head_event_id = ?, next_attempt_at = ?, last_error = ?,
                 state = case when ? = 1 then 'parked' else state end,
                 parked_at = case when ? = 1 then ? else parked_at end
             where id = ? and lease_owner = ? and state = 'active'",
            params![
                a.attempt,
                a.event_id,
                a.at,
                a.at,
                a.event_id,
                a.next_attempt_at,
                error,
                a.park,
                a.park,
                a.at,
                subscription_id,
                owner
            ],
        )?
    };
    if changed == 0 {
        return Ok(false);
    }
    let outcome = match (a.delivered, a.park) {
        (true, _) => "delivered",
        (false, true) => "parked",
        (false, false) => "failed",
    };
    c.execute(
        "insert into webhook_attempts (id, subscription_id, event_id, event_type, attempt, at, duration_ms, http_status,
             error, outcome, response_excerpt)
         values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        params![
            openline_domain::ids::new_id("wha"),
            subscription_id,
            a.event_id,
            a.event_type,
            a.attempt,
            a.at,
            a.duration_ms,
            a.http_status,
            a.error,
            outcome,
            a.response_excerpt
        ],
    )?;
    advance_cursors(c, subscription_id, skipped_to)?;
    if a.delivered {
        advance_cursors(
            c,
            subscription_id,
            &[Cursor {
                org_id: a.org_id.to_owned(),
                seq: a.seq,
            }],
        )?;
    }
    if a.park {
        let org = c
            .query_one(
                "select org_id from webhook_subscriptions where id = ?",
                params![subscription_id],
            )?
            .string(0)?;
        crate::journal::append(
            c,
            &org,
            "webhook_subscription.parked",
            Some(subscription_id),
            &serde_json::json!({"id": subscription_id, "event_id": a.event_id, "last_error": a.error}),
            a.at,
        )?;
    }
    Ok(true)
}

/// Removes attempt records older than `before` (they are a debugging aid; the journal is the record).
pub fn prune_attempts(c: &mut dyn Conn, before: i64) -> Result<u64, StoreError> {
    c.execute("delete from webhook_attempts where at < ?", params![before])
}
