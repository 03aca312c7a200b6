//! Twilio's webhook signature (`X-Twilio-Signature`): proof that a webhook came from Twilio and was
//! not altered.
//!
//! Twilio's algorithm: take the full URL it requested (scheme, host, path and query string, exactly
//! as configured), append every POST parameter sorted by name as `name` + `value` with no
//! separators, HMAC the result, and base64-encode the digest. Unlike Meta's scheme the signature is
//! over the *decoded* parameters, not the raw body, so a form body is parsed first
//! ([`super::parse_form`]) and nothing from it is trusted until this check passes.
//!
//! Which HMAC, and keyed with what, depends on the request:
//!
//! - By default: HMAC-SHA1 keyed with the account's auth token ([`verify_twilio_signature`]).
//! - When a Twilio *Webhook Setting* (Webhooks configuration API) signs with a *SharedKey*, the
//!   request carries `X-Twilio-Webhooks-Signature-Settings: key=KS…,algorithm=HMAC_SHA256`: the
//!   signed string is the same, but the key is the SharedKey's secret and the hash is the one the
//!   header names ([`SignatureSettings::parse`], [`verify_twilio_signature_with`]). The header only
//!   *selects* how to check; it proves nothing by itself, because the secret is ours: a forger who
//!   adds it still has to produce an HMAC under a key they do not have.
//! - JSON-bodied webhooks add a `bodySHA256` query parameter (hex SHA-256 of the raw body) to the
//!   URL; the signature then covers the URL alone (no parameters) and the body is checked against
//!   that hash, over the raw bytes ([`verify_twilio_body_signature`]).
//!
//! Repeated parameters (`MediaUrl` on a request, rare in webhooks) are sorted by name and then by
//! value, which is what Twilio's own helper libraries do for repeated keys.
//!
//! The URL is the one thing the receiver cannot read from the request reliably: behind a TLS
//! terminator or proxy the request line no longer says `https://public.host/…`. The caller passes
//! the public URL Twilio was configured with. Twilio's helpers also accept the URL with the
//! default port added or removed (`https://host:443/…` versus `https://host/…`), because Twilio
//! has signed both forms over the years; the verifiers here do the same. Every comparison is
//! constant-time.

use crate::SignatureError;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest as _, Sha256};

type HmacSha1 = Hmac<Sha1>;
type HmacSha256 = Hmac<Sha256>;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: &str = "x-twilio-signature";
/// The header Twilio adds when a Webhook Setting signs with a SharedKey instead of the auth token.
pub const SIGNATURE_SETTINGS_HEADER: &str = "x-twilio-webhooks-signature-settings";
/// The query parameter carrying the hex SHA-256 of a JSON webhook's body.
pub const BODY_SHA256_PARAM: &str = "bodySHA256";

/// The HMAC a signature was made with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignatureAlgorithm {
    /// Twilio's default, keyed with the auth token.
    HmacSha1,
    /// Offered by Webhook Settings signing with a SharedKey.
    HmacSha256,
}

impl SignatureAlgorithm {
    /// The digest length in bytes; a header that decodes to anything else cannot match.
    fn digest_len(self) -> usize {
        match self {
            Self::HmacSha1 => 20,
            Self::HmacSha256 => 32,
        }
    }

    /// Twilio's name for it (`HMAC_SHA1`, `HMAC_SHA256`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HmacSha1 => "HMAC_SHA1",
            Self::HmacSha256 => "HMAC_SHA256",
        }
    }

    /// Reads Twilio's name, case-insensitively and with `-` for `_` (`HMAC_SHA256`, `hmac-sha256`).
    pub fn parse(name: &str) -> Option<Self> {
        match name.trim().to_ascii_uppercase().replace('-', "_").as_str() {
            "HMAC_SHA1" => Some(Self::HmacSha1),
            "HMAC_SHA256" => Some(Self::HmacSha256),
            _ => None,
        }
    }
}

/// What `X-Twilio-Webhooks-Signature-Settings` says: which SharedKey signed the request (its
/// `KS…` SID, which lets a receiver holding several keys during a rotation pick the right one)
/// and with which algorithm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignatureSettings {
    pub key_sid: Option<String>,
    pub algorithm: SignatureAlgorithm,
}

impl SignatureSettings {
    /// Reads the header: comma-separated `name=value` pairs, names case-insensitive, unknown names
    /// ignored (Twilio may add some). `Malformed` when the algorithm is missing or is not one we
    /// can check, so a request never falls back to a weaker check than the one it announces.
    pub fn parse(header: &str) -> Result<Self, SignatureError> {
        let mut key_sid = None;
        let mut algorithm = None;
        for pair in header.split(',') {
            let Some((name, value)) = pair.split_once('=') else {
                continue;
            };
            let value = value.trim();
            match name.trim().to_ascii_lowercase().as_str() {
                "key" if !value.is_empty() => key_sid = Some(value.to_owned()),
                "algorithm" => algorithm = Some(SignatureAlgorithm::parse(value).ok_or(SignatureError::Malformed)?),
                _ => {}
            }
        }
        Ok(Self {
            key_sid,
            algorithm: algorithm.ok_or(SignatureError::Malformed)?,
        })
    }

    /// The header as Twilio writes it (for the simulator and tests).
    pub fn header_value(&self) -> String {
        format!(
            "key={},algorithm={}",
            self.key_sid.as_deref().unwrap_or_default(),
            self.algorithm.as_str()
        )
    }
}

/// Signs a webhook the way Twilio does by default: base64 of HMAC-SHA1(`auth_token`, `url` + the
/// sorted `name`+`value` pairs). Used by the simulator to send webhooks, and by tests.
pub fn sign_twilio(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    sign_twilio_with(SignatureAlgorithm::HmacSha1, auth_token, url, params)
}

/// Signs a webhook with the given algorithm and key (an auth token or a SharedKey secret).
pub fn sign_twilio_with(algorithm: SignatureAlgorithm, key: &str, url: &str, params: &[(String, String)]) -> String {
    BASE64.encode(twilio_digest(algorithm, key, url, params))
}

/// Signs a JSON-bodied webhook as Twilio does: returns the URL with `bodySHA256` added and the
/// signature over that URL alone.
pub fn sign_twilio_body(algorithm: SignatureAlgorithm, key: &str, url: &str, raw_body: &[u8]) -> (String, String) {
    let separator = if url.contains('?') { '&' } else { '?' };
    let signed_url = format!(
        "{url}{separator}{BODY_SHA256_PARAM}={}",
        hex::encode(Sha256::digest(raw_body))
    );
    let signature = sign_twilio_with(algorithm, key, &signed_url, &[]);
    (signed_url, signature)
}

/// Checks the `X-Twilio-Signature` header of a webhook signed the default way (HMAC-SHA1 under the
/// auth token) against the URL Twilio requested and the form parameters it sent (as returned by
/// [`super::parse_form`], in any order).
///
/// `Missing` for no (or a blank) header; `Malformed` for a header that is not base64 of a 20-byte
/// digest; `Mismatch` otherwise, including when `auth_token` is empty, because a signature keyed
/// with an empty token proves nothing (anyone can compute it). The comparison is constant-time.
pub fn verify_twilio_signature(
    auth_token: &str,
    url: &str,
    params: &[(String, String)],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    verify_twilio_signature_with(SignatureAlgorithm::HmacSha1, auth_token, url, params, header)
}

/// [`verify_twilio_signature`] with the algorithm and key chosen by the caller: HMAC-SHA256 (or
/// SHA1) under a SharedKey secret when `X-Twilio-Webhooks-Signature-Settings` says so.
pub fn verify_twilio_signature_with(
    algorithm: SignatureAlgorithm,
    key: &str,
    url: &str,
    params: &[(String, String)],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    let header = header
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .ok_or(SignatureError::Missing)?;
    let claimed = BASE64.decode(header).map_err(|_| SignatureError::Malformed)?;
    if claimed.len() != algorithm.digest_len() {
        return Err(SignatureError::Malformed);
    }
    if key.is_empty() {
        return Err(SignatureError::Mismatch);
    }
    let candidates = std::iter::once(url.to_owned()).chain(with_default_port_toggled(url));
    for candidate in candidates {
        if twilio_verify(algorithm, key, &candidate, params, &claimed) {
            return Ok(());
        }
    }
    Err(SignatureError::Mismatch)
}

/// Checks a JSON-bodied webhook: `url` is the URL Twilio requested, `bodySHA256` included; the
/// signature must cover that URL (with no parameters) and the hash must be the SHA-256 of the raw
/// bytes received. `Malformed` when the URL carries no (or no hex) `bodySHA256`.
pub fn verify_twilio_body_signature(
    algorithm: SignatureAlgorithm,
    key: &str,
    url: &str,
    raw_body: &[u8],
    header: Option<&str>,
) -> Result<(), SignatureError> {
    verify_twilio_signature_with(algorithm, key, url, &[], header)?;
    let claimed = body_sha256_param(url)
        .and_then(|h| hex::decode(h).ok())
        .filter(|h| h.len() == 32)
        .ok_or(SignatureError::Malformed)?;
    let actual = Sha256::digest(raw_body);
    if constant_time_eq(&claimed, &actual) {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The `bodySHA256` value of a URL's query string, if it has one.
pub fn body_sha256_param(url: &str) -> Option<&str> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or(query);
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| *name == BODY_SHA256_PARAM)
        .map(|(_, value)| value)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The signed string, fed to `update`: the URL, then the sorted `name` + `value` pairs.
fn feed(update: &mut dyn FnMut(&[u8]), url: &str, params: &[(String, String)]) {
    update(url.as_bytes());
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    for (name, value) in sorted {
        update(name.as_bytes());
        update(value.as_bytes());
    }
}

/// HMAC takes keys of any length, so building one cannot fail; the fallbacks exist only to satisfy
/// the types and are unreachable.
fn sha1_mac(key: &str) -> HmacSha1 {
    HmacSha1::new_from_slice(key.as_bytes()).unwrap_or_else(|_| HmacSha1::new(&Default::default()))
}

fn sha256_mac(key: &str) -> HmacSha256 {
    HmacSha256::new_from_slice(key.as_bytes()).unwrap_or_else(|_| HmacSha256::new(&Default::default()))
}

fn twilio_digest(algorithm: SignatureAlgorithm, key: &str, url: &str, params: &[(String, String)]) -> Vec<u8> {
    match algorithm {
        SignatureAlgorithm::HmacSha1 => {
            let mut mac = sha1_mac(key);
            feed(&mut |b: &[u8]| mac.update(b), url, params);
            mac.finalize().into_bytes().to_vec()
        }
        SignatureAlgorithm::HmacSha256 => {
            let mut mac = sha256_mac(key);
            feed(&mut |b: &[u8]| mac.update(b), url, params);
            mac.finalize().into_bytes().to_vec()
        }
    }
}

/// Constant-time check of `claimed` against the MAC of the signed string.
fn twilio_verify(
    algorithm: SignatureAlgorithm,
    key: &str,
    url: &str,
    params: &[(String, String)],
    claimed: &[u8],
) -> bool {
    match algorithm {
        SignatureAlgorithm::HmacSha1 => {
            let mut mac = sha1_mac(key);
            feed(&mut |b: &[u8]| mac.update(b), url, params);
            mac.verify_slice(claimed).is_ok()
        }
        SignatureAlgorithm::HmacSha256 => {
            let mut mac = sha256_mac(key);
            feed(&mut |b: &[u8]| mac.update(b), url, params);
            mac.verify_slice(claimed).is_ok()
        }
    }
}

/// `url` with its scheme's default port removed if it names one (`https://h:443/p` → `https://h/p`),
/// or added if it names none (`https://h/p` → `https://h:443/p`). `None` for URLs that are not
/// http(s), name another port, or cannot be read. String surgery rather than `url::Url`, which would
/// normalise other parts of the URL (percent-encoding, case) and so change what was signed.
fn with_default_port_toggled(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let default_port = match scheme.to_ascii_lowercase().as_str() {
        "https" => "443",
        "http" => "80",
        _ => return None,
    };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    // Credentials (`user:pass@host`) come before the host; the port is after the last `@`.
    let host_start = authority.rfind('@').map_or(0, |at| at + 1);
    let (userinfo, host_port) = authority.split_at(host_start);
    // An IPv6 literal (`[::1]:443`) has colons inside the brackets; the port follows `]`.
    let port_sep = match host_port.rfind(']') {
        Some(bracket) => host_port[bracket..].find(':').map(|i| bracket + i),
        None => host_port.rfind(':'),
    };
    let toggled_host = match port_sep {
        Some(sep) if &host_port[sep + 1..] == default_port => host_port[..sep].to_owned(),
        Some(_) => return None,
        None => format!("{host_port}:{default_port}"),
    };
    Some(format!("{scheme}://{userinfo}{toggled_host}{tail}"))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn the_default_port_is_added_or_removed_and_nothing_else_changes() {
        let toggled = |u: &str| with_default_port_toggled(u);
        assert_eq!(
            toggled("https://example.com/hook?a=1").as_deref(),
            Some("https://example.com:443/hook?a=1")
        );
        assert_eq!(
            toggled("https://example.com:443/hook").as_deref(),
            Some("https://example.com/hook")
        );
        assert_eq!(toggled("http://example.com").as_deref(), Some("http://example.com:80"));
        assert_eq!(
            toggled("https://u:p@example.com/x").as_deref(),
            Some("https://u:p@example.com:443/x")
        );
        assert_eq!(toggled("https://[::1]:443/x").as_deref(), Some("https://[::1]/x"));
        assert_eq!(toggled("https://[::1]/x").as_deref(), Some("https://[::1]:443/x"));
        assert_eq!(toggled("https://example.com:8443/x"), None);
        assert_eq!(toggled("ftp://example.com/x"), None);
        assert_eq!(toggled("not a url"), None);
    }

    #[test]
    fn a_header_that_is_not_a_base64_sha1_digest_is_malformed() {
        let params = vec![("A".to_owned(), "1".to_owned())];
        let sig = sign_twilio("token", "https://x.example/h", &params);
        assert_eq!(
            verify_twilio_signature("token", "https://x.example/h", &params, Some("not base64!")),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_twilio_signature("token", "https://x.example/h", &params, Some(&sig[..8])),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_twilio_signature("token", "https://x.example/h", &params, Some("  ")),
            Err(SignatureError::Missing)
        );
    }

    #[test]
    fn an_empty_auth_token_never_verifies_even_a_signature_made_with_it() {
        let sig = sign_twilio("", "https://x.example/h", &[]);
        assert_eq!(
            verify_twilio_signature("", "https://x.example/h", &[], Some(&sig)),
            Err(SignatureError::Mismatch)
        );
    }
}
