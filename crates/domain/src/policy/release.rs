//! Which queued messages may go now. Called whenever a fact changes for a contact (consent given, the
//! contact writing, the messaging limit freeing up, time passing) with that contact's queue in the
//! order the messages were written.
//!
//! Two lanes, because they answer different questions:
//! - **Messages** (free-form and templates) go strictly in order: the first one that must wait holds
//!   the ones behind it, so a contact never reads message 3 before message 2. Nothing is dropped; a
//!   message that cannot go (the contact refused, a template lost its approval) waits with its reason
//!   until the facts change or the agent cancels it. One exception: a template may pass free text
//!   held only because the window closed, since a template is how the conversation restarts (seed
//!   004: "send a template to restart"); were it held too, nothing could go until the contact wrote.
//! - **Opt-in requests** are the way out of "awaiting consent", so they never wait behind messages that
//!   wait for consent. A queued request that has become pointless (the contact answered meanwhile, or an
//!   earlier request just went) is cancelled with the reason, never sent.

use super::{whatsapp_gate, ContactFacts, Gate, Outgoing};
use crate::consent::ConsentState;
use crate::{DomainError, Millis};

/// Reason for a message that could go by itself but waits behind an earlier, held one.
pub const EARLIER_MESSAGE_WAITING: &str = "earlier_message_waiting";

/// A message in a contact's queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueuedMessage<Id> {
    pub id: Id,
    pub outgoing: Outgoing,
}

/// What to do with each queued message. Every input message is in exactly one of the three lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release<Id> {
    /// Hand these to the dispatcher now, in this order (the order they were written).
    pub send: Vec<Id>,
    /// Cancel these, telling the agent why (only opt-in requests that became pointless).
    pub cancel: Vec<(Id, DomainError)>,
    /// These stay queued, each with the reason it waits.
    pub waiting: Vec<(Id, &'static str)>,
}

/// Sorts a contact's queue (oldest first) into what goes now, what is cancelled and what waits.
pub fn release_queued<Id: Clone>(
    queued_in_order: &[QueuedMessage<Id>],
    facts: &ContactFacts,
    now: Millis,
) -> Release<Id> {
    let mut facts = *facts;
    let mut release = Release {
        send: Vec::new(),
        cancel: Vec::new(),
        waiting: Vec::new(),
    };
    let mut messages_held = false;
    // Whether every message held so far waits only for the window (free text outside it).
    let mut held_by_window_only = true;
    let mut requests_held = false;
    for item in queued_in_order {
        let is_request = matches!(item.outgoing, Outgoing::OptInRequest { .. });
        let is_template = matches!(item.outgoing, Outgoing::Template { .. });
        let held = if is_request {
            requests_held
        } else {
            messages_held && !(is_template && held_by_window_only)
        };
        if held {
            release.waiting.push((item.id.clone(), EARLIER_MESSAGE_WAITING));
            continue;
        }
        match whatsapp_gate(item.outgoing, &facts, now) {
            Gate::Go => {
                release.send.push(item.id.clone());
                if is_request {
                    // What the ledger will say once it is sent: a later request is too soon.
                    facts.consent = ConsentState::Pending { requested_at: now };
                    facts.last_opt_in_request_at = Some(now);
                }
            }
            Gate::Wait(reason) => {
                release.waiting.push((item.id.clone(), reason));
                if is_request {
                    requests_held = true;
                } else {
                    messages_held = true;
                    held_by_window_only &= reason == super::WINDOW_CLOSED;
                }
            }
            Gate::Refuse(e) if is_request => release.cancel.push((item.id.clone(), e)),
            Gate::Refuse(e) => {
                release.waiting.push((item.id.clone(), e.code));
                messages_held = true;
                held_by_window_only = false;
            }
        }
    }
    release
}
