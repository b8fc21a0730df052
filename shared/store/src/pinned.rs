//! The contacts holding overrides, listed page by page without reading
//! every record: the console's Overrides page.
//!
//! In DynamoDB a record holding overrides also carries `pinned` (N, always
//! 1), the partition key of the sparse, keys-only index [`PINNED_INDEX`]
//! (sort key `pk`): only pinned records are in it, so a page is one query of
//! the index and one read per contact listed, however large the table
//! (`dynamo_pinned.rs`). In memory the records are walked in key order.

use kairos_state::Override;
use std::future::Future;

use crate::{ContactStore, MemoryContacts, StoreError};

/// The pinned index's name: a global secondary index of the contacts table,
/// partition `pinned` (N), sort `pk` (S), keys only; sparse (only records
/// holding overrides carry `pinned`).
pub const PINNED_INDEX: &str = "pinned";

/// One page of pinned contacts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PinnedPage {
    /// Contacts in key order, each with the overrides its record holds.
    pub contacts: Vec<(String, Vec<Override>)>,
    /// Where the next page starts (pass it back as `after`); `None` on the last.
    pub next: Option<String>,
}

/// The contacts whose records hold overrides.
pub trait PinnedContacts: Send + Sync {
    /// Up to `limit` pinned contacts after the contact key `after`, in key order.
    fn pinned(&self, after: Option<&str>, limit: usize) -> impl Future<Output = Result<PinnedPage, StoreError>> + Send;
}

impl PinnedContacts for MemoryContacts {
    async fn pinned(&self, after: Option<&str>, limit: usize) -> Result<PinnedPage, StoreError> {
        let mut page = PinnedPage::default();
        let keys = self.contacts();
        let later = keys.iter().filter(|k| after.is_none_or(|a| k.as_str() > a));
        for key in later {
            let Some(record) = self.load(key).await? else { continue };
            if record.overrides.is_empty() || record.merged_into.is_some() {
                continue;
            }
            if page.contacts.len() == limit.max(1) {
                page.next = page.contacts.last().map(|(k, _)| k.clone());
                break;
            }
            page.contacts.push((key.clone(), record.overrides));
        }
        Ok(page)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::StoredContact;

    #[tokio::test]
    async fn only_pinned_records_are_listed_page_by_page() {
        let store = MemoryContacts::default();
        for key in ["a@x.test", "b@x.test", "c@x.test", "d@x.test"] {
            let mut record = StoredContact {
                version: 1,
                ..StoredContact::default()
            };
            if key != "b@x.test" {
                record.overrides.push(Override {
                    segment: "s".into(),
                    member: true,
                    reason: "r".into(),
                    actor: "me".into(),
                    at: 0,
                    expires_at: None,
                });
            }
            store.save(key, None, &record).await.unwrap();
        }
        let first = store.pinned(None, 2).await.unwrap();
        let keys: Vec<&str> = first.contacts.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["a@x.test", "c@x.test"]);
        assert_eq!(first.next.as_deref(), Some("c@x.test"));
        let second = store.pinned(first.next.as_deref(), 2).await.unwrap();
        assert_eq!(second.contacts.len(), 1);
        assert_eq!(second.contacts[0].0, "d@x.test");
        assert_eq!(second.next, None);
    }
}
