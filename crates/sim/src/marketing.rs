//! Phones stopping and resuming marketing messages from a business, as WhatsApp users do with "Stop
//! promotions": the simulated world remembers it per business number (and the outbound decision then
//! fails marketing templates with 131050, as Meta does), and Meta tells the business with a signed
//! `user_preferences` webhook.

use crate::error::SimError;
use crate::inbound::wait_first_attempt;
use crate::personas::PersonaBehaviour;
use crate::{payloads, SimBusinessNumber, Simulator};
use openline_domain::PhoneNumber;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What the phone chooses for marketing messages from a business.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MarketingChoice {
    /// Stop marketing messages ("Stop promotions"): Meta refuses marketing templates with 131050.
    Stop,
    /// Resume them.
    Resume,
}

/// What became of the phone's choice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct MarketingOutcome {
    pub preference: MarketingChoice,
    /// openline's HTTP status on the first delivery attempt of the `user_preferences` webhook; null
    /// when unreachable (retried in the background).
    pub webhook_status: Option<u16>,
}

impl Simulator {
    /// Records the choice in the simulated world only, without telling openline (as when Meta's
    /// webhook never arrived): marketing templates from then on fail with 131050 all the same.
    /// `to` is the business number's display digits or `phone_number_id`.
    pub fn set_marketing_choice(
        &self,
        phone: &PhoneNumber,
        to: &str,
        choice: MarketingChoice,
    ) -> Result<SimBusinessNumber, SimError> {
        if self.state().behaviour_of(phone) == PersonaBehaviour::NotOnWhatsapp {
            return Err(SimError::new(
                axum::http::StatusCode::CONFLICT,
                "not_on_whatsapp",
                "This phone is not on WhatsApp, so it has no marketing messages to stop or resume.",
            ));
        }
        let business = self.config.business_number(to).cloned().ok_or_else(|| {
            SimError::not_found(
                "unknown_business_number",
                "No business number here has that display number or phone_number_id.",
            )
        })?;
        let mut state = self.state();
        let stopped = &mut state.phone_mut(phone).marketing_stopped;
        match choice {
            MarketingChoice::Stop => stopped.insert(business.phone_number_id.clone()),
            MarketingChoice::Resume => stopped.remove(&business.phone_number_id),
        };
        Ok(business)
    }

    /// The phone stops or resumes marketing messages from a business number, and Meta sends openline
    /// the signed `user_preferences` webhook. Waits for the first delivery attempt.
    pub async fn phone_sets_marketing(
        &self,
        phone: &PhoneNumber,
        to: &str,
        choice: MarketingChoice,
    ) -> Result<MarketingOutcome, SimError> {
        let business = self.set_marketing_choice(phone, to, choice)?;
        let name = self.state().phone_mut(phone).name.clone();
        let body = payloads::user_preferences(&business, phone, &name, choice == MarketingChoice::Stop, self.now());
        tracing::info!(preference = ?choice, "phone changed its marketing preference");
        let label = match choice {
            MarketingChoice::Stop => "user_preferences.stop",
            MarketingChoice::Resume => "user_preferences.resume",
        };
        let rx = self.webhooks.enqueue(phone.digits(), label, &body);
        let outcome = wait_first_attempt(String::new(), rx).await;
        Ok(MarketingOutcome {
            preference: choice,
            webhook_status: outcome.webhook_status,
        })
    }
}
