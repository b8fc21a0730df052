//! The ingest function's signature checks as shipped (`ring`, through
//! `kairos_ingest`'s own verification functions and key types), side by side
//! with the pure-Rust crates they replaced (`p256`, `rsa`) and with
//! `aws-lc-rs`, the other C/assembly-backed library (the AWS SDK's default
//! TLS provider, no longer in the functions: a dev-dependency of this bench
//! only), on real fixture payloads (`make bench`):
//!
//! - SendGrid: ECDSA P-256 / SHA-256 over `timestamp || body`, the four
//!   SendGrid fixtures as one batch, DER signature;
//! - SES via SNS: RSA-2048 PKCS#1 v1.5, SHA-256 (SignatureVersion 2) and
//!   SHA-1 (version 1), over the SES open fixture's string to sign, with the
//!   test signing certificate's key.
//!
//! Prints microseconds per verification (mean over `KAIROS_BENCH_SECS`,
//! default 1 s, each library), after checking each library accepts the good
//! signature and refuses a tampered message.

use std::time::{Duration, Instant};

use base64::Engine;
use kairos_ingest::providers::sendgrid;

use p256::ecdsa::signature::{Signer, Verifier};
use rsa::pkcs8::DecodePrivateKey;
use rsa::traits::PublicKeyParts;
use rsa::{Pkcs1v15Sign, RsaPrivateKey};
use sha1::Sha1;
use sha2::{Digest, Sha256};

/// How long each library is measured (seconds; `KAIROS_BENCH_SECS`).
fn budget() -> Duration {
    let secs = std::env::var("KAIROS_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    Duration::from_secs_f64(secs)
}

/// Runs `f` for the budget; microseconds per call.
fn micros(budget: Duration, mut f: impl FnMut() -> bool) -> f64 {
    let start = Instant::now();
    let mut n = 0u32;
    while n < 10 || start.elapsed() < budget {
        assert!(std::hint::black_box(f()), "a good signature must verify");
        n += 1;
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(n)
}

/// Verifies a message: true if the signature is valid.
type Verify<'a> = Box<dyn Fn(&[u8]) -> bool + 'a>;

/// One check in three libraries: each closure verifies `message` (true if valid).
struct Check<'a> {
    name: &'static str,
    bytes: usize,
    /// The pure-Rust crates ingest used before.
    pure: Verify<'a>,
    /// Ingest's own check (ring).
    kairos: Verify<'a>,
    aws_lc: Verify<'a>,
}

/// The SendGrid timestamp the message starts with.
const TIMESTAMP: &str = "1796000000";

fn sendgrid_message() -> Vec<u8> {
    let mut items = Vec::new();
    for text in [
        include_str!("../../../tests/fixtures/esp/sendgrid_open.json"),
        include_str!("../../../tests/fixtures/esp/sendgrid_bounce.json"),
        include_str!("../../../tests/fixtures/esp/sendgrid_spamreport.json"),
        include_str!("../../../tests/fixtures/esp/sendgrid_group_unsubscribe.json"),
    ] {
        match serde_json::from_str::<serde_json::Value>(text).expect("fixture is JSON") {
            serde_json::Value::Array(a) => items.extend(a),
            other => items.push(other),
        }
    }
    let mut message = TIMESTAMP.as_bytes().to_vec();
    message.extend(serde_json::to_vec(&items).expect("serializes"));
    message
}

fn ses_message() -> Vec<u8> {
    let message = include_str!("../../../tests/fixtures/esp/ses_open_event.json");
    let topic = "arn:aws:sns:us-east-1:123456789012:ses-events";
    format!(
        "Message\n{message}\nMessageId\n5b1d1d3c-bench\nTimestamp\n2026-11-28T10:00:00.000Z\nTopicArn\n{topic}\nType\nNotification\n"
    )
    .into_bytes()
}

fn main() {
    let budget = budget();
    // SendGrid: the key the providers bench signs with.
    let signing = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).expect("a valid scalar");
    let sendgrid = sendgrid_message();
    let signature: p256::ecdsa::Signature = signing.sign(&sendgrid);
    let der = signature.to_der().as_bytes().to_vec();
    let verifying = *signing.verifying_key();
    let point = verifying.to_encoded_point(false).as_bytes().to_vec();
    let key = sendgrid::PublicKey::from_sec1(&point).expect("a P-256 point");
    let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
    let now: i64 = TIMESTAMP.parse().expect("a unix time");
    let (der, point, key, b64) = (&der, &point, &key, &b64);
    // SES: the test signing certificate's key (its private half signs here).
    let pem = include_str!("../../../tests/fixtures/esp/sns_test_signing_key.pem");
    let private = RsaPrivateKey::from_pkcs8_pem(pem).expect("the test key");
    let cert = include_bytes!("../../../tests/fixtures/esp/sns_test_signing_key.cert.pem");
    let kairos_key = kairos_ingest::providers::ses::cert::public_key(cert).expect("the certificate's key");
    let public = private.to_public_key();
    let ses = ses_message();
    let sig256 = private
        .sign(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(&ses))
        .expect("signs");
    let sig1 = private
        .sign(Pkcs1v15Sign::new::<Sha1>(), &Sha1::digest(&ses))
        .expect("signs");
    let (n, e) = (public.n().to_bytes_be(), public.e().to_bytes_be());
    let (public, kairos_key, n, e, sig256, sig1) = (&public, &kairos_key, &n, &e, &sig256, &sig1);

    let checks = [
        Check {
            name: "sendgrid ECDSA P-256",
            bytes: sendgrid.len(),
            pure: Box::new(|m| {
                let sig = p256::ecdsa::Signature::from_der(der).expect("DER");
                verifying.verify(m, &sig).is_ok()
            }),
            kairos: Box::new(|m| sendgrid::verify(key, b64, TIMESTAMP, &m[TIMESTAMP.len()..], now, 300).is_ok()),
            aws_lc: Box::new(|m| {
                let alg = &aws_lc_rs::signature::ECDSA_P256_SHA256_ASN1;
                aws_lc_rs::signature::UnparsedPublicKey::new(alg, point)
                    .verify(m, der)
                    .is_ok()
            }),
        },
        Check {
            name: "ses RSA-2048 SHA-256",
            bytes: ses.len(),
            pure: Box::new(|m| {
                public
                    .verify(Pkcs1v15Sign::new::<Sha256>(), &Sha256::digest(m), sig256)
                    .is_ok()
            }),
            kairos: Box::new(|m| kairos_key.verifies(&ring::signature::RSA_PKCS1_2048_8192_SHA256, m, sig256)),
            aws_lc: Box::new(|m| {
                let key = aws_lc_rs::signature::RsaPublicKeyComponents { n, e };
                key.verify(&aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA256, m, sig256)
                    .is_ok()
            }),
        },
        Check {
            name: "ses RSA-2048 SHA-1",
            bytes: ses.len(),
            pure: Box::new(|m| {
                public
                    .verify(Pkcs1v15Sign::new::<Sha1>(), &Sha1::digest(m), sig1)
                    .is_ok()
            }),
            kairos: Box::new(|m| {
                let alg = &ring::signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY;
                kairos_key.verifies(alg, m, sig1)
            }),
            aws_lc: Box::new(|m| {
                let key = aws_lc_rs::signature::RsaPublicKeyComponents { n, e };
                let alg = &aws_lc_rs::signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY;
                key.verify(alg, m, sig1).is_ok()
            }),
        },
    ];
    let messages = [&sendgrid, &ses, &ses];
    println!(
        "{:<22} {:>6} {:>12} {:>17} {:>13}",
        "signature check", "bytes", "p256/rsa µs", "kairos (ring) µs", "aws-lc-rs µs"
    );
    for (check, message) in checks.iter().zip(messages) {
        let mut tampered = message.to_vec();
        tampered[20] ^= 1;
        for f in [&check.pure, &check.kairos, &check.aws_lc] {
            assert!(
                f(message) && !f(&tampered),
                "{}: accepts the good, refuses the tampered",
                check.name
            );
        }
        println!(
            "{:<22} {:>6} {:>12.1} {:>17.1} {:>13.1}",
            check.name,
            check.bytes,
            micros(budget, || (check.pure)(message)),
            micros(budget, || (check.kairos)(message)),
            micros(budget, || (check.aws_lc)(message)),
        );
    }
}
