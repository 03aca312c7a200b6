//! Provider adapters of openline: everything that speaks a messaging provider's protocol.
//!
//! Each provider gets a module that owns its request building, response and error mapping, webhook
//! parsing and webhook signature scheme: `cloud_api` for Meta's WhatsApp Cloud API, `twilio` for
//! Twilio's Messages API (WhatsApp and SMS). What every provider shares lives here at the root:
//! the outcome of a send ([`ProviderAccepted`], [`SendError`]), the construction error
//! ([`ChannelError`]) and the [`signature`] checks.
//!
//! Nothing in this crate stores, decides or logs message content: the server verifies and parses
//! with it, decides with `openline-domain`, and sends through it.

pub mod cloud_api;
mod error;
mod http;
pub mod signature;
pub mod twilio;

pub use error::{ChannelError, ProviderAccepted, SendError};
pub use signature::{sign_meta, verify_meta_signature, SignatureError};
