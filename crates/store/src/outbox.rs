//! The transactional outbox. A message that may be sent gets an outbox row in the same transaction
//! that stores it; dispatchers claim due rows with a lease (on PostgreSQL with `skip locked`, so two
//! nodes never claim the same row), send, and mark them done, retry them later, or dead. Within a
//! thread, rows are claimed one at a time in the order they were queued, so a contact receives
//! messages in the order they were written even though the dispatcher sends many threads at once.

use crate::sql::{Backend, Conn};
use crate::{params, StoreError};

pub fn enqueue(c: &mut dyn Conn, message_id: &str, org_id: &str, sender_id: &str, now: i64) -> Result<(), StoreError> {
    c.execute(
        "insert into outbox (id, message_id, org_id, sender_id, state, attempts, next_attempt_at, created_at, updated_at)
         values (?, ?, ?, ?, 'pending', 0, ?, ?, ?)",
        params![openline_domain::ids::new_id("obx"), message_id, org_id, sender_id, now, now, now],
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
            "select o.id, o.message_id, o.sender_id, o.attempts from outbox o join messages m on m.id = o.message_id
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
        };
        // The next attempt moves to the lease's end: claimed rows leave the due range of the index,
        // so the next claim (and `next_due_at`) does not walk every send in flight.
        c.execute(
            "update outbox set lease_until = ?, next_attempt_at = ?, attempts = attempts + 1, updated_at = ? where id = ?",
            params![now + lease_ms, now + lease_ms, now, &claimed.outbox_id],
        )?;
        out.push(claimed);
    }
    Ok(out)
}

pub fn complete(c: &mut dyn Conn, outbox_id: &str, now: i64) -> Result<(), StoreError> {
    c.execute(
        "update outbox set state = 'done', lease_until = null, last_error = null, updated_at = ? where id = ?",
        params![now, outbox_id],
    )?;
    Ok(())
}

pub fn retry_at(
    c: &mut dyn Conn,
    outbox_id: &str,
    next_attempt_at: i64,
    error: &str,
    now: i64,
) -> Result<(), StoreError> {
    c.execute(
        "update outbox set next_attempt_at = ?, lease_until = null, last_error = ?, updated_at = ? where id = ?",
        params![next_attempt_at, error, now, outbox_id],
    )?;
    Ok(())
}

pub fn dead(c: &mut dyn Conn, outbox_id: &str, error: &str, now: i64) -> Result<(), StoreError> {
    c.execute(
        "update outbox set state = 'dead', lease_until = null, last_error = ?, updated_at = ? where id = ?",
        params![error, now, outbox_id],
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
