//! The erasure port: what deleting everything held about a contact needs
//! beyond its own record (which becomes a tombstone through
//! [`ContactStore::save`](crate::ContactStore::save)): the anonymous records
//! linked to it, its kept consent, and the delivery-ledger and cache entries
//! and cold days of event ids ([`crate::cold`]) naming it. The audit trail is forgotten through
//! [`AuditTrail::forget_audit`](crate::AuditTrail::forget_audit).

use std::future::Future;
use std::time::Instant;

use crate::StoreError;

/// What [`Erasure::forget_deliveries`] deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Forgotten {
    /// Items deleted.
    pub deleted: usize,
    /// Whether every item was looked at (false: the deadline came first).
    pub done: bool,
}

/// Deleting what is held about a contact besides its record.
pub trait Erasure: Send + Sync {
    /// The keys of the frozen anonymous records linked to `contact`.
    fn linked_anonymous(&self, contact: &str) -> impl Future<Output = Result<Vec<String>, StoreError>> + Send;

    /// Deletes the record of `key`, if any (unconditionally: used on frozen
    /// anonymous records, never written again).
    fn delete_record(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Deletes the consent kept apart for `key`, if any.
    fn forget_consent(&self, key: &str) -> impl Future<Output = Result<(), StoreError>> + Send;

    /// Deletes the delivery-ledger entries (`<destination>:<key>`), the
    /// cached answers (`<kind>:<destination>:<key>`) and the cold days of
    /// event ids (`<key>#<day>`) naming any of `keys`, stopping at `deadline`.
    fn forget_deliveries(
        &self,
        keys: &[String],
        deadline: Instant,
    ) -> impl Future<Output = Result<Forgotten, StoreError>> + Send;
}

/// Whether a ledger or cache key names one of `keys` (it ends `:<key>`).
#[cfg_attr(not(feature = "aws"), allow(dead_code))] // used by the DynamoDB adapter
pub(crate) fn names_any(item_key: &str, keys: &[String]) -> bool {
    keys.iter().any(|k| {
        item_key
            .strip_suffix(k.as_str())
            .is_some_and(|rest| rest.ends_with(':'))
    })
}

#[cfg(feature = "aws")]
mod dynamo {
    use aws_sdk_dynamodb::types::AttributeValue;
    use std::time::Instant;

    use super::{names_any, Erasure, Forgotten};
    use crate::dynamo::{backend, key, text, DynamoContacts};
    use crate::StoreError;

    /// The sparse, keys-only index of frozen anonymous records by the
    /// contact they are linked to (partition `merged_into`).
    pub const MERGED_INDEX: &str = "merged";

    impl DynamoContacts {
        async fn delete_pk(&self, pk: AttributeValue) -> Result<(), StoreError> {
            let delete = self.client().delete_item().table_name(self.table()).key("pk", pk);
            delete.send().await.map_err(backend)?;
            Ok(())
        }

        /// After `contact`'s save failed (a lost version race, or an error
        /// that leaves its outcome unknown): if the record is an erasure's
        /// tombstone, deletes what that save wrote before its record (the
        /// cold `days` of event ids, the kept consent if `consent`), which the
        /// erasure's own deletions may have preceded, so nothing naming an
        /// erased contact is left by a racing evaluation. One transaction,
        /// conditioned on the tombstone's version: a re-opened contact's new
        /// record keeps what it wrote.
        pub(crate) async fn take_back_if_erased(
            &self,
            contact: &str,
            days: &[i64],
            consent: bool,
        ) -> Result<(), StoreError> {
            use aws_sdk_dynamodb::types::{ConditionCheck, Delete, TransactWriteItem};
            let Some(record) = crate::ContactStore::load(self, contact).await? else {
                return Ok(());
            };
            if record.erased_at.is_none() {
                return Ok(());
            }
            let (condition, names, values) = crate::dynamo::on_version(Some(record.version));
            let still = ConditionCheck::builder()
                .table_name(self.table())
                .key("pk", key("contact", contact))
                .condition_expression(condition)
                .set_expression_attribute_names(names)
                .set_expression_attribute_values(values)
                .build()
                .map_err(backend)?;
            let mut pks: Vec<AttributeValue> = days
                .iter()
                .map(|day| key("seen", &crate::cold::day_key(contact, *day)))
                .collect();
            pks.extend(consent.then(|| key("consent", contact)));
            let mut items = vec![TransactWriteItem::builder().condition_check(still).build()];
            for pk in pks {
                let delete = Delete::builder().table_name(self.table()).key("pk", pk);
                items.push(
                    TransactWriteItem::builder()
                        .delete(delete.build().map_err(backend)?)
                        .build(),
                );
            }
            crate::transact_write(self.client(), items).await.map(|_| ())
        }
    }

    impl Erasure for DynamoContacts {
        async fn linked_anonymous(&self, contact: &str) -> Result<Vec<String>, StoreError> {
            let (mut out, mut start) = (Vec::new(), None);
            loop {
                let page = self
                    .client()
                    .query()
                    .table_name(self.table())
                    .index_name(MERGED_INDEX)
                    .key_condition_expression("merged_into = :c")
                    .expression_attribute_values(":c", AttributeValue::S(contact.to_string()))
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(backend)?;
                for item in page.items() {
                    if let Some(pk) = text(item, "pk")? {
                        out.extend(pk.strip_prefix("contact#").map(str::to_string));
                    }
                }
                start = page.last_evaluated_key().cloned();
                if start.is_none() {
                    return Ok(out);
                }
            }
        }

        async fn delete_record(&self, k: &str) -> Result<(), StoreError> {
            self.delete_pk(key("contact", k)).await
        }

        async fn forget_consent(&self, k: &str) -> Result<(), StoreError> {
            self.delete_pk(key("consent", k)).await
        }

        /// A scan of the table for `delivery#…:<key>`, `lookup#…:<key>` and
        /// `seen#<key>#<day>` items (no index serves them), deleting each.
        async fn forget_deliveries(&self, keys: &[String], deadline: Instant) -> Result<Forgotten, StoreError> {
            let mut forgotten = Forgotten::default();
            let mut start = None;
            loop {
                if Instant::now() >= deadline {
                    return Ok(forgotten);
                }
                let page = self
                    .client()
                    .scan()
                    .table_name(self.table())
                    .projection_expression("pk")
                    .filter_expression("begins_with(pk, :d) OR begins_with(pk, :l) OR begins_with(pk, :s)")
                    .expression_attribute_values(":d", AttributeValue::S("delivery#".into()))
                    .expression_attribute_values(":l", AttributeValue::S("lookup#".into()))
                    .expression_attribute_values(":s", AttributeValue::S("seen#".into()))
                    .set_exclusive_start_key(start)
                    .send()
                    .await
                    .map_err(backend)?;
                for item in page.items() {
                    let Some(pk) = text(item, "pk")? else { continue };
                    let named = match pk.split_once('#') {
                        Some(("seen", day)) => {
                            crate::cold::contact_of(day).is_some_and(|c| keys.iter().any(|k| k == c))
                        }
                        Some((_, rest)) => names_any(rest, keys),
                        None => false,
                    };
                    if named {
                        self.delete_pk(AttributeValue::S(pk)).await?;
                        forgotten.deleted += 1;
                    }
                }
                start = page.last_evaluated_key().cloned();
                if start.is_none() {
                    forgotten.done = true;
                    return Ok(forgotten);
                }
            }
        }
    }
}

#[cfg(feature = "aws")]
pub use dynamo::MERGED_INDEX;

#[cfg(test)]
mod tests {
    #[test]
    fn ledger_and_cache_keys_name_a_contact_by_their_suffix() {
        let keys = ["ada@example.com".to_string(), "anon:v1".to_string()];
        assert!(super::names_any("crm:ada@example.com", &keys));
        assert!(super::names_any("pipedrive:sales:ada@example.com", &keys));
        assert!(super::names_any("hook:anon:v1", &keys));
        assert!(!super::names_any("crm:bada@example.com", &keys));
        assert!(!super::names_any("ada@example.com", &keys));
    }
}
