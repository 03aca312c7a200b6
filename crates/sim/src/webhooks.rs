//! Getting webhooks to openline the way Meta does: the body serialized as Meta serializes it
//! (compact, ASCII only, non-ASCII as `\uXXXX`, `/` as `\/`), signed over those exact bytes with the
//! app secret, POSTed with retries and exponential backoff in a background task, in order per phone.
//! Twilio's webhooks (form-encoded, `X-Twilio-Signature`) take the same queues and retries.
//!
//! Meta's own escaping is the reason a receiver must verify the signature over the raw bytes and
//! never over a re-serialization; the simulator reproduces it so a receiver that gets this wrong
//! fails in tests, not in production.

use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// How many times one webhook is attempted before the simulator gives up (Meta keeps trying for up
/// to 7 days; a simulator that did so would only pile up tasks).
pub const MAX_ATTEMPTS: u32 = 10;
/// The first retry waits this long; each next one twice as long.
pub const FIRST_RETRY_DELAY: Duration = Duration::from_secs(1);
/// How long one POST may take before it counts as failed.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Serializes a JSON value like Meta does: compact, every non-ASCII character escaped as `\uXXXX`
/// (UTF-16 surrogate pairs above U+FFFF) and `/` escaped as `\/`.
///
/// serde_json writes structural characters in ASCII and never escapes non-ASCII or `/`, so both can
/// only occur inside string literals of its output; escaping them there keeps the JSON equivalent.
pub fn to_meta_json(value: &Value) -> Vec<u8> {
    let plain = value.to_string();
    let mut out = String::with_capacity(plain.len() + plain.len() / 8);
    for c in plain.chars() {
        match c {
            '/' => out.push_str("\\/"),
            c if c.is_ascii() => out.push(c),
            c => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.into_bytes()
}

/// Puts the send's `biz_opaque_callback_data` into every status of a status webhook, as Meta does
/// (`entry[].changes[].value.statuses[].biz_opaque_callback_data`). Nothing when the send had none.
pub fn echo_callback_data(payload: &mut Value, callback_data: Option<&str>) {
    let Some(data) = callback_data else { return };
    let entries = payload.get_mut("entry").and_then(Value::as_array_mut);
    for entry in entries.into_iter().flatten() {
        let changes = entry.get_mut("changes").and_then(Value::as_array_mut);
        for change in changes.into_iter().flatten() {
            let statuses = change
                .get_mut("value")
                .and_then(|v| v.get_mut("statuses"))
                .and_then(Value::as_array_mut);
            for status in statuses.into_iter().flatten() {
                if let Some(s) = status.as_object_mut() {
                    s.insert("biz_opaque_callback_data".into(), Value::String(data.to_owned()));
                }
            }
        }
    }
}

/// `sha256=<hex hmac-sha256(secret, body)>`, the value of `X-Hub-Signature-256`.
pub fn signature_header(secret: &str, body: &[u8]) -> String {
    // HMAC accepts keys of any length, so this cannot fail; the fallback only keeps clippy happy.
    match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mut mac) => {
            mac.update(body);
            format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
        }
        Err(_) => String::from("sha256="),
    }
}

/// One webhook waiting to be delivered, ready to send: URL, body and headers are fixed when it is
/// queued, so a retry sends exactly the same bytes.
struct Delivery {
    url: String,
    body: Vec<u8>,
    content_type: &'static str,
    user_agent: &'static str,
    /// The signature header: `X-Hub-Signature-256` (Meta) or `X-Twilio-Signature` (Twilio).
    signature: (&'static str, String),
    /// Another header the signature depends on: Twilio's `X-Twilio-Webhooks-Signature-Settings`
    /// when a shared key signed it.
    signature_settings: Option<(&'static str, String)>,
    /// What kind of webhook this is, for logs (never the body).
    label: String,
    /// Told the HTTP status of the first attempt (`None` when openline was unreachable).
    first_attempt: Option<oneshot::Sender<Option<u16>>>,
}

/// Sends webhooks, one queue (and one worker task) per key (a phone), so a phone's webhooks arrive
/// in the order they happened even when one of them has to be retried. Meta's webhooks go to one
/// URL signed with the app secret; Twilio's go to the URL they name, signed by the caller.
pub struct WebhookSender {
    client: reqwest::Client,
    url: String,
    secret: String,
    queues: Mutex<HashMap<String, mpsc::UnboundedSender<Delivery>>>,
}

impl std::fmt::Debug for WebhookSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSender")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

impl WebhookSender {
    pub fn new(url: String, secret: String) -> Self {
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        Self {
            client,
            url,
            secret,
            queues: Mutex::new(HashMap::new()),
        }
    }

    /// Queues a Meta webhook (`payload` as Meta serializes it, signed with the app secret) behind
    /// the phone's earlier webhooks. The returned receiver yields the first attempt's HTTP status;
    /// later attempts happen in the background.
    pub fn enqueue(&self, phone_key: &str, label: &str, payload: &Value) -> oneshot::Receiver<Option<u16>> {
        let body = to_meta_json(payload);
        let signature = signature_header(&self.secret, &body);
        self.push(
            phone_key,
            Delivery {
                url: self.url.clone(),
                body,
                content_type: "application/json",
                user_agent: "facebookexternalua",
                signature: ("X-Hub-Signature-256", signature),
                signature_settings: None,
                label: label.to_string(),
                first_attempt: None,
            },
        )
    }

    /// Queues a Twilio webhook: `params` form-encoded, POSTed to `url` with `X-Twilio-Signature`
    /// (which the caller computed over `url` and `params`, and, when a shared key signed it,
    /// `X-Twilio-Webhooks-Signature-Settings` saying which) behind the key's earlier webhooks.
    pub fn enqueue_form(
        &self,
        key: &str,
        url: &str,
        label: &str,
        params: &[(String, String)],
        signature: String,
        signature_settings: Option<String>,
    ) -> oneshot::Receiver<Option<u16>> {
        let body = serde_urlencoded::to_string(params).unwrap_or_default().into_bytes();
        self.push(
            key,
            Delivery {
                url: url.to_string(),
                body,
                content_type: "application/x-www-form-urlencoded",
                user_agent: "TwilioProxy/1.1",
                signature: ("X-Twilio-Signature", signature),
                signature_settings: signature_settings.map(|v| ("X-Twilio-Webhooks-Signature-Settings", v)),
                label: label.to_string(),
                first_attempt: None,
            },
        )
    }

    fn push(&self, key: &str, mut delivery: Delivery) -> oneshot::Receiver<Option<u16>> {
        let (tx, rx) = oneshot::channel();
        delivery.first_attempt = Some(tx);
        let mut queues = self.queues.lock().unwrap_or_else(|e| e.into_inner());
        let queue = queues.entry(key.to_string()).or_insert_with(|| self.spawn_worker());
        if let Err(mpsc::error::SendError(delivery)) = queue.send(delivery) {
            // The worker is gone (its runtime was shut down); start a fresh one.
            let fresh = self.spawn_worker();
            let _ = fresh.send(delivery);
            *queue = fresh;
        }
        rx
    }

    fn spawn_worker(&self) -> mpsc::UnboundedSender<Delivery> {
        let (tx, mut rx) = mpsc::unbounded_channel::<Delivery>();
        let client = self.client.clone();
        tokio::spawn(async move {
            while let Some(delivery) = rx.recv().await {
                deliver_with_retries(&client, delivery).await;
            }
        });
        tx
    }
}

async fn deliver_with_retries(client: &reqwest::Client, mut delivery: Delivery) {
    let mut delay = FIRST_RETRY_DELAY;
    for attempt in 1..=MAX_ATTEMPTS {
        let mut request = client
            .post(&delivery.url)
            .header("Content-Type", delivery.content_type)
            .header(delivery.signature.0, &delivery.signature.1)
            .header("User-Agent", delivery.user_agent);
        if let Some((name, value)) = &delivery.signature_settings {
            request = request.header(*name, value);
        }
        let result = request.body(delivery.body.clone()).send().await;
        let status = result.as_ref().ok().map(|r| r.status().as_u16());
        if let Some(tx) = delivery.first_attempt.take() {
            let _ = tx.send(status);
        }
        match status {
            Some(s) if (200..300).contains(&s) => {
                tracing::debug!(webhook = %delivery.label, attempt, "webhook delivered");
                return;
            }
            Some(s) => {
                tracing::info!(webhook = %delivery.label, attempt, status = s, "webhook refused; will retry")
            }
            None => {
                tracing::info!(webhook = %delivery.label, attempt, "webhook receiver unreachable; will retry")
            }
        }
        if attempt < MAX_ATTEMPTS {
            tokio::time::sleep(delay).await;
            delay = delay.saturating_mul(2);
        }
    }
    tracing::warn!(webhook = %delivery.label, attempts = MAX_ATTEMPTS, "webhook given up");
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn non_ascii_is_escaped_like_meta_and_the_json_still_means_the_same() {
        let v = json!({"name": "Lucía 😀", "url": "https://a/b", "quote": "\"x\"\n"});
        let bytes = to_meta_json(&v);
        let text = std::str::from_utf8(&bytes).unwrap();
        assert!(text.is_ascii());
        assert!(text.contains(r"Luc\u00eda \ud83d\ude00"), "{text}");
        assert!(text.contains(r"https:\/\/a\/b"), "{text}");
        assert_eq!(serde_json::from_slice::<Value>(&bytes).unwrap(), v);
    }

    #[test]
    fn callback_data_is_echoed_on_every_status_and_absent_without_one() {
        let status = json!({"entry": [{"changes": [{"value": {"statuses": [{"id": "wamid.1", "status": "sent"}]}}]}]});
        let mut tagged = status.clone();
        echo_callback_data(&mut tagged, Some("msg_1"));
        assert_eq!(
            tagged["entry"][0]["changes"][0]["value"]["statuses"][0]["biz_opaque_callback_data"],
            "msg_1"
        );
        let mut untouched = status.clone();
        echo_callback_data(&mut untouched, None);
        assert_eq!(untouched, status);
    }

    #[test]
    fn the_signature_is_hex_hmac_sha256_of_the_body() {
        // Known answer: HMAC-SHA256("key", "The quick brown fox jumps over the lazy dog").
        let sig = signature_header("key", b"The quick brown fox jumps over the lazy dog");
        assert_eq!(
            sig,
            "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
    }

    proptest::proptest! {
        #[test]
        fn any_string_survives_the_escaping(s in "\\PC{0,40}") {
            let v = json!({ "s": s });
            let bytes = to_meta_json(&v);
            proptest::prop_assert!(bytes.is_ascii());
            proptest::prop_assert_eq!(serde_json::from_slice::<Value>(&bytes).unwrap(), v);
        }
    }
}
