//! Data-loss prevention through HTTP: an admin's policy blocks card numbers going out (nothing stored,
//! nothing reaches the provider, the agent is told which rule), redacts IBANs in both directions (the
//! contact sees them masked, the archive keeps the original), and flags e-mail addresses coming in for
//! a supervisor to review. Near-misses (a number failing the Luhn check) pass.

use crate::common::*;
use openline_store::Backend;
use serde_json::json;

const ADMIN: &str = "admin@demo.openline.dev";
const SUPERVISOR: &str = "supervisor@demo.openline.dev";

crate::both_backends! {
    policy_blocks_redacts_and_flags_and_the_archive_keeps_the_original => dlp_policy;
}

fn policy() -> serde_json::Value {
    json!({
        "id": "bank", "name": "Bank policy",
        "rules": [
            {"id": "cards", "name": "Payment cards", "detector": {"kind": "payment_card"}, "action": "block", "direction": "outbound"},
            {"id": "iban", "name": "Bank accounts", "detector": {"kind": "iban"}, "action": "redact", "direction": "both"},
            {"id": "email", "name": "E-mail addresses", "detector": {"kind": "email"}, "action": "flag", "direction": "inbound"}
        ]
    })
}

async fn dlp_policy(backend: Backend) {
    let app = spawn_app(backend).await;
    app.sign_in(AGENT).await;
    let res = app
        .http
        .put(app.at("/api/v1/dlp/policy"))
        .json(&policy())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403, "agents cannot change the policy");
    // The admin sets it for the whole bank; the agents' sub-organization inherits it.
    app.sign_in(ADMIN).await;
    let bad = json!({"id": "x", "name": "x", "rules": [{"id": "r", "name": "Broken", "detector": {"kind": "regex", "pattern": "(unclosed"}, "action": "block", "direction": "both"}]});
    let res = app
        .http
        .put(app.at("/api/v1/dlp/policy"))
        .json(&bad)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["error"],
        "dlp_invalid_rule"
    );
    let res = app
        .http
        .put(app.at("/api/v1/dlp/policy"))
        .json(&policy())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    app.sign_in(AGENT).await;
    let (_, inherited) = app.get("/api/v1/dlp/policy").await;
    assert_eq!(inherited["effective_rules"].as_array().unwrap().len(), 3, "{inherited}");
    app.ada_opts_in().await;
    let ada = app.contact_id(ADA).await;
    let before = app.count("select count(*) from messages").await;

    // Blocked: a valid card number never leaves, and nothing is stored.
    let (status, err) = app.send_text(&ada, "Your card 4111 1111 1111 1111 is ready").await;
    assert_eq!((status, err["error"].as_str()), (422, Some("dlp_blocked")));
    let msg = err["message"].as_str().unwrap();
    assert!(
        msg.contains("Payment cards") && !msg.contains("4111"),
        "names the rule, never the number: {msg}"
    );
    assert_eq!(app.count("select count(*) from messages").await, before);

    // A near-miss (fails Luhn) is not a card.
    let (status, ok) = app.send_text(&ada, "Reference 4111 1111 1111 1112").await;
    assert_eq!(status, 202, "{ok}");

    // Redacted: sent masked; the archive keeps what the agent wrote.
    let (status, sent) = app
        .send_text(&ada, "Please pay to GB82 WEST 1234 5698 7654 32 today")
        .await;
    assert_eq!(status, 202, "{sent}");
    let body = sent["body"].as_str().unwrap();
    assert!(
        !body.contains("GB82") && body.contains('█') && body.ends_with(" today"),
        "{body}"
    );
    app.wait_for_message(sent["id"].as_str().unwrap(), |m| m["status"] == "read")
        .await;
    let phone = app.phone_received(ADA).await;
    assert!(
        phone.iter().any(|t| t.contains('█') && t.starts_with("Please pay to")),
        "{phone:?}"
    );
    assert!(
        !phone.iter().any(|t| t.contains("GB82 WEST")),
        "the provider never saw the IBAN"
    );
    let archived = app
        .count(
            "select count(*) from journal where kind = 'dlp.verdict' and payload like '%GB82 WEST 1234 5698 7654 32%'",
        )
        .await;
    assert_eq!(archived, 1, "the original is in the archive");

    // Flagged inbound: a supervisor reviews it.
    app.phone_writes(ADA, "Write to me at ada@example.com").await;
    app.sign_in(SUPERVISOR).await;
    let (status, flagged) = app.get("/api/v1/dlp/flagged").await;
    assert_eq!(status, 200);
    let items = flagged.as_array().unwrap();
    assert_eq!(items.len(), 1, "{flagged}");
    assert_eq!(
        items[0]["body"], "Write to me at ada@example.com",
        "a flag does not change the text"
    );
    let id = items[0]["id"].as_str().unwrap();
    let res = app
        .http
        .post(app.at(&format!("/api/v1/messages/{id}/review")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let (_, flagged) = app.get("/api/v1/dlp/flagged").await;
    assert!(flagged.as_array().unwrap().is_empty());
    app.sign_in(AGENT).await;
    assert_eq!(app.get("/api/v1/dlp/flagged").await.0, 403, "agents do not review");
    // The chain still verifies after all of it.
    let store = app.handle.as_ref().unwrap().state.store.clone();
    let reports = store.read(|c| openline_store::journal::verify(c, None)).await.unwrap();
    assert!(reports.iter().all(|r| r.problem.is_none()), "{reports:?}");
    app.stop().await;
}
