//! Unit tests of the sign-in's pieces (the whole flow: tests/console_signin.rs).

use super::flow::challenge;
use super::http::*;
use super::*;
use axum::http::header::{COOKIE, HOST};
use axum::Extension;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

#[test]
fn the_environment_names_the_pool_the_client_and_the_hosted_ui() {
    let env = |name: &str| {
        match name {
            ENV_USER_POOL_ID => Some("eu-west-1_AbC"),
            ENV_CLIENT_ID => Some("client-1"),
            ENV_AUTH_DOMAIN => Some("kairos-1.auth.eu-west-1.amazoncognito.com"),
            ENV_REGION => Some("eu-west-1"),
            _ => None,
        }
        .map(str::to_string)
    };
    let signin = SignIn::from_vars(env).unwrap();
    assert_eq!(
        signin.verifier.issuer(),
        "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC"
    );
    assert_eq!(signin.auth_url, "https://kairos-1.auth.eu-west-1.amazoncognito.com");
    assert_eq!(signin.client_id, "client-1");
    let url = |name: &str| match name {
        ENV_AUTH_DOMAIN => Some("https://login.example.com/".to_string()),
        other => env(other),
    };
    assert_eq!(SignIn::from_vars(url).unwrap().auth_url, "https://login.example.com");
    let blank = |name: &str| {
        if name == ENV_CLIENT_ID {
            Some(" ".to_string())
        } else {
            env(name)
        }
    };
    let err = SignIn::from_vars(blank).err().unwrap();
    assert!(matches!(err, SignInConfigError::Missing(ENV_CLIENT_ID)), "{err}");
    assert!(err.to_string().starts_with("KAIROS_CONSOLE_CLIENT_ID is not set"));
}

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
