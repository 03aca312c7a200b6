//! Demo data, so a newcomer has something worth opening: an organization with a sub-organization, an
//! admin, a supervisor and two agents, a WhatsApp number on the simulator, and contacts that are the
//! simulator's personas (accepts opt-in, declines, never answers, not on WhatsApp). Seeding is
//! idempotent: a second start finds the organization and changes nothing.

use crate::auth::hash_password_blocking;
use openline_domain::{Channel, ProviderKind, Role};
use openline_sim::SimConfig;
use openline_store::{contacts, orgs, senders, users, Store};

pub const DEMO_ORG: &str = "Demo Bank";
pub const DEMO_SUB_ORG: &str = "Demo Bank Private Clients";
/// Every demo user's password. Demo mode is for a laptop, never for production.
pub const DEMO_PASSWORD: &str = "openline-demo";

/// (e-mail, name, role, in the sub-organization)
pub const DEMO_USERS: &[(&str, &str, Role, bool)] = &[
    ("admin@demo.openline.dev", "Alex Admin", Role::Admin, false),
    (
        "supervisor@demo.openline.dev",
        "Sue Supervisor",
        Role::Supervisor,
        false,
    ),
    ("agent1@demo.openline.dev", "Amir Agent", Role::Agent, true),
    ("agent2@demo.openline.dev", "Bea Agent", Role::Agent, true),
];

/// Seeds the demo organization unless it exists. Returns whether anything was created.
pub async fn seed(store: &Store, sim: &SimConfig, now: i64) -> anyhow::Result<bool> {
    // Hash outside the transaction: argon2 is slow on purpose.
    let hash = tokio::task::spawn_blocking(|| hash_password_blocking(DEMO_PASSWORD)).await??;
    let number = sim
        .business_numbers
        .first()
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("the simulator has no business number"))?;
    let personas = sim.personas.clone();
    let sms_number = sim.sms_numbers.first().cloned();
    let created = store
        .write(move |c| {
            if orgs::find_by_name(c, DEMO_ORG)?.is_some() {
                return Ok(false);
            }
            let root = orgs::create(c, DEMO_ORG, None, "on", now)?;
            let sub = orgs::create(c, DEMO_SUB_ORG, Some(&root.id), "inherit", now)?;
            for (email, name, role, in_sub) in DEMO_USERS {
                let org_id = if *in_sub { &sub.id } else { &root.id };
                users::create(
                    c,
                    &users::NewUser {
                        org_id,
                        team_id: None,
                        email,
                        name,
                        role: *role,
                        password_hash: &hash,
                    },
                    now,
                )?;
            }
            let phone = format!("+{}", number.display_phone_number);
            let whatsapp = senders::create(
                c,
                &senders::NewSender {
                    org_id: &sub.id,
                    channel: Channel::Whatsapp,
                    provider: ProviderKind::CloudApi,
                    phone_number: &phone,
                    phone_number_id: &number.phone_number_id,
                    waba_id: Some(&number.waba_id),
                    display_name: &number.verified_name,
                    throughput_per_s: 80,
                },
                now,
            )?;
            // The simulator's WABA holds openline's opt-in template approved from the start; so does
            // openline's record of it, so opt-in requests work out of the box.
            openline_store::templates::create(
                c,
                &sub.id,
                &whatsapp.id,
                &crate::consent_flow::default_opt_in_template(),
                None,
                now,
            )?;
            if let Some(sms) = &sms_number {
                // An SMS number on (simulated) Twilio, so "not on WhatsApp → send an SMS" works.
                senders::create(
                    c,
                    &senders::NewSender {
                        org_id: &sub.id,
                        channel: Channel::Sms,
                        provider: ProviderKind::Twilio,
                        phone_number: sms,
                        phone_number_id: sms,
                        waba_id: None,
                        display_name: &number.verified_name,
                        throughput_per_s: 10,
                    },
                    now,
                )?;
            }
            for p in &personas {
                contacts::create(c, &sub.id, p.phone.as_e164(), Some(&p.name), now)?;
            }
            Ok(true)
        })
        .await?;
    Ok(created)
}
