//! Twilio's Messages API (`/2010-04-01/Accounts/{AccountSid}/Messages.json`), for WhatsApp and SMS,
//! or the simulator speaking it: sending messages, mapping Twilio's errors to retry decisions,
//! checking webhook signatures and reading webhooks into events.
//!
//! Submodules by concept, as for the Cloud API: `outbound` (the message and its form parameters),
//! `response` (answers and errors) and `client` (HTTP) for what goes out; `signature`
//! (`X-Twilio-Signature`) and `webhook` (form bodies, incoming messages, status callbacks) for what
//! comes in. Unlike Meta's, Twilio's signature covers the decoded form parameters and the URL, not
//! the raw body, so a webhook is parsed with [`parse_form`], verified with
//! [`verify_twilio_signature`], and only then read with [`classify`].

pub mod client;
pub mod content;
pub mod media;
mod outbound;
mod response;
pub mod signature;
pub mod webhook;

pub use client::{TwilioClient, TwilioConfig};
pub use content::ContentApproval;
pub use media::{is_twilio_media_host, TWILIO_MEDIA_HOSTS};
pub use outbound::{content_variables, TwilioMessage};
pub use signature::{
    sign_twilio, sign_twilio_with, verify_twilio_signature, verify_twilio_signature_with, SignatureAlgorithm,
    SignatureSettings,
};
pub use webhook::{classify, parse_form, TwilioEvent, TwilioInbound, TwilioStatus, TwilioWebhookError};
