//! The store's contract, run against both backends: every test here runs once on a fresh SQLite
//! file and once on a fresh PostgreSQL database.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use openline_domain::{Channel, DeliveryStatus, MessageKind, ProviderKind, Role};
use openline_store::messages::{InboundOutcome, NewInbound, NewOutbound, StatusOutcome, StatusReport};
use openline_store::orgs::Scope;
use openline_store::params;
use openline_store::testing::TestDb;
use openline_store::{
    consent, contacts, conversations, idempotency, journal, messages, orgs, outbox, senders, users, Backend, Store,
    StoreError,
};

/// Declares `name_sqlite` and `name_postgres` tests running `body(store)`.
macro_rules! both_backends {
    ($($name:ident => $body:ident;)*) => {
        mod sqlite { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::run(openline_store::Backend::Sqlite, super::$body).await } )* }
        mod postgres { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::run(openline_store::Backend::Postgres, super::$body).await } )* }
    };
}

both_backends! {
    an_inbound_message_creates_its_contact_and_thread_and_a_retry_is_a_no_op => inbound_dedupe;
    a_second_message_joins_the_open_thread_and_moves_the_window => thread_and_window;
    statuses_only_move_forward_and_early_ones_wait_for_their_message => statuses;
    the_outbox_is_claimed_once_and_a_lapsed_lease_is_claimed_again => outbox_claims;
    another_organization_sees_nothing => scoping;
    users_tokens_and_sessions => auth;
    concurrent_writes_share_commits_and_a_failing_job_fails_alone => group_commit;
    the_inbox_pages_newest_activity_first => inbox_paging;
    idempotency_keys_remember_the_first_answer => idempotency_keys;
    the_consent_ledger_only_grows_and_is_scoped => consent_ledger;
    held_messages_are_released_in_order_or_cancelled => held_messages;
    the_archive_has_one_entry_per_event_and_detects_every_kind_of_tampering => archive;
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

struct World {
    org: String,
    sender: senders::Sender,
    scope: Scope,
}

const NOW: i64 = 1_700_000_000_000;

async fn world(store: &Store, name: &'static str, pnid: &'static str) -> World {
    store
        .write(move |c| {
            let org = orgs::create(c, name, None, "on", NOW)?;
            let sender = senders::create(
                c,
                &senders::NewSender {
                    org_id: &org.id,
                    channel: Channel::Whatsapp,
                    provider: ProviderKind::CloudApi,
                    phone_number: "+15550001000",
                    phone_number_id: pnid,
                    waba_id: Some("waba1"),
                    display_name: "Demo",
                    throughput_per_s: 80,
                },
                NOW,
            )?;
            Ok(World {
                scope: Scope {
                    org_ids: vec![org.id.clone()],
                },
                org: org.id,
                sender,
            })
        })
        .await
        .unwrap()
}

fn inbound<'a>(w: &'a World, wamid: &'a str, phone: &'a str, body: &'a str, at: i64) -> NewInbound<'a> {
    NewInbound {
        org_id: &w.org,
        sender_id: &w.sender.id,
        channel: Channel::Whatsapp,
        provider: ProviderKind::CloudApi,
        from_phone: Some(phone),
        wa_user_id: None,
        profile_name: Some("Ada"),
        provider_message_id: wamid,
        kind: MessageKind::Text,
        body: Some(body),
        media: None,
        reply_to: None,
        raw: None,
        sent_at: at,
        now: at,
    }
}

async fn store_inbound(store: &Store, w: &World, wamid: &str, phone: &str, body: &str, at: i64) -> InboundOutcome {
    let (org, sender) = (w.org.clone(), w.sender.id.clone());
    let (wamid, phone, body) = (wamid.to_owned(), phone.to_owned(), body.to_owned());
    store
        .write(move |c| {
            let w = World {
                org,
                sender: senders::get_any(c, &sender)?,
                scope: Scope { org_ids: vec![] },
            };
            messages::insert_inbound(c, &inbound(&w, &wamid, &phone, &body, at))
        })
        .await
        .unwrap()
}

async fn inbound_dedupe(store: Store) {
    let w = world(&store, "Bank", "pn1").await;
    let first = store_inbound(&store, &w, "wamid.A", "+447700900001", "Hello", NOW).await;
    let InboundOutcome::Stored(m) = first else {
        panic!("first delivery must store")
    };
    assert_eq!(m.body.as_deref(), Some("Hello"));
    assert_eq!(m.status, DeliveryStatus::Received);
    let again = store_inbound(&store, &w, "wamid.A", "+447700900001", "Hello", NOW).await;
    assert!(matches!(again, InboundOutcome::Duplicate));
    let scope = w.scope.clone();
    let (convs, cts) = store
        .read(move |c| {
            Ok((
                conversations::list(c, &scope, None, 10)?,
                contacts::list(c, &scope, None, None, 10)?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(convs.len(), 1);
    assert_eq!(cts.len(), 1);
    assert_eq!(cts[0].whatsapp_name.as_deref(), Some("Ada"));
    let (scope, cid) = (w.scope.clone(), convs[0].id.clone());
    let msgs = store
        .read(move |c| messages::list_for_conversation(c, &scope, &cid, None, 50))
        .await
        .unwrap();
    assert_eq!(msgs.len(), 1, "a retried webhook stores one message");
}

async fn thread_and_window(store: Store) {
    let w = world(&store, "Bank", "pn1").await;
    store_inbound(&store, &w, "wamid.1", "+447700900001", "one", NOW).await;
    store_inbound(&store, &w, "wamid.2", "+447700900001", "two", NOW + 60_000).await;
    // A late-arriving older message must not move the window backwards.
    store_inbound(&store, &w, "wamid.0", "+447700900001", "zero", NOW - 60_000).await;
    let scope = w.scope.clone();
    let convs = store
        .read(move |c| conversations::list(c, &scope, None, 10))
        .await
        .unwrap();
    assert_eq!(convs.len(), 1);
    assert_eq!(convs[0].last_inbound_at, Some(NOW + 60_000));
    assert_eq!(convs[0].unread_count, 3);
}

async fn send_one(store: &Store, w: &World, phone: &'static str) -> messages::Message {
    let (org, sender) = (w.org.clone(), w.sender.id.clone());
    store
        .write(move |c| {
            let contact = contacts::create(c, &org, phone, Some("Ada"), NOW)?;
            let conv = conversations::find_or_create_open(c, &org, Channel::Whatsapp, &contact.id, &sender, NOW)?;
            messages::insert_outbound(
                c,
                &NewOutbound {
                    org_id: &org,
                    conversation_id: &conv,
                    sender_id: &sender,
                    author_user_id: None,
                    kind: MessageKind::Text,
                    body: Some("Hi"),
                    template: None,
                    queue_reason: None,
                    business_initiated: false,
                    now: NOW,
                },
            )
        })
        .await
        .unwrap()
}

async fn status(store: &Store, wamid: &str, s: DeliveryStatus, at: i64) -> StatusOutcome {
    let wamid = wamid.to_owned();
    store
        .write(move |c| {
            messages::apply_status(
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
            )
        })
        .await
        .unwrap()
}

async fn statuses(store: Store) {
    let w = world(&store, "Bank", "pn1").await;
    let m = send_one(&store, &w, "+447700900001").await;
    assert_eq!(m.status, DeliveryStatus::Queued);
    // `sent` arrives before openline has recorded the provider's id: kept as an orphan.
    assert!(matches!(
        status(&store, "wamid.out", DeliveryStatus::Sent, NOW + 1).await,
        StatusOutcome::Orphan
    ));
    let id = m.id.clone();
    let m = store
        .write(move |c| messages::record_provider_accept(c, &id, ProviderKind::CloudApi, "wamid.out", NOW + 2))
        .await
        .unwrap();
    assert_eq!(
        m.status,
        DeliveryStatus::Sent,
        "the early status is applied once the id is known"
    );
    assert!(matches!(
        status(&store, "wamid.out", DeliveryStatus::Read, NOW + 4).await,
        StatusOutcome::Advanced(_)
    ));
    match status(&store, "wamid.out", DeliveryStatus::Delivered, NOW + 3).await {
        StatusOutcome::Stale(m) => {
            assert_eq!(
                m.status,
                DeliveryStatus::Read,
                "read is never overwritten by a late delivered"
            );
            assert_eq!(m.delivered_at, Some(NOW + 3), "but the delivery time is kept");
        }
        other => panic!("expected stale, got {other:?}"),
    }
    assert!(matches!(
        status(&store, "wamid.out", DeliveryStatus::Read, NOW + 4).await,
        StatusOutcome::Duplicate
    ));
}

async fn outbox_claims(store: Store) {
    let w = world(&store, "Bank", "pn1").await;
    let m = send_one(&store, &w, "+447700900001").await;
    let first = store.write(|c| outbox::claim_due(c, NOW, 30_000, 10)).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].message_id, m.id);
    let second = store
        .write(|c| outbox::claim_due(c, NOW + 1_000, 30_000, 10))
        .await
        .unwrap();
    assert!(second.is_empty(), "a leased row is not claimed twice");
    let lapsed = store
        .write(|c| outbox::claim_due(c, NOW + 31_000, 30_000, 10))
        .await
        .unwrap();
    assert_eq!(lapsed.len(), 1, "a row whose sender died is claimed again");
    assert_eq!(lapsed[0].attempts, 1);
    let ob = lapsed[0].outbox_id.clone();
    store
        .write(move |c| outbox::complete(c, &ob, NOW + 32_000))
        .await
        .unwrap();
    let none = store
        .write(|c| outbox::claim_due(c, NOW + 99_000, 30_000, 10))
        .await
        .unwrap();
    assert!(none.is_empty());
}

async fn scoping(store: Store) {
    let a = world(&store, "Bank A", "pnA").await;
    let b = world(&store, "Bank B", "pnB").await;
    let InboundOutcome::Stored(m) = store_inbound(&store, &a, "wamid.A1", "+447700900001", "secret", NOW).await else {
        panic!()
    };
    let (scope_b, mid, cid) = (b.scope.clone(), m.id.clone(), m.conversation_id.clone());
    let r = store
        .read(move |c| {
            Ok((
                conversations::list(c, &scope_b, None, 10)?,
                messages::get(c, &scope_b, &mid).err(),
                conversations::get(c, &scope_b, &cid).err(),
                messages::list_for_conversation(c, &scope_b, &cid, None, 10)?,
            ))
        })
        .await
        .unwrap();
    assert!(r.0.is_empty());
    assert!(matches!(r.1, Some(StoreError::NotFound)));
    assert!(matches!(r.2, Some(StoreError::NotFound)));
    assert!(r.3.is_empty());
}

async fn auth(store: Store) {
    let w = world(&store, "Bank", "pn1").await;
    let org = w.org.clone();
    let user = store
        .write(move |c| {
            users::create(
                c,
                &users::NewUser {
                    org_id: &org,
                    team_id: None,
                    email: "Ada@Example.com",
                    name: "Ada",
                    role: Role::Agent,
                    password_hash: "h",
                },
                NOW,
            )
        })
        .await
        .unwrap();
    assert_eq!(user.email, "ada@example.com");
    let org = w.org.clone();
    let dup = store
        .write(move |c| {
            users::create(
                c,
                &users::NewUser {
                    org_id: &org,
                    team_id: None,
                    email: "ada@example.com",
                    name: "Ada 2",
                    role: Role::Agent,
                    password_hash: "h",
                },
                NOW,
            )
        })
        .await;
    assert!(matches!(dup, Err(StoreError::Conflict(_))), "{dup:?}");
    let uid = user.id.clone();
    let tok = store
        .write(move |c| users::create_token(c, &uid, "ci", "hash1", NOW))
        .await
        .unwrap();
    let found = store.read(|c| users::user_for_token(c, "hash1")).await.unwrap();
    assert_eq!(found.map(|u| u.id), Some(user.id.clone()));
    let (uid, tid) = (user.id.clone(), tok.id.clone());
    store
        .write(move |c| users::revoke_token(c, &uid, &tid, NOW))
        .await
        .unwrap();
    assert!(store
        .read(|c| users::user_for_token(c, "hash1"))
        .await
        .unwrap()
        .is_none());
    let (uid, tid) = (user.id.clone(), tok.id.clone());
    assert!(matches!(
        store.write(move |c| users::revoke_token(c, &uid, &tid, NOW)).await,
        Err(StoreError::NotFound)
    ));
    let uid = user.id.clone();
    store
        .write(move |c| users::create_session(c, "sess", &uid, NOW, NOW + 1000))
        .await
        .unwrap();
    assert!(store
        .read(|c| users::user_for_session(c, "sess", NOW + 1))
        .await
        .unwrap()
        .is_some());
    assert!(
        store
            .read(|c| users::user_for_session(c, "sess", NOW + 1000))
            .await
            .unwrap()
            .is_none(),
        "expired"
    );
    let login = store
        .read(|c| users::find_for_login(c, " ADA@example.com "))
        .await
        .unwrap();
    assert_eq!(login.map(|(_, h)| h), Some("h".to_owned()));
}

async fn group_commit(store: Store) {
    let w = world(&store, "Bank", "pn1").await;
    let mut tasks = Vec::new();
    for i in 0..300 {
        let store = store.clone();
        let (org, sender) = (w.org.clone(), w.sender.id.clone());
        tasks.push(tokio::spawn(async move {
            store
                .write(move |c| {
                    if i % 50 == 7 {
                        // Writes something, then fails: its write must vanish, others must stay.
                        c.execute("insert into provider_events (id, provider, field, raw, received_at) values ('bad', 'x', 'x', '{}', 0)", &[])?;
                        return Err(StoreError::Db("planned failure".into()));
                    }
                    let w = World { org, sender: senders::get_any(c, &sender)?, scope: Scope { org_ids: vec![] } };
                    let wamid = format!("wamid.{i}");
                    let phone = format!("+4477009{:05}", i);
                    messages::insert_inbound(c, &inbound(&w, &wamid, &phone, "x", NOW + i))
                })
                .await
        }));
    }
    let mut ok = 0;
    let mut failed = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(InboundOutcome::Stored(_)) => ok += 1,
            Ok(InboundOutcome::Duplicate) => panic!("no duplicates were sent"),
            Err(_) => failed += 1,
        }
    }
    assert_eq!((ok, failed), (294, 6));
    let (n_msgs, n_bad) = store
        .read(|c| {
            Ok((
                c.query_one("select count(*) from messages", &[])?.i64(0)?,
                c.query_one("select count(*) from provider_events where id = 'bad'", &[])?
                    .i64(0)?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(n_msgs, 294);
    assert_eq!(n_bad, 0, "a failed job's writes are rolled back");
}

async fn inbox_paging(store: Store) {
    let w = world(&store, "Bank", "pn1").await;
    for i in 0..5 {
        store_inbound(
            &store,
            &w,
            &format!("wamid.{i}"),
            &format!("+44770090000{i}"),
            "x",
            NOW + i * 1000,
        )
        .await;
    }
    let scope = w.scope.clone();
    let page1 = store
        .read(move |c| conversations::list(c, &scope, None, 2))
        .await
        .unwrap();
    assert_eq!(
        page1
            .iter()
            .map(|c| c.contact_phone.clone().unwrap())
            .collect::<Vec<_>>(),
        ["+447700900004", "+447700900003"]
    );
    let cur = conversations::InboxCursor {
        last_activity_at: page1[1].last_activity_at,
        id: page1[1].id.clone(),
    };
    let scope = w.scope.clone();
    let page2 = store
        .read(move |c| conversations::list(c, &scope, Some(&cur), 10))
        .await
        .unwrap();
    assert_eq!(page2.len(), 3);
    assert_eq!(page2[0].contact_phone.as_deref(), Some("+447700900002"));
}

async fn idempotency_keys(store: Store) {
    let resp = idempotency::StoredResponse {
        request_hash: "h1".into(),
        status: 201,
        body: "{\"id\":1}".into(),
    };
    let r = resp.clone();
    store
        .write(move |c| idempotency::save(c, "usr_1", "key-1", &r, NOW))
        .await
        .unwrap();
    let found = store.read(|c| idempotency::find(c, "usr_1", "key-1")).await.unwrap();
    assert_eq!(found, Some(resp));
    assert!(
        store
            .read(|c| idempotency::find(c, "usr_2", "key-1"))
            .await
            .unwrap()
            .is_none(),
        "keys are per user"
    );
}

async fn consent_ledger(store: Store) {
    let w = world(&store, "Bank", "pn1").await;
    let other = world(&store, "Other", "pn2").await;
    let org = w.org.clone();
    let contact = store
        .write(move |c| contacts::create(c, &org, "+447700900001", None, NOW))
        .await
        .unwrap();
    for (kind, at) in [("requested", NOW), ("accepted", NOW + 5), ("opted_out", NOW + 9)] {
        let (org, cid) = (w.org.clone(), contact.id.clone());
        store
            .write(move |c| {
                consent::append(
                    c,
                    &consent::NewConsentEvent {
                        org_id: &org,
                        contact_id: &cid,
                        kind,
                        actor_user_id: None,
                        message_id: Some("msg_x"),
                        provider_message_id: Some("wamid.x"),
                        evidence: &serde_json::json!({"reply": kind}),
                        at,
                    },
                )
            })
            .await
            .unwrap();
    }
    let (scope, cid) = (w.scope.clone(), contact.id.clone());
    let h = store.read(move |c| consent::history(c, &scope, &cid)).await.unwrap();
    assert_eq!(
        h.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        ["requested", "accepted", "opted_out"]
    );
    assert_eq!(h[1].evidence["reply"], "accepted");
    let (scope, cid) = (other.scope.clone(), contact.id.clone());
    assert!(store
        .read(move |c| consent::history(c, &scope, &cid))
        .await
        .unwrap()
        .is_empty());
    let req = store.read(|c| consent::request_for_message(c, "msg_x")).await.unwrap();
    assert_eq!(req.map(|r| r.kind), Some("requested".to_owned()));
}

async fn held_messages(store: Store) {
    let w = world(&store, "Bank", "pn1").await;
    let (org, sender) = (w.org.clone(), w.sender.id.clone());
    let (contact, ids) = store
        .write(move |c| {
            let contact = contacts::create(c, &org, "+447700900001", None, NOW)?;
            let conv = conversations::find_or_create_open(c, &org, Channel::Whatsapp, &contact.id, &sender, NOW)?;
            let mut ids = Vec::new();
            for (i, body) in ["first", "second", "third"].iter().enumerate() {
                let m = messages::insert_outbound(
                    c,
                    &NewOutbound {
                        org_id: &org,
                        conversation_id: &conv,
                        sender_id: &sender,
                        author_user_id: None,
                        kind: MessageKind::Text,
                        body: Some(body),
                        template: None,
                        queue_reason: Some("awaiting_consent"),
                        business_initiated: false,
                        now: NOW + i as i64,
                    },
                )?;
                ids.push(m.id);
            }
            Ok((contact, ids))
        })
        .await
        .unwrap();
    assert!(
        store
            .write(|c| outbox::claim_due(c, NOW + 10, 1000, 10))
            .await
            .unwrap()
            .is_empty(),
        "held, not sent"
    );
    let (scope, id1) = (w.scope.clone(), ids[1].clone());
    let cancelled = store
        .write(move |c| messages::cancel(c, &scope, &id1, NOW + 20))
        .await
        .unwrap();
    assert_eq!(cancelled.status, DeliveryStatus::Cancelled);
    let (scope, id1) = (w.scope.clone(), ids[1].clone());
    assert!(matches!(
        store.write(move |c| messages::cancel(c, &scope, &id1, NOW + 21)).await,
        Err(StoreError::Conflict(_))
    ));
    let (org, cid) = (w.org.clone(), contact.id.clone());
    let held = store
        .read(move |c| messages::queued_for_contact(c, &org, &cid))
        .await
        .unwrap();
    assert_eq!(
        held.iter().map(|m| m.body.clone().unwrap()).collect::<Vec<_>>(),
        ["first", "third"]
    );
    let sender = w.sender.id.clone();
    store
        .write(move |c| {
            for m in &held {
                messages::release(c, &m.id, &sender, NOW + 30)?;
            }
            Ok(())
        })
        .await
        .unwrap();
    // One at a time per thread, in order: the second waits until the first is done.
    let claimed = store.write(|c| outbox::claim_due(c, NOW + 40, 1000, 10)).await.unwrap();
    assert_eq!(
        claimed.iter().map(|c| c.message_id.clone()).collect::<Vec<_>>(),
        [ids[0].clone()]
    );
    assert!(store
        .write(|c| outbox::claim_due(c, NOW + 41, 1000, 10))
        .await
        .unwrap()
        .is_empty());
    let first = claimed[0].outbox_id.clone();
    store
        .write(move |c| outbox::complete(c, &first, NOW + 42))
        .await
        .unwrap();
    let claimed = store.write(|c| outbox::claim_due(c, NOW + 43, 1000, 10)).await.unwrap();
    assert_eq!(
        claimed.iter().map(|c| c.message_id.clone()).collect::<Vec<_>>(),
        [ids[2].clone()]
    );
}

async fn archive(store: Store) {
    let w = world(&store, "Bank", "pn1").await;
    store_inbound(&store, &w, "wamid.J1", "+447700900001", "first", NOW).await;
    store_inbound(&store, &w, "wamid.J1", "+447700900001", "first", NOW).await; // a retry
    store_inbound(&store, &w, "wamid.J2", "+447700900001", "second", NOW + 1).await;
    store_inbound(&store, &w, "wamid.J3", "+447700900001", "third", NOW + 2).await;
    let org = w.org.clone();
    let (received, reports) = store
        .read(move |c| {
            let n = c
                .query_one(
                    "select count(*) from journal where org_id = ? and kind = 'message.received'",
                    params![&org],
                )?
                .i64(0)?;
            Ok((n, journal::verify(c, Some(&org))?))
        })
        .await
        .unwrap();
    assert_eq!(received, 3, "one entry per message, none for the retried webhook");
    assert_eq!(reports[0].problem, None, "an untouched chain verifies");
    let entries = reports[0].entries;
    assert!(entries >= 5, "organization, sender and three messages: {entries}");
    let page = {
        let org = w.org.clone();
        store.read(move |c| journal::page(c, &org, 0, 100)).await.unwrap()
    };
    let msg_seq = page.iter().find(|e| e.kind == "message.received").unwrap().seq;
    assert_eq!(
        page.iter().find(|e| e.seq == msg_seq).unwrap().payload["message"]["body"],
        "first"
    );

    // Each kind of tampering, done directly in the database, is found at the right entry.
    let tamper = |sql: String| {
        let store = store.clone();
        let org = w.org.clone();
        async move {
            let org2 = org.clone();
            store
                .write(move |c| {
                    c.batch(&sql)?;
                    Ok(())
                })
                .await
                .unwrap();
            let r = store.read(move |c| journal::verify(c, Some(&org2))).await.unwrap();
            r[0].problem.clone()
        }
    };
    let org = w.org.clone();
    let edited = tamper(format!(
        "update journal set payload = replace(payload, 'first', 'fiRst') where org_id = '{org}' and seq = {msg_seq}"
    ))
    .await
    .expect("an edit is detected");
    assert_eq!(edited.seq, msg_seq);
    assert!(edited.what.contains("altered"), "{}", edited.what);
    tamper(format!(
        "update journal set payload = replace(payload, 'fiRst', 'first') where org_id = '{org}' and seq = {msg_seq}"
    ))
    .await;

    let swapped = tamper(format!(
        "update journal set seq = case seq when {a} then -1 else seq end where org_id = '{org}';
         update journal set seq = {a} where org_id = '{org}' and seq = {b};
         update journal set seq = {b} where org_id = '{org}' and seq = -1",
        a = msg_seq,
        b = msg_seq + 1
    ))
    .await
    .expect("a reordering is detected");
    assert_eq!(swapped.seq, msg_seq);

    let store2 = store.clone();
    let org2 = w.org.clone();
    // Restore the order, then delete an entry in the middle.
    tamper(format!(
        "update journal set seq = -1 where org_id = '{org}' and seq = {a};
         update journal set seq = {a} where org_id = '{org}' and seq = {b};
         update journal set seq = {b} where org_id = '{org}' and seq = -1",
        a = msg_seq,
        b = msg_seq + 1
    ))
    .await;
    assert_eq!(
        store2.read(move |c| journal::verify(c, Some(&org2))).await.unwrap()[0].problem,
        None,
        "restored"
    );
    let deleted = tamper(format!(
        "delete from journal where org_id = '{org}' and seq = {}",
        msg_seq + 1
    ))
    .await
    .expect("a deletion is detected");
    assert_eq!(deleted.seq, msg_seq + 1);
    assert!(deleted.what.contains("missing"), "{}", deleted.what);
    // Removing entries from the end is caught by the chain's head.
    let org3 = w.org.clone();
    let last = store
        .read(move |c| {
            c.query_one("select max(seq) from journal where org_id = ?", params![&org3])?
                .i64(0)
        })
        .await
        .unwrap();
    tamper(format!(
        "delete from journal where org_id = '{org}' and seq > {}",
        msg_seq
    ))
    .await;
    let truncated = tamper(String::from("select 1"))
        .await
        .expect("a truncation is detected");
    assert!(truncated.what.contains("head"), "{} (last was {last})", truncated.what);
}
