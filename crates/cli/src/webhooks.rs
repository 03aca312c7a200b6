//! `openline admin webhooks …`: outbound webhook subscriptions from the command line, with the same
//! checks as the API (`/api/v1/webhook-subscriptions`): list, create (the signing secret is printed
//! once, on the last line), disable/enable, resume a parked one, rotate the secret, delete, and show
//! the latest delivery attempts. Changes are journaled as made by the command line. A running server
//! picks changes up on its next poll.

use crate::{load_config, CommonArgs};
use anyhow::bail;
use clap::Subcommand;
use openline_domain::clock::{Clock, SystemClock};
use openline_server::api::webhook_subscriptions::{validate_events, validate_url, SECRET_PREFIX};
use openline_server::workers::outbound_webhooks::ROTATION_GRACE_MS;
use openline_store::journal::Actor;
use openline_store::orgs::{self, Scope};
use openline_store::webhooks_out::{self, NewSubscription, SubscriptionChange};
use openline_store::{Store, StoreError};

#[derive(Subcommand)]
pub enum WebhooksCommand {
    /// List an organization's subscriptions (JSON), with their state and cursors.
    List {
        #[command(flatten)]
        common: CommonArgs,
        /// Name of the organization
        #[arg(long)]
        org: String,
    },
    /// Subscribe a URL to event types; prints the signing secret once, on the last line.
    Create {
        #[command(flatten)]
        common: CommonArgs,
        /// Name of the organization whose events are delivered
        #[arg(long)]
        org: String,
        /// Where events are POSTed (https://…)
        #[arg(long)]
        url: String,
        /// Comma-separated: message.received, message.sent, message.status, consent.changed,
        /// participant.changed, or * for all
        #[arg(long, value_delimiter = ',', required = true)]
        events: Vec<String>,
        #[arg(long, default_value = "")]
        description: String,
        /// Also deliver the events of every organization below --org
        #[arg(long)]
        include_sub_organizations: bool,
        /// Deliver the events already in the archive too (a backfill), not only new ones
        #[arg(long)]
        deliver_existing_events: bool,
    },
    /// Stop deliveries (events wait in the archive until enabled again).
    Disable {
        #[command(flatten)]
        common: CommonArgs,
        /// The subscription's id (whs_…)
        #[arg(long)]
        id: String,
    },
    /// Start deliveries again after `disable`.
    Enable {
        #[command(flatten)]
        common: CommonArgs,
        #[arg(long)]
        id: String,
    },
    /// Deliver a parked subscription's head event again now, with a fresh retry period.
    Resume {
        #[command(flatten)]
        common: CommonArgs,
        #[arg(long)]
        id: String,
    },
    /// A new signing secret, printed once; the previous one keeps signing for 24 hours.
    RotateSecret {
        #[command(flatten)]
        common: CommonArgs,
        #[arg(long)]
        id: String,
    },
    /// Remove a subscription and its attempt records.
    Delete {
        #[command(flatten)]
        common: CommonArgs,
        #[arg(long)]
        id: String,
    },
    /// The latest delivery attempts (JSON), newest first.
    Deliveries {
        #[command(flatten)]
        common: CommonArgs,
        #[arg(long)]
        id: String,
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
}

fn open(common: &CommonArgs) -> anyhow::Result<(Store, openline_server::config::Config)> {
    let config = load_config(common)?;
    Ok((crate::open_store(&config)?, config))
}

fn new_secret() -> String {
    format!("{SECRET_PREFIX}{}", openline_server::auth::random_secret())
}

fn explain(e: StoreError) -> anyhow::Error {
    match e {
        StoreError::NotFound => anyhow::anyhow!("no such organization or subscription"),
        other => anyhow::anyhow!("{other}"),
    }
}

pub async fn run(cmd: WebhooksCommand) -> anyhow::Result<()> {
    let now = SystemClock.now();
    match cmd {
        WebhooksCommand::List { common, org } => {
            let (store, _) = open(&common)?;
            let subs = store
                .read(move |c| {
                    let org = orgs::find_by_name(c, &org)?.ok_or(StoreError::NotFound)?;
                    webhooks_out::list(c, &Scope { org_ids: vec![org.id] })
                })
                .await
                .map_err(explain)?;
            println!("{}", serde_json::to_string_pretty(&subs)?);
        }
        WebhooksCommand::Create {
            common,
            org,
            url,
            events,
            description,
            include_sub_organizations,
            deliver_existing_events,
        } => {
            let events = validate_events(&events).map_err(|e| anyhow::anyhow!("--events: {}", e.message))?;
            let (store, config) = open(&common)?;
            let url = validate_url(&url, config.webhooks.allow_private)
                .await
                .map_err(|e| anyhow::anyhow!("--url: {} ({})", e.message, e.code))?;
            if description.chars().count() > 500 {
                bail!("--description: keep it under 500 characters");
            }
            let key = config.webhook_secrets_key()?;
            let secret = new_secret();
            let s = secret.clone();
            let sub = store
                .write(move |c| {
                    let org = orgs::find_by_name(c, &org)?.ok_or(StoreError::NotFound)?;
                    webhooks_out::create(
                        c,
                        &NewSubscription {
                            org_id: &org.id,
                            url: &url,
                            description: description.trim(),
                            events: &events,
                            include_sub_organizations,
                            secret: &s,
                            key: &key,
                            from_beginning: deliver_existing_events,
                            actor: &Actor::Cli,
                            now,
                        },
                    )
                })
                .await
                .map_err(explain)?;
            println!("created webhook subscription {} for {}", sub.id, sub.url);
            println!("signing secret (shown once):");
            println!("{secret}");
        }
        WebhooksCommand::Disable { common, id } => set_enabled(&common, id, false, now).await?,
        WebhooksCommand::Enable { common, id } => set_enabled(&common, id, true, now).await?,
        WebhooksCommand::Resume { common, id } => {
            let (store, _) = open(&common)?;
            let s = store
                .write(move |c| {
                    let scope = crate::every_organization(c)?;
                    webhooks_out::resume(c, &scope, &id, &Actor::Cli, now)
                })
                .await
                .map_err(explain)?;
            println!("resumed {}: its next event is delivered on the next poll", s.id);
        }
        WebhooksCommand::RotateSecret { common, id } => {
            let (store, config) = open(&common)?;
            let key = config.webhook_secrets_key()?;
            let secret = new_secret();
            let s = secret.clone();
            let sub = store
                .write(move |c| {
                    let scope = crate::every_organization(c)?;
                    webhooks_out::rotate_secret(c, &scope, &id, &s, &key, now + ROTATION_GRACE_MS, &Actor::Cli, now)
                })
                .await
                .map_err(explain)?;
            println!(
                "rotated the secret of {}; the previous one keeps signing for 24 hours. New secret (shown once):",
                sub.id
            );
            println!("{secret}");
        }
        WebhooksCommand::Delete { common, id } => {
            let (store, _) = open(&common)?;
            let shown = id.clone();
            store
                .write(move |c| {
                    let scope = crate::every_organization(c)?;
                    webhooks_out::delete(c, &scope, &id, &Actor::Cli, now)
                })
                .await
                .map_err(explain)?;
            println!("deleted {shown}");
        }
        WebhooksCommand::Deliveries { common, id, limit } => {
            let (store, _) = open(&common)?;
            let attempts = store
                .read(move |c| {
                    let scope = crate::every_organization(c)?;
                    webhooks_out::attempts(c, &scope, &id, limit.clamp(1, 1000))
                })
                .await
                .map_err(explain)?;
            println!("{}", serde_json::to_string_pretty(&attempts)?);
        }
    }
    Ok(())
}

async fn set_enabled(common: &CommonArgs, id: String, enabled: bool, now: i64) -> anyhow::Result<()> {
    let (store, _) = open(common)?;
    let s = store
        .write(move |c| {
            let scope = crate::every_organization(c)?;
            let change = SubscriptionChange {
                disabled: Some(!enabled),
                ..SubscriptionChange::default()
            };
            webhooks_out::update(c, &scope, &id, &change, &Actor::Cli, now)
        })
        .await
        .map_err(explain)?;
    println!("{} is {}", s.id, s.state);
    Ok(())
}
