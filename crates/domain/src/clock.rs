//! Where "now" comes from. The rules never read the clock; the edges (server, simulator) hold a
//! `Clock` and pass `now` in. Tests use `ManualClock` to jump across the 24-hour window without sleeping.

use crate::Millis;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> Millis;
}

/// The machine's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Millis {
        let d = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
    }
}

/// A clock that starts at the wall clock's time and then moves only when told to. Cloning shares it.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(start: Millis) -> Self {
        Self(Arc::new(AtomicI64::new(start)))
    }
    pub fn starting_now() -> Self {
        Self::new(SystemClock.now())
    }
    pub fn advance_ms(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
    pub fn set(&self, at: Millis) {
        self.0.store(at, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Millis {
        self.0.load(Ordering::SeqCst)
    }
}

/// A shared clock handle, as the server and the simulator hold it.
pub type SharedClock = Arc<dyn Clock>;

/// Another clock, moved forward by an offset that only grows: demo mode's clock, so a person or a
/// browser test can see the 24-hour window close without waiting a day. Time never runs backwards
/// (stored times, the archive's order and the window all assume it does not). Only demo mode makes
/// one; production runs on the plain wall clock.
#[derive(Debug)]
pub struct OffsetClock {
    inner: SharedClock,
    offset: AtomicI64,
}

impl OffsetClock {
    pub fn new(inner: SharedClock) -> Self {
        Self {
            inner,
            offset: AtomicI64::new(0),
        }
    }
    /// Moves the clock forward by `ms` (a negative amount is ignored: time never runs backwards).
    pub fn advance_ms(&self, ms: i64) {
        let ms = ms.max(0);
        let _ = self
            .offset
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |o| Some(o.saturating_add(ms)));
    }
    /// How far it has been moved in all.
    pub fn offset_ms(&self) -> i64 {
        self.offset.load(Ordering::SeqCst)
    }
}

impl Clock for OffsetClock {
    fn now(&self) -> Millis {
        self.inner.now().saturating_add(self.offset_ms())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told_and_clones_share_it() {
        let c = ManualClock::new(1_000);
        let other = c.clone();
        c.advance_ms(24 * 3_600_000);
        assert_eq!(other.now(), 1_000 + 86_400_000);
    }

    #[test]
    fn an_offset_clock_follows_its_clock_and_only_moves_forward() {
        let inner = ManualClock::new(1_000);
        let c = OffsetClock::new(Arc::new(inner.clone()));
        assert_eq!(c.now(), 1_000);
        c.advance_ms(25 * 3_600_000);
        inner.advance_ms(5);
        assert_eq!((c.now(), c.offset_ms()), (1_005 + 90_000_000, 90_000_000));
        c.advance_ms(-90_000_000);
        assert_eq!(c.now(), 1_005 + 90_000_000, "never backwards");
        c.advance_ms(i64::MAX);
        assert_eq!(c.now(), i64::MAX, "saturates");
    }
}
