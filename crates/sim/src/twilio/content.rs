//! The fake Twilio Content API's approval lookup:
//! `GET /twilio/content/v1/Content/{Sid}/ApprovalRequests` (Twilio's
//! `https://content.twilio.com/v1/Content/{Sid}/ApprovalRequests`), basic auth like every Twilio
//! API. Answers WhatsApp's review of one of the account's Content templates
//! ([`crate::SimTwilioContent::whatsapp_approval`]) in the shape of Twilio's spec, 404 (20404) for
//! a SID the account does not hold.

use super::require_basic_auth;
use crate::Simulator;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;

pub fn routes() -> Router<Arc<Simulator>> {
    Router::new().route("/twilio/content/v1/Content/{sid}/ApprovalRequests", get(approval))
}

async fn approval(State(sim): State<Arc<Simulator>>, Path(sid): Path<String>, headers: HeaderMap) -> Response {
    if let Err(e) = require_basic_auth(&sim, &headers) {
        return e.into_response();
    }
    let Some(content) = sim.config.twilio_contents.iter().find(|c| c.sid == sid) else {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"code": 20404, "message": "The requested resource was not found",
                "more_info": "https://www.twilio.com/docs/errors/20404", "status": 404})),
        )
            .into_response();
    };
    let rejected = content.whatsapp_approval == "rejected";
    Json(json!({
        "sid": content.sid,
        "account_sid": sim.config.twilio_account_sid,
        "whatsapp": {
            "type": "whatsapp",
            "name": content.friendly_name,
            "category": "UTILITY",
            "content_type": "twilio/text",
            "status": content.whatsapp_approval,
            "rejection_reason": if rejected { "The template's variables are at its start or end." } else { "" },
            "allow_category_change": true,
        },
        "url": format!("https://content.twilio.com/v1/Content/{}/ApprovalRequests", content.sid),
    }))
    .into_response()
}
