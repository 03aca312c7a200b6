//! Delivery status of an outgoing message, and the rule that it only ever moves forward.
//!
//! Providers deliver status webhooks out of order and more than once. A message that was `read` must
//! never show `delivered` again because a late webhook arrived, so the stored status is the
//! furthest one seen. `failed` ends any state before `read` (a failure reported after `delivered` is
//! recorded as such, per DESIGN.md); nothing moves a message out of `read`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Accepted by openline, waiting in the outbox (or held by policy).
    Queued,
    /// The provider accepted the request and returned its message id.
    Accepted,
    Sent,
    Delivered,
    Read,
    Failed,
    /// Withdrawn by a user before it was sent.
    Cancelled,
    /// Inbound messages: received from the contact.
    Received,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Accepted => "accepted",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::Received => "received",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "queued" => Self::Queued,
            "accepted" => Self::Accepted,
            "sent" => Self::Sent,
            "delivered" => Self::Delivered,
            "read" => Self::Read,
            "failed" => Self::Failed,
            "cancelled" => Self::Cancelled,
            "received" => Self::Received,
            _ => return None,
        })
    }

    fn rank(self) -> u8 {
        match self {
            Self::Queued => 0,
            Self::Accepted => 1,
            Self::Sent => 2,
            Self::Delivered => 3,
            Self::Read => 4,
            Self::Failed | Self::Cancelled | Self::Received => 5,
        }
    }

    /// Whether a message now in `self` should move to `incoming`. Forward only; terminal states stay.
    pub fn should_advance_to(self, incoming: DeliveryStatus) -> bool {
        match (self, incoming) {
            (Self::Read | Self::Failed | Self::Cancelled | Self::Received, _) => false,
            (_, Self::Failed) => true,
            (_, Self::Cancelled | Self::Received) => false,
            (current, next) => next.rank() > current.rank(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::DeliveryStatus::*;
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn statuses_only_move_forward() {
        assert!(Accepted.should_advance_to(Sent));
        assert!(Sent.should_advance_to(Read));
        assert!(!Read.should_advance_to(Delivered));
        assert!(!Delivered.should_advance_to(Sent));
        assert!(!Sent.should_advance_to(Sent));
    }

    #[test]
    fn failure_after_delivery_is_recorded_but_read_is_final() {
        assert!(Delivered.should_advance_to(Failed));
        assert!(!Read.should_advance_to(Failed));
        assert!(!Failed.should_advance_to(Delivered));
    }

    fn any_status() -> impl Strategy<Value = DeliveryStatus> {
        prop_oneof![
            Just(Queued),
            Just(Accepted),
            Just(Sent),
            Just(Delivered),
            Just(Read),
            Just(Failed)
        ]
    }

    proptest! {
        /// Whatever order webhooks arrive in, the final status is the furthest one (or failed).
        #[test]
        fn any_arrival_order_ends_at_the_furthest_status(mut seq in proptest::collection::vec(any_status(), 1..12)) {
            let mut cur = Accepted;
            for s in &seq { if cur.should_advance_to(*s) { cur = *s; } }
            seq.sort_by_key(|s| s.rank());
            let read_first = seq.contains(&Read);
            if read_first { prop_assert!(cur == Read || cur == Failed); }
            if !seq.contains(&Failed) && !seq.contains(&Read) {
                let max = seq.iter().copied().max_by_key(|s| s.rank()).unwrap();
                prop_assert_eq!(cur.rank(), max.rank().max(Accepted.rank()));
            }
        }
    }
}
