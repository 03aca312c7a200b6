//! Webhook signatures: proving that a webhook body really came from the provider.
//!
//! Meta signs every webhook with HMAC-SHA256 over the body *exactly as sent*, keyed with the app
//! secret, and puts `sha256=<hex>` in the `X-Hub-Signature-256` header. The body Meta sends is ASCII
//! with non-ASCII characters escaped as `\uXXXX`; parsing and re-serialising it would turn those into
//! raw UTF-8 and break the signature, so these functions only ever see the raw bytes. Verification
//! happens before parsing, so nothing unauthenticated reaches the parser.
//!
//! The comparison is constant-time (`hmac`'s `verify_slice`), so an attacker cannot learn the
//! expected signature byte by byte from response timings. Twilio's scheme (HMAC-SHA1 over the URL
//! and sorted form parameters) will live beside this one.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// The prefix Meta puts before the hex digest in `X-Hub-Signature-256`.
const META_PREFIX: &str = "sha256=";

/// Why a webhook signature was refused. The variants let the server log what went wrong without
/// logging the body or the secret; every one of them is answered with the same 401.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No signature header was sent.
    #[error("the webhook carries no signature header")]
    Missing,
    /// A header was sent but is not `sha256=` followed by 64 hex digits.
    #[error("the webhook signature header is malformed")]
    Malformed,
    /// The header is well formed but does not match the body under our secret.
    #[error("the webhook signature does not match its body")]
    Mismatch,
}

/// Signs a body the way Meta does: `sha256=` and the lowercase hex HMAC-SHA256 of `raw_body` under
/// `app_secret`. Used by the simulator to send webhooks and by tests.
pub fn sign_meta(app_secret: &[u8], raw_body: &[u8]) -> String {
    format!(
        "{META_PREFIX}{}",
        hex::encode(meta_mac(app_secret, raw_body).finalize().into_bytes())
    )
}

/// Checks the `X-Hub-Signature-256` header of a Meta webhook against the raw body received.
///
/// Accepts upper- or lower-case hex (and a case-insensitive `sha256=` prefix, which Meta never
/// varies but proxies have been seen to); anything else that is not 32 bytes of hex is `Malformed`.
pub fn verify_meta_signature(app_secret: &[u8], raw_body: &[u8], header: Option<&str>) -> Result<(), SignatureError> {
    let header = header
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .ok_or(SignatureError::Missing)?;
    let digest_hex = strip_prefix_ignore_case(header, META_PREFIX).ok_or(SignatureError::Malformed)?;
    // SHA-256 digests are 32 bytes; reject other lengths before touching the MAC.
    if digest_hex.len() != 64 {
        return Err(SignatureError::Malformed);
    }
    let claimed = hex::decode(digest_hex).map_err(|_| SignatureError::Malformed)?;
    meta_mac(app_secret, raw_body)
        .verify_slice(&claimed)
        .map_err(|_| SignatureError::Mismatch)
}

/// The keyed MAC over `raw_body`. HMAC accepts keys of any length, so building it cannot fail; the
/// fallback to an empty key exists only to satisfy the type and is unreachable.
fn meta_mac(app_secret: &[u8], raw_body: &[u8]) -> HmacSha256 {
    let mut mac = match HmacSha256::new_from_slice(app_secret) {
        Ok(mac) => mac,
        Err(_) => HmacSha256::new(&Default::default()),
    };
    mac.update(raw_body);
    mac
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn a_known_vector_matches_an_independent_hmac_implementation() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            sign_meta(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_truncated_digest_is_malformed_not_a_mismatch() {
        let sig = sign_meta(b"k", b"body");
        assert_eq!(
            verify_meta_signature(b"k", b"body", Some(&sig[..sig.len() - 2])),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_meta_signature(b"k", b"body", Some("   ")),
            Err(SignatureError::Missing)
        );
    }
}
