//! Table tests: every consent state × every ledger event, request and reply.

use super::*;
use crate::consent::ConsentEventKind::*;
use proptest::prelude::*;

const H: Millis = 3_600_000;
const T0: Millis = 1_735_825_500_000; // 2025-01-02 13:45 UTC

fn ev(kind: ConsentEventKind, at: Millis) -> ConsentEvent {
    ConsentEvent::new(kind, at)
}

/// One representative of every state, with the ledger that produces it.
fn every_state() -> Vec<(ConsentState, Vec<ConsentEvent>)> {
    vec![
        (ConsentState::Unknown, vec![]),
        (ConsentState::Pending { requested_at: T0 }, vec![ev(Requested, T0)]),
        (
            ConsentState::Granted { since: T0 + H },
            vec![ev(Requested, T0), ev(Accepted, T0 + H)],
        ),
        (
            ConsentState::Refused { since: T0 + H },
            vec![ev(Requested, T0), ev(Rejected, T0 + H)],
        ),
        (
            ConsentState::NotOnWhatsapp { since: T0 + 1 },
            vec![ev(Requested, T0), ev(Undeliverable, T0 + 1)],
        ),
    ]
}

#[test]
fn every_event_kind_round_trips_through_its_text() {
    for k in ConsentEventKind::ALL {
        assert_eq!(ConsentEventKind::parse(k.as_str()), Some(*k));
        assert_eq!(serde_json::to_string(k).unwrap(), format!("\"{}\"", k.as_str()));
    }
    assert_eq!(ConsentEventKind::parse("maybe"), None);
}

#[test]
fn each_representative_ledger_derives_its_state() {
    for (state, ledger) in every_state() {
        assert_eq!(consent_state(&ledger), state);
    }
}

#[test]
fn every_state_and_event_leads_where_the_table_says() {
    use ConsentState as S;
    let at = T0 + 10 * H;
    // (state, event) -> expected state, one row per pair.
    for (state, ledger) in every_state() {
        for kind in ConsentEventKind::ALL {
            let expected = match (state, kind) {
                (S::Granted { since }, Accepted | OptedIn) => S::Granted { since },
                (_, Accepted | OptedIn) => S::Granted { since: at },
                (S::Refused { since }, Rejected | OptedOut) => S::Refused { since },
                (_, Rejected | OptedOut) => S::Refused { since: at },
                (S::Granted { .. } | S::Refused { .. }, Requested) => state,
                (_, Requested) => S::Pending { requested_at: at },
                (S::Refused { .. }, Undeliverable) => state,
                (S::NotOnWhatsapp { since }, Undeliverable) => S::NotOnWhatsapp { since },
                (_, Undeliverable) => S::NotOnWhatsapp { since: at },
                // Marketing preferences are a separate question (`consent::marketing`).
                (_, MarketingStopped | MarketingResumed) => state,
            };
            let mut l = ledger.clone();
            l.push(ev(*kind, at));
            assert_eq!(consent_state(&l), expected, "{state:?} + {kind}");
        }
    }
}

#[test]
fn a_contact_who_rejected_can_opt_in_again_by_replying_yes() {
    let ledger = [ev(Requested, T0), ev(Rejected, T0 + H), ev(OptedIn, T0 + 50 * H)];
    assert_eq!(consent_state(&ledger), ConsentState::Granted { since: T0 + 50 * H });
}

#[test]
fn stop_withdraws_an_agreement_and_yes_restores_it() {
    let ledger = [
        ev(Requested, T0),
        ev(Accepted, T0 + H),
        ev(OptedOut, T0 + 2 * H),
        ev(OptedIn, T0 + 3 * H),
    ];
    assert_eq!(consent_state(&ledger[..3]), ConsentState::Refused { since: T0 + 2 * H });
    assert_eq!(consent_state(&ledger), ConsentState::Granted { since: T0 + 3 * H });
}

#[test]
fn a_not_on_whatsapp_report_does_not_erase_a_refusal() {
    let ledger = [ev(Requested, T0), ev(Rejected, T0 + H), ev(Undeliverable, T0 + 30 * H)];
    assert_eq!(consent_state(&ledger), ConsentState::Refused { since: T0 + H });
}

#[test]
fn the_last_request_is_found_in_the_ledger() {
    assert_eq!(last_opt_in_request_at(&[]), None);
    let ledger = [ev(Requested, T0), ev(Undeliverable, T0 + 1), ev(Requested, T0 + 30 * H)];
    assert_eq!(last_opt_in_request_at(&ledger), Some(T0 + 30 * H));
}

#[test]
fn whether_an_opt_in_request_may_be_sent_in_every_state() {
    use ConsentState as S;
    let last = Some(T0);
    let soon = T0 + 23 * H;
    let later = T0 + 24 * H;
    let code = |r: Result<(), DomainError>| r.err().map(|e| e.code);
    let table: &[(S, Option<Millis>, Millis, Option<&str>)] = &[
        (S::Unknown, None, soon, None),
        (S::Pending { requested_at: T0 }, last, soon, Some("opt_in_too_soon")),
        (S::Pending { requested_at: T0 }, last, later, None),
        (S::Pending { requested_at: T0 }, None, soon, Some("opt_in_too_soon")),
        (S::Granted { since: T0 }, last, later, Some("consent_already_granted")),
        (S::Granted { since: T0 }, None, later, Some("consent_already_granted")),
        (S::Refused { since: T0 }, last, soon, Some("consent_refused")),
        (S::Refused { since: T0 }, last, T0 + 1000 * H, Some("consent_refused")),
        (S::NotOnWhatsapp { since: T0 }, last, soon, Some("opt_in_too_soon")),
        (S::NotOnWhatsapp { since: T0 }, last, later, None),
        (S::NotOnWhatsapp { since: T0 }, None, soon, None),
    ];
    for (state, last, now, expected) in table {
        assert_eq!(
            code(may_request_opt_in(*state, *last, *now)),
            *expected,
            "{state:?} at +{}h",
            (now - T0) / H
        );
    }
}

#[test]
fn a_request_too_soon_says_when_the_next_one_becomes_possible() {
    let err = may_request_opt_in(
        ConsentState::Pending {
            requested_at: T0 + 30_000,
        },
        None,
        T0 + H,
    )
    .unwrap_err();
    assert_eq!(err.code, "opt_in_too_soon");
    // 2025-01-03 13:45:30 rounds up to the first minute it is allowed.
    assert!(err.message.contains("2025-01-03 13:46 UTC"), "{}", err.message);
}

#[test]
fn a_refusal_tells_the_agent_that_only_the_contact_can_lift_it() {
    let err = may_request_opt_in(ConsentState::Refused { since: T0 }, None, T0).unwrap_err();
    assert!(err.message.contains("replying yes"));
}

#[test]
fn replies_are_read_as_consent_only_when_they_are_the_keyword() {
    use ConsentReply::*;
    let table: &[(&str, Option<&str>, Option<ConsentReply>)] = &[
        ("yes", None, Some(Accept)),
        ("Yes", None, Some(Accept)),
        ("YES", None, Some(Accept)),
        (" yes! ", None, Some(Accept)),
        ("Yes.", None, Some(Accept)),
        ("", Some("OPTIN_YES"), Some(Accept)),
        ("Yes", Some("OPTIN_YES"), Some(Accept)),
        ("no", None, Some(Reject)),
        ("No!", None, Some(Reject)),
        ("No", Some("OPTIN_NO"), Some(Reject)),
        ("stop", None, Some(OptOut)),
        ("STOP", None, Some(OptOut)),
        ("Unsubscribe", None, Some(OptOut)),
        ("opt out", None, Some(OptOut)),
        ("yes please, but not on Sundays", None, None),
        ("no problem", None, None),
        ("don't stop", None, None),
        ("cancel", None, None),
        ("hello", None, None),
        ("", None, None),
        ("hello", Some("SOMETHING_ELSE"), None),
        ("stop", Some("SOMETHING_ELSE"), Some(OptOut)),
    ];
    for (text, payload, expected) in table {
        assert_eq!(classify_reply(text, *payload), *expected, "{text:?} {payload:?}");
    }
}

#[test]
fn the_button_payload_wins_over_the_text() {
    assert_eq!(
        classify_reply("no", Some(OPT_IN_YES_PAYLOAD)),
        Some(ConsentReply::Accept)
    );
    assert_eq!(
        classify_reply("yes", Some(OPT_IN_NO_PAYLOAD)),
        Some(ConsentReply::Reject)
    );
}

#[test]
fn every_state_and_reply_records_what_the_table_says() {
    use ConsentReply::*;
    use ConsentState as S;
    for (state, _) in every_state() {
        for reply in [Accept, Reject, OptOut] {
            let expected = match (state, reply) {
                (S::Pending { .. }, Accept) => Some(Accepted),
                (S::Refused { .. }, Accept) => Some(OptedIn),
                (_, Accept) => None,
                (S::Pending { .. }, Reject) => Some(Rejected),
                (_, Reject) => None,
                (S::Refused { .. }, OptOut) => None,
                (_, OptOut) => Some(OptedOut),
            };
            assert_eq!(consent_event_for_reply(state, reply), expected, "{state:?} + {reply:?}");
        }
    }
}

#[test]
fn an_ordinary_no_in_an_agreed_conversation_does_not_withdraw_consent() {
    let granted = ConsentState::Granted { since: T0 };
    assert_eq!(consent_event_for_reply(granted, ConsentReply::Reject), None);
    assert_eq!(consent_event_for_reply(granted, ConsentReply::OptOut), Some(OptedOut));
}

#[test]
fn consent_state_serializes_with_a_state_tag() {
    let v = serde_json::to_value(ConsentState::Granted { since: 5 }).unwrap();
    assert_eq!(v, serde_json::json!({"state": "granted", "since": 5}));
    for (state, _) in every_state() {
        let v = serde_json::to_value(state).unwrap();
        assert_eq!(v["state"], state.as_str());
        assert_eq!(serde_json::from_value::<ConsentState>(v).unwrap(), state);
    }
}

fn any_kind() -> impl Strategy<Value = ConsentEventKind> {
    proptest::sample::select(ConsentEventKind::ALL.to_vec())
}

proptest! {
    /// Only the contact lifts a refusal: after a refusal, no sequence of requests and "not on
    /// WhatsApp" reports makes the contact askable or messageable again.
    #[test]
    fn only_the_contact_lifts_a_refusal(prefix in proptest::collection::vec(any_kind(), 0..8),
                                        rest in proptest::collection::vec(prop_oneof![Just(Requested), Just(Undeliverable), Just(Rejected), Just(OptedOut)], 0..8)) {
        let mut ledger: Vec<ConsentEvent> = prefix.iter().enumerate().map(|(i, k)| ev(*k, i as Millis)).collect();
        ledger.push(ev(OptedOut, 100));
        ledger.extend(rest.iter().enumerate().map(|(i, k)| ev(*k, 200 + i as Millis)));
        let refused = matches!(consent_state(&ledger), ConsentState::Refused { .. });
        prop_assert!(refused);
        prop_assert_eq!(may_request_opt_in(consent_state(&ledger), last_opt_in_request_at(&ledger), 10_000 * H).unwrap_err().code, "consent_refused");
    }

    /// Consent is granted exactly when the latest agreement or refusal was an agreement that no
    /// "not on WhatsApp" report followed.
    #[test]
    fn granted_means_the_last_word_was_yes(kinds in proptest::collection::vec(any_kind(), 0..16)) {
        let ledger: Vec<ConsentEvent> = kinds.iter().enumerate().map(|(i, k)| ev(*k, i as Millis)).collect();
        let last_yes = kinds.iter().rposition(|k| matches!(k, Accepted | OptedIn));
        let last_no = kinds.iter().rposition(|k| matches!(k, Rejected | OptedOut));
        let last_gone = kinds.iter().rposition(|k| *k == Undeliverable);
        let expected = match last_yes { Some(y) => last_no.is_none_or(|n| n < y) && last_gone.is_none_or(|g| g < y), None => false };
        prop_assert_eq!(consent_state(&ledger).is_granted(), expected);
    }

    #[test]
    fn classifying_any_text_never_panics(text in "\\PC{0,40}", payload in proptest::option::of("\\PC{0,12}")) {
        let _ = classify_reply(&text, payload.as_deref());
    }
}
