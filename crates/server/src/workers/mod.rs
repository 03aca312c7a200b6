//! Background work that runs beside the HTTP server and stops with it.

pub mod accepts;
pub mod dispatcher;
pub mod media;
pub mod outbound_webhooks;
pub mod pacing;
pub mod retention;
pub mod template_approvals;

use rand::Rng;

/// Exponential backoff with "equal jitter": attempt 1 waits `base_ms`·(½..1], each later attempt
/// doubles it, capped at `max_ms`; the random half keeps many failing jobs from retrying in step.
/// Every worker that retries (sends, media downloads, outbound webhooks) uses this one.
pub fn backoff_ms(attempt: i64, base_ms: u64, max_ms: u64) -> i64 {
    let base = i64::try_from(base_ms).unwrap_or(i64::MAX).max(1);
    let max = i64::try_from(max_ms).unwrap_or(i64::MAX).max(1);
    let wait = base
        .saturating_mul(1i64 << attempt.clamp(1, 30).saturating_sub(1))
        .min(max);
    rand::thread_rng().gen_range(wait / 2..=wait).max(1)
}

#[cfg(test)]
mod tests {
    use super::backoff_ms;

    #[test]
    fn backoff_grows_and_is_capped() {
        for _ in 0..100 {
            let a1 = backoff_ms(1, 1000, 3_600_000);
            assert!((500..=1000).contains(&a1), "{a1}");
            let a3 = backoff_ms(3, 1000, 3_600_000);
            assert!((2000..=4000).contains(&a3), "{a3}");
            assert!(backoff_ms(40, 1000, 60_000) <= 60_000);
        }
    }
}
