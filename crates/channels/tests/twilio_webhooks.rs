//! Twilio webhooks as the server will receive them: the `X-Twilio-Signature` check (against
//! Twilio's own published vectors), form bodies, and classification into incoming messages and
//! status callbacks, including bodies from the internet that must never panic the parser.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openline_channels::twilio::signature::{
    body_sha256_param, sign_twilio_body, sign_twilio_with, verify_twilio_body_signature, verify_twilio_signature_with,
    SignatureAlgorithm, SignatureSettings,
};
use openline_channels::twilio::{
    classify, parse_form, sign_twilio, verify_twilio_signature, TwilioEvent, TwilioInbound, TwilioStatus,
    TwilioWebhookError,
};
use openline_channels::SignatureError;
use openline_domain::provider_errors::{explain_twilio_error, Retry};
use openline_domain::{Channel, DeliveryStatus, PhoneNumber};
use proptest::prelude::*;

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
}

// ---------------------------------------------------------------------------------------------
// Signatures

/// The worked example of Twilio's security documentation ("Validating requests",
/// twilio.com/docs/usage/security) and of its PHP helper's docs: auth token `12345`, this URL with
/// a query string, these five parameters. Checked independently with Python's `hmac`:
/// `base64(hmac.new(b"12345", url + "CallSidCA1234567890ABCDECaller+12349013030Digits1234From+12349013030To+18005551212", sha1))`.
const DOC_TOKEN: &str = "12345";
const DOC_URL: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";
const DOC_SIGNATURE: &str = "0/KCTR6DLpKmkAf8muzZqo1nDgQ=";

fn doc_params() -> Vec<(String, String)> {
    pairs(&[
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+12349013030"),
        ("Digits", "1234"),
        ("From", "+12349013030"),
        ("To", "+18005551212"),
    ])
}

#[test]
fn twilios_documented_example_signs_and_verifies() {
    assert_eq!(sign_twilio(DOC_TOKEN, DOC_URL, &doc_params()), DOC_SIGNATURE);
    assert_eq!(
        verify_twilio_signature(DOC_TOKEN, DOC_URL, &doc_params(), Some(DOC_SIGNATURE)),
        Ok(())
    );
}

#[test]
fn a_request_twilio_really_sent_verifies_including_its_empty_parameters() {
    // From twilio-ruby's request validator spec: a real inbound voice request with several empty
    // values, which still count in the signature (as `ToCity` followed by nothing).
    let params = pairs(&[
        ("ToState", "California"),
        ("CalledState", "California"),
        ("Direction", "inbound"),
        ("FromState", "CA"),
        ("AccountSid", "ACba8bc05eacf94afdae398e642c9cc32d"),
        ("Caller", "+14153595711"),
        ("CallerZip", "94108"),
        ("CallerCountry", "US"),
        ("From", "+14153595711"),
        ("FromCity", "SAN FRANCISCO"),
        ("CallerCity", "SAN FRANCISCO"),
        ("To", "+14157669926"),
        ("FromZip", "94108"),
        ("FromCountry", "US"),
        ("ToCity", ""),
        ("CallStatus", "ringing"),
        ("CalledCity", ""),
        ("CallerState", "CA"),
        ("CalledZip", ""),
        ("ToZip", ""),
        ("ToCountry", "US"),
        ("CallSid", "CA136d09cd59a3c0ec8dbff44da5c03f31"),
        ("CalledCountry", "US"),
        ("Called", "+14157669926"),
        ("ApiVersion", "2010-04-01"),
        ("ApplicationSid", "AP44efecad51364e80b133bb7c07eb8204"),
    ]);
    assert_eq!(
        verify_twilio_signature(
            "2bd9e9638872de601313dc77410d3b23",
            "http://twiliotests.heroku.com/validate/voice",
            &params,
            Some("oVb2kXoVy8GEfwBDjR8bk/ZZ6eA=")
        ),
        Ok(())
    );
}

#[test]
fn parameters_in_any_order_verify_because_they_are_sorted() {
    let mut shuffled = doc_params();
    shuffled.reverse();
    shuffled.swap(0, 2);
    assert_eq!(
        verify_twilio_signature(DOC_TOKEN, DOC_URL, &shuffled, Some(DOC_SIGNATURE)),
        Ok(())
    );
}

#[test]
fn a_signature_round_trips_through_the_form_body_twilio_would_send() {
    let body = b"MessageSid=SM1&Body=Caf%C3%A9+%26+cr%C3%A8me&From=whatsapp%3A%2B447700900004&MediaUrl0=https%3A%2F%2Fapi.twilio.com%2Fm%3Fa%3D1";
    let url = "https://openline.example/webhooks/twilio?sender=main";
    let params = parse_form(body).unwrap();
    let signature = sign_twilio("token", url, &params);
    assert_eq!(verify_twilio_signature("token", url, &params, Some(&signature)), Ok(()));
}

#[test]
fn the_wrong_token_a_changed_parameter_or_a_changed_url_is_a_mismatch() {
    let mismatch = Err(SignatureError::Mismatch);
    assert_eq!(
        verify_twilio_signature("54321", DOC_URL, &doc_params(), Some(DOC_SIGNATURE)),
        mismatch
    );
    let mut changed = doc_params();
    changed[2].1 = "9999".into();
    assert_eq!(
        verify_twilio_signature(DOC_TOKEN, DOC_URL, &changed, Some(DOC_SIGNATURE)),
        mismatch
    );
    let mut added = doc_params();
    added.push(("Extra".into(), "".into()));
    assert_eq!(
        verify_twilio_signature(DOC_TOKEN, DOC_URL, &added, Some(DOC_SIGNATURE)),
        mismatch
    );
    // The query string is part of what is signed.
    assert_eq!(
        verify_twilio_signature(
            DOC_TOKEN,
            "https://mycompany.com/myapp.php?foo=1&bar=3",
            &doc_params(),
            Some(DOC_SIGNATURE)
        ),
        mismatch
    );
    assert_eq!(
        verify_twilio_signature(
            DOC_TOKEN,
            "https://mycompany.com/myapp.php",
            &doc_params(),
            Some(DOC_SIGNATURE)
        ),
        mismatch
    );
}

#[test]
fn the_signed_string_joins_names_and_values_without_separators_exactly_as_twilio_defines_it() {
    // Twilio's scheme is `url + name + value + name + value…` with nothing between them, so two
    // parameter sets with the same concatenation share a signature. That is Twilio's definition,
    // not ours to fix: a separator would break every real signature. This pins it so nobody
    // "improves" it; a forger would still need Twilio to have signed the other set.
    let a = pairs(&[("A", "1B"), ("C", "2")]);
    let b = pairs(&[("A", "1"), ("BC", "2")]);
    let signature = sign_twilio("t", "https://x.example/h", &a);
    assert_eq!(sign_twilio("t", "https://x.example/h", &b), signature);
    // And the parameters are simply appended to the URL.
    assert_eq!(sign_twilio("t", "https://x.example/hA1BC2", &[]), signature);
}

#[test]
fn a_missing_or_blank_header_is_missing_and_garbage_is_malformed() {
    assert_eq!(
        verify_twilio_signature(DOC_TOKEN, DOC_URL, &doc_params(), None),
        Err(SignatureError::Missing)
    );
    assert_eq!(
        verify_twilio_signature(DOC_TOKEN, DOC_URL, &doc_params(), Some("")),
        Err(SignatureError::Missing)
    );
    assert_eq!(
        verify_twilio_signature(DOC_TOKEN, DOC_URL, &doc_params(), Some("sha256=abc")),
        Err(SignatureError::Malformed)
    );
}

#[test]
fn a_signature_over_the_url_with_or_without_the_default_port_verifies_either_way() {
    let with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
    let signature = sign_twilio(DOC_TOKEN, with_port, &doc_params());
    assert_eq!(
        verify_twilio_signature(DOC_TOKEN, DOC_URL, &doc_params(), Some(&signature)),
        Ok(())
    );
    assert_eq!(
        verify_twilio_signature(DOC_TOKEN, with_port, &doc_params(), Some(DOC_SIGNATURE)),
        Ok(())
    );
    // Another port is another URL.
    assert_eq!(
        verify_twilio_signature(
            DOC_TOKEN,
            "https://mycompany.com:8443/myapp.php?foo=1&bar=2",
            &doc_params(),
            Some(DOC_SIGNATURE)
        ),
        Err(SignatureError::Mismatch)
    );
}

/// The same documented request signed the SHA-256 way (a Webhook Setting with a SharedKey whose
/// secret is `12345`). Computed independently with Python's `hmac`:
/// `base64(hmac.new(b"12345", <the signed string above>, sha256))`.
const DOC_SIGNATURE_SHA256: &str = "Rmm4Vzj+Ky7JGoWXMCsZDZuHDszLr9xvdbvitrDr4/M=";

#[test]
fn hmac_sha256_signs_the_same_string_and_verifies_only_as_sha256() {
    let sha256 = SignatureAlgorithm::HmacSha256;
    assert_eq!(
        sign_twilio_with(sha256, DOC_TOKEN, DOC_URL, &doc_params()),
        DOC_SIGNATURE_SHA256
    );
    assert_eq!(
        verify_twilio_signature_with(sha256, DOC_TOKEN, DOC_URL, &doc_params(), Some(DOC_SIGNATURE_SHA256)),
        Ok(())
    );
    // Each algorithm's digest has its own length: one never passes for the other.
    assert_eq!(
        verify_twilio_signature_with(sha256, DOC_TOKEN, DOC_URL, &doc_params(), Some(DOC_SIGNATURE)),
        Err(SignatureError::Malformed)
    );
    assert_eq!(
        verify_twilio_signature(DOC_TOKEN, DOC_URL, &doc_params(), Some(DOC_SIGNATURE_SHA256)),
        Err(SignatureError::Malformed)
    );
    // A wrong key, a changed parameter or another URL is a mismatch, as with SHA-1.
    assert_eq!(
        verify_twilio_signature_with(sha256, "54321", DOC_URL, &doc_params(), Some(DOC_SIGNATURE_SHA256)),
        Err(SignatureError::Mismatch)
    );
    let mut changed = doc_params();
    changed[2].1 = "1235".into();
    assert_eq!(
        verify_twilio_signature_with(sha256, DOC_TOKEN, DOC_URL, &changed, Some(DOC_SIGNATURE_SHA256)),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify_twilio_signature_with(
            sha256,
            DOC_TOKEN,
            "https://mycompany.com/myapp.php?foo=1&bar=3",
            &doc_params(),
            Some(DOC_SIGNATURE_SHA256)
        ),
        Err(SignatureError::Mismatch)
    );
    // The default port may be added or removed, as for SHA-1.
    assert_eq!(
        verify_twilio_signature_with(
            sha256,
            DOC_TOKEN,
            "https://mycompany.com:443/myapp.php?foo=1&bar=2",
            &doc_params(),
            Some(DOC_SIGNATURE_SHA256)
        ),
        Ok(())
    );
    // An empty key proves nothing.
    let empty = sign_twilio_with(sha256, "", DOC_URL, &doc_params());
    assert_eq!(
        verify_twilio_signature_with(sha256, "", DOC_URL, &doc_params(), Some(&empty)),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn the_signature_settings_header_names_the_key_and_an_algorithm_we_can_check() {
    assert_eq!(
        SignatureSettings::parse("key=KS0123456789abcdef0123456789abcdef,algorithm=HMAC_SHA256"),
        Ok(SignatureSettings {
            key_sid: Some("KS0123456789abcdef0123456789abcdef".into()),
            algorithm: SignatureAlgorithm::HmacSha256,
        })
    );
    // Spaces, case and unknown fields do not matter; the key may be left out.
    assert_eq!(
        SignatureSettings::parse(" Algorithm = hmac_sha1 , version=2"),
        Ok(SignatureSettings {
            key_sid: None,
            algorithm: SignatureAlgorithm::HmacSha1,
        })
    );
    // No algorithm, or one we cannot check, is refused rather than checked some weaker way.
    for bad in [
        "key=KS1",
        "",
        "algorithm=HMAC_MD5",
        "algorithm=",
        "key=KS1,algorithm=RSA_SHA256",
    ] {
        assert_eq!(SignatureSettings::parse(bad), Err(SignatureError::Malformed), "{bad:?}");
    }
    let settings = SignatureSettings {
        key_sid: Some("KS1".into()),
        algorithm: SignatureAlgorithm::HmacSha256,
    };
    assert_eq!(SignatureSettings::parse(&settings.header_value()), Ok(settings));
}

/// Twilio's sample JSON webhook (twilio-samples/api-snippets,
/// `security/signature_validation_json`): this body, and the `bodySHA256` Twilio put in the URL.
const JSON_BODY: &str = r#"{"CallSid":"CA1234567890ABCDE","Caller":"+12349013030"}"#;
const JSON_URL: &str =
    "https://example.com/myapp?bodySHA256=5ccde7145dfb8f56479710896586cb9d5911809d83afbe34627818790db0aec9";

#[test]
fn a_json_body_is_checked_against_the_body_sha256_in_the_signed_url() {
    let sha1 = SignatureAlgorithm::HmacSha1;
    // Our signer puts the same hash in the URL as Twilio did for its sample.
    let (url, signature) = sign_twilio_body(sha1, DOC_TOKEN, "https://example.com/myapp", JSON_BODY.as_bytes());
    assert_eq!(url, JSON_URL);
    assert_eq!(
        body_sha256_param(&url),
        Some("5ccde7145dfb8f56479710896586cb9d5911809d83afbe34627818790db0aec9")
    );
    // Checked independently with Python's `hmac`: base64(hmac.new(b"12345", JSON_URL, sha1)).
    assert_eq!(signature, "hPXmLwIy3Fgqv1i9KPmH/HhQ6zo=");
    assert_eq!(
        verify_twilio_body_signature(sha1, DOC_TOKEN, JSON_URL, JSON_BODY.as_bytes(), Some(&signature)),
        Ok(())
    );
    // One changed byte of the body: the URL still verifies, the hash does not.
    let altered = JSON_BODY.replace("+1234", "+1999");
    assert_eq!(
        verify_twilio_body_signature(sha1, DOC_TOKEN, JSON_URL, altered.as_bytes(), Some(&signature)),
        Err(SignatureError::Mismatch)
    );
    // A forger who recomputes the hash must re-sign the URL, which needs the key.
    let (forged_url, _) = sign_twilio_body(sha1, DOC_TOKEN, "https://example.com/myapp", altered.as_bytes());
    assert_eq!(
        verify_twilio_body_signature(sha1, DOC_TOKEN, &forged_url, altered.as_bytes(), Some(&signature)),
        Err(SignatureError::Mismatch)
    );
    // No hash in the URL: nothing covers the body, so it is refused.
    let plain = sign_twilio_with(sha1, DOC_TOKEN, "https://example.com/myapp", &[]);
    assert_eq!(
        verify_twilio_body_signature(
            sha1,
            DOC_TOKEN,
            "https://example.com/myapp",
            JSON_BODY.as_bytes(),
            Some(&plain)
        ),
        Err(SignatureError::Malformed)
    );
    // And the SHA-256 variant of the same.
    let sha256 = SignatureAlgorithm::HmacSha256;
    let (url, signature) = sign_twilio_body(sha256, "shared", "https://example.com/myapp?x=1", JSON_BODY.as_bytes());
    assert!(url.starts_with("https://example.com/myapp?x=1&bodySHA256="), "{url}");
    assert_eq!(
        verify_twilio_body_signature(sha256, "shared", &url, JSON_BODY.as_bytes(), Some(&signature)),
        Ok(())
    );
    assert_eq!(
        verify_twilio_body_signature(sha1, "shared", &url, JSON_BODY.as_bytes(), Some(&signature)),
        Err(SignatureError::Malformed)
    );
}

// ---------------------------------------------------------------------------------------------
// Classification

fn inbound(params: &[(&str, &str)]) -> TwilioInbound {
    match classify(&pairs(params)).unwrap() {
        TwilioEvent::Inbound(inbound) => inbound,
        other => panic!("expected an incoming message, got {other:?}"),
    }
}

fn status(params: &[(&str, &str)]) -> TwilioStatus {
    match classify(&pairs(params)).unwrap() {
        TwilioEvent::Status(status) => status,
        other => panic!("expected a status, got {other:?}"),
    }
}

#[test]
fn an_inbound_sms_is_read_with_the_contacts_number() {
    let body = b"ToCountry=GB&ToState=&SmsMessageSid=SM11&NumMedia=0&ToCity=&FromZip=&SmsSid=SM11&FromState=&SmsStatus=received&FromCity=&Body=Yes+please&FromCountry=GB&To=%2B15550002000&ToZip=&NumSegments=1&MessageSid=SM11&AccountSid=AC123&From=%2B447700900004&ApiVersion=2010-04-01";
    let params = parse_form(body).unwrap();

    let message = match classify(&params).unwrap() {
        TwilioEvent::Inbound(m) => m,
        other => panic!("{other:?}"),
    };

    assert_eq!(message.message_sid, "SM11");
    assert_eq!(message.account_sid, "AC123");
    assert_eq!(message.channel, Channel::Sms);
    assert_eq!(message.from, "+447700900004");
    assert_eq!(message.to, "+15550002000");
    assert_eq!(message.phone, Some(PhoneNumber::parse("+447700900004").unwrap()));
    assert_eq!(message.body.as_deref(), Some("Yes please"));
    assert!(message.media.is_empty());
    assert_eq!(message.profile_name, None);
    assert_eq!(message.raw, params);
}

#[test]
fn an_inbound_whatsapp_button_reply_carries_its_payload_and_the_profile_name() {
    let message = inbound(&[
        ("SmsMessageSid", "SM22"),
        ("NumMedia", "0"),
        ("ProfileName", "Alice Example"),
        ("MessageType", "button"),
        ("SmsSid", "SM22"),
        ("WaId", "447700900004"),
        ("SmsStatus", "received"),
        ("Body", "Yes, keep me updated"),
        ("ButtonText", "Yes, keep me updated"),
        ("ButtonPayload", "consent_yes"),
        ("To", "whatsapp:+15550001000"),
        ("MessagingServiceSid", "MG1"),
        ("NumSegments", "1"),
        ("ReferralNumMedia", "0"),
        ("MessageSid", "SM22"),
        ("AccountSid", "AC123"),
        ("From", "whatsapp:+447700900004"),
        ("ApiVersion", "2010-04-01"),
    ]);

    assert_eq!(message.channel, Channel::Whatsapp);
    assert_eq!(message.from, "whatsapp:+447700900004");
    assert_eq!(message.phone, Some(PhoneNumber::parse("+447700900004").unwrap()));
    assert_eq!(message.profile_name.as_deref(), Some("Alice Example"));
    assert_eq!(message.button_payload.as_deref(), Some("consent_yes"));
    assert_eq!(message.messaging_service_sid.as_deref(), Some("MG1"));
}

#[test]
fn a_media_message_lists_its_media_with_content_types_and_no_empty_body() {
    let message = inbound(&[
        ("MessageSid", "MM33"),
        ("AccountSid", "AC123"),
        ("From", "whatsapp:+447700900004"),
        ("To", "whatsapp:+15550001000"),
        ("Body", ""),
        ("NumMedia", "1"),
        ("MediaContentType0", "image/jpeg"),
        (
            "MediaUrl0",
            "https://api.twilio.com/2010-04-01/Accounts/AC123/Messages/MM33/Media/ME1",
        ),
    ]);

    assert_eq!(message.body, None);
    assert_eq!(
        message.media,
        vec![(
            "https://api.twilio.com/2010-04-01/Accounts/AC123/Messages/MM33/Media/ME1".to_owned(),
            Some("image/jpeg".to_owned())
        )]
    );
}

#[test]
fn a_sender_that_is_not_a_phone_number_has_no_phone_but_keeps_its_address() {
    let message = inbound(&[("MessageSid", "SM44"), ("From", "ACME"), ("Body", "Your code is 1234")]);
    assert_eq!(
        (message.channel, message.phone, message.from.as_str()),
        (Channel::Sms, None, "ACME")
    );
}

#[test]
fn every_status_callback_maps_to_the_status_openline_tracks() {
    let expected = [
        ("queued", Some(DeliveryStatus::Accepted)),
        ("accepted", Some(DeliveryStatus::Accepted)),
        ("sending", None),
        ("sent", Some(DeliveryStatus::Sent)),
        ("delivered", Some(DeliveryStatus::Delivered)),
        ("read", Some(DeliveryStatus::Read)),
        ("undelivered", Some(DeliveryStatus::Failed)),
        ("failed", Some(DeliveryStatus::Failed)),
        ("scheduled", None),
        ("canceled", None),
        ("partially_delivered", None),
    ];
    for (word, mapped) in expected {
        let update = status(&[
            ("SmsSid", "SM55"),
            ("SmsStatus", word),
            ("MessageStatus", word),
            ("ChannelToAddress", "+44770090XXXX"),
            ("To", "whatsapp:+447700900004"),
            ("ChannelPrefix", "whatsapp"),
            ("MessageSid", "SM55"),
            ("AccountSid", "AC123"),
            ("From", "whatsapp:+15550001000"),
            ("ApiVersion", "2010-04-01"),
        ]);
        assert_eq!(update.status, mapped, "{word}");
        assert_eq!(update.status_text, word);
        assert_eq!(update.message_sid, "SM55");
        assert_eq!(update.to.as_deref(), Some("whatsapp:+447700900004"));
        assert_eq!(update.error_code, None);
    }
}

#[test]
fn every_status_in_twilios_spec_is_classified_as_a_status_or_an_incoming_state() {
    let spec: serde_json::Value = serde_json::from_slice(
        &std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../../shared/fixtures/twilio/twilio_api_v2010.json"),
        )
        .unwrap(),
    )
    .unwrap();
    let statuses = spec["components"]["schemas"]["message_enum_status"]["enum"]
        .as_array()
        .unwrap();
    assert!(statuses.len() >= 12);
    for word in statuses.iter().map(|s| s.as_str().unwrap()) {
        let result = classify(&pairs(&[("MessageSid", "SM1"), ("MessageStatus", word)]));
        match word {
            // The states of a message a contact sent us: not a status of ours, and with no body
            // this is neither event.
            "received" | "receiving" => assert_eq!(result, Err(TwilioWebhookError::Unrecognized)),
            _ => assert!(matches!(result, Ok(TwilioEvent::Status(_))), "{word}: {result:?}"),
        }
    }
}

#[test]
fn a_failed_whatsapp_message_outside_the_window_carries_63016_which_explains_itself() {
    let update = status(&[
        ("ErrorCode", "63016"),
        ("MessageSid", "SM66"),
        ("MessageStatus", "failed"),
        ("AccountSid", "AC123"),
        ("To", "whatsapp:+447700900004"),
        ("From", "whatsapp:+15550001000"),
    ]);
    assert_eq!(update.status, Some(DeliveryStatus::Failed));
    assert_eq!(update.error_code, Some(63016));
    let explanation = explain_twilio_error(update.error_code.unwrap());
    assert_eq!(explanation.retry, Retry::Permanent);
    assert!(explanation.explanation.contains("template"));
}

#[test]
fn an_inbound_with_message_status_received_is_still_an_incoming_message() {
    let message = inbound(&[
        ("MessageSid", "SM77"),
        ("MessageStatus", "received"),
        ("Body", "hi"),
        ("From", "+447700900004"),
    ]);
    assert_eq!(message.body.as_deref(), Some("hi"));
}

#[test]
fn a_body_that_names_no_message_is_refused_with_a_clear_error() {
    for garbage in [
        &b""[..],
        b"hello",
        b"Body=hi&From=%2B447700900004",
        b"MessageSid=&Body=hi",
    ] {
        let params = parse_form(garbage).unwrap();
        assert_eq!(classify(&params), Err(TwilioWebhookError::MissingMessageSid));
    }
    assert!(TwilioWebhookError::MissingMessageSid.to_string().contains("MessageSid"));
    assert_eq!(
        classify(&pairs(&[("MessageSid", "SM1"), ("AccountSid", "AC1")])),
        Err(TwilioWebhookError::Unrecognized)
    );
}

// ---------------------------------------------------------------------------------------------
// Whatever arrives, nothing panics

/// Names the parser looks for, and arbitrary ones.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop_oneof![
            Just("MessageSid"),
            Just("SmsSid"),
            Just("AccountSid"),
            Just("MessageStatus"),
            Just("Body"),
            Just("NumMedia"),
            Just("MediaUrl0"),
            Just("MediaUrl18446744073709551616"),
            Just("MediaContentType0"),
            Just("From"),
            Just("ErrorCode"),
            Just("ButtonPayload"),
        ]
        .prop_map(str::to_owned),
        ".{0,12}",
    ]
}

fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop_oneof![
            Just("whatsapp:+447700900004"),
            Just("whatsapp:"),
            Just("+"),
            Just("failed"),
            Just("received"),
            Just("99999999999999999999"),
            Just(""),
        ]
        .prop_map(str::to_owned),
        ".{0,24}",
    ]
}

proptest! {
    #[test]
    fn arbitrary_bytes_parse_or_are_refused_and_never_panic(body in prop::collection::vec(any::<u8>(), 0..256)) {
        if let Ok(params) = parse_form(&body) {
            let _ = classify(&params);
            let signature = sign_twilio("t", "https://x.example/h", &params);
            prop_assert_eq!(verify_twilio_signature("t", "https://x.example/h", &params, Some(&signature)), Ok(()));
        }
    }

    #[test]
    fn arbitrary_form_bodies_round_trip_and_classify_without_panicking(params in prop::collection::vec((name(), value()), 0..12)) {
        let body = serde_urlencoded::to_string(&params).unwrap();
        let parsed = parse_form(body.as_bytes()).unwrap();
        prop_assert_eq!(&parsed, &params);
        match classify(&parsed) {
            Ok(TwilioEvent::Inbound(m)) => prop_assert_eq!(m.raw, parsed),
            Ok(TwilioEvent::Status(s)) => prop_assert_eq!(s.raw, parsed),
            Err(_) => {}
        }
    }
}
