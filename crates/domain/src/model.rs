//! The nouns of openline (see DESIGN.md §4) as closed enums with one text form each, shared by the
//! API (serde), the databases (the same text) and the OpenAPI document.

/// Declares a string-backed enum with `as_str`/`parse` and a serde form that agree, so the API and
/// the database can never spell a value differently.
macro_rules! text_enum {
    ($(#[$meta:meta])* pub enum $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, ::serde::Serialize, ::serde::Deserialize, ::utoipa::ToSchema)]
        pub enum $name { $($(#[$vmeta])* #[serde(rename = $text)] $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str { match self { $($name::$variant => $text),+ } }
            pub fn parse(s: &str) -> Option<Self> { match s { $($text => Some($name::$variant),)+ _ => None } }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(self.as_str()) }
        }
    };
}

/// Other modules (consent, templates, limits) declare their text enums the same way.
pub(crate) use text_enum;

text_enum! {
    /// What a user may do. Admins manage their organization and its sub-organizations; supervisors
    /// oversee them; agents message clients; viewers only read.
    pub enum Role {
        Admin => "admin",
        Supervisor => "supervisor",
        Agent => "agent",
        Viewer => "viewer",
    }
}

impl Role {
    /// Whether this role may write to clients.
    pub fn can_send(self) -> bool {
        !matches!(self, Role::Viewer)
    }
    /// Whether this role sees the sub-organizations below its own.
    pub fn sees_sub_organizations(self) -> bool {
        matches!(self, Role::Admin | Role::Supervisor)
    }
    /// Whether this role may create users and tokens for others.
    pub fn is_admin(self) -> bool {
        matches!(self, Role::Admin)
    }
}

text_enum! {
    /// The channel a conversation runs on.
    pub enum Channel {
        Whatsapp => "whatsapp",
        Sms => "sms",
    }
}

text_enum! {
    /// Which provider protocol a sender speaks.
    pub enum ProviderKind {
        /// Meta's WhatsApp Cloud API (or the simulator speaking it).
        CloudApi => "cloud_api",
        /// Twilio's Messages API (WhatsApp and SMS).
        Twilio => "twilio",
    }
}

text_enum! {
    pub enum Direction {
        /// From the contact to the business.
        In => "in",
        /// From the business to the contact.
        Out => "out",
        /// A notice openline wrote into the thread (consent outcomes, participants joining, …).
        System => "system",
    }
}

text_enum! {
    /// What a message carries. Types openline does not handle yet are stored as `unsupported` with
    /// their raw body, never dropped.
    pub enum MessageKind {
        Text => "text",
        Image => "image",
        Audio => "audio",
        Video => "video",
        Document => "document",
        Sticker => "sticker",
        Location => "location",
        Contacts => "contacts",
        Template => "template",
        Interactive => "interactive",
        Reaction => "reaction",
        Unsupported => "unsupported",
        Notice => "notice",
    }
}

text_enum! {
    /// Where a conversation stands in the shared inbox.
    pub enum ConversationStatus {
        New => "new",
        Pending => "pending",
        Resolved => "resolved",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_round_trips_through_its_text_and_serde() {
        for k in MessageKind::ALL {
            assert_eq!(MessageKind::parse(k.as_str()), Some(*k));
            assert_eq!(serde_json::to_string(k).unwrap(), format!("\"{}\"", k.as_str()));
        }
        for r in Role::ALL {
            assert_eq!(Role::parse(r.as_str()), Some(*r));
        }
        assert_eq!(Role::parse("root"), None);
    }

    #[test]
    fn viewers_cannot_send_and_agents_do_not_see_sub_organizations() {
        assert!(!Role::Viewer.can_send());
        assert!(Role::Agent.can_send());
        assert!(!Role::Agent.sees_sub_organizations());
        assert!(Role::Supervisor.sees_sub_organizations());
    }
}
