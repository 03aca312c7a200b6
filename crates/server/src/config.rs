//! Settings, from flags, `OPENLINE_*` environment variables and a TOML file, in that precedence
//! (the CLI merges them; this module holds the result and the file/env layers). Passed by value into
//! start-up: no globals, so tests vary it freely. Secrets never appear in `Debug` output.

use serde::Deserialize;
use std::fmt;
use std::path::{Path, PathBuf};

/// A secret string whose `Debug` and `Display` say `[redacted]`.
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_empty() { "[unset]" } else { "[redacted]" })
    }
}

/// The Meta WhatsApp Cloud API connection (or the simulator standing in for it).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct WhatsappConfig {
    /// `https://graph.facebook.com`, or the simulator's `…/sim/graph`.
    pub graph_base_url: String,
    pub api_version: String,
    /// Bearer token for the Graph API (a system-user token in production).
    pub access_token: Secret,
    /// The app secret Meta signs webhooks with (`X-Hub-Signature-256`).
    pub app_secret: Secret,
    /// The token Meta's verification handshake must present (`hub.verify_token`).
    pub verify_token: Secret,
    /// Timeout for each Graph API request, in milliseconds.
    pub timeout_ms: u64,
}

impl Default for WhatsappConfig {
    fn default() -> Self {
        Self {
            graph_base_url: "https://graph.facebook.com".into(),
            api_version: "v23.0".into(),
            access_token: Secret::default(),
            app_secret: Secret::default(),
            verify_token: Secret::default(),
            timeout_ms: 15_000,
        }
    }
}

/// The Twilio connection (Messages API for SMS and WhatsApp), or the simulator standing in for it.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct TwilioSettings {
    /// `https://api.twilio.com`, or the simulator's `…/sim/twilio`.
    pub base_url: String,
    /// `AC…`; Twilio is off while this is empty.
    pub account_sid: String,
    /// Signs requests and webhooks (`X-Twilio-Signature`).
    pub auth_token: Secret,
    /// The public URL Twilio posts to (`…/webhooks/twilio`), exactly as configured in Twilio's
    /// console: signatures are computed over it, so behind a proxy it must be the outside URL.
    /// Default: the public URL + `/webhooks/twilio`.
    pub webhook_url: Option<String>,
    /// The secret of the Twilio SharedKey that a Webhook Setting signs with instead of the auth
    /// token (requests then carry `X-Twilio-Webhooks-Signature-Settings`, usually with
    /// `algorithm=HMAC_SHA256`). Empty: such requests are refused.
    pub webhook_shared_key: Secret,
    pub timeout_ms: u64,
    /// How often Content templates still awaiting WhatsApp's review are asked about again (Twilio
    /// sends no webhook when a review ends). 0: only when a send uses one.
    pub approval_refresh_ms: u64,
}

impl Default for TwilioSettings {
    fn default() -> Self {
        Self {
            base_url: "https://api.twilio.com".into(),
            account_sid: String::new(),
            auth_token: Secret::default(),
            webhook_url: None,
            webhook_shared_key: Secret::default(),
            timeout_ms: 15_000,
            approval_refresh_ms: 600_000,
        }
    }
}

/// Outbound webhooks (deliveries to subscribed archives and CRMs).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Allow subscription URLs that point at private, loopback or link-local addresses (refused by
    /// default, so an admin cannot make openline probe its own network). Tests and the demo set it.
    pub allow_private: bool,
    /// Timeout for each delivery request, in milliseconds (connect, send and answer).
    pub timeout_ms: u64,
    /// The first retry waits about this long; each further one twice as long (with jitter).
    pub backoff_base_ms: u64,
    /// The longest wait between two attempts.
    pub backoff_max_ms: u64,
    /// How long an event is retried before its subscription is parked (at least 24 hours in
    /// production; a parked subscription is resumed by an admin).
    pub retry_hours: u64,
    /// How often the worker looks for new journal entries and due retries, in milliseconds.
    pub poll_ms: u64,
    /// The key that seals subscriptions' signing secrets in the database: 64 hex digits. When
    /// unset, `secrets_key_file` is used. Every node sharing a database needs the same key.
    pub secrets_key: Secret,
    /// The file holding that key; default `DATA_DIR/webhook-secrets.key`, created (mode 0600) with
    /// a new random key on first start when neither this file nor `secrets_key` exists.
    pub secrets_key_file: Option<PathBuf>,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        Self {
            allow_private: false,
            timeout_ms: 10_000,
            backoff_base_ms: 10_000,
            backoff_max_ms: 3_600_000,
            retry_hours: 72,
            poll_ms: 1_000,
            secrets_key: Secret::default(),
            secrets_key_file: None,
        }
    }
}

/// The archive: signing its checkpoints and purging what retention lets go.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct ArchiveConfig {
    /// The Ed25519 key that signs checkpoints: the 64 hex digits `openline archive keygen` prints.
    /// Checkpoints are off while neither this nor `signing_key_file` is set.
    pub signing_key: Secret,
    /// A file holding the key (read at start-up), so it need not sit in the config or environment.
    pub signing_key_file: Option<PathBuf>,
    /// How often every moved chain head is signed, in minutes (0: only on demand).
    pub checkpoint_minutes: u64,
    /// How often the retention purge runs, in minutes (0: only on demand).
    pub purge_minutes: u64,
}

impl Default for ArchiveConfig {
    fn default() -> Self {
        Self {
            signing_key: Secret::default(),
            signing_key_file: None,
            checkpoint_minutes: 60,
            purge_minutes: 24 * 60,
        }
    }
}

impl ArchiveConfig {
    /// The signing key, from the setting or the key file; `None` when neither is set. A key that
    /// cannot be read or parsed is an error (start-up fails rather than silently not signing).
    pub fn signing_key(&self) -> anyhow::Result<Option<openline_store::checkpoints::SigningKey>> {
        use anyhow::Context;
        let text = if !self.signing_key.is_empty() {
            self.signing_key.expose().to_owned()
        } else if let Some(path) = &self.signing_key_file {
            std::fs::read_to_string(path)
                .with_context(|| format!("reading the archive signing key file {}", path.display()))?
        } else {
            return Ok(None);
        };
        openline_store::checkpoints::parse_signing_key(&text)
            .map(Some)
            .map_err(|e| anyhow::anyhow!("{e}"))
    }
}

/// Media files: where their bytes live and how inbound files are fetched from the provider.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct MediaConfig {
    /// The blob store's directory (files named by their SHA-256); default: `DATA_DIR/blobs`.
    pub blob_dir: Option<PathBuf>,
    /// The largest inbound file fetched, in bytes (WhatsApp's own largest, documents, is 100 MB).
    pub max_download_bytes: u64,
    /// Hosts media URLs may point at besides the Graph API's own: exact names, or `.example.com`
    /// for any subdomain. Default: Meta's media hosts. Anything else (private addresses included)
    /// is refused.
    pub allowed_hosts: Vec<String>,
    /// The first retry of a failed download waits about this long; each further one twice as long
    /// (with jitter), up to `retry_max_ms`.
    pub retry_base_ms: u64,
    pub retry_max_ms: u64,
    /// After this many attempts a download is marked failed (the message is kept either way).
    pub max_attempts: i64,
}

impl Default for MediaConfig {
    fn default() -> Self {
        Self {
            blob_dir: None,
            max_download_bytes: 100 * 1024 * 1024,
            allowed_hosts: openline_channels::cloud_api::DownloadPolicy::meta_hosts(),
            retry_base_ms: 1_000,
            retry_max_ms: 3_600_000,
            max_attempts: 20,
        }
    }
}

/// Everything openline needs to start.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on, e.g. `127.0.0.1:8080` (port 0 picks a free port).
    pub listen: String,
    /// Where the embedded database and other files live.
    pub data_dir: PathBuf,
    /// `postgres://…` or `sqlite://PATH`; default: `DATA_DIR/openline.db`.
    pub database_url: Option<String>,
    /// Seed demo data and run the simulator inside the server under `/sim`.
    pub demo: bool,
    /// The URL at which this server is reachable (for the simulator's webhooks and links);
    /// default: `http://` + the bound address.
    pub public_url: Option<String>,
    pub whatsapp: WhatsappConfig,
    pub twilio: TwilioSettings,
    /// How long a browser session lasts, in hours.
    pub session_hours: i64,
    /// Serve `POST /bench/ceiling` (signature check + JSON parse + 200, nothing stored), the
    /// benchmark's reference for what this machine can do without storage. Off in production.
    pub bench_ceiling: bool,
    /// Checkpoint signing and retention purges.
    pub archive: ArchiveConfig,
    /// Outbound webhooks to archives and CRMs.
    pub webhooks: WebhooksConfig,
    /// Media files (the blob store, inbound downloads).
    pub media: MediaConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./data"),
            database_url: None,
            demo: false,
            public_url: None,
            whatsapp: WhatsappConfig::default(),
            twilio: TwilioSettings::default(),
            session_hours: 12,
            bench_ceiling: false,
            archive: ArchiveConfig::default(),
            webhooks: WebhooksConfig::default(),
            media: MediaConfig::default(),
        }
    }
}

impl Config {
    /// Reads a TOML file (every key optional; unknown keys are an error, so typos are caught).
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        use anyhow::Context;
        let text = std::fs::read_to_string(path).with_context(|| format!("reading config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("parsing config file {}", path.display()))
    }

    /// Applies `OPENLINE_*` environment variables over the current values (`get` reads one variable,
    /// so tests can pass a map instead of the process environment).
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> anyhow::Result<()> {
        if let Some(v) = get("OPENLINE_LISTEN") {
            self.listen = v;
        }
        if let Some(v) = get("OPENLINE_DATA_DIR") {
            self.data_dir = PathBuf::from(v);
        }
        if let Some(v) = get("OPENLINE_DATABASE_URL") {
            self.database_url = Some(v);
        }
        if let Some(v) = get("OPENLINE_PUBLIC_URL") {
            self.public_url = Some(v);
        }
        if let Some(v) = get("OPENLINE_DEMO") {
            self.demo = matches!(v.as_str(), "1" | "true" | "yes" | "on");
        }
        if let Some(v) = get("OPENLINE_WHATSAPP_GRAPH_BASE_URL") {
            self.whatsapp.graph_base_url = v;
        }
        if let Some(v) = get("OPENLINE_WHATSAPP_API_VERSION") {
            self.whatsapp.api_version = v;
        }
        if let Some(v) = get("OPENLINE_WHATSAPP_ACCESS_TOKEN") {
            self.whatsapp.access_token = Secret::new(v);
        }
        if let Some(v) = get("OPENLINE_WHATSAPP_APP_SECRET") {
            self.whatsapp.app_secret = Secret::new(v);
        }
        if let Some(v) = get("OPENLINE_WHATSAPP_VERIFY_TOKEN") {
            self.whatsapp.verify_token = Secret::new(v);
        }
        if let Some(v) = get("OPENLINE_TWILIO_BASE_URL") {
            self.twilio.base_url = v;
        }
        if let Some(v) = get("OPENLINE_TWILIO_ACCOUNT_SID") {
            self.twilio.account_sid = v;
        }
        if let Some(v) = get("OPENLINE_TWILIO_AUTH_TOKEN") {
            self.twilio.auth_token = Secret::new(v);
        }
        if let Some(v) = get("OPENLINE_TWILIO_WEBHOOK_URL") {
            self.twilio.webhook_url = Some(v);
        }
        if let Some(v) = get("OPENLINE_TWILIO_WEBHOOK_SHARED_KEY") {
            self.twilio.webhook_shared_key = Secret::new(v);
        }
        if let Some(v) = get("OPENLINE_BENCH_CEILING") {
            self.bench_ceiling = matches!(v.as_str(), "1" | "true" | "yes" | "on");
        }
        if let Some(v) = get("OPENLINE_WEBHOOKS_ALLOW_PRIVATE") {
            self.webhooks.allow_private = matches!(v.as_str(), "1" | "true" | "yes" | "on");
        }
        for (var, field) in [
            ("OPENLINE_WEBHOOKS_TIMEOUT_MS", &mut self.webhooks.timeout_ms),
            ("OPENLINE_WEBHOOKS_BACKOFF_BASE_MS", &mut self.webhooks.backoff_base_ms),
            ("OPENLINE_WEBHOOKS_BACKOFF_MAX_MS", &mut self.webhooks.backoff_max_ms),
            ("OPENLINE_WEBHOOKS_RETRY_HOURS", &mut self.webhooks.retry_hours),
            ("OPENLINE_WEBHOOKS_POLL_MS", &mut self.webhooks.poll_ms),
            (
                "OPENLINE_TWILIO_APPROVAL_REFRESH_MS",
                &mut self.twilio.approval_refresh_ms,
            ),
        ] {
            if let Some(v) = get(var) {
                *field = v.parse().map_err(|_| anyhow::anyhow!("{var} must be a whole number"))?;
            }
        }
        if let Some(v) = get("OPENLINE_WEBHOOKS_SECRETS_KEY") {
            self.webhooks.secrets_key = Secret::new(v);
        }
        if let Some(v) = get("OPENLINE_WEBHOOKS_SECRETS_KEY_FILE") {
            self.webhooks.secrets_key_file = Some(PathBuf::from(v));
        }
        if let Some(v) = get("OPENLINE_ARCHIVE_SIGNING_KEY") {
            self.archive.signing_key = Secret::new(v);
        }
        if let Some(v) = get("OPENLINE_ARCHIVE_SIGNING_KEY_FILE") {
            self.archive.signing_key_file = Some(PathBuf::from(v));
        }
        for (var, field) in [
            (
                "OPENLINE_ARCHIVE_CHECKPOINT_MINUTES",
                &mut self.archive.checkpoint_minutes,
            ),
            ("OPENLINE_ARCHIVE_PURGE_MINUTES", &mut self.archive.purge_minutes),
        ] {
            if let Some(v) = get(var) {
                *field = v
                    .parse()
                    .map_err(|_| anyhow::anyhow!("{var} must be a whole number of minutes"))?;
            }
        }
        if let Some(v) = get("OPENLINE_MEDIA_BLOB_DIR") {
            self.media.blob_dir = Some(PathBuf::from(v));
        }
        if let Some(v) = get("OPENLINE_MEDIA_MAX_DOWNLOAD_BYTES") {
            self.media.max_download_bytes = v
                .parse()
                .map_err(|_| anyhow::anyhow!("OPENLINE_MEDIA_MAX_DOWNLOAD_BYTES must be a whole number"))?;
        }
        if let Some(v) = get("OPENLINE_SESSION_HOURS") {
            self.session_hours = v
                .parse()
                .map_err(|_| anyhow::anyhow!("OPENLINE_SESSION_HOURS must be a whole number"))?;
        }
        Ok(())
    }

    /// The blob store's directory: the configured one, else `blobs` in the data directory.
    pub fn blob_dir(&self) -> PathBuf {
        self.media
            .blob_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("blobs"))
    }

    /// The key sealing outbound webhook secrets: `webhooks.secrets_key`, else the key file (by
    /// default `DATA_DIR/webhook-secrets.key`), which is created with a new random key and mode 0600
    /// when it does not exist yet. A key that cannot be read or parsed is an error.
    pub fn webhook_secrets_key(&self) -> anyhow::Result<openline_store::webhooks_out::SecretsKey> {
        use anyhow::Context;
        use openline_store::webhooks_out::SecretsKey;
        if !self.webhooks.secrets_key.is_empty() {
            return SecretsKey::from_hex(self.webhooks.secrets_key.expose())
                .map_err(|e| anyhow::anyhow!("OPENLINE_WEBHOOKS_SECRETS_KEY: {e}"));
        }
        let path = self
            .webhooks
            .secrets_key_file
            .clone()
            .unwrap_or_else(|| self.data_dir.join("webhook-secrets.key"));
        match std::fs::read_to_string(&path) {
            Ok(text) => SecretsKey::from_hex(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
                }
                let key = SecretsKey::generate();
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                match options.open(&path) {
                    Ok(mut file) => {
                        use std::io::Write;
                        file.write_all(format!("{}\n", key.to_hex()).as_bytes())
                            .and_then(|()| file.sync_all())
                            .with_context(|| format!("writing the webhook secrets key {}", path.display()))?;
                        tracing::info!(path = %path.display(), "created the webhook secrets key file");
                        Ok(key)
                    }
                    // Another process created it first: use that one.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        let text = std::fs::read_to_string(&path)
                            .with_context(|| format!("reading the webhook secrets key {}", path.display()))?;
                        SecretsKey::from_hex(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
                    }
                    Err(e) => Err(e).with_context(|| format!("creating the webhook secrets key {}", path.display())),
                }
            }
            Err(e) => Err(e).with_context(|| format!("reading the webhook secrets key {}", path.display())),
        }
    }

    /// The database to use: the configured URL, else a SQLite file in the data directory.
    pub fn database(&self) -> anyhow::Result<openline_store::DatabaseUrl> {
        match &self.database_url {
            Some(u) => openline_store::DatabaseUrl::parse(u).map_err(|e| anyhow::anyhow!("{e}")),
            None => Ok(openline_store::DatabaseUrl::Sqlite(self.data_dir.join("openline.db"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_webhook_secrets_key_file_is_created_once_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let c = Config {
            data_dir: dir.path().join("data"),
            ..Config::default()
        };
        let first = c.webhook_secrets_key().unwrap();
        let path = dir.path().join("data").join("webhook-secrets.key");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        assert_eq!(
            c.webhook_secrets_key().unwrap().to_hex(),
            first.to_hex(),
            "reused, not replaced"
        );
        let mut from_env = c.clone();
        from_env
            .apply_env(|k| (k == "OPENLINE_WEBHOOKS_SECRETS_KEY").then(|| "ab".repeat(32)))
            .unwrap();
        assert_eq!(from_env.webhook_secrets_key().unwrap().to_hex(), "ab".repeat(32));
        assert!(!format!("{from_env:?}").contains(&"ab".repeat(32)));
        std::fs::write(&path, "not a key").unwrap();
        assert!(c.webhook_secrets_key().is_err(), "a damaged key file stops start-up");
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let mut c = Config::default();
        c.whatsapp.app_secret = Secret::new("s3cr3t-app");
        c.whatsapp.access_token = Secret::new("EAAG-token");
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("s3cr3t-app") && !shown.contains("EAAG-token"),
            "{shown}"
        );
        assert!(shown.contains("[redacted]"));
    }

    #[test]
    fn environment_overrides_the_file_and_typos_in_the_file_are_errors() {
        let mut c: Config = toml::from_str("listen = '0.0.0.0:9000'\n[whatsapp]\napi_version = 'v22.0'\n").unwrap();
        c.apply_env(|k| (k == "OPENLINE_LISTEN").then(|| "127.0.0.1:7000".to_owned()))
            .unwrap();
        assert_eq!(c.listen, "127.0.0.1:7000");
        assert_eq!(c.whatsapp.api_version, "v22.0");
        assert!(toml::from_str::<Config>("lisen = 'x'").is_err());
    }

    #[test]
    fn the_archive_signing_key_comes_from_the_environment_or_a_file_and_is_never_shown() {
        let seed = "07".repeat(32);
        let mut c = Config::default();
        assert!(
            c.archive.signing_key().unwrap().is_none(),
            "checkpoints are off without a key"
        );
        c.apply_env(|k| (k == "OPENLINE_ARCHIVE_SIGNING_KEY").then(|| seed.clone()))
            .unwrap();
        assert!(c.archive.signing_key().unwrap().is_some());
        assert!(!format!("{c:?}").contains(&seed), "the key never shows in Debug output");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("archive.key");
        std::fs::write(&file, format!("{seed}\n")).unwrap();
        let from_file: Config = toml::from_str(&format!("[archive]\nsigning_key_file = {:?}\n", file)).unwrap();
        assert!(from_file.archive.signing_key().unwrap().is_some());
        let bad: Config = toml::from_str("[archive]\nsigning_key = 'not-hex'\n").unwrap();
        assert!(
            bad.archive.signing_key().is_err(),
            "a bad key fails start-up instead of not signing"
        );
        let mut c = Config::default();
        assert!(c
            .apply_env(|k| (k == "OPENLINE_ARCHIVE_PURGE_MINUTES").then(|| "daily".to_owned()))
            .is_err());
    }
}
