//! Contact records deleted by the contacts table's TTL (a contact idle for
//! the record's whole retention), as the table's stream reports them
//! (`StreamViewType: OLD_IMAGE`), and their count out of the segment
//! counters. Nothing saves a record as DynamoDB's TTL deletes it, so without
//! this the contact would stay counted in its segments for good, and counted
//! twice once it came back.

use aws_sdk_dynamodb::primitives::Blob;
use aws_sdk_dynamodb::types::AttributeValue;
use base64::Engine as _;
use kairos_event::AuditEntry;
use serde_json::Value;

use crate::dynamo::{DynamoContacts, Item};
use crate::{StoreError, StoredContact};

/// Who deletes an item when its TTL passes, as a stream record names it.
const TTL_PRINCIPAL: &str = "dynamodb.amazonaws.com";

/// One record of the contacts table's stream, as the count out sees it.
#[derive(Debug)]
pub enum StreamRecord {
    /// A contact record deleted by the TTL: the record as it was.
    Expired {
        /// The stream record's sequence number (what a retry resumes at).
        sequence: String,
        /// The contact's key.
        contact: String,
        /// The record as the TTL found it.
        record: Box<StoredContact>,
    },
    /// Anything else (a write, a delete by a caller, another item): nothing to do.
    Other,
    /// A TTL deletion that cannot be read: `reason` names what was wrong.
    Unreadable {
        /// The stream record's sequence number, if it has one.
        sequence: String,
        /// What was wrong.
        reason: StoreError,
    },
}

/// Reads a stream record of the contacts table (one entry of the Lambda
/// event's `Records`, DynamoDB's JSON as the stream delivers it).
pub fn stream_record(record: &Value) -> StreamRecord {
    let by_ttl = record["eventName"] == "REMOVE"
        && record["userIdentity"]["type"] == "Service"
        && record["userIdentity"]["principalId"] == TTL_PRINCIPAL;
    let dynamodb = &record["dynamodb"];
    let contact = dynamodb["Keys"]["pk"]["S"]
        .as_str()
        .and_then(|pk| pk.strip_prefix("contact#"));
    let (true, Some(contact)) = (by_ttl, contact) else {
        return StreamRecord::Other;
    };
    let sequence = dynamodb["SequenceNumber"].as_str().unwrap_or_default().to_string();
    let read = match dynamodb.get("OldImage") {
        Some(image) => item_from_json(image).and_then(|item| StoredContact::try_from(&item)),
        None => Err(StoreError::Corrupt(
            "no `OldImage` (the stream must be OLD_IMAGE)".into(),
        )),
    };
    match read {
        Ok(record) => StreamRecord::Expired {
            sequence,
            contact: contact.to_string(),
            record: Box::new(record),
        },
        Err(reason) => StreamRecord::Unreadable { sequence, reason },
    }
}

/// An item from DynamoDB's JSON (`{"pk": {"S": "…"}, "version": {"N": "3"}, …}`),
/// as a stream record's image carries it and `aws dynamodb get-item` prints
/// it; an error names the attribute and what was wrong with it.
pub fn item_from_json(image: &Value) -> Result<Item, StoreError> {
    let fields = image
        .as_object()
        .ok_or_else(|| StoreError::Corrupt("the item is not an object".into()))?;
    let field = |(name, value): (&String, &Value)| {
        attribute(value)
            .map(|v| (name.clone(), v))
            .map_err(|e| StoreError::Corrupt(format!("attribute `{name}`: {e}")))
    };
    fields.iter().map(field).collect()
}

/// One attribute value in DynamoDB's JSON.
fn attribute(value: &Value) -> Result<AttributeValue, String> {
    let typed = value.as_object().filter(|o| o.len() == 1);
    let (kind, inner) = typed.and_then(|o| o.iter().next()).ok_or("not a value with one type")?;
    let text = |v: &Value| {
        v.as_str()
            .map(str::to_string)
            .ok_or(format!("`{kind}` is not a string"))
    };
    let blob = |v: &Value| {
        let b64 = v.as_str().ok_or(format!("`{kind}` is not a string"))?;
        let bytes = base64::engine::general_purpose::STANDARD.decode(b64);
        bytes.map(Blob::new).map_err(|e| format!("`{kind}` is not base64: {e}"))
    };
    let list = || inner.as_array().ok_or(format!("`{kind}` is not an array"));
    Ok(match kind.as_str() {
        "S" => AttributeValue::S(text(inner)?),
        "N" => AttributeValue::N(text(inner)?),
        "B" => AttributeValue::B(blob(inner)?),
        "BOOL" => AttributeValue::Bool(inner.as_bool().ok_or("`BOOL` is not a boolean")?),
        "NULL" => AttributeValue::Null(true),
        "SS" => AttributeValue::Ss(list()?.iter().map(text).collect::<Result<_, _>>()?),
        "NS" => AttributeValue::Ns(list()?.iter().map(text).collect::<Result<_, _>>()?),
        "BS" => AttributeValue::Bs(list()?.iter().map(blob).collect::<Result<_, _>>()?),
        "L" => AttributeValue::L(list()?.iter().map(attribute).collect::<Result<_, _>>()?),
        "M" => {
            let map = inner.as_object().ok_or("`M` is not an object")?;
            let pairs = map.iter().map(|(k, v)| attribute(v).map(|v| (k.clone(), v)));
            AttributeValue::M(pairs.collect::<Result<_, _>>()?)
        }
        other => return Err(format!("unknown type `{other}`")),
    })
}

impl DynamoContacts {
    /// Counts the expired record of `contact` out of its segments as its
    /// change `version` (the one after its last write): `entries` (the
    /// engine's exits, `kairos_engine::Engine::expired_out`) become the
    /// segment counters' updates and the contact's audit item of that
    /// change, in one transaction. The audit item is put only if it is new, so a repeat (a
    /// stream batch retried after its first try committed) counts nothing
    /// and returns `Ok(false)`. Without an audit table (the template always
    /// has one) nothing marks a count as done, and a repeat counts again.
    pub async fn count_out(&self, contact: &str, version: u64, entries: &[AuditEntry]) -> Result<bool, StoreError> {
        let deltas = crate::counters::deltas(entries);
        if deltas.is_empty() {
            return Ok(false);
        }
        let mut items = Vec::new();
        if let Some((table, keep)) = self.audit_config() {
            let item = crate::dynamo_audit::item(contact, version, entries, keep);
            items.push(crate::dynamo_audit::put_new(table, item)?);
        }
        for update in crate::dynamo_counters::updates(self.table(), contact, &deltas, items.len())? {
            items.push(
                aws_sdk_dynamodb::types::TransactWriteItem::builder()
                    .update(update)
                    .build(),
            );
        }
        match crate::transact_write(self.client(), items).await {
            Ok(units) => {
                self.count(Some(units));
                Ok(true)
            }
            Err(StoreError::Conflict) => Ok(false),
            Err(err) => Err(err),
        }
    }
}

#[cfg(test)]
#[path = "dynamo_expiry_tests.rs"]
mod tests;
