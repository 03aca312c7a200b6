//! The compliance page's outbound webhooks (admins only, as in the API): each subscription with its
//! state, the end of its secret and its latest delivery attempts with their results; a form to
//! subscribe a URL to event types, whose signing secret is shown on the page that answers it, once;
//! disable and enable. Creating and changing go through `api::webhook_subscriptions` (the same
//! checks, error codes, sealing of the secret and journal entries as the API).

use crate::api::webhook_subscriptions::{self as api_hooks, CreateSubscription, UpdateSubscription};
use crate::state::AppState;
use crate::web::compliance;
use crate::web::session::{check_csrf, WebError, WebForm, WebUser};
use crate::web::views;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use openline_store::webhooks_out::{self, Attempt, Subscription, EVENT_TYPES};

/// Attempts shown per subscription (the API lists more).
const ATTEMPTS_SHOWN: i64 = 5;

fn require_admin(user: &WebUser) -> Result<(), WebError> {
    if user.me.user.role.is_admin() {
        Ok(())
    } else {
        Err(WebError::forbidden("Only admins manage webhook subscriptions."))
    }
}

/// The section listing the subscriptions, with the form to add one.
pub async fn section(st: &AppState, user: &WebUser) -> Result<Markup, WebError> {
    let scope = user.me.scope.clone();
    let subs: Vec<(Subscription, Vec<Attempt>)> = st
        .store
        .read(move |c| {
            let mut out = Vec::new();
            for s in webhooks_out::list(c, &scope)? {
                let attempts = webhooks_out::attempts(c, &scope, &s.id, ATTEMPTS_SHOWN)?;
                out.push((s, attempts));
            }
            Ok(out)
        })
        .await?;
    Ok(html! {
        section class="admin-section" id="webhooks" aria-labelledby="webhooks-h" {
            h2 id="webhooks-h" { "Webhook subscriptions" }
            p class="muted" { "Events are delivered in archive order, signed with the subscription's secret (header Openline-Signature)." }
            @if subs.is_empty() { p class="empty" { "No subscriptions." } }
            @for (s, attempts) in &subs {
                article class="subscription" data-subscription=(s.id) {
                    h3 { (s.url) }
                    p {
                        span class={ "tag" @if s.state != "active" { " tag-warn" } } { (s.state) }
                        " Events: " (s.events.join(", "))
                        @if s.include_sub_organizations { " · with sub-organizations" }
                        " · secret " code { (s.secret_hint) }
                        @if !s.description.is_empty() { " · " (s.description) }
                    }
                    @if let Some(p) = &s.pending {
                        p class="notice notice-warn" {
                            "Retrying event " (p.event_id) " (" (p.attempts) " attempts)"
                            @if let Some(e) = &p.last_error { ": " (e) }
                        }
                    }
                    form method="post" action={ "/compliance/webhooks/" (s.id) "/enabled" } class="inline" {
                        input type="hidden" name="csrf" value=(user.csrf);
                        @if s.state == "disabled" {
                            input type="hidden" name="enabled" value="true";
                            button type="submit" { "Enable" }
                        } @else {
                            input type="hidden" name="enabled" value="false";
                            button type="submit" { "Disable" }
                        }
                    }
                    @if attempts.is_empty() {
                        p class="empty" { "No delivery attempts yet." }
                    } @else {
                        table {
                            caption { "Latest delivery attempts" }
                            thead { tr { th scope="col" { "When" } th scope="col" { "Event" } th scope="col" { "Attempt" } th scope="col" { "Result" } } }
                            tbody {
                                @for a in attempts {
                                    tr {
                                        td { (views::time(a.at)) }
                                        td { (a.event_type) " " code { (a.event_id) } }
                                        td { (a.attempt) }
                                        td data-outcome=(a.outcome) {
                                            (a.outcome)
                                            @if let Some(h) = a.http_status { " · HTTP " (h) }
                                            @if let Some(e) = &a.error { " · " (e) }
                                            " · " (a.duration_ms) " ms"
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h3 { "Subscribe a URL" }
            form method="post" action="/compliance/webhooks" class="stack" {
                input type="hidden" name="csrf" value=(user.csrf);
                label for="hook-url" { "URL" }
                input id="hook-url" type="url" name="url" required placeholder="https://archive.example.com/openline";
                fieldset {
                    legend { "Events" }
                    @for t in EVENT_TYPES {
                        label class="inline" { input type="checkbox" name="events" value=(t) checked; " " (t) }
                    }
                }
                label for="hook-description" { "Description (optional)" }
                input id="hook-description" type="text" name="description" maxlength="500";
                label class="inline" { input type="checkbox" name="include_sub_organizations" value="true"; " Also the sub-organizations' events" }
                label class="inline" { input type="checkbox" name="deliver_existing_events" value="true"; " Deliver the events already in the archive too" }
                button type="submit" { "Subscribe" }
            }
        }
    })
}

/// The subscribe form, read by hand: `events` repeats (one per ticked box), which the plain form
/// extractor does not take into a list.
struct SubscribeForm {
    csrf: Option<String>,
    request: CreateSubscription,
}

fn parse_subscribe_form(body: &[u8]) -> SubscribeForm {
    let mut form = SubscribeForm {
        csrf: None,
        request: CreateSubscription {
            url: String::new(),
            events: Vec::new(),
            description: String::new(),
            include_sub_organizations: false,
            deliver_existing_events: false,
        },
    };
    for (k, v) in url::form_urlencoded::parse(body) {
        match k.as_ref() {
            "csrf" => form.csrf = Some(v.into_owned()),
            "url" => form.request.url = v.into_owned(),
            "events" => form.request.events.push(v.into_owned()),
            "description" => form.request.description = v.into_owned(),
            "include_sub_organizations" => form.request.include_sub_organizations = v == "true",
            "deliver_existing_events" => form.request.deliver_existing_events = v == "true",
            _ => {}
        }
    }
    form
}

/// `POST /compliance/webhooks`: subscribes a URL; the page that answers shows the signing secret,
/// this once (it is stored sealed and never shown again).
pub async fn create_subscription(
    State(st): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let form = parse_subscribe_form(&body);
    check_csrf(&user, &headers, &st, form.csrf.as_deref())?;
    require_admin(&user)?;
    let created = api_hooks::subscribe(&st, &user.me, form.request).await?;
    let banner = views::banner(
        "ok",
        html! {
            p { "Subscribed " (created.subscription.url) ". Its signing secret, shown only now (copy it to the receiver; rotate it if it is lost):" }
            p { code data-testid="webhook-secret" { (created.secret) } }
        },
    );
    let mut res = compliance::page(&st, &user, Some(banner)).await?;
    // The secret must not linger in a cache.
    res.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(res)
}

#[derive(Debug, serde::Deserialize)]
pub struct EnabledForm {
    pub csrf: Option<String>,
    pub enabled: bool,
}

/// `POST /compliance/webhooks/{id}/enabled`: `enabled=false` disables deliveries (events wait in
/// the archive), `true` enables them again. Journaled.
pub async fn set_enabled(
    State(st): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    WebForm(form): WebForm<EnabledForm>,
) -> Result<Response, WebError> {
    check_csrf(&user, &headers, &st, form.csrf.as_deref())?;
    require_admin(&user)?;
    let change = UpdateSubscription {
        enabled: Some(form.enabled),
        ..UpdateSubscription::default()
    };
    api_hooks::change_subscription(&st, &user.me, id, change).await?;
    Ok(Redirect::to("/compliance#webhooks").into_response())
}
