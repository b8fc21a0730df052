//! Cold days of event ids in DynamoDB ([`crate::cold`]): `seen#<contact>#<yyyy-mm-dd>`
//! items of the contacts table, `ids` (BS: 8-byte elements) and `expires_at`
//! (N, TTL). Written with `UpdateItem ADD` (idempotent), read with
//! consistent `GetItem`s, deleted by the erasure's scan (`erasure.rs`).

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnConsumedCapacity};
use futures_util::future::try_join_all;
use kairos_state::SeenId;

use crate::cold::{day_key, element, expires_at, from_element};
use crate::dynamo::{backend, key, n, DynamoContacts};
use crate::StoreError;

impl DynamoContacts {
    /// Adds each day's ids to its item (the days at once).
    pub(crate) async fn write_seen(&self, contact: &str, writes: &[(i64, Vec<SeenId>)]) -> Result<(), StoreError> {
        let updates = writes.iter().filter(|(_, ids)| !ids.is_empty()).map(|(day, ids)| {
            let set = ids.iter().map(|id| Blob::new(element(id).to_vec())).collect();
            self.client()
                .update_item()
                .table_name(self.table())
                .key("pk", key("seen", &day_key(contact, *day)))
                .update_expression("ADD ids :ids SET expires_at = :e")
                .expression_attribute_values(":ids", AttributeValue::Bs(set))
                .expression_attribute_values(":e", n(expires_at(*day)))
                .return_consumed_capacity(ReturnConsumedCapacity::Total)
                .send()
        });
        for out in try_join_all(updates).await.map_err(backend)? {
            self.count(out.consumed_capacity().and_then(|c| c.capacity_units()));
        }
        Ok(())
    }

    /// The ids of the given days (a missing day holds none).
    pub(crate) async fn read_seen(&self, contact: &str, days: &[i64]) -> Result<Vec<SeenId>, StoreError> {
        let reads = days.iter().map(|day| async move {
            let get = self.client().get_item().table_name(self.table());
            let get = get
                .key("pk", key("seen", &day_key(contact, *day)))
                .consistent_read(true);
            get.send().await.map(|out| (*day, out.item))
        });
        let mut ids = Vec::new();
        for (day, item) in try_join_all(reads).await.map_err(backend)? {
            let set = match item.as_ref().and_then(|i| i.get("ids")) {
                None => continue,
                Some(AttributeValue::Bs(set)) => set,
                Some(_) => {
                    return Err(StoreError::Corrupt(
                        "cold day attribute `ids` is not a binary set".into(),
                    ))
                }
            };
            for blob in set {
                let id = from_element(day, blob.as_ref())
                    .ok_or_else(|| StoreError::Corrupt("cold day holds a malformed id".into()))?;
                ids.push(id);
            }
        }
        Ok(ids)
    }
}
