//! Identifiers shaped like Meta's: `wamid.` message ids, numeric media ids, hex conversation ids and
//! `A…` trace ids; and Twilio's `SM…` message SIDs. Unique per simulator run (ULID-based) so tests can key on them.

use base64::Engine;
use rand::Rng;

/// A message id like `wamid.HBgL…`: base64 of a unique value, as Meta's are.
pub fn message_id() -> String {
    let raw = format!("sim.{}", ulid::Ulid::new());
    format!("wamid.{}", base64::engine::general_purpose::STANDARD.encode(raw))
}

/// A Twilio message SID: `SM` and 32 lower-case hex digits.
pub fn twilio_message_sid() -> String {
    format!("SM{:032x}", ulid::Ulid::new().0)
}

/// A numeric media id like `1003383421387256`.
pub fn media_id() -> String {
    let n: u64 = rand::thread_rng().gen_range(1_000_000_000_000_000..10_000_000_000_000_000);
    n.to_string()
}

/// A numeric template id like `1689556908129832`.
pub fn template_id() -> String {
    media_id()
}

/// A 32-hex-digit billing conversation id.
pub fn conversation_id() -> String {
    format!("{:032x}", ulid::Ulid::new().0)
}

/// An `fbtrace_id` like `AXsgnV2Cm3ZMGF3dF_cfYIn`.
pub fn fbtrace_id() -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-";
    let mut rng = rand::thread_rng();
    let tail: String = (0..22)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect();
    format!("A{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_look_like_metas_and_do_not_repeat() {
        let a = message_id();
        assert!(a.starts_with("wamid."));
        assert_ne!(a, message_id());
        assert_eq!(media_id().len(), 16);
        assert_eq!(conversation_id().len(), 32);
        assert!(fbtrace_id().starts_with('A'));
        let sid = twilio_message_sid();
        assert_eq!(sid.len(), 34);
        assert!(sid.starts_with("SM") && sid[2..].bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(sid, twilio_message_sid());
    }
}
