//! Sending messages. Every send passes the pure policy decision in `domain`, then one transaction
//! stores the message, its outbox row and the idempotency key's answer; the dispatcher sends it.

use crate::auth::CurrentUser;
use crate::consent_flow;
use crate::error::{ApiJson, AppError, ErrorBody};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use openline_domain::dlp;
use openline_domain::policy::{decide_send, Outgoing, SendDecision, SendFacts, EARLIER_MESSAGE_WAITING, WINDOW_CLOSED};
use openline_domain::templates::{
    body_parameters, render, send_components, BodyParameters, SendComponents, TemplateButton, TemplateComponent,
    TemplateParams, DYNAMIC_URL_SUFFIX, MAX_URL_CHARS,
};
use openline_domain::{Channel, DomainError, MessageKind};
use openline_store::messages::{self, Message, NewOutbound};
use openline_store::{contacts, conversations, idempotency, orgs, senders, StoreError};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SendMessageRequest {
    pub contact_id: String,
    /// The text to send (1 to 4096 characters). Give either `text` or `template`.
    pub text: Option<String>,
    /// An approved template with its parameters: the only kind of message WhatsApp allows outside
    /// the 24-hour window.
    pub template: Option<TemplateSend>,
    /// `whatsapp` (default) or `sms`.
    pub channel: Option<Channel>,
    /// A file uploaded with `POST /api/v1/media` (a picture, video, audio, document or sticker),
    /// with an optional caption. WhatsApp only; it needs consent and an open window, like text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media: Option<MediaSend>,
}

/// A file to send, by the id `POST /api/v1/media` answered.
#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MediaSend {
    /// The uploaded file's id (`med_…`).
    pub id: String,
    /// Shown under a picture, video or document (at most 1024 characters); checked by DLP like text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
}

/// The longest caption WhatsApp shows under a picture, video or document.
pub const MAX_CAPTION_CHARS: usize = 1024;

#[derive(Debug, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateSend {
    pub name: String,
    pub language: String,
    /// `["Ada", "Thursday"]` for `{{1}}`-style bodies, or `{"name": "Ada"}` for named ones.
    #[serde(default)]
    pub parameters: TemplateParams,
    /// The header's image, required when the template has an image header and refused otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_image: Option<HeaderImage>,
    /// The suffix for each URL button whose address ends in `{{1}}`, in button order: `["A1B2"]`
    /// opens `https://bank.example/appointments/A1B2` for `https://bank.example/appointments/{{1}}`.
    /// One per such button (none for templates without one); no spaces, and the whole address
    /// at most 2000 characters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub url_button_suffixes: Vec<String>,
}

/// An image for a template's image header, fetched by the provider when it sends the message.
#[derive(Debug, Clone, Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HeaderImage {
    /// A public `https://` address of a JPEG or PNG image (at most 2000 characters, no spaces).
    #[schema(example = "https://cdn.bank.example/statement.png")]
    pub link: String,
}

/// What is being sent, resolved inside the transaction.
struct Content {
    kind: MessageKind,
    body: String,
    template: Option<serde_json::Value>,
    /// URL button suffixes: sent to the contact beside the body, so DLP checks them too.
    url_suffixes: Vec<String>,
    outgoing: Outgoing,
    /// A media message's file reference (`{"media_id", "content_type", "sha256", "size_bytes"}`).
    media: Option<serde_json::Value>,
}

/// Resolves the request's text or template (found for the sender, parameters checked and rendered).
fn resolve_content(
    c: &mut dyn openline_store::Conn,
    req: &SendMessageRequest,
    sender_id: &str,
    scope: &orgs::Scope,
) -> Result<Result<Content, AppError>, StoreError> {
    match (&req.text, &req.template, &req.media) {
        (Some(text), None, None) => Ok(Ok(Content {
            kind: MessageKind::Text,
            body: text.clone(),
            template: None,
            url_suffixes: Vec::new(),
            outgoing: Outgoing::FreeForm,
            media: None,
        })),
        (None, None, Some(m)) => resolve_media(c, m, scope),
        (None, Some(t), None) => {
            let Some(record) = openline_store::templates::find(c, sender_id, &t.name, &t.language)? else {
                return Ok(Err(AppError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "template_not_found",
                    format!(
                        "There is no template {:?} in language {:?} for this number.",
                        t.name, t.language
                    ),
                )));
            };
            let body = match render(&record.template, &t.parameters) {
                Ok(b) => b,
                Err(e) => return Ok(Err(e.into())),
            };
            let header_link = t.header_image.as_ref().map(|h| h.link.as_str());
            let extras = match send_components(&record.template, header_link, &t.url_button_suffixes)
                .map_err(AppError::from)
                .and_then(|x| url_lengths(&record.template, &x).map(|()| x))
            {
                Ok(x) => x,
                Err(e) => return Ok(Err(e)),
            };
            // The Cloud API takes body parameters in order; named ones go in order of first appearance.
            let ordered: Vec<String> = match (&t.parameters, body_parameters(&record.template)) {
                (TemplateParams::Positional(v), _) => v.clone(),
                (TemplateParams::Named(map), Ok(BodyParameters::Named { names })) => {
                    names.iter().filter_map(|n| map.get(n).cloned()).collect()
                }
                (TemplateParams::Named(map), _) => map.values().cloned().collect(),
            };
            let mut stored = serde_json::json!({
                "name": record.template.name, "language": record.template.language,
                "body_parameters": ordered, "template_id": record.id,
            });
            // What the dispatcher turns into the header and URL button components.
            if let Some(link) = extras.header_image_link {
                stored["header_image_link"] = link.into();
            }
            if !extras.url_buttons.is_empty() {
                stored["url_buttons"] = serde_json::json!(extras.url_buttons);
            }
            Ok(Ok(Content {
                kind: MessageKind::Template,
                body,
                template: Some(stored),
                url_suffixes: t.url_button_suffixes.clone(),
                outgoing: Outgoing::Template {
                    approved: record.template.status.is_approved(),
                },
                media: None,
            }))
        }
        _ => Ok(Err(AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "text_or_template",
            "Give exactly one of `text`, `template` (with its name, language and parameters) or `media` (an uploaded file's id, with an optional caption).",
        ))),
    }
}

/// Resolves an uploaded file to send: it must be one the user's organizations stored, of a type
/// WhatsApp sends; its caption is the message's body.
fn resolve_media(
    c: &mut dyn openline_store::Conn,
    m: &MediaSend,
    scope: &orgs::Scope,
) -> Result<Result<Content, AppError>, StoreError> {
    let file = match openline_store::media::get(c, scope, &m.id) {
        Ok(f) => f,
        Err(StoreError::NotFound) => return Ok(Err(AppError::not_found("uploaded file"))),
        Err(e) => return Err(e),
    };
    if file.state != openline_store::media::MediaState::Stored {
        return Ok(Err(AppError::new(
            StatusCode::CONFLICT,
            "media_not_ready",
            "This file is not stored yet, so it cannot be sent. Try again in a moment.",
        )));
    }
    let content_type = file.content_type.clone().unwrap_or_default();
    let Some(limit) = super::media::limit_for(&content_type, &[]) else {
        return Ok(Err(AppError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "media_type_unsupported",
            format!("WhatsApp cannot send {content_type:?} files."),
        )));
    };
    let caption = m.caption.clone().unwrap_or_default();
    let chars = caption.chars().count();
    if chars > MAX_CAPTION_CHARS {
        return Ok(Err(AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "caption_too_long",
            format!("The caption has {chars} characters; WhatsApp shows at most {MAX_CAPTION_CHARS}. Shorten it."),
        )));
    }
    if !caption.trim().is_empty()
        && !matches!(
            limit.kind,
            MessageKind::Image | MessageKind::Video | MessageKind::Document
        )
    {
        return Ok(Err(AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "caption_not_supported",
            format!(
                "WhatsApp shows no caption under {} messages. Send the text as its own message.",
                limit.kind
            ),
        )));
    }
    Ok(Ok(Content {
        kind: limit.kind,
        body: caption,
        template: None,
        url_suffixes: Vec::new(),
        outgoing: Outgoing::FreeForm,
        media: Some(serde_json::json!({
            "media_id": file.id, "content_type": content_type, "sha256": file.sha256,
            "size_bytes": file.size_bytes, "filename": file.filename,
        })),
    }))
}

/// A URL button's address with its suffix must stay a URL the provider takes (at most
/// `MAX_URL_CHARS`); the suffix alone is checked by `send_components`.
fn url_lengths(template: &openline_domain::templates::Template, extras: &SendComponents) -> Result<(), AppError> {
    let buttons: Vec<&TemplateButton> = template
        .components
        .iter()
        .filter_map(|c| match c {
            TemplateComponent::Buttons { buttons } => Some(buttons),
            _ => None,
        })
        .flatten()
        .collect();
    for (n, (index, suffix)) in extras.url_buttons.iter().enumerate() {
        let Some(TemplateButton::Url { url, .. }) = buttons.get(*index) else {
            continue;
        };
        let fixed = url.strip_suffix(DYNAMIC_URL_SUFFIX).unwrap_or(url);
        let total = fixed.chars().count() + suffix.chars().count();
        if total > MAX_URL_CHARS {
            return Err(AppError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "template_parameter_invalid",
                format!(
                    "Template parameter for URL button {} makes the button's address {total} characters long; at most {MAX_URL_CHARS} are allowed. Use a shorter suffix.",
                    n + 1
                ),
            ));
        }
    }
    Ok(())
}

/// The refusal an agent sees when DLP blocks a message: it names the rules, never the matched text.
fn dlp_blocked(v: &dlp::DlpVerdict) -> AppError {
    AppError::new(
        StatusCode::UNPROCESSABLE_ENTITY,
        "dlp_blocked",
        format!(
            "Your organization's data-loss policy does not allow this message ({}). Remove the sensitive information and send it again.",
            v.deciding_rules().join(", ")
        ),
    )
}

/// What the transaction decided.
enum Outcome {
    Created(Box<Message>),
    Replayed { status: u16, body: String },
    Refused(AppError),
}

/// `POST /api/v1/messages`: sends a text or an approved template to a contact. A template with an
/// image header needs `template.header_image.link` (https only), and one with URL buttons ending in
/// `{{1}}` needs `template.url_button_suffixes`; missing, extra or malformed ones are refused with
/// 422 `template_parameter_count` or `template_parameter_invalid` before anything is stored.
/// Answers 202 with the message (status `queued`); its status then follows the provider (`accepted`, `sent`, `delivered`, `read` or
/// `failed` with the provider's code and an explanation), by `GET /api/v1/messages/{id}` or live
/// events.
///
/// Idempotent with an `Idempotency-Key` header: a retry with the same key and body returns the first
/// answer (with `Idempotent-Replayed: true`) and sends nothing; the same key with a different body
/// is refused (422 `idempotency_key_reused`).
#[utoipa::path(post, path = "/api/v1/messages", tag = "messages", request_body = SendMessageRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: at most one message per key")),
    responses((status = 202, body = Message), (status = 404, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn send_message(
    State(st): State<AppState>,
    me: CurrentUser,
    headers: HeaderMap,
    ApiJson(req): ApiJson<SendMessageRequest>,
) -> Result<Response, AppError> {
    let key = match headers.get("idempotency-key") {
        None => None,
        Some(v) => {
            let k = v.to_str().map(str::trim).unwrap_or_default().to_owned();
            if k.is_empty() || k.len() > 255 {
                return Err(AppError::bad_request(
                    "invalid_idempotency_key",
                    "Idempotency-Key must be 1 to 255 visible characters.",
                ));
            }
            Some(k)
        }
    };
    let request_hash = hex::encode(Sha256::digest(serde_json::to_vec(&req).map_err(AppError::internal)?));
    let now = st.now();
    let channel = req.channel.unwrap_or(Channel::Whatsapp);
    let outcome = st
        .store
        .write(move |c| {
            if let Some(k) = &key {
                if let Some(prev) = idempotency::find(c, &me.user.id, k)? {
                    if prev.request_hash != request_hash {
                        return Ok(Outcome::Refused(AppError::new(
                            StatusCode::UNPROCESSABLE_ENTITY,
                            "idempotency_key_reused",
                            "This Idempotency-Key was used for a different request. Use a new key for a new message.",
                        )));
                    }
                    return Ok(Outcome::Replayed {
                        status: prev.status,
                        body: prev.body,
                    });
                }
            }
            let contact = match contacts::get(c, &me.scope, &req.contact_id) {
                Ok(ct) => ct,
                Err(StoreError::NotFound) => return Ok(Outcome::Refused(AppError::not_found("contact"))),
                Err(e) => return Err(e),
            };
            if contact.phone.is_none() {
                return Ok(Outcome::Refused(
                    DomainError::new(
                        "contact_has_no_phone",
                        "This contact has no phone number to send to. Add one to the contact first.",
                    )
                    .into(),
                ));
            }
            let Some(sender) = senders::for_org(c, &contact.org_id, channel)? else {
                return Ok(Outcome::Refused(AppError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "no_sender",
                    format!("Your organization has no {channel} number to send from. An admin can add one."),
                )));
            };
            if req.media.is_some() && channel != Channel::Whatsapp {
                return Ok(Outcome::Refused(AppError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "media_not_supported_on_sms",
                    "Pictures and files are sent through WhatsApp; on SMS, openline sends text only.",
                )));
            }
            let mut content = match resolve_content(c, &req, &sender.id, &me.scope)? {
                Ok(content) => content,
                Err(e) => return Ok(Outcome::Refused(e)),
            };
            // Data-loss prevention: a blocked message is never stored or sent; a redacted one is sent
            // masked, with the original kept only in the archive.
            let rules = openline_store::dlp::rules_for(c, &contact.org_id)?;
            let verdict =
                (!rules.is_empty()).then(|| dlp::scan(&rules, openline_domain::Direction::Out, &content.body));
            // A suffix cannot be masked (it would break the link): any Block or Redact match refuses.
            if let Some(v) = (!rules.is_empty())
                .then(|| {
                    content
                        .url_suffixes
                        .iter()
                        .map(|s| dlp::scan(&rules, openline_domain::Direction::Out, s))
                        .find(|v| v.is_blocked() || v.redacted.is_some())
                })
                .flatten()
            {
                return Ok(Outcome::Refused(dlp_blocked(&v)));
            }
            let mut original = None;
            if let Some(v) = &verdict {
                let masks = v.redacted.is_some();
                if v.is_blocked() || (masks && content.kind == MessageKind::Template) {
                    return Ok(Outcome::Refused(dlp_blocked(v)));
                }
                if let Some(redacted) = &v.redacted {
                    original = Some(std::mem::replace(&mut content.body, redacted.clone()));
                }
            }
            let facts = SendFacts {
                channel,
                author_role: me.user.role,
                org_whatsapp_enabled: orgs::whatsapp_enabled(c, &contact.org_id)?,
                user_whatsapp_enabled: me.user.whatsapp_enabled,
                // A file without a caption is still something to send.
                text: if content.media.is_some() && content.body.trim().is_empty() {
                    content.kind.as_str()
                } else {
                    &content.body
                },
                outgoing: content.outgoing,
                contact: consent_flow::contact_facts(c, &contact.org_id, &contact.id, &sender.id, now)?,
            };
            let mut queue_reason = match decide_send(&facts, now) {
                SendDecision::SendNow => None,
                SendDecision::Queue { reason, .. } => Some(reason),
                SendDecision::Reject(e) => return Ok(Outcome::Refused(e.into())),
            };
            // Order is kept: while earlier messages to this contact wait, a new one waits behind them.
            // A template passes free text held only for the closed window: it is what restarts the
            // conversation (the same rule as `release_queued`).
            if queue_reason.is_none() && channel == Channel::Whatsapp {
                let held = messages::queued_for_contact(c, &contact.org_id, &contact.id)?;
                let restarts = matches!(facts.outgoing, Outgoing::Template { .. })
                    && held
                        .iter()
                        .all(|m| matches!(m.queue_reason.as_deref(), Some(WINDOW_CLOSED | EARLIER_MESSAGE_WAITING)));
                if !held.is_empty() && !restarts {
                    queue_reason = Some(EARLIER_MESSAGE_WAITING);
                }
            }
            let conversation_id =
                conversations::find_or_create_open(c, &contact.org_id, channel, &contact.id, &sender.id, now)?;
            conversations::join(c, &conversation_id, &me.user.id, now)?;
            let message = messages::insert_outbound_with_media(
                c,
                &NewOutbound {
                    org_id: &contact.org_id,
                    conversation_id: &conversation_id,
                    sender_id: &sender.id,
                    author_user_id: Some(&me.user.id),
                    kind: content.kind,
                    // A file's caption is its body; a file without one has none.
                    body: Some(content.body.as_str()).filter(|b| content.media.is_none() || !b.trim().is_empty()),
                    template: content.template.as_ref(),
                    queue_reason,
                    business_initiated: !facts.contact.window.is_open(),
                    now,
                },
                content.media.as_ref(),
            )?;
            if let Some(media_id) = req.media.as_ref().map(|m| m.id.as_str()) {
                openline_store::media::link_to_message(c, media_id, &message.id, now)?;
            }
            let message = match verdict.filter(|v| v.action.is_some()) {
                Some(v) => {
                    openline_store::dlp::record_verdict(c, &message.org_id, &message.id, &v, original.as_deref(), now)?;
                    messages::get_any(c, &message.id)?
                }
                None => message,
            };
            if let Some(k) = &key {
                let body = serde_json::to_string(&message).map_err(|e| StoreError::Decode(e.to_string()))?;
                idempotency::save(
                    c,
                    &me.user.id,
                    k,
                    &idempotency::StoredResponse {
                        request_hash,
                        status: 202,
                        body,
                    },
                    now,
                )?;
            }
            Ok(Outcome::Created(Box::new(message)))
        })
        .await?;
    match outcome {
        Outcome::Created(message) => {
            st.dispatcher_wake.notify_one();
            st.events.message("message.created", &message);
            Ok((StatusCode::ACCEPTED, Json(*message)).into_response())
        }
        Outcome::Replayed { status, body } => {
            let mut res = (
                StatusCode::from_u16(status).unwrap_or(StatusCode::ACCEPTED),
                [(
                    axum::http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                body,
            )
                .into_response();
            res.headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            Ok(res)
        }
        Outcome::Refused(e) => Err(e),
    }
}

/// `GET /api/v1/messages/{id}`: one message with its current delivery status.
#[utoipa::path(get, path = "/api/v1/messages/{id}", tag = "messages", params(("id" = String, Path)),
    responses((status = 200, body = Message), (status = 404, body = ErrorBody)))]
pub async fn get_message(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<Message>, AppError> {
    let scope = me.scope.clone();
    st.store
        .read(move |c| messages::get(c, &scope, &id))
        .await
        .map(Json)
        .map_err(|e| match e {
            StoreError::NotFound => AppError::not_found("message"),
            other => other.into(),
        })
}

/// `POST /api/v1/messages/{id}/cancel`: withdraws a queued message before it is sent. 409
/// `not_queued` once it has been handed to the provider.
#[utoipa::path(post, path = "/api/v1/messages/{id}/cancel", tag = "messages", params(("id" = String, Path)),
    responses((status = 200, body = Message), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn cancel_message(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<Message>, AppError> {
    if !me.user.role.can_send() {
        return Err(AppError::forbidden("Viewers cannot cancel messages."));
    }
    let (scope, now) = (me.scope.clone(), st.now());
    let m = st
        .store
        .write(move |c| messages::cancel(c, &scope, &id, now))
        .await
        .map_err(|e| match e {
            StoreError::NotFound => AppError::not_found("message"),
            StoreError::Conflict(_) => AppError::new(
                StatusCode::CONFLICT,
                "not_queued",
                "This message is not waiting in the queue any more (it was sent, failed or cancelled).",
            ),
            other => other.into(),
        })?;
    st.events.message("message.status", &m);
    Ok(Json(m))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use openline_domain::templates::{Template, TemplateCategory, TemplateStatus};

    fn with_url(url: &str) -> Template {
        Template {
            name: "t".into(),
            language: "en".into(),
            category: TemplateCategory::Utility,
            components: vec![
                TemplateComponent::Body { text: "Hi".into() },
                TemplateComponent::Buttons {
                    buttons: vec![TemplateButton::Url {
                        text: "Open".into(),
                        url: url.into(),
                    }],
                },
            ],
            status: TemplateStatus::Approved,
        }
    }

    #[test]
    fn a_url_button_address_with_its_suffix_is_at_most_2000_characters() {
        let base = format!("https://bank.example/{}", "p".repeat(1_500));
        let t = with_url(&format!("{base}{DYNAMIC_URL_SUFFIX}"));
        let fits = "s".repeat(MAX_URL_CHARS - base.len());
        let ok = send_components(&t, None, std::slice::from_ref(&fits)).unwrap();
        assert!(url_lengths(&t, &ok).is_ok());
        let long = send_components(&t, None, &[format!("{fits}s")]).unwrap();
        let err = url_lengths(&t, &long).unwrap_err();
        assert_eq!(
            (err.status, err.code),
            (StatusCode::UNPROCESSABLE_ENTITY, "template_parameter_invalid")
        );
    }
}
