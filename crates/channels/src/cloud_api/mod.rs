//! Meta's WhatsApp Cloud API (Graph API `/{version}/{phone-number-id}/messages`), or the simulator
//! speaking it: sending messages and read receipts, mapping Meta's errors to retry decisions, and
//! parsing webhooks into events.
//!
//! Submodules by concept: `webhook` (the envelope: entries, changes, statuses, other events),
//! `inbound` (one contact message) and `user_preferences` (marketing stops and resumes) for what
//! comes in; `outbound` (request bodies), `response` (responses and errors) and `client` (HTTP) for
//! what goes out; `json` holds the lenient readers the parser is built on.

pub mod client;
mod inbound;
mod json;
pub mod media;
pub mod outbound;
mod response;
pub mod templates;
pub mod user_preferences;
pub mod webhook;

pub use client::{CloudApiClient, CloudApiConfig};
pub use inbound::{InboundMessage, MediaRef};
pub use media::{DownloadPolicy, DownloadedMedia, MediaInfo};
pub use outbound::{mark_read_request_body, MediaSource, MediaType, OutboundMessage};
pub use templates::{template_request_body, SubmittedTemplate};
pub use webhook::{parse_webhook, CloudEvent, OtherEvent, ProviderErrorDetail, StatusUpdate, WebhookParseError};
