//! Message templates per sender (business number, and through it the WhatsApp Business Account):
//! what was submitted, Meta's id for it, and its approval status as the status webhooks report it.

use crate::orgs::Scope;
use crate::sql::{Conn, Row, Val};
use crate::{params, StoreError};
use openline_domain::templates::{Template, TemplateCategory, TemplateComponent, TemplateStatus};
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct TemplateRecord {
    pub id: String,
    pub org_id: String,
    pub sender_id: String,
    /// Meta's id, once submitted.
    pub provider_template_id: Option<String>,
    #[serde(flatten)]
    pub template: Template,
    pub created_at: i64,
    pub updated_at: i64,
}

const COLS: &str =
    "id, org_id, sender_id, provider_template_id, name, language, category, components, status, rejection_reason,
    created_at, updated_at";

fn from_row(r: &Row) -> Result<TemplateRecord, StoreError> {
    let components: Vec<TemplateComponent> =
        serde_json::from_str(&r.string(7)?).map_err(|e| StoreError::Decode(format!("template components: {e}")))?;
    let status = TemplateStatus::from_parts(&r.string(8)?, r.opt_string(9)?.as_deref())
        .ok_or_else(|| StoreError::Decode("template status".into()))?;
    Ok(TemplateRecord {
        id: r.string(0)?,
        org_id: r.string(1)?,
        sender_id: r.string(2)?,
        provider_template_id: r.opt_string(3)?,
        template: Template {
            name: r.string(4)?,
            language: r.string(5)?,
            category: r.parsed(6, TemplateCategory::parse)?,
            components,
            status,
        },
        created_at: r.i64(10)?,
        updated_at: r.i64(11)?,
    })
}

fn reason(status: &TemplateStatus) -> Option<&str> {
    match status {
        TemplateStatus::Rejected { reason } => Some(reason.as_str()),
        _ => None,
    }
}

/// Stores a template for a sender; `Conflict` if the sender already has this name and language.
pub fn create(
    c: &mut dyn Conn,
    org_id: &str,
    sender_id: &str,
    t: &Template,
    provider_template_id: Option<&str>,
    now: i64,
) -> Result<TemplateRecord, StoreError> {
    create_by(
        c,
        org_id,
        sender_id,
        t,
        provider_template_id,
        &crate::journal::Actor::System,
        now,
    )
}

/// Stores a template, journaled with who submitted it.
pub fn create_by(
    c: &mut dyn Conn,
    org_id: &str,
    sender_id: &str,
    t: &Template,
    provider_template_id: Option<&str>,
    actor: &crate::journal::Actor,
    now: i64,
) -> Result<TemplateRecord, StoreError> {
    let id = openline_domain::ids::new_id("tpl");
    let components = serde_json::to_string(&t.components).map_err(|e| StoreError::Decode(e.to_string()))?;
    c.execute(
        &format!("insert into templates ({COLS}) values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"),
        params![
            &id,
            org_id,
            sender_id,
            provider_template_id,
            &t.name,
            &t.language,
            t.category.as_str(),
            components,
            t.status.as_str(),
            reason(&t.status),
            now,
            now
        ],
    )?;
    let record = get_any(c, &id)?;
    crate::journal::record_by(c, org_id, "template.created", &record.id, &record, actor, now)?;
    Ok(record)
}

pub fn get_any(c: &mut dyn Conn, id: &str) -> Result<TemplateRecord, StoreError> {
    from_row(&c.query_one(&format!("select {COLS} from templates where id = ?"), params![id])?)
}

pub fn get(c: &mut dyn Conn, scope: &Scope, id: &str) -> Result<TemplateRecord, StoreError> {
    let (ph, mut vals) = scope.in_list();
    vals.insert(0, Val::from(id));
    from_row(&c.query_one(
        &format!("select {COLS} from templates where id = ? and org_id in ({ph})"),
        &vals,
    )?)
}

/// The templates of the senders the caller's organizations use (their own and their ancestors').
pub fn list_for_senders(c: &mut dyn Conn, sender_ids: &[String]) -> Result<Vec<TemplateRecord>, StoreError> {
    if sender_ids.is_empty() {
        return Ok(Vec::new());
    }
    let vals: Vec<Val> = sender_ids.iter().map(Val::from).collect();
    c.query(
        &format!(
            "select {COLS} from templates where sender_id in ({}) order by name, language",
            crate::sql::placeholders(sender_ids.len())
        ),
        &vals,
    )?
    .iter()
    .map(from_row)
    .collect()
}

/// A sender's template by name and language.
pub fn find(
    c: &mut dyn Conn,
    sender_id: &str,
    name: &str,
    language: &str,
) -> Result<Option<TemplateRecord>, StoreError> {
    c.query_opt(
        &format!("select {COLS} from templates where sender_id = ? and name = ? and language = ?"),
        params![sender_id, name, language],
    )?
    .as_ref()
    .map(from_row)
    .transpose()
}

/// Applies a status webhook: by Meta's id, else by WABA + name + language. Returns the templates
/// that changed (none when openline does not know the template).
pub fn set_status_from_provider(
    c: &mut dyn Conn,
    provider_template_id: Option<&str>,
    waba_id: Option<&str>,
    name: Option<&str>,
    language: Option<&str>,
    status: &TemplateStatus,
    now: i64,
) -> Result<Vec<TemplateRecord>, StoreError> {
    let ids: Vec<String> = match (provider_template_id, waba_id, name, language) {
        (Some(pid), _, _, _) if !pid.is_empty() => c
            .query("select id from templates where provider_template_id = ?", params![pid])?
            .iter()
            .map(|r| r.string(0))
            .collect::<Result<_, _>>()?,
        _ => Vec::new(),
    };
    let ids = if ids.is_empty() {
        match (waba_id, name, language) {
            (Some(w), Some(n), Some(l)) => c
                .query(
                    "select t.id from templates t join senders s on s.id = t.sender_id
                     where s.waba_id = ? and t.name = ? and t.language = ?",
                    params![w, n, l],
                )?
                .iter()
                .map(|r| r.string(0))
                .collect::<Result<_, _>>()?,
            _ => Vec::new(),
        }
    } else {
        ids
    };
    let mut changed = Vec::with_capacity(ids.len());
    for id in ids {
        c.execute(
            "update templates set status = ?, rejection_reason = ?, updated_at = ? where id = ?",
            params![status.as_str(), reason(status), now, &id],
        )?;
        let record = get_any(c, &id)?;
        // Decided by the provider (Meta's review), reported by its webhook.
        crate::journal::record_by(
            c,
            &record.org_id,
            "template.status",
            &record.id,
            &serde_json::json!({"status": record.template.status}),
            &crate::journal::Actor::System,
            now,
        )?;
        changed.push(record);
    }
    Ok(changed)
}

/// Templates of Twilio numbers whose WhatsApp review was still pending when last read (registered
/// with a Content SID, `HX…`): Twilio sends no webhook when the review ends, so openline asks again
/// (see the server's `workers::template_approvals`). Oldest first.
pub fn pending_content_templates(c: &mut dyn Conn) -> Result<Vec<TemplateRecord>, StoreError> {
    c.query(
        &format!(
            "select {COLS} from templates
             where status = 'pending' and provider_template_id like 'HX%'
               and sender_id in (select id from senders where provider = 'twilio')
             order by created_at, id"
        ),
        &[],
    )?
    .iter()
    .map(from_row)
    .collect()
}

/// Records the end of WhatsApp's review of a template that was still pending, as the provider
/// reported it when asked, journaled as `template.status` by the system. `None` when the template
/// is no longer pending (another node, or a send, recorded it first): each outcome is recorded once.
pub fn settle_pending(
    c: &mut dyn Conn,
    id: &str,
    status: &TemplateStatus,
    now: i64,
) -> Result<Option<TemplateRecord>, StoreError> {
    if c.execute(
        "update templates set status = ?, rejection_reason = ?, updated_at = ? where id = ? and status = 'pending'",
        params![status.as_str(), reason(status), now, id],
    )? != 1
    {
        return Ok(None);
    }
    let record = get_any(c, id)?;
    crate::journal::record_by(
        c,
        &record.org_id,
        "template.status",
        &record.id,
        &serde_json::json!({"status": record.template.status}),
        &crate::journal::Actor::System,
        now,
    )?;
    Ok(Some(record))
}
