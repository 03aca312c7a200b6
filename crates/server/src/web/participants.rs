//! The thread's participants panel: who takes part (and who owns the thread), add a colleague,
//! leave, remove someone (supervisors and admins), hand the thread over. Each action calls the
//! API's handler (`api::participants`), so the rules, the error codes and the journal entries (with
//! the signed-in user as actor) are the API's, and the live event it publishes refreshes every open
//! copy of the thread (the panel is a live region).

use crate::api::participants::{self as api, ColleagueRequest};
use crate::error::ApiJson;
use crate::state::AppState;
use crate::web::session::{check_csrf, WebError, WebForm, WebUser};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use openline_domain::Role;
use openline_store::orgs::Scope;
use openline_store::participants::{self, Participant};
use openline_store::{Conn, StoreError};
use serde::Deserialize;

/// What the panel shows.
#[derive(Debug)]
pub struct PanelData {
    pub conversation_id: String,
    /// Who takes part now, in the order they joined.
    pub participants: Vec<Participant>,
    pub owner_user_id: Option<String>,
    /// Colleagues the user can see who could be added (not taking part, not viewers): (id, label).
    pub candidates: Vec<(String, String)>,
}

/// Reads the panel's data inside the thread's read.
pub fn load(c: &mut dyn Conn, scope: &Scope, conversation_id: &str) -> Result<PanelData, StoreError> {
    let list = participants::list(c, scope, conversation_id, false)?;
    let owner_user_id = participants::owner(c, scope, conversation_id)?;
    let candidates = openline_store::web_admin::users(c, scope)?
        .into_iter()
        .filter(|u| u.role != Role::Viewer.as_str() && !list.iter().any(|p| p.user_id == u.id))
        .map(|u| (u.id, format!("{} ({})", u.name, u.email)))
        .collect();
    Ok(PanelData {
        conversation_id: conversation_id.to_owned(),
        participants: list,
        owner_user_id,
        candidates,
    })
}

/// The panel: a live region refreshed on participant events.
pub fn panel(user: &WebUser, d: &PanelData) -> Markup {
    let me = &user.me.user;
    let may_remove = matches!(me.role, Role::Admin | Role::Supervisor);
    let may_transfer = may_remove || d.owner_user_id.as_deref().map_or(me.role.can_send(), |o| o == me.id);
    let base = format!("/messages/{}", d.conversation_id);
    let csrf = &user.csrf;
    html! {
        aside id="participants" class="participants" data-live aria-labelledby="participants-h" {
            h2 id="participants-h" { "Participants" }
            @if d.participants.is_empty() { p class="empty" { "Nobody takes part yet." } }
            ul {
                @for p in &d.participants {
                    li data-user=(p.user_id) {
                        (p.name)
                        @if p.user_id == me.id { " (you)" }
                        @if p.owner { " " span class="tag" { "owner" } }
                        " " span class="muted" { (p.role.as_str()) }
                        @if p.user_id == me.id {
                            form method="post" action={ (base) "/participants/" (p.user_id) "/remove" } class="inline" {
                                input type="hidden" name="csrf" value=(csrf);
                                button type="submit" class="link" { "Leave" }
                            }
                        } @else if may_remove {
                            form method="post" action={ (base) "/participants/" (p.user_id) "/remove" } class="inline" {
                                input type="hidden" name="csrf" value=(csrf);
                                button type="submit" class="link" aria-label={ "Remove " (p.name) } { "Remove" }
                            }
                        }
                    }
                }
            }
            @if me.role.can_send() && !d.candidates.is_empty() {
                form method="post" action={ (base) "/participants" } class="inline" {
                    input type="hidden" name="csrf" value=(csrf);
                    label for="add-colleague" { "Add a colleague" }
                    " "
                    select id="add-colleague" name="user_id" {
                        @for (id, label) in &d.candidates { option value=(id) { (label) } }
                    }
                    " "
                    button type="submit" { "Add" }
                }
            }
            @if may_transfer {
                form method="post" action={ (base) "/transfer" } class="inline" {
                    input type="hidden" name="csrf" value=(csrf);
                    label for="transfer-to" { "Transfer to" }
                    " "
                    select id="transfer-to" name="user_id" {
                        @for p in d.participants.iter().filter(|p| !p.owner) {
                            option value=(p.user_id) { (p.name) }
                        }
                        @for (id, label) in &d.candidates { option value=(id) { (label) } }
                    }
                    " "
                    button type="submit" { "Transfer" }
                }
            }
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct ColleagueForm {
    pub csrf: Option<String>,
    pub user_id: String,
}

#[derive(Debug, Deserialize)]
pub struct CsrfOnly {
    pub csrf: Option<String>,
}

fn back(conversation_id: &str) -> Response {
    Redirect::to(&format!("/messages/{conversation_id}")).into_response()
}

/// `POST /messages/{id}/participants`: adds a colleague (the API's `add_participant`).
pub async fn add_colleague(
    State(st): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    WebForm(form): WebForm<ColleagueForm>,
) -> Result<Response, WebError> {
    check_csrf(&user, &headers, &st, form.csrf.as_deref())?;
    let req = ColleagueRequest { user_id: form.user_id };
    let _added = api::add_participant(State(st), user.me.clone(), Path(id.clone()), ApiJson(req)).await?;
    Ok(back(&id))
}

/// `POST /messages/{id}/participants/{user_id}/remove`: your own id leaves; anyone else's is
/// removed (supervisors and admins; the API's `remove_participant`).
pub async fn remove_participant(
    State(st): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    Path((id, user_id)): Path<(String, String)>,
    WebForm(form): WebForm<CsrfOnly>,
) -> Result<Response, WebError> {
    check_csrf(&user, &headers, &st, form.csrf.as_deref())?;
    let _left = api::remove_participant(State(st), user.me.clone(), Path((id.clone(), user_id))).await?;
    Ok(back(&id))
}

/// `POST /messages/{id}/transfer`: hands the thread over (the API's `transfer_conversation`).
pub async fn transfer(
    State(st): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    WebForm(form): WebForm<ColleagueForm>,
) -> Result<Response, WebError> {
    check_csrf(&user, &headers, &st, form.csrf.as_deref())?;
    let req = ColleagueRequest { user_id: form.user_id };
    let _moved = api::transfer_conversation(State(st), user.me.clone(), Path(id.clone()), ApiJson(req)).await?;
    Ok(back(&id))
}
