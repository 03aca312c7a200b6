//! The simulator of the outside world: a WhatsApp Cloud API-compatible fake that openline talks to
//! exactly as it talks to Meta, with simulated WhatsApp users ("phones") that a test or a person
//! drives through the phone API.
//!
//! It enforces Meta's rules independently of openline (131047 outside the 24-hour window, 131026
//! for numbers not on WhatsApp, 131050 for marketing templates to a phone that stopped them, 130429
//! over throughput, 132001 / 132015 / 132016 for templates that
//! are not approved, 132000 for a wrong number of template parameters), so a policy bug in openline
//! shows up as a provider error in tests instead of passing silently.
//!
//! It also speaks Twilio's Messages API (`/twilio/2010-04-01/Accounts/{AccountSid}/Messages.json`)
//! for SMS and WhatsApp through Twilio, with basic auth, Twilio's error codes and signed status
//! callbacks, and its phones can text the business's SMS numbers.
//!
//! All routes are relative to the router's root: the server nests it under `/sim` in demo mode and
//! `openline sim` serves it at `/`. Anything that must name the simulator's own URL takes it from
//! [`SimConfig::public_base_url`].
//!
//! Modules: [`config`] (setup), [`personas`] (scripted users), [`state`] (what the world remembers),
//! `graph` (the fake Graph API), `outbound` (what happens to a business message after it is
//! accepted), `inbound` (phones writing to the business), [`marketing`] (phones stopping and
//! resuming marketing messages), [`phones`] (the phone API),
//! `media` (media endpoints), [`templates`] (the template registry and Meta's review decisions),
//! `template_api` (deciding reviews as Meta), [`payloads`] (webhook bodies), [`webhooks`]
//! (serializing, signing and delivering them), `twilio` (the fake Twilio and phones' SMS).

pub mod config;
mod error;
mod graph;
mod ids;
mod inbound;
pub mod marketing;
mod media;
mod outbound;
pub mod payloads;
pub mod personas;
pub mod phones;
pub mod state;
mod template_api;
pub mod templates;
mod twilio;
pub mod webhooks;

pub use config::{SimBusinessNumber, SimConfig, SimTemplate, SimTwilioContent, SimTwilioSharedKey};
pub use error::SimError;
pub use inbound::InboundOutcome;
pub use marketing::{MarketingChoice, MarketingOutcome};
pub use personas::{demo_personas, Persona, PersonaBehaviour};
pub use phones::SimApiDoc;
pub use state::{ButtonKind, ButtonView, ConversationEntry, Direction, MessageChannel, TemplateView};
pub use templates::{RejectionReason, TemplateAction, TemplateRecord, TemplateStatus};

use openline_domain::clock::SharedClock;
use openline_domain::{Millis, PhoneNumber};
use state::SimState;
use std::sync::{Arc, Mutex, MutexGuard};
use webhooks::WebhookSender;

/// The simulated world: the fake Cloud API, its phones and the webhook sender. Shared as an `Arc`
/// by the router and the background tasks that play out message lifecycles.
pub struct Simulator {
    config: SimConfig,
    clock: SharedClock,
    state: Mutex<SimState>,
    webhooks: WebhookSender,
}

impl std::fmt::Debug for Simulator {
    /// Shows the (redacted) config and counts only: the state holds what phones wrote.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state();
        f.debug_struct("Simulator")
            .field("config", &self.config)
            .field("phones", &state.phones.len())
            .field("media", &state.media.len())
            .finish_non_exhaustive()
    }
}

impl Simulator {
    pub fn new(config: SimConfig, clock: SharedClock) -> Arc<Self> {
        let mut state = SimState::with_personas(&config.personas);
        state.seed_templates(&config.business_numbers, &config.templates);
        let state = Mutex::new(state);
        let webhooks = WebhookSender::new(config.webhook_url.clone(), config.app_secret.clone());
        Arc::new(Self {
            config,
            clock,
            state,
            webhooks,
        })
    }

    /// Every route: the Graph API (`/graph/…`), Twilio's Messages API (`/twilio/2010-04-01/…`),
    /// media downloads (`/media/{id}`), the phone API (`/phones…`), the template review API
    /// (`/templates…`) and their OpenAPI document (`/openapi.json`), state included.
    pub fn router(self: &Arc<Self>) -> axum::Router {
        axum::Router::new()
            .merge(graph::routes())
            .merge(media::routes())
            .merge(phones::routes())
            .merge(template_api::routes())
            .merge(twilio::routes())
            .with_state(Arc::clone(self))
    }

    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// The phone's conversation with every business number, oldest first (empty for an unknown phone).
    pub fn conversation(&self, phone: &PhoneNumber) -> Vec<ConversationEntry> {
        self.state()
            .phones
            .get(phone.digits())
            .map(|p| p.entries.clone())
            .unwrap_or_default()
    }

    /// Changes how a phone behaves from now on (a phone not seen yet is created).
    pub fn set_behaviour(&self, phone: &PhoneNumber, behaviour: PersonaBehaviour) {
        self.state().phone_mut(phone).behaviour = behaviour;
    }

    fn now(&self) -> Millis {
        self.clock.now()
    }

    /// The world's memory. A poisoned lock is recovered: the state stays consistent because no
    /// code path panics while holding it.
    fn state(&self) -> MutexGuard<'_, SimState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}
