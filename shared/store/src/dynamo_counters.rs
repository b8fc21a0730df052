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

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes, Update};
use kairos_event::Change;
use std::collections::BTreeMap;

use crate::dynamo::{backend, n, number, DynamoContacts, Item};
use crate::{CounterDelta, DayCount, SegmentCounters, SegmentCounts, StoreError};

/// DynamoDB's limit on actions in one `TransactWriteItems`.
pub const MAX_TRANSACTION_ITEMS: usize = 100;

/// The shared items' segment id (no segment id holds `*`).
const SHARED: &str = "*";

/// The counter updates of `deltas` on `table`, leaving room in the
/// transaction for `others` actions.
pub(crate) fn updates(table: &str, deltas: &[CounterDelta], others: usize) -> Result<Vec<Update>, StoreError> {
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
        let day = format!("segday#{id}#{}", delta.day);
        *adds
            .entry((format!("segment#{id}"), format!("members{suffix}")))
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

impl SegmentCounters for DynamoContacts {
    async fn segment_counts(&self, segment: &str, days: &[String]) -> Result<SegmentCounts, StoreError> {
        let mut keys = vec![pk(format!("segment#{segment}")), pk(format!("segment#{SHARED}"))];
        for day in days {
            keys.push(pk(format!("segday#{segment}#{day}")));
            keys.push(pk(format!("segday#{SHARED}#{day}")));
        }
        let mut found: Vec<Item> = Vec::new();
        let mut pending = Some(
            KeysAndAttributes::builder()
                .set_keys(Some(keys))
                .consistent_read(true)
                .build()
                .map_err(backend)?,
        );
        while let Some(request) = pending.take() {
            let out = self
                .client()
                .batch_get_item()
                .request_items(self.table(), request)
                .send()
                .await
                .map_err(backend)?;
            found.extend(
                out.responses()
                    .and_then(|r| r.get(self.table()))
                    .cloned()
                    .unwrap_or_default(),
            );
            pending = out.unprocessed_keys().and_then(|u| u.get(self.table())).cloned();
        }
        let item = |key: &str| {
            found
                .iter()
                .find(|i| i.get("pk").and_then(|v| v.as_s().ok()).map(String::as_str) == Some(key))
        };
        let value = |key: &str, attribute: &str| -> Result<i64, StoreError> {
            Ok(match item(key) {
                Some(item) => number(item, attribute)?.unwrap_or(0),
                None => 0,
            })
        };
        let both = |own: &str, field: &str| -> Result<i64, StoreError> {
            let shared = own.replacen(&format!("#{segment}"), &format!("#{SHARED}"), 1);
            Ok(value(own, field)? + value(&shared, &format!("{field}:{segment}"))?)
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
