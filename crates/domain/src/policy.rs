//! The send decision: one pure function of the facts and `now` that every outgoing message passes
//! through before anything is stored or sent. The server gathers the facts and carries out the
//! outcome; it never decides on its own.
//!
//! This first version checks what the foundation knows (who is sending, whether WhatsApp is enabled
//! for them, whether the text is sendable). Consent, the 24-hour window, templates and limits extend
//! `SendFacts` and add outcomes here (issue 3); callers already handle every outcome.

use crate::{Channel, DomainError, Millis, Role};

/// The longest text body the Cloud API accepts (Meta: `text.body`, 4096 characters).
pub const MAX_TEXT_CHARS: usize = 4096;

/// Everything the rule needs to know about one attempted send.
#[derive(Debug, Clone)]
pub struct SendFacts<'a> {
    pub channel: Channel,
    pub author_role: Role,
    /// The organization (or an ancestor it inherits from) has the WhatsApp connector enabled.
    pub org_whatsapp_enabled: bool,
    /// The author has WhatsApp enabled (admins switch it per user).
    pub user_whatsapp_enabled: bool,
    pub text: &'a str,
}

/// What happens to the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SendDecision {
    /// Store it and hand it to the dispatcher now.
    SendNow,
    /// Store it, but hold it until the reason clears (consent, the contact writing again, limits).
    Queue { reason: &'static str, explanation: String },
    /// Refuse it; nothing is stored.
    Reject(DomainError),
}

pub fn decide_send(facts: &SendFacts<'_>, _now: Millis) -> SendDecision {
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
    SendDecision::SendNow
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(text: &str) -> SendFacts<'_> {
        SendFacts {
            channel: Channel::Whatsapp,
            author_role: Role::Agent,
            org_whatsapp_enabled: true,
            user_whatsapp_enabled: true,
            text,
        }
    }

    fn rejected_code(f: &SendFacts<'_>) -> Option<&'static str> {
        match decide_send(f, 0) {
            SendDecision::Reject(e) => Some(e.code),
            _ => None,
        }
    }

    #[test]
    fn an_agent_with_whatsapp_enabled_sends_a_text_now() {
        assert_eq!(decide_send(&facts("Hello"), 0), SendDecision::SendNow);
    }

    #[test]
    fn each_refusal_has_its_own_code() {
        let mut f = facts("Hello");
        f.author_role = Role::Viewer;
        assert_eq!(rejected_code(&f), Some("forbidden_role"));
        let mut f = facts("Hello");
        f.org_whatsapp_enabled = false;
        assert_eq!(rejected_code(&f), Some("whatsapp_disabled"));
        let mut f = facts("Hello");
        f.user_whatsapp_enabled = false;
        assert_eq!(rejected_code(&f), Some("whatsapp_disabled_for_user"));
        assert_eq!(rejected_code(&facts("  \n")), Some("empty_message"));
        let long = "é".repeat(MAX_TEXT_CHARS + 1);
        assert_eq!(rejected_code(&facts(&long)), Some("message_too_long"));
        let exact = "é".repeat(MAX_TEXT_CHARS);
        assert_eq!(rejected_code(&facts(&exact)), None);
    }

    #[test]
    fn sms_does_not_need_the_whatsapp_switch() {
        let mut f = facts("Hello");
        f.channel = Channel::Sms;
        f.org_whatsapp_enabled = false;
        assert_eq!(decide_send(&f, 0), SendDecision::SendNow);
    }
}
