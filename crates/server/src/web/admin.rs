//! Admin (admins only), a first version: organizations with their WhatsApp switch (on, off, or
//! inherited, changeable), users with their WhatsApp toggle (changeable), senders, and templates with
//! their approval status and rejection reason (read-only: they are managed with `openline admin …`
//! and the API). Every change is journaled with who made it.

use crate::state::AppState;
use crate::web::session::{check_csrf, WebError, WebForm, WebUser};
use crate::web::views::{self, Nav};
use axum::extract::Path;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use openline_domain::templates::TemplateStatus;
use serde::Deserialize;
use std::collections::HashMap;

fn require_admin(user: &WebUser) -> Result<(), WebError> {
    if user.me.user.role.is_admin() {
        Ok(())
    } else {
        Err(WebError::forbidden("Only admins can open the admin pages."))
    }
}

/// `GET /admin`
pub async fn overview(State(st): State<AppState>, user: WebUser) -> Result<Markup, WebError> {
    require_admin(&user)?;
    let scope = user.me.scope.clone();
    let (orgs, effective, users, senders, templates) = st
        .store
        .read(move |c| {
            let orgs = openline_store::orgs::list(c, &scope)?;
            let mut effective = HashMap::new();
            for o in &orgs {
                effective.insert(o.id.clone(), openline_store::orgs::whatsapp_enabled(c, &o.id)?);
            }
            let users = openline_store::web_admin::users(c, &scope)?;
            let senders = openline_store::senders::list(c, &scope)?;
            let ids: Vec<String> = senders.iter().map(|s| s.id.clone()).collect();
            let templates = openline_store::templates::list_for_senders(c, &ids)?;
            Ok((orgs, effective, users, senders, templates))
        })
        .await?;
    let org_name: HashMap<&str, &str> = orgs.iter().map(|o| (o.id.as_str(), o.name.as_str())).collect();
    let content = html! {
        h1 { "Admin" }
        section class="admin-section" {
            h2 { "Organizations" }
            table {
                thead { tr { th scope="col" { "Organization" } th scope="col" { "WhatsApp" } th scope="col" { "Change" } } }
                tbody {
                    @for o in &orgs {
                        tr {
                            td { (o.name) }
                            td {
                                @let on = effective.get(&o.id).copied().unwrap_or(false);
                                (if on { "On" } else { "Off" })
                                @if o.whatsapp == "inherit" {
                                    " " span class="tag" { "inherited" }
                                }
                            }
                            td {
                                form method="post" action={ "/admin/orgs/" (o.id) "/whatsapp" } class="inline" {
                                    input type="hidden" name="csrf" value=(user.csrf);
                                    label class="sr-only" for={ "wa-" (o.id) } { "WhatsApp for " (o.name) }
                                    select id={ "wa-" (o.id) } name="whatsapp" {
                                        @for (v, text) in [("on", "On"), ("off", "Off"), ("inherit", "Inherit from parent")] {
                                            option value=(v) selected[o.whatsapp == v] { (text) }
                                        }
                                    }
                                    button type="submit" { "Save" }
                                }
                            }
                        }
                    }
                }
            }
        }
        section class="admin-section" {
            h2 { "Users" }
            table {
                thead { tr { th scope="col" { "Name" } th scope="col" { "E-mail" } th scope="col" { "Organization" } th scope="col" { "Role" } th scope="col" { "WhatsApp" } } }
                tbody {
                    @for u in &users {
                        tr {
                            td { (u.name) }
                            td { (u.email) }
                            td { (org_name.get(u.org_id.as_str()).copied().unwrap_or("")) }
                            td { (u.role) }
                            td {
                                (if u.whatsapp_enabled { "On" } else { "Off" })
                                form method="post" action={ "/admin/users/" (u.id) "/whatsapp" } class="inline" {
                                    input type="hidden" name="csrf" value=(user.csrf);
                                    input type="hidden" name="enabled" value=(if u.whatsapp_enabled { "false" } else { "true" });
                                    button type="submit" aria-label={ "Turn WhatsApp " (if u.whatsapp_enabled { "off" } else { "on" }) " for " (u.name) } {
                                        (if u.whatsapp_enabled { "Turn off" } else { "Turn on" })
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section class="admin-section" {
            h2 { "Senders" }
            table {
                thead { tr { th scope="col" { "Number" } th scope="col" { "Channel" } th scope="col" { "Provider" } th scope="col" { "Name" } } }
                tbody {
                    @for s in &senders {
                        tr {
                            td { (views::channel_icon(s.channel)) " " (s.phone_number) }
                            td { (s.channel.as_str()) }
                            td { (s.provider.as_str()) }
                            td { (s.display_name) }
                        }
                    }
                }
            }
        }
        section class="admin-section" {
            h2 { "Templates" }
            @if templates.is_empty() { p class="empty" { "No templates yet. Submit one with POST /api/v1/templates." } }
            table {
                thead { tr { th scope="col" { "Name" } th scope="col" { "Language" } th scope="col" { "Status" } } }
                tbody {
                    @for t in &templates {
                        tr {
                            td { (t.template.name) }
                            td { (t.template.language) }
                            td {
                                (t.template.status.as_str())
                                @if let TemplateStatus::Rejected { reason } = &t.template.status {
                                    ": " (reason)
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(views::layout(&user, "Admin", Nav::Admin, content))
}

#[derive(Debug, Deserialize)]
pub struct OrgWhatsappForm {
    pub csrf: Option<String>,
    pub whatsapp: String,
}

/// `POST /admin/orgs/{id}/whatsapp`: `on`, `off` or `inherit`.
pub async fn set_org_whatsapp(
    State(st): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    WebForm(form): WebForm<OrgWhatsappForm>,
) -> Result<Response, WebError> {
    check_csrf(&user, &headers, &st, form.csrf.as_deref())?;
    require_admin(&user)?;
    if !["on", "off", "inherit"].contains(&form.whatsapp.as_str()) {
        return Err(WebError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_whatsapp_setting",
            "Choose on, off or inherit.",
        ));
    }
    let (scope, actor, now) = (user.me.scope.clone(), crate::api::archive::actor(&user.me), st.now());
    st.store
        .write(move |c| openline_store::web_admin::set_org_whatsapp(c, &scope, &id, &form.whatsapp, &actor, now))
        .await
        .map_err(|e| match e {
            openline_store::StoreError::NotFound => WebError::not_found("organization"),
            other => other.into(),
        })?;
    Ok(Redirect::to("/admin").into_response())
}

#[derive(Debug, Deserialize)]
pub struct UserWhatsappForm {
    pub csrf: Option<String>,
    pub enabled: bool,
}

/// `POST /admin/users/{id}/whatsapp`: `enabled=true|false`.
pub async fn set_user_whatsapp(
    State(st): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    WebForm(form): WebForm<UserWhatsappForm>,
) -> Result<Response, WebError> {
    check_csrf(&user, &headers, &st, form.csrf.as_deref())?;
    require_admin(&user)?;
    let (scope, actor, now) = (user.me.scope.clone(), crate::api::archive::actor(&user.me), st.now());
    st.store
        .write(move |c| openline_store::web_admin::set_user_whatsapp(c, &scope, &id, form.enabled, &actor, now))
        .await
        .map_err(|e| match e {
            openline_store::StoreError::NotFound => WebError::not_found("user"),
            other => other.into(),
        })?;
    Ok(Redirect::to("/admin").into_response())
}
