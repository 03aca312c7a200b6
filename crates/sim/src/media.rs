//! Media a phone sent, as openline fetches it from Meta: first `GET /graph/{version}/{media_id}`
//! for a URL, then `GET` that URL (`{public_base_url}/media/{id}`) for the bytes, both with the
//! bearer token.

use crate::graph::error::GraphError;
use crate::graph::require_bearer;
use crate::Simulator;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;
use std::sync::Arc;

pub fn routes() -> Router<Arc<Simulator>> {
    Router::new().route("/media/{id}", get(download_media))
}

/// `GET /graph/{version}/{media_id}`
///
/// The media's download URL and facts. `file_size` is a string, as in Meta's spec; `sha256` is hex.
pub async fn media_url(
    State(sim): State<Arc<Simulator>>,
    Path((_version, media_id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Err(e) = require_bearer(&sim, &headers) {
        return e.into_response();
    }
    let Some((mime_type, sha256, size)) = sim
        .state()
        .media
        .get(&media_id)
        .map(|m| (m.mime_type.clone(), m.sha256_hex.clone(), m.bytes.len()))
    else {
        return GraphError::unknown_object(&media_id, "get").into_response();
    };
    let base = sim.config.public_base_url.trim_end_matches('/');
    Json(json!({
        "url": format!("{base}/media/{media_id}"),
        "mime_type": mime_type,
        "sha256": sha256,
        "file_size": size.to_string(),
        "id": media_id,
        "messaging_product": "whatsapp",
    }))
    .into_response()
}

/// `GET /media/{id}`: the bytes, with their content type. Requires the bearer token, as Meta's
/// media URLs do.
async fn download_media(State(sim): State<Arc<Simulator>>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Err(e) = require_bearer(&sim, &headers) {
        return e.into_response();
    }
    let Some((mime_type, bytes)) = sim
        .state()
        .media
        .get(&id)
        .map(|m| (m.mime_type.clone(), m.bytes.clone()))
    else {
        return (axum::http::StatusCode::NOT_FOUND, "media not found").into_response();
    };
    let content_type =
        HeaderValue::from_str(&mime_type).unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"));
    ([(header::CONTENT_TYPE, content_type)], bytes).into_response()
}
