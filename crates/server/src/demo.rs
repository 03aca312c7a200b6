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

/// The most the demo clock moves in one step (31 days): enough to close any window or let any
/// limit roll over, small enough that a typo does not fling the demo into another century.
pub const MAX_CLOCK_STEP_MS: i64 = 31 * 24 * 3_600_000;

/// What the demo clock reads.
#[derive(Debug, serde::Serialize)]
pub struct ClockReading {
    /// openline's (and the simulator's) time, epoch milliseconds.
    pub now: i64,
    pub now_utc: String,
    /// How far the clock has been moved ahead of the machine's, in milliseconds.
    pub offset_ms: i64,
}

/// `POST /sim/clock/advance`: by `hours` or by `ms` (one of them).
#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdvanceClock {
    pub hours: Option<i64>,
    pub ms: Option<i64>,
}

#[derive(Clone)]
struct ClockState {
    clock: std::sync::Arc<openline_domain::clock::OffsetClock>,
    dispatcher_wake: std::sync::Arc<tokio::sync::Notify>,
}

/// Demo mode's clock, next to the simulator (mounted under `/sim` only in demo mode; a production
/// server has no such route): `GET /sim/clock` reads it, `POST /sim/clock/advance`
/// `{"hours": 25}` moves openline and the simulator forward together, so the 24-hour window can be
/// seen to close. Forward only, at most [`MAX_CLOCK_STEP_MS`] a step.
pub fn clock_routes(
    clock: std::sync::Arc<openline_domain::clock::OffsetClock>,
    dispatcher_wake: std::sync::Arc<tokio::sync::Notify>,
) -> axum::Router {
    axum::Router::new()
        .route("/clock", axum::routing::get(read_clock))
        .route("/clock/advance", axum::routing::post(advance_clock))
        .with_state(ClockState { clock, dispatcher_wake })
}

fn reading(clock: &openline_domain::clock::OffsetClock) -> ClockReading {
    use openline_domain::clock::Clock;
    let now = clock.now();
    ClockReading {
        now,
        now_utc: openline_domain::utc::format_utc_minute(now),
        offset_ms: clock.offset_ms(),
    }
}

async fn read_clock(axum::extract::State(st): axum::extract::State<ClockState>) -> axum::Json<ClockReading> {
    axum::Json(reading(&st.clock))
}

async fn advance_clock(
    axum::extract::State(st): axum::extract::State<ClockState>,
    crate::error::ApiJson(req): crate::error::ApiJson<AdvanceClock>,
) -> Result<axum::Json<ClockReading>, crate::error::AppError> {
    let step = match (req.hours, req.ms) {
        (Some(h), None) => h.checked_mul(3_600_000),
        (None, Some(ms)) => Some(ms),
        _ => None,
    };
    let Some(step) = step.filter(|s| (1..=MAX_CLOCK_STEP_MS).contains(s)) else {
        return Err(crate::error::AppError::bad_request(
            "invalid_clock_step",
            format!(
                "Give either hours or ms, moving the clock forward by at most {} hours; it never goes back.",
                MAX_CLOCK_STEP_MS / 3_600_000
            ),
        ));
    };
    st.clock.advance_ms(step);
    tracing::info!(
        step_ms = step,
        offset_ms = st.clock.offset_ms(),
        "demo clock moved forward"
    );
    // Held messages whose time has come (a messaging limit rolling over) need not wait for the
    // dispatcher's next look.
    st.dispatcher_wake.notify_one();
    Ok(axum::Json(reading(&st.clock)))
}
