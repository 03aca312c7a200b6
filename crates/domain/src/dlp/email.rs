//! E-mail addresses as people write them in messages (not the full RFC 5322 grammar: quoted local
//! parts and IP-literal domains are left out; nobody types them to a bank advisor).
//!
//! Rules, around each `@`:
//! - local part: letters and digits in any script, and `.` `_` `%` `+` `-`; leading dots are left out,
//!   and a local part ending in a dot or holding two dots in a row is no address;
//! - domain: at least two labels separated by dots, each 1–63 letters, digits (any script, for
//!   internationalised domains) or hyphens, not starting or ending with a hyphen; the last label (the
//!   top-level domain) has at least two letters and only letters;
//! - a trailing dot or hyphen after the domain is punctuation, not part of the address
//!   (`write to ana@example.com.`).

use std::ops::Range;

fn is_local(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '.' | '_' | '%' | '+' | '-')
}

fn is_domain(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '.' | '-')
}

fn valid_domain(domain: &str) -> bool {
    let labels: Vec<&str> = domain.split('.').collect();
    let label_ok = |l: &&str| (1..=63).contains(&l.chars().count()) && !l.starts_with('-') && !l.ends_with('-');
    let tld_ok = labels
        .last()
        .is_some_and(|t| t.chars().count() >= 2 && t.chars().all(char::is_alphabetic));
    labels.len() >= 2 && labels.iter().all(label_ok) && tld_ok
}

pub(super) fn find(text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(offset) = text.get(from..).and_then(|rest| rest.find('@')) {
        let at = from + offset;
        from = at + 1;
        let before = &text[..at];
        let local_len: usize = before
            .chars()
            .rev()
            .take_while(|&c| is_local(c))
            .map(char::len_utf8)
            .sum();
        let local = before[at - local_len..].trim_start_matches('.');
        let start = at - local.len();
        if local.is_empty() || local.ends_with('.') || local.contains("..") {
            continue;
        }
        let after = &text[at + 1..];
        let domain_len: usize = after.chars().take_while(|&c| is_domain(c)).map(char::len_utf8).sum();
        let domain = after[..domain_len].trim_end_matches(['.', '-']);
        if !valid_domain(domain) {
            continue;
        }
        let end = at + 1 + domain.len();
        out.push(start..end);
        from = end;
    }
    out
}
