//! Phone numbers in E.164, parsed once at the edge ("parse, don't validate"): anything holding a
//! `PhoneNumber` holds a number WhatsApp and SMS providers will accept as an address.

use crate::DomainError;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A phone number in E.164 form: `+` then 8 to 15 digits, the first not zero.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

impl PhoneNumber {
    /// Parses what a person types: `+44 20 7946 0958`, `+1 (415) 555-0100`, `0044…`.
    /// Spaces, dashes, dots and parentheses are ignored; the number must be international
    /// (a leading `+` or `00`), because a bare national number is ambiguous.
    pub fn parse(input: &str) -> Result<Self, DomainError> {
        let trimmed = input.trim();
        let rest = if let Some(r) = trimmed.strip_prefix('+') {
            r
        } else if let Some(r) = trimmed.strip_prefix("00") {
            r
        } else {
            return Err(invalid(
                input,
                "it must start with + and the country code, like +14155550100",
            ));
        };
        let mut digits = String::with_capacity(rest.len());
        for c in rest.chars() {
            match c {
                '0'..='9' => digits.push(c),
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => {
                    return Err(invalid(
                        input,
                        "it may contain only digits, spaces, dashes, dots and parentheses",
                    ))
                }
            }
        }
        Self::from_digits(&digits)
            .map_err(|_| invalid(input, "it must have 8 to 15 digits after the +, the first not 0"))
    }

    /// From the digits-only form WhatsApp uses for `wa_id` and webhook `from` fields (`14155550100`).
    pub fn from_wa_id(wa_id: &str) -> Result<Self, DomainError> {
        Self::from_digits(wa_id.trim().trim_start_matches('+'))
    }

    fn from_digits(digits: &str) -> Result<Self, DomainError> {
        let ok =
            (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0');
        if ok {
            Ok(Self(format!("+{digits}")))
        } else {
            Err(invalid(digits, "it must have 8 to 15 digits, the first not 0"))
        }
    }

    /// `+14155550100`
    pub fn as_e164(&self) -> &str {
        &self.0
    }

    /// `14155550100`: the form the Cloud API uses in `to`, `from` and `wa_id`.
    pub fn digits(&self) -> &str {
        &self.0[1..]
    }
}

fn invalid(input: &str, why: &str) -> DomainError {
    // The number itself is personal data; say what is wrong without echoing all of it back into logs.
    let _ = input;
    DomainError::new(
        "invalid_phone_number",
        format!("This is not a valid phone number: {why}."),
    )
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = DomainError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<PhoneNumber> for String {
    fn from(value: PhoneNumber) -> Self {
        value.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_formatted_international_number_is_normalised() {
        let n = PhoneNumber::parse("+1 (415) 555-0100").unwrap();
        assert_eq!(n.as_e164(), "+14155550100");
        assert_eq!(n.digits(), "14155550100");
        assert_eq!(
            PhoneNumber::parse("0044 20 7946 0958").unwrap().as_e164(),
            "+442079460958"
        );
    }

    #[test]
    fn national_short_long_and_lettered_numbers_are_refused_with_a_code() {
        for bad in [
            "4155550100",
            "+123",
            "+1234567890123456",
            "+0123456789",
            "+1415CALLME",
            "",
        ] {
            let err = PhoneNumber::parse(bad).unwrap_err();
            assert_eq!(err.code, "invalid_phone_number", "{bad}");
        }
    }

    #[test]
    fn a_wa_id_from_a_webhook_becomes_a_number() {
        assert_eq!(
            PhoneNumber::from_wa_id("972987654321").unwrap().as_e164(),
            "+972987654321"
        );
        assert!(PhoneNumber::from_wa_id("US.13491208655302741918").is_err());
    }

    proptest! {
        #[test]
        fn parsing_never_panics_and_round_trips(s in "\\PC{0,24}") {
            if let Ok(n) = PhoneNumber::parse(&s) {
                prop_assert_eq!(PhoneNumber::parse(n.as_e164()).unwrap(), n);
            }
        }
    }
}
