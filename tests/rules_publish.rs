//! Rules published without a redeploy (issue 16 item 4, the evaluate side):
//! the template's versioned rules bucket on moto, read by the evaluate
//! function's live rules through the S3 adapter, decisions changing at the
//! next refresh without a restart, an invalid upload refused.

mod support;

use chrono::{DateTime, Duration, Utc};
use kairos_evaluate::LiveRules;
use kairos_store::{ContactStore, S3Rules};
use support::{event_json, failed, Stack};

const CLICKED: &str =
    "segments:\n  - { id: clicked, name: Clicked, rule: { event: { type: email.clicked, within: 7d } } }\n";
const TWICE: &str =
    "segments:\n  - { id: clicked-twice, name: Clicked twice, rule: { event: { type: email.clicked, count: { gte: 2 }, within: 7d } } }\n";

async fn publish(stack: &Stack, text: &str) {
    let s3 = kairos::local::s3_client(&stack.aws);
    let put = s3
        .put_object()
        .bucket(stack.infra.buckets["RulesBucket"].as_str())
        .key("segments.yaml");
    put.body(text.as_bytes().to_vec().into())
        .send()
        .await
        .expect("rules uploaded");
}

/// Evaluates these events (one message each) under the rules in force at `now`.
async fn evaluate(stack: &Stack, live: &LiveRules<S3Rules>, bodies: &[String], now: DateTime<Utc>) {
    stack.send("EventsQueue", bodies).await;
    let messages = stack.receive("EventsQueue", bodies.len()).await;
    let rules = live.current(now.timestamp()).await;
    let response = stack.evaluate(&rules, &messages, now).await;
    assert!(failed(&response).is_empty());
    stack.ack("EventsQueue", &messages, &response).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_changes_decisions_at_the_next_refresh_and_an_invalid_upload_keeps_the_rules() {
    let stack = Stack::start().await;
    let uri = format!("s3://{}/segments.yaml", stack.infra.buckets["RulesBucket"]);
    let object = S3Rules::new(kairos::local::s3_client(&stack.aws), &uri).unwrap();
    let embedded = kairos_rules::RuleSet::from_yaml(CLICKED).unwrap();
    let live = LiveRules::new(object, embedded, 30);
    let t0 = DateTime::from_timestamp(Utc::now().timestamp(), 0).unwrap();
    let click = |id: &str, contact: &str, at| event_json(id, contact, "email.clicked", at);

    // Nothing published: the rules given at start.
    evaluate(&stack, &live, &[click("a1", "ada@x.test", t0)], t0).await;
    let members =
        |r: kairos_store::StoredContact| r.state.members().iter().map(|(id, _)| id.clone()).collect::<Vec<_>>();
    assert_eq!(
        members(stack.store().load("ada@x.test").await.unwrap().unwrap()),
        ["clicked"]
    );

    // Published: not read within the interval, read at the next refresh (no restart).
    publish(&stack, TWICE).await;
    let soon = t0 + Duration::seconds(10);
    evaluate(&stack, &live, &[click("b1", "bo@x.test", soon)], soon).await;
    assert_eq!(
        members(stack.store().load("bo@x.test").await.unwrap().unwrap()),
        ["clicked"]
    );
    let next = t0 + Duration::seconds(31);
    evaluate(
        &stack,
        &live,
        &[click("c1", "cy@x.test", next), click("c2", "cy@x.test", next)],
        next,
    )
    .await;
    assert_eq!(
        members(stack.store().load("cy@x.test").await.unwrap().unwrap()),
        ["clicked-twice"]
    );

    // An invalid upload is refused: the rules in force stay.
    publish(&stack, "segments:\n  - { id: broken }\n").await;
    let later = t0 + Duration::seconds(62);
    let rules = live.current(later.timestamp()).await;
    assert_eq!(rules.segments().map(|s| s.id).collect::<Vec<_>>(), ["clicked-twice"]);
    // And an unchanged object is not downloaded again (a conditional read answers 304).
    let again = live.current((later + Duration::seconds(31)).timestamp()).await;
    assert_eq!(again.fingerprint(), rules.fingerprint());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_validates_records_who_and_why_and_history_and_rollback_work_on_versions() {
    let stack = Stack::start().await;
    let uri = format!("s3://{}/segments.yaml", stack.infra.buckets["RulesBucket"]);
    let s3 = kairos::local::s3_client(&stack.aws);
    let first = kairos::publish::publish(&s3, &uri, CLICKED, "ada", "first rules")
        .await
        .unwrap();
    let second = kairos::publish::publish(&s3, &uri, TWICE, "bo", "two clicks")
        .await
        .unwrap();
    assert_ne!(first, second);
    let seq = |s3: &aws_sdk_s3::Client| {
        let object = S3Rules::new(s3.clone(), &uri).unwrap();
        let embedded = kairos_rules::RuleSet::from_yaml(CLICKED).unwrap();
        async move { LiveRules::new(object, embedded, 30).versioned(0).await.1 }
    };
    let second_seq = seq(&s3).await;
    assert!(second_seq > 0, "a published version has a sequence");
    // Nothing invalid is uploaded.
    let err = kairos::publish::publish(&s3, &uri, "segments:\n  - { id: broken }\n", "cy", "oops")
        .await
        .unwrap_err();
    assert!(err.starts_with("not published: ") && err.contains("broken"), "{err}");

    let history = kairos::publish::history(&s3, &uri).await.unwrap();
    let seen: Vec<(&str, &str, &str, bool)> = history
        .iter()
        .map(|v| (v.version.as_str(), v.by.as_str(), v.message.as_str(), v.latest))
        .collect();
    assert_eq!(
        seen,
        [
            (second.as_str(), "bo", "two clicks", true),
            (first.as_str(), "ada", "first rules", false)
        ]
    );
    let fingerprint = kairos_rules::RuleSet::from_yaml(TWICE).unwrap().fingerprint();
    assert_eq!(history[0].fingerprint, format!("{fingerprint:016x}"));

    let third = kairos::publish::rollback(&s3, &uri, &first, "dee").await.unwrap();
    let history = kairos::publish::history(&s3, &uri).await.unwrap();
    assert_eq!(
        (history.len(), history[0].version.as_str(), history[0].latest),
        (3, third.as_str(), true)
    );
    assert_eq!(history[0].message, format!("rollback to {first}"));
    assert!(seq(&s3).await > second_seq, "a rollback is a newer version");
    let object = S3Rules::new(s3.clone(), &uri).unwrap();
    let live = LiveRules::new(object, kairos_rules::RuleSet::from_yaml(TWICE).unwrap(), 30);
    let rules = live.current(0).await;
    assert_eq!(
        rules.segments().map(|s| s.id).collect::<Vec<_>>(),
        ["clicked"],
        "the rolled-back rules are in force"
    );

    // The table keeps the version that decided a record.
    let record = kairos_store::StoredContact {
        version: 1,
        rules_seq: second_seq,
        ..Default::default()
    };
    stack.store().save("ada@x.test", None, &record).await.unwrap();
    let loaded = stack.store().load("ada@x.test").await.unwrap().unwrap();
    assert_eq!(loaded.rules_seq, second_seq);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_that_raced_another_is_refused_naming_both_versions_not_written_over_it() {
    let stack = Stack::start().await;
    let uri = format!("s3://{}/segments.yaml", stack.infra.buckets["RulesBucket"]);
    let s3 = kairos::local::s3_client(&stack.aws);

    // Two first publishes read "nothing published": the second finds the key taken (If-None-Match: *).
    let empty = kairos::publish::read(&s3, &uri).await.unwrap();
    assert_eq!(empty.version, None);
    let first = kairos::publish::publish_read(&s3, &uri, CLICKED, "ada", "first", &empty)
        .await
        .unwrap();
    let err = kairos::publish::publish_read(&s3, &uri, TWICE, "bo", "also first", &empty)
        .await
        .unwrap_err();
    assert!(
        err.starts_with("not published: ")
            && err.contains(&format!("version {first} "))
            && err.contains("version none"),
        "{err}"
    );

    // Ada and Bo both read the first version; Ada publishes; Bo's write (If-Match the ETag he read) is refused.
    let ada = kairos::publish::read(&s3, &uri).await.unwrap();
    let bo = kairos::publish::read(&s3, &uri).await.unwrap();
    assert_eq!(bo.version.as_deref(), Some(first.as_str()));
    let second = kairos::publish::publish_read(&s3, &uri, TWICE, "ada", "two clicks", &ada)
        .await
        .unwrap();
    let err = kairos::publish::publish_read(&s3, &uri, CLICKED, "bo", "stale edit", &bo)
        .await
        .unwrap_err();
    assert!(
        err.contains(&format!(
            "version {second} of {uri} was published after version {first}"
        )),
        "{err}"
    );
    // The same refusal when the editor's version is given up front.
    let err = kairos::publish::publish_on(&s3, &uri, CLICKED, "bo", "stale edit", Some(&first))
        .await
        .unwrap_err();
    assert!(
        err.contains(&format!(
            "version {second} of {uri} was published after version {first}"
        )),
        "{err}"
    );

    // Nothing was overwritten: Ada's version is in force, Bo's never stored.
    let history = kairos::publish::history(&s3, &uri).await.unwrap();
    let seen: Vec<(&str, &str, bool)> = history
        .iter()
        .map(|v| (v.version.as_str(), v.by.as_str(), v.latest))
        .collect();
    assert_eq!(seen, [(second.as_str(), "ada", true), (first.as_str(), "ada", false)]);
    // A publish on the version in force goes through.
    let third = kairos::publish::publish_on(&s3, &uri, CLICKED, "bo", "redone", Some(&second))
        .await
        .unwrap();
    assert_eq!(kairos::publish::read(&s3, &uri).await.unwrap().version, Some(third));
}
