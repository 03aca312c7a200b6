//! Writes queued with `Conn::execute_later` (pipelined on PostgreSQL, run at once on SQLite) are
//! part of the job that queued them, on a fresh SQLite file and a fresh PostgreSQL database: a
//! read in the same job sees them; one that fails fails its job alone, and nothing else that job
//! wrote is stored, while jobs beside it in the same transaction commit; in a job without a
//! savepoint it fails the job (and its transaction), never an acknowledgement of a lost write.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use openline_store::testing::TestDb;
use openline_store::{params, Backend, Store, StoreError, Val};
use std::future::Future;
use std::pin::Pin;

macro_rules! both_backends {
    ($($name:ident => $body:ident;)*) => {
        mod sqlite { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$body(openline_store::Backend::Sqlite).await } )* }
        mod postgres { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::$body(openline_store::Backend::Postgres).await } )* }
    };
}

both_backends! {
    a_read_in_the_same_job_sees_a_queued_write => read_sees_write;
    a_queued_write_that_fails_fails_its_job_alone => failing_write_fails_its_job;
    a_queued_write_that_fails_in_a_job_without_savepoint_fails_the_job => failing_write_unguarded;
    a_job_that_fails_before_its_first_statement_fails_alone => failing_before_any_statement;
}

async fn store_with_table(backend: Backend) -> (TestDb, Store) {
    let db = TestDb::new(backend);
    let store = Store::open(&db.url).expect("open store");
    store
        .write(|c| c.batch("create table probe (id text primary key, note text not null)"))
        .await
        .unwrap();
    (db, store)
}

fn insert(id: &str) -> Vec<Val> {
    vec![Val::from(id), Val::from("n")]
}

const INSERT: &str = "insert into probe (id, note) values (?, ?)";

async fn stored(store: &Store) -> Vec<String> {
    store
        .read(|c| {
            c.query("select id from probe order by id", &[])?
                .iter()
                .map(|r| r.string(0))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .unwrap()
}

async fn read_sees_write(backend: Backend) {
    let (_db, store) = store_with_table(backend).await;
    // More than any join polls at once (the server must receive every write before the read).
    let seen = store
        .write(|c| {
            for i in 0..100 {
                c.execute_later(INSERT, insert(&format!("w{i:03}")))?;
            }
            c.query_one("select count(*) from probe", &[])?.i64(0)
        })
        .await
        .unwrap();
    assert_eq!(seen, 100);
    let rows = stored(&store).await;
    assert_eq!(rows.len(), 100);
    assert_eq!((rows[0].as_str(), rows[99].as_str()), ("w000", "w099"));
}

type Queued = Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send>>;

/// Submits a write at once (polls it once), so jobs queue in the order written and usually share
/// one transaction.
fn submitted(f: impl Future<Output = Result<(), StoreError>> + Send + 'static) -> Queued {
    let mut f: Queued = Box::pin(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let _ = f.as_mut().poll(&mut cx);
    f
}

/// Keeps the writer busy for a moment, so the jobs submitted after it queue up and share one
/// transaction.
fn busy_writer(store: &Store) -> Queued {
    let store = store.clone();
    submitted(async move {
        store
            .write(|_| {
                std::thread::sleep(std::time::Duration::from_millis(200));
                Ok(())
            })
            .await
    })
}

async fn failing_write_fails_its_job(backend: Backend) {
    let (_db, store) = store_with_table(backend).await;
    store
        .write(|c| c.execute(INSERT, &insert("taken")).map(|_| ()))
        .await
        .unwrap();
    let busy = busy_writer(&store);
    let (s1, s2, s3) = (store.clone(), store.clone(), store.clone());
    let before = submitted(async move { s1.write(|c| c.execute_later(INSERT, insert("before"))).await });
    // Its first write is fine, its second collides with a stored row: it is the last thing the
    // job does, so it reaches the server only with the job's end.
    let failing = submitted(async move {
        s2.write(|c| {
            c.execute_later(INSERT, insert("half"))?;
            c.execute_later(INSERT, insert("taken"))
        })
        .await
    });
    let after = submitted(async move { s3.write(|c| c.execute_later(INSERT, insert("after"))).await });
    busy.await.unwrap();
    before.await.unwrap();
    let err = failing.await.expect_err("a job whose write failed reports it");
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    after.await.unwrap();
    assert_eq!(stored(&store).await, ["after", "before", "taken"]);
}

async fn failing_write_unguarded(backend: Backend) {
    let (_db, store) = store_with_table(backend).await;
    store
        .write(|c| c.execute(INSERT, &insert("taken")).map(|_| ()))
        .await
        .unwrap();
    let err = store
        .write_unguarded(|c| {
            c.execute_later(INSERT, insert("half"))?;
            c.execute_later(INSERT, insert("taken"))
        })
        .await
        .expect_err("the job's write failed");
    assert!(
        matches!(
            err,
            StoreError::Conflict(_) | StoreError::Overloaded | StoreError::Db(_)
        ),
        "{err:?}"
    );
    assert_eq!(stored(&store).await, ["taken"]);
    // The writer goes on.
    store
        .write(|c| c.execute(INSERT, params!["later", "n"]).map(|_| ()))
        .await
        .unwrap();
    assert_eq!(stored(&store).await, ["later", "taken"]);
}

/// The server closes every connection of the database (a restart, a failover, an administrator):
/// at most the jobs in flight fail, with an error rather than a hang or a panic, and the writer and
/// the readers reconnect by themselves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_connections_closed_by_the_server_are_replaced() {
    let (db, store) = store_with_table(Backend::Postgres).await;
    store.write(|c| c.execute_later(INSERT, insert("a"))).await.unwrap();
    assert_eq!(stored(&store).await, ["a"]);
    let openline_store::DatabaseUrl::Postgres(url) = db.url.clone() else {
        panic!("a PostgreSQL test database")
    };
    let name = url.rsplit('/').next().unwrap().to_owned();
    std::thread::spawn(move || {
        let mut admin = ::postgres::Client::connect(&openline_store::testing::admin_url(), ::postgres::NoTls).unwrap();
        let killed = admin
            .query(
                "select pg_terminate_backend(pid) from pg_stat_activity where datname = $1 and pid <> pg_backend_pid()",
                &[&name],
            )
            .unwrap();
        assert!(!killed.is_empty(), "the store's connections were found");
    })
    .join()
    .unwrap();
    // The first write and read after it may fail (their connection is gone); later ones work.
    let mut wrote = false;
    for i in 0..5 {
        let id = format!("b{i}");
        if store.write(move |c| c.execute_later(INSERT, insert(&id))).await.is_ok() {
            wrote = true;
            break;
        }
    }
    assert!(wrote, "the writer reconnected");
    let mut rows = Vec::new();
    for _ in 0..8 {
        if let Ok(r) = store.read(|c| c.query("select id from probe", &[])).await {
            rows = r;
            break;
        }
    }
    assert!(rows.len() >= 2, "the readers reconnected");
}

/// The savepoint a job opens is queued with its first statement (PostgreSQL): a job that refuses
/// before running any, with writes queued or none, is still rolled back to it alone.
async fn failing_before_any_statement(backend: Backend) {
    let (_db, store) = store_with_table(backend).await;
    let busy = busy_writer(&store);
    let (s1, s2, s3, s4) = (store.clone(), store.clone(), store.clone(), store.clone());
    let first = submitted(async move { s1.write(|c| c.execute_later(INSERT, insert("first"))).await });
    let refuses = submitted(async move { s2.write(|_| Err::<(), _>(StoreError::Conflict("refused".into()))).await });
    let queues_then_refuses = submitted(async move {
        s3.write(|c| {
            c.execute_later(INSERT, insert("never"))?;
            Err::<(), _>(StoreError::Conflict("refused".into()))
        })
        .await
    });
    let last = submitted(async move { s4.write(|c| c.execute_later(INSERT, insert("last"))).await });
    busy.await.unwrap();
    first.await.unwrap();
    assert!(matches!(refuses.await, Err(StoreError::Conflict(_))));
    assert!(matches!(queues_then_refuses.await, Err(StoreError::Conflict(_))));
    last.await.unwrap();
    assert_eq!(stored(&store).await, ["first", "last"]);
}
