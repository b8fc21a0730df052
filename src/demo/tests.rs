use super::*;

async fn demo() -> (Summary, String) {
    let mut out = Vec::new();
    let summary = run(
        kairos_evaluate::DEFAULT_RULES,
        DEFAULT_EVENTS,
        DEFAULT_DESTINATIONS,
        &mut out,
    )
    .await
    .unwrap();
    (summary, String::from_utf8(out).unwrap())
}

#[tokio::test]
async fn the_sample_story_plays_out() {
    let (summary, text) = demo().await;
    assert_eq!(summary.rejected, 1, "{text}");
    assert_eq!(summary.duplicates, 1, "{text}");
    assert_eq!(summary.accepted, 16, "{text}");
    assert!(summary.requests > summary.transitions, "{text}");
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
    // Issue 20: a human override enters and lapses; the consent guard holds an entry.
    let pinned = text.find("why: override by admin-key:demo: VIP account, asked by sales");
    let lapsed = text.find("why: override by admin-key:demo expired");
    assert!(pinned.is_some() && pinned < lapsed, "{text}");
    assert!(
        text.contains("⊘ HELD    engaged-reader")
            && text.contains("why: consent guard: consent is unsubscribed; written as not a member"),
        "{text}"
    );
    assert!(
        text.contains("NOT track \"Demo Booked\" within 30d = 0 [count >= 1: no]"),
        "{text}"
    );
}

#[tokio::test]
async fn bad_rules_are_reported() {
    let err = run("segments: []", DEFAULT_EVENTS, DEFAULT_DESTINATIONS, &mut Vec::new())
        .await
        .unwrap_err();
    assert!(err.contains("expected at least one segment"), "{err}");
}

#[tokio::test]
async fn each_crm_is_shown_the_requests_it_would_receive() {
    let (_, text) = demo().await;
    for expected in [
        "⇢ webhook: POST https://crm.example.test/kairos",
        "⇢ hubspot: POST https://api.hubapi.com/crm/v3/objects/contacts/batch/upsert",
        "⇢ hubspot: PUT https://api.hubapi.com/crm/v3/lists/7/memberships/add",
        "⇢ salesforce: POST https://login.salesforce.com/services/oauth2/token",
        "⇢ salesforce: PATCH https://example.my.salesforce.com/services/data/v62.0/composite/sobjects/Contact/Kairos_Key__c",
        "⇢ pipedrive: GET https://api.pipedrive.com/api/v2/persons/search?term=",
        "⇢ pipedrive: PATCH https://api.pipedrive.com/api/v2/persons/42",
    ] {
        assert!(text.contains(expected), "`{expected}` not in:\n{text}");
    }
    assert!(text.contains("\"kairos_segments\":\"comparing-vendors\""), "{text}");
    assert!(!text.contains("demo-to"), "credentials are masked:\n{text}");
    assert!(text.contains("assertion=[redacted]"), "{text}");
}

#[tokio::test]
async fn destinations_naming_unknown_segments_are_refused() {
    let bad = DEFAULT_DESTINATIONS.replace("[sales-ready]", "[salesready]");
    let err = run(kairos_evaluate::DEFAULT_RULES, DEFAULT_EVENTS, &bad, &mut Vec::new())
        .await
        .unwrap_err();
    assert!(err.contains("unknown segment `salesready`"), "{err}");
}

#[tokio::test]
async fn the_demo_moves_a_signup_onto_the_pricing_thread_and_defers_a_night_send() {
    let (summary, text) = demo().await;
    assert_eq!(summary.decisions, 4, "{text}");
    let order = [
        "eve@initech.test     decide → SEND onboarding/welcome",
        "https://kairos.example/compare",
        "eve@initech.test     decide → SEND pricing-intent/comparison",
        "`onboarding` (priority 10) outranked",
        "dan@hooli.test       decide → NO SEND: quiet hours until 2026-11-26T08:00:00Z",
        "quiet hours 21:00-08:00 in Europe/London (the default zone)",
        "dan@hooli.test       decide → SEND onboarding/welcome",
    ];
    let mut from = 0;
    for needle in order {
        let at = text[from..]
            .find(needle)
            .unwrap_or_else(|| panic!("`{needle}` not found after byte {from}:\n{text}"));
        from += at + needle.len();
    }
}
