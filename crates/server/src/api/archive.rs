//! The archive through the API, for admins: its settings (retention, recording), legal holds,
//! verification, signed checkpoints, retention purges and exports (streamed, in the CLI's formats).
//! Everything is limited to the admin's organizations (their own and its sub-organizations), and
//! every change is journaled with the admin as its actor.

use crate::auth::CurrentUser;
use crate::error::{ApiJson, ApiQuery, AppError, ErrorBody};
use crate::state::AppState;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use openline_store::checkpoints::{self, CheckpointExport};
use openline_store::export::{Export, Filter, Format};
use openline_store::holds::{self, HoldError, LegalHold, NewHold};
use openline_store::journal::{self, Actor, ChainReport};
use openline_store::retention::{self, PurgeReport};
use openline_store::StoreError;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

/// The journal's actor for a signed-in user.
pub fn actor(me: &CurrentUser) -> Actor {
    Actor::user(me.user.id.clone(), me.user.email.clone())
}

fn admin(me: &CurrentUser) -> Result<(), AppError> {
    if me.user.role.is_admin() {
        Ok(())
    } else {
        Err(AppError::forbidden("Only admins manage the archive."))
    }
}

/// The organization a request is about: the one given (if the admin may see it) or their own.
fn org_in_scope(me: &CurrentUser, org_id: Option<&str>) -> Result<String, AppError> {
    match org_id {
        None => Ok(me.user.org_id.clone()),
        Some(o) if me.scope.contains(o) => Ok(o.to_owned()),
        Some(_) => Err(AppError::not_found("organization")),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct OrgQuery {
    /// The organization (default: your own).
    pub org_id: Option<String>,
}

/// An organization's archive settings: what it set itself, and what is in force (inherited from
/// the nearest ancestor that set it, else the default).
#[derive(Debug, Serialize, ToSchema)]
pub struct ArchiveSettings {
    pub org_id: String,
    /// Days the archive is kept before the purge may remove it (default 2555, seven years).
    pub retention_days: i64,
    /// Whether message content is archived (consent evidence always is).
    pub recording: bool,
    /// The organization's own values (`null`: inherited).
    pub own_retention_days: Option<i64>,
    pub own_recording: Option<bool>,
}

/// A change to the archive settings; absent fields are left alone.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ArchiveSettingsChange {
    /// The organization (default: your own).
    pub org_id: Option<String>,
    /// 1 to 36500 days.
    pub retention_days: Option<i64>,
    pub recording: Option<bool>,
    /// Settings to clear so the parent's value applies again: `retention_days`, `recording`.
    #[serde(default)]
    pub inherit: Vec<String>,
}

async fn settings_of(st: &AppState, org: String) -> Result<ArchiveSettings, AppError> {
    Ok(st
        .store
        .read(move |c| {
            let (own_retention_days, own_recording) = retention::own_settings(c, &org)?;
            Ok(ArchiveSettings {
                retention_days: retention::retention_days(c, &org)?,
                recording: journal::recording_enabled(c, &org)?,
                own_retention_days,
                own_recording,
                org_id: org,
            })
        })
        .await?)
}

/// `GET /api/v1/archive/settings` (admins): retention and recording for an organization.
#[utoipa::path(get, path = "/api/v1/archive/settings", tag = "archive", params(OrgQuery),
    responses((status = 200, body = ArchiveSettings), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_settings(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiQuery(q): ApiQuery<OrgQuery>,
) -> Result<Json<ArchiveSettings>, AppError> {
    admin(&me)?;
    let org = org_in_scope(&me, q.org_id.as_deref())?;
    Ok(Json(settings_of(&st, org).await?))
}

/// `PUT /api/v1/archive/settings` (admins): sets retention (days) and the recording switch, or
/// returns them to inheriting; sub-organizations that inherit follow at once. Journaled as
/// `organization.settings_changed` with you as the actor.
#[utoipa::path(put, path = "/api/v1/archive/settings", tag = "archive", request_body = ArchiveSettingsChange,
    responses((status = 200, body = ArchiveSettings), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn put_settings(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiJson(change): ApiJson<ArchiveSettingsChange>,
) -> Result<Json<ArchiveSettings>, AppError> {
    admin(&me)?;
    let org = org_in_scope(&me, change.org_id.as_deref())?;
    if change
        .retention_days
        .is_some_and(|d| !retention::valid_retention_days(d))
    {
        return Err(AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_retention",
            "retention_days must be between 1 and 36500 (100 years).",
        ));
    }
    if let Some(bad) = change
        .inherit
        .iter()
        .find(|k| !matches!(k.as_str(), "retention_days" | "recording"))
    {
        return Err(AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_setting",
            format!("`{bad}` is not an archive setting; use retention_days or recording."),
        ));
    }
    let (o, actor, now) = (org.clone(), actor(&me), st.now());
    st.store
        .write(move |c| {
            if let Some(d) = change.retention_days {
                retention::set_retention_days(c, &o, Some(d), &actor, now)?;
            } else if change.inherit.iter().any(|k| k == "retention_days") {
                retention::set_retention_days(c, &o, None, &actor, now)?;
            }
            if let Some(on) = change.recording {
                journal::set_recording(c, &o, Some(on), &actor, now)?;
            } else if change.inherit.iter().any(|k| k == "recording") {
                journal::set_recording(c, &o, None, &actor, now)?;
            }
            Ok(())
        })
        .await?;
    Ok(Json(settings_of(&st, org).await?))
}

/// `GET /api/v1/archive/verify` (admins): walks your organizations' hash chains and reports the
/// first altered, deleted, inserted or reordered entry of each.
#[utoipa::path(get, path = "/api/v1/archive/verify", tag = "archive",
    responses((status = 200, body = Vec<ChainReport>), (status = 403, body = ErrorBody)))]
pub async fn verify_archive(State(st): State<AppState>, me: CurrentUser) -> Result<Json<Vec<ChainReport>>, AppError> {
    admin(&me)?;
    let orgs = me.scope.org_ids.clone();
    Ok(Json(
        st.store
            .read(move |c| {
                let mut out = Vec::new();
                for o in &orgs {
                    out.extend(journal::verify(c, Some(o))?);
                }
                Ok(out)
            })
            .await?,
    ))
}

/// The checkpoint signing key (parsed once at start-up into the app state).
pub fn signing_key(st: &AppState) -> Result<std::sync::Arc<checkpoints::SigningKey>, AppError> {
    st.archive_signing_key.clone().ok_or_else(|| {
            AppError::new(
                StatusCode::CONFLICT,
                "archive_signing_key_missing",
                "No archive signing key is configured: create one with `openline archive keygen` and set OPENLINE_ARCHIVE_SIGNING_KEY (or archive.signing_key_file).",
            )
        })
}

/// `POST /api/v1/archive/checkpoints` (admins): signs the head of each of your organizations'
/// chains that moved since its last checkpoint, now. 409 `archive_signing_key_missing` without a key.
#[utoipa::path(post, path = "/api/v1/archive/checkpoints", tag = "archive",
    responses((status = 201, body = Vec<checkpoints::Checkpoint>), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_checkpoints(
    State(st): State<AppState>,
    me: CurrentUser,
) -> Result<(StatusCode, Json<Vec<checkpoints::Checkpoint>>), AppError> {
    admin(&me)?;
    let key = signing_key(&st)?;
    let (orgs, now) = (me.scope.org_ids.clone(), st.now());
    let made = st
        .store
        .write(move |c| {
            let mut out = Vec::new();
            for o in &orgs {
                out.extend(checkpoints::create(c, &key, Some(o), now)?);
            }
            Ok(out)
        })
        .await?;
    Ok((StatusCode::CREATED, Json(made)))
}

/// `GET /api/v1/archive/checkpoints` (admins): your organizations' checkpoints with the public key,
/// in the file format `openline archive verify --checkpoints` reads.
#[utoipa::path(get, path = "/api/v1/archive/checkpoints", tag = "archive",
    responses((status = 200, body = CheckpointExport), (status = 403, body = ErrorBody)))]
pub async fn list_checkpoints(State(st): State<AppState>, me: CurrentUser) -> Result<Json<CheckpointExport>, AppError> {
    admin(&me)?;
    let public_key = st.archive_signing_key.as_deref().map(checkpoints::public_key_hex);
    let orgs = me.scope.org_ids.clone();
    let list = st.store.read(move |c| checkpoints::list(c, Some(&orgs))).await?;
    Ok(Json(CheckpointExport {
        format: checkpoints::EXPORT_FORMAT.into(),
        public_key,
        checkpoints: list,
    }))
}

#[derive(Debug, Deserialize, IntoParams)]
pub struct HoldsQuery {
    /// Only holds not yet released.
    #[serde(default)]
    pub active: bool,
}

/// `GET /api/v1/archive/holds` (admins): legal holds in your organizations, newest first.
#[utoipa::path(get, path = "/api/v1/archive/holds", tag = "archive", params(HoldsQuery),
    responses((status = 200, body = Vec<LegalHold>), (status = 403, body = ErrorBody)))]
pub async fn list_holds(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiQuery(q): ApiQuery<HoldsQuery>,
) -> Result<Json<Vec<LegalHold>>, AppError> {
    admin(&me)?;
    let scope = me.scope.clone();
    Ok(Json(st.store.read(move |c| holds::list(c, &scope, q.active)).await?))
}

/// `POST /api/v1/archive/holds` (admins): places a legal hold on an organization, a user or a
/// contact, with a reason. Nothing it covers is purged until it is released. Journaled.
#[utoipa::path(post, path = "/api/v1/archive/holds", tag = "archive", request_body = NewHold,
    responses((status = 201, body = LegalHold), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create_hold(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiJson(hold): ApiJson<NewHold>,
) -> Result<(StatusCode, Json<LegalHold>), AppError> {
    admin(&me)?;
    let (scope, actor, now) = (me.scope.clone(), actor(&me), st.now());
    let result = st
        .store
        .write(move |c| Ok(holds::set(c, &scope, &hold, &actor, now)))
        .await?;
    Ok((StatusCode::CREATED, Json(result.map_err(hold_refused)?)))
}

/// Why a hold was not placed, as the API and the web page both say it.
pub fn hold_refused(e: HoldError) -> AppError {
    match e {
        HoldError::InvalidScope => AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_hold_scope",
            "scope must be organization, user or contact.",
        ),
        HoldError::EmptyReason => AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_hold_reason",
            "Give the reason for the hold (a matter or case reference), 1 to 500 characters.",
        ),
        HoldError::UnknownSubject => AppError::not_found("organization, user or contact"),
        HoldError::Store(e) => AppError::internal(e),
    }
}

/// `POST /api/v1/archive/holds/{id}/release` (admins): releases an active hold. Journaled.
#[utoipa::path(post, path = "/api/v1/archive/holds/{id}/release", tag = "archive", params(("id" = String, Path)),
    responses((status = 200, body = LegalHold), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn release_hold(
    State(st): State<AppState>,
    me: CurrentUser,
    Path(id): Path<String>,
) -> Result<Json<LegalHold>, AppError> {
    admin(&me)?;
    let (scope, actor, now) = (me.scope.clone(), actor(&me), st.now());
    Ok(Json(
        st.store
            .write(move |c| holds::release(c, &scope, &id, &actor, now))
            .await
            .map_err(|e| match e {
                StoreError::NotFound => AppError::not_found("active legal hold"),
                other => other.into(),
            })?,
    ))
}

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PurgeRequest {
    /// Report what would be removed without removing it.
    #[serde(default)]
    pub dry_run: bool,
}

/// `POST /api/v1/archive/purge` (admins): runs the retention purge for your organizations now:
/// removes expired entries not under a legal hold and journals the purge (see `retention`).
#[utoipa::path(post, path = "/api/v1/archive/purge", tag = "archive", request_body = PurgeRequest,
    responses((status = 200, body = Vec<PurgeReport>), (status = 403, body = ErrorBody)))]
pub async fn purge_archive(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiJson(req): ApiJson<PurgeRequest>,
) -> Result<Json<Vec<PurgeReport>>, AppError> {
    admin(&me)?;
    let (orgs, actor, now) = (me.scope.org_ids.clone(), actor(&me), st.now());
    Ok(Json(
        st.store
            .write(move |c| {
                let chains = journal::chains(c)?;
                let mut out = Vec::new();
                for o in orgs.iter().filter(|o| chains.contains(o)) {
                    out.push(retention::purge(c, o, now, req.dry_run, &actor)?);
                }
                Ok(out)
            })
            .await?,
    ))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// `jsonl` (default), `eml` (an mbox of RFC 5322 messages) or `csv`.
    pub format: Option<String>,
    /// The organization (default: the conversation's, contact's or user's, else your own).
    pub org_id: Option<String>,
    pub user_id: Option<String>,
    pub contact_id: Option<String>,
    pub conversation_id: Option<String>,
    /// From this time (epoch milliseconds, inclusive).
    pub since: Option<i64>,
    /// Until this time (epoch milliseconds, exclusive).
    pub until: Option<i64>,
}

/// `GET /api/v1/archive/export` (admins): streams an organization's archive as JSON Lines, EML
/// (mbox) or CSV, filtered by user, contact, conversation and time: the same bytes as `openline
/// archive export`. Read a page at a time, so any size streams in constant memory.
#[utoipa::path(get, path = "/api/v1/archive/export", tag = "archive", params(ExportQuery),
    responses((status = 200, description = "The export, streamed", content_type = "application/x-ndjson"),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn export_archive(
    State(st): State<AppState>,
    me: CurrentUser,
    ApiQuery(q): ApiQuery<ExportQuery>,
) -> Result<Response, AppError> {
    admin(&me)?;
    export_response(&st, &me, q).await
}

/// The export as a streamed download, limited to `me`'s organizations (the caller checks the
/// role): the API's and the web page's one way, so both give the same bytes and the same errors.
pub async fn export_response(st: &AppState, me: &CurrentUser, q: ExportQuery) -> Result<Response, AppError> {
    let format = Format::parse(q.format.as_deref().unwrap_or("jsonl")).ok_or_else(|| {
        AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_export_format",
            "format must be jsonl, eml or csv.",
        )
    })?;
    if let (Some(s), Some(u)) = (q.since, q.until) {
        if s >= u {
            return Err(AppError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_time_range",
                "since must be before until.",
            ));
        }
    }
    // Without org_id, a conversation, contact or user names its own organization.
    let by_subject =
        q.org_id.is_none() && (q.conversation_id.is_some() || q.contact_id.is_some() || q.user_id.is_some());
    let subject_org = if by_subject {
        let (conv, contact, user) = (q.conversation_id.clone(), q.contact_id.clone(), q.user_id.clone());
        Some(
            st.store
                .read(move |c| {
                    openline_store::export::subject_org(c, conv.as_deref(), contact.as_deref(), user.as_deref())
                })
                .await?
                .ok_or_else(|| AppError::not_found("conversation, contact or user"))?,
        )
    } else {
        None
    };
    let org = org_in_scope(me, q.org_id.as_deref().or(subject_org.as_deref()))?;
    let filter = Filter {
        org_id: org.clone(),
        user_id: q.user_id,
        contact_id: q.contact_id,
        conversation_id: q.conversation_id,
        since: q.since,
        until: q.until,
    };
    tracing::info!(user_id = %me.user.id, org_id = %org, format = format.extension(), "archive export");
    let store = st.store.clone();
    // EML attaches the stored copies of media files.
    let export = Export::new(filter, format).with_blobs(st.config.blob_dir());
    let stream = futures::stream::unfold(Some(export), move |state| {
        let store = store.clone();
        async move {
            let mut export = state?;
            let step = store
                .read(move |c| {
                    let chunk = export.next_chunk(c)?;
                    Ok((export, chunk))
                })
                .await;
            match step {
                Ok((export, Some(bytes))) => Some((Ok(Bytes::from(bytes)), Some(export))),
                Ok((_, None)) => None,
                Err(e) => {
                    // Headers are sent: all that is left is to cut the stream, so the client sees
                    // an incomplete transfer rather than a short export that looks whole.
                    tracing::error!(error = %e, "archive export failed mid-stream");
                    Some((Err(std::io::Error::other("export failed")), None))
                }
            }
        }
    });
    let filename = format!("openline-archive-{org}.{}", format.extension());
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type().to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{filename}\""),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}
