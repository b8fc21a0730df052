//! `kairos rebuild --archive … --table T`: contact states recomputed from the
//! event archive (the same [`Backtest`] as `kairos replay`), written into a
//! table through the store adapter's conditional write, for recovery after a
//! bug (runbook: `docs/rebuild.md`).
//!
//! Each contact's rebuilt record is written at a version above the stored
//! one (never backwards) and conditioned on it: a record written meanwhile
//! by the evaluate function is read again and the write retried. What the
//! history cannot know is kept from the stored record: its consent when
//! later (an unsubscribe older than the window holds), its outbox (unsent
//! transitions are still sent) and its rules version.

use crate::archive::{Source, Stats, Window};
use crate::replay::Backtest;
use chrono::{DateTime, Utc};
use futures_util::stream::{self, StreamExt};
use kairos_engine::Contact;
use kairos_rules::RuleSet;
use kairos_store::{ContactStore, StoreError, StoredContact};

/// Contacts written at once.
const CONCURRENT_WRITES: usize = 16;
/// How often one contact's write is retried after losing a race.
const MAX_ATTEMPTS: usize = 8;

/// What a rebuild did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Rebuilt {
    /// Objects read from the archive.
    pub objects: usize,
    /// Events replayed.
    pub events: u64,
    /// Contact records written.
    pub contacts: usize,
    /// Writes retried because the record changed meanwhile.
    pub conflicts: usize,
    /// Archive lines that were not valid events.
    pub rejected: usize,
}

/// Replays the archive's events inside `window` under `rules` and writes
/// every contact's record into `store` as of `now`.
pub async fn rebuild<S: ContactStore>(
    rules: &RuleSet,
    source: &Source,
    window: Window,
    store: &S,
    now: DateTime<Utc>,
) -> Result<Rebuilt, String> {
    let mut backtest = Backtest::new(rules, window.until);
    let read: Stats = crate::archive::play(source, window, |events| {
        backtest.play(events);
        backtest.take_transitions();
    })
    .await?;
    backtest.finish();
    let mut rebuilt = Rebuilt {
        objects: read.objects,
        events: read.events,
        rejected: read.rejected.len(),
        ..Rebuilt::default()
    };
    let now_ms = now.timestamp_millis();
    let writes = backtest
        .contacts()
        .iter()
        .map(|(key, contact)| async move { (key, write(store, key, contact, now_ms).await) });
    let mut results = stream::iter(writes).buffer_unordered(CONCURRENT_WRITES);
    while let Some((key, result)) = results.next().await {
        let conflicts = result.map_err(|e| format!("writing the record of {key}: {e}"))?;
        rebuilt.contacts += 1;
        rebuilt.conflicts += conflicts;
    }
    Ok(rebuilt)
}

/// Writes one rebuilt record above the stored one's version; returns how
/// many times the write lost a race and was retried.
pub async fn write<S: ContactStore>(store: &S, key: &str, contact: &Contact, now_ms: i64) -> Result<usize, StoreError> {
    for attempt in 0..MAX_ATTEMPTS {
        let stored = store.load(key).await?;
        if stored.as_ref().is_some_and(|r| r.erased_at.is_some()) {
            // An erased contact's tombstone stands: the archive does not bring it back.
            return Ok(attempt);
        }
        let expected = stored.as_ref().map(|r| r.version);
        let record = rebuilt(key, contact, stored.unwrap_or_default(), now_ms);
        match store.save(key, expected, &record).await {
            Ok(()) => return Ok(attempt),
            Err(StoreError::Conflict) => continue,
            Err(err) => return Err(err),
        }
    }
    Err(StoreError::Conflict)
}

/// The record to write: the replayed contact's state and times, at a version
/// above `stored`'s, with what only the stored record knows.
fn rebuilt(key: &str, contact: &Contact, stored: StoredContact, now_ms: i64) -> StoredContact {
    let mut state = contact.state.clone();
    state.keep_consent(stored.state.consent());
    if let Some(kept) = &stored.consent_kept {
        state.keep_consent(kept);
    }
    let mut record = StoredContact {
        version: stored.version,
        state,
        outbox: stored.outbox,
        next_change_at: contact.next_change_at,
        due_at: contact.due_at,
        expires_at: contact.expires_at,
        merged_into: None,
        consent_kept: stored.consent_kept,
        rules_seq: stored.rules_seq.max(contact.rules_seq),
        // Human overrides and what destinations were told are not in the
        // archive: the stored record's stand; a rebuild is no audited change.
        overrides: stored.overrides,
        written: stored.written,
        audit: Vec::new(),
        erased_at: None,
    };
    record.advance_version(now_ms);
    let report = record.fit(key);
    if report.degraded() {
        tracing::warn!(?report, "rebuilt record over its size budget: degraded to fit");
    }
    record
}

#[cfg(test)]
mod tests {
    use super::*;
    use kairos_store::MemoryContacts;

    #[tokio::test]
    async fn a_rebuilt_record_goes_above_the_stored_version_and_keeps_its_outbox_and_consent() {
        let rules = RuleSet::from_yaml(kairos_evaluate::DEFAULT_RULES).unwrap();
        let event = |id: &str, kind: &str, extra: &str| {
            let json = format!(
                r#"{{"id":"{id}","contact":"ada","type":"{kind}","at":"2026-11-27T10:00:00Z","source":"t"{extra}}}"#
            );
            kairos_event::Event::from_json(json.as_bytes()).unwrap()
        };
        let mut backtest = Backtest::new(&rules, None);
        backtest.play(vec![event("1", "email.clicked", "")]);
        backtest.finish();
        let contact = backtest.contacts()["ada"].clone();

        // The stored record: a later version, an unsent transition, an unsubscribe.
        let mut unsubscribed = Backtest::new(&rules, None);
        let status = r#","properties":{"status":"unsubscribed"}"#;
        unsubscribed.play(vec![event("0", "consent.changed", status)]);
        let store = MemoryContacts::default();
        let stored = StoredContact {
            version: 9_000_000_000_000,
            state: unsubscribed.contacts()["ada"].state.clone(),
            outbox: vec!["unsent".to_string()],
            ..StoredContact::default()
        };
        store.save("ada", None, &stored).await.unwrap();

        assert_eq!(write(&store, "ada", &contact, 1_000).await.unwrap(), 0);
        let written = store.load("ada").await.unwrap().unwrap();
        assert_eq!(written.version, 9_000_000_000_001, "never backwards");
        assert_eq!(written.outbox, ["unsent"]);
        assert_eq!(written.state.consent(), stored.state.consent(), "the unsubscribe holds");
        assert_eq!(written.next_change_at, contact.next_change_at);
    }
}
