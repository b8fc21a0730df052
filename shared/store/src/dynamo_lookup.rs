//! Cached lookups in DynamoDB: `lookup#<key>` items holding `value` (S) and
//! `expires_at` (N, the table's TTL; a read also ignores an expired item,
//! since TTL deletion lags).

use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;

use crate::{Lookups, StoreError};

/// Cached lookups in the table.
#[derive(Debug, Clone)]
pub struct DynamoLookups {
    client: Client,
    table: String,
}

impl DynamoLookups {
    /// Uses `table` through `client`.
    pub fn new(client: Client, table: impl Into<String>) -> DynamoLookups {
        DynamoLookups {
            client,
            table: table.into(),
        }
    }
}

fn pk(key: &str) -> AttributeValue {
    AttributeValue::S(format!("lookup#{key}"))
}

fn backend<E: std::error::Error + Send + Sync + 'static>(err: E) -> StoreError {
    StoreError::Backend(Box::new(err))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

impl Lookups for DynamoLookups {
    async fn get(&self, key: &str) -> Result<Option<String>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", pk(key))
            .send()
            .await
            .map_err(backend)?;
        let Some(item) = out.item() else { return Ok(None) };
        let expires = match item.get("expires_at") {
            Some(AttributeValue::N(n)) => n.parse::<i64>().unwrap_or(0),
            _ => 0,
        };
        if expires < now() {
            return Ok(None);
        }
        match item.get("value") {
            Some(AttributeValue::S(value)) => Ok(Some(value.clone())),
            _ => Err(StoreError::Corrupt(
                "attribute `value` is missing or not a string".into(),
            )),
        }
    }

    async fn put(&self, key: &str, value: &str, ttl_secs: i64) -> Result<(), StoreError> {
        self.client
            .put_item()
            .table_name(&self.table)
            .item("pk", pk(key))
            .item("value", AttributeValue::S(value.to_string()))
            .item("expires_at", AttributeValue::N((now() + ttl_secs).to_string()))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }

    async fn forget(&self, key: &str) -> Result<(), StoreError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .key("pk", pk(key))
            .send()
            .await
            .map_err(backend)?;
        Ok(())
    }
}
