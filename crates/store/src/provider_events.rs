//! Webhook events that are not messages or statuses (template, quality and account updates, calls,
//! fields openline does not model yet), kept whole: nothing a provider tells us is dropped.

use crate::orgs::Scope;
use crate::sql::{Conn, Val};
use crate::{params, StoreError};

pub fn insert(
    c: &mut dyn Conn,
    provider: &str,
    field: &str,
    waba_id: Option<&str>,
    phone_number_id: Option<&str>,
    raw: &serde_json::Value,
    now: i64,
) -> Result<String, StoreError> {
    let id = openline_domain::ids::new_id("pev");
    c.execute(
        "insert into provider_events (id, provider, field, waba_id, phone_number_id, raw, received_at) values (?, ?, ?, ?, ?, ?, ?)",
        params![&id, provider, field, waba_id, phone_number_id, raw.to_string(), now],
    )?;
    Ok(id)
}

pub fn count(c: &mut dyn Conn, field: &str) -> Result<i64, StoreError> {
    c.query_one("select count(*) from provider_events where field = ?", params![field])?
        .i64(0)
}

/// A kept provider event, as admins see it.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct ProviderEvent {
    pub id: String,
    /// `cloud_api` or `twilio`.
    pub provider: String,
    /// The webhook field (`account_update`, `phone_number_quality_update`,
    /// `template_category_update`, …) or openline's name for a kept event (`messages_unrouted`, …).
    pub field: String,
    pub waba_id: Option<String>,
    pub phone_number_id: Option<String>,
    /// When openline received it, epoch milliseconds.
    pub received_at: i64,
    /// The event's `value` exactly as the provider sent it.
    #[schema(value_type = Object)]
    pub raw: serde_json::Value,
}

/// The events an admin of `caller_org_id` may see, newest first: those about a number of one of the
/// caller's organizations (by `phone_number_id`; by `waba_id` when the number is not one openline
/// knows), and, for the root organization (the first top-level one, the installation's owner) only,
/// those no organization's number or account matches.
pub fn list(
    c: &mut dyn Conn,
    scope: &Scope,
    caller_org_id: &str,
    field: Option<&str>,
    limit: i64,
) -> Result<Vec<ProviderEvent>, StoreError> {
    let root = c.query_opt(
        "select id from organizations where parent_id is null order by created_at, id limit 1",
        &[],
    )?;
    let include_unrouted = match root {
        Some(r) => r.string(0)? == caller_org_id,
        None => false,
    };
    let (ph, scope_vals) = scope.in_list();
    let mut vals = Vec::new();
    let mut sql = String::from(
        "select pe.id, pe.provider, pe.field, pe.waba_id, pe.phone_number_id, pe.received_at, pe.raw
         from provider_events pe where (",
    );
    // The number is ours; or no organization has the number and the account is ours.
    sql.push_str(&format!(
        "exists (select 1 from senders s where s.org_id in ({ph}) and s.provider = pe.provider
                     and s.phone_number_id = pe.phone_number_id)
         or (not exists (select 1 from senders s where s.provider = pe.provider and s.phone_number_id = pe.phone_number_id)
             and exists (select 1 from senders s where s.org_id in ({ph}) and s.provider = pe.provider
                     and s.waba_id = pe.waba_id))"
    ));
    vals.extend(scope_vals.iter().cloned());
    vals.extend(scope_vals.iter().cloned());
    if include_unrouted {
        sql.push_str(
            " or not exists (select 1 from senders s where s.provider = pe.provider
                 and (s.phone_number_id = pe.phone_number_id or s.waba_id = pe.waba_id))",
        );
    }
    sql.push(')');
    if let Some(f) = field {
        sql.push_str(" and pe.field = ?");
        vals.push(Val::from(f));
    }
    sql.push_str(" order by pe.received_at desc, pe.id desc limit ?");
    vals.push(Val::I64(limit));
    c.query(&sql, &vals)?
        .iter()
        .map(|r| {
            let raw = r.string(6)?;
            Ok(ProviderEvent {
                id: r.string(0)?,
                provider: r.string(1)?,
                field: r.string(2)?,
                waba_id: r.opt_string(3)?,
                phone_number_id: r.opt_string(4)?,
                received_at: r.i64(5)?,
                raw: serde_json::from_str(&raw).unwrap_or(serde_json::Value::String(raw)),
            })
        })
        .collect()
}
