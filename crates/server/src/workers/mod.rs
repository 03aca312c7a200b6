//! Background work that runs beside the HTTP server and stops with it.

pub mod dispatcher;
pub mod media;
pub mod outbound_webhooks;
pub mod pacing;
pub mod retention;
