//! Endpoints providers call. Each verifies the provider's signature over the raw bytes before
//! parsing anything, commits what the webhook says in one transaction, and only then answers 200.

mod batch;
pub mod twilio;
pub mod whatsapp;

pub use batch::IngestBatcher;

use crate::consent_flow::{self, Effects};
use openline_store::messages::{self, StatusOutcome, StatusReport};
use openline_store::{Conn, StoreError};

/// Applies a status report from any provider: the message moves forward (or the report is kept as
/// stale, duplicate or early), a failed opt-in request may reveal a number not on WhatsApp, and the
/// change is announced after the commit. `callback_message_id` is the openline message id the
/// provider echoed from the send, if any. Returns the metric label.
pub(crate) fn record_status(
    c: &mut dyn Conn,
    report: &StatusReport<'_>,
    callback_message_id: Option<&str>,
    now: i64,
    fx: &mut Effects,
    ahead: Option<&mut messages::StatusLookahead>,
) -> Result<&'static str, StoreError> {
    Ok(
        match messages::apply_status_naming(c, report, callback_message_id, ahead)? {
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
        },
    )
}

/// DLP on an inbound message: what to store as its body, and the verdict. An inbound message cannot
/// be blocked at its source, so Block and Redact rules both mask what agents see.
pub(crate) fn dlp_inbound(
    c: &mut dyn Conn,
    org_id: &str,
    body: Option<&str>,
) -> Result<(Option<String>, Option<openline_domain::dlp::DlpVerdict>), StoreError> {
    let Some(text) = body else { return Ok((None, None)) };
    let rules = openline_store::dlp::rules_for(c, org_id)?;
    Ok(dlp_inbound_with(&rules, Some(text)))
}

/// [`dlp_inbound`] with the organization's rules already read (a batch reads them once).
pub(crate) fn dlp_inbound_with(
    rules: &[openline_domain::dlp::DlpRule],
    body: Option<&str>,
) -> (Option<String>, Option<openline_domain::dlp::DlpVerdict>) {
    let Some(text) = body else { return (None, None) };
    if rules.is_empty() {
        return (Some(text.to_owned()), None);
    }
    let verdict = openline_domain::dlp::scan(rules, openline_domain::Direction::In, text);
    let stored = verdict.redacted.clone().unwrap_or_else(|| text.to_owned());
    (Some(stored), verdict.action.is_some().then_some(verdict))
}

/// Records the inbound verdict on the stored message (the original text goes to the archive only
/// when the stored body was masked) and returns the message as it now reads.
pub(crate) fn record_inbound_dlp(
    c: &mut dyn Conn,
    message: openline_store::messages::Message,
    verdict: Option<&openline_domain::dlp::DlpVerdict>,
    original: Option<&str>,
    now: i64,
) -> Result<openline_store::messages::Message, StoreError> {
    let Some(v) = verdict else { return Ok(message) };
    let original = v.redacted.as_ref().and(original);
    openline_store::dlp::record_verdict(c, &message.org_id, &message.id, v, original, now)?;
    messages::get_any(c, &message.id)
}

/// A message a webhook has just stored, with the facts of the webhook that follow-up steps need.
pub(crate) struct StoredInbound<'a> {
    pub message: openline_store::messages::Message,
    /// The thread's channel (the webhook knows it; no need to read it back).
    pub channel: openline_domain::Channel,
    pub verdict: Option<&'a openline_domain::dlp::DlpVerdict>,
    /// The text as the contact wrote it, before DLP redaction.
    pub original: Option<&'a str>,
    /// A quick-reply button's payload, when the message is a button tap.
    pub reply_payload: Option<&'a str>,
    pub sender_id: &'a str,
    /// What the webhook's batch already knows about the contact.
    pub known: consent_flow::Known,
}

/// What follows a newly stored inbound message, whatever the provider: its DLP verdict, then (on
/// WhatsApp) a consent answer it carries or the window it re-opens, then the live event.
pub(crate) fn after_stored_inbound(
    c: &mut dyn Conn,
    stored: StoredInbound<'_>,
    now: i64,
    fx: &mut Effects,
) -> Result<(), StoreError> {
    after_stored(c, stored, true, now, fx)
}

/// [`after_stored_inbound`] for a message the provider wrote about the contact (WhatsApp's `system`
/// messages): its DLP verdict and live event, but it is no consent answer and, since it opened no
/// window (see `messages::insert_system_inbound`), it releases nothing held.
pub(crate) fn after_stored_system_inbound(
    c: &mut dyn Conn,
    stored: StoredInbound<'_>,
    now: i64,
    fx: &mut Effects,
) -> Result<(), StoreError> {
    after_stored(c, stored, false, now, fx)
}

fn after_stored(
    c: &mut dyn Conn,
    stored: StoredInbound<'_>,
    written_by_contact: bool,
    now: i64,
    fx: &mut Effects,
) -> Result<(), StoreError> {
    let message = record_inbound_dlp(c, stored.message, stored.verdict, stored.original, now)?;
    if written_by_contact && stored.channel == openline_domain::Channel::Whatsapp {
        // A consent answer, or the window re-opening, may release held messages.
        consent_flow::after_inbound_known(
            c,
            &message,
            &stored.known,
            stored.reply_payload,
            stored.sender_id,
            now,
            fx,
        )?;
    }
    fx.messages.insert(0, ("message.received", message));
    Ok(())
}
