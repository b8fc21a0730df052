//! What AWS would bill for the soak, counted as it runs: DynamoDB request
//! units by item size (a write unit per started KiB of the larger of the
//! item before and after, failed conditions included; a strongly consistent
//! read unit per started 4 KiB, half one eventually consistent; the keys-only
//! due index's writes; a save with audit entries is a `TransactWriteItems` of
//! the record, its audit item and its segment counters, each billed twice;
//! the cold days of event ids, written and read apart from the record), SQS
//! requests (the simulated queues' bills), Lambda invocations and the
//! measured time of each, API Gateway requests; priced at us-east-1's
//! on-demand list prices.

use kairos_state::SeenId;
use kairos_store::cold::item_size as cold_item_size;
use kairos_store::{
    Claimed, Claims, ContactStore, DeliveryLedger, Due, DueIndex, DuePage, MemoryContacts, MemoryLedger, StoreError,
    StoredContact,
};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Request units counted.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Units {
    /// Read request units, in halves (an eventually consistent read of up to 4 KiB is one half).
    pub read_halves: u64,
    /// Write request units on the table.
    pub write: u64,
    /// Write request units on the due index.
    pub index_write: u64,
    /// Conditional writes of a whole record (failed conditions included).
    pub saves: u64,
    /// Outbox clears.
    pub clears: u64,
    /// Bytes of the records written (the larger of before and after), summed.
    pub saved_bytes: u64,
    /// Saves with audit entries: transactions of the record and its audit item.
    pub transactions: u64,
    /// Write units a transaction adds for its record: the second of the two
    /// it bills per KiB (the first is in [`Units::write`]).
    pub transaction_write: u64,
    /// Write units of the audit items (two per started KiB: transactional).
    pub audit_write: u64,
    /// Write units of the segment counters (`segment#<id>`, `segday#<id>#<day>`)
    /// updated in those transactions: two per item (each under 1 KiB).
    pub counter_write: u64,
    /// Strongly consistent reads of a contact.
    pub strong_reads: u64,
    /// Eventually consistent reads of a contact.
    pub eventual_reads: u64,
    /// Their read units, in halves (in [`Units::read_halves`] too).
    pub eventual_halves: u64,
    /// Write units of the cold days of event ids (`UpdateItem ADD`, by the
    /// larger of the day's item before and after), and how many writes.
    pub cold_write: u64,
    /// Cold day writes (one per day a save moves ids to).
    pub cold_writes: u64,
    /// Read units of the cold days, in halves (strongly consistent), and how many days read.
    pub cold_read_halves: u64,
    /// Cold days read.
    pub cold_reads: u64,
}

impl Units {
    /// Read request units.
    pub fn read(&self) -> f64 {
        self.read_halves as f64 / 2.0
    }
}

/// A port over a memory adapter, counting what DynamoDB would bill for each call.
#[derive(Default)]
pub struct Metered<P> {
    /// The adapter.
    pub inner: P,
    units: Mutex<Units>,
    /// Each contact item's size and due-index key as last written.
    items: Mutex<HashMap<String, (usize, Option<i64>)>>,
    /// Where the bytes of the records saved go (summed over saves).
    bytes: Mutex<Bytes>,
}

/// Where the saved records' bytes go, summed over every save (what the bill
/// sees: a record saved often counts often), and the saves by write units.
#[derive(Debug, Clone, Default)]
pub struct Bytes {
    /// (part, bytes): the state's parts ([`kairos_state::ContactState::encoded_parts`]),
    /// then the outbox and the item's other attributes.
    pub parts: Vec<(&'static str, u64)>,
    /// Saves by write units of the record: 1, 2, 3, 4, 5 and more.
    pub by_units: [u64; 5],
    /// The same parts for the saves of 4 KiB and more (the heavy records).
    pub heavy: Vec<(&'static str, u64)>,
}

impl Bytes {
    fn add(&mut self, contact: &str, record: &StoredContact) {
        let state: Vec<(&'static str, usize)> = record.state.encoded_parts();
        let state_bytes: usize = state.iter().map(|(_, b)| b).sum();
        let outbox: usize =
            record.outbox.iter().map(|m| 1 + m.len()).sum::<usize>() + 9 * usize::from(!record.outbox.is_empty());
        let size = record.item_size(contact);
        let mut parts = state;
        parts.push(("outbox (transitions with explanations)", outbox));
        parts.push(("key, version, times, other attributes", size - state_bytes - outbox));
        let units = wru(size);
        self.by_units[(units as usize).min(5) - 1] += 1;
        add_parts(&mut self.parts, &parts);
        if units >= 4 {
            add_parts(&mut self.heavy, &parts);
        }
    }
}

fn add_parts(sums: &mut Vec<(&'static str, u64)>, parts: &[(&'static str, usize)]) {
    for (name, bytes) in parts {
        match sums.iter_mut().find(|(n, _)| n == name) {
            Some((_, sum)) => *sum += *bytes as u64,
            None => sums.push((name, *bytes as u64)),
        }
    }
}

impl<P> Metered<P> {
    /// Meters `inner`.
    pub fn over(inner: P) -> Metered<P> {
        Metered {
            inner,
            units: Mutex::default(),
            items: Mutex::default(),
            bytes: Mutex::default(),
        }
    }

    /// The units counted so far.
    pub fn units(&self) -> Units {
        *self.units.lock().unwrap()
    }

    /// Where the saved records' bytes went.
    pub fn bytes(&self) -> Bytes {
        self.bytes.lock().unwrap().clone()
    }

    fn add(&self, f: impl FnOnce(&mut Units)) {
        f(&mut self.units.lock().unwrap());
    }
}

/// Write units for an item of `bytes`.
fn wru(bytes: usize) -> u64 {
    bytes.div_ceil(1024).max(1) as u64
}

/// Strongly consistent read units, in halves, for an item of `bytes`.
fn rru_halves(bytes: usize) -> u64 {
    2 * bytes.div_ceil(4096).max(1) as u64
}

/// The size of a save's audit item as DynamoDB counts it (the adapter's
/// `dynamo_audit::item`): `contact` (S), `change` (S, 20 digits), `entries`
/// (S, their JSON) and `expires_at` (N, 10 digits).
fn audit_item_size(contact: &str, record: &StoredContact) -> usize {
    let entries = serde_json::to_string(&record.audit).map_or(0, |j| j.len());
    "contact".len() + contact.len() + "change".len() + 20 + "entries".len() + entries + "expires_at".len() + 6
}

/// The due index's key of a record: absent on a frozen record.
fn index_key(record: &StoredContact) -> Option<i64> {
    record.merged_into.is_none().then_some(record.due_at).flatten()
}

/// Index writes to move an entry from `before` to `after` (keys only).
fn index_writes(before: Option<i64>, after: Option<i64>) -> u64 {
    match (before, after) {
        (None, None) => 0,
        (Some(a), Some(b)) if a == b => 0,
        (Some(_), Some(_)) => 2,
        _ => 1,
    }
}

/// The counter items a save's transaction updates (`dynamo_counters::updates`:
/// one per segment and one per segment and day, each in the contact's shard,
/// so the shard does not change the count; the shared items when more than
/// 49 segments change at once, which these rules never do).
fn counter_items(record: &StoredContact) -> u64 {
    let deltas = kairos_store::counter_deltas(&record.audit);
    let shared = deltas.len() * 2 + 2 > 100;
    let id = |d: &kairos_store::CounterDelta| if shared { "*".to_string() } else { d.segment.clone() };
    let items: std::collections::HashSet<String> = deltas
        .iter()
        .flat_map(|d| [format!("segment#{}", id(d)), format!("segday#{}#{}", id(d), d.day)])
        .collect();
    items.len() as u64
}

/// Whether a save also keeps the consent apart (the adapter's rule).
fn keeps_consent(record: &StoredContact) -> bool {
    let consent = *record.state.consent();
    consent.order() > 0 && Some(consent) != record.consent_kept
}

impl ContactStore for Metered<MemoryContacts> {
    async fn load(&self, contact: &str) -> Result<Option<StoredContact>, StoreError> {
        let loaded = self.inner.load(contact).await?;
        // No record: the miss, then the kept consent's item.
        let halves = match &loaded {
            Some(r) if r.version > 0 => rru_halves(r.item_size(contact)),
            _ => 2 * rru_halves(0),
        };
        self.add(|u| (u.read_halves, u.strong_reads) = (u.read_halves + halves, u.strong_reads + 1));
        Ok(loaded)
    }

    async fn load_eventually(&self, contact: &str) -> Result<Option<StoredContact>, StoreError> {
        let loaded = self.inner.load_eventually(contact).await?;
        // Half a unit per started 4 KiB; no record: the miss, then the kept consent's item (strong).
        let halves = match &loaded {
            Some(r) if r.version > 0 => rru_halves(r.item_size(contact)) / 2,
            _ => rru_halves(0) / 2 + rru_halves(0),
        };
        self.add(|u| {
            (u.read_halves, u.eventual_reads) = (u.read_halves + halves, u.eventual_reads + 1);
            u.eventual_halves += halves;
        });
        Ok(loaded)
    }

    async fn save(&self, contact: &str, expected: Option<u64>, record: &StoredContact) -> Result<(), StoreError> {
        // The cold days first, as the adapter writes them (also when the record's condition fails).
        let cold: Vec<(i64, usize)> = record
            .state
            .cold_writes()
            .iter()
            .map(|(day, _)| (*day, self.inner.cold_ids(contact, *day)))
            .collect();
        let (old_size, old_key) = self.items.lock().unwrap().get(contact).copied().unwrap_or_default();
        let size = record.item_size(contact);
        let consent = u64::from(keeps_consent(record));
        // With audit entries: one transaction of two puts, each billed twice.
        let audited = !record.audit.is_empty();
        let audit = match audited {
            true => 2 * wru(audit_item_size(contact, record)),
            false => 0,
        };
        self.bytes.lock().unwrap().add(contact, record);
        let result = self.inner.save(contact, expected, record).await;
        let cold_units: u64 = cold
            .iter()
            .map(|(day, before)| {
                wru(cold_item_size(
                    contact,
                    (*before).max(self.inner.cold_ids(contact, *day)),
                ))
            })
            .sum();
        self.add(|u| (u.cold_write, u.cold_writes) = (u.cold_write + cold_units, u.cold_writes + cold.len() as u64));
        // A failed condition is billed too.
        let index = match &result {
            Ok(()) => index_writes(old_key, index_key(record)),
            Err(_) => 0,
        };
        self.add(|u| {
            u.write += wru(old_size.max(size)) + consent;
            if audited {
                u.transactions += 1;
                u.transaction_write += wru(old_size.max(size));
                u.audit_write += audit;
                u.counter_write += 2 * counter_items(record);
            }
            u.index_write += index;
            u.saves += 1;
            u.saved_bytes += old_size.max(size) as u64;
        });
        if result.is_ok() {
            self.items
                .lock()
                .unwrap()
                .insert(contact.to_string(), (size, index_key(record)));
        }
        result
    }

    async fn clear_outbox(&self, contact: &str, version: u64) -> Result<bool, StoreError> {
        let cleared = self.inner.clear_outbox(contact, version).await?;
        let current = self.inner.load(contact).await?.filter(|r| r.version > 0);
        let after = current.as_ref().map_or(0, |r| r.item_size(contact));
        let mut items = self.items.lock().unwrap();
        let before = items.get(contact).map_or(after, |(size, _)| *size);
        if let (true, Some(r)) = (cleared, &current) {
            items.insert(contact.to_string(), (after, index_key(r)));
        }
        drop(items);
        self.add(|u| {
            u.write += wru(before.max(after));
            u.clears += 1;
        });
        Ok(cleared)
    }

    /// A strongly consistent read of each day (a missing one too).
    async fn load_seen(&self, contact: &str, days: &[i64]) -> Result<Vec<SeenId>, StoreError> {
        let halves: u64 = days
            .iter()
            .map(|day| rru_halves(cold_item_size(contact, self.inner.cold_ids(contact, *day))))
            .sum();
        self.add(|u| {
            (u.cold_read_halves, u.cold_reads) = (u.cold_read_halves + halves, u.cold_reads + days.len() as u64)
        });
        self.inner.load_seen(contact, days).await
    }
}

/// What a stale read of the records would answer.
impl crate::support::faults::Previous for Metered<MemoryContacts> {
    fn previous(&self, contact: &str) -> Option<Option<StoredContact>> {
        self.inner.previous(contact)
    }
}

/// The due index: an eventually consistent query on a keys-only index,
/// billed by the bytes of the entries returned (at least half a unit).
impl DueIndex for Metered<MemoryContacts> {
    fn shards(&self) -> u32 {
        self.inner.shards()
    }

    async fn due(&self, shard: u32, until: i64, after: Option<&Due>, limit: usize) -> Result<DuePage, StoreError> {
        let page = self.inner.due(shard, until, after, limit).await?;
        // pk, due_shard and due_at of each entry.
        let bytes: usize = page.due.iter().map(|d| 2 + 8 + d.contact.len() + 9 + 4 + 6 + 7).sum();
        self.add(|u| u.read_halves += bytes.div_ceil(4096).max(1) as u64);
        Ok(page)
    }
}

/// The ledger: a strongly consistent read and a conditional put of a small item.
impl DeliveryLedger for Metered<MemoryLedger> {
    async fn delivered(&self, key: &str) -> Result<Option<u64>, StoreError> {
        self.add(|u| u.read_halves += rru_halves(0));
        self.inner.delivered(key).await
    }

    async fn record(&self, key: &str, version: u64) -> Result<(), StoreError> {
        self.add(|u| u.write += 1);
        self.inner.record(key, version).await
    }
}

/// Claims: a conditional put each (ingest's webhooks with one-time tokens).
impl<C: Claims> Claims for Metered<C> {
    async fn claim(&self, key: &str, pending_until: i64, now: i64) -> Result<Claimed, StoreError> {
        self.add(|u| u.write += 1);
        self.inner.claim(key, pending_until, now).await
    }

    async fn confirm(&self, key: &str, expires_at: i64) -> Result<(), StoreError> {
        self.add(|u| u.write += 1);
        self.inner.confirm(key, expires_at).await
    }

    async fn release(&self, key: &str) -> Result<(), StoreError> {
        self.add(|u| u.write += 1);
        self.inner.release(key).await
    }
}

/// One function's invocations and the time they ran.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Lambda {
    /// Invocations.
    pub invocations: u64,
    /// Measured time, summed.
    pub busy: Duration,
    /// Billed milliseconds (each invocation rounded up to the next ms).
    pub billed_ms: u64,
}

impl Lambda {
    /// Counts one invocation that ran `took`.
    pub fn add(&mut self, took: Duration) {
        self.invocations += 1;
        self.busy += took;
        self.billed_ms += (took.as_micros() as u64).div_ceil(1000).max(1);
    }

    /// GB-seconds at `memory_mb`.
    pub fn gb_seconds(&self, memory_mb: u64) -> f64 {
        self.billed_ms as f64 / 1000.0 * memory_mb as f64 / 1024.0
    }
}

/// us-east-1 on-demand list prices (USD), read on 2026-12-05 from
/// <https://aws.amazon.com/dynamodb/pricing/on-demand/>,
/// <https://aws.amazon.com/sqs/pricing/>, <https://aws.amazon.com/lambda/pricing/>
/// and <https://aws.amazon.com/api-gateway/pricing/> (docs/cost.md).
pub mod price {
    /// DynamoDB Standard table class, per million write request units.
    pub const WRU_PER_MILLION: f64 = 0.625;
    /// DynamoDB Standard table class, per million read request units.
    pub const RRU_PER_MILLION: f64 = 0.125;
    /// SQS standard queue, per million requests (first 100 billion a month).
    pub const SQS_PER_MILLION: f64 = 0.40;
    /// Lambda, per million requests.
    pub const LAMBDA_REQUESTS_PER_MILLION: f64 = 0.20;
    /// Lambda on Arm (arm64), per GB-second (first 7.5 billion GB-s a month).
    pub const LAMBDA_ARM_GB_SECOND: f64 = 0.000_013_333_4;
    /// API Gateway HTTP API, per million requests (first 300 million a month; 512 KiB each).
    pub const HTTP_API_PER_MILLION: f64 = 1.00;
}
