//! The pinned index in DynamoDB ([`crate::PINNED_INDEX`]): a record holding
//! overrides carries `pinned = 1` (`dynamo.rs`, `to_item`), so the index
//! holds exactly the pinned records' keys; a page is one query of it, then
//! one read of each record listed (the index is eventually consistent: a
//! record whose pins were just lifted is skipped).

use crate::dynamo::{backend, key, n, text, DynamoContacts};
use crate::{ContactStore, PinnedContacts, PinnedPage, StoreError, PINNED_INDEX};

/// The attribute a pinned record carries: the index's partition key, always 1.
pub(crate) const PINNED: &str = "pinned";

impl PinnedContacts for DynamoContacts {
    async fn pinned(&self, after: Option<&str>, limit: usize) -> Result<PinnedPage, StoreError> {
        let mut query = self
            .client()
            .query()
            .table_name(self.table())
            .index_name(PINNED_INDEX)
            .key_condition_expression("#p = :one")
            .expression_attribute_names("#p", PINNED)
            .expression_attribute_values(":one", n(1))
            .limit(limit.clamp(1, 1000) as i32);
        if let Some(after) = after {
            let start = [(PINNED.to_string(), n(1)), ("pk".to_string(), key("contact", after))];
            query = query.set_exclusive_start_key(Some(start.into()));
        }
        let out = query.send().await.map_err(backend)?;
        let mut page = PinnedPage::default();
        for item in out.items() {
            let pk = text(item, "pk")?.unwrap_or_default();
            let Some(contact) = pk.strip_prefix("contact#") else {
                continue;
            };
            match self.load(contact).await? {
                Some(record) if !record.overrides.is_empty() => {
                    page.contacts.push((contact.to_string(), record.overrides));
                }
                _ => {}
            }
        }
        page.next = out
            .last_evaluated_key()
            .and_then(|k| k.get("pk"))
            .and_then(|v| v.as_s().ok())
            .and_then(|pk| pk.strip_prefix("contact#"))
            .map(str::to_string);
        Ok(page)
    }
}
