//! Who may do what: signatures on webhooks, sign-in, API tokens, organizations kept apart.

use crate::common::*;
use openline_domain::clock::ManualClock;
use openline_domain::Role;
use openline_store::Backend;
use serde_json::json;
use std::sync::Arc;

crate::both_backends! {
    a_forged_or_missing_signature_is_refused_and_nothing_is_stored => forged_signature;
    the_verification_handshake_answers_only_the_right_token => handshake;
    api_tokens_work_as_bearer_and_stop_working_when_revoked => tokens;
    another_organizations_user_sees_and_touches_nothing => cross_org;
    a_wrong_password_or_no_credentials_is_refused => sign_in_refused;
    repeated_failed_json_sign_ins_are_slowed_down_counted_with_the_web_forms => json_sign_in_throttle;
}

async fn forged_signature(backend: Backend) {
    let app = spawn_app(backend).await;
    let body = text_webhook("wamid.FORGED", "447700900077", "let me in");
    let forged = openline_channels::sign_meta(b"not-the-app-secret", &body);
    let res = app
        .http
        .post(app.at("/webhooks/whatsapp"))
        .header("x-hub-signature-256", forged)
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["error"],
        "signature_invalid"
    );
    let res = app
        .http
        .post(app.at("/webhooks/whatsapp"))
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // A correct signature over different bytes (the body re-serialised) does not verify either.
    let mut tampered = body.clone();
    tampered.extend_from_slice(b" ");
    let res = app
        .http
        .post(app.at("/webhooks/whatsapp"))
        .header(
            "x-hub-signature-256",
            openline_channels::sign_meta(APP_SECRET.as_bytes(), &body),
        )
        .body(tampered)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(app.count("select count(*) from messages").await, 0);
    assert_eq!(
        app.count("select count(*) from contacts where phone = '+447700900077'")
            .await,
        0
    );
    // Signed but not JSON: a clear 400, nothing stored.
    let res = app.post_signed_webhook(b"{not json").await;
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["error"],
        "invalid_webhook"
    );
    app.stop().await;
}

async fn handshake(backend: Backend) {
    let app = spawn_app(backend).await;
    let ok = app
        .http
        .get(app.at("/webhooks/whatsapp?hub.mode=subscribe&hub.verify_token=openline-demo-verify-token&hub.challenge=1158201444"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "1158201444");
    for q in [
        "hub.mode=subscribe&hub.verify_token=wrong&hub.challenge=1",
        "hub.mode=unsubscribe&hub.verify_token=openline-demo-verify-token&hub.challenge=1",
        "hub.challenge=1",
    ] {
        let res = app
            .http
            .get(app.at(&format!("/webhooks/whatsapp?{q}")))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 403, "{q}");
    }
    app.stop().await;
}

async fn tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in(AGENT).await;
    let (status, created) = app.post("/api/v1/tokens", json!({"name": "CRM sync"})).await;
    assert_eq!(status, 201);
    let token = created["token"].as_str().unwrap().to_owned();
    let bare = reqwest::Client::new();
    let me = bare.get(app.at("/api/v1/me")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(me.status(), 200);
    assert_eq!(me.json::<serde_json::Value>().await.unwrap()["user"]["email"], AGENT);
    let (_, list) = app.get("/api/v1/tokens").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert!(list[0].get("token").is_none(), "the secret is never listed");
    let id = created["id"].as_str().unwrap();
    let res = app
        .http
        .delete(app.at(&format!("/api/v1/tokens/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let me = bare.get(app.at("/api/v1/me")).bearer_auth(&token).send().await.unwrap();
    assert_eq!(me.status(), 401);
    let res = app
        .http
        .delete(app.at(&format!("/api/v1/tokens/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    // Signing out ends the cookie session.
    assert_eq!(
        app.http
            .post(app.at("/api/v1/auth/logout"))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    assert_eq!(app.get("/api/v1/me").await.0, 401);
    app.stop().await;
}

async fn cross_org(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in(AGENT).await;
    app.phone_writes(ADA, "confidential").await;
    let (_, inbox) = app.get("/api/v1/conversations").await;
    let conv_id = inbox["items"][0]["id"].as_str().unwrap().to_owned();
    let ada = app.contact_id(ADA).await;
    let (_, thread) = app.get(&format!("/api/v1/conversations/{conv_id}/messages")).await;
    let msg_id = thread["items"][0]["id"].as_str().unwrap().to_owned();

    // An agent of another organization, with its own password.
    let store = app.handle.as_ref().unwrap().state.store.clone();
    let hash = openline_server::auth::hash_password_blocking("another-org-password").unwrap();
    store
        .write(move |c| {
            let org = openline_store::orgs::create(c, "Other Bank", None, "on", 1)?;
            openline_store::users::create(
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
            )
        })
        .await
        .unwrap();
    let eve = reqwest::Client::builder().cookie_store(true).build().unwrap();
    let res = eve
        .post(app.at("/api/v1/auth/login"))
        .json(&json!({"email": "eve@other.example", "password": "another-org-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let get = |path: String| {
        let eve = eve.clone();
        async move { eve.get(path).send().await.unwrap().status().as_u16() }
    };
    assert_eq!(get(app.at(&format!("/api/v1/conversations/{conv_id}"))).await, 404);
    assert_eq!(
        get(app.at(&format!("/api/v1/conversations/{conv_id}/messages"))).await,
        404
    );
    assert_eq!(get(app.at(&format!("/api/v1/messages/{msg_id}"))).await, 404);
    assert_eq!(get(app.at(&format!("/api/v1/contacts/{ada}"))).await, 404);
    let inbox: serde_json::Value = eve
        .get(app.at("/api/v1/conversations"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(inbox["items"].as_array().unwrap().len(), 0);
    let contacts: serde_json::Value = eve
        .get(app.at("/api/v1/contacts"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(contacts["items"].as_array().unwrap().len(), 0);
    let res = eve
        .post(app.at("/api/v1/messages"))
        .json(&json!({"contact_id": ada, "text": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    // Eve's live stream does not carry the demo organization's messages.
    let mut stream = eve.get(app.at("/api/v1/events")).send().await.unwrap();
    app.phone_writes(ADA, "still confidential").await;
    let mut buf = String::new();
    let got = tokio::time::timeout(
        std::time::Duration::from_millis(800),
        next_event(&mut stream, "message.received", &mut buf),
    )
    .await;
    assert!(got.is_err(), "another organization's event leaked: {got:?}");
    app.stop().await;
}

async fn sign_in_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let (status, err) = app
        .post("/api/v1/auth/login", json!({"email": AGENT, "password": "wrong"}))
        .await;
    assert_eq!((status, err["error"].as_str()), (401, Some("invalid_credentials")));
    let (status, err) = app
        .post(
            "/api/v1/auth/login",
            json!({"email": "nobody@x.example", "password": "wrong"}),
        )
        .await;
    assert_eq!((status, err["error"].as_str()), (401, Some("invalid_credentials")));
    let (status, err) = app.get("/api/v1/conversations").await;
    assert_eq!((status, err["error"].as_str()), (401, Some("unauthorized")));
    let res = reqwest::Client::new()
        .get(app.at("/api/v1/me"))
        .bearer_auth("olt_forged")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    app.stop().await;
}

async fn json_sign_in_throttle(backend: Backend) {
    let clock = Arc::new(ManualClock::starting_now());
    let app = spawn_app_with_clock(backend, clock.clone()).await;
    let api = |email: &'static str, password: &'static str| {
        let http = app.http.clone();
        let url = app.at("/api/v1/auth/login");
        async move {
            http.post(url)
                .json(&json!({"email": email, "password": password}))
                .send()
                .await
                .unwrap()
        }
    };
    let web = |email: &'static str, password: &'static str| {
        let url = app.at("/login");
        let origin = app.url.clone();
        async move {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap()
                .post(url)
                .header("origin", origin)
                .form(&[("email", email), ("password", password), ("next", "/messages")])
                .send()
                .await
                .unwrap()
        }
    };
    let refused = |res: reqwest::Response| async move {
        assert_eq!(res.status(), 429);
        let wait = res.headers()["retry-after"].to_str().unwrap().to_owned();
        let body: serde_json::Value = res.json().await.unwrap();
        assert_eq!(body["error"], "too_many_sign_ins", "{body}");
        assert!(
            body["message"].as_str().unwrap().contains("Too many failed sign-ins"),
            "{body}"
        );
        wait
    };

    // Two wrong passwords through the API (the e-mail's case does not matter) and one through the
    // web form: one count, as the key is the same (e-mail address and client address).
    for email in [AGENT, "Agent1@Demo.Openline.dev"] {
        let res = api(email, "wrong-password").await;
        assert_eq!(res.status(), 401);
        assert_eq!(
            res.json::<serde_json::Value>().await.unwrap()["error"],
            "invalid_credentials"
        );
    }
    assert_eq!(web(AGENT, "wrong-password").await.status(), 401);
    // Even the right password waits now, on both paths.
    assert_eq!(refused(api(AGENT, PASSWORD).await).await, "5");
    let res = web(AGENT, PASSWORD).await;
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["retry-after"], "5");
    // Another e-mail address is not held up by it.
    assert_eq!(api("agent2@demo.openline.dev", PASSWORD).await.status(), 200);

    clock.advance_ms(2_000);
    assert_eq!(refused(api(AGENT, PASSWORD).await).await, "3", "the wait counts down");
    clock.advance_ms(3_000);
    assert_eq!(api(AGENT, "wrong-again").await.status(), 401);
    // The wait doubles.
    clock.advance_ms(5_000);
    assert_eq!(refused(api(AGENT, PASSWORD).await).await, "5");
    clock.advance_ms(5_000);
    let res = api(AGENT, PASSWORD).await;
    assert_eq!(res.status(), 200, "after the wait the right password works");
    // A success starts the count again, for the web form too.
    assert_eq!(api(AGENT, "wrong-password").await.status(), 401);
    assert_eq!(web(AGENT, PASSWORD).await.status(), 303);
    app.stop().await;
}
