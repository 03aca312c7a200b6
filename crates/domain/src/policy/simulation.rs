//! A small, pure world in which an agent, a contact, the provider and the clock act at random, driven
//! only through the public rules (`decide_send`, `release_queued`, the consent ledger, the window and
//! the messaging limit). The provider here checks WhatsApp's rules on its own, the way the simulator
//! crate does for integration tests, so a policy bug shows up as a provider complaint:
//!
//! - no free-form message reaches the provider outside the 24-hour window;
//! - nothing but the opt-in request reaches a contact who has not agreed, judged by an oracle that
//!   only knows what the contact literally said;
//! - nothing at all, not even an opt-in request, reaches a contact who said stop or no until they
//!   say yes; opt-in requests never go to someone who agreed, nor twice within 24 hours;
//! - business-initiated messages respect the messaging-limit tier, and only approved templates go;
//! - nothing queued is lost: every queued message ends sent, cancelled, or still queued;
//! - queued messages reach the provider in the order they were written;
//! - and once the contact agrees and writes, nothing stays queued (liveness).

use super::*;
use crate::consent::{
    classify_reply, consent_event_for_reply, consent_state, last_opt_in_request_at, ConsentEvent, ConsentEventKind,
    OPT_IN_NO_PAYLOAD, OPT_IN_YES_PAYLOAD,
};
use crate::limits::{business_initiated_allowed, MessagingTier};
use crate::window::{window, WINDOW_MS};
use proptest::prelude::*;

/// What the contact literally said, for the oracle (independent of how `classify_reply` reads it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Meaning {
    Yes,
    No,
    Stop,
    Chat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    FreeForm,
    Template,
    OptInRequest,
}

#[derive(Debug, Clone)]
enum Action {
    AgentWrites(Kind),
    ContactWrites(&'static str, Option<&'static str>, Meaning),
    ProviderSaysNotOnWhatsapp,
    ClockJumps(Millis),
    TemplateApproval(bool),
    OtherContactsThisPeriod(u32),
    AgentCancels(usize),
}

/// What the oracle remembers: the contact's own words and the provider's reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Witnessed {
    RequestSent,
    Said(Meaning),
    Undeliverable,
}

struct World {
    now: Millis,
    ledger: Vec<ConsentEvent>,
    last_inbound: Option<Millis>,
    template_approved: bool,
    tier: MessagingTier,
    other_contacts: u32,
    contact_counted_at: Option<Millis>,
    queue: Vec<(u32, Kind)>,
    next_id: u32,
    ever_queued: Vec<u32>,
    sent: Vec<(u32, Kind, Millis)>,
    released_from_queue: Vec<(u32, Kind)>,
    cancelled: Vec<u32>,
    witnessed: Vec<Witnessed>,
}

impl World {
    fn new(tier: MessagingTier, other_contacts: u32) -> Self {
        Self {
            now: 1_700_000_000_000,
            ledger: Vec::new(),
            last_inbound: None,
            template_approved: true,
            tier,
            other_contacts,
            contact_counted_at: None,
            queue: Vec::new(),
            next_id: 1,
            ever_queued: Vec::new(),
            sent: Vec::new(),
            released_from_queue: Vec::new(),
            cancelled: Vec::new(),
            witnessed: Vec::new(),
        }
    }

    fn counted(&self) -> bool {
        self.contact_counted_at.is_some_and(|t| self.now - t < WINDOW_MS)
    }

    fn facts(&self) -> ContactFacts {
        let counted = self.counted();
        ContactFacts {
            consent: consent_state(&self.ledger),
            last_opt_in_request_at: last_opt_in_request_at(&self.ledger),
            window: window(self.last_inbound, self.now),
            within_messaging_limit: business_initiated_allowed(
                self.tier,
                self.other_contacts + u32::from(counted),
                counted,
            ),
            marketing: crate::consent::marketing::marketing_preference(&self.ledger),
        }
    }

    fn outgoing(&self, kind: Kind) -> Outgoing {
        match kind {
            Kind::FreeForm => Outgoing::FreeForm,
            Kind::Template => Outgoing::Template {
                approved: self.template_approved,
                marketing: false,
            },
            Kind::OptInRequest => Outgoing::OptInRequest {
                approved: self.template_approved,
            },
        }
    }

    /// The oracle: the contact said yes after being asked (or after saying no or stop), and since
    /// then has neither said stop nor been reported off WhatsApp.
    fn oracle_consented(&self) -> bool {
        self.witnessed.iter().enumerate().any(|(i, w)| {
            *w == Witnessed::Said(Meaning::Yes)
                && self.witnessed[..i].iter().any(|b| {
                    matches!(
                        b,
                        Witnessed::RequestSent | Witnessed::Said(Meaning::No) | Witnessed::Said(Meaning::Stop)
                    )
                })
                && !self.witnessed[i + 1..]
                    .iter()
                    .any(|a| matches!(a, Witnessed::Said(Meaning::Stop) | Witnessed::Undeliverable))
        })
    }

    /// The oracle's refusal: the contact said stop, or said no to a request that was still open (no
    /// answer or "not on WhatsApp" report since it went out), and has not said yes since.
    fn oracle_refused(&self) -> bool {
        self.witnessed.iter().enumerate().any(|(i, w)| {
            let refusal = match w {
                Witnessed::Said(Meaning::Stop) => true,
                Witnessed::Said(Meaning::No) => {
                    let before = &self.witnessed[..i];
                    before
                        .iter()
                        .rposition(|b| *b == Witnessed::RequestSent)
                        .is_some_and(|r| {
                            !before[r + 1..].iter().any(|b| {
                                matches!(
                                    b,
                                    Witnessed::Said(Meaning::Yes | Meaning::No | Meaning::Stop)
                                        | Witnessed::Undeliverable
                                )
                            })
                        })
                }
                _ => false,
            };
            refusal && !self.witnessed[i + 1..].contains(&Witnessed::Said(Meaning::Yes))
        })
    }

    /// The provider: checks WhatsApp's rules independently of the policy, then delivers.
    fn provider_send(&mut self, id: u32, kind: Kind) {
        let now = self.now;
        let window_open = self.last_inbound.is_some_and(|t| now < t + WINDOW_MS);
        assert!(!self.sent.iter().any(|(s, _, _)| *s == id), "message {id} sent twice");
        assert!(
            !self.oracle_refused(),
            "message {id} ({kind:?}) sent to a contact who refused"
        );
        match kind {
            Kind::FreeForm => {
                assert!(window_open, "free-form message {id} sent outside the window (131047)");
            }
            Kind::Template | Kind::OptInRequest => {
                assert!(self.template_approved, "unapproved template {id} sent (132001)");
            }
        }
        if kind == Kind::OptInRequest {
            let state = consent_state(&self.ledger);
            assert!(
                !matches!(state, ConsentState::Granted { .. } | ConsentState::Refused { .. }),
                "opt-in request {id} sent to a contact who already answered: {state:?}"
            );
            if let Some((_, _, prev)) = self.sent.iter().rev().find(|(_, k, _)| *k == Kind::OptInRequest) {
                assert!(now - prev >= WINDOW_MS, "two opt-in requests within 24 hours");
            }
        } else {
            assert!(
                self.oracle_consented(),
                "message {id} sent without the contact's consent"
            );
            assert!(
                consent_state(&self.ledger).is_granted(),
                "message {id} sent without granted consent"
            );
        }
        if !window_open {
            let cap_ok = self.tier.cap().is_none_or(|cap| self.other_contacts < cap);
            assert!(
                self.counted() || cap_ok,
                "business-initiated message {id} over the messaging limit"
            );
            if !self.counted() {
                self.contact_counted_at = Some(now);
            }
        }
        self.sent.push((id, kind, now));
        if kind == Kind::OptInRequest {
            self.ledger.push(ConsentEvent::new(ConsentEventKind::Requested, now));
            self.witnessed.push(Witnessed::RequestSent);
        }
    }

    fn agent_writes(&mut self, kind: Kind) {
        let id = self.next_id;
        self.next_id += 1;
        let facts = SendFacts {
            channel: Channel::Whatsapp,
            author_role: Role::Agent,
            org_whatsapp_enabled: true,
            user_whatsapp_enabled: true,
            text: "Hello",
            outgoing: self.outgoing(kind),
            contact: self.facts(),
        };
        match decide_send(&facts, self.now) {
            SendDecision::SendNow => self.provider_send(id, kind),
            SendDecision::Queue { .. } => {
                self.queue.push((id, kind));
                self.ever_queued.push(id);
            }
            SendDecision::Reject(_) => {}
        }
    }

    fn contact_writes(&mut self, text: &str, payload: Option<&str>, meaning: Meaning) {
        self.last_inbound = Some(self.now);
        self.witnessed.push(Witnessed::Said(meaning));
        if let Some(reply) = classify_reply(text, payload) {
            if let Some(kind) = consent_event_for_reply(consent_state(&self.ledger), reply) {
                self.ledger.push(ConsentEvent::new(kind, self.now));
            }
        }
    }

    /// What the server does whenever facts change: ask which queued messages may go, and do it.
    fn release(&mut self) {
        let queued: Vec<QueuedMessage<u32>> = self
            .queue
            .iter()
            .map(|(id, kind)| QueuedMessage {
                id: *id,
                outgoing: self.outgoing(*kind),
            })
            .collect();
        let r = release_queued(&queued, &self.facts(), self.now);
        // Every queued message is accounted for exactly once.
        let mut seen: Vec<u32> = r
            .send
            .iter()
            .copied()
            .chain(r.cancel.iter().map(|(id, _)| *id))
            .chain(r.waiting.iter().map(|(id, _)| *id))
            .collect();
        seen.sort_unstable();
        let mut expected: Vec<u32> = self.queue.iter().map(|(id, _)| *id).collect();
        expected.sort_unstable();
        assert_eq!(seen, expected, "release_queued lost or invented a message");
        for id in &r.send {
            let Some(pos) = self.queue.iter().position(|(q, _)| q == id) else {
                panic!("released {id}, which is not queued");
            };
            let (_, kind) = self.queue.remove(pos);
            self.provider_send(*id, kind);
            self.released_from_queue.push((*id, kind));
        }
        for (id, _) in &r.cancel {
            self.queue.retain(|(q, _)| q != id);
            self.cancelled.push(*id);
        }
    }

    fn act(&mut self, action: &Action) {
        match action {
            Action::AgentWrites(kind) => self.agent_writes(*kind),
            Action::ContactWrites(text, payload, meaning) => self.contact_writes(text, *payload, *meaning),
            Action::ProviderSaysNotOnWhatsapp => {
                if self.sent.iter().any(|(_, k, _)| *k == Kind::OptInRequest) {
                    self.ledger
                        .push(ConsentEvent::new(ConsentEventKind::Undeliverable, self.now));
                    self.witnessed.push(Witnessed::Undeliverable);
                }
            }
            Action::ClockJumps(ms) => self.now += ms,
            Action::TemplateApproval(approved) => self.template_approved = *approved,
            Action::OtherContactsThisPeriod(n) => self.other_contacts = *n,
            Action::AgentCancels(i) => {
                if !self.queue.is_empty() {
                    let (id, _) = self.queue.remove(i % self.queue.len());
                    self.cancelled.push(id);
                }
            }
        }
        self.release();
    }

    /// Nothing queued was lost, and what left the queue left it in the order it was written.
    fn check_bookkeeping(&self) {
        for id in &self.ever_queued {
            let places = usize::from(self.sent.iter().any(|(s, _, _)| s == id))
                + usize::from(self.cancelled.contains(id))
                + usize::from(self.queue.iter().any(|(q, _)| q == id));
            assert_eq!(places, 1, "queued message {id} is in {places} places");
        }
        let messages: Vec<(u32, Kind)> = self
            .released_from_queue
            .iter()
            .filter(|(_, k)| *k != Kind::OptInRequest)
            .cloned()
            .collect();
        // In order, except that a template may go before free text written earlier (free text held
        // for the closed window; the template restarts the conversation). Free text never overtakes.
        for (i, (first, first_kind)) in messages.iter().enumerate() {
            for (later, later_kind) in &messages[i + 1..] {
                assert!(
                    first < later || (*first_kind == Kind::Template && *later_kind == Kind::FreeForm),
                    "queued messages released out of order: {messages:?}"
                );
            }
        }
    }

    /// The contact agrees and writes, the template is approved and the limit has room: nothing may
    /// stay queued.
    fn drain(&mut self) {
        self.template_approved = true;
        self.other_contacts = 0;
        self.release();
        match consent_state(&self.ledger) {
            ConsentState::Granted { .. } => {}
            ConsentState::Refused { .. } => self.act(&Action::ContactWrites("yes", None, Meaning::Yes)),
            ConsentState::Unknown | ConsentState::Pending { .. } | ConsentState::NotOnWhatsapp { .. } => {
                self.act(&Action::ClockJumps(WINDOW_MS + 1));
                let before = self.sent.len();
                self.act(&Action::AgentWrites(Kind::OptInRequest));
                assert!(self.sent.len() > before, "the opt-in request did not go out");
                self.act(&Action::ContactWrites("", Some(OPT_IN_YES_PAYLOAD), Meaning::Yes));
            }
        }
        self.act(&Action::ContactWrites("hello", None, Meaning::Chat));
        assert!(consent_state(&self.ledger).is_granted());
        assert!(
            self.queue.is_empty(),
            "still queued after consent and a fresh window: {:?}",
            self.queue
        );
    }
}

fn any_action() -> impl Strategy<Value = Action> {
    let reply = prop_oneof![
        Just(("yes", None, Meaning::Yes)),
        Just((" YES! ", None, Meaning::Yes)),
        Just(("", Some(OPT_IN_YES_PAYLOAD), Meaning::Yes)),
        Just(("no", None, Meaning::No)),
        Just(("No", Some(OPT_IN_NO_PAYLOAD), Meaning::No)),
        Just(("STOP", None, Meaning::Stop)),
        Just(("unsubscribe", None, Meaning::Stop)),
        Just(("hello, a question about my account", None, Meaning::Chat)),
        Just(("yes please call me", None, Meaning::Chat)),
    ]
    .prop_map(|(t, p, m)| Action::ContactWrites(t, p, m));
    let jump = prop_oneof![
        0i64..60_000,
        0i64..WINDOW_MS,
        WINDOW_MS - 2_000..WINDOW_MS + 2_000,
        WINDOW_MS..4 * WINDOW_MS,
    ]
    .prop_map(Action::ClockJumps);
    prop_oneof![
        4 => Just(Action::AgentWrites(Kind::FreeForm)),
        2 => Just(Action::AgentWrites(Kind::Template)),
        2 => Just(Action::AgentWrites(Kind::OptInRequest)),
        5 => reply,
        1 => Just(Action::ProviderSaysNotOnWhatsapp),
        4 => jump,
        1 => any::<bool>().prop_map(Action::TemplateApproval),
        1 => prop_oneof![Just(0u32), Just(249), Just(250), 0u32..300].prop_map(Action::OtherContactsThisPeriod),
        1 => any::<usize>().prop_map(Action::AgentCancels),
    ]
}

fn any_tier() -> impl Strategy<Value = MessagingTier> {
    proptest::sample::select(MessagingTier::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3_000))]

    #[test]
    fn no_random_history_breaks_whatsapps_rules_or_loses_a_queued_message(
        tier in any_tier(),
        other_contacts in prop_oneof![Just(0u32), Just(249), Just(250), 0u32..300],
        actions in proptest::collection::vec(any_action(), 1..80),
    ) {
        let mut world = World::new(tier, other_contacts);
        for action in &actions {
            world.act(action);
            world.check_bookkeeping();
        }
        world.drain();
        world.check_bookkeeping();
    }
}

#[test]
fn the_seed_story_queue_until_opt_in_then_send_in_order() {
    let mut world = World::new(MessagingTier::Tier250, 0);
    world.act(&Action::AgentWrites(Kind::FreeForm)); // 1: queued, awaiting consent
    world.act(&Action::AgentWrites(Kind::FreeForm)); // 2: queued
    world.act(&Action::AgentWrites(Kind::OptInRequest)); // 3: sent
    assert_eq!(world.sent.iter().map(|s| s.0).collect::<Vec<_>>(), [3]);
    world.act(&Action::ContactWrites("Yes", None, Meaning::Yes));
    assert_eq!(world.sent.iter().map(|s| s.0).collect::<Vec<_>>(), [3, 1, 2]);
    world.act(&Action::ClockJumps(WINDOW_MS));
    world.act(&Action::AgentWrites(Kind::FreeForm)); // 4: window closed, queued
    world.act(&Action::AgentWrites(Kind::Template)); // 5: sent now, re-engages
    world.act(&Action::ContactWrites(
        "hello, a question about my account",
        None,
        Meaning::Chat,
    ));
    assert_eq!(world.sent.iter().map(|s| s.0).collect::<Vec<_>>(), [3, 1, 2, 5, 4]);
    world.check_bookkeeping();
}
