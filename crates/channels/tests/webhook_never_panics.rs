//! The webhook parser faces the internet (after the signature check, but a signed body can still be
//! anything Meta decides to send): arbitrary JSON, arbitrary bytes and mutated real bodies must parse
//! or be refused, never panic.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openline_channels::cloud_api::{parse_webhook, CloudEvent};
use proptest::prelude::*;
use serde_json::{Map, Value};
use std::path::Path;
use std::sync::OnceLock;

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        // Strings that look like the keys and values the parser looks for, and arbitrary ones.
        prop_oneof![
            Just("messages"),
            Just("statuses"),
            Just("text"),
            Just("interactive"),
            Just("edit"),
            Just("reaction"),
            Just("id"),
            Just("type"),
            Just("1697043223"),
            Just("failed"),
            Just("")
        ]
        .prop_map(|s| Value::String(s.to_owned())),
        ".{0,12}".prop_map(Value::String),
    ];
    leaf.prop_recursive(6, 64, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6).prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "object",
            "entry",
            "id",
            "changes",
            "field",
            "value",
            "metadata",
            "phone_number_id",
            "contacts",
            "messages",
            "statuses",
            "errors",
            "type",
            "text",
            "body",
            "from",
            "timestamp",
            "image",
            "interactive",
            "button_reply",
            "reaction",
            "emoji",
            "context",
            "edit",
            "message",
            "revoke",
            "original_message_id",
            "code",
            "error_data",
            "wa_id",
            "profile",
            "name",
            "location",
            "latitude",
        ])
        .prop_map(str::to_owned),
        "[a-z_]{1,8}",
    ]
}

/// Real bodies to mutate, read once.
fn fixture_bodies() -> &'static [Value] {
    static BODIES: OnceLock<Vec<Value>> = OnceLock::new();
    BODIES.get_or_init(read_fixture_bodies)
}

fn read_fixture_bodies() -> Vec<Value> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures");
    [
        "pywa/message.json",
        "pywa/message_status.json",
        "pywa/callback_button.json",
        "pywa/edited_message.json",
        "meta/meta_webhook_examples.json",
    ]
    .iter()
    .flat_map(|f| {
        let cases: Map<String, Value> = serde_json::from_slice(&std::fs::read(dir.join(f)).unwrap()).unwrap();
        cases.into_values()
    })
    .collect()
}

/// Replaces the node reached by following `path` (indices taken modulo each container's size) with
/// `replacement`.
fn mutate(mut body: Value, path: &[usize], replacement: Value) -> Value {
    replace_at(&mut body, path, replacement);
    body
}

fn replace_at(node: &mut Value, path: &[usize], replacement: Value) {
    let Some((step, rest)) = path.split_first() else {
        *node = replacement;
        return;
    };
    match node {
        Value::Array(items) if !items.is_empty() => {
            let i = step % items.len();
            replace_at(&mut items[i], rest, replacement);
        }
        Value::Object(map) if !map.is_empty() => {
            let i = step % map.len();
            replace_at(map.values_mut().nth(i).unwrap(), rest, replacement);
        }
        _ => *node = replacement,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_json_never_panics(value in any_json()) {
        let bytes = serde_json::to_vec(&value).unwrap();
        let result = parse_webhook(&bytes);
        prop_assert_eq!(result.is_ok(), value.is_object());
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = parse_webhook(&bytes);
    }

    #[test]
    fn mutated_real_bodies_never_panic_and_still_yield_events(
        which in any::<prop::sample::Index>(),
        path in prop::collection::vec(any::<usize>(), 0..10),
        replacement in any_json(),
    ) {
        let bodies = fixture_bodies();
        let body = mutate(which.get(bodies).clone(), &path, replacement);
        if let Ok(events) = parse_webhook(&serde_json::to_vec(&body).unwrap()) {
            // A body that still has entries yields something for them.
            let has_entries = body.get("entry").and_then(Value::as_array).is_some_and(|e| !e.is_empty());
            prop_assert!(!has_entries || !events.is_empty());
            for event in events {
                if let CloudEvent::Message(m) = event { prop_assert!(!m.provider_message_id.is_empty()); }
            }
        }
    }
}
