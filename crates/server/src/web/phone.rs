//! The simulated phone (demo mode only): what a WhatsApp user sees of the business. Pick a persona
//! or any number; read what the business sent, tap the opt-in buttons, reply with text or a
//! picture, stop or resume promotions (marketing messages), or text the SMS number. The page is a
//! shell: `assets/app.js` drives the simulator's phone API under `/sim/phones/…` (the same API the
//! tests use), rendering with `textContent` only.
//!
//! It needs no sign-in: it stands for a phone outside the organization, and the simulator's API is
//! open in demo mode anyway. Outside demo mode these pages do not exist (404).

use crate::state::AppState;
use crate::web::session::WebError;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup, DOCTYPE};
use openline_domain::{Channel, PhoneNumber};

fn phone_layout(title: &str, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · simulated phone · openline" }
                link rel="stylesheet" href="/assets/app.css";
                script src="/assets/app.js" defer {}
            }
            body class="phone-body" {
                header class="top" {
                    a class="brand" href="/phone" { "Simulated phone" }
                    nav aria-label="Main" { a href="/messages" { "Agent's inbox" } }
                }
                main id="main" { (content) }
            }
        }
    }
}

fn demo_only(st: &AppState) -> Result<(), WebError> {
    if st.config.demo {
        Ok(())
    } else {
        Err(WebError::not_found("page"))
    }
}

#[derive(Debug, serde::Deserialize)]
pub struct PickQuery {
    pub number: Option<String>,
}

/// `GET /phone`: pick a simulated phone (`?number=` opens any number).
pub async fn pick_phone(State(st): State<AppState>, Query(q): Query<PickQuery>) -> Result<Response, WebError> {
    demo_only(&st)?;
    if let Some(n) = q.number.as_deref().map(str::trim).filter(|n| !n.is_empty()) {
        let phone = PhoneNumber::parse(n).map_err(crate::error::AppError::from)?;
        let path: String = url::form_urlencoded::byte_serialize(phone.as_e164().as_bytes()).collect();
        return Ok(Redirect::to(&format!("/phone/{path}")).into_response());
    }
    let personas = [
        ("+447700900001", "Ada", "accepts the opt-in"),
        ("+447700900002", "Dan", "declines it"),
        ("+447700900003", "Sam", "never answers"),
        ("+447700900004", "Nora", "is not on WhatsApp"),
    ];
    Ok(phone_layout(
        "Pick a phone",
        html! {
            h1 { "Whose phone?" }
            p { "Play the client's side of a conversation: open a phone here and the agent's inbox in another tab." }
            ul class="contacts" {
                @for (phone, name, what) in personas {
                    li {
                        a class="contact-row" href={ "/phone/" (phone) } {
                            span class="avatar" aria-hidden="true" { (name.chars().next().unwrap_or('?')) }
                            span class="contact-name" { (name) }
                            span class="muted" { (phone) " · " (what) }
                        }
                    }
                }
            }
            form method="get" action="/phone" class="search" id="open-phone" {
                label for="number" { "Or any number (international format)" }
                input id="number" name="number" type="tel" placeholder="+447700900123" required;
                button type="submit" { "Open" }
            }
        },
    )
    .into_response())
}

/// `GET /phone/{number}`: the phone's conversation with the business.
pub async fn show_phone(State(st): State<AppState>, Path(number): Path<String>) -> Result<Markup, WebError> {
    demo_only(&st)?;
    let phone = PhoneNumber::parse(number.trim()).map_err(crate::error::AppError::from)?;
    let senders = st.store.read(openline_store::senders::all).await?;
    let whatsapp: Vec<String> = senders
        .iter()
        .filter(|s| s.channel == Channel::Whatsapp)
        .map(|s| s.phone_number.trim_start_matches('+').to_owned())
        .collect();
    let sms: Vec<String> = senders
        .iter()
        .filter(|s| s.channel == Channel::Sms)
        .map(|s| s.phone_number.clone())
        .collect();
    let e164 = phone.as_e164().to_owned();
    Ok(phone_layout(
        &e164,
        html! {
            div class="phone" id="phone" data-phone=(e164) {
                header class="phone-head" {
                    a class="back" href="/phone" { "← Phones" }
                    h1 { (e164) }
                }
                div class="history" id="phone-history" aria-live="polite" {
                    p class="empty" { "Loading…" }
                }
                p class="notice notice-error" id="phone-error" role="alert" hidden {}
                div class="phone-behaviour" {
                    label for="phone-behaviour" { "How this phone answers" }
                    select id="phone-behaviour" name="behaviour" {
                        option value="manual" { "By hand (you tap and reply here)" }
                        option value="accepts" { "Accepts opt-in requests by itself" }
                        option value="declines" { "Declines opt-in requests by itself" }
                        option value="never_answers" { "Never answers" }
                        option value="not_on_whatsapp" { "Not on WhatsApp" }
                    }
                }
                @if let Some(business) = whatsapp.first() {
                    // WhatsApp's "Stop promotions": Meta tells the business, and fails its marketing
                    // templates to this phone with 131050 until it resumes.
                    div class="phone-behaviour phone-marketing" id="phone-marketing" data-business=(business) {
                        p id="phone-marketing-state" aria-live="polite" { "Promotions from the business: allowed" }
                        button type="button" data-preference="stop" { "Stop promotions" }
                        " "
                        button type="button" data-preference="resume" { "Resume promotions" }
                    }
                }
                form class="composer-form" id="phone-reply" {
                    label for="phone-to" { "To" }
                    select id="phone-to" name="to" {
                        @for n in &whatsapp { option value=(n) data-channel="whatsapp" { "WhatsApp " (n) } }
                        @for n in &sms { option value=(n) data-channel="sms" { "SMS " (n) } }
                    }
                    label for="phone-text" class="sr-only" { "Reply" }
                    textarea id="phone-text" name="text" rows="2" placeholder="Write a reply" {}
                    button type="submit" class="primary send" { "Send" }
                }
                form class="phone-picture" id="phone-picture" {
                    label for="phone-file" { "Send a picture (JPEG or PNG, at most 5 MB)" }
                    input id="phone-file" name="file" type="file" accept="image/jpeg,image/png" capture="environment";
                    button type="submit" { "Send picture" }
                }
            }
        },
    ))
}
