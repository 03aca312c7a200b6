//! Table tests of the built-in detectors: what each finds in a sentence, and the near-misses it must
//! leave alone.

use super::builtin::detect;
use super::digits::luhn_valid;
use super::iban::checksum_valid;
use super::DetectorKind::{self, *};
use proptest::prelude::*;

/// The substrings of `text` that the built-in detector `kind` reports, overlaps settled.
fn found(kind: DetectorKind, text: &str) -> Vec<&str> {
    detect(text).of(kind).iter().map(|r| &text[r.clone()]).collect()
}

/// Each row: a sentence, and the one value the detector must find in it (`None`: nothing).
fn check(kind: DetectorKind, rows: &[(&str, Option<&str>)]) {
    for (text, expected) in rows {
        let expected: Vec<&str> = expected.iter().copied().collect();
        assert_eq!(found(kind, text), expected, "{kind} in {text:?}");
    }
}

#[test]
fn payment_cards_with_a_network_prefix_and_a_valid_luhn_digit_are_found() {
    check(
        PaymentCard,
        &[
            ("card 4111 1111 1111 1111 thanks", Some("4111 1111 1111 1111")),
            ("4111-1111-1111-1111", Some("4111-1111-1111-1111")),
            ("4111111111111111", Some("4111111111111111")),
            ("mastercard 5555 5555 5555 4444.", Some("5555 5555 5555 4444")),
            ("2-series 2223 0031 2200 3222", Some("2223 0031 2200 3222")),
            ("amex 3782 822463 10005", Some("3782 822463 10005")),
            ("discover 6011111111111117", Some("6011111111111117")),
            ("jcb 3530111333300000", Some("3530111333300000")),
            ("13-digit visa 4222222222222", Some("4222222222222")),
            ("19 digits 4000 0000 0000 0000 006", Some("4000 0000 0000 0000 006")),
            // The expiry date after it stays out; a reference before it too.
            ("4111 1111 1111 1111 12/25", Some("4111 1111 1111 1111")),
            ("ref 12 4111 1111 1111 1111", Some("4111 1111 1111 1111")),
            ("(4111 1111 1111 1111)", Some("4111 1111 1111 1111")),
        ],
    );
}

#[test]
fn numbers_that_only_look_like_cards_are_not_found() {
    check(
        PaymentCard,
        &[
            ("4111 1111 1111 1112", None),    // Luhn fails
            ("4111111111111112", None),       // Luhn fails
            ("1234 5678 1234 5670", None),    // Luhn passes, no card network starts with 1
            ("0000 0000 0000 0000", None),    // Luhn passes, prefix 0
            ("7992 7398 7130", None),         // 12 digits
            ("41111111111111111111", None),   // 20 digits in one group: never cut
            ("ID4111111111111111", None),     // glued to letters
            ("4111111111111111x", None),      // glued to letters
            ("+4111111111111111", None),      // a phone-number prefix
            ("4111  1111  1111  1111", None), // double spaces: four short numbers
            ("4111_1111_1111_1111", None),    // underscores are not separators
        ],
    );
}

#[test]
fn luhn_is_the_textbook_algorithm() {
    let digits = |s: &str| s.bytes().map(|b| b - b'0').collect::<Vec<u8>>();
    assert!(luhn_valid(&digits("79927398713")));
    assert!(!luhn_valid(&digits("79927398710")));
    assert!(luhn_valid(&digits("0")));
}

#[test]
fn ibans_with_their_countrys_length_and_a_valid_checksum_are_found() {
    check(
        Iban,
        &[
            (
                "pay to GB82 WEST 1234 5698 7654 32 please",
                Some("GB82 WEST 1234 5698 7654 32"),
            ),
            ("GB82WEST12345698765432", Some("GB82WEST12345698765432")),
            ("gb82 west 1234 5698 7654 32", Some("gb82 west 1234 5698 7654 32")),
            (
                "IBAN: DE89 3704 0044 0532 0130 00.",
                Some("DE89 3704 0044 0532 0130 00"),
            ),
            (
                "FR14 2004 1010 0505 0001 3M02 606",
                Some("FR14 2004 1010 0505 0001 3M02 606"),
            ),
            ("NL91ABNA0417164300", Some("NL91ABNA0417164300")),
            ("ES91 2100 0418 4502 0005 1332", Some("ES91 2100 0418 4502 0005 1332")),
            ("IT60X0542811101000000123456", Some("IT60X0542811101000000123456")),
            ("CH93 0076 2011 6238 5295 7", Some("CH93 0076 2011 6238 5295 7")),
            ("BE68 5390 0754 7034", Some("BE68 5390 0754 7034")),
            ("NO9386011117947", Some("NO9386011117947")),
        ],
    );
}

#[test]
fn ibans_with_a_wrong_checksum_length_or_spacing_are_not_found() {
    check(
        Iban,
        &[
            ("GB82 WEST 1234 5698 7654 33", None),  // checksum
            ("GB83 WEST 1234 5698 7654 32", None),  // check digits
            ("DE89 3704 0044 0532 0130 01", None),  // checksum
            ("GB82 WEST 1234 5698 7654 3", None),   // one short
            ("GB82 WEST 1234 5698 7654 321", None), // one long
            ("GB82 WES T123 4569 8765 432", None),  // space inside a group
            ("XGB82WEST12345698765432", None),      // glued to a letter
            ("NL91ABNA0417164300X", None),          // glued to a letter
            ("BE68 5390 0754 703", None),           // BE is 16 long
        ],
    );
}

#[test]
fn the_mod_97_check_is_iso_7064() {
    assert!(checksum_valid(b"GB82WEST12345698765432"));
    assert!(checksum_valid(b"gb82west12345698765432"));
    assert!(!checksum_valid(b"GB82WEST12345698765423"));
    assert!(!checksum_valid(b"GB82"));
}

#[test]
fn us_social_security_numbers_with_valid_parts_are_found() {
    check(
        UsSsn,
        &[
            ("my ssn is 078-05-1120.", Some("078-05-1120")),
            ("078 05 1120", Some("078 05 1120")),
            ("078051120", Some("078051120")),
            ("SSN:219-09-9999", Some("219-09-9999")),
            ("born 1990 078-05-1120", Some("078-05-1120")),
            ("899-99-9999", Some("899-99-9999")),
        ],
    );
}

#[test]
fn numbers_the_ssa_never_issues_or_oddly_shaped_are_not_ssns() {
    check(
        UsSsn,
        &[
            ("000-12-3456", None),   // area 000
            ("666-12-3456", None),   // area 666
            ("900-12-3456", None),   // area 9xx
            ("999-12-3456", None),   // area 9xx
            ("078-00-1120", None),   // group 00
            ("078-05-0000", None),   // serial 0000
            ("000123456", None),     // area 000, bare
            ("1-078-05-1120", None), // part of a longer dashed number
            ("078-05-1120-9", None), // part of a longer dashed number
            ("078-05-11201", None),  // serial of five digits
            ("078-05 1120", None),   // mixed separators
            ("0780511201", None),    // ten digits
            ("078051120 5", None),   // nine digits joined to more
            ("a078-05-1120", None),  // glued to a letter
            ("+078051120", None),    // a phone-number prefix
        ],
    );
}

#[test]
fn email_addresses_are_found_without_trailing_punctuation() {
    check(
        Email,
        &[
            (
                "write to ana.lopez+bank@example.co.uk today",
                Some("ana.lopez+bank@example.co.uk"),
            ),
            ("write to ana@example.com.", Some("ana@example.com")),
            ("(ana@example.com)", Some("ana@example.com")),
            ("josé@exemple.fr", Some("josé@exemple.fr")),
            ("x_y-z%1@sub-domain.example.org", Some("x_y-z%1@sub-domain.example.org")),
            ("..ana@example.com", Some("ana@example.com")),
            ("ana@example.com-", Some("ana@example.com")),
        ],
    );
    check(
        Email,
        &[
            ("x@localhost", None),
            ("ana@example.c", None),
            ("ana@example.123", None),
            ("@example.com", None),
            ("ana@", None),
            ("ana..b@example.com", None),
            ("ana.@example.com", None),
            ("ana@-example.com", None),
            ("ana@example..com", None),
            ("meet @ 10", None),
        ],
    );
}

#[test]
fn phone_numbers_in_international_and_common_national_formats_are_found() {
    check(
        Phone,
        &[
            ("call +44 20 7946 0958 today", Some("+44 20 7946 0958")),
            ("+4915112345678", Some("+4915112345678")),
            ("+1-555-123-4567", Some("+1-555-123-4567")),
            ("+44 (0)20 7946 0958", Some("+44 (0)20 7946 0958")),
            ("+33 6 12 34 56 78", Some("+33 6 12 34 56 78")),
            ("0044 20 7946 0958", Some("0044 20 7946 0958")),
            ("07700 900123", Some("07700 900123")),
            ("06 12 34 56 78", Some("06 12 34 56 78")),
            ("06.12.34.56.78", Some("06.12.34.56.78")),
            ("(030) 1234567", Some("(030) 1234567")),
            ("030/1234567", Some("030/1234567")),
            ("555-123-4567", Some("555-123-4567")),
            ("(555) 123-4567", Some("(555) 123-4567")),
            ("555.123.4567", Some("555.123.4567")),
            ("1 800 555 0199", Some("1 800 555 0199")),
            ("tel:+4915112345678.", Some("+4915112345678")),
        ],
    );
}

#[test]
fn amounts_dates_and_other_digits_are_not_phone_numbers() {
    check(
        Phone,
        &[
            ("+49 1234", None),          // 6 digits
            ("+1234567890123456", None), // 16 digits
            ("12345678", None),          // bare, no + or 0
            ("5551234567", None),        // bare, no + or 0
            ("2024-01-15", None),        // a date
            ("01.02.2024", None),        // a date (8 digits)
            ("01.02.2024 12:30", None),  // a date and time (mixed separators)
            ("01/02/2024 12:30", None),  // a date and time (a second slash)
            ("155-123-4567", None),      // area code starts with 1
            ("555-123 4567", None),      // mixed separators
            ("0612 345-678", None),      // mixed separators
            ("a+4915112345678", None),   // glued to a letter
            ("+4915112345678x", None),   // glued to a letter
            ("(555 123-4567", None),     // unbalanced parenthesis
            ("1,000,000.00", None),      // an amount
            ("612 345 678", None),       // no country code, no trunk prefix
        ],
    );
}

#[test]
fn the_more_specific_detector_wins_an_overlap() {
    // A valid IBAN whose digits hold a valid card number: it is an IBAN, not a card.
    let iban = "DE89 4111 1111 1111 1111 11";
    assert_eq!(found(Iban, iban), vec![iban]);
    assert!(found(PaymentCard, iban).is_empty());
    assert!(found(Phone, iban).is_empty());
    // An SSN is also a national phone number shape (starts with 0): it is an SSN.
    assert_eq!(found(UsSsn, "078-05-1120"), vec!["078-05-1120"]);
    assert!(found(Phone, "078-05-1120").is_empty());
    // An international number in an IBAN's digits is not a phone number.
    let text = "DE89 3704 0044 0532 0130 00";
    for kind in [PaymentCard, UsSsn, Phone, Email] {
        assert!(found(kind, text).is_empty(), "{kind}");
    }
    // E-mail stands apart: an address made of a phone number is reported as both.
    let text = "+4915112345678@example.com";
    assert_eq!(found(Email, text), vec!["+4915112345678@example.com"]);
    assert_eq!(found(Phone, text), vec!["+4915112345678"]);
}

#[test]
fn several_values_in_one_message_are_each_found() {
    let text = "Card 4111 1111 1111 1111, IBAN GB82 WEST 1234 5698 7654 32, SSN 078-05-1120, \
                mail ana@example.com, phone +44 20 7946 0958, again 5555555555554444.";
    let d = detect(text);
    let get = |k| d.of(k).iter().map(|r| &text[r.clone()]).collect::<Vec<_>>();
    assert_eq!(get(PaymentCard), vec!["4111 1111 1111 1111", "5555555555554444"]);
    assert_eq!(get(Iban), vec!["GB82 WEST 1234 5698 7654 32"]);
    assert_eq!(get(UsSsn), vec!["078-05-1120"]);
    assert_eq!(get(Email), vec!["ana@example.com"]);
    assert_eq!(get(Phone), vec!["+44 20 7946 0958"]);
}

fn luhn_check_digit(payload: &[u8]) -> u8 {
    (0..10).find(|d| luhn_valid(&[payload, &[*d]].concat())).unwrap_or(0)
}

proptest! {
    /// Any Visa-prefixed number with its Luhn digit is found, grouped or not; any other last digit is not.
    #[test]
    fn every_luhn_valid_card_is_found_and_every_other_last_digit_is_not(
        rest in proptest::collection::vec(0u8..10, 14), wrong in 1u8..10, grouped: bool,
    ) {
        let payload = [&[4u8][..], &rest].concat();
        let check = luhn_check_digit(&payload);
        let write = |last: u8| {
            let digits: String = payload.iter().chain(&[last]).map(|d| char::from(b'0' + d)).collect();
            if grouped {
                digits.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join(" ")
            } else {
                digits
            }
        };
        let good = write(check);
        let good_text = format!("pay {good} now");
        prop_assert_eq!(found(PaymentCard, &good_text), vec![good.as_str()]);
        let bad = write((check + wrong) % 10);
        let bad_text = format!("pay {bad} now");
        prop_assert!(found(PaymentCard, &bad_text).is_empty());
    }

    /// Any German IBAN with its check digits is found; changing any one character breaks it.
    #[test]
    fn every_valid_iban_is_found_and_any_single_change_is_not(
        bban in proptest::collection::vec(0u8..10, 18), position in 4usize..22, delta in 1u8..10,
    ) {
        let bban: String = bban.iter().map(|d| char::from(b'0' + d)).collect();
        let check = (0..100).find(|c| checksum_valid(format!("DE{c:02}{bban}").as_bytes())).unwrap_or(0);
        let iban = format!("DE{check:02}{bban}");
        prop_assert_eq!(found(Iban, &iban), vec![iban.as_str()]);
        let mut changed = iban.clone().into_bytes();
        changed[position] = b'0' + (changed[position] - b'0' + delta) % 10;
        let changed = String::from_utf8_lossy(&changed).into_owned();
        prop_assert!(found(Iban, &changed).is_empty());
    }
}
