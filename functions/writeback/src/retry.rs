use kairos_store::pause::jitter;
use std::time::Duration;

/// When to try a failed request again.
pub trait RetryPolicy: Send + Sync {
    /// The wait before attempt `attempt + 1` (after `attempt` failures, from 1),
    /// given the server's `Retry-After`; `None` to stop retrying now.
    fn wait(&self, attempt: u32, retry_after: Option<Duration>) -> Option<Duration>;
}

/// Exponential backoff with full jitter, honouring `Retry-After` up to a cap.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Total attempts, the first included.
    pub max_attempts: u32,
    /// The first wait; doubled each retry.
    pub base: Duration,
    /// The longest single wait. A `Retry-After` beyond it ends the retries, and
    /// SQS redelivers the item after its visibility timeout instead.
    pub max_wait: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            max_attempts: 4,
            base: Duration::from_millis(250),
            max_wait: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy for Backoff {
    fn wait(&self, attempt: u32, retry_after: Option<Duration>) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        if let Some(wait) = retry_after {
            return (wait <= self.max_wait).then_some(wait);
        }
        let ceiling = self
            .base
            .saturating_mul(1 << attempt.saturating_sub(1).min(16))
            .min(self.max_wait);
        Some(ceiling.mul_f64(0.5 + jitter() * 0.5))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_exponentially_within_bounds() {
        let b = Backoff {
            max_attempts: 5,
            base: Duration::from_millis(100),
            max_wait: Duration::from_millis(300),
        };
        let w1 = b.wait(1, None).unwrap();
        assert!(
            w1 >= Duration::from_millis(50) && w1 <= Duration::from_millis(100),
            "{w1:?}"
        );
        let w2 = b.wait(2, None).unwrap();
        assert!(
            w2 >= Duration::from_millis(100) && w2 <= Duration::from_millis(200),
            "{w2:?}"
        );
        assert!(b.wait(4, None).unwrap() <= Duration::from_millis(300));
        assert_eq!(b.wait(5, None), None);
    }

    #[test]
    fn honours_retry_after_up_to_the_cap() {
        let b = Backoff::default();
        assert_eq!(b.wait(1, Some(Duration::from_secs(3))), Some(Duration::from_secs(3)));
        assert_eq!(b.wait(1, Some(Duration::from_secs(60))), None);
    }
}
