//! Human sign-in for the console in AWS: Cognito's hosted sign-in pages,
//! the authorization-code flow with PKCE (a public app client, no secret),
//! and the ID token kept in an `HttpOnly` session cookie that the function
//! verifies itself ([`super::jwt::Verifier`]): a browser's page navigation
//! carries cookies, not the `Authorization` header the HTTP API's JWT
//! authorizer reads.
//!
//! Routes ([`SignIn::wrap`], below [`super::lambda::PREFIX`] on the HTTP API):
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
//!
//! Files: this one (the set-up, [`SignIn::wrap`], [`authenticate`]),
//! `flow.rs` (the three routes and the code exchange), `http.rs` (cookies,
//! redirects, plain answers), `tests.rs`.

mod flow;
mod http;
#[cfg(test)]
mod tests;

use super::access::Identity;
use super::jwt::{TokenError, Verifier};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use http::{cookie, redirect, set_cookie, text};
use std::sync::Arc;
use std::time::Duration;

pub use flow::challenge;

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
        SignIn::from_vars(|name| std::env::var(name).ok())
    }

    /// Sign-in from variables looked up by `var` (as [`SignIn::from_env`]): the
    /// issuer is `https://cognito-idp.<region>.amazonaws.com/<pool id>`, the
    /// hosted UI `https://<domain>` (a domain given as a URL is kept as it is).
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Result<SignIn, SignInConfigError> {
        let get = |name: &'static str| {
            var(name)
                .filter(|v| !v.trim().is_empty())
                .ok_or(SignInConfigError::Missing(name))
        };
        let (pool, client, domain, region) = (
            get(ENV_USER_POOL_ID)?,
            get(ENV_CLIENT_ID)?,
            get(ENV_AUTH_DOMAIN)?,
            get(ENV_REGION)?,
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
            .route("/login", get(flow::login))
            .route("/callback", get(flow::callback))
            .route("/logout", get(flow::logout))
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

/// Seconds since the epoch.
fn now() -> i64 {
    chrono::Utc::now().timestamp()
}
