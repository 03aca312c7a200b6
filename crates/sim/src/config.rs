//! How a simulator is set up: its secrets, where its webhooks go, which business numbers (WhatsApp
//! and SMS) it hosts, which personas live in it and how fast the simulated world answers. Passed by
//! value into [`crate::Simulator::new`]; no globals, so every test can vary it.

use crate::personas::{demo_personas, Persona};
use serde_json::{json, Value};
use std::fmt;

/// Everything the simulator needs to know. `Debug` redacts the three secrets.
#[derive(Clone)]
pub struct SimConfig {
    /// Signs webhooks: `X-Hub-Signature-256: sha256=<hex hmac-sha256(app_secret, raw body)>`.
    pub app_secret: String,
    /// The bearer token the Graph endpoints require, like a system-user token at Meta.
    pub access_token: String,
    /// Where WhatsApp webhooks go (openline's `/webhooks/whatsapp`).
    pub webhook_url: String,
    /// The business phone numbers this fake Meta hosts.
    pub business_numbers: Vec<SimBusinessNumber>,
    /// Simulated WhatsApp users with a scripted behaviour. Any other number behaves as `Manual`.
    pub personas: Vec<Persona>,
    /// Delay before the `delivered` status (0 in tests).
    pub delivered_after_ms: u64,
    /// Delay after `delivered` before `read`.
    pub read_after_ms: u64,
    /// Free-form (non-template) sends outside 24h of the phone's last message fail with 131047.
    pub enforce_window: bool,
    /// Sends per second per business number; over it the Graph API answers 130429.
    pub throughput_per_s: u32,
    /// How long the Graph API takes to answer a send it accepted (0: at once). The message is
    /// already on the phone while the answer is on its way, as at Meta: a sender that dies in this
    /// window never learns the id, which is what the crash tests need.
    pub send_latency_ms: u64,
    /// The simulator's own base URL as openline sees it (e.g. `http://127.0.0.1:8080/sim`); media
    /// URLs are built from it, because the simulator cannot know under which prefix it is mounted.
    pub public_base_url: String,
    /// Message templates that exist, approved, in every business number's WABA from the start.
    /// The default holds openline's opt-in request and Meta's own `hello_world` sample, which Meta
    /// puts into every new WABA.
    pub templates: Vec<SimTemplate>,
    /// The Twilio account (`AC…`) the fake Messages API serves: the basic-auth user name and the
    /// `{AccountSid}` of `/twilio/2010-04-01/Accounts/{AccountSid}/Messages.json`.
    pub twilio_account_sid: String,
    /// The Twilio account's auth token: the basic-auth password, and the key of every
    /// `X-Twilio-Signature` the simulator sends.
    pub twilio_auth_token: String,
    /// The business's SMS numbers at Twilio, E.164 (`+15550002000`): the valid `From` of an SMS and
    /// the numbers phones can text.
    pub sms_numbers: Vec<String>,
    /// Where inbound SMS webhooks go (openline's `/webhooks/twilio`); the URL they are signed over.
    pub twilio_webhook_url: String,
    /// The account's Content API templates (`HX…`), approved for WhatsApp: what a `ContentSid`
    /// may name, and how many `ContentVariables` each takes.
    pub twilio_contents: Vec<SimTwilioContent>,
    /// When set, Twilio webhooks are signed as a Webhook Setting with this SharedKey signs them:
    /// HMAC-SHA256 under its secret, announced by `X-Twilio-Webhooks-Signature-Settings`. `None`:
    /// Twilio's default, HMAC-SHA1 under the auth token.
    pub twilio_shared_key: Option<SimTwilioSharedKey>,
}

/// A Twilio SharedKey (Webhooks configuration API): its SID and secret.
#[derive(Clone, PartialEq, Eq)]
pub struct SimTwilioSharedKey {
    /// `KS` and 32 hex digits.
    pub sid: String,
    pub secret: String,
}

impl fmt::Debug for SimTwilioSharedKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimTwilioSharedKey")
            .field("sid", &self.sid)
            .field("secret", &"[redacted]")
            .finish()
    }
}

/// A Twilio Content API template the fake Twilio account holds (`twilio/text` with a body).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimTwilioContent {
    /// `HX` and 32 hex digits.
    pub sid: String,
    pub friendly_name: String,
    pub language: String,
    /// The text with `{{1}}`, `{{2}}`, … placeholders, numbered from 1 without gaps.
    pub body: String,
    /// WhatsApp's review of it, as the Content API's ApprovalRequests reports it (`approved`,
    /// `pending`, `rejected`, …).
    pub whatsapp_approval: String,
}

impl SimTwilioContent {
    /// openline's opt-in request as a Content template: the organisation's name as `{{1}}`.
    pub fn opt_in() -> Self {
        Self {
            sid: "HX0123456789abcdef0123456789abcdef".into(),
            friendly_name: "openline_opt_in".into(),
            language: "en".into(),
            body: "{{1}} would like to send you messages on WhatsApp. Do you agree?".into(),
            whatsapp_approval: "approved".into(),
        }
    }

    /// An appointment reminder with two variables (a name and a day).
    pub fn appointment_reminder() -> Self {
        Self {
            sid: "HXb5b62575e6e4ff6129ad7c8efe1f983e".into(),
            friendly_name: "appointment_reminder".into(),
            language: "en".into(),
            body: "Hello {{1}}, your appointment is on {{2}}.".into(),
            whatsapp_approval: "approved".into(),
        }
    }

    /// How many variables the body uses: the highest `{{n}}`.
    pub fn variable_count(&self) -> usize {
        let mut highest = 0;
        let mut rest = self.body.as_str();
        while let Some(open) = rest.find("{{") {
            rest = &rest[open + 2..];
            let Some(close) = rest.find("}}") else { break };
            if let Ok(n) = rest[..close].trim().parse::<usize>() {
                highest = highest.max(n);
            }
            rest = &rest[close + 2..];
        }
        highest
    }

    /// The body with each `{{n}}` replaced by the n-th value (1-based).
    pub fn render(&self, values: &[String]) -> String {
        let mut out = self.body.clone();
        for (i, value) in values.iter().enumerate() {
            out = out.replace(&format!("{{{{{}}}}}", i + 1), value);
        }
        out
    }
}

/// A message template the simulator starts with, approved.
#[derive(Debug, Clone, PartialEq)]
pub struct SimTemplate {
    /// Lower-case letters, digits and underscores.
    pub name: String,
    /// Meta's language code: `en`, `en_US`, …
    pub language: String,
    /// `MARKETING`, `UTILITY` or `AUTHENTICATION`.
    pub category: String,
    /// Meta's component JSON, as `POST /{waba_id}/message_templates` takes it.
    pub components: Value,
}

impl SimTemplate {
    /// openline's opt-in request as openline registers it (its default `openline_opt_in`): the
    /// organisation's name as `{{1}}`, and two quick replies labelled Yes and No. The phone shows
    /// (and a tap sends back as the reply's text) those labels; the payloads openline puts on the
    /// buttons when it sends (`OPTIN_YES`, `OPTIN_NO`) travel with the tap unseen, as on WhatsApp.
    pub fn opt_in() -> Self {
        Self {
            name: "openline_opt_in".into(),
            language: "en".into(),
            category: "UTILITY".into(),
            components: json!([
                {
                    "type": "BODY",
                    "text": "Hello! {{1}} would like to send you messages on WhatsApp. Do you agree? Tap Yes or No (or reply YES or NO).",
                    "example": { "body_text": [["Openline Demo Bank"]] },
                },
                {
                    "type": "BUTTONS",
                    "buttons": [
                        { "type": "QUICK_REPLY", "text": "Yes" },
                        { "type": "QUICK_REPLY", "text": "No" },
                    ],
                },
            ]),
        }
    }

    /// Meta's sample template, present in every new WhatsApp Business Account (no parameters).
    pub fn hello_world() -> Self {
        Self {
            name: "hello_world".into(),
            language: "en_US".into(),
            category: "UTILITY".into(),
            components: json!([
                { "type": "HEADER", "format": "TEXT", "text": "Hello World" },
                {
                    "type": "BODY",
                    "text": "Welcome and congratulations!! This message demonstrates your ability to send a WhatsApp message notification from the Cloud API, hosted by Meta. Thank you for taking the time to test with us.",
                },
                { "type": "FOOTER", "text": "WhatsApp Business Platform sample message" },
            ]),
        }
    }
}

/// A business phone number registered with the fake Cloud API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimBusinessNumber {
    /// The Graph object id used in `/{version}/{phone_number_id}/messages`.
    pub phone_number_id: String,
    /// Digits only, e.g. `15550001000`, as webhooks' `metadata.display_phone_number` carries it.
    pub display_phone_number: String,
    /// The WhatsApp Business Account id: `entry[].id` in webhooks.
    pub waba_id: String,
    /// The business name a phone sees.
    pub verified_name: String,
}

impl SimConfig {
    /// The business number with this Graph id, or with these display digits (a phone may address
    /// either; a leading `+` is ignored).
    pub fn business_number(&self, id_or_digits: &str) -> Option<&SimBusinessNumber> {
        let wanted = id_or_digits.trim().trim_start_matches('+');
        self.business_numbers
            .iter()
            .find(|b| b.phone_number_id == wanted || b.display_phone_number == wanted)
    }

    /// The business SMS number (as configured, E.164) with these digits; a leading `+` is optional.
    pub fn sms_number(&self, number: &str) -> Option<&str> {
        let wanted = number.trim().trim_start_matches('+');
        self.sms_numbers
            .iter()
            .map(String::as_str)
            .find(|n| !wanted.is_empty() && n.trim().trim_start_matches('+') == wanted)
    }
}

impl Default for SimConfig {
    /// Demo values: one business number, the four demo personas, quick but visible status changes.
    fn default() -> Self {
        Self {
            app_secret: "sim-app-secret".into(),
            access_token: "sim-access-token".into(),
            webhook_url: "http://127.0.0.1:8080/webhooks/whatsapp".into(),
            business_numbers: vec![SimBusinessNumber {
                phone_number_id: "100000000000001".into(),
                display_phone_number: "15550001000".into(),
                waba_id: "200000000000001".into(),
                verified_name: "Openline Demo Bank".into(),
            }],
            personas: demo_personas(),
            delivered_after_ms: 1_000,
            read_after_ms: 2_000,
            enforce_window: true,
            throughput_per_s: 1_000,
            send_latency_ms: 0,
            public_base_url: "http://127.0.0.1:8080/sim".into(),
            templates: vec![SimTemplate::opt_in(), SimTemplate::hello_world()],
            twilio_account_sid: "AC00000000000000000000000000000001".into(),
            twilio_auth_token: "sim-twilio-auth-token".into(),
            sms_numbers: vec!["+15550002000".into()],
            twilio_webhook_url: "http://127.0.0.1:8080/webhooks/twilio".into(),
            twilio_contents: vec![SimTwilioContent::opt_in(), SimTwilioContent::appointment_reminder()],
            twilio_shared_key: None,
        }
    }
}

impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimConfig")
            .field("app_secret", &"[redacted]")
            .field("access_token", &"[redacted]")
            .field("webhook_url", &self.webhook_url)
            .field("business_numbers", &self.business_numbers)
            .field("personas", &self.personas)
            .field("delivered_after_ms", &self.delivered_after_ms)
            .field("read_after_ms", &self.read_after_ms)
            .field("enforce_window", &self.enforce_window)
            .field("throughput_per_s", &self.throughput_per_s)
            .field("send_latency_ms", &self.send_latency_ms)
            .field("public_base_url", &self.public_base_url)
            .field("templates", &self.templates)
            .field("twilio_account_sid", &self.twilio_account_sid)
            .field("twilio_auth_token", &"[redacted]")
            .field("sms_numbers", &self.sms_numbers)
            .field("twilio_webhook_url", &self.twilio_webhook_url)
            .field("twilio_contents", &self.twilio_contents)
            .field("twilio_shared_key", &self.twilio_shared_key)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_output_never_shows_the_secrets() {
        let c = SimConfig::default();
        let shown = format!("{c:?}");
        assert!(!shown.contains("sim-app-secret"));
        assert!(!shown.contains("sim-access-token"));
        assert!(!shown.contains("sim-twilio-auth-token"));
        assert!(shown.contains("[redacted]"));
    }

    #[test]
    fn a_business_number_is_found_by_id_or_display_digits() {
        let c = SimConfig::default();
        assert!(c.business_number("100000000000001").is_some());
        assert!(c.business_number("+15550001000").is_some());
        assert!(c.business_number("15550009999").is_none());
    }

    #[test]
    fn an_sms_number_is_found_with_or_without_its_plus() {
        let c = SimConfig::default();
        assert_eq!(c.sms_number("+15550002000"), Some("+15550002000"));
        assert_eq!(c.sms_number("15550002000"), Some("+15550002000"));
        assert_eq!(c.sms_number("+15550001000"), None);
        assert_eq!(c.sms_number(""), None);
    }
}
