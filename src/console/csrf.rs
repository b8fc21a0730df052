//! CSRF protection (double submit): a random token in a `SameSite=Strict`,
//! `HttpOnly` cookie, repeated in a hidden field of every form; a change is
//! accepted only when both are present and equal (compared in constant time).

use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, HeaderValue};
use subtle::ConstantTimeEq;

/// The cookie's name.
pub const COOKIE_NAME: &str = "kairos_csrf";
/// The form field's name.
pub const FIELD: &str = "csrf";

/// The request's token, or a new one with the `Set-Cookie` header that sets it.
pub fn token(headers: &HeaderMap) -> (String, Option<HeaderValue>) {
    if let Some(token) = cookie(headers) {
        return (token, None);
    }
    let token = hex::encode(rand::random::<[u8; 32]>());
    let cookie = format!("{COOKIE_NAME}={token}; Path=/; HttpOnly; SameSite=Strict");
    (token, HeaderValue::from_str(&cookie).ok())
}

/// Adds the `Set-Cookie` header, if a new token was made.
pub fn set(headers: &mut HeaderMap, cookie: Option<HeaderValue>) {
    if let Some(cookie) = cookie {
        headers.insert(SET_COOKIE, cookie);
    }
}

/// Whether the form's token matches the cookie's.
pub fn valid(headers: &HeaderMap, field: &str) -> bool {
    match cookie(headers) {
        Some(token) => !field.is_empty() && bool::from(token.as_bytes().ct_eq(field.as_bytes())),
        None => false,
    }
}

/// The token in the request's cookie (64 hex digits), if any.
fn cookie(headers: &HeaderMap) -> Option<String> {
    super::request_cookies(headers, COOKIE_NAME)
        .find(|value| value.len() == 64 && value.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::header::COOKIE;

    fn with_cookie(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(COOKIE, HeaderValue::from_str(value).unwrap());
        headers
    }

    #[test]
    fn a_new_visitor_gets_a_token_and_only_the_same_token_is_valid() {
        let (token, cookie) = token(&HeaderMap::new());
        let cookie = cookie.expect("a new token sets a cookie");
        assert!(cookie.to_str().unwrap().contains("SameSite=Strict"));
        let headers = with_cookie(&format!("other=1; {COOKIE_NAME}={token}"));
        assert_eq!(super::token(&headers).0, token);
        assert!(super::token(&headers).1.is_none());
        assert!(valid(&headers, &token));
        let mut wrong = token.clone();
        wrong.replace_range(0..1, if token.starts_with('0') { "1" } else { "0" });
        assert!(!valid(&headers, &wrong));
        assert!(!valid(&headers, ""));
        assert!(!valid(&HeaderMap::new(), &token), "no cookie, no change");
    }
}
