//! Writes queued with `Conn::execute_later` (pipelined on PostgreSQL, run at once on SQLite) are
//! part of the job that queued them, on a fresh SQLite file and a fresh PostgreSQL database: a
//! read in the same job sees them; one that fails fails its job alone, and nothing else that job
//! wrote is stored, while jobs beside it in the same transaction commit; in a job without a
//! savepoint it fails the job (and its transaction), never an acknowledgement of a lost write.
//! Reads sent ahead with `Conn::prefetch` are answered from what was sent, at most once, never
//! after a write and never to another job.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use openline_store::testing::TestDb;
use openline_store::{params, Backend, Store, StoreError, Val};
use std::future::Future;
use std::pin::Pin;

openline_store::both_backends! {
    a_read_in_the_same_job_sees_a_queued_write => read_sees_write;
    a_queued_write_that_fails_fails_its_job_alone => failing_write_fails_its_job;
    a_queued_write_that_fails_in_a_job_without_savepoint_fails_the_job => failing_write_unguarded;
    a_job_that_fails_before_its_first_statement_fails_alone => failing_before_any_statement;
    a_prefetched_read_is_never_answered_after_a_write_of_its_job => prefetch_then_write;
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

const COUNT: &str = "select count(*) from probe";

/// Whatever a job prefetched, a write of the job (queued or not) makes the next read run afresh;
/// a statement that may write cannot be prefetched.
async fn prefetch_then_write(backend: Backend) {
    let (_db, store) = store_with_table(backend).await;
    let seen = store
        .write(|c| {
            c.prefetch(&[(COUNT, vec![])])?;
            c.execute_later(INSERT, insert("a"))?;
            let after_queued = c.query_one(COUNT, &[])?.i64(0)?;
            c.prefetch(&[(COUNT, vec![])])?;
            c.execute(INSERT, &insert("b"))?;
            let after_executed = c.query_one(COUNT, &[])?.i64(0)?;
            // Read after read: the prefetched answer stands (nothing was written in between).
            c.prefetch(&[(COUNT, vec![]), ("select id from probe order by id", vec![])])?;
            let ids: Vec<String> = c
                .query("select id from probe order by id", &[])?
                .iter()
                .map(|r| r.string(0))
                .collect::<Result<_, _>>()?;
            Ok((after_queued, after_executed, ids, c.query_one(COUNT, &[])?.i64(0)?))
        })
        .await
        .unwrap();
    assert_eq!(seen, (1, 2, vec!["a".to_owned(), "b".to_owned()], 2));

    // A write is not prefetched: refused, and nothing of it runs.
    let refused = store
        .write(|c| c.prefetch(&[(COUNT, vec![]), (INSERT, insert("w"))]))
        .await;
    assert!(refused.is_err(), "a write is not prefetched: {refused:?}");
    assert_eq!(stored(&store).await, ["a", "b"]);
}

/// The server's clock, in microseconds: a read whose every run answers differently.
const CLOCK: &str = "select cast(extract(epoch from clock_timestamp()) * 1000000 as bigint)";
/// The same read as another statement (never matched to a prefetch of `CLOCK`).
const CLOCK_AGAIN: &str = "select cast(extract(epoch from clock_timestamp()) * 1000000 as bigint) as again";

/// PostgreSQL answers a prefetched read from what it sent ahead, once; the next read of the same
/// statement runs again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_answers_a_prefetched_read_from_the_prefetch_once() {
    let (_db, store) = store_with_table(Backend::Postgres).await;
    let (live_before, prefetched, live_after) = store
        .write(|c| {
            c.prefetch(&[(CLOCK, vec![])])?;
            std::thread::sleep(std::time::Duration::from_millis(20));
            let live_before = c.query_one(CLOCK_AGAIN, &[])?.i64(0)?;
            let prefetched = c.query_one(CLOCK, &[])?.i64(0)?;
            let live_after = c.query_one(CLOCK, &[])?.i64(0)?;
            Ok((live_before, prefetched, live_after))
        })
        .await
        .unwrap();
    assert!(
        prefetched + 20_000 <= live_before,
        "the answer was read at the prefetch, 20 ms before: {prefetched} vs {live_before}"
    );
    assert!(
        live_after >= live_before,
        "the second read ran afresh: {live_after} vs {live_before}"
    );
}

/// What a job prefetched and did not read is not the next job's answer, even in the same
/// transaction with no savepoint between them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_forgets_prefetched_reads_at_the_end_of_the_job() {
    use std::sync::atomic::{AtomicI64, Ordering};
    use std::sync::Arc;
    let (_db, store) = store_with_table(Backend::Postgres).await;
    let (first, second) = (Arc::new(AtomicI64::new(0)), Arc::new(AtomicI64::new(0)));
    let busy = busy_writer(&store);
    let (s1, s2, f1, f2) = (store.clone(), store.clone(), first.clone(), second.clone());
    let leaves = submitted(async move {
        s1.write_unguarded(move |c| {
            c.prefetch(&[(CLOCK, vec![])])?;
            f1.store(c.query_one(CLOCK_AGAIN, &[])?.i64(0)?, Ordering::SeqCst);
            Ok(())
        })
        .await
    });
    let reads = submitted(async move {
        s2.write_unguarded(move |c| {
            f2.store(c.query_one(CLOCK, &[])?.i64(0)?, Ordering::SeqCst);
            Ok(())
        })
        .await
    });
    busy.await.unwrap();
    leaves.await.unwrap();
    reads.await.unwrap();
    let (first, second) = (first.load(Ordering::SeqCst), second.load(Ordering::SeqCst));
    assert!(second > first, "the second job read afresh: {second} vs {first}");
}
