//! Duplicate sends across a crash (issue 6), on a fresh SQLite file and a fresh PostgreSQL database:
//! a claim marks its attempt unsettled; a row claimed again while unsettled says the provider may
//! have it; statuses naming the message (callback data) for a provider id openline never recorded
//! confirm the duplicate, and statuses for either id apply to the one message, forward only.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use openline_domain::{Channel, DeliveryStatus, MessageKind, ProviderKind};
use openline_store::messages::{self, NewOutbound, StatusOutcome, StatusReport};
use openline_store::testing::TestDb;
use openline_store::{contacts, conversations, journal, outbox, pacing, Backend, Store, StoreError};

openline_store::both_backends! {
    run = run;
    a_row_claimed_again_while_its_attempt_is_unsettled_may_have_been_sent => unsettled_claims;
    an_attempt_refused_or_put_back_unsent_is_settled => settled_claims;
    statuses_for_two_provider_ids_of_one_message_confirm_the_duplicate => confirmed_after_accept;
    a_status_for_a_crashed_attempt_before_the_resend_is_accepted_still_confirms => confirmed_before_accept;
    an_early_status_of_the_only_attempt_is_no_duplicate => early_status_is_not_a_duplicate;
    callback_data_never_moves_an_inbound_message_or_an_unknown_one => callback_data_scope;
    accepts_recorded_together_are_each_recorded_as_if_alone => accepts_together;
}

async fn run<F, Fut>(backend: Backend, body: F)
where
    F: FnOnce(Store) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let db = TestDb::new(backend);
    let store = Store::open(&db.url).expect("open store");
    body(store).await;
    drop(db);
}

const NOW: i64 = 1_700_000_000_000;
const LEASE: i64 = 30_000;

/// An organization with a Cloud API number and one queued text to +447700900001: (org id, message).
async fn queued_text(store: &Store) -> (String, messages::Message) {
    let (org, mut texts) = queued_texts(store, "Bank", "pn1", 1).await;
    (org, texts.remove(0))
}

async fn claim(store: &Store, at: i64) -> Vec<outbox::Claimed> {
    store.write(move |c| outbox::claim_due(c, at, LEASE, 10)).await.unwrap()
}

/// Records the provider's acceptance as the dispatcher does (possible duplicate first when the claim
/// said so, then the id, then the row done), in one transaction.
async fn accept(store: &Store, job: &outbox::Claimed, wamid: &str, at: i64) -> messages::Message {
    let (job, wamid) = (job.clone(), wamid.to_owned());
    store
        .write(move |c| {
            if job.maybe_sent {
                messages::mark_possible_duplicate(c, &job.message_id, at)?;
            }
            let m = messages::record_provider_accept(c, &job.message_id, ProviderKind::CloudApi, &wamid, at)?;
            // The accept returns the row as it now is (without always reading it back).
            assert_eq!(
                serde_json::to_value(&m).unwrap(),
                serde_json::to_value(messages::get_any(c, &job.message_id)?).unwrap()
            );
            outbox::complete(c, &job.outbox_id, at)?;
            Ok(m)
        })
        .await
        .unwrap()
}

async fn status(store: &Store, wamid: &str, s: DeliveryStatus, at: i64, named: Option<&str>) -> StatusOutcome {
    let (wamid, named) = (wamid.to_owned(), named.map(str::to_owned));
    store
        .write(move |c| {
            messages::apply_status_naming(
                c,
                &StatusReport {
                    provider: ProviderKind::CloudApi,
                    provider_message_id: &wamid,
                    status: s,
                    error_code: None,
                    error_title: None,
                    at,
                    raw: None,
                    now: at,
                },
                named.as_deref(),
                None,
            )
        })
        .await
        .unwrap()
}

async fn message(store: &Store, id: &str) -> messages::Message {
    let id = id.to_owned();
    store.read(move |c| messages::get_any(c, &id)).await.unwrap()
}

async fn journal_kinds(store: &Store, org: &str, subject: &str) -> Vec<String> {
    let (org, subject) = (org.to_owned(), subject.to_owned());
    store
        .read(move |c| journal::page(c, &org, 0, 1_000))
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.subject_id.as_deref() == Some(subject.as_str()))
        .map(|e| e.kind)
        .collect()
}

async fn unsettled_claims(store: Store) {
    let (org, m) = queued_text(&store).await;
    let first = claim(&store, NOW).await;
    assert_eq!(first.len(), 1);
    assert!(!first[0].maybe_sent, "a first attempt cannot have been sent before");
    // The node dies mid-send: nothing is recorded, the lease runs out.
    let again = claim(&store, NOW + LEASE + 1).await;
    assert_eq!(again.len(), 1, "the row is sent again");
    assert!(again[0].maybe_sent, "its previous attempt has no recorded outcome");
    // And again (the second node died too): still a possible duplicate, however often it is claimed.
    let third = claim(&store, NOW + 2 * LEASE + 2).await;
    assert!(third[0].maybe_sent);
    let sent = accept(&store, &third[0], "wamid.B", NOW + 2 * LEASE + 3).await;
    assert!(sent.possible_duplicate);
    assert!(!sent.duplicate_confirmed, "nothing confirmed it yet");
    let json = serde_json::to_value(&sent).unwrap();
    assert_eq!(json["possible_duplicate"], true, "{json}");
    assert_eq!(json["duplicate_confirmed"], false, "{json}");
    let kinds = journal_kinds(&store, &org, &m.id).await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "message.possible_duplicate").count(),
        1,
        "journaled once: {kinds:?}"
    );
    assert!(claim(&store, NOW + 10 * LEASE).await.is_empty(), "done is done");
}

async fn settled_claims(store: Store) {
    let (_, m) = queued_text(&store).await;
    // The provider answered with a refusal: the attempt is settled, a retry is no duplicate.
    let first = claim(&store, NOW).await;
    let id = first[0].outbox_id.clone();
    store
        .write(move |c| outbox::retry_at(c, &id, NOW + 1_000, "The provider answered 500.", NOW + 1))
        .await
        .unwrap();
    let second = claim(&store, NOW + 1_000).await;
    assert_eq!(second.len(), 1);
    assert!(!second[0].maybe_sent, "a refused attempt did not reach the contact");
    // The pacer put it back before it left: settled as well.
    let id = second[0].outbox_id.clone();
    store
        .write(move |c| {
            pacing::defer_claim(c, &id, NOW + 2_000, NOW + 1_001)?;
            outbox::settle_unsent(c, &id)
        })
        .await
        .unwrap();
    let third = claim(&store, NOW + 2_000).await;
    assert!(
        !third[0].maybe_sent,
        "an attempt put back unsent did not reach the provider"
    );
    // No answer at all (a timeout): the provider may have it.
    let id = third[0].outbox_id.clone();
    store
        .write(move |c| outbox::retry_unsettled_at(c, &id, NOW + 3_000, "The request timed out.", NOW + 2_001))
        .await
        .unwrap();
    let fourth = claim(&store, NOW + 3_000).await;
    assert!(
        fourth[0].maybe_sent,
        "a timed-out attempt may have reached the provider"
    );
    // Once known, it stays known even if a later attempt is put back unsent.
    let id = fourth[0].outbox_id.clone();
    store
        .write(move |c| {
            pacing::defer_claim(c, &id, NOW + 4_000, NOW + 3_001)?;
            outbox::settle_unsent(c, &id)
        })
        .await
        .unwrap();
    let fifth = claim(&store, NOW + 4_000).await;
    assert!(fifth[0].maybe_sent);
    let sent = accept(&store, &fifth[0], "wamid.A", NOW + 4_001).await;
    assert_eq!(sent.id, m.id);
    assert!(sent.possible_duplicate);
}

async fn confirmed_after_accept(store: Store) {
    let (org, m) = queued_text(&store).await;
    claim(&store, NOW).await; // attempt 1 reaches the provider as wamid.A; the node dies.
    let again = claim(&store, NOW + LEASE + 1).await;
    let sent = accept(&store, &again[0], "wamid.B", NOW + LEASE + 2).await;
    assert_eq!(sent.provider_message_id.as_deref(), Some("wamid.B"));
    // The statuses of both copies arrive, each naming the message.
    let b = status(&store, "wamid.B", DeliveryStatus::Sent, NOW + LEASE + 3, Some(&m.id)).await;
    assert!(matches!(b, StatusOutcome::Advanced(_)), "{b:?}");
    assert!(!message(&store, &m.id).await.duplicate_confirmed);
    let a = status(
        &store,
        "wamid.A",
        DeliveryStatus::Delivered,
        NOW + LEASE + 4,
        Some(&m.id),
    )
    .await;
    let StatusOutcome::Advanced(after) = a else {
        panic!("the crashed attempt's status applies to the message: {a:?}")
    };
    assert_eq!(after.id, m.id);
    assert_eq!(after.status, DeliveryStatus::Delivered);
    assert!(after.possible_duplicate && after.duplicate_confirmed);
    // Later statuses of either id apply, even without callback data; statuses only move forward.
    assert!(matches!(
        status(&store, "wamid.A", DeliveryStatus::Read, NOW + LEASE + 6, None).await,
        StatusOutcome::Advanced(_)
    ));
    let late = status(&store, "wamid.B", DeliveryStatus::Delivered, NOW + LEASE + 7, None).await;
    let StatusOutcome::Stale(late) = late else {
        panic!("a late delivered does not undo read: {late:?}")
    };
    assert_eq!(late.status, DeliveryStatus::Read);
    // One copy failing does not fail a message another copy delivered.
    let other = queued_text_in(&store, &org).await;
    let first = claim(&store, NOW + 100_000).await;
    assert_eq!(first[0].message_id, other);
    let again = claim(&store, NOW + 100_000 + LEASE + 1).await;
    accept(&store, &again[0], "wamid.D", NOW + 100_000 + LEASE + 2).await;
    status(
        &store,
        "wamid.D",
        DeliveryStatus::Delivered,
        NOW + 100_000 + LEASE + 3,
        Some(&other),
    )
    .await;
    status(
        &store,
        "wamid.C",
        DeliveryStatus::Failed,
        NOW + 100_000 + LEASE + 4,
        Some(&other),
    )
    .await;
    let m2 = message(&store, &other).await;
    assert_eq!(m2.status, DeliveryStatus::Delivered);
    assert!(m2.duplicate_confirmed);
    let kinds = journal_kinds(&store, &org, &m.id).await;
    assert_eq!(
        kinds.iter().filter(|k| *k == "message.duplicate_confirmed").count(),
        1,
        "confirmed once: {kinds:?}"
    );
}

/// Another queued text in `org`'s existing thread; returns its id.
async fn queued_text_in(store: &Store, org: &str) -> String {
    let org = org.to_owned();
    store
        .write(move |c| {
            let r = c.query_one(
                "select v.id, v.sender_id from conversations v where v.org_id = ?",
                openline_store::params![&org],
            )?;
            let (conv, sender) = (r.string(0)?, r.string(1)?);
            let m = messages::insert_outbound(
                c,
                &NewOutbound {
                    org_id: &org,
                    conversation_id: &conv,
                    sender_id: &sender,
                    author_user_id: None,
                    kind: MessageKind::Text,
                    body: Some("Again"),
                    template: None,
                    queue_reason: None,
                    business_initiated: false,
                    now: NOW + 1,
                },
            )?;
            Ok(m.id)
        })
        .await
        .unwrap()
}

async fn confirmed_before_accept(store: Store) {
    let (_, m) = queued_text(&store).await;
    claim(&store, NOW).await; // attempt 1 reaches the provider as wamid.A; the node dies.
    let again = claim(&store, NOW + LEASE + 1).await;
    // wamid.A's status arrives while the resend is in flight: it names the message.
    let a = status(&store, "wamid.A", DeliveryStatus::Sent, NOW + LEASE + 2, Some(&m.id)).await;
    assert!(matches!(a, StatusOutcome::Advanced(_)), "{a:?}");
    assert!(!message(&store, &m.id).await.duplicate_confirmed, "one id so far");
    let sent = accept(&store, &again[0], "wamid.B", NOW + LEASE + 3).await;
    assert!(sent.possible_duplicate && sent.duplicate_confirmed, "{sent:?}");
    assert_eq!(sent.status, DeliveryStatus::Sent);
}

async fn early_status_is_not_a_duplicate(store: Store) {
    let (_, m) = queued_text(&store).await;
    let job = claim(&store, NOW).await;
    // Meta's `sent` overtakes the HTTP answer.
    status(&store, "wamid.A", DeliveryStatus::Sent, NOW + 1, Some(&m.id)).await;
    let sent = accept(&store, &job[0], "wamid.A", NOW + 2).await;
    assert_eq!(sent.status, DeliveryStatus::Sent);
    assert!(!sent.possible_duplicate && !sent.duplicate_confirmed, "{sent:?}");
    assert!(matches!(
        status(&store, "wamid.A", DeliveryStatus::Sent, NOW + 3, Some(&m.id)).await,
        StatusOutcome::Duplicate
    ));
}

async fn callback_data_scope(store: Store) {
    let (org, m) = queued_text(&store).await;
    // A status naming a message that does not exist stays an orphan.
    assert!(matches!(
        status(&store, "wamid.X", DeliveryStatus::Sent, NOW + 1, Some("msg_nope")).await,
        StatusOutcome::Orphan
    ));
    // Nor can it name an inbound message (or a notice): only messages openline sent.
    let org2 = org.clone();
    let inbound = store
        .write(move |c| {
            let sender = c
                .query_one(
                    "select id from senders where org_id = ?",
                    openline_store::params![&org2],
                )?
                .string(0)?;
            let outcome = messages::insert_inbound(
                c,
                &messages::NewInbound {
                    org_id: &org2,
                    sender_id: &sender,
                    channel: Channel::Whatsapp,
                    provider: ProviderKind::CloudApi,
                    from_phone: Some("+447700900001"),
                    wa_user_id: None,
                    profile_name: None,
                    provider_message_id: "wamid.IN",
                    kind: MessageKind::Text,
                    body: Some("hello"),
                    media: None,
                    reply_to: None,
                    raw: None,
                    sent_at: NOW,
                    now: NOW,
                },
            )?;
            match outcome {
                messages::InboundOutcome::Stored(m) => Ok(m.id),
                messages::InboundOutcome::Duplicate => Err(openline_store::StoreError::Db("dup".into())),
            }
        })
        .await
        .unwrap();
    assert!(matches!(
        status(&store, "wamid.Y", DeliveryStatus::Read, NOW + 2, Some(&inbound)).await,
        StatusOutcome::Orphan
    ));
    assert_eq!(message(&store, &inbound).await.status, DeliveryStatus::Received);
    assert_eq!(message(&store, &m.id).await.status, DeliveryStatus::Queued);
}

/// An organization with a number and `n` queued texts, each to a contact of its own.
async fn queued_texts(
    store: &Store,
    name: &'static str,
    pnid: &'static str,
    n: usize,
) -> (String, Vec<messages::Message>) {
    store
        .write(move |c| {
            let (org, sender) = openline_store::testing::org_with_number(c, name, pnid, NOW)?;
            let mut out = Vec::new();
            for i in 0..n {
                let contact = contacts::create(c, &org.id, &format!("+4477009{:05}", i + 1), None, NOW)?;
                let conv =
                    conversations::find_or_create_open(c, &org.id, Channel::Whatsapp, &contact.id, &sender.id, NOW)?;
                out.push(messages::insert_outbound(
                    c,
                    &NewOutbound {
                        org_id: &org.id,
                        conversation_id: &conv,
                        sender_id: &sender.id,
                        author_user_id: None,
                        kind: MessageKind::Text,
                        body: Some("Hi"),
                        template: None,
                        queue_reason: None,
                        business_initiated: false,
                        now: NOW,
                    },
                )?);
            }
            Ok((org.id, out))
        })
        .await
        .unwrap()
}

async fn accepts_together(store: Store) {
    // Two organizations (two chains), 70 sends in all: more than one set of lookups.
    let (bank, a) = queued_texts(&store, "Bank", "11", 40).await;
    let (insurer, b) = queued_texts(&store, "Insurer", "22", 30).await;
    // Message a[0]: Meta's `sent` overtook the answer. Message a[1]: an earlier attempt was accepted
    // as wamid.old (its outcome recorded), so a second id confirms a duplicate. Message b[0] is
    // accepted twice in the same batch.
    status(&store, "wamid.a0", DeliveryStatus::Sent, NOW + 1, None).await;
    let first = a[1].id.clone();
    store
        .write(move |c| messages::record_provider_accept(c, &first, ProviderKind::CloudApi, "wamid.old", NOW + 1))
        .await
        .unwrap();
    let mut batch: Vec<(String, String)> = a
        .iter()
        .chain(&b)
        .enumerate()
        .map(|(i, m)| {
            (
                m.id.clone(),
                if i == 0 {
                    "wamid.a0".to_owned()
                } else {
                    format!("wamid.{i}")
                },
            )
        })
        .collect();
    batch.push((b[0].id.clone(), "wamid.again".to_owned()));
    let wanted = batch.clone();
    let recorded = store
        .write(move |c| {
            let rows: Vec<messages::ProviderAccept<'_>> = wanted
                .iter()
                .map(|(id, wamid)| messages::ProviderAccept {
                    message_id: id,
                    provider: ProviderKind::CloudApi,
                    provider_message_id: wamid,
                    now: NOW + 2,
                })
                .collect();
            let recorded = messages::record_provider_accepts(c, &rows)?;
            // Each as it now stands in the database, except the first of the message accepted twice,
            // which the second changed after it was recorded.
            for (i, m) in recorded.iter().enumerate() {
                if m.id != rows[0].message_id && i != 40 {
                    assert_eq!(
                        serde_json::to_value(m).unwrap(),
                        serde_json::to_value(messages::get_any(c, &m.id)?).unwrap()
                    );
                }
            }
            Ok(recorded)
        })
        .await
        .unwrap();
    assert_eq!(recorded.len(), batch.len());
    for (m, (id, wamid)) in recorded.iter().zip(&batch) {
        assert_eq!(&m.id, id, "in the order given");
        assert_eq!(m.provider_message_id.as_deref(), Some(wamid.as_str()));
    }
    assert_eq!(recorded[0].status, DeliveryStatus::Sent, "the early status is applied");
    assert!(!recorded[0].duplicate_confirmed);
    assert!(
        recorded[1].duplicate_confirmed,
        "a second provider id confirms the duplicate"
    );
    assert!(recorded[2..40]
        .iter()
        .all(|m| m.status == DeliveryStatus::Accepted && !m.possible_duplicate));
    assert!(
        recorded[70].duplicate_confirmed,
        "the message accepted twice in the batch"
    );
    assert!(message(&store, &b[0].id).await.duplicate_confirmed);
    // Archived once per accept, in each organization's own chain, and both chains verify.
    assert_eq!(
        journal_kinds(&store, &bank, &a[1].id).await,
        [
            "message.created",
            "message.accepted",
            "message.duplicate_confirmed",
            "message.accepted"
        ]
    );
    assert_eq!(
        journal_kinds(&store, &insurer, &b[0].id).await,
        [
            "message.created",
            "message.accepted",
            "message.duplicate_confirmed",
            "message.accepted"
        ]
    );
    assert_eq!(journal_kinds(&store, &insurer, &a[2].id).await, Vec::<String>::new());
    for (org, n) in [(&bank, 40), (&insurer, 30)] {
        let subjects: Vec<&String> = if n == 40 {
            a.iter().map(|m| &m.id).collect()
        } else {
            b.iter().map(|m| &m.id).collect()
        };
        for id in subjects {
            let kinds = journal_kinds(&store, org, id).await;
            assert!(kinds.iter().any(|k| k == "message.accepted"), "{id}: {kinds:?}");
        }
    }
    let reports = store.write(|c| journal::verify(c, None)).await.unwrap();
    assert!(reports.iter().all(|r| r.problem.is_none()), "{reports:?}");
    // An unknown message fails the whole batch with NotFound, and nothing of it is recorded.
    let known = a[3].id.clone();
    let failed = store
        .write(move |c| {
            let rows = [
                messages::ProviderAccept {
                    message_id: &known,
                    provider: ProviderKind::CloudApi,
                    provider_message_id: "wamid.never",
                    now: NOW + 3,
                },
                messages::ProviderAccept {
                    message_id: "msg_unknown",
                    provider: ProviderKind::CloudApi,
                    provider_message_id: "wamid.nobody",
                    now: NOW + 3,
                },
            ];
            messages::record_provider_accepts(c, &rows)
        })
        .await;
    assert!(matches!(failed, Err(StoreError::NotFound)), "{failed:?}");
    assert_eq!(
        message(&store, &a[3].id).await.provider_message_id.as_deref(),
        Some("wamid.3")
    );
    // Nothing to record is nothing recorded.
    let none = store
        .write(|c| messages::record_provider_accepts(c, &[]))
        .await
        .unwrap();
    assert!(none.is_empty());
}
