//! Messages in and out, and their delivery status.
//!
//! Inbound: one call stores a webhook's message with its contact and thread, or recognises it as a
//! duplicate (provider message ids are unique), all in the caller's transaction.
//! Outbound: the message and its outbox row are written together, so an accepted send is never lost.
//! Status: every status webhook is kept; the message's status only moves forward; a status for a
//! message whose provider id is not known yet is kept and applied when the id is recorded.
//!
//! Duplicates: a message sent again after an attempt with no recorded outcome (a crash mid-send) is a
//! *possible* duplicate ([`mark_possible_duplicate`]). Sends carry openline's message id to the
//! provider, which echoes it on statuses (`StatusReport::callback_message_id`); statuses for two
//! provider ids of one message make it a *confirmed* duplicate, and both ids are kept
//! (`message_provider_ids`) so statuses for either apply.

use crate::conversations;

mod inbound;
use crate::orgs::Scope;
use crate::sql::{Conn, Row, Val};
use crate::{params, StoreError};
pub use inbound::{insert_inbound_many, InboundItem};
use openline_domain::{DeliveryStatus, Direction, MessageKind, ProviderKind};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Message {
    pub id: String,
    pub org_id: String,
    pub conversation_id: String,
    pub direction: Direction,
    pub kind: MessageKind,
    pub body: Option<String>,
    /// Provider media reference (id, mime type, sha256, caption), for media messages.
    #[schema(value_type = Option<Object>)]
    pub media: Option<serde_json::Value>,
    /// Template name, language and parameters, for template messages.
    #[schema(value_type = Option<Object>)]
    pub template: Option<serde_json::Value>,
    pub author_user_id: Option<String>,
    pub status: DeliveryStatus,
    pub provider: Option<ProviderKind>,
    pub provider_message_id: Option<String>,
    /// The provider message id this message replies to.
    pub reply_to: Option<String>,
    pub error_code: Option<i64>,
    pub error_title: Option<String>,
    /// What the error means and what to do next, in plain words.
    pub error_explanation: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    pub sent_at: Option<i64>,
    pub delivered_at: Option<i64>,
    pub read_at: Option<i64>,
    /// Why a queued message waits (`awaiting_consent`, `window_closed`, `messaging_limit`); absent
    /// once it is released to the dispatcher.
    pub queue_reason: Option<String>,
    /// Why it waits, in plain words, and what the agent can do.
    pub queue_explanation: Option<String>,
    /// The data-loss-prevention verdict applied to it (matches as offsets), if any rule matched.
    #[schema(value_type = Option<Object>)]
    pub dlp: Option<serde_json::Value>,
    /// Flagged by DLP and not yet reviewed by a supervisor.
    pub dlp_flagged: bool,
    /// The provider may have it twice: it was sent again after an attempt whose outcome openline
    /// never recorded (a crash mid-send). Also true when the duplicate is confirmed.
    pub possible_duplicate: bool,
    /// The provider reported two accepted copies (statuses for two provider ids of this message).
    pub duplicate_confirmed: bool,
}

const COLS: &str =
    "m.id, m.org_id, m.conversation_id, m.direction, m.kind, m.body, m.media, m.template, m.author_user_id,
    m.status, m.provider, m.provider_message_id, m.reply_to, m.error_code, m.error_title, m.created_at, m.updated_at,
    m.sent_at, m.delivered_at, m.read_at, m.queue_reason, m.dlp_verdict,
    case when m.dlp_flagged = 1 and m.dlp_reviewed_at is null then 1 else 0 end, m.duplicate";

fn from_row(r: &Row) -> Result<Message, StoreError> {
    let error_code = r.opt_i64(13)?;
    let provider = r.opt_string(10)?.and_then(|p| ProviderKind::parse(&p));
    Ok(Message {
        id: r.string(0)?,
        org_id: r.string(1)?,
        conversation_id: r.string(2)?,
        direction: r.parsed(3, Direction::parse)?,
        kind: r.parsed(4, MessageKind::parse)?,
        body: r.opt_string(5)?,
        media: r.opt_json(6)?,
        template: r.opt_json(7)?,
        author_user_id: r.opt_string(8)?,
        status: r.parsed(9, DeliveryStatus::parse)?,
        provider,
        provider_message_id: r.opt_string(11)?,
        reply_to: r.opt_string(12)?,
        error_code,
        error_title: r.opt_string(14)?,
        error_explanation: error_code.map(|code| {
            match provider {
                Some(ProviderKind::Twilio) => openline_domain::provider_errors::explain_twilio_error(code),
                _ => openline_domain::provider_errors::explain_cloud_api_error(code),
            }
            .explanation
            .to_owned()
        }),
        created_at: r.i64(15)?,
        updated_at: r.i64(16)?,
        sent_at: r.opt_i64(17)?,
        delivered_at: r.opt_i64(18)?,
        read_at: r.opt_i64(19)?,
        queue_explanation: r.opt_string(20)?.map(|q| openline_domain::policy::explain_queue(&q)),
        queue_reason: r.opt_string(20)?,
        dlp: r.opt_json(21)?,
        dlp_flagged: r.bool(22)?,
        possible_duplicate: r.opt_string(23)?.is_some(),
        duplicate_confirmed: r.opt_string(23)?.as_deref() == Some("confirmed"),
    })
}

pub fn get_any(c: &mut dyn Conn, id: &str) -> Result<Message, StoreError> {
    from_row(&c.query_one(&format!("select {COLS} from messages m where m.id = ?"), params![id])?)
}

pub fn get(c: &mut dyn Conn, scope: &Scope, id: &str) -> Result<Message, StoreError> {
    let (ph, mut vals) = scope.in_list();
    vals.insert(0, Val::from(id));
    from_row(&c.query_one(
        &format!("select {COLS} from messages m where m.id = ? and m.org_id in ({ph})"),
        &vals,
    )?)
}

/// Where a page of a thread ended: the oldest row's time and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ThreadCursor {
    pub created_at: i64,
    pub id: String,
}

/// Up to `limit` messages of a thread older than `before` (default: the newest), oldest first.
pub fn list_for_conversation(
    c: &mut dyn Conn,
    scope: &Scope,
    conversation_id: &str,
    before: Option<&ThreadCursor>,
    limit: i64,
) -> Result<Vec<Message>, StoreError> {
    let (ph, scope_vals) = scope.in_list();
    let mut vals = vec![Val::from(conversation_id)];
    vals.extend(scope_vals);
    let mut sql = format!("select {COLS} from messages m where m.conversation_id = ? and m.org_id in ({ph})");
    if let Some(cur) = before {
        sql.push_str(" and (m.created_at < ? or (m.created_at = ? and m.id < ?))");
        vals.extend([Val::I64(cur.created_at), Val::I64(cur.created_at), Val::from(&cur.id)]);
    }
    sql.push_str(" order by m.created_at desc, m.id desc limit ?");
    vals.push(Val::I64(limit));
    let mut page: Vec<Message> = c.query(&sql, &vals)?.iter().map(from_row).collect::<Result<_, _>>()?;
    page.reverse();
    Ok(page)
}

/// A message received from a contact, as parsed from a webhook.
pub struct NewInbound<'a> {
    pub org_id: &'a str,
    pub sender_id: &'a str,
    pub channel: openline_domain::Channel,
    pub provider: ProviderKind,
    /// E.164, when the provider gives the number.
    pub from_phone: Option<&'a str>,
    pub wa_user_id: Option<&'a str>,
    pub profile_name: Option<&'a str>,
    pub provider_message_id: &'a str,
    pub kind: MessageKind,
    pub body: Option<&'a str>,
    pub media: Option<&'a serde_json::Value>,
    pub reply_to: Option<&'a str>,
    pub raw: Option<&'a serde_json::Value>,
    /// When the contact sent it (provider timestamp); the 24-hour window runs from here.
    pub sent_at: i64,
    pub now: i64,
}

#[derive(Debug, Clone)]
pub enum InboundOutcome {
    /// First time seen: stored.
    Stored(Box<Message>),
    /// A retried webhook: nothing changed.
    Duplicate,
}

/// Stores an inbound message with its contact and thread, or recognises a duplicate. The message
/// re-opens the contact's 24-hour window from its `sent_at`. A batch of one for
/// [`insert_inbound_many`].
pub fn insert_inbound(c: &mut dyn Conn, m: &NewInbound<'_>) -> Result<InboundOutcome, StoreError> {
    insert_inbound_as(c, m, true)
}

/// [`insert_inbound`] for a message the provider wrote on the contact's behalf (WhatsApp's `system`
/// messages: a changed number, a changed identity). It is stored, shown and counted unread like any
/// other, but it is not the contact writing to the business, so it leaves the window as it was: Meta
/// opens the customer-service window only when the user messages the business.
pub fn insert_system_inbound(c: &mut dyn Conn, m: &NewInbound<'_>) -> Result<InboundOutcome, StoreError> {
    insert_inbound_as(c, m, false)
}

fn insert_inbound_as(c: &mut dyn Conn, m: &NewInbound<'_>, opens_window: bool) -> Result<InboundOutcome, StoreError> {
    let mut outcomes = insert_inbound_many(
        c,
        &[InboundItem {
            message: m,
            opens_window,
        }],
    )?;
    outcomes
        .pop()
        .map(|(outcome, _)| outcome)
        .ok_or_else(|| StoreError::Decode("a batch of one inbound message gave no outcome".into()))
}

/// The text shown in the inbox for a message.
fn preview(kind: MessageKind, body: Option<&str>) -> Option<String> {
    match (kind, body) {
        (MessageKind::Text, Some(b)) => Some(b.to_owned()),
        (_, Some(b)) if !b.is_empty() => Some(format!("[{}] {b}", kind.as_str())),
        _ => Some(format!("[{}]", kind.as_str())),
    }
}

/// A message a user sends.
pub struct NewOutbound<'a> {
    pub org_id: &'a str,
    pub conversation_id: &'a str,
    pub sender_id: &'a str,
    pub author_user_id: Option<&'a str>,
    pub kind: MessageKind,
    pub body: Option<&'a str>,
    pub template: Option<&'a serde_json::Value>,
    /// `None`: hand it to the dispatcher now. `Some(reason)`: hold it, queued, until policy releases it.
    pub queue_reason: Option<&'a str>,
    /// A template to a contact outside their window: counts against the messaging limit.
    pub business_initiated: bool,
    pub now: i64,
}

/// Stores an outgoing message and, when it may go now, its outbox row, in the caller's transaction.
pub fn insert_outbound(c: &mut dyn Conn, m: &NewOutbound<'_>) -> Result<Message, StoreError> {
    insert_outbound_with_media(c, m, None)
}

/// [`insert_outbound`] for a media message: `media` is its reference (`{"media_id", "content_type",
/// "sha256", "size_bytes", "caption"}`), archived with it.
pub fn insert_outbound_with_media(
    c: &mut dyn Conn,
    m: &NewOutbound<'_>,
    media: Option<&serde_json::Value>,
) -> Result<Message, StoreError> {
    insert_outbound_rich(
        c,
        m,
        &OutboundExtras {
            media,
            ..OutboundExtras::default()
        },
    )
}

/// What an outgoing message carries beside its body.
#[derive(Debug, Default, Clone, Copy)]
pub struct OutboundExtras<'a> {
    /// A media message's file reference.
    pub media: Option<&'a serde_json::Value>,
    /// The structured content of a location, contact-card, interactive or reaction message, as the
    /// dispatcher builds the provider request from it ([`outbound_content`]). Kept in `raw`, so it is
    /// archived with the message, stripped when content is not recorded and wiped by retention.
    pub content: Option<&'a serde_json::Value>,
    /// The provider message id this message replies to.
    pub reply_to: Option<&'a str>,
}

/// [`insert_outbound`] with a media reference, structured content or a reply.
pub fn insert_outbound_rich(
    c: &mut dyn Conn,
    m: &NewOutbound<'_>,
    extras: &OutboundExtras<'_>,
) -> Result<Message, StoreError> {
    // Read before anything is written: a send can prefetch it (see `participants_read`).
    let participants = participants_of(c, m.conversation_id)?;
    let id = openline_domain::ids::new_id("msg");
    let template = m.template.map(|v| v.to_string());
    let media = extras.media.map(|v| v.to_string());
    let raw = extras.content.map(|v| v.to_string());
    c.execute_later(
        "insert into messages (id, org_id, conversation_id, direction, kind, body, media, template, author_user_id, status, queue_reason,
             business_initiated, raw, reply_to, created_at, updated_at)
         values (?, ?, ?, 'out', ?, ?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?)",
        params![
            &id,
            m.org_id,
            m.conversation_id,
            m.kind.as_str(),
            m.body,
            media,
            template,
            m.author_user_id,
            m.queue_reason,
            m.business_initiated,
            raw,
            extras.reply_to,
            m.now,
            m.now
        ]
        .to_vec(),
    )?;
    if m.queue_reason.is_none() {
        crate::outbox::enqueue(c, &id, m.org_id, m.sender_id, m.now)?;
    }
    conversations::touch(c, m.conversation_id, preview(m.kind, m.body).as_deref(), m.now)?;
    // The row as just written (what `get_any` would read back, without reading it: this runs for
    // every send). The contract test `a_new_outbound_message_is_returned_as_stored` holds the two equal.
    let message = Message {
        id,
        org_id: m.org_id.to_owned(),
        conversation_id: m.conversation_id.to_owned(),
        direction: Direction::Out,
        kind: m.kind,
        body: m.body.map(str::to_owned),
        media: extras.media.cloned(),
        template: m.template.cloned(),
        author_user_id: m.author_user_id.map(str::to_owned),
        status: DeliveryStatus::Queued,
        provider: None,
        provider_message_id: None,
        reply_to: extras.reply_to.map(str::to_owned),
        error_code: None,
        error_title: None,
        error_explanation: None,
        created_at: m.now,
        updated_at: m.now,
        sent_at: None,
        delivered_at: None,
        read_at: None,
        queue_explanation: m.queue_reason.map(openline_domain::policy::explain_queue),
        queue_reason: m.queue_reason.map(str::to_owned),
        dlp: None,
        dlp_flagged: false,
        possible_duplicate: false,
        duplicate_confirmed: false,
    };
    let payload = message_payload(&message, extras.content, participants)?;
    crate::journal::append(
        c,
        &message.org_id,
        "message.created",
        Some(&message.id),
        &payload,
        m.now,
    )?;
    Ok(message)
}

/// The structured content an outgoing message was stored with ([`OutboundExtras::content`]);
/// `None` for kinds that have none, or once retention removed it.
pub fn outbound_content(c: &mut dyn Conn, message_id: &str) -> Result<Option<serde_json::Value>, StoreError> {
    c.query_one(
        "select raw from messages where id = ? and direction = 'out'",
        params![message_id],
    )?
    .opt_json(0)
}

/// A read receipt to send: the latest inbound message of a thread, and the number it came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadReceipt {
    pub message_id: String,
    pub provider_message_id: String,
    /// The Cloud API `phone_number_id` of the business number the message came to.
    pub phone_number_id: String,
}

/// Claims the read receipt of a thread the caller may see: its latest inbound message, when it came
/// through the Cloud API and has not been acknowledged yet (at most once per message, journaled with
/// the user who read it).
/// `None` when there is nothing to acknowledge (no inbound message, SMS or Twilio, already done);
/// `NotFound` when the caller may not see the thread.
pub fn claim_read_receipt(
    c: &mut dyn Conn,
    scope: &Scope,
    conversation_id: &str,
    reader_user_id: &str,
    now: i64,
) -> Result<Option<ReadReceipt>, StoreError> {
    let (ph, scope_vals) = scope.in_list();
    let mut vals = vec![Val::from(conversation_id)];
    vals.extend(scope_vals);
    let Some(conversation) = c.query_opt(
        &format!("select v.org_id, s.phone_number_id from conversations v join senders s on s.id = v.sender_id where v.id = ? and v.org_id in ({ph})"),
        &vals,
    )?
    else {
        return Err(StoreError::NotFound);
    };
    let (org_id, phone_number_id) = (conversation.string(0)?, conversation.string(1)?);
    let Some(latest) = c.query_opt(
        "select id, provider, provider_message_id, read_receipt_at from messages
         where conversation_id = ? and direction = 'in' order by created_at desc, id desc limit 1",
        params![conversation_id],
    )?
    else {
        return Ok(None);
    };
    let (message_id, provider, provider_message_id) = (latest.string(0)?, latest.opt_string(1)?, latest.opt_string(2)?);
    let Some(provider_message_id) = provider_message_id.filter(|_| {
        provider.as_deref() == Some(ProviderKind::CloudApi.as_str()) && latest.opt_i64(3).ok().flatten().is_none()
    }) else {
        return Ok(None);
    };
    // Two agents opening the thread at once: one claims it.
    if c.execute(
        "update messages set read_receipt_at = ? where id = ? and read_receipt_at is null",
        params![now, &message_id],
    )? != 1
    {
        return Ok(None);
    }
    crate::journal::record(
        c,
        &org_id,
        "message.read_receipt",
        &message_id,
        &serde_json::json!({"conversation_id": conversation_id, "provider_message_id": provider_message_id,
            "read_by": reader_user_id}),
        now,
    )?;
    Ok(Some(ReadReceipt {
        message_id,
        provider_message_id,
        phone_number_id,
    }))
}

/// Archives a message with the thread's participants at that moment.
fn archive_message(c: &mut dyn Conn, kind: &str, m: &Message, now: i64) -> Result<(), StoreError> {
    let participants = participants_of(c, &m.conversation_id)?;
    let payload = message_payload(m, None, participants)?;
    crate::journal::append(c, &m.org_id, kind, Some(&m.id), &payload, now)?;
    Ok(())
}

/// Who is in a thread now, in the order they joined: archived with each of its messages. Sorted
/// here rather than by the query: the key's order (thread, user, joined) is not the joining order,
/// so SQLite built a temporary b-tree for a handful of rows on every send.
fn participants_of(c: &mut dyn Conn, conversation_id: &str) -> Result<Vec<String>, StoreError> {
    let (sql, vals) = participants_read(conversation_id);
    let mut joined = c
        .query(sql, &vals)?
        .iter()
        .map(|r| Ok((r.i64(0)?, r.string(1)?)))
        .collect::<Result<Vec<(i64, String)>, StoreError>>()?;
    joined.sort_unstable();
    Ok(joined.into_iter().map(|(_, user)| user).collect())
}

/// The read of the thread's participants a new outgoing message is archived with, for
/// [`Conn::prefetch`].
pub fn participants_read(conversation_id: &str) -> (&'static str, Vec<Val>) {
    (
        "select joined_at, user_id from participants where conversation_id = ? and left_at is null",
        params![conversation_id].to_vec(),
    )
}

/// A message's archive entry: the message as the API shows it (an outgoing message's structured
/// content as its `raw`) and the thread's participants.
fn message_payload(
    m: &Message,
    raw: Option<&serde_json::Value>,
    participants: Vec<String>,
) -> Result<serde_json::Value, StoreError> {
    let mut message = serde_json::to_value(m).map_err(|e| StoreError::Decode(e.to_string()))?;
    if let Some(raw) = raw {
        message["raw"] = raw.clone();
    }
    // Built by hand: `json!` would copy `message` once more. This runs for every message in and out.
    let mut payload = serde_json::Map::new();
    payload.insert("message".to_owned(), message);
    payload.insert("participants".to_owned(), participants.into());
    Ok(serde_json::Value::Object(payload))
}

/// The provider accepted a send and gave its id. Statuses that arrived before this are applied now.
pub fn record_provider_accept(
    c: &mut dyn Conn,
    message_id: &str,
    provider: ProviderKind,
    provider_message_id: &str,
    now: i64,
) -> Result<Message, StoreError> {
    record_provider_accepts(
        c,
        &[ProviderAccept {
            message_id,
            provider,
            provider_message_id,
            now,
        }],
    )?
    .pop()
    .ok_or(StoreError::NotFound)
}

/// One send the provider accepted, for [`record_provider_accepts`].
#[derive(Debug, Clone, Copy)]
pub struct ProviderAccept<'a> {
    pub message_id: &'a str,
    pub provider: ProviderKind,
    pub provider_message_id: &'a str,
    pub now: i64,
}

/// [`record_provider_accept`] for several sends at once, in one transaction: the messages as
/// recorded, in the order given. An unknown message fails the whole call with `NotFound`.
///
/// The dispatcher records accepts in batches (one a millisecond from a number at 1,000/s), so the
/// lookups every accept needs (another provider id of the same message, statuses that came first)
/// and the read-back are one statement for the batch, as are the update of the messages and the
/// archive entries' insert. The rare accepts that find something (a confirmed
/// duplicate, early statuses) are then handled one by one, before they are archived.
pub fn record_provider_accepts(c: &mut dyn Conn, accepts: &[ProviderAccept<'_>]) -> Result<Vec<Message>, StoreError> {
    if accepts.is_empty() {
        return Ok(Vec::new());
    }
    if accepts.len() > ACCEPT_LOOKUP_KEYS {
        // Each lookup is a union of one branch per key: a bounded number of them (SQLite allows at
        // most 500 in one compound select).
        let mut out = Vec::with_capacity(accepts.len());
        for chunk in accepts.chunks(ACCEPT_LOOKUP_KEYS) {
            out.extend(record_provider_accepts(c, chunk)?);
        }
        return Ok(out);
    }
    let mut by_id = std::collections::HashMap::with_capacity(accepts.len());
    if !accepts.iter().all(|a| by_id.insert(a.message_id, a).is_none()) {
        // The same message twice (its second attempt accepted in the same batch): each must see
        // what the one before it recorded, so one at a time.
        let mut out = Vec::with_capacity(accepts.len());
        for a in accepts {
            out.extend(record_provider_accepts(c, std::slice::from_ref(a))?);
        }
        return Ok(out);
    }
    // Every message of the batch in one statement (their ids are distinct, see above): as many rows
    // changed as accepts, or one of the messages is unknown.
    let mut vals = Vec::with_capacity(accepts.len() * 5);
    for a in accepts {
        vals.extend([
            Val::from(a.message_id),
            Val::from(a.provider.as_str()),
            Val::from(a.provider_message_id),
            Val::I64(a.now),
        ]);
    }
    vals.extend(accepts.iter().map(|a| Val::from(a.message_id)));
    // The ids again, as a key lookup on the messages (see `conversations::touch_inbound_many`).
    let rows = crate::sql::typed_rows(
        accepts.len(),
        &[
            ("a_id", "text"),
            ("a_provider", "text"),
            ("a_pmid", "text"),
            ("a_now", "bigint"),
        ],
    );
    let n = c.execute(
        &format!(
            "update messages set provider = v.a_provider, provider_message_id = v.a_pmid,
                 status = case when status = 'queued' then 'accepted' else status end, updated_at = v.a_now
             from ({rows}) as v
             where messages.id = v.a_id and messages.id in ({})",
            crate::sql::placeholders(accepts.len())
        ),
        &vals,
    )?;
    if n != accepts.len() as u64 {
        return Err(StoreError::NotFound);
    }
    let mut vals = Vec::with_capacity(accepts.len() * 4);
    for a in accepts {
        vals.extend([
            Val::from(a.provider.as_str()),
            Val::from(a.provider_message_id),
            Val::from(a.message_id),
            Val::I64(a.now),
        ]);
    }
    c.execute_later(
        &format!(
            "insert into message_provider_ids (provider, provider_message_id, message_id, created_at) values {}
             on conflict (provider, provider_message_id) do nothing",
            crate::sql::value_rows(accepts.len(), "(?, ?, ?, ?)")
        ),
        vals,
    )?;
    // Another provider id of the same message (from this provider): an attempt whose outcome was
    // never recorded was accepted too. The earliest one is the first copy.
    let mut other_ids: std::collections::HashMap<String, (i64, String)> = std::collections::HashMap::new();
    let id_keys: Vec<Vec<Val>> = accepts.iter().map(|a| vec![Val::from(a.message_id)]).collect();
    for r in c.lookup_each(
        "select message_id, provider, provider_message_id, created_at from message_provider_ids where message_id = ?",
        &id_keys,
    )? {
        let (message_id, provider, pmid, created_at) = (r.string(0)?, r.string(1)?, r.string(2)?, r.i64(3)?);
        let Some(a) = by_id.get(message_id.as_str()) else {
            continue;
        };
        if provider != a.provider.as_str() || pmid == a.provider_message_id {
            continue;
        }
        let earliest = other_ids.entry(message_id).or_insert((created_at, pmid.clone()));
        if (created_at, &pmid) < (earliest.0, &earliest.1) {
            *earliest = (created_at, pmid);
        }
    }
    // Statuses that named a provider id before its accept was recorded. Usually none: the accept is
    // recorded before the provider's first status arrives.
    type Early = Vec<(i64, i64, String, Option<i64>)>;
    let mut early: std::collections::HashMap<(String, String), Early> = std::collections::HashMap::new();
    let keys: Vec<Vec<Val>> = accepts
        .iter()
        .map(|a| vec![Val::from(a.provider.as_str()), Val::from(a.provider_message_id)])
        .collect();
    let mut seen = std::collections::HashSet::new();
    for r in c.lookup_each(
        "select provider, provider_message_id, status, error_code, at, received_at, id from message_status_events
         where provider = ? and provider_message_id = ? and message_id is null",
        &keys,
    )? {
        // The lookup may return a row twice (its key padded the statement).
        if !seen.insert(r.string(6)?) {
            continue;
        }
        early.entry((r.string(0)?, r.string(1)?)).or_default().push((
            r.i64(4)?,
            r.i64(5)?,
            r.string(2)?,
            r.opt_i64(3)?,
        ));
    }
    for a in accepts {
        if let Some((_, first)) = other_ids.get(a.message_id) {
            confirm_duplicate(c, a.message_id, first, a.provider_message_id, a.now)?;
        }
        if let Some(mut events) = early.remove(&(a.provider.as_str().to_owned(), a.provider_message_id.to_owned())) {
            events.sort_by_key(|e| (e.0, e.1));
            for (at, _, status, error_code) in &events {
                if let Some(status) = DeliveryStatus::parse(status) {
                    advance(c, a.message_id, None, status, *error_code, None, *at, a.now)?;
                }
            }
            c.execute(
                "update message_status_events set message_id = ? where provider = ? and provider_message_id = ? and message_id is null",
                params![a.message_id, a.provider.as_str(), a.provider_message_id],
            )?;
        }
    }
    let mut recorded: std::collections::HashMap<String, Message> = std::collections::HashMap::new();
    for r in c.lookup_each(&format!("select {COLS} from messages m where m.id = ?"), &id_keys)? {
        let m = from_row(&r)?;
        recorded.insert(m.id.clone(), m);
    }
    let mut out = Vec::with_capacity(accepts.len());
    for a in accepts {
        out.push(recorded.remove(a.message_id).ok_or(StoreError::NotFound)?);
    }
    // Archived in the order given, each organization's entries with one insert.
    let payloads: Vec<serde_json::Value> = accepts
        .iter()
        .zip(&out)
        .map(|(a, m)| {
            serde_json::json!({"provider": a.provider.as_str(), "provider_message_id": a.provider_message_id, "status": m.status})
        })
        .collect();
    let entries: Vec<(&str, crate::journal::NewEntry<'_>)> = accepts
        .iter()
        .zip(&out)
        .zip(&payloads)
        .map(|((a, m), payload)| {
            let entry = crate::journal::NewEntry {
                kind: "message.accepted",
                subject_id: Some(&m.id),
                payload,
                at: a.now,
            };
            (m.org_id.as_str(), entry)
        })
        .collect();
    crate::journal::append_by_org(c, &entries)?;
    Ok(out)
}

/// The most accepts recorded with one set of lookups (see [`record_provider_accepts`]); one
/// `insert` of their provider ids carries them all (four parameters each).
const ACCEPT_LOOKUP_KEYS: usize = 64;

/// The message is being sent again although an earlier attempt may have reached the provider (its
/// outcome was never recorded): a possible duplicate, journaled. Call in the transaction that
/// records the new attempt's acceptance.
pub fn mark_possible_duplicate(c: &mut dyn Conn, message_id: &str, now: i64) -> Result<(), StoreError> {
    let n = c.execute(
        "update messages set duplicate = 'possible', updated_at = ? where id = ? and duplicate is null",
        params![now, message_id],
    )?;
    if n == 1 {
        let org_id = c
            .query_one("select org_id from messages where id = ?", params![message_id])?
            .string(0)?;
        crate::journal::record(
            c,
            &org_id,
            "message.possible_duplicate",
            message_id,
            &serde_json::json!({"reason": "sent again after an attempt whose outcome was never recorded"}),
            now,
        )?;
    }
    Ok(())
}

/// The provider accepted the message twice (`first` and `second` are its two ids): a confirmed
/// duplicate, journaled once.
fn confirm_duplicate(
    c: &mut dyn Conn,
    message_id: &str,
    first: &str,
    second: &str,
    now: i64,
) -> Result<(), StoreError> {
    let n = c.execute(
        "update messages set duplicate = 'confirmed', updated_at = ? where id = ? and (duplicate is null or duplicate <> 'confirmed')",
        params![now, message_id],
    )?;
    if n == 1 {
        let org_id = c
            .query_one("select org_id from messages where id = ?", params![message_id])?
            .string(0)?;
        crate::journal::record(
            c,
            &org_id,
            "message.duplicate_confirmed",
            message_id,
            &serde_json::json!({"provider_message_ids": [first, second]}),
            now,
        )?;
    }
    Ok(())
}

/// A send failed for good: the message is failed with the provider's code.
pub fn mark_failed(
    c: &mut dyn Conn,
    message_id: &str,
    code: Option<i64>,
    title: &str,
    now: i64,
) -> Result<Message, StoreError> {
    c.execute(
        "update messages set status = 'failed', error_code = ?, error_title = ?, updated_at = ? where id = ? and status <> 'read'",
        params![code, title, now, message_id],
    )?;
    let m = get_any(c, message_id)?;
    crate::journal::record(
        c,
        &m.org_id,
        "message.failed",
        &m.id,
        &serde_json::json!({"error_code": code, "error_title": title}),
        now,
    )?;
    Ok(m)
}

/// A status webhook, as parsed.
pub struct StatusReport<'a> {
    pub provider: ProviderKind,
    pub provider_message_id: &'a str,
    pub status: DeliveryStatus,
    pub error_code: Option<i64>,
    pub error_title: Option<&'a str>,
    /// When the provider says it happened.
    pub at: i64,
    pub raw: Option<&'a serde_json::Value>,
    pub now: i64,
}

#[derive(Debug, Clone)]
pub enum StatusOutcome {
    /// The message moved to the new status.
    Advanced(Message),
    /// Recorded, but the message is already further along (a late or repeated webhook).
    Stale(Message),
    /// The same status was already recorded (a retried webhook).
    Duplicate,
    /// No message has this provider id yet; kept, and applied if one appears.
    Orphan,
}

pub fn apply_status(c: &mut dyn Conn, s: &StatusReport<'_>) -> Result<StatusOutcome, StoreError> {
    apply_status_naming(c, s, None, None)
}

/// What a batch of status reports would read one report at a time, read for all of them at once
/// before the first is applied ([`StatusLookahead::load`]): each reported message's id and status,
/// and which statuses are recorded already. [`apply_status_naming`] keeps it true as the batch's
/// reports are applied (a report that moves its message, a status recorded); anything else that
/// writes in the batch must drop it, and the reports after that are applied one at a time.
#[derive(Debug, Default)]
pub struct StatusLookahead {
    /// (provider, provider message id) → (message id, status).
    messages: std::collections::HashMap<(String, String), (String, DeliveryStatus)>,
    /// (provider, provider message id, status) recorded before the batch or by it.
    recorded: std::collections::HashSet<(String, String, String)>,
}

impl StatusLookahead {
    /// Looks up every (provider, provider message id) of `reports`, a statement per 64.
    pub fn load(c: &mut dyn Conn, reports: &[(ProviderKind, &str)]) -> Result<Self, StoreError> {
        let mut keys: Vec<Vec<Val>> = Vec::with_capacity(reports.len());
        let mut seen = std::collections::HashSet::new();
        for (provider, id) in reports {
            if seen.insert((provider.as_str(), *id)) {
                keys.push(vec![Val::from(provider.as_str()), Val::from(*id)]);
            }
        }
        let mut ahead = Self::default();
        for chunk in keys.chunks(64) {
            for r in c.lookup_each(
                "select provider, provider_message_id, id, status from messages where provider = ? and provider_message_id = ?",
                chunk,
            )? {
                ahead.messages.insert(
                    (r.string(0)?, r.string(1)?),
                    (r.string(2)?, r.parsed(3, DeliveryStatus::parse)?),
                );
            }
            for r in c.lookup_each(
                "select provider, provider_message_id, status from message_status_events
                 where provider = ? and provider_message_id = ?",
                chunk,
            )? {
                ahead.recorded.insert((r.string(0)?, r.string(1)?, r.string(2)?));
            }
        }
        Ok(ahead)
    }
}

/// [`apply_status`] for a status that carries the openline message id its send was tagged with
/// (Cloud API `biz_opaque_callback_data`, the query of Twilio's StatusCallback): it links a status
/// for a provider id openline never recorded (an attempt that crashed before its outcome was
/// written) to its message. A report of a batch passes what the batch looked up at once for its
/// reports (`ahead`): the message (when it was there at the batch's start) and whether the status is
/// recorded already come from it instead of a read each, and the status is recorded by a queued
/// write.
pub fn apply_status_naming(
    c: &mut dyn Conn,
    s: &StatusReport<'_>,
    callback_message_id: Option<&str>,
    mut ahead: Option<&mut StatusLookahead>,
) -> Result<StatusOutcome, StoreError> {
    let provider = s.provider.as_str();
    let key = (provider.to_owned(), s.provider_message_id.to_owned());
    // The message and where it stands (so `advance` need not read it again).
    let known = ahead.as_ref().and_then(|a| a.messages.get(&key).cloned());
    let (mut message, current) = match known {
        Some((id, status)) => (Some(id), Some(status)),
        // Not there when the batch began, or no batch: asked now.
        None => match c.query_opt(
            "select id, status from messages where provider = ? and provider_message_id = ?",
            params![provider, s.provider_message_id],
        )? {
            Some(r) => (Some(r.string(0)?), Some(r.parsed(1, DeliveryStatus::parse)?)),
            None => (None, None),
        },
    };
    if message.is_none() {
        message = message_for_unrecorded_id(c, s, callback_message_id)?;
    }
    let insert = "insert into message_status_events (id, provider, provider_message_id, message_id, status, error_code, at, received_at, raw)
         values (?, ?, ?, ?, ?, ?, ?, ?, ?)
         on conflict (provider, provider_message_id, status) do nothing";
    let vals = params![
        openline_domain::ids::new_id("mse"),
        provider,
        s.provider_message_id,
        message.as_deref(),
        s.status.as_str(),
        s.error_code,
        s.at,
        s.now,
        s.raw.map(|v| v.to_string())
    ]
    .to_vec();
    let inserted = match ahead.as_deref_mut() {
        Some(a) => {
            let fresh = a
                .recorded
                .insert((key.0.clone(), key.1.clone(), s.status.as_str().to_owned()));
            if fresh {
                c.execute_later(insert, vals)?;
            }
            fresh
        }
        None => c.execute(insert, &vals)? > 0,
    };
    if !inserted {
        return Ok(StatusOutcome::Duplicate);
    }
    let Some(message_id) = message else {
        return Ok(StatusOutcome::Orphan);
    };
    let moved = advance(
        c,
        &message_id,
        current,
        s.status,
        s.error_code,
        s.error_title,
        s.at,
        s.now,
    )?;
    if let (true, Some(a)) = (moved, ahead) {
        // Moved: the message now stands where the report put it.
        a.messages.insert(key, (message_id.clone(), s.status));
    }
    let m = get_any(c, &message_id)?;
    crate::journal::record(
        c,
        &m.org_id,
        "message.status",
        &m.id,
        &serde_json::json!({
            "provider_message_id": s.provider_message_id, "reported": s.status, "at": s.at,
            "error_code": s.error_code, "error_title": s.error_title, "status_now": m.status, "moved": moved,
        }),
        s.now,
    )?;
    Ok(if moved {
        StatusOutcome::Advanced(m)
    } else {
        StatusOutcome::Stale(m)
    })
}

/// The message a status for a provider id not on any message belongs to: one an earlier attempt got
/// (kept in `message_provider_ids`), or the outgoing message the status names by its callback data,
/// which then keeps this id too. When the message already has another provider id, the provider
/// accepted it twice: a confirmed duplicate.
fn message_for_unrecorded_id(
    c: &mut dyn Conn,
    s: &StatusReport<'_>,
    callback_message_id: Option<&str>,
) -> Result<Option<String>, StoreError> {
    let provider = s.provider.as_str();
    if let Some(r) = c.query_opt(
        "select message_id from message_provider_ids where provider = ? and provider_message_id = ?",
        params![provider, s.provider_message_id],
    )? {
        return Ok(Some(r.string(0)?));
    }
    let Some(named) = callback_message_id.filter(|id| !id.is_empty()) else {
        return Ok(None);
    };
    // Only an outgoing message not sent through another provider: callback data is ours, but a
    // status must never move someone else's message.
    let Some(r) = c.query_opt(
        "select id, provider_message_id from messages where id = ? and direction = 'out' and (provider is null or provider = ?)",
        params![named, provider],
    )?
    else {
        return Ok(None);
    };
    let message_id = r.string(0)?;
    c.execute(
        "insert into message_provider_ids (provider, provider_message_id, message_id, created_at) values (?, ?, ?, ?)
         on conflict (provider, provider_message_id) do nothing",
        params![provider, s.provider_message_id, &message_id, s.now],
    )?;
    if let Some(recorded) = r.opt_string(1)? {
        if recorded != s.provider_message_id {
            confirm_duplicate(c, &message_id, &recorded, s.provider_message_id, s.now)?;
        }
    }
    Ok(Some(message_id))
}

/// Moves a message forward to `status` if the ordering allows; always fills the status's timestamp.
/// `current` is the message's status when the caller has just read it (read here otherwise). The
/// updates are queued writes: the caller reads the message back after them.
#[allow(clippy::too_many_arguments)]
fn advance(
    c: &mut dyn Conn,
    message_id: &str,
    current: Option<DeliveryStatus>,
    status: DeliveryStatus,
    error_code: Option<i64>,
    error_title: Option<&str>,
    at: i64,
    now: i64,
) -> Result<bool, StoreError> {
    let current = match current {
        Some(current) => current,
        None => c
            .query_one("select status from messages where id = ?", params![message_id])?
            .parsed(0, DeliveryStatus::parse)?,
    };
    let stamp = match status {
        DeliveryStatus::Sent => Some("sent_at"),
        DeliveryStatus::Delivered => Some("delivered_at"),
        DeliveryStatus::Read => Some("read_at"),
        _ => None,
    };
    if let Some(col) = stamp {
        c.execute_later(
            &format!("update messages set {col} = coalesce({col}, ?) where id = ?"),
            params![at, message_id].to_vec(),
        )?;
    }
    if !current.should_advance_to(status) {
        return Ok(false);
    }
    // One copy of a duplicated message failing does not undo the other's delivery.
    if status == DeliveryStatus::Failed && matches!(current, DeliveryStatus::Sent | DeliveryStatus::Delivered) {
        let duplicated = c
            .query_one("select duplicate from messages where id = ?", params![message_id])?
            .opt_string(0)?
            .is_some();
        if duplicated {
            return Ok(false);
        }
    }
    if status == DeliveryStatus::Failed {
        c.execute_later(
            "update messages set status = 'failed', error_code = ?, error_title = ?, updated_at = ? where id = ?",
            params![error_code, error_title, now, message_id].to_vec(),
        )?;
    } else {
        c.execute_later(
            "update messages set status = ?, updated_at = ? where id = ?",
            params![status.as_str(), now, message_id].to_vec(),
        )?;
    }
    Ok(true)
}

/// What the dispatcher needs to send a message: the message, the contact's number and the sender.
pub type DeliveryTarget = (Message, Option<String>, crate::senders::Sender);

/// [`DeliveryTarget`] for each of `message_ids`, in order: the dispatcher asks for a claimed batch
/// at once, in the claim's write job. A message that cannot be read has its own error; its
/// neighbours are unaffected.
pub fn delivery_targets(c: &mut dyn Conn, message_ids: &[String]) -> Vec<Result<DeliveryTarget, StoreError>> {
    let mut senders: std::collections::HashMap<String, crate::senders::Sender> = std::collections::HashMap::new();
    message_ids
        .iter()
        .map(|id| delivery_target_with(c, id, &mut senders))
        .collect()
}

fn delivery_target_with(
    c: &mut dyn Conn,
    message_id: &str,
    senders: &mut std::collections::HashMap<String, crate::senders::Sender>,
) -> Result<DeliveryTarget, StoreError> {
    // One query for the message, its thread's number and the contact's phone: this runs per send.
    let r = c.query_one(
        &format!(
            "select {COLS}, ct.phone, v.sender_id from messages m
             join conversations v on v.id = m.conversation_id join contacts ct on ct.id = v.contact_id
             where m.id = ?"
        ),
        params![message_id],
    )?;
    let message = from_row(&r)?;
    // The two columns after the message's own.
    let extra = r.0.len().saturating_sub(2);
    let phone = r.opt_string(extra)?;
    let sender_id = r.string(extra + 1)?;
    let sender = match senders.get(&sender_id) {
        Some(s) => s.clone(),
        None => {
            let s = crate::senders::get_any(c, &sender_id)?;
            senders.insert(sender_id, s.clone());
            s
        }
    };
    Ok((message, phone, sender))
}

/// Messages held for a contact (on any of its threads with this sender), in the order they were
/// written.
/// Which of an organization's `contact_ids` have messages held (queued, waiting for policy): two
/// statements for a batch of inbound messages, so that only those contacts' held messages are read.
///
/// Each part is an equality lookup on a leading index column (the contacts' threads, then one held
/// message per thread): joins or `IN` lists let PostgreSQL's planner, with the stale statistics of
/// a young database, pick plans walking every message (70 ms to seconds a batch).
pub fn contacts_with_held(
    c: &mut dyn Conn,
    org_id: &str,
    contact_ids: &[&str],
) -> Result<std::collections::HashSet<String>, StoreError> {
    // Usually nothing is held anywhere: then no contact has held messages, and one step down the
    // partial index of held messages (first entry or none, whatever the statistics) says so.
    if c.query_opt(
        "select 1 from messages where queue_reason is not null order by queue_reason, created_at limit 1",
        &[],
    )?
    .is_none()
    {
        return Ok(std::collections::HashSet::new());
    }
    let mut threads: Vec<(String, String)> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for chunk in contact_ids.chunks(64) {
        let rows = c.lookup_each(
            "select id, contact_id, org_id from conversations where contact_id = ?",
            &chunk.iter().map(|id| vec![Val::from(*id)]).collect::<Vec<_>>(),
        )?;
        for r in rows {
            let thread = r.string(0)?;
            if r.string(2)? == org_id && seen.insert(thread.clone()) {
                threads.push((thread, r.string(1)?));
            }
        }
    }
    let mut out = std::collections::HashSet::new();
    for chunk in threads.chunks(64) {
        let rows = c.lookup_each(
            "select * from (select conversation_id from messages
                 where conversation_id = ? and queue_reason is not null and status = 'queued' limit 1) as h",
            &chunk
                .iter()
                .map(|(id, _)| vec![Val::from(id.as_str())])
                .collect::<Vec<_>>(),
        )?;
        for r in rows {
            let thread = r.string(0)?;
            if let Some((_, contact)) = chunk.iter().find(|(id, _)| *id == thread) {
                out.insert(contact.clone());
            }
        }
    }
    Ok(out)
}

pub fn queued_for_contact(c: &mut dyn Conn, org_id: &str, contact_id: &str) -> Result<Vec<Message>, StoreError> {
    // Driven from the contact's few threads (index conversations_thread), then the held messages of
    // each (index messages_queued): it runs on every inbound message, so it must not scan the
    // organization's messages.
    c.query(
        &format!(
            "select {COLS} from messages m
             where m.conversation_id in (select id from conversations where org_id = ? and contact_id = ?)
               and m.queue_reason is not null and m.status = 'queued'
             order by m.created_at, m.id"
        ),
        params![org_id, contact_id],
    )?
    .iter()
    .map(from_row)
    .collect()
}

/// The statement [`held_reasons_for_contact`] runs, for [`Conn::prefetch`].
pub fn held_reasons_read(org_id: &str, contact_id: &str) -> (&'static str, Vec<Val>) {
    (
        // A join, not `in (select …)`: SQLite would build a temporary table for the list per call.
        "select m.queue_reason from conversations v join messages m on m.conversation_id = v.id
         where v.org_id = ? and v.contact_id = ? and m.queue_reason is not null and m.status = 'queued'",
        params![org_id, contact_id].to_vec(),
    )
}

/// Why each message held for the contact waits ([`queued_for_contact`] without the messages and
/// their order): all a new send needs to know whether it must wait behind them.
pub fn held_reasons_for_contact(c: &mut dyn Conn, org_id: &str, contact_id: &str) -> Result<Vec<String>, StoreError> {
    let (sql, vals) = held_reasons_read(org_id, contact_id);
    c.query(sql, &vals)?.iter().map(|r| r.string(0)).collect()
}

/// Messages held in a thread, for a caller who may see it, in the order they were written.
pub fn queued_in_conversation(
    c: &mut dyn Conn,
    scope: &Scope,
    conversation_id: &str,
) -> Result<Vec<Message>, StoreError> {
    let (ph, scope_vals) = scope.in_list();
    let mut vals = vec![Val::from(conversation_id)];
    vals.extend(scope_vals);
    c.query(
        &format!(
            "select {COLS} from messages m where m.conversation_id = ? and m.org_id in ({ph})
             and m.status = 'queued' and m.queue_reason is not null order by m.created_at, m.id"
        ),
        &vals,
    )?
    .iter()
    .map(from_row)
    .collect()
}

/// Releases a held message to the dispatcher (policy now allows it).
pub fn release(c: &mut dyn Conn, message_id: &str, sender_id: &str, now: i64) -> Result<Message, StoreError> {
    let n = c.execute(
        "update messages set queue_reason = null, updated_at = ? where id = ? and status = 'queued' and queue_reason is not null",
        params![now, message_id],
    )?;
    let m = get_any(c, message_id)?;
    if n == 1 {
        crate::outbox::enqueue(c, message_id, &m.org_id, sender_id, now)?;
        crate::journal::record(c, &m.org_id, "message.released", &m.id, &serde_json::json!({}), now)?;
    }
    Ok(m)
}

/// Changes why a held message waits (e.g. consent granted, but the window is closed).
pub fn requeue(c: &mut dyn Conn, message_id: &str, reason: &str, now: i64) -> Result<(), StoreError> {
    c.execute(
        "update messages set queue_reason = ?, updated_at = ? where id = ? and status = 'queued' and queue_reason is not null",
        params![reason, now, message_id],
    )?;
    Ok(())
}

/// Cancels a held message the caller may see. `NotFound` if it is not theirs to see, `Conflict` if it
/// is no longer held (already handed to the provider).
pub fn cancel(c: &mut dyn Conn, scope: &Scope, message_id: &str, now: i64) -> Result<Message, StoreError> {
    let m = get(c, scope, message_id)?;
    let n = c.execute(
        "update messages set status = 'cancelled', queue_reason = null, updated_at = ?
         where id = ? and status = 'queued' and queue_reason is not null",
        params![now, message_id],
    )?;
    if n == 0 {
        return Err(StoreError::Conflict(format!("message {} is not queued", m.id)));
    }
    crate::journal::record(c, &m.org_id, "message.cancelled", &m.id, &serde_json::json!({}), now)?;
    get_any(c, message_id)
}

/// A notice or message openline writes itself (consent confirmations, notices to the thread).
pub struct NewSystemMessage<'a> {
    pub org_id: &'a str,
    pub conversation_id: &'a str,
    pub body: &'a str,
    pub now: i64,
}

/// Writes a system notice into a thread (shown to agents; never sent to the contact).
pub fn insert_notice(c: &mut dyn Conn, n: &NewSystemMessage<'_>) -> Result<Message, StoreError> {
    let id = openline_domain::ids::new_id("msg");
    c.execute(
        "insert into messages (id, org_id, conversation_id, direction, kind, body, status, created_at, updated_at)
         values (?, ?, ?, 'system', 'notice', ?, 'received', ?, ?)",
        params![&id, n.org_id, n.conversation_id, n.body, n.now, n.now],
    )?;
    conversations::touch(c, n.conversation_id, Some(n.body), n.now)?;
    let m = get_any(c, &id)?;
    archive_message(c, "notice", &m, n.now)?;
    Ok(m)
}

/// How many contacts an organization started business-initiated conversations with since
/// `since`, counted up to `cap` (the tier's: whether there is room is all that is asked, and
/// counting every contact of a large tier for every send would read them all each time).
/// A message still held (by consent, the window or the limit itself) has started nothing yet: were
/// it counted, a template held by the limit would make room for itself on the next re-check.
pub fn business_initiated_contacts_up_to(
    c: &mut dyn Conn,
    org_id: &str,
    since: i64,
    cap: u32,
) -> Result<u32, StoreError> {
    let n = c
        .query_one(
            "select count(*) from (select distinct v.contact_id from messages m join conversations v on v.id = m.conversation_id
             where m.org_id = ? and m.business_initiated = 1 and m.created_at > ? and m.status <> 'cancelled'
               and m.queue_reason is null limit ?) as counted",
            params![org_id, since, i64::from(cap)],
        )?
        .i64(0)?;
    Ok(u32::try_from(n).unwrap_or(u32::MAX))
}

/// Whether the organization started a business-initiated conversation with this contact since
/// `since` (counted as in [`business_initiated_contacts_up_to`]): then another costs nothing.
pub fn business_initiated_with(
    c: &mut dyn Conn,
    org_id: &str,
    contact_id: &str,
    since: i64,
) -> Result<bool, StoreError> {
    Ok(c.query_opt(
        "select 1 from conversations v join messages m on m.conversation_id = v.id
             where v.org_id = ? and v.contact_id = ? and m.business_initiated = 1 and m.created_at > ?
               and m.status <> 'cancelled' and m.queue_reason is null limit 1",
        params![org_id, contact_id, since],
    )?
    .is_some())
}
