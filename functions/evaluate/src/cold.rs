//! The evaluator's part of keeping old event ids apart from the record
//! (`kairos_state`'s `cold.rs`, `kairos_store::cold`): before the engine
//! step, age the loaded record's ids and read back the cold days the step
//! needs, so that the engine sees every id it would see were they all in the
//! record, and dedupes exactly as `kairos replay` does.

use kairos_engine::Frozen;
use kairos_event::Event;
use kairos_state::{ContactState, MAX_SEEN_IDS};
use kairos_store::{ContactStore, Queue};

use crate::contact::{ContactError, Evaluator};

impl<S: ContactStore, Q: Queue> Evaluator<'_, S, Q> {
    /// Prepares `state` (contact `key`'s, as loaded) for a step applying
    /// `events` and merging the `frozen` records it has not merged, as of
    /// `now` (unix seconds): moves the cold cutoff on
    /// ([`ContactState::age_seen`]); reads the cold days that may hold an
    /// event's id ([`ContactState::cold_days_for`]), or every cold day when a frozen record is merged or the
    /// cap could be reached (so that the cap and the floor act on every id);
    /// and every cold day of each frozen record to merge.
    pub(crate) async fn warm(
        &self,
        key: &str,
        state: &mut ContactState,
        events: &[Event],
        frozen: &mut [Frozen],
        now: i64,
    ) -> Result<(), ContactError> {
        state.age_seen(now, self.hot_seen_secs);
        let mut merging = false;
        for f in frozen.iter_mut().filter(|f| !state.has_merged(&f.key)) {
            merging = true;
            let days = f.state.cold_days();
            if !f.state.cold_complete() && !days.is_empty() {
                let ids = self.store.load_seen(&f.key, &days).await?;
                f.state.add_cold_seen(&ids, now, true);
            }
        }
        let all = merging || state.seen_bound().saturating_add(events.len()) > MAX_SEEN_IDS;
        let days = match all {
            true => state.cold_days(),
            false => state.cold_days_for(events, now),
        };
        if !days.is_empty() {
            let ids = self.store.load_seen(key, &days).await?;
            state.add_cold_seen(&ids, now, all);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
