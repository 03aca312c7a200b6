//! Endpoints providers call. Each verifies the provider's signature over the raw bytes before
//! parsing anything, commits what the webhook says in one transaction, and only then answers 200.

pub mod whatsapp;
