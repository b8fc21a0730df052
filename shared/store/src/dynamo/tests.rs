//! The DynamoDB adapters' pure parts.

use super::*;

/// An item's size by DynamoDB's rules, from the attribute values themselves.
fn size(item: &Item) -> usize {
    fn value(v: &AttributeValue) -> usize {
        match v {
            AttributeValue::S(s) => s.len(),
            AttributeValue::B(b) => b.as_ref().len(),
            AttributeValue::N(n) => crate::budget::number_size(n.parse().unwrap()),
            AttributeValue::L(list) => 3 + list.iter().map(|v| 1 + value(v)).sum::<usize>(),
            other => panic!("not written by the adapter: {other:?}"),
        }
    }
    item.iter().map(|(name, v)| name.len() + value(v)).sum()
}

#[test]
fn the_budget_counts_an_item_as_the_adapter_writes_it() {
    let mut record = StoredContact {
        version: 1_795_000_000_123,
        outbox: vec!["{\"a\":1}".into(), "é".repeat(40)],
        next_change_at: Some(1_795_003_600),
        expires_at: 1_805_000_000,
        merged_into: Some("ada@x.test".into()),
        consent_kept: Some(Consent::new(kairos_state::ConsentStatus::Unsubscribed, 1_795_000_000)),
        ..StoredContact::default()
    };
    assert_eq!(record.item_size("anon:é1"), size(&to_item("anon:é1", &record)));
    (
        record.outbox,
        record.next_change_at,
        record.merged_into,
        record.consent_kept,
    ) = (Vec::new(), None, None, None);
    assert_eq!(record.item_size("ada"), size(&to_item("ada", &record)));
}
