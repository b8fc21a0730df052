//! Segment counters in DynamoDB, items of the contacts table:
//! - `segment#<id>`: `members` (N), added to by every transition of the segment;
//! - `segday#<id>#<YYYY-MM-DD>`: `entries` and `exits` (N), `expires_at`
//!   (N, the table's TTL, [`crate::COUNTER_DAYS_KEPT`] days on).
//!
//! Both are `ADD` updates in the record's own conditional transaction
//! (`DynamoContacts::save`), so a save that loses its version condition
//! counts nothing. A transaction holds at most [`MAX_TRANSACTION_ITEMS`]
//! actions: a save whose transitions would need more (more than 49 segments
//! changing in one step) counts them in two shared items instead,
//! `segment#*` (`members:<id>`) and `segday#*#<day>` (`entries:<id>`,
//! `exits:<id>`); a read adds both forms, so the counts stay exact either way.
//!
//! Each of these items is split into [`COUNTER_SHARDS`] shards, and a
//! contact's transitions always go to its own shard ([`crate::due_shard`] of
//! its key): shard 0 is the key above (what builds before sharding wrote, so
//! their counts are kept), shard `k` adds `#<k>`. One item takes at most
//! 1,000 write units a second and concurrent transactions on it cancel each
//! other (`TransactionConflict`), so a popular segment's transitions are
//! spread over [`COUNTER_SHARDS`] items; a read sums the shards
//! (`BatchGetItem`, in chunks of [`MAX_BATCH_KEYS`] sent together).

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Update};
use aws_sdk_dynamodb::Client;
use kairos_event::Change;
use std::collections::{BTreeMap, HashMap};

use crate::dynamo::{backend, n, number, DynamoContacts, Item};
use crate::{CounterDelta, DayCount, SegmentCounters, SegmentCounts, StoreError};

/// DynamoDB's limit on actions in one `TransactWriteItems`.
pub const MAX_TRANSACTION_ITEMS: usize = 100;

/// The shared items' segment id (no segment id holds `*`).
const SHARED: &str = "*";

/// How many items each counter is split into (about 4,000 transitions a
/// second of one segment at 2 write units each). Reads sum shards
/// `0..COUNTER_SHARDS`, so it may grow in a later build, never shrink.
pub const COUNTER_SHARDS: u32 = 8;

/// DynamoDB's limit on keys in one `BatchGetItem`.
const MAX_BATCH_KEYS: usize = 100;

/// How many `BatchGetItem` calls one chunk may take (the first and the
/// resends of its unprocessed keys, after pauses of up to 10, 20, … 320 ms)
/// before the read fails as retryable: about a second of throttling.
pub const MAX_BATCH_ROUNDS: u32 = 8;

/// The key of counter `base`'s shard `shard` (shard 0 is `base` itself, what
/// builds before sharding wrote).
pub fn counter_shard_key(base: &str, shard: u32) -> String {
    match shard {
        0 => base.to_string(),
        k => format!("{base}#{k}"),
    }
}

/// The keys of every shard of counter `base`.
pub fn counter_shard_keys(base: &str) -> impl Iterator<Item = String> + '_ {
    (0..COUNTER_SHARDS).map(move |k| counter_shard_key(base, k))
}

/// The counter updates of `contact`'s `deltas` on `table` (in its shard),
/// leaving room in the transaction for `others` actions.
pub(crate) fn updates(
    table: &str,
    contact: &str,
    deltas: &[CounterDelta],
    others: usize,
) -> Result<Vec<Update>, StoreError> {
    let shard = crate::due_shard(contact, COUNTER_SHARDS);
    // (pk, attribute) → amount, and pk → the TTL of a day item.
    let mut adds: BTreeMap<(String, String), i64> = BTreeMap::new();
    let mut ttl: BTreeMap<String, i64> = BTreeMap::new();
    let shared = deltas.len() * 2 + others > MAX_TRANSACTION_ITEMS;
    for delta in deltas {
        let (id, suffix) = if shared {
            (SHARED, format!(":{}", delta.segment))
        } else {
            (delta.segment.as_str(), String::new())
        };
        let (sign, field) = match delta.change {
            Change::Entered => (1, "entries"),
            Change::Exited => (-1, "exits"),
        };
        let day = counter_shard_key(&format!("segday#{id}#{}", delta.day), shard);
        *adds
            .entry((
                counter_shard_key(&format!("segment#{id}"), shard),
                format!("members{suffix}"),
            ))
            .or_default() += sign;
        *adds.entry((day.clone(), format!("{field}{suffix}"))).or_default() += 1;
        let keep = ttl.entry(day).or_default();
        *keep = (*keep).max(delta.expires_at);
    }
    let mut items: BTreeMap<String, Vec<(String, i64)>> = BTreeMap::new();
    for ((pk, attribute), amount) in adds {
        items.entry(pk).or_default().push((attribute, amount));
    }
    items
        .into_iter()
        .map(|(pk, adds)| {
            let mut update = Update::builder()
                .table_name(table)
                .key("pk", AttributeValue::S(pk.clone()));
            let mut clauses = Vec::new();
            for (i, (attribute, amount)) in adds.into_iter().enumerate() {
                clauses.push(format!("#a{i} :a{i}"));
                update = update
                    .expression_attribute_names(format!("#a{i}"), attribute)
                    .expression_attribute_values(format!(":a{i}"), n(amount));
            }
            let mut expression = format!("ADD {}", clauses.join(", "));
            if let Some(expires_at) = ttl.get(&pk) {
                expression = format!("SET expires_at = :ttl {expression}");
                update = update.expression_attribute_values(":ttl", n(expires_at));
            }
            update.update_expression(expression).build().map_err(backend)
        })
        .collect()
}

fn pk(value: String) -> Item {
    [("pk".to_string(), AttributeValue::S(value))].into()
}

/// The items of `keys` (partition key `pk`) in `table` that exist, by key,
/// read eventually consistent (half a read unit an item; counts to show or
/// to weigh variants by need not be the last millisecond's, and each read
/// sums [`COUNTER_SHARDS`] items): `BatchGetItem` in chunks of [`MAX_BATCH_KEYS`] sent
/// together, each followed by its unprocessed keys until none are left, or
/// a retryable error after [`MAX_BATCH_ROUNDS`] calls.
pub async fn batch_items(
    client: &Client,
    table: &str,
    keys: Vec<String>,
) -> Result<HashMap<String, HashMap<String, AttributeValue>>, StoreError> {
    let chunks = keys
        .chunks(MAX_BATCH_KEYS)
        .map(|chunk| batch_chunk(client, table, chunk));
    let found = futures_util::future::try_join_all(chunks).await?;
    let by_key = found.into_iter().flatten().filter_map(|item| {
        let key = item.get("pk").and_then(|v| v.as_s().ok())?.clone();
        Some((key, item))
    });
    Ok(by_key.collect())
}

/// One `BatchGetItem` of at most [`MAX_BATCH_KEYS`] keys, then its
/// unprocessed keys (after a growing, jittered pause, as AWS advises) until
/// none are left.
async fn batch_chunk(client: &Client, table: &str, keys: &[String]) -> Result<Vec<Item>, StoreError> {
    let mut found = Vec::new();
    let mut pending = Some(
        KeysAndAttributes::builder()
            .set_keys(Some(keys.iter().map(|k| pk(k.clone())).collect()))
            .consistent_read(false)
            .build()
            .map_err(backend)?,
    );
    let mut rounds = 0;
    while let Some(request) = pending.take() {
        if rounds == MAX_BATCH_ROUNDS {
            let why = format!("BatchGetItem left keys unprocessed {MAX_BATCH_ROUNDS} times in a row (throttled)");
            return Err(StoreError::Backend(why.into()));
        }
        if rounds > 0 {
            crate::pause::after_lost_race(rounds).await;
        }
        rounds += 1;
        let out = client
            .batch_get_item()
            .request_items(table, request)
            .send()
            .await
            .map_err(backend)?;
        found.extend(out.responses().and_then(|r| r.get(table)).cloned().unwrap_or_default());
        pending = out.unprocessed_keys().and_then(|u| u.get(table)).cloned();
    }
    Ok(found)
}

/// Number attribute `attribute` of counter `base`, summed over the shards
/// found (a missing shard or attribute adds nothing).
pub fn sum_shards(
    found: &HashMap<String, HashMap<String, AttributeValue>>,
    base: &str,
    attribute: &str,
) -> Result<i64, StoreError> {
    let mut sum = 0;
    for item in counter_shard_keys(base).filter_map(|k| found.get(&k)) {
        sum += number(item, attribute)?.unwrap_or(0);
    }
    Ok(sum)
}

impl SegmentCounters for DynamoContacts {
    async fn segment_counts(&self, segment: &str, days: &[String]) -> Result<SegmentCounts, StoreError> {
        let mut bases = vec![format!("segment#{segment}"), format!("segment#{SHARED}")];
        for day in days {
            bases.push(format!("segday#{segment}#{day}"));
            bases.push(format!("segday#{SHARED}#{day}"));
        }
        let keys = bases.iter().flat_map(|base| counter_shard_keys(base)).collect();
        let found = batch_items(self.client(), self.table(), keys).await?;
        let both = |own: &str, field: &str| -> Result<i64, StoreError> {
            let shared = own.replacen(&format!("#{segment}"), &format!("#{SHARED}"), 1);
            Ok(sum_shards(&found, own, field)? + sum_shards(&found, &shared, &format!("{field}:{segment}"))?)
        };
        let members = both(&format!("segment#{segment}"), "members")?;
        let mut counts = Vec::new();
        for day in days {
            let count = |field: &str| -> Result<u64, StoreError> {
                Ok(u64::try_from(both(&format!("segday#{segment}#{day}"), field)?).unwrap_or(0))
            };
            counts.push(DayCount {
                day: day.clone(),
                entries: count("entries")?,
                exits: count("exits")?,
            });
        }
        Ok(SegmentCounts { members, days: counts })
    }
}
