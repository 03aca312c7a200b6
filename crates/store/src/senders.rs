//! Senders: the business numbers an organization messages from, on a provider.

use crate::orgs::Scope;
use crate::sql::{Conn, Row};
use crate::{params, StoreError};
use openline_domain::{Channel, ProviderKind};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Sender {
    pub id: String,
    pub org_id: String,
    pub channel: Channel,
    pub provider: ProviderKind,
    /// E.164.
    pub phone_number: String,
    /// The provider's id for the number (Cloud API `phone_number_id`).
    pub phone_number_id: String,
    pub waba_id: Option<String>,
    pub display_name: String,
    pub throughput_per_s: i64,
    pub created_at: i64,
}

const COLS: &str =
    "id, org_id, channel, provider, phone_number, phone_number_id, waba_id, display_name, throughput_per_s, created_at";

fn from_row(r: &Row) -> Result<Sender, StoreError> {
    Ok(Sender {
        id: r.string(0)?,
        org_id: r.string(1)?,
        channel: r.parsed(2, Channel::parse)?,
        provider: r.parsed(3, ProviderKind::parse)?,
        phone_number: r.string(4)?,
        phone_number_id: r.string(5)?,
        waba_id: r.opt_string(6)?,
        display_name: r.string(7)?,
        throughput_per_s: r.i64(8)?,
        created_at: r.i64(9)?,
    })
}

pub struct NewSender<'a> {
    pub org_id: &'a str,
    pub channel: Channel,
    pub provider: ProviderKind,
    pub phone_number: &'a str,
    pub phone_number_id: &'a str,
    pub waba_id: Option<&'a str>,
    pub display_name: &'a str,
    pub throughput_per_s: i64,
}

pub fn create(c: &mut dyn Conn, s: &NewSender<'_>, now: i64) -> Result<Sender, StoreError> {
    create_by(c, s, &crate::journal::Actor::System, now)
}

/// Registers a sender, journaled with who registered it.
pub fn create_by(
    c: &mut dyn Conn,
    s: &NewSender<'_>,
    actor: &crate::journal::Actor,
    now: i64,
) -> Result<Sender, StoreError> {
    let id = openline_domain::ids::new_id("snd");
    c.execute(
        "insert into senders (id, org_id, channel, provider, phone_number, phone_number_id, waba_id, display_name, throughput_per_s, created_at)
         values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        params![&id, s.org_id, s.channel.as_str(), s.provider.as_str(), s.phone_number, s.phone_number_id, s.waba_id, s.display_name, s.throughput_per_s, now],
    )?;
    let sender = get_any(c, &id)?;
    crate::journal::record_by(c, &sender.org_id, "sender.created", &sender.id, &sender, actor, now)?;
    Ok(sender)
}

/// By id, without scope: for workers that already hold a scoped reference.
pub fn get_any(c: &mut dyn Conn, id: &str) -> Result<Sender, StoreError> {
    from_row(&c.query_one(&format!("select {COLS} from senders where id = ?"), params![id])?)
}

pub fn list(c: &mut dyn Conn, scope: &Scope) -> Result<Vec<Sender>, StoreError> {
    let (ph, vals) = scope.in_list();
    c.query(
        &format!("select {COLS} from senders where org_id in ({ph}) order by created_at, id"),
        &vals,
    )?
    .iter()
    .map(from_row)
    .collect()
}

/// The sender a webhook is addressed to.
pub fn find_by_provider_id(
    c: &mut dyn Conn,
    provider: ProviderKind,
    phone_number_id: &str,
) -> Result<Option<Sender>, StoreError> {
    c.query_opt(
        &format!("select {COLS} from senders where provider = ? and phone_number_id = ?"),
        params![provider.as_str(), phone_number_id],
    )?
    .as_ref()
    .map(from_row)
    .transpose()
}

/// Every sender (for the in-memory routing cache).
pub fn all(c: &mut dyn Conn) -> Result<Vec<Sender>, StoreError> {
    c.query(&format!("select {COLS} from senders order by created_at, id"), &[])?
        .iter()
        .map(from_row)
        .collect()
}

/// The number an organization messages from on a channel: its own, else its nearest ancestor's
/// (a sub-organization uses its parent's numbers unless it has its own).
pub fn for_org(c: &mut dyn Conn, org_id: &str, channel: Channel) -> Result<Option<Sender>, StoreError> {
    for org in crate::orgs::ancestors(c, org_id)? {
        if let Some(r) = c.query_opt(
            &format!("select {COLS} from senders where org_id = ? and channel = ? order by created_at, id limit 1"),
            params![&org.id, channel.as_str()],
        )? {
            return Ok(Some(from_row(&r)?));
        }
    }
    Ok(None)
}
