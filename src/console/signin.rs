//! Human sign-in for the console in AWS: Cognito's hosted sign-in pages,
//! the authorization-code flow with PKCE (a public app client, no secret),
//! and the ID token kept in an `HttpOnly` session cookie that the function
//! verifies itself ([`super::jwt::Verifier`]): a browser's page navigation
//! carries cookies, not the `Authorization` header the HTTP API's JWT
//! authorizer reads.
//!
//! Routes ([`SignIn::wrap`], below [`PREFIX`] on the HTTP API):
//! - `GET /login[?next=PATH]`: a random `state` and PKCE `code_verifier`
//!   go into a 10-minute `kairos_signin` cookie; redirect to the hosted UI's
//!   `/oauth2/authorize` with the S256 `code_challenge`;
//! - `GET /callback?code=&state=`: the state must equal the cookie's
//!   (constant time); the code and verifier are exchanged at `/oauth2/token`;
//!   the returned ID token is verified and set as the `kairos_session`
//!   cookie (`Max-Age` = the token's remaining lifetime); redirect to `next`;
//! - `GET /logout`: the session cookie cleared; redirect to the hosted UI's `/logout`.
//!
//! Every other request goes through [`authenticate`]: the session cookie's
//! verified token becomes the request's [`Identity`] (an identity the HTTP
//! API's authorizer already verified is kept); a page request without a
//! valid session is redirected to `/login`, and anything else reaches the
//! role check without an identity, which refuses it (401).
//!
//! Cookies are `HttpOnly; Secure; SameSite=Lax; Path=/console`. No token,
//! code or verifier is logged or shown on a page.

use super::access::Identity;
use super::jwt::{TokenError, Verifier};
use super::lambda::PREFIX;
use axum::extract::{Query, Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, COOKIE, HOST, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use std::sync::Arc;
use std::time::Duration;
use subtle::ConstantTimeEq;

/// The session cookie (the verified ID token).
pub const SESSION_COOKIE: &str = "kairos_session";
/// The sign-in cookie (state, PKCE verifier and the page to return to).
pub const SIGNIN_COOKIE: &str = "kairos_signin";
/// How long a sign-in may take from `/login` to `/callback`.
const SIGNIN_MAX_AGE_SECS: i64 = 600;
/// The scopes asked for.
const SCOPE: &str = "openid email profile";
/// How long a call to the user pool may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// The console function's environment variables for sign-in (infra/template.yaml).
pub const ENV_USER_POOL_ID: &str = "KAIROS_CONSOLE_USER_POOL_ID";
/// The app client's id.
pub const ENV_CLIENT_ID: &str = "KAIROS_CONSOLE_CLIENT_ID";
/// The hosted UI's domain (`<prefix>.auth.<region>.amazoncognito.com`, or a URL).
pub const ENV_AUTH_DOMAIN: &str = "KAIROS_CONSOLE_AUTH_DOMAIN";
/// The user pool's region.
pub const ENV_REGION: &str = "KAIROS_CONSOLE_REGION";

/// The public host a request came to (API Gateway's `requestContext.domainName`),
/// put in the request's extensions by [`super::lambda::handle`]; the callback
/// and logout URLs are built on it.
#[derive(Debug, Clone)]
pub struct PublicHost(pub String);

/// Why sign-in could not be set up from the environment.
#[derive(Debug, thiserror::Error)]
pub enum SignInConfigError {
    /// A variable is unset or empty.
    #[error("{0} is not set (infra/template.yaml sets it on ConsoleFunction)")]
    Missing(&'static str),
    /// The HTTP client could not be built.
    #[error("the HTTP client for the user pool could not be built: {0}")]
    Http(#[source] reqwest::Error),
}

/// Sign-in against one user pool and app client (see the module's documentation).
pub struct SignIn {
    client_id: String,
    /// The hosted UI, e.g. `https://kairos-1.auth.eu-west-1.amazoncognito.com`.
    auth_url: String,
    verifier: Verifier,
    http: reqwest::Client,
}

impl SignIn {
    /// Sign-in from the console function's environment ([`ENV_USER_POOL_ID`],
    /// [`ENV_CLIENT_ID`], [`ENV_AUTH_DOMAIN`], [`ENV_REGION`]).
    pub fn from_env() -> Result<SignIn, SignInConfigError> {
        let var = |name: &'static str| {
            std::env::var(name)
                .ok()
                .filter(|v| !v.trim().is_empty())
                .ok_or(SignInConfigError::Missing(name))
        };
        let (pool, client, domain, region) = (
            var(ENV_USER_POOL_ID)?,
            var(ENV_CLIENT_ID)?,
            var(ENV_AUTH_DOMAIN)?,
            var(ENV_REGION)?,
        );
        let issuer = format!("https://cognito-idp.{region}.amazonaws.com/{pool}");
        let auth_url = if domain.contains("://") {
            domain
        } else {
            format!("https://{domain}")
        };
        SignIn::new(&issuer, &client, &auth_url)
    }

    /// Sign-in for tokens of `issuer` (the pool's URL) and app client
    /// `client_id`, through the hosted UI at `auth_url`.
    pub fn new(issuer: &str, client_id: &str, auth_url: &str) -> Result<SignIn, SignInConfigError> {
        let http = reqwest::Client::builder()
            .timeout(HTTP_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(SignInConfigError::Http)?;
        Ok(SignIn {
            client_id: client_id.to_string(),
            auth_url: auth_url.trim_end_matches('/').to_string(),
            verifier: Verifier::new(issuer, client_id, http.clone()),
            http,
        })
    }

    /// The token verifier (e.g. to set its refetch interval).
    pub fn verifier_mut(&mut self) -> &mut Verifier {
        &mut self.verifier
    }

    /// `signed_in` (a [`super::signed_in_router`]) behind sign-in, with the sign-in routes.
    pub fn wrap(self: &Arc<Self>, signed_in: Router) -> Router {
        let gate = axum::middleware::from_fn_with_state(Arc::clone(self), authenticate);
        Router::new()
            .route("/login", get(login))
            .route("/callback", get(callback))
            .route("/logout", get(logout))
            .with_state(Arc::clone(self))
            .fallback_service(signed_in.layer(gate))
    }

    /// The identity of a request's session cookie (`Ok(None)`: no cookie).
    async fn session(&self, headers: &HeaderMap) -> Result<Option<Identity>, TokenError> {
        let Some(token) = cookie(headers, SESSION_COOKIE) else {
            return Ok(None);
        };
        let verified = self.verifier.verify(&token, now()).await?;
        Identity::from_claims(&verified.claims)
            .map(Some)
            .ok_or(TokenError::Malformed)
    }
}

#[derive(Deserialize)]
struct LoginQuery {
    next: Option<String>,
}

#[derive(Deserialize)]
struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct TokenResponse {
    id_token: String,
}

/// `GET /login`: to the hosted UI with a new state and PKCE challenge.
async fn login(
    State(signin): State<Arc<SignIn>>,
    Query(query): Query<LoginQuery>,
    host: Option<Extension<PublicHost>>,
    headers: HeaderMap,
) -> Response {
    let Some(base) = public_url(host, &headers) else {
        return text(StatusCode::BAD_REQUEST, "refused: the request names no host");
    };
    let state = hex::encode(rand::random::<[u8; 32]>());
    let code_verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let next = local_path(query.next.as_deref());
    let authorize = format!(
        "{}/oauth2/authorize?{}",
        signin.auth_url,
        form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &signin.client_id)
            .append_pair("redirect_uri", &format!("{base}/callback"))
            .append_pair("scope", SCOPE)
            .append_pair("state", &state)
            .append_pair("code_challenge", &challenge(&code_verifier))
            .append_pair("code_challenge_method", "S256")
            .finish()
    );
    let value = format!("{state}.{code_verifier}.{}", URL_SAFE_NO_PAD.encode(next));
    redirect(&authorize, &[set_cookie(SIGNIN_COOKIE, &value, SIGNIN_MAX_AGE_SECS)])
}

/// `GET /callback`: checks the state, exchanges the code, sets the session.
async fn callback(
    State(signin): State<Arc<SignIn>>,
    Query(query): Query<CallbackQuery>,
    host: Option<Extension<PublicHost>>,
    headers: HeaderMap,
) -> Response {
    if let Some(error) = query.error {
        let error: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        return text(
            StatusCode::BAD_REQUEST,
            &format!("sign-in failed at the user pool ({error}); {AGAIN}"),
        );
    }
    let Some(base) = public_url(host, &headers) else {
        return text(StatusCode::BAD_REQUEST, "refused: the request names no host");
    };
    let Some((state, code_verifier, next)) = cookie(&headers, SIGNIN_COOKIE).as_deref().and_then(parse_signin) else {
        return text(
            StatusCode::BAD_REQUEST,
            &format!("refused: no sign-in was started from this browser; {AGAIN}"),
        );
    };
    let (Some(code), Some(given)) = (query.code, query.state) else {
        return text(
            StatusCode::BAD_REQUEST,
            &format!("refused: the callback has no code or state; {AGAIN}"),
        );
    };
    if !bool::from(given.as_bytes().ct_eq(state.as_bytes())) {
        tracing::warn!("console sign-in: the callback's state is not the browser's");
        return text(
            StatusCode::BAD_REQUEST,
            &format!("refused: the sign-in's state does not match; {AGAIN}"),
        );
    }
    let token = match exchange(&signin, &code, &code_verifier, &format!("{base}/callback")).await {
        Ok(token) => token,
        Err(message) => {
            tracing::warn!(reason = %message, "console sign-in: the code exchange failed");
            return text(StatusCode::BAD_GATEWAY, &format!("sign-in failed: {message}; {AGAIN}"));
        }
    };
    let now = now();
    let verified = match signin.verifier.verify(&token, now).await {
        Ok(verified) => verified,
        Err(err) => {
            tracing::warn!(reason = %err, "console sign-in: the user pool's ID token was refused");
            return text(StatusCode::UNAUTHORIZED, &format!("sign-in refused: {err}; {AGAIN}"));
        }
    };
    let user = Identity::from_claims(&verified.claims)
        .map(|i| i.user)
        .unwrap_or_default();
    tracing::info!(%user, "console sign-in: signed in");
    let max_age = (verified.expires_at - now).max(0);
    let cookies = [
        set_cookie(SESSION_COOKIE, &token, max_age),
        set_cookie(SIGNIN_COOKIE, "", 0),
    ];
    redirect(&next, &cookies)
}

/// `GET /logout`: clears the session and signs out of the hosted UI.
async fn logout(
    State(signin): State<Arc<SignIn>>,
    host: Option<Extension<PublicHost>>,
    headers: HeaderMap,
) -> Response {
    let cleared = [set_cookie(SESSION_COOKIE, "", 0)];
    let Some(base) = public_url(host, &headers) else {
        return redirect("/", &cleared);
    };
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", &signin.client_id)
        .append_pair("logout_uri", &base)
        .finish();
    redirect(&format!("{}/logout?{query}", signin.auth_url), &cleared)
}

/// The session check before the console's routes (see the module's documentation).
pub async fn authenticate(State(signin): State<Arc<SignIn>>, mut req: Request, next: Next) -> Response {
    if req.extensions().get::<Identity>().is_some() {
        return next.run(req).await;
    }
    let had_cookie = cookie(req.headers(), SESSION_COOKIE).is_some();
    match signin.session(req.headers()).await {
        Ok(Some(identity)) => {
            req.extensions_mut().insert(identity);
            return next.run(req).await;
        }
        Ok(None) => {}
        Err(TokenError::Jwks(reason)) => {
            tracing::error!(%reason, "console sign-in: cannot check sessions");
            let message = "the sign-in service cannot be reached; try again in a moment";
            return text(StatusCode::SERVICE_UNAVAILABLE, message);
        }
        Err(err) => tracing::info!(reason = %err, "console sign-in: session refused"),
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return next.run(req).await;
    }
    let here = req.uri().path_and_query().map_or("/", |p| p.as_str());
    let login = format!(
        "/login?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("next", here)
            .finish()
    );
    let cleared: &[HeaderValue] = &[set_cookie(SESSION_COOKIE, "", 0)];
    redirect(&login, if had_cookie { cleared } else { &[] })
}

const AGAIN: &str = "sign in again at /console/login";

/// The code exchanged for the ID token at the hosted UI's token endpoint.
async fn exchange(signin: &SignIn, code: &str, code_verifier: &str, redirect_uri: &str) -> Result<String, String> {
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "authorization_code")
        .append_pair("client_id", &signin.client_id)
        .append_pair("code", code)
        .append_pair("redirect_uri", redirect_uri)
        .append_pair("code_verifier", code_verifier)
        .finish();
    let response = signin
        .http
        .post(format!("{}/oauth2/token", signin.auth_url))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(form)
        .send()
        .await
        .map_err(|e| format!("the user pool could not be reached ({})", e.without_url()))?;
    let status = response.status();
    if !status.is_success() {
        // OAuth's error code only (`invalid_grant`, …): the body is not echoed.
        let body: serde_json::Value = response.json().await.unwrap_or_default();
        let error = body["error"].as_str().unwrap_or("no error code");
        let error: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        return Err(format!("the user pool refused the code ({status}, {error})"));
    }
    let tokens: TokenResponse = response
        .json()
        .await
        .map_err(|_| "the user pool's answer has no ID token".to_string())?;
    Ok(tokens.id_token)
}

/// PKCE's S256 challenge: BASE64URL(SHA-256(verifier)).
pub fn challenge(code_verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, code_verifier.as_bytes()))
}

/// `https://<host>/console`, from API Gateway's domain name, else the `Host` header.
fn public_url(host: Option<Extension<PublicHost>>, headers: &HeaderMap) -> Option<String> {
    let host = match host {
        Some(Extension(PublicHost(host))) => host,
        None => headers.get(HOST)?.to_str().ok()?.to_string(),
    };
    let valid = !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:".contains(&b));
    valid.then(|| format!("https://{host}{PREFIX}"))
}

/// A console path to return to after sign-in: local (`/…`, not `//…`), else `/`.
fn local_path(next: Option<&str>) -> String {
    match next {
        Some(p)
            if p.starts_with('/') && !p.starts_with("//") && !p.contains('\\') && !p.chars().any(char::is_control) =>
        {
            p.to_string()
        }
        _ => "/".to_string(),
    }
}

/// The sign-in cookie's state, verifier and return path.
fn parse_signin(value: &str) -> Option<(String, String, String)> {
    let mut parts = value.split('.');
    let (state, code_verifier, next) = (parts.next()?, parts.next()?, parts.next()?);
    let next = String::from_utf8(URL_SAFE_NO_PAD.decode(next).ok()?).ok()?;
    (state.len() == 64 && code_verifier.len() == 43 && parts.next().is_none())
        .then(|| (state.to_string(), code_verifier.to_string(), local_path(Some(&next))))
}

/// A cookie of the request by name.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, v)| *n == name && !v.is_empty())
        .map(|(_, v)| v.to_string())
}

/// A `Set-Cookie` for the console's path (`max_age` 0 clears it).
fn set_cookie(name: &str, value: &str, max_age: i64) -> HeaderValue {
    let cookie = format!("{name}={value}; Path={PREFIX}; Max-Age={max_age}; HttpOnly; Secure; SameSite=Lax");
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static("kairos_invalid=; Max-Age=0"))
}

fn redirect(location: &str, cookies: &[HeaderValue]) -> Response {
    let mut response = Response::new(axum::body::Body::empty());
    *response.status_mut() = StatusCode::SEE_OTHER;
    let headers = response.headers_mut();
    if let Ok(location) = HeaderValue::from_str(location) {
        headers.insert(LOCATION, location);
    }
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for cookie in cookies {
        headers.append(SET_COOKIE, cookie.clone());
    }
    response
}

/// A plain-text answer (nothing in it is read as HTML).
fn text(status: StatusCode, message: &str) -> Response {
    let mut response = Response::new(axum::body::Body::from(message.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_s256_challenge_is_rfc_7636s() {
        // RFC 7636, appendix B.
        assert_eq!(
            challenge("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn only_local_paths_are_returned_to() {
        assert_eq!(local_path(Some("/contact?q=a%40b")), "/contact?q=a%40b");
        for bad in ["//evil.test/", "https://evil.test/", "/\\evil.test", "rules", "/a\nb"] {
            assert_eq!(local_path(Some(bad)), "/", "{bad:?}");
        }
        assert_eq!(local_path(None), "/");
    }

    #[test]
    fn the_signin_cookie_round_trips_and_refuses_tampering() {
        let state = "a".repeat(64);
        let verifier = "b".repeat(43);
        let value = format!("{state}.{verifier}.{}", URL_SAFE_NO_PAD.encode("/rules"));
        assert_eq!(
            parse_signin(&value),
            Some((state.clone(), verifier.clone(), "/rules".into()))
        );
        let evil = format!("{state}.{verifier}.{}", URL_SAFE_NO_PAD.encode("//evil.test"));
        assert_eq!(parse_signin(&evil).unwrap().2, "/");
        assert!(parse_signin(&format!("{state}.{verifier}")).is_none());
        assert!(parse_signin(&format!("{state}x.{verifier}.Lw")).is_none());
        assert!(parse_signin(&format!("{state}.{verifier}.Lw.x")).is_none());
    }

    #[test]
    fn cookies_are_httponly_secure_lax_and_scoped_to_the_console() {
        let set = set_cookie(SESSION_COOKIE, "t", 3600);
        assert_eq!(
            set.to_str().unwrap(),
            "kairos_session=t; Path=/console; Max-Age=3600; HttpOnly; Secure; SameSite=Lax"
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_static("kairos_csrf=x; kairos_session=abc.def.ghi"),
        );
        assert_eq!(cookie(&headers, SESSION_COOKIE).as_deref(), Some("abc.def.ghi"));
        assert_eq!(cookie(&headers, SIGNIN_COOKIE), None);
    }

    #[test]
    fn the_public_url_is_the_api_gateway_domain_else_the_host_header() {
        let mut headers = HeaderMap::new();
        headers.insert(HOST, HeaderValue::from_static("console.example.com"));
        let api = Some(Extension(PublicHost("abc.execute-api.eu-west-1.amazonaws.com".into())));
        assert_eq!(
            public_url(api, &headers).as_deref(),
            Some("https://abc.execute-api.eu-west-1.amazonaws.com/console")
        );
        assert_eq!(
            public_url(None, &headers).as_deref(),
            Some("https://console.example.com/console")
        );
        headers.insert(HOST, HeaderValue::from_static("evil.test/x?"));
        assert_eq!(public_url(None, &headers), None);
    }
}
