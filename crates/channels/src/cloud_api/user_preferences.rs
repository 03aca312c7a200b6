//! The `user_preferences` webhook field: a WhatsApp user stopped or resumed marketing messages from
//! the business (`value: "stop" | "resume"`, or `"signup"` with a `signup_id` when they signed up
//! through a sign-up link), always with `category: "marketing_messages"` so far.
//!
//! The webhook parser keeps the change whole as an [`super::OtherEvent`] (so the archive has it
//! exactly as received); this reads its `value` into the preferences it carries, in order. An entry
//! without a user id or a value is skipped here (it stays in the kept event): there is nobody or
//! nothing to record.

use super::json::{array, non_empty_text, seconds_as_millis};
use openline_domain::Millis;
use serde_json::Value;

/// One `user_preferences[]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPreference {
    /// The WhatsApp user id (`wa_id`, digits; Meta notes it may differ from the phone number).
    pub wa_id: String,
    /// `marketing_messages`.
    pub category: String,
    /// `stop`, `resume` or `signup`.
    pub value: String,
    /// Meta's description ("User requested to stop marketing messages").
    pub detail: Option<String>,
    /// When the user changed it, by Meta's clock, in epoch milliseconds; 0 if unreadable.
    pub timestamp_ms: Millis,
    /// The sign-up link's id, for `signup`.
    pub signup_id: Option<String>,
    /// The user's profile name, when the value's `contacts[]` names this user.
    pub profile_name: Option<String>,
    /// The entry exactly as received.
    pub raw: Value,
}

/// The preferences a `user_preferences` change's `value` carries, in order.
pub fn user_preferences(value: &Value) -> Vec<UserPreference> {
    let contacts = array(value, "contacts");
    array(value, "user_preferences")
        .iter()
        .filter_map(|p| {
            let wa_id = non_empty_text(p, "wa_id")?;
            let profile_name = contacts
                .iter()
                .find(|c| non_empty_text(c, "wa_id").as_deref() == Some(wa_id.as_str()))
                .and_then(|c| c.get("profile"))
                .and_then(|profile| non_empty_text(profile, "name"));
            Some(UserPreference {
                category: non_empty_text(p, "category").unwrap_or_default(),
                value: non_empty_text(p, "value")?,
                detail: non_empty_text(p, "detail"),
                timestamp_ms: seconds_as_millis(p, "timestamp").unwrap_or(0),
                signup_id: non_empty_text(p, "signup_id"),
                profile_name,
                raw: p.clone(),
                wa_id,
            })
        })
        .collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn metas_stop_entry_is_read_with_its_evidence() {
        let value = json!({
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": "106540352242922"},
            "contacts": [{"profile": {"name": "Sheena Nelson"}, "wa_id": "16505551234"}],
            "user_preferences": [{
                "wa_id": "16505551234", "detail": "User requested to stop marketing messages",
                "category": "marketing_messages", "value": "stop", "timestamp": 1739321024
            }]
        });
        let prefs = user_preferences(&value);
        assert_eq!(prefs.len(), 1);
        let p = &prefs[0];
        assert_eq!(p.wa_id, "16505551234");
        assert_eq!(p.value, "stop");
        assert_eq!(p.category, "marketing_messages");
        assert_eq!(p.timestamp_ms, 1_739_321_024_000);
        assert_eq!(p.detail.as_deref(), Some("User requested to stop marketing messages"));
        assert_eq!(p.profile_name.as_deref(), Some("Sheena Nelson"));
        assert_eq!(p.signup_id, None);
    }

    #[test]
    fn a_signup_keeps_its_id_and_a_contact_for_someone_else_lends_no_name() {
        let value = json!({
            "contacts": [{"profile": {"name": "Test Name"}, "wa_id": "972987654321"}],
            "user_preferences": [{"wa_id": "16505551234", "category": "marketing_messages",
                "value": "signup", "signup_id": "13176843987434774", "timestamp": "1731705721"}]
        });
        let p = &user_preferences(&value)[0];
        assert_eq!(p.signup_id.as_deref(), Some("13176843987434774"));
        assert_eq!(p.timestamp_ms, 1_731_705_721_000);
        assert_eq!(p.profile_name, None);
    }

    #[test]
    fn entries_without_a_user_or_a_value_are_skipped_and_nothing_panics() {
        let value = json!({"user_preferences": [{"value": "stop"}, {"wa_id": "1"}, 7, null]});
        assert!(user_preferences(&value).is_empty());
        assert!(user_preferences(&json!("not an object")).is_empty());
    }
}
