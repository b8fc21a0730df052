//! `kairos inspect`: a contact evaluated into the template's table on moto is
//! read back by the store and shown in human terms.

mod support;

use chrono::{DateTime, Duration, Utc};
use kairos_rules::RuleSet;
use support::{event_json, Stack};

#[tokio::test]
async fn a_stored_contact_is_shown_with_memberships_consent_traits_and_named_signals() {
    let stack = Stack::start().await;
    let rules = RuleSet::from_yaml(kairos_evaluate::DEFAULT_RULES).unwrap();
    let now: DateTime<Utc> = "2026-12-05T10:00:00Z".parse().unwrap();
    let bodies = [
        event_json("o1", "ada@acme.test", "email.opened", now - Duration::hours(30)),
        event_json("c1", "ada@acme.test", "email.clicked", now - Duration::minutes(5)),
        r#"{"id":"i1","contact":"ada@acme.test","type":"contact.identified","at":"2026-12-05T09:00:00Z","source":"crm","traits":{"job_title":"CTO"}}"#.to_string(),
    ];
    stack.send("EventsQueue", &bodies).await;
    let messages = stack.receive("EventsQueue", bodies.len()).await;
    assert!(stack
        .evaluate(&rules, &messages, now)
        .await
        .batch_item_failures
        .is_empty());

    let shown = kairos::inspect::inspect(&stack.store(), &rules, " Ada@Acme.test ", now)
        .await
        .unwrap();
    assert_eq!(shown["contact"], "ada@acme.test");
    assert!(shown["version"].as_u64().unwrap() > 0);
    assert_eq!(shown["memberships"][0]["segment"], "engaged-reader", "{shown:#}");
    assert_eq!(shown["memberships"][0]["since"], "2026-12-05T10:00:00Z");
    assert!(shown["consent"]["status"].is_string(), "{shown:#}");
    assert_eq!(shown["traits"]["job_title"]["value"], "CTO", "{shown:#}");
    let signals = shown["signals"].as_array().unwrap();
    let clicked = signals
        .iter()
        .find(|s| s["signal"].as_str().unwrap().starts_with("email.clicked"))
        .unwrap_or_else(|| panic!("clicks are named: {shown:#}"));
    assert_eq!(clicked["last_at"], "2026-12-05T09:55:00Z");
    assert_eq!(clicked["last_24h"], 1);
    let opened = signals
        .iter()
        .find(|s| s["signal"].as_str().unwrap().starts_with("email.opened"))
        .unwrap_or_else(|| panic!("opens are named: {shown:#}"));
    assert_eq!(
        (opened["last_24h"].as_u64(), opened["last_7d"].as_u64()),
        (Some(0), Some(1))
    );

    let missing = kairos::inspect::inspect(&stack.store(), &rules, "nobody@acme.test", now).await;
    assert!(
        matches!(missing, Err(kairos::inspect::InspectError::NotFound(_))),
        "{missing:?}"
    );
}
