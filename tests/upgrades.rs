//! Upgrades never orphan data: contact items written by the first release's
//! DynamoDB adapter (`shared/store/tests/fixtures/v1/`), stored as they are in
//! the template's table on moto server, are read by this build, carried
//! forward by the real evaluate path, and rewritten in this build's format.

mod support;

use aws_sdk_dynamodb::types::AttributeValue;
use kairos_evaluate::{Evaluator, DEFAULT_RULES};
use kairos_event::Event;
use kairos_rules::RuleSet;
use kairos_state::{ConsentStatus, TraitValue, STATE_FORMAT};
use kairos_store::{ContactStore, MemoryQueue, StoreError};
use support::Stack;

const V1: [&str; 5] = [
    include_str!("../shared/store/tests/fixtures/v1/contact-ada.json"),
    include_str!("../shared/store/tests/fixtures/v1/contact-bob.json"),
    include_str!("../shared/store/tests/fixtures/v1/contact-carol.json"),
    include_str!("../shared/store/tests/fixtures/v1/contact-dave.json"),
    include_str!("../shared/store/tests/fixtures/v1/contact-anon.json"),
];

fn now() -> chrono::DateTime<chrono::Utc> {
    "2026-11-28T12:00:00Z".parse().unwrap()
}

fn event(id: &str, contact: &str, kind: &str, at: &str, extra: &str) -> Event {
    let json =
        format!(r#"{{"id":"{id}","contact":"{contact}","type":"{kind}","at":"{at}","source":"sendgrid"{extra}}}"#);
    Event::from_json(json.as_bytes()).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn first_release_items_are_read_and_carried_forward() {
    let stack = Stack::start().await;
    for item in V1 {
        stack.put_raw_item(item).await;
    }
    let (store, queue) = (stack.store(), MemoryQueue::default());
    let rules = RuleSet::from_yaml(DEFAULT_RULES).unwrap();
    let evaluator = Evaluator::new(&rules, &store, &queue);
    let bob_before = store.load("bob@globex.test").await.unwrap().unwrap();
    assert_eq!(
        bob_before.state.trait_value("job_title"),
        Some(&TraitValue::Text("VP Marketing".into()))
    );
    let views = |s: &kairos_state::ContactState| {
        s.signals()
            .iter()
            .map(|s| s.count_since(0, now().timestamp()))
            .sum::<u64>()
    };

    // A re-keyed anonymous view, a redelivery, and new events for the others.
    let view = r#","url":"https://kairos.example/pricing""#;
    let steps = [
        (
            "anon:v-42",
            event("w-a3", "anon:v-42", "page.viewed", "2026-11-28T11:50:00Z", view),
        ),
        (
            "ada@acme.test",
            event("sg-004", "ada@acme.test", "email.opened", "2026-11-25T12:30:00Z", ""),
        ),
        (
            "carol@initech.test",
            event(
                "sg-201",
                "carol@initech.test",
                "email.opened",
                "2026-11-28T11:55:00Z",
                "",
            ),
        ),
        (
            "dave@hooli.test",
            event("sg-202", "dave@hooli.test", "email.opened", "2026-11-28T11:58:00Z", ""),
        ),
    ];
    for (contact, e) in &steps {
        let outcome = evaluator
            .contact(contact, std::slice::from_ref(e), now())
            .await
            .unwrap();
        let expected = usize::from(e.id != "sg-004");
        assert_eq!(
            (outcome.applied, outcome.refused_as(kairos_engine::Applied::Duplicate)),
            (expected, 1 - expected),
            "{contact}"
        );
    }

    let bob = store.load("bob@globex.test").await.unwrap().unwrap();
    assert_eq!(
        views(&bob.state),
        views(&bob_before.state) + 1,
        "the anonymous view counts for bob"
    );
    assert_eq!(
        bob.state.trait_value("job_title"),
        bob_before.state.trait_value("job_title")
    );
    assert!(bob.version > bob_before.version && bob.state.has_merged("anon:v-42"));
    let carol = store.load("carol@initech.test").await.unwrap().unwrap();
    assert_eq!(carol.state.consent().status(), ConsentStatus::Unsubscribed);
    // Dave's outbox, left by the first release when its send failed, is delivered.
    let sent: Vec<String> = queue.drain().into_iter().map(|m| m.body).collect();
    assert!(
        sent.iter()
            .any(|b| b.contains(r#""contact":"dave@hooli.test","segment":"engaged-reader","change":"entered""#)),
        "{sent:?}"
    );
    for pk in [
        "contact#bob@globex.test",
        "contact#carol@initech.test",
        "contact#dave@hooli.test",
    ] {
        let item = stack.raw_item(pk).await.unwrap();
        assert_eq!(
            item.get("format"),
            Some(&AttributeValue::N(STATE_FORMAT.to_string())),
            "{pk}"
        );
        assert!(!item.contains_key("outbox"), "{pk}");
    }
    // Untouched records stay as the first release wrote them, and still read.
    assert_eq!(stack.raw_item("contact#anon:v-42").await.unwrap().get("format"), None);
    assert_eq!(
        store.load("anon:v-42").await.unwrap().unwrap().merged_into.as_deref(),
        Some("bob@globex.test")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_item_in_a_newer_format_is_refused_permanently() {
    let stack = Stack::start().await;
    let newer = V1[0].replacen(
        r#""expires_at""#,
        &format!(r#""format": {{"N": "{}"}}, "expires_at""#, STATE_FORMAT + 1),
        1,
    );
    stack.put_raw_item(&newer).await;
    let (store, queue) = (stack.store(), MemoryQueue::default());
    let err = store.load("ada@acme.test").await.unwrap_err();
    assert!(
        matches!(err, StoreError::Newer { found, supported } if found == STATE_FORMAT + 1 && supported == STATE_FORMAT)
    );
    let rules = RuleSet::from_yaml(DEFAULT_RULES).unwrap();
    let open = event("sg-301", "ada@acme.test", "email.opened", "2026-11-28T11:58:00Z", "");
    let err = Evaluator::new(&rules, &store, &queue)
        .contact("ada@acme.test", &[open], now())
        .await
        .unwrap_err();
    assert!(err.is_permanent(), "{err}");
    assert!(err.to_string().contains("newer than this build reads"), "{err}");
    let item = stack.raw_item("contact#ada@acme.test").await.unwrap();
    let newer = AttributeValue::N((STATE_FORMAT + 1).to_string());
    assert_eq!(item.get("format"), Some(&newer), "left as it was");
}
