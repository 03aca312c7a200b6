//! The page frame and the small pieces every page shares: the header with the user's name,
//! organization and role, channel icons, delivery ticks, times. All HTML is built with maud, which
//! escapes every value; the only pre-escaped strings are the constant icons below.

use crate::web::session::WebUser;
use axum::http::StatusCode;
use maud::{html, Markup, PreEscaped, DOCTYPE};
use openline_domain::{Channel, DeliveryStatus};
use openline_store::messages::Message;

/// Which section of the app a page belongs to (highlighted in the navigation).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    Messages,
    Contacts,
    Phone,
    Admin,
    Compliance,
}

/// WhatsApp's mark: a green speech bubble with a handset (drawn here, not WhatsApp's artwork).
const WHATSAPP_ICON: &str = r##"<svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" focusable="false"><path fill="#1f9d55" d="M12 2a10 10 0 0 0-8.6 15.1L2 22l5-1.3A10 10 0 1 0 12 2z"/><path fill="#fff" d="M9.2 7.3c-.2-.5-.5-.5-.7-.5h-.6c-.2 0-.5.1-.8.4-.3.3-1 1-1 2.4s1 2.8 1.2 3c.1.2 2 3.2 5 4.4 2.5 1 3 .8 3.5.7.6-.1 1.8-.7 2-1.4.3-.7.3-1.3.2-1.4l-.5-.3-1.8-.9c-.2-.1-.4-.1-.6.1l-.8 1c-.1.2-.3.2-.5.1-.3-.1-1.1-.4-2.1-1.3-.8-.7-1.3-1.5-1.4-1.8-.2-.3 0-.4.1-.5l.4-.5.3-.4v-.5l-.9-2.1z"/></svg>"##;
/// SMS: a slate speech bubble with three dots.
const SMS_ICON: &str = r##"<svg viewBox="0 0 24 24" width="20" height="20" aria-hidden="true" focusable="false"><path fill="#47607a" d="M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z"/><circle cx="8" cy="10.5" r="1.3" fill="#fff"/><circle cx="12" cy="10.5" r="1.3" fill="#fff"/><circle cx="16" cy="10.5" r="1.3" fill="#fff"/></svg>"##;

/// The channel's icon with a text alternative.
pub fn channel_icon(channel: Channel) -> Markup {
    let (svg, label, class) = match channel {
        Channel::Whatsapp => (WHATSAPP_ICON, "WhatsApp", "icon icon-wa"),
        Channel::Sms => (SMS_ICON, "SMS", "icon icon-sms"),
    };
    html! { span class=(class) title=(label) { (PreEscaped(svg)) span class="sr-only" { (label) } } }
}

/// A time as people read it (UTC, to the minute), with a machine-readable value for scripts.
pub fn time(at: i64) -> Markup {
    html! { time datetime=(at) { (openline_domain::utc::format_utc_minute(at)) } }
}

/// A time in a list: the time of day for today (UTC), else the date.
pub fn short_time(at: i64, now: i64) -> Markup {
    let full = openline_domain::utc::format_utc_minute(at);
    let today = openline_domain::utc::format_utc_minute(now);
    let text = match (full.split_once(' '), today.split_once(' ')) {
        (Some((day, rest)), Some((now_day, _))) if day == now_day => rest.to_owned(),
        (Some((day, _)), _) => day.to_owned(),
        _ => full.clone(),
    };
    html! { time datetime=(at) title=(full) { (text) } }
}

/// Hours and minutes left, e.g. "23 h 05 min".
pub fn duration(ms: i64) -> String {
    let minutes = (ms.max(0) + 59_999) / 60_000;
    format!("{} h {:02} min", minutes / 60, minutes % 60)
}

/// An outgoing message's delivery state: ticks, or why it waits, or why it failed.
pub fn delivery(m: &Message) -> Markup {
    match m.status {
        DeliveryStatus::Queued => html! {
            span class="status status-queued" {
                "Queued"
                @if let Some(why) = &m.queue_explanation { ": " (why) }
            }
        },
        DeliveryStatus::Accepted => {
            html! { span class="status" title="Accepted by the provider" { "✓" span class="sr-only" { " accepted" } } }
        }
        DeliveryStatus::Sent => html! { span class="status" title="Sent" { "✓" span class="sr-only" { " sent" } } },
        DeliveryStatus::Delivered => {
            html! { span class="status" title="Delivered" { "✓✓" span class="sr-only" { " delivered" } } }
        }
        DeliveryStatus::Read => {
            html! { span class="status status-read" title="Read" { "✓✓" span class="sr-only" { " read" } } }
        }
        DeliveryStatus::Failed => html! {
            span class="status status-failed" {
                "⚠ Not delivered"
                @if let Some(t) = &m.error_title { " (" (t) ")" }
                @if let Some(e) = &m.error_explanation { ". " (e) }
            }
        },
        DeliveryStatus::Cancelled => html! { span class="status" { "Cancelled" } },
        DeliveryStatus::Received => html! {},
    }
}

/// The HTML document around a page's content: header, navigation, who is signed in, sign-out.
pub fn layout(user: &WebUser, title: &str, nav: Nav, content: Markup) -> Markup {
    let u = &user.me.user;
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="csrf-token" content=(user.csrf);
                title { (title) " · openline" }
                link rel="stylesheet" href="/assets/app.css";
                script src="/assets/app.js" defer {}
            }
            body {
                a class="skip" href="#main" { "Skip to content" }
                header class="top" {
                    a class="brand" href="/messages" { "openline" }
                    nav aria-label="Main" {
                        a href="/messages" aria-current=[(nav == Nav::Messages).then_some("page")] { "Messages" }
                        a href="/contacts" aria-current=[(nav == Nav::Contacts).then_some("page")] { "Contacts" }
                        @if user.demo {
                            a href="/phone" aria-current=[(nav == Nav::Phone).then_some("page")] { "Phone" }
                        }
                        @if crate::web::compliance::may_open(u.role) {
                            a href="/compliance" aria-current=[(nav == Nav::Compliance).then_some("page")] { "Compliance" }
                        }
                        @if u.role.is_admin() {
                            a href="/admin" aria-current=[(nav == Nav::Admin).then_some("page")] { "Admin" }
                        }
                    }
                    div class="who" {
                        span class="who-name" data-testid="user-name" { (u.name) }
                        span class="who-org" { (user.org_name) " · " (u.role.as_str()) }
                        form method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(user.csrf);
                            button class="link" type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" { (content) }
            }
        }
    }
}

/// A page of its own for errors (no navigation: the user may not be signed in).
pub fn error_page(status: StatusCode, code: &str, message: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (status.canonical_reason().unwrap_or("Error")) " · openline" }
                link rel="stylesheet" href="/assets/app.css";
            }
            body {
                main id="main" class="narrow" {
                    h1 { (status.canonical_reason().unwrap_or("Error")) }
                    p class="notice notice-error" data-code=(code) { (message) }
                    p { a href="/messages" { "Back to your messages" } }
                }
            }
        }
    }
}

/// A banner: `kind` is info, ok, warn or error.
pub fn banner(kind: &str, content: Markup) -> Markup {
    let class = format!("notice notice-{kind}");
    html! { div class=(class) role="status" { (content) } }
}
