//! The partial indexes on messages (migration 0016) serve the queries they exist for: held messages
//! of a thread, an organization's business-initiated messages, its DLP-flagged messages. Checked
//! with SQLite's `explain query plan`; PostgreSQL's planner decides by statistics, so there the
//! contract tests cover the results, not the plan.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use openline_store::testing::TestDb;
use openline_store::{params, Backend, Store};

async fn plan(store: &Store, sql: &'static str) -> String {
    store
        .read(move |c| {
            let n = sql.matches('?').count();
            let rows = c.query(&format!("explain query plan {sql}"), &params!["x", 0i64][..n])?;
            let mut out = Vec::new();
            for r in rows {
                out.push(r.string(3)?);
            }
            Ok(out.join(" | "))
        })
        .await
        .unwrap()
}

#[tokio::test]
async fn lookups_of_held_business_initiated_and_flagged_messages_use_the_partial_indexes() {
    let db = TestDb::new(Backend::Sqlite);
    let store = Store::open(&db.url).unwrap();
    let held = plan(
        &store,
        "select id from messages where conversation_id = ? and queue_reason is not null and status = 'queued' limit 1",
    )
    .await;
    assert!(held.contains("messages_queued"), "{held}");
    // Whether anything is held at all (asked before every batch of inbound messages looks for the
    // contacts' held messages): one step down the partial index, no scan, no sort.
    let anything = plan(
        &store,
        "select 1 from messages where queue_reason is not null order by queue_reason, created_at limit 1",
    )
    .await;
    assert!(anything.contains("messages_held_reason"), "{anything}");
    assert!(!anything.contains("TEMP B-TREE"), "{anything}");
    let initiated = plan(
        &store,
        "select count(*) from messages m where m.org_id = ? and m.business_initiated = 1 and m.created_at > ?",
    )
    .await;
    assert!(initiated.contains("messages_business_initiated"), "{initiated}");
    let flagged = plan(
        &store,
        "select id from messages where org_id = ? and dlp_flagged = 1 and dlp_reviewed_at is null and created_at > ?",
    )
    .await;
    assert!(flagged.contains("messages_dlp_flagged"), "{flagged}");
    // And they are partial: an inbound message (none of the three) adds no entry to them.
    let partial = store
        .read(|c| {
            let rows = c.query(
                "select name from sqlite_master where type = 'index' and tbl_name = 'messages' and sql like '% where %' order by name",
                &[],
            )?;
            rows.iter().map(|r| r.string(0)).collect::<Result<Vec<_>, _>>()
        })
        .await
        .unwrap();
    for index in ["messages_business_initiated", "messages_dlp_flagged", "messages_queued"] {
        assert!(
            partial.iter().any(|p| p == index),
            "{index} is not partial: {partial:?}"
        );
    }
}
