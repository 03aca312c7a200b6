//! What happens to a message once the fake Twilio accepted it: the decision (deliver, or fail), the
//! message in the phone's conversation, and the status callbacks to its `StatusCallback` URL.
//!
//! - SMS reaches every phone, WhatsApp user or not: `sent`, then `delivered` after
//!   `delivered_after_ms`.
//! - WhatsApp through Twilio: `sent`, `delivered`, then `read` after `read_after_ms` (not for a
//!   phone that never reads); `failed` with 63003 for a phone not on WhatsApp; `failed` with 63016
//!   for a free-form message (no `ContentSid`) outside the 24-hour window when the simulator
//!   enforces it, as Meta's rule applies through Twilio too.
//! - A Content template (`ContentSid`) whose `ContentVariables` do not match its placeholders in
//!   number: `failed` with 63028, on either channel. Otherwise the phone sees the template's body
//!   with the variables filled in.
//!
//! Each callback is form-encoded and signed with `X-Twilio-Signature` over the callback URL, and
//! goes through the phone's webhook queue (in order, retried like every webhook).

use super::resource::message_resource;
use super::validate::TwilioSend;
use super::{API_VERSION, WHATSAPP_PREFIX};
use crate::personas::PersonaBehaviour;
use crate::state::{ConversationEntry, Direction, MessageChannel, TemplateView};
use crate::{ids, Simulator};
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// A pause before the first callback, so openline has the 201 (and the SID) in hand first.
const STATUS_LAG: Duration = Duration::from_millis(50);

/// Twilio's error for a WhatsApp recipient that is not on WhatsApp ("Channel could not find To
/// address").
pub const NOT_ON_WHATSAPP: i64 = 63003;
/// Twilio's error for a free-form WhatsApp message outside the 24-hour window.
pub const OUTSIDE_WINDOW: i64 = 63016;
/// Twilio's error for `ContentVariables` that do not match the template's placeholders.
pub const WRONG_PARAMETER_COUNT: i64 = 63028;

/// What becomes of an accepted message.
#[derive(Debug, Clone, Copy)]
enum Fate {
    Fail(i64),
    Deliver { read: bool },
}

impl Simulator {
    /// Accepts a validated create request: decides its fate, records it on the phone's conversation
    /// and starts its callbacks. Returns the 201 body.
    pub(crate) fn accept_twilio_send(self: &Arc<Self>, send: TwilioSend) -> Value {
        let now = self.now();
        let sid = ids::twilio_message_sid();
        let fate = {
            let mut state = self.state();
            let wrong_count = send
                .content
                .as_ref()
                .is_some_and(|(content, values)| values.len() != content.variable_count());
            let fate = match (&send.channel, &send.business) {
                _ if wrong_count => Fate::Fail(WRONG_PARAMETER_COUNT),
                (MessageChannel::Whatsapp, Some(business)) => {
                    let behaviour = state.behaviour_of(&send.recipient);
                    if behaviour == PersonaBehaviour::NotOnWhatsapp {
                        Fate::Fail(NOT_ON_WHATSAPP)
                    } else if self.config.enforce_window
                        && send.content_sid.is_none()
                        && !state.window_open(&send.recipient, &business.phone_number_id, now)
                    {
                        Fate::Fail(OUTSIDE_WINDOW)
                    } else {
                        Fate::Deliver {
                            read: behaviour != PersonaBehaviour::NeverAnswers,
                        }
                    }
                }
                // SMS reaches every phone.
                _ => Fate::Deliver { read: false },
            };
            state.record(&send.recipient, entry(&sid, &send, now));
            fate
        };
        tracing::info!(message_sid = %sid, channel = ?send.channel, "twilio message accepted");
        let resource = message_resource(&self.config.twilio_account_sid, &sid, &send, now);
        let sim = Arc::clone(self);
        tokio::spawn(async move { sim.play_twilio_lifecycle(sid, send, fate).await });
        resource
    }

    async fn play_twilio_lifecycle(self: Arc<Self>, sid: String, send: TwilioSend, fate: Fate) {
        tokio::time::sleep(STATUS_LAG).await;
        // Twilio fetches the message's media before sending it; a URL it cannot fetch fails it.
        let fate = match fate {
            Fate::Deliver { .. } if !send.media_urls.is_empty() => {
                match self.fetch_twilio_media(&send.media_urls).await {
                    Ok(Some((media_id, mime_type))) => {
                        self.show_media(&sid, media_id, &mime_type);
                        fate
                    }
                    Ok(None) => fate,
                    Err(why) => {
                        tracing::info!(message_sid = %sid, "twilio could not fetch the media: {why}");
                        Fate::Fail(match send.channel {
                            MessageChannel::Whatsapp => super::media::WHATSAPP_MEDIA_FAILED,
                            MessageChannel::Sms => super::media::MEDIA_RETRIEVAL_FAILURE,
                        })
                    }
                }
            }
            other => other,
        };
        let read = match fate {
            Fate::Fail(code) => {
                tracing::info!(message_sid = %sid, code, "twilio message failed");
                self.state().set_status(&sid, "failed", Some(code));
                self.status_callback(&sid, &send, "failed", Some(code));
                return;
            }
            Fate::Deliver { read } => read,
        };
        self.state().set_status(&sid, "sent", None);
        self.status_callback(&sid, &send, "sent", None);
        tokio::time::sleep(Duration::from_millis(self.config.delivered_after_ms)).await;
        self.state().set_status(&sid, "delivered", None);
        self.status_callback(&sid, &send, "delivered", None);
        if !read {
            return;
        }
        tokio::time::sleep(Duration::from_millis(self.config.read_after_ms)).await;
        self.state().set_status(&sid, "read", None);
        self.status_callback(&sid, &send, "read", None);
    }

    /// The fetched file on the phone's conversation entry of message `sid`.
    fn show_media(&self, sid: &str, media_id: String, mime_type: &str) {
        let mut state = self.state();
        let Some(owner) = state.message_owner.get(sid).cloned() else {
            return;
        };
        if let Some(entry) = state
            .phones
            .get_mut(&owner)
            .and_then(|p| p.entries.iter_mut().find(|e| e.id == sid))
        {
            entry.media_id = Some(media_id);
            if entry.template.is_none() {
                entry.kind = super::media::entry_kind(mime_type).into();
            }
        }
    }

    /// Queues one signed status callback, if the message named a `StatusCallback`.
    fn status_callback(&self, sid: &str, send: &TwilioSend, status: &str, error_code: Option<i64>) {
        let Some(url) = &send.status_callback else {
            return;
        };
        let mut params: Vec<(String, String)> = vec![
            ("SmsSid".into(), sid.into()),
            ("SmsStatus".into(), status.into()),
            ("MessageStatus".into(), status.into()),
            ("To".into(), send.to.clone()),
            ("MessageSid".into(), sid.into()),
            ("AccountSid".into(), self.config.twilio_account_sid.clone()),
            ("From".into(), send.from.clone()),
            ("ApiVersion".into(), API_VERSION.into()),
        ];
        if let Some(service) = &send.messaging_service_sid {
            params.push(("MessagingServiceSid".into(), service.clone()));
        }
        if send.channel == MessageChannel::Whatsapp {
            params.push(("ChannelPrefix".into(), WHATSAPP_PREFIX.trim_end_matches(':').into()));
            params.push(("ChannelToAddress".into(), send.recipient.as_e164().to_string()));
        }
        if let Some(code) = error_code {
            params.push(("ErrorCode".into(), code.to_string()));
        }
        let (signature, settings) = self.sign_twilio_webhook(url, &params);
        // Nobody waits for callbacks; retries carry on in the background.
        drop(self.webhooks.enqueue_form(
            &twilio_queue(send.recipient.digits()),
            url,
            &format!("twilio.status.{status}"),
            &params,
            signature,
            settings,
        ));
    }
}

/// The webhook queue of a phone's Twilio traffic (apart from its Meta webhooks, which go elsewhere).
pub(crate) fn twilio_queue(digits: &str) -> String {
    format!("twilio:{digits}")
}

/// The message as the phone's conversation shows it.
fn entry(sid: &str, send: &TwilioSend, now: openline_domain::Millis) -> ConversationEntry {
    let kind = if send.content_sid.is_some() {
        "template"
    } else if send.body.is_none() {
        "media"
    } else {
        "text"
    };
    let rendered = send.content.as_ref().map(|(content, values)| content.render(values));
    let template = send.content_sid.as_ref().map(|content_sid| match &send.content {
        Some((content, values)) => TemplateView {
            name: content.friendly_name.clone(),
            language: content.language.clone(),
            parameters: values.clone(),
            body: rendered.clone(),
        },
        None => TemplateView {
            name: content_sid.clone(),
            language: String::new(),
            parameters: content_parameters(send.content_variables.as_deref()),
            body: send.body.clone(),
        },
    });
    let text = rendered.or_else(|| send.body.clone());
    ConversationEntry {
        id: sid.to_string(),
        direction: Direction::FromBusiness,
        business_number: send.business_digits.clone(),
        channel: send.channel,
        kind: kind.into(),
        text,
        template,
        buttons: Vec::new(),
        media_id: None,
        context_id: None,
        status: "queued".into(),
        error_code: None,
        timestamp_ms: now,
    }
}

/// `ContentVariables` (`{"1":"Ada","2":"Friday"}`) as an ordered list of values, by numeric key.
fn content_parameters(variables: Option<&str>) -> Vec<String> {
    let Some(Value::Object(map)) = variables.and_then(|v| serde_json::from_str::<Value>(v).ok()) else {
        return Vec::new();
    };
    let mut pairs: Vec<(u64, String)> = map
        .into_iter()
        .map(|(k, v)| {
            let text = match v {
                Value::String(s) => s,
                other => other.to_string(),
            };
            (k.trim().parse().unwrap_or(u64::MAX), text)
        })
        .collect();
    pairs.sort_by_key(|(k, _)| *k);
    pairs.into_iter().map(|(_, v)| v).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_variables_become_parameters_in_numeric_order() {
        assert_eq!(
            content_parameters(Some(r#"{"10":"j","2":"b","1":"a"}"#)),
            ["a", "b", "j"]
        );
        assert!(content_parameters(Some("not json")).is_empty());
        assert!(content_parameters(None).is_empty());
    }
}
