//! Phone numbers: international numbers, national numbers with a trunk prefix, and North American
//! numbers, written the ways people write them. Anything else with many digits (amounts, dates, order
//! numbers) is deliberately not a phone number.
//!
//! A *run* starts at `+`, `(` or a digit that is not glued to a letter, digit or `+`, and continues over
//! digit groups joined by at most one of space, `-`, `.`, `/`, with parentheses around a group
//! (`(555)`, `(0)`) allowed where they balance. The whole run is then one of (digits counted without
//! separators):
//! - **international**: starts with `+` and has 8–15 digits (E.164: `+44 20 7946 0958`,
//!   `+1-555-123-4567`, `+4915112345678`), or starts with `00` and has 8–15 digits after it;
//! - **national with a trunk prefix**: starts with `0` or `(0` and has 9–15 digits (`07700 900123`,
//!   `06 12 34 56 78`, `(030) 1234567`, `030/1234567`), all separators the same kind, except a space
//!   after a closing parenthesis and a `/` right after the area code. Nine, not eight, and one kind of
//!   separator: `01.02.2024` (8 digits) and `01.02.2024 12` (mixed) are dates;
//! - **North American**: groups of 3, 3 and 4 digits, optionally after a `1` group (`555-123-4567`,
//!   `(555) 123-4567`, `1 800 555 0199`), the area code starting 2–9 (none starts with 0 or 1), one
//!   kind of separator (the space after `(555)` aside). The exchange is not checked: people write
//!   fictional `555-123-4567` numbers, and masking one costs nothing.
//!
//! Not matched: national numbers without a trunk prefix outside North America (Spanish `612 345 678`,
//! Italian mobiles) unless written with their country code, and bare digits with no `+` or leading
//! `0` (`5551234567` reads as an account number as often as a phone number). A run is judged whole:
//! it is not searched for a phone number inside.

use super::builtin::{char_before, ends_word, starts_word};
use std::ops::Range;

/// A parsed run: its digit groups and what joined each to the previous one.
struct PhoneRun {
    end: usize,
    groups: Vec<Range<usize>>,
    /// For each group after the first: the separator before it (if any), and whether a `)` closed
    /// the group before it.
    joins: Vec<(Option<u8>, bool)>,
    plus: bool,
}

fn parse(text: &str, start: usize) -> Option<PhoneRun> {
    let b = text.as_bytes();
    let digit = |i: usize| i < b.len() && b[i].is_ascii_digit();
    let plus = b[start] == b'+';
    let mut p = start + usize::from(plus);
    let mut groups = Vec::new();
    let mut joins = Vec::new();
    let mut pending = None;
    let mut open = false;
    let mut end = p;
    loop {
        let mut q = p;
        let opens = q < b.len() && b[q] == b'(';
        if opens {
            if open {
                break;
            }
            q += 1;
        }
        let digits_start = q;
        while digit(q) {
            q += 1;
        }
        if q == digits_start {
            break;
        }
        let digits_end = q;
        let closes = (open || opens) && q < b.len() && b[q] == b')';
        if closes {
            q += 1;
        }
        open = (open || opens) && !closes;
        groups.push(digits_start..digits_end);
        if let Some(join) = pending.take() {
            joins.push(join);
        }
        end = q;
        let mut r = q;
        let sep = (r < b.len() && matches!(b[r], b' ' | b'-' | b'.' | b'/')).then(|| b[r]);
        if sep.is_some() {
            r += 1;
        }
        let next = digit(r) || (!open && r < b.len() && b[r] == b'(' && digit(r + 1));
        if !next {
            break;
        }
        pending = Some((sep, closes));
        p = r;
    }
    (!groups.is_empty() && !open).then_some(PhoneRun {
        end,
        groups,
        joins,
        plus,
    })
}

impl PhoneRun {
    fn digits(&self, text: &str) -> Vec<u8> {
        self.groups
            .iter()
            .flat_map(|g| text.as_bytes()[g.clone()].iter().map(|b| b - b'0'))
            .collect()
    }

    /// One kind of separator, ignoring a separator after `)` and, if `slash_after_area` allows it, a
    /// `/` after the first group.
    fn uniform(&self, slash_after_area: bool) -> bool {
        let exempt = |k: usize, sep: Option<u8>, after_paren: bool| {
            after_paren || (slash_after_area && k == 0 && sep == Some(b'/'))
        };
        let mut kinds = self
            .joins
            .iter()
            .enumerate()
            .filter(|&(k, &(sep, after_paren))| !exempt(k, sep, after_paren))
            .map(|(_, &(sep, _))| sep);
        match kinds.next() {
            None => true,
            Some(first) => first != Some(b'/') && kinds.all(|s| s == first),
        }
    }

    fn is_phone(&self, text: &str) -> bool {
        let digits = self.digits(text);
        let n = digits.len();
        if self.plus {
            return (8..=15).contains(&n);
        }
        if digits.starts_with(&[0, 0]) {
            return (8..=15).contains(&(n - 2));
        }
        if digits[0] == 0 {
            return (9..=15).contains(&n) && self.uniform(true);
        }
        let lens: Vec<usize> = self.groups.iter().map(|g| g.len()).collect();
        let area = match lens.as_slice() {
            [3, 3, 4] => 0,
            [1, 3, 3, 4] if digits[0] == 1 => 1,
            _ => return false,
        };
        (2..=9).contains(&digits[area]) && self.uniform(false)
    }
}

pub(super) fn find(text: &str) -> Vec<Range<usize>> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let next_digit = i + 1 < b.len() && b[i + 1].is_ascii_digit();
        let starts = match b[i] {
            b'+' | b'(' => next_digit,
            c => c.is_ascii_digit(),
        } && starts_word(text, i)
            && char_before(text, i) != Some('+');
        let run = if starts { parse(text, i) } else { None };
        match run {
            Some(run) => {
                if ends_word(text, run.end) && run.is_phone(text) {
                    out.push(i..run.end);
                }
                i = run.end.max(i + 1);
            }
            None => i += 1,
        }
    }
    out
}
