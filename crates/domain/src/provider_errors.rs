//! What provider error codes mean to the person who sent the message, and whether the dispatcher may
//! try again. The codes are Meta's Cloud API codes (Twilio's are added with its adapter).

/// How the dispatcher should treat a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Try again later with backoff (throttling, provider trouble).
    Transient,
    /// Do not try again; the message is failed with this code.
    Permanent,
}

/// A provider error explained: whether to retry, and a sentence with the next step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Explanation {
    pub retry: Retry,
    pub explanation: &'static str,
}

/// Explains a Cloud API error code.
pub fn explain_cloud_api_error(code: i64) -> Explanation {
    use Retry::*;
    let (retry, explanation) = match code {
        131047 => (Permanent, "More than 24 hours have passed since the contact last wrote. Send an approved template to restart the conversation."),
        131026 => (Permanent, "The message could not be delivered: the number may not be on WhatsApp. Offer to send an SMS instead."),
        130429 => (Transient, "The provider's throughput limit was reached; openline retries automatically."),
        131056 => (Transient, "Too many messages were sent to this person in a short time; openline paces and retries automatically."),
        131048 => (Transient, "The number was limited for spam; openline retries later. Check the sender's quality rating."),
        132000 => (Permanent, "The template's parameters did not match what was approved. Check the number of parameters."),
        132012 => (Permanent, "A template parameter had the wrong format. Check each parameter against the template."),
        132001 => (Permanent, "The template does not exist in this language or is not approved yet."),
        131051 => (Permanent, "WhatsApp does not support this message type."),
        131052 | 131053 => (Permanent, "The media could not be downloaded or uploaded. Try another file."),
        131000 | 1 | 2 | 131016 => (Transient, "The provider had a temporary problem; openline retries automatically."),
        4 | 80007 => (Transient, "The provider's rate limit was reached; openline retries automatically."),
        190 => (Permanent, "The provider rejected openline's access token. Tell an admin to renew the sender's credentials."),
        10 | 200 => (Permanent, "openline lacks permission to send for this number. Tell an admin to check the sender's setup."),
        100 => (Permanent, "The provider rejected the request as invalid. Tell an admin; the details are in the server log."),
        131030 => (Permanent, "The recipient is not allowed for this test number. Add it to the allowed list in Meta's app dashboard."),
        131031 => (Permanent, "The business account is locked or restricted. Tell an admin."),
        _ => (Permanent, "The provider refused the message. Tell an admin if this repeats."),
    };
    Explanation { retry, explanation }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttling_is_retried_and_window_errors_are_not() {
        assert_eq!(explain_cloud_api_error(130429).retry, Retry::Transient);
        assert_eq!(explain_cloud_api_error(131047).retry, Retry::Permanent);
        assert!(explain_cloud_api_error(131047).explanation.contains("template"));
        assert!(explain_cloud_api_error(131026).explanation.contains("SMS"));
        assert!(explain_cloud_api_error(190).explanation.contains("admin"));
    }
}
