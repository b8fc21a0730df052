//! Pauses between retries that spread racing writers apart.

use std::time::Duration;

/// The pause before the retry that follows the `lost`-th lost race (from 1):
/// a random share (full jitter) of 10 ms doubled per loss, at most 320 ms, so
/// writers racing on one item spread out instead of colliding again in step.
pub async fn after_lost_race(lost: u32) {
    tokio::time::sleep(lost_race_ceiling(lost).mul_f64(jitter())).await;
}

/// The longest pause after the `lost`-th lost race.
fn lost_race_ceiling(lost: u32) -> Duration {
    Duration::from_millis(10 << lost.clamp(1, 6).saturating_sub(1))
}

/// A number in [0, 1) from the clock's sub-second noise: enough to spread
/// racers and retries (not for anything secret).
pub fn jitter() -> f64 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    f64::from(nanos % 1009) / 1009.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ceiling_doubles_per_loss_up_to_320_ms() {
        let ms: Vec<u128> = (0..=8).map(|l| lost_race_ceiling(l).as_millis()).collect();
        assert_eq!(ms, [10, 10, 20, 40, 80, 160, 320, 320, 320]);
    }

    #[test]
    fn jitter_stays_below_one() {
        assert!((0..1000).map(|_| jitter()).all(|j| (0.0..1.0).contains(&j)));
    }
}
