//! openline driven through HTTP, as a client and as Meta would: the real server on port 0 with a
//! fresh database per test and the simulator in demo mode. Every test runs on SQLite and PostgreSQL.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod archive;
mod common;
mod compliance_web;
mod conversation;
mod demo_clock;
mod dispatch;
mod dlp;
mod duplicates;
mod fixtures;
mod marketing_preferences;
mod media;
mod outbound_webhooks;
mod pacing;
mod participants;
mod policy;
mod read_receipts_web;
mod security;
mod send_kinds;
mod sms;
mod system_events;
mod templates;
mod twilio;
mod twilio_media;
mod twilio_template_approval;
mod web;

/// Declares `name::sqlite` and `name::postgres` tests running `body(backend)`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident => $body:ident;)*) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() { super::$body(openline_store::Backend::Sqlite).await }
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() { super::$body(openline_store::Backend::Postgres).await }
            }
        )*
    };
}
