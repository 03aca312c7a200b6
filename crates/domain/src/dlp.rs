//! Data-loss prevention: policies of rules that find sensitive data in a message and say what to do
//! about it (block, redact, or flag for review), and the pure engine that applies them.
//!
//! The server looks up the organization's policy and its ancestors', merges them with
//! [`effective_rules`], and calls [`scan`] (or a cached [`DlpScanner`]) on every message before it is
//! stored or sent. The [`DlpVerdict`] says which action wins (Block > Redact > Flag), where the
//! matches are (byte offsets only, never the matched text, so a verdict can be logged and journaled
//! without leaking what it found), and the text with every Block/Redact match masked.
//!
//! Rules come in three kinds (see [`Detector`]): a regular expression, a keyword list, and built-in
//! detectors for payment cards (Luhn), IBANs (mod-97), US social security numbers, e-mail addresses and
//! phone numbers. The built-ins validate what they find, so near-misses (a 16-digit number failing
//! Luhn, an IBAN with a wrong checksum, SSN area 000) do not match; their exact rules are documented
//! in `dlp/builtin.rs` and its siblings. One number is one thing: where built-in detections overlap,
//! the more specific wins (IBAN > payment card > US SSN > phone), so the digits of an IBAN are never
//! also reported as a phone number. E-mail, regex and keyword rules report independently.
//!
//! Decisions worth knowing:
//! - **Masking keeps the shape.** [`mask`] replaces every character of a match with `█` (U+2588), so
//!   the reader sees where something was removed, and the redacted text has exactly as many characters
//!   as the original: a message that fit WhatsApp's 4096-character limit still fits. The length of a
//!   masked value is visible; that was judged harmless next to the clarity. (`[redacted]` was rejected:
//!   it changes lengths and reads like something the sender typed.)
//! - **A broken rule fails closed.** Policies are checked by [`validate_policy`] when saved, so a rule
//!   that does not compile should never reach [`scan`]; if one does (an edited database, a regex crate
//!   upgrade), it is treated as matching the whole message with its own action, so a broken rule can
//!   never silently let data through.
//! - **System notices are never scanned.** Rules apply to `in` and `out` messages only; notices are
//!   written by openline itself.

use crate::model::text_enum;
use crate::{Direction, DomainError};
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use utoipa::ToSchema;

mod builtin;
mod compile;
#[cfg(test)]
mod detector_tests;
mod digits;
mod email;
mod iban;
mod phone;
#[cfg(test)]
mod tests;

pub use compile::{MAX_KEYWORDS, MAX_KEYWORD_CHARS, MAX_PATTERN_CHARS, REGEX_SIZE_LIMIT};

/// Most rules in one policy.
pub const MAX_RULES: usize = 100;
/// Longest policy or rule name.
pub const MAX_NAME_CHARS: usize = 200;
/// Longest rule id.
pub const MAX_RULE_ID_CHARS: usize = 64;
/// What [`mask`] puts in place of each character of a match.
pub const MASK_CHAR: char = '█';

text_enum! {
    /// What to do with a message when a rule matches, weakest first. The strongest action of all
    /// matching rules decides (see [`DlpAction::strength`]).
    pub enum DlpAction {
        /// Keep the message as it is and list it for a supervisor's review.
        Flag => "flag",
        /// Mask the matches: the contact (outbound) or the agent (inbound) sees them as `█`; the
        /// archive keeps the original.
        Redact => "redact",
        /// Outbound: never send it, and tell the agent which policy refused it. Inbound messages cannot
        /// be blocked at the source, so they are shown masked as with `redact`.
        Block => "block",
    }
}

impl DlpAction {
    /// Block > Redact > Flag.
    pub fn strength(self) -> u8 {
        match self {
            Self::Flag => 1,
            Self::Redact => 2,
            Self::Block => 3,
        }
    }

    /// Whether matches of a rule with this action are masked in [`DlpVerdict::redacted`].
    pub fn masks(self) -> bool {
        matches!(self, Self::Redact | Self::Block)
    }
}

text_enum! {
    /// Which messages a rule looks at.
    pub enum DlpDirection {
        /// Messages from the business to the contact.
        Outbound => "outbound",
        /// Messages from the contact to the business.
        Inbound => "inbound",
        Both => "both",
    }
}

impl DlpDirection {
    /// Whether a rule with this direction applies to a message going `direction`. System notices
    /// are never scanned.
    pub fn applies_to(self, direction: Direction) -> bool {
        matches!(
            (self, direction),
            (Self::Outbound | Self::Both, Direction::Out) | (Self::Inbound | Self::Both, Direction::In)
        )
    }
}

text_enum! {
    /// The kind of a [`Detector`], without its parameters: what a [`DlpMatch`] reports.
    pub enum DetectorKind {
        Regex => "regex",
        Keywords => "keywords",
        PaymentCard => "payment_card",
        Iban => "iban",
        UsSsn => "us_ssn",
        Email => "email",
        Phone => "phone",
    }
}

/// What a rule looks for. Stored as JSON: `{"kind":"regex","pattern":"…"}`,
/// `{"kind":"keywords","words":["…"],"case_sensitive":false}`, `{"kind":"payment_card"}`, …
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Detector {
    /// A regular expression in the syntax of the Rust `regex` crate (linear time, no look-around or
    /// back-references; `(?i)` for case-insensitive). It must not match the empty string.
    Regex { pattern: String },
    /// Whole words or phrases: a keyword matches where it is not glued to a letter, digit or `_` on
    /// either side (so `secret` matches in "top secret." but not in "secretary"). Spaces inside a
    /// phrase match any run of whitespace. Case-insensitive matching uses Unicode simple case folding.
    Keywords {
        words: Vec<String>,
        #[serde(default)]
        case_sensitive: bool,
    },
    /// Payment card numbers: 13–19 digits starting with 2–6, valid Luhn check digit.
    PaymentCard,
    /// International bank account numbers with a valid mod-97 checksum and their country's length.
    Iban,
    /// US social security numbers `AAA-GG-SSSS` (or spaced, or nine digits standing alone) with a
    /// valid area, group and serial.
    UsSsn,
    /// E-mail addresses.
    Email,
    /// Phone numbers: international (`+` or `00`, 8–15 digits), national with a trunk `0`, or North
    /// American `(555) 123-4567`.
    Phone,
}

impl Detector {
    pub fn kind(&self) -> DetectorKind {
        match self {
            Self::Regex { .. } => DetectorKind::Regex,
            Self::Keywords { .. } => DetectorKind::Keywords,
            Self::PaymentCard => DetectorKind::PaymentCard,
            Self::Iban => DetectorKind::Iban,
            Self::UsSsn => DetectorKind::UsSsn,
            Self::Email => DetectorKind::Email,
            Self::Phone => DetectorKind::Phone,
        }
    }
}

/// One rule of a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DlpRule {
    /// Chosen by the admin (`card_numbers`), unique within a policy: 1–64 ASCII letters, digits, `_`,
    /// `-` or `.`. A sub-organization overrides an inherited rule by defining the same id.
    pub id: String,
    /// Shown to the agent when the rule blocks a message, and to supervisors reviewing flags.
    pub name: String,
    pub detector: Detector,
    pub action: DlpAction,
    pub direction: DlpDirection,
}

/// An organization's DLP policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DlpPolicy {
    pub id: String,
    pub name: String,
    /// In the order the admin wrote them; the order only decides the order of matches at the same
    /// offsets, never which action wins.
    pub rules: Vec<DlpRule>,
}

/// One place a rule matched. Holds offsets, never the matched text, so it is safe to log, journal and
/// return from the API.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DlpMatch {
    pub rule_id: String,
    pub rule_name: String,
    pub detector: DetectorKind,
    /// The matching rule's action, so a reader can tell which matches were masked.
    pub action: DlpAction,
    /// Byte offsets into the scanned text, on character boundaries, `start < end` (except for a
    /// broken rule on an empty text, which reports `0..0`).
    pub start: usize,
    pub end: usize,
}

/// The outcome of scanning one message.
#[derive(Clone, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
pub struct DlpVerdict {
    /// The strongest action of all matching rules (Block > Redact > Flag); `None` when nothing matched.
    pub action: Option<DlpAction>,
    /// Every match of every applicable rule, by start offset, then end offset, then rule order.
    pub matches: Vec<DlpMatch>,
    /// The text with every Block and Redact match masked; `None` when no such match exists.
    pub redacted: Option<String>,
}

impl DlpVerdict {
    pub fn is_blocked(&self) -> bool {
        self.action == Some(DlpAction::Block)
    }

    /// The rules that matched with the strongest action, each once, in the order of their first
    /// match: what an agent is told when a message is blocked.
    pub fn deciding_rules(&self) -> Vec<&str> {
        let mut seen = HashSet::new();
        self.matches
            .iter()
            .filter(|m| Some(m.action) == self.action)
            .filter(|m| seen.insert(m.rule_id.as_str()))
            .map(|m| m.rule_name.as_str())
            .collect()
    }
}

/// Never prints the redacted text: it is still a message body, and bodies are never logged.
impl std::fmt::Debug for DlpVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DlpVerdict")
            .field("action", &self.action)
            .field("matches", &self.matches)
            .field(
                "redacted",
                &self.redacted.as_ref().map(|r| format!("<{} chars>", r.chars().count())),
            )
            .finish()
    }
}

fn invalid_policy(message: impl Into<String>) -> DomainError {
    DomainError::new("dlp_invalid_policy", message)
}

/// Checks a policy before it is saved. Codes: `dlp_invalid_policy` (a blank or overlong name, more
/// than [`MAX_RULES`] rules, two rules with one id) and `dlp_invalid_rule` (naming the rule: a bad id
/// or name, a regular expression that does not compile, is longer than [`MAX_PATTERN_CHARS`], grows
/// past [`REGEX_SIZE_LIMIT`] or matches the empty string, an empty keyword list, a blank or overlong
/// keyword).
pub fn validate_policy(policy: &DlpPolicy) -> Result<(), DomainError> {
    let name_chars = policy.name.chars().count();
    if policy.name.trim().is_empty() || name_chars > MAX_NAME_CHARS {
        return Err(invalid_policy(format!(
            "A DLP policy needs a name of 1 to {MAX_NAME_CHARS} characters."
        )));
    }
    if policy.rules.len() > MAX_RULES {
        return Err(invalid_policy(format!(
            "A DLP policy has at most {MAX_RULES} rules; this one has {}.",
            policy.rules.len()
        )));
    }
    let mut ids = HashSet::new();
    for rule in &policy.rules {
        compile::check_rule_identity(rule)?;
        if !ids.insert(rule.id.as_str()) {
            return Err(invalid_policy(format!(
                "Two rules share the id {}; give each rule its own id.",
                rule.id
            )));
        }
        compile::compile_rule(rule)?;
    }
    Ok(())
}

/// The rules in force for an organization, given its own policy and its ancestors', **nearest
/// first** (`[own, parent, grandparent, …]`; an organization without its own policy simply starts
/// with its parent's).
///
/// A rule id defined nearer replaces the rule with the same id further up, as a whole (detector,
/// action and direction), so a sub-organization can tighten or relax one inherited rule without
/// restating the rest. Result order: the nearest policy's rules in their order, then each ancestor's
/// rules not overridden, nearest ancestor first. Duplicate ids within one policy (which validation
/// refuses) keep the first.
pub fn effective_rules(chain: &[&DlpPolicy]) -> Vec<DlpRule> {
    let mut seen = HashSet::new();
    chain
        .iter()
        .flat_map(|policy| policy.rules.iter())
        .filter(|rule| seen.insert(rule.id.as_str()))
        .cloned()
        .collect()
}

/// Scans `text` travelling `direction` with `rules` (usually [`effective_rules`]). Compiles the rules
/// on every call; a server scanning many messages with the same rules keeps a [`DlpScanner`].
pub fn scan(rules: &[DlpRule], direction: Direction, text: &str) -> DlpVerdict {
    DlpScanner::lenient(rules).scan(direction, text)
}

/// Rules compiled once, to scan many messages.
#[derive(Debug, Clone)]
pub struct DlpScanner {
    rules: Vec<(DlpRule, compile::Matcher)>,
}

impl DlpScanner {
    /// Compiles `rules`, refusing any that [`validate_policy`] would refuse.
    pub fn new(rules: &[DlpRule]) -> Result<Self, DomainError> {
        let rules = rules
            .iter()
            .map(|rule| Ok((rule.clone(), compile::compile_rule(rule)?)))
            .collect::<Result<_, DomainError>>()?;
        Ok(Self { rules })
    }

    /// Compiles `rules`, keeping a rule that does not compile as one that matches everything (fails
    /// closed, see the module documentation).
    pub fn lenient(rules: &[DlpRule]) -> Self {
        let rules = rules
            .iter()
            .map(|rule| {
                let matcher = compile::compile_rule(rule).unwrap_or(compile::Matcher::Broken);
                (rule.clone(), matcher)
            })
            .collect();
        Self { rules }
    }

    /// Applies every rule whose direction covers `direction` to `text`.
    pub fn scan(&self, direction: Direction, text: &str) -> DlpVerdict {
        let applicable: Vec<_> = self
            .rules
            .iter()
            .filter(|(rule, _)| rule.direction.applies_to(direction))
            .collect();
        let needs_builtins = applicable.iter().any(|(_, m)| m.is_builtin());
        let builtins = needs_builtins.then(|| builtin::detect(text));
        let mut matches = Vec::new();
        for (rule, matcher) in applicable {
            for span in matcher.find(text, builtins.as_ref()) {
                matches.push(DlpMatch {
                    rule_id: rule.id.clone(),
                    rule_name: rule.name.clone(),
                    detector: rule.detector.kind(),
                    action: rule.action,
                    start: span.start,
                    end: span.end,
                });
            }
        }
        // Stable: matches at the same offsets stay in rule order.
        matches.sort_by_key(|m| (m.start, m.end));
        let action = matches.iter().map(|m| m.action).max_by_key(|a| a.strength());
        let masked: Vec<DlpMatch> = matches.iter().filter(|m| m.action.masks()).cloned().collect();
        let redacted = (!masked.is_empty()).then(|| mask(text, &masked));
        DlpVerdict {
            action,
            matches,
            redacted,
        }
    }
}

/// `text` with every character inside any of `matches` replaced by [`MASK_CHAR`], whatever their
/// actions (pass only the matches to hide). Overlapping matches are merged; offsets past the end are
/// clamped, and offsets inside a character are widened to the whole character, so the result is
/// always valid UTF-8 with exactly as many characters as `text`.
pub fn mask(text: &str, matches: &[DlpMatch]) -> String {
    let mut spans: Vec<(usize, usize)> = matches
        .iter()
        .map(|m| (floor_boundary(text, m.start), ceil_boundary(text, m.end)))
        .filter(|(s, e)| s < e)
        .collect();
    spans.sort_unstable();
    let mut out = String::with_capacity(text.len() + 2 * spans.len());
    let mut spans = spans.into_iter().peekable();
    for (i, c) in text.char_indices() {
        while spans.next_if(|&(_, e)| e <= i).is_some() {}
        let inside = spans.peek().is_some_and(|&(s, _)| s <= i);
        out.push(if inside { MASK_CHAR } else { c });
    }
    out
}

fn floor_boundary(text: &str, i: usize) -> usize {
    let mut i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn ceil_boundary(text: &str, i: usize) -> usize {
    let mut i = i.min(text.len());
    while !text.is_char_boundary(i) {
        i += 1;
    }
    i
}
