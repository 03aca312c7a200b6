//! The media worker: fetches the files contacts send.
//!
//! A media message's webhook writes a `pending` media row with the message (one transaction). This
//! worker claims due rows with a lease (so a crashed node's rows are fetched again, and on
//! PostgreSQL two nodes never take the same row), resolves the provider's media id to a URL
//! (`GET /{media_id}`), downloads it with the bearer token under the download policy (provider hosts
//! only, same-host redirects only, size cap), checks the SHA-256 the provider announced, writes the
//! bytes to the blob store and, in one transaction, marks the row `stored` and archives
//! `media.stored`. Then a `media.stored` live event lets open inboxes show the picture.
//!
//! A failure is retried with exponential backoff and jitter; after `media.max_attempts` (or at once
//! for a refusal retrying cannot fix: a host that is not the provider's, a file over the size cap)
//! the row is marked `failed`. The message itself is never touched: it stays in its thread, with its
//! caption and the provider's reference, whatever happens to its file.

use crate::state::AppState;
use openline_channels::cloud_api::DownloadPolicy;
use openline_store::media::{self, Media};
use sha2::{Digest, Sha256};
use std::time::Duration;
use tokio::sync::watch;

/// How long a claim lasts (longer than a download's timeout).
const LEASE_MS: i64 = 120_000;
/// Rows claimed per round.
const CLAIM_BATCH: i64 = 16;
/// Downloads in flight at once.
const CONCURRENCY: usize = 4;

/// Runs until `shutdown` turns true; downloads in flight finish and are recorded first.
pub async fn run(st: AppState, mut shutdown: watch::Receiver<bool>) {
    let policy = DownloadPolicy {
        max_bytes: st.config.media.max_download_bytes,
        allowed_hosts: st.config.media.allowed_hosts.clone(),
    };
    loop {
        if *shutdown.borrow() {
            break;
        }
        let now = st.now();
        match st
            .store
            .write(move |c| media::claim_due(c, now, LEASE_MS, CLAIM_BATCH))
            .await
        {
            Ok(claimed) if !claimed.is_empty() => {
                let mut set = tokio::task::JoinSet::new();
                for job in claimed {
                    while set.len() >= CONCURRENCY {
                        let _ = set.join_next().await;
                    }
                    let (st, policy) = (st.clone(), policy.clone());
                    set.spawn(async move { fetch_one(&st, &policy, job).await });
                }
                while set.join_next().await.is_some() {}
                continue;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::error!(error = %e, "media worker could not claim downloads");
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                    _ = shutdown.changed() => {}
                }
                continue;
            }
        }
        let wait_ms = match st.store.read(media::next_due_at).await {
            Ok(Some(due)) => (due - now).clamp(5, 1000),
            _ => 1000,
        };
        tokio::select! {
            _ = st.media_wake.notified() => {}
            _ = tokio::time::sleep(Duration::from_millis(wait_ms as u64)) => {}
            _ = shutdown.changed() => {}
        }
    }
    tracing::info!("media worker stopped");
}

/// Why a download did not work, and whether trying again could help.
struct Failure {
    message: String,
    retry: bool,
}

impl Failure {
    fn retry(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retry: true,
        }
    }
    fn give_up(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retry: false,
        }
    }
}

async fn fetch_one(st: &AppState, policy: &DownloadPolicy, job: Media) {
    let result = fetch(st, policy, &job).await;
    let now = st.now();
    let id = job.id.clone();
    match result {
        Ok((blob, content_type)) => {
            let recorded = st
                .store
                .write(move |c| {
                    let m = media::mark_stored(
                        c,
                        &id,
                        &media::Stored {
                            content_type: &content_type,
                            size_bytes: i64::try_from(blob.size).unwrap_or(i64::MAX),
                            sha256: &blob.sha256,
                            stored_path: &blob.path,
                        },
                        now,
                    )?;
                    let message = match &m.message_id {
                        Some(mid) => Some(openline_store::messages::get_any(c, mid)?),
                        None => None,
                    };
                    Ok((m, message))
                })
                .await;
            match recorded {
                Ok((m, message)) => {
                    st.metrics.media("stored");
                    tracing::info!(media_id = %m.id, size = m.size_bytes, "media stored");
                    publish(st, "media.stored", &m, message.as_ref());
                }
                // The bytes are in the blob store; the lease runs out and the row is fetched again.
                Err(e) => tracing::error!(error = %e, media_id = %job.id, "media downloaded but not recorded"),
            }
        }
        Err(f) if f.retry && job.attempts < st.config.media.max_attempts => {
            st.metrics.media("retry");
            let next = now
                + super::backoff_ms(
                    job.attempts,
                    st.config.media.retry_base_ms,
                    // A cap below the first wait means the first wait.
                    st.config.media.retry_max_ms.max(st.config.media.retry_base_ms),
                );
            tracing::warn!(media_id = %job.id, attempt = job.attempts, error = %f.message, "media download failed, will retry");
            let message = f.message;
            if let Err(e) = st
                .store
                .write(move |c| media::retry_at(c, &id, next, &message, now))
                .await
            {
                tracing::error!(error = %e, "could not schedule a media retry; the lease will expire and retry it");
            }
        }
        Err(f) => {
            st.metrics.media("failed");
            tracing::warn!(media_id = %job.id, attempt = job.attempts, error = %f.message, "media download failed for good; the message is kept");
            let message = f.message;
            match st
                .store
                .write(move |c| {
                    let m = media::mark_failed(c, &id, &message, now)?;
                    let msg = match &m.message_id {
                        Some(mid) => Some(openline_store::messages::get_any(c, mid)?),
                        None => None,
                    };
                    Ok((m, msg))
                })
                .await
            {
                Ok((m, message)) => publish(st, "media.failed", &m, message.as_ref()),
                Err(e) => tracing::error!(error = %e, "could not record a failed media download"),
            }
        }
    }
}

fn publish(st: &AppState, kind: &str, m: &Media, message: Option<&openline_store::messages::Message>) {
    let data = serde_json::json!({"media": m, "message": message});
    st.events
        .publish(kind, &m.org_id, message.map(|msg| msg.conversation_id.as_str()), data);
}

async fn fetch(
    st: &AppState,
    policy: &DownloadPolicy,
    job: &Media,
) -> Result<(crate::blobs::PutBlob, String), Failure> {
    if job.provider.as_deref() == Some(openline_domain::ProviderKind::Twilio.as_str()) {
        return fetch_twilio(st, policy, job).await;
    }
    let Some(provider_media_id) = job.provider_media_id.as_deref() else {
        return Err(Failure::give_up("The message has no provider media id to fetch."));
    };
    let from_provider = |e: openline_channels::SendError| {
        if e.is_transient() || e.http_status.is_some() {
            // The provider answered (or may answer later): media ids stay valid for days, so keep trying.
            Failure::retry(e.message)
        } else {
            Failure::give_up(e.message)
        }
    };
    let info = st.cloud.media_info(provider_media_id).await.map_err(from_provider)?;
    if info.file_size.is_some_and(|n| n > policy.max_bytes) {
        return Err(Failure::give_up(format!(
            "The file is larger than openline accepts ({} MB).",
            policy.max_bytes / (1024 * 1024)
        )));
    }
    let downloaded = st
        .cloud
        .download_media(&info.url, policy)
        .await
        .map_err(from_provider)?;
    let sha256 = hex::encode(Sha256::digest(&downloaded.bytes));
    if let Some(expected) = job.expected_sha256.as_deref().or(info.sha256.as_deref()) {
        if !expected.eq_ignore_ascii_case(&sha256) {
            return Err(Failure::retry(
                "The downloaded file's SHA-256 does not match what the provider announced; it was not stored.",
            ));
        }
    }
    let content_type = job
        .content_type
        .clone()
        .or(info.mime_type)
        .or(downloaded.content_type)
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| "application/octet-stream".to_owned());
    let blob = st
        .blobs
        .put(&downloaded.bytes)
        .await
        .map_err(|e| Failure::retry(format!("The file could not be written to the blob store: {e}")))?;
    Ok((blob, content_type))
}

/// A file a contact sent through Twilio: its `MediaUrl` (the provider media id) is downloaded with
/// the account's credentials, following Twilio's redirect to its media CDN only (see
/// `openline_channels::twilio::media`). Twilio announces no checksum; the SHA-256 is computed here.
async fn fetch_twilio(
    st: &AppState,
    policy: &DownloadPolicy,
    job: &Media,
) -> Result<(crate::blobs::PutBlob, String), Failure> {
    let Some(url) = job.provider_media_id.as_deref() else {
        return Err(Failure::give_up("The message has no media URL to fetch."));
    };
    let Some(twilio) = &st.twilio else {
        // Configuration can be fixed: keep the row pending until it is.
        return Err(Failure::retry(
            "Twilio is not configured (OPENLINE_TWILIO_ACCOUNT_SID), so its media cannot be fetched.",
        ));
    };
    let downloaded = twilio.download_media(url, policy.max_bytes).await.map_err(|e| {
        if e.is_transient() || e.http_status.is_some() {
            Failure::retry(e.message)
        } else {
            Failure::give_up(e.message)
        }
    })?;
    let content_type = job
        .content_type
        .clone()
        .or(downloaded.content_type)
        .filter(|t| !t.trim().is_empty())
        .unwrap_or_else(|| "application/octet-stream".to_owned());
    let blob = st
        .blobs
        .put(&downloaded.bytes)
        .await
        .map_err(|e| Failure::retry(format!("The file could not be written to the blob store: {e}")))?;
    Ok((blob, content_type))
}
