//! Table tests of the send decision and of releasing queued messages.

use super::*;
use crate::window::WINDOW_MS;

const H: Millis = 3_600_000;
const NOW: Millis = 1_000 * H;

fn granted_open() -> ContactFacts {
    ContactFacts {
        consent: ConsentState::Granted { since: NOW - 50 * H },
        last_opt_in_request_at: Some(NOW - 51 * H),
        window: Window::Open { until: NOW + H },
        within_messaging_limit: true,
        marketing: MarketingPreference::Allowed { since: None },
    }
}

fn facts(text: &str) -> SendFacts<'_> {
    SendFacts {
        channel: Channel::Whatsapp,
        author_role: Role::Agent,
        org_whatsapp_enabled: true,
        user_whatsapp_enabled: true,
        text,
        outgoing: Outgoing::FreeForm,
        contact: granted_open(),
    }
}

fn rejected_code(f: &SendFacts<'_>) -> Option<&'static str> {
    match decide_send(f, NOW) {
        SendDecision::Reject(e) => Some(e.code),
        _ => None,
    }
}

/// A decision written as a short code: `send`, `q:<reason>` or `r:<code>`.
fn short(d: &SendDecision) -> String {
    match d {
        SendDecision::SendNow => "send".to_owned(),
        SendDecision::Queue { reason, .. } => format!("q:{reason}"),
        SendDecision::Reject(e) => format!("r:{}", e.code),
    }
}

#[test]
fn an_agent_with_whatsapp_enabled_sends_a_text_now() {
    assert_eq!(decide_send(&facts("Hello"), NOW), SendDecision::SendNow);
}

#[test]
fn each_refusal_has_its_own_code() {
    let mut f = facts("Hello");
    f.author_role = Role::Viewer;
    assert_eq!(rejected_code(&f), Some("forbidden_role"));
    let mut f = facts("Hello");
    f.org_whatsapp_enabled = false;
    assert_eq!(rejected_code(&f), Some("whatsapp_disabled"));
    let mut f = facts("Hello");
    f.user_whatsapp_enabled = false;
    assert_eq!(rejected_code(&f), Some("whatsapp_disabled_for_user"));
    assert_eq!(rejected_code(&facts("  \n")), Some("empty_message"));
    let long = "é".repeat(MAX_TEXT_CHARS + 1);
    assert_eq!(rejected_code(&facts(&long)), Some("message_too_long"));
    let exact = "é".repeat(MAX_TEXT_CHARS);
    assert_eq!(rejected_code(&facts(&exact)), None);
}

#[test]
fn the_foundation_checks_come_before_consent() {
    let mut f = facts("Hello");
    f.author_role = Role::Viewer;
    f.contact.consent = ConsentState::Refused { since: 0 };
    assert_eq!(rejected_code(&f), Some("forbidden_role"));
}

#[test]
fn sms_does_not_need_the_whatsapp_switch_nor_consent_nor_the_window() {
    let mut f = facts("Hello");
    f.channel = Channel::Sms;
    f.org_whatsapp_enabled = false;
    f.contact = ContactFacts {
        consent: ConsentState::NotOnWhatsapp { since: 0 },
        last_opt_in_request_at: None,
        window: Window::Closed { since: None },
        within_messaging_limit: false,
        marketing: MarketingPreference::Allowed { since: None },
    };
    assert_eq!(decide_send(&f, NOW), SendDecision::SendNow);
    f.outgoing = Outgoing::Template {
        approved: true,
        marketing: false,
    };
    assert_eq!(rejected_code(&f), Some("not_supported_on_sms"));
    f.outgoing = Outgoing::OptInRequest { approved: true };
    assert_eq!(rejected_code(&f), Some("not_supported_on_sms"));
}

/// A consent state and the latest opt-in request.
type Situation = (ConsentState, Option<Millis>);

/// Every consent state × every kind of message × window and limit, against the table in the
/// module docs. Columns: window open; closed and within the limit; closed and at the limit.
#[test]
fn every_consent_state_and_message_kind_decides_as_the_table_says() {
    use ConsentState as S;
    const FF: Outgoing = Outgoing::FreeForm;
    const TPL: Outgoing = Outgoing::Template {
        approved: true,
        marketing: false,
    };
    const TPL_X: Outgoing = Outgoing::Template {
        approved: false,
        marketing: false,
    };
    const REQ: Outgoing = Outgoing::OptInRequest { approved: true };
    const REQ_X: Outgoing = Outgoing::OptInRequest { approved: false };
    let recent = Some(NOW - H);
    let old = Some(NOW - WINDOW_MS);
    let unknown = (S::Unknown, None);
    let pending_recent = (S::Pending { requested_at: NOW - H }, recent);
    let pending_old = (
        S::Pending {
            requested_at: NOW - WINDOW_MS,
        },
        old,
    );
    let granted = (S::Granted { since: 0 }, old);
    let refused = (S::Refused { since: 0 }, old);
    let gone_recent = (S::NotOnWhatsapp { since: NOW - H }, recent);
    let gone_old = (S::NotOnWhatsapp { since: NOW - WINDOW_MS }, old);
    let q_consent = "q:awaiting_consent";
    let q_limit = "q:messaging_limit";
    let r_refused = "r:consent_refused";
    let r_gone = "r:not_on_whatsapp";
    let r_tpl = "r:template_not_approved";
    let r_soon = "r:opt_in_too_soon";
    let r_already = "r:consent_already_granted";
    #[rustfmt::skip]
    let table: Vec<(Situation, Outgoing, [&str; 3])> = vec![
        (unknown,        FF,    [q_consent, q_consent, q_consent]),
        (pending_recent, FF,    [q_consent, q_consent, q_consent]),
        (pending_old,    FF,    [q_consent, q_consent, q_consent]),
        (granted,        FF,    ["send", "q:window_closed", "q:window_closed"]),
        (refused,        FF,    [r_refused, r_refused, r_refused]),
        (gone_recent,    FF,    [r_gone, r_gone, r_gone]),
        (gone_old,       FF,    [r_gone, r_gone, r_gone]),
        (unknown,        TPL,   [q_consent, q_consent, q_consent]),
        (pending_recent, TPL,   [q_consent, q_consent, q_consent]),
        (pending_old,    TPL,   [q_consent, q_consent, q_consent]),
        (granted,        TPL,   ["send", "send", q_limit]),
        (refused,        TPL,   [r_refused, r_refused, r_refused]),
        (gone_recent,    TPL,   [r_gone, r_gone, r_gone]),
        (gone_old,       TPL,   [r_gone, r_gone, r_gone]),
        (unknown,        TPL_X, [r_tpl, r_tpl, r_tpl]),
        (pending_recent, TPL_X, [r_tpl, r_tpl, r_tpl]),
        (pending_old,    TPL_X, [r_tpl, r_tpl, r_tpl]),
        (granted,        TPL_X, [r_tpl, r_tpl, r_tpl]),
        (refused,        TPL_X, [r_refused, r_refused, r_refused]),
        (gone_recent,    TPL_X, [r_gone, r_gone, r_gone]),
        (gone_old,       TPL_X, [r_gone, r_gone, r_gone]),
        (unknown,        REQ,   ["send", "send", q_limit]),
        (pending_recent, REQ,   [r_soon, r_soon, r_soon]),
        (pending_old,    REQ,   ["send", "send", q_limit]),
        (granted,        REQ,   [r_already, r_already, r_already]),
        (refused,        REQ,   [r_refused, r_refused, r_refused]),
        (gone_recent,    REQ,   [r_soon, r_soon, r_soon]),
        (gone_old,       REQ,   ["send", "send", q_limit]),
        (unknown,        REQ_X, [r_tpl, r_tpl, r_tpl]),
        (pending_recent, REQ_X, [r_soon, r_soon, r_soon]),
        (pending_old,    REQ_X, [r_tpl, r_tpl, r_tpl]),
        (granted,        REQ_X, [r_already, r_already, r_already]),
        (refused,        REQ_X, [r_refused, r_refused, r_refused]),
        (gone_recent,    REQ_X, [r_soon, r_soon, r_soon]),
        (gone_old,       REQ_X, [r_tpl, r_tpl, r_tpl]),
    ];
    let columns = [
        (Window::Open { until: NOW + H }, true),
        (Window::Closed { since: Some(NOW - H) }, true),
        (Window::Closed { since: None }, false),
    ];
    for ((consent, last_request), outgoing, expected) in table {
        for ((window, within), want) in columns.iter().zip(expected) {
            let mut f = facts("Hello");
            f.outgoing = outgoing;
            f.contact = ContactFacts {
                consent,
                last_opt_in_request_at: last_request,
                window: *window,
                within_messaging_limit: *within,
                marketing: MarketingPreference::Allowed { since: None },
            };
            assert_eq!(
                short(&decide_send(&f, NOW)),
                want,
                "{consent:?} {outgoing:?} {window:?} within={within}"
            );
        }
    }
}

#[test]
fn an_open_window_lets_a_template_through_even_at_the_limit() {
    // Inside the window a template is not business-initiated, so the tier does not apply.
    let mut f = facts("Your appointment is confirmed.");
    f.outgoing = Outgoing::Template {
        approved: true,
        marketing: false,
    };
    f.contact.within_messaging_limit = false;
    assert_eq!(decide_send(&f, NOW), SendDecision::SendNow);
}

#[test]
fn queue_and_reject_messages_tell_the_agent_what_to_do() {
    let mut f = facts("Hello");
    f.contact.window = Window::Closed { since: Some(NOW - H) };
    let SendDecision::Queue { reason, explanation } = decide_send(&f, NOW) else {
        panic!("expected a queue decision");
    };
    assert_eq!(reason, WINDOW_CLOSED);
    assert!(explanation.contains("template"));
    f.contact.consent = ConsentState::NotOnWhatsapp { since: 0 };
    let SendDecision::Reject(e) = decide_send(&f, NOW) else {
        panic!("expected a rejection");
    };
    assert!(e.message.contains("SMS"));
    f.contact.consent = ConsentState::Refused { since: 0 };
    let SendDecision::Reject(e) = decide_send(&f, NOW) else {
        panic!("expected a rejection");
    };
    assert!(e.message.contains("replying yes"));
    for reason in [
        AWAITING_CONSENT,
        WINDOW_CLOSED,
        MESSAGING_LIMIT,
        EARLIER_MESSAGE_WAITING,
    ] {
        assert!(explain_queue(reason).contains("queued"), "{reason}");
    }
}

fn q(id: u32, outgoing: Outgoing) -> QueuedMessage<u32> {
    QueuedMessage { id, outgoing }
}

const FF: Outgoing = Outgoing::FreeForm;
const TPL: Outgoing = Outgoing::Template {
    approved: true,
    marketing: false,
};
const REQ: Outgoing = Outgoing::OptInRequest { approved: true };

#[test]
fn once_the_contact_opts_in_everything_queued_goes_in_order() {
    let queue = [q(1, FF), q(2, TPL), q(3, FF)];
    let r = release_queued(&queue, &granted_open(), NOW);
    assert_eq!(r.send, [1, 2, 3]);
    assert!(r.cancel.is_empty() && r.waiting.is_empty());
}

#[test]
fn a_free_form_message_waits_for_the_window_and_holds_free_text_behind_it() {
    let mut facts = granted_open();
    facts.window = Window::Closed { since: Some(NOW - H) };
    let r = release_queued(&[q(1, TPL), q(2, FF), q(3, FF)], &facts, NOW);
    assert_eq!(r.send, [1]);
    assert_eq!(r.waiting, [(2, WINDOW_CLOSED), (3, EARLIER_MESSAGE_WAITING)]);
}

#[test]
fn a_template_passes_free_text_held_for_the_window_because_it_restarts_the_conversation() {
    let mut facts = granted_open();
    facts.window = Window::Closed { since: Some(NOW - H) };
    let r = release_queued(&[q(1, FF), q(2, TPL), q(3, FF)], &facts, NOW);
    assert_eq!(r.send, [2]);
    assert_eq!(r.waiting, [(1, WINDOW_CLOSED), (3, EARLIER_MESSAGE_WAITING)]);
    // Held for anything else (here the messaging limit), order is kept: the template waits.
    facts.within_messaging_limit = false;
    let r = release_queued(&[q(1, TPL), q(2, FF), q(3, TPL)], &facts, NOW);
    assert!(r.send.is_empty());
    assert_eq!(r.waiting[2], (3, EARLIER_MESSAGE_WAITING));
    // And without consent nothing but the opt-in request goes.
    facts.within_messaging_limit = true;
    facts.consent = ConsentState::Unknown;
    let r = release_queued(&[q(1, FF), q(2, TPL)], &facts, NOW);
    assert!(r.send.is_empty());
}

#[test]
fn without_consent_messages_wait_but_the_opt_in_request_behind_them_goes() {
    let facts = ContactFacts {
        consent: ConsentState::Unknown,
        last_opt_in_request_at: None,
        window: Window::Closed { since: None },
        within_messaging_limit: true,
        marketing: MarketingPreference::Allowed { since: None },
    };
    let r = release_queued(&[q(1, FF), q(2, REQ), q(3, FF), q(4, REQ)], &facts, NOW);
    assert_eq!(r.send, [2]);
    assert_eq!(r.waiting, [(1, AWAITING_CONSENT), (3, EARLIER_MESSAGE_WAITING)]);
    // The second request would come seconds after the first: it is cancelled, never sent.
    assert_eq!(r.cancel.len(), 1);
    assert_eq!((r.cancel[0].0, r.cancel[0].1.code), (4, "opt_in_too_soon"));
}

#[test]
fn a_queued_opt_in_request_is_cancelled_once_the_contact_has_answered() {
    let r = release_queued(&[q(1, REQ)], &granted_open(), NOW);
    assert_eq!(r.cancel[0].1.code, "consent_already_granted");
    let mut refused = granted_open();
    refused.consent = ConsentState::Refused { since: NOW - H };
    let r = release_queued(&[q(1, REQ), q(2, FF)], &refused, NOW);
    assert_eq!(r.cancel[0].1.code, "consent_refused");
    // The message is not dropped: it waits, and the agent sees why.
    assert_eq!(r.waiting, [(2, "consent_refused")]);
}

#[test]
fn at_the_messaging_limit_templates_wait_and_are_not_dropped() {
    let mut facts = granted_open();
    facts.window = Window::Closed { since: Some(NOW - H) };
    facts.within_messaging_limit = false;
    let r = release_queued(&[q(1, TPL), q(2, TPL)], &facts, NOW);
    assert!(r.send.is_empty());
    assert_eq!(r.waiting, [(1, MESSAGING_LIMIT), (2, EARLIER_MESSAGE_WAITING)]);
    facts.within_messaging_limit = true;
    assert_eq!(release_queued(&[q(1, TPL), q(2, TPL)], &facts, NOW).send, [1, 2]);
}

#[test]
fn a_template_that_lost_its_approval_waits_with_the_reason() {
    let mut facts = granted_open();
    facts.window = Window::Closed { since: Some(NOW - H) };
    let r = release_queued(
        &[
            q(
                1,
                Outgoing::Template {
                    approved: false,
                    marketing: false,
                },
            ),
            q(2, TPL),
        ],
        &facts,
        NOW,
    );
    assert!(r.send.is_empty());
    assert_eq!(r.waiting, [(1, "template_not_approved"), (2, EARLIER_MESSAGE_WAITING)]);
}

const PROMO: Outgoing = Outgoing::Template {
    approved: true,
    marketing: true,
};

#[test]
fn a_contact_who_stopped_marketing_gets_no_marketing_template_and_everything_else_as_before() {
    let mut f = facts("20% off this week");
    f.contact.marketing = MarketingPreference::Stopped { since: NOW - H };
    f.outgoing = PROMO;
    assert_eq!(rejected_code(&f), Some("marketing_stopped"));
    // Open window or not.
    f.contact.window = Window::Closed {
        since: Some(NOW - 30 * H),
    };
    assert_eq!(rejected_code(&f), Some("marketing_stopped"));
    // Without consent yet it is refused too, not queued: consent would not make it deliverable.
    f.contact.consent = ConsentState::Unknown;
    assert_eq!(rejected_code(&f), Some("marketing_stopped"));
    f.contact.consent = ConsentState::Granted { since: NOW - 50 * H };
    // Utility and authentication templates, and replies in the window, are unaffected.
    f.outgoing = TPL;
    assert_eq!(decide_send(&f, NOW), SendDecision::SendNow);
    f.contact.window = Window::Open { until: NOW + H };
    f.outgoing = FF;
    assert_eq!(decide_send(&f, NOW), SendDecision::SendNow);
    // Resuming lifts it.
    f.contact.marketing = MarketingPreference::Allowed { since: Some(NOW) };
    f.outgoing = PROMO;
    assert_eq!(decide_send(&f, NOW), SendDecision::SendNow);
}

#[test]
fn a_marketing_stop_comes_after_consent_and_approval_in_the_order_of_refusals() {
    let mut f = facts("20% off this week");
    f.contact.marketing = MarketingPreference::Stopped { since: NOW - H };
    f.outgoing = PROMO;
    f.contact.consent = ConsentState::Refused { since: NOW - 2 * H };
    assert_eq!(rejected_code(&f), Some("consent_refused"));
    f.contact.consent = ConsentState::Granted { since: NOW - 50 * H };
    f.outgoing = Outgoing::Template {
        approved: false,
        marketing: true,
    };
    assert_eq!(rejected_code(&f), Some("template_not_approved"));
}

#[test]
fn a_queued_marketing_template_waits_while_the_contact_has_stopped_marketing() {
    let mut facts = granted_open();
    facts.marketing = MarketingPreference::Stopped { since: NOW - H };
    let r = release_queued(&[q(1, PROMO), q(2, FF)], &facts, NOW);
    assert!(r.send.is_empty());
    assert_eq!(r.waiting, [(1, "marketing_stopped"), (2, EARLIER_MESSAGE_WAITING)]);
    facts.marketing = MarketingPreference::Allowed { since: Some(NOW) };
    assert_eq!(release_queued(&[q(1, PROMO), q(2, FF)], &facts, NOW).send, [1, 2]);
}
