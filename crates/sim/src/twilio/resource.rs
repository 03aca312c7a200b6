//! Twilio's Message resource as the create call answers it, and the two computed values in it:
//! RFC 2822 dates (`Mon, 16 Aug 2010 03:45:01 +0000`) and the number of SMS segments a body takes.

use super::validate::TwilioSend;
use super::API_VERSION;
use crate::state::MessageChannel;
use openline_domain::utc::civil_from_days;
use openline_domain::Millis;
use serde_json::{json, Value};

/// The GSM 03.38 basic character set: one septet each.
const GSM7_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// The GSM 03.38 extension table: an escape and the character, two septets each.
const GSM7_EXTENSION: &str = "^{}\\[~]|€\u{c}";

/// How many SMS segments `text` takes: GSM-7 when every character is in the GSM alphabet (160
/// septets in one segment, 153 per segment when concatenated), UCS-2 otherwise (70 UTF-16 units,
/// 67 when concatenated). An empty body (media only) is one message.
pub fn sms_segments(text: &str) -> usize {
    let mut septets = 0usize;
    let mut gsm = true;
    for c in text.chars() {
        if GSM7_BASIC.contains(c) {
            septets += 1;
        } else if GSM7_EXTENSION.contains(c) {
            septets += 2;
        } else {
            gsm = false;
            break;
        }
    }
    let (units, single, per_part) = if gsm {
        (septets, 160, 153)
    } else {
        (text.encode_utf16().count(), 70, 67)
    };
    if units <= single {
        1
    } else {
        units.div_ceil(per_part)
    }
}

/// An RFC 2822 date in GMT, as Twilio writes `date_created`: `Mon, 16 Aug 2010 03:45:01 +0000`.
pub fn rfc2822(at: Millis) -> String {
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let seconds = at.div_euclid(1000);
    let days = seconds.div_euclid(86_400);
    let second_of_day = seconds.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    // 1970-01-01 was a Thursday.
    let weekday = usize::try_from(days.rem_euclid(7))
        .ok()
        .and_then(|i| WEEKDAYS.get(i))
        .unwrap_or(&"Thu");
    let month = usize::try_from(month)
        .ok()
        .and_then(|m| MONTHS.get(m.wrapping_sub(1)))
        .unwrap_or(&"Jan");
    format!(
        "{weekday}, {day:02} {month} {year} {:02}:{:02}:{:02} +0000",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    )
}

/// The 201 body of an accepted create: Twilio's Message resource, `queued` (or `accepted` when a
/// Messaging Service will pick the sender, in which case `from` is still null).
pub(crate) fn message_resource(account_sid: &str, sid: &str, send: &TwilioSend, now: Millis) -> Value {
    let date = rfc2822(now);
    let body = send.body.clone().unwrap_or_default();
    let segments = match send.channel {
        MessageChannel::Sms => sms_segments(&body),
        MessageChannel::Whatsapp => 1,
    };
    let (status, from) = match &send.messaging_service_sid {
        Some(_) => ("accepted", Value::Null),
        None => ("queued", json!(send.from)),
    };
    let uri = format!("/{API_VERSION}/Accounts/{account_sid}/Messages/{sid}");
    json!({
        "account_sid": account_sid,
        "api_version": API_VERSION,
        "body": body,
        "date_created": date,
        "date_sent": null,
        "date_updated": date,
        "direction": "outbound-api",
        "error_code": null,
        "error_message": null,
        "from": from,
        "messaging_service_sid": send.messaging_service_sid,
        "num_media": send.media_urls.len().to_string(),
        "num_segments": segments.to_string(),
        "price": null,
        "price_unit": "USD",
        "sid": sid,
        "status": status,
        "subresource_uris": { "media": format!("{uri}/Media.json") },
        "to": send.to,
        "uri": format!("{uri}.json"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_rfc_2822_in_gmt() {
        assert_eq!(rfc2822(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        // Twilio's own example: Mon, 16 Aug 2010 03:45:01 +0000.
        assert_eq!(rfc2822(1_281_930_301_000), "Mon, 16 Aug 2010 03:45:01 +0000");
        assert_eq!(rfc2822(1_750_000_000_999), "Sun, 15 Jun 2025 15:06:40 +0000");
    }

    #[test]
    fn segments_follow_gsm_7_and_ucs_2_limits() {
        assert_eq!(sms_segments(""), 1);
        assert_eq!(sms_segments(&"a".repeat(160)), 1);
        assert_eq!(sms_segments(&"a".repeat(161)), 2);
        assert_eq!(sms_segments(&"a".repeat(306)), 2);
        assert_eq!(sms_segments(&"a".repeat(307)), 3);
        assert_eq!(sms_segments(&"€".repeat(80)), 1);
        assert_eq!(sms_segments(&"€".repeat(81)), 2);
        assert_eq!(sms_segments(&"é".repeat(160)), 1);
        assert_eq!(sms_segments(&"ś".repeat(70)), 1);
        assert_eq!(sms_segments(&"ś".repeat(71)), 2);
        assert_eq!(sms_segments("😀"), 1);
    }
}
