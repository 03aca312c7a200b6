//! Organizations: a tree, with settings (such as the WhatsApp connector switch) inherited from the
//! parent unless set. Also the caller's scope: the organizations a user may see.

use crate::journal::Actor;
use crate::sql::{placeholders, Conn, Row, Val};
use crate::{params, StoreError};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Organization {
    pub id: String,
    pub parent_id: Option<String>,
    pub name: String,
    /// `on`, `off` or `inherit`.
    pub whatsapp: String,
    pub created_at: i64,
}

/// The organizations a caller may see. Every query that returns customer data filters by it, so a
/// user never sees another organization's contacts, conversations or messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    pub org_ids: Vec<String>,
}

impl Scope {
    pub fn contains(&self, org_id: &str) -> bool {
        self.org_ids.iter().any(|o| o == org_id)
    }
    /// `(?, ?, …)` and the values, for `org_id in …`.
    pub(crate) fn in_list(&self) -> (String, Vec<Val>) {
        (
            placeholders(self.org_ids.len()),
            self.org_ids.iter().map(Val::from).collect(),
        )
    }
}

const COLS: &str = "id, parent_id, name, whatsapp, created_at";

pub(crate) fn from_row(r: &Row) -> Result<Organization, StoreError> {
    Ok(Organization {
        id: r.string(0)?,
        parent_id: r.opt_string(1)?,
        name: r.string(2)?,
        whatsapp: r.string(3)?,
        created_at: r.i64(4)?,
    })
}

pub fn create(
    c: &mut dyn Conn,
    name: &str,
    parent_id: Option<&str>,
    whatsapp: &str,
    now: i64,
) -> Result<Organization, StoreError> {
    create_by(c, name, parent_id, whatsapp, &Actor::System, now)
}

/// Creates an organization, journaled with who created it.
pub fn create_by(
    c: &mut dyn Conn,
    name: &str,
    parent_id: Option<&str>,
    whatsapp: &str,
    actor: &Actor,
    now: i64,
) -> Result<Organization, StoreError> {
    let id = openline_domain::ids::new_id("org");
    c.execute(
        "insert into organizations (id, parent_id, name, whatsapp, created_at) values (?, ?, ?, ?, ?)",
        params![&id, parent_id, name, whatsapp, now],
    )?;
    let org = get(c, &id)?;
    crate::journal::record_by(c, &org.id, "organization.created", &org.id, &org, actor, now)?;
    if parent_id.is_some() {
        // Below a parent that switched recording off, the new chain must start with it off.
        crate::journal::refresh_recording(c, &org.id)?;
    }
    Ok(org)
}

pub fn get(c: &mut dyn Conn, id: &str) -> Result<Organization, StoreError> {
    from_row(&c.query_one(&format!("select {COLS} from organizations where id = ?"), params![id])?)
}

pub fn find_by_name(c: &mut dyn Conn, name: &str) -> Result<Option<Organization>, StoreError> {
    c.query_opt(
        &format!("select {COLS} from organizations where name = ?"),
        params![name],
    )?
    .as_ref()
    .map(from_row)
    .transpose()
}

pub fn list(c: &mut dyn Conn, scope: &Scope) -> Result<Vec<Organization>, StoreError> {
    let (ph, vals) = scope.in_list();
    c.query(
        &format!("select {COLS} from organizations where id in ({ph}) order by name"),
        &vals,
    )?
    .iter()
    .map(from_row)
    .collect()
}

/// The organization and every organization below it.
pub fn subtree(c: &mut dyn Conn, root: &str) -> Result<Vec<String>, StoreError> {
    let mut out = vec![root.to_owned()];
    let mut frontier = vec![root.to_owned()];
    while !frontier.is_empty() {
        let ph = placeholders(frontier.len());
        let vals: Vec<Val> = frontier.iter().map(Val::from).collect();
        frontier = c
            .query(
                &format!("select id from organizations where parent_id in ({ph})"),
                &vals,
            )?
            .iter()
            .map(|r| r.string(0))
            .collect::<Result<_, _>>()?;
        // A cycle cannot be created through openline, but never loop forever on a hand-edited one.
        frontier.retain(|id| !out.contains(id));
        out.extend(frontier.iter().cloned());
    }
    Ok(out)
}

/// The organization and its ancestors, nearest first: what every inherited setting (the WhatsApp
/// switch, the messaging tier, sender numbers, DLP rules) is resolved along. Stops at the root, and
/// at a cycle or after 64 levels should the tree have been edited by hand.
pub fn ancestors(c: &mut dyn Conn, org_id: &str) -> Result<Vec<Organization>, StoreError> {
    Ok(existing_chain(c, org_id)?.orgs.iter().map(|(o, _)| o.clone()).collect())
}

/// The organization's inherited configuration ([`crate::org_config::chain`]); `NotFound` when there
/// is no such organization.
fn existing_chain(c: &mut dyn Conn, org_id: &str) -> Result<std::sync::Arc<crate::org_config::OrgChain>, StoreError> {
    let chain = crate::org_config::chain(c, org_id)?;
    if chain.orgs.is_empty() {
        return Err(StoreError::NotFound);
    }
    Ok(chain)
}

/// Common table expressions ending in `chain(id, depth)`: the organization bound to its one
/// parameter (depth 0) and its ancestors, up to 64 levels, each once. A tree edited by hand into a
/// cycle repeats ids in the walk; keeping each id at its smallest depth keeps exactly the ids before
/// the first repeat. One query instead of one per level, for the settings every request resolves.
pub(crate) const ANCESTOR_CHAIN: &str = "with recursive walk(id, depth) as (
        select id, 0 from organizations where id = ?
        union all
        select o.parent_id, walk.depth + 1 from walk join organizations o on o.id = walk.id
        where o.parent_id is not null and walk.depth < 63
    ),
    chain(id, depth) as (select id, min(depth) from walk group by id)";

/// The settings JSON of an organization and its ancestors, nearest first (see [`ancestors`]).
pub(crate) fn ancestor_settings(c: &mut dyn Conn, org_id: &str) -> Result<Vec<serde_json::Value>, StoreError> {
    Ok(crate::org_config::chain(c, org_id)?
        .orgs
        .iter()
        .map(|(_, settings)| settings.clone())
        .collect())
}

/// Whether WhatsApp is on for an organization: its own setting, else its parent's, up to the root
/// (where `inherit` means off).
pub fn whatsapp_enabled(c: &mut dyn Conn, org_id: &str) -> Result<bool, StoreError> {
    Ok(existing_chain(c, org_id)?
        .orgs
        .iter()
        .find_map(|(o, _)| match o.whatsapp.as_str() {
            "on" => Some(true),
            "off" => Some(false),
            _ => None,
        })
        .unwrap_or(false))
}

/// The messaging-limit tier (`tier_250`, `tier_2k`, …) set in the organization's settings or the
/// nearest ancestor's; `None` when nobody set one.
pub fn messaging_tier(c: &mut dyn Conn, org_id: &str) -> Result<Option<String>, StoreError> {
    Ok(crate::org_config::chain(c, org_id)?
        .orgs
        .iter()
        .find_map(|(_, settings)| settings.get("messaging_tier").and_then(|v| v.as_str()))
        .map(str::to_owned))
}

/// Writes one key of an organization's settings JSON (`null` removes it, so the parent's applies)
/// and returns its previous value (`null` when unset). The caller journals the change.
pub(crate) fn replace_setting(
    c: &mut dyn Conn,
    org_id: &str,
    key: &str,
    value: &serde_json::Value,
) -> Result<serde_json::Value, StoreError> {
    let r = c.query_one("select settings from organizations where id = ?", params![org_id])?;
    let mut settings: serde_json::Value = serde_json::from_str(&r.string(0)?).unwrap_or_else(|_| serde_json::json!({}));
    if !settings.is_object() {
        settings = serde_json::json!({});
    }
    let previous = settings.get(key).cloned().unwrap_or(serde_json::Value::Null);
    match (value, settings.as_object_mut()) {
        (serde_json::Value::Null, Some(obj)) => {
            obj.remove(key);
        }
        _ => settings[key] = value.clone(),
    }
    c.execute(
        "update organizations set settings = ? where id = ?",
        params![settings.to_string(), org_id],
    )?;
    Ok(previous)
}

/// Sets one key of an organization's settings JSON (`null` removes it, so the parent's applies),
/// journaled as `organization.settings_changed` with who changed it.
pub fn set_setting(
    c: &mut dyn Conn,
    org_id: &str,
    key: &str,
    value: serde_json::Value,
    actor: &Actor,
    now: i64,
) -> Result<(), StoreError> {
    let previous = replace_setting(c, org_id, key, &value)?;
    crate::journal::record_by(
        c,
        org_id,
        "organization.settings_changed",
        org_id,
        &serde_json::json!({"key": key, "value": value, "previous": previous}),
        actor,
        now,
    )?;
    Ok(())
}
