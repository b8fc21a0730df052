//! The audit trail in DynamoDB: its own table (`AuditTable`), partition key
//! `contact` (S, the contact's key, or `erased#<salted hash>` for an erasure
//! receipt), sort key `change` (S, the record version the entries were
//! written with, zero-padded to 20 digits, so newest first is descending);
//! `entries` (S, the JSON array of that change's entries), `expires_at` (N,
//! the table's TTL).
//!
//! Why a table of its own: the contacts table has a partition key only, so
//! entries in it could not be listed newest first without an index (a
//! second write per entry) or a scan; a table with a sort key lists them with
//! one query, and its TTL, permissions and retention are its own.

use aws_sdk_dynamodb::types::{AttributeValue, DeleteRequest, Put, TransactWriteItem, WriteRequest};
use kairos_event::AuditEntry;

use crate::dynamo::{backend, n, text, DynamoContacts, Item};
use crate::{AuditPage, AuditTrail, StoreError};

/// An audit item's entries beyond this size (bytes) lose their structured
/// explanations (their summaries stay): well under DynamoDB's 400 KB item limit.
pub const AUDIT_ITEM_BUDGET_BYTES: usize = 64 * 1024;

/// The audit item of the change written at `version`, kept `keep_secs` after its entries' time.
pub(crate) fn item(contact: &str, version: u64, entries: &[AuditEntry], keep_secs: i64) -> Item {
    let at = entries.iter().map(|e| e.at.timestamp()).max().unwrap_or(0);
    let mut json = serde_json::to_string(entries).expect("audit entries serialize");
    if json.len() > AUDIT_ITEM_BUDGET_BYTES {
        let bare: Vec<AuditEntry> = entries
            .iter()
            .cloned()
            .map(|e| AuditEntry { explanation: None, ..e })
            .collect();
        json = serde_json::to_string(&bare).expect("audit entries serialize");
    }
    let mut item = Item::new();
    item.insert("contact".into(), AttributeValue::S(contact.to_string()));
    item.insert("change".into(), AttributeValue::S(crate::audit::cursor_of(version)));
    item.insert("entries".into(), AttributeValue::S(json));
    item.insert("expires_at".into(), n(at + keep_secs));
    item
}

/// A transaction's put of audit `item` into `table`, only if no item of that change exists.
pub(crate) fn put_new(table: &str, item: Item) -> Result<TransactWriteItem, StoreError> {
    let put = Put::builder()
        .table_name(table)
        .set_item(Some(item))
        .condition_expression("attribute_not_exists(#k)")
        .expression_attribute_names("#k", "contact");
    Ok(TransactWriteItem::builder().put(put.build().map_err(backend)?).build())
}

impl DynamoContacts {
    fn audit_table(&self) -> Result<(&str, i64), StoreError> {
        self.audit_config()
            .ok_or_else(|| StoreError::Corrupt("no audit table configured (KAIROS_AUDIT_TABLE)".into()))
    }
}

impl AuditTrail for DynamoContacts {
    async fn audit(&self, contact: &str, cursor: Option<&str>, limit: usize) -> Result<AuditPage, StoreError> {
        let (table, _) = self.audit_table()?;
        let mut query = self
            .client()
            .query()
            .table_name(table)
            .key_condition_expression("#k = :c")
            .expression_attribute_names("#k", "contact")
            .expression_attribute_values(":c", AttributeValue::S(contact.to_string()))
            .scan_index_forward(false)
            .consistent_read(true)
            .limit(limit.clamp(1, 1000) as i32);
        if let Some(cursor) = cursor {
            query = query
                .key_condition_expression("#k = :c AND #ch < :after")
                .expression_attribute_names("#ch", "change")
                .expression_attribute_values(":after", AttributeValue::S(cursor.to_string()));
        }
        let out = query.send().await.map_err(backend)?;
        let mut page = AuditPage::default();
        let mut last = None;
        for item in out.items() {
            let json = text(item, "entries")?.unwrap_or_default();
            let entries: Vec<AuditEntry> = serde_json::from_str(&json)
                .map_err(|e| StoreError::Corrupt(format!("audit attribute `entries`: {e}")))?;
            page.entries.extend(entries.into_iter().rev());
            last = text(item, "change")?;
        }
        page.next = out.last_evaluated_key().and(last);
        Ok(page)
    }

    async fn forget_audit(&self, contact: &str) -> Result<usize, StoreError> {
        let (table, _) = self.audit_table()?;
        let mut deleted = 0;
        loop {
            let out = self
                .client()
                .query()
                .table_name(table)
                .key_condition_expression("#k = :c")
                .expression_attribute_values(":c", AttributeValue::S(contact.to_string()))
                .projection_expression("#k, #ch")
                .expression_attribute_names("#k", "contact")
                .expression_attribute_names("#ch", "change")
                .limit(25)
                // Strongly: the erasure's own tombstone save wrote an item a moment ago.
                .consistent_read(true)
                .send()
                .await
                .map_err(backend)?;
            if out.items().is_empty() {
                return Ok(deleted);
            }
            let mut requests = Vec::new();
            for item in out.items() {
                let key = [("contact", item.get("contact")), ("change", item.get("change"))]
                    .into_iter()
                    .filter_map(|(k, v)| Some((k.to_string(), v?.clone())))
                    .collect();
                let delete = DeleteRequest::builder().set_key(Some(key)).build().map_err(backend)?;
                requests.push(WriteRequest::builder().delete_request(delete).build());
            }
            deleted += requests.len();
            let mut pending = Some(requests);
            while let Some(requests) = pending.take().filter(|r| !r.is_empty()) {
                let out = self
                    .client()
                    .batch_write_item()
                    .request_items(table, requests)
                    .send()
                    .await
                    .map_err(backend)?;
                pending = out.unprocessed_items().and_then(|u| u.get(table)).cloned();
            }
        }
    }

    async fn append(&self, key: &str, entries: &[AuditEntry]) -> Result<(), StoreError> {
        let (table, keep) = self.audit_table()?;
        let version = entries.iter().map(|e| e.at.timestamp_millis()).max().unwrap_or(0);
        let item = item(key, u64::try_from(version).unwrap_or(0), entries, keep);
        let put = self.client().put_item().table_name(table).set_item(Some(item));
        put.send().await.map_err(backend)?;
        Ok(())
    }
}
