//! The console behind the HTTP API (issue 23 item 2): requests shaped as
//! the JWT authorizer passes them (the official API Gateway v2 fixture with
//! Cognito claims) served by the console's router, roles enforced from the
//! `cognito:groups` claim, links and redirects kept below `/console`.

mod support;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::Method;
use kairos::console::{lambda, signed_in_router, Console};
use std::sync::Arc;
use support::console::{add_claims, apigw_request, JWT_FIXTURE};

/// A request as API Gateway passes it after verifying a Cognito ID token of
/// `email` in `groups` (`None`: no authorizer ran).
fn request(
    method: Method,
    path: &str,
    groups: Option<&str>,
    cookies: &[String],
    body: Option<String>,
) -> ApiGatewayV2httpRequest {
    let mut req = apigw_request(JWT_FIXTURE, method, path);
    req.cookies = Some(cookies.to_vec());
    req.body = body;
    req.headers
        .insert("content-type", "application/x-www-form-urlencoded".parse().unwrap());
    match groups {
        Some(groups) => add_claims(
            &mut req,
            &[("sub", "5f0e-ada"), ("email", "ada@x.test"), ("cognito:groups", groups)],
        ),
        None => req.request_context.authorizer = None,
    }
    req
}

fn text(response: &ApiGatewayV2httpResponse) -> String {
    match &response.body {
        Some(Body::Text(text)) => text.clone(),
        other => panic!("{other:?}"),
    }
}

/// The CSRF cookie a page set and the token its forms carry.
fn csrf(response: &ApiGatewayV2httpResponse) -> (String, String) {
    let cookie = response.cookies[0].split(';').next().unwrap().to_string();
    let body = text(response);
    let at = body.find("name=\"csrf\" value=\"").unwrap() + 19;
    (cookie, body[at..at + 64].to_string())
}

#[tokio::test]
async fn a_signed_in_request_is_served_below_console_with_its_role_enforced() {
    let console = Arc::new(Console::demo().await.unwrap());
    let router = || signed_in_router(Arc::clone(&console));

    let page = lambda::handle(
        router(),
        request(Method::GET, "/console/segments", Some("[viewer]"), &[], None),
    )
    .await;
    assert_eq!(page.status_code, 200, "{}", text(&page));
    let body = text(&page);
    assert!(body.contains("ada@x.test"), "the signed-in user is shown");
    assert!(
        body.contains("href=\"/console/rules\""),
        "links stay below /console: {body}"
    );
    assert!(!body.contains("href=\"/rules\""));
    let root = lambda::handle(router(), request(Method::GET, "/console", Some("[viewer]"), &[], None)).await;
    assert_eq!(root.headers["location"], "/console/segments");

    // A viewer's pin is refused, naming the role; an editor's goes through, under their name.
    let overrides = lambda::handle(
        router(),
        request(Method::GET, "/console/overrides", Some("[viewer]"), &[], None),
    )
    .await;
    let (cookie, token) = csrf(&overrides);
    let form = format!(
        "csrf={token}&contact=carol%40initech.test&segment=pricing-intent&member=in&reason=quote&back=%2Foverrides"
    );
    let cookies = [cookie];
    let refused = lambda::handle(
        router(),
        request(
            Method::POST,
            "/console/overrides/pin",
            Some("[viewer]"),
            &cookies,
            Some(form.clone()),
        ),
    )
    .await;
    assert_eq!(refused.status_code, 403);
    assert!(text(&refused).contains("needs the editor role"), "{}", text(&refused));
    let pinned = lambda::handle(
        router(),
        request(
            Method::POST,
            "/console/overrides/pin",
            Some("[viewer editor]"),
            &cookies,
            Some(form),
        ),
    )
    .await;
    assert_eq!(pinned.status_code, 303, "{}", text(&pinned));
    assert_eq!(pinned.headers["location"], "/console/overrides");
    let carol = lambda::handle(
        router(),
        request(
            Method::GET,
            "/console/contact?q=carol%40initech.test",
            Some("[editor]"),
            &[],
            None,
        ),
    )
    .await;
    assert!(text(&carol).contains("by admin-key:ada@x.test"), "{}", text(&carol));

    // No verified token (no authorizer ran): refused; a path outside /console: refused.
    let anonymous = lambda::handle(router(), request(Method::GET, "/console/segments", None, &[], None)).await;
    assert_eq!(anonymous.status_code, 401);
    assert!(text(&anonymous).contains("not signed in"));
    let outside = lambda::handle(
        router(),
        request(Method::GET, "/v1/contacts/x", Some("[publisher]"), &[], None),
    )
    .await;
    assert_eq!(outside.status_code, 400);
    assert!(text(&outside).contains("not a console path: /v1/contacts/x"));
}
