//! SES through SNS: an RSA SHA-256 (SignatureVersion 2) signed notification,
//! the certificate served from memory (as the warm cache would hold it).

use std::sync::Arc;

use base64::Engine;
use kairos_ingest::providers::ses::cert::{Fetch, HttpsGet};
use kairos_ingest::providers::ses::Ses;
use rsa::pkcs1v15::Pkcs1v15Sign;
use rsa::pkcs8::DecodePrivateKey;
use rsa::RsaPrivateKey;
use serde_json::json;
use sha2::{Digest, Sha256};

use super::{headers, Case, NOW};

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:ses-events";
const CERT_URL: &str = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-bench.pem";

/// Serves the test certificate for every URL.
struct TestCert;

impl HttpsGet for TestCert {
    fn get<'a>(&'a self, _url: &'a str) -> Fetch<'a> {
        let pem = include_bytes!("../../../../tests/fixtures/esp/sns_test_signing_key.cert.pem");
        Box::pin(std::future::ready(Ok(pem.to_vec())))
    }
}

/// The SES open record in a signed SNS notification.
pub fn case() -> Case {
    let message = include_str!("../../../../tests/fixtures/esp/ses_open_event.json");
    let (id, ts) = ("5b1d1d3c-bench", "2026-11-28T10:00:00.000Z");
    let string_to_sign =
        format!("Message\n{message}\nMessageId\n{id}\nTimestamp\n{ts}\nTopicArn\n{TOPIC}\nType\nNotification\n");
    let pem = include_str!("../../../../tests/fixtures/esp/sns_test_signing_key.pem");
    let key = RsaPrivateKey::from_pkcs8_pem(pem).expect("the test key");
    let digest = Sha256::digest(string_to_sign.as_bytes());
    let signature = key.sign(Pkcs1v15Sign::new::<Sha256>(), &digest).expect("signs");
    let body = json!({
        "Type": "Notification", "MessageId": id, "TopicArn": TOPIC, "Message": message,
        "Timestamp": ts, "SignatureVersion": "2", "SigningCertURL": CERT_URL,
        "Signature": base64::engine::general_purpose::STANDARD.encode(signature),
    });
    Case {
        name: "ses",
        hook: Arc::new(Ses::new(vec![TOPIC.into()], Arc::new(TestCert), 300)),
        headers: headers(&[("x-amz-sns-message-type", "Notification")]),
        body: body.to_string().into_bytes(),
        now: NOW,
    }
}
