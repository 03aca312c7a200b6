//! Consent through the API: send the opt-in request to a contact, and read a contact's consent with
//! its full ledger (the attestation record compliance asks for).

use crate::auth::CurrentUser;
use crate::consent_flow::{self, Effects};
use crate::error::{AppError, ErrorBody};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use openline_domain::consent::marketing::{marketing_preference, MarketingPreference};
use openline_domain::consent::{self, ConsentState};
use openline_domain::policy::{decide_send, Outgoing, SendDecision, SendFacts};
use openline_domain::{Channel, MessageKind};
use openline_store::consent::ConsentRecord;
use openline_store::messages::{self, Message, NewOutbound};
use openline_store::{contacts, conversations, orgs, senders, templates, StoreError};
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
/// possible). The organization's opt-in template (see `PUT /api/v1/settings/opt-in-template`) must
/// exist for its number (`opt_in_template_missing`), be able to carry an opt-in
/// (`opt_in_template_unsuitable`, for a choice saved before that was checked) and be approved
/// (`opt_in_template_not_approved`, with its current status). The outcome arrives later as `consent.changed` events: accepted, declined, or not on
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
            // The organization's opt-in template, as the provider last reported its review.
            let (name, language) = consent_flow::opt_in_template_for(c, &contact.org_id)?;
            let Some(record) = templates::find(c, &sender.id, &name, &language)? else {
                return Ok((
                    Err(AppError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "opt_in_template_missing",
                        format!(
                            "The opt-in template {name} ({language}) does not exist for your WhatsApp number. An admin can submit it (POST /api/v1/templates) or choose another (PUT /api/v1/settings/opt-in-template)."
                        ),
                    )),
                    fx,
                ));
            };
            let (body, template) = match consent_flow::opt_in_message(&record.template, &record.id, &org.name) {
                Ok(built) => built,
                Err(e) if e.code == "template_not_approved" => {
                    return Ok((
                        Err(AppError::new(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            "opt_in_template_not_approved",
                            format!("{} Until then no opt-in request can be sent; an admin can choose another template.", e.message),
                        )),
                        fx,
                    ))
                }
                Err(e) => return Ok((Err(e.into()), fx)),
            };
            let facts = SendFacts {
                channel: Channel::Whatsapp,
                author_role: me.user.role,
                org_whatsapp_enabled: orgs::whatsapp_enabled(c, &contact.org_id)?,
                user_whatsapp_enabled: me.user.whatsapp_enabled,
                text: &body,
                outgoing: Outgoing::OptInRequest {
                    approved: record.template.status.is_approved(),
                },
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
    /// Whether the contact stopped marketing messages in WhatsApp (derived from the same ledger):
    /// while `stopped`, MARKETING templates are refused (`marketing_stopped`); utility and
    /// authentication templates and replies in the window are not affected.
    pub marketing: MarketingPreference,
    /// Every consent event with its evidence, oldest first, marketing stops and resumes included
    /// (`marketing_stopped`, `marketing_resumed`, with Meta's detail and timestamp, or the refused
    /// message for a 131050).
    pub history: Vec<ConsentRecord>,
}

/// `GET /api/v1/contacts/{id}/consent`: the contact's consent, their marketing preference and the
/// attestation record of both.
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
        marketing: marketing_preference(&events),
        history,
    }))
}

/// An organization's opt-in template and where its review stands.
#[derive(Debug, Serialize, ToSchema)]
pub struct OptInTemplateSetting {
    /// The organization the setting applies to.
    pub org_id: String,
    pub name: String,
    pub language: String,
    /// Whether the organization chose it itself (else it is inherited, or openline's default).
    pub own_setting: bool,
    /// The template's approval status for the organization's WhatsApp number (`pending`,
    /// `approved`, `rejected`, `paused`, `disabled`), or `missing` when the number has no such
    /// template: then no opt-in request can be sent.
    pub status: String,
}

#[derive(Debug, serde::Deserialize, ToSchema)]
pub struct SetOptInTemplate {
    /// The organization (yours, or one below it); yours when absent.
    pub org_id: Option<String>,
    /// The template's name; `null` removes the organization's own choice (the parent's applies).
    pub name: Option<String>,
    pub language: Option<String>,
}

#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
pub struct OrgQuery {
    /// The organization (yours, or one below it); yours when absent.
    pub org_id: Option<String>,
}

fn opt_in_setting(c: &mut dyn openline_store::Conn, org_id: &str) -> Result<OptInTemplateSetting, StoreError> {
    let (name, language) = consent_flow::opt_in_template_for(c, org_id)?;
    let own = openline_store::pacing::own_opt_in_template(c, org_id)?.is_some();
    let status = whatsapp_template(c, org_id, &name, &language)?
        .map_or("missing", |t| t.template.status.as_str())
        .to_owned();
    Ok(OptInTemplateSetting {
        org_id: org_id.to_owned(),
        name,
        language,
        own_setting: own,
        status,
    })
}

/// The template with this name and language on the WhatsApp number the organization sends from
/// (its own or inherited), else on the first number of an organization below it (a parent's
/// setting applies to the sub-organizations that own the numbers).
fn whatsapp_template(
    c: &mut dyn openline_store::Conn,
    org_id: &str,
    name: &str,
    language: &str,
) -> Result<Option<templates::TemplateRecord>, StoreError> {
    let mut candidates: Vec<senders::Sender> = senders::for_org(c, org_id, Channel::Whatsapp)?.into_iter().collect();
    let below = orgs::Scope {
        org_ids: orgs::subtree(c, org_id)?,
    };
    candidates.extend(
        senders::list(c, &below)?
            .into_iter()
            .filter(|s| s.channel == Channel::Whatsapp),
    );
    for sender in candidates {
        if let Some(t) = templates::find(c, &sender.id, name, language)? {
            return Ok(Some(t));
        }
    }
    Ok(None)
}

/// `GET /api/v1/settings/opt-in-template`: the opt-in template your organization (or `org_id`, one
/// you oversee) sends, and whether it is approved for its WhatsApp number.
#[utoipa::path(get, path = "/api/v1/settings/opt-in-template", tag = "consent", params(OrgQuery),
    responses((status = 200, body = OptInTemplateSetting), (status = 404, body = ErrorBody)))]
pub async fn get_opt_in_template(
    State(st): State<AppState>,
    me: CurrentUser,
    axum::extract::Query(q): axum::extract::Query<OrgQuery>,
) -> Result<Json<OptInTemplateSetting>, AppError> {
    let org_id = q.org_id.unwrap_or_else(|| me.user.org_id.clone());
    if !me.scope.contains(&org_id) {
        return Err(AppError::not_found("organization"));
    }
    Ok(Json(st.store.read(move |c| opt_in_setting(c, &org_id)).await?))
}

/// `PUT /api/v1/settings/opt-in-template` (admins): chooses the opt-in template of your organization
/// (or of `org_id`, one below it; sub-organizations inherit it unless they choose their own). The
/// template must exist for the organization's WhatsApp number (`template_not_found`) and be able to
/// carry an opt-in (`opt_in_template_unsuitable`: its first two buttons Yes and No quick replies, at
/// most one body parameter, no image header, no URL button ending in `{{1}}`); it may still be
/// pending, but opt-in requests are refused until it is approved.
#[utoipa::path(put, path = "/api/v1/settings/opt-in-template", tag = "consent", request_body = SetOptInTemplate,
    responses((status = 200, body = OptInTemplateSetting), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn put_opt_in_template(
    State(st): State<AppState>,
    me: CurrentUser,
    crate::error::ApiJson(req): crate::error::ApiJson<SetOptInTemplate>,
) -> Result<Json<OptInTemplateSetting>, AppError> {
    if !me.user.role.is_admin() {
        return Err(AppError::forbidden("Only admins can choose the opt-in template."));
    }
    let org_id = req.org_id.clone().unwrap_or_else(|| me.user.org_id.clone());
    if !me.scope.contains(&org_id) {
        return Err(AppError::not_found("organization"));
    }
    let choice = match (req.name, req.language) {
        (Some(n), Some(l)) => Some((n, l)),
        (None, None) => None,
        _ => {
            return Err(AppError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "opt_in_template_invalid",
                "Give both the template's name and language, or neither to use the parent organization's.",
            ))
        }
    };
    let actor = crate::api::archive::actor(&me);
    let now = st.now();
    let result = st
        .store
        .write(move |c| {
            if let Some((name, language)) = &choice {
                let Some(record) = whatsapp_template(c, &org_id, name, language)? else {
                    return Ok(Err(AppError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "template_not_found",
                        format!(
                            "There is no template {name:?} in language {language:?} for the organization's WhatsApp number. Submit it first (POST /api/v1/templates)."
                        ),
                    )));
                };
                // Refused now rather than at the first opt-in request, when an agent is waiting.
                if let Err(e) = consent_flow::opt_in_suitability(&record.template) {
                    return Ok(Err(e.into()));
                }
            }
            let chosen = choice.as_ref().map(|(n, l)| (n.as_str(), l.as_str()));
            openline_store::pacing::set_opt_in_template(c, &org_id, chosen, &actor, now)?;
            Ok(Ok(opt_in_setting(c, &org_id)?))
        })
        .await?;
    let setting = result?;
    tracing::info!(user_id = %me.user.id, org_id = %setting.org_id, "opt-in template chosen");
    Ok(Json(setting))
}
