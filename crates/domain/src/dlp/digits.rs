//! Payment card numbers and US social security numbers: both are digit groups joined by single spaces
//! or dashes, so they share one tokenizer.
//!
//! A *run* is a maximal sequence of ASCII digit groups where each pair of neighbours is joined by
//! exactly one space or dash (`4111 1111 1111 1111`, `078-05-1120`, `4111111111111111`). A detection is
//! a window of whole groups of a run: a group is never cut, so a 20-digit number never yields a card.
//!
//! **Payment cards** (rules in this order):
//! - 13 to 19 digits in a window of consecutive groups (any mix of single spaces and dashes between
//!   groups, including none: `4111111111111111`, `4111-1111-1111-1111`, Amex `3782 822463 10005`);
//! - the first digit is 2 to 6, the major industry identifiers of the card networks (Mastercard 2/5,
//!   Amex/Diners/JCB 3, Visa 4, Discover/UnionPay/Maestro 6). Numbers starting 0, 1, 7, 8 or 9 are
//!   account, order and phone numbers far more often than cards; requiring the network prefix halves
//!   the false positives of a Luhn check that alone passes one number in ten. No finer IIN table: it
//!   would miss new ranges;
//! - a valid Luhn check digit;
//! - not glued to a letter or digit on either side, and not preceded by `+` (a phone number);
//! - within a run, the leftmost window wins, then the longest, then the search goes on after it: in
//!   `4111 1111 1111 1111 12/25` the card is found and the expiry date left alone.
//!
//! **US social security numbers** `AAA-GG-SSSS`:
//! - three groups of 3, 2 and 4 digits joined by the same separator (two dashes or two spaces), not
//!   joined to further groups by that same separator (`1-078-05-1120` is not an SSN); or nine digits
//!   standing alone, not joined to any other group (`078051120`);
//! - not glued to a letter or digit, not preceded by `+`;
//! - area (AAA) not 000, 666 or 900–999; group (GG) not 00; serial (SSSS) not 0000, the numbers the
//!   Social Security Administration never issues.
//!
//!   Nine bare digits are matched although they are also many other things: an SSN typed without
//!   dashes ("my ssn is 078051120") is exactly what an advisor must not receive in the clear, and the
//!   validity rules and the overlap order (a valid card or IBAN wins) keep the noise down. An admin
//!   who finds it too eager uses a regex rule instead.

use super::builtin::{char_before, ends_word, starts_word};
use std::ops::Range;

/// A maximal sequence of digit groups joined by single spaces or dashes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Run {
    /// Byte ranges of the digit groups.
    pub groups: Vec<Range<usize>>,
    /// `joins[k]` is the separator between `groups[k]` and `groups[k + 1]`.
    pub joins: Vec<u8>,
    /// Whether a detection may start at the first group: nothing word-like or `+` just before it.
    pub open_start: bool,
    /// Whether a detection may end at the last group: nothing word-like just after it.
    pub open_end: bool,
}

impl Run {
    fn digits(&self, text: &str, window: Range<usize>) -> Vec<u8> {
        self.groups[window]
            .iter()
            .flat_map(|g| text.as_bytes()[g.clone()].iter().map(|b| b - b'0'))
            .collect()
    }

    fn span(&self, first: usize, last: usize) -> Range<usize> {
        self.groups[first].start..self.groups[last].end
    }

    fn may_start(&self, group: usize) -> bool {
        group > 0 || self.open_start
    }

    fn may_end(&self, group: usize) -> bool {
        group + 1 < self.groups.len() || self.open_end
    }
}

pub(super) fn runs(text: &str) -> Vec<Run> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() {
            i += 1;
            continue;
        }
        let open_start = starts_word(text, i) && char_before(text, i) != Some('+');
        let mut groups = Vec::new();
        let mut joins = Vec::new();
        loop {
            let start = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            groups.push(start..i);
            let joined = i + 1 < b.len() && matches!(b[i], b' ' | b'-') && b[i + 1].is_ascii_digit();
            if !joined {
                break;
            }
            joins.push(b[i]);
            i += 1;
        }
        out.push(Run {
            groups,
            joins,
            open_start,
            open_end: ends_word(text, i),
        });
    }
    out
}

/// Luhn: doubling every second digit from the right, the sum is a multiple of 10.
pub(super) fn luhn_valid(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            let d = u32::from(d);
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 {
                    doubled - 9
                } else {
                    doubled
                }
            } else {
                d
            }
        })
        .sum();
    // Not `is_multiple_of`: it is newer than the workspace's minimum Rust version.
    matches!(sum % 10, 0)
}

fn is_card(digits: &[u8]) -> bool {
    (13..=19).contains(&digits.len()) && (2..=6).contains(&digits[0]) && luhn_valid(digits)
}

pub(super) fn payment_cards(text: &str, runs: &[Run]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    for run in runs {
        let n = run.groups.len();
        let mut first = 0;
        while first < n {
            let found = run.may_start(first).then(|| longest_card(text, run, first)).flatten();
            match found {
                Some(last) => {
                    out.push(run.span(first, last));
                    first = last + 1;
                }
                None => first += 1,
            }
        }
    }
    out
}

/// The last group of the longest card starting at group `first`, if any.
fn longest_card(text: &str, run: &Run, first: usize) -> Option<usize> {
    let mut candidates = Vec::new();
    let mut count = 0;
    for last in first..run.groups.len() {
        count += run.groups[last].len();
        if count > 19 {
            break;
        }
        if count >= 13 && run.may_end(last) {
            candidates.push(last);
        }
    }
    candidates
        .into_iter()
        .rev()
        .find(|&last| is_card(&run.digits(text, first..last + 1)))
}

fn is_valid_ssn(digits: &[u8]) -> bool {
    let number = |r: Range<usize>| digits[r].iter().fold(0u32, |n, &d| n * 10 + u32::from(d));
    let (area, group, serial) = (number(0..3), number(3..5), number(5..9));
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

pub(super) fn us_ssns(text: &str, runs: &[Run]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    for run in runs {
        let n = run.groups.len();
        let len = |k: usize| run.groups[k].len();
        if n == 1 && len(0) == 9 && run.open_start && run.open_end {
            if is_valid_ssn(&run.digits(text, 0..1)) {
                out.push(run.span(0, 0));
            }
            continue;
        }
        for first in 0..n.saturating_sub(2) {
            let last = first + 2;
            let sep = run.joins[first];
            let shaped = (len(first), len(first + 1), len(last)) == (3, 2, 4) && run.joins[first + 1] == sep;
            let alone_before = if first == 0 {
                run.open_start
            } else {
                run.joins[first - 1] != sep
            };
            let alone_after = if last + 1 == n {
                run.open_end
            } else {
                run.joins[last] != sep
            };
            if shaped && alone_before && alone_after && is_valid_ssn(&run.digits(text, first..last + 1)) {
                out.push(run.span(first, last));
            }
        }
    }
    out
}
