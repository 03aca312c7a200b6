//! The message openline asks Twilio to send, and the form parameters of `POST …/Messages.json` it
//! becomes.
//!
//! The parameter names are Twilio's, with Twilio's casing (`From`, `MediaUrl`, `ContentSid`): the
//! test `twilio_client` checks every one against the Messages create operation of Twilio's
//! official OpenAPI spec, so a misspelling fails there instead of being silently ignored by Twilio.

use serde_json::Value;

/// One message to send through Twilio: WhatsApp when the addresses carry the `whatsapp:` prefix,
/// SMS/MMS otherwise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwilioMessage {
    /// Our sender: `+15550002000` for SMS, `whatsapp:+15550001000` for WhatsApp. Not sent when
    /// `messaging_service_sid` is set, because Twilio then picks the number from the service's pool.
    pub from: String,
    /// A Messaging Service (`MG…`) to send through instead of a single number.
    pub messaging_service_sid: Option<String>,
    /// The recipient: `+447700900004` or `whatsapp:+447700900004`.
    pub to: String,
    /// The text. Optional when media or a template is sent.
    pub body: Option<String>,
    /// Public URLs of media to attach; each becomes one `MediaUrl` parameter.
    pub media_urls: Vec<String>,
    /// An approved Content API template (`HX…`), the only way to start a WhatsApp conversation
    /// outside the 24-hour window.
    pub content_sid: Option<String>,
    /// The template's variables, e.g. `{"1": "Alice"}`. Sent (as a JSON string) only with
    /// `content_sid`; a JSON string value is taken to be serialised already and sent as it is.
    pub content_variables: Option<Value>,
    /// Where Twilio should send this message's status callbacks.
    pub status_callback: Option<String>,
}

impl TwilioMessage {
    /// A Content API template (`HX…`) with its positional parameters, as openline sends an approved
    /// template through Twilio: `ContentSid` plus `ContentVariables` `{"1": first, "2": second, …}`,
    /// and no `Body` (Twilio renders the approved text). `from` is the sender's Twilio address
    /// (`whatsapp:+1…` or `+1…`); with a Messaging Service it is not sent.
    pub fn template(
        from: String,
        messaging_service_sid: Option<String>,
        to: String,
        content_sid: String,
        parameters: &[String],
        status_callback: Option<String>,
    ) -> Self {
        Self {
            from,
            messaging_service_sid,
            to,
            body: None,
            media_urls: Vec::new(),
            content_sid: Some(content_sid),
            content_variables: (!parameters.is_empty()).then(|| content_variables(parameters)),
            status_callback,
        }
    }

    /// The form parameters of the create request, in a fixed order. `MediaUrl` repeats, once per
    /// URL, which is how Twilio takes lists.
    pub fn form_params(&self) -> Vec<(&'static str, String)> {
        let mut params = vec![("To", self.to.clone())];
        match self.messaging_service_sid.as_deref().filter(|s| !s.trim().is_empty()) {
            Some(service) => params.push(("MessagingServiceSid", service.to_owned())),
            None => params.push(("From", self.from.clone())),
        }
        if let Some(body) = &self.body {
            params.push(("Body", body.clone()));
        }
        if let Some(content_sid) = self.content_sid.as_deref().filter(|s| !s.trim().is_empty()) {
            params.push(("ContentSid", content_sid.to_owned()));
            match &self.content_variables {
                Some(Value::String(already_json)) => params.push(("ContentVariables", already_json.clone())),
                Some(Value::Null) | None => {}
                Some(variables) => params.push(("ContentVariables", variables.to_string())),
            }
        }
        for url in &self.media_urls {
            params.push(("MediaUrl", url.clone()));
        }
        if let Some(callback) = &self.status_callback {
            params.push(("StatusCallback", callback.clone()));
        }
        params
    }

    /// Why Twilio would refuse this message before trying it, if it would: the same checks Twilio
    /// makes (21604 no `To`, 21603 no `From`, 21619 nothing to send), made here so a request that
    /// cannot succeed is not sent.
    pub(crate) fn problem(&self) -> Option<&'static str> {
        let blank = |s: &str| s.trim().is_empty();
        if blank(&self.to) {
            return Some("the message has no recipient");
        }
        if blank(&self.from) && self.messaging_service_sid.as_deref().is_none_or(blank) {
            return Some("the message has neither a sender number nor a messaging service");
        }
        let has_body = self.body.as_deref().is_some_and(|b| !blank(b));
        let has_template = self.content_sid.as_deref().is_some_and(|c| !blank(c));
        if !has_body && !has_template && self.media_urls.is_empty() {
            return Some("the message has no text, media or template");
        }
        None
    }
}

/// Positional template parameters as Twilio's `ContentVariables`: a JSON object keyed by position
/// from 1 (`{"1": "Ada", "2": "Friday"}`).
pub fn content_variables(parameters: &[String]) -> Value {
    Value::Object(
        parameters
            .iter()
            .enumerate()
            .map(|(i, p)| ((i + 1).to_string(), Value::String(p.clone())))
            .collect(),
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sms(body: &str) -> TwilioMessage {
        TwilioMessage {
            from: "+15550002000".into(),
            messaging_service_sid: None,
            to: "+447700900004".into(),
            body: Some(body.into()),
            media_urls: vec![],
            content_sid: None,
            content_variables: None,
            status_callback: None,
        }
    }

    #[test]
    fn a_messaging_service_replaces_the_from_number() {
        let message = TwilioMessage {
            messaging_service_sid: Some("MG123".into()),
            ..sms("hi")
        };
        let names: Vec<&str> = message.form_params().iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["To", "MessagingServiceSid", "Body"]);
    }

    #[test]
    fn template_variables_are_sent_as_a_json_string_and_only_with_a_template() {
        let mut message = TwilioMessage {
            body: None,
            content_sid: Some("HX123".into()),
            content_variables: Some(json!({"1": "Alice"})),
            ..sms("")
        };
        assert!(message
            .form_params()
            .contains(&("ContentVariables", r#"{"1":"Alice"}"#.to_owned())));
        message.content_variables = Some(Value::String(r#"{"1":"Bob"}"#.into()));
        assert!(message
            .form_params()
            .contains(&("ContentVariables", r#"{"1":"Bob"}"#.to_owned())));
        message.content_sid = None;
        assert!(!message.form_params().iter().any(|(n, _)| *n == "ContentVariables"));
    }

    #[test]
    fn a_template_becomes_a_content_sid_and_variables_keyed_by_position() {
        let message = TwilioMessage::template(
            "whatsapp:+15550001000".into(),
            None,
            "whatsapp:+447700900001".into(),
            "HXb5b62575e6e4ff6129ad7c8efe1f983e".into(),
            &["Ada".into(), "Friday".into()],
            Some("https://example.com/webhooks/twilio".into()),
        );
        let params = message.form_params();
        assert!(params.contains(&("ContentSid", "HXb5b62575e6e4ff6129ad7c8efe1f983e".to_owned())));
        let variables = params.iter().find(|(n, _)| *n == "ContentVariables").unwrap();
        let parsed: Value = serde_json::from_str(&variables.1).unwrap();
        assert_eq!(parsed, json!({"1": "Ada", "2": "Friday"}));
        assert!(!params.iter().any(|(n, _)| *n == "Body"));
        assert_eq!(message.problem(), None);
        // A template without parameters sends no ContentVariables at all.
        let bare = TwilioMessage::template("+1".into(), None, "+2".into(), "HX1".into(), &[], None);
        assert!(!bare.form_params().iter().any(|(n, _)| *n == "ContentVariables"));
    }

    #[test]
    fn a_message_twilio_would_refuse_is_caught_before_sending() {
        assert_eq!(sms("hi").problem(), None);
        assert!(sms("  ").problem().is_some());
        assert!(TwilioMessage {
            to: " ".into(),
            ..sms("hi")
        }
        .problem()
        .is_some());
        assert!(TwilioMessage {
            from: "".into(),
            ..sms("hi")
        }
        .problem()
        .is_some());
        assert_eq!(
            TwilioMessage {
                from: "".into(),
                messaging_service_sid: Some("MG1".into()),
                ..sms("hi")
            }
            .problem(),
            None
        );
        assert_eq!(
            TwilioMessage {
                media_urls: vec!["https://m/1.jpg".into()],
                ..sms("")
            }
            .problem(),
            None
        );
    }
}
