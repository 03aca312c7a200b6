//! Colleagues sharing one client conversation through the API: an agent adds a colleague, the inbox
//! hears of it live, a colleague leaves, an agent may not remove someone but a supervisor may, the
//! thread is handed to a new owner, another organization reaches nothing; the archive has one entry
//! per change naming who made it, and its chain still verifies.

use crate::common::*;
use openline_domain::Role;
use openline_store::Backend;
use serde_json::{json, Value};

const AGENT2: &str = "agent2@demo.openline.dev";
const SUPERVISOR: &str = "supervisor@demo.openline.dev";

crate::both_backends! {
    colleagues_join_leave_are_removed_and_take_over_and_each_change_is_archived_with_its_actor => lifecycle;
    refusals_have_stable_codes_and_another_organization_reaches_nothing => refusals;
}

/// A signed-in client of its own (its own cookie jar) and the user's id.
struct As {
    http: reqwest::Client,
    base: String,
    id: String,
}

impl As {
    async fn sign_in(app: &TestApp, email: &str, password: &str) -> Self {
        let http = reqwest::Client::builder().cookie_store(true).build().unwrap();
        let res = http
            .post(app.at("/api/v1/auth/login"))
            .json(&json!({"email": email, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "sign-in of {email}");
        let me: Value = http
            .get(app.at("/api/v1/me"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        Self {
            http,
            base: app.url.clone(),
            id: me["user"]["id"].as_str().unwrap().to_owned(),
        }
    }

    async fn demo(app: &TestApp, email: &str) -> Self {
        Self::sign_in(app, email, PASSWORD).await
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.base));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        self.send(reqwest::Method::GET, path, None).await
    }

    async fn add(&self, conv: &str, user_id: &str) -> (u16, Value) {
        let path = format!("/api/v1/conversations/{conv}/participants");
        self.send(reqwest::Method::POST, &path, Some(json!({"user_id": user_id})))
            .await
    }

    async fn delete(&self, conv: &str, user_id: &str) -> (u16, Value) {
        let path = format!("/api/v1/conversations/{conv}/participants/{user_id}");
        self.send(reqwest::Method::DELETE, &path, None).await
    }

    async fn transfer(&self, conv: &str, user_id: &str) -> (u16, Value) {
        let path = format!("/api/v1/conversations/{conv}/transfer");
        self.send(reqwest::Method::POST, &path, Some(json!({"user_id": user_id})))
            .await
    }
}

/// Ada writes in; her conversation's id and organization.
async fn ada_conversation(app: &TestApp) -> (String, String) {
    app.sign_in(AGENT).await;
    app.phone_writes(ADA, "Could two of you look at my account?").await;
    let (_, inbox) = app.get("/api/v1/conversations").await;
    let conv = &inbox["items"][0];
    (
        conv["id"].as_str().unwrap().to_owned(),
        conv["org_id"].as_str().unwrap().to_owned(),
    )
}

fn user_ids(v: &Value) -> Vec<String> {
    v["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["user_id"].as_str().unwrap().to_owned())
        .collect()
}

async fn lifecycle(backend: Backend) {
    let app = spawn_app(backend).await;
    let (conv, org) = ada_conversation(&app).await;
    let amir = As::demo(&app, AGENT).await;
    let bea = As::demo(&app, AGENT2).await;
    let sue = As::demo(&app, SUPERVISOR).await;

    // Nobody has written back yet: nobody takes part.
    let (status, list) = amir.get(&format!("/api/v1/conversations/{conv}/participants")).await;
    assert_eq!((status, user_ids(&list).len()), (200, 0), "{list}");

    // Amir takes the thread up and adds Bea; Bea's inbox hears of it.
    let mut stream = bea.http.get(app.at("/api/v1/events")).send().await.unwrap();
    assert_eq!(amir.add(&conv, &amir.id).await.0, 201);
    let (status, added) = amir.add(&conv, &bea.id).await;
    assert_eq!(status, 201, "{added}");
    assert_eq!(user_ids(&added), [amir.id.clone(), bea.id.clone()]);
    let mut buf = String::new();
    let mut ev = next_event(&mut stream, "participant.joined", &mut buf).await;
    if ev["data"]["user_id"] != bea.id.as_str() {
        ev = next_event(&mut stream, "participant.joined", &mut buf).await;
    }
    assert_eq!(ev["conversation_id"], conv.as_str());
    assert_eq!(ev["data"]["actor_user_id"], amir.id.as_str());
    let (status, again) = amir.add(&conv, &bea.id).await;
    assert_eq!(
        (status, user_ids(&again).len()),
        (200, 2),
        "adding twice changes nothing"
    );

    // An agent may not remove a colleague; anyone may leave; a supervisor may remove.
    let (status, err) = bea.delete(&conv, &amir.id).await;
    assert_eq!((status, err["error"].as_str()), (403, Some("forbidden")), "{err}");
    let (status, after) = bea.delete(&conv, &bea.id).await;
    assert_eq!((status, user_ids(&after)), (200, vec![amir.id.clone()]), "{after}");
    let (status, after) = sue.delete(&conv, &amir.id).await;
    assert_eq!((status, user_ids(&after).len()), (200, 0), "{after}");

    // While nobody owns the thread an agent may hand it over; then only its owner (or a supervisor).
    let (status, moved) = amir.transfer(&conv, &bea.id).await;
    assert_eq!(status, 200, "{moved}");
    assert_eq!(moved["owner_user_id"], bea.id.as_str());
    assert_eq!(user_ids(&moved), vec![bea.id.clone()], "the new owner takes part");
    let (status, err) = amir.transfer(&conv, &amir.id).await;
    assert_eq!((status, err["error"].as_str()), (403, Some("forbidden")), "{err}");
    let (_, conversation) = amir.get(&format!("/api/v1/conversations/{conv}")).await;
    assert_eq!(conversation["owner_user_id"], bea.id.as_str());
    let (status, moved) = sue.transfer(&conv, &amir.id).await;
    assert_eq!(
        (status, moved["owner_user_id"].as_str()),
        (200, Some(amir.id.as_str())),
        "{moved}"
    );

    let (_, history) = amir
        .get(&format!("/api/v1/conversations/{conv}/participants?include_past=true"))
        .await;
    // Amir's two stays and Bea's two.
    assert_eq!(history["items"].as_array().unwrap().len(), 4, "{history}");

    // The archive: one entry per change, each naming who made it, and the chain verifies.
    let store = app.handle.as_ref().unwrap().state.store.clone();
    let o = org.clone();
    let (entries, report) = store
        .read(move |c| {
            Ok((
                openline_store::journal::page(c, &o, 0, 10_000)?,
                openline_store::journal::verify(c, Some(&o))?,
            ))
        })
        .await
        .unwrap();
    let changes: Vec<(String, String, String)> = entries
        .iter()
        .filter(|e| e.kind.starts_with("participant.") || e.kind == "conversation.transferred")
        .map(|e| {
            assert_eq!(e.subject_id.as_deref(), Some(conv.as_str()));
            let who = e.payload["user_id"]
                .as_str()
                .or(e.payload["to_user_id"].as_str())
                .unwrap()
                .to_owned();
            (
                e.kind.clone(),
                who,
                e.payload["actor"]["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let k = |kind: &str, who: &As, by: &As| (kind.to_owned(), who.id.clone(), by.id.clone());
    assert_eq!(
        changes,
        [
            k("participant.joined", &amir, &amir),
            k("participant.joined", &bea, &amir),
            k("participant.left", &bea, &bea),
            k("participant.removed", &amir, &sue),
            k("participant.joined", &bea, &amir),
            k("conversation.transferred", &bea, &amir),
            k("participant.joined", &amir, &sue),
            k("conversation.transferred", &amir, &sue),
        ]
    );
    let transferred = entries
        .iter()
        .rev()
        .find(|e| e.kind == "conversation.transferred")
        .unwrap();
    assert_eq!(transferred.payload["from_user_id"], bea.id.as_str());
    assert!(report.iter().all(|r| r.problem.is_none()), "{report:?}");

    // The routes are documented.
    let (_, doc) = app.get("/api/openapi.json").await;
    for path in [
        "/api/v1/conversations/{id}/participants",
        "/api/v1/conversations/{id}/participants/{user_id}",
        "/api/v1/conversations/{id}/transfer",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} is documented");
    }
    app.stop().await;
}

async fn refusals(backend: Backend) {
    let app = spawn_app(backend).await;
    let (conv, _) = ada_conversation(&app).await;
    let amir = As::demo(&app, AGENT).await;
    let bea = As::demo(&app, AGENT2).await;

    // An admin of another organization, and a viewer of the demo one.
    let store = app.handle.as_ref().unwrap().state.store.clone();
    let hash = openline_server::auth::hash_password_blocking("another-org-password").unwrap();
    let (eve_id, viewer_id) = store
        .write(move |c| {
            let org = openline_store::orgs::create(c, "Other Bank", None, "on", 1)?;
            let eve = openline_store::users::create(
                c,
                &openline_store::users::NewUser {
                    org_id: &org.id,
                    team_id: None,
                    email: "eve@other.example",
                    name: "Eve",
                    role: Role::Admin,
                    password_hash: &hash,
                },
                1,
            )?;
            let demo = openline_store::orgs::find_by_name(c, openline_server::demo::DEMO_SUB_ORG)?
                .ok_or(openline_store::StoreError::NotFound)?;
            let viewer = openline_store::users::create(
                c,
                &openline_store::users::NewUser {
                    org_id: &demo.id,
                    team_id: None,
                    email: "viewer@demo.openline.dev",
                    name: "Vic Viewer",
                    role: Role::Viewer,
                    password_hash: &hash,
                },
                1,
            )?;
            Ok((eve.id, viewer.id))
        })
        .await
        .unwrap();
    let eve = As::sign_in(&app, "eve@other.example", "another-org-password").await;
    let vic = As::sign_in(&app, "viewer@demo.openline.dev", "another-org-password").await;

    // Someone of another organization cannot be added or take the thread over.
    let (status, err) = amir.add(&conv, &eve_id).await;
    assert_eq!((status, err["error"].as_str()), (422, Some("not_a_colleague")), "{err}");
    let (status, err) = amir.add(&conv, "usr_nobody").await;
    assert_eq!((status, err["error"].as_str()), (422, Some("not_a_colleague")), "{err}");
    let (status, err) = amir.transfer(&conv, &eve_id).await;
    assert_eq!((status, err["error"].as_str()), (422, Some("not_a_colleague")), "{err}");
    // A viewer cannot take part, nor add anyone.
    let (status, err) = amir.add(&conv, &viewer_id).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (422, Some("participant_cannot_send")),
        "{err}"
    );
    let (status, err) = vic.add(&conv, &amir.id).await;
    assert_eq!((status, err["error"].as_str()), (403, Some("forbidden")), "{err}");
    // Leaving a thread you are not in.
    let (status, err) = bea.delete(&conv, &bea.id).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (404, Some("not_a_participant")),
        "{err}"
    );
    // Another organization's admin reaches nothing: every route answers as if it did not exist.
    assert_eq!(amir.add(&conv, &bea.id).await.0, 201);
    let (status, err) = eve.get(&format!("/api/v1/conversations/{conv}/participants")).await;
    assert_eq!((status, err["error"].as_str()), (404, Some("not_found")), "{err}");
    assert_eq!(eve.add(&conv, &eve.id).await.0, 404);
    assert_eq!(eve.delete(&conv, &bea.id).await.0, 404);
    assert_eq!(eve.transfer(&conv, &eve.id).await.0, 404);
    // A malformed body gets the usual error shape.
    let path = format!("/api/v1/conversations/{conv}/participants");
    let (status, err) = amir
        .send(reqwest::Method::POST, &path, Some(json!({"user": "x"})))
        .await;
    assert_eq!((status, err["error"].as_str()), (422, Some("invalid_body")), "{err}");
    let (_, list) = bea.get(&path).await;
    assert_eq!(user_ids(&list), vec![bea.id.clone()], "nothing else changed: {list}");
    app.stop().await;
}
