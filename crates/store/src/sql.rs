//! The one SQL interface both backends implement. Queries are written once, with `?` placeholders,
//! and run unchanged on SQLite; the PostgreSQL connection rewrites them to `$1, $2, …` (cheap, and
//! cached with the prepared statement). Values cross the boundary as `Val`, so the store logic never
//! sees a backend type. This is why the backends cannot drift: there is no second copy of a query.

use crate::StoreError;

/// Which database engine a connection talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A value passed to or read from SQL. Text for ids, strings and JSON; 64-bit integers for times
/// (epoch milliseconds), counts and booleans (0/1).
#[derive(Debug, Clone, PartialEq)]
pub enum Val {
    Null,
    I64(i64),
    Text(String),
    Bytes(Vec<u8>),
}

impl From<i64> for Val {
    fn from(v: i64) -> Self {
        Val::I64(v)
    }
}
impl From<bool> for Val {
    fn from(v: bool) -> Self {
        Val::I64(i64::from(v))
    }
}
impl From<&str> for Val {
    fn from(v: &str) -> Self {
        Val::Text(v.to_owned())
    }
}
impl From<String> for Val {
    fn from(v: String) -> Self {
        Val::Text(v)
    }
}
impl From<&String> for Val {
    fn from(v: &String) -> Self {
        Val::Text(v.clone())
    }
}
impl<T: Into<Val>> From<Option<T>> for Val {
    fn from(v: Option<T>) -> Self {
        v.map_or(Val::Null, Into::into)
    }
}

/// Builds a `&[Val]` from mixed values: `params![id, now, Some("x")]`.
#[macro_export]
macro_rules! params {
    ($($v:expr),* $(,)?) => { &[$($crate::sql::Val::from($v)),*][..] };
}

/// One result row, read by column position.
#[derive(Debug, Clone)]
pub struct Row(pub Vec<Val>);

impl Row {
    fn at(&self, i: usize) -> Result<&Val, StoreError> {
        self.0
            .get(i)
            .ok_or_else(|| StoreError::Decode(format!("no column {i}")))
    }
    pub fn i64(&self, i: usize) -> Result<i64, StoreError> {
        match self.at(i)? {
            Val::I64(v) => Ok(*v),
            other => Err(StoreError::Decode(format!(
                "column {i}: expected integer, got {other:?}"
            ))),
        }
    }
    pub fn opt_i64(&self, i: usize) -> Result<Option<i64>, StoreError> {
        match self.at(i)? {
            Val::Null => Ok(None),
            _ => self.i64(i).map(Some),
        }
    }
    pub fn bool(&self, i: usize) -> Result<bool, StoreError> {
        Ok(self.i64(i)? != 0)
    }
    pub fn string(&self, i: usize) -> Result<String, StoreError> {
        match self.at(i)? {
            Val::Text(v) => Ok(v.clone()),
            other => Err(StoreError::Decode(format!("column {i}: expected text, got {other:?}"))),
        }
    }
    pub fn opt_string(&self, i: usize) -> Result<Option<String>, StoreError> {
        match self.at(i)? {
            Val::Null => Ok(None),
            _ => self.string(i).map(Some),
        }
    }
    /// A text column holding JSON.
    pub fn opt_json(&self, i: usize) -> Result<Option<serde_json::Value>, StoreError> {
        match self.opt_string(i)? {
            None => Ok(None),
            Some(s) => serde_json::from_str(&s)
                .map(Some)
                .map_err(|e| StoreError::Decode(e.to_string())),
        }
    }
    /// A text column holding one of the domain's text enums.
    pub fn parsed<T>(&self, i: usize, parse: fn(&str) -> Option<T>) -> Result<T, StoreError> {
        let s = self.string(i)?;
        parse(&s).ok_or_else(|| StoreError::Decode(format!("column {i}: unknown value {s:?}")))
    }
}

/// A connection to either backend. Store logic is written once against this trait.
pub trait Conn {
    fn backend(&self) -> Backend;
    /// Runs one statement; returns the number of rows changed.
    fn execute(&mut self, sql: &str, params: &[Val]) -> Result<u64, StoreError>;
    /// Runs one statement and returns every row.
    fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Row>, StoreError>;
    /// Runs a write whose row count the caller does not need. PostgreSQL queues it and sends it
    /// with the next statement that needs an answer (pipelined: one round trip for all of them),
    /// so its error, if any, is that statement's; SQLite runs it at once. Reads after it see it
    /// either way. The writer sends what a job queued at the latest with the job's savepoint
    /// release (a queued write that fails fails its job alone, rolled back to its savepoint) or,
    /// for a job without a savepoint, with the next statement or the commit (a failure there fails
    /// the transaction's every job, as any failure in such a job does).
    fn execute_later(&mut self, sql: &str, params: Vec<Val>) -> Result<(), StoreError> {
        self.execute(sql, &params).map(|_| ())
    }
    /// Sends the writes [`Conn::execute_later`] queued, and waits for them.
    fn flush(&mut self) -> Result<(), StoreError> {
        Ok(())
    }
    /// [`Conn::batch`] for transaction control whose success nobody waits for (the savepoint a job
    /// opens): PostgreSQL sends it with the next statement, as [`Conn::execute_later`] does.
    fn batch_later(&mut self, sql: &str) -> Result<(), StoreError> {
        self.batch(sql)
    }
    /// Forgets queued writes unsent (the job that queued them failed and is rolled back); queued
    /// transaction control is kept.
    fn discard_later(&mut self) {}
    /// Sends reads a job is about to make all at once, so that their answers are waiting when it
    /// makes them. PostgreSQL pipelines them (one round trip for all, instead of one each) and keeps
    /// each answer for the next [`Conn::query`] of the same statement with the same parameters;
    /// SQLite, where a read costs no round trip, does nothing. A kept answer is given at most once,
    /// and never after a write: any statement that may write, queued or not, transaction control
    /// and the end of the job forget every one ([`Conn::forget_prefetched`]). A read that was not
    /// prefetched (or differs in statement or parameters) simply runs. A statement that may write
    /// is refused, on both backends: it must run when the job asks for it.
    fn prefetch(&mut self, reads: &[(&str, Vec<Val>)]) -> Result<(), StoreError> {
        refuse_writes(reads)
    }
    /// Forgets the answers [`Conn::prefetch`] kept and nobody read.
    fn forget_prefetched(&mut self) {}
    /// Runs statements without parameters (migrations, transaction control).
    fn batch(&mut self, sql: &str) -> Result<(), StoreError>;
    /// Whether the connection is known to be unusable (the server closed it), found without a round
    /// trip. `false` does not promise it works; a failed statement finds that out.
    fn is_closed(&self) -> bool {
        false
    }
    /// Journal chain heads advanced in the current transaction and not yet written back (see
    /// [`crate::journal::flush_heads`]).
    fn pending_heads(&mut self) -> &mut crate::journal::PendingHeads;
    /// The organization configuration this connection resolved (see [`crate::org_config`]).
    fn org_config(&mut self) -> &mut crate::org_config::OrgConfigCache;

    /// Runs `branch` (a `select` with one `?` per key column, filled from each key in order) once
    /// per key and returns every row, as one statement. A repeated key can return its rows twice;
    /// callers collect into maps or sets. Every part is an equality lookup run per key: an `IN (…)` list looks the
    /// same to the reader, but with stale statistics (a young PostgreSQL database that autovacuum has
    /// not analysed yet) the planner may answer it by walking a whole index prefix and filtering,
    /// thousands of rows for 64 keys. By default a [`union_lookup`]; PostgreSQL binds the keys as
    /// arrays instead (see `pg.rs`), one short statement to plan rather than 64 branches.
    fn lookup_each(&mut self, branch: &str, keys: &[Vec<Val>]) -> Result<Vec<Row>, StoreError> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let (sql, vals) = union_lookup(branch, keys);
        self.query(&sql, &vals)
    }

    /// The first row, if any.
    fn query_opt(&mut self, sql: &str, params: &[Val]) -> Result<Option<Row>, StoreError> {
        Ok(self.query(sql, params)?.into_iter().next())
    }
    /// Exactly one row, or `NotFound`.
    fn query_one(&mut self, sql: &str, params: &[Val]) -> Result<Row, StoreError> {
        self.query_opt(sql, params)?.ok_or(StoreError::NotFound)
    }
}

/// Whether a statement run through [`Conn::query`] may change rows: anything but a `select` or a
/// `with` that neither inserts, updates nor deletes. (`execute` and `batch` always count as writes.)
/// What a connection learnt from reads (the configuration token, prefetched answers) is forgotten
/// after one.
pub(crate) fn may_write(sql: &str) -> bool {
    let head = sql.trim_start();
    let starts = |w: &str| head.get(..w.len()).is_some_and(|h| h.eq_ignore_ascii_case(w));
    if starts("select") {
        return false;
    }
    if starts("with") {
        let lower = head.to_ascii_lowercase();
        return ["insert ", "update ", "delete "].iter().any(|w| lower.contains(w));
    }
    true
}

/// [`Conn::prefetch`]'s check: only reads can be sent ahead.
pub(crate) fn refuse_writes(reads: &[(&str, Vec<Val>)]) -> Result<(), StoreError> {
    match reads.iter().find(|(sql, _)| may_write(sql)) {
        Some((sql, _)) => Err(StoreError::Db(format!("only reads can be prefetched: {sql}"))),
        None => Ok(()),
    }
}

/// `?, ?, ?` for an `IN (…)` list of `n` values (n ≥ 1).
pub fn placeholders(n: usize) -> String {
    let mut s = String::with_capacity(n * 3);
    for i in 0..n.max(1) {
        if i > 0 {
            s.push_str(", ");
        }
        s.push('?');
    }
    s
}

/// `row, row, …`: the `VALUES` list of a multi-row insert of `n` rows shaped like `row` (n ≥ 1).
pub fn value_rows(n: usize, row: &str) -> String {
    let mut s = String::with_capacity(n * (row.len() + 2));
    for i in 0..n.max(1) {
        if i > 0 {
            s.push_str(", ");
        }
        s.push_str(row);
    }
    s
}

/// `select cast(? as T) as name, … union all select cast(? as T), …` (`n` ≥ 1 rows of `columns`,
/// each a name and an SQL type): a derived table of typed rows for an `update … from`, which
/// SQLite (3.33+) and PostgreSQL accept alike. The first select names the columns.
pub fn typed_rows(n: usize, columns: &[(&str, &str)]) -> String {
    let first: Vec<String> = columns
        .iter()
        .map(|(name, ty)| format!("cast(? as {ty}) as {name}"))
        .collect();
    let rest: Vec<String> = columns.iter().map(|(_, ty)| format!("cast(? as {ty})")).collect();
    let rest = format!(" union all select {}", rest.join(", "));
    let mut s = format!("select {}", first.join(", "));
    for _ in 1..n {
        s.push_str(&rest);
    }
    s
}

/// `branch union all branch …` (`n` ≥ 1 times): a lookup of many keys as one statement whose every
/// part is an equality lookup. An `IN (…)` list looks the same to the reader, but with stale
/// statistics (a young PostgreSQL database that autovacuum has not analysed yet) the planner may
/// answer it by walking a whole index prefix and filtering, thousands of rows for 64 keys; an
/// equality on a unique or leading index column has only one plan.
pub fn union_all(n: usize, branch: &str) -> String {
    let mut s = String::with_capacity(n * (branch.len() + 11));
    for i in 0..n.max(1) {
        if i > 0 {
            s.push_str(" union all ");
        }
        s.push_str(branch);
    }
    s
}

/// The statement and parameters of [`union_all`] of `branch` once per key. The key count is padded
/// up to a power of two by repeating the last key, so one statement shape serves many batch sizes
/// and the connection keeps one prepared statement per shape. The padding can return a key's rows
/// twice.
pub fn union_lookup(branch: &str, keys: &[Vec<Val>]) -> (String, Vec<Val>) {
    let n = keys.len().max(1).next_power_of_two();
    let mut vals = Vec::with_capacity(n * keys.first().map_or(0, Vec::len));
    for i in 0..n {
        if let Some(key) = keys.get(i).or(keys.last()) {
            vals.extend(key.iter().cloned());
        }
    }
    (union_all(n, branch), vals)
}

/// `branch` with its `?` placeholders (outside quoted literals) replaced by `k.k1, k.k2, …`, the
/// columns of the key table a backend's [`Conn::lookup_each`] joins it to.
pub fn branch_over_keys(branch: &str) -> String {
    number_placeholders(branch, "k.k")
}

/// Rewrites `?` placeholders to PostgreSQL's `$1, $2, …`, leaving `?` inside quoted literals alone.
pub fn to_postgres_placeholders(sql: &str) -> String {
    number_placeholders(sql, "$")
}

/// Each `?` outside a quoted literal replaced by `prefix` and its number, counting from 1.
fn number_placeholders(sql: &str, prefix: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    let mut in_quote = false;
    for c in sql.chars() {
        match c {
            '\'' => {
                in_quote = !in_quote;
                out.push(c);
            }
            '?' if !in_quote => {
                n += 1;
                out.push_str(prefix);
                out.push_str(&n.to_string());
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_outside_literals_only() {
        assert_eq!(
            to_postgres_placeholders("select '?' from t where a = ? and b in (?, ?)"),
            "select '?' from t where a = $1 and b in ($2, $3)"
        );
        assert_eq!(placeholders(3), "?, ?, ?");
        assert_eq!(
            typed_rows(2, &[("a", "text"), ("n", "bigint")]),
            "select cast(? as text) as a, cast(? as bigint) as n union all select cast(? as text), cast(? as bigint)"
        );
        assert_eq!(
            branch_over_keys("select '?' from t where a = ? and b = ?"),
            "select '?' from t where a = k.k1 and b = k.k2"
        );
    }

    #[test]
    fn only_reads_are_not_writes() {
        assert!(!may_write("select token from config_version where id = 1"));
        assert!(!may_write("\n  SELECT 1"));
        assert!(!may_write("with recursive chain(id) as (select 1) select * from chain"));
        assert!(may_write(
            "with moved as (delete from outbox where id = ? returning id) select * from moved"
        ));
        assert!(may_write("insert into senders (id) values (?) returning id"));
        assert!(may_write(
            "update organizations set whatsapp = ? where id = ? returning id"
        ));
        assert!(may_write(""));
    }
}
