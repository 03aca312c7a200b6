//! The 24-hour customer-service window, per business number and contact.
//!
//! WhatsApp lets a business send anything for 24 hours after the contact's last message; outside that
//! window only an approved template may be sent (Meta answers 131047 otherwise). The window opens and
//! re-opens **only** with a message from the contact: the business's own messages, templates included,
//! never extend it. So the caller passes the contact's last *inbound* time on that business number,
//! and nothing else, and the rule cannot be fooled by an outgoing message.

use crate::Millis;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// How long the window stays open after the contact's last message: 24 hours.
pub const WINDOW_MS: Millis = 24 * 60 * 60 * 1000;

/// Whether free-form messages may be sent to the contact now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Window {
    /// Open until `until` (exclusive): a client can show a countdown.
    Open {
        /// The instant the window closes unless the contact writes again.
        until: Millis,
    },
    /// Closed: only approved templates may be sent.
    Closed {
        /// When it closed; `None` if the contact has never written on this number.
        since: Option<Millis>,
    },
}

impl Window {
    pub fn is_open(self) -> bool {
        matches!(self, Window::Open { .. })
    }
}

/// The window at `now`, given the contact's last inbound message on this business number.
/// It is open for exactly 24 hours: at `last_inbound_at + WINDOW_MS` it is closed.
pub fn window(last_inbound_at: Option<Millis>, now: Millis) -> Window {
    match last_inbound_at {
        None => Window::Closed { since: None },
        Some(last) => {
            let until = last.saturating_add(WINDOW_MS);
            if now < until {
                Window::Open { until }
            } else {
                Window::Closed { since: Some(until) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const H: Millis = 3_600_000;

    #[test]
    fn a_contact_who_never_wrote_has_a_closed_window_since_never() {
        assert_eq!(window(None, 5 * H), Window::Closed { since: None });
    }

    #[test]
    fn the_window_is_open_for_exactly_24_hours_after_the_contact_writes() {
        let wrote = 100 * H;
        assert_eq!(
            window(Some(wrote), wrote),
            Window::Open {
                until: wrote + WINDOW_MS
            }
        );
        assert!(window(Some(wrote), wrote + WINDOW_MS - 1).is_open());
        assert_eq!(
            window(Some(wrote), wrote + WINDOW_MS),
            Window::Closed {
                since: Some(wrote + WINDOW_MS)
            }
        );
        assert_eq!(
            window(Some(wrote), wrote + 3 * WINDOW_MS),
            Window::Closed {
                since: Some(wrote + WINDOW_MS)
            }
        );
    }

    #[test]
    fn a_message_stamped_slightly_in_the_future_still_opens_the_window() {
        // Provider timestamps can run a little ahead of our clock.
        assert_eq!(window(Some(10 * H + 500), 10 * H), Window::Open { until: 34 * H + 500 });
    }

    #[test]
    fn the_window_state_serializes_for_a_countdown() {
        let open = serde_json::to_value(Window::Open { until: 7 }).unwrap();
        assert_eq!(open, serde_json::json!({"state": "open", "until": 7}));
        let closed = serde_json::to_value(Window::Closed { since: None }).unwrap();
        assert_eq!(closed, serde_json::json!({"state": "closed", "since": null}));
    }

    proptest! {
        #[test]
        fn open_exactly_when_less_than_24_hours_have_passed(last in -10i64 * WINDOW_MS..10 * WINDOW_MS, dt in -WINDOW_MS..3 * WINDOW_MS) {
            let now = last + dt;
            prop_assert_eq!(window(Some(last), now).is_open(), dt < WINDOW_MS);
        }
    }
}
