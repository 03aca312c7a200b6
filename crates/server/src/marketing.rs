//! Marketing preferences carried out: a contact stopping or resuming marketing messages in WhatsApp
//! (Meta's `user_preferences` webhook), or a marketing template refused with Meta's 131050, becomes
//! an entry of the contact's consent ledger, inside the caller's transaction. The rule itself is
//! pure (`openline_domain::consent::marketing`, applied by `openline_domain::policy`); this module
//! gathers facts and records outcomes.
//!
//! Choices worth knowing:
//! - **Per organization × contact.** The stop arrives for one business number; it is recorded for
//!   the organization owning that number, so none of its numbers sends marketing to that person.
//!   Stricter than Meta (which scopes it to the business), never looser.
//! - **Unknown contacts are created**, as an inbound message would create them: the stop must not
//!   be lost because nobody had written to the person yet, and a contact added later by an agent
//!   would otherwise receive the promotions they stopped.
//! - **Idempotent.** An entry is dated by Meta's timestamp and written at most once per kind and
//!   moment (`openline_store::consent::append_once`), so a redelivered webhook records nothing new,
//!   and a stop delivered after a later resume cannot undo that resume (the ledger is ordered by
//!   when things happened).

use crate::consent_flow::{self, Effects};
use openline_channels::cloud_api::user_preferences::{user_preferences, UserPreference};
use openline_channels::cloud_api::OtherEvent;
use openline_domain::consent::marketing::{
    kind_for_preference, marketing_preference, MarketingPreference, META_MARKETING_STOPPED_ERROR,
};
use openline_domain::consent::{self, ConsentEventKind};
use openline_domain::templates::TemplateCategory;
use openline_domain::{Channel, PhoneNumber, ProviderKind};
use openline_store::consent as ledger;
use openline_store::messages::Message;
use openline_store::orgs::Scope;
use openline_store::senders::Sender;
use openline_store::{contacts, conversations, Conn, StoreError};

/// The contact's marketing preference now.
pub fn preference(c: &mut dyn Conn, org_id: &str, contact_id: &str) -> Result<MarketingPreference, StoreError> {
    Ok(marketing_preference(&consent_flow::consent_events(
        c, org_id, contact_id,
    )?))
}

/// Whether a stored template message is a marketing one, by its template's category as it is now
/// (Meta may re-categorize a template after approval). A message whose template is unknown counts
/// as not marketing: the provider still enforces the stop, and the 131050 it answers is recorded.
pub fn template_is_marketing(c: &mut dyn Conn, template: Option<&serde_json::Value>) -> Result<bool, StoreError> {
    let Some(id) = template.and_then(|t| t.get("template_id")).and_then(|v| v.as_str()) else {
        return Ok(false);
    };
    match openline_store::templates::get_any(c, id) {
        Ok(t) => Ok(t.template.category == TemplateCategory::Marketing),
        Err(StoreError::NotFound) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Applies a `user_preferences` change (already kept whole as a provider event by the caller) for
/// the business number `sender`, if openline knows it. Returns how many ledger entries it added.
pub fn apply_user_preferences(
    c: &mut dyn Conn,
    event: &OtherEvent,
    sender: Option<&Sender>,
    now: i64,
    fx: &mut Effects,
) -> Result<usize, StoreError> {
    let Some(sender) = sender else {
        tracing::warn!(phone_number_id = ?event.phone_number_id, "marketing preference for an unknown business number kept as a provider event only");
        return Ok(0);
    };
    let mut added = 0;
    for pref in user_preferences(&event.raw) {
        let Some(kind) = kind_for_preference(&pref.category, &pref.value) else {
            tracing::info!(category = %pref.category, value = %pref.value, "user preference openline does not act on, kept as a provider event");
            continue;
        };
        if record_preference(c, &pref, kind, sender, event.waba_id.as_deref(), now, fx)? {
            added += 1;
        }
    }
    Ok(added)
}

/// Records one preference for its contact (created when new); `false` when it was recorded before.
fn record_preference(
    c: &mut dyn Conn,
    pref: &UserPreference,
    kind: ConsentEventKind,
    sender: &Sender,
    waba_id: Option<&str>,
    now: i64,
    fx: &mut Effects,
) -> Result<bool, StoreError> {
    let phone = PhoneNumber::from_wa_id(&pref.wa_id).ok();
    let wa_user_id = phone.is_none().then_some(pref.wa_id.as_str());
    let contact_id = contacts::upsert_from_inbound(
        c,
        &sender.org_id,
        phone.as_ref().map(PhoneNumber::as_e164),
        wa_user_id,
        pref.profile_name.as_deref(),
        now,
    )?;
    let before = preference(c, &sender.org_id, &contact_id)?;
    let at = if pref.timestamp_ms > 0 { pref.timestamp_ms } else { now };
    let evidence = serde_json::json!({
        "source": "user_preferences",
        "value": pref.value,
        "category": pref.category,
        "detail": pref.detail,
        "signup_id": pref.signup_id,
        "wa_id": pref.wa_id,
        "waba_id": waba_id,
        "phone_number_id": sender.phone_number_id,
        "sender_id": sender.id,
        "received_at": now,
    });
    let recorded = ledger::append_once(
        c,
        &ledger::NewConsentEvent {
            org_id: &sender.org_id,
            contact_id: &contact_id,
            kind: kind.as_str(),
            actor_user_id: None,
            message_id: None,
            provider_message_id: None,
            evidence: &evidence,
            at,
        },
        now,
    )?;
    if recorded.is_none() {
        return Ok(false);
    }
    let after = preference(c, &sender.org_id, &contact_id)?;
    tracing::info!(contact_id = %contact_id, kind = %kind, "marketing preference recorded");
    if before.is_stopped() != after.is_stopped() {
        let name = consent_flow::display_name(c, &contact_id)?;
        let body = if after.is_stopped() {
            format!("{name} stopped marketing messages on WhatsApp. Marketing templates are blocked for them until they resume; utility templates and replies in the conversation window still reach them.")
        } else {
            format!("{name} resumed marketing messages on WhatsApp. Marketing templates can be sent to them again.")
        };
        thread_notice(c, &sender.org_id, &contact_id, &body, now, fx)?;
    }
    changed(c, &sender.org_id, &contact_id, after, fx)?;
    // Held messages learn their new reason, or go once marketing is allowed again.
    consent_flow::release_held(c, &sender.org_id, &contact_id, &sender.id, now, fx)?;
    Ok(true)
}

/// A marketing template Meta refused with 131050 is evidence the contact stopped marketing
/// messages: recorded (once, unless already stopped), with a notice in the thread. The message's
/// own error explanation tells the agent what still works.
pub fn after_failure(c: &mut dyn Conn, message: &Message, now: i64, fx: &mut Effects) -> Result<(), StoreError> {
    if message.error_code != Some(META_MARKETING_STOPPED_ERROR) || message.provider == Some(ProviderKind::Twilio) {
        return Ok(());
    }
    let contact_id = conversations::contact_of(c, &message.conversation_id)?;
    if preference(c, &message.org_id, &contact_id)?.is_stopped() {
        return Ok(());
    }
    let evidence = serde_json::json!({
        "source": "provider_error",
        "error_code": message.error_code,
        "error_title": message.error_title,
        "template": message.template.as_ref().and_then(|t| t.get("name")),
    });
    let recorded = ledger::append_once(
        c,
        &ledger::NewConsentEvent {
            org_id: &message.org_id,
            contact_id: &contact_id,
            kind: ConsentEventKind::MarketingStopped.as_str(),
            actor_user_id: None,
            message_id: Some(&message.id),
            provider_message_id: message.provider_message_id.as_deref(),
            evidence: &evidence,
            at: now,
        },
        now,
    )?;
    if recorded.is_none() {
        return Ok(());
    }
    let name = consent_flow::display_name(c, &contact_id)?;
    consent_flow::notice(
        c,
        &message.org_id,
        &message.conversation_id,
        &format!("WhatsApp did not deliver the marketing template: {name} has stopped marketing messages from your business. Marketing templates are blocked for them until they resume; utility templates and replies in the conversation window still reach them."),
        now,
        fx,
    )?;
    let after = preference(c, &message.org_id, &contact_id)?;
    changed(c, &message.org_id, &contact_id, after, fx)
}

/// A notice in the contact's latest WhatsApp thread, if they have one (no thread is opened just
/// for it: the contact's page shows the preference either way).
fn thread_notice(
    c: &mut dyn Conn,
    org_id: &str,
    contact_id: &str,
    body: &str,
    now: i64,
    fx: &mut Effects,
) -> Result<(), StoreError> {
    let scope = Scope {
        org_ids: vec![org_id.to_owned()],
    };
    let threads = openline_store::web_contacts::thread_ids(c, &scope, contact_id, Some(Channel::Whatsapp))?;
    match threads.first() {
        Some(conversation_id) => consent_flow::notice(c, org_id, conversation_id, body, now, fx),
        None => Ok(()),
    }
}

/// Announces the change after the commit as a `consent.changed` event carrying both answers.
fn changed(
    c: &mut dyn Conn,
    org_id: &str,
    contact_id: &str,
    marketing: MarketingPreference,
    fx: &mut Effects,
) -> Result<(), StoreError> {
    let state = consent::consent_state(&consent_flow::consent_events(c, org_id, contact_id)?);
    fx.other.push((
        "consent.changed",
        org_id.to_owned(),
        serde_json::json!({"contact_id": contact_id, "consent": state, "marketing": marketing}),
    ));
    Ok(())
}
