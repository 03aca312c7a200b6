//! What one of openline's outgoing messages becomes at Twilio's Messages API: the request the
//! dispatcher sends for a sender on Twilio.
//!
//! - Addresses: `whatsapp:+…` on both sides for WhatsApp, bare E.164 numbers for SMS.
//! - A sender in a Messaging Service sends through it (`MessagingServiceSid`, Twilio picks the
//!   number from the pool) instead of `From`.
//! - Text is `Body`. An approved template is its Twilio Content template: `ContentSid` (the `HX…`
//!   stored with openline's template as its provider id) and `ContentVariables`, the body
//!   parameters keyed `"1"`, `"2"`, … in order; Twilio renders the approved text itself.
//! - Every request asks for status callbacks at the public webhook URL.

use openline_channels::twilio::TwilioMessage;
use openline_domain::{Channel, MessageKind};
use openline_store::messages::Message;
use openline_store::senders::Sender;
use openline_store::{Conn, StoreError};

/// The prefix Twilio puts on WhatsApp addresses.
const WHATSAPP_PREFIX: &str = "whatsapp:";

/// The Twilio Content SID (`HX…`) of a template message's template: the provider id stored with
/// openline's template record. `None` for other messages, and for templates without one (a
/// template submitted to Meta has Meta's numeric id instead).
pub fn content_sid(c: &mut dyn Conn, message: &Message) -> Result<Option<String>, StoreError> {
    let Some(template_id) = message
        .template
        .as_ref()
        .and_then(|t| t.get("template_id"))
        .and_then(|v| v.as_str())
    else {
        return Ok(None);
    };
    match openline_store::templates::get_any(c, template_id) {
        Ok(record) => Ok(record.provider_template_id.filter(|id| is_content_sid(id))),
        Err(StoreError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The query parameter of the status callback URL that names openline's message. Twilio calls the
/// URL exactly as given (and signs it so), so every status of a send names its message even when
/// the send's answer, with Twilio's SID, was lost in a crash: statuses for a second SID of one
/// message then confirm a duplicate.
pub const CALLBACK_MESSAGE_PARAM: &str = "openline_message_id";

/// `status_callback` with the message's id as [`CALLBACK_MESSAGE_PARAM`].
pub fn tagged_status_callback(status_callback: &str, message_id: &str) -> String {
    let separator = if status_callback.contains('?') { '&' } else { '?' };
    let id: String = url::form_urlencoded::byte_serialize(message_id.as_bytes()).collect();
    format!("{status_callback}{separator}{CALLBACK_MESSAGE_PARAM}={id}")
}

/// Whether `sid` looks like a Twilio Content SID: `HX` and 32 hex digits.
pub fn is_content_sid(sid: &str) -> bool {
    sid.strip_prefix("HX")
        .is_some_and(|hex| hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The request for `message` from `sender` to `phone` (E.164), with `content_sid` from
/// [`content_sid`] for a template. `Err` says, for the agent, why it cannot go through Twilio.
pub fn request(
    sender: &Sender,
    message: &Message,
    phone: &str,
    content_sid: Option<&str>,
    status_callback: &str,
) -> Result<TwilioMessage, String> {
    let prefix = if sender.channel == Channel::Whatsapp {
        WHATSAPP_PREFIX
    } else {
        ""
    };
    let from = format!("{prefix}{}", sender.phone_number);
    let to = format!("{prefix}{phone}");
    let service = sender.twilio_messaging_service().map(str::to_owned);
    let callback = Some(tagged_status_callback(status_callback, &message.id));
    match message.kind {
        MessageKind::Text => Ok(TwilioMessage {
            from,
            messaging_service_sid: service,
            to,
            body: message.body.clone(),
            media_urls: Vec::new(),
            content_sid: None,
            content_variables: None,
            status_callback: callback,
        }),
        MessageKind::Template => {
            let template = message.template.as_ref();
            let has = |key: &str| {
                template
                    .and_then(|t| t.get(key))
                    .is_some_and(|v| !v.is_null() && v.as_array().is_none_or(|a| !a.is_empty()))
            };
            if has("header_image_link") || has("url_buttons") {
                return Err(
                    "Templates with a header image or URL button parameters cannot be sent through Twilio yet.".into(),
                );
            }
            let Some(content_sid) = content_sid else {
                return Err("The template has no Twilio content SID (HX…), so Twilio cannot send it. Tell an admin to register the template's content SID.".into());
            };
            let parameters: Vec<String> = template
                .and_then(|t| t.get("body_parameters"))
                .and_then(|v| v.as_array())
                .map(|a| a.iter().filter_map(|p| p.as_str().map(str::to_owned)).collect())
                .unwrap_or_default();
            Ok(TwilioMessage::template(
                from,
                service,
                to,
                content_sid.to_owned(),
                &parameters,
                callback,
            ))
        }
        other => Err(format!("openline cannot send {other} messages through Twilio yet.")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use openline_domain::{DeliveryStatus, Direction, ProviderKind};
    use serde_json::json;

    const CONTENT: &str = "HXb5b62575e6e4ff6129ad7c8efe1f983e";

    fn sender(channel: Channel, service: Option<&str>) -> Sender {
        Sender {
            id: "snd_1".into(),
            org_id: "org_1".into(),
            channel,
            provider: ProviderKind::Twilio,
            phone_number: "+15550001000".into(),
            phone_number_id: "+15550001000".into(),
            waba_id: None,
            display_name: "Bank".into(),
            throughput_per_s: 10,
            created_at: 0,
            provider_account_id: None,
            messaging_service_sid: service.map(str::to_owned),
        }
    }

    fn message(kind: MessageKind, body: Option<&str>, template: Option<serde_json::Value>) -> Message {
        Message {
            id: "msg_1".into(),
            org_id: "org_1".into(),
            conversation_id: "cnv_1".into(),
            direction: Direction::Out,
            kind,
            body: body.map(str::to_owned),
            media: None,
            template,
            author_user_id: None,
            status: DeliveryStatus::Queued,
            provider: None,
            provider_message_id: None,
            reply_to: None,
            error_code: None,
            error_title: None,
            error_explanation: None,
            created_at: 0,
            updated_at: 0,
            sent_at: None,
            delivered_at: None,
            read_at: None,
            queue_reason: None,
            queue_explanation: None,
            dlp: None,
            dlp_flagged: false,
            possible_duplicate: false,
            duplicate_confirmed: false,
        }
    }

    fn form(m: &TwilioMessage) -> Vec<(&'static str, String)> {
        m.form_params()
    }

    #[test]
    fn a_template_becomes_its_content_sid_with_the_parameters_keyed_by_position() {
        let template = json!({"name": "appointment_reminder", "language": "en", "template_id": "tpl_1",
            "body_parameters": ["Ada", "Friday"]});
        let m = message(MessageKind::Template, Some("Hello Ada, …"), Some(template));
        let request = request(
            &sender(Channel::Whatsapp, None),
            &m,
            "+447700900001",
            Some(CONTENT),
            "https://x/webhooks/twilio",
        )
        .unwrap();
        let params = form(&request);
        assert!(params.contains(&("From", "whatsapp:+15550001000".into())));
        assert!(params.contains(&("To", "whatsapp:+447700900001".into())));
        assert!(params.contains(&("ContentSid", CONTENT.into())));
        assert!(params.contains(&("ContentVariables", r#"{"1":"Ada","2":"Friday"}"#.into())));
        // The callback names the message, so its statuses find it whatever SID they carry.
        assert!(params.contains(&(
            "StatusCallback",
            format!("https://x/webhooks/twilio?openline_message_id={}", m.id)
        )));
        // The rendered text stays openline's record; Twilio renders the approved content itself.
        assert!(!params.iter().any(|(n, _)| *n == "Body"));
    }

    #[test]
    fn a_sender_in_a_messaging_service_sends_through_it() {
        let m = message(MessageKind::Text, Some("hi"), None);
        let request = request(
            &sender(Channel::Sms, Some("MG0123456789abcdef0123456789abcdef")),
            &m,
            "+447700900001",
            None,
            "https://x",
        )
        .unwrap();
        let names: Vec<&str> = form(&request).iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["To", "MessagingServiceSid", "Body", "StatusCallback"]);
        assert!(form(&request).contains(&("To", "+447700900001".into())));
    }

    #[test]
    fn what_twilio_cannot_take_is_refused_with_a_reason() {
        let s = sender(Channel::Whatsapp, None);
        let template = json!({"name": "t", "language": "en", "template_id": "tpl_1", "body_parameters": []});
        let no_sid = request(
            &s,
            &message(MessageKind::Template, None, Some(template)),
            "+4477",
            None,
            "u",
        );
        assert!(no_sid.unwrap_err().contains("content SID"));
        let with_header = json!({"name": "t", "language": "en", "template_id": "tpl_1", "body_parameters": [],
            "header_image_link": "https://x/y.png"});
        let header = request(
            &s,
            &message(MessageKind::Template, None, Some(with_header)),
            "+4477",
            Some(CONTENT),
            "u",
        );
        assert!(header.unwrap_err().contains("header image"));
        let image = request(&s, &message(MessageKind::Image, None, None), "+4477", None, "u");
        assert!(image.unwrap_err().contains("cannot send image"));
        assert!(is_content_sid(CONTENT));
        assert!(!is_content_sid("HX1"));
        assert!(!is_content_sid("123456789012345"));
    }
}
