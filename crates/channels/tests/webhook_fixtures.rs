//! Real webhook bodies (pywa's test data and the examples in Meta's spec) parse completely: no body is
//! refused, no change disappears, and the fields the inbox shows come out right.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use openline_channels::cloud_api::{parse_webhook, CloudEvent, InboundMessage, OtherEvent, StatusUpdate};
use openline_domain::{DeliveryStatus, MessageKind};
use serde_json::Value;
use std::path::{Path, PathBuf};

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures")
}

/// Every `{case_name: body}` in `pywa/*.json` and `meta/meta_webhook_examples.json`, named
/// `file:case`.
fn all_bodies() -> Vec<(String, Value)> {
    let dir = fixtures_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir.join("pywa"))
        .expect("shared/fixtures/pywa must sit beside the checkout")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files.push(dir.join("meta/meta_webhook_examples.json"));
    let mut bodies = Vec::new();
    for file in files {
        let cases: serde_json::Map<String, Value> = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        let stem = file.file_stem().unwrap().to_string_lossy().into_owned();
        bodies.extend(cases.into_iter().map(|(case, body)| (format!("{stem}:{case}"), body)));
    }
    bodies
}

fn body(name: &str) -> Value {
    all_bodies()
        .into_iter()
        .find(|(n, _)| n == name)
        .unwrap_or_else(|| panic!("no fixture {name}"))
        .1
}

fn events(name: &str) -> Vec<CloudEvent> {
    parse_webhook(&serde_json::to_vec(&body(name)).unwrap()).unwrap()
}

fn only_message(name: &str) -> InboundMessage {
    match events(name).as_slice() {
        [CloudEvent::Message(m)] => m.clone(),
        other => panic!("{name}: expected one message, got {other:?}"),
    }
}

fn only_status(name: &str) -> StatusUpdate {
    match events(name).as_slice() {
        [CloudEvent::Status(s)] => s.clone(),
        other => panic!("{name}: expected one status, got {other:?}"),
    }
}

fn only_other(name: &str) -> OtherEvent {
    match events(name).as_slice() {
        [CloudEvent::Other(o)] => o.clone(),
        other => panic!("{name}: expected one other event, got {other:?}"),
    }
}

#[test]
fn every_fixture_body_parses_into_at_least_one_event_per_change() {
    let bodies = all_bodies();
    assert!(
        bodies.len() >= 74 + 16,
        "expected the 74 pywa and 16 Meta bodies, found {}",
        bodies.len()
    );
    for (name, body) in bodies {
        let changes: usize = body["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["changes"].as_array().unwrap().len())
            .sum();
        let items: usize = body["entry"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|e| e["changes"].as_array().unwrap())
            .map(|c| {
                c["value"]["messages"].as_array().map_or(0, Vec::len)
                    + c["value"]["statuses"].as_array().map_or(0, Vec::len)
            })
            .sum();
        let events = parse_webhook(&serde_json::to_vec(&body).unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(
            events.len() >= changes.max(items),
            "{name}: {} events for {changes} changes and {items} items",
            events.len()
        );
    }
}

#[test]
fn every_fixture_parses_from_its_raw_bytes_as_meta_sends_them() {
    // Meta escapes non-ASCII as \uXXXX; the files are pretty-printed. Neither may matter.
    for file in ["pywa/message.json", "meta/meta_webhook_examples.json"] {
        let raw = std::fs::read(fixtures_dir().join(file)).unwrap();
        let cases: serde_json::Map<String, Value> = serde_json::from_slice(&raw).unwrap();
        for (name, body) in cases {
            let compact = serde_json::to_vec(&body).unwrap();
            let pretty = serde_json::to_vec_pretty(&body).unwrap();
            assert_eq!(
                parse_webhook(&compact).unwrap(),
                parse_webhook(&pretty).unwrap(),
                "{file}:{name}"
            );
        }
    }
}

#[test]
fn a_text_message_carries_its_body_sender_and_business_number() {
    let m = only_message("message:text");
    assert_eq!(m.kind, MessageKind::Text);
    assert_eq!(m.body.as_deref(), Some("Body Text"));
    assert_eq!(m.from, "972987654321");
    assert_eq!(m.wa_id.as_deref(), Some("972987654321"));
    assert_eq!(m.user_id.as_deref(), Some("US.13491208655302741918"));
    assert_eq!(m.profile_name.as_deref(), Some("Test Name"));
    assert_eq!(m.waba_id, "1234567890987654321");
    assert_eq!(m.phone_number_id, "1122334455667");
    assert_eq!(m.display_phone_number, "972123456789");
    assert_eq!(m.provider_message_id, "wamid.xyzxyz");
    assert_eq!(m.timestamp_ms, 1_697_043_223_000);
    assert_eq!(m.raw["text"]["body"], "Body Text");
}

#[test]
fn an_image_names_its_media_id_and_type() {
    let m = only_message("message:image");
    assert_eq!(m.kind, MessageKind::Image);
    let media = m.media.unwrap();
    assert_eq!(media.id, "65463453");
    assert_eq!(media.mime_type.as_deref(), Some("image/jpeg"));
    assert_eq!(media.sha256.as_deref(), Some("4654+8g="));
    assert_eq!(
        only_message("message:media_with_url")
            .media
            .unwrap()
            .url
            .unwrap()
            .split('?')
            .next(),
        Some("https://lookaside.fbsbx.com/whatsapp_business/attachments/")
    );
    let caption = only_message("meta_webhook_examples:Image Message");
    assert_eq!(caption.body.as_deref(), Some("Taj Mahal"));
}

#[test]
fn every_media_type_maps_to_its_kind() {
    for (name, kind) in [
        ("message:video", MessageKind::Video),
        ("message:document", MessageKind::Document),
        ("message:audio", MessageKind::Audio),
        ("message:voice", MessageKind::Audio),
        ("message:static_sticker", MessageKind::Sticker),
        ("message:animated_sticker", MessageKind::Sticker),
    ] {
        let m = only_message(name);
        assert_eq!(m.kind, kind, "{name}");
        assert!(m.media.is_some(), "{name}");
    }
    assert!(only_message("message:voice").media.unwrap().voice);
    assert!(only_message("message:animated_sticker").media.unwrap().animated);
    let document = only_message("message:document").media.unwrap();
    assert_eq!(document.filename.as_deref(), Some("filename.pdf"));
    assert_eq!(document.caption.as_deref(), Some("caption"));
}

#[test]
fn a_failed_status_carries_the_providers_error_code() {
    let s = only_status("message_status:failed");
    assert_eq!(s.status, Some(DeliveryStatus::Failed));
    assert_eq!(s.status_text, "failed");
    assert_eq!(s.provider_message_id, "wamid.xyzxyz");
    assert_eq!(s.recipient_id.as_deref(), Some("972987654321"));
    assert_eq!(s.phone_number_id, "1122334455667");
    assert_eq!(s.errors.len(), 1);
    assert_eq!(s.errors[0].code, Some(130472));
    assert_eq!(s.errors[0].title, "User's number is part of an experiment");
    assert!(s.errors[0]
        .details
        .as_deref()
        .unwrap()
        .starts_with("Failed to send message"));
}

#[test]
fn delivery_statuses_map_to_openline_statuses() {
    assert_eq!(only_status("message_status:sent").status, Some(DeliveryStatus::Sent));
    assert_eq!(
        only_status("message_status:delivered").status,
        Some(DeliveryStatus::Delivered)
    );
    assert_eq!(only_status("message_status:read").status, Some(DeliveryStatus::Read));
    assert_eq!(only_status("message_status:played").status, Some(DeliveryStatus::Read));
    assert_eq!(
        only_status("message_status:group").recipient_id.as_deref(),
        Some("fowefinoewcnw")
    );
}

#[test]
fn button_and_list_replies_are_interactive_with_their_payload() {
    let quick_reply = only_message("callback_button:quick_reply");
    assert_eq!(quick_reply.kind, MessageKind::Interactive);
    assert_eq!(quick_reply.body.as_deref(), Some("title"));
    assert_eq!(quick_reply.reply_payload.as_deref(), Some("callback_data"));
    assert_eq!(quick_reply.context_message_id.as_deref(), Some("wamid.xyzxyz=="));

    let meta_button = only_message("meta_webhook_examples:Button Message");
    assert_eq!(meta_button.reply_payload.as_deref(), Some("Unsubscribe"));

    let button_reply = only_message("meta_webhook_examples:Interactive Button Reply Message");
    assert_eq!(
        (button_reply.body.as_deref(), button_reply.reply_payload.as_deref()),
        (Some("Cancel"), Some("cancel-button"))
    );

    let list_reply = only_message("meta_webhook_examples:Interactive List Reply Message");
    assert_eq!(list_reply.kind, MessageKind::Interactive);
    assert_eq!(list_reply.reply_payload.as_deref(), Some("priority_express"));

    let flow = only_message("flow_completion:completion");
    assert_eq!(flow.body.as_deref(), Some("Sent"));
    assert!(flow.reply_payload.unwrap().contains("flow_token"));
}

#[test]
fn a_button_reply_without_context_still_names_the_sender_by_user_id() {
    let m = only_message("callback_button:quick_reply_without_context");
    assert_eq!(m.context_message_id, None);
    assert_eq!(m.user_id.as_deref(), Some("US.13491208655302741918"));
}

#[test]
fn reactions_point_at_the_message_and_a_removed_reaction_has_an_empty_emoji() {
    let r = only_message("meta_webhook_examples:Reaction Message");
    assert_eq!(r.kind, MessageKind::Reaction);
    assert_eq!(r.body.as_deref(), Some("\u{1f44d}"));
    assert_eq!(
        r.context_message_id.as_deref(),
        Some("wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI0RTJEOTc2ODVERUY5RDlGNkYA")
    );
    for removed in ["message:unreaction_empty", "message:unreaction_no_emoji"] {
        let m = only_message(removed);
        assert_eq!(
            (m.kind, m.body.as_deref()),
            (MessageKind::Reaction, Some("")),
            "{removed}"
        );
        assert_eq!(m.context_message_id.as_deref(), Some("wamid.yzxyzx="));
    }
}

#[test]
fn locations_contacts_and_replies_read_naturally() {
    assert_eq!(
        only_message("message:chosen_location").body.as_deref(),
        Some("Facebook HQ")
    );
    assert_eq!(
        only_message("message:current_location").body.as_deref(),
        Some("12.25089,43.90539")
    );
    let contacts = only_message("message:contacts");
    assert_eq!(contacts.kind, MessageKind::Contacts);
    assert_eq!(contacts.body.as_deref(), Some("Chandler Bing, Monica, Rachel Green"));
    assert_eq!(
        only_message("message:reply").context_message_id.as_deref(),
        Some("wamid.xyzxyz==")
    );
    assert_eq!(only_message("message:referral").body.as_deref(), Some("BODY"));
}

#[test]
fn orders_system_notices_and_unknown_types_are_unsupported_but_kept() {
    let order = only_message("message:order");
    assert_eq!(order.kind, MessageKind::Unsupported);
    assert_eq!(order.raw["order"]["product_items"].as_array().unwrap().len(), 3);
    let system = only_message("system:phone_number_change");
    assert_eq!(system.kind, MessageKind::Unsupported);
    assert_eq!(
        system.body.as_deref(),
        Some("User A changed from 972987654321 to 972912345678")
    );
    assert_eq!(system.profile_name, None);
    assert_eq!(
        only_message("message:unsupported_with_type").kind,
        MessageKind::Unsupported
    );
}

#[test]
fn edits_and_deletions_are_messages_that_name_the_original() {
    let edit = only_message("edited_message:image");
    assert_eq!(edit.kind, MessageKind::Unsupported);
    assert_eq!(edit.provider_type(), "edit");
    assert_eq!(
        edit.edited_message_id(),
        Some("wamid.HBgLMTQxMjU1NTA4MjkVAgASGBQzQUNCNjk5RDUwNUZGMUZEM0VBRAA=")
    );
    assert_eq!(edit.context_message_id.as_deref(), edit.edited_message_id());
    assert_eq!(edit.body.as_deref(), Some("Updated image caption"));

    let revoke = only_message("deleted_message:revoke");
    assert_eq!(revoke.revoked_message_id(), Some("<ORIGINAL_WHATSAPP_MESSAGE_ID>"));
    assert_eq!(revoke.edited_message_id(), None);
}

#[test]
fn a_message_with_value_level_errors_keeps_both_the_message_and_the_errors() {
    let events = events("message:interactive_message_with_err");
    assert!(matches!(&events[0], CloudEvent::Message(m) if m.kind == MessageKind::Interactive && m.body.is_none()));
    assert!(matches!(&events[1], CloudEvent::Other(o) if o.raw["errors"][0]["code"] == 131000));
}

#[test]
fn template_account_call_and_echo_changes_are_other_events_with_their_field() {
    for (name, field) in [
        ("template_status_update:approved", "message_template_status_update"),
        ("template_quality_update:yellow", "message_template_quality_update"),
        ("template_category_update:marketing", "template_category_update"),
        ("account_update:account_restriction", "account_update"),
        ("call_status:call_status", "calls"),
        ("call_terminate:call_terminate", "calls"),
        ("outgoing_message:text", "smb_message_echoes"),
        ("user_marketing_preferences:resume", "user_preferences"),
        ("meta_webhook_examples:Group Create Message", "group_lifecycle_update"),
    ] {
        let o = only_other(name);
        assert_eq!(o.field, field, "{name}");
        assert!(o.waba_id.is_some(), "{name}");
    }
    let template = only_other("template_status_update:rejected");
    assert_eq!(template.raw["event"], "REJECTED");
}
