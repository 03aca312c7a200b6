//! The transactional outbox. A message that may be sent gets an outbox row in the same transaction
//! that stores it; dispatchers claim due rows with a lease (on PostgreSQL with `skip locked`, so two
//! nodes never claim the same row), send, and mark them done, retry them later, or dead. Within a
//! thread, rows are claimed one at a time in the order they were queued, so a contact receives
//! messages in the order they were written even though the dispatcher sends many threads at once.
//!
//! A crash must not lose a send nor hide a duplicate. The claim that hands a row to a dispatcher
//! durably marks its attempt *unsettled*; recording the outcome (accepted, refused, put back unsent)
//! settles it. A row claimed again while its previous attempt is unsettled (its node died mid-send,
//! or the provider never answered) may already be at the provider: the claim says so
//! ([`Claimed::maybe_sent`], sticky until the row is done), the dispatcher sends it again and marks
//! the message a possible duplicate.

use crate::sql::{Backend, Conn};
use crate::{params, StoreError};

pub fn enqueue(c: &mut dyn Conn, message_id: &str, org_id: &str, sender_id: &str, now: i64) -> Result<(), StoreError> {
    c.execute_later(
        "insert into outbox (id, message_id, org_id, sender_id, state, attempts, next_attempt_at, created_at, updated_at)
         values (?, ?, ?, ?, 'pending', 0, ?, ?, ?)",
        params![openline_domain::ids::new_id("obx"), message_id, org_id, sender_id, now, now, now].to_vec(),
    )?;
    Ok(())
}

/// A claimed row: what the dispatcher needs to send one message.
#[derive(Debug, Clone)]
pub struct Claimed {
    pub outbox_id: String,
    pub message_id: String,
    pub sender_id: String,
    /// Attempts made before this one.
    pub attempts: i64,
    /// An earlier attempt was handed to the provider and its outcome never recorded: the provider may
    /// already have the message, so sending it again may deliver it twice.
    pub maybe_sent: bool,
}

/// Claims up to `limit` due rows for `lease_ms`. A row whose lease ran out (its node died mid-send)
/// becomes claimable again.
pub fn claim_due(c: &mut dyn Conn, now: i64, lease_ms: i64, limit: i64) -> Result<Vec<Claimed>, StoreError> {
    let lock = match c.backend() {
        Backend::Postgres => " for update of o skip locked",
        Backend::Sqlite => "",
    };
    // Messages in a thread leave one at a time, in the order they were queued: a row is claimable only
    // when no earlier row of its thread is still pending (waiting, leased or retrying). The check walks
    // the thread's messages (`cross join` keeps SQLite from driving it from every pending row of the
    // outbox instead: with a 20,000-message backlog that was 60% of the writer's time).
    let rows = c.query(
        &format!(
            "select o.id, o.message_id, o.sender_id, o.attempts, o.unsettled_attempt, o.maybe_sent from outbox o join messages m on m.id = o.message_id
             where o.state = 'pending' and o.next_attempt_at <= ? and (o.lease_until is null or o.lease_until < ?)
               and not exists (
                 select 1 from messages em cross join outbox e
                 where em.conversation_id = m.conversation_id and e.message_id = em.id and e.state = 'pending'
                   and (e.created_at < o.created_at or (e.created_at = o.created_at and e.id < o.id)))
             order by o.next_attempt_at, o.id limit ?{lock}"
        ),
        params![now, now, limit],
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let claimed = Claimed {
            outbox_id: r.string(0)?,
            message_id: r.string(1)?,
            sender_id: r.string(2)?,
            attempts: r.i64(3)?,
            maybe_sent: r.bool(4)? || r.bool(5)?,
        };
        // The next attempt moves to the lease's end: claimed rows leave the due range of the index,
        // so the next claim (and `next_due_at`) does not walk every send in flight. This attempt is
        // unsettled until its outcome is recorded; an unsettled earlier one is remembered.
        c.execute_later(
            "update outbox set lease_until = ?, next_attempt_at = ?, attempts = attempts + 1,
                 maybe_sent = ?, unsettled_attempt = 1, updated_at = ? where id = ?",
            params![
                now + lease_ms,
                now + lease_ms,
                claimed.maybe_sent,
                now,
                &claimed.outbox_id
            ]
            .to_vec(),
        )?;
        out.push(claimed);
    }
    Ok(out)
}

pub fn complete(c: &mut dyn Conn, outbox_id: &str, now: i64) -> Result<(), StoreError> {
    c.execute_later(
        "update outbox set state = 'done', lease_until = null, last_error = null, unsettled_attempt = 0, updated_at = ?
         where id = ?",
        params![now, outbox_id].to_vec(),
    )?;
    Ok(())
}

/// Schedules another attempt after the provider refused this one (it answered, so it does not have
/// the message): the attempt is settled.
pub fn retry_at(
    c: &mut dyn Conn,
    outbox_id: &str,
    next_attempt_at: i64,
    error: &str,
    now: i64,
) -> Result<(), StoreError> {
    c.execute_later(
        "update outbox set next_attempt_at = ?, lease_until = null, last_error = ?, unsettled_attempt = 0, updated_at = ?
         where id = ?",
        params![next_attempt_at, error, now, outbox_id].to_vec(),
    )?;
    Ok(())
}

/// Schedules another attempt after one whose outcome is unknown (no answer: a timeout or a dropped
/// connection after the request left): the attempt stays unsettled, so the next claim knows the
/// provider may have the message.
pub fn retry_unsettled_at(
    c: &mut dyn Conn,
    outbox_id: &str,
    next_attempt_at: i64,
    error: &str,
    now: i64,
) -> Result<(), StoreError> {
    c.execute_later(
        "update outbox set next_attempt_at = ?, lease_until = null, last_error = ?, updated_at = ? where id = ?",
        params![next_attempt_at, error, now, outbox_id].to_vec(),
    )?;
    Ok(())
}

/// The claimed attempt never reached the provider (the pacer put the row back): it is settled.
pub fn settle_unsent(c: &mut dyn Conn, outbox_id: &str) -> Result<(), StoreError> {
    c.execute_later(
        "update outbox set unsettled_attempt = 0 where id = ? and state = 'pending'",
        params![outbox_id].to_vec(),
    )?;
    Ok(())
}

pub fn dead(c: &mut dyn Conn, outbox_id: &str, error: &str, now: i64) -> Result<(), StoreError> {
    c.execute_later(
        "update outbox set state = 'dead', lease_until = null, last_error = ?, updated_at = ? where id = ?",
        params![error, now, outbox_id].to_vec(),
    )?;
    Ok(())
}

/// When the next pending row becomes due (for the dispatcher's sleep), if any. A claimed row's next
/// attempt is its lease's end (see [`claim_due`]), so this is one index lookup.
pub fn next_due_at(c: &mut dyn Conn) -> Result<Option<i64>, StoreError> {
    c.query_one("select min(next_attempt_at) from outbox where state = 'pending'", &[])?
        .opt_i64(0)
}

/// Rows waiting to be sent (for metrics and the dispatcher-lag gauge): count and oldest due time.
pub fn backlog(c: &mut dyn Conn, now: i64) -> Result<(i64, Option<i64>), StoreError> {
    let r = c.query_one(
        "select count(*), min(next_attempt_at) from outbox where state = 'pending' and next_attempt_at <= ?",
        params![now],
    )?;
    Ok((r.i64(0)?, r.opt_i64(1)?))
}
