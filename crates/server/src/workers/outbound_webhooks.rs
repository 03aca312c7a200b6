//! The outbound webhook worker: delivers journal entries to subscribed URLs (compliance archives,
//! CRMs), signed, in order, retried with backoff, and recorded attempt by attempt.
//!
//! Each subscription is a queue over the journal: the worker finds the first matching entry after
//! the subscription's cursor, `POST`s it, and moves the cursor only once the receiver answered 2xx.
//! A failure keeps the event at the head and schedules the next try (exponential backoff with
//! jitter); later events wait behind it, so a receiver sees each organization's events in order.
//! When the head has failed for the whole retry period the subscription is parked (visible in the
//! API, journaled) until an admin resumes it. Delivery is at-least-once (a receiver that answered
//! too late gets the event again); the event id `org_id:seq` lets receivers dedupe.
//!
//! Subscriptions are leased (`lease_owner`/`lease_until`), so with several nodes on one database
//! only one delivers for a given subscription at a time. Different subscriptions are delivered
//! concurrently; one slow receiver does not hold up the others.
//!
//! Every request has a timeout, redirects are not followed, answers are read only up to a cap, and
//! addresses are checked when the name is resolved (not only when the subscription was created), so
//! a DNS change cannot point deliveries at the internal network unless `allow_private` is set.

use crate::config::WebhooksConfig;
use crate::state::AppState;
use hmac::{Hmac, Mac};
use openline_store::webhooks_out::{self, AttemptResult, DeliveryTarget};
use sha2::Sha256;
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinSet;

/// The signature header: `t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>` (a second
/// `v1=` while a rotated-out secret is still valid).
pub const SIGNATURE_HEADER: &str = "Openline-Signature";
/// How many deliveries one subscription gets in one turn before others get theirs.
const MAX_PER_TURN: usize = 500;
/// Subscriptions delivered concurrently by one node.
const CONCURRENCY: usize = 16;
/// The receiver's answer is read up to this many bytes, and this much of it is kept.
const MAX_RESPONSE_BYTES: usize = 16 * 1024;
const EXCERPT_BYTES: usize = 512;
/// Attempt records are kept this long.
const ATTEMPT_RETENTION_MS: i64 = 30 * 24 * 3600 * 1000;
/// After a secret rotation the previous secret keeps signing this long.
pub const ROTATION_GRACE_MS: i64 = 24 * 3600 * 1000;

/// `t=…,v1=…[,v1=…]` for `body` at unix time `t`, signed with each secret.
pub fn signature_header(secrets: &[&str], t: i64, body: &[u8]) -> String {
    let mut out = format!("t={t}");
    for secret in secrets {
        // HMAC accepts keys of any length, so this cannot fail.
        if let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
            mac.update(t.to_string().as_bytes());
            mac.update(b".");
            mac.update(body);
            out.push_str(",v1=");
            out.push_str(&hex::encode(mac.finalize().into_bytes()));
        }
    }
    out
}

/// Why a signature does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SignatureError {
    Malformed,
    /// The timestamp is further than the tolerance from now (a replay, or a clock far off).
    Stale,
    Mismatch,
}

/// What a receiver does (documented in the README): parse `t` and the `v1` values, refuse a `t`
/// more than `tolerance_secs` from now, and compare HMAC-SHA256(secret, "t.body") in constant time.
pub fn verify_signature(
    secret: &str,
    header: &str,
    body: &[u8],
    now_secs: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    let mut t = None;
    let mut sigs = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", v)) => t = v.parse::<i64>().ok(),
            Some(("v1", v)) => sigs.push(hex::decode(v).map_err(|_| SignatureError::Malformed)?),
            _ => {}
        }
    }
    let t = t.ok_or(SignatureError::Malformed)?;
    if sigs.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now_secs - t).abs() > tolerance_secs {
        return Err(SignatureError::Stale);
    }
    for sig in sigs {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map_err(|_| SignatureError::Malformed)?;
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        if mac.verify_slice(&sig).is_ok() {
            return Ok(());
        }
    }
    Err(SignatureError::Mismatch)
}

/// Addresses deliveries must not reach unless `allow_private`: loopback, private, link-local,
/// carrier-grade NAT, unspecified, multicast, broadcast and documentation ranges.
pub fn is_private_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || o[0] == 0
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || (o[0] == 198 && (18..20).contains(&o[1]))
                || o[0] >= 240
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private_address(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
                || first == 0x2001 && v6.segments()[1] == 0x0db8 // documentation
        }
    }
}

/// Resolves names for deliveries and refuses private addresses at that moment, so a name that
/// resolved to a public address when the subscription was created cannot be switched to an internal
/// one later (DNS rebinding).
struct GuardedResolver {
    allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if !allow_private {
                if let Some(bad) = addrs.iter().find(|a| is_private_address(a.ip())) {
                    return Err(format!("{host} resolves to the private address {}", bad.ip()).into());
                }
            }
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// The HTTP client for deliveries: timeouts, no redirects, no proxies, guarded name resolution.
pub fn delivery_client(cfg: &WebhooksConfig) -> anyhow::Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .timeout(Duration::from_millis(cfg.timeout_ms.max(1)))
        .connect_timeout(Duration::from_millis(cfg.timeout_ms.clamp(1, 10_000)))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .user_agent(concat!("openline-webhooks/", env!("CARGO_PKG_VERSION")))
        .dns_resolver(Arc::new(GuardedResolver {
            allow_private: cfg.allow_private,
        }))
        .build()?)
}

/// How long to wait before attempt `attempts + 1`: base·2^(attempts−1), capped, with "equal
/// jitter" (a random point in the upper half), so many failing subscriptions do not retry in step.
pub fn backoff_ms(cfg: &WebhooksConfig, attempts: i64) -> i64 {
    super::backoff_ms(attempts, cfg.backoff_base_ms, cfg.backoff_max_ms)
}

/// Runs until shutdown: finds due subscriptions and delivers for each in its own task; on shutdown
/// lets the deliveries in flight finish (each is bounded by the request timeout).
pub async fn run(st: AppState, mut shutdown: watch::Receiver<bool>) {
    let cfg = st.config.webhooks.clone();
    let client = match delivery_client(&cfg) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "outbound webhooks are off: cannot build the HTTP client");
            return;
        }
    };
    let owner = openline_domain::ids::new_id("node");
    let poll = Duration::from_millis(cfg.poll_ms.max(10));
    let mut running: JoinSet<String> = JoinSet::new();
    let mut busy: HashSet<String> = HashSet::new();
    let mut last_prune = 0i64;
    loop {
        if *shutdown.borrow() {
            break;
        }
        let now = st.now();
        match st
            .store
            .read(move |c| webhooks_out::due_with_work(c, now, 4 * CONCURRENCY as i64))
            .await
        {
            Ok(ids) => {
                for id in ids {
                    if busy.len() >= CONCURRENCY || busy.contains(&id) {
                        continue;
                    }
                    busy.insert(id.clone());
                    let (st, client, owner, stop) = (st.clone(), client.clone(), owner.clone(), shutdown.clone());
                    running.spawn(async move {
                        deliver_turn(&st, &client, &owner, &id, &stop).await;
                        id
                    });
                }
            }
            Err(e) => tracing::warn!(error = %e, "outbound webhooks: cannot read due subscriptions"),
        }
        if now - last_prune > 3600 * 1000 {
            last_prune = now;
            let before = now - ATTEMPT_RETENTION_MS;
            if let Err(e) = st.store.write(move |c| webhooks_out::prune_attempts(c, before)).await {
                tracing::warn!(error = %e, "outbound webhooks: cannot prune old attempts");
            }
        }
        tokio::select! {
            _ = shutdown.changed() => {}
            _ = tokio::time::sleep(poll) => {}
            Some(done) = running.join_next(), if !running.is_empty() => {
                if let Ok(id) = done { busy.remove(&id); }
            }
        }
        while let Some(done) = running.try_join_next() {
            if let Ok(id) = done {
                busy.remove(&id);
            }
        }
    }
    while running.join_next().await.is_some() {}
}

/// Delivers one subscription's due events in order until it is caught up, an attempt fails, the
/// turn's share is used or shutdown begins. Events are read in batches and their outcomes written in
/// batches (at most `FLUSH_EVERY` deliveries or one second apart, and at once after a failure), so
/// a fast receiver is not held back by a commit per event; should the node stop between a delivery
/// and its write, the event is delivered again (at-least-once), never lost.
async fn deliver_turn(st: &AppState, client: &reqwest::Client, owner: &str, id: &str, stop: &watch::Receiver<bool>) {
    if let Err(e) = deliver_batches(st, client, owner, id, stop).await {
        tracing::warn!(subscription_id = %id, error = %e, "outbound webhooks: delivery step failed");
    }
    let (id, owner) = (id.to_owned(), owner.to_owned());
    if let Err(e) = st.store.write(move |c| webhooks_out::release(c, &id, &owner)).await {
        tracing::warn!(error = %e, "outbound webhooks: cannot release a lease");
    }
}

/// Events read at once for one subscription.
const BATCH: i64 = 50;
/// Deliveries recorded in one write at most.
const FLUSH_EVERY: usize = 50;

/// One attempt, waiting to be written.
struct Outcome {
    org_id: String,
    seq: i64,
    event_id: String,
    event_type: String,
    attempt: i64,
    at: i64,
    sent: Sent,
    next_attempt_at: i64,
    park: bool,
}

async fn deliver_batches(
    st: &AppState,
    client: &reqwest::Client,
    owner: &str,
    id: &str,
    stop: &watch::Receiver<bool>,
) -> Result<(), openline_store::StoreError> {
    let cfg = &st.config.webhooks;
    let lease_ms = i64::try_from(cfg.timeout_ms)
        .unwrap_or(60_000)
        .saturating_mul(2)
        .saturating_add(30_000);
    let retry_ms = i64::try_from(cfg.retry_hours).unwrap_or(72).saturating_mul(3600 * 1000);
    let now = st.now();
    let (sid, own, key) = (id.to_owned(), owner.to_owned(), st.webhook_secrets_key.clone());
    let Some(target) = st
        .store
        .write(move |c| webhooks_out::claim(c, &key, &sid, &own, now + lease_ms, now))
        .await?
    else {
        return Ok(());
    };
    let mut head = target
        .head_event_id
        .clone()
        .map(|h| (h, target.head_attempts, target.head_failing_since));
    let mut delivered = 0usize;
    while delivered < MAX_PER_TURN && !*stop.borrow() {
        let t = target.clone();
        let (next, events) = st
            .store
            .read(move |c| {
                let next = webhooks_out::next_events(c, &t, BATCH)?;
                let events = next
                    .entries
                    .iter()
                    .map(|e| webhooks_out::build_event(c, e))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((next, events))
            })
            .await?;
        let mut skipped = next.skipped_to;
        if events.is_empty() {
            if !skipped.is_empty() {
                let sid = target.id.clone();
                st.store
                    .write(move |c| webhooks_out::advance_cursors(c, &sid, &skipped))
                    .await?;
            }
            return Ok(());
        }
        let mut pending: Vec<Outcome> = Vec::new();
        let mut last_flush = Instant::now();
        for (entry, event) in next.entries.iter().zip(events) {
            if *stop.borrow() {
                break;
            }
            let body = serde_json::to_vec(&event).map_err(|e| openline_store::StoreError::Decode(e.to_string()))?;
            let (attempt, failing_since) = match &head {
                Some((h, attempts, since)) if *h == event.id => (attempts + 1, *since),
                _ => (1, None),
            };
            let sent = post(st, client, &target, &event.id, &event.event_type, attempt, &body).await;
            let now = st.now();
            let park = !sent.delivered && now - failing_since.unwrap_or(now) >= retry_ms;
            if !sent.delivered {
                tracing::info!(subscription_id = %target.id, event_id = %event.id, attempt,
                    status = ?sent.http_status, error = ?sent.error, park, "outbound webhook attempt failed");
            }
            let failed = !sent.delivered;
            pending.push(Outcome {
                org_id: entry.org_id.clone(),
                seq: entry.seq,
                event_id: event.id,
                event_type: event.event_type,
                attempt,
                at: now,
                next_attempt_at: now + backoff_ms(cfg, attempt),
                park,
                sent,
            });
            if failed || pending.len() >= FLUSH_EVERY || last_flush.elapsed() >= Duration::from_secs(1) {
                let batch = std::mem::take(&mut pending);
                if !flush(
                    st,
                    &target.id,
                    owner,
                    std::mem::take(&mut skipped),
                    batch,
                    now + lease_ms,
                )
                .await?
                    || failed
                {
                    return Ok(());
                }
                last_flush = Instant::now();
            }
            head = None;
            delivered += 1;
        }
        if !pending.is_empty() && !flush(st, &target.id, owner, skipped, pending, st.now() + lease_ms).await? {
            return Ok(());
        }
    }
    Ok(())
}

/// Writes attempts (and the cursors they move) in one transaction. `false` if the subscription was
/// deleted, disabled or taken by another node meanwhile.
async fn flush(
    st: &AppState,
    subscription_id: &str,
    owner: &str,
    skipped: Vec<webhooks_out::Cursor>,
    outcomes: Vec<Outcome>,
    lease_until: i64,
) -> Result<bool, openline_store::StoreError> {
    let (sid, own) = (subscription_id.to_owned(), owner.to_owned());
    st.store
        .write(move |c| {
            let mut skipped = Some(skipped);
            for o in &outcomes {
                let ok = webhooks_out::record_attempt(
                    c,
                    &sid,
                    &own,
                    &skipped.take().unwrap_or_default(),
                    &AttemptResult {
                        event_id: &o.event_id,
                        event_type: &o.event_type,
                        org_id: &o.org_id,
                        seq: o.seq,
                        attempt: o.attempt,
                        at: o.at,
                        duration_ms: o.sent.duration_ms,
                        http_status: o.sent.http_status,
                        error: o.sent.error.as_deref(),
                        response_excerpt: o.sent.excerpt.as_deref(),
                        delivered: o.sent.delivered,
                        next_attempt_at: o.next_attempt_at,
                        park: o.park,
                        lease_until,
                    },
                )?;
                if !ok {
                    return Ok(false);
                }
            }
            Ok(true)
        })
        .await
}

struct Sent {
    delivered: bool,
    http_status: Option<i64>,
    error: Option<String>,
    excerpt: Option<String>,
    duration_ms: i64,
}

/// Posts one event and reads (a capped part of) the answer. Never panics, never follows redirects.
async fn post(
    st: &AppState,
    client: &reqwest::Client,
    target: &DeliveryTarget,
    event_id: &str,
    event_type: &str,
    attempt: i64,
    body: &[u8],
) -> Sent {
    let started = Instant::now();
    let elapsed = |s: Instant| i64::try_from(s.elapsed().as_millis()).unwrap_or(i64::MAX);
    let fail = |error: String, http_status: Option<i64>, excerpt: Option<String>| Sent {
        delivered: false,
        http_status,
        error: Some(error),
        excerpt,
        duration_ms: elapsed(started),
    };
    // An address written as an IP is not resolved, so the resolver's check does not see it.
    if !st.config.webhooks.allow_private {
        if let Ok(u) = url::Url::parse(&target.url) {
            let ip = match u.host() {
                Some(url::Host::Ipv4(a)) => Some(IpAddr::V4(a)),
                Some(url::Host::Ipv6(a)) => Some(IpAddr::V6(a)),
                _ => None,
            };
            if let Some(ip) = ip.filter(|ip| is_private_address(*ip)) {
                return fail(format!("refused: {ip} is a private address"), None, None);
            }
        }
    }
    let t = st.now().div_euclid(1000);
    let mut secrets = vec![target.secret.as_str()];
    if let Some(prev) = &target.previous_secret {
        secrets.push(prev.as_str());
    }
    let res = client
        .post(&target.url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .header(SIGNATURE_HEADER, signature_header(&secrets, t, body))
        .header("Openline-Event-Id", event_id)
        .header("Openline-Event-Type", event_type)
        .header("Openline-Delivery-Attempt", attempt.to_string())
        .header("Openline-Subscription-Id", &target.id)
        .body(body.to_vec())
        .send()
        .await;
    let mut res = match res {
        Ok(r) => r,
        Err(e) => return fail(describe(&e), None, None),
    };
    let status = res.status();
    let mut answer: Vec<u8> = Vec::new();
    let mut read_error = None;
    while answer.len() < MAX_RESPONSE_BYTES {
        match res.chunk().await {
            Ok(Some(chunk)) => answer.extend_from_slice(&chunk),
            Ok(None) => break,
            Err(e) => {
                read_error = Some(describe(&e));
                break;
            }
        }
    }
    answer.truncate(EXCERPT_BYTES);
    let excerpt = (!answer.is_empty()).then(|| String::from_utf8_lossy(&answer).into_owned());
    let code = Some(i64::from(status.as_u16()));
    if status.is_success() {
        if let Some(e) = read_error {
            // The receiver said yes; an answer cut short does not change that.
            tracing::debug!(error = %e, "outbound webhook answer could not be read completely");
        }
        return Sent {
            delivered: true,
            http_status: code,
            error: None,
            excerpt,
            duration_ms: elapsed(started),
        };
    }
    let error = if status.is_redirection() {
        format!("HTTP {status}: redirects are not followed; subscribe the final URL")
    } else {
        format!("HTTP {status}")
    };
    fail(error, code, excerpt)
}

/// A delivery error in words, without the URL's query (it may hold a receiver's token).
fn describe(e: &reqwest::Error) -> String {
    use std::error::Error;
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the answer could not be read"
    } else {
        "request failed"
    };
    let mut cause = String::new();
    let mut source = e.source();
    while let Some(s) = source {
        cause = s.to_string();
        source = s.source();
    }
    if cause.is_empty() {
        what.to_owned()
    } else {
        format!("{what}: {cause}")
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_signature_verifies_with_its_secret_only_and_only_while_fresh() {
        let body = br#"{"id":"org_1:7"}"#;
        let header = signature_header(&["whsec_a"], 1_700_000_000, body);
        assert_eq!(verify_signature("whsec_a", &header, body, 1_700_000_100, 300), Ok(()));
        assert_eq!(
            verify_signature("whsec_b", &header, body, 1_700_000_100, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature("whsec_a", &header, b"{}", 1_700_000_100, 300),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature("whsec_a", &header, body, 1_700_000_301, 300),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify_signature("whsec_a", "v1=zz", body, 1_700_000_000, 300),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn after_a_rotation_both_secrets_verify() {
        let header = signature_header(&["new", "old"], 10, b"x");
        assert_eq!(verify_signature("new", &header, b"x", 10, 300), Ok(()));
        assert_eq!(verify_signature("old", &header, b"x", 10, 300), Ok(()));
    }

    #[test]
    fn private_and_public_addresses_are_told_apart() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "::1",
            "fd00::1",
            "fe80::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_private_address(private.parse().unwrap()), "{private}");
        }
        for public in ["8.8.8.8", "1.1.1.1", "2a00:1450:4009:81f::200e", "::ffff:8.8.8.8"] {
            assert!(!is_private_address(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_up_to_the_cap() {
        let cfg = WebhooksConfig {
            backoff_base_ms: 1000,
            backoff_max_ms: 60_000,
            ..WebhooksConfig::default()
        };
        for _ in 0..50 {
            let first = backoff_ms(&cfg, 1);
            assert!((500..=1000).contains(&first), "{first}");
            let fourth = backoff_ms(&cfg, 4);
            assert!((4000..=8000).contains(&fourth), "{fourth}");
            let late = backoff_ms(&cfg, 30);
            assert!((30_000..=60_000).contains(&late), "{late}");
        }
    }
}
