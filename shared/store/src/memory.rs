//! In-memory twins of the adapters, for the embedded demo and unit tests.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Mutex;

use kairos_state::{Consent, ContactState, SeenId};

use crate::{
    Attribute, Claimed, Claims, ContactStore, DeadLetters, DeliveryLedger, Due, DueIndex, DuePage, Fetched, Lookups,
    Message, Queue, QueueError, Redelivery, RulesObject, StoreError, StoredContact,
};

/// One change's audit entries: (the record version, the entries).
type AuditItem = (u64, Vec<kairos_event::AuditEntry>);

/// A contact's cold days: day → ids.
type ColdDays = BTreeMap<i64, BTreeSet<SeenId>>;

/// Contact records in a map, with the same conditional-write rules as
/// DynamoDB, kept consents in another, and cold days of event ids in a third
/// (the record holds its state as the DynamoDB item would: encoded and read
/// back, without the ids moved to their days).
#[derive(Debug, Default)]
pub struct MemoryContacts {
    records: Mutex<HashMap<String, StoredContact>>,
    seen: Mutex<HashMap<String, ColdDays>>,
    consents: Mutex<HashMap<String, Consent>>,
    backfill: Mutex<Option<crate::BackfillProgress>>,
    /// Audit items by key, oldest first.
    audit: Mutex<HashMap<String, Vec<AuditItem>>>,
    /// Segment counters (`counters.rs`): members by segment, and entries
    /// and exits by (segment, day).
    counters: Mutex<Counters>,
    /// Whether [`MemoryContacts::previous`] is kept (tests of stale reads).
    keep_previous: bool,
    /// Each record as it was before its latest change (`None`: it had none).
    previous: Mutex<HashMap<String, Option<StoredContact>>>,
}

/// The in-memory segment counters.
#[derive(Debug, Default)]
struct Counters {
    members: HashMap<String, i64>,
    days: HashMap<(String, String), (u64, u64)>,
}

impl MemoryContacts {
    /// A store that also keeps each record as it was before its latest write
    /// or outbox clear ([`MemoryContacts::previous`]), so a test can answer
    /// an eventually consistent read with it, as DynamoDB may just after a
    /// write. Twice the memory; the embedded demo does not need it.
    pub fn keeping_previous() -> MemoryContacts {
        MemoryContacts {
            keep_previous: true,
            ..MemoryContacts::default()
        }
    }

    /// What a stale (eventually consistent) read of `contact` could answer
    /// just after its latest change: the record before it, or, if it had
    /// none, what [`ContactStore::load`] gives for no record (its kept
    /// consent, or nothing). `None` when nothing earlier is kept (not
    /// [`MemoryContacts::keeping_previous`], or never changed).
    pub fn previous(&self, contact: &str) -> Option<Option<StoredContact>> {
        let previous = lock(&self.previous).get(contact).cloned()?;
        Some(previous.or_else(|| lock(&self.consents).get(contact).map(StoredContact::with_kept_consent)))
    }

    /// Keeps `before` as the record's previous version, if asked to.
    fn remember(&self, contact: &str, before: Option<&StoredContact>) {
        if self.keep_previous {
            lock(&self.previous).insert(contact.to_string(), before.cloned());
        }
    }

    /// Every contact key stored, sorted.
    pub fn contacts(&self) -> Vec<String> {
        let mut keys: Vec<String> = lock(&self.records).keys().cloned().collect();
        keys.sort();
        keys
    }

    /// Deletes the records expired at `now` (unix seconds), as the table's TTL
    /// does, and the cold days expired ([`crate::cold::expires_at`]); kept
    /// consents stay. Returns how many records it deleted.
    pub fn expire(&self, now: i64) -> usize {
        for days in lock(&self.seen).values_mut() {
            days.retain(|day, _| crate::cold::expires_at(*day) >= now);
        }
        lock(&self.seen).retain(|_, days| !days.is_empty());
        let mut records = lock(&self.records);
        let before = records.len();
        records.retain(|_, r| r.expires_at == 0 || r.expires_at >= now);
        before - records.len()
    }

    /// How many ids a contact's cold day holds (days since 1970-01-01, UTC).
    pub fn cold_ids(&self, contact: &str, day: i64) -> usize {
        lock(&self.seen)
            .get(contact)
            .and_then(|days| days.get(&day))
            .map_or(0, BTreeSet::len)
    }

    /// Adds the ids the record's state moves to its cold days (idempotent).
    fn write_seen(&self, contact: &str, record: &StoredContact) {
        let writes = record.state.cold_writes();
        if writes.is_empty() {
            return;
        }
        let mut seen = lock(&self.seen);
        let days = seen.entry(contact.to_string()).or_default();
        for (day, ids) in writes {
            days.entry(day).or_default().extend(ids);
        }
    }
}

impl ContactStore for MemoryContacts {
    async fn load(&self, contact: &str) -> Result<Option<StoredContact>, StoreError> {
        if let Some(record) = lock(&self.records).get(contact) {
            return Ok(Some(record.clone()));
        }
        Ok(lock(&self.consents).get(contact).map(StoredContact::with_kept_consent))
    }

    async fn save(&self, contact: &str, expected: Option<u64>, record: &StoredContact) -> Result<(), StoreError> {
        self.write_seen(contact, record);
        if let Some(consent) = record.consent_to_keep() {
            let mut consents = lock(&self.consents);
            let kept = consents.entry(contact.to_string()).or_default();
            if consent.order() > kept.order() {
                *kept = consent;
            }
        }
        let mut records = lock(&self.records);
        if records.get(contact).map(|r| r.version) != expected.filter(|v| *v > 0) {
            return Err(StoreError::Conflict);
        }
        let mut stored = record.clone();
        // As the item holds it: encoded, without the ids moved to their days.
        stored.state = ContactState::from_bytes(&record.state.to_bytes())
            .map_err(|e| StoreError::Corrupt(format!("state does not read back: {e}")))?;
        stored.consent_kept = record.consent_to_keep().or(record.consent_kept);
        let entries = std::mem::take(&mut stored.audit);
        // Counted under the records' lock, with the version check: a write that loses counts nothing.
        lock(&self.counters).add(&crate::counters::deltas(&entries));
        if !entries.is_empty() {
            let mut audit = lock(&self.audit);
            audit
                .entry(contact.to_string())
                .or_default()
                .push((record.version, entries));
        }
        self.remember(contact, records.get(contact));
        records.insert(contact.to_string(), stored);
        Ok(())
    }

    async fn clear_outbox(&self, contact: &str, version: u64) -> Result<bool, StoreError> {
        match lock(&self.records).get_mut(contact) {
            Some(r) if r.version == version => {
                self.remember(contact, Some(r));
                r.outbox.clear();
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn load_seen(&self, contact: &str, days: &[i64]) -> Result<Vec<SeenId>, StoreError> {
        let seen = lock(&self.seen);
        let Some(cold) = seen.get(contact) else {
            return Ok(Vec::new());
        };
        Ok(days.iter().filter_map(|d| cold.get(d)).flatten().copied().collect())
    }
}

impl Counters {
    fn add(&mut self, deltas: &[crate::CounterDelta]) {
        for delta in deltas {
            let day = self.days.entry((delta.segment.clone(), delta.day.clone())).or_default();
            let members = self.members.entry(delta.segment.clone()).or_default();
            match delta.change {
                kairos_event::Change::Entered => (*members, day.0) = (*members + 1, day.0 + 1),
                kairos_event::Change::Exited => (*members, day.1) = (*members - 1, day.1 + 1),
            }
        }
    }
}

/// The counters in maps, updated in the same locked step as the record.
impl crate::SegmentCounters for MemoryContacts {
    async fn segment_counts(&self, segment: &str, days: &[String]) -> Result<crate::SegmentCounts, StoreError> {
        let counters = lock(&self.counters);
        let days = days
            .iter()
            .map(|day| {
                let (entries, exits) = counters
                    .days
                    .get(&(segment.to_string(), day.clone()))
                    .copied()
                    .unwrap_or_default();
                crate::DayCount {
                    day: day.clone(),
                    entries,
                    exits,
                }
            })
            .collect();
        Ok(crate::SegmentCounts {
            members: counters.members.get(segment).copied().unwrap_or(0),
            days,
        })
    }
}

/// The audit items in a map, as the DynamoDB adapter's table holds them.
impl crate::AuditTrail for MemoryContacts {
    async fn audit(&self, contact: &str, cursor: Option<&str>, limit: usize) -> Result<crate::AuditPage, StoreError> {
        let audit = lock(&self.audit);
        let items = audit.get(contact).map(Vec::as_slice).unwrap_or_default();
        let mut page = crate::AuditPage::default();
        let newer_than_cursor = |v: &u64| cursor.is_none_or(|c| crate::audit::cursor_of(*v).as_str() < c);
        let mut left = items.iter().rev().filter(|(v, _)| newer_than_cursor(v)).peekable();
        while let Some((version, entries)) = left.next() {
            page.entries.extend(entries.iter().rev().cloned());
            if page.entries.len() >= limit.max(1) && left.peek().is_some() {
                page.next = Some(crate::audit::cursor_of(*version));
                break;
            }
        }
        Ok(page)
    }

    async fn forget_audit(&self, contact: &str) -> Result<usize, StoreError> {
        Ok(lock(&self.audit).remove(contact).map_or(0, |items| items.len()))
    }

    async fn append(&self, key: &str, entries: &[kairos_event::AuditEntry]) -> Result<(), StoreError> {
        let mut audit = lock(&self.audit);
        let items = audit.entry(key.to_string()).or_default();
        // Keyed by the entries' latest time (ms), as in DynamoDB: a repeat replaces.
        let at = entries.iter().map(|e| e.at.timestamp_millis()).max().unwrap_or(0);
        let version = u64::try_from(at).unwrap_or(0);
        items.retain(|(v, _)| *v != version);
        items.push((version, entries.to_vec()));
        items.sort_by_key(|(v, _)| *v);
        Ok(())
    }
}

/// The due index over the map, as the table's index holds it: records with
/// a `due_at` that are not frozen, in [`crate::DEFAULT_DUE_SHARDS`] shards.
/// A segment holds the keys whose due shard over `segments` shards is its number.
impl crate::ContactScan for MemoryContacts {
    async fn scan(
        &self,
        segment: u32,
        segments: u32,
        after: Option<&str>,
        limit: usize,
    ) -> Result<crate::ScanPage, StoreError> {
        let records = lock(&self.records);
        let mut keys: Vec<(&String, bool)> = records
            .iter()
            .filter(|(key, _)| crate::due_shard(key, segments.max(1)) == segment)
            .filter(|(key, _)| after.is_none_or(|a| key.as_str() > a))
            .map(|(key, r)| (key, r.merged_into.is_none()))
            .collect();
        keys.sort();
        let more = keys.len() > limit;
        keys.truncate(limit.max(1));
        Ok(crate::ScanPage {
            contacts: keys
                .iter()
                .filter(|(_, live)| *live)
                .map(|(k, _)| (*k).clone())
                .collect(),
            scanned: keys.len(),
            next: more.then(|| keys.last().map(|(k, _)| (*k).clone())).flatten(),
        })
    }

    async fn progress(&self) -> Result<Option<crate::BackfillProgress>, StoreError> {
        Ok(lock(&self.backfill).clone())
    }

    async fn record_progress(&self, progress: &crate::BackfillProgress) -> Result<(), StoreError> {
        *lock(&self.backfill) = Some(progress.clone());
        Ok(())
    }
}

impl DueIndex for MemoryContacts {
    fn shards(&self) -> u32 {
        crate::DEFAULT_DUE_SHARDS
    }

    async fn due(&self, shard: u32, until: i64, after: Option<&Due>, limit: usize) -> Result<DuePage, StoreError> {
        let records = lock(&self.records);
        let mut due: Vec<Due> = records
            .iter()
            .filter(|(key, r)| r.merged_into.is_none() && crate::due_shard(key, self.shards()) == shard)
            .filter_map(|(key, r)| {
                let due_at = r.due_at.filter(|t| *t <= until)?;
                Some(Due {
                    contact: key.clone(),
                    due_at,
                })
            })
            .filter(|d| after.is_none_or(|a| (d.due_at, &d.contact) > (a.due_at, &a.contact)))
            .collect();
        due.sort_by(|a, b| (a.due_at, &a.contact).cmp(&(b.due_at, &b.contact)));
        let more = due.len() > limit;
        due.truncate(limit);
        let next = more.then(|| due.last().cloned()).flatten();
        Ok(DuePage { due, next })
    }
}

/// A rules object in memory: [`MemoryRules::publish`] replaces it with a new
/// ETag, which is also its sequence (1, 2, …).
#[derive(Debug, Default)]
pub struct MemoryRules {
    object: Mutex<Option<(String, String)>>,
}

impl MemoryRules {
    /// Publishes `text` under a new ETag.
    pub fn publish(&self, text: &str) {
        let mut object = lock(&self.object);
        let n = object.as_ref().map_or(0, |(etag, _)| etag.parse::<u64>().unwrap_or(0)) + 1;
        *object = Some((n.to_string(), text.to_string()));
    }
}

impl RulesObject for MemoryRules {
    async fn fetch(&self, etag: Option<&str>) -> Result<Fetched, StoreError> {
        Ok(match lock(&self.object).as_ref() {
            None => Fetched::Missing,
            Some((current, _)) if Some(current.as_str()) == etag => Fetched::Unchanged,
            Some((current, text)) => Fetched::Object {
                text: text.clone(),
                etag: current.clone(),
                seq: current.parse().unwrap_or(0),
            },
        })
    }
}

/// A FIFO of message bodies; [`MemoryQueue::drain`] takes what was sent.
#[derive(Debug, Default)]
pub struct MemoryQueue {
    messages: Mutex<VecDeque<Message>>,
}

impl MemoryQueue {
    /// Removes and returns every queued message, oldest first.
    pub fn drain(&self) -> Vec<Message> {
        lock(&self.messages).drain(..).collect()
    }

    /// How many messages are queued.
    pub fn len(&self) -> usize {
        lock(&self.messages).len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Queue for MemoryQueue {
    async fn send(&self, messages: &[Message]) -> Result<(), QueueError> {
        lock(&self.messages).extend(messages.iter().cloned());
        Ok(())
    }
}

/// Delivered versions in a map.
#[derive(Debug, Default)]
pub struct MemoryLedger {
    versions: Mutex<HashMap<String, u64>>,
}

impl DeliveryLedger for MemoryLedger {
    async fn delivered(&self, key: &str) -> Result<Option<u64>, StoreError> {
        Ok(lock(&self.versions).get(key).copied())
    }

    async fn record(&self, key: &str, version: u64) -> Result<(), StoreError> {
        let mut versions = lock(&self.versions);
        let entry = versions.entry(key.to_string()).or_insert(version);
        *entry = (*entry).max(version);
        Ok(())
    }
}

/// Claimed keys, their expiry and whether they are confirmed, in a map.
#[derive(Debug, Default)]
pub struct MemoryClaims {
    keys: Mutex<HashMap<String, (i64, bool)>>,
}

impl Claims for MemoryClaims {
    async fn claim(&self, key: &str, pending_until: i64, now: i64) -> Result<Claimed, StoreError> {
        let mut keys = lock(&self.keys);
        keys.retain(|_, (expiry, _)| *expiry >= now);
        match keys.get(key) {
            Some((_, true)) => Ok(Claimed::Done),
            Some((_, false)) => Ok(Claimed::Pending),
            None => {
                keys.insert(key.to_string(), (pending_until, false));
                Ok(Claimed::Fresh)
            }
        }
    }

    async fn confirm(&self, key: &str, expires_at: i64) -> Result<(), StoreError> {
        lock(&self.keys).insert(key.to_string(), (expires_at, true));
        Ok(())
    }

    async fn release(&self, key: &str) -> Result<(), StoreError> {
        lock(&self.keys).remove(key);
        Ok(())
    }
}

/// Cached values in a map (no expiry: a test or demo outlives no TTL).
#[derive(Debug, Default)]
pub struct MemoryLookups {
    values: Mutex<HashMap<String, String>>,
}

impl Lookups for MemoryLookups {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(lock(&self.values).get(key).cloned())
    }

    async fn put(&self, key: &str, value: &str, _ttl_secs: i64) -> Result<(), StoreError> {
        lock(&self.values).insert(key.to_string(), value.to_string());
        Ok(())
    }

    async fn forget(&self, key: &str) -> Result<(), StoreError> {
        lock(&self.values).remove(key);
        Ok(())
    }
}

/// Dead letters kept in order: `(body, attributes)`.
#[derive(Debug, Default)]
pub struct MemoryDeadLetters {
    letters: Mutex<Vec<(String, Vec<Attribute>)>>,
}

impl MemoryDeadLetters {
    /// Every dead letter sent so far, oldest first.
    pub fn letters(&self) -> Vec<(String, Vec<Attribute>)> {
        lock(&self.letters).clone()
    }
}

impl DeadLetters for MemoryDeadLetters {
    async fn dead_letter(&self, body: &str, attributes: &[Attribute]) -> Result<(), QueueError> {
        lock(&self.letters).push((body.to_string(), attributes.to_vec()));
        Ok(())
    }
}

/// Delays asked for, in order: `(receipt handle, seconds)`.
#[derive(Debug, Default)]
pub struct MemoryRedelivery {
    delays: Mutex<Vec<(String, u32)>>,
}

impl MemoryRedelivery {
    /// Takes the delays asked for so far.
    pub fn drain(&self) -> Vec<(String, u32)> {
        lock(&self.delays).drain(..).collect()
    }
}

impl Redelivery for MemoryRedelivery {
    async fn delay(&self, receipt_handle: &str, secs: u32) -> Result<(), QueueError> {
        lock(&self.delays).push((receipt_handle.to_string(), secs));
        Ok(())
    }
}

/// Locks a mutex, recovering the data if a panicking holder poisoned it.
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Erasure over the maps. The in-memory ledger and lookups are objects of
/// their own ([`MemoryLedger`], [`MemoryLookups`]): this store holds none.
impl crate::Erasure for MemoryContacts {
    async fn linked_anonymous(&self, contact: &str) -> Result<Vec<String>, StoreError> {
        let records = lock(&self.records);
        let mut keys: Vec<String> = records
            .iter()
            .filter(|(_, r)| r.merged_into.as_deref() == Some(contact))
            .map(|(k, _)| k.clone())
            .collect();
        keys.sort();
        Ok(keys)
    }

    async fn delete_record(&self, key: &str) -> Result<(), StoreError> {
        lock(&self.records).remove(key);
        Ok(())
    }

    async fn forget_consent(&self, key: &str) -> Result<(), StoreError> {
        lock(&self.consents).remove(key);
        Ok(())
    }

    /// Only the cold days are here: the ledger and lookups are apart.
    async fn forget_deliveries(
        &self,
        keys: &[String],
        _deadline: std::time::Instant,
    ) -> Result<crate::Forgotten, StoreError> {
        let mut seen = lock(&self.seen);
        let deleted = keys.iter().filter_map(|k| seen.remove(k)).map(|days| days.len()).sum();
        Ok(crate::Forgotten { deleted, done: true })
    }
}
