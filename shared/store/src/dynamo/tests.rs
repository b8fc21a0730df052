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
    assert_eq!(record.item_size("anon:é1"), size(&to_item("anon:é1", &record, 8)));
    (
        record.outbox,
        record.next_change_at,
        record.merged_into,
        record.consent_kept,
    ) = (Vec::new(), None, None, None);
    assert_eq!(record.item_size("ada"), size(&to_item("ada", &record, 8)));
    // A due record: the shard is counted at its largest, so the budget is an
    // upper bound by at most a byte.
    record.due_at = Some(1_795_003_600);
    for shards in [1, 8, 999] {
        let written = size(&to_item("ada", &record, shards));
        assert!(
            (0..=1).contains(&(record.item_size("ada") - written)),
            "{shards} shards"
        );
    }
}

#[test]
fn a_frozen_record_is_never_in_the_due_index() {
    let record = StoredContact {
        due_at: Some(1_795_003_600),
        merged_into: Some("ada@x.test".into()),
        ..StoredContact::default()
    };
    let item = to_item("anon:1", &record, 8);
    assert!(!item.contains_key("due_at") && !item.contains_key("due_shard"));
}

#[test]
fn shards_spread_keys_and_stay_put() {
    let mut counts = [0usize; 8];
    for i in 0..8000 {
        counts[crate::due_shard(&format!("user{i}@x.test"), 8) as usize] += 1;
    }
    assert!(counts.iter().all(|c| (800..1200).contains(c)), "{counts:?}");
    // The hash is FNV-1a, fixed across builds, so a stored record's shard never moves.
    assert_eq!(crate::due_shard("", 7), (0xcbf2_9ce4_8422_2325u64 % 7) as u32);
}
