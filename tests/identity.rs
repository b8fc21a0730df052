//! Identity linking over moto server (the real DynamoDB wire protocol) and the
//! real AWS SDK: anonymous page views before and after a Segment `identify`
//! count for the identified contact, once, whatever the order or concurrency.

mod support;

use kairos_rules::RuleSet;
use kairos_store::{ContactStore, DynamoContacts};
use support::{batch, Stack};

const RULES: &str = "segments:\n  - id: browsing\n    name: Browsing\n    rule: { event: { type: page.viewed, count: { gte: 3 }, within: 1d } }\n";

fn view(id: &str, contact: &str, at: chrono::DateTime<chrono::Utc>) -> String {
    format!(
        r#"{{"id":"{id}","contact":"{contact}","type":"page.viewed","at":"{}","source":"web","url":"/p"}}"#,
        at.to_rfc3339()
    )
}

fn identify(id: &str, contact: &str, anonymous: &str, at: chrono::DateTime<chrono::Utc>) -> String {
    format!(
        r#"{{"id":"{id}","contact":"{contact}","type":"contact.identified","at":"{}","source":"segment","properties":{{"anonymous_id":"{anonymous}"}}}}"#,
        at.to_rfc3339()
    )
}

/// Page views counted for `contact` in its stored state.
async fn views(store: &DynamoContacts, rules: &RuleSet, contact: &str, now: i64) -> serde_json::Value {
    let record = store.load(contact).await.unwrap().expect("record stored");
    rules.evaluate(&record.state, now).verdicts[0]
        .explanation
        .observed
        .as_ref()
        .unwrap()
        .to_json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_views_before_and_after_identify_count_for_the_contact() {
    let stack = Stack::start().await;
    let evaluation = stack.evaluation(RULES);
    let (store, rules, evaluator) = (&evaluation.store, &evaluation.rules, evaluation.evaluator());
    let now = chrono::Utc::now();
    let min = |m: i64| now - chrono::Duration::minutes(m);
    let before = batch(&[view("v1", "anon:x", min(40)), view("v2", "anon:x", min(30))]);
    let link = || batch(&[identify("i1", "ada@x.test", "x", min(20))]);
    let after = || batch(&[view("v3", "anon:x", min(10)), view("v1", "anon:x", min(40))]);

    for input in [before, link(), after()] {
        let response = kairos_evaluate::handle(input, &evaluator, now).await;
        assert!(response.batch_item_failures.is_empty());
    }
    assert_eq!(
        views(store, rules, "ada@x.test", now.timestamp()).await,
        serde_json::json!(3)
    );
    let anonymous = store.load("anon:x").await.unwrap().unwrap();
    assert_eq!(
        anonymous.merged_into.as_deref(),
        Some("ada@x.test"),
        "the alias round-trips"
    );
    let ada = store.load("ada@x.test").await.unwrap().unwrap();
    assert!(ada.state.member_since("browsing").is_some());
    assert!(ada.state.has_merged("anon:x"));

    // SQS redelivers the identify and the later views: nothing changes.
    for input in [link(), after()] {
        kairos_evaluate::handle(input, &evaluator, now).await;
    }
    assert_eq!(store.load("ada@x.test").await.unwrap().unwrap(), ada);
    assert_eq!(store.load("anon:x").await.unwrap().unwrap(), anonymous);
}

/// Two functions at once: one links, the other processes anonymous views.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn racing_link_and_anonymous_views_lose_nothing() {
    let stack = Stack::start().await;
    let evaluation = stack.evaluation(RULES);
    let (store, rules, evaluator) = (&evaluation.store, &evaluation.rules, evaluation.evaluator());
    let now = chrono::Utc::now();
    let min = |m: i64| now - chrono::Duration::minutes(m);
    for round in 0..5 {
        let (contact, anonymous) = (format!("c{round}@x.test"), format!("a{round}"));
        let key = format!("anon:{anonymous}");
        let views_batch = batch(&[view("v1", &key, min(30)), view("v2", &key, min(20))]);
        let link_batch = batch(&[
            identify("i1", &contact, &anonymous, min(15)),
            view("v3", &contact, min(5)),
        ]);
        let more_batch = batch(&[view("v4", &key, min(10))]);
        let (a, b, c) = tokio::join!(
            kairos_evaluate::handle(views_batch, &evaluator, now),
            kairos_evaluate::handle(link_batch, &evaluator, now),
            kairos_evaluate::handle(more_batch, &evaluator, now),
        );
        assert!([a, b, c].iter().all(|r| r.batch_item_failures.is_empty()));
        assert_eq!(
            views(store, rules, &contact, now.timestamp()).await,
            serde_json::json!(4),
            "round {round}"
        );
    }
}
