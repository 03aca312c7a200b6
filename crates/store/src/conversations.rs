//! Conversations: threads between a contact and a business number on one channel, listed in the
//! shared inbox newest activity first. An inbound message joins the contact's open thread with that
//! number, or starts a new one.

use crate::orgs::Scope;
use crate::sql::{Conn, Row, Val};
use crate::{params, StoreError};
use openline_domain::{Channel, ConversationStatus};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Conversation {
    pub id: String,
    pub org_id: String,
    pub channel: Channel,
    pub status: ConversationStatus,
    pub contact_id: String,
    pub contact_name: Option<String>,
    pub contact_phone: Option<String>,
    pub sender_id: String,
    pub sender_phone: String,
    pub owner_user_id: Option<String>,
    /// When the contact last wrote; WhatsApp's 24-hour window runs from here.
    pub last_inbound_at: Option<i64>,
    pub last_activity_at: i64,
    pub last_message_preview: Option<String>,
    pub unread_count: i64,
    pub created_at: i64,
}

const COLS: &str = "v.id, v.org_id, v.channel, v.status, v.contact_id, coalesce(ct.name, ct.whatsapp_name), ct.phone,
    v.sender_id, s.phone_number, v.owner_user_id, v.last_inbound_at, v.last_activity_at, v.last_message_preview,
    v.unread_count, v.created_at";
const FROM: &str = "from conversations v join contacts ct on ct.id = v.contact_id join senders s on s.id = v.sender_id";

fn from_row(r: &Row) -> Result<Conversation, StoreError> {
    Ok(Conversation {
        id: r.string(0)?,
        org_id: r.string(1)?,
        channel: r.parsed(2, Channel::parse)?,
        status: r.parsed(3, ConversationStatus::parse)?,
        contact_id: r.string(4)?,
        contact_name: r.opt_string(5)?,
        contact_phone: r.opt_string(6)?,
        sender_id: r.string(7)?,
        sender_phone: r.string(8)?,
        owner_user_id: r.opt_string(9)?,
        last_inbound_at: r.opt_i64(10)?,
        last_activity_at: r.i64(11)?,
        last_message_preview: r.opt_string(12)?,
        unread_count: r.i64(13)?,
        created_at: r.i64(14)?,
    })
}

/// The contact's open (not resolved) thread with this number on this channel, created if none.
pub fn find_or_create_open(
    c: &mut dyn Conn,
    org_id: &str,
    channel: Channel,
    contact_id: &str,
    sender_id: &str,
    now: i64,
) -> Result<String, StoreError> {
    let (sql, vals) = open_thread_read(org_id, channel, contact_id, sender_id);
    if let Some(r) = c.query_opt(sql, &vals)? {
        return r.string(0);
    }
    create_open(c, org_id, channel, contact_id, sender_id, now)
}

/// Opens a new thread with the contact on the sender's number.
pub(crate) fn create_open(
    c: &mut dyn Conn,
    org_id: &str,
    channel: Channel,
    contact_id: &str,
    sender_id: &str,
    now: i64,
) -> Result<String, StoreError> {
    let id = openline_domain::ids::new_id("conv");
    create_open_many(
        c,
        &[NewThread {
            id: &id,
            org_id,
            channel,
            contact_id,
            sender_id,
            now,
            inbound: None,
        }],
    )?;
    Ok(id)
}

/// A thread to open, for [`create_open_many`].
pub(crate) struct NewThread<'a> {
    pub id: &'a str,
    pub org_id: &'a str,
    pub channel: Channel,
    pub contact_id: &'a str,
    pub sender_id: &'a str,
    pub now: i64,
    /// The inbound messages that open it, when a batch of them does: the thread is created as
    /// [`touch_inbound_many`] would leave it, instead of created and then updated in the same
    /// transaction (on PostgreSQL a second version of the row, with an entry in each of its
    /// indexes, and foreign-key checks the update of a row this transaction inserted cannot skip).
    pub inbound: Option<&'a InboundTouch>,
}

/// Opens new threads in one statement.
pub(crate) fn create_open_many(c: &mut dyn Conn, threads: &[NewThread<'_>]) -> Result<(), StoreError> {
    if threads.is_empty() {
        return Ok(());
    }
    let mut vals = Vec::with_capacity(threads.len() * 11);
    for t in threads {
        let (window_at, preview, unread, at) = match t.inbound {
            Some(i) => (i.window_at, i.preview.as_deref().map(preview_text), i.count, i.now),
            None => (None, None, 0, t.now),
        };
        vals.extend([
            Val::from(t.id),
            Val::from(t.org_id),
            Val::from(t.channel.as_str()),
            Val::from(t.contact_id),
            Val::from(t.sender_id),
            Val::from(window_at),
            Val::I64(at),
            Val::from(preview),
            Val::I64(unread),
            Val::I64(t.now),
            Val::I64(at),
        ]);
    }
    c.execute_later(
        &format!(
            "insert into conversations (id, org_id, channel, contact_id, sender_id, status, last_inbound_at,
                 last_activity_at, last_message_preview, unread_count, created_at, updated_at)
             values {}",
            crate::sql::value_rows(threads.len(), "(?, ?, ?, ?, ?, 'new', ?, ?, ?, ?, ?, ?)")
        ),
        vals,
    )?;
    Ok(())
}

/// A preview as a thread keeps it: its first 120 characters.
fn preview_text(p: &str) -> String {
    p.chars().take(120).collect()
}

/// Records one of the business's own messages (a send, a notice) in the thread's summary: activity
/// and preview; the window and the unread count never move for them. Inbound messages go through
/// `touch_inbound_many` (with the messages, see `messages::insert_inbound_many`).
pub fn touch(c: &mut dyn Conn, id: &str, preview: Option<&str>, now: i64) -> Result<(), StoreError> {
    let preview = preview.map(preview_text);
    c.execute_later(
        "update conversations set last_activity_at = ?, last_message_preview = ?, updated_at = ? where id = ?",
        params![now, preview, now, id].to_vec(),
    )?;
    Ok(())
}

/// One thread's share of a batch of inbound messages, for [`touch_inbound_many`].
#[derive(Debug, Clone)]
pub(crate) struct InboundTouch {
    pub id: String,
    /// The latest time one of them was sent by the contact, when any re-opens the window.
    pub window_at: Option<i64>,
    /// The preview of the last of them.
    pub preview: Option<String>,
    /// How many arrived (each is unread).
    pub count: i64,
    pub now: i64,
}

/// The most threads one `update` statement carries.
const TOUCHES_PER_UPDATE: usize = 64;

/// What a batch of inbound messages does to each of its threads, one statement per
/// [`TOUCHES_PER_UPDATE`] threads: the window (moved only forward, by messages the contact wrote),
/// activity, preview and unread count.
pub(crate) fn touch_inbound_many(c: &mut dyn Conn, touches: &[InboundTouch]) -> Result<(), StoreError> {
    for chunk in touches.chunks(TOUCHES_PER_UPDATE) {
        let mut vals = Vec::with_capacity(chunk.len() * 5);
        for t in chunk {
            vals.extend([
                Val::from(t.id.as_str()),
                Val::from(t.window_at),
                Val::from(t.preview.as_deref().map(preview_text)),
                Val::I64(t.count),
                Val::I64(t.now),
            ]);
        }
        // The ids again, as a key lookup on the threads: joined only to the derived table,
        // PostgreSQL (estimating a young, never-analysed table) scanned every thread, and with it
        // every dead version earlier updates left (6-8 ms an update, growing as the run went on).
        vals.extend(chunk.iter().map(|t| Val::from(t.id.as_str())));
        let ids = crate::sql::placeholders(chunk.len());
        let rows = crate::sql::typed_rows(
            chunk.len(),
            &[
                ("w_id", "text"),
                ("w_at", "bigint"),
                ("w_preview", "text"),
                ("w_n", "bigint"),
                ("w_now", "bigint"),
            ],
        );
        c.execute_later(
            &format!(
                "update conversations set
                     last_inbound_at = case when v.w_at is not null and (last_inbound_at is null or last_inbound_at < v.w_at)
                         then v.w_at else last_inbound_at end,
                     last_activity_at = v.w_now, last_message_preview = v.w_preview,
                     unread_count = unread_count + v.w_n, updated_at = v.w_now
                 from ({rows}) as v
                 where conversations.id = v.w_id and conversations.id in ({ids})"
            ),
            vals,
        )?;
    }
    Ok(())
}

pub fn get(c: &mut dyn Conn, scope: &Scope, id: &str) -> Result<Conversation, StoreError> {
    let (ph, mut vals) = scope.in_list();
    vals.insert(0, Val::from(id));
    from_row(&c.query_one(
        &format!("select {COLS} {FROM} where v.id = ? and v.org_id in ({ph})"),
        &vals,
    )?)
}

/// Where a page of the inbox ended: the last row's activity time and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InboxCursor {
    pub last_activity_at: i64,
    pub id: String,
}

/// The inbox, newest activity first, `limit` rows after `cursor`.
pub fn list(
    c: &mut dyn Conn,
    scope: &Scope,
    cursor: Option<&InboxCursor>,
    limit: i64,
) -> Result<Vec<Conversation>, StoreError> {
    let (ph, mut vals) = scope.in_list();
    let mut sql = format!("select {COLS} {FROM} where v.org_id in ({ph})");
    if let Some(cur) = cursor {
        sql.push_str(" and (v.last_activity_at < ? or (v.last_activity_at = ? and v.id < ?))");
        vals.extend([
            Val::I64(cur.last_activity_at),
            Val::I64(cur.last_activity_at),
            Val::from(&cur.id),
        ]);
    }
    sql.push_str(" order by v.last_activity_at desc, v.id desc limit ?");
    vals.push(Val::I64(limit));
    c.query(&sql, &vals)?.iter().map(from_row).collect()
}

/// Adds a user to a thread's participants unless they are in it already (they wrote in it),
/// journaled as `participant.joined` with the user as its actor. See `participants` for colleagues
/// added, leaving, removals and transfers.
pub fn join(c: &mut dyn Conn, conversation_id: &str, user_id: &str, now: i64) -> Result<bool, StoreError> {
    // Every send by an agent joins; usually they are in already, which one lookup settles.
    if crate::participants::current_row(c, conversation_id, user_id)?.is_some() {
        return Ok(false);
    }
    let org_id = c
        .query_one(
            "select org_id from conversations where id = ?",
            params![conversation_id],
        )?
        .string(0)?;
    let actor = match c.query_opt("select email from users where id = ?", params![user_id])? {
        Some(r) => crate::journal::Actor::user(user_id, r.string(0)?),
        None => crate::journal::Actor::System,
    };
    let change = crate::participants::open(c, &org_id, conversation_id, user_id, &actor, now)?;
    Ok(matches!(change, crate::participants::Change::Done { .. }))
}

/// When the contact last wrote to this business number, on any thread: the 24-hour window is per
/// number and contact, not per thread.
pub fn last_inbound_at(
    c: &mut dyn Conn,
    org_id: &str,
    contact_id: &str,
    sender_id: &str,
) -> Result<Option<i64>, StoreError> {
    let (sql, vals) = last_inbound_read(org_id, contact_id, sender_id);
    c.query_one(sql, &vals)?.opt_i64(0)
}

/// The statement [`last_inbound_at`] runs, for [`Conn::prefetch`].
pub fn last_inbound_read(org_id: &str, contact_id: &str, sender_id: &str) -> (&'static str, Vec<Val>) {
    (
        "select max(last_inbound_at) from conversations where org_id = ? and contact_id = ? and sender_id = ?",
        params![org_id, contact_id, sender_id].to_vec(),
    )
}

/// The lookup of the contact's open thread [`find_or_create_open`] makes, for [`Conn::prefetch`].
pub fn open_thread_read(org_id: &str, channel: Channel, contact_id: &str, sender_id: &str) -> (&'static str, Vec<Val>) {
    (
        "select id from conversations where org_id = ? and contact_id = ? and sender_id = ? and channel = ? and status <> 'resolved'
         order by last_activity_at desc, id desc limit 1",
        params![org_id, contact_id, sender_id, channel.as_str()].to_vec(),
    )
}

/// The contact a thread is with.
pub fn contact_of(c: &mut dyn Conn, conversation_id: &str) -> Result<String, StoreError> {
    c.query_one(
        "select contact_id from conversations where id = ?",
        params![conversation_id],
    )?
    .string(0)
}
