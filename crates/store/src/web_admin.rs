//! What the web app's admin pages list that the other store modules do not: the users of the
//! organizations an admin may see.

use crate::orgs::Scope;
use crate::sql::Conn;
use crate::StoreError;

/// A user as the admin page lists them.
#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: String,
    pub org_id: String,
    pub email: String,
    pub name: String,
    pub role: String,
    pub whatsapp_enabled: bool,
}

/// The users of the organizations in `scope`, by organization and e-mail address.
pub fn users(c: &mut dyn Conn, scope: &Scope) -> Result<Vec<UserRow>, StoreError> {
    let (ph, vals) = scope.in_list();
    c.query(
        &format!(
            "select id, org_id, email, name, role, whatsapp_enabled from users where org_id in ({ph}) order by org_id, email"
        ),
        &vals,
    )?
    .iter()
    .map(|r| {
        Ok(UserRow {
            id: r.string(0)?,
            org_id: r.string(1)?,
            email: r.string(2)?,
            name: r.string(3)?,
            role: r.string(4)?,
            whatsapp_enabled: r.i64(5)? != 0,
        })
    })
    .collect()
}

/// Sets an organization's WhatsApp switch (`on`, `off`, or `inherit` from its parent), journaled
/// with the old and new values and who changed it. `NotFound` outside `scope`.
pub fn set_org_whatsapp(
    c: &mut dyn Conn,
    scope: &Scope,
    org_id: &str,
    value: &str,
    actor: &crate::journal::Actor,
    now: i64,
) -> Result<(), StoreError> {
    if !scope.contains(org_id) {
        return Err(StoreError::NotFound);
    }
    let before = crate::orgs::get(c, org_id)?;
    c.execute(
        "update organizations set whatsapp = ? where id = ?",
        crate::params![value, org_id],
    )?;
    crate::journal::record_by(
        c,
        org_id,
        "organization.whatsapp_changed",
        org_id,
        &serde_json::json!({"before": before.whatsapp, "after": value}),
        actor,
        now,
    )?;
    Ok(())
}

/// Switches WhatsApp on or off for one user, journaled with who changed it. `NotFound` outside
/// `scope`.
pub fn set_user_whatsapp(
    c: &mut dyn Conn,
    scope: &Scope,
    user_id: &str,
    enabled: bool,
    actor: &crate::journal::Actor,
    now: i64,
) -> Result<(), StoreError> {
    let user = crate::users::get(c, user_id)?;
    if !scope.contains(&user.org_id) {
        return Err(StoreError::NotFound);
    }
    c.execute(
        "update users set whatsapp_enabled = ? where id = ?",
        crate::params![i64::from(enabled), user_id],
    )?;
    crate::journal::record_by(
        c,
        &user.org_id,
        "user.whatsapp_changed",
        user_id,
        &serde_json::json!({"before": user.whatsapp_enabled, "after": enabled}),
        actor,
        now,
    )?;
    Ok(())
}
