//! The media table's contract, on a fresh SQLite file and a fresh PostgreSQL database: a pending row
//! written with its message, claimed once under a lease, retried, stored (and archived), failed
//! without losing the message, and never visible to another organization.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use openline_domain::{Channel, MessageKind, ProviderKind};
use openline_store::media::{self, MediaState, NewPending, NewUpload, Stored};
use openline_store::messages::{self, InboundOutcome, NewInbound};
use openline_store::orgs::Scope;
use openline_store::testing::TestDb;
use openline_store::{journal, Backend, Store, StoreError};

openline_store::both_backends! {
    run = run;
    a_media_message_gets_a_pending_row_claimed_once_retried_and_stored => pending_lifecycle;
    a_failed_download_keeps_the_message_and_another_organization_sees_nothing => failure_and_scope;
    an_uploaded_file_is_stored_at_once_and_linked_to_the_message_that_sends_it => uploads;
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
    sender: String,
    scope: Scope,
}

async fn world(store: &Store, name: &'static str, pnid: &'static str) -> World {
    store
        .write(move |c| {
            let (org, sender) = openline_store::testing::org_with_number(c, name, pnid, NOW)?;
            Ok(World {
                scope: Scope {
                    org_ids: vec![org.id.clone()],
                },
                org: org.id,
                sender: sender.id,
            })
        })
        .await
        .unwrap()
}

/// Stores an inbound image and its pending media row in one transaction, as the webhook does.
async fn image_with_pending(store: &Store, w: &World, wamid: &'static str) -> (String, String) {
    let (org, sender) = (w.org.clone(), w.sender.clone());
    store
        .write(move |c| {
            let media_ref = serde_json::json!({"id": "m-1", "mime_type": "image/png"});
            let outcome = messages::insert_inbound(
                c,
                &NewInbound {
                    org_id: &org,
                    sender_id: &sender,
                    channel: Channel::Whatsapp,
                    provider: ProviderKind::CloudApi,
                    from_phone: Some("+447700900001"),
                    wa_user_id: None,
                    profile_name: Some("Ada"),
                    provider_message_id: wamid,
                    kind: MessageKind::Image,
                    body: Some("a caption"),
                    media: Some(&media_ref),
                    reply_to: None,
                    raw: None,
                    sent_at: NOW,
                    now: NOW,
                },
            )?;
            let InboundOutcome::Stored(m) = outcome else {
                return Err(StoreError::Db("expected a new message".into()));
            };
            let media_id = media::insert_pending(
                c,
                &NewPending {
                    org_id: &org,
                    message_id: &m.id,
                    provider: "cloud_api",
                    provider_media_id: "m-1",
                    content_type: Some("image/png"),
                    filename: None,
                    expected_sha256: Some(&"ab".repeat(32)),
                    now: NOW,
                },
            )?;
            Ok((m.id, media_id))
        })
        .await
        .unwrap()
}

async fn pending_lifecycle(store: Store) {
    let w = world(&store, "Acme", "pn-1").await;
    let (message_id, media_id) = image_with_pending(&store, &w, "wamid.IMG1").await;

    let claimed = store.write(|c| media::claim_due(c, NOW, 60_000, 10)).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].id, media_id);
    assert_eq!(claimed[0].attempts, 1);
    assert_eq!(claimed[0].expected_sha256.as_deref(), Some("ab".repeat(32).as_str()));
    assert!(
        store
            .write(|c| media::claim_due(c, NOW + 1, 60_000, 10))
            .await
            .unwrap()
            .is_empty(),
        "a leased row is not claimed twice"
    );
    assert!(
        !store
            .write(|c| media::claim_due(c, NOW + 60_001, 60_000, 10))
            .await
            .unwrap()
            .is_empty(),
        "a lapsed lease is claimed again"
    );

    let id = media_id.clone();
    store
        .write(move |c| media::retry_at(c, &id, NOW + 120_000, "The provider answered 500.", NOW + 60_001))
        .await
        .unwrap();
    assert!(store
        .write(|c| media::claim_due(c, NOW + 100_000, 60_000, 10))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.read(media::next_due_at).await.unwrap(), Some(NOW + 120_000));
    let again = store
        .write(|c| media::claim_due(c, NOW + 120_000, 60_000, 10))
        .await
        .unwrap();
    assert_eq!(again[0].attempts, 3);

    let id = media_id.clone();
    let sha = "cd".repeat(32);
    let stored = store
        .write(move |c| {
            media::mark_stored(
                c,
                &id,
                &Stored {
                    content_type: "image/png",
                    size_bytes: 42,
                    sha256: &sha,
                    stored_path: "cd/cd/cdcd",
                },
                NOW + 120_001,
            )
        })
        .await
        .unwrap();
    assert_eq!(stored.state, MediaState::Stored);
    assert_eq!(stored.size_bytes, Some(42));
    assert!(store.read(media::next_due_at).await.unwrap().is_none());

    let scope = w.scope.clone();
    let found = store
        .read(move |c| media::for_message(c, &scope, &message_id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, media_id);
    assert_eq!(found.stored_path.as_deref(), Some("cd/cd/cdcd"));

    let org = w.org.clone();
    let entries = store.read(move |c| journal::page(c, &org, 0, 100)).await.unwrap();
    let archived: Vec<_> = entries.iter().filter(|e| e.kind == "media.stored").collect();
    assert_eq!(archived.len(), 1, "one archive entry for the stored file");
    assert_eq!(archived[0].payload["sha256"], "cd".repeat(32));
    assert_eq!(archived[0].payload["size_bytes"], 42);
    assert_eq!(archived[0].payload["content_type"], "image/png");
    let org = w.org.clone();
    let report = store.read(move |c| journal::verify(c, Some(&org))).await.unwrap();
    assert!(report.iter().all(|r| r.problem.is_none()), "the chain still verifies");
}

async fn failure_and_scope(store: Store) {
    let w = world(&store, "Acme", "pn-1").await;
    let other = world(&store, "Globex", "pn-2").await;
    let (message_id, media_id) = image_with_pending(&store, &w, "wamid.IMG2").await;

    let id = media_id.clone();
    let failed = store
        .write(move |c| media::mark_failed(c, &id, "The file's SHA-256 does not match.", NOW))
        .await
        .unwrap();
    assert_eq!(failed.state, MediaState::Failed);
    assert!(store
        .write(|c| media::claim_due(c, NOW, 60_000, 10))
        .await
        .unwrap()
        .is_empty());
    let (scope, mid) = (w.scope.clone(), message_id.clone());
    let m = store.read(move |c| messages::get(c, &scope, &mid)).await.unwrap();
    assert_eq!(m.kind, MessageKind::Image, "the message is kept");

    let (scope, mid) = (other.scope.clone(), message_id.clone());
    assert!(store
        .read(move |c| media::for_message(c, &scope, &mid))
        .await
        .unwrap()
        .is_none());
    let (scope, id) = (other.scope.clone(), media_id.clone());
    assert!(matches!(
        store.read(move |c| media::get(c, &scope, &id)).await,
        Err(StoreError::NotFound)
    ));
}

async fn uploads(store: Store) {
    let w = world(&store, "Acme", "pn-1").await;
    let org = w.org.clone();
    let user = store
        .write(move |c| {
            openline_store::users::create(
                c,
                &openline_store::users::NewUser {
                    org_id: &org,
                    team_id: None,
                    email: "agent@acme.example",
                    name: "Agent",
                    role: openline_domain::Role::Agent,
                    password_hash: "x",
                },
                NOW,
            )
        })
        .await
        .unwrap();
    let (org, uid) = (w.org.clone(), user.id.clone());
    let sha = "ef".repeat(32);
    let up = store
        .write(move |c| {
            media::insert_uploaded(
                c,
                &NewUpload {
                    org_id: &org,
                    user_id: &uid,
                    content_type: "image/jpeg",
                    filename: Some("photo.jpg"),
                    size_bytes: 1234,
                    sha256: &sha,
                    stored_path: "ef/ef/efef",
                    now: NOW,
                },
            )
        })
        .await
        .unwrap();
    assert_eq!(up.state, MediaState::Stored);
    assert_eq!(up.direction, "out");
    assert!(
        store
            .write(|c| media::claim_due(c, NOW, 60_000, 10))
            .await
            .unwrap()
            .is_empty(),
        "an upload is never downloaded"
    );
    let (scope, id) = (w.scope.clone(), up.id.clone());
    let got = store.read(move |c| media::get(c, &scope, &id)).await.unwrap();
    assert_eq!(got.filename.as_deref(), Some("photo.jpg"));

    let (message_id, _) = image_with_pending(&store, &w, "wamid.IMG3").await;
    // An inbound message already has its own file; linking an upload to it changes nothing there.
    let (id, mid) = (up.id.clone(), message_id.clone());
    store
        .write(move |c| media::link_to_message(c, &id, &mid, NOW))
        .await
        .expect_err("a message has at most one file");
}
