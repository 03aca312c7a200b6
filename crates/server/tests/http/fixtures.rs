//! Real material nobody here wrote, through the whole pipeline: every webhook body from the pywa
//! library's tests and Meta's spec examples, signed and posted to openline. Each is acknowledged and
//! every event it holds is kept (as a message, a status or a provider event), never dropped.
//! Also: health, readiness, metrics and the OpenAPI document.

use crate::common::*;
use openline_channels::cloud_api::{parse_webhook, CloudEvent};
use openline_store::Backend;
use serde_json::Value;
use std::collections::HashSet;

crate::both_backends! {
    every_real_webhook_body_is_acknowledged_and_kept => every_fixture;
    health_metrics_and_the_openapi_document_are_served => operations;
}

fn fixture_bodies() -> Vec<(String, Value)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures");
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(root.join("pywa"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.push(root.join("meta/meta_webhook_examples.json"));
    files.sort();
    for f in files.into_iter().filter(|f| f.extension().is_some_and(|e| e == "json")) {
        let cases: serde_json::Map<String, Value> = serde_json::from_slice(&std::fs::read(&f).unwrap()).unwrap();
        for (name, body) in cases {
            out.push((format!("{}:{name}", f.file_name().unwrap().to_string_lossy()), body));
        }
    }
    assert!(
        out.len() >= 90,
        "expected the 74 pywa and 16 Meta bodies, found {}",
        out.len()
    );
    out
}

/// Points every change at the demo number, so messages are routed to a real sender.
fn route_to_demo(body: &mut Value) {
    if let Some(entries) = body.get_mut("entry").and_then(Value::as_array_mut) {
        for e in entries {
            if let Some(changes) = e.get_mut("changes").and_then(Value::as_array_mut) {
                for ch in changes {
                    if let Some(md) = ch.pointer_mut("/value/metadata").and_then(Value::as_object_mut) {
                        md.insert("phone_number_id".into(), Value::from("100000000000001"));
                    }
                }
            }
        }
    }
}

async fn every_fixture(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut message_ids = HashSet::new();
    let mut status_keys = HashSet::new();
    let mut kept_whole = 0i64;
    for (name, mut body) in fixture_bodies() {
        route_to_demo(&mut body);
        let raw = serde_json::to_vec(&body).unwrap();
        for ev in parse_webhook(&raw).unwrap() {
            match ev {
                CloudEvent::Message(m)
                    if m.phone_number_id == "100000000000001"
                        && (!m.from.is_empty() || m.wa_id.is_some() || m.user_id.is_some()) =>
                {
                    message_ids.insert(m.provider_message_id);
                }
                CloudEvent::Status(s) if s.status.is_some() => {
                    // One row per message and status as openline names it (`played` is `read`).
                    status_keys.insert((s.provider_message_id, s.status.map(|st| st.as_str())));
                }
                _ => kept_whole += 1,
            }
        }
        let res = app.post_signed_webhook(&raw).await;
        let status = res.status();
        assert_eq!(status, 200, "{name}: {}", res.text().await.unwrap());
    }
    assert_eq!(
        app.count("select count(*) from messages where direction = 'in'").await,
        message_ids.len() as i64
    );
    // Fixture bodies that say "yes" or "stop" make openline answer (consent confirmations), and the
    // simulator reports those answers' statuses too: count only the statuses the fixtures carry.
    let fixture_ids: Vec<String> = status_keys.iter().map(|(id, _)| id.clone()).collect();
    let store = app.handle.as_ref().unwrap().state.store.clone();
    let stored_statuses = store
        .read(move |c| {
            let sql = format!(
                "select count(*) from message_status_events where provider_message_id in ({})",
                openline_store::sql::placeholders(fixture_ids.len())
            );
            let vals: Vec<openline_store::Val> = fixture_ids.iter().map(openline_store::Val::from).collect();
            c.query_one(&sql, &vals)?.i64(0)
        })
        .await
        .unwrap();
    assert_eq!(stored_statuses, status_keys.len() as i64);
    assert_eq!(app.count("select count(*) from provider_events").await, kept_whole);
    // The fixtures reuse ids such as `wamid.xyzxyz`; repeats are duplicates and stored once.
    assert!(
        message_ids.len() >= 20,
        "the fixtures hold many distinct messages: {}",
        message_ids.len()
    );
    let unsupported = app
        .count("select count(*) from messages where kind = 'unsupported'")
        .await;
    assert!(
        unsupported > 0 && unsupported < message_ids.len() as i64 / 2,
        "{unsupported}"
    );
    app.stop().await;
}

async fn operations(backend: Backend) {
    let app = spawn_app(backend).await;
    assert_eq!(app.http.get(app.at("/healthz")).send().await.unwrap().status(), 200);
    assert_eq!(app.http.get(app.at("/readyz")).send().await.unwrap().status(), 200);
    app.post_signed_webhook(&text_webhook("wamid.METRICS", "447700900055", "count me"))
        .await;
    let metrics = app
        .http
        .get(app.at("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("openline_webhook_events_total{outcome=\"stored\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("openline_http_requests_total"), "{metrics}");
    assert!(metrics.contains("openline_dispatcher_lag_ms"), "{metrics}");
    let (status, doc) = app.get("/api/openapi.json").await;
    assert_eq!(status, 200);
    for path in [
        "/api/v1/messages",
        "/api/v1/conversations",
        "/api/v1/events",
        "/webhooks/whatsapp",
        "/sim/phones/{phone}/messages",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} is documented");
    }
    app.stop().await;
}
