//! The due index's cheap-upkeep rule: which due time a contact's record is
//! indexed under, so that a sweep finds it no later than its answer can
//! change, while the index is rewritten as rarely as possible.
//!
//! An index write costs as much as a table write, and a changed index key
//! costs two (the old entry deleted, the new one put). Most events move a
//! contact's real `next_change_at` later (a new click pushes the end of a
//! 7-day window out by the time since the last one), and rewriting the index
//! for each would cost up to two write units per event. So the indexed time
//! may be earlier than the real one, never later: it is rewritten only when
//! the real time moves earlier than it, or when it has passed (a sweep then
//! wakes the contact early, the step finds nothing to decide, and the record
//! is re-indexed under its real time: a reindex).

/// The due time to index a contact under after a step at `now` (unix
/// seconds): `real` is the record's exact `next_change_at`, `indexed` what
/// the index holds for it now. `None` takes the record out of the index.
///
/// Keeps `indexed` while it is still ahead (`> now`) and no later than
/// `real`; otherwise `real`. So the result is never later than `real`.
///
/// ```
/// use kairos_engine::indexed_due;
/// // The real time moved later: the earlier indexed time stays (no write).
/// assert_eq!(indexed_due(Some(900), Some(500), 100), Some(500));
/// // It moved earlier: rewritten.
/// assert_eq!(indexed_due(Some(300), Some(500), 100), Some(300));
/// // The indexed time passed (an early wake-up): rewritten to the real one.
/// assert_eq!(indexed_due(Some(900), Some(500), 600), Some(900));
/// // Nothing is due any more: kept until it passes, then dropped.
/// assert_eq!(indexed_due(None, Some(500), 100), Some(500));
/// assert_eq!(indexed_due(None, Some(500), 500), None);
/// ```
pub fn indexed_due(real: Option<i64>, indexed: Option<i64>, now: i64) -> Option<i64> {
    match indexed {
        Some(i) if i > now && real.is_none_or(|r| i <= r) => Some(i),
        _ => real,
    }
}

#[cfg(test)]
mod tests {
    use super::indexed_due;
    use proptest::prelude::*;

    fn time() -> impl Strategy<Value = Option<i64>> {
        proptest::option::of(0i64..1_000)
    }

    proptest! {
        /// Never later than the real time, and only changed when the real
        /// time moved earlier than the indexed one or the indexed one passed.
        #[test]
        fn never_later_and_rewritten_only_when_needed(real in time(), indexed in time(), now in 0i64..1_000) {
            let next = indexed_due(real, indexed, now);
            if let (Some(r), Some(n)) = (real, next) {
                prop_assert!(n <= r);
            }
            if real.is_some() {
                prop_assert!(next.is_some());
            }
            let must_move = match (indexed, real) {
                (None, r) => r.is_some(),
                (Some(i), r) => i <= now || r.is_some_and(|r| r < i),
            };
            prop_assert_eq!(next != indexed, must_move && real != indexed);
        }
    }
}
