//! The web app through HTTP, as a browser uses it: form sign-in, pages, CSRF, roles, organizations
//! kept apart, message text escaped. (The browser tests in `e2e/` drive the same pages in Chromium.)

use crate::common::*;
use openline_domain::clock::ManualClock;
use openline_domain::Role;
use openline_store::Backend;
use std::sync::Arc;

crate::both_backends! {
    a_page_without_a_session_redirects_to_sign_in_and_back => sign_in_and_out;
    a_script_in_a_message_is_shown_as_text => escaping;
    a_form_without_the_token_or_from_another_site_changes_nothing => csrf;
    repeated_failed_sign_ins_are_slowed_down => throttle;
    another_organizations_thread_is_not_found_and_admin_pages_need_an_admin => cross_org_and_roles;
    the_composer_says_what_policy_allows => composer_states;
    a_contact_is_created_edited_and_asked_for_consent_from_the_browser => contacts_flow;
    a_held_message_says_why_and_can_be_withdrawn_and_opening_a_thread_reads_it => held_and_unread;
    an_admin_switches_whatsapp_off_for_an_organization_or_a_user_and_the_pages_follow => admin_switches;
    a_viewer_reads_threads_but_cannot_write_or_change_contacts => viewer;
}

/// A browser: keeps cookies, does not follow redirects (so tests see them).
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn web_sign_in(app: &TestApp, b: &reqwest::Client, email: &str, password: &str) -> reqwest::Response {
    b.post(app.at("/login"))
        .header("origin", &app.url)
        .form(&[("email", email), ("password", password), ("next", "/messages")])
        .send()
        .await
        .unwrap()
}

async fn page(app: &TestApp, b: &reqwest::Client, path: &str) -> (u16, String) {
    let res = b.get(app.at(path)).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.text().await.unwrap())
}

/// The CSRF token a page carries (`<meta name="csrf-token" content="…">`).
fn csrf_of(html: &str) -> String {
    let start = html.find("name=\"csrf-token\" content=\"").unwrap() + "name=\"csrf-token\" content=\"".len();
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

async fn signed_in_agent(app: &TestApp) -> (reqwest::Client, String) {
    let b = browser();
    let res = web_sign_in(app, &b, AGENT, PASSWORD).await;
    assert_eq!(res.status(), 303);
    let (_, html) = page(app, &b, "/messages").await;
    let token = csrf_of(&html);
    (b, token)
}

async fn sign_in_and_out(backend: Backend) {
    let app = spawn_app(backend).await;
    let b = browser();
    let res = b.get(app.at("/messages/some-thread")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/login?next=%2Fmessages%2Fsome-thread");

    let res = web_sign_in(&app, &b, AGENT, PASSWORD).await;
    assert_eq!(res.status(), 303);
    assert_eq!(res.headers()["location"], "/messages");
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_owned();
    let csp = res.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax"),
        "{cookie}"
    );

    let (status, html) = page(&app, &b, "/messages").await;
    assert_eq!(status, 200);
    assert!(html.contains("Amir Agent"), "the user's name");
    assert!(html.contains("Demo Bank Private Clients"), "the organization");
    assert!(html.contains("agent"), "the role");

    // A sign-in page never sends the user to another site afterwards.
    let res = b
        .post(app.at("/login"))
        .header("origin", &app.url)
        .form(&[("email", AGENT), ("password", PASSWORD), ("next", "//evil.example/")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["location"], "/messages");

    let (_, html) = page(&app, &b, "/messages").await;
    let token = csrf_of(&html);
    let res = b
        .post(app.at("/logout"))
        .header("origin", &app.url)
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let res = b.get(app.at("/messages")).send().await.unwrap();
    assert_eq!(res.status(), 303, "signed out: back to the sign-in page");
    app.stop().await;
}

async fn escaping(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in(AGENT).await;
    app.phone_writes(ADA, "<script>alert('pwned')</script> & <b>bold</b>")
        .await;
    let (b, _) = signed_in_agent(&app).await;
    let (_, list) = page(&app, &b, "/messages").await;
    assert!(!list.contains("<script>alert"), "the preview is escaped");
    assert!(list.contains("&lt;script&gt;alert"), "the preview shows the text");
    let (_, inbox) = app.get("/api/v1/conversations").await;
    let conv = inbox["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, thread) = page(&app, &b, &format!("/messages/{conv}")).await;
    assert_eq!(status, 200);
    assert!(!thread.contains("<script>alert"), "the message is escaped");
    assert!(!thread.contains("<b>bold</b>"));
    assert!(thread.contains("&lt;script&gt;alert('pwned')&lt;/script&gt; &amp; &lt;b&gt;bold&lt;/b&gt;"));
    app.stop().await;
}

async fn csrf(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in(AGENT).await;
    app.ada_opts_in().await;
    let ada = app.contact_id(ADA).await;
    let (b, token) = signed_in_agent(&app).await;
    let before = app.count("select count(*) from messages where direction = 'out'").await;
    let form = |csrf: &str, key: &str| {
        vec![
            ("csrf".to_owned(), csrf.to_owned()),
            ("idempotency_key".to_owned(), key.to_owned()),
            ("contact_id".to_owned(), ada.clone()),
            ("channel".to_owned(), "whatsapp".to_owned()),
            ("text".to_owned(), "Your card is on its way".to_owned()),
        ]
    };
    // No token.
    let res = b
        .post(app.at("/compose"))
        .header("origin", &app.url)
        .form(&form("", "k1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert!(res.text().await.unwrap().contains("security token"));
    // A wrong token.
    let res = b
        .post(app.at("/compose"))
        .header("origin", &app.url)
        .form(&form("0123456789abcdef", "k1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // The right token, but sent from another site.
    let res = b
        .post(app.at("/compose"))
        .header("origin", "https://evil.example")
        .form(&form(&token, "k1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(
        app.count("select count(*) from messages where direction = 'out'").await,
        before,
        "nothing was sent"
    );
    // The real form: sent once, even when submitted twice (the form's idempotency key).
    for _ in 0..2 {
        let res = b
            .post(app.at("/compose"))
            .header("origin", &app.url)
            .form(&form(&token, "k1"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        assert!(res.headers()["location"].to_str().unwrap().starts_with("/messages/"));
    }
    assert_eq!(
        app.count("select count(*) from messages where direction = 'out'").await,
        before + 1
    );
    app.stop().await;
}

async fn throttle(backend: Backend) {
    let clock = Arc::new(ManualClock::starting_now());
    let app = spawn_app_with_clock(backend, clock.clone()).await;
    let b = browser();
    for _ in 0..3 {
        let res = web_sign_in(&app, &b, AGENT, "wrong-password").await;
        assert_eq!(res.status(), 401);
        assert!(res.text().await.unwrap().contains("not right"));
    }
    // Even the right password waits now.
    let res = web_sign_in(&app, &b, AGENT, PASSWORD).await;
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["retry-after"], "5");
    assert!(res.text().await.unwrap().contains("Too many failed sign-ins"));
    // Another e-mail address is not held up by it.
    let res = web_sign_in(&app, &b, "agent2@demo.openline.dev", PASSWORD).await;
    assert_eq!(res.status(), 303);
    clock.advance_ms(5_000);
    let res = web_sign_in(&app, &b, AGENT, "wrong-again").await;
    assert_eq!(res.status(), 401);
    // The wait doubles.
    clock.advance_ms(5_000);
    let res = web_sign_in(&app, &b, AGENT, PASSWORD).await;
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["retry-after"], "5");
    clock.advance_ms(5_000);
    let res = web_sign_in(&app, &b, AGENT, PASSWORD).await;
    assert_eq!(res.status(), 303, "after the wait the right password works");
    // And a success starts the count again.
    let res = web_sign_in(&app, &b, AGENT, "wrong-password").await;
    assert_eq!(res.status(), 401);
    let res = web_sign_in(&app, &b, AGENT, PASSWORD).await;
    assert_eq!(res.status(), 303);
    app.stop().await;
}

async fn cross_org_and_roles(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in(AGENT).await;
    app.phone_writes(ADA, "confidential").await;
    let (_, inbox) = app.get("/api/v1/conversations").await;
    let conv = inbox["items"][0]["id"].as_str().unwrap().to_owned();
    let ada = app.contact_id(ADA).await;

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
    let eve = browser();
    assert_eq!(
        web_sign_in(&app, &eve, "eve@other.example", "another-org-password")
            .await
            .status(),
        303
    );
    let (status, html) = page(&app, &eve, &format!("/messages/{conv}")).await;
    assert_eq!(status, 404);
    assert!(!html.contains("confidential"));
    assert_eq!(page(&app, &eve, &format!("/contacts/{ada}")).await.0, 404);
    assert_eq!(
        page(&app, &eve, &format!("/contacts/{ada}/write?channel=sms")).await.0,
        404
    );
    let (_, list) = page(&app, &eve, "/messages").await;
    assert!(
        !list.contains("confidential"),
        "another organization's threads are not listed"
    );
    // Nor can Eve write to (or ask consent of) another organization's contact.
    let token = csrf_of(&list);
    let res = eve
        .post(app.at("/compose"))
        .header("origin", &app.url)
        .form(&[
            ("csrf", token.as_str()),
            ("contact_id", ada.as_str()),
            ("channel", "whatsapp"),
            ("text", "hello from elsewhere"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = eve
        .post(app.at(&format!("/contacts/{ada}/opt-in")))
        .header("origin", &app.url)
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(
        app.count("select count(*) from messages where direction = 'out'").await,
        0
    );
    let (_, contacts) = page(&app, &eve, "/contacts").await;
    assert!(!contacts.contains("+447700900001"));
    // Eve's own organization's admin page works; an agent's does not.
    assert_eq!(page(&app, &eve, "/admin").await.0, 200);
    let (agent, _) = signed_in_agent(&app).await;
    assert_eq!(page(&app, &agent, "/admin").await.0, 403);
    let admin = browser();
    web_sign_in(&app, &admin, "admin@demo.openline.dev", PASSWORD).await;
    let (status, html) = page(&app, &admin, "/admin").await;
    assert_eq!(status, 200);
    assert!(html.contains("Demo Bank Private Clients") && html.contains("inherited"));
    app.stop().await;
}

async fn composer_states(backend: Backend) {
    let clock = Arc::new(ManualClock::starting_now());
    let app = spawn_app_with_clock(backend, clock.clone()).await;
    app.sign_in(AGENT).await;
    let (b, _) = signed_in_agent(&app).await;
    let ada = app.contact_id(ADA).await;
    let nora = app.contact_id(NORA).await;

    // Never asked: the banner offers the opt-in request.
    let (_, html) = page(&app, &b, &format!("/contacts/{ada}/write?channel=whatsapp")).await;
    assert!(html.contains("has not agreed to WhatsApp messages yet"), "{html}");
    assert!(html.contains("Send opt-in request"));

    // Agreed and wrote: the window is open, with the time left.
    app.ada_opts_in().await;
    let res = b
        .get(app.at(&format!("/contacts/{ada}/write?channel=whatsapp")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "the thread exists now: WhatsApp opens it");
    let thread_url = res.headers()["location"].to_str().unwrap().to_owned();
    let (_, html) = page(&app, &b, &thread_url).await;
    assert!(html.contains("Conversation window open"), "{html}");
    assert!(html.contains("23 h 5") || html.contains("24 h 00"), "a countdown");
    assert!(!html.contains("disabled"), "the composer is enabled");

    // 25 hours later: templates restart the conversation.
    clock.advance_ms(25 * 3600 * 1000);
    // (Sessions last 12 hours: sign in again.)
    app.sign_in(AGENT).await;
    let (b, _) = signed_in_agent(&app).await;
    let (_, html) = page(&app, &b, &thread_url).await;
    assert!(html.contains("24 hours have passed"), "{html}");
    assert!(html.contains("Send a template to restart"), "{html}");

    // Not on WhatsApp: the composer is off and SMS is offered.
    let (status, body) = app.request_opt_in(NORA).await;
    assert_eq!(status, 202, "{body}");
    app.wait_for_consent(NORA, "not_on_whatsapp").await;
    let (_, html) = page(&app, &b, &format!("/contacts/{nora}")).await;
    assert!(html.contains("is not a WhatsApp user. Send an SMS instead?"), "{html}");
    let res = b
        .get(app.at(&format!("/contacts/{nora}/write?channel=whatsapp")))
        .send()
        .await
        .unwrap();
    let url = res.headers()["location"].to_str().unwrap().to_owned();
    let (_, html) = page(&app, &b, &url).await;
    assert!(html.contains("is not on WhatsApp. Send an SMS instead?"));
    assert!(html.contains("disabled"), "the composer is disabled");
    assert!(html.contains(&format!("/contacts/{nora}/write?channel=sms")));
    app.stop().await;
}

async fn contacts_flow(backend: Backend) {
    let app = spawn_app(backend).await;
    let (b, token) = signed_in_agent(&app).await;
    // A bad number is explained and nothing is stored.
    let res = b
        .post(app.at("/contacts"))
        .header("origin", &app.url)
        .form(&[("csrf", token.as_str()), ("name", "Zoe"), ("phone", "12")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    assert_eq!(app.count("select count(*) from contacts where name = 'Zoe'").await, 0);
    let res = b
        .post(app.at("/contacts"))
        .header("origin", &app.url)
        .form(&[("csrf", token.as_str()), ("name", "Zoe"), ("phone", "+447700900555")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let url = res.headers()["location"].to_str().unwrap().to_owned();
    let (_, html) = page(&app, &b, "/contacts?q=zoe").await;
    assert!(html.contains("Zoe") && html.contains("+447700900555"));
    assert!(!html.contains("Ada"), "search narrows the list");
    let res = b
        .post(app.at(&url))
        .header("origin", &app.url)
        .form(&[
            ("csrf", token.as_str()),
            ("name", "Zoe Smith"),
            ("phone", "+447700900556"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    let (_, html) = page(&app, &b, &url).await;
    assert!(html.contains("Zoe Smith") && html.contains("+447700900556"));
    assert!(html.contains("whatsapp-button"), "the WhatsApp icon is shown");
    // Tapping WhatsApp asks first; confirming sends the request (through the API's path).
    let (_, html) = page(&app, &b, &format!("{url}?confirm=opt-in")).await;
    assert!(html.contains("Send them an opt-in request?"));
    let res = b
        .post(app.at(&format!("{url}/opt-in")))
        .header("origin", &app.url)
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let (_, html) = page(&app, &b, &url).await;
    assert!(html.contains("data-consent"), "{html}");
    assert_eq!(
        app.count("select count(*) from consent_events where kind = 'requested'")
            .await,
        1
    );
    app.stop().await;
}

async fn held_and_unread(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in(AGENT).await;
    app.phone_writes(ADA, "Are you open on Saturday?").await;
    let (b, token) = signed_in_agent(&app).await;
    let (_, list) = page(&app, &b, "/messages").await;
    assert!(list.contains("aria-label=\"1 unread\""), "{list}");
    let (_, inbox) = app.get("/api/v1/conversations").await;
    let conv = inbox["items"][0]["id"].as_str().unwrap().to_owned();
    let (_, html) = page(&app, &b, &format!("/messages/{conv}")).await;
    assert!(html.contains("Are you open on Saturday?"));
    let (_, list) = page(&app, &b, "/messages").await;
    assert!(!list.contains("unread"), "opening the thread read it");

    // Ada has not agreed yet: the reply is held, and the thread says why.
    let ada = app.contact_id(ADA).await;
    let (status, m) = app.send_text(&ada, "Yes, 9 to 1").await;
    assert_eq!(status, 202);
    let (_, html) = page(&app, &b, &format!("/messages/{conv}")).await;
    assert!(html.contains("Queued"), "{html}");
    assert!(
        html.contains(m["queue_explanation"].as_str().unwrap()),
        "the reason, in words"
    );
    let id = m["id"].as_str().unwrap();
    let res = b
        .post(app.at(&format!("/messages/{id}/cancel")))
        .header("origin", &app.url)
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let (_, m) = app.get(&format!("/api/v1/messages/{id}")).await;
    assert_eq!(m["status"], "cancelled");
    let (_, html) = page(&app, &b, &format!("/messages/{conv}")).await;
    assert!(html.contains("Cancelled") && !html.contains("Cancel this message"));
    app.stop().await;
}

async fn admin_switches(backend: Backend) {
    let app = spawn_app(backend).await;
    let admin = browser();
    assert_eq!(
        web_sign_in(&app, &admin, "admin@demo.openline.dev", PASSWORD)
            .await
            .status(),
        303
    );
    let (_, html) = page(&app, &admin, "/admin").await;
    let token = csrf_of(&html);
    let store = app.handle.as_ref().unwrap().state.store.clone();
    let (sub, agent_id) = store
        .read(|c| {
            let sub = openline_store::orgs::find_by_name(c, "Demo Bank Private Clients")?.unwrap();
            let (agent, _) = openline_store::users::find_for_login(c, AGENT)?.unwrap();
            Ok((sub.id, agent.id))
        })
        .await
        .unwrap();
    let (agent, agent_token) = signed_in_agent(&app).await;
    app.sign_in(AGENT).await;
    let ada = app.contact_id(ADA).await;
    assert!(page(&app, &agent, &format!("/contacts/{ada}"))
        .await
        .1
        .contains("whatsapp-button"));

    // Agents may not change it.
    let res = agent
        .post(app.at(&format!("/admin/orgs/{sub}/whatsapp")))
        .header("origin", &app.url)
        .form(&[("csrf", agent_token.as_str()), ("whatsapp", "off")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    let res = admin
        .post(app.at(&format!("/admin/orgs/{sub}/whatsapp")))
        .header("origin", &app.url)
        .form(&[("csrf", token.as_str()), ("whatsapp", "off")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let (_, html) = page(&app, &agent, &format!("/contacts/{ada}")).await;
    assert!(
        !html.contains("whatsapp-button"),
        "no green icon when the organization has WhatsApp off"
    );
    let (_, html) = page(&app, &agent, &format!("/contacts/{ada}/write?channel=whatsapp")).await;
    assert!(html.contains("WhatsApp is not enabled for your organization"), "{html}");

    // Back to inheriting (the parent has it on), then off for the agent alone.
    for (path, field, value) in [
        (format!("/admin/orgs/{sub}/whatsapp"), "whatsapp", "inherit"),
        (format!("/admin/users/{agent_id}/whatsapp"), "enabled", "false"),
    ] {
        let res = admin
            .post(app.at(&path))
            .header("origin", &app.url)
            .form(&[("csrf", token.as_str()), (field, value)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
    }
    let (agent, _) = signed_in_agent(&app).await;
    let (_, html) = page(&app, &agent, &format!("/contacts/{ada}")).await;
    assert!(
        !html.contains("whatsapp-button"),
        "no green icon for a user without WhatsApp"
    );
    let (_, html) = page(&app, &admin, "/admin").await;
    assert!(html.contains("Turn WhatsApp on for Amir Agent"), "{html}");
    assert_eq!(
        app.count(
            "select count(*) from journal where kind in ('organization.whatsapp_changed', 'user.whatsapp_changed')"
        )
        .await,
        3,
        "every change is in the archive"
    );
    app.stop().await;
}

async fn viewer(backend: Backend) {
    let app = spawn_app(backend).await;
    app.phone_writes(ADA, "Hello?").await;
    let store = app.handle.as_ref().unwrap().state.store.clone();
    let hash = openline_server::auth::hash_password_blocking("viewer-password").unwrap();
    store
        .write(move |c| {
            let sub = openline_store::orgs::find_by_name(c, "Demo Bank Private Clients")?.unwrap();
            openline_store::users::create(
                c,
                &openline_store::users::NewUser {
                    org_id: &sub.id,
                    team_id: None,
                    email: "vic@demo.openline.dev",
                    name: "Vic Viewer",
                    role: Role::Viewer,
                    password_hash: &hash,
                },
                1,
            )
        })
        .await
        .unwrap();
    let vic = browser();
    assert_eq!(
        web_sign_in(&app, &vic, "vic@demo.openline.dev", "viewer-password")
            .await
            .status(),
        303
    );
    let (_, list) = page(&app, &vic, "/messages").await;
    let token = csrf_of(&list);
    app.sign_in(AGENT).await;
    let (_, inbox) = app.get("/api/v1/conversations").await;
    let conv = inbox["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, html) = page(&app, &vic, &format!("/messages/{conv}")).await;
    assert_eq!(status, 200);
    assert!(html.contains("Hello?"), "viewers read threads");
    assert!(
        html.contains("Viewers can read conversations but not send messages"),
        "{html}"
    );
    assert!(html.contains("disabled"), "the composer is disabled");
    let ada = app.contact_id(ADA).await;
    let res = vic
        .post(app.at("/compose"))
        .header("origin", &app.url)
        .form(&[
            ("csrf", token.as_str()),
            ("contact_id", ada.as_str()),
            ("channel", "whatsapp"),
            ("text", "sneaky"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(page(&app, &vic, "/contacts/new").await.0, 403);
    let res = vic
        .post(app.at(&format!("/contacts/{ada}")))
        .header("origin", &app.url)
        .form(&[("csrf", token.as_str()), ("name", "Renamed"), ("phone", ADA)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(
        app.count("select count(*) from messages where direction = 'out'").await,
        0
    );
    assert_eq!(
        app.count("select count(*) from contacts where name = 'Renamed'").await,
        0
    );
    app.stop().await;
}
