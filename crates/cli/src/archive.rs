//! `openline archive …`: check the tamper-evident archive, sign and check its checkpoints, manage
//! retention, legal holds and recording, purge what expired, and export it.
//!
//! `verify` walks every organization's hash chain and reports the first entry that was altered,
//! deleted, inserted or reordered (exit status 1 when it finds one); with `--checkpoints FILE` it
//! also checks that each exported signed checkpoint still matches the chain, which catches a history
//! rewritten with every hash recomputed. `export` streams an organization's archive as JSON Lines,
//! EML (an mbox of RFC 5322 messages) or CSV, page by page, so a year of data never has to fit in
//! memory, with a progress bar when stderr is a terminal.

use crate::{load_config, CommonArgs};
use anyhow::{bail, Context};
use clap::Subcommand;
use openline_domain::clock::{Clock, SystemClock};
use openline_store::checkpoints::{self, CheckpointExport};
use openline_store::export::{Export, Filter, Format};
use openline_store::holds::{self, HoldError, NewHold};
use openline_store::journal::{self, Actor};
use openline_store::orgs;
use openline_store::{retention, Store, StoreError};
use sha2::{Digest, Sha256};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;

#[derive(Subcommand)]
pub enum ArchiveCommand {
    /// Verify every organization's hash chain (or one organization's), and optionally exported
    /// signed checkpoints against it.
    Verify {
        #[command(flatten)]
        common: CommonArgs,
        /// Only this organization (by name)
        #[arg(long)]
        org: Option<String>,
        /// A checkpoints file from `openline archive checkpoints --export`: each must still match
        #[arg(long)]
        checkpoints: Option<PathBuf>,
        /// The public key (hex) you trust; default: the one in the checkpoints file
        #[arg(long)]
        public_key: Option<String>,
    },
    /// Export an organization's archive to stdout (or --output FILE).
    Export {
        #[command(flatten)]
        common: CommonArgs,
        /// The organization (by name)
        #[arg(long)]
        org: String,
        /// jsonl (the journal's own entries), eml (an mbox: one e-mail per conversation per day)
        /// or csv (metadata only)
        #[arg(long, default_value = "jsonl")]
        format: String,
        /// Only entries naming this user (by e-mail), and messages they wrote
        #[arg(long)]
        user: Option<String>,
        /// Only this contact's conversations, messages and consent (contact id or phone number)
        #[arg(long)]
        contact: Option<String>,
        /// Only this conversation (id)
        #[arg(long)]
        conversation: Option<String>,
        /// Only entries at or after this time (epoch milliseconds)
        #[arg(long)]
        since: Option<i64>,
        /// Only entries before this time (epoch milliseconds)
        #[arg(long)]
        until: Option<i64>,
        /// Write here instead of stdout
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Print a new Ed25519 signing key for checkpoints (set it as OPENLINE_ARCHIVE_SIGNING_KEY or
    /// put it in the file archive.signing_key_file names) and its public key for auditors.
    Keygen,
    /// Sign every chain head that moved since its last checkpoint, now.
    Checkpoint {
        #[command(flatten)]
        common: CommonArgs,
        /// Only this organization (by name)
        #[arg(long)]
        org: Option<String>,
    },
    /// List the stored checkpoints, or with --export write them with the public key as JSON (the
    /// file `verify --checkpoints` reads).
    Checkpoints {
        #[command(flatten)]
        common: CommonArgs,
        #[arg(long)]
        export: bool,
        /// Write the export here instead of stdout
        #[arg(long)]
        output: Option<PathBuf>,
    },
    /// Remove expired entries (past each organization's retention) that no legal hold covers, and
    /// journal the purge.
    Purge {
        #[command(flatten)]
        common: CommonArgs,
        /// Say what would be removed, remove nothing
        #[arg(long)]
        dry_run: bool,
    },
    /// Place a legal hold on an organization, or on one of its users or contacts.
    Hold {
        #[command(flatten)]
        common: CommonArgs,
        /// The organization (by name); the hold covers all of it unless --user or --contact is given
        #[arg(long)]
        org: String,
        /// Hold one user (by e-mail)
        #[arg(long, conflicts_with = "contact")]
        user: Option<String>,
        /// Hold one contact (contact id or phone number)
        #[arg(long)]
        contact: Option<String>,
        /// Why (a matter or case reference)
        #[arg(long)]
        reason: String,
    },
    /// Release a legal hold.
    Release {
        #[command(flatten)]
        common: CommonArgs,
        /// The hold's id (hold_…)
        #[arg(long)]
        id: String,
    },
    /// List legal holds (active ones unless --all).
    Holds {
        #[command(flatten)]
        common: CommonArgs,
        #[arg(long)]
        all: bool,
    },
    /// Show or change an organization's retention and recording (sub-organizations inherit).
    Settings {
        #[command(flatten)]
        common: CommonArgs,
        /// The organization (by name)
        #[arg(long)]
        org: String,
        /// Days to keep the archive (1 to 36500), or `inherit`
        #[arg(long)]
        retention_days: Option<String>,
        /// Archive message content: on, off or inherit
        #[arg(long)]
        recording: Option<String>,
    },
}

fn open(common: &CommonArgs) -> anyhow::Result<Store> {
    crate::open_store(&load_config(common)?)
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

/// A contact of the organization by id or phone number.
fn contact_id(c: &mut dyn openline_store::Conn, org: &str, contact: &str) -> Result<String, StoreError> {
    c.query_opt(
        "select id from contacts where org_id = ? and (id = ? or phone = ?)",
        openline_store::params![org, contact, contact],
    )?
    .map(|r| r.string(0))
    .transpose()?
    .ok_or(StoreError::NotFound)
}

fn user_id(c: &mut dyn openline_store::Conn, email: &str) -> Result<String, StoreError> {
    openline_store::users::find_for_login(c, email)?
        .map(|(u, _)| u.id)
        .ok_or(StoreError::NotFound)
}

fn writer(output: &Option<PathBuf>) -> anyhow::Result<Box<dyn Write>> {
    Ok(match output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    })
}

fn store_err(e: StoreError) -> anyhow::Error {
    anyhow::anyhow!("{e}")
}

/// Returns whether everything verified.
pub async fn run(cmd: ArchiveCommand) -> anyhow::Result<bool> {
    let now = SystemClock.now();
    match cmd {
        ArchiveCommand::Verify {
            common,
            org,
            checkpoints,
            public_key,
        } => {
            // Read the checkpoints file first: a typo in its name costs nothing.
            let export: Option<CheckpointExport> = match &checkpoints {
                Some(path) => {
                    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
                    let export: CheckpointExport = serde_json::from_str(&text)
                        .with_context(|| format!("{} is not a checkpoints export", path.display()))?;
                    if export.format != checkpoints::EXPORT_FORMAT {
                        bail!("{} is not an {} file", path.display(), checkpoints::EXPORT_FORMAT);
                    }
                    Some(export)
                }
                None => None,
            };
            let store = open(&common)?;
            let only = match org {
                Some(name) => Some(org_id(&store, name).await?),
                None => None,
            };
            let o = only.clone();
            let reports = store
                .read(move |c| journal::verify(c, o.as_deref()))
                .await
                .map_err(store_err)?;
            let mut ok = true;
            for r in &reports {
                let purged = if r.first_seq > 1 {
                    format!(" (entries before {} purged under retention)", r.first_seq)
                } else {
                    String::new()
                };
                match &r.problem {
                    None => println!("ok       {}  {} entries{purged}", r.org_id, r.entries),
                    Some(p) => {
                        ok = false;
                        println!("BROKEN   {}  entry {}: {}", r.org_id, p.seq, p.what);
                    }
                }
            }
            if reports.is_empty() {
                println!("the archive is empty");
            }
            if let Some(mut export) = export {
                if let Some(o) = &only {
                    export.checkpoints.retain(|cp| &cp.org_id == o);
                }
                let n = export.checkpoints.len();
                let findings = store
                    .read(move |c| checkpoints::check(c, &export, public_key.as_deref()))
                    .await
                    .map_err(store_err)?;
                for f in findings.iter().filter(|f| !f.ok) {
                    ok = false;
                    println!("REWRITTEN {}  checkpoint at entry {}: {}", f.org_id, f.seq, f.what);
                }
                if findings.iter().all(|f| f.ok) {
                    println!("ok       {n} signed checkpoints match the archive");
                }
            }
            Ok(ok)
        }
        ArchiveCommand::Export {
            common,
            org,
            format,
            user,
            contact,
            conversation,
            since,
            until,
            output,
        } => {
            let format = Format::parse(&format).ok_or_else(|| anyhow::anyhow!("--format must be jsonl, eml or csv"))?;
            if let (Some(s), Some(u)) = (since, until) {
                if s >= u {
                    bail!("--since must be before --until");
                }
            }
            let store = open(&common)?;
            let org = org_id(&store, org).await?;
            let o = org.clone();
            let (user_id, contact_id) = store
                .read(move |c| {
                    let u = user.as_deref().map(|e| user_id(c, e)).transpose()?;
                    let ct = contact.as_deref().map(|ct| contact_id(c, &o, ct)).transpose()?;
                    Ok((u, ct))
                })
                .await
                .map_err(|e| match e {
                    StoreError::NotFound => anyhow::anyhow!("no such user (--user) or contact (--contact)"),
                    other => store_err(other),
                })?;
            let filter = Filter {
                org_id: org,
                user_id,
                contact_id,
                conversation_id: conversation,
                since,
                until,
            };
            // EML attaches the stored copies of media files, from the configured blob store.
            let blobs = load_config(&common)?.blob_dir();
            export(&store, filter, format, &output, blobs).await?;
            Ok(true)
        }
        ArchiveCommand::Keygen => {
            // SHA-256 of a fresh 256-bit random value: a uniformly random seed.
            let seed: [u8; 32] = Sha256::digest(openline_server::auth::random_secret().as_bytes()).into();
            let (secret, public) = checkpoints::generate_key(seed);
            println!("signing key (secret; set OPENLINE_ARCHIVE_SIGNING_KEY or archive.signing_key_file):");
            println!("{secret}");
            println!("public key (give to auditors; checks exported checkpoints):");
            println!("{public}");
            Ok(true)
        }
        ArchiveCommand::Checkpoint { common, org } => {
            let config = load_config(&common)?;
            let key = config.archive.signing_key()?.ok_or_else(|| {
                anyhow::anyhow!(
                    "no archive signing key: create one with `openline archive keygen` and set OPENLINE_ARCHIVE_SIGNING_KEY"
                )
            })?;
            let store = open(&common)?;
            let only = match org {
                Some(name) => Some(org_id(&store, name).await?),
                None => None,
            };
            let made = store
                .write(move |c| checkpoints::create(c, &key, only.as_deref(), now))
                .await
                .map_err(store_err)?;
            for cp in &made {
                println!("signed   {}  entry {}  {}", cp.org_id, cp.seq, cp.hash);
            }
            println!(
                "{} new checkpoints (chains that did not move keep their last one)",
                made.len()
            );
            Ok(true)
        }
        ArchiveCommand::Checkpoints { common, export, output } => {
            let config = load_config(&common)?;
            let public_key = config.archive.signing_key()?.map(|k| checkpoints::public_key_hex(&k));
            let store = open(&common)?;
            let list = store.read(|c| checkpoints::list(c, None)).await.map_err(store_err)?;
            let mut out = writer(&output)?;
            if export {
                let file = CheckpointExport {
                    format: checkpoints::EXPORT_FORMAT.into(),
                    public_key,
                    checkpoints: list,
                };
                serde_json::to_writer_pretty(&mut out, &file)?;
                out.write_all(b"\n")?;
            } else {
                for cp in &list {
                    writeln!(
                        out,
                        "{}  {}  entry {}  {}  at {}",
                        cp.id,
                        cp.org_id,
                        cp.seq,
                        cp.hash,
                        openline_store::export::rfc3339(cp.at)
                    )?;
                }
            }
            out.flush()?;
            Ok(true)
        }
        ArchiveCommand::Purge { common, dry_run } => {
            let store = open(&common)?;
            let reports = store
                .write(move |c| retention::purge_all(c, now, dry_run, &Actor::Cli))
                .await
                .map_err(store_err)?;
            let verb = if dry_run { "would purge" } else { "purged" };
            for r in &reports {
                let held = r
                    .held_by
                    .as_deref()
                    .map(|h| format!("; stopped by legal hold {h}"))
                    .unwrap_or_default();
                println!(
                    "{verb} {:>6} entries  {}  (retention {} days){held}",
                    r.purged, r.org_id, r.retention_days
                );
            }
            Ok(true)
        }
        ArchiveCommand::Hold {
            common,
            org,
            user,
            contact,
            reason,
        } => {
            let store = open(&common)?;
            let org = org_id(&store, org).await?;
            let hold = store
                .write(move |c| {
                    let (scope_kind, subject) = match (&user, &contact) {
                        (Some(email), _) => ("user", user_id(c, email)?),
                        (_, Some(ct)) => ("contact", contact_id(c, &org, ct)?),
                        _ => ("organization", org.clone()),
                    };
                    let all = crate::every_organization(c)?;
                    Ok(holds::set(
                        c,
                        &all,
                        &NewHold {
                            scope: scope_kind.into(),
                            subject_id: subject,
                            reason,
                        },
                        &Actor::Cli,
                        now,
                    ))
                })
                .await
                .map_err(|e| match e {
                    StoreError::NotFound => anyhow::anyhow!("no such user (--user) or contact (--contact)"),
                    other => store_err(other),
                })?
                .map_err(|e| match e {
                    HoldError::EmptyReason => anyhow::anyhow!("--reason must say why (1 to 500 characters)"),
                    HoldError::UnknownSubject => anyhow::anyhow!("no such organization, user or contact"),
                    HoldError::InvalidScope => anyhow::anyhow!("invalid hold scope"),
                    HoldError::Store(e) => anyhow::anyhow!("{e}"),
                })?;
            println!(
                "hold {} placed on {} {}: {}",
                hold.id, hold.scope, hold.subject_id, hold.reason
            );
            Ok(true)
        }
        ArchiveCommand::Release { common, id } => {
            let store = open(&common)?;
            store
                .write(move |c| {
                    let all = crate::every_organization(c)?;
                    holds::release(c, &all, &id, &Actor::Cli, now)
                })
                .await
                .map_err(|e| match e {
                    StoreError::NotFound => anyhow::anyhow!("no active legal hold with this id"),
                    other => store_err(other),
                })?;
            println!("released");
            Ok(true)
        }
        ArchiveCommand::Holds { common, all } => {
            let store = open(&common)?;
            let list = store
                .read(move |c| {
                    let scope = crate::every_organization(c)?;
                    holds::list(c, &scope, !all)
                })
                .await
                .map_err(store_err)?;
            for h in &list {
                let state = if h.released_at.is_some() { "released" } else { "active" };
                println!("{}  {state:8}  {} {}  {}", h.id, h.scope, h.subject_id, h.reason);
            }
            if list.is_empty() {
                println!("no legal holds");
            }
            Ok(true)
        }
        ArchiveCommand::Settings {
            common,
            org,
            retention_days,
            recording,
        } => {
            let retention = match retention_days.as_deref() {
                None => None,
                Some("inherit") => Some(None),
                Some(d) => match d.parse::<i64>() {
                    Ok(d) if retention::valid_retention_days(d) => Some(Some(d)),
                    _ => bail!("--retention-days must be 1 to 36500, or inherit"),
                },
            };
            let recording = match recording.as_deref() {
                None => None,
                Some("on") => Some(Some(true)),
                Some("off") => Some(Some(false)),
                Some("inherit") => Some(None),
                Some(_) => bail!("--recording must be on, off or inherit"),
            };
            let store = open(&common)?;
            let org = org_id(&store, org).await?;
            let (days, on) = store
                .write(move |c| {
                    if let Some(d) = retention {
                        retention::set_retention_days(c, &org, d, &Actor::Cli, now)?;
                    }
                    if let Some(r) = recording {
                        journal::set_recording(c, &org, r, &Actor::Cli, now)?;
                    }
                    Ok((
                        retention::retention_days(c, &org)?,
                        journal::recording_enabled(c, &org)?,
                    ))
                })
                .await
                .map_err(store_err)?;
            println!("retention {days} days, recording {}", if on { "on" } else { "off" });
            Ok(true)
        }
    }
}

/// Streams an export to the output, a page at a time, with a progress bar on a terminal.
async fn export(
    store: &Store,
    filter: Filter,
    format: Format,
    output: &Option<PathBuf>,
    blobs: PathBuf,
) -> anyhow::Result<()> {
    let mut out = writer(output)?;
    let ex = Export::new(filter, format).with_blobs(blobs);
    let (mut ex, total) = store
        .read(move |c| {
            let total = ex.total(c)?;
            Ok((ex, total))
        })
        .await
        .map_err(store_err)?;
    let bar = if std::io::stderr().is_terminal() {
        let bar = indicatif::ProgressBar::new(u64::try_from(total).unwrap_or(0));
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} entries  {elapsed_precise}  eta {eta}")
        {
            bar.set_style(style);
        }
        bar
    } else {
        indicatif::ProgressBar::hidden()
    };
    loop {
        let (back, chunk) = store
            .read(move |c| {
                let chunk = ex.next_chunk(c)?;
                Ok((ex, chunk))
            })
            .await
            .map_err(store_err)?;
        ex = back;
        bar.set_position(ex.entries_read);
        match chunk {
            Some(bytes) => out.write_all(&bytes)?,
            None => break,
        }
    }
    out.flush()?;
    bar.finish_and_clear();
    if output.is_some() || std::io::stderr().is_terminal() {
        eprintln!("exported {} items from {} entries", ex.items_written, ex.entries_read);
    }
    Ok(())
}
