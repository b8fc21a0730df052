//! The console behind the HTTP API (`ANY /console`, `ANY /console/{proxy+}`):
//! an API Gateway v2 request becomes a request to the console's router
//! ([`super::signin::SignIn::wrap`] around [`super::signed_in_router`]),
//! carrying the public host it came to ([`PublicHost`], for the sign-in
//! callback URL) and, if an HTTP API JWT authorizer verified a token, the
//! [`Identity`] from its claims; otherwise the sign-in layer verifies the
//! session cookie itself. The answer becomes the API Gateway response. The
//! console's own paths (`/segments`, …) live below [`PREFIX`]: the prefix is
//! taken off the request's path and put on the page's links, form targets
//! and redirects.

use super::access::Identity;
use super::signin::PublicHost;
use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body as LambdaBody;
use axum::body::Body;
use axum::http::{header, HeaderValue, Request};
use axum::Router;
use base64::Engine;
use tower::ServiceExt;

/// Where the console is mounted on the HTTP API.
pub const PREFIX: &str = "/console";

/// The largest page the function returns (Lambda's response limit is 6 MB).
const MAX_PAGE: usize = 5 * 1024 * 1024;

/// The signed-in user of a request an HTTP API JWT authorizer let through
/// (`None`: no authorizer claims; the session cookie's token is verified by
/// [`super::signin::authenticate`], and without either the console refuses
/// the request).
pub fn identity(req: &ApiGatewayV2httpRequest) -> Option<Identity> {
    let jwt = req.request_context.authorizer.as_ref()?.jwt.as_ref()?;
    Identity::from_claims(&jwt.claims)
}

/// Serves one API Gateway v2 request with `router` (a [`super::signed_in_router`]).
pub async fn handle(router: Router, req: ApiGatewayV2httpRequest) -> ApiGatewayV2httpResponse {
    let request = match to_request(req) {
        Ok(request) => request,
        Err(message) => return plain(400, &message),
    };
    let response = match router.oneshot(request).await {
        Ok(response) => response,
        Err(never) => match never {},
    };
    let (parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_PAGE).await else {
        return plain(500, "the page is larger than the function may return");
    };
    let mut out = ApiGatewayV2httpResponse::default();
    out.status_code = i64::from(parts.status.as_u16());
    let html = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    for (name, value) in &parts.headers {
        if name == header::SET_COOKIE {
            // API Gateway v2 returns cookies in their own field.
            out.cookies.extend(value.to_str().ok().map(str::to_string));
        } else if name == header::LOCATION {
            let location = value.to_str().unwrap_or("/");
            if let Ok(value) = HeaderValue::from_str(&prefixed(location)) {
                out.headers.insert(header::LOCATION, value);
            }
        } else {
            out.headers.append(name, value.clone());
        }
    }
    out.body = Some(match String::from_utf8(bytes.to_vec()) {
        Ok(text) if html => LambdaBody::Text(links(&text)),
        Ok(text) => LambdaBody::Text(text),
        Err(_) => LambdaBody::Binary(bytes.to_vec()),
    });
    out
}

/// The router's request: the path below [`PREFIX`], the headers, cookies
/// and body, and the signed-in identity (if the authorizer verified one).
fn to_request(req: ApiGatewayV2httpRequest) -> Result<Request<Body>, String> {
    let identity = identity(&req);
    let domain = req.request_context.domain_name.clone();
    let raw = req.raw_path.as_deref().unwrap_or("/");
    let path = match raw.strip_prefix(PREFIX) {
        Some("") => "/",
        Some(rest) if rest.starts_with('/') => rest,
        _ => return Err(format!("not a console path: {raw} (the console is under {PREFIX})")),
    };
    let uri = match req.raw_query_string.as_deref().filter(|q| !q.is_empty()) {
        Some(query) => format!("{path}?{query}"),
        None => path.to_string(),
    };
    let mut builder = Request::builder()
        .method(req.request_context.http.method.clone())
        .uri(uri);
    for (name, value) in &req.headers {
        builder = builder.header(name, value);
    }
    // API Gateway v2 takes the Cookie header apart; the console reads it whole.
    if let Some(cookies) = req.cookies.as_ref().filter(|c| !c.is_empty()) {
        builder = builder.header(header::COOKIE, cookies.join("; "));
    }
    let body = match req.body {
        Some(body) if req.is_base64_encoded => base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|e| format!("the request body is not valid base64: {e}"))?,
        Some(body) => body.into_bytes(),
        None => Vec::new(),
    };
    let mut request = builder
        .body(Body::from(body))
        .map_err(|e| format!("malformed request: {e}"))?;
    if let Some(identity) = identity {
        request.extensions_mut().insert(identity);
    }
    if let Some(host) = domain.filter(|d| !d.is_empty()) {
        request.extensions_mut().insert(PublicHost(host));
    }
    Ok(request)
}

/// A path of the console's as the browser must ask for it (below [`PREFIX`]).
fn prefixed(path: &str) -> String {
    if path.starts_with('/') && !path.starts_with("//") {
        format!("{PREFIX}{path}")
    } else {
        path.to_string()
    }
}

/// A page's site-absolute links and form targets put below [`PREFIX`].
fn links(html: &str) -> String {
    let mut out = html.to_string();
    for attribute in ["href", "action", "src"] {
        let from = format!("{attribute}=\"/");
        let to = format!("{attribute}=\"{PREFIX}/");
        out = out.replace(&from, &to);
        // `//host` is another site: undo.
        out = out.replace(&format!("{attribute}=\"{PREFIX}//"), &format!("{attribute}=\"//"));
    }
    out
}

fn plain(status: u16, message: &str) -> ApiGatewayV2httpResponse {
    let mut out = ApiGatewayV2httpResponse::default();
    out.status_code = i64::from(status);
    out.body = Some(LambdaBody::Text(message.to_string()));
    out.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_and_redirects_go_below_the_prefix_and_other_sites_stay() {
        let html =
            r#"<a href="/segments">S</a><form action="/rules"><a href="//x.test/">x</a><a href="https://y.test/">"#;
        assert_eq!(
            links(html),
            r#"<a href="/console/segments">S</a><form action="/console/rules"><a href="//x.test/">x</a><a href="https://y.test/">"#
        );
        assert_eq!(prefixed("/rules?published=2"), "/console/rules?published=2");
        assert_eq!(prefixed("//evil.test"), "//evil.test");
    }
}
