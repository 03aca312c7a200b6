//! The threads that own database connections.
//!
//! Writes go to writer threads that **group commit**: a writer takes every job waiting in its queue
//! (up to `MAX_GROUP_SQLITE` or `MAX_GROUP_POSTGRES`), runs each inside its own savepoint within one transaction, commits once, and
//! only then answers every caller. Many concurrent webhooks therefore share one fsync, which is how
//! durable ingest reaches tens of thousands per second on SQLite (DESIGN.md §3), and a caller is never
//! answered before its data is on disk. A job that fails rolls back to its savepoint and fails alone.
//!
//! A savepoint is not free: on SQLite, every page a job changes that an earlier job of the same
//! transaction already changed (the tables' last pages, the hot index pages) is first copied aside
//! so the savepoint can be undone; for a send that was a tenth of the writer's time. A job that can
//! fail only when the database does (it checks everything that may refuse it before it writes, and
//! refusing is a successful answer) may run without one ([`crate::Store::write_unguarded`]). If
//! such a job fails nonetheless, the whole transaction is rolled back: every job that ran in it
//! fails (the others with `Overloaded`: none of them was answered, each may simply retry) and the
//! jobs not yet run go on in a new transaction.
//!
//! Reads go to a small pool of reader threads, each with its own connection (SQLite in WAL mode lets
//! readers run beside the writer). Both queues are bounded: when full, callers get `Overloaded` at once
//! (the server answers 503 with Retry-After) instead of buffering without limit.

use crate::journal::PendingHeads;
use crate::sql::{Backend, Conn};
use crate::StoreError;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::thread::JoinHandle;

/// The most jobs one SQLite transaction takes. Large enough to amortise the fsync, small enough
/// that one slow job does not hold many callers for long.
pub(crate) const MAX_GROUP_SQLITE: usize = 512;
/// The most jobs one PostgreSQL transaction takes. Each job's savepoint that writes is a
/// subtransaction; past 64 in one transaction PostgreSQL's per-backend subtransaction cache
/// overflows and every snapshot check slows down (measured: ingest fell from ~750/s to ~200/s as
/// the tables grew). 64 keeps every group inside the cache.
pub(crate) const MAX_GROUP_POSTGRES: usize = 64;

/// Tells a caller how its job ended, once the transaction's outcome is known.
pub(crate) type Finisher = Box<dyn FnOnce(Option<StoreError>) + Send>;
/// Runs against a connection, reports whether it succeeded, and returns its finisher.
pub(crate) type RunJob = Box<dyn FnOnce(&mut dyn Conn) -> (bool, Finisher) + Send>;
/// A unit of work.
pub(crate) struct WriteJob {
    pub(crate) run: RunJob,
    /// Whether it runs inside a savepoint of its own (see the module doc).
    pub(crate) savepoint: bool,
}
pub(crate) type ReadJob = Box<dyn FnOnce(&mut dyn Conn) + Send>;

/// Opens connections of one backend (each thread opens its own).
pub(crate) trait Connector: Send + Sync + 'static {
    fn open(&self, read_only: bool) -> Result<Box<dyn Conn + Send>, StoreError>;
    /// Called after a failed transaction: replaces a broken connection.
    fn repair(&self, conn: &mut Box<dyn Conn + Send>) -> Result<(), StoreError>;
}

pub(crate) fn spawn_writer(
    name: String,
    connector: std::sync::Arc<dyn Connector>,
    mut conn: Box<dyn Conn + Send>,
    rx: flume::Receiver<WriteJob>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name(name).spawn(move || {
        let (begin, max_group) = match conn.backend() {
            Backend::Sqlite => ("begin immediate", MAX_GROUP_SQLITE),
            Backend::Postgres => ("begin", MAX_GROUP_POSTGRES),
        };
        // Ends when every sender is dropped and the queue is drained: graceful shutdown finishes
        // every job already accepted.
        while let Ok(first) = rx.recv() {
            let mut jobs = Vec::with_capacity(16);
            jobs.push(first);
            while jobs.len() < max_group {
                match rx.try_recv() {
                    Ok(j) => jobs.push(j),
                    Err(_) => break,
                }
            }
            // A clean commit proves the connection works: only a failed group pays for a check.
            if !run_group(&mut conn, begin, jobs) || conn.is_closed() {
                if let Err(e) = connector.repair(&mut conn) {
                    tracing::error!(error = %e, "database connection could not be repaired");
                }
            }
        }
    })
}

/// Runs one group: in one transaction, or in more when a job without a savepoint fails (see the
/// module doc). `true` when every transaction committed without a statement failing.
fn run_group(conn: &mut Box<dyn Conn + Send>, begin: &str, jobs: Vec<WriteJob>) -> bool {
    let mut jobs = jobs.into_iter().peekable();
    let mut all_ok = true;
    while jobs.peek().is_some() {
        all_ok &= run_transaction(conn, begin, &mut jobs);
    }
    all_ok
}

/// Runs jobs from `jobs` in one transaction until there are none left or one without a savepoint
/// fails; `true` when it committed without a statement failing.
fn run_transaction(
    conn: &mut Box<dyn Conn + Send>,
    begin: &str,
    jobs: &mut std::iter::Peekable<std::vec::IntoIter<WriteJob>>,
) -> bool {
    if let Err(e) = conn.batch(begin) {
        tracing::error!(error = %e, "could not begin a transaction");
        // The jobs never ran; dropping them drops their reply channels, and each caller gets an error.
        jobs.for_each(drop);
        return false;
    }
    let mut finishers = Vec::with_capacity(jobs.len());
    let mut all_ok = true;
    // Chain heads advanced in this transaction: none yet.
    *conn.pending_heads() = PendingHeads::default();
    for job in jobs.by_ref() {
        if !job.savepoint {
            let (ok, finisher) = run_job(conn, job);
            finishers.push(finisher);
            if ok {
                continue;
            }
            // Nothing to roll back to but the transaction's start: every job in it fails.
            tracing::warn!(
                jobs = finishers.len(),
                "a job without a savepoint failed; its transaction is rolled back"
            );
            let _ = conn.batch("rollback");
            *conn.pending_heads() = PendingHeads::default();
            for f in finishers {
                call(f, Some(StoreError::Overloaded));
            }
            return false;
        }
        // A job that fails is rolled back to its savepoint: so are the heads it advanced.
        let heads_before = conn.pending_heads().clone();
        // Sent with the job's first statement on PostgreSQL (a round trip fewer per job).
        if let Err(e) = conn.batch_later("savepoint job") {
            tracing::error!(error = %e, "could not open a savepoint");
            let _ = conn.batch("rollback");
            for f in finishers {
                call(f, Some(e.clone()));
            }
            return false;
        }
        let (mut ok, mut finisher) = run_job(conn, job);
        if ok {
            // The release carries the writes the job queued: if one of them fails, so does the
            // release, and the job fails alone below, as if a statement in it had failed.
            if let Err(e) = conn.batch("release savepoint job") {
                ok = false;
                finisher = Box::new(move |err: Option<StoreError>| finisher(err.or(Some(e))));
            }
        }
        let closed = if ok {
            Ok(())
        } else {
            *conn.pending_heads() = heads_before;
            conn.batch("rollback to savepoint job; release savepoint job")
        };
        if let Err(e) = closed {
            tracing::error!(error = %e, "could not close a savepoint");
            let _ = conn.batch("rollback");
            finishers.push(finisher);
            for f in finishers {
                call(f, Some(e.clone()));
            }
            return false;
        }
        all_ok &= ok;
        finishers.push(finisher);
    }
    // The heads go back to `journal_heads` once per transaction, just before it commits.
    let committed = crate::journal::flush_heads(conn.as_mut()).and_then(|()| conn.batch("commit"));
    *conn.pending_heads() = PendingHeads::default();
    match committed {
        Ok(()) => {
            for f in finishers {
                call(f, None);
            }
            all_ok
        }
        Err(e) => {
            tracing::error!(error = %e, "commit failed; every job in the group fails");
            let _ = conn.batch("rollback");
            for f in finishers {
                call(f, Some(e.clone()));
            }
            false
        }
    }
}

/// Runs one job; a panic counts as a failure (with a finisher that reports nothing: the caller's
/// reply channel is dropped, so it gets an error).
fn run_job(conn: &mut Box<dyn Conn + Send>, job: WriteJob) -> (bool, Finisher) {
    // Another process may have changed the configuration since the last job (see `org_config`).
    conn.org_config().recheck();
    let (ok, finisher) = match catch_unwind(AssertUnwindSafe(|| (job.run)(conn.as_mut()))) {
        Ok(pair) => pair,
        Err(_) => {
            tracing::error!("a store job panicked; it was rolled back");
            (false, Box::new(|_| {}) as Finisher)
        }
    };
    // Answers it prefetched and did not read are not the next job's.
    conn.forget_prefetched();
    if !ok {
        // Rolled back: what it queued is never sent.
        conn.discard_later();
    }
    // Writes a job that succeeded queued (`Conn::execute_later`) go to the server with the next
    // statement: its savepoint's release, the next job's first statement, or the commit.
    (ok, finisher)
}

fn call(f: Finisher, err: Option<StoreError>) {
    f(err);
}

pub(crate) fn spawn_reader(
    name: String,
    connector: std::sync::Arc<dyn Connector>,
    mut conn: Box<dyn Conn + Send>,
    rx: flume::Receiver<ReadJob>,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new().name(name).spawn(move || {
        while let Ok(job) = rx.recv() {
            conn.org_config().recheck();
            let panicked = catch_unwind(AssertUnwindSafe(|| job(conn.as_mut()))).is_err();
            if panicked {
                tracing::error!("a read job panicked");
            }
            conn.forget_prefetched();
            // A read job has no writes to queue; should one have, it is not kept for the next job.
            if let Err(e) = conn.flush() {
                tracing::error!(error = %e, "a write queued by a read job failed");
            }
            // A read's errors go to its caller; a closed connection is noticed without a round trip.
            if panicked || conn.is_closed() {
                if let Err(e) = connector.repair(&mut conn) {
                    tracing::error!(error = %e, "database connection could not be repaired");
                }
            }
        }
    })
}
