//! `Conn::lookup_each`, the many-keys lookup of the batched ingest and send paths, on a fresh SQLite
//! file and a fresh PostgreSQL database: every key's rows come back (more keys than one union holds,
//! keys with two columns of two types, a key that matches nothing, a repeated key, a null), a `?`
//! inside a quoted literal of the branch stays a literal, and on PostgreSQL, whose keys are bound as
//! arrays, every key is still its own index lookup on a table the planner has no statistics for.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use openline_store::testing::TestDb;
use openline_store::{Backend, Store, Val};
use std::collections::BTreeSet;

openline_store::both_backends! {
    every_keys_rows_come_back_once_a_repeated_key_at_most_twice => every_key;
    no_keys_is_no_rows => no_keys;
}

const ROWS: i64 = 3_000;

fn seed(c: &mut dyn openline_store::Conn) -> Result<(), openline_store::StoreError> {
    c.batch("create table lookup_probe (a text not null, b bigint not null, v text, primary key (a, b))")?;
    for chunk in (0..ROWS).collect::<Vec<_>>().chunks(500) {
        let rows = openline_store::sql::value_rows(chunk.len(), "(?, ?, ?)");
        let mut vals = Vec::new();
        for i in chunk {
            vals.extend([
                Val::from(format!("k{}", i % 100)),
                Val::from(*i),
                Val::from(format!("v{i}")),
            ]);
        }
        c.execute(&format!("insert into lookup_probe (a, b, v) values {rows}"), &vals)?;
    }
    Ok(())
}

async fn every_key(backend: Backend) {
    let db = TestDb::new(backend);
    let store = Store::open(&db.url).expect("open store");
    let (found, literal) = store
        .write(|c| {
            seed(c)?;
            // 150 keys: 100 that exist, 40 that do not, a repeat of the first, and a null.
            let mut keys: Vec<Vec<Val>> = (0..100)
                .map(|i| vec![Val::from(format!("k{}", i % 100)), Val::I64(i * 7)])
                .collect();
            keys.extend((0..40).map(|i| vec![Val::from(format!("missing{i}")), Val::I64(i)]));
            keys.push(keys[0].clone());
            keys.push(vec![Val::Null, Val::I64(1)]);
            let rows = c.lookup_each(
                "select a, b, v, '?' as q from lookup_probe where a = ? and b = ?",
                &keys,
            )?;
            let mut found: Vec<(String, i64, String)> = Vec::new();
            let mut literal = BTreeSet::new();
            for r in rows {
                found.push((r.string(0)?, r.i64(1)?, r.string(2)?));
                literal.insert(r.string(3)?);
            }
            Ok((found, literal))
        })
        .await
        .unwrap();
    // Row i*7 exists with a = k{(i*7) % 100}: only keys whose a matches it find a row.
    let expected: BTreeSet<(String, i64, String)> = (0..100i64)
        .filter(|i| (i * 7) % 100 == i % 100)
        .map(|i| (format!("k{}", i % 100), i * 7, format!("v{}", i * 7)))
        .collect();
    assert!(!expected.is_empty());
    let distinct: BTreeSet<_> = found.iter().cloned().collect();
    assert_eq!(distinct, expected);
    for row in &expected {
        let times = found.iter().filter(|f| *f == row).count();
        assert!((1..=2).contains(&times), "{row:?} came back {times} times");
    }
    assert_eq!(literal, BTreeSet::from(["?".to_owned()]));
}

async fn no_keys(backend: Backend) {
    let db = TestDb::new(backend);
    let store = Store::open(&db.url).expect("open store");
    let rows = store
        .read(|c| c.lookup_each("select id from organizations where id = ?", &[]))
        .await
        .unwrap();
    assert!(rows.is_empty());
}

/// With keys bound as arrays, a planner free to pull the per-key branch up into a join could answer
/// 100 keys with one pass over the whole table (a hash join over a sequential scan), which is what a
/// young database's missing statistics invite. Counted by the table's own scan statistics within the
/// transaction: index scans, and not one sequential scan.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_looks_up_every_key_through_the_index() {
    let db = TestDb::new(Backend::Postgres);
    let store = Store::open(&db.url).expect("open store");
    let (seq, idx, found) = store
        .write(|c| {
            seed(c)?;
            // Creating and filling the table counts scans of its own.
            let scans = "select seq_scan, idx_scan from pg_stat_xact_user_tables where relname = 'lookup_probe'";
            let before = c.query_one(scans, &[])?;
            let keys: Vec<Vec<Val>> = (0..100)
                .map(|i| vec![Val::from(format!("k{}", i % 100)), Val::I64(i)])
                .collect();
            let found = c
                .lookup_each("select v from lookup_probe where a = ? and b = ?", &keys)?
                .len();
            let after = c.query_one(scans, &[])?;
            Ok((after.i64(0)? - before.i64(0)?, after.i64(1)? - before.i64(1)?, found))
        })
        .await
        .unwrap();
    assert_eq!(found, 100);
    assert_eq!(seq, 0, "a sequential scan of the whole table");
    assert!(idx >= 1, "no index scan");
}
