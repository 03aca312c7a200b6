//! `openline admin …`: create organizations, users, API tokens and senders (business numbers)
//! without the API (for the first admin, scripts and recovery). Passwords are read from stdin or
//! generated and printed once; tokens are printed once.

use crate::{load_config, CommonArgs};
use anyhow::{bail, Context};
use clap::Subcommand;
use openline_domain::clock::{Clock, SystemClock};
use openline_domain::limits::{Throughput, MAX_THROUGHPUT_PER_SECOND};
use openline_domain::{Channel, PhoneNumber, ProviderKind, Role};
use openline_store::journal::Actor;
use openline_store::{orgs, senders, users, Store, StoreError};
use std::io::{IsTerminal, Read};

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Outbound webhook subscriptions (archives, CRMs): list, create, disable, resume, rotate, ….
    Webhooks {
        #[command(subcommand)]
        cmd: crate::webhooks::WebhooksCommand,
    },
    /// Create an organization (optionally below a parent).
    CreateOrg {
        #[command(flatten)]
        common: CommonArgs,
        #[arg(long)]
        name: String,
        /// Name of the parent organization
        #[arg(long)]
        parent: Option<String>,
        /// on, off or inherit
        #[arg(long, default_value = "inherit")]
        whatsapp: String,
    },
    /// Create a user. The password is read from stdin; if stdin is a terminal or empty, one is
    /// generated and printed once.
    CreateUser {
        #[command(flatten)]
        common: CommonArgs,
        /// Name of the user's organization (created if it does not exist)
        #[arg(long)]
        org: String,
        #[arg(long)]
        email: String,
        /// admin, supervisor, agent or viewer
        #[arg(long)]
        role: String,
        /// Display name (default: the part of the e-mail before @)
        #[arg(long)]
        name: Option<String>,
    },
    /// Change a user's role (journaled with the previous role).
    SetRole {
        #[command(flatten)]
        common: CommonArgs,
        #[arg(long)]
        email: String,
        /// admin, supervisor, agent or viewer
        #[arg(long)]
        role: String,
    },
    /// Create an API token for a user and print it once.
    CreateToken {
        #[command(flatten)]
        common: CommonArgs,
        #[arg(long)]
        email: String,
        /// What the token is for
        #[arg(long, default_value = "cli")]
        name: String,
    },
    /// Revoke one of a user's API tokens.
    RevokeToken {
        #[command(flatten)]
        common: CommonArgs,
        #[arg(long)]
        email: String,
        /// The token's id (tok_…)
        #[arg(long)]
        id: String,
    },
    /// Register a business number (a sender) for an organization, so that webhooks addressed to it
    /// are accepted and its users can send from it: a WhatsApp Cloud API number, or a Twilio number
    /// (WhatsApp or SMS), optionally in a Twilio Messaging Service.
    CreateSender {
        #[command(flatten)]
        common: CommonArgs,
        /// Name of the organization that messages from this number (must exist)
        #[arg(long)]
        org: String,
        /// The business number in international format, e.g. +15550001000
        #[arg(long)]
        phone: String,
        /// The Cloud API phone_number_id (the Graph object id of the number). Twilio: optional; by
        /// default the Messaging Service SID when one is given, else the number's Twilio address
        /// (`+1…` for SMS, `whatsapp:+1…` for WhatsApp)
        #[arg(long)]
        phone_number_id: Option<String>,
        /// cloud-api or twilio
        #[arg(long, default_value = "cloud-api")]
        provider: String,
        /// whatsapp or sms (SMS only through Twilio)
        #[arg(long, default_value = "whatsapp")]
        channel: String,
        /// Twilio: the Messaging Service (MG…) the number belongs to. Messages are then sent through
        /// the service, and webhooks naming it route here, from any number pooled in it
        #[arg(long)]
        messaging_service_sid: Option<String>,
        /// Twilio: the account (AC…) owning the number, if not the one openline is configured with
        #[arg(long)]
        account_sid: Option<String>,
        /// The WhatsApp Business Account id
        #[arg(long)]
        waba_id: Option<String>,
        /// The display name clients see (default: the organization's name)
        #[arg(long)]
        name: Option<String>,
        /// Sends per second the dispatcher allows on this number (1 to 1000)
        #[arg(long, default_value_t = 80)]
        throughput: i64,
    },
}

fn open(common: &CommonArgs) -> anyhow::Result<Store> {
    crate::open_store(&load_config(common)?)
}

pub async fn run(cmd: AdminCommand) -> anyhow::Result<()> {
    let now = SystemClock.now();
    match cmd {
        AdminCommand::Webhooks { cmd } => crate::webhooks::run(cmd).await?,
        AdminCommand::CreateOrg {
            common,
            name,
            parent,
            whatsapp,
        } => {
            if !matches!(whatsapp.as_str(), "on" | "off" | "inherit") {
                bail!("--whatsapp must be on, off or inherit");
            }
            let store = open(&common)?;
            let org = store
                .write(move |c| {
                    let parent_id = match &parent {
                        Some(p) => Some(orgs::find_by_name(c, p)?.ok_or(StoreError::NotFound)?.id),
                        None => None,
                    };
                    orgs::create_by(c, &name, parent_id.as_deref(), &whatsapp, &Actor::Cli, now)
                })
                .await
                .map_err(|e| match e {
                    StoreError::NotFound => anyhow::anyhow!("the parent organization does not exist"),
                    StoreError::Conflict(_) => anyhow::anyhow!("an organization with this name already exists"),
                    other => anyhow::anyhow!("{other}"),
                })?;
            println!("created organization {} ({})", org.name, org.id);
        }
        AdminCommand::CreateUser {
            common,
            org,
            email,
            role,
            name,
        } => {
            let role = Role::parse(&role).context("--role must be admin, supervisor, agent or viewer")?;
            if !email.contains('@') {
                bail!("--email must be an e-mail address");
            }
            let (password, generated) = read_or_generate_password()?;
            let hash = openline_server::auth::hash_password_blocking(&password)?;
            let name = name.unwrap_or_else(|| email.split('@').next().unwrap_or("user").to_owned());
            let store = open(&common)?;
            let user = store
                .write(move |c| {
                    let org = match orgs::find_by_name(c, &org)? {
                        Some(o) => o,
                        None => orgs::create_by(c, &org, None, "inherit", &Actor::Cli, now)?,
                    };
                    users::create_by(
                        c,
                        &users::NewUser {
                            org_id: &org.id,
                            team_id: None,
                            email: &email,
                            name: &name,
                            role,
                            password_hash: &hash,
                        },
                        &Actor::Cli,
                        now,
                    )
                })
                .await
                .map_err(|e| match e {
                    StoreError::Conflict(_) => anyhow::anyhow!("a user with this e-mail address already exists"),
                    other => anyhow::anyhow!("{other}"),
                })?;
            println!("created {} {} ({})", user.role, user.email, user.id);
            if generated {
                println!("password (shown once): {password}");
            }
        }
        AdminCommand::SetRole { common, email, role } => {
            let role = Role::parse(&role).context("--role must be admin, supervisor, agent or viewer")?;
            let store = open(&common)?;
            let user = store
                .write(move |c| {
                    let (user, _) = users::find_for_login(c, &email)?.ok_or(StoreError::NotFound)?;
                    users::set_role_by(c, &user.id, role, &Actor::Cli, now)
                })
                .await
                .map_err(|e| match e {
                    StoreError::NotFound => anyhow::anyhow!("no user with this e-mail address"),
                    other => anyhow::anyhow!("{other}"),
                })?;
            println!("{} is now {}", user.email, user.role);
        }
        AdminCommand::CreateToken { common, email, name } => {
            let store = open(&common)?;
            let token = openline_server::auth::new_api_token();
            let hash = openline_server::auth::digest(&token);
            let t = store
                .write(move |c| {
                    let (user, _) = users::find_for_login(c, &email)?.ok_or(StoreError::NotFound)?;
                    users::create_token_by(c, &user.id, &name, &hash, &Actor::Cli, now)
                })
                .await
                .map_err(|e| match e {
                    StoreError::NotFound => anyhow::anyhow!("no user with this e-mail address"),
                    other => anyhow::anyhow!("{other}"),
                })?;
            println!("created token {} ({}); it is shown once:", t.name, t.id);
            println!("{token}");
        }
        AdminCommand::RevokeToken { common, email, id } => {
            let store = open(&common)?;
            store
                .write(move |c| {
                    let (user, _) = users::find_for_login(c, &email)?.ok_or(StoreError::NotFound)?;
                    users::revoke_token_by(c, &user.id, &id, &Actor::Cli, now)
                })
                .await
                .map_err(|e| match e {
                    StoreError::NotFound => {
                        anyhow::anyhow!("no such user, or the token is not theirs or already revoked")
                    }
                    other => anyhow::anyhow!("{other}"),
                })?;
            println!("revoked");
        }
        AdminCommand::CreateSender {
            common,
            org,
            phone,
            phone_number_id,
            provider,
            channel,
            messaging_service_sid,
            account_sid,
            waba_id,
            name,
            throughput,
        } => {
            // Checked before the database is opened, so a typo costs nothing.
            let phone = PhoneNumber::parse(&phone).map_err(|e| anyhow::anyhow!("--phone: {}", e.message))?;
            let provider = match provider.trim() {
                "cloud-api" | "cloud_api" => ProviderKind::CloudApi,
                "twilio" => ProviderKind::Twilio,
                other => bail!("--provider must be cloud-api or twilio, not {other:?}"),
            };
            let channel = match channel.trim() {
                "whatsapp" => Channel::Whatsapp,
                "sms" if provider == ProviderKind::Twilio => Channel::Sms,
                "sms" => bail!("--channel sms needs --provider twilio: SMS goes through Twilio"),
                other => bail!("--channel must be whatsapp or sms, not {other:?}"),
            };
            let twilio_sid = |flag: &str, value: Option<String>, prefix: &str| -> anyhow::Result<Option<String>> {
                let Some(value) = value.map(|v| v.trim().to_owned()).filter(|v| !v.is_empty()) else {
                    return Ok(None);
                };
                if provider != ProviderKind::Twilio {
                    bail!("{flag} is for Twilio senders (--provider twilio)");
                }
                let hex = value.strip_prefix(prefix).unwrap_or_default();
                if hex.len() != 32 || !hex.chars().all(|c| c.is_ascii_hexdigit()) {
                    bail!("{flag} must be {prefix} followed by 32 hex digits, as Twilio shows it");
                }
                Ok(Some(value))
            };
            let messaging_service_sid = twilio_sid("--messaging-service-sid", messaging_service_sid, "MG")?;
            let account_sid = twilio_sid("--account-sid", account_sid, "AC")?;
            // A Twilio sender is known by its service when it has one (it then stands for every number
            // pooled in it, and sends through it), else by its Twilio address.
            let phone_number_id = match (phone_number_id.map(|p| p.trim().to_owned()), provider, channel) {
                (Some(id), _, _) if !id.is_empty() => id,
                (_, ProviderKind::CloudApi, _) => bail!("--phone-number-id is required for a Cloud API sender"),
                _ if messaging_service_sid.is_some() => messaging_service_sid.clone().unwrap_or_default(),
                (_, _, Channel::Whatsapp) => format!("whatsapp:{}", phone.as_e164()),
                (_, _, _) => phone.as_e164().to_owned(),
            };
            // The same rule and words as the API's `PUT /api/v1/senders/{id}/throughput`.
            let throughput = match u32::try_from(throughput) {
                Ok(per_second) => Throughput::new(per_second).map_err(|e| anyhow::anyhow!("--throughput: {}", e.message))?,
                Err(_) => bail!(
                    "--throughput: Throughput must be 1 to {MAX_THROUGHPUT_PER_SECOND} messages per second; {throughput} was given."
                ),
            };
            let waba_id = waba_id.map(|w| w.trim().to_owned()).filter(|w| !w.is_empty());
            let store = open(&common)?;
            let sender = store
                .write(move |c| {
                    let org = orgs::find_by_name(c, &org)?.ok_or(StoreError::NotFound)?;
                    let display_name = name.unwrap_or_else(|| org.name.clone());
                    let sender = senders::create_by(
                        c,
                        &senders::NewSender {
                            org_id: &org.id,
                            channel,
                            provider,
                            phone_number: phone.as_e164(),
                            phone_number_id: &phone_number_id,
                            waba_id: waba_id.as_deref(),
                            display_name: &display_name,
                            throughput_per_s: i64::from(throughput.per_second()),
                        },
                        &Actor::Cli,
                        now,
                    )?;
                    if account_sid.is_some() || messaging_service_sid.is_some() {
                        return senders::set_twilio_routing(
                            c,
                            &sender.id,
                            account_sid.as_deref(),
                            messaging_service_sid.as_deref(),
                            &Actor::Cli,
                            now,
                        );
                    }
                    Ok(sender)
                })
                .await
                .map_err(|e| match e {
                    StoreError::NotFound => {
                        anyhow::anyhow!("the organization does not exist (create it with `openline admin create-org`)")
                    }
                    StoreError::Conflict(_) => {
                        anyhow::anyhow!("a sender with this provider and --phone-number-id already exists")
                    }
                    other => anyhow::anyhow!("{other}"),
                })?;
            let channel_name = match sender.channel {
                Channel::Whatsapp => "WhatsApp",
                Channel::Sms => "SMS",
            };
            let service = sender
                .messaging_service_sid
                .as_deref()
                .map(|s| format!(", messaging service {s}"))
                .unwrap_or_default();
            println!(
                "created {channel_name} sender {} {} ({}, {}, phone_number_id {}{service})",
                sender.phone_number,
                sender.display_name,
                sender.id,
                sender.provider.as_str(),
                sender.phone_number_id
            );
        }
    }
    Ok(())
}

/// A password from stdin (first line), or a generated one when stdin is a terminal or empty.
fn read_or_generate_password() -> anyhow::Result<(String, bool)> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        let mut s = String::new();
        stdin
            .lock()
            .read_to_string(&mut s)
            .context("reading the password from stdin")?;
        let p = s.lines().next().unwrap_or("").to_owned();
        if !p.is_empty() {
            if p.chars().count() < 12 {
                bail!("the password must have at least 12 characters");
            }
            return Ok((p, false));
        }
    }
    Ok((openline_server::auth::random_secret(), true))
}
