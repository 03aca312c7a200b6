//! Simulated WhatsApp users with a scripted behaviour, and the one decision they make: which quick
//! reply to tap. Deterministic on purpose, so a test can predict every webhook.

use openline_domain::PhoneNumber;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A simulated WhatsApp user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Persona {
    pub phone: PhoneNumber,
    /// The WhatsApp profile name sent in webhooks' `contacts[].profile.name`.
    pub name: String,
    pub behaviour: PersonaBehaviour,
}

/// How a simulated phone reacts to what the business sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PersonaBehaviour {
    /// Reads everything and taps the first quick reply ("Yes").
    Accepts,
    /// Reads everything and taps the "No"/"Stop"-like quick reply (or else the last one).
    Declines,
    /// Messages are delivered but never read or answered.
    NeverAnswers,
    /// Not a WhatsApp user: every message fails with 131026.
    NotOnWhatsapp,
    /// A normal WhatsApp user driven through the phone API: reads, never answers by itself.
    Manual,
}

impl PersonaBehaviour {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Accepts => "accepts",
            Self::Declines => "declines",
            Self::NeverAnswers => "never_answers",
            Self::NotOnWhatsapp => "not_on_whatsapp",
            Self::Manual => "manual",
        }
    }
}

/// The four demo personas, one per scripted behaviour.
pub fn demo_personas() -> Vec<Persona> {
    [
        ("+447700900001", "Ada Accepts", PersonaBehaviour::Accepts),
        ("+447700900002", "Dan Declines", PersonaBehaviour::Declines),
        ("+447700900003", "Sam Silent", PersonaBehaviour::NeverAnswers),
        ("+447700900004", "Nora NoWhatsApp", PersonaBehaviour::NotOnWhatsapp),
    ]
    .into_iter()
    .filter_map(|(phone, name, behaviour)| {
        // The literals above are valid; filter_map keeps this free of unwrap.
        PhoneNumber::parse(phone).ok().map(|phone| Persona {
            phone,
            name: name.into(),
            behaviour,
        })
    })
    .collect()
}

/// Words (or phrases) that make a button the "no" choice for a declining persona.
const DECLINE_WORDS: &[&str] = &[
    "no",
    "stop",
    "decline",
    "unsubscribe",
    "opt out",
    "optout",
    "cancel",
    "reject",
];

/// A label's words, lower-cased: split at anything but letters and digits, so `OPTIN_NO` reads as
/// `optin no` and `No, cancel` as `no cancel`.
fn words(text: &str) -> Vec<String> {
    text.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_string)
        .collect()
}

/// Where in the label's words a decline word or phrase occurs first, if anywhere.
fn decline_at(label: &str) -> Option<usize> {
    let words = words(label);
    DECLINE_WORDS
        .iter()
        .filter_map(|phrase| {
            let phrase: Vec<&str> = phrase.split(' ').collect();
            words
                .windows(phrase.len())
                .position(|w| w.iter().zip(&phrase).all(|(a, b)| a == b))
        })
        .min()
}

/// Which of these button labels the behaviour taps, if any: `Accepts` the first; `Declines` the
/// first label that starts with a "no"-like word, else the first containing one as a word (so
/// `OPTIN_NO` or `Please stop`), else the last; the others tap nothing.
pub fn choose_button(behaviour: PersonaBehaviour, labels: &[&str]) -> Option<usize> {
    if labels.is_empty() {
        return None;
    }
    match behaviour {
        PersonaBehaviour::Accepts => Some(0),
        PersonaBehaviour::Declines => Some(
            labels
                .iter()
                .position(|l| decline_at(l) == Some(0))
                .or_else(|| labels.iter().position(|l| decline_at(l).is_some()))
                .unwrap_or(labels.len() - 1),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn there_are_four_demo_personas_with_distinct_behaviours() {
        let p = demo_personas();
        assert_eq!(p.len(), 4);
        assert_eq!(p[0].name, "Ada Accepts");
        assert_eq!(p[3].behaviour, PersonaBehaviour::NotOnWhatsapp);
    }

    #[test]
    fn accepting_taps_the_first_and_declining_the_no_like_button() {
        let labels = ["Yes", "No thanks", "Later"];
        assert_eq!(choose_button(PersonaBehaviour::Accepts, &labels), Some(0));
        assert_eq!(choose_button(PersonaBehaviour::Declines, &labels), Some(1));
        assert_eq!(choose_button(PersonaBehaviour::Declines, &["Yes", "STOP"]), Some(1));
        assert_eq!(
            choose_button(PersonaBehaviour::Declines, &["Book", "Call me", "Later"]),
            Some(2)
        );
        assert_eq!(
            choose_button(PersonaBehaviour::Declines, &["Nope?", "Notify me"]),
            Some(1)
        );
        assert_eq!(
            choose_button(PersonaBehaviour::Declines, &["OPTIN_YES", "OPTIN_NO"]),
            Some(1)
        );
        assert_eq!(
            choose_button(PersonaBehaviour::Declines, &["OPTIN_NO", "OPTIN_YES"]),
            Some(0)
        );
        assert_eq!(
            choose_button(
                PersonaBehaviour::Declines,
                &["Yes, no problem", "Please stop", "Opt-out"]
            ),
            Some(2)
        );
        assert_eq!(
            choose_button(PersonaBehaviour::Declines, &["Yes, no problem", "Later"]),
            Some(0)
        );
        assert_eq!(choose_button(PersonaBehaviour::NeverAnswers, &labels), None);
        assert_eq!(choose_button(PersonaBehaviour::Accepts, &[]), None);
    }
}
