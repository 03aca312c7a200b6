//! Storing inbound messages several at a time.
//!
//! Each statement costs a round trip on PostgreSQL, and a webhook's message took a dozen (is it a
//! duplicate, who is the contact, which thread, insert, thread summary, participants, archive):
//! the single writer did about a thousand webhooks a second however many arrived together. A batch
//! of messages (the server gathers concurrent webhooks into one) now takes a fixed number of
//! statements whatever its size: one lookup for duplicates, one for the contacts, one for their open
//! threads, one for the participants, one insert of the messages, one update of the threads and one
//! insert of the archive entries (each per 64 rows). New contacts and new threads cost one insert
//! (and, for contacts, one lookup) for the batch; only a changed profile name costs a statement of
//! its own.
//!
//! One message is a batch of one ([`super::insert_inbound`]): there is one way to store an inbound
//! message, so every test of the single path tests this one.

use super::{message_payload, preview, InboundOutcome, Message, NewInbound};
use crate::contacts::{self, KnownContact};
use crate::conversations::{self, InboundTouch};
use crate::sql::{value_rows, Conn, Val};
use crate::StoreError;
use openline_domain::{Channel, DeliveryStatus, Direction};
use std::collections::{HashMap, HashSet};

/// One message of a batch for [`insert_inbound_many`].
#[derive(Clone, Copy)]
pub struct InboundItem<'a, 'b> {
    pub message: &'b NewInbound<'a>,
    /// Whether the contact wrote it, so it re-opens their 24-hour window (a provider's `system`
    /// message about the contact does not).
    pub opens_window: bool,
}

/// The most rows one statement carries.
const ROWS: usize = 64;

/// Stores a batch of inbound messages in order, each with its contact and thread, or recognises it
/// as a duplicate (of a stored message or of an earlier one in the batch). The outcomes are in the
/// batch's order, each stored one with its contact's id. Everything happens in the caller's
/// transaction: on an error, the caller's transaction (or savepoint) must be rolled back.
pub fn insert_inbound_many(
    c: &mut dyn Conn,
    items: &[InboundItem<'_, '_>],
) -> Result<Vec<(InboundOutcome, Option<String>)>, StoreError> {
    // Before anything is written: a message nobody can be found for fails the batch untouched.
    let keys = items
        .iter()
        .map(|i| contact_key(i.message))
        .collect::<Result<Vec<_>, _>>()?;
    let fresh = new_ones(c, items)?;
    if fresh.is_empty() {
        return Ok(items.iter().map(|_| (InboundOutcome::Duplicate, None)).collect());
    }
    let contact_ids = resolve_contacts(c, items, &keys, &fresh)?;
    let (conversation_ids, new_threads) = resolve_threads(c, items, &fresh, &contact_ids)?;

    let mut stored: Vec<Message> = Vec::with_capacity(fresh.len());
    for (&i, conversation_id) in fresh.iter().zip(conversation_ids) {
        let m = items[i].message;
        stored.push(Message {
            id: openline_domain::ids::new_id("msg"),
            org_id: m.org_id.to_owned(),
            conversation_id,
            direction: Direction::In,
            kind: m.kind,
            body: m.body.map(str::to_owned),
            media: m.media.cloned(),
            template: None,
            author_user_id: None,
            status: DeliveryStatus::Received,
            provider: Some(m.provider),
            provider_message_id: Some(m.provider_message_id.to_owned()),
            reply_to: m.reply_to.map(str::to_owned),
            error_code: None,
            error_title: None,
            error_explanation: None,
            created_at: m.now,
            updated_at: m.now,
            sent_at: None,
            delivered_at: None,
            read_at: None,
            queue_reason: None,
            queue_explanation: None,
            dlp: None,
            dlp_flagged: false,
            possible_duplicate: false,
            duplicate_confirmed: false,
        });
    }
    // A thread opened by this batch is created as the batch leaves it; the others are updated.
    let touches = thread_touches(items, &fresh, &stored);
    create_threads(c, items, &new_threads, &touches)?;
    insert_rows(c, items, &fresh, &stored)?;
    let created: HashSet<&str> = new_threads.iter().map(|(_, _, id)| id.as_str()).collect();
    let existing: Vec<InboundTouch> = touches
        .into_iter()
        .filter(|t| !created.contains(t.id.as_str()))
        .collect();
    conversations::touch_inbound_many(c, &existing)?;
    archive(c, &stored)?;

    let mut outcomes: Vec<(InboundOutcome, Option<String>)> =
        items.iter().map(|_| (InboundOutcome::Duplicate, None)).collect();
    for ((i, message), contact_id) in fresh.into_iter().zip(stored).zip(contact_ids) {
        outcomes[i] = (InboundOutcome::Stored(Box::new(message)), Some(contact_id));
    }
    Ok(outcomes)
}

/// How a message's contact is found: by number, or by WhatsApp user id when the number is withheld.
fn contact_key<'a>(m: &NewInbound<'a>) -> Result<(&'static str, &'a str), StoreError> {
    match (m.from_phone, m.wa_user_id) {
        (Some(p), _) => Ok(("phone", p)),
        (None, Some(u)) => Ok(("wa_user_id", u)),
        (None, None) => Err(StoreError::Decode("an inbound message without a sender".into())),
    }
}

/// The indexes of the messages not stored before and not earlier in the batch.
fn new_ones(c: &mut dyn Conn, items: &[InboundItem<'_, '_>]) -> Result<Vec<usize>, StoreError> {
    let mut known: HashSet<(String, String)> = HashSet::new();
    for chunk in items.chunks(ROWS) {
        let keys: Vec<Vec<Val>> = chunk
            .iter()
            .map(|i| {
                vec![
                    Val::from(i.message.provider.as_str()),
                    Val::from(i.message.provider_message_id),
                ]
            })
            .collect();
        let rows = c.lookup_each(
            "select provider, provider_message_id from messages where provider = ? and provider_message_id = ?",
            &keys,
        )?;
        for r in rows {
            known.insert((r.string(0)?, r.string(1)?));
        }
    }
    let mut fresh = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let key = (
            item.message.provider.as_str().to_owned(),
            item.message.provider_message_id.to_owned(),
        );
        // `insert` is false for one stored before or already met in this batch.
        if known.insert(key) {
            fresh.push(i);
        }
    }
    Ok(fresh)
}

/// Each new message's contact id: the known ones looked up together (and rewritten only when the
/// message says something new about them), the others created together.
fn resolve_contacts(
    c: &mut dyn Conn,
    items: &[InboundItem<'_, '_>],
    keys: &[(&'static str, &str)],
    fresh: &[usize],
) -> Result<Vec<String>, StoreError> {
    let mut wanted: HashMap<(&str, &'static str), Vec<&str>> = HashMap::new();
    for &i in fresh {
        let (col, key) = keys[i];
        let list = wanted.entry((items[i].message.org_id, col)).or_default();
        if !list.contains(&key) {
            list.push(key);
        }
    }
    let mut known: HashMap<(String, &'static str, String), KnownContact> = HashMap::new();
    for ((org_id, col), list) in wanted {
        for chunk in list.chunks(ROWS) {
            for (key, contact) in contacts::known_by(c, org_id, col, chunk)? {
                known.insert((org_id.to_owned(), col, key), contact);
            }
        }
    }
    // The new ones, created together: one insert per organization and key column, then one lookup
    // (a contact another node created meanwhile is kept, `on conflict do nothing`, and found by the
    // lookup like the rest). One by one, each new contact was three round trips: on PostgreSQL a
    // burst from 10,000 new contacts went at about 1,000 messages a second.
    let mut missing: HashMap<(&str, &'static str), Vec<usize>> = HashMap::new();
    let mut seen: HashSet<(&str, &'static str, &str)> = HashSet::new();
    for &i in fresh {
        let m = items[i].message;
        let (col, key) = keys[i];
        if !known.contains_key(&(m.org_id.to_owned(), col, key.to_owned())) && seen.insert((m.org_id, col, key)) {
            missing.entry((m.org_id, col)).or_default().push(i);
        }
    }
    for ((org_id, col), list) in missing {
        for chunk in list.chunks(ROWS) {
            let ids: Vec<String> = chunk.iter().map(|_| openline_domain::ids::new_id("ct")).collect();
            let new: Vec<contacts::NewInboundContact<'_>> = chunk
                .iter()
                .zip(&ids)
                .map(|(&i, id)| {
                    let m = items[i].message;
                    contacts::NewInboundContact {
                        id,
                        phone: m.from_phone,
                        wa_user_id: m.wa_user_id,
                        profile_name: m.profile_name,
                        now: m.now,
                    }
                })
                .collect();
            contacts::insert_if_absent(c, org_id, col, &new)?;
            let created: Vec<&str> = chunk.iter().map(|&i| keys[i].1).collect();
            for (key, contact) in contacts::known_by(c, org_id, col, &created)? {
                known.insert((org_id.to_owned(), col, key), contact);
            }
        }
    }
    let mut ids = Vec::with_capacity(fresh.len());
    for &i in fresh {
        let m = items[i].message;
        let (col, key) = keys[i];
        let map_key = (m.org_id.to_owned(), col, key.to_owned());
        // Every message's contact is in `known` now, found or created (an insert that lost to
        // another node's is found by the lookup after it).
        let contact = known
            .get_mut(&map_key)
            .ok_or_else(|| StoreError::Decode("a message of the batch has no contact".into()))?;
        contacts::refresh_from_inbound(c, contact, m.profile_name, m.wa_user_id, m.now)?;
        ids.push(contact.id.clone());
    }
    Ok(ids)
}

/// Each new message's thread: the contact's open thread on the number and channel (the most
/// recently active, as [`conversations::find_or_create_open`] chooses), looked up together; and the
/// new threads to open where there are none (with their ids, already among the answers).
fn resolve_threads<'c>(
    c: &mut dyn Conn,
    items: &[InboundItem<'_, '_>],
    fresh: &[usize],
    contact_ids: &'c [String],
) -> Result<(Vec<String>, Vec<PlannedThread<'c>>), StoreError> {
    let mut wanted: HashMap<(&str, &str, Channel), Vec<&str>> = HashMap::new();
    for (&i, contact_id) in fresh.iter().zip(contact_ids) {
        let m = items[i].message;
        let list = wanted.entry((m.org_id, m.sender_id, m.channel)).or_default();
        if !list.contains(&contact_id.as_str()) {
            list.push(contact_id);
        }
    }
    // (org, sender, channel, contact) → thread
    let mut open: HashMap<(String, String, Channel, String), String> = HashMap::new();
    for ((org_id, sender_id, channel), list) in wanted {
        for chunk in list.chunks(ROWS) {
            let keys: Vec<Vec<Val>> = chunk
                .iter()
                .map(|contact_id| {
                    vec![
                        Val::from(*contact_id),
                        Val::from(sender_id),
                        Val::from(channel.as_str()),
                    ]
                })
                .collect();
            // Each contact's most recently active open thread, as `find_or_create_open` picks it
            // (index conversations_contact_thread); the organization is checked on each row (a
            // contact belongs to one).
            let rows = c.lookup_each(
                "select * from (select id, contact_id, org_id from conversations
                     where contact_id = ? and sender_id = ? and channel = ? and status <> 'resolved'
                     order by last_activity_at desc, id desc limit 1) as t",
                &keys,
            )?;
            for r in rows {
                if r.string(2)? != org_id {
                    continue;
                }
                open.entry((org_id.to_owned(), sender_id.to_owned(), channel, r.string(1)?))
                    .or_insert(r.string(0)?);
            }
        }
    }
    // Contacts with no open thread get one, created together (by `create_threads`).
    let mut new_threads: Vec<PlannedThread<'c>> = Vec::new();
    for (&i, contact_id) in fresh.iter().zip(contact_ids) {
        let m = items[i].message;
        let key = (
            m.org_id.to_owned(),
            m.sender_id.to_owned(),
            m.channel,
            contact_id.clone(),
        );
        if let std::collections::hash_map::Entry::Vacant(e) = open.entry(key) {
            let id = openline_domain::ids::new_id("conv");
            e.insert(id.clone());
            new_threads.push((i, contact_id, id));
        }
    }
    // Every message's thread is in `open` now, found or to be created.
    let ids = fresh
        .iter()
        .zip(contact_ids)
        .map(|(&i, contact_id)| {
            let m = items[i].message;
            open.get(&(
                m.org_id.to_owned(),
                m.sender_id.to_owned(),
                m.channel,
                contact_id.clone(),
            ))
            .cloned()
            .ok_or_else(|| StoreError::Decode("a message of the batch has no thread".into()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((ids, new_threads))
}

/// A thread the batch opens: the index of the item that opens it, its contact and its new id.
type PlannedThread<'c> = (usize, &'c str, String);

/// Opens the batch's new threads, each with what its messages do to it (`touches`).
fn create_threads(
    c: &mut dyn Conn,
    items: &[InboundItem<'_, '_>],
    new_threads: &[PlannedThread<'_>],
    touches: &[InboundTouch],
) -> Result<(), StoreError> {
    let by_id: HashMap<&str, &InboundTouch> = touches.iter().map(|t| (t.id.as_str(), t)).collect();
    for chunk in new_threads.chunks(ROWS) {
        let threads: Vec<conversations::NewThread<'_>> = chunk
            .iter()
            .map(|(i, contact_id, id)| {
                let m = items[*i].message;
                conversations::NewThread {
                    id,
                    org_id: m.org_id,
                    channel: m.channel,
                    contact_id,
                    sender_id: m.sender_id,
                    now: m.now,
                    inbound: by_id.get(id.as_str()).copied(),
                }
            })
            .collect();
        conversations::create_open_many(c, &threads)?;
    }
    Ok(())
}

fn insert_rows(
    c: &mut dyn Conn,
    items: &[InboundItem<'_, '_>],
    fresh: &[usize],
    stored: &[Message],
) -> Result<(), StoreError> {
    for (idx, msgs) in fresh.chunks(ROWS).zip(stored.chunks(ROWS)) {
        let mut vals = Vec::with_capacity(msgs.len() * 12);
        for (&i, msg) in idx.iter().zip(msgs) {
            let m = items[i].message;
            vals.extend([
                Val::from(msg.id.as_str()),
                Val::from(m.org_id),
                Val::from(msg.conversation_id.as_str()),
                Val::from(m.kind.as_str()),
                Val::from(m.body),
                Val::from(m.media.map(|v| v.to_string())),
                Val::from(m.provider.as_str()),
                Val::from(m.provider_message_id),
                Val::from(m.reply_to),
                Val::from(m.raw.map(|v| v.to_string())),
                Val::I64(m.now),
                Val::I64(m.now),
            ]);
        }
        c.execute_later(
            &format!(
                "insert into messages (id, org_id, conversation_id, direction, kind, body, media, status, provider,
                     provider_message_id, reply_to, raw, created_at, updated_at)
                 values {}",
                value_rows(msgs.len(), "(?, ?, ?, 'in', ?, ?, ?, 'received', ?, ?, ?, ?, ?, ?)")
            ),
            vals,
        )?;
    }
    Ok(())
}

/// Each thread once: its window (from the latest message the contact wrote), activity, the last
/// message's preview and the unread count.
fn thread_touches(items: &[InboundItem<'_, '_>], fresh: &[usize], stored: &[Message]) -> Vec<InboundTouch> {
    let mut touches: Vec<InboundTouch> = Vec::new();
    let mut index: HashMap<&str, usize> = HashMap::new();
    for (&i, msg) in fresh.iter().zip(stored) {
        let item = items[i];
        let m = item.message;
        let window_at = item.opens_window.then_some(m.sent_at);
        let at = *index.entry(msg.conversation_id.as_str()).or_insert_with(|| {
            touches.push(InboundTouch {
                id: msg.conversation_id.clone(),
                window_at: None,
                preview: None,
                count: 0,
                now: m.now,
            });
            touches.len() - 1
        });
        let t = &mut touches[at];
        t.window_at = t.window_at.max(window_at);
        t.preview = preview(m.kind, m.body);
        t.count += 1;
        t.now = m.now;
    }
    touches
}

/// The archive entries, in the batch's order, each with its thread's participants.
fn archive(c: &mut dyn Conn, stored: &[Message]) -> Result<(), StoreError> {
    let mut threads: Vec<&str> = stored.iter().map(|m| m.conversation_id.as_str()).collect();
    threads.sort_unstable();
    threads.dedup();
    // (joined_at, user_id) per thread, in the order `participants_of` gives them.
    let mut joined: HashMap<String, std::collections::BTreeSet<(i64, String)>> = HashMap::new();
    for chunk in threads.chunks(ROWS) {
        let keys: Vec<Vec<Val>> = chunk.iter().map(|id| vec![Val::from(*id)]).collect();
        let rows = c.lookup_each(
            "select conversation_id, user_id, joined_at from participants where conversation_id = ? and left_at is null",
            &keys,
        )?;
        for r in rows {
            joined
                .entry(r.string(0)?)
                .or_default()
                .insert((r.i64(2)?, r.string(1)?));
        }
    }
    let participants: HashMap<String, Vec<String>> = joined
        .into_iter()
        .map(|(thread, people)| (thread, people.into_iter().map(|(_, user)| user).collect()))
        .collect();
    let mut payloads = Vec::with_capacity(stored.len());
    for m in stored {
        let people = participants.get(&m.conversation_id).cloned().unwrap_or_default();
        payloads.push(message_payload(m, None, people)?);
    }
    // One chain per organization, each in the batch's order.
    let entries: Vec<(&str, crate::journal::NewEntry<'_>)> = stored
        .iter()
        .zip(&payloads)
        .map(|(m, payload)| {
            let entry = crate::journal::NewEntry {
                kind: "message.received",
                subject_id: Some(&m.id),
                payload,
                at: m.created_at,
            };
            (m.org_id.as_str(), entry)
        })
        .collect();
    crate::journal::append_by_org(c, &entries)
}
