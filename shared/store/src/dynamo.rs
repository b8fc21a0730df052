//! DynamoDB adapters. One table, partition key `pk` (S):
//! - `contact#<key>`: `format` (N: the item's format, [`STATE_FORMAT`]; absent
//!   on items of the first release, format 1), `version` (N), `state` (B, compact
//!   encoding of that format), `outbox` (L of S, absent when empty), `next_change_at`
//!   (N, optional), `expires_at` (N, TTL), `merged_into` (S, optional: on a frozen
//!   `anon:` record, the contact it is linked to), `consent_kept` (N, optional:
//!   the [`Consent::order`] of the consent last kept apart), `rules_seq` (N,
//!   optional: the published rules version that last decided it), and, when the record
//!   is due some time (never on a frozen one), `due_at` (N) and `due_shard` (N,
//!   [`crate::due_shard`]): the keys of the sparse, keys-only index [`DUE_INDEX`];
//!   `erased_at` (N) marks an erased contact's tombstone, and `merged_into` is
//!   the partition key of the sparse, keys-only index [`crate::MERGED_INDEX`];
//!   `overrides` (S, JSON, only when some are held) and with it `pinned` (N, 1),
//!   the partition key of the sparse, keys-only index [`crate::PINNED_INDEX`];
//! - `consent#<key>`: `consent` (N, a [`Consent::order`]), `status` (S, for
//!   people reading the table): the contact's consent, kept apart from its
//!   record and never expiring, raised by last writer wins;
//! - `delivery#<key>`: `version` (N), `expires_at` (N);
//! - `lookup#<key>`: `value` (S), `expires_at` (N) (`dynamo_lookup.rs`);
//! - `claim#<key>`: `expires_at` (N) and `state` (S, `pending` or `done`), a one-time webhook token;
//! - `segment#<id>[#<shard>]` and `segday#<id>#<day>[#<shard>]`: segment
//!   counters, split into shards (`dynamo_counters.rs`);
//! - `seen#<key>#<yyyy-mm-dd>`: a contact's event ids of that day kept apart
//!   from its record (`dynamo_seen.rs`, [`crate::cold`]).

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity};
use aws_sdk_dynamodb::Client;
use kairos_state::{CodecError, Consent, ContactState, LEDGER_TTL_SECS, STATE_FORMAT};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::{Claimed, Claims, ContactStore, DeliveryLedger, Due, DueIndex, DuePage, StoreError, StoredContact};

pub(crate) type Item = HashMap<String, AttributeValue>;

/// The due index's name: a global secondary index of the table, partition
/// `due_shard` (N), sort `due_at` (N), keys only; sparse (only items with
/// both attributes are in it).
pub const DUE_INDEX: &str = "due";

/// Contact records in DynamoDB, written with a version condition.
#[derive(Debug, Clone)]
pub struct DynamoContacts {
    client: Client,
    table: String,
    due_shards: u32,
    /// The audit table and how long its entries are kept (seconds); `None`:
    /// no audit trail is kept (entries to save are dropped).
    audit: Option<(String, i64)>,
    consumed_milli_wcu: std::sync::Arc<AtomicU64>,
}

impl DynamoContacts {
    /// Uses `table` through `client`.
    pub fn new(client: Client, table: impl Into<String>) -> DynamoContacts {
        DynamoContacts {
            client,
            table: table.into(),
            due_shards: crate::DEFAULT_DUE_SHARDS,
            audit: None,
            consumed_milli_wcu: Default::default(),
        }
    }

    /// The same store, keeping the audit trail in `table` (`KAIROS_AUDIT_TABLE`,
    /// the template's `AuditTable`), each entry for `retention_days`
    /// (`KAIROS_AUDIT_RETENTION_DAYS`) by the table's TTL.
    pub fn with_audit(mut self, table: impl Into<String>, retention_days: i64) -> DynamoContacts {
        self.audit = Some((table.into(), retention_days.max(1) * 86_400));
        self
    }

    /// The same store, writing and reading the due index over `shards`
    /// shards (`KAIROS_DUE_SHARDS`; at least 1, at most [`crate::MAX_DUE_SHARDS`]).
    pub fn with_due_shards(mut self, shards: u32) -> DynamoContacts {
        self.due_shards = shards.clamp(1, crate::MAX_DUE_SHARDS);
        self
    }

    /// The audit table and its retention (seconds), if configured.
    pub(crate) fn audit_config(&self) -> Option<(&str, i64)> {
        self.audit.as_ref().map(|(t, keep)| (t.as_str(), *keep))
    }

    /// The DynamoDB client.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    /// The contacts table's name.
    pub(crate) fn table(&self) -> &str {
        &self.table
    }

    /// Write capacity units consumed by this adapter's writes so far (from
    /// `ReturnConsumedCapacity`).
    pub fn consumed_write_units(&self) -> f64 {
        self.consumed_milli_wcu.load(Ordering::Relaxed) as f64 / 1000.0
    }

    pub(crate) fn count(&self, units: Option<f64>) {
        let milli = (units.unwrap_or(0.0) * 1000.0).round() as u64;
        self.consumed_milli_wcu.fetch_add(milli, Ordering::Relaxed);
    }
}

impl DynamoContacts {
    /// The record's conditional write (with its audit item and counters in a
    /// transaction when it carries any).
    async fn save_record(
        &self,
        contact: &str,
        expected: Option<u64>,
        record: &StoredContact,
    ) -> Result<(), StoreError> {
        let deltas = crate::counters::deltas(&record.audit);
        if let (Some((audit_table, keep)), false) = (&self.audit, record.audit.is_empty()) {
            let item = crate::dynamo_audit::item(contact, record.version, &record.audit, *keep);
            return self
                .save_in_transaction(contact, expected, record, Some((audit_table, item)), &deltas)
                .await;
        }
        if !deltas.is_empty() {
            return self.save_in_transaction(contact, expected, record, None, &deltas).await;
        }
        let (condition, names, values) = on_version(expected);
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(to_item(contact, record, self.due_shards)))
            .condition_expression(condition)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values)
            .return_consumed_capacity(ReturnConsumedCapacity::Total);
        match request.send().await {
            Ok(out) => {
                self.count(out.consumed_capacity().and_then(|c| c.capacity_units()));
                Ok(())
            }
            Err(err) => match err.into_service_error() {
                e if e.is_conditional_check_failed_exception() => Err(StoreError::Conflict),
                e => Err(backend(e)),
            },
        }
    }

    /// The record's put, its audit item's and its segment counters' updates
    /// (`dynamo_counters.rs`) in one transaction: the audit item and the
    /// counts exist exactly when the record's version was written.
    async fn save_in_transaction(
        &self,
        contact: &str,
        expected: Option<u64>,
        record: &StoredContact,
        audit: Option<(&str, Item)>,
        deltas: &[crate::CounterDelta],
    ) -> Result<(), StoreError> {
        use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
        let (condition, names, values) = on_version(expected);
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(contact, record, self.due_shards)))
            .condition_expression(condition)
            .set_expression_attribute_names(names)
            .set_expression_attribute_values(values);
        let mut items = vec![TransactWriteItem::builder().put(put.build().map_err(backend)?).build()];
        if let Some((audit_table, audit_item)) = audit {
            items.push(crate::dynamo_audit::put_new(audit_table, audit_item)?);
        }
        for update in crate::dynamo_counters::updates(&self.table, contact, deltas, items.len())? {
            items.push(TransactWriteItem::builder().update(update).build());
        }
        let units = crate::transact_write(&self.client, items).await?;
        self.count(Some(units));
        Ok(())
    }
}

/// The condition of a record's write on the version it read (`None` or 0:
/// no record yet): the expression, its attribute names and its values.
pub(crate) fn on_version(expected: Option<u64>) -> (&'static str, Option<HashMap<String, String>>, Option<Item>) {
    match expected {
        None | Some(0) => ("attribute_not_exists(pk)", None, None),
        Some(v) => (
            "#v = :v",
            Some(HashMap::from([("#v".to_string(), "version".to_string())])),
            Some(HashMap::from([(":v".to_string(), n(v))])),
        ),
    }
}

pub(crate) fn key(prefix: &str, id: &str) -> AttributeValue {
    AttributeValue::S(format!("{prefix}#{id}"))
}

pub(crate) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(crate) fn backend<E: std::error::Error + Send + Sync + 'static>(err: E) -> StoreError {
    StoreError::Backend(Box::new(err))
}

fn to_item(contact: &str, record: &StoredContact, due_shards: u32) -> Item {
    let mut item = Item::new();
    item.insert("pk".into(), key("contact", contact));
    item.insert("format".into(), n(STATE_FORMAT));
    item.insert("version".into(), n(record.version));
    item.insert("state".into(), AttributeValue::B(Blob::new(record.state.to_bytes())));
    item.insert("expires_at".into(), n(record.expires_at));
    if !record.outbox.is_empty() {
        let list = record.outbox.iter().cloned().map(AttributeValue::S).collect();
        item.insert("outbox".into(), AttributeValue::L(list));
    }
    if let Some(t) = record.next_change_at {
        item.insert("next_change_at".into(), n(t));
    }
    if record.rules_seq > 0 {
        item.insert("rules_seq".into(), n(record.rules_seq));
    }
    if let Some(target) = &record.merged_into {
        item.insert("merged_into".into(), AttributeValue::S(target.clone()));
    } else if let Some(t) = record.due_at {
        item.insert("due_at".into(), n(t));
        item.insert("due_shard".into(), n(crate::due_shard(contact, due_shards)));
    }
    if let Some(kept) = record.consent_to_keep().or(record.consent_kept) {
        item.insert("consent_kept".into(), n(kept.order()));
    }
    if !record.overrides.is_empty() {
        let json = serde_json::to_string(&record.overrides).expect("overrides serialize");
        item.insert("overrides".into(), AttributeValue::S(json));
        // The sparse pinned index's key (`dynamo_pinned.rs`): present only while pinned.
        item.insert(crate::dynamo_pinned::PINNED.into(), n(1));
    }
    if let Some(t) = record.erased_at {
        item.insert("erased_at".into(), n(t));
    }
    if let Some(written) = &record.written {
        let list = written.iter().cloned().map(AttributeValue::S).collect();
        item.insert("written".into(), AttributeValue::L(list));
    }
    item
}

fn strings(item: &Item, name: &str) -> Result<Option<Vec<String>>, StoreError> {
    match item.get(name) {
        None => Ok(None),
        Some(AttributeValue::L(list)) => list
            .iter()
            .map(|v| {
                v.as_s()
                    .cloned()
                    .map_err(|_| StoreError::Corrupt(format!("attribute `{name}` holds a non-string")))
            })
            .collect::<Result<_, _>>()
            .map(Some),
        Some(_) => Err(StoreError::Corrupt(format!("attribute `{name}` is not a list"))),
    }
}

pub(crate) fn number(item: &Item, name: &str) -> Result<Option<i64>, StoreError> {
    match item.get(name) {
        None => Ok(None),
        Some(AttributeValue::N(text)) => text
            .parse()
            .map(Some)
            .map_err(|_| StoreError::Corrupt(format!("attribute `{name}` is not an integer"))),
        Some(_) => Err(StoreError::Corrupt(format!("attribute `{name}` is not a number"))),
    }
}

pub(crate) fn text(item: &Item, name: &str) -> Result<Option<String>, StoreError> {
    match item.get(name) {
        None => Ok(None),
        Some(AttributeValue::S(text)) => Ok(Some(text.clone())),
        Some(_) => Err(StoreError::Corrupt(format!("attribute `{name}` is not a string"))),
    }
}

impl TryFrom<&Item> for StoredContact {
    type Error = StoreError;

    fn try_from(item: &Item) -> Result<StoredContact, StoreError> {
        let version =
            number(item, "version")?.ok_or_else(|| StoreError::Corrupt("attribute `version` is missing".into()))?;
        let format = match number(item, "format")? {
            None => 1,
            Some(f) => u32::try_from(f).map_err(|_| StoreError::Corrupt(format!("attribute `format` is {f}")))?,
        };
        let state = match item.get("state") {
            Some(AttributeValue::B(blob)) => ContactState::decode(blob.as_ref(), format).map_err(|e| match e {
                CodecError::Newer { found, supported } => StoreError::Newer { found, supported },
                invalid => StoreError::Corrupt(format!("attribute `state`: {invalid}")),
            })?,
            _ => return Err(StoreError::Corrupt("attribute `state` is missing or not binary".into())),
        };
        let outbox = strings(item, "outbox")?.unwrap_or_default();
        let overrides = match text(item, "overrides")? {
            None => Vec::new(),
            Some(json) => {
                serde_json::from_str(&json).map_err(|e| StoreError::Corrupt(format!("attribute `overrides`: {e}")))?
            }
        };
        Ok(StoredContact {
            version: u64::try_from(version)
                .map_err(|_| StoreError::Corrupt("attribute `version` is negative".into()))?,
            state,
            outbox,
            next_change_at: number(item, "next_change_at")?,
            due_at: number(item, "due_at")?,
            expires_at: number(item, "expires_at")?.unwrap_or(0),
            merged_into: text(item, "merged_into")?,
            consent_kept: number(item, "consent_kept")?.map(Consent::from_order),
            rules_seq: number(item, "rules_seq")?
                .map(u64::try_from)
                .transpose()
                .map_err(|_| StoreError::Corrupt("attribute `rules_seq` is negative".into()))?
                .unwrap_or(0),
            overrides,
            written: strings(item, "written")?,
            audit: Vec::new(),
            erased_at: number(item, "erased_at")?,
        })
    }
}

impl ContactStore for DynamoContacts {
    async fn load(&self, contact: &str) -> Result<Option<StoredContact>, StoreError> {
        self.load_read(contact, true).await
    }

    async fn load_eventually(&self, contact: &str) -> Result<Option<StoredContact>, StoreError> {
        self.load_read(contact, false).await
    }

    async fn save(&self, contact: &str, expected: Option<u64>, record: &StoredContact) -> Result<(), StoreError> {
        let (cold, consent) = (record.state.cold_writes(), record.consent_to_keep());
        let saved = async {
            self.write_seen(contact, &cold).await?;
            if let Some(consent) = &consent {
                self.keep_consent(contact, consent).await?;
            }
            self.save_record(contact, expected, record).await
        }
        .await;
        if saved.is_err() && (!cold.is_empty() || consent.is_some()) {
            let days: Vec<i64> = cold.iter().map(|(day, _)| *day).collect();
            if let Err(err) = self.take_back_if_erased(contact, &days, consent.is_some()).await {
                // The save's own failure is what the caller acts on.
                tracing::warn!(error = %err, "could not check a failed save against an erasure");
            }
        }
        saved
    }

    async fn clear_outbox(&self, contact: &str, version: u64) -> Result<bool, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", key("contact", contact))
            .update_expression("REMOVE outbox")
            .condition_expression("#v = :v")
            .expression_attribute_names("#v", "version")
            .expression_attribute_values(":v", n(version))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match result {
            Ok(out) => {
                self.count(out.consumed_capacity().and_then(|c| c.capacity_units()));
                Ok(true)
            }
            Err(err) => match err.into_service_error() {
                e if e.is_conditional_check_failed_exception() => Ok(false),
                e => Err(backend(e)),
            },
        }
    }

    async fn load_seen(&self, contact: &str, days: &[i64]) -> Result<Vec<kairos_state::SeenId>, StoreError> {
        self.read_seen(contact, days).await
    }
}

/// The backfill's progress item's key.
const BACKFILL_PK: &str = "backfill#rules";

/// A parallel scan of the table's contact records (`Segment`/`TotalSegments`,
/// keys only, frozen records filtered out); the backfill's progress is the
/// item `backfill#rules`.
impl crate::ContactScan for DynamoContacts {
    async fn scan(
        &self,
        segment: u32,
        segments: u32,
        after: Option<&str>,
        limit: usize,
    ) -> Result<crate::ScanPage, StoreError> {
        let scan = self
            .client
            .scan()
            .table_name(&self.table)
            .segment(segment as i32)
            .total_segments(segments.max(1) as i32)
            .projection_expression("pk")
            .filter_expression("begins_with(pk, :c) AND attribute_not_exists(merged_into)")
            .expression_attribute_values(":c", AttributeValue::S("contact#".into()))
            .limit(limit.clamp(1, i32::MAX as usize) as i32)
            .set_exclusive_start_key(after.map(|pk| [("pk".to_string(), AttributeValue::S(pk.to_string()))].into()));
        let out = scan.send().await.map_err(backend)?;
        let mut contacts = Vec::new();
        for item in out.items() {
            let pk = text(item, "pk")?.unwrap_or_default();
            if let Some(contact) = pk.strip_prefix("contact#") {
                contacts.push(contact.to_string());
            }
        }
        let next = out
            .last_evaluated_key()
            .and_then(|k| k.get("pk"))
            .and_then(|v| v.as_s().ok());
        Ok(crate::ScanPage {
            contacts,
            scanned: usize::try_from(out.scanned_count()).unwrap_or(0),
            next: next.cloned(),
        })
    }

    async fn progress(&self) -> Result<Option<crate::BackfillProgress>, StoreError> {
        let Some(item) = self.get(AttributeValue::S(BACKFILL_PK.into())).await? else {
            return Ok(None);
        };
        let num = |name: &str| -> Result<u64, StoreError> {
            let value = number(&item, name)?.unwrap_or(0);
            u64::try_from(value).map_err(|_| StoreError::Corrupt(format!("backfill attribute `{name}` is negative")))
        };
        Ok(Some(crate::BackfillProgress {
            seq: num("seq")?,
            segment: u32::try_from(num("segment")?).unwrap_or(u32::MAX),
            segments: u32::try_from(num("segments")?).unwrap_or(u32::MAX),
            cursor: text(&item, "cursor")?,
            scanned: num("scanned")?,
            sent: num("sent")?,
        }))
    }

    async fn record_progress(&self, progress: &crate::BackfillProgress) -> Result<(), StoreError> {
        let mut item = Item::new();
        item.insert("pk".into(), AttributeValue::S(BACKFILL_PK.into()));
        item.insert("seq".into(), n(progress.seq));
        item.insert("segment".into(), n(progress.segment));
        item.insert("segments".into(), n(progress.segments));
        item.insert("scanned".into(), n(progress.scanned));
        item.insert("sent".into(), n(progress.sent));
        if let Some(cursor) = &progress.cursor {
            item.insert("cursor".into(), AttributeValue::S(cursor.clone()));
        }
        let put = self.client.put_item().table_name(&self.table).set_item(Some(item));
        put.send().await.map_err(backend)?;
        Ok(())
    }
}

impl DueIndex for DynamoContacts {
    fn shards(&self) -> u32 {
        self.due_shards
    }

    async fn due(&self, shard: u32, until: i64, after: Option<&Due>, limit: usize) -> Result<DuePage, StoreError> {
        let mut query = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(DUE_INDEX)
            .key_condition_expression("due_shard = :s AND due_at <= :t")
            .expression_attribute_values(":s", n(shard))
            .expression_attribute_values(":t", n(until))
            .limit(limit.clamp(1, i32::MAX as usize) as i32);
        if let Some(after) = after {
            query = query
                .exclusive_start_key("pk", key("contact", &after.contact))
                .exclusive_start_key("due_shard", n(shard))
                .exclusive_start_key("due_at", n(after.due_at));
        }
        let out = query.send().await.map_err(backend)?;
        let mut due = Vec::new();
        for item in out.items() {
            let pk = text(item, "pk")?.unwrap_or_default();
            let Some(contact) = pk.strip_prefix("contact#") else {
                return Err(StoreError::Corrupt(format!("due index entry `{pk}` is not a contact")));
            };
            let due_at = number(item, "due_at")?
                .ok_or_else(|| StoreError::Corrupt("due index entry without `due_at`".into()))?;
            due.push(Due {
                contact: contact.to_string(),
                due_at,
            });
        }
        let next = out.last_evaluated_key().and(due.last().cloned());
        Ok(DuePage { due, next })
    }
}

impl DynamoContacts {
    /// The contact's record, read strongly (`consistent`) or eventually
    /// consistent; without one, its kept consent, always read strongly (no
    /// version condition guards it).
    async fn load_read(&self, contact: &str, consistent: bool) -> Result<Option<StoredContact>, StoreError> {
        if let Some(item) = self.get_read(key("contact", contact), consistent).await? {
            return StoredContact::try_from(&item).map(Some);
        }
        let Some(kept) = self.get(key("consent", contact)).await? else {
            return Ok(None);
        };
        let order =
            number(&kept, "consent")?.ok_or_else(|| StoreError::Corrupt("attribute `consent` is missing".into()))?;
        Ok(Some(StoredContact::with_kept_consent(&Consent::from_order(order))))
    }

    /// The item under `pk`, read consistently.
    async fn get(&self, pk: AttributeValue) -> Result<Option<Item>, StoreError> {
        self.get_read(pk, true).await
    }

    /// The item under `pk`, read strongly (`consistent`) or eventually consistent.
    async fn get_read(&self, pk: AttributeValue, consistent: bool) -> Result<Option<Item>, StoreError> {
        let get = self.client.get_item().table_name(&self.table).key("pk", pk);
        let out = get.consistent_read(consistent).send().await.map_err(backend)?;
        Ok(out.item)
    }

    /// Raises the contact's kept consent to `consent` unless a later one is kept.
    async fn keep_consent(&self, contact: &str, consent: &Consent) -> Result<(), StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", key("consent", contact))
            .item("consent", n(consent.order()))
            .item("status", AttributeValue::S(consent.status().as_str().into()))
            .condition_expression("attribute_not_exists(pk) OR #c < :c")
            .expression_attribute_names("#c", "consent")
            .expression_attribute_values(":c", n(consent.order()))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match result {
            Ok(out) => {
                self.count(out.consumed_capacity().and_then(|c| c.capacity_units()));
                Ok(())
            }
            Err(err) => match err.into_service_error() {
                e if e.is_conditional_check_failed_exception() => Ok(()),
                e => Err(backend(e)),
            },
        }
    }
}

/// Delivered versions in DynamoDB, raised with a conditional write.
#[derive(Debug, Clone)]
pub struct DynamoLedger {
    client: Client,
    table: String,
}

impl DynamoLedger {
    /// Uses `table` through `client`.
    pub fn new(client: Client, table: impl Into<String>) -> DynamoLedger {
        DynamoLedger {
            client,
            table: table.into(),
        }
    }
}

impl DeliveryLedger for DynamoLedger {
    async fn delivered(&self, id: &str) -> Result<Option<u64>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", key("delivery", id))
            .consistent_read(true)
            .send()
            .await
            .map_err(backend)?;
        let Some(item) = out.item() else {
            return Ok(None);
        };
        let version =
            number(item, "version")?.ok_or_else(|| StoreError::Corrupt("attribute `version` is missing".into()))?;
        Ok(Some(u64::try_from(version).map_err(|_| {
            StoreError::Corrupt("attribute `version` is negative".into())
        })?))
    }

    async fn record(&self, id: &str, version: u64) -> Result<(), StoreError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let expires = now + LEDGER_TTL_SECS;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", key("delivery", id))
            .item("version", n(version))
            .item("expires_at", n(expires))
            .condition_expression("attribute_not_exists(pk) OR #v < :v")
            .expression_attribute_names("#v", "version")
            .expression_attribute_values(":v", n(version))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) => match err.into_service_error() {
                e if e.is_conditional_check_failed_exception() => Ok(()),
                e => Err(backend(e)),
            },
        }
    }
}

/// One-time tokens in DynamoDB: a conditional put that fails if the token is
/// recorded and unexpired (the table's TTL removes it later).
#[derive(Debug, Clone)]
pub struct DynamoClaims {
    client: Client,
    table: String,
}

impl DynamoClaims {
    /// Uses `table` through `client`.
    pub fn new(client: Client, table: impl Into<String>) -> DynamoClaims {
        DynamoClaims {
            client,
            table: table.into(),
        }
    }
}

impl Claims for DynamoClaims {
    async fn claim(&self, id: &str, pending_until: i64, now: i64) -> Result<Claimed, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .item("pk", key("claim", id))
            .item("expires_at", n(pending_until))
            .item("state", AttributeValue::S(PENDING.into()))
            .condition_expression("attribute_not_exists(pk) OR expires_at < :now")
            .expression_attribute_values(":now", n(now))
            .send()
            .await;
        match result {
            Ok(_) => Ok(Claimed::Fresh),
            Err(err) => match err.into_service_error() {
                e if e.is_conditional_check_failed_exception() => self.held(id).await,
                e => Err(backend(e)),
            },
        }
    }

    async fn confirm(&self, id: &str, expires_at: i64) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", key("claim", id))
            .item("expires_at", n(expires_at))
            .item("state", AttributeValue::S(DONE.into()))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn release(&self, id: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", key("claim", id))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }
}

/// `state` of a claim whose request is still enqueueing.
const PENDING: &str = "pending";
/// `state` of a claim whose request's events are enqueued.
const DONE: &str = "done";

impl DynamoClaims {
    /// What holds a claim that could not be taken. A claim written before
    /// claims had a `state` was taken after its events were enqueued: done.
    async fn held(&self, id: &str) -> Result<Claimed, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", key("claim", id))
            .consistent_read(true)
            .send()
            .await
            .map_err(backend)?;
        let state = out
            .item()
            .and_then(|item| item.get("state"))
            .and_then(|v| v.as_s().ok());
        Ok(match (out.item(), state.map(String::as_str)) {
            // Released between the two requests: its holder failed; retry soon.
            (None, _) | (Some(_), Some(PENDING)) => Claimed::Pending,
            (Some(_), _) => Claimed::Done,
        })
    }
}

#[cfg(test)]
mod tests;
