//! Opaque pagination cursors: URL-safe base64 of `time:id`. Clients pass back what they were given;
//! a cursor that does not decode is a 400 `invalid_cursor`, never a 500.

use crate::error::AppError;
use base64::Engine;

pub fn encode(time: i64, id: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("{time}:{id}"))
}

pub fn decode(cursor: &str) -> Result<(i64, String), AppError> {
    let bad = || {
        AppError::bad_request(
            "invalid_cursor",
            "The cursor is not one this API gave out; start from the first page.",
        )
    };
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(cursor.trim())
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (t, id) = text.split_once(':').ok_or_else(bad)?;
    Ok((t.parse().map_err(|_| bad())?, id.to_owned()))
}

#[cfg(test)]
mod tests {
    #[test]
    fn cursors_round_trip_and_garbage_is_a_clear_error() {
        let c = super::encode(1_700_000_000_000, "conv_01abc");
        assert_eq!(super::decode(&c).unwrap(), (1_700_000_000_000, "conv_01abc".to_owned()));
        assert_eq!(super::decode("%%%").unwrap_err().code, "invalid_cursor");
        assert_eq!(
            super::decode(&super::encode(1, "x").replace('M', "Q"))
                .map(|_| ())
                .unwrap_or(()),
            ()
        );
    }
}
