//! Cloud API webhooks stored several to a transaction.
//!
//! Meta sends one webhook per message, many at a time. Each used to be its own write job: a
//! savepoint and about a dozen statements, each a round trip on PostgreSQL, so the writer did about
//! a thousand a second there however many waited. Webhooks are now handed to a batching task that
//! takes every webhook waiting (at most [`MAX_WEBHOOKS`]) and stores them in one write job: their
//! plain messages together through `messages::insert_inbound_many` (a fixed number of statements
//! for the batch), everything else one event at a time exactly as before.
//!
//! Nothing about durability changes: each webhook is answered only after the transaction holding
//! it commits. Nothing waits on purpose: a batch is whatever arrived while the previous one was
//! being written (at most [`IN_FLIGHT`] batches are with the writer at once). If a batch fails, its
//! webhooks are stored one by one, so a bad one fails alone. The queue is bounded: when it is full
//! the webhook is answered 503 with Retry-After, and Meta retries it.

use super::whatsapp;
use crate::consent_flow::{Effects, Known};
use openline_channels::cloud_api::{CloudEvent, InboundMessage};
use openline_domain::dlp::DlpRule;
use openline_domain::{DeliveryStatus, PhoneNumber, ProviderKind};
use openline_store::messages::{self, InboundItem};
use openline_store::senders::Sender;
use openline_store::{Conn, Store, StoreError};
use std::collections::HashMap;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Semaphore};

/// The most webhooks stored in one transaction. (64 first; 256 let a closed-loop run of 256
/// connections commit about twice as many at once: ~11.0k/s → ~12.2k/s on SQLite, three runs each.)
pub const MAX_WEBHOOKS: usize = 256;
/// The most batches handed to the writer and not yet committed.
pub const IN_FLIGHT: usize = 2;
/// The most webhooks waiting for a batch.
const QUEUE: usize = 4096;

/// A verified, parsed webhook: its events with the business number each concerns.
type Events = Vec<(CloudEvent, Option<Sender>)>;
/// Per webhook: the metric label of each event and what to announce after the commit.
type Stored = (Vec<&'static str>, Effects);
type Reply = oneshot::Sender<Result<Stored, StoreError>>;

struct Webhook {
    events: Events,
    now: i64,
}

/// A webhook with its place in the batch.
type Numbered<'a> = (usize, &'a Webhook);

/// Hands webhooks to the batching task.
#[derive(Clone)]
pub struct IngestBatcher {
    tx: mpsc::Sender<(Webhook, Reply)>,
}

impl IngestBatcher {
    /// Starts the batching task on `store`; it ends when every clone of the batcher is dropped.
    pub fn start(store: Store) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(store, rx));
        Self { tx }
    }

    /// Stores a webhook's events (with others arriving at the same time); answers once committed.
    pub async fn submit(&self, events: Events, now: i64) -> Result<Stored, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .try_send((Webhook { events, now }, reply))
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => StoreError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => StoreError::Closed,
            })?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

async fn run(store: Store, mut rx: mpsc::Receiver<(Webhook, Reply)>) {
    let slots = Arc::new(Semaphore::new(IN_FLIGHT));
    while let Some(first) = rx.recv().await {
        // Waiting for a slot lets the next batch grow meanwhile.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_WEBHOOKS {
            match rx.try_recv() {
                Ok(item) => batch.push(item),
                Err(_) => break,
            }
        }
        let store = store.clone();
        tokio::spawn(async move {
            flush(&store, batch).await;
            drop(slot);
        });
    }
}

async fn flush(store: &Store, batch: Vec<(Webhook, Reply)>) {
    let (hooks, replies): (Vec<Webhook>, Vec<Reply>) = batch.into_iter().unzip();
    // Shared with the write job rather than moved into it, so the one-by-one fallback can use the
    // webhooks again without copying every batch's events in case it fails.
    let hooks = Arc::new(hooks);
    let together = {
        let hooks = hooks.clone();
        store.write(move |c| apply_all(c, &hooks)).await
    };
    match together {
        Ok(stored) => answer(replies, Ok(stored)),
        Err(e @ (StoreError::Overloaded | StoreError::Closed)) => answer(replies, Err(e)),
        Err(e) if hooks.len() == 1 => answer(replies, Err(e)),
        // One of them failed and took the batch with it: store each alone, so only it fails.
        Err(e) => {
            tracing::warn!(error = %e, webhooks = hooks.len(), "a batch of webhooks failed; storing them one by one");
            for (i, reply) in replies.into_iter().enumerate() {
                let hooks = hooks.clone();
                let alone = store
                    .write(move |c| apply_all(c, &hooks[i..=i]))
                    .await
                    .and_then(|mut v| v.pop().ok_or(StoreError::NotFound));
                let _ = reply.send(alone);
            }
        }
    }
}

fn answer(replies: Vec<Reply>, outcome: Result<Vec<Stored>, StoreError>) {
    match outcome {
        Ok(stored) => {
            for (reply, s) in replies.into_iter().zip(stored) {
                let _ = reply.send(Ok(s));
            }
        }
        Err(e) => {
            for reply in replies {
                let _ = reply.send(Err(e.clone()));
            }
        }
    }
}

/// A webhook whose every event is a message from an identifiable contact to a known number, not a
/// `system` message: the common case, stored with the batch's other such webhooks.
fn plain_messages(h: &Webhook) -> bool {
    h.events.iter().all(|(ev, sender)| match (ev, sender) {
        (CloudEvent::Message(m), Some(_)) => !whatsapp::is_system(m) && whatsapp::identity(m).is_some(),
        _ => false,
    })
}

/// Stores a batch in the caller's transaction: the plain messages of all its webhooks together,
/// then every other webhook's events one at a time, in order. Returns each webhook's outcome in the
/// batch's order.
fn apply_all(c: &mut dyn Conn, hooks: &[Webhook]) -> Result<Vec<Stored>, StoreError> {
    let mut out: Vec<Option<Stored>> = hooks.iter().map(|_| None).collect();
    let (plain, other): (Vec<Numbered<'_>>, Vec<Numbered<'_>>) =
        hooks.iter().enumerate().partition(|(_, h)| plain_messages(h));
    if !plain.is_empty() {
        for (i, stored) in store_plain(c, &plain)? {
            out[i] = Some(stored);
        }
    }
    // The statuses' messages and recorded statuses, looked up for all of them at once (on
    // PostgreSQL two round trips instead of two per status). Kept true by the statuses applied; any
    // other event, and a failure (which may hold or release other messages), may write what it
    // knows, so after one the rest are applied one at a time as before.
    let reports: Vec<(ProviderKind, &str)> = other
        .iter()
        .flat_map(|(_, h)| h.events.iter())
        .filter_map(|(ev, _)| match ev {
            CloudEvent::Status(s) if s.status.is_some() => {
                Some((ProviderKind::CloudApi, s.provider_message_id.as_str()))
            }
            _ => None,
        })
        .collect();
    let mut ahead = if reports.len() > 1 {
        Some(messages::StatusLookahead::load(c, &reports)?)
    } else {
        None
    };
    for (i, h) in other {
        let mut fx = Effects::default();
        let mut metrics = Vec::with_capacity(h.events.len());
        for (ev, sender) in &h.events {
            let status = match ev {
                CloudEvent::Status(s) => s.status,
                _ => None,
            };
            if status.is_none() {
                ahead = None;
            }
            metrics.push(whatsapp::apply(c, ev, sender.as_ref(), h.now, &mut fx, ahead.as_mut())?);
            if status == Some(DeliveryStatus::Failed) {
                ahead = None;
            }
        }
        out[i] = Some((metrics, fx));
    }
    out.into_iter()
        .map(|s| s.ok_or_else(|| StoreError::Decode("a webhook of the batch was not stored".into())))
        .collect()
}

/// One message of a plain webhook, with what the store borrows from it.
struct Prepared<'a> {
    hook: usize,
    message: &'a InboundMessage,
    sender: &'a Sender,
    now: i64,
    phone: Option<PhoneNumber>,
    wa_user_id: Option<String>,
    media: Option<serde_json::Value>,
    stored_body: Option<String>,
    verdict: Option<openline_domain::dlp::DlpVerdict>,
}

fn store_plain<'a>(c: &mut dyn Conn, plain: &[Numbered<'a>]) -> Result<Vec<(usize, Stored)>, StoreError> {
    // Each organization's DLP rules, read once for the batch.
    let mut rules: HashMap<&str, Vec<DlpRule>> = HashMap::new();
    let mut prepared: Vec<Prepared<'_>> = Vec::new();
    for (hook, (_, h)) in plain.iter().enumerate() {
        for (ev, sender) in &h.events {
            let (CloudEvent::Message(m), Some(sender)) = (ev, sender) else {
                continue;
            };
            let Some((phone, wa_user_id)) = whatsapp::identity(m) else {
                continue;
            };
            let org_rules = match rules.get(sender.org_id.as_str()) {
                Some(r) => r,
                None => rules
                    .entry(&sender.org_id)
                    .or_insert(openline_store::dlp::rules_for(c, &sender.org_id)?),
            };
            let (stored_body, verdict) = super::dlp_inbound_with(org_rules, m.body.as_deref());
            prepared.push(Prepared {
                hook,
                message: m,
                sender,
                now: h.now,
                phone,
                wa_user_id,
                media: whatsapp::media_reference(m),
                stored_body,
                verdict,
            });
        }
    }
    let news: Vec<_> = prepared
        .iter()
        .map(|p| {
            whatsapp::new_inbound(
                p.message,
                p.sender,
                p.phone.as_ref(),
                p.wa_user_id.as_deref(),
                p.stored_body.as_deref(),
                p.media.as_ref(),
                p.now,
            )
        })
        .collect();
    let items: Vec<InboundItem<'_, '_>> = news
        .iter()
        .map(|m| InboundItem {
            message: m,
            opens_window: true,
        })
        .collect();
    let outcomes = messages::insert_inbound_many(c, &items)?;

    // Which of the contacts have held messages, asked once for the batch instead of per message.
    let mut contacts: HashMap<&str, Vec<&str>> = HashMap::new();
    for (p, (_, contact_id)) in prepared.iter().zip(&outcomes) {
        if let Some(id) = contact_id {
            let ids = contacts.entry(&p.sender.org_id).or_default();
            if !ids.contains(&id.as_str()) {
                ids.push(id);
            }
        }
    }
    let mut held = std::collections::HashSet::new();
    for (org_id, ids) in contacts {
        held.extend(messages::contacts_with_held(c, org_id, &ids)?);
    }

    let mut stored: Vec<Stored> = plain.iter().map(|_| (Vec::new(), Effects::default())).collect();
    for (p, (outcome, contact_id)) in prepared.iter().zip(outcomes) {
        let (metrics, fx) = &mut stored[p.hook];
        let known = Known {
            may_have_held: contact_id.as_ref().is_none_or(|id| held.contains(id)),
            contact_id,
        };
        metrics.push(whatsapp::after_insert(
            c,
            p.message,
            p.sender,
            (outcome, known),
            p.verdict.as_ref(),
            p.now,
            fx,
        )?);
    }
    Ok(plain.iter().map(|(i, _)| *i).zip(stored).collect())
}
