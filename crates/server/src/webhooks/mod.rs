//! Endpoints providers call. Each verifies the provider's signature over the raw bytes before
//! parsing anything, commits what the webhook says in one transaction, and only then answers 200.

pub mod twilio;
pub mod whatsapp;

use crate::consent_flow::{self, Effects};
use openline_store::messages::{self, StatusOutcome, StatusReport};
use openline_store::{Conn, StoreError};

/// Applies a status report from any provider: the message moves forward (or the report is kept as
/// stale, duplicate or early), a failed opt-in request may reveal a number not on WhatsApp, and the
/// change is announced after the commit. Returns the metric label.
pub(crate) fn record_status(
    c: &mut dyn Conn,
    report: &StatusReport<'_>,
    now: i64,
    fx: &mut Effects,
) -> Result<&'static str, StoreError> {
    Ok(match messages::apply_status(c, report)? {
        StatusOutcome::Advanced(m) => {
            if m.status == openline_domain::DeliveryStatus::Failed {
                consent_flow::after_failure(c, &m, now, fx)?;
            }
            fx.messages.push(("message.status", m));
            "status"
        }
        StatusOutcome::Stale(_) => "status_stale",
        StatusOutcome::Duplicate => "duplicate",
        StatusOutcome::Orphan => "orphan_status",
    })
}
