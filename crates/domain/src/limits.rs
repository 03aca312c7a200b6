//! Limits WhatsApp puts on a business, to be respected by pacing and queueing, never by failing.
//!
//! - **Messaging-limit tier** (per organization's business account): how many *unique contacts* may be
//!   sent business-initiated messages (templates outside the contact's 24-hour window) in any rolling
//!   24 hours. Beyond it the policy queues with reason `messaging_limit`; messages are not dropped.
//! - **Throughput** per sender number: 80 messages per second by default, up to 1,000 when Meta raises
//!   it. Over it Meta answers 130429.
//! - **Pacing per contact**: about one message per 6 seconds to the same person; faster bursts get
//!   131056.
//!
//! The rules are functions of recorded facts and `now`; the dispatcher keeps the facts (or a
//! [`Pacer`]) and asks when the next send may go, instead of sending and retrying on errors.

use crate::model::text_enum;
use crate::window::WINDOW_MS;
use crate::{DomainError, Millis};
use std::collections::{HashMap, VecDeque};

/// Business-initiated conversations are counted over this rolling period.
pub const MESSAGING_LIMIT_PERIOD_MS: Millis = WINDOW_MS;
/// Meta's default throughput for a sender number.
pub const DEFAULT_THROUGHPUT_PER_SECOND: u32 = 80;
/// The highest throughput Meta grants a number.
pub const MAX_THROUGHPUT_PER_SECOND: u32 = 1_000;
/// The shortest gap between two messages to the same contact.
pub const MIN_CONTACT_INTERVAL_MS: Millis = 6_000;
const SECOND_MS: Millis = 1_000;

text_enum! {
    /// Meta's messaging-limit tiers: unique contacts reachable with business-initiated messages per
    /// rolling 24 hours. The text form follows Meta's names (`TIER_2K` → `tier_2k`).
    pub enum MessagingTier {
        Tier250 => "tier_250",
        Tier2k => "tier_2k",
        Tier10k => "tier_10k",
        Tier100k => "tier_100k",
        Unlimited => "tier_unlimited",
    }
}

impl MessagingTier {
    /// The cap on unique contacts per rolling 24 hours; `None` when unlimited.
    pub fn cap(self) -> Option<u32> {
        match self {
            Self::Tier250 => Some(250),
            Self::Tier2k => Some(2_000),
            Self::Tier10k => Some(10_000),
            Self::Tier100k => Some(100_000),
            Self::Unlimited => None,
        }
    }
}

/// Whether one more business-initiated message may go to a contact now. A contact already counted
/// in the last 24 hours costs nothing more; a new one needs room under the tier's cap.
/// `unique_contacts_in_last_24h` counts the contacts sent business-initiated messages in the period
/// (including this one if `contact_already_counted`).
pub fn business_initiated_allowed(
    tier: MessagingTier,
    unique_contacts_in_last_24h: u32,
    contact_already_counted: bool,
) -> bool {
    contact_already_counted || tier.cap().is_none_or(|cap| unique_contacts_in_last_24h < cap)
}

/// Messages per second a sender number may send: 1 to 1,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throughput(u32);

impl Throughput {
    /// Refuses values the provider would never grant (`throughput_out_of_range`), so a typo in the
    /// configuration cannot turn pacing off or stop a number entirely.
    pub fn new(per_second: u32) -> Result<Self, DomainError> {
        if (1..=MAX_THROUGHPUT_PER_SECOND).contains(&per_second) {
            Ok(Self(per_second))
        } else {
            Err(DomainError::new(
                "throughput_out_of_range",
                format!(
                    "Throughput must be 1 to {MAX_THROUGHPUT_PER_SECOND} messages per second; {per_second} was given."
                ),
            ))
        }
    }

    pub fn per_second(self) -> u32 {
        self.0
    }
}

impl Default for Throughput {
    fn default() -> Self {
        Self(DEFAULT_THROUGHPUT_PER_SECOND)
    }
}

/// The earliest instant, at or after `now`, when a sender number may send to a contact:
/// fewer than `throughput` sends from the number in the second before it, and at least
/// [`MIN_CONTACT_INTERVAL_MS`] after the last send to the contact.
///
/// `recent_sends_from_number` are past send times from the number (any order; older than a second
/// are ignored). A result equal to `now` means "send now".
pub fn next_send_at(
    recent_sends_from_number: &[Millis],
    last_send_to_contact: Option<Millis>,
    throughput: Throughput,
    now: Millis,
) -> Millis {
    let rate = usize::try_from(throughput.per_second()).unwrap_or(usize::MAX);
    let mut in_last_second: Vec<Millis> = recent_sends_from_number
        .iter()
        .copied()
        .filter(|s| *s > now - SECOND_MS)
        .collect();
    let by_number = if in_last_second.len() < rate {
        now
    } else {
        // Wait until enough of the oldest sends leave the one-second window: at `s + 1s` the send at
        // `s` no longer counts, nor do the ones before it.
        in_last_second.sort_unstable();
        in_last_second[in_last_second.len() - rate].saturating_add(SECOND_MS)
    };
    let by_contact = last_send_to_contact.map_or(now, |last| last.saturating_add(MIN_CONTACT_INTERVAL_MS));
    now.max(by_number).max(by_contact)
}

/// What the dispatcher keeps per sender number to pace its sends: the last second of sends and the
/// last send to each recent contact. Pure: every call takes the time.
#[derive(Debug, Clone, Default)]
pub struct Pacer {
    throughput: Throughput,
    /// Send times from the last second, oldest first.
    recent: VecDeque<Millis>,
    /// Last send per contact key, for contacts written to in the last 6 seconds.
    last_to_contact: HashMap<String, Millis>,
}

impl Pacer {
    pub fn new(throughput: Throughput) -> Self {
        Self {
            throughput,
            ..Self::default()
        }
    }

    /// When the next message to `contact` may go (see [`next_send_at`]).
    pub fn next_send_at(&self, contact: &str, now: Millis) -> Millis {
        let recent: Vec<Millis> = self.recent.iter().copied().collect();
        next_send_at(
            &recent,
            self.last_to_contact.get(contact).copied(),
            self.throughput,
            now,
        )
    }

    /// Records a send handed to the provider at `at`, forgetting what can no longer matter.
    pub fn record_send(&mut self, contact: &str, at: Millis) {
        self.recent.push_back(at);
        while self.recent.front().is_some_and(|s| *s <= at - SECOND_MS) {
            self.recent.pop_front();
        }
        self.last_to_contact
            .retain(|_, last| *last > at - MIN_CONTACT_INTERVAL_MS);
        let entry = self.last_to_contact.entry(contact.to_owned()).or_insert(at);
        *entry = (*entry).max(at);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn tiers_cap_unique_contacts_and_their_text_round_trips() {
        let caps: Vec<Option<u32>> = MessagingTier::ALL.iter().map(|t| t.cap()).collect();
        assert_eq!(caps, [Some(250), Some(2_000), Some(10_000), Some(100_000), None]);
        for t in MessagingTier::ALL {
            assert_eq!(MessagingTier::parse(t.as_str()), Some(*t));
        }
    }

    #[test]
    fn business_initiated_messages_stop_at_the_cap_except_for_contacts_already_counted() {
        use MessagingTier::*;
        let table = [
            (Tier250, 0, false, true),
            (Tier250, 249, false, true),
            (Tier250, 250, false, false),
            (Tier250, 250, true, true),
            (Tier250, 9_999, true, true),
            (Tier2k, 1_999, false, true),
            (Tier2k, 2_000, false, false),
            (Tier10k, 10_000, false, false),
            (Tier100k, 99_999, false, true),
            (Tier100k, 100_000, false, false),
            (Unlimited, u32::MAX, false, true),
        ];
        for (tier, count, counted, allowed) in table {
            assert_eq!(
                business_initiated_allowed(tier, count, counted),
                allowed,
                "{tier} {count} {counted}"
            );
        }
    }

    #[test]
    fn throughput_is_refused_outside_what_meta_grants() {
        assert_eq!(Throughput::default().per_second(), 80);
        assert_eq!(Throughput::new(1_000).map(Throughput::per_second), Ok(1_000));
        assert_eq!(Throughput::new(0).unwrap_err().code, "throughput_out_of_range");
        assert_eq!(Throughput::new(1_001).unwrap_err().code, "throughput_out_of_range");
    }

    #[test]
    fn a_second_message_to_the_same_contact_waits_six_seconds() {
        let t = Throughput::default();
        assert_eq!(next_send_at(&[], None, t, 10_000), 10_000);
        assert_eq!(next_send_at(&[9_000], Some(9_000), t, 10_000), 15_000);
        assert_eq!(next_send_at(&[], Some(1_000), t, 10_000), 10_000);
    }

    #[test]
    fn a_full_second_waits_until_its_oldest_send_leaves_it() {
        let t = Throughput::new(3).unwrap();
        assert_eq!(next_send_at(&[9_100, 9_500], None, t, 10_000), 10_000);
        assert_eq!(next_send_at(&[9_500, 9_100, 9_800], None, t, 10_000), 10_100);
        assert_eq!(
            next_send_at(&[8_000, 9_000, 9_100, 9_500, 9_800], None, t, 10_000),
            10_100
        );
    }

    #[derive(Debug, Clone)]
    struct Job {
        contact: u8,
        arrives_after_ms: Millis,
    }

    fn jobs() -> impl Strategy<Value = Vec<Job>> {
        proptest::collection::vec(
            (0u8..6, 0i64..40).prop_map(|(contact, arrives_after_ms)| Job {
                contact,
                arrives_after_ms,
            }),
            1..200,
        )
    }

    proptest! {
        /// A dispatcher that sends each message as soon as the pacer allows never exceeds the
        /// number's throughput in any second nor writes to one contact twice within 6 seconds.
        #[test]
        fn paced_sends_respect_throughput_and_contact_spacing(jobs in jobs(), rate in 1u32..6) {
            let mut pacer = Pacer::new(Throughput::new(rate).unwrap());
            let mut now = 0;
            let mut sent: Vec<(Millis, u8)> = Vec::new();
            for job in jobs {
                now += job.arrives_after_ms;
                let key = job.contact.to_string();
                let at = pacer.next_send_at(&key, now);
                prop_assert!(at >= now);
                // The dispatcher waits until `at`; nothing else is sent meanwhile in this model.
                now = at;
                prop_assert_eq!(pacer.next_send_at(&key, now), now);
                pacer.record_send(&key, now);
                sent.push((now, job.contact));
            }
            for (i, (t, c)) in sent.iter().enumerate() {
                let same_second = sent.iter().filter(|(s, _)| *s > t - SECOND_MS && s <= t).count();
                prop_assert!(same_second <= rate as usize, "{} sends in the second ending at {}", same_second, t);
                if let Some((prev, _)) = sent[..i].iter().rev().find(|(_, pc)| pc == c) {
                    prop_assert!(t - prev >= MIN_CONTACT_INTERVAL_MS);
                }
            }
        }
    }
}
