//! Consent through the API: send the opt-in request to a contact, and read a contact's consent with
//! its full ledger (the attestation record compliance asks for).

use crate::auth::CurrentUser;
use crate::consent_flow::{self, Effects};
use crate::error::{AppError, ErrorBody};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use openline_domain::consent::{self, ConsentState};
use openline_domain::policy::{decide_send, Outgoing, SendDecision, SendFacts};
use openline_domain::{Channel, MessageKind};
use openline_store::consent::ConsentRecord;
use openline_store::messages::{self, Message, NewOutbound};
use openline_store::{contacts, conversations, orgs, senders, StoreError};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct OptInSent {
    /// The opt-in request (a template with Yes/No buttons); its status follows the provider.
    pub message: Message,
    pub consent: ConsentState,
}

/// `POST /api/v1/contacts/{id}/opt-in`: sends the opt-in request. Refused when the contact already
/// agreed (`consent_already_granted`), declined or opted out (`consent_refused`: they can opt in by
/// replying YES), or was asked less than 24 hours ago (`opt_in_too_soon`, saying when it becomes
/// possible). The outcome arrives later as `consent.changed` events: accepted, declined, or not on
/// WhatsApp (then offer SMS).
#[utoipa::path(post, path = "/api/v1/contacts/{id}/opt-in", tag = "consent", params(("id" = String, Path)),
    responses((status = 202, body = OptInSent), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn request_opt_in(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(contact_id): Path<String>,
) -> Result<(StatusCode, Json<OptInSent>), AppError> {
    let now = st.now();
    let (sent, fx) = st
        .store
        .write(move |c| {
            let mut fx = Effects::default();
            let contact = match contacts::get(c, &me.scope, &contact_id) {
                Ok(ct) => ct,
                Err(StoreError::NotFound) => return Ok((Err(AppError::not_found("contact")), fx)),
                Err(e) => return Err(e),
            };
            let Some(sender) = senders::for_org(c, &contact.org_id, Channel::Whatsapp)? else {
                return Ok((
                    Err(AppError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "no_sender",
                        "Your organization has no WhatsApp number to send from. An admin can add one.",
                    )),
                    fx,
                ));
            };
            let org = orgs::get(c, &contact.org_id)?;
            let (body, template) = consent_flow::opt_in_template(&org.name);
            let facts = SendFacts {
                channel: Channel::Whatsapp,
                author_role: me.user.role,
                org_whatsapp_enabled: orgs::whatsapp_enabled(c, &contact.org_id)?,
                user_whatsapp_enabled: me.user.whatsapp_enabled,
                text: &body,
                outgoing: Outgoing::OptInRequest { approved: true },
                contact: consent_flow::contact_facts(c, &contact.org_id, &contact.id, &sender.id, now)?,
            };
            let queue_reason = match decide_send(&facts, now) {
                SendDecision::SendNow => None,
                SendDecision::Queue { reason, .. } => Some(reason),
                SendDecision::Reject(e) => return Ok((Err(e.into()), fx)),
            };
            let conversation_id = conversations::find_or_create_open(
                c,
                &contact.org_id,
                Channel::Whatsapp,
                &contact.id,
                &sender.id,
                now,
            )?;
            conversations::join(c, &conversation_id, &me.user.id, now)?;
            let message = messages::insert_outbound(
                c,
                &NewOutbound {
                    org_id: &contact.org_id,
                    conversation_id: &conversation_id,
                    sender_id: &sender.id,
                    author_user_id: Some(&me.user.id),
                    kind: MessageKind::Template,
                    body: Some(&body),
                    template: Some(&template),
                    queue_reason,
                    business_initiated: !facts.contact.window.is_open(),
                    now,
                },
            )?;
            fx.wake_dispatcher = queue_reason.is_none();
            fx.messages.push(("message.created", message.clone()));
            consent_flow::record_opt_in_request(c, &message, &contact.id, &me.user.id, now, &mut fx)?;
            let state = consent::consent_state(&consent_flow::consent_events(c, &contact.org_id, &contact.id)?);
            Ok((
                Ok(OptInSent {
                    message,
                    consent: state,
                }),
                fx,
            ))
        })
        .await?;
    fx.publish(&st);
    Ok((StatusCode::ACCEPTED, Json(sent?)))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ContactConsent {
    pub contact_id: String,
    /// The current state, derived from the ledger.
    pub consent: ConsentState,
    /// When a new opt-in request may be sent (absent when one may be sent now or never will).
    pub opt_in_request_possible_at: Option<i64>,
    /// Every consent event with its evidence, oldest first.
    pub history: Vec<ConsentRecord>,
}

/// `GET /api/v1/contacts/{id}/consent`: the contact's consent and its attestation record.
#[utoipa::path(get, path = "/api/v1/contacts/{id}/consent", tag = "consent", params(("id" = String, Path)),
    responses((status = 200, body = ContactConsent), (status = 404, body = ErrorBody)))]
pub async fn get_consent(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(contact_id): Path<String>,
) -> Result<Json<ContactConsent>, AppError> {
    let now = st.now();
    let scope = me.scope.clone();
    let (contact, history) = st
        .store
        .read(move |c| {
            let contact = contacts::get(c, &scope, &contact_id)?;
            let history = openline_store::consent::history(c, &scope, &contact.id)?;
            Ok((contact, history))
        })
        .await
        .map_err(|e| match e {
            StoreError::NotFound => AppError::not_found("contact"),
            other => other.into(),
        })?;
    let events: Vec<_> = history
        .iter()
        .filter_map(|r| consent::ConsentEventKind::parse(&r.kind).map(|k| consent::ConsentEvent::new(k, r.at)))
        .collect();
    let state = consent::consent_state(&events);
    let last = consent::last_opt_in_request_at(&events);
    let opt_in_request_possible_at = match (consent::may_request_opt_in(state, last, now), last) {
        (Err(e), Some(l)) if e.code == "opt_in_too_soon" => Some(l + consent::OPT_IN_REQUEST_INTERVAL_MS),
        _ => None,
    };
    Ok(Json(ContactConsent {
        contact_id: contact.id,
        consent: state,
        opt_in_request_possible_at,
        history,
    }))
}
