//! Colleagues sharing one client conversation: who takes part, adding a colleague, leaving,
//! removing someone (supervisors and admins), and handing the thread over to a new owner. Every
//! change is journaled with who made it (see `openline_store::participants`), announced on the live
//! event stream, and delivered to outbound webhooks subscribed to `participant.changed`.

use crate::auth::CurrentUser;
use crate::error::{ApiJson, ApiQuery, AppError, ErrorBody};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use openline_domain::Role;
use openline_store::orgs::Scope;
use openline_store::participants::{self, Change, Participant, Refusal};
use openline_store::{Conn, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

#[derive(Debug, Deserialize, IntoParams)]
pub struct ParticipantsQuery {
    /// Also list those who left or were removed (one row per stay). Default false.
    #[serde(default)]
    pub include_past: bool,
}

/// A conversation's participants and its owner.
#[derive(Debug, Serialize, ToSchema)]
pub struct ParticipantsView {
    pub conversation_id: String,
    /// Who owns the thread now (set by a transfer), if anyone.
    pub owner_user_id: Option<String>,
    /// In the order they joined.
    pub items: Vec<Participant>,
}

/// A colleague, by user id.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ColleagueRequest {
    pub user_id: String,
}

fn view(c: &mut dyn Conn, scope: &Scope, id: &str, include_past: bool) -> Result<ParticipantsView, StoreError> {
    Ok(ParticipantsView {
        conversation_id: id.to_owned(),
        owner_user_id: participants::owner(c, scope, id)?,
        items: participants::list(c, scope, id, include_past)?,
    })
}

fn not_found(e: StoreError) -> AppError {
    match e {
        StoreError::NotFound => AppError::not_found("conversation"),
        other => other.into(),
    }
}

fn refused(r: Refusal) -> AppError {
    match r {
        Refusal::NotAColleague => AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "not_a_colleague",
            "No colleague with this user id can take part in this conversation: the user must be active \
             in the conversation's organization (or a supervisor or admin above it). Check the user id.",
        ),
        Refusal::CannotSend => AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "participant_cannot_send",
            "This user is a viewer and cannot message clients, so they cannot take part in or own a \
             conversation. An admin can change their role.",
        ),
        Refusal::NotAParticipant => AppError::new(
            StatusCode::NOT_FOUND,
            "not_a_participant",
            "This user does not take part in the conversation now; list its participants to see who does.",
        ),
    }
}

/// Announces a change after its commit, so the inbox shows it at once.
fn announce(st: &AppState, kind: &str, me: &CurrentUser, user_id: &str, v: &ParticipantsView, org_id: &str) {
    match serde_json::to_value(v) {
        Ok(participants) => st.events.publish(
            kind,
            org_id,
            Some(&v.conversation_id),
            serde_json::json!({
                "conversation_id": v.conversation_id,
                "user_id": user_id,
                "actor_user_id": me.user.id,
                "participants": participants,
            }),
        ),
        Err(e) => tracing::error!(error = %e, "could not serialise a live event"),
    }
}

/// What a write did: the change (or a refusal), the conversation's organization and its
/// participants afterwards.
type Written = Result<(Change, String, ParticipantsView), AppError>;

fn org_of(c: &mut dyn Conn, scope: &Scope, id: &str) -> Result<String, StoreError> {
    Ok(openline_store::conversations::get(c, scope, id)?.org_id)
}

/// `GET /api/v1/conversations/{id}/participants`: who takes part now (or, with
/// `include_past=true`, everyone who ever did), with when they joined and left.
#[utoipa::path(get, path = "/api/v1/conversations/{id}/participants", tag = "conversations",
    params(("id" = String, Path), ParticipantsQuery),
    responses((status = 200, body = ParticipantsView), (status = 404, body = ErrorBody)))]
pub async fn list_participants(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiQuery(q): ApiQuery<ParticipantsQuery>,
) -> Result<Json<ParticipantsView>, AppError> {
    let scope = me.scope.clone();
    st.store
        .read(move |c| view(c, &scope, &id, q.include_past))
        .await
        .map(Json)
        .map_err(not_found)
}

/// `POST /api/v1/conversations/{id}/participants`: adds a colleague (of the conversation's
/// organization, who can message clients) to the thread; 201 when added, 200 if they take part
/// already. Journaled as `participant.joined` with you as the one who added them.
#[utoipa::path(post, path = "/api/v1/conversations/{id}/participants", tag = "conversations",
    params(("id" = String, Path)), request_body = ColleagueRequest,
    responses((status = 201, body = ParticipantsView), (status = 200, body = ParticipantsView),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn add_participant(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ColleagueRequest>,
) -> Result<(StatusCode, Json<ParticipantsView>), AppError> {
    if !me.user.role.can_send() {
        return Err(AppError::forbidden(
            "Viewers cannot add colleagues to conversations; ask an agent, supervisor or admin.",
        ));
    }
    let (scope, actor, now) = (me.scope.clone(), super::archive::actor(&me), st.now());
    let uid = req.user_id.clone();
    let written: Written = st
        .store
        .write(move |c| {
            let org = org_of(c, &scope, &id)?;
            Ok(match participants::add(c, &scope, &id, &uid, &actor, now)? {
                Ok(change) => Ok((change, org, view(c, &scope, &id, false)?)),
                Err(r) => Err(refused(r)),
            })
        })
        .await
        .map_err(not_found)?;
    let (change, org, v) = written?;
    Ok(match change {
        Change::Done { .. } => {
            announce(&st, "participant.joined", &me, &req.user_id, &v, &org);
            (StatusCode::CREATED, Json(v))
        }
        Change::Unchanged => (StatusCode::OK, Json(v)),
    })
}

/// `DELETE /api/v1/conversations/{id}/participants/{user_id}`: your own id leaves the thread
/// (`participant.left`); anyone else's removes them, which only supervisors and admins may do
/// (`participant.removed`; 403 `forbidden` otherwise). An owner who goes no longer owns the thread.
#[utoipa::path(delete, path = "/api/v1/conversations/{id}/participants/{user_id}", tag = "conversations",
    params(("id" = String, Path), ("user_id" = String, Path)),
    responses((status = 200, body = ParticipantsView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn remove_participant(
    State(st): State<AppState>,
    me: CurrentUser,
    Path((id, user_id)): Path<(String, String)>,
) -> Result<Json<ParticipantsView>, AppError> {
    let leaving = user_id == me.user.id;
    if !leaving && !matches!(me.user.role, Role::Admin | Role::Supervisor) {
        return Err(AppError::forbidden(
            "Only supervisors and admins remove others from a conversation; you can leave it yourself.",
        ));
    }
    let (scope, actor, now) = (me.scope.clone(), super::archive::actor(&me), st.now());
    let uid = user_id.clone();
    let written: Written = st
        .store
        .write(move |c| {
            let org = org_of(c, &scope, &id)?;
            let outcome = if leaving {
                participants::leave(c, &scope, &id, &uid, &actor, now)?
            } else {
                participants::remove(c, &scope, &id, &uid, &actor, now)?
            };
            Ok(match outcome {
                Ok(change) => Ok((change, org, view(c, &scope, &id, false)?)),
                Err(r) => Err(refused(r)),
            })
        })
        .await
        .map_err(not_found)?;
    let (_, org, v) = written?;
    let kind = if leaving {
        "participant.left"
    } else {
        "participant.removed"
    };
    announce(&st, kind, &me, &user_id, &v, &org);
    Ok(Json(v))
}

/// `POST /api/v1/conversations/{id}/transfer`: hands the thread to a colleague, who becomes its
/// owner and joins it (journaled `conversation.transferred` with from and to). The owner, a
/// supervisor or an admin may transfer; while nobody owns the thread, anyone who can message
/// clients may (to claim it, transfer it to yourself).
#[utoipa::path(post, path = "/api/v1/conversations/{id}/transfer", tag = "conversations",
    params(("id" = String, Path)), request_body = ColleagueRequest,
    responses((status = 200, body = ParticipantsView), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn transfer_conversation(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<ColleagueRequest>,
) -> Result<Json<ParticipantsView>, AppError> {
    let (scope, actor, now) = (me.scope.clone(), super::archive::actor(&me), st.now());
    let (my_id, role) = (me.user.id.clone(), me.user.role);
    let uid = req.user_id.clone();
    let written: Written = st
        .store
        .write(move |c| {
            let org = org_of(c, &scope, &id)?;
            // Decided inside the transaction, so a concurrent transfer cannot slip between.
            let owner = participants::owner(c, &scope, &id)?;
            let may = match owner.as_deref() {
                _ if matches!(role, Role::Admin | Role::Supervisor) => true,
                Some(o) => o == my_id,
                None => role.can_send(),
            };
            if !may {
                return Ok(Err(AppError::forbidden(
                    "Only the conversation's owner, a supervisor or an admin can transfer it.",
                )));
            }
            Ok(match participants::transfer(c, &scope, &id, &uid, &actor, now)? {
                Ok(change) => Ok((change, org, view(c, &scope, &id, false)?)),
                Err(r) => Err(refused(r)),
            })
        })
        .await
        .map_err(not_found)?;
    let (change, org, v) = written?;
    if let Change::Done { .. } = change {
        announce(&st, "conversation.transferred", &me, &req.user_id, &v, &org);
    }
    Ok(Json(v))
}
