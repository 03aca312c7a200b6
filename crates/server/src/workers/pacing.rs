//! Pacing shared by every send of this node: one [`Pacer`] per sender number, so the number's
//! throughput (its `throughput_per_s`, 80 by default, up to 1,000) and the per-contact pair limit
//! hold across all the dispatcher's concurrent sends, and a provider's 130429 / 131056 answers slow
//! every later send from that number (or to that person), not just the one that was refused.
//!
//! A send asks for a slot: now; booked ahead when the number's throughput is what it waits for (the
//! sending task waits for it, holding the booking so no other send takes the same place; the
//! dispatcher's bounded concurrency keeps bookings within a fraction of a second at real rates, at
//! most [`BOOK_AHEAD_MS`]); or later, when the contact's bucket is empty: the row goes back to the
//! outbox until then, without counting as an attempt. (Putting rows back for the number's sake would
//! make a large backlog churn through the database every second; booking does not.)
//!
//! The pacers live in this process. Several nodes sending from the same number each pace to the
//! full rate; run one dispatcher per number's traffic, or lower the number's throughput accordingly.

use openline_domain::limits::{Pacer, Throughput};
use openline_domain::Millis;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use tokio::sync::Notify;
use tokio::time::Instant;

/// How far ahead a send may book a slot and wait for it in memory; later slots go back to the
/// outbox (so a crash never loses them and the claim's lease never runs out while waiting).
pub const BOOK_AHEAD_MS: Millis = 30_000;
/// How long a send counts against its number's throughput after the provider answered it.
const WINDOW: std::time::Duration = std::time::Duration::from_secs(1);
/// Sends whose instants fall in the same tick wake together at its end. At 1,000/s, one send a
/// millisecond woke a worker thread every millisecond; parking and waking it again was an eighth
/// of the server's CPU in `openline bench --scenario pacing`. The count per second is the gate's
/// business and does not change; a send leaves at most a tick later than its instant.
const TICK: std::time::Duration = std::time::Duration::from_millis(10);

/// Where a send stands with the pacer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Slot {
    /// Send now (the send is recorded).
    Now,
    /// Booked at this instant: wait until then, then send.
    Booked(Millis),
    /// Not before this instant: put the row back until then.
    Later(Millis),
}

/// Every sender number's pacer.
#[derive(Debug, Default)]
pub struct Pacers {
    by_sender: Mutex<HashMap<String, Pacer>>,
    /// Per sender number, its departure gate (see [`Pacers::release`]).
    gates: Mutex<HashMap<String, Arc<Gate>>>,
}

/// A number's departure gate: which sends count against its throughput right now.
#[derive(Debug)]
struct Gate {
    state: Mutex<GateState>,
    /// Woken when a send in flight is answered (for sends waiting while every counted send is in
    /// flight).
    answered: Notify,
}

#[derive(Debug)]
struct GateState {
    /// Where the gate's ticks are counted from.
    origin: Instant,
    /// The next instant handed out for waking.
    next: Instant,
    /// Sends that left and are not answered yet.
    in_flight: usize,
    /// When the sends of the last second were answered (oldest first).
    answered: VecDeque<Instant>,
}

impl Gate {
    fn lock(&self) -> std::sync::MutexGuard<'_, GateState> {
        // The state is a counter and a queue of instants: whatever a panic left is still usable.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A send that has left its number's gate. It counts against the number's throughput while it is
/// in flight and for a second after the provider answered it: drop it as soon as the answer (or
/// the failure) is in.
#[derive(Debug)]
#[must_use = "the send counts until this is dropped: hold it until the provider answered"]
pub struct Departure {
    gate: Arc<Gate>,
}

impl Drop for Departure {
    fn drop(&mut self) {
        {
            let mut g = self.gate.lock();
            g.in_flight = g.in_flight.saturating_sub(1);
            let now = Instant::now();
            g.answered.push_back(now);
        }
        self.gate.answered.notify_waiters();
    }
}

/// The sender's configured throughput; a value out of range in the database (it cannot be set so
/// through openline) falls back to the default rather than stopping or unleashing the number.
fn throughput(per_second: i64) -> Throughput {
    u32::try_from(per_second)
        .ok()
        .and_then(|n| Throughput::new(n).ok())
        .unwrap_or_default()
}

impl Pacers {
    fn with<T>(&self, sender_id: &str, per_second: i64, f: impl FnOnce(&mut Pacer) -> T) -> T {
        let mut map = match self.by_sender.lock() {
            Ok(m) => m,
            // A panic while holding the lock cannot leave a pacer half-updated in a way that
            // matters more than losing pacing altogether; carry on with what is there.
            Err(poisoned) => poisoned.into_inner(),
        };
        let tp = throughput(per_second);
        let pacer = map
            .entry(sender_id.to_owned())
            // Booked evenly spread over exactly a second; the departure gate makes the count exact.
            .or_insert_with(|| Pacer::with_margin(tp, 0));
        if pacer.throughput() != tp {
            pacer.set_throughput(tp);
        }
        f(pacer)
    }

    /// Waits until a send booked for now may really leave, and returns its [`Departure`].
    ///
    /// The provider counts a send when it arrives, which is some time after it left here (the
    /// network, a busy machine on either side) but certainly before the provider answered it. So a
    /// send counts from when it leaves until a second after its answer: then no second at the
    /// provider can hold more than the number's throughput, however the sends are delayed on the
    /// way (counting from departure, with a margin of 10 ms for the way, the simulator still saw
    /// 1,004–1,013 in its busiest second at 1,000/s on a loaded machine). The price is the answer
    /// time: each send holds its place for a second plus its round trip, so a number achieves
    /// `throughput × 1 s / (1 s + round trip)`: 99.5 % against the simulator on loopback, less
    /// against a provider that takes a few hundred milliseconds to answer.
    ///
    /// Each send is handed its own instant to wake at, spaced `1 s / throughput` apart, so sends
    /// booked together leave spread out rather than in a burst (woken at the end of the [`TICK`]
    /// the instant falls in: at most a tick's share of the rate together); on waking it leaves if the number
    /// has room, and otherwise waits until the oldest answered send stops counting (or, when every
    /// counted send is still in flight, until one is answered).
    pub async fn release(&self, sender_id: &str, per_second: i64) -> Departure {
        let limit = usize::try_from(throughput(per_second).per_second())
            .unwrap_or(80)
            .max(1);
        let spacing = WINDOW / u32::try_from(limit).unwrap_or(80);
        let gate = self.gate(sender_id);
        let mut wake_at = {
            let mut g = gate.lock();
            let at = g.next.max(Instant::now());
            g.next = at + spacing;
            let tick = TICK.as_nanos();
            let rounded = (at - g.origin).as_nanos().div_ceil(tick) * tick;
            u64::try_from(rounded)
                .ok()
                .and_then(|nanos| g.origin.checked_add(std::time::Duration::from_nanos(nanos)))
                .unwrap_or(at)
        };
        loop {
            tokio::time::sleep_until(wake_at).await;
            let answered = gate.answered.notified();
            tokio::pin!(answered);
            // Registered before looking, so an answer between the look and the wait is not missed.
            answered.as_mut().enable();
            let turn = {
                let mut g = gate.lock();
                let now = Instant::now();
                while g.answered.front().is_some_and(|t| *t + WINDOW <= now) {
                    g.answered.pop_front();
                }
                if g.in_flight + g.answered.len() < limit {
                    g.in_flight += 1;
                    None
                } else {
                    Some(g.answered.front().map(|t| *t + WINDOW))
                }
            };
            match turn {
                None => break,
                Some(Some(at)) => wake_at = at,
                Some(None) => {
                    answered.await;
                    wake_at = Instant::now();
                }
            }
        }
        Departure { gate }
    }

    fn gate(&self, sender_id: &str) -> Arc<Gate> {
        let mut gates = self.gates.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        gates
            .entry(sender_id.to_owned())
            .or_insert_with(|| {
                Arc::new(Gate {
                    state: Mutex::new(GateState {
                        origin: Instant::now(),
                        next: Instant::now(),
                        in_flight: 0,
                        answered: VecDeque::new(),
                    }),
                    answered: Notify::new(),
                })
            })
            .clone()
    }

    /// Asks for a slot to send to `contact` from the sender.
    pub fn slot(&self, sender_id: &str, per_second: i64, contact: &str, now: Millis) -> Slot {
        self.with(sender_id, per_second, |p| {
            let at = p.next_send_at(contact, now);
            if at <= now {
                p.record_send(contact, now);
                Slot::Now
            } else if p.contact_ready_at(contact, now) <= now && at - now <= BOOK_AHEAD_MS {
                Slot::Booked(p.reserve(contact, now))
            } else {
                Slot::Later(at)
            }
        })
    }

    /// The provider answered 130429 (throughput) or 131056 (too many to this person): pushes the
    /// pacer back and returns when this message may be tried again.
    pub fn refused(
        &self,
        sender_id: &str,
        per_second: i64,
        contact: &str,
        code: i64,
        retry_after_ms: Option<Millis>,
        now: Millis,
    ) -> Millis {
        self.with(sender_id, per_second, |p| {
            if code == 131056 {
                p.provider_refused_contact(contact, now);
            } else {
                // The number's second is spent: nothing until the next one (or the provider's word).
                p.provider_refused_throughput(now + retry_after_ms.unwrap_or(1_000).max(1));
            }
            p.next_send_at(contact, now)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every instant in `[left, answered]` at which the provider may have counted each send, taken
    /// three ways (all at departure, all at the answer, alternating): no second holds more than
    /// `limit`.
    fn assert_never_above(sends: &[(Duration, Duration)], limit: usize) {
        type Pick = fn(usize, &(Duration, Duration)) -> Duration;
        let picks: [Pick; 3] = [|_, s| s.0, |_, s| s.1, |i, s| if i % 2 == 0 { s.0 } else { s.1 }];
        for pick in picks {
            let mut at: Vec<Duration> = sends.iter().enumerate().map(|(i, s)| pick(i, s)).collect();
            at.sort();
            for (i, t) in at.iter().enumerate() {
                let in_second = at[i..].iter().take_while(|u| **u < *t + WINDOW).count();
                assert!(in_second <= limit, "{in_second} counted within a second from {t:?}");
            }
        }
    }

    use std::time::Duration;

    /// Sends `n` through a `limit`/s gate, each answered `round_trip(i)` after it left; returns
    /// when each left and was answered, from `start`. `stall` jumps the clock once every send has
    /// its instant to wake at, as for a runtime that stalled: the timers due by then fire together.
    async fn through_gate(
        n: usize,
        limit: i64,
        round_trip: fn(usize) -> Duration,
        stall: Duration,
    ) -> Vec<(Duration, Duration)> {
        let pacers = std::sync::Arc::new(Pacers::default());
        let start = Instant::now();
        let tasks: Vec<_> = (0..n)
            .map(|i| {
                let p = pacers.clone();
                tokio::spawn(async move {
                    let departure = p.release("n", limit).await;
                    let left = Instant::now();
                    tokio::time::sleep(round_trip(i)).await;
                    drop(departure);
                    (left - start, Instant::now() - start)
                })
            })
            .collect();
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        tokio::time::advance(stall).await;
        let mut out = Vec::new();
        for t in tasks {
            out.push(t.await.unwrap());
        }
        out
    }

    #[tokio::test(start_paused = true)]
    async fn however_late_sends_arrive_no_second_at_the_provider_holds_more_than_the_rate() {
        // Round trips from nothing to 400 ms, and a 3 s stall after every send was booked.
        let sends = through_gate(
            200,
            20,
            |i| Duration::from_millis((i as u64 * 37) % 400),
            Duration::from_secs(3),
        )
        .await;
        assert_never_above(&sends, 20);
        // And the rate is used: each send holds its place for a second plus its round trip (at most
        // 400 ms), so 200 sends take at most 10 of those after the stall.
        let last = sends.iter().map(|s| s.0).max().unwrap();
        assert!(
            last < Duration::from_secs(3) + Duration::from_millis(1_400) * 10,
            "{last:?}"
        );
        // Quick answers cost almost nothing: 2 ms round trips, 200 sends at 20/s in about 10 s.
        let sends = through_gate(200, 20, |_| Duration::from_millis(2), Duration::ZERO).await;
        assert_never_above(&sends, 20);
        let last = sends.iter().map(|s| s.0).max().unwrap();
        assert!(last < Duration::from_millis(10_100), "{last:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn sends_leave_together_at_the_end_of_their_tick_a_ticks_share_at_a_time() {
        // 1,000/s: a millisecond apart, so ten to a 10 ms tick, woken together at its end.
        let sends = through_gate(300, 1_000, |_| Duration::from_millis(2), Duration::ZERO).await;
        assert_never_above(&sends, 1_000);
        let mut together: std::collections::BTreeMap<Duration, usize> = std::collections::BTreeMap::new();
        for (left, _) in &sends {
            assert_eq!(left.as_micros() % 10_000, 0, "{left:?} is not at a tick's end");
            *together.entry(*left).or_default() += 1;
        }
        assert!(together.values().all(|n| *n <= 10), "{together:?}");
        // No later than the spacing alone would have them leave, give or take a tick.
        let last = sends.iter().map(|s| s.0).max().unwrap();
        assert!(last <= Duration::from_millis(310), "{last:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn while_every_counted_send_is_in_flight_the_next_waits_for_an_answer() {
        // Two a second, answered after 3 s: the third leaves only a second after the first answer.
        let sends = through_gate(3, 2, |_| Duration::from_secs(3), Duration::ZERO).await;
        assert_never_above(&sends, 2);
        let mut left: Vec<Duration> = sends.iter().map(|s| s.0).collect();
        left.sort();
        assert!(left[2] >= Duration::from_secs(4), "{left:?}");
        assert!(left[2] < Duration::from_millis(4_100), "{left:?}");
    }

    #[test]
    fn sends_from_one_number_share_its_rate_and_numbers_do_not_share() {
        let pacers = Pacers::default();
        let slots: Vec<Slot> = (0..5).map(|i| pacers.slot("a", 2, &format!("c{i}"), 0)).collect();
        // Two a second: one every 500 ms.
        let step = 500;
        assert_eq!(
            slots,
            [
                Slot::Now,
                Slot::Booked(step),
                Slot::Booked(2 * step),
                Slot::Booked(3 * step),
                Slot::Booked(4 * step)
            ]
        );
        // A contact whose bucket is empty waits in the outbox, not in memory.
        for _ in 0..9 {
            pacers.slot("c", 1_000, "busy", 0);
        }
        // (1,000/s: one a millisecond.)
        assert_eq!(pacers.slot("c", 1_000, "busy", 0), Slot::Booked(9));
        assert_eq!(pacers.slot("c", 1_000, "busy", 0), Slot::Later(6_000));
        assert_eq!(pacers.slot("b", 2, "c0", 0), Slot::Now);
        // An out-of-range stored value falls back to the default (80/s), never to "no pacing".
        assert_eq!(throughput(0).per_second(), 80);
        assert_eq!(throughput(5_000).per_second(), 80);
    }

    #[test]
    fn a_refusal_pushes_back_the_number_or_the_contact() {
        let pacers = Pacers::default();
        assert_eq!(pacers.refused("a", 80, "c", 130429, None, 10_000), 11_000);
        assert_eq!(pacers.refused("a", 80, "c", 130429, Some(3_000), 10_000), 13_000);
        assert_eq!(pacers.refused("b", 80, "c", 131056, None, 10_000), 16_000);
        assert_eq!(pacers.slot("b", 80, "d", 10_000), Slot::Now);
    }
}
