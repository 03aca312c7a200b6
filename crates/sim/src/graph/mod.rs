//! The fake Graph API: `POST /graph/{version}/{phone_number_id}/messages` (send, or mark as read),
//! `GET /graph/{version}/{media_id}` (media URL) and `POST`/`GET
//! /graph/{version}/{waba_id}/message_templates` (submit and list templates), checked in the order
//! Meta checks them: the bearer token first (401, code 190), then the object id (400, code 100 /
//! subcode 33), then the body (400, codes 100 / 131008 / 131009), then, for templates, the WABA's
//! registry (400, codes 132001 / 132015 / 132016 / 132000), then throughput (400, code 130429).

pub mod error;
mod templates;
pub mod validate;
mod validate_rich;

use crate::Simulator;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use error::GraphError;
use serde_json::json;
use std::sync::Arc;
use validate::{validate_send, SendRequest};

pub fn routes() -> Router<Arc<Simulator>> {
    Router::new()
        .route("/graph/{version}/{phone_number_id}/messages", post(send_message))
        .route(
            "/graph/{version}/{waba_id}/message_templates",
            post(templates::create_template).get(templates::list_templates),
        )
        .route("/graph/{version}/{media_id}", get(crate::media::media_url))
}

/// Refuses a request without `Authorization: Bearer <access_token>` (401, code 190).
pub(crate) fn require_bearer(sim: &Simulator, headers: &HeaderMap) -> Result<(), GraphError> {
    let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
        return Err(GraphError::invalid_token(true));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    match token {
        Some(t) if constant_time_eq(t.as_bytes(), sim.config.access_token.as_bytes()) => Ok(()),
        _ => Err(GraphError::invalid_token(false)),
    }
}

/// Compares secrets without leaking, through timing, how much of a guess was right.
pub(crate) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// `POST /graph/{version}/{phone_number_id}/messages`
///
/// Sends a message to a phone, or (with `"status":"read"`) marks a phone's message as read. On
/// success answers like Meta (`contacts` with `input` and `wa_id`, `messages[0].id`, and
/// `message_status: accepted` for templates) and plays the message's status webhooks out in the
/// background.
async fn send_message(
    State(sim): State<Arc<Simulator>>,
    Path((_version, phone_number_id)): Path<(String, String)>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let result = (|| {
        require_bearer(&sim, &headers)?;
        let business = sim
            .config
            .business_numbers
            .iter()
            .find(|b| b.phone_number_id == phone_number_id)
            .cloned()
            .ok_or_else(|| GraphError::unknown_object(&phone_number_id, "post"))?;
        match validate_send(&body)? {
            SendRequest::MarkRead { message_id } => {
                sim.mark_read(&message_id);
                Ok(json!({ "success": true }))
            }
            SendRequest::Message(mut msg) => {
                sim.resolve_template(&business, &mut msg)?;
                sim.accept_send(&business, *msg)
            }
        }
    })();
    match result {
        Ok(body) => {
            // The message is on the phone; the answer takes its time (see `send_latency_ms`).
            if sim.config.send_latency_ms > 0 {
                tokio::time::sleep(std::time::Duration::from_millis(sim.config.send_latency_ms)).await;
            }
            Json(body).into_response()
        }
        Err(e) => e.into_response(),
    }
}
