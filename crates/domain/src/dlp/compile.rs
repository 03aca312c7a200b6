//! Turning a rule into something that finds spans: checking the admin's regular expression or keyword
//! list against limits, compiling it, and running it.
//!
//! The `regex` crate runs in time linear in the text, so no pattern can backtrack catastrophically;
//! what a pattern can do is grow huge when compiled (`\w{1000}{1000}`), costing memory and time on
//! every message. [`REGEX_SIZE_LIMIT`] caps that, and [`MAX_PATTERN_CHARS`] keeps patterns readable.

use super::builtin::Detections;
use super::{DetectorKind, DlpRule, MAX_NAME_CHARS, MAX_RULE_ID_CHARS};
use crate::dlp::Detector;
use crate::DomainError;
use regex::{Regex, RegexBuilder};
use std::ops::Range;

/// Longest regular expression a rule may use.
pub const MAX_PATTERN_CHARS: usize = 1000;
/// Most memory a compiled rule (its regex, or all its keywords together) may take, in bytes.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// Most keywords in one rule.
pub const MAX_KEYWORDS: usize = 1000;
/// Longest keyword or phrase.
pub const MAX_KEYWORD_CHARS: usize = 200;

/// A compiled rule.
#[derive(Debug, Clone)]
pub(super) enum Matcher {
    Regex(Regex),
    /// One regex for all keywords; group 1 is the keyword, the rest its boundaries.
    Keywords(Regex),
    Builtin(DetectorKind),
    /// A rule that did not compile: matches the whole text (fails closed).
    Broken,
}

impl Matcher {
    pub(super) fn is_builtin(&self) -> bool {
        matches!(self, Self::Builtin(_))
    }

    /// Where this rule matches in `text`. `builtins` is present whenever `self` is built in.
    pub(super) fn find(&self, text: &str, builtins: Option<&Detections>) -> Vec<Range<usize>> {
        match self {
            Self::Regex(re) => re
                .find_iter(text)
                .filter(|m| !m.is_empty())
                .map(|m| m.range())
                .collect(),
            Self::Keywords(re) => find_keywords(re, text),
            Self::Builtin(kind) => builtins.map(|d| d.of(*kind).to_vec()).unwrap_or_default(),
            Self::Broken => std::iter::once(0..text.len()).collect(),
        }
    }
}

fn invalid_rule(rule: &DlpRule, why: impl std::fmt::Display) -> DomainError {
    DomainError::new(
        "dlp_invalid_rule",
        format!("Rule {} ({}): {why}", rule.name.trim(), rule.id),
    )
}

/// The rule's id and name, before anything else (the error names the rule by them).
pub(super) fn check_rule_identity(rule: &DlpRule) -> Result<(), DomainError> {
    let id_ok = !rule.id.is_empty()
        && rule.id.len() <= MAX_RULE_ID_CHARS
        && rule
            .id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if !id_ok {
        return Err(DomainError::new(
            "dlp_invalid_rule",
            format!("A rule id has 1 to {MAX_RULE_ID_CHARS} letters, digits, '_', '-' or '.', like card_numbers."),
        ));
    }
    if rule.name.trim().is_empty() || rule.name.chars().count() > MAX_NAME_CHARS {
        return Err(invalid_rule(
            rule,
            format_args!("a rule needs a name of 1 to {MAX_NAME_CHARS} characters."),
        ));
    }
    Ok(())
}

/// Compiles one rule, or says what is wrong with it.
pub(super) fn compile_rule(rule: &DlpRule) -> Result<Matcher, DomainError> {
    match &rule.detector {
        Detector::Regex { pattern } => compile_regex(rule, pattern).map(Matcher::Regex),
        Detector::Keywords { words, case_sensitive } => {
            compile_keywords(rule, words, *case_sensitive).map(Matcher::Keywords)
        }
        other => Ok(Matcher::Builtin(other.kind())),
    }
}

fn build(pattern: &str, case_insensitive: bool) -> Result<Regex, regex::Error> {
    RegexBuilder::new(pattern)
        .case_insensitive(case_insensitive)
        .size_limit(REGEX_SIZE_LIMIT)
        .dfa_size_limit(REGEX_SIZE_LIMIT)
        .build()
}

fn explain(error: &regex::Error) -> String {
    match error {
        regex::Error::CompiledTooBig(_) => {
            "the regular expression is too large once compiled; simplify it (fewer or smaller repetitions).".to_owned()
        }
        // The syntax error's last line says what is wrong ("error: unclosed group").
        other => {
            let text = other.to_string();
            let last = text.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
            format!("the regular expression is invalid ({}).", last.trim())
        }
    }
}

fn compile_regex(rule: &DlpRule, pattern: &str) -> Result<Regex, DomainError> {
    let n = pattern.chars().count();
    if pattern.is_empty() || n > MAX_PATTERN_CHARS {
        return Err(invalid_rule(
            rule,
            format_args!("a regular expression has 1 to {MAX_PATTERN_CHARS} characters; this one has {n}."),
        ));
    }
    let re = build(pattern, false).map_err(|e| invalid_rule(rule, explain(&e)))?;
    if re.is_match("") {
        return Err(invalid_rule(
            rule,
            "the regular expression matches an empty text, so it would match every message; require at least one character.",
        ));
    }
    Ok(re)
}

/// All keywords as one alternation, each wrapped in boundaries that look at the text around it rather
/// than at the keyword's own first and last characters (so `#deal` and `C++` work as keywords):
/// `(?:^|[^\w])(kw1|kw2)(?:[^\w]|$)`. Spaces in a phrase become `\s+`.
fn compile_keywords(rule: &DlpRule, words: &[String], case_sensitive: bool) -> Result<Regex, DomainError> {
    if words.is_empty() || words.len() > MAX_KEYWORDS {
        return Err(invalid_rule(
            rule,
            format_args!("a keyword rule needs 1 to {MAX_KEYWORDS} keywords."),
        ));
    }
    let mut alternatives = Vec::with_capacity(words.len());
    for word in words {
        let n = word.chars().count();
        if word.trim().is_empty() || n > MAX_KEYWORD_CHARS {
            return Err(invalid_rule(
                rule,
                format_args!("every keyword needs 1 to {MAX_KEYWORD_CHARS} characters and not only spaces."),
            ));
        }
        let parts: Vec<String> = word.split_whitespace().map(regex::escape).collect();
        alternatives.push(parts.join(r"\s+"));
    }
    let pattern = format!(r"(?:^|[^\w])({})(?:[^\w]|$)", alternatives.join("|"));
    build(&pattern, !case_sensitive).map_err(|e| match e {
        regex::Error::CompiledTooBig(_) => invalid_rule(
            rule,
            "the keyword list is too large once compiled; split it into several rules.",
        ),
        other => invalid_rule(rule, explain(&other)),
    })
}

/// Every keyword occurrence. Boundary characters are consumed by the regex, so the search resumes at
/// the end of the keyword itself: in "secret secret" the space ends the first match and starts the
/// second.
fn find_keywords(re: &Regex, text: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut at = 0;
    while at <= text.len() {
        let Some(keyword) = re.captures_at(text, at).and_then(|c| c.get(1)) else {
            break;
        };
        if !keyword.is_empty() {
            out.push(keyword.range());
        }
        // Always progress, even past an empty match, to a character boundary.
        at = if keyword.end() > at {
            keyword.end()
        } else {
            match text[at..].chars().next() {
                Some(c) => at + c.len_utf8(),
                None => break,
            }
        };
    }
    out
}
