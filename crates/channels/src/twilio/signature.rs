//! Twilio's webhook signature (`X-Twilio-Signature`): proof that a form-encoded webhook came from
//! Twilio and was not altered.
//!
//! Twilio's algorithm: take the full URL it requested (scheme, host, path and query string, exactly
//! as configured), append every POST parameter sorted by name as `name` + `value` with no
//! separators, HMAC-SHA1 the result keyed with the account's auth token, and base64-encode the
//! digest. Unlike Meta's scheme the signature is over the *decoded* parameters, not the raw body, so
//! the body is parsed first ([`super::parse_form`]) and nothing from it is trusted until this check
//! passes.
//!
//! Repeated parameters (`MediaUrl` on a request, rare in webhooks) are sorted by name and then by
//! value, which is what Twilio's own helper libraries do for repeated keys.
//!
//! The URL is the one thing the receiver cannot read from the request reliably: behind a TLS
//! terminator or proxy the request line no longer says `https://public.host/…`. The caller passes
//! the public URL Twilio was configured with. Twilio's helpers also accept the URL with the
//! default port added or removed (`https://host:443/…` versus `https://host/…`), because Twilio
//! has signed both forms over the years; [`verify_twilio_signature`] does the same.
//!
//! Twilio's newer JSON-bodied webhooks (signed with a `bodySHA256` query parameter) are not handled
//! here: Messaging webhooks are form-encoded.

use crate::SignatureError;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;

type HmacSha1 = Hmac<Sha1>;

/// The length of a SHA-1 digest; a header that decodes to anything else cannot match.
const SHA1_LEN: usize = 20;

/// Signs a webhook the way Twilio does: base64 of HMAC-SHA1(`auth_token`, `url` + the sorted
/// `name`+`value` pairs). Used by the simulator to send webhooks, and by tests.
pub fn sign_twilio(auth_token: &str, url: &str, params: &[(String, String)]) -> String {
    BASE64.encode(twilio_mac(auth_token, url, params).finalize().into_bytes())
}

/// Checks the `X-Twilio-Signature` header of a webhook against the URL Twilio requested and the
/// form parameters it sent (as returned by [`super::parse_form`], in any order).
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
    let header = header
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .ok_or(SignatureError::Missing)?;
    let claimed = BASE64.decode(header).map_err(|_| SignatureError::Malformed)?;
    if claimed.len() != SHA1_LEN {
        return Err(SignatureError::Malformed);
    }
    if auth_token.is_empty() {
        return Err(SignatureError::Mismatch);
    }
    let candidates = std::iter::once(url.to_owned()).chain(with_default_port_toggled(url));
    for candidate in candidates {
        if twilio_mac(auth_token, &candidate, params)
            .verify_slice(&claimed)
            .is_ok()
        {
            return Ok(());
        }
    }
    Err(SignatureError::Mismatch)
}

/// The keyed MAC over the URL and sorted parameters. HMAC takes keys of any length, so building it
/// cannot fail; the fallback exists only to satisfy the type and is unreachable.
fn twilio_mac(auth_token: &str, url: &str, params: &[(String, String)]) -> HmacSha1 {
    let mut mac = match HmacSha1::new_from_slice(auth_token.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => HmacSha1::new(&Default::default()),
    };
    mac.update(url.as_bytes());
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    for (name, value) in sorted {
        mac.update(name.as_bytes());
        mac.update(value.as_bytes());
    }
    mac
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
