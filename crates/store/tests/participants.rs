//! Colleagues sharing a conversation, on a fresh SQLite file and a fresh PostgreSQL database: joins,
//! colleagues added, leaving, removals and transfers, each journaled once with who made it, and
//! nothing reachable from another organization.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use openline_domain::{Channel, MessageKind, ProviderKind, Role};
use openline_store::journal::{self, Actor};
use openline_store::messages::{self, InboundOutcome, NewInbound};
use openline_store::orgs::{self, Scope};
use openline_store::participants::{self, Change, Refusal};
use openline_store::testing::TestDb;
use openline_store::{conversations, users, Backend, Store, StoreError};

openline_store::both_backends! {
    run = run;
    joins_adds_leaves_removals_and_transfers_are_journaled_once_each_with_their_actor => lifecycle;
    only_colleagues_who_can_send_take_part_and_another_organization_reaches_nothing => refusals_and_scope;
    a_participant_changed_subscription_receives_joins_leaves_removals_and_transfers => webhook_delivery;
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

struct World {
    org: String,
    scope: Scope,
    conversation: String,
    agent1: String,
    agent2: String,
    supervisor: String,
    viewer: String,
    outsider: String,
    other_scope: Scope,
}

fn user(c: &mut dyn openline_store::Conn, org: &str, email: &str, role: Role) -> Result<String, StoreError> {
    Ok(users::create(
        c,
        &users::NewUser {
            org_id: org,
            team_id: None,
            email,
            name: email,
            role,
            password_hash: "x",
        },
        NOW,
    )?
    .id)
}

async fn world(store: &Store) -> World {
    store
        .write(|c| {
            let (org, sender) = openline_store::testing::org_with_number(c, "Bank", "pn1", NOW)?;
            let other = orgs::create(c, "Other", None, "on", NOW)?;
            let InboundOutcome::Stored(m) = messages::insert_inbound(
                c,
                &NewInbound {
                    org_id: &org.id,
                    sender_id: &sender.id,
                    channel: Channel::Whatsapp,
                    provider: ProviderKind::CloudApi,
                    from_phone: Some("+447700900001"),
                    wa_user_id: None,
                    profile_name: Some("Ada"),
                    provider_message_id: "wamid.P1",
                    kind: MessageKind::Text,
                    body: Some("hello"),
                    media: None,
                    reply_to: None,
                    raw: None,
                    sent_at: NOW,
                    now: NOW,
                },
            )?
            else {
                return Err(StoreError::Db("not stored".into()));
            };
            Ok(World {
                agent1: user(c, &org.id, "agent1@bank.test", Role::Agent)?,
                agent2: user(c, &org.id, "agent2@bank.test", Role::Agent)?,
                supervisor: user(c, &org.id, "sup@bank.test", Role::Supervisor)?,
                viewer: user(c, &org.id, "viewer@bank.test", Role::Viewer)?,
                outsider: user(c, &other.id, "eve@other.test", Role::Agent)?,
                scope: Scope {
                    org_ids: vec![org.id.clone()],
                },
                other_scope: Scope {
                    org_ids: vec![other.id.clone()],
                },
                org: org.id,
                conversation: m.conversation_id,
            })
        })
        .await
        .unwrap()
}

fn actor(id: &str, email: &str) -> Actor {
    Actor::user(id, email)
}

async fn participant_entries(store: &Store, org: &str, after: i64) -> Vec<journal::JournalEntry> {
    let org = org.to_owned();
    store
        .read(move |c| journal::page(c, &org, after, 10_000))
        .await
        .unwrap()
        .into_iter()
        .filter(|e| e.kind.starts_with("participant.") || e.kind == "conversation.transferred")
        .collect()
}

async fn lifecycle(store: Store) {
    let w = world(&store).await;
    let (scope, conv) = (w.scope.clone(), w.conversation.clone());
    let (a1, a2, sup) = (w.agent1.clone(), w.agent2.clone(), w.supervisor.clone());
    let steps = store
        .write(move |c| {
            let joined = conversations::join(c, &conv, &a1, NOW + 1)?;
            let by_a1 = actor(&a1, "agent1@bank.test");
            let added = participants::add(c, &scope, &conv, &a2, &by_a1, NOW + 2)?;
            let again = participants::add(c, &scope, &conv, &a2, &by_a1, NOW + 3)?;
            let now_two = participants::list(c, &scope, &conv, false)?;
            let by_a2 = actor(&a2, "agent2@bank.test");
            let left = participants::leave(c, &scope, &conv, &a2, &by_a2, NOW + 4)?;
            let left_again = participants::leave(c, &scope, &conv, &a2, &by_a2, NOW + 4)?;
            // Back within the same millisecond it left: a second stay, kept apart from the first.
            let transferred = participants::transfer(c, &scope, &conv, &a2, &by_a1, NOW + 4)?;
            let transferred_again = participants::transfer(c, &scope, &conv, &a2, &by_a1, NOW + 5)?;
            let owner = participants::owner(c, &scope, &conv)?;
            let by_sup = actor(&sup, "sup@bank.test");
            let removed = participants::remove(c, &scope, &conv, &a1, &by_sup, NOW + 6)?;
            let current = participants::list(c, &scope, &conv, false)?;
            let history = participants::list(c, &scope, &conv, true)?;
            Ok((
                joined,
                added,
                again,
                now_two,
                left,
                left_again,
                transferred,
                transferred_again,
                owner,
                removed,
                current,
                history,
            ))
        })
        .await
        .unwrap();
    let (
        joined,
        added,
        again,
        now_two,
        left,
        left_again,
        transferred,
        transferred_again,
        owner,
        removed,
        current,
        history,
    ) = steps;
    assert!(joined);
    assert!(matches!(added, Ok(Change::Done { .. })), "{added:?}");
    assert_eq!(again, Ok(Change::Unchanged), "adding twice changes nothing");
    assert_eq!(
        now_two.iter().map(|p| p.user_id.as_str()).collect::<Vec<_>>(),
        [w.agent1.as_str(), w.agent2.as_str()]
    );
    assert!(now_two.iter().all(|p| p.left_at.is_none() && !p.owner));
    assert!(matches!(left, Ok(Change::Done { .. })));
    assert_eq!(left_again, Err(Refusal::NotAParticipant));
    assert!(matches!(transferred, Ok(Change::Done { .. })));
    assert_eq!(transferred_again, Ok(Change::Unchanged));
    assert_eq!(owner.as_deref(), Some(w.agent2.as_str()));
    assert!(matches!(removed, Ok(Change::Done { .. })));
    assert_eq!(current.len(), 1);
    assert_eq!(current[0].user_id, w.agent2);
    assert!(current[0].owner, "the new owner takes part: {current:?}");
    assert_eq!(history.len(), 3, "two stays of agent2 and one of agent1: {history:?}");
    assert_eq!(history.iter().filter(|p| p.left_at.is_some()).count(), 2);

    // One entry per change, each naming who made it.
    let e = participant_entries(&store, &w.org, 0).await;
    let kinds: Vec<_> = e.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "participant.joined",
            "participant.joined",
            "participant.left",
            "participant.joined",
            "conversation.transferred",
            "participant.removed",
        ]
    );
    assert!(e
        .iter()
        .all(|e| e.subject_id.as_deref() == Some(w.conversation.as_str())));
    let actor_id = |i: usize| e[i].payload["actor"]["id"].as_str().unwrap_or_default().to_owned();
    assert_eq!(actor_id(0), w.agent1, "agent1 joined by writing");
    assert_eq!(
        (e[1].payload["user_id"].as_str(), actor_id(1)),
        (Some(w.agent2.as_str()), w.agent1.clone())
    );
    assert_eq!(actor_id(2), w.agent2);
    assert_eq!(e[4].payload["from_user_id"], serde_json::Value::Null);
    assert_eq!(e[4].payload["to_user_id"].as_str(), Some(w.agent2.as_str()));
    assert_eq!(e[4].payload["actor"]["email"], "agent1@bank.test");
    assert_eq!(e[5].payload["user_id"].as_str(), Some(w.agent1.as_str()));
    assert_eq!(actor_id(5), w.supervisor);

    // An owner who leaves no longer owns the thread; the entry says they did.
    let (scope, conv, a2) = (w.scope.clone(), w.conversation.clone(), w.agent2.clone());
    let owner = store
        .write(move |c| {
            let left = participants::leave(c, &scope, &conv, &a2, &actor(&a2, "agent2@bank.test"), NOW + 7)?;
            Ok((left, participants::owner(c, &scope, &conv)?))
        })
        .await
        .unwrap();
    assert!(matches!(owner.0, Ok(Change::Done { .. })));
    assert_eq!(owner.1, None);
    let e = participant_entries(&store, &w.org, 0).await;
    assert_eq!(
        e.last().map(|e| e.payload["was_owner"].clone()),
        Some(serde_json::Value::Bool(true))
    );

    let org = w.org.clone();
    let report = store
        .read(move |c| journal::verify(c, Some(&org)))
        .await
        .unwrap()
        .remove(0);
    assert_eq!(report.problem, None);
}

async fn refusals_and_scope(store: Store) {
    let w = world(&store).await;
    let (scope, other, conv) = (w.scope.clone(), w.other_scope.clone(), w.conversation.clone());
    let (viewer, outsider, a1, sup) = (
        w.viewer.clone(),
        w.outsider.clone(),
        w.agent1.clone(),
        w.supervisor.clone(),
    );
    let by = actor(&sup, "sup@bank.test");
    let results = store
        .write(move |c| {
            Ok((
                participants::add(c, &scope, &conv, &viewer, &by, NOW + 1)?,
                participants::add(c, &scope, &conv, &outsider, &by, NOW + 1)?,
                participants::add(c, &scope, &conv, "usr_nobody", &by, NOW + 1)?,
                participants::transfer(c, &scope, &conv, &outsider, &by, NOW + 1)?,
                participants::transfer(c, &scope, &conv, &viewer, &by, NOW + 1)?,
                participants::remove(c, &scope, &conv, &a1, &by, NOW + 1)?,
                // Another organization's caller cannot reach the thread at all.
                participants::list(c, &other, &conv, true).err(),
                participants::add(c, &other, &conv, &a1, &by, NOW + 1).err(),
                participants::transfer(c, &other, &conv, &a1, &by, NOW + 1).err(),
                participants::leave(c, &other, &conv, &a1, &by, NOW + 1).err(),
            ))
        })
        .await
        .unwrap();
    assert_eq!(results.0, Err(Refusal::CannotSend), "viewers do not message clients");
    assert_eq!(results.1, Err(Refusal::NotAColleague));
    assert_eq!(results.2, Err(Refusal::NotAColleague));
    assert_eq!(results.3, Err(Refusal::NotAColleague));
    assert_eq!(results.4, Err(Refusal::CannotSend));
    assert_eq!(results.5, Err(Refusal::NotAParticipant));
    for e in [results.6, results.7, results.8, results.9] {
        assert!(matches!(e, Some(StoreError::NotFound)), "{e:?}");
    }
    assert!(
        participant_entries(&store, &w.org, 0).await.is_empty(),
        "refusals journal nothing"
    );
}

async fn webhook_delivery(store: Store) {
    use openline_store::webhooks_out;
    let w = world(&store).await;
    let (org, scope, conv) = (w.org.clone(), w.scope.clone(), w.conversation.clone());
    let (a1, a2, sup) = (w.agent1.clone(), w.agent2.clone(), w.supervisor.clone());
    let entries = store
        .write(move |c| {
            let sub = webhooks_out::create(
                c,
                &webhooks_out::NewSubscription {
                    org_id: &org,
                    url: "https://crm.example/hooks",
                    description: "CRM",
                    events: &["participant.changed".to_owned()],
                    include_sub_organizations: false,
                    secret: "s3cret-s3cret-s3cret",
                    key: &hook_key(),
                    from_beginning: false,
                    actor: &Actor::Cli,
                    now: NOW,
                },
            )?;
            let by_sup = actor(&sup, "sup@bank.test");
            let _ = participants::add(c, &scope, &conv, &a1, &by_sup, NOW + 1)?;
            let _ = participants::add(c, &scope, &conv, &a2, &by_sup, NOW + 2)?;
            let _ = participants::leave(c, &scope, &conv, &a2, &actor(&a2, "agent2@bank.test"), NOW + 3)?;
            let _ = participants::transfer(c, &scope, &conv, &a2, &by_sup, NOW + 4)?;
            let _ = participants::remove(c, &scope, &conv, &a1, &by_sup, NOW + 5)?;
            let t = webhooks_out::claim(c, &hook_key(), &sub.id, "node-a", NOW + 60_000, NOW + 6)?
                .ok_or(StoreError::NotFound)?;
            let next = webhooks_out::next_events(c, &t, 100)?;
            next.entries
                .iter()
                .map(|e| webhooks_out::build_event(c, e))
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .unwrap();
    let kinds: Vec<_> = entries.iter().map(|e| e.references.journal_kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "participant.joined",
            "participant.joined",
            "participant.left",
            "participant.joined",
            "conversation.transferred",
            "participant.removed",
        ]
    );
    assert!(entries.iter().all(|e| e.event_type == "participant.changed"));
    assert!(entries
        .iter()
        .all(|e| e.conversation.as_ref().map(|v| v.id.as_str()) == Some(w.conversation.as_str())));
    let transfer = &entries[4];
    assert_eq!(
        transfer.detail.as_ref().map(|d| d["to_user_id"].clone()),
        Some(serde_json::Value::from(w.agent2.as_str()))
    );
}

/// The key outbound webhook secrets are sealed under in these tests.
fn hook_key() -> openline_store::webhooks_out::SecretsKey {
    openline_store::webhooks_out::SecretsKey::from_hex(&"42".repeat(32)).unwrap()
}
