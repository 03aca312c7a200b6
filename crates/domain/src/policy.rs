//! The send decision: one pure function of the facts and `now` that every outgoing message passes
//! through before anything is stored or sent, and its counterpart for messages already queued. The
//! server gathers the facts and carries out the outcome; it never decides on its own.
//!
//! On WhatsApp, in this order (the first rule that applies decides):
//!
//! | consent                | free-form text               | approved template                        | unapproved template      |
//! |------------------------|------------------------------|------------------------------------------|--------------------------|
//! | refused                | reject `consent_refused`     | reject `consent_refused`                 | reject `consent_refused` |
//! | not on WhatsApp        | reject `not_on_whatsapp`     | reject `not_on_whatsapp`                 | reject `not_on_whatsapp` |
//! | (marketing stopped)    | —                            | MARKETING: reject `marketing_stopped`    | reject `template_not_approved` |
//! | unknown / pending      | queue `awaiting_consent`     | queue `awaiting_consent`                 | reject `template_not_approved` |
//! | granted, window open   | send                         | send                                     | reject `template_not_approved` |
//! | granted, window closed | queue `window_closed`        | send, or queue `messaging_limit` at the cap | reject `template_not_approved` |
//!
//! A contact who stopped marketing messages in WhatsApp ([`crate::consent::marketing`]) gets no
//! MARKETING template, whatever their consent and window: Meta would refuse it with 131050. Utility
//! and authentication templates and free-form replies are unaffected.
//!
//! The opt-in request itself follows [`may_request_opt_in`] (`consent_refused`,
//! `consent_already_granted`, `opt_in_too_soon`), must be approved, and counts against the messaging
//! limit when the window is closed. SMS has no consent or window rules here (carriers handle STOP);
//! templates and opt-in requests are WhatsApp-only.
//!
//! Queueing never loses a message: [`release_queued`] says which queued messages may go once the facts
//! change (consent given, the contact writing, the limit freeing up), in the order they were written.
//! A template sent while free-form messages wait for the window goes first, deliberately: it is how an
//! agent re-engages a contact, and those messages then follow once the contact answers.

use crate::consent::marketing::{marketing_stopped, MarketingPreference, MARKETING_STOPPED};
use crate::consent::{consent_refused, may_request_opt_in, ConsentState};
use crate::window::Window;
use crate::{Channel, DomainError, Millis, Role};

mod release;
#[cfg(test)]
mod simulation;
#[cfg(test)]
mod tests;

pub use release::{release_queued, QueuedMessage, Release, EARLIER_MESSAGE_WAITING};

/// The longest text body the Cloud API accepts (Meta: `text.body`, 4096 characters).
pub const MAX_TEXT_CHARS: usize = 4096;

/// Queue reason: the contact has not agreed yet; sent once they opt in.
pub const AWAITING_CONSENT: &str = "awaiting_consent";
/// Queue reason: outside the 24-hour window; sent once the contact writes again.
pub const WINDOW_CLOSED: &str = "window_closed";
/// Queue reason: the organization's messaging-limit tier is reached for now.
pub const MESSAGING_LIMIT: &str = "messaging_limit";

/// What is being sent, as far as the rules care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outgoing {
    /// Text or media the agent wrote: needs consent and an open window.
    FreeForm,
    /// A template; `approved` is its approval status now, `marketing` whether its category is
    /// MARKETING (refused to a contact who stopped marketing messages).
    Template { approved: bool, marketing: bool },
    /// The opt-in request (the organization's opt-in template with Yes/No buttons).
    OptInRequest { approved: bool },
}

/// What is known about the contact on this WhatsApp number, as the WhatsApp rules need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContactFacts {
    /// Derived from the consent ledger ([`crate::consent::consent_state`]).
    pub consent: ConsentState,
    /// The latest opt-in request in the ledger ([`crate::consent::last_opt_in_request_at`]).
    pub last_opt_in_request_at: Option<Millis>,
    /// The customer-service window now ([`crate::window::window`]).
    pub window: Window,
    /// Whether a business-initiated message to this contact fits the messaging limit now
    /// ([`crate::limits::business_initiated_allowed`]). Consulted only while the window is closed
    /// (inside it nothing is business-initiated), so a caller may skip counting and say `true` then.
    pub within_messaging_limit: bool,
    /// Whether the contact stopped marketing messages
    /// ([`crate::consent::marketing::marketing_preference`]).
    pub marketing: MarketingPreference,
}

/// Everything the rule needs to know about one attempted send.
#[derive(Debug, Clone)]
pub struct SendFacts<'a> {
    pub channel: Channel,
    pub author_role: Role,
    /// The organization (or an ancestor it inherits from) has the WhatsApp connector enabled.
    pub org_whatsapp_enabled: bool,
    /// The author has WhatsApp enabled (admins switch it per user).
    pub user_whatsapp_enabled: bool,
    /// The text as the contact will read it (a template's rendered body).
    pub text: &'a str,
    pub outgoing: Outgoing,
    /// Consent, window and limit; used on WhatsApp only.
    pub contact: ContactFacts,
}

/// What happens to the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendDecision {
    /// Store it and hand it to the dispatcher now.
    SendNow,
    /// Store it, but hold it until the reason clears (consent, the contact writing, limits).
    Queue { reason: &'static str, explanation: String },
    /// Refuse it; nothing is stored.
    Reject(DomainError),
}

pub fn decide_send(facts: &SendFacts<'_>, now: Millis) -> SendDecision {
    if !facts.author_role.can_send() {
        return SendDecision::Reject(DomainError::new(
            "forbidden_role",
            "Viewers can read conversations but not send messages. Ask an admin for the agent role.",
        ));
    }
    if facts.channel == Channel::Whatsapp && !facts.org_whatsapp_enabled {
        return SendDecision::Reject(DomainError::new(
            "whatsapp_disabled",
            "WhatsApp is not enabled for your organization. An admin can enable the WhatsApp connector.",
        ));
    }
    if facts.channel == Channel::Whatsapp && !facts.user_whatsapp_enabled {
        return SendDecision::Reject(DomainError::new(
            "whatsapp_disabled_for_user",
            "WhatsApp is not enabled for your account. Ask an admin to enable it for you.",
        ));
    }
    let text = facts.text.trim();
    if text.is_empty() {
        return SendDecision::Reject(DomainError::new("empty_message", "Write something before sending."));
    }
    let chars = facts.text.chars().count();
    if chars > MAX_TEXT_CHARS {
        return SendDecision::Reject(DomainError::new(
            "message_too_long",
            format!("The message has {chars} characters; WhatsApp accepts at most {MAX_TEXT_CHARS}. Shorten it or split it."),
        ));
    }
    match facts.channel {
        Channel::Sms if facts.outgoing == Outgoing::FreeForm => SendDecision::SendNow,
        Channel::Sms => SendDecision::Reject(DomainError::new(
            "not_supported_on_sms",
            "Templates and opt-in requests are WhatsApp features. On SMS, write the message yourself.",
        )),
        Channel::Whatsapp => match whatsapp_gate(facts.outgoing, &facts.contact, now) {
            Gate::Go => SendDecision::SendNow,
            Gate::Wait(reason) => SendDecision::Queue {
                reason,
                explanation: explain_queue(reason),
            },
            Gate::Refuse(e) => SendDecision::Reject(e),
        },
    }
}

/// The WhatsApp rules' verdict on one message, shared by new sends and queued ones so the two can
/// never disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Gate {
    Go,
    /// Hold it for this queue reason.
    Wait(&'static str),
    /// It cannot go while the facts stay as they are, and the agent has to act.
    Refuse(DomainError),
}

pub(crate) fn whatsapp_gate(outgoing: Outgoing, facts: &ContactFacts, now: Millis) -> Gate {
    let business_initiated_ok = facts.window.is_open() || facts.within_messaging_limit;
    match outgoing {
        Outgoing::OptInRequest { approved } => {
            if let Err(e) = may_request_opt_in(facts.consent, facts.last_opt_in_request_at, now) {
                Gate::Refuse(e)
            } else if !approved {
                Gate::Refuse(template_not_approved())
            } else if business_initiated_ok {
                Gate::Go
            } else {
                Gate::Wait(MESSAGING_LIMIT)
            }
        }
        Outgoing::FreeForm | Outgoing::Template { .. } => match (facts.consent, outgoing, facts.marketing) {
            (ConsentState::Refused { .. }, _, _) => Gate::Refuse(consent_refused()),
            (ConsentState::NotOnWhatsapp { .. }, _, _) => Gate::Refuse(not_on_whatsapp()),
            (_, Outgoing::Template { approved: false, .. }, _) => Gate::Refuse(template_not_approved()),
            // Refused rather than queued: only the contact can lift it, in WhatsApp, and Meta
            // would refuse it with 131050 anyway.
            (_, Outgoing::Template { marketing: true, .. }, MarketingPreference::Stopped { since }) => {
                Gate::Refuse(marketing_stopped(since))
            }
            (ConsentState::Unknown | ConsentState::Pending { .. }, _, _) => Gate::Wait(AWAITING_CONSENT),
            (ConsentState::Granted { .. }, _, _) if facts.window.is_open() => Gate::Go,
            (ConsentState::Granted { .. }, Outgoing::FreeForm, _) => Gate::Wait(WINDOW_CLOSED),
            (ConsentState::Granted { .. }, _, _) if business_initiated_ok => Gate::Go,
            (ConsentState::Granted { .. }, _, _) => Gate::Wait(MESSAGING_LIMIT),
        },
    }
}

/// The refusal for a contact whose number cannot receive WhatsApp: the client offers SMS.
pub fn not_on_whatsapp() -> DomainError {
    DomainError::new(
        "not_on_whatsapp",
        "This number is not on WhatsApp, so the message cannot be delivered there. Offer to send it by SMS instead.",
    )
}

fn template_not_approved() -> DomainError {
    DomainError::new(
        "template_not_approved",
        "This template is not approved by WhatsApp (yet), so it cannot be sent. Choose an approved template.",
    )
}

/// The sentence shown to the agent for a queue reason.
pub fn explain_queue(reason: &str) -> String {
    match reason {
        AWAITING_CONSENT => "The contact has not agreed to WhatsApp messages yet. The message is queued and will be sent, in order, once they opt in; send an opt-in request if you have not.",
        WINDOW_CLOSED => "More than 24 hours have passed since the contact last wrote, so WhatsApp allows only approved templates. The message is queued and will be sent when the contact writes again; send a template to restart the conversation.",
        MESSAGING_LIMIT => "Your organization has reached its WhatsApp limit of new conversations for the last 24 hours. The message is queued and will be sent as soon as the limit allows.",
        EARLIER_MESSAGE_WAITING => "An earlier message to this contact is still queued; this one follows it, in order.",
        MARKETING_STOPPED => "The contact stopped marketing messages on WhatsApp, so this marketing template waits until they resume them. Cancel it, or send a utility template instead.",
        _ => "The message is queued and will be sent when the reason clears.",
    }
    .to_owned()
}
