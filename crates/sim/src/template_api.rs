//! The template review API: the simulator's own JSON API through which a test or a person plays
//! Meta's reviewer — listing every WABA's templates and approving, rejecting, pausing or disabling
//! one. Each decision sends openline a signed `message_template_status_update` webhook, as Meta does.
//! Documented in [`crate::SimApiDoc`]; errors are `{"error":"snake_case_code","message":"…"}`.

use crate::error::{ApiJson, SimError};
use crate::inbound::wait_first_attempt;
use crate::templates::{RejectionReason, TemplateAction, TemplateRecord};
use crate::Simulator;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::ToSchema;

pub fn routes() -> Router<Arc<Simulator>> {
    Router::new()
        .route("/templates", get(list_templates))
        .route("/templates/{id}/approve", post(approve))
        .route("/templates/{id}/reject", post(reject))
        .route("/templates/{id}/pause", post(pause))
        .route("/templates/{id}/disable", post(disable))
}

/// Reject a pending template.
#[derive(Debug, Deserialize, ToSchema)]
pub struct RejectRequest {
    pub reason: RejectionReason,
}

/// A template after a review decision, and how openline took the webhook about it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateChanged {
    pub template: TemplateRecord,
    /// openline's HTTP status on the first delivery attempt of the status webhook; null when
    /// unreachable. Failed deliveries are retried in the background.
    pub webhook_status: Option<u16>,
}

/// `GET /templates`: every template of every WABA, oldest first.
#[utoipa::path(get, path = "/templates", tag = "templates",
    responses((status = 200, description = "The templates, oldest first", body = [TemplateRecord])))]
pub async fn list_templates(State(sim): State<Arc<Simulator>>) -> Json<Vec<TemplateRecord>> {
    Json(sim.templates())
}

async fn decide(sim: &Simulator, id: &str, action: TemplateAction) -> Result<Json<TemplateChanged>, SimError> {
    let (template, rx) = sim.change_template_status(id, action)?;
    let outcome = wait_first_attempt(template.id.clone(), rx).await;
    Ok(Json(TemplateChanged {
        template,
        webhook_status: outcome.webhook_status,
    }))
}

/// `POST /templates/{id}/approve`: approves a pending template, a rejected one (a successful
/// appeal) or a paused one; sends an `APPROVED` webhook.
#[utoipa::path(post, path = "/templates/{id}/approve", tag = "templates",
    params(("id" = String, Path, description = "The template's id")),
    responses(
        (status = 200, description = "Approved; see webhook_status", body = TemplateChanged),
        (status = 404, description = "No template has that id", body = crate::error::ErrorBody),
        (status = 409, description = "The template cannot be approved from its status", body = crate::error::ErrorBody)))]
pub async fn approve(
    State(sim): State<Arc<Simulator>>,
    Path(id): Path<String>,
) -> Result<Json<TemplateChanged>, SimError> {
    decide(&sim, &id, TemplateAction::Approve).await
}

/// `POST /templates/{id}/reject`: rejects a pending template for one of Meta's reasons; sends a
/// `REJECTED` webhook carrying the reason.
#[utoipa::path(post, path = "/templates/{id}/reject", tag = "templates",
    params(("id" = String, Path, description = "The template's id")),
    request_body = RejectRequest,
    responses(
        (status = 200, description = "Rejected; see webhook_status", body = TemplateChanged),
        (status = 400, description = "Missing or unknown reason", body = crate::error::ErrorBody),
        (status = 404, description = "No template has that id", body = crate::error::ErrorBody),
        (status = 409, description = "Only a pending template can be rejected", body = crate::error::ErrorBody)))]
pub async fn reject(
    State(sim): State<Arc<Simulator>>,
    Path(id): Path<String>,
    ApiJson(req): ApiJson<RejectRequest>,
) -> Result<Json<TemplateChanged>, SimError> {
    decide(&sim, &id, TemplateAction::Reject(req.reason)).await
}

/// `POST /templates/{id}/pause`: pauses an approved template for low quality (sends then fail with
/// 132015); sends a `PAUSED` webhook.
#[utoipa::path(post, path = "/templates/{id}/pause", tag = "templates",
    params(("id" = String, Path, description = "The template's id")),
    responses(
        (status = 200, description = "Paused; see webhook_status", body = TemplateChanged),
        (status = 404, description = "No template has that id", body = crate::error::ErrorBody),
        (status = 409, description = "Only an approved template can be paused", body = crate::error::ErrorBody)))]
pub async fn pause(
    State(sim): State<Arc<Simulator>>,
    Path(id): Path<String>,
) -> Result<Json<TemplateChanged>, SimError> {
    decide(&sim, &id, TemplateAction::Pause).await
}

/// `POST /templates/{id}/disable`: disables an approved or paused template for good (sends then
/// fail with 132016); sends a `DISABLED` webhook.
#[utoipa::path(post, path = "/templates/{id}/disable", tag = "templates",
    params(("id" = String, Path, description = "The template's id")),
    responses(
        (status = 200, description = "Disabled; see webhook_status", body = TemplateChanged),
        (status = 404, description = "No template has that id", body = crate::error::ErrorBody),
        (status = 409, description = "Only an approved or paused template can be disabled", body = crate::error::ErrorBody)))]
pub async fn disable(
    State(sim): State<Arc<Simulator>>,
    Path(id): Path<String>,
) -> Result<Json<TemplateChanged>, SimError> {
    decide(&sim, &id, TemplateAction::Disable).await
}
