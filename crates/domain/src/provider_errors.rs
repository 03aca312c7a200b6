//! What provider error codes mean to the person who sent the message, and whether the dispatcher may
//! try again: Meta's Cloud API codes ([`explain_cloud_api_error`]) and Twilio's
//! ([`explain_twilio_error`]), which live in separate number spaces and must not be mixed up.

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
        // Meta: "This recipient has chosen to stop receiving marketing messages on WhatsApp from
        // your business." openline records the stop, so later marketing templates are refused
        // before they are sent.
        131050 => (Permanent, "The contact has stopped marketing messages from your business on WhatsApp, so this marketing template was not delivered. Send a utility template, or reply while the conversation window is open; marketing templates stay blocked until the contact resumes them in WhatsApp."),
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

/// Explains a Twilio error code, as found in a refused request's `code` or a status callback's
/// `ErrorCode` (WhatsApp errors through Twilio are 63xxx, SMS delivery errors 30xxx, request errors
/// 2xxxx).
///
/// Only throttling is retried: Twilio has already queued and tried the message for every delivery
/// error, so trying again would only repeat the failure (and, for 21610, ignore a STOP).
pub fn explain_twilio_error(code: i64) -> Explanation {
    use Retry::*;
    let (retry, explanation) = match code {
        63016 => (Permanent, "More than 24 hours have passed since the contact last wrote. Send an approved template to restart the conversation."),
        63003 | 63024 => (Permanent, "The message could not be delivered: the number may not be on WhatsApp. Offer to send an SMS instead."),
        // Twilio refuses a send with 63018 (retried here) or reports it on a failed status callback,
        // when the message is already lost: the words must hold for both.
        63018 => (Transient, "The sender's WhatsApp rate limit was reached. openline retries a refused send by itself; if the message shows as failed, send it again later."),
        20429 | 30001 => (Transient, "The provider is throttling or its queue is full; openline retries automatically."),
        21211 => (Permanent, "The recipient's phone number is not valid. Check the number with the contact."),
        21655 => (Permanent, "The provider does not know the template's content SID (HX…) in this account. Tell an admin to check the template's Twilio content SID."),
        21654 | 21656 => (Permanent, "The provider refused the template's variables: every parameter needs a value. Check the parameters."),
        63028 => (Permanent, "The number of template parameters does not match the approved template. Check the number of parameters."),
        21614 => (Permanent, "The recipient's number cannot receive text messages (it may be a landline). Use another number or channel."),
        21610 => (Permanent, "The recipient replied STOP to SMS from this number, so SMS cannot reach them. They can reply START to opt back in."),
        21408 | 21612 => (Permanent, "The provider cannot route messages to this number from this sender. Tell an admin to check the sender's geographic permissions."),
        21606 | 63007 => (Permanent, "The sending number is not set up for this channel at the provider. Tell an admin to check the sender."),
        21617 => (Permanent, "The message is too long for the provider. Shorten it or split it."),
        20003 => (Permanent, "The provider rejected openline's credentials. Tell an admin to check the account SID and auth token."),
        30003 => (Permanent, "The recipient's phone is unreachable (switched off or out of coverage). Try again later or use another channel."),
        30005 => (Permanent, "The recipient's number is unknown to their carrier and may no longer exist. Check the number with the contact."),
        30006 => (Permanent, "The number is a landline or its carrier cannot receive messages. Use another number or channel."),
        30007 => (Permanent, "The carrier filtered the message as possible spam. Review its wording and links, and tell an admin if this repeats."),
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

    #[test]
    fn a_contact_who_stopped_marketing_is_final_and_the_agent_is_told_what_still_works() {
        let e = explain_cloud_api_error(131050);
        assert_eq!(e.retry, Retry::Permanent);
        assert!(
            e.explanation.contains("stopped marketing messages"),
            "{}",
            e.explanation
        );
        assert!(e.explanation.contains("utility template"), "{}", e.explanation);
        assert_ne!(e, explain_cloud_api_error(0));
    }

    #[test]
    fn twilio_rate_limits_are_retried_and_window_and_reachability_errors_say_what_to_do_next() {
        assert_eq!(explain_twilio_error(63018).retry, Retry::Transient);
        assert_eq!(explain_twilio_error(63016).retry, Retry::Permanent);
        assert!(explain_twilio_error(63016).explanation.contains("template"));
        assert!(explain_twilio_error(63003).explanation.contains("SMS"));
        assert!(explain_twilio_error(63024).explanation.contains("SMS"));
        assert!(explain_twilio_error(21610).explanation.contains("STOP"));
        assert!(explain_twilio_error(20003).explanation.contains("admin"));
        assert_eq!(explain_twilio_error(21211).retry, Retry::Permanent);
        assert_eq!(explain_twilio_error(-1).retry, Retry::Permanent);
        // Template errors through Twilio's Content API say which part to check, and are final.
        for code in [21654, 21655, 21656, 63028] {
            assert_eq!(explain_twilio_error(code).retry, Retry::Permanent, "{code}");
            assert!(explain_twilio_error(code).explanation.contains("template"), "{code}");
        }
    }

    #[test]
    fn twilio_and_meta_codes_are_separate_number_spaces() {
        // 131047 means nothing to Twilio, and 63016 nothing to Meta: each falls to its default.
        assert_eq!(explain_twilio_error(131047), explain_twilio_error(0));
        assert_eq!(explain_cloud_api_error(63016), explain_cloud_api_error(0));
    }
}
