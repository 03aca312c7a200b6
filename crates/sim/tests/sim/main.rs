//! Integration tests of the simulator: the router on port 0, a tiny receiver standing in for
//! openline's webhook endpoint, and a manual clock for the 24-hour window.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod graph;
mod lifecycle;
mod phones;
mod support;
mod templates;
mod twilio;
