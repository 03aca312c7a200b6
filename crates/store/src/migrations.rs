//! Schema migrations, embedded in the binary and applied in order, each in its own transaction, on
//! either backend (the SQL is written to be accepted by both). `openline migrate` runs them
//! explicitly; `Store::open` runs pending ones at start-up. A migration that cannot be written for
//! both (triggers) has a PostgreSQL variant in [`POSTGRES_VARIANTS`]. On PostgreSQL an advisory
//! lock keeps two nodes starting at once from applying the same migration twice.

use crate::sql::{Backend, Conn};
use crate::{params, StoreError};

/// (version, name, SQL), in order. Never edit a released migration; add a new one.
pub const MIGRATIONS: &[(i64, &str, &str)] = &[
    (1, "foundation", include_str!("../migrations/0001_foundation.sql")),
    (2, "policy", include_str!("../migrations/0002_policy.sql")),
    (3, "pacing", include_str!("../migrations/0003_pacing.sql")),
    (4, "archive", include_str!("../migrations/0004_archive.sql")),
    (
        5,
        "outbound_webhooks",
        include_str!("../migrations/0005_outbound_webhooks.sql"),
    ),
    (6, "web", include_str!("../migrations/0006_web.sql")),
    (7, "ingest", include_str!("../migrations/0007_ingest.sql")),
    (8, "media", include_str!("../migrations/0008_media.sql")),
    (
        9,
        "twilio_senders",
        include_str!("../migrations/0009_twilio_senders.sql"),
    ),
    (10, "outbox_order", include_str!("../migrations/0010_outbox_order.sql")),
    (
        11,
        "duplicate_sends",
        include_str!("../migrations/0011_duplicate_sends.sql"),
    ),
    (
        13,
        "read_receipts",
        include_str!("../migrations/0013_read_receipts.sql"),
    ),
    (
        14,
        "sealed_webhook_secrets",
        include_str!("../migrations/0014_sealed_webhook_secrets.sql"),
    ),
    (
        15,
        "marketing_preferences",
        include_str!("../migrations/0015_marketing_preferences.sql"),
    ),
    (
        16,
        "partial_message_indexes",
        include_str!("../migrations/0016_partial_message_indexes.sql"),
    ),
    (
        17,
        "config_version",
        include_str!("../migrations/0017_config_version.sql"),
    ),
];

/// (version, SQL) run on PostgreSQL instead of the [`MIGRATIONS`] entry of the same version.
pub const POSTGRES_VARIANTS: &[(i64, &str)] = &[(17, include_str!("../migrations/0017_config_version.pg.sql"))];

/// Applies every pending migration; returns the versions applied now.
pub fn apply(conn: &mut dyn Conn) -> Result<Vec<i64>, StoreError> {
    if conn.backend() == Backend::Postgres {
        conn.batch("select pg_advisory_lock(7301)")?;
    }
    let result = apply_locked(conn);
    if conn.backend() == Backend::Postgres {
        let _ = conn.batch("select pg_advisory_unlock(7301)");
    }
    result
}

fn apply_locked(conn: &mut dyn Conn) -> Result<Vec<i64>, StoreError> {
    conn.batch(
        "create table if not exists schema_migrations (
            version bigint primary key, name text not null, applied_at bigint not null)",
    )?;
    let applied: Vec<i64> = conn
        .query("select version from schema_migrations order by version", &[])?
        .iter()
        .map(|r| r.i64(0))
        .collect::<Result<_, _>>()?;
    let mut now_applied = Vec::new();
    for (version, name, sql) in MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        let sql = match conn.backend() {
            Backend::Postgres => POSTGRES_VARIANTS
                .iter()
                .find(|(v, _)| v == version)
                .map_or(*sql, |(_, pg)| *pg),
            Backend::Sqlite => *sql,
        };
        conn.batch("begin")?;
        let step = conn.batch(sql).and_then(|_| {
            conn.execute(
                "insert into schema_migrations (version, name, applied_at) values (?, ?, ?)",
                params![*version, *name, now_ms()],
            )
        });
        match step {
            Ok(_) => conn.batch("commit")?,
            Err(e) => {
                let _ = conn.batch("rollback");
                return Err(StoreError::Db(format!("migration {version} ({name}) failed: {e}")));
            }
        }
        tracing::info!(version, name, "applied migration");
        now_applied.push(*version);
    }
    Ok(now_applied)
}

fn now_ms() -> i64 {
    use openline_domain::clock::Clock;
    openline_domain::clock::SystemClock.now()
}
