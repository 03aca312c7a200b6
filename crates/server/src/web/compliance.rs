//! Compliance (supervisors and admins): the archive's state (every chain of the user's
//! organizations verified now: "intact through entry N" or its first broken entry), the latest
//! signed checkpoints with a download in the file format `openline archive verify --checkpoints`
//! reads, an export form (organization, user, contact, conversation, dates; JSON Lines, EML or CSV,
//! streamed by the same code as `GET /api/v1/archive/export`), legal holds (list, place with a
//! reason, release), the DLP review queue, and, for admins, outbound webhook subscriptions
//! (`compliance_webhooks`).
//!
//! Every change goes through the store functions the API uses, journaled with the signed-in user as
//! its actor, with the API's error codes. Agents and viewers get 403 and no link.

use crate::api::archive::{self as api_archive, ExportQuery};
use crate::state::AppState;
use crate::web::compliance_webhooks;
use crate::web::session::{check_csrf, WebError, WebForm, WebUser};
use crate::web::views::{self, Nav};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup};
use openline_domain::Role;
use openline_store::checkpoints::{self, Checkpoint, CheckpointExport};
use openline_store::contacts::Contact;
use openline_store::holds::{self, LegalHold, NewHold};
use openline_store::journal::{self, Actor, ChainReport};
use openline_store::messages::Message;
use openline_store::orgs::Organization;
use openline_store::web_admin::UserRow;
use serde::Deserialize;
use std::collections::HashMap;

/// How many checkpoints the page lists (the download has them all).
const CHECKPOINTS_SHOWN: usize = 10;
/// How many contacts the export and hold forms offer by name (others by id in the export form).
const CONTACTS_OFFERED: i64 = 500;

/// Supervisors and admins open the compliance pages.
pub fn may_open(role: Role) -> bool {
    matches!(role, Role::Admin | Role::Supervisor)
}

fn require_compliance(user: &WebUser) -> Result<(), WebError> {
    if may_open(user.me.user.role) {
        Ok(())
    } else {
        Err(WebError::forbidden(
            "Only supervisors and admins open the compliance pages. Ask an admin if you need an export or a legal hold.",
        ))
    }
}

/// Everything the page shows besides the webhooks.
struct Overview {
    orgs: Vec<Organization>,
    chains: Vec<ChainReport>,
    checkpoints: Vec<Checkpoint>,
    checkpoint_count: usize,
    holds: Vec<LegalHold>,
    users: Vec<UserRow>,
    contacts: Vec<Contact>,
    flagged: Vec<Message>,
}

async fn load(st: &AppState, user: &WebUser) -> Result<Overview, WebError> {
    let scope = user.me.scope.clone();
    Ok(st
        .store
        .read(move |c| {
            let orgs = openline_store::orgs::list(c, &scope)?;
            let mut chains = Vec::new();
            for o in &orgs {
                chains.extend(journal::verify(c, Some(&o.id))?);
            }
            let mut all = checkpoints::list(c, Some(&scope.org_ids))?;
            let checkpoint_count = all.len();
            all.reverse();
            all.truncate(CHECKPOINTS_SHOWN);
            Ok(Overview {
                orgs,
                chains,
                checkpoints: all,
                checkpoint_count,
                holds: holds::list(c, &scope, false)?,
                users: openline_store::web_admin::users(c, &scope)?,
                contacts: openline_store::contacts::list(c, &scope, None, None, CONTACTS_OFFERED)?,
                flagged: openline_store::dlp::flagged(c, &scope, 200)?,
            })
        })
        .await?)
}

/// `GET /compliance`
pub async fn compliance_page(State(st): State<AppState>, user: WebUser) -> Result<Response, WebError> {
    require_compliance(&user)?;
    page(&st, &user, None).await
}

/// The page, with a banner on top (after a change, or the webhook secret shown once).
pub async fn page(st: &AppState, user: &WebUser, banner: Option<Markup>) -> Result<Response, WebError> {
    let o = load(st, user).await?;
    let webhooks = if user.me.user.role.is_admin() {
        Some(compliance_webhooks::section(st, user).await?)
    } else {
        None
    };
    let org_name: HashMap<&str, &str> = o.orgs.iter().map(|x| (x.id.as_str(), x.name.as_str())).collect();
    let name_of = |id: &str| org_name.get(id).copied().unwrap_or(id).to_owned();
    let user_name: HashMap<&str, &str> = o.users.iter().map(|u| (u.id.as_str(), u.name.as_str())).collect();
    let contact_name: HashMap<&str, String> = o.contacts.iter().map(|c| (c.id.as_str(), contact_label(c))).collect();
    let subject_label = |h: &LegalHold| -> String {
        match h.scope.as_str() {
            "organization" => format!("Organization {}", name_of(&h.subject_id)),
            "user" => format!(
                "User {}",
                user_name.get(h.subject_id.as_str()).copied().unwrap_or(&h.subject_id)
            ),
            _ => format!(
                "Contact {}",
                contact_name
                    .get(h.subject_id.as_str())
                    .map_or(h.subject_id.as_str(), String::as_str)
            ),
        }
    };
    let content = html! {
        h1 { "Compliance" }
        @if let Some(b) = banner { (b) }
        section class="admin-section" id="archive" aria-labelledby="archive-h" {
            h2 id="archive-h" { "Archive" }
            p class="muted" { "Every entry is chained to the one before it by its hash; verified now, as you opened this page." }
            table {
                thead { tr { th scope="col" { "Organization" } th scope="col" { "State" } } }
                tbody {
                    @for r in &o.chains {
                        tr data-org=(r.org_id) {
                            td { (name_of(&r.org_id)) }
                            td data-testid="chain-state" {
                                @match &r.problem {
                                    None if r.entries == 0 => { "No entries yet." }
                                    None => {
                                        span class="tag" { "intact" }
                                        "Chain intact through entry " (r.first_seq + r.entries - 1)
                                        @if r.first_seq > 1 { " (entries before " (r.first_seq) " were purged under the retention policy)" }
                                        "."
                                    }
                                    Some(p) => {
                                        span class="tag tag-warn" { "broken" }
                                        "First broken entry: " (p.seq) ": " (p.what)
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        section class="admin-section" id="checkpoints" aria-labelledby="checkpoints-h" {
            h2 id="checkpoints-h" { "Signed checkpoints" }
            @if st.archive_signing_key.is_none() {
                p class="notice notice-warn" { "No archive signing key is configured, so no new checkpoints are signed. Create one with " code { "openline archive keygen" } " and set OPENLINE_ARCHIVE_SIGNING_KEY." }
            }
            @if o.checkpoints.is_empty() {
                p class="empty" { "No checkpoints yet." }
            } @else {
                p { "The latest " (o.checkpoints.len()) " of " (o.checkpoint_count) ", newest first. "
                    a href="/compliance/checkpoints" download { "Download all checkpoints (JSON)" }
                    " and check an export against them with " code { "openline archive verify --checkpoints FILE" } "." }
                table {
                    thead { tr { th scope="col" { "Organization" } th scope="col" { "Through entry" } th scope="col" { "Signed" } th scope="col" { "Hash" } } }
                    tbody {
                        @for cp in &o.checkpoints {
                            tr {
                                td { (name_of(&cp.org_id)) }
                                td { (cp.seq) }
                                td { (views::time(cp.at)) }
                                td { code title=(cp.hash) { (cp.hash.get(..16).unwrap_or(&cp.hash)) "…" } }
                            }
                        }
                    }
                }
            }
        }
        (export_form(&o))
        section class="admin-section" id="holds" aria-labelledby="holds-h" {
            h2 id="holds-h" { "Legal holds" }
            p class="muted" { "Nothing a hold covers is purged, whatever the retention period, until the hold is released." }
            @if o.holds.is_empty() { p class="empty" { "No legal holds." } }
            @else {
                table {
                    thead { tr { th scope="col" { "Holds" } th scope="col" { "Reason" } th scope="col" { "Placed" } th scope="col" { "Released" } th scope="col" { "" } } }
                    tbody {
                        @for h in &o.holds {
                            tr data-hold=(h.id) {
                                td { (subject_label(h)) }
                                td { (h.reason) }
                                td { (views::time(h.created_at)) " by " (actor_label(&h.created_by)) }
                                td {
                                    @if let (Some(at), Some(by)) = (h.released_at, &h.released_by) {
                                        (views::time(at)) " by " (actor_label(by))
                                    } @else { span class="tag tag-warn" { "active" } }
                                }
                                td {
                                    @if h.released_at.is_none() {
                                        form method="post" action={ "/compliance/holds/" (h.id) "/release" } class="inline" {
                                            input type="hidden" name="csrf" value=(user.csrf);
                                            button type="submit" aria-label={ "Release the hold: " (h.reason) } { "Release" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            h3 { "Place a legal hold" }
            form method="post" action="/compliance/holds" class="stack" {
                input type="hidden" name="csrf" value=(user.csrf);
                label for="hold-subject" { "What to hold" }
                select id="hold-subject" name="subject" required {
                    optgroup label="Organizations" {
                        @for org in &o.orgs { option value={ "organization:" (org.id) } { "Organization " (org.name) } }
                    }
                    optgroup label="Users" {
                        @for u in &o.users { option value={ "user:" (u.id) } { "User " (u.name) " (" (u.email) ")" } }
                    }
                    optgroup label="Contacts" {
                        @for ct in &o.contacts { option value={ "contact:" (ct.id) } { "Contact " (contact_label(ct)) } }
                    }
                }
                label for="hold-reason" { "Reason (a matter or case reference)" }
                input id="hold-reason" type="text" name="reason" required maxlength="500";
                button type="submit" { "Place hold" }
            }
        }
        section class="admin-section" id="dlp" aria-labelledby="dlp-h" {
            h2 id="dlp-h" { "Flagged by DLP, awaiting review" }
            @if o.flagged.is_empty() { p class="empty" { "Nothing awaits review." } }
            @else {
                table {
                    thead { tr { th scope="col" { "Message" } th scope="col" { "Why" } th scope="col" { "When" } th scope="col" { "" } } }
                    tbody {
                        @for m in &o.flagged {
                            tr data-message=(m.id) {
                                td { a href={ "/messages/" (m.conversation_id) } { (m.body.as_deref().unwrap_or("(no text)")) } }
                                td { (dlp_reason(m)) }
                                td { (views::time(m.created_at)) }
                                td {
                                    form method="post" action={ "/compliance/dlp/" (m.id) "/review" } class="inline" {
                                        input type="hidden" name="csrf" value=(user.csrf);
                                        button type="submit" { "Mark reviewed" }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        @if let Some(w) = webhooks { (w) }
    };
    Ok(views::layout(user, "Compliance", Nav::Compliance, content).into_response())
}

fn contact_label(c: &Contact) -> String {
    match (&c.name, &c.phone) {
        (Some(n), Some(p)) => format!("{n} ({p})"),
        (Some(n), None) => n.clone(),
        (None, Some(p)) => p.clone(),
        (None, None) => c.id.clone(),
    }
}

fn actor_label(a: &Actor) -> String {
    match a {
        Actor::User { email, .. } => email.clone(),
        Actor::Cli => "the command line".into(),
        Actor::System => "openline".into(),
    }
}

/// The rule names a DLP verdict flagged, if it names any.
fn dlp_reason(m: &Message) -> String {
    let Some(v) = &m.dlp else {
        return String::new();
    };
    let mut names: Vec<&str> = Vec::new();
    for name in v["matches"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x["rule_name"].as_str())
    {
        if !names.contains(&name) {
            names.push(name);
        }
    }
    if names.is_empty() {
        v["action"].as_str().unwrap_or("flagged").to_owned()
    } else {
        names.join(", ")
    }
}

fn export_form(o: &Overview) -> Markup {
    html! {
        section class="admin-section" id="export" aria-labelledby="export-h" {
            h2 id="export-h" { "Export" }
            p class="muted" { "The archive as it is kept, streamed as a download: JSON Lines (every entry with its hash), EML (an mbox of e-mails, with media attached) or CSV." }
            form method="get" action="/compliance/export" class="stack" {
                label for="export-org" { "Organization" }
                select id="export-org" name="org_id" {
                    @for org in &o.orgs { option value=(org.id) { (org.name) } }
                }
                label for="export-user" { "User (optional)" }
                select id="export-user" name="user_id" {
                    option value="" { "Everyone" }
                    @for u in &o.users { option value=(u.id) { (u.name) " (" (u.email) ")" } }
                }
                label for="export-contact" { "Contact (optional)" }
                select id="export-contact" name="contact_id" {
                    option value="" { "Every contact" }
                    @for ct in &o.contacts { option value=(ct.id) { (contact_label(ct)) } }
                }
                label for="export-conversation" { "Conversation id (optional)" }
                input id="export-conversation" type="text" name="conversation_id" placeholder="cnv_…";
                label for="export-since" { "From (UTC date, optional)" }
                input id="export-since" type="date" name="since";
                label for="export-until" { "To (UTC date, inclusive, optional)" }
                input id="export-until" type="date" name="until";
                fieldset {
                    legend { "Format" }
                    @for (v, text) in [("jsonl", "JSON Lines"), ("eml", "EML (mbox)"), ("csv", "CSV")] {
                        label class="inline" {
                            input type="radio" name="format" value=(v) checked[v == "jsonl"];
                            " " (text)
                        }
                    }
                }
                button type="submit" { "Download export" }
            }
        }
    }
}

/// The export form's fields: empty ones are "not set"; dates are `YYYY-MM-DD` (UTC).
#[derive(Debug, Deserialize)]
pub struct ExportForm {
    pub format: Option<String>,
    pub org_id: Option<String>,
    pub user_id: Option<String>,
    pub contact_id: Option<String>,
    pub conversation_id: Option<String>,
    pub since: Option<String>,
    pub until: Option<String>,
}

/// Days from 1970-01-01 to a civil date (Howard Hinnant's `days_from_civil`, the inverse of
/// `openline_domain::utc::civil_from_days`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DD` as the epoch milliseconds its UTC day starts at; `None` if it is not a real date.
pub fn parse_date(text: &str) -> Option<i64> {
    let mut parts = text.trim().splitn(3, '-');
    let (y, m, d) = (
        parts.next()?.parse::<i64>().ok()?,
        parts.next()?.parse::<i64>().ok()?,
        parts.next()?.parse::<i64>().ok()?,
    );
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || !(1970..=9999).contains(&y) {
        return None;
    }
    let days = days_from_civil(y, m, d);
    // Rejects 2025-02-30 and the like: the day must come back as written.
    (openline_domain::utc::civil_from_days(days) == (y, m as u32, d as u32)).then_some(days * 86_400_000)
}

fn given(v: Option<String>) -> Option<String> {
    v.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

/// `GET /compliance/export`: the export form's download (the API's export, with dates for times).
pub async fn download_export(
    State(st): State<AppState>,
    user: WebUser,
    Query(f): Query<ExportForm>,
) -> Result<Response, WebError> {
    require_compliance(&user)?;
    let date = |v: Option<String>, field: &str| -> Result<Option<i64>, WebError> {
        match given(v) {
            None => Ok(None),
            Some(t) => parse_date(&t).map(Some).ok_or_else(|| {
                WebError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_date",
                    format!("{field} must be a date written YYYY-MM-DD, such as 2026-01-31."),
                )
            }),
        }
    };
    let since = date(f.since, "From")?;
    // The last day counts whole: until the start of the next day.
    let until = date(f.until, "To")?.map(|d| d + 86_400_000);
    let q = ExportQuery {
        format: given(f.format),
        org_id: given(f.org_id),
        user_id: given(f.user_id),
        contact_id: given(f.contact_id),
        conversation_id: given(f.conversation_id),
        since,
        until,
    };
    Ok(api_archive::export_response(&st, &user.me, q).await?)
}

/// `GET /compliance/checkpoints`: every checkpoint of the user's organizations with the public key,
/// as a file for `openline archive verify --checkpoints`.
pub async fn download_checkpoints(State(st): State<AppState>, user: WebUser) -> Result<Response, WebError> {
    require_compliance(&user)?;
    let orgs = user.me.scope.org_ids.clone();
    let list = st.store.read(move |c| checkpoints::list(c, Some(&orgs))).await?;
    let file = CheckpointExport {
        format: checkpoints::EXPORT_FORMAT.into(),
        public_key: st.archive_signing_key.as_deref().map(checkpoints::public_key_hex),
        checkpoints: list,
    };
    let body = serde_json::to_vec_pretty(&file).map_err(|e| WebError::from(crate::error::AppError::internal(e)))?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/json".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"openline-checkpoints.json\"".to_owned(),
            ),
        ],
        body,
    )
        .into_response())
}

#[derive(Debug, Deserialize)]
pub struct HoldForm {
    pub csrf: Option<String>,
    /// `organization:ID`, `user:ID` or `contact:ID`.
    pub subject: String,
    pub reason: String,
}

/// `POST /compliance/holds`: places a legal hold (journaled `legal_hold.placed` with the user).
pub async fn place_hold(
    State(st): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    WebForm(form): WebForm<HoldForm>,
) -> Result<Response, WebError> {
    check_csrf(&user, &headers, &st, form.csrf.as_deref())?;
    require_compliance(&user)?;
    let (scope, subject_id) = form.subject.split_once(':').unwrap_or(("", ""));
    let hold = NewHold {
        scope: scope.to_owned(),
        subject_id: subject_id.to_owned(),
        reason: form.reason,
    };
    let (sc, actor, now) = (user.me.scope.clone(), api_archive::actor(&user.me), st.now());
    st.store
        .write(move |c| Ok(holds::set(c, &sc, &hold, &actor, now)))
        .await?
        .map_err(api_archive::hold_refused)?;
    tracing::info!(user_id = %user.me.user.id, "legal hold placed from the web");
    Ok(Redirect::to("/compliance#holds").into_response())
}

#[derive(Debug, Deserialize)]
pub struct CsrfForm {
    pub csrf: Option<String>,
}

/// `POST /compliance/holds/{id}/release`: releases an active hold (journaled with the user).
pub async fn release_hold(
    State(st): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    WebForm(form): WebForm<CsrfForm>,
) -> Result<Response, WebError> {
    check_csrf(&user, &headers, &st, form.csrf.as_deref())?;
    require_compliance(&user)?;
    let (scope, actor, now) = (user.me.scope.clone(), api_archive::actor(&user.me), st.now());
    st.store
        .write(move |c| holds::release(c, &scope, &id, &actor, now))
        .await
        .map_err(|e| match e {
            openline_store::StoreError::NotFound => WebError::not_found("active legal hold"),
            other => other.into(),
        })?;
    Ok(Redirect::to("/compliance#holds").into_response())
}

/// `POST /compliance/dlp/{id}/review`: marks a flagged message reviewed (the API's review).
pub async fn review_flagged(
    State(st): State<AppState>,
    user: WebUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    WebForm(form): WebForm<CsrfForm>,
) -> Result<Response, WebError> {
    check_csrf(&user, &headers, &st, form.csrf.as_deref())?;
    require_compliance(&user)?;
    crate::api::dlp::review_message(State(st), user.me.clone(), Path(id)).await?;
    Ok(Redirect::to("/compliance#dlp").into_response())
}

#[cfg(test)]
mod tests {
    use super::parse_date;

    #[test]
    fn dates_are_utc_days_and_impossible_ones_are_refused() {
        assert_eq!(parse_date("1970-01-01"), Some(0));
        assert_eq!(parse_date("2026-03-01"), Some(1_772_323_200_000));
        assert_eq!(parse_date("2024-02-29"), Some(1_709_164_800_000));
        assert_eq!(parse_date("2025-02-29"), None);
        assert_eq!(parse_date("2025-13-01"), None);
        assert_eq!(parse_date("yesterday"), None);
        assert_eq!(parse_date("2025-1"), None);
    }
}
