//! Phones texting the business over SMS: Twilio's incoming-message webhook, form-encoded and signed
//! with `X-Twilio-Signature` over [`crate::SimConfig::twilio_webhook_url`], sent through the
//! phone's Twilio webhook queue (retried like every webhook).
//!
//! Any phone can send SMS, WhatsApp user or not; an SMS opens no WhatsApp window.

use super::lifecycle::twilio_queue;
use super::resource::sms_segments;
use super::validate::MAX_BODY_CHARS;
use super::API_VERSION;
use crate::error::SimError;
use crate::inbound::wait_first_attempt;
use crate::state::{ConversationEntry, Direction, MessageChannel};
use crate::{ids, InboundOutcome, Simulator};
use openline_domain::PhoneNumber;

impl Simulator {
    /// The phone texts one of the business's SMS numbers (`+15550002000` or its digits). Waits for
    /// the first delivery attempt of the webhook; the outcome's `id` is the `SM…` SID.
    pub async fn phone_sends_sms(&self, phone: &PhoneNumber, to: &str, text: &str) -> Result<InboundOutcome, SimError> {
        if text.trim().is_empty() || text.chars().count() > MAX_BODY_CHARS {
            return Err(SimError::bad_request(
                "invalid_text",
                "The text must have 1 to 1600 characters.",
            ));
        }
        let number = self.config.sms_number(to).ok_or_else(|| {
            SimError::not_found(
                "unknown_business_number",
                "No business SMS number here has that number.",
            )
        })?;
        let to_e164 = format!("+{}", number.trim().trim_start_matches('+'));
        let sid = ids::twilio_message_sid();
        let now = self.now();
        self.state().record(
            phone,
            ConversationEntry {
                id: sid.clone(),
                direction: Direction::FromPhone,
                business_number: to_e164.trim_start_matches('+').to_string(),
                channel: MessageChannel::Sms,
                kind: "text".into(),
                text: Some(text.to_string()),
                template: None,
                buttons: Vec::new(),
                media_id: None,
                context_id: None,
                status: "sent".into(),
                error_code: None,
                timestamp_ms: now,
            },
        );
        let params: Vec<(String, String)> = vec![
            ("SmsMessageSid".into(), sid.clone()),
            ("NumMedia".into(), "0".into()),
            ("SmsSid".into(), sid.clone()),
            ("SmsStatus".into(), "received".into()),
            ("Body".into(), text.to_string()),
            ("To".into(), to_e164),
            ("NumSegments".into(), sms_segments(text).to_string()),
            ("MessageSid".into(), sid.clone()),
            ("AccountSid".into(), self.config.twilio_account_sid.clone()),
            ("From".into(), phone.as_e164().to_string()),
            ("ApiVersion".into(), API_VERSION.into()),
        ];
        let url = &self.config.twilio_webhook_url;
        let (signature, settings) = self.sign_twilio_webhook(url, &params);
        tracing::info!(message_sid = %sid, "phone sms sent");
        let rx = self.webhooks.enqueue_form(
            &twilio_queue(phone.digits()),
            url,
            "twilio.sms.inbound",
            &params,
            signature,
            settings,
        );
        Ok(wait_first_attempt(sid, rx).await)
    }
}
