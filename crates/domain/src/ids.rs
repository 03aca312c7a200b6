//! Opaque identifiers. Ids are text (a short type prefix and a ULID), so they sort by creation time,
//! never collide across nodes, and read well in logs: `msg_01JD3…`, `conv_01JD3…`.

use std::sync::Mutex;

/// Monotonic within the process: two ids made in the same millisecond still sort in the order they
/// were made, so threads and lists ordered by (time, id) show events in the order they happened.
static GENERATOR: Mutex<Option<ulid::Generator>> = Mutex::new(None);

/// A new identifier with the given type prefix, e.g. `new_id("msg")`.
pub fn new_id(prefix: &str) -> String {
    let id = match GENERATOR.lock() {
        Ok(mut g) => g
            .get_or_insert_with(ulid::Generator::new)
            .generate()
            .unwrap_or_else(|_| ulid::Ulid::new()),
        Err(_) => ulid::Ulid::new(),
    };
    format!("{prefix}_{}", id.to_string().to_lowercase())
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

    #[test]
    fn ids_made_in_a_row_sort_in_the_order_they_were_made() {
        let ids: Vec<String> = (0..1000).map(|_| new_id("x")).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
    }
}
