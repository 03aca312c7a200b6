//! Limits WhatsApp puts on a business, to be respected by pacing and queueing, never by failing.
//!
//! - **Messaging-limit tier** (per organization's business account): how many *unique contacts* may be
//!   sent business-initiated messages (templates outside the contact's 24-hour window) in any rolling
//!   24 hours. Beyond it the policy queues with reason `messaging_limit`; messages are not dropped.
//! - **Throughput** per sender number: 80 messages per second by default, up to 1,000 when Meta raises
//!   it. Over it Meta answers 130429.
//! - **Pacing per contact**: about one message per 6 seconds to the same person, with a short burst
//!   allowed (see [`CONTACT_BURST`]); faster gets 131056.
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

/// How many messages may go to one contact back to back before the 6-second spacing applies.
///
/// Meta's pair rate limit is about one message every 6 seconds from a business number to the same
/// user (error 131056), and Meta documents that a burst (up to 45 messages in 6 seconds) is allowed
/// by *borrowing* from the future: after it, the pair must stay quiet for the time the burst would
/// have taken at the normal rate. openline models exactly that as a token bucket per contact (a
/// generic cell-rate algorithm: one token every [`MIN_CONTACT_INTERVAL_MS`], at most
/// `CONTACT_BURST` of them saved up), and takes a burst of 10, well under Meta's 45, so that
/// what naturally comes together is not slowed (the opt-in request, its confirmation and the
/// messages an agent wrote while waiting for consent, released in order) while sustained sends to
/// one person are paced at one per 6 seconds and a 131056 can only come from a provider that counts
/// more strictly than it documents (then [`Pacer::provider_refused_contact`] empties the bucket).
pub const CONTACT_BURST: u32 = 10;

/// The earliest instant, at or after `now`, when a sender number may send to a contact:
/// no one-second window (`(w - 1 s, w]`) would hold more than `throughput` sends from the number,
/// and the contact's token bucket holds a token.
///
/// `sends_from_number` are the number's send times, past or booked ahead, in any order.
/// `contact_tat` is the contact's "theoretical arrival time" (see [`contact_tat_after_send`]);
/// `None` for a contact not written to recently. A result equal to `now` means "send now".
pub fn next_send_at(
    sends_from_number: &[Millis],
    contact_tat: Option<Millis>,
    throughput: Throughput,
    now: Millis,
) -> Millis {
    let mut sends: VecDeque<Millis> = sends_from_number.iter().copied().collect();
    sends.make_contiguous().sort_unstable();
    let t = by_number(&sends, throughput, SECOND_MS, now);
    // Waiting for the contact may land in a full second again: settle both.
    settle(&sends, throughput, SECOND_MS, contact_tat, t)
}

fn settle(
    sends: &VecDeque<Millis>,
    throughput: Throughput,
    window: Millis,
    contact_tat: Option<Millis>,
    from: Millis,
) -> Millis {
    let mut t = from;
    loop {
        let next = by_number(sends, throughput, window, by_contact(contact_tat, t));
        if next == t {
            return t;
        }
        t = next;
    }
}

/// When the contact's bucket next holds a token: its TAT less a burst's worth of intervals.
fn by_contact(contact_tat: Option<Millis>, now: Millis) -> Millis {
    let tolerance = MIN_CONTACT_INTERVAL_MS * Millis::from(CONTACT_BURST - 1);
    contact_tat.map_or(now, |tat| now.max(tat - tolerance))
}

/// The earliest `t >= now` such that adding a send at `t` leaves every one-second window with at
/// most `throughput` sends (windows of `window` ms: a second, or a little more for a safety margin),
/// given the number's sends sorted (booked future ones included, so a
/// booking never overfills a window a later booking already uses).
///
/// A group of `rate` consecutive sends spanning less than a second forbids exactly the instants
/// `[last - 999, first + 999]` (with them, `rate + 1` sends would fit in one window). The groups'
/// bounds grow with their index, so one pass that jumps past each forbidden range it lands in finds
/// the answer.
fn by_number(sorted_sends: &VecDeque<Millis>, throughput: Throughput, window: Millis, now: Millis) -> Millis {
    let rate = usize::try_from(throughput.per_second()).unwrap_or(usize::MAX);
    let from = sorted_sends.partition_point(|s| *s <= now - window);
    let mut t = now;
    let mut i = from;
    while i + rate <= sorted_sends.len() {
        let (first, last) = (sorted_sends[i], sorted_sends[i + rate - 1]);
        if last - first < window && last - (window - 1) <= t && t <= first + (window - 1) {
            t = first + window;
        }
        i += 1;
    }
    t
}

/// The contact's TAT after a send at `at`: one interval later than the later of `at` and the
/// previous TAT (sends borrow from the future; the bucket refills one token per interval).
pub fn contact_tat_after_send(contact_tat: Option<Millis>, at: Millis) -> Millis {
    contact_tat.map_or(at, |tat| tat.max(at)) + MIN_CONTACT_INTERVAL_MS
}

/// What the dispatcher keeps per sender number to pace its sends: the last second of sends (and
/// sends booked just ahead), each recently written contact's bucket, and how long the provider
/// asked the number to pause. Pure: every call takes the time.
#[derive(Debug, Clone, Default)]
pub struct Pacer {
    throughput: Throughput,
    /// The window the throughput is counted over: a second, plus [`Pacer::with_margin`]'s margin.
    window: Millis,
    /// The least time between two sends from the number (0: bursts allowed).
    min_gap: Millis,
    /// Send times (past, and booked ahead), sorted.
    sends: VecDeque<Millis>,
    /// Per contact key, its TAT while it is in the future (an idle contact has a full bucket).
    contact_tat: HashMap<String, Millis>,
    /// No send before this (the provider answered 130429).
    paused_until: Millis,
    /// When contacts whose bucket is full again are next dropped from `contact_tat`.
    next_prune: Millis,
}

impl Pacer {
    pub fn new(throughput: Throughput) -> Self {
        Self {
            throughput,
            window: SECOND_MS,
            ..Self::default()
        }
    }

    /// Counts the throughput over a second plus `margin_ms`, so sends that reach the provider a
    /// little later or earlier than booked (network and scheduling jitter) still never put more
    /// than the rate into any second the provider counts. Costs `margin / (1 s + margin)` of the
    /// rate at full load.
    ///
    /// Sends are also spread evenly (at least `window / rate` apart) rather than fired together at
    /// the start of each window: a burst of simultaneous requests reaches the provider spread over
    /// tens of milliseconds, which is exactly the jitter the margin must absorb.
    pub fn with_margin(throughput: Throughput, margin_ms: Millis) -> Self {
        let window = SECOND_MS + margin_ms.max(0);
        Self {
            window,
            min_gap: window / Millis::from(throughput.per_second()),
            ..Self::new(throughput)
        }
    }
    pub fn throughput(&self) -> Throughput {
        self.throughput
    }

    /// Changes the number's throughput (an admin changed it); what was sent still counts.
    pub fn set_throughput(&mut self, throughput: Throughput) {
        if self.min_gap > 0 {
            self.min_gap = self.window.max(SECOND_MS) / Millis::from(throughput.per_second());
        }
        self.throughput = throughput;
    }

    /// When the next message to `contact` may go (see [`next_send_at`]).
    pub fn next_send_at(&self, contact: &str, now: Millis) -> Millis {
        let window = self.window.max(SECOND_MS);
        let spaced = self.sends.back().map_or(now, |last| now.max(last + self.min_gap));
        let from = by_number(&self.sends, self.throughput, window, spaced.max(self.paused_until));
        settle(
            &self.sends,
            self.throughput,
            window,
            self.contact_tat.get(contact).copied(),
            from,
        )
    }

    /// When the contact's own bucket next holds a token, whatever the number's throughput.
    pub fn contact_ready_at(&self, contact: &str, now: Millis) -> Millis {
        by_contact(self.contact_tat.get(contact).copied(), now)
    }

    /// Records a send handed to the provider at `at` (`at` is also "now" for forgetting).
    pub fn record_send(&mut self, contact: &str, at: Millis) {
        self.insert(contact, at);
        self.forget_before(at);
    }

    /// Books the earliest slot for `contact` at or after `now` and returns it; the booking counts
    /// for every later question, so concurrent senders never share a slot.
    pub fn reserve(&mut self, contact: &str, now: Millis) -> Millis {
        let at = self.next_send_at(contact, now);
        self.insert(contact, at);
        self.forget_before(now);
        at
    }

    /// The provider answered 130429 (the number's throughput is spent): nothing from the number
    /// until `until`.
    pub fn provider_refused_throughput(&mut self, until: Millis) {
        self.paused_until = self.paused_until.max(until);
    }

    /// The provider answered 131056 (too many messages to this person): the contact's bucket is
    /// emptied, so the next message waits a full interval and later ones one interval each.
    pub fn provider_refused_contact(&mut self, contact: &str, now: Millis) {
        let empty = now + MIN_CONTACT_INTERVAL_MS * Millis::from(CONTACT_BURST);
        let tat = self.contact_tat.entry(contact.to_owned()).or_insert(empty);
        *tat = (*tat).max(empty);
    }

    fn insert(&mut self, contact: &str, at: Millis) {
        let pos = self.sends.partition_point(|s| *s <= at);
        self.sends.insert(pos, at);
        let tat = contact_tat_after_send(self.contact_tat.get(contact).copied(), at);
        self.contact_tat.insert(contact.to_owned(), tat);
    }

    fn forget_before(&mut self, now: Millis) {
        while self
            .sends
            .front()
            .is_some_and(|s| *s <= now - self.window.max(SECOND_MS))
        {
            self.sends.pop_front();
        }
        // A past TAT means the same as none (a full bucket), so dropping them is only for memory:
        // once a second, not per send (at 1,000/s the map holds the last few seconds' contacts,
        // and walking it per send was most of the pacer's time).
        if now >= self.next_prune || now + SECOND_MS < self.next_prune {
            self.contact_tat.retain(|_, tat| *tat > now);
            self.next_prune = now + SECOND_MS;
        }
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
    fn a_contact_gets_a_burst_then_one_message_every_six_seconds() {
        let t = Throughput::default();
        assert_eq!(next_send_at(&[], None, t, 10_000), 10_000);
        // One send at 9 000: the bucket still holds nine tokens.
        let tat = contact_tat_after_send(None, 9_000);
        assert_eq!(next_send_at(&[9_000], Some(tat), t, 10_000), 10_000);
        // Ten sends at 9 000 empty it: the next waits one interval.
        let tat = (0..CONTACT_BURST).fold(None, |tat, _| Some(contact_tat_after_send(tat, 9_000)));
        assert_eq!(next_send_at(&[], tat, t, 10_000), 15_000);
        // A contact left alone for a minute has a full bucket again.
        assert_eq!(next_send_at(&[], tat, t, 69_000), 69_000);
    }

    #[test]
    fn a_full_second_waits_until_its_oldest_send_leaves_it() {
        let t = Throughput::new(3).unwrap();
        let table: &[(&[Millis], Millis, Millis)] = &[
            (&[], 10_000, 10_000),
            (&[9_100, 9_500], 10_000, 10_000),
            (&[9_500, 9_100, 9_800], 10_000, 10_100),
            (&[8_000, 9_000, 9_100, 9_500, 9_800], 10_000, 10_100),
            // Booked sends ahead count as well: until 9 800 leaves, 10 100 and 10 200 fill it.
            (&[9_500, 9_800, 10_100, 10_200], 10_000, 10_800),
            (&[9_001, 9_999, 10_000], 10_000, 10_001),
            (&[9_000, 9_000, 9_000], 9_999, 10_000),
        ];
        for (sends, now, want) in table {
            assert_eq!(next_send_at(sends, None, t, *now), *want, "{sends:?} at {now}");
        }
    }

    #[test]
    fn waiting_for_the_contact_never_lands_in_a_full_second() {
        let t = Throughput::new(1).unwrap();
        let tat = (0..CONTACT_BURST).fold(None, |tat, _| Some(contact_tat_after_send(tat, 0)));
        // The contact may be written to at 6 000, but 5 500 already used that second.
        assert_eq!(next_send_at(&[5_500], tat, t, 1_000), 6_500);
    }

    #[test]
    fn provider_refusals_push_the_pacer_back() {
        let mut p = Pacer::new(Throughput::default());
        p.provider_refused_throughput(2_000);
        assert_eq!(p.next_send_at("a", 1_000), 2_000);
        p.provider_refused_contact("b", 3_000);
        assert_eq!(p.next_send_at("b", 3_000), 9_000);
        p.record_send("b", 9_000);
        assert_eq!(p.next_send_at("b", 9_000), 15_000);
        assert_eq!(p.next_send_at("c", 9_000), 9_000);
    }
    #[test]
    fn a_margin_widens_the_window_the_rate_is_counted_over() {
        let mut p = Pacer::with_margin(Throughput::new(2).unwrap(), 50);
        let slots: Vec<Millis> = (0..5).map(|i| p.reserve(&i.to_string(), 0)).collect();
        assert_eq!(slots, [0, 525, 1_050, 1_575, 2_100], "spread evenly");
        let mut p = Pacer::with_margin(Throughput::new(1_000).unwrap(), 50);
        let slots: Vec<Millis> = (0..1_001).map(|i| p.reserve(&i.to_string(), 0)).collect();
        assert_eq!((slots[1], slots[999], slots[1_000]), (1, 999, 1_050));
    }

    #[test]
    fn reservations_hand_out_distinct_slots() {
        let mut p = Pacer::new(Throughput::new(2).unwrap());
        let slots: Vec<Millis> = (0..6).map(|i| p.reserve(&i.to_string(), 0)).collect();
        assert_eq!(slots, [0, 0, 1_000, 1_000, 2_000, 2_000]);
    }

    #[derive(Debug, Clone)]
    struct Job {
        contact: u8,
        arrives_after_ms: Millis,
    }

    fn jobs() -> impl Strategy<Value = Vec<Job>> {
        proptest::collection::vec(
            (0u8..6, 0i64..400).prop_map(|(contact, arrives_after_ms)| Job {
                contact,
                arrives_after_ms,
            }),
            1..300,
        )
    }

    /// Never more than `rate` sends in any one-second window, and to one contact never more than
    /// the burst plus one per interval elapsed.
    fn check(sent: &[(Millis, u8)], rate: u32) -> Result<(), TestCaseError> {
        let mut times: Vec<Millis> = sent.iter().map(|(t, _)| *t).collect();
        times.sort_unstable();
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..].iter().take_while(|s| **s < t + SECOND_MS).count();
            prop_assert!(
                in_window <= rate as usize,
                "{} sends in the second from {}",
                in_window,
                t
            );
        }
        for c in 0u8..6 {
            let mut to_c: Vec<Millis> = sent.iter().filter(|(_, x)| *x == c).map(|(t, _)| *t).collect();
            to_c.sort_unstable();
            for i in 0..to_c.len() {
                for j in i..to_c.len() {
                    let allowed = i64::from(CONTACT_BURST) + (to_c[j] - to_c[i]) / MIN_CONTACT_INTERVAL_MS;
                    prop_assert!(
                        (j - i + 1) as i64 <= allowed,
                        "contact {} got {} in {} ms",
                        c,
                        j - i + 1,
                        to_c[j] - to_c[i]
                    );
                }
            }
        }
        Ok(())
    }

    proptest! {
        /// A dispatcher that sends each message as soon as the pacer allows.
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
                now = at;
                prop_assert_eq!(pacer.next_send_at(&key, now), now);
                pacer.record_send(&key, now);
                sent.push((now, job.contact));
            }
            check(&sent, rate)?;
        }

        /// Many tasks booking slots at once (as the dispatcher's concurrent sends do): never more
        /// than the rate in any one-second window, whatever order the bookings come in.
        #[test]
        fn booked_slots_never_exceed_the_rate_in_any_second(jobs in jobs(), rate in 1u32..8, margin in 0i64..100) {
            let mut pacer = if margin == 0 {
                Pacer::new(Throughput::new(rate).unwrap())
            } else {
                Pacer::with_margin(Throughput::new(rate).unwrap(), margin)
            };
            let mut now = 0;
            let mut sent: Vec<(Millis, u8)> = Vec::new();
            for job in jobs {
                now += job.arrives_after_ms / 8;
                let at = pacer.reserve(&job.contact.to_string(), now);
                prop_assert!(at >= now);
                sent.push((at, job.contact));
            }
            check(&sent, rate)?;
        }
    }
}
