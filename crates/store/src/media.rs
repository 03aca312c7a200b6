//! Media files: which message a file belongs to, where its bytes are in the blob store, and where
//! fetching an inbound file from the provider stands.
//!
//! Inbound: [`insert_pending`] runs in the transaction that stores the media message, so a message
//! is never acknowledged without the work of fetching its file; the media worker claims due rows with
//! a lease ([`claim_due`], `skip locked` on PostgreSQL), and records [`mark_stored`], [`retry_at`] or
//! [`mark_failed`]. The message itself is never touched by a failure: it stays, with its provider
//! reference, whatever happens to the download.
//!
//! Outbound: a file an agent uploads is a row `stored` at once ([`insert_uploaded`]), found by id when
//! a message sends it.
//!
//! Every read for a user is scoped to the organizations they may see.

use crate::orgs::Scope;
use crate::sql::{Backend, Conn, Row, Val};
use crate::{params, StoreError};
use serde::Serialize;
use utoipa::ToSchema;

/// Where fetching a file stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MediaState {
    /// Not downloaded yet (or a download failed and will be retried).
    Pending,
    /// The bytes are in the blob store.
    Stored,
    /// Every attempt failed; the message is kept with its provider reference.
    Failed,
}

impl MediaState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Stored => "stored",
            Self::Failed => "failed",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "pending" => Some(Self::Pending),
            "stored" => Some(Self::Stored),
            "failed" => Some(Self::Failed),
            _ => None,
        }
    }
}

/// One media file.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Media {
    pub id: String,
    pub org_id: String,
    /// The message it belongs to (absent for an upload not sent yet).
    pub message_id: Option<String>,
    /// `in` (from a contact) or `out` (uploaded by a user).
    pub direction: String,
    pub provider_media_id: Option<String>,
    pub content_type: Option<String>,
    pub filename: Option<String>,
    pub size_bytes: Option<i64>,
    /// Lower-case hex SHA-256 of the stored bytes.
    pub sha256: Option<String>,
    /// What the provider announced (hex), checked when the file is downloaded.
    #[serde(skip)]
    pub expected_sha256: Option<String>,
    /// Where the bytes are, relative to the blob store's root.
    #[serde(skip)]
    pub stored_path: Option<String>,
    pub state: MediaState,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub uploaded_by: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// Which provider an inbound file is fetched from (`cloud_api`, `twilio`); `None` for uploads.
    #[serde(skip)]
    pub provider: Option<String>,
}

const COLS: &str = "id, org_id, message_id, direction, provider_media_id, content_type, filename, size_bytes, sha256,
    expected_sha256, stored_path, state, attempts, next_attempt_at, last_error, uploaded_by, created_at, updated_at,
    provider";

fn from_row(r: &Row) -> Result<Media, StoreError> {
    Ok(Media {
        id: r.string(0)?,
        org_id: r.string(1)?,
        message_id: r.opt_string(2)?,
        direction: r.string(3)?,
        provider_media_id: r.opt_string(4)?,
        content_type: r.opt_string(5)?,
        filename: r.opt_string(6)?,
        size_bytes: r.opt_i64(7)?,
        sha256: r.opt_string(8)?,
        expected_sha256: r.opt_string(9)?,
        stored_path: r.opt_string(10)?,
        state: r.parsed(11, MediaState::parse)?,
        attempts: r.i64(12)?,
        next_attempt_at: r.i64(13)?,
        last_error: r.opt_string(14)?,
        uploaded_by: r.opt_string(15)?,
        created_at: r.i64(16)?,
        updated_at: r.i64(17)?,
        provider: r.opt_string(18)?,
    })
}

/// A file a contact sent, announced by a webhook, to be fetched from the provider.
pub struct NewPending<'a> {
    pub org_id: &'a str,
    pub message_id: &'a str,
    pub provider: &'a str,
    pub provider_media_id: &'a str,
    pub content_type: Option<&'a str>,
    pub filename: Option<&'a str>,
    /// The provider's SHA-256 of the file, as lower-case hex, when it announced a usable one.
    pub expected_sha256: Option<&'a str>,
    pub now: i64,
}

/// Records a file to fetch, due now, inside the caller's transaction (the one storing the message).
pub fn insert_pending(c: &mut dyn Conn, m: &NewPending<'_>) -> Result<String, StoreError> {
    let id = openline_domain::ids::new_id("med");
    c.execute(
        "insert into media (id, org_id, message_id, direction, provider, provider_media_id, content_type, filename,
             expected_sha256, state, attempts, next_attempt_at, created_at, updated_at)
         values (?, ?, ?, 'in', ?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)",
        params![
            &id,
            m.org_id,
            m.message_id,
            m.provider,
            m.provider_media_id,
            m.content_type,
            m.filename,
            m.expected_sha256,
            m.now,
            m.now,
            m.now
        ],
    )?;
    Ok(id)
}

/// A file a user uploaded, already in the blob store.
pub struct NewUpload<'a> {
    pub org_id: &'a str,
    pub user_id: &'a str,
    pub content_type: &'a str,
    pub filename: Option<&'a str>,
    pub size_bytes: i64,
    pub sha256: &'a str,
    pub stored_path: &'a str,
    pub now: i64,
}

pub fn insert_uploaded(c: &mut dyn Conn, m: &NewUpload<'_>) -> Result<Media, StoreError> {
    let id = openline_domain::ids::new_id("med");
    c.execute(
        "insert into media (id, org_id, direction, content_type, filename, size_bytes, sha256, stored_path, state,
             attempts, next_attempt_at, uploaded_by, created_at, updated_at)
         values (?, ?, 'out', ?, ?, ?, ?, ?, 'stored', 0, ?, ?, ?, ?)",
        params![
            &id,
            m.org_id,
            m.content_type,
            m.filename,
            m.size_bytes,
            m.sha256,
            m.stored_path,
            m.now,
            m.user_id,
            m.now,
            m.now
        ],
    )?;
    get_any(c, &id)
}

/// A file by id, whoever owns it (for workers).
pub fn get_any(c: &mut dyn Conn, id: &str) -> Result<Media, StoreError> {
    from_row(&c.query_one(&format!("select {COLS} from media where id = ?"), params![id])?)
}

/// A file by id, if one of the scope's organizations owns it.
pub fn get(c: &mut dyn Conn, scope: &Scope, id: &str) -> Result<Media, StoreError> {
    let (ph, mut vals) = scope.in_list();
    vals.insert(0, Val::from(id));
    from_row(&c.query_one(
        &format!("select {COLS} from media where id = ? and org_id in ({ph})"),
        &vals,
    )?)
}

/// The file of a message, if one of the scope's organizations owns the message.
pub fn for_message(c: &mut dyn Conn, scope: &Scope, message_id: &str) -> Result<Option<Media>, StoreError> {
    let (ph, mut vals) = scope.in_list();
    vals.insert(0, Val::from(message_id));
    c.query_opt(
        &format!("select {COLS} from media where message_id = ? and org_id in ({ph})"),
        &vals,
    )?
    .as_ref()
    .map(from_row)
    .transpose()
}

/// Links an uploaded file to the message that sends it (the first message to send it; a file sent
/// twice stays linked to the first and is found by id for the second).
pub fn link_to_message(c: &mut dyn Conn, media_id: &str, message_id: &str, now: i64) -> Result<(), StoreError> {
    c.execute(
        "update media set message_id = ?, updated_at = ? where id = ? and message_id is null",
        params![message_id, now, media_id],
    )?;
    Ok(())
}

/// Claims up to `limit` due downloads for `lease_ms`; a row whose lease ran out (its node died
/// mid-download) becomes claimable again.
pub fn claim_due(c: &mut dyn Conn, now: i64, lease_ms: i64, limit: i64) -> Result<Vec<Media>, StoreError> {
    let lock = match c.backend() {
        Backend::Postgres => " for update skip locked",
        Backend::Sqlite => "",
    };
    let rows = c.query(
        &format!(
            "select {COLS} from media
             where state = 'pending' and next_attempt_at <= ? and (lease_until is null or lease_until < ?)
             order by next_attempt_at, id limit ?{lock}"
        ),
        params![now, now, limit],
    )?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let mut m = from_row(&r)?;
        // As in the outbox: the next attempt moves to the lease's end, so claimed rows leave the due
        // range and `next_due_at` is a plain minimum.
        c.execute(
            "update media set lease_until = ?, next_attempt_at = ?, attempts = attempts + 1, updated_at = ? where id = ?",
            params![now + lease_ms, now + lease_ms, now, &m.id],
        )?;
        m.attempts += 1;
        m.next_attempt_at = now + lease_ms;
        out.push(m);
    }
    Ok(out)
}

/// What a successful download stored.
pub struct Stored<'a> {
    pub content_type: &'a str,
    pub size_bytes: i64,
    pub sha256: &'a str,
    pub stored_path: &'a str,
}

/// The bytes are in the blob store: the row says where, and the archive records it (`media.stored`:
/// message, SHA-256, size, content type and blob reference) in the same transaction.
pub fn mark_stored(c: &mut dyn Conn, id: &str, s: &Stored<'_>, now: i64) -> Result<Media, StoreError> {
    c.execute(
        "update media set state = 'stored', content_type = ?, size_bytes = ?, sha256 = ?, stored_path = ?,
             lease_until = null, last_error = null, updated_at = ? where id = ?",
        params![s.content_type, s.size_bytes, s.sha256, s.stored_path, now, id],
    )?;
    let m = get_any(c, id)?;
    crate::journal::record(
        c,
        &m.org_id,
        "media.stored",
        &m.id,
        &serde_json::json!({
            "media_id": m.id,
            "message_id": m.message_id,
            "direction": m.direction,
            "provider_media_id": m.provider_media_id,
            "content_type": s.content_type,
            "size_bytes": s.size_bytes,
            "sha256": s.sha256,
            "blob": format!("sha256:{}", s.sha256),
        }),
        now,
    )?;
    Ok(m)
}

/// A download failed and will be tried again at `next_attempt_at`.
pub fn retry_at(c: &mut dyn Conn, id: &str, next_attempt_at: i64, error: &str, now: i64) -> Result<(), StoreError> {
    c.execute(
        "update media set next_attempt_at = ?, lease_until = null, last_error = ?, updated_at = ? where id = ?",
        params![next_attempt_at, error, now, id],
    )?;
    Ok(())
}

/// Every attempt failed. The message stays; only its file is missing.
pub fn mark_failed(c: &mut dyn Conn, id: &str, error: &str, now: i64) -> Result<Media, StoreError> {
    c.execute(
        "update media set state = 'failed', lease_until = null, last_error = ?, updated_at = ? where id = ?",
        params![error, now, id],
    )?;
    get_any(c, id)
}

/// When the next pending download becomes due (for the worker's sleep), if any. A claimed row's
/// next attempt is its lease's end (see [`claim_due`]).
pub fn next_due_at(c: &mut dyn Conn) -> Result<Option<i64>, StoreError> {
    c.query_one("select min(next_attempt_at) from media where state = 'pending'", &[])?
        .opt_i64(0)
}

/// The state and content type of every file in a conversation, by message id (for showing a thread).
pub fn states_in_conversation(
    c: &mut dyn Conn,
    scope: &Scope,
    conversation_id: &str,
) -> Result<Vec<(String, MediaState, Option<String>)>, StoreError> {
    let (ph, mut vals) = scope.in_list();
    vals.insert(0, Val::from(conversation_id));
    c.query(
        &format!(
            "select md.message_id, md.state, md.content_type from media md join messages m on m.id = md.message_id
             where m.conversation_id = ? and md.org_id in ({ph})"
        ),
        &vals,
    )?
    .iter()
    .map(|r| Ok((r.string(0)?, r.parsed(1, MediaState::parse)?, r.opt_string(2)?)))
    .collect()
}

/// The usual file name extension for a media content type WhatsApp carries (`.jpg` for
/// `image/jpeg`, parameters ignored); `None` when unknown. For download and export file names.
pub fn file_extension(content_type: &str) -> Option<&'static str> {
    Some(match content_type.split(';').next().unwrap_or_default().trim() {
        "image/jpeg" => ".jpg",
        "image/png" => ".png",
        "image/webp" => ".webp",
        "video/mp4" => ".mp4",
        "video/3gpp" => ".3gp",
        "audio/ogg" => ".ogg",
        "audio/mpeg" => ".mp3",
        "audio/aac" => ".aac",
        "audio/amr" => ".amr",
        "audio/mp4" => ".m4a",
        "application/pdf" => ".pdf",
        "text/plain" => ".txt",
        _ => return None,
    })
}
