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
    /// Twilio: the account (`AC…`) the number belongs to; `None` for the account openline is
    /// configured with.
    pub provider_account_id: Option<String>,
    /// Twilio: the Messaging Service (`MG…`) the number belongs to. Webhooks carrying it route here
    /// (numbers pooled in the service included), and messages are sent through the service.
    pub messaging_service_sid: Option<String>,
}

impl Sender {
    /// The Messaging Service to send through, for a Twilio sender that has one: the one it was
    /// registered with, or (senders registered before openline knew services) a `phone_number_id`
    /// that is itself a service SID.
    pub fn twilio_messaging_service(&self) -> Option<&str> {
        if self.provider != ProviderKind::Twilio {
            return None;
        }
        self.messaging_service_sid
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .or_else(|| {
                self.phone_number_id
                    .starts_with("MG")
                    .then_some(self.phone_number_id.as_str())
            })
    }
}

const COLS: &str =
    "id, org_id, channel, provider, phone_number, phone_number_id, waba_id, display_name, throughput_per_s, created_at,
    provider_account_id, messaging_service_sid";

/// [`COLS`] of the table aliased `alias` (for a query that joins `senders`).
pub(crate) fn qualified_cols(alias: &str) -> String {
    COLS.split(',')
        .map(|c| format!("{alias}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn from_row(r: &Row) -> Result<Sender, StoreError> {
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
        provider_account_id: r.opt_string(10)?,
        messaging_service_sid: r.opt_string(11)?,
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

/// Records which Twilio account a sender's number belongs to and the Messaging Service it is pooled
/// in (either may be `None`), journaled with who changed it. Returns the sender as it now reads.
pub fn set_twilio_routing(
    c: &mut dyn Conn,
    sender_id: &str,
    account_sid: Option<&str>,
    messaging_service_sid: Option<&str>,
    actor: &crate::journal::Actor,
    now: i64,
) -> Result<Sender, StoreError> {
    let changed = c.execute(
        "update senders set provider_account_id = ?, messaging_service_sid = ? where id = ? and provider = ?",
        params![
            account_sid,
            messaging_service_sid,
            sender_id,
            ProviderKind::Twilio.as_str()
        ],
    )?;
    if changed == 0 {
        return Err(StoreError::NotFound);
    }
    let sender = get_any(c, sender_id)?;
    crate::journal::record_by(
        c,
        &sender.org_id,
        "sender.twilio_routing_set",
        &sender.id,
        &sender,
        actor,
        now,
    )?;
    Ok(sender)
}

/// The sender a Twilio webhook is addressed to, as Twilio addresses it.
///
/// With a Messaging Service SID: the service's sender for exactly the number written to, else its
/// sender on that channel registered first (a number pooled in the service but not registered on
/// its own), else a sender registered under the service SID itself. Without one, or when the
/// service is unknown: the sender with that number on that channel in that account (a sender
/// without an account belongs to `default_account`). Never a lookup that a pooled number could
/// fail: Chatwoot rejected pooled numbers by checking the number alone.
pub fn find_twilio_route(c: &mut dyn Conn, route: &TwilioRoute<'_>) -> Result<Option<Sender>, StoreError> {
    let twilio = ProviderKind::Twilio.as_str();
    let channel = route.channel.as_str();
    let in_account = "coalesce(provider_account_id, ?) = ?";
    if let Some(service) = route.messaging_service_sid.filter(|s| !s.trim().is_empty()) {
        let found = c.query_opt(
            &format!(
                "select {COLS} from senders
                 where provider = ? and channel = ? and {in_account}
                   and (messaging_service_sid = ? or phone_number_id = ?)
                 order by case when phone_number = ? then 0 else 1 end,
                          case when messaging_service_sid = ? then 0 else 1 end, created_at, id
                 limit 1"
            ),
            params![
                twilio,
                channel,
                route.default_account,
                route.account_sid,
                service,
                service,
                route.to_number,
                service
            ],
        )?;
        if let Some(r) = found {
            return Ok(Some(from_row(&r)?));
        }
    }
    c.query_opt(
        &format!(
            "select {COLS} from senders
             where provider = ? and channel = ? and {in_account} and (phone_number = ? or phone_number_id = ?)
             order by created_at, id
             limit 1"
        ),
        params![
            twilio,
            channel,
            route.default_account,
            route.account_sid,
            route.to_number,
            route.to_number
        ],
    )?
    .as_ref()
    .map(from_row)
    .transpose()
}

/// Where a Twilio webhook says it is going.
#[derive(Debug, Clone, Copy)]
pub struct TwilioRoute<'a> {
    /// `MessagingServiceSid`, when the number belongs to a service.
    pub messaging_service_sid: Option<&'a str>,
    /// `AccountSid`.
    pub account_sid: &'a str,
    /// `To` without its `whatsapp:` prefix: `+15550002000`.
    pub to_number: &'a str,
    /// WhatsApp when the addresses carry the `whatsapp:` prefix, SMS otherwise.
    pub channel: Channel,
    /// The account openline is configured with, which senders without an account belong to.
    pub default_account: &'a str,
}

/// Every sender (for the in-memory routing cache).
pub fn all(c: &mut dyn Conn) -> Result<Vec<Sender>, StoreError> {
    c.query(&format!("select {COLS} from senders order by created_at, id"), &[])?
        .iter()
        .map(from_row)
        .collect()
}

/// The number an organization messages from on a channel: its own, else its nearest ancestor's
/// (a sub-organization uses its parent's numbers unless it has its own); the oldest when it has
/// several. It runs for every send: resolved from the connection's [`crate::org_config`].
pub fn for_org(c: &mut dyn Conn, org_id: &str, channel: Channel) -> Result<Option<Sender>, StoreError> {
    Ok(crate::org_config::chain(c, org_id)?
        .senders
        .iter()
        .find(|s| s.channel == channel)
        .cloned())
}
