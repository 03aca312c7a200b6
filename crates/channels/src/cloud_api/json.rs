//! Lenient readers over `serde_json::Value` for webhook bodies.
//!
//! Webhooks are parsed by walking the JSON tree rather than deserialising into strict structs: Meta
//! adds fields and types without notice, sends the same id as a string in one payload and a number
//! in another (`wa_id` in group events), and a strict schema would turn one surprise into a lost
//! message. Every reader here returns `None` for a missing or wrongly typed value and never panics.

use serde_json::Value;

/// `v[key]` as text: strings as they are, numbers and booleans in their JSON form, anything else
/// (missing, null, arrays, objects) as `None`.
pub(crate) fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(scalar_text)
}

/// A scalar JSON value as text (see [`text`]).
pub(crate) fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `v[key]` as text, treating an empty string as absent.
pub(crate) fn non_empty_text(v: &Value, key: &str) -> Option<String> {
    text(v, key).filter(|s| !s.is_empty())
}

/// `v[key]` as an array; missing or not an array reads as empty.
pub(crate) fn array<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key).and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

/// `v[key]` if it is an object, else `None`.
pub(crate) fn object<'a>(v: &'a Value, key: &str) -> Option<&'a Value> {
    v.get(key).filter(|o| o.is_object())
}

/// A Unix timestamp in seconds (Meta sends `"1697043223"` or `1697043223`) as epoch milliseconds.
/// Unreadable or absent timestamps read as `None`; out-of-range ones saturate rather than overflow.
pub(crate) fn seconds_as_millis(v: &Value, key: &str) -> Option<i64> {
    let secs = match v.get(key)? {
        Value::String(s) => s.trim().parse::<i64>().ok()?,
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))?,
        _ => return None,
    };
    Some(secs.saturating_mul(1000))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn ids_read_the_same_whether_sent_as_strings_or_numbers() {
        let v = json!({"a": "16505551234", "b": 16505551234_i64, "c": null, "d": [1]});
        assert_eq!(text(&v, "a"), text(&v, "b"));
        assert_eq!(text(&v, "c"), None);
        assert_eq!(text(&v, "d"), None);
        assert_eq!(text(&json!("not an object"), "a"), None);
    }

    #[test]
    fn timestamps_become_milliseconds_and_never_overflow() {
        let v = json!({"s": "1697043223", "n": 1697043223, "huge": "9223372036854775807", "bad": "soon", "f": 1.5e300});
        assert_eq!(seconds_as_millis(&v, "s"), Some(1_697_043_223_000));
        assert_eq!(seconds_as_millis(&v, "n"), Some(1_697_043_223_000));
        assert_eq!(seconds_as_millis(&v, "huge"), Some(i64::MAX));
        assert_eq!(seconds_as_millis(&v, "bad"), None);
        assert_eq!(seconds_as_millis(&v, "f"), Some(i64::MAX));
    }
}
