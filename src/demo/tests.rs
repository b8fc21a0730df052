use super::*;

async fn demo() -> (Summary, String) {
    let mut out = Vec::new();
    let summary = run(kairos_evaluate::DEFAULT_RULES, DEFAULT_EVENTS, &mut out)
        .await
        .unwrap();
    (summary, String::from_utf8(out).unwrap())
}

#[tokio::test]
async fn the_sample_story_plays_out() {
    let (summary, text) = demo().await;
    assert_eq!(summary.rejected, 1, "{text}");
    assert_eq!(summary.duplicates, 1, "{text}");
    assert_eq!(summary.accepted, 15, "{text}");
    assert_eq!(summary.requests, summary.transitions, "{text}");
    let order = [
        "ENTERED gone-quiet",
        "ENTERED comparing-vendors",
        "ENTERED pricing-intent",
        "ENTERED cross-channel-hot",
        "ENTERED sales-ready",
        "ENTERED engaged-reader",
        "EXITED  pricing-intent",
        "EXITED  gone-quiet",
        "time passes",
        "EXITED  comparing-vendors",
        "EXITED  sales-ready",
        "EXITED  engaged-reader",
        "EXITED  cross-channel-hot",
    ];
    let mut from = 0;
    for needle in order {
        let at = text[from..]
            .find(needle)
            .unwrap_or_else(|| panic!("`{needle}` not found after byte {from}:\n{text}"));
        from += at + needle.len();
    }
    assert!(text.contains("unknown variant `email.read`"), "{text}");
    assert!(
        text.contains("NOT track \"Demo Booked\" within 30d = 0 [count >= 1: no]"),
        "{text}"
    );
}

#[tokio::test]
async fn bad_rules_are_reported() {
    let err = run("segments: []", DEFAULT_EVENTS, &mut Vec::new()).await.unwrap_err();
    assert!(err.contains("expected at least one segment"), "{err}");
}
