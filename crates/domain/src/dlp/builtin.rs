//! The built-in detectors, run together so overlaps are settled once: one number is one thing.
//!
//! A string of digits can look like several things at once: the digits of an IBAN can form a valid
//! card number or a phone number, an SSN `078-05-1120` is also a national phone number. The more
//! specific reading wins, whether or not a rule asks for it: **IBAN > payment card > US SSN > phone**
//! (the order of how much structure each checks). A detection overlapping one of a more specific kind
//! is dropped. E-mail addresses stand apart (an address is recognised by its `@`, not by digits) and
//! are reported beside whatever they contain.
//!
//! Everything here works on byte offsets of ASCII characters (digits, letters, separators), so every
//! span starts and ends on a character boundary whatever text surrounds it.

use super::{digits, email, iban, phone, DetectorKind};
use std::ops::Range;

/// Every built-in detection in one text, overlaps settled.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct Detections {
    pub iban: Vec<Range<usize>>,
    pub payment_card: Vec<Range<usize>>,
    pub us_ssn: Vec<Range<usize>>,
    pub email: Vec<Range<usize>>,
    pub phone: Vec<Range<usize>>,
}

impl Detections {
    /// The spans of one built-in kind (none for regex and keyword rules).
    pub fn of(&self, kind: DetectorKind) -> &[Range<usize>] {
        match kind {
            DetectorKind::Iban => &self.iban,
            DetectorKind::PaymentCard => &self.payment_card,
            DetectorKind::UsSsn => &self.us_ssn,
            DetectorKind::Email => &self.email,
            DetectorKind::Phone => &self.phone,
            DetectorKind::Regex | DetectorKind::Keywords => &[],
        }
    }
}

pub(super) fn detect(text: &str) -> Detections {
    let iban = iban::find(text);
    let runs = digits::runs(text);
    let mut taken = iban.clone();
    let payment_card = keep_free(digits::payment_cards(text, &runs), &mut taken);
    let us_ssn = keep_free(digits::us_ssns(text, &runs), &mut taken);
    let phone = keep_free(phone::find(text), &mut taken);
    Detections {
        iban,
        payment_card,
        us_ssn,
        email: email::find(text),
        phone,
    }
}

/// The spans of `found` that overlap nothing in `taken`, which they then join.
fn keep_free(found: Vec<Range<usize>>, taken: &mut Vec<Range<usize>>) -> Vec<Range<usize>> {
    let kept: Vec<Range<usize>> = found
        .into_iter()
        .filter(|f| !taken.iter().any(|t| f.start < t.end && t.start < f.end))
        .collect();
    taken.extend(kept.iter().cloned());
    kept
}

/// Whether `c` continues a word: a letter, a digit (in any script) or `_`. Detections never start or
/// end glued to one.
pub(super) fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

/// The character just before byte offset `i`.
pub(super) fn char_before(text: &str, i: usize) -> Option<char> {
    text.get(..i).and_then(|s| s.chars().next_back())
}

/// The character at byte offset `i`.
pub(super) fn char_at(text: &str, i: usize) -> Option<char> {
    text.get(i..).and_then(|s| s.chars().next())
}

/// Whether a detection may start at `i` (nothing word-like just before).
pub(super) fn starts_word(text: &str, i: usize) -> bool {
    !char_before(text, i).is_some_and(is_word)
}

/// Whether a detection may end at `i` (nothing word-like just after).
pub(super) fn ends_word(text: &str, i: usize) -> bool {
    !char_at(text, i).is_some_and(is_word)
}
