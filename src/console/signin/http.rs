//! Cookies, redirects and plain-text answers of the sign-in routes.

use super::PublicHost;
use crate::console::lambda::PREFIX;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, HOST, LOCATION, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::Extension;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

/// `https://<host>/console`, from API Gateway's domain name, else the `Host` header.
pub(super) fn public_url(host: Option<Extension<PublicHost>>, headers: &HeaderMap) -> Option<String> {
    let host = match host {
        Some(Extension(PublicHost(host))) => host,
        None => headers.get(HOST)?.to_str().ok()?.to_string(),
    };
    let valid = !host.is_empty() && host.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:".contains(&b));
    valid.then(|| format!("https://{host}{PREFIX}"))
}

/// A console path to return to after sign-in: local (`/…`, not `//…`), else `/`.
pub(super) fn local_path(next: Option<&str>) -> String {
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
pub(super) fn parse_signin(value: &str) -> Option<(String, String, String)> {
    let mut parts = value.split('.');
    let (state, code_verifier, next) = (parts.next()?, parts.next()?, parts.next()?);
    let next = String::from_utf8(URL_SAFE_NO_PAD.decode(next).ok()?).ok()?;
    (state.len() == 64 && code_verifier.len() == 43 && parts.next().is_none())
        .then(|| (state.to_string(), code_verifier.to_string(), local_path(Some(&next))))
}

/// A cookie of the request by name.
pub(super) fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    crate::console::request_cookies(headers, name)
        .find(|v| !v.is_empty())
        .map(str::to_string)
}

/// A `Set-Cookie` for the console's path (`max_age` 0 clears it).
pub(super) fn set_cookie(name: &str, value: &str, max_age: i64) -> HeaderValue {
    let cookie = format!("{name}={value}; Path={PREFIX}; Max-Age={max_age}; HttpOnly; Secure; SameSite=Lax");
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static("kairos_invalid=; Max-Age=0"))
}

/// A 303 to `location` (not cached) setting `cookies`.
pub(super) fn redirect(location: &str, cookies: &[HeaderValue]) -> Response {
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
pub(super) fn text(status: StatusCode, message: &str) -> Response {
    let mut response = Response::new(axum::body::Body::from(message.to_string()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain; charset=utf-8"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
