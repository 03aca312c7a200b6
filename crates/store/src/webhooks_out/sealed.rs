//! Outbound webhook signing secrets at rest: sealed with XChaCha20-Poly1305 (an AEAD) under the
//! server's secrets key, so a copy of the database (a backup, a replica, a support dump) does not
//! hand out the keys that sign deliveries to archives and CRMs.
//!
//! A sealed value is `sealed1:` and the hex of a random 24-byte nonce followed by the ciphertext and
//! its tag. The subscription's id is the associated data, so a sealed secret moved onto another row
//! does not open. XChaCha's 24-byte nonces are safe to draw at random for any number of seals.
//! Values without the prefix are plain text from before migration 0014; `seal_plaintext_secrets`
//! turns them into sealed ones at start-up.

use crate::sql::Conn;
use crate::{params, StoreError};
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};

const PREFIX: &str = "sealed1:";
const NONCE_LEN: usize = 24;

/// The key that seals webhook secrets: 32 random bytes, written as 64 hex digits. Its `Debug` never
/// shows it.
#[derive(Clone)]
pub struct SecretsKey([u8; 32]);

impl std::fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretsKey(<redacted>)")
    }
}

impl SecretsKey {
    /// A new random key.
    pub fn generate() -> Self {
        Self(XChaCha20Poly1305::generate_key(&mut OsRng).into())
    }

    /// A key from its 64 hex digits (surrounding whitespace ignored).
    pub fn from_hex(text: &str) -> Result<Self, String> {
        let bytes = hex::decode(text.trim()).map_err(|_| "the secrets key must be 64 hex digits".to_owned())?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| "the secrets key must be 64 hex digits (32 bytes)".to_owned())?;
        Ok(Self(key))
    }

    /// The key's 64 hex digits (to write it to its file).
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(&self.0.into())
    }
}

fn aad(subscription_id: &str) -> Vec<u8> {
    let mut a = b"openline webhook secret\0".to_vec();
    a.extend_from_slice(subscription_id.as_bytes());
    a
}

/// Whether a stored value is sealed (else it is plain text from before migration 0014).
pub fn is_sealed(stored: &str) -> bool {
    stored.starts_with(PREFIX)
}

/// Seals a subscription's secret for storage.
pub fn seal(key: &SecretsKey, subscription_id: &str, secret: &str) -> Result<String, StoreError> {
    let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
    let ct = key
        .cipher()
        .encrypt(
            &nonce,
            Payload {
                msg: secret.as_bytes(),
                aad: &aad(subscription_id),
            },
        )
        .map_err(|_| StoreError::Decode("sealing a webhook secret failed".into()))?;
    let mut out = nonce.to_vec();
    out.extend_from_slice(&ct);
    Ok(format!("{PREFIX}{}", hex::encode(out)))
}

/// Opens a sealed secret. Fails (without saying more) when the value was altered, belongs to
/// another subscription or was sealed under another key.
pub fn open(key: &SecretsKey, subscription_id: &str, stored: &str) -> Result<String, StoreError> {
    let wrong = || {
        StoreError::Decode(format!(
            "the signing secret of webhook subscription {subscription_id} does not open with this server's secrets key \
             (was the key changed, or do nodes use different keys?)"
        ))
    };
    let Some(hex_text) = stored.strip_prefix(PREFIX) else {
        return Err(wrong());
    };
    let bytes = hex::decode(hex_text).map_err(|_| wrong())?;
    if bytes.len() < NONCE_LEN {
        return Err(wrong());
    }
    let (nonce, ct) = bytes.split_at(NONCE_LEN);
    let plain = key
        .cipher()
        .decrypt(
            XNonce::from_slice(nonce),
            Payload {
                msg: ct,
                aad: &aad(subscription_id),
            },
        )
        .map_err(|_| wrong())?;
    String::from_utf8(plain).map_err(|_| wrong())
}

/// The hint admins see to tell secrets apart: an ellipsis and the secret's last four characters.
pub fn hint(secret: &str) -> String {
    let from = secret.char_indices().rev().nth(3).map_or(0, |(i, _)| i);
    format!("…{}", &secret[from..])
}

/// Seals every secret still stored in plain text (rows from before migration 0014), filling their
/// hints; returns how many subscriptions changed. Idempotent: sealed values are left alone. Not
/// journaled: it changes how a secret is kept, not the subscription.
pub fn seal_plaintext_secrets(c: &mut dyn Conn, key: &SecretsKey) -> Result<usize, StoreError> {
    let rows = c.query(
        "select id, secret, previous_secret from webhook_subscriptions
         where secret not like 'sealed1:%' or (previous_secret is not null and previous_secret not like 'sealed1:%')",
        &[],
    )?;
    let mut changed = 0;
    for r in &rows {
        let id = r.string(0)?;
        let secret = r.string(1)?;
        if !is_sealed(&secret) {
            let sealed = seal(key, &id, &secret)?;
            c.execute(
                "update webhook_subscriptions set secret = ?, secret_hint = ? where id = ?",
                params![&sealed, &hint(&secret), &id],
            )?;
        }
        if let Some(prev) = r.opt_string(2)?.filter(|p| !is_sealed(p)) {
            let sealed = seal(key, &id, &prev)?;
            c.execute(
                "update webhook_subscriptions set previous_secret = ? where id = ?",
                params![&sealed, &id],
            )?;
        }
        changed += 1;
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_with_its_key_and_its_subscription() {
        let key = SecretsKey::generate();
        let sealed = seal(&key, "whs_1", "whsec_abcdef").unwrap();
        assert!(is_sealed(&sealed));
        assert!(!sealed.contains("abcdef"));
        assert_eq!(open(&key, "whs_1", &sealed).unwrap(), "whsec_abcdef");
        assert!(open(&key, "whs_2", &sealed).is_err(), "moved to another row");
        assert!(open(&SecretsKey::generate(), "whs_1", &sealed).is_err(), "another key");
        let mut altered = sealed.clone();
        altered.pop();
        altered.push(if sealed.ends_with('0') { '1' } else { '0' });
        assert!(open(&key, "whs_1", &altered).is_err(), "altered");
        assert!(
            open(&key, "whs_1", "whsec_plain").is_err(),
            "plain text is not a sealed value"
        );
        assert_ne!(
            seal(&key, "whs_1", "whsec_abcdef").unwrap(),
            sealed,
            "fresh nonce each time"
        );
    }

    #[test]
    fn keys_are_64_hex_digits_and_never_shown() {
        let key = SecretsKey::generate();
        let again = SecretsKey::from_hex(&format!(" {}\n", key.to_hex())).unwrap();
        assert_eq!(again.to_hex(), key.to_hex());
        assert!(SecretsKey::from_hex("abcd").is_err());
        assert!(SecretsKey::from_hex(&"zz".repeat(32)).is_err());
        assert!(!format!("{key:?}").contains(&key.to_hex()));
        assert_eq!(hint("whsec_1234abcd"), "…abcd");
        assert_eq!(hint("ab"), "…ab");
    }
}
