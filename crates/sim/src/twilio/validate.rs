//! Reading the form parameters of a Messages create request into a [`TwilioSend`], refusing what
//! Twilio refuses with its codes:
//!
//! | code  | when |
//! |-------|------|
//! | 21604 | no `To` |
//! | 21211 | `To` is not an E.164 number (optionally `whatsapp:`-prefixed) |
//! | 21603 | neither `From` nor `MessagingServiceSid` |
//! | 21606 | `From` is not one of the SMS numbers, nor `whatsapp:` + a WhatsApp business number |
//! | 21910 | `From` and `To` are not on the same channel (one `whatsapp:`, the other not) |
//! | 21602 | no `Body`, `MediaUrl` or `ContentSid` |
//! | 21617 | `Body` over 1600 characters |
//! | 21654 | `ContentVariables` without a `ContentSid` |
//! | 21655 | `ContentSid` is not `HX` + 32 hex digits, or not a Content template of this account |
//! | 21656 | `ContentVariables` is not a JSON object of non-empty values |
//! | 21609 | `StatusCallback` is not an http(s) URL |
//! | 21620 | a `MediaUrl` is not an http(s) URL, or more than 10 are given |
//!
//! A `ContentVariables` whose count does not match the template's placeholders is accepted and then
//! fails with 63028, as Twilio reports it (see `lifecycle`).

use super::{TwilioError, WHATSAPP_PREFIX};
use crate::state::MessageChannel;
use crate::{SimBusinessNumber, SimConfig, SimTwilioContent};
use openline_domain::PhoneNumber;

/// Twilio's limit on a message body (concatenated SMS segments, or a WhatsApp text).
pub const MAX_BODY_CHARS: usize = 1600;
/// Twilio's limit on the `MediaUrl`s of one message.
pub const MAX_MEDIA: usize = 10;

/// A create request that Twilio would accept.
#[derive(Debug, Clone)]
pub(crate) struct TwilioSend {
    /// `To` as given: `+447700900001` or `whatsapp:+447700900001`.
    pub to: String,
    pub recipient: PhoneNumber,
    /// The sender address: `+15550002000` or `whatsapp:+15550001000` (chosen from the pool when a
    /// Messaging Service was named).
    pub from: String,
    pub channel: MessageChannel,
    /// The WhatsApp business number sending (WhatsApp only).
    pub business: Option<SimBusinessNumber>,
    /// The sender's digits, as conversation entries name the business number.
    pub business_digits: String,
    pub messaging_service_sid: Option<String>,
    pub body: Option<String>,
    pub media_urls: Vec<String>,
    pub content_sid: Option<String>,
    pub content_variables: Option<String>,
    /// The Content template `ContentSid` names, and the values of its variables in order of their
    /// number (`"1"`, `"2"`, …).
    pub content: Option<(SimTwilioContent, Vec<String>)>,
    pub status_callback: Option<String>,
}

fn first<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
}

fn non_blank<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    first(params, name).map(str::trim).filter(|v| !v.is_empty())
}

/// `(true, number)` for `whatsapp:number`, `(false, address)` otherwise.
fn split_whatsapp(address: &str) -> (bool, &str) {
    match address.get(..WHATSAPP_PREFIX.len()) {
        Some(head) if head.eq_ignore_ascii_case(WHATSAPP_PREFIX) => (true, &address[WHATSAPP_PREFIX.len()..]),
        _ => (false, address),
    }
}

fn not_a_sender(from: &str) -> TwilioError {
    TwilioError::bad_request(
        21606,
        format!("The From phone number {from} is not a valid, SMS-capable inbound phone number or short code for your account."),
    )
}

pub(crate) fn validate(config: &SimConfig, params: &[(String, String)]) -> Result<TwilioSend, TwilioError> {
    let to =
        non_blank(params, "To").ok_or_else(|| TwilioError::bad_request(21604, "A 'To' phone number is required."))?;
    let (to_whatsapp, to_number) = split_whatsapp(to);
    let recipient = Some(to_number.trim())
        .filter(|n| n.starts_with('+'))
        .and_then(|n| PhoneNumber::parse(n).ok())
        .ok_or_else(|| TwilioError::bad_request(21211, format!("Invalid 'To' Phone Number: {to}")))?;

    let messaging_service_sid = non_blank(params, "MessagingServiceSid").map(str::to_owned);
    let from = match (non_blank(params, "From"), &messaging_service_sid) {
        (Some(from), _) => from.to_owned(),
        // A Messaging Service picks a sender of the right channel from its pool: here, the first.
        (None, Some(_)) if to_whatsapp => config
            .business_numbers
            .first()
            .map(|b| format!("{WHATSAPP_PREFIX}+{}", b.display_phone_number))
            .ok_or_else(|| not_a_sender("(messaging service)"))?,
        (None, Some(_)) => config
            .sms_numbers
            .first()
            .cloned()
            .ok_or_else(|| not_a_sender("(messaging service)"))?,
        (None, None) => return Err(TwilioError::bad_request(21603, "A 'From' phone number is required.")),
    };
    let (from_whatsapp, from_number) = split_whatsapp(&from);
    let from_digits = from_number.trim().strip_prefix('+').unwrap_or_default();
    let (channel, business, business_digits) = if from_whatsapp {
        let business = config
            .business_numbers
            .iter()
            .find(|b| !from_digits.is_empty() && b.display_phone_number == from_digits)
            .cloned()
            .ok_or_else(|| not_a_sender(&from))?;
        let digits = business.display_phone_number.clone();
        (MessageChannel::Whatsapp, Some(business), digits)
    } else {
        let number = config
            .sms_number(from_number)
            .filter(|_| !from_digits.is_empty())
            .ok_or_else(|| not_a_sender(&from))?;
        (
            MessageChannel::Sms,
            None,
            number.trim().trim_start_matches('+').to_owned(),
        )
    };
    if from_whatsapp != to_whatsapp {
        return Err(TwilioError::bad_request(
            21910,
            "Invalid From and To pair. From and To should be of the same channel.",
        ));
    }

    let body = first(params, "Body")
        .filter(|b| !b.trim().is_empty())
        .map(str::to_owned);
    let media_urls: Vec<String> = params
        .iter()
        .filter(|(n, v)| n == "MediaUrl" && !v.trim().is_empty())
        .map(|(_, v)| v.trim().to_owned())
        .collect();
    if media_urls.len() > MAX_MEDIA
        || media_urls.iter().any(|u| {
            let lower = u.to_ascii_lowercase();
            !(lower.starts_with("http://") || lower.starts_with("https://"))
        })
    {
        return Err(TwilioError::bad_request(21620, "Invalid media URL(s)."));
    }
    let content_sid = non_blank(params, "ContentSid").map(str::to_owned);
    let content_variables = non_blank(params, "ContentVariables").map(str::to_owned);
    if content_variables.is_some() && content_sid.is_none() {
        return Err(TwilioError::bad_request(
            21654,
            "A ContentSid must be specified if ContentVariables are provided in the request.",
        ));
    }
    let content = match &content_sid {
        Some(sid) => Some(content_of(config, sid, content_variables.as_deref())?),
        None => None,
    };
    if body.is_none() && media_urls.is_empty() && content_sid.is_none() {
        return Err(TwilioError::bad_request(21602, "Message body is required."));
    }
    if body.as_deref().is_some_and(|b| b.chars().count() > MAX_BODY_CHARS) {
        return Err(TwilioError::bad_request(
            21617,
            "The concatenated message body exceeds the 1600 character limit.",
        ));
    }
    let status_callback = non_blank(params, "StatusCallback").map(str::to_owned);
    if let Some(url) = &status_callback {
        let lower = url.to_ascii_lowercase();
        if !(lower.starts_with("http://") || lower.starts_with("https://")) {
            return Err(TwilioError::bad_request(
                21609,
                "The StatusCallback URL is not a valid URL.",
            ));
        }
    }
    Ok(TwilioSend {
        to: to.to_owned(),
        recipient,
        from,
        channel,
        business,
        business_digits,
        messaging_service_sid,
        body,
        media_urls,
        content_sid,
        content_variables,
        content,
        status_callback,
    })
}

/// Whether `sid` has the shape of a Content SID: `HX` and 32 hex digits.
fn is_content_sid(sid: &str) -> bool {
    sid.strip_prefix("HX")
        .is_some_and(|hex| hex.len() == 32 && hex.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The Content template `sid` names, with its variables read from `ContentVariables`: a JSON object
/// (sent as a string) whose values are non-empty strings or numbers, ordered by their numeric keys.
fn content_of(
    config: &SimConfig,
    sid: &str,
    variables: Option<&str>,
) -> Result<(SimTwilioContent, Vec<String>), TwilioError> {
    let invalid_sid = || TwilioError::bad_request(21655, "The ContentSid is Invalid.");
    if !is_content_sid(sid) {
        return Err(invalid_sid());
    }
    let content = config
        .twilio_contents
        .iter()
        .find(|c| c.sid == sid)
        .cloned()
        .ok_or_else(invalid_sid)?;
    let invalid_variables = || TwilioError::bad_request(21656, "The ContentVariables Parameter is invalid.");
    let values = match variables {
        None => Vec::new(),
        Some(text) => {
            let Ok(serde_json::Value::Object(map)) = serde_json::from_str::<serde_json::Value>(text) else {
                return Err(invalid_variables());
            };
            let mut pairs = Vec::with_capacity(map.len());
            for (key, value) in map {
                let value = match value {
                    serde_json::Value::String(s) if !s.trim().is_empty() => s,
                    serde_json::Value::Number(n) => n.to_string(),
                    _ => return Err(invalid_variables()),
                };
                let key = key.trim();
                if key.is_empty() {
                    return Err(invalid_variables());
                }
                pairs.push((key.parse::<u64>().unwrap_or(u64::MAX), value));
            }
            pairs.sort_by_key(|(k, _)| *k);
            pairs.into_iter().map(|(_, v)| v).collect()
        }
    };
    Ok((content, values))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn params(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    fn code(list: &[(&str, &str)]) -> u32 {
        validate(&SimConfig::default(), &params(list)).unwrap_err().code
    }

    #[test]
    fn twilio_refuses_what_it_refuses_with_its_codes() {
        let to = ("To", "+447700900001");
        let from = ("From", "+15550002000");
        let body = ("Body", "hi");
        assert_eq!(code(&[from, body]), 21604);
        assert_eq!(code(&[("To", "447700900001"), from, body]), 21211);
        assert_eq!(code(&[("To", "whatsapp:12ab"), from, body]), 21211);
        assert_eq!(code(&[to, body]), 21603);
        assert_eq!(code(&[to, ("From", "+15550009999"), body]), 21606);
        assert_eq!(code(&[to, ("From", "+15550001000"), body]), 21606);
        assert_eq!(code(&[to, ("From", "whatsapp:+15550002000"), body]), 21606);
        assert_eq!(code(&[("To", "whatsapp:+447700900001"), from, body]), 21910);
        assert_eq!(code(&[to, from, ("Body", "  ")]), 21602);
        assert_eq!(code(&[to, from, ("Body", &"x".repeat(1601))]), 21617);
        assert_eq!(code(&[to, from, body, ("StatusCallback", "ftp://x")]), 21609);
        assert_eq!(code(&[to, from, ("MediaUrl", "file:///etc/passwd")]), 21620);
        let eleven: Vec<(&str, &str)> = [to, from]
            .into_iter()
            .chain(std::iter::repeat_n(("MediaUrl", "https://m/1.png"), 11))
            .collect();
        assert_eq!(code(&eleven), 21620);
    }

    #[test]
    fn content_templates_are_checked_as_twilio_checks_them() {
        let to = ("To", "whatsapp:+447700900001");
        let from = ("From", "whatsapp:+15550001000");
        let reminder = ("ContentSid", "HXb5b62575e6e4ff6129ad7c8efe1f983e");
        assert_eq!(
            code(&[to, from, ("Body", "hi"), ("ContentVariables", r#"{"1":"Ada"}"#)]),
            21654
        );
        assert_eq!(code(&[to, from, ("ContentSid", "HX1")]), 21655);
        assert_eq!(
            code(&[to, from, ("ContentSid", "HXffffffffffffffffffffffffffffffff")]),
            21655
        );
        for bad in [
            "not json",
            r#"["Ada"]"#,
            r#""{\"1\":\"Ada\"}""#,
            r#"{"1":"Ada","2":""}"#,
            r#"{"1":"Ada","2":null}"#,
            r#"{"1":{"x":1}}"#,
        ] {
            assert_eq!(code(&[to, from, reminder, ("ContentVariables", bad)]), 21656, "{bad}");
        }
        let ok = validate(
            &SimConfig::default(),
            &params(&[to, from, reminder, ("ContentVariables", r#"{"2":"Friday","1":"Ada"}"#)]),
        )
        .unwrap();
        let (content, values) = ok.content.unwrap();
        assert_eq!(values, ["Ada", "Friday"]);
        assert_eq!(content.render(&values), "Hello Ada, your appointment is on Friday.");
        assert_eq!(content.variable_count(), 2);
    }

    #[test]
    fn sms_whatsapp_and_messaging_services_are_read() {
        let c = SimConfig::default();
        let sms = validate(
            &c,
            &params(&[("To", "+447700900004"), ("From", "+15550002000"), ("Body", "hi")]),
        )
        .unwrap();
        assert_eq!(
            (sms.channel, sms.business_digits.as_str()),
            (MessageChannel::Sms, "15550002000")
        );
        let wa = validate(
            &c,
            &params(&[
                ("To", "whatsapp:+447700900001"),
                ("From", "whatsapp:+15550001000"),
                ("ContentSid", "HX0123456789abcdef0123456789abcdef"),
                ("ContentVariables", "{\"1\":\"Ada\"}"),
            ]),
        )
        .unwrap();
        assert_eq!(wa.channel, MessageChannel::Whatsapp);
        assert_eq!(wa.recipient.digits(), "447700900001");
        assert_eq!(wa.content_variables.as_deref(), Some("{\"1\":\"Ada\"}"));
        let pooled = validate(
            &c,
            &params(&[
                ("To", "+447700900001"),
                ("MessagingServiceSid", "MG1"),
                ("MediaUrl", "https://m/1.png"),
            ]),
        )
        .unwrap();
        assert_eq!(pooled.from, "+15550002000");
        assert_eq!(pooled.media_urls, ["https://m/1.png"]);
    }
}
