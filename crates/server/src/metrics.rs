//! Prometheus metrics at `/metrics`: requests, webhook ingests, sends, and the dispatcher's lag.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OutcomeLabel {
    pub outcome: String,
}

pub struct Metrics {
    registry: Registry,
    pub http_requests: Family<StatusLabel, Counter>,
    pub webhook_events: Family<OutcomeLabel, Counter>,
    pub sends: Family<OutcomeLabel, Counter>,
    /// How long the oldest due outbox row has waited, in milliseconds.
    pub dispatcher_lag_ms: Gauge,
    pub outbox_due: Gauge,
    /// Inbound media downloads, by outcome (stored, retry, failed).
    pub media_downloads: Family<OutcomeLabel, Counter>,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("openline");
        let http_requests = Family::<StatusLabel, Counter>::default();
        let webhook_events = Family::<OutcomeLabel, Counter>::default();
        let sends = Family::<OutcomeLabel, Counter>::default();
        let dispatcher_lag_ms = Gauge::default();
        let outbox_due = Gauge::default();
        let media_downloads = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "http_requests",
            "HTTP requests answered, by status code",
            http_requests.clone(),
        );
        registry.register(
            "webhook_events",
            "Webhook events ingested, by outcome (stored, duplicate, status, orphan_status, other, rejected)",
            webhook_events.clone(),
        );
        registry.register(
            "sends",
            "Provider send attempts, by outcome (accepted, retry, failed)",
            sends.clone(),
        );
        registry.register(
            "dispatcher_lag_ms",
            "Age of the oldest due outbox row, in milliseconds",
            dispatcher_lag_ms.clone(),
        );
        registry.register("outbox_due", "Outbox rows due for sending", outbox_due.clone());
        registry.register(
            "media_downloads",
            "Inbound media downloads, by outcome (stored, retry, failed)",
            media_downloads.clone(),
        );
        Self {
            registry,
            http_requests,
            webhook_events,
            sends,
            dispatcher_lag_ms,
            outbox_due,
            media_downloads,
        }
    }

    pub fn media(&self, outcome: &str) {
        self.media_downloads
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    pub fn webhook(&self, outcome: &str) {
        self.webhook_events
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    pub fn send(&self, outcome: &str) {
        self.sends
            .get_or_create(&OutcomeLabel {
                outcome: outcome.to_owned(),
            })
            .inc();
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Err(e) = prometheus_client::encoding::text::encode(&mut out, &self.registry) {
            tracing::error!(error = %e, "could not encode metrics");
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
