//! The pure heart of openline: the vocabulary shared by every other crate and the rules that decide
//! what may happen. Nothing here performs IO or reads the clock; time is always a parameter (`now`, in
//! UTC epoch milliseconds), so every rule can be tested exhaustively without sleeping.

pub mod clock;
pub mod consent;
pub mod dlp;
pub mod error;
pub mod ids;
pub mod limits;
pub mod model;
pub mod phone;
pub mod policy;
pub mod provider_errors;
pub mod status;
pub mod templates;
pub mod utc;
pub mod window;

pub use error::DomainError;
pub use model::*;
pub use phone::PhoneNumber;
pub use status::DeliveryStatus;

/// A point in time: milliseconds since the Unix epoch, UTC. Stored as a 64-bit integer in both
/// databases, so the backends can never disagree about time zones or precision.
pub type Millis = i64;
