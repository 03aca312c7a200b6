//! Persistence for openline, on an embedded SQLite file (the default) or PostgreSQL (several nodes).
//!
//! One `Store` interface, two backends, one copy of every query: store logic is written as plain
//! functions over the `Conn` trait (`sql.rs`) and runs on connection-owning threads (`pool.rs`).
//! Callers hand the store a closure: `store.write(|c| messages::insert_inbound(c, …)).await` runs it
//! inside a group-committed transaction and returns only after the commit is durable;
//! `store.read(|c| …)` runs it on a reader connection.
//!
//! The backend is chosen by the URL scheme: `sqlite://PATH` (or a bare path) or `postgres://…`.

pub mod dlp;
pub mod error;
pub mod export;
pub mod migrations;
mod pg;
mod pool;
pub mod sql;
mod sqlite;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub mod checkpoints;
pub mod consent;
pub mod contacts;
pub mod conversations;
pub mod holds;
pub mod idempotency;
pub mod journal;
pub mod media;
pub mod messages;
pub mod org_config;
pub mod orgs;
pub mod outbox;
pub mod pacing;
pub mod participants;
pub mod provider_events;
pub mod retention;
pub mod senders;
pub mod templates;
pub mod users;
pub mod web_admin;
pub mod web_contacts;
pub mod web_throttle;
pub mod webhooks_out;

pub use error::StoreError;
pub use sql::{Backend, Conn, Row, Val};

use pool::{Connector, Finisher, ReadJob, WriteJob};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// How to reach the database. `Debug` never prints a password.
#[derive(Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Sqlite(PathBuf),
    Postgres(String),
}

impl DatabaseUrl {
    /// `postgres://…`/`postgresql://…` → PostgreSQL; `sqlite://PATH`, `sqlite:PATH` or a plain path → SQLite.
    pub fn parse(s: &str) -> Result<Self, StoreError> {
        let s = s.trim();
        if s.starts_with("postgres://") || s.starts_with("postgresql://") {
            return Ok(Self::Postgres(s.to_owned()));
        }
        let path = s
            .strip_prefix("sqlite://")
            .or_else(|| s.strip_prefix("sqlite:"))
            .unwrap_or(s);
        if path.is_empty() || s.contains("://") && !s.starts_with("sqlite://") {
            return Err(StoreError::Db(
                "the database URL must be postgres://… or sqlite://PATH (or a file path)".into(),
            ));
        }
        Ok(Self::Sqlite(PathBuf::from(path)))
    }

    pub fn backend(&self) -> Backend {
        match self {
            Self::Sqlite(_) => Backend::Sqlite,
            Self::Postgres(_) => Backend::Postgres,
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sqlite(p) => write!(f, "sqlite://{}", p.display()),
            Self::Postgres(u) => match url::Url::parse(u) {
                Ok(mut parsed) => {
                    if parsed.password().is_some() {
                        let _ = parsed.set_password(Some("redacted"));
                    }
                    write!(f, "{parsed}")
                }
                Err(_) => f.write_str("postgres://(unparseable, redacted)"),
            },
        }
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// Tuning for the connection threads.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Reader threads (connections). SQLite in WAL mode serves reads beside the writer.
    pub readers: usize,
    /// Writer threads. SQLite has one writer by nature; PostgreSQL uses one as well (see below).
    pub writers: usize,
    /// Jobs that may wait in each queue before callers get `Overloaded`.
    pub queue_capacity: usize,
}

impl StoreOptions {
    pub fn for_backend(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => Self {
                readers: 4,
                writers: 1,
                queue_capacity: 20_000,
            },
            // One writer on PostgreSQL too: every write journals, and an organization's chain head
            // is locked until commit, so writers of the same organization only queued on that lock
            // (measured: 4 writers peaked at ~1,100/s and fell to ~580/s as lock waits grew; one
            // writer holds ~1,000/s steadily). Groups of up to 64 keep the commit shared.
            Backend::Postgres => Self {
                readers: 6,
                writers: 1,
                queue_capacity: 20_000,
            },
        }
    }
}

struct SqliteConnector(PathBuf);
impl Connector for SqliteConnector {
    fn open(&self, read_only: bool) -> Result<Box<dyn Conn + Send>, StoreError> {
        Ok(Box::new(sqlite::SqliteConn::open(&self.0, read_only)?))
    }
    fn repair(&self, _conn: &mut Box<dyn Conn + Send>) -> Result<(), StoreError> {
        Ok(())
    }
}

struct PgConnector(String);
impl Connector for PgConnector {
    fn open(&self, _read_only: bool) -> Result<Box<dyn Conn + Send>, StoreError> {
        Ok(Box::new(pg::PgConn::connect(&self.0)?))
    }
    fn repair(&self, conn: &mut Box<dyn Conn + Send>) -> Result<(), StoreError> {
        // A broken connection answers every statement with an error; replace it.
        if conn.is_closed() || conn.batch("select 1").is_err() {
            *conn = self.open(false)?;
        }
        Ok(())
    }
}

/// The database: cheap to clone, shared by every request and worker.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    url: DatabaseUrl,
    writer: flume::Sender<WriteJob>,
    reader: flume::Sender<ReadJob>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").field("url", &self.inner.url).finish()
    }
}

impl Store {
    /// Connects, applies pending migrations, and starts the connection threads.
    pub fn open(url: &DatabaseUrl) -> Result<Self, StoreError> {
        Self::open_with(url, StoreOptions::for_backend(url.backend()))
    }

    /// Safe to call from async code: connecting happens on a plain thread, because the synchronous
    /// PostgreSQL client must not block a runtime thread.
    pub fn open_with(url: &DatabaseUrl, opts: StoreOptions) -> Result<Self, StoreError> {
        std::thread::scope(|s| {
            s.spawn(|| Self::open_on_this_thread(url, opts))
                .join()
                .unwrap_or_else(|_| Err(StoreError::Db("opening the database panicked".into())))
        })
    }

    fn open_on_this_thread(url: &DatabaseUrl, opts: StoreOptions) -> Result<Self, StoreError> {
        let connector: Arc<dyn Connector> = match url {
            DatabaseUrl::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| StoreError::Db(format!("cannot create {}: {e}", dir.display())))?;
                }
                Arc::new(SqliteConnector(path.clone()))
            }
            DatabaseUrl::Postgres(u) => Arc::new(PgConnector(u.clone())),
        };
        let mut first = connector.open(false)?;
        migrations::apply(first.as_mut())?;

        let (wtx, wrx) = flume::bounded::<WriteJob>(opts.queue_capacity);
        let (rtx, rrx) = flume::bounded::<ReadJob>(opts.queue_capacity);
        let spawn_err = |e: std::io::Error| StoreError::Db(format!("cannot start a database thread: {e}"));
        let mut conn = Some(first);
        for i in 0..opts.writers.max(1) {
            let c = match conn.take() {
                Some(c) => c,
                None => connector.open(false)?,
            };
            pool::spawn_writer(format!("db-writer-{i}"), connector.clone(), c, wrx.clone()).map_err(spawn_err)?;
        }
        for i in 0..opts.readers.max(1) {
            let c = connector.open(true)?;
            pool::spawn_reader(format!("db-reader-{i}"), connector.clone(), c, rrx.clone()).map_err(spawn_err)?;
        }
        Ok(Self {
            inner: Arc::new(Inner {
                url: url.clone(),
                writer: wtx,
                reader: rtx,
            }),
        })
    }

    pub fn url(&self) -> &DatabaseUrl {
        &self.inner.url
    }

    pub fn backend(&self) -> Backend {
        self.inner.url.backend()
    }

    /// Runs `f` in a transaction (grouped with other writers' jobs) and returns once it is committed
    /// durably. If `f` fails, its changes are rolled back and nobody else's are affected.
    pub async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Conn) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(f, true).await
    }

    /// Like [`Store::write`], for a hot job that fails only when the database fails: it makes every
    /// check that can refuse it before it writes anything, and answers a refusal as `Ok`. It runs
    /// without a savepoint of its own, which on SQLite saves copying every page it shares with the
    /// transaction's earlier jobs. Should it fail after all, the whole transaction is rolled back
    /// and every job in it fails (the others with [`StoreError::Overloaded`], which callers answer
    /// with 503 and Retry-After); nothing half-written is committed.
    pub async fn write_unguarded<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Conn) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(f, false).await
    }

    async fn submit<T, F>(&self, f: F, savepoint: bool) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Conn) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel::<Result<T, StoreError>>();
        let run = Box::new(move |conn: &mut dyn Conn| {
            let result = f(conn);
            let ok = result.is_ok();
            let finisher: Finisher = Box::new(move |commit_error| {
                let _ = tx.send(match commit_error {
                    Some(e) if ok => Err(e),
                    _ => result,
                });
            });
            (ok, finisher)
        });
        self.inner
            .writer
            .try_send(WriteJob { run, savepoint })
            .map_err(|e| match e {
                flume::TrySendError::Full(_) => StoreError::Overloaded,
                flume::TrySendError::Disconnected(_) => StoreError::Closed,
            })?;
        rx.await
            .map_err(|_| StoreError::Db("the write was abandoned (transaction failed to start)".into()))?
    }

    /// Runs `f` on a reader connection.
    pub async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Conn) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel::<Result<T, StoreError>>();
        let job: ReadJob = Box::new(move |conn: &mut dyn Conn| {
            let _ = tx.send(f(conn));
        });
        self.inner.reader.try_send(job).map_err(|e| match e {
            flume::TrySendError::Full(_) => StoreError::Overloaded,
            flume::TrySendError::Disconnected(_) => StoreError::Closed,
        })?;
        rx.await.map_err(|_| StoreError::Db("the read was abandoned".into()))?
    }
}
