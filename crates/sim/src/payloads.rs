//! The webhook bodies, built in exactly the shape Meta sends (see `meta_webhook_examples.json` and
//! the pywa fixtures): one `entry` per WhatsApp Business Account, one `change` with
//! `field: "messages"`, and in its `value` either `contacts` + `messages` (something a phone sent)
//! or `statuses` (what happened to something the business sent). Timestamps are epoch seconds as
//! strings.

use crate::config::SimBusinessNumber;
use openline_domain::{Millis, PhoneNumber};
use serde_json::{json, Value};

/// Epoch seconds as a string, as every webhook timestamp is.
pub fn timestamp(now: Millis) -> String {
    now.div_euclid(1000).to_string()
}

fn envelope(business: &SimBusinessNumber, value: Value) -> Value {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": business.waba_id,
            "changes": [{ "value": value, "field": "messages" }],
        }],
    })
}

fn metadata(business: &SimBusinessNumber) -> Value {
    json!({
        "display_phone_number": business.display_phone_number,
        "phone_number_id": business.phone_number_id,
    })
}

/// Something a phone sent. `message` holds the type-specific part (`{"type":"text","text":{…}}`,
/// optionally `context`); `from`, `id` and `timestamp` are added here, in Meta's order.
pub fn inbound_message(
    business: &SimBusinessNumber,
    phone: &PhoneNumber,
    profile_name: &str,
    id: &str,
    now: Millis,
    message: Value,
) -> Value {
    let mut m = json!({ "from": phone.digits(), "id": id, "timestamp": timestamp(now) });
    if let (Some(target), Value::Object(extra)) = (m.as_object_mut(), message) {
        target.extend(extra);
    }
    envelope(
        business,
        json!({
            "messaging_product": "whatsapp",
            "metadata": metadata(business),
            "contacts": [{ "profile": { "name": profile_name }, "wa_id": phone.digits() }],
            "messages": [m],
        }),
    )
}

/// `context` of a reply to a business message.
pub fn reply_context(business: &SimBusinessNumber, message_id: &str) -> Value {
    json!({ "from": business.display_phone_number, "id": message_id })
}

/// The billing facts attached to `sent` and `delivered` statuses.
#[derive(Debug, Clone)]
pub struct Billing {
    pub conversation_id: String,
    /// Epoch ms; Meta only puts `expiration_timestamp` on the first (`sent`) status.
    pub expires_ms: Millis,
    /// `service` for free-form replies, `utility`/`marketing` for templates.
    pub category: &'static str,
}

/// What a status webhook reports.
#[derive(Debug, Clone)]
pub enum StatusReport<'a> {
    Sent(&'a Billing),
    Delivered(&'a Billing),
    Read,
    Failed {
        code: i64,
        title: &'static str,
        details: &'static str,
    },
}

/// A status update for a business message.
pub fn status(
    business: &SimBusinessNumber,
    recipient: &PhoneNumber,
    message_id: &str,
    now: Millis,
    report: &StatusReport<'_>,
) -> Value {
    let name = match report {
        StatusReport::Sent(_) => "sent",
        StatusReport::Delivered(_) => "delivered",
        StatusReport::Read => "read",
        StatusReport::Failed { .. } => "failed",
    };
    let mut s = json!({
        "id": message_id,
        "status": name,
        "timestamp": timestamp(now),
        "recipient_id": recipient.digits(),
    });
    match report {
        StatusReport::Sent(b) | StatusReport::Delivered(b) => {
            let mut conversation = json!({ "id": b.conversation_id, "origin": { "type": b.category } });
            if matches!(report, StatusReport::Sent(_)) {
                conversation["expiration_timestamp"] = json!(timestamp(b.expires_ms));
            }
            s["conversation"] = conversation;
            s["pricing"] = json!({ "billable": true, "pricing_model": "CBP", "category": b.category });
        }
        StatusReport::Read => {}
        StatusReport::Failed { code, title, details } => {
            s["errors"] = json!([{
                "code": code,
                "title": title,
                "message": title,
                "error_data": { "details": details },
                "href": "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/",
            }]);
        }
    }
    envelope(
        business,
        json!({ "messaging_product": "whatsapp", "metadata": metadata(business), "statuses": [s] }),
    )
}

/// A `message_template_status_update` webhook, as Meta sends it when a template is approved,
/// rejected, paused or disabled (compare `pywa/template_status_update.json`): one entry for the WABA
/// with `time` in epoch seconds (a number here), the template's numeric id, name, language and
/// category, and `reason` (`NONE` unless rejected). A rejection adds `rejection_info`; a pause adds
/// `other_info`.
pub fn template_status_update(
    template: &crate::templates::TemplateRecord,
    rejection: Option<(&str, (&str, &str))>,
    now: Millis,
) -> Value {
    let id: Value = template
        .id
        .parse::<u64>()
        .map_or_else(|_| json!(template.id), |n| json!(n));
    let mut value = json!({
        "event": template.status.as_str(),
        "message_template_id": id,
        "message_template_name": template.name,
        "message_template_language": template.language,
        "reason": rejection.map_or("NONE", |(reason, _)| reason),
        "message_template_category": template.category,
    });
    if let Some((_, (why, recommendation))) = rejection.filter(|(_, (why, _))| !why.is_empty()) {
        value["rejection_info"] = json!({ "reason": why, "recommendation": recommendation });
    }
    if template.status == crate::templates::TemplateStatus::Paused {
        value["other_info"] = json!({
            "title": "FIRST_PAUSE",
            "description": "Your WhatsApp message template has been paused because of low quality.",
        });
    }
    json!({
        "entry": [{
            "id": template.waba_id,
            "time": now.div_euclid(1000),
            "changes": [{ "value": value, "field": "message_template_status_update" }],
        }],
        "object": "whatsapp_business_account",
    })
}

/// A `user_preferences` webhook, as Meta sends it when a WhatsApp user stops or resumes marketing
/// messages from the business (compare `pywa/user_marketing_preferences.json`): `field:
/// "user_preferences"`, the user in `contacts` and in `user_preferences[]` with
/// `category: "marketing_messages"`, `value` `stop` or `resume`, Meta's `detail` sentence and the
/// timestamp in epoch seconds (a number here, unlike messages' strings).
pub fn user_preferences(
    business: &SimBusinessNumber,
    phone: &PhoneNumber,
    profile_name: &str,
    stopped: bool,
    now: Millis,
) -> Value {
    let (value, detail) = if stopped {
        ("stop", "User requested to stop marketing messages")
    } else {
        ("resume", "User requested to resume marketing messages")
    };
    json!({
        "object": "whatsapp_business_account",
        "entry": [{
            "id": business.waba_id,
            "changes": [{
                "value": {
                    "messaging_product": "whatsapp",
                    "metadata": metadata(business),
                    "contacts": [{ "profile": { "name": profile_name }, "wa_id": phone.digits() }],
                    "user_preferences": [{
                        "wa_id": phone.digits(),
                        "detail": detail,
                        "category": "marketing_messages",
                        "value": value,
                        "timestamp": now.div_euclid(1000),
                    }],
                },
                "field": "user_preferences",
            }],
        }],
    })
}

/// 131050: a marketing template to someone who stopped marketing messages from the business.
pub fn marketing_stopped() -> StatusReport<'static> {
    StatusReport::Failed {
        code: 131050,
        title: "User has stopped receipt of marketing messages",
        details: "Unable to deliver the message. This recipient has chosen to stop receiving marketing messages on WhatsApp from your business.",
    }
}

/// 131026: the number is not on WhatsApp (or cannot receive this message).
pub fn undeliverable() -> StatusReport<'static> {
    StatusReport::Failed {
        code: 131026,
        title: "Message undeliverable",
        details: "Message Undeliverable.",
    }
}

/// 131047: a free-form message outside the 24-hour window.
pub fn re_engagement() -> StatusReport<'static> {
    StatusReport::Failed {
        code: 131047,
        title: "Re-engagement message",
        details: "Message failed to send because more than 24 hours have passed since the customer last replied to this number.",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn business() -> SimBusinessNumber {
        SimBusinessNumber {
            phone_number_id: "106540352242922".into(),
            display_phone_number: "15550783881".into(),
            waba_id: "419561257915477".into(),
            verified_name: "Test".into(),
        }
    }

    #[test]
    fn an_inbound_text_matches_metas_example_exactly() {
        let examples: Value = serde_json::from_str(
            &std::fs::read_to_string("../../../shared/fixtures/meta/meta_webhook_examples.json").unwrap(),
        )
        .unwrap();
        let expected = &examples["Text Message"];
        let phone = PhoneNumber::from_wa_id("16505551234").unwrap();
        let built = inbound_message(
            &business(),
            &phone,
            "Sheena Nelson",
            "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA=",
            1_749_416_383_000,
            json!({ "type": "text", "text": { "body": "Does it come in another color?" } }),
        );
        assert_eq!(&built, expected);
    }

    #[test]
    fn a_sent_status_carries_conversation_and_pricing() {
        let phone = PhoneNumber::from_wa_id("16505551234").unwrap();
        let billing = Billing {
            conversation_id: "c1".into(),
            expires_ms: 90_000,
            category: "service",
        };
        let v = status(&business(), &phone, "wamid.x", 1_000, &StatusReport::Sent(&billing));
        let s = &v["entry"][0]["changes"][0]["value"]["statuses"][0];
        assert_eq!(s["status"], "sent");
        assert_eq!(s["timestamp"], "1");
        assert_eq!(s["conversation"]["expiration_timestamp"], "90");
        assert_eq!(s["pricing"]["category"], "service");
        let f = status(&business(), &phone, "wamid.x", 1_000, &undeliverable());
        assert_eq!(
            f["entry"][0]["changes"][0]["value"]["statuses"][0]["errors"][0]["code"],
            131026
        );
    }
}
