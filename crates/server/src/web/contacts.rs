//! Contacts: search, create and edit, and a contact's details with the SMS and WhatsApp icons and
//! the opt-in flow (ask, then see the outcome arrive: accepted, declined, not on WhatsApp with
//! "send an SMS instead?", or waiting with when a new request becomes possible), and whether they
//! stopped marketing messages.
//!
//! Creating goes through `api::contacts::create_contact` and the opt-in through
//! `api::consent::request_opt_in`, so the checks are the API's.

use crate::api::contacts::CreateContactRequest;
use crate::error::{ApiJson, AppError};
use crate::state::AppState;
use crate::web::session::{check_csrf, require_sender, WebError, WebForm, WebUser};
use crate::web::views::{self, Nav};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use openline_domain::consent::marketing::MarketingPreference;
use openline_domain::consent::ConsentState;
use openline_domain::{Channel, PhoneNumber};
use openline_store::contacts::{self, Contact};
use openline_store::conversations;
use openline_store::StoreError;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
pub struct SearchQuery {
    pub q: Option<String>,
}

fn label(c: &Contact) -> String {
    c.name
        .clone()
        .or_else(|| c.whatsapp_name.clone())
        .or_else(|| c.phone.clone())
        .unwrap_or_else(|| "Unknown contact".into())
}

/// `GET /contacts?q=`: the contacts the user may see, searched by name or number.
pub async fn list_contacts(
    State(st): State<AppState>,
    user: WebUser,
    Query(q): Query<SearchQuery>,
) -> Result<Markup, WebError> {
    let scope = user.me.scope.clone();
    let search = q.q.clone();
    let found = st
        .store
        .read(move |c| contacts::list(c, &scope, search.as_deref(), None, 200))
        .await?;
    let content = html! {
        div class="page-head" {
            h1 { "Contacts" }
            @if user.me.user.role.can_send() {
                a class="button primary" href="/contacts/new" { "New contact" }
            }
        }
        form method="get" action="/contacts" class="search" role="search" {
            label for="q" class="sr-only" { "Search contacts" }
            input id="q" name="q" type="search" placeholder="Search by name or number" value=(q.q.as_deref().unwrap_or(""));
            button type="submit" { "Search" }
        }
        @if found.is_empty() {
            p class="empty" { "No contacts found." }
        }
        ul class="contacts" {
            @for c in &found {
                li {
                    a class="contact-row" href={ "/contacts/" (c.id) } {
                        span class="avatar" aria-hidden="true" { (label(c).chars().next().unwrap_or('?')) }
                        span class="contact-name" { (label(c)) }
                        span class="muted" { (c.phone.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
    };
    Ok(views::layout(&user, "Contacts", Nav::Contacts, content))
}

fn contact_form(user: &WebUser, action: &str, phone: &str, name: &str, error: Option<&str>) -> Markup {
    html! {
        @if let Some(e) = error { p class="notice notice-error" role="alert" id="form-error" { (e) } }
        form method="post" action=(action) class="card form" {
            input type="hidden" name="csrf" value=(user.csrf);
            label for="name" { "Name" }
            input id="name" name="name" type="text" maxlength="200" value=(name) autocomplete="off";
            label for="phone" { "Mobile number (international format, e.g. +447700900123)" }
            input id="phone" name="phone" type="tel" required value=(phone) autocomplete="off";
            button type="submit" class="primary" { "Save" }
            a class="button" href="/contacts" { "Cancel" }
        }
    }
}

/// `GET /contacts/new`
pub async fn new_contact(user: WebUser) -> Result<Markup, WebError> {
    require_sender(&user)?;
    let content = html! { h1 { "New contact" } (contact_form(&user, "/contacts", "", "", None)) };
    Ok(views::layout(&user, "New contact", Nav::Contacts, content))
}

#[derive(Debug, Deserialize)]
pub struct ContactForm {
    pub csrf: Option<String>,
    pub phone: String,
    pub name: Option<String>,
}

/// `POST /contacts`: creates the contact (through the API's handler) and opens it.
pub async fn create_contact(
    State(st): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    WebForm(form): WebForm<ContactForm>,
) -> Result<Response, WebError> {
    check_csrf(&user, &headers, &st, form.csrf.as_deref())?;
    require_sender(&user)?;
    let req = CreateContactRequest {
        phone: form.phone.clone(),
        name: form.name.clone(),
        org_id: None,
    };
    match crate::api::contacts::create_contact(State(st), user.me.clone(), ApiJson(req)).await {
        Ok((_, axum::Json(c))) => Ok(Redirect::to(&format!("/contacts/{}", c.id)).into_response()),
        Err(e) if e.status.is_client_error() && e.status != StatusCode::FORBIDDEN => {
            let content = html! {
                h1 { "New contact" }
                (contact_form(&user, "/contacts", &form.phone, form.name.as_deref().unwrap_or(""), Some(&e.message)))
            };
            Ok((e.status, views::layout(&user, "New contact", Nav::Contacts, content)).into_response())
        }
        Err(e) => Err(e.into()),
    }
}

async fn load_contact(st: &AppState, user: &WebUser, id: String) -> Result<Contact, WebError> {
    let scope = user.me.scope.clone();
    st.store
        .read(move |c| contacts::get(c, &scope, &id))
        .await
        .map_err(|e| match e {
            StoreError::NotFound => WebError::not_found("contact"),
            other => other.into(),
        })
}

/// `GET /contacts/{id}/edit`
pub async fn edit_contact(
    State(st): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
) -> Result<Markup, WebError> {
    require_sender(&user)?;
    let c = load_contact(&st, &user, id).await?;
    let action = format!("/contacts/{}", c.id);
    let content = html! {
        h1 { "Edit " (label(&c)) }
        (contact_form(&user, &action, c.phone.as_deref().unwrap_or(""), c.name.as_deref().unwrap_or(""), None))
    };
    Ok(views::layout(&user, "Edit contact", Nav::Contacts, content))
}

/// `POST /contacts/{id}`: saves a contact's name and number (journaled with both values).
pub async fn update_contact(
    State(st): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    WebForm(form): WebForm<ContactForm>,
) -> Result<Response, WebError> {
    check_csrf(&user, &headers, &st, form.csrf.as_deref())?;
    require_sender(&user)?;
    let action = format!("/contacts/{id}");
    let name = form
        .name
        .as_deref()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .map(str::to_owned);
    let invalid = match PhoneNumber::parse(&form.phone) {
        Err(e) => Some(e.message),
        Ok(_) if name.as_ref().is_some_and(|n| n.chars().count() > 200) => {
            Some("Names are at most 200 characters.".to_owned())
        }
        Ok(_) => None,
    };
    let result = match (invalid, PhoneNumber::parse(&form.phone)) {
        (None, Ok(phone)) => {
            let (scope, now, cid) = (user.me.scope.clone(), st.now(), id.clone());
            let actor = crate::api::archive::actor(&user.me);
            let phone = phone.as_e164().to_owned();
            st.store
                .write(move |c| {
                    openline_store::web_contacts::update(c, &scope, &cid, &phone, name.as_deref(), &actor, now)
                })
                .await
                .map(|_| ())
                .map_err(|e| match e {
                    StoreError::NotFound => WebError::not_found("contact"),
                    StoreError::Conflict(_) => WebError::new(
                        StatusCode::CONFLICT,
                        "contact_exists",
                        "Another contact of the organization has this phone number.",
                    ),
                    other => other.into(),
                })
        }
        (Some(msg), _) => Err(WebError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_contact", msg)),
        (None, Err(e)) => Err(AppError::from(e).into()),
    };
    match result {
        Ok(()) => Ok(Redirect::to(&action).into_response()),
        Err(e) if e.status == StatusCode::NOT_FOUND => Err(e),
        Err(e) => {
            let content = html! {
                h1 { "Edit contact" }
                (contact_form(&user, &action, &form.phone, form.name.as_deref().unwrap_or(""), Some(&e.message)))
            };
            Ok((e.status, views::layout(&user, "Edit contact", Nav::Contacts, content)).into_response())
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct DetailsQuery {
    /// `opt-in`: ask before sending the opt-in request.
    pub confirm: Option<String>,
}

/// `GET /contacts/{id}`: details, the channel icons, the consent and its outcome, the threads.
pub async fn contact_details(
    State(st): State<AppState>,
    user: WebUser,
    Path(id): Path<String>,
    Query(q): Query<DetailsQuery>,
) -> Result<Markup, WebError> {
    details_page(&st, &user, id, q.confirm.as_deref() == Some("opt-in"), None).await
}

/// The details page; `error` is why the last action was refused.
async fn details_page(
    st: &AppState,
    user: &WebUser,
    id: String,
    confirming: bool,
    error: Option<String>,
) -> Result<Markup, WebError> {
    let contact = load_contact(st, user, id).await?;
    let axum::Json(consent) =
        crate::api::consent::get_consent(State(st.clone()), user.me.clone(), Path(contact.id.clone())).await?;
    let (scope, cid, org) = (user.me.scope.clone(), contact.id.clone(), contact.org_id.clone());
    let (threads, org_whatsapp) = st
        .store
        .read(move |c| {
            let ids = openline_store::web_contacts::thread_ids(c, &scope, &cid, None)?;
            let threads = ids
                .iter()
                .map(|id| conversations::get(c, &scope, id))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((threads, openline_store::orgs::whatsapp_enabled(c, &org)?))
        })
        .await?;
    let now = st.now();
    // The green icon only when WhatsApp is enabled for the organization and the user.
    let whatsapp = org_whatsapp && user.me.user.whatsapp_enabled;
    let name = label(&contact);
    let content = html! {
        div class="contact-card card" {
            div class="page-head" {
                h1 { (name) }
                @if user.me.user.role.can_send() {
                    a class="button" href={ "/contacts/" (contact.id) "/edit" } { "Edit" }
                }
            }
            @if let Some(p) = &contact.phone { p class="muted" { (p) } }
            @if let Some(w) = &contact.whatsapp_name { p class="muted" { "WhatsApp name: " (w) } }
            div class="channels" {
                a class="channel-button" href={ "/contacts/" (contact.id) "/write?channel=sms" } {
                    (views::channel_icon(Channel::Sms)) span { "SMS" }
                }
                @if whatsapp {
                    @let href = if matches!(consent.consent, ConsentState::Unknown) {
                        format!("/contacts/{}?confirm=opt-in", contact.id)
                    } else {
                        format!("/contacts/{}/write?channel=whatsapp", contact.id)
                    };
                    a class="channel-button channel-wa" href=(href) data-testid="whatsapp-button" {
                        (views::channel_icon(Channel::Whatsapp)) span { "WhatsApp" }
                    }
                }
            }
            @if let Some(e) = &error {
                p class="notice notice-error" role="alert" id="action-error" { (e) }
            }
            @if whatsapp {
                div id="consent" data-live {
                    (consent_view(user, &contact, &consent, confirming))
                    (marketing_view(&contact, consent.marketing))
                }
            }
        }
        @if !threads.is_empty() {
            h2 { "Threads" }
            ul class="threads" {
                @for t in &threads {
                    li {
                        a class="thread-row" href={ "/messages/" (t.id) } {
                            (views::channel_icon(t.channel))
                            span class="thread-main" {
                                span class="thread-name" {
                                    (if t.channel == Channel::Whatsapp { "WhatsApp" } else { "SMS" }) " · " (t.sender_phone)
                                }
                                span class="thread-preview" { (t.last_message_preview.as_deref().unwrap_or("")) }
                            }
                            span class="thread-meta" { (views::short_time(t.last_activity_at, now)) }
                        }
                    }
                }
            }
        }
    };
    Ok(views::layout(user, &name, Nav::Contacts, content))
}

fn consent_view(
    user: &WebUser,
    contact: &Contact,
    consent: &crate::api::consent::ContactConsent,
    confirming: bool,
) -> Markup {
    let name = label(contact);
    let write = format!("/contacts/{}/write?channel=whatsapp", contact.id);
    let opt_in_form = html! {
        form method="post" action={ "/contacts/" (contact.id) "/opt-in" } class="inline" {
            input type="hidden" name="csrf" value=(user.csrf);
            button type="submit" class="primary" { "Confirm" }
            a class="button" href={ "/contacts/" (contact.id) } { "Cancel" }
        }
    };
    match consent.consent {
        ConsentState::Unknown if confirming => views::banner(
            "info",
            html! {
                p id="opt-in-prompt" { "WhatsApp needs " (name) "'s consent first. Send them an opt-in request?" }
                (opt_in_form)
            },
        ),
        ConsentState::Unknown => views::banner(
            "info",
            html! { p { (name) " has not been asked to receive WhatsApp messages yet. Tap WhatsApp to send the opt-in request." } },
        ),
        ConsentState::Pending { requested_at } => views::banner(
            "info",
            html! {
                p data-consent="pending" { "Opt-in request sent " (views::time(requested_at)) ". Waiting for " (name) "'s answer." }
                @if let Some(at) = consent.opt_in_request_possible_at {
                    p class="muted" { "If they do not answer, you can send a new request from " (views::time(at)) "." }
                }
                p { a href=(write) { "Open the WhatsApp thread" } }
            },
        ),
        ConsentState::Granted { since } => views::banner(
            "ok",
            html! {
                p data-consent="granted" { (name) " agreed to WhatsApp messages (" (views::time(since)) ")." }
                p { a class="button primary" href=(write) { "Write on WhatsApp" } }
            },
        ),
        ConsentState::Refused { since } => views::banner(
            "error",
            html! {
                p data-consent="refused" { (name) " declined WhatsApp messages or opted out (" (views::time(since)) "). Templates and messages are disabled for them. They can opt in at any time by replying YES." }
            },
        ),
        ConsentState::NotOnWhatsapp { .. } => views::banner(
            "warn",
            html! {
                p data-consent="not_on_whatsapp" { (name) " is not a WhatsApp user. Send an SMS instead?" }
                p class="actions" {
                    a class="button primary" href={ "/contacts/" (contact.id) "/write?channel=sms" } { "Yes" }
                    a class="button" href="/contacts" { "No" }
                }
            },
        ),
    }
}

/// Whether the contact stopped marketing messages in WhatsApp (separate from consent: they may
/// still be written to, and sent utility templates).
fn marketing_view(contact: &Contact, marketing: MarketingPreference) -> Markup {
    match marketing {
        MarketingPreference::Stopped { since } => views::banner(
            "warn",
            html! {
                p data-marketing="stopped" { "Marketing messages: stopped on " (views::time(since)) "." }
                p { "WhatsApp marketing templates to " (label(contact)) " are blocked until they resume them in WhatsApp. Utility templates and replies while the conversation window is open still reach them." }
            },
        ),
        MarketingPreference::Allowed { since: Some(since) } => html! {
            p class="muted" data-marketing="allowed" { "Marketing messages: allowed (resumed on " (views::time(since)) ")." }
        },
        MarketingPreference::Allowed { since: None } => html! {
            p class="muted" data-marketing="allowed" { "Marketing messages: allowed." }
        },
    }
}

#[derive(Debug, Deserialize)]
pub struct CsrfOnly {
    pub csrf: Option<String>,
}

/// `POST /contacts/{id}/opt-in`: sends the opt-in request (through the API's handler) and returns
/// to the contact, where the outcome appears as it arrives.
pub async fn send_opt_in(
    State(st): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    WebForm(form): WebForm<CsrfOnly>,
) -> Result<Response, WebError> {
    check_csrf(&user, &headers, &st, form.csrf.as_deref())?;
    let back = format!("/contacts/{id}");
    match crate::api::consent::request_opt_in(State(st.clone()), user.me.clone(), Path(id.clone())).await {
        Ok(_) => Ok(Redirect::to(&back).into_response()),
        // Refused by policy (too soon, already agreed, declined, …): say why on the contact's page.
        Err(e) if e.status.is_client_error() && e.status != StatusCode::NOT_FOUND => {
            let status = e.status;
            let page = details_page(&st, &user, id, false, Some(e.message)).await?;
            Ok((status, page).into_response())
        }
        Err(e) => Err(e.into()),
    }
}
