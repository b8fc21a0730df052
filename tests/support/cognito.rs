//! A local stand-in for a Cognito user pool ([`FakeCognito`]) on a free
//! loopback port: the pool's JWKS (`GET /pool/.well-known/jwks.json`, the
//! issuer being `<url>/pool`) and the hosted UI's token endpoint (`POST
//! /oauth2/token`), with RSA keys generated in the test ([`TestKey`]) and ID
//! tokens signed with them ([`FakeCognito::id_token`], [`sign`]).
//!
//! The token endpoint enforces the authorization-code grant with PKCE as
//! Cognito documents it
//! (<https://docs.aws.amazon.com/cognito/latest/developerguide/token-endpoint.html>):
//! `Content-Type: application/x-www-form-urlencoded`; `grant_type=authorization_code`;
//! `client_id` of the (public) app client; a `code` issued by the sign-in
//! ([`FakeCognito::grant`], what the hosted UI does once the user signs in), usable once;
//! the same `redirect_uri` as the authorize request; a `code_verifier` whose
//! S256 hash is the authorize request's `code_challenge`. Refusals are 400
//! with `{"error": "invalid_request" | "invalid_client" | "invalid_grant" |
//! "unsupported_grant_type"}`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rsa::pkcs1v15::SigningKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use rsa::RsaPrivateKey;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// An RSA signing key of the pool, named by `kid`.
#[derive(Clone)]
pub struct TestKey {
    pub kid: String,
    key: RsaPrivateKey,
}

/// Two 2048-bit keys generated once per test binary (Cognito's size; ring
/// refuses smaller RSA keys).
pub fn keys() -> &'static [RsaPrivateKey; 2] {
    static KEYS: OnceLock<[RsaPrivateKey; 2]> = OnceLock::new();
    KEYS.get_or_init(|| {
        let mut rng = rand::thread_rng();
        let mut one = || RsaPrivateKey::new(&mut rng, 2048).expect("an RSA key");
        [one(), one()]
    })
}

impl TestKey {
    /// Key `index` (0 or 1) of [`keys`], named `kid`.
    pub fn new(index: usize, kid: &str) -> TestKey {
        TestKey {
            kid: kid.to_string(),
            key: keys()[index].clone(),
        }
    }

    /// The key as a JWKS entry.
    fn jwk(&self) -> Value {
        let b64 = |n: &rsa::BigUint| URL_SAFE_NO_PAD.encode(n.to_bytes_be());
        json!({"kid": self.kid, "alg": "RS256", "kty": "RSA", "use": "sig",
               "n": b64(self.key.n()), "e": b64(self.key.e())})
    }
}

/// A JWT over `header` and `claims`, signed RS256 with `key`.
pub fn sign(key: &TestKey, header: &Value, claims: &Value) -> String {
    let part = |v: &Value| URL_SAFE_NO_PAD.encode(v.to_string());
    let signed = format!("{}.{}", part(header), part(claims));
    let signature = SigningKey::<Sha256>::new(key.key.clone()).sign(signed.as_bytes());
    format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

/// BASE64URL(SHA-256(verifier)), RFC 7636's S256.
pub fn s256(code_verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(code_verifier.as_bytes()))
}

/// What the hosted UI recorded for a code it issued.
struct Grant {
    code_challenge: String,
    redirect_uri: String,
    id_token: String,
}

#[derive(Default)]
struct Pool {
    client_id: String,
    jwks: Vec<Value>,
    jwks_fetches: usize,
    grants: HashMap<String, Grant>,
    token_requests: Vec<HashMap<String, String>>,
}

/// The running stand-in; stopped when dropped.
pub struct FakeCognito {
    /// `http://127.0.0.1:PORT`: the hosted UI's base URL.
    pub url: String,
    /// The pool's issuer, `<url>/pool`.
    pub issuer: String,
    /// The console's app client.
    pub client_id: String,
    pool: Arc<Mutex<Pool>>,
    task: tokio::task::JoinHandle<()>,
}

impl FakeCognito {
    /// A pool for app client `client_id` with no keys published yet.
    pub async fn start(client_id: &str) -> FakeCognito {
        let pool = Arc::new(Mutex::new(Pool {
            client_id: client_id.to_string(),
            ..Pool::default()
        }));
        let app = Router::new()
            .route("/pool/.well-known/jwks.json", get(jwks))
            .route("/oauth2/token", post(token))
            .with_state(Arc::clone(&pool));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeCognito {
            issuer: format!("{url}/pool"),
            url,
            client_id: client_id.to_string(),
            pool,
            task,
        }
    }

    /// Adds `key` to the pool's JWKS (a key rotation, when others are there).
    pub fn publish(&self, key: &TestKey) {
        self.pool.lock().unwrap().jwks.push(key.jwk());
    }

    /// How many times the JWKS was fetched.
    pub fn jwks_fetches(&self) -> usize {
        self.pool.lock().unwrap().jwks_fetches
    }

    /// The hosted UI's part: the user signed in, and `code` is issued for the
    /// authorize request's challenge and redirect URI, exchangeable once for `id_token`.
    pub fn grant(&self, code: &str, code_challenge: &str, redirect_uri: &str, id_token: &str) {
        let grant = Grant {
            code_challenge: code_challenge.to_string(),
            redirect_uri: redirect_uri.to_string(),
            id_token: id_token.to_string(),
        };
        self.pool.lock().unwrap().grants.insert(code.to_string(), grant);
    }

    /// The token endpoint's requests so far, as form fields.
    pub fn token_requests(&self) -> Vec<HashMap<String, String>> {
        self.pool.lock().unwrap().token_requests.clone()
    }

    /// The claims of an ID token of this pool for `email` in `groups`,
    /// expiring `expires_in` seconds from now (negative: expired).
    pub fn claims(&self, email: &str, groups: &[&str], expires_in: i64) -> Value {
        let now = chrono::Utc::now().timestamp();
        json!({
            "sub": format!("sub-{email}"),
            "email": email,
            "email_verified": true,
            "cognito:groups": groups,
            "iss": self.issuer,
            "aud": self.client_id,
            "token_use": "id",
            "auth_time": now,
            "iat": now,
            "exp": now + expires_in,
        })
    }

    /// An ID token of this pool signed with `key` (see [`FakeCognito::claims`]).
    pub fn id_token(&self, key: &TestKey, email: &str, groups: &[&str], expires_in: i64) -> String {
        let header = json!({"kid": key.kid, "alg": "RS256"});
        sign(key, &header, &self.claims(email, groups, expires_in))
    }
}

impl Drop for FakeCognito {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn jwks(State(pool): State<Arc<Mutex<Pool>>>) -> Json<Value> {
    let mut pool = pool.lock().unwrap();
    pool.jwks_fetches += 1;
    Json(json!({ "keys": pool.jwks }))
}

async fn token(State(pool): State<Arc<Mutex<Pool>>>, headers: HeaderMap, body: String) -> (StatusCode, Json<Value>) {
    let refuse = |error: &str| (StatusCode::BAD_REQUEST, Json(json!({ "error": error })));
    let form: HashMap<String, String> = form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let mut pool = pool.lock().unwrap();
    pool.token_requests.push(form.clone());
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or("");
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    if !content_type.starts_with("application/x-www-form-urlencoded") {
        return refuse("invalid_request");
    }
    if field("grant_type") != "authorization_code" {
        return refuse("unsupported_grant_type");
    }
    if field("client_id") != pool.client_id {
        return refuse("invalid_client");
    }
    let Some(grant) = pool.grants.remove(field("code")) else {
        return refuse("invalid_grant");
    };
    if field("redirect_uri") != grant.redirect_uri || s256(field("code_verifier")) != grant.code_challenge {
        return refuse("invalid_grant");
    }
    let answer = json!({
        "id_token": grant.id_token,
        "access_token": "access-token-not-used",
        "refresh_token": "refresh-token-not-used",
        "expires_in": 3600,
        "token_type": "Bearer",
    });
    (StatusCode::OK, Json(answer))
}
