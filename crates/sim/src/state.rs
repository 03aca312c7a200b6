//! What the simulated world remembers, in memory: every phone (persona or not) with its behaviour,
//! the last time it wrote to each business number (the 24-hour window) and its conversation as the
//! phone sees it; media uploaded by phones; the per-second send counters behind 130429; and the
//! message templates of every WABA.
//!
//! All of it sits behind one `std::sync::Mutex` that is never held across an `.await`.

use crate::personas::{Persona, PersonaBehaviour};
use openline_domain::{Millis, PhoneNumber};
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use utoipa::ToSchema;

/// The 24-hour customer-service window, in milliseconds.
pub const WINDOW_MS: Millis = 24 * 60 * 60 * 1000;

/// Who wrote a conversation entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// The business sent it to the phone (through the Graph API).
    FromBusiness,
    /// The phone sent it to the business (a webhook to openline).
    FromPhone,
}

/// How a message travelled between the phone and the business.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageChannel {
    /// WhatsApp, through the Cloud API or through Twilio.
    #[default]
    Whatsapp,
    /// SMS, through Twilio.
    Sms,
}

/// A template as the phone sees it: its name, language and the parameters filled in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TemplateView {
    pub name: String,
    pub language: String,
    /// Body (and header) text parameters in order; currency and date-time show their fallback value.
    pub parameters: Vec<String>,
    /// The body with the parameters filled in, as the phone shows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
}

/// What kind of tappable button a business message offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ButtonKind {
    /// A template quick reply: tapping sends a `button` message with its payload.
    QuickReply,
    /// An interactive reply button: tapping sends `interactive.button_reply`.
    Reply,
    /// A row of an interactive list: choosing sends `interactive.list_reply`.
    ListRow,
}

/// A button the phone can tap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ButtonView {
    pub kind: ButtonKind,
    /// The quick reply's payload, or the reply button's / list row's id.
    pub id: String,
    /// The label the phone shows.
    pub text: String,
    /// List rows only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// One message in a phone's conversation with a business number.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ConversationEntry {
    /// The `wamid.` id (Cloud API) or Twilio's `SM…` SID (Twilio).
    pub id: String,
    pub direction: Direction,
    /// The business number's display digits (for SMS, the digits of the business SMS number).
    pub business_number: String,
    /// `whatsapp` or `sms`.
    pub channel: MessageChannel,
    /// `text`, `template`, `interactive`, `image`, `button`, …
    #[serde(rename = "type")]
    pub kind: String,
    /// The text shown: a text body, an interactive body, a caption, a tapped button's label.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub template: Option<TemplateView>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<ButtonView>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub media_id: Option<String>,
    /// The message this one replies to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_id: Option<String>,
    /// Business messages: `accepted` (Cloud API) or `queued` (Twilio), then `sent`, `delivered`,
    /// `read` or `failed`. Phone messages: `sent` until openline marks them `read`.
    pub status: String,
    /// Set when `status` is `failed`: the Cloud API error code (Twilio's, e.g. 63003, for Twilio).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<i64>,
    /// When it happened, epoch milliseconds by the simulator's clock.
    pub timestamp_ms: Millis,
}

/// A simulated phone.
#[derive(Debug, Clone)]
pub struct PhoneRecord {
    pub phone: PhoneNumber,
    pub name: String,
    pub behaviour: PersonaBehaviour,
    /// Per business `phone_number_id`: when this phone last wrote to it.
    pub last_inbound_ms: HashMap<String, Millis>,
    /// Per business `phone_number_id`: the current billing conversation's id and expiry.
    pub conversations: HashMap<String, (String, Millis)>,
    /// The business `phone_number_id`s this phone stopped marketing messages from (WhatsApp's
    /// "Stop promotions"): Meta refuses their marketing templates with 131050.
    pub marketing_stopped: HashSet<String>,
    pub entries: Vec<ConversationEntry>,
}

/// Media a phone sent or the business uploaded, served through the Graph media endpoints.
/// `Debug` shows the size, not the bytes.
#[derive(Clone)]
pub struct StoredMedia {
    pub mime_type: String,
    pub bytes: Vec<u8>,
    /// Lower-case hex SHA-256 of `bytes`.
    pub sha256_hex: String,
}

impl std::fmt::Debug for StoredMedia {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredMedia")
            .field("mime_type", &self.mime_type)
            .field("bytes", &self.bytes.len())
            .field("sha256_hex", &self.sha256_hex)
            .finish()
    }
}

/// Everything the simulator remembers.
#[derive(Debug, Default)]
pub struct SimState {
    /// Keyed by the phone's digits (its `wa_id`).
    pub phones: HashMap<String, PhoneRecord>,
    /// Message id → the digits of the phone whose conversation holds it.
    pub message_owner: HashMap<String, String>,
    pub media: HashMap<String, StoredMedia>,
    /// Per business `phone_number_id`: (the second, sends counted in it).
    pub throughput: HashMap<String, (i64, u32)>,
    /// Message templates of every WABA, in the order they were created (see [`crate::templates`]).
    pub templates: Vec<crate::templates::TemplateRecord>,
}

impl SimState {
    pub fn with_personas(personas: &[Persona]) -> Self {
        let mut state = Self::default();
        for p in personas {
            state.phones.insert(
                p.phone.digits().to_string(),
                PhoneRecord {
                    phone: p.phone.clone(),
                    name: p.name.clone(),
                    behaviour: p.behaviour,
                    last_inbound_ms: HashMap::new(),
                    conversations: HashMap::new(),
                    marketing_stopped: HashSet::new(),
                    entries: Vec::new(),
                },
            );
        }
        state
    }

    /// The phone's record, created as a `Manual` user the first time the number appears.
    pub fn phone_mut(&mut self, phone: &PhoneNumber) -> &mut PhoneRecord {
        self.phones
            .entry(phone.digits().to_string())
            .or_insert_with(|| PhoneRecord {
                phone: phone.clone(),
                // WhatsApp shows the number when a user has no profile name; so does the simulator.
                name: phone.as_e164().to_string(),
                behaviour: PersonaBehaviour::Manual,
                last_inbound_ms: HashMap::new(),
                conversations: HashMap::new(),
                marketing_stopped: HashSet::new(),
                entries: Vec::new(),
            })
    }

    pub fn behaviour_of(&self, phone: &PhoneNumber) -> PersonaBehaviour {
        self.phones
            .get(phone.digits())
            .map_or(PersonaBehaviour::Manual, |p| p.behaviour)
    }

    /// Whether the phone stopped marketing messages from this business number.
    pub fn marketing_stopped(&self, phone: &PhoneNumber, phone_number_id: &str) -> bool {
        self.phones
            .get(phone.digits())
            .is_some_and(|p| p.marketing_stopped.contains(phone_number_id))
    }

    /// Whether the phone wrote to this business number within the last 24 hours.
    pub fn window_open(&self, phone: &PhoneNumber, phone_number_id: &str, now: Millis) -> bool {
        self.phones
            .get(phone.digits())
            .and_then(|p| p.last_inbound_ms.get(phone_number_id))
            .is_some_and(|last| now - last < WINDOW_MS)
    }

    /// Counts one send for this business number; `false` when the second's budget is spent.
    pub fn take_throughput(&mut self, phone_number_id: &str, now: Millis, per_second: u32) -> bool {
        let second = now.div_euclid(1000);
        let slot = self
            .throughput
            .entry(phone_number_id.to_string())
            .or_insert((second, 0));
        if slot.0 != second {
            *slot = (second, 0);
        }
        if slot.1 >= per_second {
            return false;
        }
        slot.1 += 1;
        true
    }

    /// Appends an entry to the phone's conversation and indexes its id.
    pub fn record(&mut self, phone: &PhoneNumber, entry: ConversationEntry) {
        self.message_owner.insert(entry.id.clone(), phone.digits().to_string());
        self.phone_mut(phone).entries.push(entry);
    }

    /// The entry with this id, if the phone's conversation holds it.
    pub fn entry(&self, phone: &PhoneNumber, id: &str) -> Option<&ConversationEntry> {
        self.phones.get(phone.digits())?.entries.iter().find(|e| e.id == id)
    }

    /// Sets the status of a message wherever it is.
    pub fn set_status(&mut self, id: &str, status: &str, error_code: Option<i64>) {
        let Some(owner) = self.message_owner.get(id) else {
            return;
        };
        if let Some(entry) = self
            .phones
            .get_mut(owner)
            .and_then(|p| p.entries.iter_mut().find(|e| e.id == id))
        {
            entry.status = status.to_string();
            entry.error_code = error_code;
        }
    }

    /// The billing conversation between the phone and the business number: reused while it lasts,
    /// otherwise a new one for 24 hours. Returns its id and expiry (epoch ms).
    pub fn conversation_for(&mut self, phone: &PhoneNumber, phone_number_id: &str, now: Millis) -> (String, Millis) {
        let record = self.phone_mut(phone);
        if let Some((id, expires)) = record.conversations.get(phone_number_id) {
            if *expires > now {
                return (id.clone(), *expires);
            }
        }
        let fresh = (crate::ids::conversation_id(), now + WINDOW_MS);
        record.conversations.insert(phone_number_id.to_string(), fresh.clone());
        fresh
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn the_window_lasts_24_hours_from_the_phones_last_message() {
        let mut s = SimState::default();
        let p = PhoneNumber::parse("+447700900123").unwrap();
        assert!(!s.window_open(&p, "1", 0));
        s.phone_mut(&p).last_inbound_ms.insert("1".into(), 1_000);
        assert!(s.window_open(&p, "1", 1_000 + WINDOW_MS - 1));
        assert!(!s.window_open(&p, "1", 1_000 + WINDOW_MS));
        assert!(!s.window_open(&p, "2", 1_000));
    }

    #[test]
    fn throughput_resets_every_second() {
        let mut s = SimState::default();
        assert!(s.take_throughput("1", 5_000, 2));
        assert!(s.take_throughput("1", 5_999, 2));
        assert!(!s.take_throughput("1", 5_999, 2));
        assert!(s.take_throughput("2", 5_999, 2));
        assert!(s.take_throughput("1", 6_000, 2));
    }
}
