//! Contacts: the clients an organization messages, identified by an E.164 number and/or a WhatsApp
//! user id (when WhatsApp withholds the number). Unique per organization.

use crate::orgs::Scope;
use crate::sql::{Conn, Row, Val};
use crate::{params, StoreError};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Contact {
    pub id: String,
    pub org_id: String,
    /// E.164, when known.
    pub phone: Option<String>,
    pub wa_user_id: Option<String>,
    /// The name the business gave the contact.
    pub name: Option<String>,
    /// The contact's own WhatsApp profile name, as last seen.
    pub whatsapp_name: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLS: &str = "id, org_id, phone, wa_user_id, name, whatsapp_name, created_at, updated_at";

fn from_row(r: &Row) -> Result<Contact, StoreError> {
    Ok(Contact {
        id: r.string(0)?,
        org_id: r.string(1)?,
        phone: r.opt_string(2)?,
        wa_user_id: r.opt_string(3)?,
        name: r.opt_string(4)?,
        whatsapp_name: r.opt_string(5)?,
        created_at: r.i64(6)?,
        updated_at: r.i64(7)?,
    })
}

/// Creates a contact; `Conflict` if the organization already has one with this number.
pub fn create(
    c: &mut dyn Conn,
    org_id: &str,
    phone: &str,
    name: Option<&str>,
    now: i64,
) -> Result<Contact, StoreError> {
    let id = openline_domain::ids::new_id("ct");
    c.execute(
        "insert into contacts (id, org_id, phone, name, created_at, updated_at) values (?, ?, ?, ?, ?, ?)",
        params![&id, org_id, phone, name, now, now],
    )?;
    get_any(c, &id)
}

pub fn get_any(c: &mut dyn Conn, id: &str) -> Result<Contact, StoreError> {
    from_row(&c.query_one(&format!("select {COLS} from contacts where id = ?"), params![id])?)
}

/// A contact the caller may see, or `NotFound` (also for another organization's contact, so ids
/// reveal nothing).
pub fn get(c: &mut dyn Conn, scope: &Scope, id: &str) -> Result<Contact, StoreError> {
    let (sql, vals) = get_read(scope, id);
    from_row(&c.query_one(&sql, &vals)?)
}

/// The statement [`get`] runs, for [`Conn::prefetch`].
pub fn get_read(scope: &Scope, id: &str) -> (String, Vec<Val>) {
    let (ph, mut vals) = scope.in_list();
    vals.insert(0, Val::from(id));
    (
        format!("select {COLS} from contacts where id = ? and org_id in ({ph})"),
        vals,
    )
}

/// A page of contacts, oldest first, after `after_id` (ids sort by creation time).
pub fn list(
    c: &mut dyn Conn,
    scope: &Scope,
    search: Option<&str>,
    after_id: Option<&str>,
    limit: i64,
) -> Result<Vec<Contact>, StoreError> {
    let (ph, mut vals) = scope.in_list();
    let mut sql = format!("select {COLS} from contacts where org_id in ({ph})");
    if let Some(after) = after_id {
        sql.push_str(" and id > ?");
        vals.push(Val::from(after));
    }
    if let Some(q) = search.map(str::trim).filter(|q| !q.is_empty()) {
        sql.push_str(" and (lower(coalesce(name, '')) like ? or lower(coalesce(whatsapp_name, '')) like ? or coalesce(phone, '') like ?)");
        let pattern = format!("%{}%", q.to_lowercase().replace(['%', '_'], ""));
        vals.extend([Val::from(&pattern), Val::from(&pattern), Val::from(pattern)]);
    }
    sql.push_str(" order by id limit ?");
    vals.push(Val::I64(limit));
    c.query(&sql, &vals)?.iter().map(from_row).collect()
}

/// Finds the contact a WhatsApp message came from, creating it if new, and refreshes the profile
/// name. Keyed by phone number when WhatsApp gives one, else by the WhatsApp user id.
pub fn upsert_from_inbound(
    c: &mut dyn Conn,
    org_id: &str,
    phone: Option<&str>,
    wa_user_id: Option<&str>,
    profile_name: Option<&str>,
    now: i64,
) -> Result<String, StoreError> {
    let (key_col, key) = match (phone, wa_user_id) {
        (Some(p), _) => ("phone", p),
        (None, Some(u)) => ("wa_user_id", u),
        (None, None) => return Err(StoreError::Decode("an inbound message without a sender".into())),
    };
    let select = format!("select id, whatsapp_name, wa_user_id from contacts where org_id = ? and {key_col} = ?");
    // Most messages come from contacts openline knows, whose name has not changed: one lookup.
    let existing = match c.query_opt(&select, params![org_id, key])? {
        Some(row) => row,
        None => {
            // Insert-if-absent, so two nodes receiving the same new contact at once cannot both
            // insert it: the second waits for the first and then does nothing.
            let new_id = openline_domain::ids::new_id("ct");
            insert_if_absent(
                c,
                org_id,
                key_col,
                &[NewInboundContact {
                    id: &new_id,
                    phone,
                    wa_user_id,
                    profile_name,
                    now,
                }],
            )?;
            let row = c.query_one(&select, params![org_id, key])?;
            if row.string(0)? == new_id {
                return Ok(new_id);
            }
            row
        }
    };
    let mut known = KnownContact {
        id: existing.string(0)?,
        whatsapp_name: existing.opt_string(1)?,
        wa_user_id: existing.opt_string(2)?,
    };
    refresh_from_inbound(c, &mut known, profile_name, wa_user_id, now)?;
    Ok(known.id)
}

/// A contact an inbound message introduces, for [`insert_if_absent`].
pub(crate) struct NewInboundContact<'a> {
    pub id: &'a str,
    pub phone: Option<&'a str>,
    pub wa_user_id: Option<&'a str>,
    pub profile_name: Option<&'a str>,
    pub now: i64,
}

/// Inserts the organization's new contacts in one statement, each unless one with the same
/// `key_col` (`phone` or `wa_user_id`) is already there: two nodes receiving the same new contact
/// at once cannot both insert it (the second waits for the first and then does nothing). Look them
/// up afterwards for the ids that won.
pub(crate) fn insert_if_absent(
    c: &mut dyn Conn,
    org_id: &str,
    key_col: &str,
    new: &[NewInboundContact<'_>],
) -> Result<(), StoreError> {
    if new.is_empty() {
        return Ok(());
    }
    let mut vals = Vec::with_capacity(new.len() * 7);
    for n in new {
        vals.extend([
            Val::from(n.id),
            Val::from(org_id),
            Val::from(n.phone),
            Val::from(n.wa_user_id),
            Val::from(n.profile_name),
            Val::I64(n.now),
            Val::I64(n.now),
        ]);
    }
    c.execute_later(
        &format!(
            "insert into contacts (id, org_id, phone, wa_user_id, whatsapp_name, created_at, updated_at)
             values {} on conflict (org_id, {key_col}) do nothing",
            crate::sql::value_rows(new.len(), "(?, ?, ?, ?, ?, ?, ?)")
        ),
        vals,
    )?;
    Ok(())
}

/// A contact as an inbound message finds it: what the message may have to update.
#[derive(Debug, Clone)]
pub(crate) struct KnownContact {
    pub id: String,
    pub whatsapp_name: Option<String>,
    pub wa_user_id: Option<String>,
}

/// Looks up, in one statement, the contacts of an organization keyed by `key_col` (`phone` or
/// `wa_user_id`) among `keys`; the map is keyed by that column's value.
pub(crate) fn known_by(
    c: &mut dyn Conn,
    org_id: &str,
    key_col: &str,
    keys: &[&str],
) -> Result<std::collections::HashMap<String, KnownContact>, StoreError> {
    let mut out = std::collections::HashMap::with_capacity(keys.len());
    if keys.is_empty() {
        return Ok(out);
    }
    let lookups: Vec<Vec<Val>> = keys.iter().map(|k| vec![Val::from(org_id), Val::from(*k)]).collect();
    let rows = c.lookup_each(
        &format!("select id, whatsapp_name, wa_user_id, {key_col} from contacts where org_id = ? and {key_col} = ?"),
        &lookups,
    )?;
    for r in rows {
        out.insert(
            r.string(3)?,
            KnownContact {
                id: r.string(0)?,
                whatsapp_name: r.opt_string(1)?,
                wa_user_id: r.opt_string(2)?,
            },
        );
    }
    Ok(out)
}

/// Rewrites a known contact only when the message tells something new: a changed WhatsApp profile
/// name, or a WhatsApp user id not known yet. `known` is updated to match.
pub(crate) fn refresh_from_inbound(
    c: &mut dyn Conn,
    known: &mut KnownContact,
    profile_name: Option<&str>,
    wa_user_id: Option<&str>,
    now: i64,
) -> Result<(), StoreError> {
    let name_changed = profile_name.is_some() && known.whatsapp_name.as_deref() != profile_name;
    let user_id_learned = wa_user_id.is_some() && known.wa_user_id.is_none();
    if name_changed || user_id_learned {
        c.execute(
            "update contacts set whatsapp_name = coalesce(?, whatsapp_name),
                 wa_user_id = coalesce(wa_user_id, ?), updated_at = ? where id = ?",
            params![profile_name, wa_user_id, now, &known.id],
        )?;
        if let Some(name) = profile_name {
            known.whatsapp_name = Some(name.to_owned());
        }
        if known.wa_user_id.is_none() {
            known.wa_user_id = wa_user_id.map(str::to_owned);
        }
    }
    Ok(())
}

/// What [`change_phone`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PhoneChange {
    /// The contact now has the new number; journaled as `contact.number_changed`.
    Changed,
    /// Another contact of the organization already has the new number: nothing changed (two
    /// contacts are never merged behind the agents' backs).
    Taken { other_contact_id: String },
    /// The contact already had that number (a redelivered change).
    Unchanged,
}

/// Moves a contact to a new number (WhatsApp's `user_changed_number`), keeping its id, so its
/// threads, consent and history stay with it. Journals `contact.number_changed` with the old and
/// new number in the same transaction.
pub fn change_phone(c: &mut dyn Conn, contact_id: &str, new_phone: &str, now: i64) -> Result<PhoneChange, StoreError> {
    let contact = get_any(c, contact_id)?;
    if contact.phone.as_deref() == Some(new_phone) {
        return Ok(PhoneChange::Unchanged);
    }
    if let Some(other) = c.query_opt(
        "select id from contacts where org_id = ? and phone = ? and id <> ?",
        params![&contact.org_id, new_phone, contact_id],
    )? {
        return Ok(PhoneChange::Taken {
            other_contact_id: other.string(0)?,
        });
    }
    c.execute(
        "update contacts set phone = ?, updated_at = ? where id = ?",
        params![new_phone, now, contact_id],
    )?;
    crate::journal::record(
        c,
        &contact.org_id,
        "contact.number_changed",
        contact_id,
        &serde_json::json!({"contact_id": contact_id, "old_phone": contact.phone, "new_phone": new_phone}),
        now,
    )?;
    Ok(PhoneChange::Changed)
}

/// Journals that WhatsApp reported a contact's identity changed (`customer_identity_changed`: a new
/// phone or a reinstall), with the thread the agents were told in.
pub fn record_identity_change(
    c: &mut dyn Conn,
    contact_id: &str,
    conversation_id: &str,
    now: i64,
) -> Result<(), StoreError> {
    let contact = get_any(c, contact_id)?;
    crate::journal::record(
        c,
        &contact.org_id,
        "contact.identity_changed",
        contact_id,
        &serde_json::json!({"contact_id": contact_id, "phone": contact.phone, "conversation_id": conversation_id}),
        now,
    )?;
    Ok(())
}
