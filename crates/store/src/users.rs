//! Users, browser sessions and API tokens. Secrets are never stored: passwords as argon2 hashes
//! (made by the server), session cookies and API tokens as SHA-256 digests of 256-bit random values.

use crate::journal::Actor;
use crate::sql::{Conn, Row};
use crate::{params, StoreError};
use openline_domain::Role;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct User {
    pub id: String,
    pub org_id: String,
    pub team_id: Option<String>,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub whatsapp_enabled: bool,
    pub created_at: i64,
}

const COLS: &str = "u.id, u.org_id, u.team_id, u.email, u.name, u.role, u.whatsapp_enabled, u.created_at";

fn from_row(r: &Row) -> Result<User, StoreError> {
    Ok(User {
        id: r.string(0)?,
        org_id: r.string(1)?,
        team_id: r.opt_string(2)?,
        email: r.string(3)?,
        name: r.string(4)?,
        role: r.parsed(5, Role::parse)?,
        whatsapp_enabled: r.bool(6)?,
        created_at: r.i64(7)?,
    })
}

pub struct NewUser<'a> {
    pub org_id: &'a str,
    pub team_id: Option<&'a str>,
    pub email: &'a str,
    pub name: &'a str,
    pub role: Role,
    pub password_hash: &'a str,
}

/// Creates a user. E-mail addresses are unique (compared lower-cased): `Conflict` otherwise.
pub fn create(c: &mut dyn Conn, u: &NewUser<'_>, now: i64) -> Result<User, StoreError> {
    create_by(c, u, &Actor::System, now)
}

/// Creates a user, journaled with who created them.
pub fn create_by(c: &mut dyn Conn, u: &NewUser<'_>, actor: &Actor, now: i64) -> Result<User, StoreError> {
    let id = openline_domain::ids::new_id("usr");
    c.execute(
        "insert into users (id, org_id, team_id, email, name, role, password_hash, whatsapp_enabled, created_at)
         values (?, ?, ?, ?, ?, ?, ?, 1, ?)",
        params![
            &id,
            u.org_id,
            u.team_id,
            u.email.trim().to_lowercase(),
            u.name,
            u.role.as_str(),
            u.password_hash,
            now
        ],
    )?;
    let user = get(c, &id)?;
    crate::journal::record_by(c, &user.org_id, "user.created", &user.id, &user, actor, now)?;
    Ok(user)
}

/// Changes a user's role, journaled as `user.role_changed` with the previous role and who changed
/// it. `NotFound` for an unknown or disabled user.
pub fn set_role_by(c: &mut dyn Conn, user_id: &str, role: Role, actor: &Actor, now: i64) -> Result<User, StoreError> {
    let before = get(c, user_id)?;
    c.execute(
        "update users set role = ? where id = ? and disabled_at is null",
        params![role.as_str(), user_id],
    )?;
    let user = get(c, user_id)?;
    crate::journal::record_by(
        c,
        &user.org_id,
        "user.role_changed",
        &user.id,
        &serde_json::json!({"user_id": user.id, "email": user.email, "role": role, "previous": before.role}),
        actor,
        now,
    )?;
    Ok(user)
}

pub fn get(c: &mut dyn Conn, id: &str) -> Result<User, StoreError> {
    from_row(&c.query_one(
        &format!("select {COLS} from users u where u.id = ? and u.disabled_at is null"),
        params![id],
    )?)
}

/// The user and their password hash, for signing in.
pub fn find_for_login(c: &mut dyn Conn, email: &str) -> Result<Option<(User, String)>, StoreError> {
    let row = c.query_opt(
        &format!("select {COLS}, u.password_hash from users u where u.email = ? and u.disabled_at is null"),
        params![email.trim().to_lowercase()],
    )?;
    row.map(|r| Ok((from_row(&r)?, r.string(8)?))).transpose()
}

pub fn create_session(
    c: &mut dyn Conn,
    token_hash: &str,
    user_id: &str,
    now: i64,
    expires_at: i64,
) -> Result<(), StoreError> {
    c.execute(
        "insert into sessions (token_hash, user_id, created_at, expires_at) values (?, ?, ?, ?)",
        params![token_hash, user_id, now, expires_at],
    )?;
    Ok(())
}

pub fn user_for_session(c: &mut dyn Conn, token_hash: &str, now: i64) -> Result<Option<User>, StoreError> {
    c.query_opt(
        &format!(
            "select {COLS} from sessions s join users u on u.id = s.user_id
             where s.token_hash = ? and s.expires_at > ? and u.disabled_at is null"
        ),
        params![token_hash, now],
    )?
    .as_ref()
    .map(from_row)
    .transpose()
}

pub fn delete_session(c: &mut dyn Conn, token_hash: &str) -> Result<(), StoreError> {
    c.execute("delete from sessions where token_hash = ?", params![token_hash])?;
    Ok(())
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ApiToken {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

pub fn create_token(
    c: &mut dyn Conn,
    user_id: &str,
    name: &str,
    token_hash: &str,
    now: i64,
) -> Result<ApiToken, StoreError> {
    create_token_by(c, user_id, name, token_hash, &Actor::System, now)
}

/// Creates an API token for a user, journaled with who created it (the user, or the CLI).
pub fn create_token_by(
    c: &mut dyn Conn,
    user_id: &str,
    name: &str,
    token_hash: &str,
    actor: &Actor,
    now: i64,
) -> Result<ApiToken, StoreError> {
    let id = openline_domain::ids::new_id("tok");
    c.execute(
        "insert into api_tokens (id, user_id, name, token_hash, created_at) values (?, ?, ?, ?, ?)",
        params![&id, user_id, name, token_hash, now],
    )?;
    let token = ApiToken {
        id,
        name: name.to_owned(),
        created_at: now,
        revoked_at: None,
    };
    let org = get(c, user_id)?.org_id;
    crate::journal::record_by(
        c,
        &org,
        "token.created",
        &token.id,
        &serde_json::json!({"token": token, "user_id": user_id}),
        actor,
        now,
    )?;
    Ok(token)
}

pub fn user_for_token(c: &mut dyn Conn, token_hash: &str) -> Result<Option<User>, StoreError> {
    c.query_opt(
        &format!(
            "select {COLS} from api_tokens t join users u on u.id = t.user_id
             where t.token_hash = ? and t.revoked_at is null and u.disabled_at is null"
        ),
        params![token_hash],
    )?
    .as_ref()
    .map(from_row)
    .transpose()
}

pub fn list_tokens(c: &mut dyn Conn, user_id: &str) -> Result<Vec<ApiToken>, StoreError> {
    c.query(
        "select id, name, created_at, revoked_at from api_tokens where user_id = ? order by created_at, id",
        params![user_id],
    )?
    .iter()
    .map(|r| {
        Ok(ApiToken {
            id: r.string(0)?,
            name: r.string(1)?,
            created_at: r.i64(2)?,
            revoked_at: r.opt_i64(3)?,
        })
    })
    .collect()
}

/// Revokes one of the user's tokens. `NotFound` if it is not theirs or already revoked.
pub fn revoke_token(c: &mut dyn Conn, user_id: &str, token_id: &str, now: i64) -> Result<(), StoreError> {
    revoke_token_by(c, user_id, token_id, &Actor::System, now)
}

/// Revokes one of the user's tokens, journaled with who revoked it.
pub fn revoke_token_by(
    c: &mut dyn Conn,
    user_id: &str,
    token_id: &str,
    actor: &Actor,
    now: i64,
) -> Result<(), StoreError> {
    let n = c.execute(
        "update api_tokens set revoked_at = ? where id = ? and user_id = ? and revoked_at is null",
        params![now, token_id, user_id],
    )?;
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    let org = get(c, user_id)?.org_id;
    crate::journal::record_by(
        c,
        &org,
        "token.revoked",
        token_id,
        &serde_json::json!({"user_id": user_id}),
        actor,
        now,
    )?;
    Ok(())
}
