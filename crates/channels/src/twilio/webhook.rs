//! Twilio Messaging webhooks: a form-encoded body turned into the event openline acts on.
//!
//! Twilio sends two kinds of request to us, both `application/x-www-form-urlencoded`, both naming
//! the message by `MessageSid`: the incoming-message webhook (a contact wrote: `Body`, `NumMedia`,
//! `MediaUrl{n}`, and for WhatsApp `ProfileName`, `WaId`, `ButtonPayload`) and the status callback
//! of a message we sent (`MessageStatus`, and `ErrorCode` when it failed). [`classify`] tells them
//! apart and reads each into a typed event; every event keeps the parameters exactly as received in
//! `raw`, because Twilio adds parameters without notice and the archive should hold them all.
//!
//! Order of work in the server: [`parse_form`] the raw body, verify the signature over the parsed
//! parameters (see [`super::verify_twilio_signature`]), then [`classify`]. Neither function panics
//! on any input; the only errors are a body that is not UTF-8 form data, a request that names no
//! message, and one that is neither an incoming message nor a status.

use openline_domain::{Channel, DeliveryStatus, PhoneNumber};

/// The address prefix Twilio puts on WhatsApp senders and recipients (`whatsapp:+447700900004`).
const WHATSAPP_PREFIX: &str = "whatsapp:";

/// One thing that happened, as told by a Twilio webhook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TwilioEvent {
    /// A contact wrote to us, over WhatsApp or SMS.
    Inbound(TwilioInbound),
    /// One of our messages moved on (queued, sent, delivered, read, failed, …).
    Status(TwilioStatus),
}

/// A message a contact sent to one of our Twilio numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwilioInbound {
    /// Twilio's id for the message (`SM…`, `MM…` with media); unique, so a redelivered webhook is a
    /// no-op.
    pub message_sid: String,
    /// The Twilio account the message arrived on; the server checks it is the sender's.
    pub account_sid: String,
    /// The contact's address as Twilio gave it: `whatsapp:+447700900004` or `+447700900004`.
    pub from: String,
    /// Our number the message was sent to, in the same form.
    pub to: String,
    /// WhatsApp if `From` carries the `whatsapp:` prefix, SMS otherwise.
    pub channel: Channel,
    /// The contact's number, when `From` (without its prefix) is an E.164 number; `None` for short
    /// codes, alphanumeric senders and anything else that is not a phone number.
    pub phone: Option<PhoneNumber>,
    /// The contact's WhatsApp profile name (`ProfileName`), when given.
    pub profile_name: Option<String>,
    /// The text, when there is any (`Body`; an empty body, as on a media-only message, is `None`).
    pub body: Option<String>,
    /// Attached media as (URL, content type), in Twilio's numbering order (`MediaUrl0`, …). The
    /// URLs need the account's credentials to download.
    pub media: Vec<(String, Option<String>)>,
    /// The payload of a quick-reply button the contact tapped (`ButtonPayload`).
    pub button_payload: Option<String>,
    /// The Messaging Service the number belongs to, when it belongs to one.
    pub messaging_service_sid: Option<String>,
    /// Every parameter exactly as received, duplicates and order kept.
    pub raw: Vec<(String, String)>,
}

/// A delivery status for a message we sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwilioStatus {
    /// The id Twilio gave the message when it accepted it (`SM…`).
    pub message_sid: String,
    /// The Twilio account the message was sent from.
    pub account_sid: String,
    /// The status in openline's terms: `queued` and `accepted` (Twilio has the message) are
    /// Accepted, `sent`, `delivered` and `read` map to themselves, `failed` and `undelivered` are
    /// Failed. `None` for statuses that do not move delivery forward (`sending`, `scheduled`,
    /// `canceled`, `partially_delivered`, anything new); `status_text` still says what it was.
    pub status: Option<DeliveryStatus>,
    /// The status exactly as Twilio spelled it (`MessageStatus`).
    pub status_text: String,
    /// Why it failed (`ErrorCode`), to look up with
    /// `openline_domain::provider_errors::explain_twilio_error`.
    pub error_code: Option<i64>,
    /// Who the message was for, as Twilio gave it.
    pub to: Option<String>,
    /// Our number it was sent from, as Twilio gave it.
    pub from: Option<String>,
    /// The Messaging Service it was sent through, if any.
    pub messaging_service_sid: Option<String>,
    /// Every parameter exactly as received, duplicates and order kept.
    pub raw: Vec<(String, String)>,
}

/// Why a Twilio webhook could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TwilioWebhookError {
    /// The body, once percent-decoded, is not UTF-8. Twilio always sends UTF-8; refusing beats
    /// storing text with replacement characters in it.
    #[error("the webhook body is not UTF-8 form data")]
    NotUtf8,
    /// No `MessageSid` (nor the legacy `SmsSid`): this is not a Messaging webhook, or it is damaged.
    #[error("the webhook names no message (MessageSid is missing)")]
    MissingMessageSid,
    /// A message is named, but the request has neither a `MessageStatus` nor the `Body`/`NumMedia`
    /// of an incoming message.
    #[error("the webhook is neither an incoming message nor a status callback")]
    Unrecognized,
}

/// Reads a form-encoded body into its parameters, keeping duplicates and their order.
///
/// `+` is a space and `%XX` a byte, as in every form body; a `%` not followed by two hex digits is
/// kept as it is (as browsers and Twilio's helpers do); a pair without `=` has an empty value;
/// empty pairs (`a=1&&b=2`) are skipped. The result is exactly what the signature covers.
pub fn parse_form(raw_body: &[u8]) -> Result<Vec<(String, String)>, TwilioWebhookError> {
    raw_body
        .split(|b| *b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = match pair.iter().position(|b| *b == b'=') {
                Some(eq) => (&pair[..eq], &pair[eq + 1..]),
                None => (pair, &[][..]),
            };
            Ok((form_decode(name)?, form_decode(value)?))
        })
        .collect()
}

/// Decodes one form-encoded name or value.
fn form_decode(input: &[u8]) -> Result<String, TwilioWebhookError> {
    let mut bytes = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => bytes.push(b' '),
            b'%' => match (
                input.get(i + 1).and_then(hex_value),
                input.get(i + 2).and_then(hex_value),
            ) {
                (Some(high), Some(low)) => {
                    bytes.push(high << 4 | low);
                    i += 2;
                }
                _ => bytes.push(b'%'),
            },
            other => bytes.push(other),
        }
        i += 1;
    }
    String::from_utf8(bytes).map_err(|_| TwilioWebhookError::NotUtf8)
}

fn hex_value(digit: &u8) -> Option<u8> {
    (*digit as char).to_digit(16).and_then(|d| u8::try_from(d).ok())
}

/// Tells an incoming message from a status callback and reads it.
///
/// A request with a `MessageStatus` other than `received`/`receiving` is a status callback; one
/// with a `Body` or `NumMedia` (and no such status) is an incoming message. `MessageSid` names the
/// message in both; the legacy `SmsSid`, which Twilio still sends beside it, is accepted when it is
/// missing. Parameters we do not read are kept in `raw`.
pub fn classify(params: &[(String, String)]) -> Result<TwilioEvent, TwilioWebhookError> {
    let message_sid = non_empty(params, "MessageSid")
        .or_else(|| non_empty(params, "SmsSid"))
        .ok_or(TwilioWebhookError::MissingMessageSid)?;
    let account_sid = first(params, "AccountSid").unwrap_or_default().to_owned();
    let messaging_service_sid = non_empty(params, "MessagingServiceSid");
    let message_status = non_empty(params, "MessageStatus");
    let is_inbound_status = |s: &str| s.eq_ignore_ascii_case("received") || s.eq_ignore_ascii_case("receiving");

    if let Some(status_text) = message_status.filter(|s| !is_inbound_status(s)) {
        return Ok(TwilioEvent::Status(TwilioStatus {
            message_sid,
            account_sid,
            status: delivery_status(&status_text),
            status_text,
            error_code: first(params, "ErrorCode").and_then(|c| c.trim().parse().ok()),
            to: non_empty(params, "To"),
            from: non_empty(params, "From"),
            messaging_service_sid,
            raw: params.to_vec(),
        }));
    }
    if first(params, "Body").is_none() && first(params, "NumMedia").is_none() {
        return Err(TwilioWebhookError::Unrecognized);
    }
    let from = first(params, "From").unwrap_or_default().to_owned();
    let (channel, address) = match strip_prefix_ignore_case(&from, WHATSAPP_PREFIX) {
        Some(number) => (Channel::Whatsapp, number),
        None => (Channel::Sms, from.as_str()),
    };
    Ok(TwilioEvent::Inbound(TwilioInbound {
        message_sid,
        account_sid,
        phone: PhoneNumber::parse(address).ok(),
        channel,
        to: first(params, "To").unwrap_or_default().to_owned(),
        profile_name: non_empty(params, "ProfileName"),
        body: non_empty(params, "Body"),
        media: media(params),
        button_payload: non_empty(params, "ButtonPayload"),
        messaging_service_sid,
        raw: params.to_vec(),
        from,
    }))
}

/// Twilio's status words in openline's terms; see [`TwilioStatus::status`].
fn delivery_status(status_text: &str) -> Option<DeliveryStatus> {
    match status_text.to_ascii_lowercase().as_str() {
        "queued" | "accepted" => Some(DeliveryStatus::Accepted),
        "sent" => Some(DeliveryStatus::Sent),
        "delivered" => Some(DeliveryStatus::Delivered),
        "read" => Some(DeliveryStatus::Read),
        "failed" | "undelivered" => Some(DeliveryStatus::Failed),
        _ => None,
    }
}

/// The `MediaUrl{n}` parameters with their `MediaContentType{n}`, ordered by `n`. Read from the
/// parameters themselves rather than counted up to `NumMedia`, so a wrong or missing count neither
/// loses media nor invents it.
fn media(params: &[(String, String)]) -> Vec<(String, Option<String>)> {
    let mut numbered: Vec<(u32, &str)> = params
        .iter()
        .filter_map(|(name, value)| {
            let index = name.strip_prefix("MediaUrl")?;
            // Only plain decimal indices: `MediaUrl0`, never `MediaUrl+0` or `MediaUrl`.
            if index.is_empty() || !index.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some((index.parse().ok()?, value.as_str()))
        })
        .filter(|(_, url)| !url.trim().is_empty())
        .collect();
    numbered.sort_by_key(|(index, _)| *index);
    numbered.dedup_by_key(|(index, _)| *index);
    numbered
        .into_iter()
        .map(|(index, url)| (url.to_owned(), non_empty(params, &format!("MediaContentType{index}"))))
        .collect()
}

/// The first value of `name`, if the parameter is present (even empty).
fn first<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

/// The first value of `name`, if present and not blank.
fn non_empty(params: &[(String, String)], name: &str) -> Option<String> {
    first(params, name).filter(|v| !v.trim().is_empty()).map(str::to_owned)
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix).then(|| &s[prefix.len()..])
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn form_bodies_decode_plus_percent_and_bare_names_and_keep_duplicates_in_order() {
        let parsed = parse_form(b"Body=Hi+there%21%20%F0%9F%91%8D&MediaUrl=a&&flag&MediaUrl=b&pct=100%&x=%zz").unwrap();
        assert_eq!(
            parsed,
            pairs(&[
                ("Body", "Hi there! \u{1F44D}"),
                ("MediaUrl", "a"),
                ("flag", ""),
                ("MediaUrl", "b"),
                ("pct", "100%"),
                ("x", "%zz"),
            ])
        );
        assert_eq!(parse_form(b"").unwrap(), vec![]);
        assert_eq!(parse_form(b"Body=%FF"), Err(TwilioWebhookError::NotUtf8));
        assert_eq!(parse_form(b"Body=\xff"), Err(TwilioWebhookError::NotUtf8));
    }

    #[test]
    fn media_follows_the_numbering_not_the_count_and_skips_blank_urls() {
        let params = pairs(&[
            ("NumMedia", "1"),
            ("MediaUrl1", "https://m/1"),
            ("MediaUrl0", "https://m/0"),
            ("MediaContentType0", "image/jpeg"),
            ("MediaUrl2", " "),
            ("MediaUrlX", "https://m/x"),
        ]);
        assert_eq!(
            media(&params),
            vec![
                ("https://m/0".to_owned(), Some("image/jpeg".to_owned())),
                ("https://m/1".to_owned(), None)
            ]
        );
    }

    #[test]
    fn every_status_in_twilios_enum_has_a_decision() {
        use DeliveryStatus::*;
        let expected = [
            ("queued", Some(Accepted)),
            ("accepted", Some(Accepted)),
            ("sending", None),
            ("sent", Some(Sent)),
            ("delivered", Some(Delivered)),
            ("read", Some(Read)),
            ("failed", Some(Failed)),
            ("undelivered", Some(Failed)),
            ("scheduled", None),
            ("canceled", None),
            ("partially_delivered", None),
            ("DELIVERED", Some(Delivered)),
        ];
        for (word, status) in expected {
            assert_eq!(delivery_status(word), status, "{word}");
        }
    }
}
