//! Media, as openline exchanges it with Meta: a phone's media is fetched with
//! `GET /graph/{version}/{media_id}` (for a URL) and then `GET` that URL
//! (`{public_base_url}/media/{id}`) for the bytes, both with the bearer token; the business uploads
//! its own with `POST /graph/{version}/{phone_number_id}/media` (multipart) and sends the id.

use crate::graph::error::GraphError;
use crate::graph::require_bearer;
use crate::state::StoredMedia;
use crate::Simulator;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The largest upload accepted (Meta's limit for audio and video; documents may be larger there).
pub const MAX_UPLOAD_BYTES: usize = 16 * 1024 * 1024;

/// The media types the Cloud API accepts for upload.
const UPLOAD_TYPES: &[&str] = &[
    "image/jpeg",
    "image/png",
    "image/webp",
    "audio/aac",
    "audio/amr",
    "audio/mpeg",
    "audio/mp4",
    "audio/ogg",
    "video/mp4",
    "video/3gpp",
    "text/plain",
    "application/pdf",
    "application/msword",
    "application/vnd.ms-excel",
    "application/vnd.ms-powerpoint",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation",
];

pub fn routes() -> Router<Arc<Simulator>> {
    Router::new().route("/media/{id}", get(download_media)).route(
        "/graph/{version}/{phone_number_id}/media",
        // Room for the multipart framing around the largest file.
        post(upload_media).layer(DefaultBodyLimit::max(MAX_UPLOAD_BYTES + 64 * 1024)),
    )
}

/// `POST /graph/{version}/{phone_number_id}/media`
///
/// A multipart upload with `messaging_product=whatsapp`, `file` and `type` (the MIME type; the
/// file part's own content type is used when `type` is absent). Answers `{"id":"<media id>"}`.
async fn upload_media(
    State(sim): State<Arc<Simulator>>,
    Path((_version, phone_number_id)): Path<(String, String)>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    match store_upload(&sim, &phone_number_id, &headers, multipart).await {
        Ok(id) => Json(json!({ "id": id })).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn store_upload(
    sim: &Simulator,
    phone_number_id: &str,
    headers: &HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<String, GraphError> {
    require_bearer(sim, headers)?;
    if !sim
        .config
        .business_numbers
        .iter()
        .any(|b| b.phone_number_id == phone_number_id)
    {
        return Err(GraphError::unknown_object(phone_number_id, "post"));
    }
    let mut multipart =
        multipart.map_err(|_| GraphError::invalid_parameter("The request must be multipart/form-data."))?;
    let (mut product, mut declared_type, mut file) = (None, None, None);
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(_) => return Err(GraphError::invalid_parameter("The multipart body could not be read.")),
        };
        let name = field.name().unwrap_or_default().to_string();
        let part_type = field.content_type().map(str::to_string);
        let bytes = field
            .bytes()
            .await
            .map_err(|_| GraphError::invalid_parameter("The multipart body could not be read."))?;
        match name.as_str() {
            "messaging_product" => product = Some(String::from_utf8_lossy(&bytes).into_owned()),
            "type" => declared_type = Some(String::from_utf8_lossy(&bytes).into_owned()),
            "file" => file = Some((bytes, part_type)),
            _ => {}
        }
    }
    match product.as_deref() {
        Some("whatsapp") => {}
        Some(_) => {
            return Err(GraphError::invalid_parameter(
                "Param messaging_product must be one of {WHATSAPP}.",
            ))
        }
        None => {
            return Err(GraphError::invalid_parameter(
                "The parameter messaging_product is required.",
            ))
        }
    }
    let Some((bytes, part_type)) = file else {
        return Err(GraphError::missing("file"));
    };
    if bytes.is_empty() || bytes.len() > MAX_UPLOAD_BYTES {
        return Err(GraphError::invalid_value("Param file must have 1 byte to 16 MB."));
    }
    let mime_type = declared_type.or(part_type).unwrap_or_default();
    if !UPLOAD_TYPES.contains(&mime_type.as_str()) {
        return Err(GraphError::invalid_parameter(format!(
            "Param type must be one of the supported media types ({}).",
            UPLOAD_TYPES.join(", ")
        )));
    }
    let id = crate::ids::media_id();
    let sha256_hex = hex::encode(Sha256::digest(&bytes));
    sim.state().media.insert(
        id.clone(),
        StoredMedia {
            mime_type,
            bytes: bytes.to_vec(),
            sha256_hex,
        },
    );
    tracing::info!(media_id = %id, "business media uploaded");
    Ok(id)
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
