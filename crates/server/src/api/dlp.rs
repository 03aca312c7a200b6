//! Data-loss prevention through the API: admins set their organization's policy (rules of kind
//! regex, keywords or built-in detector, each with an action and a direction; inherited by
//! sub-organizations unless they override a rule by id); supervisors review flagged messages.

use crate::auth::CurrentUser;
use crate::error::{ApiJson, AppError, ErrorBody};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use openline_domain::dlp::{validate_policy, DlpPolicy, DlpRule};
use openline_domain::Role;
use openline_store::messages::Message;
use openline_store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct PolicyView {
    /// The organization's own policy, if it set one.
    pub policy: Option<DlpPolicy>,
    /// The rules in force: its own and those inherited from its parents (nearer wins by rule id).
    pub effective_rules: Vec<DlpRule>,
}

/// `GET /api/v1/dlp/policy`: your organization's policy and the rules in force.
#[utoipa::path(get, path = "/api/v1/dlp/policy", tag = "dlp", responses((status = 200, body = PolicyView)))]
pub async fn get_policy(State(st): State<AppState>, me: CurrentUser) -> Result<Json<PolicyView>, AppError> {
    let org = me.user.org_id.clone();
    let (policy, effective_rules) = st
        .store
        .read(move |c| {
            Ok((
                openline_store::dlp::get_policy(c, &org)?,
                openline_store::dlp::rules_for(c, &org)?,
            ))
        })
        .await?;
    Ok(Json(PolicyView {
        policy,
        effective_rules,
    }))
}

/// `PUT /api/v1/dlp/policy` (admins): replaces your organization's policy. Invalid rules (a regular
/// expression that does not compile or could match everything, an empty keyword list) are refused
/// with `dlp_invalid_rule` naming the rule.
#[utoipa::path(put, path = "/api/v1/dlp/policy", tag = "dlp", request_body = DlpPolicy,
    responses((status = 200, body = PolicyView), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_policy(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiJson(policy): ApiJson<DlpPolicy>,
) -> Result<Json<PolicyView>, AppError> {
    if !me.user.role.is_admin() {
        return Err(AppError::forbidden("Only admins can change the data-loss policy."));
    }
    validate_policy(&policy)?;
    let (org, actor, now) = (me.user.org_id.clone(), super::archive::actor(&me), st.now());
    let p = policy.clone();
    st.store
        .write(move |c| openline_store::dlp::set_policy(c, &org, &p, &actor, now))
        .await?;
    tracing::info!(user_id = %me.user.id, rules = policy.rules.len(), "DLP policy changed");
    get_policy(State(st), me).await
}

fn may_review(me: &CurrentUser) -> Result<(), AppError> {
    match me.user.role {
        Role::Admin | Role::Supervisor => Ok(()),
        _ => Err(AppError::forbidden(
            "Only supervisors and admins review flagged messages.",
        )),
    }
}

/// `GET /api/v1/dlp/flagged` (supervisors, admins): messages flagged by DLP awaiting review.
#[utoipa::path(get, path = "/api/v1/dlp/flagged", tag = "dlp",
    responses((status = 200, body = Vec<Message>), (status = 403, body = ErrorBody)))]
pub async fn list_flagged(State(st): State<AppState>, me: CurrentUser) -> Result<Json<Vec<Message>>, AppError> {
    may_review(&me)?;
    let scope = me.scope.clone();
    Ok(Json(
        st.store
            .read(move |c| openline_store::dlp::flagged(c, &scope, 200))
            .await?,
    ))
}

/// `POST /api/v1/messages/{id}/review` (supervisors, admins): marks a flagged message reviewed.
#[utoipa::path(post, path = "/api/v1/messages/{id}/review", tag = "dlp", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn review_message(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    may_review(&me)?;
    let (scope, uid, now) = (me.scope.clone(), me.user.id.clone(), st.now());
    st.store
        .write(move |c| openline_store::dlp::review(c, &scope, &id, &uid, now))
        .await
        .map_err(|e| match e {
            StoreError::NotFound => AppError::not_found("flagged message"),
            other => other.into(),
        })?;
    Ok(StatusCode::NO_CONTENT)
}
