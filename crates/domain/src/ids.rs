//! Opaque identifiers. Ids are text (a short type prefix and a ULID), so they sort by creation time,
//! never collide across nodes, and read well in logs: `msg_01JD3…`, `conv_01JD3…`.

/// A new identifier with the given type prefix, e.g. `new_id("msg")`.
pub fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", ulid::Ulid::new().to_string().to_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_prefix_and_are_unique() {
        let a = new_id("msg");
        let b = new_id("msg");
        assert!(a.starts_with("msg_"));
        assert_eq!(a.len(), 4 + 26);
        assert_ne!(a, b);
    }
}
