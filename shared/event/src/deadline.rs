//! The invocation deadline as the functions use it.

/// Deadlines below this (2001-09-09 in unix milliseconds) are not instants.
const EARLIEST_INSTANT_MS: u64 = 1_000_000_000_000;

/// An invocation's deadline in unix milliseconds, from the runtime's
/// `Lambda-Runtime-Deadline-Ms` (`Context::deadline`) at `now_ms`.
///
/// Lambda sends an instant. The `cargo lambda watch` emulator sends a
/// duration instead (600000: ten minutes), which read as an instant would be
/// in 1970 and make every function give up at once; a value too small to be
/// an instant is taken as the time left from now.
pub fn invocation_deadline_ms(header_ms: u64, now_ms: u64) -> u64 {
    if header_ms < EARLIEST_INSTANT_MS {
        now_ms.saturating_add(header_ms)
    } else {
        header_ms
    }
}

#[cfg(test)]
mod tests {
    use super::invocation_deadline_ms;

    #[test]
    fn an_instant_is_kept_and_a_duration_counts_from_now() {
        let now = 1_796_000_000_000;
        assert_eq!(invocation_deadline_ms(now + 9_000, now), now + 9_000);
        assert_eq!(invocation_deadline_ms(600_000, now), now + 600_000);
    }
}
