//! Consent and the window, carried out. The rules are pure (`openline_domain::{consent, window,
//! policy}`); this module gathers their facts from the store and applies their outcomes inside the
//! caller's transaction: the opt-in request, a contact's answer (accept, decline, opt out, opt back in),
//! a request that cannot be delivered (not on WhatsApp), and releasing held messages, in the order
//! they were written, once consent and the window allow.
//!
//! Live events and waking the dispatcher are side effects collected in `Effects` and carried out by
//! the caller after the commit, so nobody hears of something that was rolled back.

use openline_domain::consent::{self, ConsentEvent, ConsentEventKind, ConsentState};
use openline_domain::limits::{business_initiated_allowed, MessagingTier, MESSAGING_LIMIT_PERIOD_MS};
use openline_domain::policy::{release_queued, ContactFacts, Outgoing, QueuedMessage};
use openline_domain::templates::{
    body_parameters, render, BodyParameters, Template, TemplateButton, TemplateCategory, TemplateComponent,
    TemplateHeader, TemplateParams, TemplateStatus, DYNAMIC_URL_SUFFIX,
};
use openline_domain::{window, DomainError, MessageKind};
use openline_store::consent as ledger;
use openline_store::messages::{self, Message, NewOutbound, NewSystemMessage};
use openline_store::{contacts, conversations, Conn, StoreError};

/// The opt-in template openline sends unless the organization chose another (approved on the
/// provider; quick replies Yes/No).
pub const OPT_IN_TEMPLATE: &str = "openline_opt_in";
pub const OPT_IN_LANGUAGE: &str = "en";

/// What to announce after the commit.
#[derive(Debug, Default)]
pub struct Effects {
    /// Live events about messages: (kind, message).
    pub messages: Vec<(&'static str, Message)>,
    /// Consent changes: (org_id, contact_id, JSON for the `consent.changed` event).
    pub consent: Vec<(String, String, serde_json::Value)>,
    /// Other live events: (kind, org_id, data).
    pub other: Vec<(&'static str, String, serde_json::Value)>,
    /// Something entered the outbox.
    pub wake_dispatcher: bool,
    /// An inbound file waits to be fetched.
    pub wake_media: bool,
}

impl Effects {
    /// Publishes everything (call after the commit).
    pub fn publish(self, st: &crate::state::AppState) {
        for (kind, m) in &self.messages {
            st.events.message(kind, m);
        }
        for (org, contact, data) in self.consent {
            st.events.publish(
                "consent.changed",
                &org,
                None,
                serde_json::json!({"contact_id": contact, "consent": data}),
            );
        }
        for (kind, org, data) in self.other {
            st.events.publish(kind, &org, None, data);
        }
        if self.wake_dispatcher {
            st.dispatcher_wake.notify_one();
        }
        if self.wake_media {
            st.media_wake.notify_one();
        }
    }
}

/// The contact's consent ledger as the pure rules read it.
pub fn consent_events(c: &mut dyn Conn, org_id: &str, contact_id: &str) -> Result<Vec<ConsentEvent>, StoreError> {
    Ok(ledger::events_for(c, org_id, contact_id)?
        .into_iter()
        .filter_map(|r| ConsentEventKind::parse(&r.kind).map(|k| ConsentEvent::new(k, r.at)))
        .collect())
}

/// Everything the send decision needs to know about a contact on a business number.
pub fn contact_facts(
    c: &mut dyn Conn,
    org_id: &str,
    contact_id: &str,
    sender_id: &str,
    now: i64,
) -> Result<ContactFacts, StoreError> {
    let events = consent_events(c, org_id, contact_id)?;
    let last_inbound = conversations::last_inbound_at(c, org_id, contact_id, sender_id)?;
    let window = window::window(last_inbound, now);
    Ok(ContactFacts {
        consent: consent::consent_state(&events),
        last_opt_in_request_at: consent::last_opt_in_request_at(&events),
        window,
        // Only a send outside the window is business-initiated: inside it the limit cannot
        // matter, and most sends are replies, so it is not counted for them.
        within_messaging_limit: window.is_open() || within_messaging_limit(c, org_id, contact_id, now)?,
        marketing: consent::marketing::marketing_preference(&events),
    })
}

/// Whether one more business-initiated conversation with this contact fits the organization's
/// messaging-limit tier (unique contacts per rolling 24 hours; a contact already counted is free).
fn within_messaging_limit(c: &mut dyn Conn, org_id: &str, contact_id: &str, now: i64) -> Result<bool, StoreError> {
    let tier = openline_store::orgs::messaging_tier(c, org_id)?
        .and_then(|t| MessagingTier::parse(&t))
        .unwrap_or(MessagingTier::Tier250);
    // Unlimited: nothing to count. Otherwise the contact itself first (already counted costs
    // nothing), then the others, only as far as the cap.
    let Some(cap) = tier.cap() else { return Ok(true) };
    let since = now - MESSAGING_LIMIT_PERIOD_MS;
    if messages::business_initiated_with(c, org_id, contact_id, since)? {
        return Ok(true);
    }
    let counted = messages::business_initiated_contacts_up_to(c, org_id, since, cap)?;
    Ok(business_initiated_allowed(tier, counted, false))
}

pub(crate) fn display_name(c: &mut dyn Conn, contact_id: &str) -> Result<String, StoreError> {
    let ct = contacts::get_any(c, contact_id)?;
    Ok(ct
        .name
        .or(ct.whatsapp_name)
        .or(ct.phone)
        .unwrap_or_else(|| "The contact".into()))
}

/// A notice in the thread for the agents (never sent to the contact).
pub(crate) fn notice(
    c: &mut dyn Conn,
    org_id: &str,
    conversation_id: &str,
    body: &str,
    now: i64,
    fx: &mut Effects,
) -> Result<(), StoreError> {
    let m = messages::insert_notice(
        c,
        &NewSystemMessage {
            org_id,
            conversation_id,
            body,
            now,
        },
    )?;
    fx.messages.push(("message.created", m));
    Ok(())
}

/// A text openline itself sends to the contact (the confirmations the seeds describe).
fn auto_text(
    c: &mut dyn Conn,
    org_id: &str,
    conversation_id: &str,
    sender_id: &str,
    body: &str,
    now: i64,
    fx: &mut Effects,
) -> Result<(), StoreError> {
    let m = messages::insert_outbound(
        c,
        &NewOutbound {
            org_id,
            conversation_id,
            sender_id,
            author_user_id: None,
            kind: MessageKind::Text,
            body: Some(body),
            template: None,
            queue_reason: None,
            business_initiated: false,
            now,
        },
    )?;
    fx.messages.push(("message.created", m));
    fx.wake_dispatcher = true;
    Ok(())
}

fn consent_changed(
    c: &mut dyn Conn,
    org_id: &str,
    contact_id: &str,
    fx: &mut Effects,
) -> Result<ConsentState, StoreError> {
    let state = consent::consent_state(&consent_events(c, org_id, contact_id)?);
    fx.consent.push((
        org_id.to_owned(),
        contact_id.to_owned(),
        serde_json::to_value(state).unwrap_or_default(),
    ));
    Ok(state)
}

/// The opt-in template an organization sends: its `opt_in_template` setting (inherited from the
/// parent organizations like every setting), else openline's default `openline_opt_in` (`en`).
pub fn opt_in_template_for(c: &mut dyn Conn, org_id: &str) -> Result<(String, String), StoreError> {
    Ok(openline_store::pacing::opt_in_template(c, org_id)?
        .unwrap_or_else(|| (OPT_IN_TEMPLATE.to_owned(), OPT_IN_LANGUAGE.to_owned())))
}

/// The definition of openline's default opt-in template, as an organization submits it for approval
/// (the demo seeds it approved, as the simulator's WABA has it from the start): the organization's
/// name as `{{1}}`, and Yes / No quick replies.
pub fn default_opt_in_template() -> Template {
    Template {
        name: OPT_IN_TEMPLATE.into(),
        language: OPT_IN_LANGUAGE.into(),
        category: TemplateCategory::Utility,
        components: vec![
            TemplateComponent::Body {
                text: "Hello! {{1}} would like to send you messages on WhatsApp. Do you agree? Tap Yes or No (or reply YES or NO).".into(),
            },
            TemplateComponent::Buttons {
                buttons: vec![
                    TemplateButton::QuickReply { text: "Yes".into() },
                    TemplateButton::QuickReply { text: "No".into() },
                ],
            },
        ],
        status: TemplateStatus::Approved,
    }
}

fn unsuitable(t: &Template, why: &str) -> DomainError {
    DomainError::new(
        "opt_in_template_unsuitable",
        format!(
            "The opt-in template {} ({}) {why}. An opt-in template starts its buttons with Yes and No quick replies (first Yes, then No), has at most one body parameter (the organization's name), no image header and no URL button ending in {{{{1}}}}; an admin can choose another one.",
            t.name, t.language
        ),
    )
}

/// Whether a template can carry the opt-in request, from its definition alone (approval is checked
/// when it is sent): its first two buttons are Yes and No quick replies, in that order (the Yes and
/// No payloads go on buttons 0 and 1, so a No first would record a tap on No as consent), at most
/// one body parameter (the organization's name), and nothing else that needs a value on every send.
/// The request is the same message to every contact and the consent ledger keeps it as evidence, so
/// it takes no picture
/// link for an image header and no suffix for a URL button ending in `{{1}}` (a fixed suffix is a
/// fixed address: such a button belongs in the template as it is). Refused with
/// `opt_in_template_unsuitable`, saying why.
pub fn opt_in_suitability(t: &Template) -> Result<(), DomainError> {
    let buttons: Vec<&TemplateButton> = t
        .components
        .iter()
        .filter_map(|c| match c {
            TemplateComponent::Buttons { buttons } => Some(buttons),
            _ => None,
        })
        .flatten()
        .collect();
    // The payloads go on buttons 0 and 1 (Meta's index counts every button).
    let (yes, no) = match buttons.as_slice() {
        [TemplateButton::QuickReply { text: yes }, TemplateButton::QuickReply { text: no }, ..] => (yes, no),
        _ => {
            return Err(unsuitable(
                t,
                "does not start its buttons with Yes and No quick replies",
            ))
        }
    };
    // Only an obvious inversion can be recognized (labels may be in any language).
    let reads_as = |label: &str| {
        let first_word = label.split_whitespace().next().unwrap_or_default();
        consent::classify_reply(first_word, None)
    };
    if matches!(
        reads_as(yes),
        Some(consent::ConsentReply::Reject | consent::ConsentReply::OptOut)
    ) || matches!(reads_as(no), Some(consent::ConsentReply::Accept))
    {
        return Err(unsuitable(
            t,
            &format!("has its quick replies the wrong way round ({yes:?} first, then {no:?})"),
        ));
    }
    if t.components
        .iter()
        .any(|c| matches!(c, TemplateComponent::Header(TemplateHeader::Image { .. })))
    {
        return Err(unsuitable(
            t,
            "has an image header, which needs a picture link with every send",
        ));
    }
    if buttons
        .iter()
        .any(|b| matches!(b, TemplateButton::Url { url, .. } if url.ends_with(DYNAMIC_URL_SUFFIX)))
    {
        return Err(unsuitable(
            t,
            "has a URL button ending in {{1}}, which needs an address suffix with every send",
        ));
    }
    if body_parameters(t)?.count() > 1 {
        return Err(unsuitable(t, "needs more than one parameter"));
    }
    Ok(())
}

/// The opt-in request built from the organization's opt-in template: the text the thread shows and
/// the `template` JSON the dispatcher sends (the organization's name as the body's only parameter,
/// if it has one; the Yes/No payloads on the first two quick replies). Refused when the template
/// cannot carry an opt-in (`opt_in_template_unsuitable`, see [`opt_in_suitability`]) or is not
/// approved (`template_not_approved`).
pub fn opt_in_message(
    t: &Template,
    template_id: &str,
    org_name: &str,
) -> Result<(String, serde_json::Value), DomainError> {
    opt_in_suitability(t)?;
    let params = match body_parameters(t)? {
        BodyParameters::Positional { count: 0 } => TemplateParams::Positional(Vec::new()),
        BodyParameters::Positional { count: 1 } => TemplateParams::Positional(vec![org_name.to_owned()]),
        BodyParameters::Named { names } if names.len() == 1 => {
            TemplateParams::Named(names.iter().map(|n| (n.clone(), org_name.to_owned())).collect())
        }
        _ => return Err(unsuitable(t, "needs more than one parameter")),
    };
    let body = render(t, &params)?;
    let ordered: Vec<&str> = match body_parameters(t)?.count() {
        0 => Vec::new(),
        _ => vec![org_name],
    };
    let template = serde_json::json!({
        "name": t.name,
        "language": t.language,
        "template_id": template_id,
        "body_parameters": ordered,
        "quick_reply_payloads": [consent::OPT_IN_YES_PAYLOAD, consent::OPT_IN_NO_PAYLOAD],
    });
    Ok((body, template))
}

/// Records an opt-in request that the send path stored as `message` (already decided allowed).
pub fn record_opt_in_request(
    c: &mut dyn Conn,
    message: &Message,
    contact_id: &str,
    actor_user_id: &str,
    now: i64,
    fx: &mut Effects,
) -> Result<(), StoreError> {
    ledger::append(
        c,
        &ledger::NewConsentEvent {
            org_id: &message.org_id,
            contact_id,
            kind: ConsentEventKind::Requested.as_str(),
            actor_user_id: Some(actor_user_id),
            message_id: Some(&message.id),
            provider_message_id: None,
            evidence: message.template.as_ref().unwrap_or(&serde_json::Value::Null),
            at: now,
        },
    )?;
    let name = display_name(c, contact_id)?;
    let next = openline_domain::utc::format_utc_minute(now + consent::OPT_IN_REQUEST_INTERVAL_MS);
    notice(
        c,
        &message.org_id,
        &message.conversation_id,
        &format!("Opt-in request sent to {name}. If they do not answer, you can send a new one from {next}."),
        now,
        fx,
    )?;
    consent_changed(c, &message.org_id, contact_id, fx)?;
    Ok(())
}

/// After a contact's message is stored: applies a consent answer it carries, then releases held
/// messages the contact's consent and (re)opened window now allow.
pub fn after_inbound(
    c: &mut dyn Conn,
    message: &Message,
    reply_payload: Option<&str>,
    sender_id: &str,
    now: i64,
    fx: &mut Effects,
) -> Result<(), StoreError> {
    after_inbound_known(c, message, &Known::default(), reply_payload, sender_id, now, fx)
}

/// What the caller already knows about an inbound message's contact (a batch of webhooks looks it
/// up for all of its messages at once), sparing [`after_inbound`] a query each.
#[derive(Debug, Clone)]
pub struct Known {
    /// The contact's id, when known.
    pub contact_id: Option<String>,
    /// `false` when the contact is known to have no held messages (nothing to release unless this
    /// message changes their consent).
    pub may_have_held: bool,
}

impl Default for Known {
    fn default() -> Self {
        Self {
            contact_id: None,
            may_have_held: true,
        }
    }
}

/// [`after_inbound`] with what the caller knows about the contact.
pub fn after_inbound_known(
    c: &mut dyn Conn,
    message: &Message,
    known: &Known,
    reply_payload: Option<&str>,
    sender_id: &str,
    now: i64,
    fx: &mut Effects,
) -> Result<(), StoreError> {
    let contact_id = match &known.contact_id {
        Some(id) => id.clone(),
        None => conversations::contact_of(c, &message.conversation_id)?,
    };
    let org_id = message.org_id.clone();
    // Most messages are not consent answers: the ledger is read only for those that could be.
    let reply = consent::classify_reply(message.body.as_deref().unwrap_or(""), reply_payload);
    let kind = match reply {
        Some(r) => {
            consent::consent_event_for_reply(consent::consent_state(&consent_events(c, &org_id, &contact_id)?), r)
        }
        None => None,
    };
    if let Some(kind) = kind {
        ledger::append(
            c,
            &ledger::NewConsentEvent {
                org_id: &org_id,
                contact_id: &contact_id,
                kind: kind.as_str(),
                actor_user_id: None,
                message_id: Some(&message.id),
                provider_message_id: message.provider_message_id.as_deref(),
                evidence: &serde_json::json!({
                    "reply_text": message.body, "button_payload": reply_payload, "in_reply_to": message.reply_to,
                }),
                at: now,
            },
        )?;
        let name = display_name(c, &contact_id)?;
        let conv = &message.conversation_id;
        match kind {
            ConsentEventKind::Accepted | ConsentEventKind::OptedIn => {
                notice(
                    c,
                    &org_id,
                    conv,
                    &format!("{name} agreed to receive WhatsApp messages. You can now write to them."),
                    now,
                    fx,
                )?;
                auto_text(c, &org_id, conv, sender_id, consent::OPTED_IN_CONFIRMATION, now, fx)?;
            }
            ConsentEventKind::Rejected => {
                notice(c, &org_id, conv, &format!("{name} declined WhatsApp messages. Writing and templates are disabled for them; they can opt in again by replying YES."), now, fx)?;
                auto_text(c, &org_id, conv, sender_id, consent::OPTED_OUT_CONFIRMATION, now, fx)?;
            }
            ConsentEventKind::OptedOut => {
                notice(c, &org_id, conv, &format!("{name} opted out of WhatsApp messages. Writing and templates are disabled for them; they can opt in again by replying YES."), now, fx)?;
                auto_text(c, &org_id, conv, sender_id, consent::OPTED_OUT_CONFIRMATION, now, fx)?;
            }
            ConsentEventKind::Requested
            | ConsentEventKind::Undeliverable
            | ConsentEventKind::MarketingStopped
            | ConsentEventKind::MarketingResumed => {}
        }
        consent_changed(c, &org_id, &contact_id, fx)?;
    } else if !known.may_have_held {
        return Ok(());
    }
    release_held(c, &org_id, &contact_id, sender_id, now, fx)
}

/// Hands held messages to the dispatcher in the order they were written, as far as consent, the
/// window and limits allow (the pure `release_queued` decides; the first message that must wait keeps
/// every later one waiting, so order is never broken). Nothing is dropped.
pub fn release_held(
    c: &mut dyn Conn,
    org_id: &str,
    contact_id: &str,
    sender_id: &str,
    now: i64,
    fx: &mut Effects,
) -> Result<(), StoreError> {
    let held = messages::queued_for_contact(c, org_id, contact_id)?;
    if held.is_empty() {
        return Ok(());
    }
    let facts = contact_facts(c, org_id, contact_id, sender_id, now)?;
    // A template's category as it is now (Meta may have re-categorized it since it was written).
    let marketing = held
        .iter()
        .map(|m| crate::marketing::template_is_marketing(c, m.template.as_ref()))
        .collect::<Result<Vec<bool>, _>>()?;
    let queue: Vec<QueuedMessage<usize>> = held
        .iter()
        .enumerate()
        .map(|(i, m)| QueuedMessage {
            id: i,
            outgoing: if m.kind == MessageKind::Template {
                Outgoing::Template {
                    approved: true,
                    marketing: marketing[i],
                }
            } else {
                Outgoing::FreeForm
            },
        })
        .collect();
    let decision = release_queued(&queue, &facts, now);
    for i in decision.send {
        let released = messages::release(c, &held[i].id, sender_id, now)?;
        fx.messages.push(("message.status", released));
        fx.wake_dispatcher = true;
    }
    for (i, reason) in decision.waiting {
        if held[i].queue_reason.as_deref() != Some(reason) {
            messages::requeue(c, &held[i].id, reason, now)?;
        }
    }
    // Only opt-in requests are ever cancelled by the rules, and they are not held here.
    Ok(())
}

/// A message failed at the provider: if it was an opt-in request and the number is not on WhatsApp,
/// the ledger says so and the agents are offered SMS.
pub fn after_failure(c: &mut dyn Conn, message: &Message, now: i64, fx: &mut Effects) -> Result<(), StoreError> {
    // Meta's 131050: the contact stopped marketing messages; the ledger records it.
    crate::marketing::after_failure(c, message, now, fx)?;
    // Meta's 131026, Twilio's 63003/63024: the number cannot receive WhatsApp messages.
    if !matches!(message.error_code, Some(131026 | 63003 | 63024)) {
        return Ok(());
    }
    let Some(request) = ledger::request_for_message(c, &message.id)? else {
        return Ok(());
    };
    ledger::append(
        c,
        &ledger::NewConsentEvent {
            org_id: &message.org_id,
            contact_id: &request.contact_id,
            kind: ConsentEventKind::Undeliverable.as_str(),
            actor_user_id: None,
            message_id: Some(&message.id),
            provider_message_id: message.provider_message_id.as_deref(),
            evidence: &serde_json::json!({"error_code": message.error_code, "error_title": message.error_title}),
            at: now,
        },
    )?;
    let name = display_name(c, &request.contact_id)?;
    notice(
        c,
        &message.org_id,
        &message.conversation_id,
        &format!("{name} is not a WhatsApp user, so the opt-in request could not be delivered. Send an SMS instead?"),
        now,
        fx,
    )?;
    consent_changed(c, &message.org_id, &request.contact_id, fx)?;
    Ok(())
}
