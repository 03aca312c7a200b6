//! Public, signed, expiring links to the files openline sends through Twilio.
//!
//! Twilio does not take uploads: a message's `MediaUrl` is a public URL that Twilio fetches when it
//! sends. openline serves each outgoing file at
//! `{public_url}/media/public/{media_id}?exp={unix seconds}&sig={hex}`, where `sig` is
//! HMAC-SHA256 over `{media_id}.{exp}` under a key derived from the Twilio auth token (every node of
//! a deployment has it, it is secret, and rotating it retires every link with it). The link carries
//! no session and needs no cookie; it is unguessable (the signature), bound to one file, and stops
//! working at `exp` ([`LINK_TTL_MS`] after the send). Only files users sent (direction `out`) are
//! served this way; what contacts sent is never public.
//!
//! Without a configured public URL, Twilio could not reach a link, so none is made and the API
//! refuses media for Twilio senders (`public_url_required`) instead of sending a URL that fails later.

use crate::config::Config;
use crate::error::AppError;
use crate::state::AppState;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::Response;
use hmac::{Hmac, Mac};
use openline_store::media::MediaState;
use openline_store::StoreError;
use sha2::Sha256;

/// How long a link works after it is made (when the message is handed to Twilio, which fetches
/// the file within seconds; the margin covers Twilio's own retries).
pub const LINK_TTL_MS: i64 = 60 * 60 * 1000;

/// The path prefix links live under.
pub const PUBLIC_MEDIA_PATH: &str = "/media/public";

type HmacSha256 = Hmac<Sha256>;

/// The key links are signed with, derived from the Twilio auth token; `None` without one.
fn link_key(config: &Config) -> Option<[u8; 32]> {
    let token = config.twilio.auth_token.expose();
    if token.trim().is_empty() {
        return None;
    }
    let mut mac = HmacSha256::new_from_slice(token.as_bytes()).ok()?;
    mac.update(b"openline public media links v1");
    Some(mac.finalize().into_bytes().into())
}

fn mac_for(key: &[u8; 32], media_id: &str, exp: i64) -> Option<HmacSha256> {
    let mut mac = HmacSha256::new_from_slice(key).ok()?;
    mac.update(media_id.as_bytes());
    mac.update(b".");
    mac.update(exp.to_string().as_bytes());
    Some(mac)
}

/// The public base URL Twilio can reach, if one is configured.
pub fn public_base(config: &Config) -> Option<&str> {
    config
        .public_url
        .as_deref()
        .map(|u| u.trim().trim_end_matches('/'))
        .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
}

/// Whether links can be made: a public URL and a key.
pub fn available(config: &Config) -> bool {
    public_base(config).is_some() && link_key(config).is_some()
}

/// A link to `media_id` that works until `now_ms + LINK_TTL_MS`; `None` when links cannot be made.
pub fn link(config: &Config, media_id: &str, now_ms: i64) -> Option<String> {
    let base = public_base(config)?;
    let key = link_key(config)?;
    let exp = (now_ms + LINK_TTL_MS).div_euclid(1000);
    let sig = hex::encode(mac_for(&key, media_id, exp)?.finalize().into_bytes());
    Some(format!("{base}{PUBLIC_MEDIA_PATH}/{media_id}?exp={exp}&sig={sig}"))
}

/// Why a link was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    /// Not signed by this server for this file (or damaged, or links are off).
    Invalid,
    /// Signed, but past its `exp`.
    Expired,
}

/// Checks a link's `exp` and `sig` for `media_id` at `now_ms`, in constant time.
pub fn check(config: &Config, media_id: &str, exp: &str, sig: &str, now_ms: i64) -> Result<(), LinkError> {
    let key = link_key(config).ok_or(LinkError::Invalid)?;
    let exp_value: i64 = exp.parse().map_err(|_| LinkError::Invalid)?;
    // Only the canonical spelling was signed (no `+1`, no leading zeros).
    if exp_value.to_string() != exp {
        return Err(LinkError::Invalid);
    }
    let sig = hex::decode(sig).map_err(|_| LinkError::Invalid)?;
    mac_for(&key, media_id, exp_value)
        .ok_or(LinkError::Invalid)?
        .verify_slice(&sig)
        .map_err(|_| LinkError::Invalid)?;
    if now_ms.div_euclid(1000) > exp_value {
        return Err(LinkError::Expired);
    }
    Ok(())
}

#[derive(Debug, serde::Deserialize)]
pub struct LinkQuery {
    exp: Option<String>,
    sig: Option<String>,
}

/// `GET /media/public/{media_id}?exp=…&sig=…`: the bytes of a file openline sends, for Twilio to
/// fetch. 403 `media_link_invalid` for a link this server did not sign (or for another file), 403
/// `media_link_expired` past its time; the signature is checked before anything is read.
pub async fn serve(
    State(st): State<AppState>,
    Path(media_id): Path<String>,
    Query(q): Query<LinkQuery>,
) -> Result<Response, AppError> {
    let (exp, sig) = (q.exp.unwrap_or_default(), q.sig.unwrap_or_default());
    match check(&st.config, &media_id, &exp, &sig, st.now()) {
        Ok(()) => {}
        Err(LinkError::Invalid) => {
            return Err(AppError::new(
                StatusCode::FORBIDDEN,
                "media_link_invalid",
                "This media link was not issued by openline for this file. Links are made when a message is sent; ask the sender to send it again.",
            ))
        }
        Err(LinkError::Expired) => {
            return Err(AppError::new(
                StatusCode::FORBIDDEN,
                "media_link_expired",
                "This media link has expired. Links work for an hour after a message is sent; send the file again for a new one.",
            ))
        }
    }
    let id = media_id.clone();
    let m = st
        .store
        .read(move |c| openline_store::media::get_any(c, &id))
        .await
        .map_err(|e| match e {
            StoreError::NotFound => AppError::not_found("media file"),
            other => other.into(),
        })?;
    let (true, MediaState::Stored, Some(path)) = (m.direction == "out", m.state, m.stored_path.as_deref()) else {
        return Err(AppError::not_found("media file"));
    };
    let (file, len) = st.blobs.open(path).await.map_err(AppError::internal)?;
    let content_type = m
        .content_type
        .clone()
        .unwrap_or_else(|| "application/octet-stream".into());
    let mut res = Response::new(axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(file)));
    let h = res.headers_mut();
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&content_type).unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream")),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; sandbox"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, no-store"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    Ok(res)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use crate::config::Secret;

    fn config(public_url: Option<&str>, token: &str) -> Config {
        let mut c = Config {
            public_url: public_url.map(str::to_owned),
            ..Config::default()
        };
        c.twilio.auth_token = Secret::new(token);
        c
    }

    fn parts(link: &str) -> (String, String, String) {
        let url = url::Url::parse(link).unwrap();
        let id = url.path().rsplit('/').next().unwrap().to_owned();
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        (id, q["exp"].clone(), q["sig"].clone())
    }

    #[test]
    fn a_link_works_for_its_file_until_it_expires_and_for_nothing_else() {
        let c = config(Some("https://openline.example.com/"), "token");
        let now = 1_700_000_000_000;
        let link = link(&c, "med_1", now).unwrap();
        assert!(
            link.starts_with("https://openline.example.com/media/public/med_1?exp="),
            "{link}"
        );
        let (id, exp, sig) = parts(&link);
        assert_eq!(check(&c, &id, &exp, &sig, now), Ok(()));
        assert_eq!(check(&c, &id, &exp, &sig, now + LINK_TTL_MS), Ok(()));
        assert_eq!(
            check(&c, &id, &exp, &sig, now + LINK_TTL_MS + 1000),
            Err(LinkError::Expired)
        );
        // Another file, a later expiry, a damaged signature, another server's key: refused.
        assert_eq!(check(&c, "med_2", &exp, &sig, now), Err(LinkError::Invalid));
        let later = (exp.parse::<i64>().unwrap() + 3600).to_string();
        assert_eq!(check(&c, &id, &later, &sig, now), Err(LinkError::Invalid));
        assert_eq!(check(&c, &id, &format!("0{exp}"), &sig, now), Err(LinkError::Invalid));
        let mut bad = sig.clone();
        bad.replace_range(0..1, if &sig[0..1] == "0" { "1" } else { "0" });
        assert_eq!(check(&c, &id, &exp, &bad, now), Err(LinkError::Invalid));
        assert_eq!(check(&c, &id, &exp, "zz", now), Err(LinkError::Invalid));
        assert_eq!(check(&c, &id, "", "", now), Err(LinkError::Invalid));
        let other = config(Some("https://openline.example.com"), "other-token");
        assert_eq!(check(&other, &id, &exp, &sig, now), Err(LinkError::Invalid));
    }

    #[test]
    fn without_a_public_url_or_a_token_no_link_is_made() {
        assert!(link(&config(None, "token"), "med_1", 0).is_none());
        assert!(!available(&config(None, "token")));
        assert!(link(&config(Some("https://x.example"), ""), "med_1", 0).is_none());
        assert!(!available(&config(Some("https://x.example"), " ")));
        assert!(available(&config(Some("https://x.example"), "t")));
        assert_eq!(
            check(&config(Some("https://x.example"), ""), "m", "1", "00", 0),
            Err(LinkError::Invalid)
        );
    }
}
