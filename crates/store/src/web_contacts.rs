//! Editing a contact from the web app: the name the business gives it and its phone number.

use crate::contacts::{self, Contact};
use crate::orgs::Scope;
use crate::sql::Conn;
use crate::{params, StoreError};

/// Changes a contact's name and phone number. `NotFound` for a contact outside `scope`; `Conflict`
/// when another contact of the organization has that number. Journaled, with the old and new values
/// and who changed them.
pub fn update(
    c: &mut dyn Conn,
    scope: &Scope,
    id: &str,
    phone: &str,
    name: Option<&str>,
    actor: &crate::journal::Actor,
    now: i64,
) -> Result<Contact, StoreError> {
    let before = contacts::get(c, scope, id)?;
    c.execute(
        "update contacts set phone = ?, name = ?, updated_at = ? where id = ?",
        params![phone, name, now, id],
    )?;
    let after = contacts::get_any(c, id)?;
    crate::journal::record_by(
        c,
        &after.org_id,
        "contact.updated",
        &after.id,
        &serde_json::json!({
            "before": {"phone": before.phone, "name": before.name},
            "after": {"phone": after.phone, "name": after.name},
        }),
        actor,
        now,
    )?;
    Ok(after)
}

/// The ids of a contact's threads the caller may see, newest activity first (a contact may have
/// several, on WhatsApp and SMS).
pub fn thread_ids(
    c: &mut dyn Conn,
    scope: &Scope,
    contact_id: &str,
    channel: Option<openline_domain::Channel>,
) -> Result<Vec<String>, StoreError> {
    let (ph, mut vals) = scope.in_list();
    vals.insert(0, crate::Val::from(contact_id));
    let mut sql = format!("select id from conversations where contact_id = ? and org_id in ({ph})");
    if let Some(ch) = channel {
        sql.push_str(" and channel = ?");
        vals.push(crate::Val::from(ch.as_str()));
    }
    sql.push_str(" order by last_activity_at desc, id desc");
    c.query(&sql, &vals)?.iter().map(|r| r.string(0)).collect()
}

/// Marks a thread the caller may see as read (its unread count back to 0). Returns whether it had
/// unread messages.
pub fn mark_read(c: &mut dyn Conn, scope: &Scope, conversation_id: &str) -> Result<bool, StoreError> {
    let (ph, mut vals) = scope.in_list();
    vals.insert(0, crate::Val::from(conversation_id));
    let n = c.execute(
        &format!("update conversations set unread_count = 0 where id = ? and unread_count > 0 and org_id in ({ph})"),
        &vals,
    )?;
    Ok(n > 0)
}
