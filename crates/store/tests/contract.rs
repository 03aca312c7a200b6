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

openline_store::both_backends! {
    run = run;
    an_inbound_message_creates_its_contact_and_thread_and_a_retry_is_a_no_op => inbound_dedupe;
    a_known_contact_is_rewritten_only_when_its_name_changes_or_its_user_id_is_learned => contact_refresh;
    a_second_message_joins_the_open_thread_and_moves_the_window => thread_and_window;
    statuses_only_move_forward_and_early_ones_wait_for_their_message => statuses;
    a_batch_of_statuses_looked_up_at_once_ends_as_one_at_a_time => status_batch;
    the_outbox_is_claimed_once_and_a_lapsed_lease_is_claimed_again => outbox_claims;
    another_organization_sees_nothing => scoping;
    the_tree_is_walked_nearest_first_and_a_hand_made_cycle_ends_the_walk => ancestor_cycle;
    users_tokens_and_sessions => auth;
    concurrent_writes_share_commits_and_a_failing_job_fails_alone => group_commit;
    a_failing_job_without_a_savepoint_fails_its_transaction_and_later_jobs_commit => unguarded_failure;
    a_new_outbound_message_is_returned_as_stored => outbound_as_stored;
    the_inbox_pages_newest_activity_first => inbox_paging;
    idempotency_keys_remember_the_first_answer => idempotency_keys;
    the_consent_ledger_only_grows_and_is_scoped => consent_ledger;
    a_marketing_preference_delivered_twice_is_recorded_and_journaled_once => marketing_once;
    held_messages_are_released_in_order_or_cancelled => held_messages;
    the_archive_has_one_entry_per_event_and_detects_every_kind_of_tampering => archive;
    a_batch_of_inbound_messages_ends_as_the_same_messages_stored_one_by_one => inbound_batch;
    the_messaging_limit_counts_contacts_reached_only_up_to_the_cap => business_initiated;
    an_organization_sends_from_its_own_number_else_its_nearest_ancestors => sender_for_org;
    inherited_configuration_is_kept_only_until_it_changes_whoever_changes_it => config_cache;
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
            let (org, sender) = openline_store::testing::org_with_number(c, name, pnid, NOW)?;
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
    // The stored message handed back (and archived) is exactly what a later read returns.
    let id = m.id.clone();
    let read = store.read(move |c| messages::get_any(c, &id)).await.unwrap();
    assert_eq!(serde_json::to_value(&*m).unwrap(), serde_json::to_value(&read).unwrap());
}

async fn contact_refresh(store: Store) {
    let w = world(&store, "Bank", "pn1").await;
    let org = w.org.clone();
    let upsert = |name: Option<&'static str>, user: Option<&'static str>, now: i64| {
        let org = org.clone();
        let store = store.clone();
        async move {
            store
                .write(move |c| contacts::upsert_from_inbound(c, &org, Some("+447700900001"), user, name, now))
                .await
                .unwrap()
        }
    };
    let read = |id: String| {
        let scope = w.scope.clone();
        let store = store.clone();
        async move { store.read(move |c| contacts::get(c, &scope, &id)).await.unwrap() }
    };
    let id = upsert(Some("Ada"), None, NOW).await;
    // The same name again, or none at all: the row is left as it is (nothing rewritten per message).
    assert_eq!(upsert(Some("Ada"), None, NOW + 1).await, id);
    assert_eq!(upsert(None, None, NOW + 2).await, id);
    let c = read(id.clone()).await;
    assert_eq!(
        (c.whatsapp_name.as_deref(), c.wa_user_id.as_deref(), c.updated_at),
        (Some("Ada"), None, NOW)
    );
    // A new profile name is taken; a user id, once learned, is kept and never replaced.
    assert_eq!(upsert(Some("Ada L."), Some("US.1"), NOW + 3).await, id);
    assert_eq!(upsert(Some("Ada L."), Some("US.2"), NOW + 4).await, id);
    let c = read(id.clone()).await;
    assert_eq!(
        (c.whatsapp_name.as_deref(), c.wa_user_id.as_deref(), c.updated_at),
        (Some("Ada L."), Some("US.1"), NOW + 3)
    );
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
        .write(move |c| {
            let m = messages::record_provider_accept(c, &id, ProviderKind::CloudApi, "wamid.out", NOW + 2)?;
            assert_eq!(
                serde_json::to_value(&m).unwrap(),
                serde_json::to_value(messages::get_any(c, &id)?).unwrap(),
                "the accept returns the row as it now is"
            );
            Ok(m)
        })
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

async fn ancestor_cycle(store: Store) {
    let (chain, inherited, cycle_c, cycle_a) = store
        .write(|c| {
            let a = orgs::create(c, "A", None, "on", NOW)?;
            let b = orgs::create(c, "B", Some(&a.id), "inherit", NOW)?;
            let cc = orgs::create(c, "C", Some(&b.id), "inherit", NOW)?;
            c.execute(
                "update organizations set settings = ? where id = ?",
                &[r#"{"retention_days": 30}"#.into(), a.id.as_str().into()],
            )?;
            let names = |v: Vec<orgs::Organization>| v.into_iter().map(|o| o.name).collect::<Vec<_>>();
            let chain = names(orgs::ancestors(c, &cc.id)?);
            let inherited = openline_store::retention::retention_days(c, &cc.id)?;
            // Edited by hand into a cycle A → C → B → A: every walk still ends, each org once.
            c.execute(
                "update organizations set parent_id = ? where id = ?",
                &[cc.id.as_str().into(), a.id.as_str().into()],
            )?;
            Ok((
                chain,
                inherited,
                names(orgs::ancestors(c, &cc.id)?),
                names(orgs::ancestors(c, &a.id)?),
            ))
        })
        .await
        .unwrap();
    assert_eq!(chain, ["C", "B", "A"]);
    assert_eq!(inherited, 30);
    assert_eq!(cycle_c, ["C", "B", "A"]);
    assert_eq!(cycle_a, ["A", "C", "B"]);
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
                        // Writes something (a journal entry too), then fails: its writes must
                        // vanish, others must stay, and the chain must not keep its entry's place.
                        c.execute("insert into provider_events (id, provider, field, raw, received_at) values ('bad', 'x', 'x', '{}', 0)", &[])?;
                        openline_store::journal::append(c, &org, "test.failed", None, &serde_json::json!({}), NOW)?;
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
    // Every group wrote its chain head once, before its commit: the chain is whole, its head is its
    // last entry, and the failed jobs' entries left no gap.
    let org = w.org.clone();
    let (report, head, last, failed_entries) = store
        .write(move |c| {
            let report = openline_store::journal::verify(c, Some(&org))?;
            let head = c
                .query_one("select seq from journal_heads where org_id = ?", &[org.as_str().into()])?
                .i64(0)?;
            let last = c
                .query_one("select max(seq) from journal where org_id = ?", &[org.as_str().into()])?
                .i64(0)?;
            let failed = c
                .query_one("select count(*) from journal where kind = 'test.failed'", &[])?
                .i64(0)?;
            Ok((report, head, last, failed))
        })
        .await
        .unwrap();
    assert!(report[0].problem.is_none(), "{report:?}");
    assert_eq!(head, last);
    assert_eq!(failed_entries, 0);
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

async fn marketing_once(store: Store) {
    let w = world(&store, "Bank", "pn1").await;
    let org = w.org.clone();
    let contact = store
        .write(move |c| contacts::create(c, &org, "+447700900001", None, NOW))
        .await
        .unwrap();
    let append = |kind: &'static str, at: i64| {
        let (org, cid) = (w.org.clone(), contact.id.clone());
        store.write(move |c| {
            consent::append_once(
                c,
                &consent::NewConsentEvent {
                    org_id: &org,
                    contact_id: &cid,
                    kind,
                    actor_user_id: None,
                    message_id: None,
                    provider_message_id: None,
                    evidence: &serde_json::json!({"value": kind}),
                    at,
                },
                NOW + 100,
            )
        })
    };
    let first = append("marketing_stopped", NOW).await.unwrap();
    assert_eq!(first.map(|r| r.kind), Some("marketing_stopped".to_owned()));
    // The same change again (a redelivered webhook): nothing new, and the transaction goes on.
    assert!(append("marketing_stopped", NOW).await.unwrap().is_none());
    // A different kind at the same moment, or the same kind at another, are new entries.
    assert!(append("marketing_resumed", NOW).await.unwrap().is_some());
    assert!(append("marketing_stopped", NOW + 1).await.unwrap().is_some());
    let (scope, cid) = (w.scope.clone(), contact.id.clone());
    let h = store.read(move |c| consent::history(c, &scope, &cid)).await.unwrap();
    assert_eq!(h.len(), 3, "{h:?}");
    let org = w.org.clone();
    let journaled = store
        .read(move |c| {
            c.query_one(
                "select count(*) from journal where org_id = ? and kind like 'consent.marketing_%'",
                &[org.as_str().into()],
            )?
            .i64(0)
        })
        .await
        .unwrap();
    assert_eq!(journaled, 3);
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
    let (held, reasons) = store
        .read(move |c| {
            Ok((
                messages::queued_for_contact(c, &org, &cid)?,
                messages::held_reasons_for_contact(c, &org, &cid)?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(
        held.iter().map(|m| m.body.clone().unwrap()).collect::<Vec<_>>(),
        ["first", "third"]
    );
    assert_eq!(
        reasons,
        ["awaiting_consent", "awaiting_consent"],
        "the cancelled one is not held"
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
    let (org, cid) = (w.org.clone(), contact.id.clone());
    let reasons = store
        .read(move |c| messages::held_reasons_for_contact(c, &org, &cid))
        .await
        .unwrap();
    assert!(reasons.is_empty(), "released: none held any more");
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
    // An entry put after the head by hand (the head has not moved) is caught too.
    let org4 = w.org.clone();
    let end = store
        .read(move |c| {
            c.query_one("select max(seq) from journal where org_id = ?", params![&org4])?
                .i64(0)
        })
        .await
        .unwrap();
    let appended = tamper(format!(
        "insert into journal (org_id, seq, at, kind, subject_id, payload, prev_hash, hash)
         select org_id, seq + 1, at, kind, subject_id, payload, hash, hash from journal where org_id = '{org}' and seq = {end}"
    ))
    .await
    .expect("an entry after the head is detected");
    assert_eq!(appended.seq, end + 1);
    assert!(appended.what.contains("after"), "{}", appended.what);
    tamper(format!(
        "delete from journal where org_id = '{org}' and seq = {}",
        end + 1
    ))
    .await;
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

// ---- The archive's second half: actors, signed checkpoints, retention and holds, recording. ----

macro_rules! archive_both_backends {
    ($($name:ident => $body:ident;)*) => {
        mod archive_sqlite { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::run(openline_store::Backend::Sqlite, super::$body).await } )* }
        mod archive_postgres { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::run(openline_store::Backend::Postgres, super::$body).await } )* }
    };
}

archive_both_backends! {
    administrative_entries_name_who_made_the_change => archive_actors;
    a_signed_checkpoint_catches_history_rewritten_with_every_hash_recomputed => archive_checkpoints;
    a_purge_removes_only_expired_entries_not_under_a_hold_and_the_chain_still_verifies => archive_purge;
    with_recording_off_message_content_is_not_archived_but_consent_evidence_is => archive_recording;
    exports_select_by_contact_and_time_and_csv_carries_no_content => archive_exports;
    a_participant_joining_is_journaled_once => archive_participants;
    verify_walks_a_long_chain_page_by_page_and_still_finds_a_late_edit => archive_long_chain;
}

use openline_store::journal::Actor;
use openline_store::{checkpoints, export, holds, retention};

async fn entries(store: &Store, org: &str) -> Vec<journal::JournalEntry> {
    let org = org.to_owned();
    store.read(move |c| journal::page(c, &org, 0, 10_000)).await.unwrap()
}

async fn verify_org(store: &Store, org: &str) -> journal::ChainReport {
    let org = org.to_owned();
    store
        .read(move |c| journal::verify(c, Some(&org)))
        .await
        .unwrap()
        .remove(0)
}

async fn archive_actors(store: Store) {
    let admin = Actor::user("usr_admin", "admin@bank.test");
    let a = admin.clone();
    let org = store
        .write(move |c| {
            let org = orgs::create_by(c, "Bank", None, "on", &Actor::Cli, NOW)?;
            users::create_by(
                c,
                &users::NewUser {
                    org_id: &org.id,
                    team_id: None,
                    email: "agent@bank.test",
                    name: "Agent",
                    role: Role::Agent,
                    password_hash: "x",
                },
                &a,
                NOW,
            )?;
            let agent = users::find_for_login(c, "agent@bank.test")?.unwrap().0;
            users::set_role_by(c, &agent.id, Role::Supervisor, &a, NOW)?;
            orgs::set_setting(c, &org.id, "messaging_tier", serde_json::json!("tier_2k"), &a, NOW)?;
            retention::set_retention_days(c, &org.id, Some(3650), &a, NOW)?;
            Ok(org.id)
        })
        .await
        .unwrap();
    let e = entries(&store, &org).await;
    let kinds: Vec<&str> = e.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "organization.created",
            "user.created",
            "user.role_changed",
            "organization.settings_changed",
            "organization.settings_changed"
        ]
    );
    assert_eq!(
        (e[2].payload["previous"].as_str(), e[2].payload["role"].as_str()),
        (Some("agent"), Some("supervisor"))
    );
    assert_eq!(e[2].payload["actor"]["email"], "admin@bank.test");
    let e: Vec<_> = e.into_iter().filter(|e| e.kind != "user.role_changed").collect();
    assert_eq!(e[0].payload["actor"], serde_json::json!({"type": "cli"}));
    assert_eq!(
        e[1].payload["actor"],
        serde_json::json!({"type": "user", "id": "usr_admin", "email": "admin@bank.test"})
    );
    assert_eq!(e[2].payload["key"], "messaging_tier");
    assert_eq!(e[2].payload["value"], "tier_2k");
    assert_eq!(e[3].payload["previous"], serde_json::Value::Null);
    let o = org.clone();
    assert_eq!(
        store.read(move |c| retention::retention_days(c, &o)).await.unwrap(),
        3650
    );
    assert_eq!(verify_org(&store, &org).await.problem, None);
}

/// What someone with database access would do to rewrite history unnoticed by `verify`: recompute
/// every hash from the edited entry on, and the head.
fn recompute_chain(c: &mut dyn openline_store::Conn, org: &str) -> Result<(), StoreError> {
    use sha2::{Digest, Sha256};
    let rows = c.query(
        "select seq, at, kind, subject_id, payload from journal where org_id = ? order by seq",
        params![org],
    )?;
    let mut prev = journal::GENESIS.to_owned();
    for r in rows {
        let (seq, at, kind, subject, payload) = (r.i64(0)?, r.i64(1)?, r.string(2)?, r.opt_string(3)?, r.string(4)?);
        let mut h = Sha256::new();
        for part in [
            prev.as_str(),
            &seq.to_string(),
            org,
            &at.to_string(),
            &kind,
            subject.as_deref().unwrap_or(""),
            &payload,
        ] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part.as_bytes());
        }
        let hash = hex::encode(h.finalize());
        c.execute(
            "update journal set prev_hash = ?, hash = ? where org_id = ? and seq = ?",
            params![&prev, &hash, org, seq],
        )?;
        prev = hash;
    }
    c.execute(
        "update journal_heads set hash = ? where org_id = ?",
        params![&prev, org],
    )?;
    Ok(())
}

async fn archive_checkpoints(store: Store) {
    let w = world(&store, "Bank", "pn1").await;
    store_inbound(&store, &w, "wamid.C1", "+447700900001", "buy 100 shares", NOW + 1).await;
    store_inbound(&store, &w, "wamid.C2", "+447700900001", "thanks", NOW + 2).await;
    let key = checkpoints::parse_signing_key(&"07".repeat(32)).unwrap();
    let public = checkpoints::public_key_hex(&key);
    let k = key.clone();
    let made = store
        .write(move |c| checkpoints::create(c, &k, None, NOW + 10))
        .await
        .unwrap();
    assert_eq!(made.len(), 1);
    assert!(checkpoints::signature_valid(&made[0]));
    // Nothing moved: no second checkpoint of the same head.
    let k = key.clone();
    assert!(store
        .write(move |c| checkpoints::create(c, &k, None, NOW + 11))
        .await
        .unwrap()
        .is_empty());
    let export = checkpoints::CheckpointExport {
        format: checkpoints::EXPORT_FORMAT.into(),
        public_key: Some(public.clone()),
        checkpoints: store.read(|c| checkpoints::list(c, None)).await.unwrap(),
    };
    let ex = export.clone();
    let findings = store.read(move |c| checkpoints::check(c, &ex, None)).await.unwrap();
    assert!(findings.iter().all(|f| f.ok), "{findings:?}");

    // A forged checkpoint (signature no longer matches) and a foreign key are refused.
    let mut forged = export.clone();
    forged.checkpoints[0].seq -= 1;
    let findings = store.read(move |c| checkpoints::check(c, &forged, None)).await.unwrap();
    assert!(
        !findings[0].ok && findings[0].what.contains("signature"),
        "{findings:?}"
    );
    let ex = export.clone();
    let findings = store
        .read(move |c| checkpoints::check(c, &ex, Some(&"ab".repeat(32))))
        .await
        .unwrap();
    assert!(!findings[0].ok, "{findings:?}");

    // Rewrite a message and recompute every hash: verify is satisfied, the checkpoint is not.
    let org = w.org.clone();
    store
        .write(move |c| {
            c.execute(
                "update journal set payload = replace(payload, 'buy 100 shares', 'buy 10 shares') where org_id = ?",
                params![&org],
            )?;
            recompute_chain(c, &org)
        })
        .await
        .unwrap();
    assert_eq!(
        verify_org(&store, &w.org).await.problem,
        None,
        "a consistent rewrite fools the hash chain alone"
    );
    let ex = export.clone();
    let findings = store.read(move |c| checkpoints::check(c, &ex, None)).await.unwrap();
    assert!(!findings[0].ok, "{findings:?}");
    assert!(findings[0].what.contains("rewritten"), "{findings:?}");
}

const YEAR_MS: i64 = 365 * 86_400_000;

async fn archive_purge(store: Store) {
    let w = world(&store, "Bank", "pn1").await; // organization and sender at NOW
    store_inbound(&store, &w, "wamid.P1", "+447700900001", "Ada, long ago", NOW + 1).await;
    store_inbound(&store, &w, "wamid.P2", "+447700900002", "Dan, long ago", NOW + 2).await;
    let later = NOW + 8 * YEAR_MS;
    store_inbound(
        &store,
        &w,
        "wamid.P3",
        "+447700900001",
        "Ada, recently",
        later - 86_400_000,
    )
    .await;
    let scope = w.scope.clone();
    let ada = store
        .read(move |c| contacts::list(c, &scope, None, None, 10))
        .await
        .unwrap()
        .into_iter()
        .find(|ct| ct.phone.as_deref() == Some("+447700900001"))
        .unwrap()
        .id;
    let before = entries(&store, &w.org).await.len();
    let admin = Actor::user("usr_admin", "admin@bank.test");

    // A hold on the whole organization: nothing is purged, not even the expired entries.
    let (scope, a) = (w.scope.clone(), admin.clone());
    let org = w.org.clone();
    let org_hold = store
        .write(move |c| {
            holds::set(
                c,
                &scope,
                &holds::NewHold {
                    scope: "organization".into(),
                    subject_id: org,
                    reason: "SEC inquiry 2031-17".into(),
                },
                &a,
                later,
            )
            .map_err(|e| StoreError::Db(format!("{e:?}")))
        })
        .await
        .unwrap();
    let org = w.org.clone();
    let r = store
        .write(move |c| retention::purge(c, &org, later, false, &Actor::System))
        .await
        .unwrap();
    assert_eq!((r.purged, r.held_by.as_deref()), (0, Some(org_hold.id.as_str())));
    assert_eq!(
        entries(&store, &w.org).await.len(),
        before + 1,
        "only the hold itself was added"
    );

    // A hold on Ada instead: the purge stops at her first message.
    let (scope, a, id) = (w.scope.clone(), admin.clone(), org_hold.id.clone());
    store
        .write(move |c| holds::release(c, &scope, &id, &a, later))
        .await
        .unwrap();
    let (scope, a, ada2) = (w.scope.clone(), admin.clone(), ada.clone());
    let ada_hold = store
        .write(move |c| {
            holds::set(
                c,
                &scope,
                &holds::NewHold {
                    scope: "contact".into(),
                    subject_id: ada2,
                    reason: "complaint 42".into(),
                },
                &a,
                later,
            )
            .map_err(|e| StoreError::Db(format!("{e:?}")))
        })
        .await
        .unwrap();
    let org = w.org.clone();
    let dry = store
        .write(move |c| retention::purge(c, &org, later, true, &Actor::Cli))
        .await
        .unwrap();
    let org = w.org.clone();
    let r = store
        .write(move |c| retention::purge(c, &org, later, false, &Actor::Cli))
        .await
        .unwrap();
    assert_eq!(dry.purged, r.purged, "a dry run reports what the purge then does");
    assert_eq!(r.purged, 2, "organization and sender entries; Ada's message is held");
    assert_eq!(r.held_by.as_deref(), Some(ada_hold.id.as_str()));
    let remaining = entries(&store, &w.org).await;
    assert_eq!(remaining[0].seq, 3);
    assert_eq!(remaining[0].payload["message"]["body"], "Ada, long ago");
    let report = verify_org(&store, &w.org).await;
    assert_eq!(
        (report.problem, report.first_seq),
        (None, 3),
        "verify starts after the purge"
    );

    // Released: everything expired goes, recent entries stay, and message content goes with it.
    let (scope, a, id) = (w.scope.clone(), admin.clone(), ada_hold.id.clone());
    store
        .write(move |c| holds::release(c, &scope, &id, &a, later))
        .await
        .unwrap();
    let org = w.org.clone();
    let r = store
        .write(move |c| retention::purge(c, &org, later, false, &Actor::System))
        .await
        .unwrap();
    assert_eq!(r.purged, 2, "Ada's and Dan's old messages; the recent message stops it");
    assert_eq!(r.messages_cleared, 2);
    let remaining = entries(&store, &w.org).await;
    assert!(
        remaining.iter().all(|e| e.at >= later - 86_400_000),
        "only recent entries remain"
    );
    assert!(remaining
        .iter()
        .any(|e| e.payload["message"]["body"] == "Ada, recently"));
    assert_eq!(remaining.last().unwrap().kind, "archive.purged");
    let bodies = store
        .read(|c| {
            c.query("select body from messages order by created_at", &[])?
                .iter()
                .map(|r| r.opt_string(0))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .unwrap();
    assert_eq!(bodies, [None, None, Some("Ada, recently".to_owned())]);
    assert_eq!(verify_org(&store, &w.org).await.problem, None);

    // Tampering after a purge is still found: an edit, and a deletion of the oldest remaining entry.
    let first = remaining[0].seq;
    let org = w.org.clone();
    store
        .write(move |c| {
            c.execute(
                "update journal set payload = replace(payload, 'recently', 'RECENTLY') where org_id = ?",
                params![&org],
            )
        })
        .await
        .unwrap();
    let p = verify_org(&store, &w.org)
        .await
        .problem
        .expect("an edit after a purge is found");
    assert!(p.what.contains("altered"), "{}", p.what);
    let org = w.org.clone();
    store
        .write(move |c| {
            c.execute(
                "update journal set payload = replace(payload, 'RECENTLY', 'recently') where org_id = ?",
                params![&org],
            )?;
            c.execute("delete from journal where org_id = ? and seq = ?", params![&org, first])
        })
        .await
        .unwrap();
    let p = verify_org(&store, &w.org)
        .await
        .problem
        .expect("a deletion after a purge is found");
    assert!(p.what.contains("missing"), "{}", p.what);
}

async fn archive_recording(store: Store) {
    let w = world(&store, "Bank", "pn1").await;
    let org = w.org.clone();
    let sub = store
        .write(move |c| {
            journal::set_recording(c, &org, Some(false), &Actor::user("usr_a", "a@bank.test"), NOW)?;
            // Created after the switch: inherits it.
            Ok(orgs::create(c, "Bank / Desk", Some(&org), "inherit", NOW)?.id)
        })
        .await
        .unwrap();
    let InboundOutcome::Stored(m) =
        store_inbound(&store, &w, "wamid.R1", "+447700900001", "my PIN is 1234", NOW + 1).await
    else {
        panic!("stored")
    };
    assert_eq!(m.body.as_deref(), Some("my PIN is 1234"), "the inbox still shows it");
    let (org, contact) = (w.org.clone(), m.conversation_id.clone());
    store
        .write(move |c| {
            let contact_id = c
                .query_one("select contact_id from conversations where id = ?", params![&contact])?
                .string(0)?;
            consent::append(
                c,
                &consent::NewConsentEvent {
                    org_id: &org,
                    contact_id: &contact_id,
                    kind: "accepted",
                    actor_user_id: None,
                    message_id: None,
                    provider_message_id: Some("wamid.R2"),
                    evidence: &serde_json::json!({"reply": "YES, I agree"}),
                    at: NOW + 2,
                },
            )?;
            Ok(())
        })
        .await
        .unwrap();
    let e = entries(&store, &w.org).await;
    let msg = e.iter().find(|e| e.kind == "message.received").unwrap();
    assert_eq!(msg.payload["message"]["body"], serde_json::Value::Null);
    assert_eq!(msg.payload["content_recorded"], false);
    assert_eq!(
        msg.payload["message"]["provider_message_id"], "wamid.R1",
        "metadata is kept"
    );
    let consent = e.iter().find(|e| e.kind == "consent.accepted").unwrap();
    assert_eq!(
        consent.payload["evidence"]["reply"], "YES, I agree",
        "consent evidence is kept"
    );
    assert_eq!(verify_org(&store, &w.org).await.problem, None);
    let s = sub.clone();
    let on = store.read(move |c| journal::recording_enabled(c, &s)).await.unwrap();
    assert!(!on, "the sub-organization inherits recording off");
    let s = sub.clone();
    let heads = store
        .read(move |c| {
            c.query_one("select recording from journal_heads where org_id = ?", params![&s])?
                .i64(0)
        })
        .await
        .unwrap();
    assert_eq!(heads, 0);

    // Back on (inherit the default): content is archived again.
    let org = w.org.clone();
    store
        .write(move |c| journal::set_recording(c, &org, None, &Actor::Cli, NOW + 3))
        .await
        .unwrap();
    store_inbound(&store, &w, "wamid.R3", "+447700900001", "recorded again", NOW + 4).await;
    let e = entries(&store, &w.org).await;
    assert!(e.iter().any(|e| e.payload["message"]["body"] == "recorded again"));
}

async fn export_all(store: &Store, filter: export::Filter, format: export::Format) -> String {
    let mut ex = export::Export::new(filter, format);
    let mut out = Vec::new();
    loop {
        let (back, chunk) = store
            .read(move |c| {
                let chunk = ex.next_chunk(c)?;
                Ok((ex, chunk))
            })
            .await
            .unwrap();
        ex = back;
        match chunk {
            Some(bytes) => out.extend(bytes),
            None => break,
        }
    }
    String::from_utf8(out).unwrap()
}

async fn archive_exports(store: Store) {
    let w = world(&store, "Bank", "pn1").await;
    store_inbound(&store, &w, "wamid.E1", "+447700900001", "Ada one", NOW + 1).await;
    store_inbound(&store, &w, "wamid.E2", "+447700900002", "Dan one", NOW + 2).await;
    store_inbound(&store, &w, "wamid.E3", "+447700900001", "Ada two", NOW + 3).await;
    let scope = w.scope.clone();
    let ada = store
        .read(move |c| contacts::list(c, &scope, None, None, 10))
        .await
        .unwrap()
        .into_iter()
        .find(|ct| ct.phone.as_deref() == Some("+447700900001"))
        .unwrap()
        .id;
    let all = export::Filter {
        org_id: w.org.clone(),
        ..Default::default()
    };
    let jsonl = export_all(&store, all.clone(), export::Format::Jsonl).await;
    assert_eq!(jsonl.lines().count(), entries(&store, &w.org).await.len());
    let only_ada = export::Filter {
        contact_id: Some(ada),
        ..all.clone()
    };
    let jsonl = export_all(&store, only_ada.clone(), export::Format::Jsonl).await;
    assert!(jsonl.contains("Ada one") && jsonl.contains("Ada two") && !jsonl.contains("Dan one"));
    let ranged = export::Filter {
        since: Some(NOW + 2),
        until: Some(NOW + 3),
        ..all.clone()
    };
    let jsonl = export_all(&store, ranged, export::Format::Jsonl).await;
    assert_eq!(jsonl.lines().count(), 1, "{jsonl}");
    assert!(jsonl.contains("Dan one"));
    let csv = export_all(&store, all.clone(), export::Format::Csv).await;
    assert!(csv.starts_with("seq,at,kind,"));
    assert_eq!(csv.lines().count(), 1 + entries(&store, &w.org).await.len());
    assert!(!csv.contains("Ada one"), "metadata only");
    assert!(csv.contains("message.received"));
    let mbox = export_all(&store, only_ada, export::Format::Eml).await;
    assert_eq!(
        mbox.matches("From archive@openline ").count(),
        1,
        "one e-mail: one conversation, one day"
    );
    assert!(mbox.contains("X-Openline-Messages: 2"), "{mbox}");
}

// ---- outbound webhooks: subscriptions walk the journal ----

/// `outbound_webhooks::NAME` on both backends (a module of its own, beside the list at the top).
macro_rules! webhook_contract {
    ($($name:ident => $body:ident;)*) => {
        mod outbound_webhooks_sqlite { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::run(openline_store::Backend::Sqlite, super::$body).await } )* }
        mod outbound_webhooks_postgres { $( #[tokio::test(flavor = "multi_thread", worker_threads = 2)] async fn $name() { super::run(openline_store::Backend::Postgres, super::$body).await } )* }
    };
}

webhook_contract! {
    a_subscription_walks_its_chains_in_order_skips_what_it_did_not_ask_for_and_keeps_a_failed_event_at_the_head => webhook_cursor_walk;
    a_subscription_is_leased_scoped_parked_resumed_and_deleted_with_every_change_journaled => webhook_lifecycle;
}

struct HookWorld {
    root: String,
    child: String,
    sub: openline_store::webhooks_out::Subscription,
}

/// A root organization with a child, an entry from before the subscription, and a subscription of
/// the root (and its children) to received messages and consent changes.
async fn hook_world(store: &Store) -> HookWorld {
    use openline_store::webhooks_out::{self, NewSubscription};
    store
        .write(|c| {
            let root = orgs::create(c, "Hook Root", None, "on", NOW)?;
            let child = orgs::create(c, "Hook Child", Some(&root.id), "inherit", NOW)?;
            journal::append(
                c,
                &root.id,
                "message.received",
                Some("msg_before"),
                &serde_json::json!({"message": {"id": "msg_before", "body": "before"}}),
                NOW,
            )?;
            let sub = webhooks_out::create(
                c,
                &NewSubscription {
                    org_id: &root.id,
                    url: "https://archive.example.com/hook",
                    description: "archive",
                    events: &["message.received".to_owned(), "consent.changed".to_owned()],
                    include_sub_organizations: true,
                    secret: "whsec_test",
                    key: &hook_key(),
                    from_beginning: false,
                    actor: &journal::Actor::Cli,
                    now: NOW,
                },
            )?;
            Ok(HookWorld {
                root: root.id,
                child: child.id,
                sub,
            })
        })
        .await
        .unwrap()
}

fn hook_attempt<'a>(
    e: &'a journal::JournalEntry,
    id: &'a str,
    attempt: i64,
    at: i64,
    delivered: bool,
    park: bool,
) -> openline_store::webhooks_out::AttemptResult<'a> {
    openline_store::webhooks_out::AttemptResult {
        event_id: id,
        event_type: "message.received",
        org_id: &e.org_id,
        seq: e.seq,
        attempt,
        at,
        duration_ms: 12,
        http_status: Some(if delivered { 200 } else { 503 }),
        error: (!delivered).then_some("HTTP 503 Service Unavailable"),
        response_excerpt: None,
        delivered,
        next_attempt_at: at + 1_000,
        park,
        lease_until: at + 60_000,
    }
}

async fn webhook_cursor_walk(store: Store) {
    use openline_store::webhooks_out;
    let w = hook_world(&store).await;
    let (root, child, sid) = (w.root.clone(), w.child.clone(), w.sub.id.clone());
    // Nothing new since the subscription: the worker has nothing to do and writes nothing.
    let sid2 = sid.clone();
    let idle = store
        .read(move |c| Ok(webhooks_out::due_with_work(c, NOW + 5, 10)?.contains(&sid2)))
        .await
        .unwrap();
    assert!(!idle);
    store
        .write(move |c| {
            let m = |id: &str, body: &str| serde_json::json!({"message": {"id": id, "body": body, "direction": "in"}});
            journal::append(c, &root, "message.received", Some("msg_1"), &m("msg_1", "hello"), NOW + 1)?;
            journal::append(c, &root, "template.created", Some("tpl_1"), &serde_json::json!({}), NOW + 2)?;
            journal::append(
                c,
                &child,
                "consent.accepted",
                Some("cns_1"),
                &serde_json::json!({"id": "cns_1", "contact_id": "con_1", "kind": "accepted", "evidence": {"reply": "YES"}}),
                NOW + 3,
            )?;
            journal::append(c, &root, "message.status", Some("msg_1"), &serde_json::json!({"status_now": "read"}), NOW + 4)?;
            Ok(())
        })
        .await
        .unwrap();

    let step = |owner: &'static str, now: i64| {
        let sid = sid.clone();
        let store = store.clone();
        async move {
            store
                .write(move |c| {
                    let Some(t) = webhooks_out::claim(c, &hook_key(), &sid, owner, now + 60_000, now)? else {
                        return Ok(None);
                    };
                    let next = webhooks_out::next_event(c, &t)?;
                    let event = next
                        .entry
                        .as_ref()
                        .map(|e| webhooks_out::build_event(c, e))
                        .transpose()?;
                    Ok(Some((next, event)))
                })
                .await
                .unwrap()
        }
    };

    let sid2 = sid.clone();
    let busy = store
        .read(move |c| Ok(webhooks_out::due_with_work(c, NOW + 5, 10)?.contains(&sid2)))
        .await
        .unwrap();
    assert!(busy, "new entries in a chain make the subscription worth a turn");

    // The entry from before the subscription is not delivered; the first one after it is.
    let (next, event) = step("node-a", NOW + 10).await.unwrap();
    let (entry, event) = (next.entry.clone().unwrap(), event.unwrap());
    assert_eq!(event.id, format!("{}:{}", w.root, entry.seq));
    assert_eq!(
        (
            event.event_type.as_str(),
            event.message.as_ref().unwrap().text.as_deref()
        ),
        ("message.received", Some("hello"))
    );
    assert_eq!(event.references.journal_hash, entry.hash);
    assert_eq!(event.organization.name, "Hook Root");

    // Another node cannot take the subscription while node A holds it.
    assert!(step("node-b", NOW + 10).await.is_none());

    // A failure keeps the event at the head; nothing moves.
    let (sid2, e2, id2) = (sid.clone(), entry.clone(), event.id.clone());
    let recorded = store
        .write(move |c| {
            webhooks_out::record_attempt(
                c,
                &sid2,
                "node-a",
                &[],
                &hook_attempt(&e2, &id2, 1, NOW + 11, false, false),
            )
        })
        .await
        .unwrap();
    assert!(recorded);
    let (next_again, _) = step("node-a", NOW + 1_011).await.unwrap();
    assert_eq!(
        next_again.entry.unwrap().seq,
        entry.seq,
        "the failed event is still first"
    );

    // Delivered: the cursor moves; next comes the child's consent event, then nothing (the
    // template and the status are not subscribed), and the cursors reach both heads.
    let (sid2, e2, id2, skipped) = (sid.clone(), entry.clone(), event.id.clone(), next.skipped_to.clone());
    store
        .write(move |c| {
            webhooks_out::record_attempt(
                c,
                &sid2,
                "node-a",
                &skipped,
                &hook_attempt(&e2, &id2, 2, NOW + 1_012, true, false),
            )
        })
        .await
        .unwrap();
    let (next, event) = step("node-a", NOW + 1_013).await.unwrap();
    let (consent_entry, event) = (next.entry.clone().unwrap(), event.unwrap());
    assert_eq!(consent_entry.org_id, w.child);
    assert_eq!(event.event_type, "consent.changed");
    assert_eq!(event.consent.as_ref().unwrap().evidence["reply"], "YES");
    let (sid2, id2) = (sid.clone(), event.id.clone());
    store
        .write(move |c| {
            webhooks_out::record_attempt(
                c,
                &sid2,
                "node-a",
                &next.skipped_to,
                &hook_attempt(&consent_entry, &id2, 1, NOW + 1_014, true, false),
            )
        })
        .await
        .unwrap();
    let (next, event) = step("node-a", NOW + 1_015).await.unwrap();
    assert!(next.entry.is_none() && event.is_none());
    let (sid2, skipped) = (sid.clone(), next.skipped_to.clone());
    store
        .write(move |c| webhooks_out::advance_cursors(c, &sid2, &skipped))
        .await
        .unwrap();
    let (root, child, sid2) = (w.root.clone(), w.child.clone(), sid.clone());
    let (sub, heads) = store
        .read(move |c| {
            let heads: Vec<(String, i64)> = [root, child]
                .into_iter()
                .map(|o| {
                    Ok((
                        o.clone(),
                        c.query_one("select seq from journal_heads where org_id = ?", params![&o])?
                            .i64(0)?,
                    ))
                })
                .collect::<Result<_, StoreError>>()?;
            Ok((webhooks_out::get_any(c, &sid2)?, heads))
        })
        .await
        .unwrap();
    for (org, head) in heads {
        let cursor = sub.cursors.iter().find(|c| c.org_id == org).unwrap();
        assert_eq!(cursor.seq, head, "caught up in {org}");
    }
    assert!(sub.pending.is_none());
    let scope = Scope {
        org_ids: vec![w.root.clone()],
    };
    let sid2 = sid.clone();
    let attempts = store
        .read(move |c| webhooks_out::attempts(c, &scope, &sid2, 10))
        .await
        .unwrap();
    let outcomes: Vec<(&str, i64)> = attempts.iter().map(|a| (a.outcome.as_str(), a.attempt)).collect();
    assert_eq!(outcomes, vec![("delivered", 1), ("delivered", 2), ("failed", 1)]);
}

async fn webhook_lifecycle(store: Store) {
    use openline_store::webhooks_out::{self, SubscriptionChange};
    let w = hook_world(&store).await;
    let other = world(&store, "Elsewhere", "pnid-elsewhere").await;
    let (sid, root) = (w.sub.id.clone(), w.root.clone());
    let mine = Scope {
        org_ids: vec![w.root.clone()],
    };

    // Another organization neither sees nor changes it.
    let (sid2, theirs) = (sid.clone(), other.scope.clone());
    let seen = store
        .write(move |c| {
            Ok((
                webhooks_out::get(c, &theirs, &sid2).err(),
                webhooks_out::list(c, &theirs)?.len(),
                webhooks_out::delete(c, &theirs, &sid2, &journal::Actor::Cli, NOW).err(),
            ))
        })
        .await
        .unwrap();
    assert!(matches!(
        seen,
        (Some(StoreError::NotFound), 0, Some(StoreError::NotFound))
    ));

    // A new event fails for good: the subscription is parked (journaled) and not due any more.
    let r = root.clone();
    store
        .write(move |c| {
            journal::append(
                c,
                &r,
                "message.received",
                Some("msg_2"),
                &serde_json::json!({"message": {"id": "msg_2"}}),
                NOW + 5,
            )
        })
        .await
        .unwrap();
    let sid2 = sid.clone();
    let (entry, id) = store
        .write(move |c| {
            let t = webhooks_out::claim(c, &hook_key(), &sid2, "node-a", NOW + 60_000, NOW + 10)?.unwrap();
            let e = webhooks_out::next_event(c, &t)?.entry.unwrap();
            let id = format!("{}:{}", e.org_id, e.seq);
            Ok((e, id))
        })
        .await
        .unwrap();
    let (sid2, e2, id2) = (sid.clone(), entry.clone(), id.clone());
    store
        .write(move |c| {
            webhooks_out::record_attempt(
                c,
                &sid2,
                "node-a",
                &[],
                &hook_attempt(&e2, &id2, 9, NOW + 11, false, true),
            )?;
            webhooks_out::release(c, &sid2, "node-a")
        })
        .await
        .unwrap();
    let (sid2, scope) = (sid.clone(), mine.clone());
    let (sub, due, claimed) = store
        .write(move |c| {
            Ok((
                webhooks_out::get(c, &scope, &sid2)?,
                webhooks_out::due(c, NOW + 100_000, 10)?,
                webhooks_out::claim(c, &hook_key(), &sid2, "node-b", NOW + 200_000, NOW + 100_000)?.is_some(),
            ))
        })
        .await
        .unwrap();
    assert_eq!(sub.state, "parked");
    assert_eq!(sub.pending.as_ref().unwrap().event_id, id);
    assert_eq!(sub.pending.as_ref().unwrap().attempts, 9);
    assert!(
        !due.contains(&sid) && !claimed,
        "a parked subscription is not delivered"
    );

    // Resumed, it is due at once and another node may take it (the lease was released).
    let (sid2, scope) = (sid.clone(), mine.clone());
    let claimed = store
        .write(move |c| {
            let s = webhooks_out::resume(c, &scope, &sid2, &journal::Actor::Cli, NOW + 100_001)?;
            assert_eq!(
                (s.state.as_str(), s.pending.as_ref().map(|p| p.attempts)),
                ("active", Some(0))
            );
            Ok(
                webhooks_out::claim(c, &hook_key(), &sid2, "node-b", NOW + 200_000, NOW + 100_002)?
                    .map(|t| t.head_event_id),
            )
        })
        .await
        .unwrap();
    assert_eq!(claimed, Some(Some(id.clone())));

    // Disabled subscriptions are not due; enabling makes them due again.
    let (sid2, scope) = (sid.clone(), mine.clone());
    let states = store
        .write(move |c| {
            webhooks_out::release(c, &sid2, "node-b")?;
            let off = SubscriptionChange {
                disabled: Some(true),
                ..SubscriptionChange::default()
            };
            let a = webhooks_out::update(c, &scope, &sid2, &off, &journal::Actor::Cli, NOW + 100_003)?.state;
            let due_off = webhooks_out::due(c, NOW + 100_004, 10)?.contains(&sid2);
            let on = SubscriptionChange {
                disabled: Some(false),
                ..SubscriptionChange::default()
            };
            let b = webhooks_out::update(c, &scope, &sid2, &on, &journal::Actor::Cli, NOW + 100_005)?.state;
            let due_on = webhooks_out::due(c, NOW + 100_006, 10)?.contains(&sid2);
            Ok((a, due_off, b, due_on))
        })
        .await
        .unwrap();
    assert_eq!(states, ("disabled".to_owned(), false, "active".to_owned(), true));

    // A rotation keeps the previous secret signing until the grace period ends.
    let (sid2, scope) = (sid.clone(), mine.clone());
    let secrets = store
        .write(move |c| {
            webhooks_out::rotate_secret(
                c,
                &scope,
                &sid2,
                "whsec_new",
                &hook_key(),
                NOW + 200_000,
                &journal::Actor::Cli,
                NOW + 100_007,
            )?;
            let during = webhooks_out::claim(c, &hook_key(), &sid2, "node-a", NOW + 150_000, NOW + 100_008)?.unwrap();
            webhooks_out::release(c, &sid2, "node-a")?;
            let after = webhooks_out::claim(c, &hook_key(), &sid2, "node-a", NOW + 300_000, NOW + 200_001)?.unwrap();
            Ok((during.secret, during.previous_secret, after.previous_secret))
        })
        .await
        .unwrap();
    assert_eq!(secrets, ("whsec_new".to_owned(), Some("whsec_test".to_owned()), None));

    // Deleted with its cursors and attempts; every change is in the journal, which still verifies,
    // and no secret is.
    let (sid2, scope, r) = (sid.clone(), mine.clone(), root.clone());
    let (kinds, payloads, reports, leftovers) = store
        .write(move |c| {
            webhooks_out::delete(c, &scope, &sid2, &journal::Actor::Cli, NOW + 200_002)?;
            let rows = c.query(
                "select kind, payload from journal where org_id = ? and kind like 'webhook_subscription.%' order by seq",
                params![&r],
            )?;
            let kinds: Vec<String> = rows.iter().map(|r| r.string(0)).collect::<Result<_, _>>()?;
            let payloads: Vec<String> = rows.iter().map(|r| r.string(1)).collect::<Result<_, _>>()?;
            let leftovers = c
                .query_one(
                    "select (select count(*) from webhook_cursors where subscription_id = ?) + (select count(*) from webhook_attempts where subscription_id = ?)",
                    params![&sid2, &sid2],
                )?
                .i64(0)?;
            Ok((kinds, payloads, journal::verify(c, Some(&r))?, leftovers))
        })
        .await
        .unwrap();
    assert_eq!(
        kinds,
        vec![
            "webhook_subscription.created",
            "webhook_subscription.parked",
            "webhook_subscription.resumed",
            "webhook_subscription.updated",
            "webhook_subscription.updated",
            "webhook_subscription.secret_rotated",
            "webhook_subscription.deleted",
        ]
    );
    assert!(payloads.iter().all(|p| !p.contains("whsec_")), "{payloads:?}");
    assert!(payloads[0].contains("\"cli\""), "who made it: {}", payloads[0]);
    assert!(reports.iter().all(|r| r.problem.is_none()), "{reports:?}");
    assert_eq!(leftovers, 0);
}

async fn archive_participants(store: Store) {
    let w = world(&store, "Bank", "pn1").await;
    let InboundOutcome::Stored(m) = store_inbound(&store, &w, "wamid.J1", "+447700900001", "hi", NOW).await else {
        panic!("stored")
    };
    let org = w.org.clone();
    let conv = m.conversation_id.clone();
    let joined = store
        .write(move |c| {
            let user = users::create(
                c,
                &users::NewUser {
                    org_id: &org,
                    team_id: None,
                    email: "agent@bank.test",
                    name: "Agent",
                    role: Role::Agent,
                    password_hash: "x",
                },
                NOW,
            )?;
            Ok((
                conversations::join(c, &conv, &user.id, NOW + 1)?,
                conversations::join(c, &conv, &user.id, NOW + 2)?,
            ))
        })
        .await
        .unwrap();
    assert_eq!(joined, (true, false), "the second join is a no-op");
    let e = entries(&store, &w.org).await;
    let joins: Vec<_> = e.iter().filter(|e| e.kind == "participant.joined").collect();
    assert_eq!(joins.len(), 1);
    assert_eq!(joins[0].subject_id.as_deref(), Some(m.conversation_id.as_str()));
    assert_eq!(verify_org(&store, &w.org).await.problem, None);
}

async fn archive_long_chain(store: Store) {
    let w = world(&store, "Bank", "pn1").await;
    let org = w.org.clone();
    // More entries than one page of verification (2000), so an edit past the first page is found
    // by the second.
    store
        .write(move |c| {
            for i in 0..2100 {
                journal::append(c, &org, "test.event", None, &serde_json::json!({"n": i}), NOW + i)?;
            }
            Ok(())
        })
        .await
        .unwrap();
    let report = verify_org(&store, &w.org).await;
    assert_eq!((report.problem, report.entries), (None, 2102));
    let org = w.org.clone();
    store
        .write(move |c| {
            c.execute(
                "update journal set payload = '{\"n\":0}' where org_id = ? and seq = 2050",
                params![&org],
            )
        })
        .await
        .unwrap();
    let p = verify_org(&store, &w.org).await.problem.expect("found");
    assert_eq!(p.seq, 2050);
    assert!(p.what.contains("altered"), "{}", p.what);
}

/// The key outbound webhook secrets are sealed under in these tests.
fn hook_key() -> openline_store::webhooks_out::SecretsKey {
    openline_store::webhooks_out::SecretsKey::from_hex(&"42".repeat(32)).unwrap()
}

/// The batch a gathered set of webhooks makes: a message stored before, two from a new contact
/// (the later one with a new profile name), one repeated within the batch, one from a contact known
/// only by WhatsApp user id, an older message of a known contact, and a system message about a new
/// contact (which must not open a window).
fn batch_items<'a>(w: &'a World, p: &'a str) -> Vec<(NewInbound<'a>, bool)> {
    let id = |s: &str| -> &'a str { Box::leak(format!("{p}{s}").into_boxed_str()) };
    let mut v = vec![
        (inbound(w, id("pre"), "+447700900001", "Before", NOW + 10), true),
        (inbound(w, id("w1"), "+447700900002", "First", NOW + 20), true),
        (inbound(w, id("w2"), "+447700900002", "Second", NOW + 30), true),
        (inbound(w, id("w1"), "+447700900002", "First", NOW + 20), true),
        (inbound(w, id("w3"), "+447700900001", "Older", NOW + 5), true),
        (inbound(w, id("w5"), "+447700900004", "changed number", NOW + 50), false),
    ];
    v[2].0.profile_name = Some("Ada B");
    let mut by_user_id = inbound(w, id("w4"), "", "No number", NOW + 40);
    by_user_id.from_phone = None;
    by_user_id.wa_user_id = Some("US.123");
    v.insert(4, (by_user_id, true));
    v
}

/// What the batch left behind, comparable between two databases: per thread its contact, window,
/// preview, unread count and messages; the outcomes; the archive's length and integrity.
async fn inbound_state(store: &Store, org: &str) -> Vec<String> {
    let org = org.to_owned();
    store
        .read(move |c| {
            let mut out = Vec::new();
            for r in c.query(
                "select coalesce(ct.phone, ct.wa_user_id), ct.whatsapp_name, ct.wa_user_id, v.unread_count, v.last_inbound_at,
                        v.last_message_preview, v.last_activity_at,
                        (select count(*) from messages m where m.conversation_id = v.id)
                 from conversations v join contacts ct on ct.id = v.contact_id where v.org_id = ? order by 1",
                params![&org],
            )? {
                out.push(format!(
                    "{} {:?} {:?} unread={} window={:?} preview={:?} activity={} messages={}",
                    r.string(0)?,
                    r.opt_string(1)?,
                    r.opt_string(2)?,
                    r.i64(3)?,
                    r.opt_i64(4)?,
                    r.opt_string(5)?,
                    r.i64(6)?,
                    r.i64(7)?
                ));
            }
            for report in journal::verify(c, Some(&org))? {
                out.push(format!("archive entries={} problem={:?}", report.entries, report.problem));
            }
            Ok(out)
        })
        .await
        .unwrap()
}

async fn inbound_batch(store: Store) {
    let other = openline_store::testing::TestDb::new(store.backend());
    let one_by_one = Store::open(&other.url).expect("open second store");
    let (wa, wb) = (
        world(&store, "Bank", "pn1").await,
        world(&one_by_one, "Bank", "pn1").await,
    );

    // Both have the first message already.
    for (s, w, p) in [(&store, &wa, "A."), (&one_by_one, &wb, "B.")] {
        let (org, sender) = (w.org.clone(), w.sender.id.clone());
        let p = p.to_owned();
        s.write(move |c| {
            let w = World {
                org,
                sender: senders::get_any(c, &sender)?,
                scope: Scope { org_ids: vec![] },
            };
            let items = batch_items(&w, &p);
            messages::insert_inbound(c, &items[0].0)
        })
        .await
        .unwrap();
    }

    let (org, sender) = (wa.org.clone(), wa.sender.id.clone());
    let batched = store
        .write(move |c| {
            let w = World {
                org,
                sender: senders::get_any(c, &sender)?,
                scope: Scope { org_ids: vec![] },
            };
            let items = batch_items(&w, "A.");
            let batch: Vec<messages::InboundItem<'_, '_>> = items
                .iter()
                .map(|(m, opens_window)| messages::InboundItem {
                    message: m,
                    opens_window: *opens_window,
                })
                .collect();
            Ok(messages::insert_inbound_many(c, &batch)?
                .into_iter()
                .map(|(o, _)| o)
                .collect::<Vec<_>>())
        })
        .await
        .unwrap();
    let (org, sender) = (wb.org.clone(), wb.sender.id.clone());
    let single = one_by_one
        .write(move |c| {
            let w = World {
                org,
                sender: senders::get_any(c, &sender)?,
                scope: Scope { org_ids: vec![] },
            };
            let mut out = Vec::new();
            for (m, opens_window) in batch_items(&w, "B.") {
                let item = messages::InboundItem {
                    message: &m,
                    opens_window,
                };
                out.extend(messages::insert_inbound_many(c, &[item])?.into_iter().map(|(o, _)| o));
            }
            Ok(out)
        })
        .await
        .unwrap();

    let shape = |o: &[InboundOutcome]| -> Vec<String> {
        o.iter()
            .map(|o| match o {
                InboundOutcome::Stored(m) => format!("stored {:?}", m.body),
                InboundOutcome::Duplicate => "duplicate".to_owned(),
            })
            .collect()
    };
    assert_eq!(
        shape(&batched),
        [
            "duplicate",
            "stored Some(\"First\")",
            "stored Some(\"Second\")",
            "duplicate",
            "stored Some(\"No number\")",
            "stored Some(\"Older\")",
            "stored Some(\"changed number\")"
        ]
    );
    assert_eq!(shape(&batched), shape(&single));
    let (a, b) = (
        inbound_state(&store, &wa.org).await,
        inbound_state(&one_by_one, &wb.org).await,
    );
    assert_eq!(a, b, "a batch must end exactly as one message at a time");
    // The facts, so that both being wrong the same way fails too.
    assert_eq!(a[0], "+447700900001 Some(\"Ada\") None unread=2 window=Some(1700000000010) preview=Some(\"Older\") activity=1700000000005 messages=2");
    assert_eq!(a[1], "+447700900002 Some(\"Ada B\") None unread=2 window=Some(1700000000030) preview=Some(\"Second\") activity=1700000000030 messages=2");
    assert_eq!(a[2], "+447700900004 Some(\"Ada\") None unread=1 window=None preview=Some(\"changed number\") activity=1700000000050 messages=1");
    assert_eq!(a[3], "US.123 Some(\"Ada\") Some(\"US.123\") unread=1 window=Some(1700000000040) preview=Some(\"No number\") activity=1700000000040 messages=1");
    assert_eq!(a[4], "archive entries=8 problem=None");
    drop(one_by_one);
    drop(other);
}

/// Business-initiated conversations of the rolling 24 hours: contacts reached by a message that
/// went out count (each once, however many messages); held, cancelled and older ones do not; the
/// count stops at the cap it is asked about.
async fn business_initiated(store: Store) {
    let w = world(&store, "Bank", "pn1").await;
    let (org, sender) = (w.org.clone(), w.sender.id.clone());
    let since = NOW - 1_000;
    let (counted, again, held, cancelled, old, never) = store
        .write(move |c| {
            let mut ids = Vec::new();
            // (sent messages, queue reason, status, at)
            for (i, (n, queued, status, at)) in [
                (2, None, "sent", NOW),
                (1, None, "sent", NOW),
                (1, Some("messaging_limit"), "queued", NOW),
                (1, None, "cancelled", NOW),
                (1, None, "sent", since - 1),
                (0, None, "sent", NOW),
            ]
            .into_iter()
            .enumerate()
            {
                let ct = contacts::create(c, &org, &format!("+4420790000{i:02}"), None, NOW)?;
                let conv = conversations::find_or_create_open(c, &org, Channel::Whatsapp, &ct.id, &sender, NOW)?;
                for _ in 0..n {
                    let m = messages::insert_outbound(
                        c,
                        &NewOutbound {
                            org_id: &org,
                            conversation_id: &conv,
                            sender_id: &sender,
                            author_user_id: None,
                            kind: MessageKind::Template,
                            body: Some("x"),
                            template: None,
                            queue_reason: queued,
                            business_initiated: true,
                            now: at,
                        },
                    )?;
                    c.execute("update messages set status = ? where id = ?", params![status, &m.id])?;
                }
                ids.push(ct.id);
            }
            Ok((
                ids[0].clone(),
                ids[1].clone(),
                ids[2].clone(),
                ids[3].clone(),
                ids[4].clone(),
                ids[5].clone(),
            ))
        })
        .await
        .unwrap();
    let org = w.org.clone();
    let (all, capped, reached) = store
        .read(move |c| {
            let mut reached = Vec::new();
            for id in [&counted, &again, &held, &cancelled, &old, &never] {
                reached.push(messages::business_initiated_with(c, &org, id, since)?);
            }
            Ok((
                messages::business_initiated_contacts_up_to(c, &org, since, 250)?,
                messages::business_initiated_contacts_up_to(c, &org, since, 1)?,
                reached,
            ))
        })
        .await
        .unwrap();
    assert_eq!(all, 2, "two contacts reached (one of them twice)");
    assert_eq!(capped, 1, "counted only as far as the cap");
    assert_eq!(reached, [true, true, false, false, false, false]);
    // Another organization's count is its own.
    let other = world(&store, "Other", "pn2").await;
    let n = store
        .read(move |c| messages::business_initiated_contacts_up_to(c, &other.org, since, 250))
        .await
        .unwrap();
    assert_eq!(n, 0);
}

/// The number an organization sends from: its own oldest on the channel, else its nearest
/// ancestor's; none when nobody up the tree has one on that channel.
async fn sender_for_org(store: Store) {
    let w = world(&store, "Bank", "pn1").await;
    let root = w.org.clone();
    let picked = store
        .write(move |c| {
            let team = orgs::create(c, "Team", Some(&root), "inherit", NOW)?;
            let desk = orgs::create(c, "Desk", Some(&team.id), "inherit", NOW)?;
            let own = |c: &mut dyn openline_store::Conn, org: &str, pnid: &str, at: i64| {
                senders::create(
                    c,
                    &senders::NewSender {
                        org_id: org,
                        channel: Channel::Whatsapp,
                        provider: ProviderKind::CloudApi,
                        phone_number: "+15550002000",
                        phone_number_id: pnid,
                        waba_id: Some("waba1"),
                        display_name: "Team",
                        throughput_per_s: 80,
                    },
                    at,
                )
            };
            // Before the team has a number: the desk (two levels down) uses the bank's.
            let inherited = senders::for_org(c, &desk.id, Channel::Whatsapp)?.map(|s| s.phone_number_id);
            own(c, &team.id, "pn-team-later", NOW + 2)?;
            own(c, &team.id, "pn-team-first", NOW + 1)?;
            let nearest = senders::for_org(c, &desk.id, Channel::Whatsapp)?.map(|s| s.phone_number_id);
            let root_own = senders::for_org(c, &root, Channel::Whatsapp)?.map(|s| s.phone_number_id);
            let sms = senders::for_org(c, &desk.id, Channel::Sms)?.map(|s| s.phone_number_id);
            Ok((inherited, nearest, root_own, sms))
        })
        .await
        .unwrap();
    assert_eq!(
        picked,
        (
            Some("pn1".to_owned()),
            Some("pn-team-first".to_owned()),
            Some("pn1".to_owned()),
            None
        )
    );
}

/// Every connection keeps the configuration it resolved along the tree (`org_config`); here each
/// kind of change must be seen at once by connections that already keep the old answer: a change
/// by another process (a second store on the same database), a hand edit in SQL, a change earlier
/// in the same transaction, and a change rolled back (which must not stay visible).
async fn config_cache(store: Store) {
    let w = world(&store, "Bank", "pn1").await;
    let root = w.org.clone();
    let desk = store
        .write(move |c| Ok(orgs::create(c, "Desk", Some(&root), "inherit", NOW)?.id))
        .await
        .unwrap();
    let facts = |store: &Store, desk: &str| {
        let (s1, s2, desk1, desk2) = (store.clone(), store.clone(), desk.to_owned(), desk.to_owned());
        async move {
            let read = |c: &mut dyn openline_store::Conn, desk: &str| {
                Ok((
                    orgs::whatsapp_enabled(c, desk)?,
                    orgs::messaging_tier(c, desk)?,
                    openline_store::dlp::rules_for(c, desk)?.len(),
                    senders::for_org(c, desk, Channel::Whatsapp)?.map(|s| s.phone_number_id),
                ))
            };
            let written = s1.write(move |c| read(c, &desk1)).await.unwrap();
            let read_back = s2.read(move |c| read(c, &desk2)).await.unwrap();
            assert_eq!(written, read_back, "the writer and a reader agree");
            written
        }
    };
    // Resolved (and kept) by the writer and by a reader.
    assert_eq!(facts(&store, &desk).await, (true, None, 0, Some("pn1".to_owned())));

    // Another process changes the parent: the kept answers are dropped.
    let db_url = store.url().clone();
    let other = Store::open(&db_url).expect("a second store on the same database");
    let root = w.org.clone();
    other
        .write(move |c| {
            c.execute("update organizations set whatsapp = 'off' where id = ?", params![&root])?;
            orgs::set_setting(
                c,
                &root,
                "messaging_tier",
                serde_json::json!("tier_2k"),
                &journal::Actor::Cli,
                NOW,
            )?;
            Ok(())
        })
        .await
        .unwrap();
    assert_eq!(
        facts(&store, &desk).await,
        (false, Some("tier_2k".to_owned()), 0, Some("pn1".to_owned()))
    );

    // In one transaction: a policy and a number for the desk, seen by the next statement.
    let (desk2, root) = (desk.clone(), w.org.clone());
    let seen = store
        .write(move |c| {
            let before = senders::for_org(c, &desk2, Channel::Whatsapp)?.map(|s| s.phone_number_id);
            openline_store::dlp::set_policy(c, &root, &policy(), &journal::Actor::Cli, NOW)?;
            let rules = openline_store::dlp::rules_for(c, &desk2)?.len();
            senders::create(
                c,
                &senders::NewSender {
                    org_id: &desk2,
                    channel: Channel::Whatsapp,
                    provider: ProviderKind::CloudApi,
                    phone_number: "+15550003000",
                    phone_number_id: "pn-desk",
                    waba_id: Some("waba1"),
                    display_name: "Desk",
                    throughput_per_s: 80,
                },
                NOW,
            )?;
            let after = senders::for_org(c, &desk2, Channel::Whatsapp)?.map(|s| s.phone_number_id);
            Ok((before, rules, after))
        })
        .await
        .unwrap();
    assert_eq!(seen, (Some("pn1".to_owned()), 1, Some("pn-desk".to_owned())));

    // A change that is rolled back: seen inside its job, gone after it.
    let desk2 = desk.clone();
    let failed = store
        .write(move |c| {
            c.execute("update organizations set whatsapp = 'on' where id = ?", params![&desk2])?;
            assert!(orgs::whatsapp_enabled(c, &desk2)?);
            c.execute("delete from dlp_policies", &[])?;
            assert_eq!(openline_store::dlp::rules_for(c, &desk2)?.len(), 0);
            Err::<(), _>(StoreError::Conflict("rolled back on purpose".into()))
        })
        .await;
    assert!(failed.is_err());
    assert_eq!(
        facts(&store, &desk).await,
        (false, Some("tier_2k".to_owned()), 1, Some("pn-desk".to_owned()))
    );
}

fn policy() -> openline_domain::dlp::DlpPolicy {
    serde_json::from_value(serde_json::json!({
        "id": "p1", "name": "Cards",
        "rules": [{"id": "cards", "name": "Card numbers", "detector": {"kind": "payment_card"}, "action": "block", "direction": "both"}]
    }))
    .unwrap()
}

/// Submits a write at once (polls its future once), so jobs are queued in the order written.
type Queued<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, StoreError>> + Send + 'a>>;

fn submitted<'a, T>(f: impl std::future::Future<Output = Result<T, StoreError>> + Send + 'a) -> Queued<'a, T> {
    let mut f: Queued<'a, T> = Box::pin(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(
        f.as_mut().poll(&mut cx).is_pending(),
        "a queued write cannot have finished"
    );
    f
}

/// Queues a job writing a row and an archive entry named `id`, then failing if `fail`.
fn row<'a>(store: &'a Store, id: &'static str, org: String, savepoint: bool, fail: bool) -> Queued<'a, &'static str> {
    let job = move |c: &mut dyn openline_store::Conn| {
        c.execute(
            "insert into provider_events (id, provider, field, raw, received_at) values (?, 'x', 'x', '{}', 0)",
            params![id],
        )?;
        openline_store::journal::append(c, &org, "test.entry", Some(id), &serde_json::json!({}), NOW)?;
        if fail {
            return Err(StoreError::Db("planned failure".into()));
        }
        Ok(id)
    };
    if savepoint {
        submitted(store.write(job))
    } else {
        submitted(store.write_unguarded(job))
    }
}

/// `Store::write_unguarded` runs a job without a savepoint. When such a job fails, its whole
/// transaction is rolled back: the jobs before it in the group fail with `Overloaded` (none was
/// answered), its own error reaches its caller, nothing of any of them is stored, the archive chain
/// keeps no trace of them, and the jobs queued after it commit in a new transaction.
async fn unguarded_failure(store: Store) {
    let w = world(&store, "Bank", "pn1").await;
    // Hold the writer so that every job below is queued behind it and taken as one group.
    let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let blocker = submitted(store.write(move |_| {
        started_tx.send(()).unwrap();
        release_rx.recv().unwrap();
        Ok(())
    }));
    tokio::task::spawn_blocking(move || started_rx.recv().unwrap())
        .await
        .unwrap();

    let before = vec![
        row(&store, "a1", w.org.clone(), true, false),
        row(&store, "a2", w.org.clone(), false, false),
        row(&store, "a3", w.org.clone(), true, false),
    ];
    let failing = row(&store, "f", w.org.clone(), false, true);
    let after = vec![
        row(&store, "b1", w.org.clone(), true, false),
        row(&store, "b2", w.org.clone(), false, false),
    ];
    release_tx.send(()).unwrap();
    blocker.await.unwrap();
    for f in before {
        assert!(
            matches!(f.await, Err(StoreError::Overloaded)),
            "a job of the rolled-back transaction"
        );
    }
    assert!(matches!(failing.await, Err(StoreError::Db(m)) if m == "planned failure"));
    for (f, id) in after.into_iter().zip(["b1", "b2"]) {
        assert_eq!(f.await.unwrap(), id, "queued after the failure: committed");
    }
    let org = w.org.clone();
    let (stored, entries, report) = store
        .write(move |c| {
            let stored: Vec<String> = c
                .query("select id from provider_events order by id", &[])?
                .iter()
                .map(|r| r.string(0))
                .collect::<Result<_, _>>()?;
            let entries: Vec<String> = c
                .query(
                    "select subject_id from journal where kind = 'test.entry' order by seq",
                    &[],
                )?
                .iter()
                .map(|r| r.string(0))
                .collect::<Result<_, _>>()?;
            Ok((stored, entries, openline_store::journal::verify(c, Some(&org))?))
        })
        .await
        .unwrap();
    assert_eq!(stored, ["b1", "b2"]);
    assert_eq!(entries, ["b1", "b2"]);
    assert!(report[0].problem.is_none(), "{report:?}");
}

/// Kind, body, template, queue reason and extras of an outgoing message.
type Shape<'a> = (
    MessageKind,
    Option<&'a str>,
    Option<&'a serde_json::Value>,
    Option<&'a str>,
    messages::OutboundExtras<'a>,
);

/// `insert_outbound_rich` builds the message it returns instead of reading it back: for every
/// shape of outgoing message it must equal what is read back.
async fn outbound_as_stored(store: Store) {
    let w = world(&store, "Bank", "pn1").await;
    let (org, sender) = (w.org.clone(), w.sender.id.clone());
    let pairs = store
        .write(move |c| {
            let contact = contacts::create(c, &org, "+447700900123", Some("Ada"), NOW)?;
            let conv = conversations::find_or_create_open(c, &org, Channel::Whatsapp, &contact.id, &sender, NOW)?;
            let user = users::create(
                c,
                &users::NewUser {
                    org_id: &org,
                    team_id: None,
                    email: "agent@bank.example",
                    name: "Agent",
                    role: Role::Agent,
                    password_hash: "h",
                },
                NOW,
            )?;
            let media =
                serde_json::json!({"media_id": "med_1", "content_type": "image/jpeg", "size": 3, "filename": "a.jpg"});
            let template = serde_json::json!({"name": "hello", "language": "en", "parameters": ["Ada", 1.5, 3]});
            let content = serde_json::json!({"location": {"latitude": 51.5, "longitude": -0.12, "name": "Office"}});
            let shapes: Vec<Shape<'_>> = vec![
                (
                    MessageKind::Text,
                    Some("Hello \u{1F600} \"quoted\""),
                    None,
                    None,
                    messages::OutboundExtras {
                        media: None,
                        content: None,
                        reply_to: None,
                    },
                ),
                (
                    MessageKind::Text,
                    Some("Held"),
                    None,
                    Some("awaiting_opt_in"),
                    messages::OutboundExtras {
                        media: None,
                        content: None,
                        reply_to: Some("wamid.in1"),
                    },
                ),
                (
                    MessageKind::Image,
                    None,
                    None,
                    None,
                    messages::OutboundExtras {
                        media: Some(&media),
                        content: None,
                        reply_to: None,
                    },
                ),
                (
                    MessageKind::Template,
                    Some("Hi Ada"),
                    Some(&template),
                    Some("window_closed"),
                    messages::OutboundExtras {
                        media: None,
                        content: None,
                        reply_to: None,
                    },
                ),
                (
                    MessageKind::Location,
                    Some("Office"),
                    None,
                    None,
                    messages::OutboundExtras {
                        media: None,
                        content: Some(&content),
                        reply_to: None,
                    },
                ),
            ];
            let mut pairs = Vec::new();
            for (i, (kind, body, template, queue_reason, extras)) in shapes.into_iter().enumerate() {
                let author = (i % 2 == 0).then_some(user.id.as_str());
                let returned = messages::insert_outbound_rich(
                    c,
                    &NewOutbound {
                        org_id: &org,
                        conversation_id: &conv,
                        sender_id: &sender,
                        author_user_id: author,
                        kind,
                        body,
                        template,
                        queue_reason,
                        business_initiated: i == 3,
                        now: NOW + i as i64,
                    },
                    &extras,
                )?;
                let read = messages::get_any(c, &returned.id)?;
                pairs.push((returned, read));
            }
            Ok(pairs)
        })
        .await
        .unwrap();
    assert_eq!(pairs.len(), 5);
    for (returned, read) in pairs {
        assert_eq!(
            serde_json::to_value(&returned).unwrap(),
            serde_json::to_value(&read).unwrap()
        );
    }
}

/// The statuses of a batch: two messages' progress (a late `delivered` after `read` in the same
/// batch must not move it back), a status repeated within the batch and one recorded before it, a
/// late `sent`, and one for an id no message has.
const STATUS_BATCH: &[(&str, DeliveryStatus, i64)] = &[
    ("wamid.1", DeliveryStatus::Read, 4),
    ("wamid.1", DeliveryStatus::Delivered, 3),
    ("wamid.1", DeliveryStatus::Read, 4),
    ("wamid.2", DeliveryStatus::Delivered, 5),
    ("wamid.2", DeliveryStatus::Read, 6),
    ("wamid.9", DeliveryStatus::Sent, 7),
    ("wamid.1", DeliveryStatus::Sent, 2),
];

/// Two sent messages (`wamid.1`, `wamid.2`), the second already reported delivered.
async fn status_world(store: &Store) -> World {
    let w = world(store, "Bank", "pn1").await;
    for (phone, wamid) in [("+447700900001", "wamid.1"), ("+447700900002", "wamid.2")] {
        let id = send_one(store, &w, phone).await.id;
        store
            .write(move |c| {
                messages::record_provider_accept(c, &id, ProviderKind::CloudApi, wamid, NOW + 1).map(|_| ())
            })
            .await
            .unwrap();
    }
    assert!(matches!(
        status(store, "wamid.2", DeliveryStatus::Delivered, NOW + 5).await,
        StatusOutcome::Advanced(_)
    ));
    w
}

fn report(wamid: &str, status: DeliveryStatus, at: i64) -> StatusReport<'_> {
    StatusReport {
        provider: ProviderKind::CloudApi,
        provider_message_id: wamid,
        status,
        error_code: None,
        error_title: None,
        at: NOW + at,
        raw: None,
        now: NOW + at,
    }
}

fn outcome_shape(o: &StatusOutcome) -> String {
    match o {
        StatusOutcome::Advanced(m) => format!("advanced to {}", m.status.as_str()),
        StatusOutcome::Stale(m) => format!("stale at {}", m.status.as_str()),
        StatusOutcome::Duplicate => "duplicate".into(),
        StatusOutcome::Orphan => "orphan".into(),
    }
}

/// Each message's status and times, the status events recorded, the archive's length and integrity.
async fn status_state(store: &Store, org: &str) -> Vec<String> {
    let org = org.to_owned();
    store
        .read(move |c| {
            let mut out = Vec::new();
            for r in c.query(
                "select provider_message_id, status, sent_at, delivered_at, read_at from messages
                 where org_id = ? and provider_message_id is not null order by provider_message_id",
                params![&org],
            )? {
                out.push(format!(
                    "{} {} sent={:?} delivered={:?} read={:?}",
                    r.string(0)?,
                    r.string(1)?,
                    r.opt_i64(2)?.map(|t| t - NOW),
                    r.opt_i64(3)?.map(|t| t - NOW),
                    r.opt_i64(4)?.map(|t| t - NOW)
                ));
            }
            out.push(format!(
                "status events={}",
                c.query_one("select count(*) from message_status_events", &[])?.i64(0)?
            ));
            for report in journal::verify(c, Some(&org))? {
                out.push(format!(
                    "archive entries={} problem={:?}",
                    report.entries, report.problem
                ));
            }
            Ok(out)
        })
        .await
        .unwrap()
}

async fn status_batch(store: Store) {
    let other = openline_store::testing::TestDb::new(store.backend());
    let one_by_one = Store::open(&other.url).expect("open second store");
    let (wa, wb) = (status_world(&store).await, status_world(&one_by_one).await);
    let batched = store
        .write(|c| {
            let keys: Vec<(ProviderKind, &str)> = STATUS_BATCH
                .iter()
                .map(|(w, _, _)| (ProviderKind::CloudApi, *w))
                .collect();
            let mut ahead = messages::StatusLookahead::load(c, &keys)?;
            let mut out = Vec::new();
            for (wamid, s, at) in STATUS_BATCH {
                out.push(outcome_shape(&messages::apply_status_naming(
                    c,
                    &report(wamid, *s, *at),
                    None,
                    Some(&mut ahead),
                )?));
            }
            Ok(out)
        })
        .await
        .unwrap();
    let single = one_by_one
        .write(|c| {
            let mut out = Vec::new();
            for (wamid, s, at) in STATUS_BATCH {
                out.push(outcome_shape(&messages::apply_status(c, &report(wamid, *s, *at))?));
            }
            Ok(out)
        })
        .await
        .unwrap();
    assert_eq!(batched, single, "a batch must end exactly as one status at a time");
    assert_eq!(
        batched,
        [
            "advanced to read",
            "stale at read",
            "duplicate",
            "duplicate",
            "advanced to read",
            "orphan",
            "stale at read"
        ]
    );
    let (a, b) = (
        status_state(&store, &wa.org).await,
        status_state(&one_by_one, &wb.org).await,
    );
    assert_eq!(a, b);
    assert_eq!(a[0], "wamid.1 read sent=Some(2) delivered=Some(3) read=Some(4)");
    assert_eq!(a[1], "wamid.2 read sent=None delivered=Some(5) read=Some(6)");
    assert_eq!(a[2], "status events=6");
    assert_eq!(a[3], "archive entries=11 problem=None");
    drop(one_by_one);
    drop(other);
}
