//! Webhook signatures: only the provider, holding our app secret, can produce a body we accept, and
//! the check runs over the bytes exactly as received.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openline_channels::{sign_meta, verify_meta_signature, SignatureError};

const SECRET: &[u8] = b"app-secret-from-meta";
const BODY: &[u8] = br#"{"object":"whatsapp_business_account","entry":[]}"#;

#[test]
fn a_body_signed_with_our_secret_verifies() {
    let header = sign_meta(SECRET, BODY);
    assert!(header.starts_with("sha256="));
    assert_eq!(header.len(), "sha256=".len() + 64);
    assert_eq!(header, header.to_lowercase());
    assert_eq!(verify_meta_signature(SECRET, BODY, Some(&header)), Ok(()));
}

#[test]
fn upper_case_hex_is_accepted() {
    let header = sign_meta(SECRET, BODY);
    let upper = format!("sha256={}", header["sha256=".len()..].to_uppercase());
    assert_eq!(verify_meta_signature(SECRET, BODY, Some(&upper)), Ok(()));
}

#[test]
fn a_body_signed_with_another_secret_is_a_mismatch() {
    let header = sign_meta(b"someone-else", BODY);
    assert_eq!(
        verify_meta_signature(SECRET, BODY, Some(&header)),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn one_tampered_byte_is_a_mismatch() {
    let header = sign_meta(SECRET, BODY);
    let mut tampered = BODY.to_vec();
    tampered[10] ^= 0x01;
    assert_eq!(
        verify_meta_signature(SECRET, &tampered, Some(&header)),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn a_missing_header_is_missing() {
    assert_eq!(verify_meta_signature(SECRET, BODY, None), Err(SignatureError::Missing));
    assert_eq!(
        verify_meta_signature(SECRET, BODY, Some("")),
        Err(SignatureError::Missing)
    );
}

#[test]
fn the_old_sha1_header_and_non_hex_digests_are_malformed() {
    // X-Hub-Signature (SHA-1) values are 40 hex digits after "sha1=": not what we verify.
    let sha1_style = format!("sha1={}", &sign_meta(SECRET, BODY)["sha256=".len()..][..40]);
    assert_eq!(
        verify_meta_signature(SECRET, BODY, Some(&sha1_style)),
        Err(SignatureError::Malformed)
    );
    let no_prefix = sign_meta(SECRET, BODY)["sha256=".len()..].to_owned();
    assert_eq!(
        verify_meta_signature(SECRET, BODY, Some(&no_prefix)),
        Err(SignatureError::Malformed)
    );
    let non_hex = format!("sha256={}", "zz".repeat(32));
    assert_eq!(
        verify_meta_signature(SECRET, BODY, Some(&non_hex)),
        Err(SignatureError::Malformed)
    );
    assert_eq!(
        verify_meta_signature(SECRET, BODY, Some("sha256=é")),
        Err(SignatureError::Malformed)
    );
}

#[test]
fn the_signature_covers_the_raw_escaped_bytes_not_a_reserialisation() {
    // Meta sends non-ASCII escaped, as here ("Lucía 👍"); the same JSON re-serialised by any JSON
    // library comes out as raw UTF-8, with different bytes and so a different MAC.
    let as_sent = br#"{"text":{"body":"Luc\u00eda \ud83d\udc4d"}}"#;
    let header = sign_meta(SECRET, as_sent);
    assert_eq!(verify_meta_signature(SECRET, as_sent, Some(&header)), Ok(()));

    let value: serde_json::Value = serde_json::from_slice(as_sent).unwrap();
    let reserialised = serde_json::to_vec(&value).unwrap();
    assert_eq!(value["text"]["body"], "Lucía \u{1f44d}");
    assert_ne!(reserialised.as_slice(), as_sent.as_slice());
    assert_eq!(
        verify_meta_signature(SECRET, &reserialised, Some(&header)),
        Err(SignatureError::Mismatch)
    );
}
