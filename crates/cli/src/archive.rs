//! `openline archive …`: check the tamper-evident archive and export it.
//!
//! `verify` walks every organization's hash chain and reports the first entry that was altered,
//! deleted, inserted or reordered (exit status 1 when it finds one). `export` streams an
//! organization's journal as JSON Lines (one entry per line, the journal's own shape, hashes included
//! so an archive can re-verify), page by page, so a year of data never has to fit in memory.

use crate::{load_config, CommonArgs};
use anyhow::Context;
use clap::Subcommand;
use openline_store::{journal, orgs, Store, StoreError};
use std::io::Write;

#[derive(Subcommand)]
pub enum ArchiveCommand {
    /// Verify every organization's hash chain (or one organization's).
    Verify {
        #[command(flatten)]
        common: CommonArgs,
        /// Only this organization (by name)
        #[arg(long)]
        org: Option<String>,
    },
    /// Export an organization's journal as JSON Lines to stdout (or --output FILE).
    Export {
        #[command(flatten)]
        common: CommonArgs,
        /// The organization (by name)
        #[arg(long)]
        org: String,
        /// Only entries at or after this time (epoch milliseconds)
        #[arg(long)]
        since: Option<i64>,
        /// Only entries before this time (epoch milliseconds)
        #[arg(long)]
        until: Option<i64>,
        /// Write here instead of stdout
        #[arg(long)]
        output: Option<std::path::PathBuf>,
    },
}

fn open(common: &CommonArgs) -> anyhow::Result<Store> {
    let config = load_config(common)?;
    let db = config.database()?;
    Store::open(&db).map_err(|e| anyhow::anyhow!("cannot open {db}: {e}"))
}

async fn org_id(store: &Store, name: String) -> anyhow::Result<String> {
    store
        .read(move |c| orgs::find_by_name(c, &name)?.map(|o| o.id).ok_or(StoreError::NotFound))
        .await
        .map_err(|e| match e {
            StoreError::NotFound => anyhow::anyhow!("no organization with this name"),
            other => anyhow::anyhow!("{other}"),
        })
}

/// Returns whether everything verified.
pub async fn run(cmd: ArchiveCommand) -> anyhow::Result<bool> {
    match cmd {
        ArchiveCommand::Verify { common, org } => {
            let store = open(&common)?;
            let only = match org {
                Some(name) => Some(org_id(&store, name).await?),
                None => None,
            };
            let reports = store
                .read(move |c| journal::verify(c, only.as_deref()))
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let mut ok = true;
            for r in &reports {
                match &r.problem {
                    None => println!("ok       {}  {} entries", r.org_id, r.entries),
                    Some(p) => {
                        ok = false;
                        println!("BROKEN   {}  entry {}: {}", r.org_id, p.seq, p.what);
                    }
                }
            }
            if reports.is_empty() {
                println!("the archive is empty");
            }
            Ok(ok)
        }
        ArchiveCommand::Export {
            common,
            org,
            since,
            until,
            output,
        } => {
            let store = open(&common)?;
            let org = org_id(&store, org).await?;
            let mut out: Box<dyn Write> = match &output {
                Some(path) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let mut after = 0i64;
            let mut written = 0u64;
            loop {
                let o = org.clone();
                let page = store
                    .read(move |c| journal::page(c, &o, after, 1000))
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                let Some(last) = page.last() else { break };
                after = last.seq;
                for e in &page {
                    if since.is_some_and(|s| e.at < s) || until.is_some_and(|u| e.at >= u) {
                        continue;
                    }
                    serde_json::to_writer(&mut out, e)?;
                    out.write_all(b"\n")?;
                    written += 1;
                }
                if output.is_some() {
                    eprint!("\rexported {written} entries");
                }
            }
            out.flush()?;
            if output.is_some() {
                eprintln!("\rexported {written} entries");
            }
            Ok(true)
        }
    }
}
