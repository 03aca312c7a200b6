//! Consent (opt-in) per organization × contact: the ledger's vocabulary, the state derived from it,
//! and the rules for asking and for reading the contact's answer.
//!
//! WhatsApp's Business Policy requires a contact's agreement before a business messages them, and a
//! regulated enterprise must be able to *prove* that agreement. So consent is never a mutable flag: it
//! is an append-only ledger of [`ConsentEvent`]s (the store keeps the evidence beside each one: who
//! asked, the opt-in message, the reply and their provider ids), and the current [`ConsentState`] is
//! derived from it by [`consent_state`]. Re-deriving is cheap and means the state shown to an agent
//! and the attestation handed to an auditor can never disagree.
//!
//! Two choices worth knowing:
//! - **A refusal is sticky.** Only the contact can lift it, by opting in ("yes"). An agent cannot send a
//!   new opt-in request to someone who said no (a business re-asking is what the policy calls spam), and
//!   a later "not on WhatsApp" report or a stray request in the ledger does not erase it.
//! - **"No" only means no to a question.** A contact answering "no" to an ordinary question in a
//!   conversation they agreed to has not withdrawn consent; only an opt-out keyword ("stop") does that
//!   at any time. A "no" counts as a refusal while an opt-in request is pending.

use crate::model::text_enum;
use crate::utc::{ceil_to_minute, format_utc_minute};
use crate::window::WINDOW_MS;
use crate::{DomainError, Millis};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub mod marketing;

/// The shortest time between two opt-in requests to the same contact (seed 001: "every 24 hours").
pub const OPT_IN_REQUEST_INTERVAL_MS: Millis = WINDOW_MS;

/// Quick-reply payload of the opt-in template's "Yes" button.
pub const OPT_IN_YES_PAYLOAD: &str = "OPTIN_YES";
/// Quick-reply payload of the opt-in template's "No" button.
pub const OPT_IN_NO_PAYLOAD: &str = "OPTIN_NO";

/// What openline tells a contact who has just opted in.
pub const OPTED_IN_CONFIRMATION: &str =
    "Thank you. You have agreed to receive WhatsApp messages from us. Reply STOP at any time to opt out.";
/// What openline tells a contact who has just refused or opted out (seed 001: they can opt in again).
pub const OPTED_OUT_CONFIRMATION: &str =
    "You have opted out and will not receive WhatsApp messages from us. You can opt in at any time by replying YES.";

text_enum! {
    /// One entry of the consent ledger. The text form is what the store writes.
    pub enum ConsentEventKind {
        /// An agent sent the opt-in request (recorded when it is handed to the provider).
        Requested => "requested",
        /// The contact answered an opt-in request with yes (button or text).
        Accepted => "accepted",
        /// The contact answered an opt-in request with no (button or text).
        Rejected => "rejected",
        /// The contact withdrew consent at any time ("stop", "unsubscribe").
        OptedOut => "opted_out",
        /// The contact gave consent without a pending request, e.g. "yes" after opting out.
        OptedIn => "opted_in",
        /// The provider reported the number cannot receive WhatsApp (Meta 131026, Twilio 63003/63024).
        Undeliverable => "undeliverable",
        /// The contact stopped marketing messages in WhatsApp (Meta's `user_preferences` "stop", or
        /// a marketing template refused with 131050). See [`marketing`].
        MarketingStopped => "marketing_stopped",
        /// The contact resumed marketing messages (`resume`, or `signup` through a sign-up link).
        MarketingResumed => "marketing_resumed",
    }
}

/// A ledger entry as the rules see it: what happened and when. Evidence lives in the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConsentEvent {
    pub kind: ConsentEventKind,
    /// When it happened (UTC epoch ms).
    pub at: Millis,
}

impl ConsentEvent {
    pub fn new(kind: ConsentEventKind, at: Millis) -> Self {
        Self { kind, at }
    }
}

/// Where consent stands now, derived from the ledger.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ConsentState {
    /// Never asked, never answered.
    Unknown,
    /// Asked; no answer yet.
    Pending {
        /// When the latest opt-in request went out.
        requested_at: Millis,
    },
    /// The contact agreed and has not withdrawn.
    Granted {
        /// Start of the current, uninterrupted agreement.
        since: Millis,
    },
    /// The contact rejected the request or opted out. Only they can lift it, by opting in.
    Refused {
        /// Start of the current refusal.
        since: Millis,
    },
    /// The provider reported that the number is not on WhatsApp: offer SMS.
    NotOnWhatsapp {
        /// When it was reported.
        since: Millis,
    },
}

impl ConsentState {
    /// Stable text form, as the API and the store name the state.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::Pending { .. } => "pending",
            Self::Granted { .. } => "granted",
            Self::Refused { .. } => "refused",
            Self::NotOnWhatsapp { .. } => "not_on_whatsapp",
        }
    }

    /// Whether the business may message the contact on WhatsApp at all.
    pub fn is_granted(self) -> bool {
        matches!(self, Self::Granted { .. })
    }
}

/// Derives the current state from the ledger, in the order the entries were appended.
pub fn consent_state(events: &[ConsentEvent]) -> ConsentState {
    events.iter().fold(ConsentState::Unknown, apply)
}

fn apply(state: ConsentState, event: &ConsentEvent) -> ConsentState {
    use ConsentEventKind::*;
    use ConsentState::*;
    match (event.kind, state) {
        // Agreement: a continuing agreement keeps its start.
        (Accepted | OptedIn, Granted { since }) => Granted { since },
        (Accepted | OptedIn, _) => Granted { since: event.at },
        // Refusal: a continuing refusal keeps its start.
        (Rejected | OptedOut, Refused { since }) => Refused { since },
        (Rejected | OptedOut, _) => Refused { since: event.at },
        // A request changes nothing for someone who already answered: it neither revokes an
        // agreement nor overrides a refusal.
        (Requested, Granted { .. } | Refused { .. }) => state,
        (Requested, _) => Pending { requested_at: event.at },
        // "Not on WhatsApp" must not launder a refusal into an askable state.
        (Undeliverable, Refused { .. }) => state,
        (Undeliverable, NotOnWhatsapp { since }) => NotOnWhatsapp { since },
        (Undeliverable, _) => NotOnWhatsapp { since: event.at },
        // Marketing preferences are their own question (see [`marketing`]): a person who stops
        // promotions still wants to hear from the business.
        (MarketingStopped | MarketingResumed, _) => state,
    }
}

/// When the latest opt-in request went out, if ever.
pub fn last_opt_in_request_at(events: &[ConsentEvent]) -> Option<Millis> {
    events
        .iter()
        .filter(|e| e.kind == ConsentEventKind::Requested)
        .map(|e| e.at)
        .max()
}

/// Whether an agent may send an opt-in request now. `last_request_at` is the latest request in the
/// ledger (see [`last_opt_in_request_at`]).
///
/// - `Unknown`: yes.
/// - `Pending` or `NotOnWhatsapp`: yes once 24 hours have passed since the last request
///   (`opt_in_too_soon`, saying when, before that). A number reported as not on WhatsApp may be asked
///   again, because people install WhatsApp; but not more often than anyone else.
/// - `Granted`: no (`consent_already_granted`): there is nothing to ask.
/// - `Refused`: no (`consent_refused`): the contact said no; only they can change that, by replying yes.
pub fn may_request_opt_in(
    state: ConsentState,
    last_request_at: Option<Millis>,
    now: Millis,
) -> Result<(), DomainError> {
    match state {
        ConsentState::Granted { .. } => Err(DomainError::new(
            "consent_already_granted",
            "The contact has already agreed to WhatsApp messages. Write to them directly, or send a template if the conversation window is closed.",
        )),
        ConsentState::Refused { .. } => Err(consent_refused()),
        ConsentState::Unknown | ConsentState::Pending { .. } | ConsentState::NotOnWhatsapp { .. } => {
            let last = match state {
                ConsentState::Pending { requested_at } => Some(last_request_at.map_or(requested_at, |l| l.max(requested_at))),
                _ => last_request_at,
            };
            match last {
                Some(last) if now < last.saturating_add(OPT_IN_REQUEST_INTERVAL_MS) => {
                    let from = ceil_to_minute(last.saturating_add(OPT_IN_REQUEST_INTERVAL_MS));
                    Err(DomainError::new(
                        "opt_in_too_soon",
                        format!(
                            "An opt-in request was sent less than 24 hours ago. You can send a new one from {}.",
                            format_utc_minute(from)
                        ),
                    ))
                }
                _ => Ok(()),
            }
        }
    }
}

/// The refusal every WhatsApp send to a contact who said no gets.
pub fn consent_refused() -> DomainError {
    DomainError::new(
        "consent_refused",
        "The contact opted out of WhatsApp messages; they can opt in again by replying yes.",
    )
}

/// What an inbound message says about consent, if anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsentReply {
    /// "yes" or the Yes button.
    Accept,
    /// "no" or the No button: an answer to an opt-in request.
    Reject,
    /// An opt-out keyword ("stop", "unsubscribe"): withdraws consent whenever it is sent.
    OptOut,
}

/// Words that withdraw consent at any time. Kept to unmistakable ones: "cancel" or "end" alone are
/// ordinary words in a conversation about an appointment, so they are not here.
const OPT_OUT_WORDS: &[&str] = &["stop", "stopall", "unsubscribe", "optout", "opt out", "opt-out"];

/// Reads an inbound message as a consent reply. A quick-reply `button_payload` of the opt-in template
/// decides; otherwise the whole text must be the keyword (case, surrounding spaces and punctuation
/// ignored): "Yes please, but not on Sundays" is a conversation, not a consent.
pub fn classify_reply(text: &str, button_payload: Option<&str>) -> Option<ConsentReply> {
    match button_payload.map(str::trim) {
        Some(OPT_IN_YES_PAYLOAD) => return Some(ConsentReply::Accept),
        Some(OPT_IN_NO_PAYLOAD) => return Some(ConsentReply::Reject),
        _ => {}
    }
    let word = text
        .trim_matches(|c: char| c.is_whitespace() || c.is_ascii_punctuation())
        .to_lowercase();
    match word.as_str() {
        "yes" => Some(ConsentReply::Accept),
        "no" => Some(ConsentReply::Reject),
        w if OPT_OUT_WORDS.contains(&w) => Some(ConsentReply::OptOut),
        _ => None,
    }
}

/// The ledger entry a reply adds in the current state, or `None` when it changes nothing.
///
/// - Accept: answers a pending request (`Accepted`), or lifts a refusal (`OptedIn`). A "yes" from a
///   contact who was never asked, or whose request never arrived, answers nothing; the agent asks.
/// - Reject: only answers a pending request (`Rejected`); otherwise it is an ordinary "no".
/// - OptOut: withdraws in any state but an existing refusal (`OptedOut`).
pub fn consent_event_for_reply(state: ConsentState, reply: ConsentReply) -> Option<ConsentEventKind> {
    use ConsentState::*;
    match (reply, state) {
        (ConsentReply::Accept, Pending { .. }) => Some(ConsentEventKind::Accepted),
        (ConsentReply::Accept, Refused { .. }) => Some(ConsentEventKind::OptedIn),
        (ConsentReply::Accept, Unknown | Granted { .. } | NotOnWhatsapp { .. }) => None,
        (ConsentReply::Reject, Pending { .. }) => Some(ConsentEventKind::Rejected),
        (ConsentReply::Reject, _) => None,
        (ConsentReply::OptOut, Refused { .. }) => None,
        (ConsentReply::OptOut, _) => Some(ConsentEventKind::OptedOut),
    }
}

#[cfg(test)]
mod tests;
