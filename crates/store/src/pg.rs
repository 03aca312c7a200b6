//! The PostgreSQL connection, through the synchronous `postgres` crate on the store's own threads.
//!
//! Why not sqlx here, as DESIGN.md first said: with the sync client both backends implement the same
//! synchronous `Conn` trait, so every query and every piece of store logic exists once and runs in
//! the same group-commit writer; sqlx would have forced a second, async copy of each. The `postgres`
//! crate is the same author's tokio-postgres underneath, so the wire protocol work is identical.

use crate::sql::{to_postgres_placeholders, Backend, Conn, Row, Val};
use crate::StoreError;
use bytes::BytesMut;
use postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use postgres::{Client, NoTls, Statement};
use std::collections::HashMap;
use std::error::Error;

pub struct PgConn {
    client: Client,
    statements: HashMap<String, Statement>,
    heads: crate::journal::PendingHeads,
    org_config: crate::org_config::OrgConfigCache,
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
        let client = Client::connect(url, NoTls)?;
        Ok(Self {
            client,
            statements: HashMap::new(),
            heads: crate::journal::PendingHeads::default(),
            org_config: crate::org_config::OrgConfigCache::default(),
        })
    }

    fn prepare(&mut self, sql: &str) -> Result<Statement, StoreError> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let stmt = self.client.prepare(&to_postgres_placeholders(sql))?;
        self.statements.insert(sql.to_owned(), stmt.clone());
        Ok(stmt)
    }
}

fn refs(params: &[Val]) -> Vec<&(dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

fn read_row(row: &postgres::Row) -> Result<Row, StoreError> {
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
        let stmt = self.prepare(sql)?;
        Ok(self.client.execute(&stmt, &refs(params))?)
    }

    fn query(&mut self, sql: &str, params: &[Val]) -> Result<Vec<Row>, StoreError> {
        let stmt = self.prepare(sql)?;
        let rows = self.client.query(&stmt, &refs(params))?;
        rows.iter().map(read_row).collect()
    }

    fn batch(&mut self, sql: &str) -> Result<(), StoreError> {
        self.client.batch_execute(sql)?;
        Ok(())
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
