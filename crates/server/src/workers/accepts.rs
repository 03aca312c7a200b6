//! Recording what the provider accepted, several sends to a transaction.
//!
//! At 1,000 sends a second from one number, paced sends finish about a millisecond apart, so each
//! accept was a transaction of its own: a commit, a WAL write and an fsync per message. Profiling
//! `openline bench --scenario pacing` put half of the server's CPU in committing. Accepts are now
//! gathered for up to [`LINGER`] (at most [`BATCH`] of them) and recorded in one write job. (5 ms
//! and 64 first; 20 ms and 128 once a send stopped holding its place in flight while its accept
//! waited to be committed: 5–6 accepts a transaction at 1,000/s became about 20.)
//!
//! Within the transaction the batch is recorded together too
//! ([`messages::record_provider_accepts`]): one statement per accept for its message and one for
//! its outbox row, and for the whole batch one insert of provider ids, one lookup each for other
//! provider ids and early statuses, one read-back and one insert of archive entries. (Recorded
//! one by one, each accept was seven statements, its update with `returning`, which SQLite runs
//! through a temporary table: the writer spent 23% of the server's samples here at 1,000/s,
//! 17% after.)
//!
//! Nothing about durability changes: each send waits for its own accept to be committed before it
//! counts as finished (so shutdown still waits for it), and an accept that is not committed when the
//! process dies leaves its outbox attempt unsettled, which the next claim flags as a possible
//! duplicate, exactly as before. If a batch fails, its accepts are recorded one by one, so one bad
//! row fails alone.

use openline_domain::ProviderKind;
use openline_store::messages::{self, Message};
use openline_store::{outbox, Conn, Store, StoreError};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// How long the first accept of a batch waits for others. A send hands its accept over and frees
/// its place among the sends in flight at once (see the dispatcher), so waiting here slows no send;
/// it only delays the "accepted" status by up to this much.
pub const LINGER: Duration = Duration::from_millis(20);
/// The most accepts recorded in one transaction.
pub const BATCH: usize = 128;

/// A send the provider accepted, to be recorded.
#[derive(Debug, Clone)]
pub struct Accept {
    pub outbox_id: String,
    pub message_id: String,
    pub provider: ProviderKind,
    pub provider_message_id: String,
    /// An earlier attempt may have reached the provider too: the message is a possible duplicate.
    pub maybe_sent: bool,
    pub now: i64,
}

type Reply = oneshot::Sender<Result<Message, StoreError>>;

/// Hands accepts to the batching task. Dropping every clone ends the task once it has recorded
/// what it was given.
#[derive(Clone)]
pub struct AcceptRecorder {
    tx: mpsc::Sender<(Accept, Reply)>,
}

impl AcceptRecorder {
    /// Starts the batching task on `store`.
    pub fn start(store: Store) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(BATCH * 4);
        let task = tokio::spawn(run(store, rx));
        (Self { tx }, task)
    }

    /// Hands `accept` over to be recorded (in a batch with others arriving at the same time); the
    /// returned [`Recording`] answers once it is committed.
    pub async fn enqueue(&self, accept: Accept) -> Recording {
        let (reply, answer) = oneshot::channel();
        match self.tx.send((accept, reply)).await {
            Ok(()) => Recording(Some(answer)),
            Err(_) => Recording(None),
        }
    }
}

/// An accept handed to the recorder, not necessarily committed yet.
pub struct Recording(Option<oneshot::Receiver<Result<Message, StoreError>>>);

impl Recording {
    /// The recorded message, once committed.
    pub async fn committed(self) -> Result<Message, StoreError> {
        match self.0 {
            Some(answer) => answer.await.map_err(|_| StoreError::Closed)?,
            None => Err(StoreError::Closed),
        }
    }
}

async fn run(store: Store, mut rx: mpsc::Receiver<(Accept, Reply)>) {
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + LINGER;
        while batch.len() < BATCH {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(item)) => batch.push(item),
                // The linger is over, or every sender is gone: record what there is.
                Ok(None) | Err(_) => break,
            }
        }
        flush(&store, batch).await;
    }
}

async fn flush(store: &Store, batch: Vec<(Accept, Reply)>) {
    let accepts: Vec<Accept> = batch.iter().map(|(a, _)| a.clone()).collect();
    let together = store.write(move |c| record(c, &accepts)).await;
    match together {
        Ok(recorded) => {
            for ((_, reply), m) in batch.into_iter().zip(recorded) {
                let _ = reply.send(Ok(m));
            }
        }
        Err(e) if batch.len() == 1 => {
            for (_, reply) in batch {
                let _ = reply.send(Err(e.clone()));
            }
        }
        // One of them failed and took the batch with it: record each alone, so only it fails.
        Err(_) => {
            for (accept, reply) in batch {
                let recorded = store.write(move |c| record(c, std::slice::from_ref(&accept))).await;
                let _ = reply.send(recorded.and_then(|mut one| one.pop().ok_or(StoreError::NotFound)));
            }
        }
    }
}

/// Records `accepts` in the caller's transaction: the messages as recorded, in order.
fn record(c: &mut dyn Conn, accepts: &[Accept]) -> Result<Vec<Message>, StoreError> {
    for a in accepts.iter().filter(|a| a.maybe_sent) {
        messages::mark_possible_duplicate(c, &a.message_id, a.now)?;
    }
    let rows: Vec<messages::ProviderAccept<'_>> = accepts
        .iter()
        .map(|a| messages::ProviderAccept {
            message_id: &a.message_id,
            provider: a.provider,
            provider_message_id: &a.provider_message_id,
            now: a.now,
        })
        .collect();
    let recorded = messages::record_provider_accepts(c, &rows)?;
    for a in accepts {
        outbox::complete(c, &a.outbox_id, a.now)?;
    }
    Ok(recorded)
}
