//! Media files through the API: uploading a file to send (`POST /api/v1/media`, checked against
//! WhatsApp's types and sizes before anything is stored) and reading a message's file
//! (`GET /api/v1/media/{id}`, only for users of the message's organization).
//!
//! Files are served with their stored content type, `X-Content-Type-Options: nosniff`, a
//! `Content-Disposition` (inline only for raster pictures; everything else downloads) and a
//! sandboxing Content-Security-Policy, so a file a contact sent can never run as a page of openline.

use crate::auth::CurrentUser;
use crate::error::{AppError, ErrorBody};
use crate::state::AppState;
use axum::extract::multipart::{Multipart, MultipartRejection};
use axum::extract::{Path, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use openline_domain::MessageKind;
use openline_store::media::{self, Media, MediaState};
use openline_store::{messages, StoreError};

const MB: usize = 1024 * 1024;

/// The largest upload any type allows (documents), plus room for the multipart framing.
pub const MAX_UPLOAD_BODY: usize = 100 * MB + 64 * 1024;

/// What WhatsApp sends a file as, and the most it accepts of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MediaLimit {
    pub kind: MessageKind,
    pub max_bytes: usize,
    /// How the limit reads to a person (`5 MB`).
    pub max_label: &'static str,
}

/// WhatsApp's media types and limits: images JPEG/PNG ≤ 5 MB; video MP4/3GP ≤ 16 MB; audio ≤ 16 MB;
/// documents ≤ 100 MB; stickers WebP ≤ 100 KB (animated ≤ 500 KB). `None`: not a type WhatsApp sends.
pub fn limit_for(content_type: &str, bytes: &[u8]) -> Option<MediaLimit> {
    let base = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let limit = |kind, max_bytes, max_label| {
        Some(MediaLimit {
            kind,
            max_bytes,
            max_label,
        })
    };
    match base.as_str() {
        "image/jpeg" | "image/png" => limit(MessageKind::Image, 5 * MB, "5 MB"),
        "video/mp4" | "video/3gpp" => limit(MessageKind::Video, 16 * MB, "16 MB"),
        "audio/aac" | "audio/amr" | "audio/mpeg" | "audio/mp4" | "audio/ogg" => {
            limit(MessageKind::Audio, 16 * MB, "16 MB")
        }
        "image/webp" if animated_webp(bytes) => limit(MessageKind::Sticker, 500 * 1024, "500 KB (animated)"),
        "image/webp" => limit(MessageKind::Sticker, 100 * 1024, "100 KB"),
        "text/plain"
        | "application/pdf"
        | "application/msword"
        | "application/vnd.ms-excel"
        | "application/vnd.ms-powerpoint"
        | "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
        | "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
        | "application/vnd.openxmlformats-officedocument.presentationml.presentation" => {
            limit(MessageKind::Document, 100 * MB, "100 MB")
        }
        _ => None,
    }
}

/// A WebP with an animation chunk (`ANIM`) in its header.
fn animated_webp(bytes: &[u8]) -> bool {
    bytes.len() > 16 && &bytes[..4] == b"RIFF" && bytes[..bytes.len().min(64)].windows(4).any(|w| w == b"ANIM")
}

/// Whether the bytes start the way the declared type's files do (for the types that have a fixed
/// signature), so a file cannot claim to be a picture it is not.
fn signature_matches(content_type: &str, bytes: &[u8]) -> bool {
    let base = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    match base.as_str() {
        "image/jpeg" => bytes.starts_with(&[0xFF, 0xD8, 0xFF]),
        "image/png" => bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
        "image/webp" => bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP",
        "application/pdf" => bytes.starts_with(b"%PDF"),
        _ => true,
    }
}

fn human_size(n: usize) -> String {
    if n >= MB {
        format!("{:.1} MB", n as f64 / MB as f64)
    } else {
        format!("{} KB", n.div_ceil(1024))
    }
}

/// Checks a file against WhatsApp's limits; the refusal says what is accepted.
pub fn check_upload(content_type: &str, bytes: &[u8]) -> Result<MediaLimit, AppError> {
    let Some(limit) = limit_for(content_type, bytes) else {
        return Err(AppError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "media_type_unsupported",
            format!(
                "WhatsApp cannot send {content_type:?} files. Send JPEG or PNG pictures, MP4 or 3GP videos, AAC, AMR, MP3, MP4 or OGG audio, WebP stickers, or PDF, Word, Excel, PowerPoint or text documents."
            ),
        ));
    };
    if bytes.is_empty() {
        return Err(AppError::bad_request(
            "media_empty",
            "The file is empty. Choose another file.",
        ));
    }
    if bytes.len() > limit.max_bytes {
        return Err(AppError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "media_too_large",
            format!(
                "This file is {}; WhatsApp accepts {} files up to {}. Send a smaller or compressed file.",
                human_size(bytes.len()),
                limit.kind,
                limit.max_label
            ),
        ));
    }
    if !signature_matches(content_type, bytes) {
        return Err(AppError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "media_type_mismatch",
            format!("The file is not a {content_type} file, although it was sent as one. Choose the file again."),
        ));
    }
    Ok(limit)
}

/// `POST /api/v1/media`: uploads a file to send, as `multipart/form-data` with a `file` part (its
/// content type is the file's type; an optional `type` part overrides it). Checked against WhatsApp's
/// limits: images JPEG/PNG up to 5 MB, video MP4/3GP up to 16 MB, audio up to 16 MB, documents up to
/// 100 MB, WebP stickers up to 100 KB (500 KB animated). Refused with 415 `media_type_unsupported`
/// or `media_type_mismatch`, 413 `media_too_large`, 400 `media_missing` or `media_empty`. Answers 201
/// with the stored file; send it with `POST /api/v1/messages` and `{"media": {"id": …}}`.
#[utoipa::path(post, path = "/api/v1/media", tag = "media",
    request_body(content_type = "multipart/form-data", description = "`file`: the file, with its content type; optional `type`: the MIME type"),
    responses((status = 201, body = Media), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
pub async fn upload_media(
    State(st): State<AppState>,
    me: CurrentUser,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, AppError> {
    if !me.user.role.can_send() {
        return Err(AppError::forbidden("Viewers cannot upload files to send."));
    }
    let mut multipart = multipart.map_err(|_| {
        AppError::bad_request(
            "media_missing",
            "Send the file as multipart/form-data with a part named `file`.",
        )
    })?;
    let (mut declared, mut file) = (None, None);
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
                return Err(AppError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "media_too_large",
                    "The file is larger than any WhatsApp message can carry (documents: 100 MB).",
                ))
            }
            Err(_) => {
                return Err(AppError::bad_request(
                    "media_missing",
                    "The multipart body could not be read. Send the file again.",
                ))
            }
        };
        let name = field.name().unwrap_or_default().to_owned();
        let part_type = field.content_type().map(str::to_owned);
        let filename = field.file_name().map(str::to_owned);
        let bytes = field.bytes().await.map_err(|e| {
            if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                AppError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "media_too_large",
                    "The file is larger than any WhatsApp message can carry (documents: 100 MB).",
                )
            } else {
                AppError::bad_request("media_missing", "The file could not be read. Send it again.")
            }
        })?;
        match name.as_str() {
            "type" => declared = Some(String::from_utf8_lossy(&bytes).trim().to_owned()),
            "file" => file = Some((bytes, part_type, filename)),
            _ => {}
        }
    }
    let Some((bytes, part_type, filename)) = file else {
        return Err(AppError::bad_request(
            "media_missing",
            "No file was sent: add a multipart part named `file`.",
        ));
    };
    let content_type = declared
        .filter(|t| !t.is_empty())
        .or(part_type)
        .unwrap_or_else(|| "application/octet-stream".to_owned())
        .to_ascii_lowercase();
    check_upload(&content_type, &bytes)?;
    let blob = st.blobs.put(&bytes).await.map_err(AppError::internal)?;
    let filename = filename.map(|f| clean_filename(&f)).filter(|f| !f.is_empty());
    let (now, org_id, user_id) = (st.now(), me.user.org_id.clone(), me.user.id.clone());
    let stored = st
        .store
        .write(move |c| {
            media::insert_uploaded(
                c,
                &media::NewUpload {
                    org_id: &org_id,
                    user_id: &user_id,
                    content_type: &content_type,
                    filename: filename.as_deref(),
                    size_bytes: i64::try_from(blob.size).unwrap_or(i64::MAX),
                    sha256: &blob.sha256,
                    stored_path: &blob.path,
                    now,
                },
            )
        })
        .await?;
    Ok((StatusCode::CREATED, Json(stored)).into_response())
}

/// A file name safe for a header and a file system: no path, quotes or control characters.
fn clean_filename(name: &str) -> String {
    let base = name.rsplit(['/', '\\']).next().unwrap_or_default();
    base.chars()
        .filter(|c| !c.is_control() && !matches!(c, '"' | ';' | '\\'))
        .take(200)
        .collect::<String>()
        .trim()
        .to_owned()
}

/// Finds the file for `id`: a message id (the file it carries) or a media id (an upload).
fn find(c: &mut dyn openline_store::Conn, scope: &openline_store::orgs::Scope, id: &str) -> Result<Media, StoreError> {
    if id.starts_with("med_") {
        return media::get(c, scope, id);
    }
    if let Some(m) = media::for_message(c, scope, id)? {
        return Ok(m);
    }
    // A file sent again in a later message is linked to the first one; the message names it.
    let message = messages::get(c, scope, id)?;
    match message
        .media
        .as_ref()
        .and_then(|m| m.get("media_id"))
        .and_then(|v| v.as_str())
    {
        Some(media_id) => media::get(c, scope, media_id),
        None => Err(StoreError::NotFound),
    }
}

/// `GET /api/v1/media/{id}`: the file of a message (by message id) or an upload (by media id), as
/// its bytes with their content type. 404 for another organization's file or a message without
/// one; 409 `media_not_ready` while it is still being fetched from the provider, 409
/// `media_unavailable` when fetching it failed (the message is kept).
#[utoipa::path(get, path = "/api/v1/media/{id}", tag = "media", params(("id" = String, Path, description = "A message id (`msg_…`) or a media id (`med_…`)")),
    responses((status = 200, description = "The file's bytes, with its content type", content_type = "application/octet-stream"),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn get_media(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let scope = me.scope.clone();
    let m = st
        .store
        .read(move |c| find(c, &scope, &id))
        .await
        .map_err(|e| match e {
            StoreError::NotFound => AppError::not_found("media file"),
            other => other.into(),
        })?;
    match m.state {
        MediaState::Pending => {
            return Err(AppError::new(
                StatusCode::CONFLICT,
                "media_not_ready",
                "The file is still being fetched from WhatsApp. Try again in a moment.",
            ))
        }
        MediaState::Failed => {
            return Err(AppError::new(
                StatusCode::CONFLICT,
                "media_unavailable",
                format!(
                    "openline could not fetch this file from WhatsApp ({}). The message is kept; ask the contact to send it again.",
                    m.last_error.as_deref().unwrap_or("no reason recorded")
                ),
            ))
        }
        MediaState::Stored => {}
    }
    let Some(path) = m.stored_path.as_deref() else {
        return Err(AppError::internal("a stored media row has no path"));
    };
    let (file, len) = st.blobs.open(path).await.map_err(AppError::internal)?;
    let content_type = m
        .content_type
        .clone()
        .unwrap_or_else(|| "application/octet-stream".into());
    let inline = matches!(
        content_type.split(';').next().unwrap_or_default().trim(),
        "image/jpeg" | "image/png" | "image/webp" | "image/gif"
    );
    let name = m
        .filename
        .as_deref()
        .map(clean_filename)
        .filter(|f| !f.is_empty() && f.is_ascii())
        .unwrap_or_else(|| {
            format!(
                "{}{}",
                m.id,
                openline_store::media::file_extension(&content_type).unwrap_or("")
            )
        });
    let disposition = format!("{}; filename=\"{name}\"", if inline { "inline" } else { "attachment" });
    let mut res = Response::new(axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(file)));
    let h = res.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&content_type).unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&disposition).unwrap_or_else(|_| HeaderValue::from_static("attachment")),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=3600"));
    if let Some(sha) = m
        .sha256
        .as_deref()
        .and_then(|s| HeaderValue::from_str(&format!("\"{s}\"")).ok())
    {
        h.insert(header::ETAG, sha);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn whatsapp_limits_per_type() {
        let png = |n: usize| {
            let mut b = b"\x89PNG\r\n\x1a\n".to_vec();
            b.resize(n, 0);
            b
        };
        assert_eq!(
            check_upload("image/png", &png(5 * MB)).unwrap().kind,
            MessageKind::Image
        );
        assert_eq!(
            check_upload("image/png", &png(5 * MB + 1)).unwrap_err().code,
            "media_too_large"
        );
        assert_eq!(
            check_upload("image/gif", &png(10)).unwrap_err().code,
            "media_type_unsupported"
        );
        assert_eq!(
            check_upload("image/jpeg", &png(10)).unwrap_err().code,
            "media_type_mismatch"
        );
        let mut webp = b"RIFF\0\0\0\0WEBPVP8 ".to_vec();
        webp.resize(100 * 1024 + 1, 0);
        assert_eq!(check_upload("image/webp", &webp).unwrap_err().code, "media_too_large");
        assert_eq!(
            check_upload("video/mp4", &vec![0; 16 * MB]).unwrap().kind,
            MessageKind::Video
        );
        assert_eq!(
            check_upload("audio/ogg; codecs=opus", &[1]).unwrap().kind,
            MessageKind::Audio
        );
        assert_eq!(check_upload("application/pdf", b"").unwrap_err().code, "media_empty");
    }

    #[test]
    fn file_names_lose_paths_and_quotes() {
        assert_eq!(clean_filename("../../x\"y;.pdf"), "xy.pdf");
        assert_eq!(clean_filename("C:\\Users\\a\\photo.jpg"), "photo.jpg");
    }
}
