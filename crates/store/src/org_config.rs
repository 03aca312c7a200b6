//! What an organization inherits along the organization tree, resolved once and kept by each
//! connection: the organizations from it up to the root (with their settings), the DLP rules that
//! apply to it, and the numbers it may send from.
//!
//! Every send needs four of these answers (the number to send from, the WhatsApp switch, DLP
//! rules, the messaging tier outside the window), and each was a recursive walk of the tree; under
//! load they were a fifth of the writer's time. Here the walk is done once per organization and
//! kept, and each use reads one row instead: `config_version.token`, which triggers change whenever
//! `organizations`, `senders` or `dlp_policies` change (migration 0017) — by openline, by
//! `openline admin` in another process, or by hand.
//!
//! The token is read before anything is loaded, so what is kept is never older than the token it
//! is kept under; if a change landed in between, the next token read differs and it is dropped.
//! Inside a transaction that changed the tree the token has already changed, so the change is seen
//! at once; a change rolled back restores a token no cache holds (random on SQLite, from a sequence
//! on PostgreSQL).
//!
//! The token is read once per job, not at every use: a send asks for three of the answers, and on
//! PostgreSQL each read of the token was a round trip of the writer's (two of a send's sixteen).
//! What a job keeps is dropped with every statement that may write (a change earlier in the same job
//! is still seen at once) and at the start of every job (a change by another process is seen by
//! the next job, as before by the next statement).

use crate::orgs::{Organization, ANCESTOR_CHAIN};
use crate::senders::Sender;
use crate::sql::Conn;
use crate::{params, StoreError};
use openline_domain::dlp::{effective_rules, DlpPolicy, DlpRule};
use std::collections::HashMap;
use std::sync::Arc;

/// At most this many organizations are kept per connection; past it the cache starts again
/// (a deployment has far fewer organizations than this).
const MAX_KEPT: usize = 4096;

/// An organization's inherited configuration.
#[derive(Debug, Clone, Default)]
pub struct OrgChain {
    /// The organization and its ancestors, nearest first, each with its settings JSON. Empty when
    /// the organization does not exist.
    pub orgs: Vec<(Organization, serde_json::Value)>,
    /// The DLP rules in force (its own over its ancestors', see [`effective_rules`]).
    pub dlp_rules: Vec<DlpRule>,
    /// Every number along the chain, in the order one is chosen: nearest organization first, then
    /// the oldest.
    pub senders: Vec<Sender>,
}

/// What one connection keeps (see the module doc).
#[derive(Debug, Default)]
pub struct OrgConfigCache {
    token: Option<i64>,
    chains: HashMap<String, Arc<OrgChain>>,
    /// The token was read in this job and nothing written since.
    checked: bool,
}

impl OrgConfigCache {
    /// A new job starts, or a statement that may write ran: the next use reads the token again.
    pub(crate) fn recheck(&mut self) {
        self.checked = false;
    }
}

/// The read of the configuration token a job's first use of the configuration makes, for
/// [`Conn::prefetch`].
pub fn token_read() -> (&'static str, Vec<crate::Val>) {
    ("select token from config_version where id = 1", Vec::new())
}

/// The organization's chain, from the connection's cache while the configuration is unchanged.
pub fn chain(c: &mut dyn Conn, org_id: &str) -> Result<Arc<OrgChain>, StoreError> {
    if !c.org_config().checked {
        let (sql, vals) = token_read();
        let token = c.query_one(sql, &vals)?.i64(0)?;
        let cache = c.org_config();
        if cache.token != Some(token) {
            cache.chains.clear();
            cache.token = Some(token);
        }
        cache.checked = true;
    }
    if let Some(chain) = c.org_config().chains.get(org_id) {
        return Ok(Arc::clone(chain));
    }
    let chain = Arc::new(load(c, org_id)?);
    let cache = c.org_config();
    if cache.chains.len() >= MAX_KEPT {
        cache.chains.clear();
    }
    cache.chains.insert(org_id.to_owned(), Arc::clone(&chain));
    Ok(chain)
}

/// Reads the chain from the database: three statements, each walking the tree once.
fn load(c: &mut dyn Conn, org_id: &str) -> Result<OrgChain, StoreError> {
    let orgs = c
        .query(
            &format!(
                "{ANCESTOR_CHAIN} select o.id, o.parent_id, o.name, o.whatsapp, o.created_at, o.settings
                 from chain join organizations o on o.id = chain.id order by chain.depth"
            ),
            params![org_id],
        )?
        .iter()
        .map(|r| {
            let org = crate::orgs::from_row(r)?;
            // Settings are written by openline as JSON; an unreadable value counts as none set.
            let settings = serde_json::from_str(&r.string(5)?).unwrap_or_default();
            Ok((org, settings))
        })
        .collect::<Result<Vec<_>, StoreError>>()?;
    let policies = c
        .query(
            &format!(
                "{ANCESTOR_CHAIN} select p.policy from chain join dlp_policies p on p.org_id = chain.id
                 order by chain.depth"
            ),
            params![org_id],
        )?
        .iter()
        .map(|r| serde_json::from_str(&r.string(0)?).map_err(|e| StoreError::Decode(e.to_string())))
        .collect::<Result<Vec<DlpPolicy>, _>>()?;
    let refs: Vec<&DlpPolicy> = policies.iter().collect();
    let senders = c
        .query(
            &format!(
                "{ANCESTOR_CHAIN} select {} from chain join senders s on s.org_id = chain.id
                 order by chain.depth, s.created_at, s.id",
                crate::senders::qualified_cols("s")
            ),
            params![org_id],
        )?
        .iter()
        .map(crate::senders::from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(OrgChain {
        orgs,
        dlp_rules: effective_rules(&refs),
        senders,
    })
}
