//! Rules published without a redeploy: the evaluate function's rules are the
//! published object's ([`RulesObject`]), re-read at most every
//! `KAIROS_RULES_REFRESH_SECS` with a conditional read, validated, and switched
//! to; an invalid object is refused with a logged error and the rules in force
//! stay. Until an object is published, the rules given at start (the embedded
//! ones) are in force.

use kairos_rules::RuleSet;
use kairos_store::{Fetched, RulesObject};
use std::sync::Arc;
use tokio::sync::Mutex;

/// Seconds between two reads of the rules object unless configured.
pub const DEFAULT_REFRESH_SECS: i64 = 30;

/// The rules in force, refreshed from a published object.
pub struct LiveRules<O> {
    object: O,
    refresh_secs: i64,
    state: Mutex<State>,
}

struct State {
    rules: Arc<RuleSet>,
    /// The published version's sequence of `rules` (`0`: the initial rules).
    seq: u64,
    /// The ETag of the object last read (valid or not), for the conditional read.
    etag: Option<String>,
    /// When the object was last read (unix seconds).
    checked_at: Option<i64>,
}

impl<O: RulesObject> LiveRules<O> {
    /// `initial` in force until `object` holds valid rules; re-read at most
    /// every `refresh_secs`.
    pub fn new(object: O, initial: RuleSet, refresh_secs: i64) -> LiveRules<O> {
        LiveRules {
            object,
            refresh_secs,
            state: Mutex::new(State {
                rules: Arc::new(initial),
                seq: 0,
                etag: None,
                checked_at: None,
            }),
        }
    }

    /// The rules in force at `now` (unix seconds): re-reads the object first
    /// if the refresh interval has passed. A failed read keeps the rules in
    /// force (logged) and is retried at the next interval.
    pub async fn current(&self, now: i64) -> Arc<RuleSet> {
        self.versioned(now).await.0
    }

    /// [`LiveRules::current`] with its published version's sequence (`0`:
    /// the initial rules), which the records it decides carry.
    pub async fn versioned(&self, now: i64) -> (Arc<RuleSet>, u64) {
        let mut state = self.state.lock().await;
        if state.checked_at.is_none_or(|t| now - t >= self.refresh_secs) {
            self.read(&mut state, now).await;
        }
        (state.rules.clone(), state.seq)
    }

    /// Re-reads the object now, whatever the interval: an evaluation that
    /// met a record decided under newer rules than those in force calls it
    /// before giving up on that record.
    pub async fn refresh(&self, now: i64) -> (Arc<RuleSet>, u64) {
        let mut state = self.state.lock().await;
        self.read(&mut state, now).await;
        (state.rules.clone(), state.seq)
    }

    async fn read(&self, state: &mut State, now: i64) {
        state.checked_at = Some(now);
        match self.object.fetch(state.etag.as_deref()).await {
            Ok(Fetched::Unchanged) | Ok(Fetched::Missing) => {}
            Ok(Fetched::Object { text, etag, seq }) => {
                match RuleSet::from_yaml(&text) {
                    Ok(rules) => {
                        let (from, to) = (state.rules.fingerprint(), rules.fingerprint());
                        tracing::info!(etag = %etag, seq, from = format!("{from:016x}"), to = format!("{to:016x}"), "rules switched");
                        state.rules = Arc::new(rules);
                        state.seq = seq;
                    }
                    Err(err) => {
                        let kept = state.rules.fingerprint();
                        tracing::error!(etag = %etag, error = %err, kept = format!("{kept:016x}"), "published rules refused: invalid; the rules in force stay");
                    }
                }
                state.etag = Some(etag);
            }
            Err(err) => tracing::warn!(error = %err, "reading the published rules failed; the rules in force stay"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kairos_store::MemoryRules;

    const ONE: &str = "segments:\n  - { id: one, name: One, rule: { event: { type: email.clicked, within: 7d } } }\n";
    const TWO: &str = "segments:\n  - { id: two, name: Two, rule: { event: { type: email.opened, within: 7d } } }\n";

    fn ids(rules: &RuleSet) -> Vec<&str> {
        rules.segments().map(|s| s.id).collect()
    }

    #[tokio::test]
    async fn the_published_rules_are_taken_at_the_next_refresh_and_an_invalid_object_is_refused() {
        let object = MemoryRules::default();
        let live = LiveRules::new(&object, RuleSet::from_yaml(ONE).unwrap(), 30);
        assert_eq!(
            ids(&*live.current(1_000).await),
            ["one"],
            "nothing published: the initial rules"
        );
        object.publish(TWO);
        assert_eq!(
            ids(&*live.current(1_010).await),
            ["one"],
            "not read again within the interval"
        );
        assert_eq!(ids(&*live.current(1_030).await), ["two"], "read at the next refresh");
        object.publish("segments:\n  - { id: bad }\n");
        assert_eq!(
            ids(&*live.current(1_060).await),
            ["two"],
            "an invalid object is refused"
        );
        object.publish(ONE);
        assert_eq!(ids(&*live.current(1_090).await), ["one"]);
    }
}
