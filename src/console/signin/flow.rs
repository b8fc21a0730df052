//! The sign-in routes: `/login`, `/callback`, `/logout`, and the code exchange.

use super::http::{cookie, local_path, parse_signin, public_url, redirect, set_cookie, text};
use super::{now, PublicHost, SignIn, SCOPE, SESSION_COOKIE, SIGNIN_COOKIE, SIGNIN_MAX_AGE_SECS};
use crate::console::access::Identity;
use axum::extract::{Query, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Extension;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use std::sync::Arc;
use subtle::ConstantTimeEq;

#[derive(Deserialize)]
pub(super) struct LoginQuery {
    next: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct TokenResponse {
    id_token: String,
}

/// `GET /login`: to the hosted UI with a new state and PKCE challenge.
pub(super) async fn login(
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
pub(super) async fn callback(
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
    let Some(identity) = Identity::from_claims(&verified.claims) else {
        let message = format!("sign-in refused: the ID token names no user (no email or sub); {AGAIN}");
        return text(StatusCode::UNAUTHORIZED, &message);
    };
    tracing::info!(user = %identity.user, "console sign-in: signed in");
    let max_age = (verified.expires_at - now).max(0);
    let cookies = [
        set_cookie(SESSION_COOKIE, &token, max_age),
        set_cookie(SIGNIN_COOKIE, "", 0),
    ];
    redirect(&next, &cookies)
}

/// `GET /logout`: clears the session and signs out of the hosted UI.
pub(super) async fn logout(
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
