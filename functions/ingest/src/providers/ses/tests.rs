//! SES: the SNS envelope, signatures, certificates and records; [`route`]: the route's statuses and claims.

mod route;

use super::*;
use crate::webhook::Request;
use aws_lambda_events::http::{HeaderMap, Method};
use base64::Engine;
use kairos_event::EventType;
use rsa::pkcs8::DecodePrivateKey;
use rsa::sha2::{Digest, Sha256};
use rsa::{Pkcs1v15Sign, RsaPrivateKey};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Mutex;

const VECTOR: &str = include_str!("../../../../../tests/fixtures/esp/sns_notification_sigv1_testvector.json");
const VECTOR_CERT: &str = include_str!("../../../../../tests/fixtures/esp/sns_notification_sigv1_testvector.cert.pem");
const VECTOR_STRING: &str =
    include_str!("../../../../../tests/fixtures/esp/sns_notification_sigv1_testvector.string_to_sign.txt");
const TEST_KEY: &str = include_str!("../../../../../tests/fixtures/esp/sns_test_signing_key.pem");
const TEST_CERT: &str = include_str!("../../../../../tests/fixtures/esp/sns_test_signing_key.cert.pem");
pub(crate) const OPEN: &str = include_str!("../../../../../tests/fixtures/esp/ses_open_event.json");

pub(crate) const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:ses-events";
pub(crate) const CERT_URL: &str = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0000.pem";
const SUBSCRIBE_URL: &str = "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-east-1:123456789012:ses-events&Token=2336412f37";
const NOW: i64 = 1_795_000_000;

/// An [`HttpsGet`] that serves fixed bodies and records every URL asked for.
#[derive(Default)]
pub(crate) struct Recording {
    bodies: HashMap<String, Vec<u8>>,
    pub(crate) calls: Mutex<Vec<String>>,
}

impl Recording {
    /// Serves the test key's certificate at [`CERT_URL`] and an empty 200 elsewhere on SNS.
    pub(crate) fn with_test_cert() -> Recording {
        let mut bodies = HashMap::new();
        bodies.insert(CERT_URL.to_string(), TEST_CERT.as_bytes().to_vec());
        bodies.insert(SUBSCRIBE_URL.to_string(), b"<ConfirmSubscriptionResponse/>".to_vec());
        Recording {
            bodies,
            calls: Mutex::default(),
        }
    }

    pub(crate) fn calls(&self) -> Vec<String> {
        self.calls.lock().unwrap().clone()
    }
}

impl HttpsGet for Recording {
    fn get<'a>(&'a self, url: &'a str) -> Fetch<'a> {
        self.calls.lock().unwrap().push(url.to_string());
        let body = self.bodies.get(url).cloned().ok_or(FetchError::Status(404));
        Box::pin(std::future::ready(body))
    }
}

/// An SNS message of `kind` from `topic`, signed (SignatureVersion 2) with the test key.
pub(crate) fn signed(kind: &str, topic: &str, message_id: &str, message: &str) -> String {
    let mut env = json!({
        "Type": kind, "MessageId": message_id, "TopicArn": topic, "Message": message,
        "Timestamp": "2026-11-28T10:00:00.000Z", "SignatureVersion": "2", "Signature": "",
        "SigningCertURL": CERT_URL,
    });
    if kind != "Notification" {
        env["SubscribeURL"] = json!(SUBSCRIBE_URL);
        env["Token"] = json!("2336412f37");
    }
    sign(&mut env);
    env.to_string()
}

/// Recomputes `Signature` over the envelope's string to sign with the test key (SHA-256).
pub(crate) fn sign(env: &mut Value) {
    let key = RsaPrivateKey::from_pkcs8_pem(TEST_KEY).unwrap();
    let parsed: Envelope = serde_json::from_value(env.clone()).unwrap();
    let digest = Sha256::digest(string_to_sign(&parsed).unwrap().as_bytes());
    let signature = key.sign(Pkcs1v15Sign::new::<Sha256>(), &digest).unwrap();
    env["Signature"] = json!(base64::engine::general_purpose::STANDARD.encode(signature));
}

fn headers(kind: &str) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(sns::TYPE_HEADER, kind.parse().unwrap());
    headers
}

async fn check(ses: &Ses, kind: &str, body: &str) -> Result<Verified, crate::Refusal> {
    let headers = headers(kind);
    let req = Request {
        method: &Method::POST,
        headers: &headers,
        body: body.as_bytes(),
    };
    ses.verify(&req, NOW).await
}

fn ses_with(source: &Arc<Recording>) -> Ses {
    Ses::new(vec![TOPIC.into()], source.clone(), 300)
}

#[test]
fn string_to_sign_matches_the_vector_byte_for_byte() {
    let env = Envelope::from_slice(VECTOR.as_bytes()).unwrap();
    assert_eq!(string_to_sign(&env).unwrap(), VECTOR_STRING);
}

#[test]
fn vector_signature_verifies_with_its_certificate_and_tampering_fails() {
    let key = public_key(VECTOR_CERT.as_bytes()).unwrap();
    let env = Envelope::from_slice(VECTOR.as_bytes()).unwrap();
    assert_eq!(env.signature_version, "1");
    assert_eq!(verify(&key, &env), Ok(()));
    let mut tampered = env.clone();
    tampered.message.push('!');
    assert_eq!(verify(&key, &tampered), Err(SignatureError::Invalid));
    let mut no_subject = env.clone();
    no_subject.subject = None;
    assert_eq!(verify(&key, &no_subject), Err(SignatureError::Invalid));
    let mut as_v2 = env.clone();
    as_v2.signature_version = "2".into();
    assert_eq!(verify(&key, &as_v2), Err(SignatureError::Invalid));
    let mut v3 = env;
    v3.signature_version = "3".into();
    assert_eq!(verify(&key, &v3), Err(SignatureError::Version));
}

#[test]
fn signature_version_2_verifies_with_sha256() {
    let key = public_key(TEST_CERT.as_bytes()).unwrap();
    let body = signed("Notification", TOPIC, "m-1", "{}");
    let env = Envelope::from_slice(body.as_bytes()).unwrap();
    assert_eq!(verify(&key, &env), Ok(()));
    let mut as_v1 = env.clone();
    as_v1.signature_version = "1".into();
    assert_eq!(verify(&key, &as_v1), Err(SignatureError::Invalid));
    let mut other_topic = env;
    other_topic.topic_arn.push('x');
    assert_eq!(verify(&key, &other_topic), Err(SignatureError::Invalid));
}

#[test]
fn confirmation_string_to_sign_has_subscribe_url_and_token_in_order() {
    let body = signed("SubscriptionConfirmation", TOPIC, "m-1", "You have chosen");
    let env = Envelope::from_slice(body.as_bytes()).unwrap();
    let text = string_to_sign(&env).unwrap();
    let names: Vec<&str> = text.lines().step_by(2).collect();
    assert_eq!(
        names,
        [
            "Message",
            "MessageId",
            "SubscribeURL",
            "Timestamp",
            "Token",
            "TopicArn",
            "Type"
        ]
    );
    let mut no_token = env;
    no_token.token = None;
    assert_eq!(string_to_sign(&no_token), Err(SignatureError::Missing("Token")));
}

#[test]
fn only_sns_hosts_are_accepted_as_certificate_urls() {
    for good in [
        CERT_URL,
        "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-a1b2_c3.pem",
        "https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-x.pem",
        "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-x.pem",
        "https://sns.ap-southeast-12.amazonaws.com/a/b.pem",
    ] {
        assert_eq!(cert_url(good), Ok(()), "{good}");
    }
    for bad in [
        "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-x.pem",
        "http://www.example.com",
        "https://www.example.com/cert.pem",
        "https://sns.us-east-1.amazonaws.com.evil.com/x.pem",
        "https://sns.us-east-1.amazonaws.com@evil.com/x.pem",
        "https://evil.com@sns.us-east-1.amazonaws.com/x.pem",
        "https://user:pw@sns.us-east-1.amazonaws.com/x.pem",
        "https://sns.us-east-1.amazonaws.com:8443/x.pem",
        "https://sns.us-east-1.amazonaws.com/x.pem?y",
        "https://sns.us-east-1.amazonaws.com/x.pem#y",
        "https://sns.us-east-1.amazonaws.com/x.txt",
        "https://sns.us-east-1.amazonaws.com/../x.pem",
        "https://sns.us-east-1.amazonaws.com/%2e.pem",
        "https://sns.us-east-1.amazonaws.com\\@evil.com/x.pem",
        "https://sns.us-east-1.amazonaws.com//evil.com/x.pem",
        "https://sns.evil.amazonaws.com/x.pem",
        "https://sns.us-east-x.amazonaws.com/x.pem",
        "https://sns..amazonaws.com/x.pem",
        "https://SNS.us-east-1.amazonaws.com/x.pem",
        "https://sqs.us-east-1.amazonaws.com/x.pem",
        "https://sns.us-east-1.amazonaws.com",
        "",
    ] {
        assert!(cert_url(bad).is_err(), "{bad} was accepted");
    }
    assert!(sns_url(SUBSCRIBE_URL).is_ok());
    assert!(sns_url("https://sns.us-east-1.amazonaws.com.evil.com/?Action=ConfirmSubscription").is_err());
}

#[tokio::test]
async fn other_topics_and_non_aws_certificates_are_refused_without_any_fetch() {
    let source = Arc::new(Recording::with_test_cert());
    let ses = ses_with(&source);
    let other = signed("Notification", "arn:aws:sns:us-east-1:123456789012:other", "m-1", OPEN);
    assert!(check(&ses, "Notification", &other).await.is_err());
    let vector = VECTOR.replace("arn:aws:sns:eu-west-1:12345:test", TOPIC);
    let refused = check(&ses, "Notification", &vector).await.unwrap_err();
    assert!(refused.to_string().contains("SigningCertURL"), "{refused}");
    let mut env: Value = serde_json::from_str(&signed("Notification", TOPIC, "m-1", OPEN)).unwrap();
    env["SigningCertURL"] = json!("https://sns.us-east-1.amazonaws.com.evil.com/x.pem");
    sign(&mut env);
    assert!(check(&ses, "Notification", &env.to_string()).await.is_err());
    let mut confirm: Value = serde_json::from_str(&signed("SubscriptionConfirmation", TOPIC, "m-2", "hi")).unwrap();
    confirm["SubscribeURL"] = json!("https://evil.example/?Action=ConfirmSubscription");
    sign(&mut confirm);
    let refused = check(&ses, "SubscriptionConfirmation", &confirm.to_string())
        .await
        .unwrap_err();
    assert!(refused.to_string().contains("SubscribeURL"), "{refused}");
    assert_eq!(source.calls(), Vec::<String>::new());
}

#[tokio::test]
async fn header_type_must_agree_with_the_body() {
    let source = Arc::new(Recording::with_test_cert());
    let ses = ses_with(&source);
    let body = signed("Notification", TOPIC, "m-1", OPEN);
    assert!(check(&ses, "SubscriptionConfirmation", &body).await.is_err());
    let mut garbage = HeaderMap::new();
    garbage.insert(sns::TYPE_HEADER, "Notification".parse().unwrap());
    for body in ["", "not json", "[]", r#"{"Type":"Notification"}"#] {
        let req = Request {
            method: &Method::POST,
            headers: &garbage,
            body: body.as_bytes(),
        };
        assert!(ses.verify(&req, NOW).await.is_err());
        assert!(super::parse(&req).is_err());
    }
    assert_eq!(source.calls(), Vec::<String>::new());
}

#[tokio::test]
async fn certificates_are_fetched_once_per_url_and_messages_claimed() {
    let source = Arc::new(Recording::with_test_cert());
    let ses = ses_with(&source);
    let first = check(&ses, "Notification", &signed("Notification", TOPIC, "m-1", OPEN))
        .await
        .unwrap();
    let second = check(&ses, "Notification", &signed("Notification", TOPIC, "m-2", OPEN))
        .await
        .unwrap();
    assert_eq!(source.calls(), [CERT_URL]);
    assert_eq!(
        first.claims,
        [Claim {
            covers_body: true,
            key: "ses:m-1".into(),
            expires_at: NOW + 300
        }]
    );
    assert_eq!(second.claims[0].key, "ses:m-2");
    assert!(first.reply.is_none());
    let mut forged: Value = serde_json::from_str(&signed("Notification", TOPIC, "m-3", OPEN)).unwrap();
    forged["Message"] = json!("{}");
    assert!(check(&ses, "Notification", &forged.to_string()).await.is_err());
}

#[tokio::test]
async fn subscription_is_confirmed_once_through_the_client() {
    let source = Arc::new(Recording::with_test_cert());
    let ses = ses_with(&source);
    let body = signed("SubscriptionConfirmation", TOPIC, "m-1", "You have chosen to subscribe");
    let verified = check(&ses, "SubscriptionConfirmation", &body).await.unwrap();
    assert_eq!(verified.reply, Some((200, json!({"confirmed": TOPIC}))));
    assert_eq!(source.calls(), [CERT_URL, SUBSCRIBE_URL]);
    let body = signed("UnsubscribeConfirmation", TOPIC, "m-2", "You have unsubscribed");
    let verified = check(&ses, "UnsubscribeConfirmation", &body).await.unwrap();
    assert_eq!(verified.reply.map(|r| r.0), Some(200));
    assert_eq!(source.calls().len(), 2, "unsubscribe confirmations take no action");
}

#[tokio::test]
async fn a_failed_confirmation_answers_503() {
    let mut source = Recording::with_test_cert();
    source.bodies.remove(SUBSCRIBE_URL);
    let source = Arc::new(source);
    let ses = ses_with(&source);
    let body = signed("SubscriptionConfirmation", TOPIC, "m-1", "hi");
    let verified = check(&ses, "SubscriptionConfirmation", &body).await.unwrap();
    assert_eq!(verified.reply.map(|r| r.0), Some(503));
}

#[test]
fn build_reads_topic_arns_and_refuses_anything_else() {
    let settings = |secret: Option<&str>| Settings {
        secret: secret.map(str::to_string),
        replay_window_secs: 300,
        ..Settings::default()
    };
    assert!(Ses::build(&settings(None)).unwrap().is_none());
    let ses = Ses::build(&settings(Some(&format!("{TOPIC}, arn:aws-cn:sns:cn-north-1:1:t"))))
        .unwrap()
        .unwrap();
    assert!(ses.accepts(TOPIC) && ses.accepts("arn:aws-cn:sns:cn-north-1:1:t") && !ses.accepts("arn:aws:sns:x:1:t"));
    let err = Ses::build(&settings(Some("hunter2"))).unwrap_err().to_string();
    assert!(err.contains("KAIROS_SES_SECRET") && !err.contains("hunter2"), "{err}");
}

fn parse(message: &str) -> Result<Parsed, String> {
    let body = signed("Notification", TOPIC, "sns-1", message);
    let headers = headers("Notification");
    let req = Request {
        method: &Method::POST,
        headers: &headers,
        body: body.as_bytes(),
    };
    super::parse(&req).map_err(|e| e.to_string())
}

#[test]
fn ses_open_fixture_normalizes() {
    let parsed = parse(OPEN).unwrap();
    assert!(parsed.rejected.is_empty());
    let [event] = parsed.events.as_slice() else {
        panic!("{parsed:?}")
    };
    assert_eq!(event.kind, EventType::EmailOpened);
    assert_eq!(event.contact, "recipient@example.com");
    assert_eq!(event.at.to_rfc3339(), "2017-08-09T22:00:19.652+00:00");
    assert_eq!(event.id, "sns-1:recipient@example.com");
    assert_eq!(
        event.message_id.as_deref(),
        Some("7c191be45-e9aedb9a-02f9-4d12-a87d-dd0099a07f8a-000000")
    );
    assert_eq!(event.source, "ses");
    assert!(!event.machine);
    assert_eq!(event.properties["open"]["ipAddress"], "192.0.2.1");
    assert_eq!(event.properties["sns_message_id"], "sns-1");
}

/// A bounce in the event-publishing form, shaped as the SES docs' example (synthesized).
fn bounce(kind: &str) -> Value {
    json!({
        "eventType": "Bounce",
        "bounce": {
            "bounceType": kind, "bounceSubType": "General", "feedbackId": "fb-1",
            "timestamp": "2026-11-28T09:00:01.000Z", "reportingMTA": "dsn; mta.example.com",
            "bouncedRecipients": [
                {"emailAddress": "A@Example.com", "action": "failed", "status": "5.1.1", "diagnosticCode": "smtp; 550 5.1.1 user unknown"},
                {"emailAddress": "Bee <b@example.com>", "action": "failed", "status": "5.1.1"},
                {"action": "failed"}
            ]
        },
        "mail": {"timestamp": "2026-11-28T09:00:00.000Z", "messageId": "ses-msg-1", "source": "news@example.org",
                 "destination": ["a@example.com", "b@example.com", "c@example.com"],
                 "tags": {"ses:configuration-set": ["marketing"]}, "commonHeaders": {"subject": "Hello"}}
    })
}

#[test]
fn bounces_give_one_event_per_bounced_recipient_and_name_bad_entries() {
    let parsed = parse(&bounce("Permanent").to_string()).unwrap();
    let ids: Vec<&str> = parsed.events.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["fb-1:a@example.com", "fb-1:b@example.com"]);
    let first = &parsed.events[0];
    assert_eq!(first.kind, EventType::EmailBounced);
    assert_eq!(first.contact, "a@example.com");
    assert_eq!(first.at.to_rfc3339(), "2026-11-28T09:00:01+00:00");
    assert_eq!(
        first.properties["recipient"]["diagnosticCode"],
        "smtp; 550 5.1.1 user unknown"
    );
    assert_eq!(first.properties["bounce"]["bounceSubType"], "General");
    assert!(first.properties["bounce"].get("bouncedRecipients").is_none());
    assert_eq!(first.properties["subject"], "Hello");
    assert_eq!(first.properties["sender"], "news@example.org");
    assert_eq!(parsed.rejected.len(), 1);
    assert_eq!(parsed.rejected[0].index, 2);
    assert!(parsed.rejected[0].error.contains("emailAddress"));
    let soft = parse(&bounce("Transient").to_string()).unwrap();
    assert!(soft.events.iter().all(|e| e.kind == EventType::EmailDeferred));
    assert!(parse(&bounce("Sideways").to_string())
        .unwrap_err()
        .contains("bounceType"));
}

#[test]
fn notification_form_and_other_kinds_map() {
    let complaint = json!({
        "notificationType": "Complaint",
        "complaint": {"feedbackId": "fb-2", "timestamp": "2026-11-28T09:05:00Z",
                      "complainedRecipients": [{"emailAddress": "c@example.com"}], "complaintFeedbackType": "abuse"},
        "mail": {"timestamp": "2026-11-28T09:00:00Z", "messageId": "ses-msg-2", "destination": ["c@example.com"]}
    });
    let parsed = parse(&complaint.to_string()).unwrap();
    assert_eq!(parsed.events[0].kind, EventType::EmailComplained);
    assert_eq!(parsed.events[0].id, "fb-2:c@example.com");
    let click = json!({
        "eventType": "Click",
        "click": {"timestamp": "2026-11-28T09:10:00Z", "link": "https://example.org/x", "ipAddress": "192.0.2.9"},
        "mail": {"timestamp": "2026-11-28T09:00:00Z", "messageId": "ses-msg-3", "destination": ["d@example.com", "e@example.com"]}
    });
    let parsed = parse(&click.to_string()).unwrap();
    assert_eq!(parsed.events.len(), 2);
    assert_eq!(parsed.events[1].url.as_deref(), Some("https://example.org/x"));
    assert_eq!(parsed.events[1].id, "sns-1:e@example.com");
    let delivery = json!({
        "notificationType": "Delivery",
        "delivery": {"timestamp": "2026-11-28T09:01:00Z", "recipients": ["f@example.com"], "smtpResponse": "250 ok"},
        "mail": {"timestamp": "2026-11-28T09:00:00Z", "messageId": "ses-msg-4", "destination": ["f@example.com", "g@example.com"]}
    });
    let parsed = parse(&delivery.to_string()).unwrap();
    assert_eq!(parsed.events.len(), 1);
    assert_eq!(parsed.events[0].kind, EventType::EmailDelivered);
    let unsubscribe = json!({
        "eventType": "Subscription",
        "subscription": {"contactList": "news", "timestamp": "2026-11-28T09:20:00Z",
                         "newTopicPreferences": {"unsubscribeAll": true}},
        "mail": {"timestamp": "2026-11-28T09:00:00Z", "messageId": "ses-msg-5", "destination": ["h@example.com"]}
    });
    assert_eq!(
        parse(&unsubscribe.to_string()).unwrap().events[0].kind,
        EventType::EmailUnsubscribed
    );
    let send = json!({"eventType": "Send", "send": {},
        "mail": {"timestamp": "2026-11-28T09:00:00Z", "messageId": "m", "destination": ["i@example.com"]}});
    let parsed = parse(&send.to_string()).unwrap();
    assert_eq!(parsed.events[0].kind, EventType::EmailSent);
    assert_eq!(parsed.events[0].at.to_rfc3339(), "2026-11-28T09:00:00+00:00");
}

#[test]
fn unknown_garbage_and_test_notifications() {
    let unknown = json!({"eventType": "Teleport", "mail": {"destination": ["a@example.com"]}});
    assert!(parse(&unknown.to_string()).unwrap_err().contains("Teleport"));
    assert!(parse("not json").is_err());
    assert!(parse("[1,2]").is_err());
    assert!(parse(r#"{"eventType":"Open","open":{}}"#).is_err());
    assert!(parse(r#"{"eventType":"Open","mail":{"destination":[]}}"#).is_err());
    let no_time = parse(r#"{"eventType":"Open","mail":{"destination":["a@example.com"]}}"#).unwrap();
    assert_eq!(no_time.rejected.len(), 1);
    let bad_time = r#"{"eventType":"Open","open":{"timestamp":"yesterday"},"mail":{"destination":["a@example.com"]}}"#;
    assert!(parse(bad_time).unwrap().rejected[0].error.contains("yesterday"));
    let hello = r#"{"notificationType":"AmazonSnsSubscriptionSucceeded","message":"You have successfully subscribed"}"#;
    assert_eq!(parse(hello).unwrap(), Parsed::default());
}

#[tokio::test]
async fn vector_verifies_through_the_route_check_when_its_certificate_is_served_from_an_sns_url() {
    // SigningCertURL is not signed, so pointing it at an SNS URL (served by the
    // injected source) keeps the SignatureVersion 1 vector valid end to end.
    let mut source = Recording::default();
    source.bodies.insert(CERT_URL.into(), VECTOR_CERT.as_bytes().to_vec());
    let source = Arc::new(source);
    let ses = Ses::new(vec!["arn:aws:sns:eu-west-1:12345:test".into()], source.clone(), 300);
    let mut env: Value = serde_json::from_str(VECTOR).unwrap();
    env["SigningCertURL"] = json!(CERT_URL);
    let verified = check(&ses, "Notification", &env.to_string()).await.unwrap();
    assert_eq!(verified.claims[0].key, "ses:12345-abcdef");
    env["Subject"] = json!("This is the subjecT");
    assert!(check(&ses, "Notification", &env.to_string()).await.is_err());
    assert_eq!(source.calls(), [CERT_URL]);
}

#[test]
fn subscription_notifications_file_consent_under_the_lowercase_address() {
    let record = json!({
        "eventType": "Subscription",
        "mail": {"timestamp": "2026-11-27T10:00:00Z", "messageId": "m", "destination": ["Ada Lovelace <Ada@Example.COM>"]},
        "subscription": {"timestamp": "2026-11-27T10:01:00Z", "newTopicPreferences": {"unsubscribeAll": false}}
    });
    let outcomes = normalize(&record, "sns-1").unwrap();
    let event = outcomes[0].1.as_ref().unwrap();
    assert_eq!(
        (event.kind, event.contact.as_str()),
        (EventType::ConsentChanged, "ada@example.com")
    );
}

#[test]
fn a_topic_opted_out_is_an_unsubscribe_and_only_an_opt_in_or_a_reset_is_a_subscribe() {
    let kind = |new: Value, old: Value| {
        let record = json!({
            "eventType": "Subscription",
            "mail": {"timestamp": "2026-11-27T10:00:00Z", "messageId": "m", "destination": ["a@example.com"]},
            "subscription": {"timestamp": "2026-11-27T10:01:00Z", "newTopicPreferences": new, "oldTopicPreferences": old}
        });
        normalize(&record, "sns-1").unwrap()[0].1.as_ref().unwrap().kind
    };
    let prefs = |statuses: &[(&str, &str)]| {
        let topics: Vec<Value> = statuses
            .iter()
            .map(|(t, s)| json!({"topicName": t, "subscriptionStatus": s}))
            .collect();
        json!({"unsubscribeAll": false, "topicSubscriptionStatus": topics})
    };
    // The List-Unsubscribe link of a topic's email: that topic opted out, the others kept.
    let news_out = prefs(&[("news", "OptOut"), ("offers", "OptIn")]);
    let both_in = prefs(&[("news", "OptIn"), ("offers", "OptIn")]);
    assert_eq!(kind(news_out.clone(), both_in.clone()), EventType::EmailUnsubscribed);
    // With no old preferences given, a topic opted out is still new.
    assert_eq!(kind(news_out.clone(), Value::Null), EventType::EmailUnsubscribed);
    // Opting back in to a topic, or nothing newly opted out, is a subscribe.
    assert_eq!(kind(both_in, news_out.clone()), EventType::ConsentChanged);
    let offers_out_already = prefs(&[("news", "OptIn"), ("offers", "OptOut")]);
    let reset = json!({"unsubscribeAll": true, "topicSubscriptionStatus": []});
    assert_eq!(kind(offers_out_already, reset), EventType::ConsentChanged);
}
