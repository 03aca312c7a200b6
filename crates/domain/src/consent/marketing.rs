//! Marketing messages per organization × contact: whether the contact has stopped them, derived from
//! the consent ledger like consent itself.
//!
//! WhatsApp lets a person stop marketing messages from a business without blocking it (Meta's
//! `user_preferences` webhook, `value: "stop"`; `resume` or a `signup` through a sign-up link lifts
//! it), and Meta then refuses marketing templates to them with error 131050. Utility and
//! authentication templates, and replies inside the customer-service window, are unaffected.
//!
//! The preference lives in the same append-only ledger as consent (kinds `marketing_stopped` and
//! `marketing_resumed`), not in a ledger of its own: an auditor asking "what did this person agree
//! to, and when did they say stop?" gets one hash-journaled history with its evidence, and the
//! store, the journal and the attestation endpoint need nothing new. The two questions stay
//! separate all the same: a marketing stop never changes [`super::ConsentState`] (the contact still
//! wants to hear from the business, just not its promotions), and consent events never change the
//! marketing preference.
//!
//! Entries are applied in ledger order, which the store keeps by the time each one *happened* (the
//! webhook's timestamp), so a stop delivered late after a resume cannot undo that resume.

use super::{ConsentEvent, ConsentEventKind};
use crate::utc::format_utc_minute;
use crate::{DomainError, Millis};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The refusal code of a marketing template to a contact who stopped marketing messages.
pub const MARKETING_STOPPED: &str = "marketing_stopped";

/// Meta's error for a marketing template to someone who stopped marketing messages ("Unable to
/// deliver the message. This recipient has chosen to stop receiving marketing messages on WhatsApp
/// from your business.").
pub const META_MARKETING_STOPPED_ERROR: i64 = 131050;

/// Whether marketing templates may reach the contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum MarketingPreference {
    /// Marketing templates may be sent (consent and the other rules still apply): WhatsApp's
    /// default, or the contact resumed them.
    Allowed {
        /// When the contact last resumed (or signed up for) marketing messages; absent when they
        /// never stopped them.
        since: Option<Millis>,
    },
    /// The contact stopped marketing messages: marketing templates are refused until they resume.
    Stopped {
        /// Start of the current, uninterrupted stop.
        since: Millis,
    },
}

impl MarketingPreference {
    /// Stable text form, as the API names the state.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Allowed { .. } => "allowed",
            Self::Stopped { .. } => "stopped",
        }
    }

    pub fn is_stopped(self) -> bool {
        matches!(self, Self::Stopped { .. })
    }
}

/// Derives the marketing preference from the consent ledger (entries in ledger order); entries of
/// other kinds are ignored.
pub fn marketing_preference(events: &[ConsentEvent]) -> MarketingPreference {
    events
        .iter()
        .fold(MarketingPreference::Allowed { since: None }, |state, e| {
            match (e.kind, state) {
                // A continuing stop keeps its start: a second "stop" (or a 131050 after the
                // webhook) is more evidence, not a new stop.
                (ConsentEventKind::MarketingStopped, MarketingPreference::Stopped { since }) => {
                    MarketingPreference::Stopped { since }
                }
                (ConsentEventKind::MarketingStopped, _) => MarketingPreference::Stopped { since: e.at },
                (ConsentEventKind::MarketingResumed, MarketingPreference::Stopped { .. }) => {
                    MarketingPreference::Allowed { since: Some(e.at) }
                }
                // Resuming what was never stopped (a sign-up link, say) changes nothing.
                (ConsentEventKind::MarketingResumed, allowed) => allowed,
                _ => state,
            }
        })
}

/// The refusal of a marketing template to a contact who stopped marketing messages: what the agent
/// can do instead.
pub fn marketing_stopped(since: Millis) -> DomainError {
    DomainError::new(
        MARKETING_STOPPED,
        format!(
            "The contact stopped marketing messages from your business on WhatsApp ({}), so marketing templates cannot be sent to them. Send a utility template, or reply while the conversation window is open; only the contact can resume marketing messages, in WhatsApp.",
            format_utc_minute(since)
        ),
    )
}

/// What a Cloud API `user_preferences` value means for the ledger: `stop` → stopped, `resume` or
/// `signup` → resumed. Only the `marketing_messages` category is understood; anything else is
/// `None` (kept as a provider event, changing nothing).
pub fn kind_for_preference(category: &str, value: &str) -> Option<ConsentEventKind> {
    if !category.eq_ignore_ascii_case("marketing_messages") {
        return None;
    }
    match value.to_ascii_lowercase().as_str() {
        "stop" => Some(ConsentEventKind::MarketingStopped),
        "resume" | "signup" => Some(ConsentEventKind::MarketingResumed),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConsentEventKind::*;

    fn ledger(entries: &[(ConsentEventKind, Millis)]) -> Vec<ConsentEvent> {
        entries.iter().map(|(k, at)| ConsentEvent::new(*k, *at)).collect()
    }

    #[test]
    fn a_contact_who_never_stopped_is_allowed() {
        assert_eq!(marketing_preference(&[]), MarketingPreference::Allowed { since: None });
        // Consent entries say nothing about marketing.
        let consent_only = ledger(&[(Requested, 1), (Accepted, 2), (OptedOut, 3)]);
        assert_eq!(
            marketing_preference(&consent_only),
            MarketingPreference::Allowed { since: None }
        );
    }

    #[test]
    fn a_stop_holds_from_its_first_entry_until_a_resume() {
        let stopped = ledger(&[(Accepted, 1), (MarketingStopped, 10), (MarketingStopped, 20)]);
        assert_eq!(
            marketing_preference(&stopped),
            MarketingPreference::Stopped { since: 10 }
        );
        let resumed = ledger(&[(MarketingStopped, 10), (MarketingResumed, 30)]);
        assert_eq!(
            marketing_preference(&resumed),
            MarketingPreference::Allowed { since: Some(30) }
        );
        let again = ledger(&[(MarketingStopped, 10), (MarketingResumed, 30), (MarketingStopped, 40)]);
        assert_eq!(marketing_preference(&again), MarketingPreference::Stopped { since: 40 });
    }

    #[test]
    fn resuming_what_was_never_stopped_changes_nothing() {
        let signup = ledger(&[(MarketingResumed, 5)]);
        assert_eq!(
            marketing_preference(&signup),
            MarketingPreference::Allowed { since: None }
        );
    }

    #[test]
    fn marketing_entries_leave_whatsapp_consent_as_it_was() {
        let granted = ledger(&[
            (Requested, 1),
            (Accepted, 2),
            (MarketingStopped, 3),
            (MarketingResumed, 4),
        ]);
        assert_eq!(
            super::super::consent_state(&granted),
            super::super::ConsentState::Granted { since: 2 }
        );
        let unknown = ledger(&[(MarketingStopped, 3)]);
        assert_eq!(
            super::super::consent_state(&unknown),
            super::super::ConsentState::Unknown
        );
    }

    #[test]
    fn metas_preference_values_map_to_ledger_kinds() {
        assert_eq!(
            kind_for_preference("marketing_messages", "stop"),
            Some(MarketingStopped)
        );
        assert_eq!(
            kind_for_preference("marketing_messages", "resume"),
            Some(MarketingResumed)
        );
        assert_eq!(
            kind_for_preference("marketing_messages", "signup"),
            Some(MarketingResumed)
        );
        assert_eq!(kind_for_preference("marketing_messages", "maybe"), None);
        assert_eq!(kind_for_preference("something_else", "stop"), None);
    }

    #[test]
    fn the_refusal_says_since_when_and_what_to_do_instead() {
        let e = marketing_stopped(1_764_556_200_000);
        assert_eq!(e.code, "marketing_stopped");
        assert!(e.message.contains("2025-12-01"), "{}", e.message);
        assert!(e.message.contains("utility template"), "{}", e.message);
    }
}
