//! What every handler and worker shares: the store, the clock, settings, the provider client, live
//! events and metrics. Cheap to clone (everything behind `Arc`).

use crate::config::Config;
use crate::events::EventHub;
use crate::metrics::Metrics;
use openline_channels::cloud_api::CloudApiClient;
use openline_channels::twilio::TwilioClient;
use openline_domain::clock::SharedClock;
use openline_domain::ProviderKind;
use openline_store::senders::Sender;
use openline_store::Store;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use tokio::sync::Notify;

/// Everything the handlers and workers share. Cloned for every request (axum's `State` and the
/// middleware each take a copy), so it is one reference count: cloning the fields themselves (a
/// dozen reference counts, the Twilio URL and the blob directory copied) was 6-7% of the request
/// threads' CPU under `openline bench --scenario ingest`.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What an [`AppState`] holds.
pub struct Shared {
    pub store: Store,
    pub clock: SharedClock,
    pub config: Arc<Config>,
    pub cloud: CloudApiClient,
    /// Twilio (SMS, and WhatsApp through Twilio), when configured.
    pub twilio: Option<TwilioClient>,
    /// The URL Twilio signs webhooks over (see `TwilioSettings::webhook_url`).
    pub twilio_webhook_url: String,
    pub events: EventHub,
    pub metrics: Arc<Metrics>,
    /// Wakes the dispatcher when a message is put in the outbox.
    pub dispatcher_wake: Arc<Notify>,
    /// Media bytes, by SHA-256.
    pub blobs: crate::blobs::BlobStore,
    /// Wakes the media worker when an inbound file is waiting to be fetched.
    pub media_wake: Arc<Notify>,
    /// Senders by (provider, provider number id), for routing webhooks without a query. Senders
    /// change rarely; a miss falls back to the database.
    senders: Arc<RwLock<HashMap<(ProviderKind, String), Sender>>>,
    /// Set once shutdown starts: `/readyz` answers 503 so load balancers drain this node.
    pub shutting_down: Arc<std::sync::atomic::AtomicBool>,
    /// Turns true when shutdown starts; workers stop and live event streams end (a stream that
    /// never ends would hold graceful shutdown forever).
    pub shutdown: tokio::sync::watch::Sender<bool>,
    /// The key signing archive checkpoints, read and parsed once at start-up (`None`: not
    /// configured, checkpoints are off).
    pub archive_signing_key: Option<Arc<openline_store::checkpoints::SigningKey>>,
    /// The key sealing outbound webhook secrets at rest, loaded (or created) once at start-up.
    pub webhook_secrets_key: Arc<openline_store::webhooks_out::SecretsKey>,
    /// Stores Cloud API webhooks several to a transaction (`webhooks::batch`).
    pub ingest: crate::webhooks::IngestBatcher,
}

/// The keys start-up loads once for handlers and workers.
pub struct Keys {
    pub archive_signing_key: Option<openline_store::checkpoints::SigningKey>,
    pub webhook_secrets_key: openline_store::webhooks_out::SecretsKey,
}

impl AppState {
    pub fn new(
        store: Store,
        clock: SharedClock,
        config: Config,
        cloud: CloudApiClient,
        twilio: Option<TwilioClient>,
        twilio_webhook_url: String,
        keys: Keys,
    ) -> Self {
        Self(Arc::new(Shared {
            ingest: crate::webhooks::IngestBatcher::start(store.clone()),
            store,
            clock,
            blobs: crate::blobs::BlobStore::new(config.blob_dir()),
            media_wake: Arc::new(Notify::new()),
            config: Arc::new(config),
            cloud,
            twilio,
            twilio_webhook_url,
            events: EventHub::new(4096),
            metrics: Arc::new(Metrics::new()),
            dispatcher_wake: Arc::new(Notify::new()),
            senders: Arc::new(RwLock::new(HashMap::new())),
            shutting_down: Arc::new(std::sync::atomic::AtomicBool::new(false)),
            shutdown: tokio::sync::watch::channel(false).0,
            archive_signing_key: keys.archive_signing_key.map(Arc::new),
            webhook_secrets_key: Arc::new(keys.webhook_secrets_key),
        }))
    }

    pub fn now(&self) -> i64 {
        self.clock.now()
    }

    /// The sender a webhook is addressed to, from the cache or the database.
    pub async fn sender_for(
        &self,
        provider: ProviderKind,
        number_id: &str,
    ) -> Result<Option<Sender>, openline_store::StoreError> {
        let key = (provider, number_id.to_owned());
        if let Ok(cache) = self.senders.read() {
            if let Some(s) = cache.get(&key) {
                return Ok(Some(s.clone()));
            }
        }
        let id = number_id.to_owned();
        let found = self
            .store
            .read(move |c| openline_store::senders::find_by_provider_id(c, provider, &id))
            .await?;
        if let (Some(s), Ok(mut cache)) = (&found, self.senders.write()) {
            cache.insert(key, s.clone());
        }
        Ok(found)
    }
}
