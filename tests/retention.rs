//! Retention (issue 15): the template keeps what the engine's retention table
//! says, and nothing expires consent or turns versions back.

mod support;

use serde_norway::Value;

fn template() -> Value {
    serde_norway::from_str(kairos::local::TEMPLATE).expect("the template parses")
}

fn retention(template: &Value, queue: &str) -> i64 {
    let value = &template["Resources"][queue]["Properties"]["MessageRetentionPeriod"];
    value
        .as_i64()
        .unwrap_or_else(|| panic!("{queue} has a MessageRetentionPeriod"))
}

#[test]
fn the_queues_keep_messages_as_long_as_the_dedupe_horizon_assumes() {
    let template = template();
    assert_eq!(
        retention(&template, "EventsQueue"),
        kairos_state::EVENTS_QUEUE_RETENTION_SECS
    );
    for dlq in ["EventsDeadLetterQueue", "WritebackDeadLetterQueue"] {
        assert_eq!(
            retention(&template, dlq),
            kairos_state::DEAD_LETTER_RETENTION_SECS,
            "{dlq}"
        );
    }
    let ttl = &template["Resources"]["ContactsTable"]["Properties"]["TimeToLiveSpecification"];
    assert_eq!(ttl["AttributeName"].as_str(), Some("expires_at"));
}
