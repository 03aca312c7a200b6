//! Live events: what happened, fanned out in-process to every open event stream (`GET
//! /api/v1/events`), each stream filtering by what its user may see. Events are published only after
//! the commit that made them true. (Across several nodes this becomes PostgreSQL LISTEN/NOTIFY.)

use serde::Serialize;
use std::sync::Arc;
use tokio::sync::broadcast;
use utoipa::ToSchema;

/// One thing that happened, as a stream client receives it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct LiveEvent {
    /// Unique, increasing.
    pub id: String,
    /// `message.received`, `message.created`, `message.status`, `consent.changed`, `contact.updated`
    /// (a contact moved to a new number; `data` is the contact), …
    pub kind: String,
    pub org_id: String,
    pub conversation_id: Option<String>,
    /// The message (or other subject) as the REST API returns it.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

#[derive(Clone)]
pub struct EventHub {
    tx: broadcast::Sender<Arc<LiveEvent>>,
}

impl EventHub {
    pub fn new(capacity: usize) -> Self {
        let (tx, _) = broadcast::channel(capacity);
        Self { tx }
    }

    pub fn publish(&self, kind: &str, org_id: &str, conversation_id: Option<&str>, data: serde_json::Value) {
        // Nobody is watching: nothing to build.
        if self.tx.receiver_count() == 0 {
            return;
        }
        let ev = LiveEvent {
            id: openline_domain::ids::new_id("evt"),
            kind: kind.to_owned(),
            org_id: org_id.to_owned(),
            conversation_id: conversation_id.map(str::to_owned),
            data,
        };
        // No subscribers is fine: nobody is watching.
        let _ = self.tx.send(Arc::new(ev));
    }

    /// Publishes a message-shaped event.
    pub fn message(&self, kind: &str, m: &openline_store::messages::Message) {
        // Serialising a message is most of a live event's cost; with nobody watching, skip it.
        if self.tx.receiver_count() == 0 {
            return;
        }
        match serde_json::to_value(m) {
            Ok(data) => self.publish(kind, &m.org_id, Some(&m.conversation_id), data),
            Err(e) => tracing::error!(error = %e, "could not serialise a live event"),
        }
    }

    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveEvent>> {
        self.tx.subscribe()
    }
}
