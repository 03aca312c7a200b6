//! Messages: one list of threads (WhatsApp and SMS together, newest activity first), a thread with
//! its history, and the composer.
//!
//! The composer's state comes from the same pure decision the send path takes (`decide_send` on the
//! same facts), so what the banner says and what sending does cannot disagree. Sending posts to
//! `/compose`, which calls `api::messages::send_message` itself: policy, DLP, idempotency (a key per
//! rendered form, so a double click sends once) and the journal are the API's.

use crate::api::messages::{SendMessageRequest, TemplateSend};
use crate::consent_flow;
use crate::error::ApiJson;
use crate::state::AppState;
use crate::web::session::{check_csrf, WebError, WebForm, WebUser};
use crate::web::views::{self, Nav};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use openline_domain::consent::ConsentState;
use openline_domain::policy::{decide_send, Outgoing, SendDecision, SendFacts, AWAITING_CONSENT, WINDOW_CLOSED};
use openline_domain::templates::{body_parameters, render, BodyParameters, TemplateComponent, TemplateParams};
use openline_domain::window::Window;
use openline_domain::{Channel, Direction, MessageKind};
use openline_store::contacts::Contact;
use openline_store::conversations::{self, Conversation};
use openline_store::messages::{self, Message};
use openline_store::senders::Sender;
use openline_store::templates::TemplateRecord;
use openline_store::{contacts, orgs, senders, StoreError};
use serde::Deserialize;
use std::collections::BTreeMap;

/// `GET /`: the inbox.
pub async fn home(_user: WebUser) -> Redirect {
    Redirect::to("/messages")
}

/// `GET /messages`: every thread the user may see, newest activity first.
pub async fn list_threads(State(st): State<AppState>, user: WebUser) -> Result<Markup, WebError> {
    let scope = user.me.scope.clone();
    let threads = st
        .store
        .read(move |c| conversations::list(c, &scope, None, 200))
        .await?;
    let now = st.now();
    let content = html! {
        div id="threads" data-live {
            h1 { "Messages" }
            @if threads.is_empty() {
                p class="empty" { "No conversations yet. Open a contact to write to them." }
            }
            ul class="threads" {
                @for t in &threads {
                    li {
                        a class="thread-row" href={ "/messages/" (t.id) } data-channel=(t.channel.as_str()) {
                            (views::channel_icon(t.channel))
                            span class="thread-main" {
                                span class="thread-name" { (contact_label(t.contact_name.as_deref(), t.contact_phone.as_deref())) }
                                span class="thread-preview" { (t.last_message_preview.as_deref().unwrap_or("")) }
                            }
                            span class="thread-meta" {
                                (views::short_time(t.last_activity_at, now))
                                @if t.unread_count > 0 {
                                    span class="badge" aria-label={ (t.unread_count) " unread" } { (t.unread_count) }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(views::layout(&user, "Messages", Nav::Messages, content))
}

fn contact_label(name: Option<&str>, phone: Option<&str>) -> String {
    name.or(phone).unwrap_or("Unknown contact").to_owned()
}

/// A template chosen in the "+" menu, with the values typed so far.
#[derive(Debug, Default, Deserialize)]
pub struct ThreadQuery {
    pub template: Option<String>,
    #[serde(flatten)]
    pub params: BTreeMap<String, String>,
}

/// Everything the thread page shows.
struct ThreadData {
    contact: Contact,
    channel: Channel,
    conversation: Option<Conversation>,
    messages: Vec<Message>,
    /// The files of the thread's messages: state and content type, by message id.
    media: std::collections::HashMap<String, (openline_store::media::MediaState, Option<String>)>,
    composer: ComposerState,
    templates: Vec<TemplateRecord>,
    /// Who takes part (for a thread that exists).
    participants: Option<crate::web::participants::PanelData>,
}

/// What the policy says about writing to this contact on this channel now.
struct ComposerState {
    sender: Option<Sender>,
    decision: SendDecision,
    consent: ConsentState,
    window: Window,
    opt_in_possible_at: Option<i64>,
}

fn composer_state(
    c: &mut dyn openline_store::Conn,
    user: &WebUser,
    contact: &Contact,
    channel: Channel,
    now: i64,
) -> Result<ComposerState, StoreError> {
    let sender = senders::for_org(c, &contact.org_id, channel)?;
    let Some(s) = &sender else {
        return Ok(ComposerState {
            sender: None,
            decision: SendDecision::Reject(openline_domain::DomainError::new(
                "no_sender",
                "Your organization has no number to send from on this channel. An admin can add one.",
            )),
            consent: ConsentState::Unknown,
            window: Window::Closed { since: None },
            opt_in_possible_at: None,
        });
    };
    let facts = consent_flow::contact_facts(c, &contact.org_id, &contact.id, &s.id, now)?;
    let send = SendFacts {
        channel,
        author_role: user.me.user.role,
        org_whatsapp_enabled: orgs::whatsapp_enabled(c, &contact.org_id)?,
        user_whatsapp_enabled: user.me.user.whatsapp_enabled,
        // Any non-empty text: the question is whether a message may go, not this one.
        text: "…",
        outgoing: Outgoing::FreeForm,
        contact: facts,
    };
    let opt_in_possible_at = match (
        openline_domain::consent::may_request_opt_in(facts.consent, facts.last_opt_in_request_at, now),
        facts.last_opt_in_request_at,
    ) {
        (Err(e), Some(l)) if e.code == "opt_in_too_soon" => {
            Some(l + openline_domain::consent::OPT_IN_REQUEST_INTERVAL_MS)
        }
        _ => None,
    };
    Ok(ComposerState {
        decision: decide_send(&send, now),
        consent: facts.consent,
        window: facts.window,
        opt_in_possible_at,
        sender,
    })
}

async fn load_thread(
    st: &AppState,
    user: &WebUser,
    conversation_id: Option<String>,
    contact_id: Option<String>,
    channel: Channel,
) -> Result<ThreadData, WebError> {
    let scope = user.me.scope.clone();
    let now = st.now();
    let u = user.clone();
    st.store
        .read(move |c| {
            let (conversation, messages, contact_id, channel) = match conversation_id {
                Some(id) => {
                    let conv = conversations::get(c, &scope, &id)?;
                    let msgs = messages::list_for_conversation(c, &scope, &id, None, 200)?;
                    let (ct, ch) = (conv.contact_id.clone(), conv.channel);
                    (Some(conv), msgs, ct, ch)
                }
                None => (None, Vec::new(), contact_id.unwrap_or_default(), channel),
            };
            let mut media: std::collections::HashMap<_, _> = match &conversation {
                Some(conv) => openline_store::media::states_in_conversation(c, &scope, &conv.id)?
                    .into_iter()
                    .map(|(id, state, content_type)| (id, (state, content_type)))
                    .collect(),
                None => std::collections::HashMap::new(),
            };
            // An upload sent again is linked to its first message; later ones name it.
            for m in &messages {
                if media.contains_key(&m.id) {
                    continue;
                }
                let Some(upload) = m.media.as_ref().and_then(|v| v["media_id"].as_str()) else {
                    continue;
                };
                match openline_store::media::get(c, &scope, upload) {
                    Ok(f) => {
                        media.insert(m.id.clone(), (f.state, f.content_type));
                    }
                    Err(StoreError::NotFound) => {}
                    Err(e) => return Err(e),
                }
            }
            let contact = contacts::get(c, &scope, &contact_id)?;
            let composer = composer_state(c, &u, &contact, channel, now)?;
            let templates = match (&composer.sender, channel) {
                (Some(s), Channel::Whatsapp) => {
                    openline_store::templates::list_for_senders(c, std::slice::from_ref(&s.id))?
                        .into_iter()
                        // The opt-in request goes only through the opt-in flow (it records consent).
                        .filter(|t| t.template.status.is_approved() && t.template.name != consent_flow::OPT_IN_TEMPLATE)
                        .collect()
                }
                _ => Vec::new(),
            };
            let participants = match &conversation {
                Some(conv) => Some(crate::web::participants::load(c, &scope, &conv.id)?),
                None => None,
            };
            Ok(ThreadData {
                participants,
                contact,
                channel,
                conversation,
                messages,
                media,
                composer,
                templates,
            })
        })
        .await
        .map_err(|e| match e {
            StoreError::NotFound => WebError::not_found("conversation"),
            other => other.into(),
        })
}

/// What the composer shows besides the state: an error from the last attempt, the text to keep.
#[derive(Debug, Default)]
struct Draft {
    error: Option<String>,
    text: String,
    template: Option<String>,
    params: BTreeMap<String, String>,
}

/// `GET /messages/{id}`: a thread with its history and the composer. `?template=ID` opens a
/// template in the composer, with `p1`…`pN` (or `n_NAME`) as parameter values for the preview.
///
/// Opening a thread with unread messages reads it, and so does a new message arriving while the
/// agent has it in view (the page's live refresh fetches it again): the API's own
/// `POST /api/v1/conversations/{id}/read` path, so unread goes back to 0 and the contact's latest
/// message gets its read receipt at most once. A refresh of a page the agent cannot see (a
/// background tab: `X-Openline-Visible: 0`) reads nothing; the page refreshes when it comes back
/// into view, and reads then.
pub async fn show_thread(
    State(st): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    Query(q): Query<ThreadQuery>,
) -> Result<Markup, WebError> {
    let data = load_thread(&st, &user, Some(id.clone()), None, Channel::Whatsapp).await?;
    if data.conversation.as_ref().is_some_and(|c| c.unread_count > 0) && in_view(&headers) {
        crate::api::messages::read_thread(&st, &user.me, id).await?;
    }
    let draft = Draft {
        template: q.template,
        params: q.params,
        ..Draft::default()
    };
    Ok(thread_page(&st, &user, &data, &draft))
}

/// Whether the agent sees the page being rendered: always for a navigation; for the live refresh
/// (`X-Requested-With: fetch`), what the page said of itself in `X-Openline-Visible`.
fn in_view(headers: &HeaderMap) -> bool {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    header("x-requested-with") != Some("fetch") || header("x-openline-visible") == Some("1")
}

#[derive(Debug, Deserialize)]
pub struct CancelForm {
    pub csrf: Option<String>,
}

/// `POST /messages/{id}/cancel`: withdraws a held message (through `api::messages::cancel_message`)
/// and shows its thread again.
pub async fn cancel_queued(
    State(st): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    WebForm(form): WebForm<CancelForm>,
) -> Result<Response, WebError> {
    check_csrf(&user, &headers, &st, form.csrf.as_deref())?;
    let axum::Json(m) = crate::api::messages::cancel_message(State(st), user.me.clone(), Path(id)).await?;
    Ok(Redirect::to(&format!("/messages/{}", m.conversation_id)).into_response())
}

#[derive(Debug, Deserialize)]
pub struct WriteQuery {
    pub channel: Option<Channel>,
    pub template: Option<String>,
    #[serde(flatten)]
    pub params: BTreeMap<String, String>,
}

/// `GET /contacts/{id}/write?channel=sms|whatsapp`: the contact's latest thread on that channel,
/// or an empty one to start.
pub async fn write_to_contact(
    State(st): State<AppState>,
    user: WebUser,
    Path(contact_id): Path<String>,
    Query(q): Query<WriteQuery>,
) -> Result<Response, WebError> {
    let channel = q.channel.unwrap_or(Channel::Whatsapp);
    let scope = user.me.scope.clone();
    let cid = contact_id.clone();
    let existing = st
        .store
        .read(move |c| openline_store::web_contacts::thread_ids(c, &scope, &cid, Some(channel)))
        .await?;
    if let Some(id) = existing.first() {
        return Ok(Redirect::to(&format!("/messages/{id}")).into_response());
    }
    let data = load_thread(&st, &user, None, Some(contact_id), channel)
        .await
        .map_err(|e| {
            if e.status == StatusCode::NOT_FOUND {
                WebError::not_found("contact")
            } else {
                e
            }
        })?;
    let draft = Draft {
        template: q.template,
        params: q.params,
        ..Draft::default()
    };
    Ok(thread_page(&st, &user, &data, &draft).into_response())
}

fn thread_page(st: &AppState, user: &WebUser, data: &ThreadData, draft: &Draft) -> Markup {
    let name = contact_label(data.contact.name.as_deref(), data.contact.phone.as_deref());
    let content = html! {
        div class="thread" {
            header class="thread-head" {
                a class="back" href="/messages" { "← Messages" }
                h1 {
                    (views::channel_icon(data.channel))
                    " "
                    a href={ "/contacts/" (data.contact.id) } { (name) }
                }
                @if let Some(p) = &data.contact.phone { span class="muted" { (p) } }
            }
            @if let Some(p) = &data.participants { (crate::web::participants::panel(user, p)) }
            div id="history" class="history" data-live aria-live="polite" {
                @if data.messages.is_empty() {
                    p class="empty" { "No messages yet." }
                }
                @for m in &data.messages {
                    (message_view(user, m, data.media.get(&m.id)))
                }
            }
            (composer(st, user, data, draft))
        }
    };
    views::layout(user, &name, Nav::Messages, content)
}

/// A message's file: a stored picture inline (served by the media API to this session), anything
/// else as a link or a note saying where fetching it stands.
fn media_view(m: &Message, media: Option<&(openline_store::media::MediaState, Option<String>)>) -> Markup {
    use openline_store::media::MediaState;
    let label = match m.kind {
        MessageKind::Image => "Picture",
        MessageKind::Sticker => "Sticker",
        MessageKind::Video => "Video",
        MessageKind::Audio => "Audio",
        MessageKind::Document => "Document",
        _ => "File",
    };
    let src = format!("/api/v1/media/{}", m.id);
    let picture = media.and_then(|(_, t)| t.as_deref()).is_some_and(|t| {
        matches!(
            t.split(';').next().unwrap_or_default().trim(),
            "image/jpeg" | "image/png" | "image/webp"
        )
    });
    html! {
        @match media.map(|(s, _)| *s) {
            Some(MediaState::Stored) if picture => {
                a class="media media-link" href=(src) target="_blank" rel="noopener" {
                    img class="media-img" src=(src) alt={ (label) (if m.direction == Direction::In { " from the contact" } else { " sent" }) } loading="lazy";
                }
            }
            Some(MediaState::Stored) => {
                p class="media" { a href=(src) { "Open the " (label.to_lowercase()) } }
            }
            Some(MediaState::Pending) => {
                p class="media muted" { (label) " (fetching from WhatsApp…)" }
            }
            Some(MediaState::Failed) => {
                p class="media muted" { (label) " (could not be fetched from WhatsApp; ask the contact to send it again)" }
            }
            None => {
                p class="media muted" { (label) }
            }
        }
    }
}

fn message_view(
    user: &WebUser,
    m: &Message,
    media: Option<&(openline_store::media::MediaState, Option<String>)>,
) -> Markup {
    let class = match m.direction {
        Direction::In => "msg msg-in",
        Direction::Out => "msg msg-out",
        Direction::System => "msg msg-system",
    };
    html! {
        div class=(class) id={ "m-" (m.id) } data-status=(m.status.as_str()) {
            @if m.direction == Direction::System {
                p class="notice-text" { (m.body.as_deref().unwrap_or("")) }
            } @else {
                @if m.kind == MessageKind::Template {
                    span class="tag" { "Template" }
                }
                @if m.media.is_some() {
                    (media_view(m, media))
                }
                @if let Some(b) = &m.body {
                    p class="body" { (b) }
                }
                p class="meta" {
                    (views::time(m.created_at))
                    @if m.direction == Direction::Out { " " (views::delivery(m)) }
                    @if m.dlp_flagged { " " span class="tag tag-warn" { "Flagged by DLP" } }
                }
                @if m.status == openline_domain::DeliveryStatus::Queued && m.queue_reason.is_some() && user.me.user.role.can_send() {
                    form method="post" action={ "/messages/" (m.id) "/cancel" } class="inline" {
                        input type="hidden" name="csrf" value=(user.csrf);
                        button type="submit" class="link" { "Cancel this message" }
                    }
                }
            }
        }
    }
}

/// The banner above the composer: why it is enabled or not, and what the agent can do.
fn state_banner(user: &WebUser, data: &ThreadData, now: i64) -> Markup {
    let name = contact_label(data.contact.name.as_deref(), data.contact.phone.as_deref());
    let s = &data.composer;
    let csrf = &user.csrf;
    match &s.decision {
        SendDecision::Reject(e) if e.code == "not_on_whatsapp" => views::banner(
            "warn",
            html! {
                p { (name) " is not on WhatsApp. Send an SMS instead?" }
                p class="actions" {
                    a class="button primary" href={ "/contacts/" (data.contact.id) "/write?channel=sms" } { "Yes, send an SMS" }
                    a class="button" href="/contacts" { "No" }
                }
            },
        ),
        SendDecision::Reject(e) if e.code == "consent_refused" => views::banner(
            "error",
            html! { p { (name) " declined or opted out of WhatsApp messages, so you cannot write to them here. They can opt in again at any time by replying YES." } },
        ),
        SendDecision::Reject(e) => views::banner("error", html! { p data-code=(e.code) { (e.message) } }),
        SendDecision::Queue { reason, explanation } if *reason == AWAITING_CONSENT => match s.consent {
            ConsentState::Pending { requested_at } => views::banner(
                "info",
                html! {
                    p { "Waiting for " (name) " to answer the opt-in request sent " (views::time(requested_at)) ". Messages you write now are held and sent once they agree." }
                    @if let Some(at) = s.opt_in_possible_at {
                        p class="muted" { "If they do not answer, a new request is possible from " (views::time(at)) "." }
                    }
                },
            ),
            _ => views::banner(
                "info",
                html! {
                    p { (name) " has not agreed to WhatsApp messages yet. Send the opt-in request; messages you write now are held until they agree." }
                    form method="post" action={ "/contacts/" (data.contact.id) "/opt-in" } {
                        input type="hidden" name="csrf" value=(csrf);
                        button type="submit" class="primary" { "Send opt-in request" }
                    }
                },
            ),
        },
        SendDecision::Queue { reason, .. } if *reason == WINDOW_CLOSED => views::banner(
            "warn",
            html! {
                p data-code="window_closed" {
                    "24 hours have passed since " (name) " last wrote. Send a template to restart the conversation (open the + menu); a message written now waits until they write again."
                }
            },
        ),
        SendDecision::Queue { explanation, .. } => views::banner("info", html! { p { (explanation) } }),
        SendDecision::SendNow => match (data.channel, s.window) {
            (Channel::Whatsapp, Window::Open { until }) => views::banner(
                "ok",
                html! {
                    p {
                        "Conversation window open: "
                        // The server's own `now` travels with the end time: the script counts
                        // down from their difference, not from the browser's clock (which may be
                        // skewed, or behind the demo clock).
                        span data-countdown=(until) data-now=(now) { (views::duration(until - now)) }
                        " left to reply freely. After that, only templates can restart it."
                    }
                },
            ),
            _ => html! {},
        },
    }
}

/// The composer: text, the "+" menu (templates, pictures), and the state banner above.
fn composer(st: &AppState, user: &WebUser, data: &ThreadData, draft: &Draft) -> Markup {
    let now = st.now();
    let disabled = matches!(data.composer.decision, SendDecision::Reject(_));
    let idem = crate::auth::random_secret();
    let here = match &data.conversation {
        Some(c) => format!("/messages/{}", c.id),
        None => format!("/contacts/{}/write", data.contact.id),
    };
    let window_closed =
        matches!(&data.composer.decision, SendDecision::Queue { reason, .. } if *reason == WINDOW_CLOSED);
    let chosen = draft
        .template
        .as_ref()
        .and_then(|id| data.templates.iter().find(|t| &t.id == id));
    html! {
        section id="composer" class="composer" data-live aria-label="Write a message" {
            (state_banner(user, data, now))
            @if let Some(e) = &draft.error {
                p class="notice notice-error" role="alert" id="send-error" { (e) }
            }
            @if let Some(t) = chosen {
                (template_form(user, data, t, draft, &here, &idem))
            }
            form method="post" action="/compose" class="composer-form" {
                input type="hidden" name="csrf" value=(user.csrf);
                input type="hidden" name="idempotency_key" value=(idem);
                input type="hidden" name="contact_id" value=(data.contact.id);
                input type="hidden" name="channel" value=(data.channel.as_str());
                @if data.channel == Channel::Whatsapp && !disabled {
                    details class="plus" open[window_closed && chosen.is_none()] {
                        summary aria-label="More: templates and pictures" { "+" }
                        div class="plus-menu" {
                            h2 { "Templates" }
                            @if data.templates.is_empty() {
                                p class="muted" { "No approved templates for this number yet." }
                            }
                            ul {
                                @for t in &data.templates {
                                    li {
                                        a href={ (here) "?template=" (t.id) "#composer" } data-template=(t.template.name) {
                                            strong { (t.template.name) } " (" (t.template.language) ")"
                                            span class="muted template-body" { (body_text(t)) }
                                        }
                                    }
                                }
                            }
                            h2 { "Pictures" }
                            // The fields belong to the picture form below (forms cannot nest).
                            label for="picture-file" { "Choose a picture (JPEG or PNG, up to 5 MB)" }
                            input id="picture-file" name="file" type="file" form="picture-form"
                                accept="image/jpeg,image/png" capture="environment" required;
                            label for="picture-caption" { "Caption (optional)" }
                            input id="picture-caption" name="caption" type="text" form="picture-form" maxlength="1024";
                            button type="submit" form="picture-form" class="primary" { "Send picture" }
                        }
                    }
                }
                label for="text" class="sr-only" { "Message" }
                textarea id="text" name="text" rows="2" placeholder=(if disabled { "You cannot write here now" } else { "Write a message" })
                    disabled[disabled] maxlength="4096" { (draft.text) }
                button type="submit" class="primary send" disabled[disabled] { "Send" }
            }
            @if data.channel == Channel::Whatsapp && !disabled {
                form id="picture-form" method="post" action="/compose/picture" enctype="multipart/form-data" class="picture-form" {
                    input type="hidden" name="csrf" value=(user.csrf);
                    input type="hidden" name="idempotency_key" value={ (idem) "-picture" };
                    input type="hidden" name="contact_id" value=(data.contact.id);
                    input type="hidden" name="channel" value=(data.channel.as_str());
                }
            }
        }
    }
}

fn body_text(t: &TemplateRecord) -> String {
    t.template
        .components
        .iter()
        .find_map(|c| match c {
            TemplateComponent::Body { text } => Some(text.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

/// The parameter names a template's body needs, as form fields: `p1`… or `n_NAME`.
fn param_fields(t: &TemplateRecord) -> Vec<(String, String)> {
    match body_parameters(&t.template) {
        Ok(BodyParameters::Positional { count }) => (1..=count)
            .map(|i| (format!("p{i}"), format!("Value for {{{{{i}}}}}")))
            .collect(),
        Ok(BodyParameters::Named { names }) => names
            .into_iter()
            .map(|n| (format!("n_{n}"), format!("Value for {{{{{n}}}}}")))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// The template's parameters from form fields, in the shape sending takes.
fn template_params(t: &TemplateRecord, fields: &BTreeMap<String, String>) -> TemplateParams {
    match body_parameters(&t.template) {
        Ok(BodyParameters::Named { names }) => TemplateParams::Named(
            names
                .into_iter()
                .map(|n| {
                    let v = fields.get(&format!("n_{n}")).cloned().unwrap_or_default();
                    (n, v)
                })
                .collect(),
        ),
        Ok(BodyParameters::Positional { count }) => TemplateParams::Positional(
            (1..=count)
                .map(|i| fields.get(&format!("p{i}")).cloned().unwrap_or_default())
                .collect(),
        ),
        Err(_) => TemplateParams::default(),
    }
}

/// The chosen template: its parameters to complete, a preview, and send.
fn template_form(
    user: &WebUser,
    data: &ThreadData,
    t: &TemplateRecord,
    draft: &Draft,
    here: &str,
    idem: &str,
) -> Markup {
    let fields = param_fields(t);
    let params = template_params(t, &draft.params);
    let complete = fields
        .iter()
        .all(|(k, _)| draft.params.get(k).is_some_and(|v| !v.trim().is_empty()));
    let preview = if complete {
        render(&t.template, &params).map_err(|e| e.message)
    } else {
        Ok(body_text(t))
    };
    html! {
        div class="template-pick" id="template-pick" {
            h2 { "Template " strong { (t.template.name) } " (" (t.template.language) ")" }
            form method="get" action=(here) class="template-params" {
                input type="hidden" name="template" value=(t.id);
                @for (key, label) in &fields {
                    label for=(key) { (label) }
                    input id=(key) name=(key) type="text" maxlength="1024" value=(draft.params.get(key).map(String::as_str).unwrap_or(""));
                }
                @if !fields.is_empty() {
                    button type="submit" { "Preview" }
                }
            }
            div class="preview" aria-label="Preview" data-testid="template-preview" data-template-body=(body_text(t)) {
                @match &preview {
                    Ok(text) => p { (text) },
                    Err(e) => p class="notice notice-error" { (e) },
                }
            }
            form method="post" action="/compose" {
                input type="hidden" name="csrf" value=(user.csrf);
                input type="hidden" name="idempotency_key" value=(idem);
                input type="hidden" name="contact_id" value=(data.contact.id);
                input type="hidden" name="channel" value="whatsapp";
                input type="hidden" name="template_id" value=(t.id);
                @for (key, _) in &fields {
                    input type="hidden" name=(key) value=(draft.params.get(key).map(String::as_str).unwrap_or(""));
                }
                button type="submit" class="primary" data-send-template disabled[!complete] { "Send template" }
                a class="button" href=(here) { "Cancel" }
            }
        }
    }
}

/// `POST /compose`: sends text or a template through `api::messages::send_message`, then shows the
/// thread; a refusal shows the thread again with the reason and the text kept.
pub async fn send_from_composer(
    State(st): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    WebForm(fields): WebForm<Vec<(String, String)>>,
) -> Result<Response, WebError> {
    let fields: BTreeMap<String, String> = fields.into_iter().collect();
    let get = |k: &str| fields.get(k).map(String::as_str).unwrap_or_default();
    check_csrf(&user, &headers, &st, Some(get("csrf")))?;
    let contact_id = get("contact_id").to_owned();
    let channel = Channel::parse(get("channel")).unwrap_or(Channel::Whatsapp);
    let template_id = Some(get("template_id")).filter(|t| !t.is_empty()).map(str::to_owned);
    let template = match &template_id {
        Some(id) => {
            let (scope, id) = (user.me.scope.clone(), id.clone());
            let t = st
                .store
                .read(move |c| openline_store::templates::get(c, &scope, &id))
                .await
                .map_err(|e| match e {
                    StoreError::NotFound => WebError::not_found("template"),
                    other => other.into(),
                })?;
            Some(t)
        }
        None => None,
    };
    let text = get("text").to_owned();
    let req = SendMessageRequest {
        contact_id: contact_id.clone(),
        text: template.is_none().then(|| text.clone()),
        template: template.as_ref().map(|t| TemplateSend {
            name: t.template.name.clone(),
            language: t.template.language.clone(),
            parameters: template_params(t, &fields),
            header_image: None,
            url_button_suffixes: Vec::new(),
        }),
        channel: Some(channel),
        media: None,
    };
    let mut api_headers = HeaderMap::new();
    let key = get("idempotency_key");
    if !key.is_empty() {
        if let Ok(v) = HeaderValue::from_str(key) {
            api_headers.insert("idempotency-key", v);
        }
    }
    let result =
        crate::api::messages::send_message(State(st.clone()), user.me.clone(), api_headers, ApiJson(req)).await;
    let draft = Draft {
        error: None,
        text,
        template: template_id,
        params: fields,
    };
    after_send(&st, &user, result, contact_id, channel, draft).await
}

/// The largest picture form accepted: WhatsApp's 5 MB for pictures, plus the form's other fields.
pub const MAX_PICTURE_FORM: usize = 5 * 1024 * 1024 + 64 * 1024;

/// `POST /compose/picture`: the composer's picture (multipart: `csrf`, `idempotency_key`,
/// `contact_id`, `channel`, `caption`, `file`). Checked like `POST /api/v1/media` (JPEG or PNG up
/// to 5 MB here), stored, then sent through `api::messages::send_message` like any message. A form
/// sent twice (a double click) sends once.
pub async fn send_picture_from_composer(
    State(st): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    multipart: Result<axum::extract::Multipart, axum::extract::multipart::MultipartRejection>,
) -> Result<Response, WebError> {
    let mut multipart = multipart.map_err(|_| {
        WebError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_form",
            "The picture form could not be read. Reload the page and try again.",
        )
    })?;
    let mut fields: BTreeMap<String, String> = BTreeMap::new();
    let mut file: Option<(axum::body::Bytes, String)> = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(WebError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "media_too_large",
                    "The picture is larger than 5 MB, the most WhatsApp accepts. Choose a smaller picture.",
                ))
            }
            Err(_) => {
                return Err(WebError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_form",
                    "The picture form could not be read. Try again.",
                ))
            }
        };
        let name = field.name().unwrap_or_default().to_owned();
        let content_type = field.content_type().unwrap_or("application/octet-stream").to_owned();
        let bytes = field.bytes().await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                WebError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "media_too_large",
                    "The picture is larger than 5 MB, the most WhatsApp accepts. Choose a smaller picture.",
                )
            } else {
                WebError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_form",
                    "The picture could not be read. Try again.",
                )
            }
        })?;
        if name == "file" {
            file = Some((bytes, content_type));
        } else {
            fields.insert(name, String::from_utf8_lossy(&bytes).into_owned());
        }
    }
    let get = |k: &str| fields.get(k).map(String::as_str).unwrap_or_default();
    // Nothing is stored before the form is known to come from this user's page.
    check_csrf(&user, &headers, &st, Some(get("csrf")))?;
    let contact_id = get("contact_id").to_owned();
    let channel = Channel::parse(get("channel")).unwrap_or(Channel::Whatsapp);
    let caption = get("caption").trim().to_owned();
    let key = get("idempotency_key").to_owned();
    if !key.is_empty() {
        let (uid, k) = (user.me.user.id.clone(), key.clone());
        if let Some(prev) = st
            .store
            .read(move |c| openline_store::idempotency::find(c, &uid, &k))
            .await?
        {
            // Sent already (a second click): show the thread.
            let message: serde_json::Value = serde_json::from_str(&prev.body).unwrap_or_default();
            let conv = message["conversation_id"].as_str().unwrap_or_default();
            return Ok(Redirect::to(&format!("/messages/{conv}")).into_response());
        }
    }
    let upload = match &file {
        None => Err(crate::error::AppError::bad_request(
            "media_missing",
            "Choose a picture to send.",
        )),
        Some((bytes, content_type)) => {
            let content_type = content_type.to_ascii_lowercase();
            match crate::api::media::check_upload(&content_type, bytes) {
                Ok(limit) if limit.kind == MessageKind::Image => Ok((bytes.clone(), content_type)),
                Ok(_) => Err(crate::error::AppError::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "media_type_unsupported",
                    "Choose a JPEG or PNG picture.",
                )),
                Err(e) => Err(e),
            }
        }
    };
    let result = match upload {
        Ok((bytes, content_type)) => {
            let blob = st.blobs.put(&bytes).await.map_err(crate::error::AppError::internal)?;
            let (now, org_id, user_id) = (st.now(), user.me.user.org_id.clone(), user.me.user.id.clone());
            let stored = st
                .store
                .write(move |c| {
                    openline_store::media::insert_uploaded(
                        c,
                        &openline_store::media::NewUpload {
                            org_id: &org_id,
                            user_id: &user_id,
                            content_type: &content_type,
                            filename: None,
                            size_bytes: i64::try_from(blob.size).unwrap_or(i64::MAX),
                            sha256: &blob.sha256,
                            stored_path: &blob.path,
                            now,
                        },
                    )
                })
                .await?;
            let req = SendMessageRequest {
                contact_id: contact_id.clone(),
                text: None,
                template: None,
                channel: Some(channel),
                media: Some(crate::api::messages::MediaSend {
                    id: stored.id,
                    caption: Some(caption.clone()).filter(|c| !c.is_empty()),
                }),
            };
            let mut api_headers = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(&key) {
                if !key.is_empty() {
                    api_headers.insert("idempotency-key", v);
                }
            }
            crate::api::messages::send_message(State(st.clone()), user.me.clone(), api_headers, ApiJson(req)).await
        }
        Err(e) => Err(e),
    };
    after_send(&st, &user, result, contact_id, channel, Draft::default()).await
}

/// What the composer shows once `api::messages::send_message` answered: the thread the message went
/// to, or (refused) the contact's thread again with the reason and `draft`, what was written.
async fn after_send(
    st: &AppState,
    user: &WebUser,
    result: Result<Response, crate::error::AppError>,
    contact_id: String,
    channel: Channel,
    draft: Draft,
) -> Result<Response, WebError> {
    match result {
        Ok(res) => {
            let body = axum::body::to_bytes(res.into_body(), 1024 * 1024)
                .await
                .map_err(crate::error::AppError::internal)?;
            let message: serde_json::Value = serde_json::from_slice(&body).map_err(crate::error::AppError::internal)?;
            let conv = message["conversation_id"].as_str().unwrap_or_default();
            Ok(Redirect::to(&format!("/messages/{conv}")).into_response())
        }
        Err(e) if e.status == StatusCode::NOT_FOUND => Err(e.into()),
        Err(e) => {
            let status = e.status;
            let scope = user.me.scope.clone();
            let cid = contact_id.clone();
            let existing = st
                .store
                .read(move |c| openline_store::web_contacts::thread_ids(c, &scope, &cid, Some(channel)))
                .await?;
            let data = load_thread(st, user, existing.first().cloned(), Some(contact_id), channel).await?;
            let draft = Draft {
                error: Some(e.message),
                ..draft
            };
            Ok((status, thread_page(st, user, &data, &draft)).into_response())
        }
    }
}
