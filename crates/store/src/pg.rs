//! The PostgreSQL connection: tokio-postgres driven synchronously on the store's own threads, each
//! connection with a single-threaded runtime of its own (what the `postgres` crate does; done here
//! so that writes can be pipelined, see [`Conn::execute_later`]).
//!
//! Why not sqlx here, as DESIGN.md first said: with a synchronous connection both backends implement
//! the same `Conn` trait, so every query and every piece of store logic exists once and runs in the
//! same group-commit writer; sqlx would have forced a second, async copy of each.
//!
//! Why pipelining: the writer runs a job's statements one after another, and each was a round trip
//! to the server. On a small virtual machine a loopback round trip costs 25-90 µs (`pgbench` of
//! `select 1` measured 90 µs on the benchmark machine), which made round trips, not the server's
//! work, the bound of PostgreSQL's throughput. Writes whose row count nobody reads are queued and go
//! to the server together with the next statement that needs an answer: one round trip for all.

use crate::sql::{branch_over_keys, may_write, to_postgres_placeholders, union_lookup, Backend, Conn, Row, Val};
use crate::StoreError;
use bytes::BytesMut;
use std::collections::HashMap;
use std::error::Error;
use std::future::Future;
use std::pin::Pin;
use std::task::Poll;
use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::{Client, NoTls, Statement};

/// A queued write: a prepared statement with its parameters, or transaction control.
enum Later {
    Write(Statement, Vec<Val>),
    Control(String),
}

/// A request sent to the server on its first poll, answered with a `T`.
type InFlight<'a, T> = Pin<Box<dyn Future<Output = Result<T, tokio_postgres::Error>> + Send + 'a>>;

type Driver = Pin<Box<dyn Future<Output = Result<(), tokio_postgres::Error>> + Send>>;

pub struct PgConn {
    runtime: tokio::runtime::Runtime,
    client: Client,
    /// The connection's I/O, polled while a request is waited for; `None` once it ended.
    driver: Option<Driver>,
    statements: HashMap<String, Statement>,
    /// Writes queued by `execute_later` and `batch_later`, sent with the next request.
    later: Vec<Later>,
    heads: crate::journal::PendingHeads,
    org_config: crate::org_config::OrgConfigCache,
    /// Answers of [`Conn::prefetch`] not read yet: statement, parameters, rows.
    prefetched: Vec<(String, Vec<Val>, Vec<Row>)>,
}

/// Every one of `requests`' answers, in order, failing with the first error. Each is polled in the
/// order given on every poll, so the server receives them in that order, all before the first
/// answer is waited for.
async fn all_in_order<T>(requests: Vec<InFlight<'_, T>>) -> Result<Vec<T>, tokio_postgres::Error> {
    let mut requests: Vec<(InFlight<'_, T>, Option<T>)> = requests.into_iter().map(|r| (r, None)).collect();
    std::future::poll_fn(|cx| {
        for (request, answer) in requests.iter_mut() {
            if answer.is_none() {
                match request.as_mut().poll(cx) {
                    Poll::Ready(Ok(rows)) => *answer = Some(rows),
                    Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                    Poll::Pending => {}
                }
            }
        }
        if requests.iter().all(|(_, a)| a.is_some()) {
            return Poll::Ready(Ok(requests.iter_mut().filter_map(|(_, a)| a.take()).collect()));
        }
        Poll::Pending
    })
    .await
}

/// Waits for every one of `writes` and then answers `request`'s result, failing with the first
/// error. The writes are polled (in order, by [`all_in_order`]) before the request, every time: a
/// request goes to the server on its first poll, so the server receives them in this order (a
/// general join may poll some later, and a read could then overtake a write it must see).
async fn in_order<'a, T>(
    writes: Vec<InFlight<'a, ()>>,
    request: impl Future<Output = Result<T, tokio_postgres::Error>> + 'a,
) -> Result<T, tokio_postgres::Error> {
    let mut writes = std::pin::pin!(all_in_order(writes));
    let mut request = std::pin::pin!(request);
    let (mut written, mut answer) = (false, None);
    std::future::poll_fn(|cx| {
        if !written {
            match writes.as_mut().poll(cx) {
                Poll::Ready(Ok(_)) => written = true,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => {}
            }
        }
        if answer.is_none() {
            if let Poll::Ready(r) = request.as_mut().poll(cx) {
                answer = Some(r?);
            }
        }
        if written {
            if let Some(a) = answer.take() {
                return Poll::Ready(Ok(a));
            }
        }
        Poll::Pending
    })
    .await
}

/// Waits for `fut` on the connection's runtime, driving the connection's I/O meanwhile.
fn block_on<T>(
    runtime: &tokio::runtime::Runtime,
    driver: &mut Option<Driver>,
    fut: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, tokio_postgres::Error> {
    let mut fut = std::pin::pin!(fut);
    runtime.block_on(std::future::poll_fn(|cx| {
        if let Some(d) = driver.as_mut() {
            match d.as_mut().poll(cx) {
                Poll::Pending => {}
                Poll::Ready(result) => {
                    // Closed by the server or broken: the request below fails with the reason.
                    if let Err(e) = result {
                        tracing::warn!(error = %e, "PostgreSQL connection ended");
                    }
                    *driver = None;
                }
            }
        }
        fut.as_mut().poll(cx)
    }))
}

impl ToSql for Val {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        match self {
            Val::Null => Ok(IsNull::Yes),
            Val::I64(v) => match *ty {
                Type::INT8 => v.to_sql(ty, out),
                Type::INT4 => i32::try_from(*v)?.to_sql(ty, out),
                Type::INT2 => i16::try_from(*v)?.to_sql(ty, out),
                Type::BOOL => (*v != 0).to_sql(ty, out),
                Type::TEXT | Type::VARCHAR => v.to_string().to_sql(ty, out),
                _ => Err(format!("cannot bind an integer to {ty}").into()),
            },
            Val::Text(s) => match *ty {
                Type::INT8 => s.parse::<i64>()?.to_sql(ty, out),
                _ => s.as_str().to_sql(ty, out),
            },
            Val::Bytes(b) => b.as_slice().to_sql(ty, out),
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

impl PgConn {
    pub fn connect(url: &str) -> Result<Self, StoreError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| StoreError::Db(format!("PostgreSQL connection runtime: {e}")))?;
        let (client, connection) = runtime.block_on(tokio_postgres::connect(url, NoTls))?;
        Ok(Self {
            runtime,
            client,
            driver: Some(Box::pin(connection)),
            statements: HashMap::new(),
            later: Vec::new(),
            heads: crate::journal::PendingHeads::default(),
            org_config: crate::org_config::OrgConfigCache::default(),
            prefetched: Vec::new(),
        })
    }

    fn prepare(&mut self, sql: &str) -> Result<Statement, StoreError> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let text = to_postgres_placeholders(sql);
        let stmt = block_on(&self.runtime, &mut self.driver, self.client.prepare(&text))?;
        self.statements.insert(sql.to_owned(), stmt.clone());
        Ok(stmt)
    }

    /// A statement that may write runs or is queued: what reads told this job may no longer hold
    /// (the configuration token, prefetched answers).
    fn wrote(&mut self) {
        self.org_config.recheck();
        self.prefetched.clear();
    }

    /// Sends the queued writes and then `request` (built on the client), all before waiting for any
    /// answer, and returns the request's answer. A queued write that fails fails this call.
    fn with_queued<'a, T, F, Fut>(&'a mut self, request: F) -> Result<T, StoreError>
    where
        F: FnOnce(&'a Client) -> Fut,
        Fut: Future<Output = Result<T, tokio_postgres::Error>> + 'a,
    {
        let later = std::mem::take(&mut self.later);
        let params: Vec<Vec<&(dyn ToSql + Sync)>> = later
            .iter()
            .map(|l| match l {
                Later::Write(_, vals) => refs(vals),
                Later::Control(_) => Vec::new(),
            })
            .collect();
        let client = &self.client;
        let writes: Vec<InFlight<'_, ()>> = later
            .iter()
            .zip(&params)
            .map(|(l, p)| -> InFlight<'_, ()> {
                match l {
                    Later::Write(stmt, _) => Box::pin(async move { client.execute(stmt, p).await.map(|_| ()) }),
                    Later::Control(sql) => Box::pin(client.batch_execute(sql)),
                }
            })
            .collect();
        Ok(block_on(
            &self.runtime,
            &mut self.driver,
            in_order(writes, request(client)),
        )?)
    }
}

/// One column of a [`Conn::lookup_each`]'s keys, bound as a PostgreSQL array.
enum KeyColumn {
    Text(Vec<Option<String>>),
    Int(Vec<Option<i64>>),
}

impl KeyColumn {
    /// The column's values as an array of one type, or `None` when they mix types (or hold bytes),
    /// which the lookup then answers as a union instead.
    fn of(keys: &[Vec<Val>], i: usize) -> Option<Self> {
        let is_int = keys.iter().any(|k| matches!(k.get(i), Some(Val::I64(_))));
        if is_int {
            keys.iter()
                .map(|k| match k.get(i)? {
                    Val::I64(v) => Some(Some(*v)),
                    Val::Null => Some(None),
                    _ => None,
                })
                .collect::<Option<_>>()
                .map(KeyColumn::Int)
        } else {
            keys.iter()
                .map(|k| match k.get(i)? {
                    Val::Text(v) => Some(Some(v.clone())),
                    Val::Null => Some(None),
                    _ => None,
                })
                .collect::<Option<_>>()
                .map(KeyColumn::Text)
        }
    }

    fn cast(&self) -> &'static str {
        match self {
            KeyColumn::Text(_) => "text[]",
            KeyColumn::Int(_) => "int8[]",
        }
    }

    fn as_param(&self) -> &(dyn ToSql + Sync) {
        match self {
            KeyColumn::Text(v) => v,
            KeyColumn::Int(v) => v,
        }
    }
}

/// `select x.* from unnest($1::text[], …) as k(k1, …) cross join lateral (branch offset 0) as x`:
/// the branch once per key, as one statement of the same shape for any number of keys. `offset 0`
/// keeps the planner from pulling the branch up into a join it could answer with a hash join over
/// a whole table (with a young database's stale statistics); left as a subquery that reads the
/// key's columns, it runs as its own equality lookup for every key, like a union's branch.
fn lookup_sql(branch: &str, columns: &[KeyColumn]) -> String {
    let arrays: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, c)| format!("${}::{}", i + 1, c.cast()))
        .collect();
    let names: Vec<String> = (1..=columns.len()).map(|i| format!("k{i}")).collect();
    format!(
        "select x.* from unnest({}) as k({}) cross join lateral ({} offset 0) as x",
        arrays.join(", "),
        names.join(", "),
        branch_over_keys(branch)
    )
}

fn refs(params: &[Val]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

fn read_row(row: &tokio_postgres::Row) -> Result<Row, StoreError> {
    let mut vals = Vec::with_capacity(row.len());
    for (i, col) in row.columns().iter().enumerate() {
        let v = match *col.type_() {
            Type::INT8 => row.try_get::<_, Option<i64>>(i)?.map_or(Val::Null, Val::I64),
            Type::INT4 => row
                .try_get::<_, Option<i32>>(i)?
                .map_or(Val::Null, |v| Val::I64(v.into())),
            Type::INT2 => row
                .try_get::<_, Option<i16>>(i)?
                .map_or(Val::Null, |v| Val::I64(v.into())),
            Type::BOOL => row
                .try_get::<_, Option<bool>>(i)?
                .map_or(Val::Null, |v| Val::I64(v.into())),
            Type::BYTEA => row.try_get::<_, Option<Vec<u8>>>(i)?.map_or(Val::Null, Val::Bytes),
            Type::NUMERIC => {
                return Err(StoreError::Decode(format!(
                    "column {i} is numeric; cast it to bigint in the query"
                )))
            }
            _ => row.try_get::<_, Option<String>>(i)?.map_or(Val::Null, Val::Text),
        };
        vals.push(v);
    }
    Ok(Row(vals))
}

impl Conn for PgConn {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    fn execute(&mut self, sql: &str, params: &[Val]) -> Result<u64, StoreError> {
        self.wrote();
        let stmt = self.prepare(sql)?;
        let p = refs(params);
        self.with_queued(|client| client.execute(&stmt, &p))
    }

    fn execute_later(&mut self, sql: &str, params: Vec<Val>) -> Result<(), StoreError> {
        self.wrote();
        let stmt = self.prepare(sql)?;
        self.later.push(Later::Write(stmt, params));
        Ok(())
    }

    fn batch_later(&mut self, sql: &str) -> Result<(), StoreError> {
        self.wrote();
        self.later.push(Later::Control(sql.to_owned()));
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StoreError> {
        if self.later.is_empty() {
            return Ok(());
        }
        self.with_queued(|_| async { Ok(()) })
    }

    /// The reads are prepared (a round trip for a statement this connection has not prepared yet)
    /// and then sent together, after the queued writes, in one round trip.
    fn prefetch(&mut self, reads: &[(&str, Vec<Val>)]) -> Result<(), StoreError> {
        self.prefetched.clear();
        crate::sql::refuse_writes(reads)?;
        let statements = reads
            .iter()
            .map(|(sql, _)| self.prepare(sql))
            .collect::<Result<Vec<_>, _>>()?;
        let params: Vec<Vec<&(dyn ToSql + Sync)>> = reads.iter().map(|(_, p)| refs(p)).collect();
        let answers = self.with_queued(|client| {
            all_in_order(
                statements
                    .iter()
                    .zip(&params)
                    .map(|(stmt, p)| -> InFlight<'_, Vec<tokio_postgres::Row>> { Box::pin(client.query(stmt, p)) })
                    .collect(),
            )
        })?;
        for ((sql, p), rows) in reads.iter().zip(answers) {
            let rows = rows.iter().map(read_row).collect::<Result<Vec<_>, _>>()?;
            self.prefetched.push(((*sql).to_owned(), p.clone(), rows));
        }
        Ok(())
    }

    fn forget_prefetched(&mut self) {
        self.prefetched.clear();
    }

    fn discard_later(&mut self) {
        // Transaction control stays: the savepoint a failed job is rolled back to is queued too.
        self.later.retain(|l| matches!(l, Later::Control(_)));
    }

    fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Row>, StoreError> {
        if may_write(sql) {
            self.wrote();
        } else if let Some(i) = self.prefetched.iter().position(|(s, p, _)| s == sql && p == params) {
            return Ok(self.prefetched.swap_remove(i).2);
        }
        let stmt = self.prepare(sql)?;
        let p = refs(params);
        let rows = self.with_queued(|client| client.query(&stmt, &p))?;
        rows.iter().map(read_row).collect()
    }

    /// The keys bound as one array per key column (see [`lookup_sql`]): one short statement for
    /// the server to plan at every bind, where a 64-branch union's planning cost more than running it.
    fn lookup_each(&mut self, branch: &str, keys: &[Vec<Val>]) -> Result<Vec<Row>, StoreError> {
        let Some(width) = keys.first().map(Vec::len) else {
            return Ok(Vec::new());
        };
        let columns: Option<Vec<KeyColumn>> = if width > 0 && keys.iter().all(|k| k.len() == width) {
            (0..width).map(|i| KeyColumn::of(keys, i)).collect()
        } else {
            None
        };
        let Some(columns) = columns else {
            let (sql, vals) = union_lookup(branch, keys);
            return self.query(&sql, &vals);
        };
        let stmt = self.prepare(&lookup_sql(branch, &columns))?;
        let params: Vec<&(dyn ToSql + Sync)> = columns.iter().map(KeyColumn::as_param).collect();
        let rows = self.with_queued(|client| client.query(&stmt, &params))?;
        rows.iter().map(read_row).collect()
    }

    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        self.wrote();
        self.with_queued(|client| client.batch_execute(sql))
    }
    fn is_closed(&self) -> bool {
        self.client.is_closed()
    }
    fn org_config(&mut self) -> &mut crate::org_config::OrgConfigCache {
        &mut self.org_config
    }

    fn pending_heads(&mut self) -> &mut crate::journal::PendingHeads {
        &mut self.heads
    }
}
