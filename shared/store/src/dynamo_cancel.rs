//! What a cancelled DynamoDB transaction means: `TransactionCanceledException`
//! carries one cancellation reason per action, in the order sent (a save's
//! record put first, then its audit item and segment counters:
//! `DynamoContacts::save`). The codes are DynamoDB's
//! (<https://docs.aws.amazon.com/amazondynamodb/latest/APIReference/API_TransactWriteItems.html>,
//! "TransactionCanceledException"):
//!
//! - `ConditionalCheckFailed` → [`StoreError::Conflict`]: on the record, its
//!   version moved on (reload and retry); on the audit item, an item of the
//!   same change already exists, which only a writer of the same version can
//!   have made, so a reload also sees it;
//! - `ThrottlingError`, `ProvisionedThroughputExceeded`, `TransactionConflict`
//!   (another transaction or write held an item), `RequestLimitExceeded` →
//!   [`StoreError::Backend`], retryable, as the adapters report throttling
//!   (the SDK does not retry a cancelled transaction itself; [`transact_write`]
//!   sends it again a few times first);
//! - `ValidationError` (an item too large, an expression the table refuses)
//!   and `ItemCollectionSizeLimitExceeded` → [`StoreError::Rejected`]:
//!   permanent, the same write fails again;
//! - anything else (a code added later, no reasons) → [`StoreError::Backend`]:
//!   not known to be permanent.

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::error::TransactionCanceledException;
use aws_sdk_dynamodb::types::{ReturnConsumedCapacity, TransactWriteItem};

use crate::StoreError;

/// How often a transaction cancelled for a retryable reason is sent again
/// in process (pauses of at most 10, 20 and 40 ms) before it is reported.
pub const CANCELLED_RETRIES: u32 = 3;

/// Sends a transaction and returns the write units it consumed. One
/// cancelled for a reason a retry can pass (a `TransactionConflict` on a
/// busy counter, throttling) is sent again after
/// [`crate::pause::after_lost_race`], up to [`CANCELLED_RETRIES`] times (the
/// SDK retries no cancelled transaction), then reported retryable: nothing
/// of a cancelled transaction was written, so sending it again is safe. A
/// failed condition is [`StoreError::Conflict`] at once.
pub async fn transact_write(
    client: &aws_sdk_dynamodb::Client,
    items: Vec<TransactWriteItem>,
) -> Result<f64, StoreError> {
    let mut retried = 0;
    loop {
        let result = client
            .transact_write_items()
            .set_transact_items(Some(items.clone()))
            .return_consumed_capacity(ReturnConsumedCapacity::Total)
            .send()
            .await;
        match result.map_err(|e| e.into_service_error()) {
            Ok(out) => return Ok(out.consumed_capacity().iter().filter_map(|c| c.capacity_units()).sum()),
            Err(TransactWriteItemsError::TransactionCanceledException(e))
                if class(&e) == Cancelled::Retryable && retried < CANCELLED_RETRIES =>
            {
                retried += 1;
                crate::pause::after_lost_race(retried).await;
            }
            Err(TransactWriteItemsError::TransactionCanceledException(e)) => return Err(store_error(e)),
            Err(e) => return Err(crate::dynamo::backend(e)),
        }
    }
}

/// How a cancelled transaction is classed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cancelled {
    /// A condition failed: [`StoreError::Conflict`].
    Conflict,
    /// Throttled or raced: [`StoreError::Backend`], retried.
    Retryable,
    /// Refused for good: [`StoreError::Rejected`].
    Rejected,
}

/// Codes that a retry of the same transaction can pass.
const RETRYABLE: [&str; 4] = [
    "ThrottlingError",
    "ProvisionedThroughputExceeded",
    "TransactionConflict",
    "RequestLimitExceeded",
];

/// Codes that the same transaction meets again.
const REJECTED: [&str; 2] = ["ValidationError", "ItemCollectionSizeLimitExceeded"];

/// The class of a cancellation from its reasons' codes, in the order of
/// the actions (`None` or `"None"`: that action was fine). A failed
/// condition decides first (retrying cannot pass it; reloading can), then
/// a retryable code, then a permanent one.
pub(crate) fn classify(codes: &[Option<&str>]) -> Cancelled {
    let codes: Vec<&str> = codes.iter().flatten().copied().filter(|c| *c != "None").collect();
    if codes.contains(&"ConditionalCheckFailed") {
        Cancelled::Conflict
    } else if codes.iter().any(|c| RETRYABLE.contains(c)) {
        Cancelled::Retryable
    } else if codes.iter().any(|c| REJECTED.contains(c)) {
        Cancelled::Rejected
    } else {
        Cancelled::Retryable
    }
}

/// The class of a cancelled transaction, from its reasons.
pub(crate) fn class(err: &TransactionCanceledException) -> Cancelled {
    let codes: Vec<Option<&str>> = err.cancellation_reasons().iter().map(|r| r.code()).collect();
    classify(&codes)
}

/// The store error of a cancelled transaction, its cause kept.
pub(crate) fn store_error(err: TransactionCanceledException) -> StoreError {
    match class(&err) {
        Cancelled::Conflict => StoreError::Conflict,
        Cancelled::Retryable => StoreError::Backend(Box::new(err)),
        Cancelled::Rejected => StoreError::Rejected(Box::new(err)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_condition_is_a_conflict_wherever_it_is() {
        assert_eq!(classify(&[Some("ConditionalCheckFailed")]), Cancelled::Conflict);
        let audit = [Some("None"), Some("ConditionalCheckFailed"), Some("None")];
        assert_eq!(classify(&audit), Cancelled::Conflict);
        let both = [Some("ConditionalCheckFailed"), Some("ThrottlingError")];
        assert_eq!(classify(&both), Cancelled::Conflict, "reloading is what helps");
    }

    #[test]
    fn throttling_and_races_are_retryable() {
        for code in RETRYABLE {
            assert_eq!(classify(&[Some("None"), Some(code)]), Cancelled::Retryable, "{code}");
        }
        let mixed = [Some("ValidationError"), Some("TransactionConflict")];
        assert_eq!(classify(&mixed), Cancelled::Retryable);
    }

    #[test]
    fn a_write_the_table_refuses_is_permanent_and_an_unknown_reason_is_not() {
        for code in REJECTED {
            assert_eq!(classify(&[Some(code), None]), Cancelled::Rejected, "{code}");
        }
        assert_eq!(classify(&[Some("SomethingNew")]), Cancelled::Retryable);
        assert_eq!(classify(&[]), Cancelled::Retryable);
        assert_eq!(classify(&[None, Some("None")]), Cancelled::Retryable);
    }

    #[test]
    fn the_store_error_keeps_the_reasons() {
        use aws_sdk_dynamodb::types::CancellationReason;
        let cancelled = |code: &str| {
            TransactionCanceledException::builder()
                .message(format!("Transaction cancelled [{code}]"))
                .cancellation_reasons(CancellationReason::builder().code(code).build())
                .build()
        };
        assert!(matches!(
            store_error(cancelled("ConditionalCheckFailed")),
            StoreError::Conflict
        ));
        let throttled = store_error(cancelled("ThrottlingError"));
        assert!(matches!(throttled, StoreError::Backend(_)) && !throttled.is_permanent());
        let refused = store_error(cancelled("ValidationError"));
        assert!(matches!(refused, StoreError::Rejected(_)) && refused.is_permanent());
        assert!(format!("{refused}").contains("ValidationError"), "{refused}");
    }
}
