//! What one of openline's outgoing messages becomes at Twilio's Messages API: the request the
//! dispatcher sends for a sender on Twilio.
//!
//! - Addresses: `whatsapp:+…` on both sides for WhatsApp, bare E.164 numbers for SMS.
//! - A sender in a Messaging Service sends through it (`MessagingServiceSid`, Twilio picks the
//!   number from the pool) instead of `From`.
//! - Text is `Body`. An approved template is its Twilio Content template: `ContentSid` (the `HX…`
//!   stored with openline's template as its provider id) and `ContentVariables`, the body
//!   parameters keyed `"1"`, `"2"`, … in order; Twilio renders the approved text itself.
//! - A picture, video, audio or document is `MediaUrl`: a signed, expiring public link to the file
//!   (see [`crate::media_links`]) that Twilio fetches, with the caption as `Body`. On SMS this is an
//!   MMS, limited by Twilio to [`MMS_MAX_BYTES`]; on WhatsApp Meta's limits apply, as for the Cloud
//!   API.
//! - Every request asks for status callbacks at the public webhook URL.

use crate::config::Config;
use crate::error::AppError;
use crate::state::AppState;
use axum::http::StatusCode;
use openline_channels::twilio::TwilioMessage;
use openline_domain::{Channel, MessageKind, ProviderKind};
use openline_store::messages::Message;
use openline_store::senders::Sender;
use openline_store::{Conn, StoreError};

/// The prefix Twilio puts on WhatsApp addresses.
const WHATSAPP_PREFIX: &str = "whatsapp:";

/// Twilio's limit on the media of one MMS (all files together).
pub const MMS_MAX_BYTES: i64 = 5 * 1024 * 1024;

/// The URLs a request to Twilio carries: where status callbacks go, and (for a media message) the
/// public link Twilio fetches the file from.
pub struct Links {
    pub status_callback: String,
    config: std::sync::Arc<Config>,
    now: i64,
}

impl Links {
    /// The links of a send happening now.
    pub fn of(st: &AppState) -> Self {
        Self::new(st.twilio_webhook_url.clone(), st.config.clone(), st.now())
    }

    pub fn new(status_callback: String, config: std::sync::Arc<Config>, now: i64) -> Self {
        Self {
            status_callback,
            config,
            now,
        }
    }

    /// A link to the file `media_id`, working for [`crate::media_links::LINK_TTL_MS`] from now.
    fn media(&self, media_id: &str) -> Option<String> {
        crate::media_links::link(&self.config, media_id, self.now)
    }
}

/// Why a file cannot be sent through `sender` on `channel`, if it cannot: `media` is the message's
/// file reference (`{"media_id", "content_type", "size_bytes", …}`) once resolved. Checked when the
/// message is asked for, so nothing is stored that could not go out:
///
/// - SMS carries files only through Twilio (as MMS), and at most [`MMS_MAX_BYTES`];
/// - a Twilio sender needs a public URL for Twilio to fetch the file from (`links_available`).
pub fn media_refusal(
    sender: &Sender,
    channel: Channel,
    media: Option<&serde_json::Value>,
    links_available: bool,
) -> Option<AppError> {
    let media = media?;
    if channel != Channel::Whatsapp && sender.provider != ProviderKind::Twilio {
        return Some(AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "media_not_supported_on_sms",
            "Pictures and files are sent through WhatsApp, or as MMS from a Twilio number; this SMS number sends text only.",
        ));
    }
    if sender.provider != ProviderKind::Twilio {
        return None;
    }
    if !links_available {
        return Some(AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "public_url_required",
            "Twilio fetches files to send from openline's public address, and none is configured. Ask an admin to set OPENLINE_PUBLIC_URL to the https address Twilio can reach.",
        ));
    }
    let content_type = media
        .get("content_type")
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    if content_type.eq_ignore_ascii_case("image/webp") {
        return Some(AppError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "media_type_unsupported",
            "Stickers (WebP) cannot be sent through Twilio. Send a JPEG or PNG picture instead.",
        ));
    }
    let size = media.get("size_bytes").and_then(serde_json::Value::as_i64).unwrap_or(0);
    if channel == Channel::Sms && size > MMS_MAX_BYTES {
        return Some(AppError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "media_too_large_for_mms",
            format!(
                "The file has {:.1} MB; an MMS carries at most 5 MB. Send a smaller file.",
                size as f64 / (1024.0 * 1024.0)
            ),
        ));
    }
    None
}

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
        // Only a template WhatsApp approved is sent (its status may have changed since it was queued).
        Ok(record) if !record.template.status.is_approved() => Ok(None),
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

/// WhatsApp's review of the Content template `content_sid`, asked of Twilio's Content API
/// (`GET /v1/Content/{Sid}/ApprovalRequests`) when a template is registered: only an approved one is
/// sent. A SID the account does not hold is refused (422 `content_sid_unknown`); Twilio out of reach
/// is 502 `provider_unavailable` (nothing is registered, so the admin can try again).
pub async fn content_status(
    st: &AppState,
    content_sid: &str,
) -> Result<openline_domain::templates::TemplateStatus, AppError> {
    use openline_channels::twilio::ContentApproval;
    use openline_domain::templates::TemplateStatus;
    let Some(twilio) = &st.twilio else {
        return Err(AppError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "twilio_not_configured",
            "Twilio is not configured (OPENLINE_TWILIO_ACCOUNT_SID), so the template's approval cannot be checked. Tell an admin.",
        ));
    };
    match twilio.content_approval(content_sid).await {
        Ok(ContentApproval::Approved) => Ok(TemplateStatus::Approved),
        Ok(ContentApproval::Pending(_)) => Ok(TemplateStatus::Pending),
        Ok(ContentApproval::Refused { status, reason }) => Ok(match status.as_str() {
            "paused" => TemplateStatus::Paused,
            "disabled" => TemplateStatus::Disabled,
            _ => TemplateStatus::Rejected {
                reason: reason.unwrap_or_else(|| "Rejected by WhatsApp (Twilio gave no reason).".into()),
            },
        }),
        Err(e) if e.http_status == Some(404) => Err(AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "content_sid_unknown",
            format!("Twilio has no Content template {content_sid} in this account. Check the SID in Twilio's Content Template Builder."),
        )),
        Err(e) => Err(AppError::new(
            StatusCode::BAD_GATEWAY,
            "provider_unavailable",
            format!("Twilio's Content API could not be asked about the template's approval: {} Try again.", e.message),
        )),
    }
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
    links: &Links,
) -> Result<TwilioMessage, String> {
    let status_callback = links.status_callback.as_str();
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
                return Err("The template has no approved Twilio content SID (HX…), so Twilio cannot send it. Tell an admin to register the template's content SID once WhatsApp approved it.".into());
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
        MessageKind::Image | MessageKind::Video | MessageKind::Audio | MessageKind::Document => {
            let Some(media_id) = message
                .media
                .as_ref()
                .and_then(|m| m.get("media_id"))
                .and_then(|v| v.as_str())
            else {
                return Err("The message has no file to send.".into());
            };
            let Some(url) = links.media(media_id) else {
                return Err("openline has no public URL configured (OPENLINE_PUBLIC_URL), so Twilio cannot fetch the file. Tell an admin.".into());
            };
            Ok(TwilioMessage {
                from,
                messaging_service_sid: service,
                to,
                body: message.body.clone().filter(|b| !b.trim().is_empty()),
                media_urls: vec![url],
                content_sid: None,
                content_variables: None,
                status_callback: callback,
            })
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

    fn links(callback: &str) -> Links {
        let mut config = Config {
            public_url: Some("https://openline.example.com".into()),
            ..Config::default()
        };
        config.twilio.auth_token = crate::config::Secret::new("token");
        Links::new(callback.to_owned(), std::sync::Arc::new(config), 1_700_000_000_000)
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
            &links("https://x/webhooks/twilio"),
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
            &links("https://x"),
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
            &links("u"),
        );
        assert!(no_sid.unwrap_err().contains("content SID"));
        let with_header = json!({"name": "t", "language": "en", "template_id": "tpl_1", "body_parameters": [],
            "header_image_link": "https://x/y.png"});
        let header = request(
            &s,
            &message(MessageKind::Template, None, Some(with_header)),
            "+4477",
            Some(CONTENT),
            &links("u"),
        );
        assert!(header.unwrap_err().contains("header image"));
        let image = request(&s, &message(MessageKind::Image, None, None), "+4477", None, &links("u"));
        assert!(image.unwrap_err().contains("no file"));
        let sticker = request(
            &s,
            &message(MessageKind::Sticker, None, None),
            "+4477",
            None,
            &links("u"),
        );
        assert!(sticker.unwrap_err().contains("cannot send sticker"));
        assert!(is_content_sid(CONTENT));
        assert!(!is_content_sid("HX1"));
        assert!(!is_content_sid("123456789012345"));
    }

    #[test]
    fn a_picture_is_a_signed_public_media_url_with_its_caption_as_body() {
        let mut m = message(MessageKind::Image, Some("Your card"), None);
        m.media = Some(json!({"media_id": "med_1", "content_type": "image/png", "size_bytes": 10}));
        let l = links("https://openline.example.com/webhooks/twilio");
        let r = request(&sender(Channel::Sms, None), &m, "+447700900004", None, &l).unwrap();
        let params = form(&r);
        assert!(params.contains(&("Body", "Your card".into())));
        let urls: Vec<&String> = params
            .iter()
            .filter(|(n, _)| *n == "MediaUrl")
            .map(|(_, v)| v)
            .collect();
        assert_eq!(urls.len(), 1);
        let url = url::Url::parse(urls[0]).unwrap();
        assert_eq!(url.path(), "/media/public/med_1");
        let q: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
        assert_eq!(
            crate::media_links::check(&l.config, "med_1", &q["exp"], &q["sig"], l.now),
            Ok(())
        );
        // Every parameter is one Twilio's spec declares for creating a message.
        let spec_path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../../shared/fixtures/twilio/twilio_api_v2010.json");
        let spec: serde_json::Value = serde_json::from_slice(&std::fs::read(spec_path).unwrap()).unwrap();
        let declared = spec["paths"]["/2010-04-01/Accounts/{AccountSid}/Messages.json"]["post"]["requestBody"]
            ["content"]["application/x-www-form-urlencoded"]["schema"]["properties"]
            .as_object()
            .unwrap()
            .clone();
        for (name, _) in &params {
            assert!(declared.contains_key(*name), "{name} is not in Twilio's spec");
        }
        assert_eq!(declared["MediaUrl"]["type"], "array");
        // A file without a caption sends no Body; without a public URL nothing is sent.
        m.body = None;
        let r = request(&sender(Channel::Whatsapp, None), &m, "+447700900004", None, &l).unwrap();
        assert!(!form(&r).iter().any(|(n, _)| *n == "Body"));
        assert!(form(&r).contains(&("To", "whatsapp:+447700900004".into())));
        let no_public = Links::new("u".into(), std::sync::Arc::new(Config::default()), 0);
        let e = request(&sender(Channel::Sms, None), &m, "+447700900004", None, &no_public).unwrap_err();
        assert!(e.contains("public URL"), "{e}");
    }

    #[test]
    fn files_twilio_cannot_carry_are_refused_before_anything_is_stored() {
        let code = |e: Option<AppError>| e.map(|e| e.code);
        let png = |size: i64| json!({"media_id": "med_1", "content_type": "image/png", "size_bytes": size});
        let twilio_sms = sender(Channel::Sms, None);
        let mut meta = sender(Channel::Whatsapp, None);
        meta.provider = ProviderKind::CloudApi;
        assert_eq!(code(media_refusal(&twilio_sms, Channel::Sms, None, false)), None);
        assert_eq!(
            code(media_refusal(&twilio_sms, Channel::Sms, Some(&png(1000)), true)),
            None
        );
        assert_eq!(
            code(media_refusal(
                &twilio_sms,
                Channel::Sms,
                Some(&png(MMS_MAX_BYTES + 1)),
                true
            )),
            Some("media_too_large_for_mms")
        );
        // WhatsApp through Twilio keeps Meta's limits (checked with the upload), not MMS's.
        let twilio_wa = sender(Channel::Whatsapp, None);
        assert_eq!(
            code(media_refusal(
                &twilio_wa,
                Channel::Whatsapp,
                Some(&png(MMS_MAX_BYTES + 1)),
                true
            )),
            None
        );
        assert_eq!(
            code(media_refusal(&twilio_wa, Channel::Whatsapp, Some(&png(10)), false)),
            Some("public_url_required")
        );
        let webp = json!({"media_id": "med_1", "content_type": "image/webp", "size_bytes": 10});
        assert_eq!(
            code(media_refusal(&twilio_wa, Channel::Whatsapp, Some(&webp), true)),
            Some("media_type_unsupported")
        );
        assert_eq!(
            code(media_refusal(&meta, Channel::Whatsapp, Some(&png(10)), false)),
            None
        );
        let mut meta_sms = sender(Channel::Sms, None);
        meta_sms.provider = ProviderKind::CloudApi;
        assert_eq!(
            code(media_refusal(&meta_sms, Channel::Sms, Some(&png(10)), true)),
            Some("media_not_supported_on_sms")
        );
    }
}
