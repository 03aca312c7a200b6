//! The engine: validation, inheritance, actions, directions, keywords, regexes and masking.

use super::*;
use proptest::prelude::*;

const CARD: &str = "4111 1111 1111 1111";

fn rule(id: &str, detector: Detector, action: DlpAction, direction: DlpDirection) -> DlpRule {
    DlpRule {
        id: id.to_owned(),
        name: format!("{id} rule"),
        detector,
        action,
        direction,
    }
}

fn both(id: &str, detector: Detector, action: DlpAction) -> DlpRule {
    rule(id, detector, action, DlpDirection::Both)
}

fn regex(pattern: &str) -> Detector {
    Detector::Regex {
        pattern: pattern.to_owned(),
    }
}

fn keywords(words: &[&str], case_sensitive: bool) -> Detector {
    Detector::Keywords {
        words: words.iter().map(|w| (*w).to_owned()).collect(),
        case_sensitive,
    }
}

fn policy(rules: Vec<DlpRule>) -> DlpPolicy {
    DlpPolicy {
        id: "pol_1".to_owned(),
        name: "Bank-wide".to_owned(),
        rules,
    }
}

fn matched<'t>(text: &'t str, verdict: &DlpVerdict) -> Vec<&'t str> {
    verdict.matches.iter().map(|m| &text[m.start..m.end]).collect()
}

fn code(r: Result<(), DomainError>) -> Option<&'static str> {
    r.err().map(|e| e.code)
}

// --- Types and their text forms ---

#[test]
fn every_text_enum_round_trips_through_its_text_and_serde() {
    for a in DlpAction::ALL {
        assert_eq!(DlpAction::parse(a.as_str()), Some(*a));
        assert_eq!(serde_json::to_string(a).unwrap(), format!("\"{a}\""));
    }
    for d in DlpDirection::ALL {
        assert_eq!(DlpDirection::parse(d.as_str()), Some(*d));
    }
    for k in DetectorKind::ALL {
        assert_eq!(DetectorKind::parse(k.as_str()), Some(*k));
    }
    assert_eq!(DlpAction::parse("delete"), None);
}

#[test]
fn a_policy_round_trips_through_json_with_detectors_tagged_by_kind() {
    let p = policy(vec![
        both("cards", Detector::PaymentCard, DlpAction::Block),
        both("words", keywords(&["secret"], false), DlpAction::Flag),
        rule("acc", regex(r"ACC-\d{6}"), DlpAction::Redact, DlpDirection::Outbound),
    ]);
    let json = serde_json::to_string(&p).unwrap();
    assert!(json.contains(r#""detector":{"kind":"payment_card"}"#), "{json}");
    assert!(
        json.contains(r#""kind":"keywords","words":["secret"],"case_sensitive":false"#),
        "{json}"
    );
    assert_eq!(serde_json::from_str::<DlpPolicy>(&json).unwrap(), p);
    // case_sensitive may be left out.
    let d: Detector = serde_json::from_str(r#"{"kind":"keywords","words":["x"]}"#).unwrap();
    assert_eq!(d, keywords(&["x"], false));
    for k in DetectorKind::ALL {
        let detector = match k {
            DetectorKind::Regex => regex("x"),
            DetectorKind::Keywords => keywords(&["x"], true),
            DetectorKind::PaymentCard => Detector::PaymentCard,
            DetectorKind::Iban => Detector::Iban,
            DetectorKind::UsSsn => Detector::UsSsn,
            DetectorKind::Email => Detector::Email,
            DetectorKind::Phone => Detector::Phone,
        };
        assert_eq!(detector.kind(), *k);
        let json = serde_json::to_value(&detector).unwrap();
        assert_eq!(json["kind"], k.as_str());
    }
}

#[test]
fn debug_output_never_contains_the_matched_text() {
    let rules = [both("cards", Detector::PaymentCard, DlpAction::Redact)];
    let text = format!("my card is {CARD}, thanks");
    let verdict = scan(&rules, Direction::Out, &text);
    assert_eq!(verdict.matches.len(), 1);
    let debug = format!("{verdict:?} {:?}", verdict.matches[0]);
    assert!(!debug.contains("4111"), "{debug}");
    assert!(
        !debug.contains("thanks"),
        "the redacted body is not printed either: {debug}"
    );
    assert!(debug.contains("<38 chars>"), "{debug}");
}

// --- Validation ---

#[test]
fn a_well_formed_policy_is_valid() {
    let p = policy(vec![
        both("cards", Detector::PaymentCard, DlpAction::Block),
        both("iban", Detector::Iban, DlpAction::Redact),
        both("ssn", Detector::UsSsn, DlpAction::Block),
        both("mail", Detector::Email, DlpAction::Flag),
        both("phone", Detector::Phone, DlpAction::Flag),
        both(
            "words",
            keywords(&["insider", "guaranteed returns"], false),
            DlpAction::Flag,
        ),
        both("acc", regex(r"(?i)ACC-\d{6}"), DlpAction::Redact),
    ]);
    assert_eq!(validate_policy(&p), Ok(()));
    assert!(DlpScanner::new(&p.rules).is_ok());
}

#[test]
fn an_invalid_regex_is_refused_naming_the_rule() {
    let p = policy(vec![both("acc", regex(r"ACC-(\d{6}"), DlpAction::Block)]);
    let err = validate_policy(&p).unwrap_err();
    assert_eq!(err.code, "dlp_invalid_rule");
    assert!(err.message.contains("acc rule (acc)"), "{}", err.message);
    assert!(err.message.contains("unclosed group"), "{}", err.message);
    assert_eq!(DlpScanner::new(&p.rules).unwrap_err().code, "dlp_invalid_rule");
}

#[test]
fn regexes_that_are_too_large_too_long_or_match_nothing_at_all_are_refused() {
    for (pattern, hint) in [
        (r"\w{1000}{1000}", "too large"),
        (r"(?:a|b){500}{500}", "too large"),
        ("a*", "empty text"),
        ("(?m)^", "empty text"),
        ("", "1 to 1000"),
    ] {
        let err = validate_policy(&policy(vec![both("r", regex(pattern), DlpAction::Flag)])).unwrap_err();
        assert_eq!(err.code, "dlp_invalid_rule", "{pattern}");
        assert!(err.message.contains(hint), "{pattern}: {}", err.message);
    }
    let long = "a".repeat(MAX_PATTERN_CHARS + 1);
    assert_eq!(
        code(validate_policy(&policy(vec![both("r", regex(&long), DlpAction::Flag)]))),
        Some("dlp_invalid_rule")
    );
    let longest = "a".repeat(MAX_PATTERN_CHARS);
    assert_eq!(
        validate_policy(&policy(vec![both("r", regex(&longest), DlpAction::Flag)])),
        Ok(())
    );
}

#[test]
fn keyword_rules_need_words_that_are_not_blank() {
    for words in [
        &[][..],
        &[""],
        &["ok", "  "],
        &["ok", &"x".repeat(MAX_KEYWORD_CHARS + 1)],
    ] {
        let p = policy(vec![both("w", keywords(words, false), DlpAction::Flag)]);
        assert_eq!(code(validate_policy(&p)), Some("dlp_invalid_rule"), "{words:?}");
    }
    let many: Vec<String> = (0..=MAX_KEYWORDS).map(|i| format!("w{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    let p = policy(vec![both("w", keywords(&many, false), DlpAction::Flag)]);
    assert_eq!(code(validate_policy(&p)), Some("dlp_invalid_rule"));
    let p = policy(vec![both("w", keywords(&many[..MAX_KEYWORDS], false), DlpAction::Flag)]);
    assert_eq!(validate_policy(&p), Ok(()));
}

#[test]
fn policies_need_a_name_unique_rule_ids_and_named_rules() {
    let mut p = policy(vec![both("cards", Detector::PaymentCard, DlpAction::Block)]);
    p.name = " ".to_owned();
    assert_eq!(code(validate_policy(&p)), Some("dlp_invalid_policy"));

    let p = policy(vec![
        both("cards", Detector::PaymentCard, DlpAction::Block),
        both("cards", Detector::Iban, DlpAction::Block),
    ]);
    let err = validate_policy(&p).unwrap_err();
    assert_eq!(err.code, "dlp_invalid_policy");
    assert!(err.message.contains("cards"));

    for id in ["", "has space", "é", &"x".repeat(MAX_RULE_ID_CHARS + 1)] {
        let p = policy(vec![both(id, Detector::Email, DlpAction::Flag)]);
        assert_eq!(code(validate_policy(&p)), Some("dlp_invalid_rule"), "{id:?}");
    }
    let mut unnamed = both("mail", Detector::Email, DlpAction::Flag);
    unnamed.name = String::new();
    assert_eq!(code(validate_policy(&policy(vec![unnamed]))), Some("dlp_invalid_rule"));

    let too_many = (0..=MAX_RULES)
        .map(|i| both(&format!("r{i}"), Detector::Email, DlpAction::Flag))
        .collect();
    assert_eq!(code(validate_policy(&policy(too_many))), Some("dlp_invalid_policy"));
}

// --- Inheritance ---

#[test]
fn a_rule_defined_nearer_overrides_the_same_id_further_up() {
    let root = policy(vec![
        both("cards", Detector::PaymentCard, DlpAction::Block),
        both("mail", Detector::Email, DlpAction::Flag),
    ]);
    let region = policy(vec![
        both("iban", Detector::Iban, DlpAction::Block),
        both("mail", Detector::Email, DlpAction::Redact),
    ]);
    let branch = policy(vec![rule(
        "cards",
        Detector::PaymentCard,
        DlpAction::Flag,
        DlpDirection::Inbound,
    )]);

    let rules = effective_rules(&[&branch, &region, &root]);
    let summary: Vec<(&str, DlpAction)> = rules.iter().map(|r| (r.id.as_str(), r.action)).collect();
    assert_eq!(
        summary,
        vec![
            ("cards", DlpAction::Flag),
            ("iban", DlpAction::Block),
            ("mail", DlpAction::Redact)
        ]
    );
    assert_eq!(rules[0].direction, DlpDirection::Inbound, "overridden as a whole");

    // Without a policy of its own, an organization gets its parent's merged rules.
    let inherited = effective_rules(&[&region, &root]);
    assert_eq!(
        inherited.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        ["iban", "mail", "cards"]
    );
    assert!(effective_rules(&[]).is_empty());
}

// --- Scanning ---

#[test]
fn the_strongest_action_wins() {
    let rules = [
        both("mail", Detector::Email, DlpAction::Flag),
        both("phone", Detector::Phone, DlpAction::Redact),
        both("cards", Detector::PaymentCard, DlpAction::Block),
    ];
    let all = format!("mail ana@example.com or +44 20 7946 0958, card {CARD}");
    let verdict = scan(&rules, Direction::Out, &all);
    assert_eq!(verdict.action, Some(DlpAction::Block));
    assert!(verdict.is_blocked());
    assert_eq!(verdict.deciding_rules(), vec!["cards rule"]);
    assert_eq!(
        matched(&all, &verdict),
        vec!["ana@example.com", "+44 20 7946 0958", CARD]
    );

    let no_card = "mail ana@example.com or +44 20 7946 0958";
    assert_eq!(scan(&rules, Direction::Out, no_card).action, Some(DlpAction::Redact));

    let only_mail = scan(&rules, Direction::Out, "mail ana@example.com");
    assert_eq!(only_mail.action, Some(DlpAction::Flag));
    assert_eq!(only_mail.redacted, None, "flags do not change the text");

    let nothing = scan(&rules, Direction::Out, "see you at 10:30 on 2025-01-02");
    assert_eq!(nothing, DlpVerdict::default());
}

#[test]
fn a_rule_fires_only_in_its_direction() {
    let rules = [
        rule(
            "out_cards",
            Detector::PaymentCard,
            DlpAction::Block,
            DlpDirection::Outbound,
        ),
        rule("in_mail", Detector::Email, DlpAction::Redact, DlpDirection::Inbound),
        rule("any_ssn", Detector::UsSsn, DlpAction::Flag, DlpDirection::Both),
    ];
    let text = format!("{CARD} ana@example.com 078-05-1120");
    let ids = |d| {
        scan(&rules, d, &text)
            .matches
            .iter()
            .map(|m| m.rule_id.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(Direction::Out), ["out_cards", "any_ssn"]);
    assert_eq!(ids(Direction::In), ["in_mail", "any_ssn"]);
    assert!(ids(Direction::System).is_empty(), "notices are never scanned");
    assert_eq!(scan(&rules, Direction::In, &text).action, Some(DlpAction::Redact));
}

#[test]
fn redaction_masks_exactly_the_matches_and_keeps_the_rest() {
    let rules = [
        both("cards", Detector::PaymentCard, DlpAction::Redact),
        both("iban", Detector::Iban, DlpAction::Block),
        both("mail", Detector::Email, DlpAction::Flag),
    ];
    let text = format!("Olá! Cartão {CARD}, conta GB82 WEST 1234 5698 7654 32 — écrivez à ana@example.com 🙏");
    let verdict = scan(&rules, Direction::Out, &text);
    assert_eq!(
        verdict.redacted.as_deref(),
        Some("Olá! Cartão ███████████████████, conta ███████████████████████████ — écrivez à ana@example.com 🙏")
    );
    assert_eq!(verdict.matches.len(), 3, "the flagged address is reported, not masked");
    assert_eq!(verdict.matches[2].action, DlpAction::Flag);
}

#[test]
fn the_same_span_matched_by_several_rules_is_reported_once_per_rule() {
    let rules = [
        both("cards", Detector::PaymentCard, DlpAction::Flag),
        both("cards_again", Detector::PaymentCard, DlpAction::Redact),
        both("visa", regex(r"4\d{3}( \d{4}){3}"), DlpAction::Block),
    ];
    let verdict = scan(&rules, Direction::Out, CARD);
    let ids: Vec<&str> = verdict.matches.iter().map(|m| m.rule_id.as_str()).collect();
    assert_eq!(ids, ["cards", "cards_again", "visa"], "same offsets: rule order");
    assert_eq!(verdict.redacted.as_deref(), Some("███████████████████"));
}

#[test]
fn keywords_match_whole_words_with_the_case_rule_of_their_rule() {
    let insensitive = [both(
        "w",
        keywords(&["secret", "new york", "C++", "été"], false),
        DlpAction::Flag,
    )];
    let sensitive = [both("w", keywords(&["Secret"], true), DlpAction::Flag)];
    for (text, expected) in [
        ("top secret.", vec!["secret"]),
        ("Top SECRET: x", vec!["SECRET"]),
        ("secretary", vec![]),
        ("topsecret", vec![]),
        ("secret_plan", vec![]),
        ("secret secret", vec!["secret", "secret"]),
        ("(secret)", vec!["secret"]),
        ("in New   York today", vec!["New   York"]),
        ("newyork", vec![]),
        ("I write C++.", vec!["C++"]),
        ("C++x", vec![]),
        ("L'ÉTÉ dernier", vec!["ÉTÉ"]),
        ("étéx", vec![]),
        ("secret1", vec![]),
    ] {
        let verdict = scan(&insensitive, Direction::Out, text);
        assert_eq!(matched(text, &verdict), expected, "{text:?}");
    }
    for (text, expected) in [
        ("top Secret", vec!["Secret"]),
        ("top secret", vec![]),
        ("SECRET", vec![]),
    ] {
        let verdict = scan(&sensitive, Direction::Out, text);
        assert_eq!(matched(text, &verdict), expected, "{text:?}");
    }
}

#[test]
fn a_shorter_keyword_still_matches_where_a_longer_one_is_glued_to_a_word() {
    let rules = [both("w", keywords(&["new york", "new"], false), DlpAction::Flag)];
    let text = "a new yorker";
    assert_eq!(matched(text, &scan(&rules, Direction::Out, text)), vec!["new"]);
}

#[test]
fn regex_rules_match_anywhere_they_match() {
    let rules = [both("acc", regex(r"ACC-\d{6}"), DlpAction::Redact)];
    let text = "accounts ACC-123456 and ACC-654321, not ACC-12";
    let verdict = scan(&rules, Direction::In, text);
    assert_eq!(matched(text, &verdict), vec!["ACC-123456", "ACC-654321"]);
    assert_eq!(verdict.matches[0].detector, DetectorKind::Regex);
    assert_eq!(
        verdict.redacted.as_deref(),
        Some("accounts ██████████ and ██████████, not ACC-12")
    );
}

#[test]
fn a_rule_that_does_not_compile_fails_closed_on_the_whole_message() {
    let rules = [both("broken", regex("(unclosed"), DlpAction::Block)];
    let verdict = scan(&rules, Direction::Out, "héllo");
    assert!(verdict.is_blocked());
    assert_eq!((verdict.matches[0].start, verdict.matches[0].end), (0, "héllo".len()));
    assert_eq!(verdict.redacted.as_deref(), Some("█████"));
    assert!(DlpScanner::new(&rules).is_err());
}

#[test]
fn a_scanner_compiled_once_gives_the_same_verdicts_as_scan() {
    let rules = [
        both("cards", Detector::PaymentCard, DlpAction::Block),
        both("w", keywords(&["secret"], false), DlpAction::Flag),
    ];
    let scanner = DlpScanner::new(&rules).unwrap();
    for text in ["", "secret", CARD, "nothing here"] {
        assert_eq!(scanner.scan(Direction::Out, text), scan(&rules, Direction::Out, text));
    }
}

// --- Masking ---

fn span(start: usize, end: usize) -> DlpMatch {
    DlpMatch {
        rule_id: "r".to_owned(),
        rule_name: "r".to_owned(),
        detector: DetectorKind::Regex,
        action: DlpAction::Redact,
        start,
        end,
    }
}

#[test]
fn masking_replaces_each_character_and_survives_odd_offsets() {
    assert_eq!(mask("abcdef", &[span(1, 3)]), "a██def");
    assert_eq!(mask("abcdef", &[span(1, 3), span(2, 5)]), "a████f", "overlaps merge");
    assert_eq!(mask("abcdef", &[span(4, 5), span(0, 1)]), "█bcd█f", "any order");
    assert_eq!(mask("abcdef", &[span(0, 6), span(2, 3)]), "██████", "nested");
    assert_eq!(mask("abc", &[span(2, 99)]), "ab█", "clamped to the end");
    assert_eq!(
        mask("abc", &[span(5, 9), span(2, 1)]),
        "abc",
        "empty or inverted spans mask nothing"
    );
    // Offsets inside a character widen to the whole character.
    let text = "aé🙏b";
    assert_eq!(mask(text, &[span(2, 3)]), "a█🙏b");
    assert_eq!(mask(text, &[span(4, 5)]), "aé█b");
    assert_eq!(mask("", &[span(0, 0)]), "");
}

fn every_rule() -> Vec<DlpRule> {
    vec![
        both("cards", Detector::PaymentCard, DlpAction::Redact),
        both("iban", Detector::Iban, DlpAction::Block),
        both("ssn", Detector::UsSsn, DlpAction::Redact),
        both("mail", Detector::Email, DlpAction::Redact),
        both("phone", Detector::Phone, DlpAction::Redact),
        both("words", keywords(&["secret", "é", "a b"], false), DlpAction::Redact),
        both("re", regex(r"[xyz]+\d|\p{Greek}{2}"), DlpAction::Redact),
        both("flag", keywords(&["ok"], false), DlpAction::Flag),
    ]
}

/// Text rich in what the detectors look at: digits, separators, letters, `@`, `+`, non-ASCII.
fn tricky_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        "[0-9]{1,5}",
        Just(" ".to_owned()),
        Just("-".to_owned()),
        Just("+".to_owned()),
        Just("(".to_owned()),
        Just(")".to_owned()),
        Just(".".to_owned()),
        Just("/".to_owned()),
        Just("@".to_owned()),
        Just("4111 1111 1111 1111".to_owned()),
        Just("GB82 WEST 1234 5698 7654 32".to_owned()),
        Just("078-05-1120".to_owned()),
        Just("ana@example.com".to_owned()),
        "[a-zA-Z]{1,4}",
        "\\PC{1,3}",
    ];
    proptest::collection::vec(piece, 0..30).prop_map(|pieces| pieces.concat())
}

proptest! {
    #[test]
    fn scanning_any_text_never_panics_and_masks_exactly_the_masked_matches(
        text in prop_oneof![tricky_text(), "\\PC{0,200}", any::<String>()],
        inbound: bool,
    ) {
        let direction = if inbound { Direction::In } else { Direction::Out };
        let verdict = scan(&every_rule(), direction, &text);
        for m in &verdict.matches {
            prop_assert!(m.start < m.end && m.end <= text.len());
            prop_assert!(text.is_char_boundary(m.start) && text.is_char_boundary(m.end));
        }
        let masked: Vec<&DlpMatch> = verdict.matches.iter().filter(|m| m.action.masks()).collect();
        prop_assert_eq!(verdict.redacted.is_some(), !masked.is_empty());
        let redacted = verdict.redacted.clone().unwrap_or_else(|| text.clone());
        prop_assert_eq!(redacted.chars().count(), text.chars().count());
        // Character by character: inside a masked match, a mask; outside, the original.
        for ((i, original), shown) in text.char_indices().zip(redacted.chars()) {
            let inside = masked.iter().any(|m| m.start <= i && i < m.end);
            if inside {
                prop_assert_eq!(shown, MASK_CHAR);
            } else {
                prop_assert_eq!(shown, original);
            }
        }
        // No masked value is left where it was.
        for m in &masked {
            let chars = text[..m.start].chars().count();
            let len = text[m.start..m.end].chars().count();
            let left: String = redacted.chars().skip(chars).take(len).collect();
            prop_assert!(left.chars().all(|c| c == MASK_CHAR));
        }
    }

    #[test]
    fn masking_arbitrary_offsets_never_panics_and_keeps_the_character_count(
        text in "\\PC{0,40}", spans in proptest::collection::vec((0usize..200, 0usize..200), 0..5),
    ) {
        let matches: Vec<DlpMatch> = spans.iter().map(|&(s, e)| span(s, e)).collect();
        let masked = mask(&text, &matches);
        prop_assert_eq!(masked.chars().count(), text.chars().count());
    }
}
