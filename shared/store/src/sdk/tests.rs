//! The SDK's HTTPS client as built: rustls on ring, against a local TLS
//! server whose self-signed certificate names `localhost`
//! (`test-localhost.pem`, valid to 2126; its key is a test fixture only).

use super::*;
use aws_sdk_dynamodb::config::{Credentials, Region};
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::{self, ServerConfig};

const CERT: &str = include_str!("test-localhost.pem");
const KEY: &str = include_str!("test-localhost.key.pem");

/// A TLS server on a loopback port answering every request with a
/// DynamoDB `ListTables` answer naming one table; it records the request
/// lines it read (after a completed handshake).
async fn server() -> (u16, Arc<Mutex<Vec<String>>>) {
    let cert = CertificateDer::from_pem_slice(CERT.as_bytes()).expect("the fixture certificate");
    let key = PrivateKeyDer::from_pem_slice(KEY.as_bytes()).expect("the fixture key");
    let config = ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS 1.2 and 1.3")
        .with_no_client_auth()
        .with_single_cert(vec![cert], key)
        .expect("a server configuration");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let port = listener.local_addr().expect("an address").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (acceptor, record) = (acceptor.clone(), record.clone());
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else {
                    return; // the client refused the certificate
                };
                answer(tls, &record).await;
            });
        }
    });
    (port, seen)
}

/// Reads one request (head and `Content-Length` body) and answers it.
async fn answer<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(stream: S, seen: &Mutex<Vec<String>>) {
    let mut stream = BufReader::new(stream);
    let (mut line, mut length) = (String::new(), 0usize);
    if stream.read_line(&mut line).await.unwrap_or(0) == 0 {
        return;
    }
    seen.lock().unwrap().push(line.trim_end().to_string());
    loop {
        let mut header = String::new();
        if stream.read_line(&mut header).await.unwrap_or(0) == 0 || header.trim_end().is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            if name.eq_ignore_ascii_case("content-length") {
                length = value.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0; length];
    let _ = stream.read_exact(&mut body).await;
    let body = r#"{"TableNames":["through-tls"]}"#;
    let reply = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/x-amz-json-1.0\r\nx-amzn-requestid: test\r\n\
         connection: close\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = stream.get_mut().write_all(reply.as_bytes()).await;
    let _ = stream.get_mut().shutdown().await;
}

/// A DynamoDB client over `http`, at `https://localhost:<port>`, no retries.
fn client(http: SharedHttpClient, port: u16) -> aws_sdk_dynamodb::Client {
    let config = aws_sdk_dynamodb::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("AKIDTEST", "test-secret", None, None, "test"))
        .endpoint_url(format!("https://localhost:{port}"))
        .retry_config(RetryConfig::disabled())
        .timeout_config(timeout_config())
        .http_client(http)
        .build();
    aws_sdk_dynamodb::Client::from_conf(config)
}

#[tokio::test]
async fn the_https_client_speaks_tls_with_ring_to_a_server_it_trusts() {
    let (port, seen) = server().await;
    let trust = tls::TrustStore::empty().with_pem_certificate(CERT.as_bytes());
    let context = TlsContext::builder()
        .with_trust_store(trust)
        .build()
        .expect("a TLS context");
    let out = client(https_client_with(context), port)
        .list_tables()
        .send()
        .await
        .expect("the call went through TLS");
    assert_eq!(out.table_names(), ["through-tls"]);
    assert_eq!(seen.lock().unwrap().as_slice(), ["POST / HTTP/1.1"]);
}

#[tokio::test]
async fn the_https_client_refuses_a_certificate_no_root_vouches_for() {
    let (port, seen) = server().await;
    // The deployed client: the platform's roots, which do not hold the test certificate.
    let err = client(https_client(), port)
        .list_tables()
        .send()
        .await
        .expect_err("an untrusted certificate");
    let text = format!("{}", aws_sdk_dynamodb::error::DisplayErrorContext(&err));
    assert!(text.to_lowercase().contains("certificate"), "{text}");
    assert!(seen.lock().unwrap().is_empty(), "no request was sent: {seen:?}");
}
