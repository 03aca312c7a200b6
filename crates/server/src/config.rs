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
    pub timeout_ms: u64,
}

impl Default for TwilioSettings {
    fn default() -> Self {
        Self {
            base_url: "https://api.twilio.com".into(),
            account_sid: String::new(),
            auth_token: Secret::default(),
            webhook_url: None,
            timeout_ms: 15_000,
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
        if let Some(v) = get("OPENLINE_BENCH_CEILING") {
            self.bench_ceiling = matches!(v.as_str(), "1" | "true" | "yes" | "on");
        }
        if let Some(v) = get("OPENLINE_SESSION_HOURS") {
            self.session_hours = v
                .parse()
                .map_err(|_| anyhow::anyhow!("OPENLINE_SESSION_HOURS must be a whole number"))?;
        }
        Ok(())
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
}
