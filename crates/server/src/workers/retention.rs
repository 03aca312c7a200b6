//! The archive's timer: signs every moved chain head (when a signing key is configured) and runs
//! the retention purge, each on its own interval from `[archive]` in the config. Both are also
//! available on demand (`openline archive checkpoint|purge` and the admin API); this only makes
//! sure they happen when nobody asks. Stops when shutdown starts.

use crate::state::AppState;
use openline_store::journal::Actor;
use openline_store::{checkpoints, retention};
use std::time::Duration;
use tokio::sync::watch;

pub async fn run(st: AppState, mut shutdown: watch::Receiver<bool>) {
    // Parsed once at start-up (a damaged key stops start-up).
    let key = st.archive_signing_key.clone();
    let every = |minutes: u64| (minutes > 0).then(|| Duration::from_secs(minutes.saturating_mul(60)));
    let checkpoint_every = every(st.config.archive.checkpoint_minutes).filter(|_| key.is_some());
    let purge_every = every(st.config.archive.purge_minutes);
    if checkpoint_every.is_none() && purge_every.is_none() {
        return;
    }
    // The first checkpoint soon after start (a restart should not leave a gap of a whole interval);
    // the first purge after one interval, so starting a server never deletes anything at once.
    let start = tokio::time::Instant::now();
    let mut next_checkpoint = checkpoint_every.map(|_| start + Duration::from_secs(5));
    let mut next_purge = purge_every.map(|d| start + d);
    loop {
        let Some(next) = [next_checkpoint, next_purge].into_iter().flatten().min() else {
            return;
        };
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
        let now_instant = tokio::time::Instant::now();
        if let (Some(at), Some(key), Some(d)) = (next_checkpoint, &key, checkpoint_every) {
            if at <= now_instant {
                let (key, now) = (key.clone(), st.now());
                match st.store.write(move |c| checkpoints::create(c, &key, None, now)).await {
                    Ok(made) => tracing::info!(checkpoints = made.len(), "archive checkpoints signed"),
                    Err(e) => tracing::warn!(error = %e, "signing archive checkpoints failed; retrying next interval"),
                }
                next_checkpoint = Some(now_instant + d);
            }
        }
        if let (Some(at), Some(d)) = (next_purge, purge_every) {
            if at <= now_instant {
                let now = st.now();
                match st
                    .store
                    .write(move |c| retention::purge_all(c, now, false, &Actor::System))
                    .await
                {
                    Ok(reports) => {
                        let purged: i64 = reports.iter().map(|r| r.purged).sum();
                        tracing::info!(purged, organizations = reports.len(), "retention purge ran");
                    }
                    Err(e) => tracing::warn!(error = %e, "retention purge failed; retrying next interval"),
                }
                next_purge = Some(now_instant + d);
            }
        }
    }
}
