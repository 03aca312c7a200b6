//! International bank account numbers (ISO 13616).
//!
//! Rules:
//! - two letters (the country), two digits (the check digits), then letters and digits, in upper or
//!   lower case (people type `de89 3704 …`);
//! - written compactly (`GB82WEST12345698765432`) or with single spaces between groups of four
//!   (`GB82 WEST 1234 5698 7654 32`); a space anywhere else ends the number;
//! - exactly the length the IBAN registry gives the country ([`registered_length`]: DE 22, GB 22,
//!   FR 27, NL 18, ES 24, IT 27, CH 21, BE 16, … 80-odd countries); for a country code not in the table,
//!   any length from 15 to 34, longest valid first, so a newly registered country is still caught;
//! - the mod-97 checksum is 1 (a wrong check digit or any single changed character fails);
//! - not glued to a letter or digit on either side.

use super::builtin::{ends_word, starts_word};
use std::ops::Range;

/// The IBAN length of a country, from the SWIFT IBAN registry.
pub(super) fn registered_length(country: [u8; 2]) -> Option<usize> {
    let n = match &country {
        b"NO" => 15,
        b"BE" => 16,
        b"DK" | b"FI" | b"FO" | b"GL" | b"NL" | b"SD" | b"FK" => 18,
        b"MK" | b"SI" => 19,
        b"AT" | b"BA" | b"EE" | b"KZ" | b"LT" | b"LU" | b"XK" | b"MN" => 20,
        b"CH" | b"HR" | b"LI" | b"LV" => 21,
        b"BG" | b"BH" | b"CR" | b"DE" | b"GB" | b"GE" | b"IE" | b"ME" | b"RS" | b"VA" => 22,
        b"AE" | b"GI" | b"IL" | b"IQ" | b"TL" | b"OM" | b"SO" => 23,
        b"AD" | b"CZ" | b"ES" | b"MD" | b"PK" | b"RO" | b"SA" | b"SE" | b"SK" | b"TN" | b"VG" => 24,
        b"LY" | b"PT" | b"ST" => 25,
        b"IS" | b"TR" => 26,
        b"BI" | b"DJ" | b"FR" | b"GR" | b"IT" | b"MC" | b"MR" | b"SM" => 27,
        b"AL" | b"AZ" | b"BY" | b"CY" | b"DO" | b"GT" | b"HU" | b"LB" | b"NI" | b"PL" | b"SV" => 28,
        b"BR" | b"EG" | b"PS" | b"QA" | b"UA" => 29,
        b"JO" | b"KW" | b"MU" | b"YE" => 30,
        b"MT" | b"SC" => 31,
        b"LC" => 32,
        b"RU" => 33,
        _ => return None,
    };
    Some(n)
}

/// The ISO 7064 mod-97-10 check: the first four characters moved to the end, letters read as 10–35,
/// the number modulo 97 is 1. `chars` are ASCII letters and digits.
pub(super) fn checksum_valid(chars: &[u8]) -> bool {
    if chars.len() < 5 {
        return false;
    }
    let mut remainder = 0u32;
    for &c in chars[4..].iter().chain(&chars[..4]) {
        remainder = match c {
            b'0'..=b'9' => (remainder * 10 + u32::from(c - b'0')) % 97,
            b'A'..=b'Z' => (remainder * 100 + u32::from(c - b'A' + 10)) % 97,
            b'a'..=b'z' => (remainder * 100 + u32::from(c - b'a' + 10)) % 97,
            _ => return false,
        };
    }
    remainder == 1
}

pub(super) fn find(text: &str) -> Vec<Range<usize>> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i + 4 <= b.len() {
        let head = b[i].is_ascii_alphabetic()
            && b[i + 1].is_ascii_alphabetic()
            && b[i + 2].is_ascii_digit()
            && b[i + 3].is_ascii_digit()
            && starts_word(text, i);
        match head.then(|| at(text, i)).flatten() {
            Some(end) => {
                out.push(i..end);
                i = end;
            }
            None => i += 1,
        }
    }
    out
}

/// The end of a valid IBAN starting at `start`, if there is one.
fn at(text: &str, start: usize) -> Option<usize> {
    let b = text.as_bytes();
    let country = [b[start].to_ascii_uppercase(), b[start + 1].to_ascii_uppercase()];
    let lengths: Vec<usize> = match registered_length(country) {
        Some(n) => vec![n],
        None => (15..=34).rev().collect(),
    };
    let longest = lengths.iter().copied().max().unwrap_or(34);
    // The characters of the number and the offset just after each.
    let mut chars = Vec::with_capacity(longest);
    let mut ends = Vec::with_capacity(longest);
    let mut p = start;
    while chars.len() < longest {
        if p < b.len() && b[p].is_ascii_alphanumeric() {
            chars.push(b[p]);
            p += 1;
            ends.push(p);
        } else if p + 1 < b.len() && b[p] == b' ' && chars.len() % 4 == 0 && b[p + 1].is_ascii_alphanumeric() {
            p += 1;
        } else {
            break;
        }
    }
    lengths.into_iter().find_map(|n| {
        let end = *ends.get(n.checked_sub(1)?)?;
        (ends_word(text, end) && checksum_valid(&chars[..n])).then_some(end)
    })
}
