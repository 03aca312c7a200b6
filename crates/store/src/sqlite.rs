//! The SQLite connection: a file in WAL mode with `synchronous=FULL`, so a commit that returns has
//! reached the disk. Statements are prepared once per connection and cached.

use crate::sql::{Backend, Conn, Row, Val};
use crate::StoreError;
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, ToSql};
use std::path::Path;

pub struct SqliteConn {
    conn: Connection,
    heads: crate::journal::PendingHeads,
    org_config: crate::org_config::OrgConfigCache,
}

impl ToSql for Val {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(match self {
            Val::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Val::I64(v) => ToSqlOutput::Borrowed(ValueRef::Integer(*v)),
            Val::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Val::Bytes(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
        })
    }
}

impl SqliteConn {
    /// Opens (creating if needed) the database file with openline's settings.
    pub fn open(path: &Path, read_only: bool) -> Result<Self, StoreError> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(
            "pragma journal_mode = wal;
             pragma synchronous = full;
             pragma foreign_keys = on;
             pragma temp_store = memory;
             pragma cache_size = -16000;",
        )?;
        if read_only {
            conn.execute_batch("pragma query_only = on;")?;
        }
        conn.set_prepared_statement_cache_capacity(256);
        Ok(Self {
            conn,
            heads: crate::journal::PendingHeads::default(),
            org_config: crate::org_config::OrgConfigCache::default(),
        })
    }
}

fn to_val(v: ValueRef<'_>) -> Val {
    match v {
        ValueRef::Null => Val::Null,
        ValueRef::Integer(i) => Val::I64(i),
        // openline stores no floating-point columns; keep the value readable if one appears.
        ValueRef::Real(f) => Val::Text(f.to_string()),
        ValueRef::Text(t) => Val::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Val::Bytes(b.to_vec()),
    }
}

impl Conn for SqliteConn {
    fn org_config(&mut self) -> &mut crate::org_config::OrgConfigCache {
        &mut self.org_config
    }

    fn pending_heads(&mut self) -> &mut crate::journal::PendingHeads {
        &mut self.heads
    }

    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    fn execute(&mut self, sql: &str, params: &[Val]) -> Result<u64, StoreError> {
        self.org_config.recheck();
        let mut stmt = self.conn.prepare_cached(sql)?;
        let n = stmt.execute(rusqlite::params_from_iter(params.iter()))?;
        Ok(n as u64)
    }

    fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Row>, StoreError> {
        if crate::sql::may_write(sql) {
            self.org_config.recheck();
        }
        let mut stmt = self.conn.prepare_cached(sql)?;
        let cols = stmt.column_count();
        let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let mut vals = Vec::with_capacity(cols);
            for i in 0..cols {
                vals.push(to_val(r.get_ref(i)?));
            }
            out.push(Row(vals));
        }
        Ok(out)
    }

    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        self.org_config.recheck();
        // Transaction control (begin, savepoint, release, commit) runs several times per write job:
        // a single statement goes through the statement cache instead of being parsed every time.
        // Several statements, or one that returns rows (`select 1`), take the general path.
        if !sql.contains(';') {
            let mut stmt = self.conn.prepare_cached(sql)?;
            if stmt.column_count() == 0 {
                stmt.raw_execute()?;
                return Ok(());
            }
        }
        self.conn.execute_batch(sql)?;
        Ok(())
    }
}
