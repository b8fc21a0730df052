//! Human sign-in for the console in AWS (issue 23 item 2): the function's
//! own authorization-code flow with PKCE against a local stand-in for the
//! Cognito user pool (`support::cognito`: JWKS and token endpoint), driven
//! through `lambda::handle` with the official API Gateway v2 request shape.

mod support;

use aws_lambda_events::apigw::{ApiGatewayV2httpRequest, ApiGatewayV2httpResponse};
use aws_lambda_events::encodings::Body;
use aws_lambda_events::http::Method;
use kairos::console::signin::SignIn;
use kairos::console::{lambda, signed_in_router, Console};
use serde_json::json;
use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::cognito::{s256, sign, FakeCognito, TestKey};
use support::console::{add_claims, apigw_request, JWT_FIXTURE};

const CLIENT: &str = "console-client-1";

/// The console function as deployed: sign-in around the console's router.
struct Deployed {
    cognito: FakeCognito,
    signin: Arc<SignIn>,
    console: Arc<Console>,
    /// `https://<API Gateway domain>/console/callback`.
    callback: String,
}

impl Deployed {
    /// A pool publishing key 0 as `k1`; unknown `kid`s refetch the JWKS after `refetch`.
    async fn start(refetch: Duration) -> Deployed {
        let cognito = FakeCognito::start(CLIENT).await;
        cognito.publish(&TestKey::new(0, "k1"));
        let mut signin = SignIn::new(&cognito.issuer, CLIENT, &cognito.url).unwrap();
        signin.verifier_mut().refetch_interval = refetch;
        let domain = request(Method::GET, "/console", &[])
            .request_context
            .domain_name
            .unwrap();
        Deployed {
            cognito,
            signin: Arc::new(signin),
            console: Arc::new(Console::demo().await.unwrap()),
            callback: format!("https://{domain}/console/callback"),
        }
    }

    async fn send(&self, req: ApiGatewayV2httpRequest) -> ApiGatewayV2httpResponse {
        let router = self.signin.wrap(signed_in_router(Arc::clone(&self.console)));
        lambda::handle(router, req).await
    }

    async fn get(&self, path: &str, cookies: &[String]) -> ApiGatewayV2httpResponse {
        self.send(request(Method::GET, path, cookies)).await
    }

    /// `/console/login` as a browser follows it: the authorize URL's query and the sign-in cookie.
    async fn login(&self, next: &str) -> (HashMap<String, String>, String) {
        let path = format!("/console/login?next={}", urlencode(next));
        let login = self.get(&path, &[]).await;
        assert_eq!(login.status_code, 303);
        let location = location(&login);
        let query = location
            .strip_prefix(&format!("{}/oauth2/authorize?", self.cognito.url))
            .unwrap_or_else(|| panic!("to the hosted UI: {location}"));
        let query = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
        (query, cookie(&login, "kairos_signin").expect("the sign-in cookie"))
    }

    /// A whole sign-in: login, the hosted UI issues `code` for `id_token`, the callback.
    async fn sign_in(&self, id_token: &str, next: &str) -> ApiGatewayV2httpResponse {
        let (query, signin_cookie) = self.login(next).await;
        let code = format!("code-{}", rand::random::<u32>());
        self.cognito
            .grant(&code, &query["code_challenge"], &query["redirect_uri"], id_token);
        let callback = format!("/console/callback?code={code}&state={}", query["state"]);
        self.get(&callback, &[signin_cookie]).await
    }
}

/// The official no-authorizer API Gateway v2 request, as `method path` with `cookies`.
fn request(method: Method, path: &str, cookies: &[String]) -> ApiGatewayV2httpRequest {
    let mut req = apigw_request(support::APIGW_FIXTURE, method, path);
    req.cookies = Some(cookies.to_vec());
    req.body = None;
    req.headers
        .insert("content-type", "application/x-www-form-urlencoded".parse().unwrap());
    req
}

fn urlencode(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

fn location(response: &ApiGatewayV2httpResponse) -> String {
    response.headers["location"].to_str().unwrap().to_string()
}

fn text(response: &ApiGatewayV2httpResponse) -> String {
    match &response.body {
        Some(Body::Text(text)) => text.clone(),
        Some(Body::Empty) | None => String::new(),
        other => panic!("{other:?}"),
    }
}

/// The `Set-Cookie` of `name`, whole.
fn set_cookie<'a>(response: &'a ApiGatewayV2httpResponse, name: &str) -> Option<&'a str> {
    let prefix = format!("{name}=");
    response
        .cookies
        .iter()
        .find(|c| c.starts_with(&prefix))
        .map(String::as_str)
}

/// `name=value` of the cookie a response set (as the browser sends it back).
fn cookie(response: &ApiGatewayV2httpResponse, name: &str) -> Option<String> {
    set_cookie(response, name).map(|c| c.split(';').next().unwrap().to_string())
}

/// The `Max-Age` a response set `name` with.
fn max_age(response: &ApiGatewayV2httpResponse, name: &str) -> i64 {
    let set = set_cookie(response, name).unwrap();
    let at = set.find("Max-Age=").unwrap() + 8;
    set[at..].split(';').next().unwrap().parse().unwrap()
}

/// Everything logged (any level) while the returned guard lives.
fn capture_logs() -> (Arc<Mutex<Vec<u8>>>, tracing::subscriber::DefaultGuard) {
    struct Sink(Arc<Mutex<Vec<u8>>>);
    impl Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let logs = Arc::new(Mutex::new(Vec::new()));
    let writer = Arc::clone(&logs);
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || Sink(Arc::clone(&writer)))
        .finish();
    (logs, tracing::subscriber::set_default(subscriber))
}

#[tokio::test]
async fn a_person_signs_in_with_pkce_and_browses_with_their_role() {
    let (logs, _guard) = capture_logs();
    let deployed = Deployed::start(Duration::from_secs(60)).await;
    let key = TestKey::new(0, "k1");

    // Signed out, a page redirects to sign-in, remembering the page; a change is refused.
    let page = deployed.get("/console/contact?q=carol%40initech.test", &[]).await;
    assert_eq!(page.status_code, 303, "{}", text(&page));
    assert_eq!(
        location(&page),
        "/console/login?next=%2Fcontact%3Fq%3Dcarol%2540initech.test"
    );
    let post = deployed.send(request(Method::POST, "/console/rules", &[])).await;
    assert_eq!(post.status_code, 401, "a form post is refused, not redirected");

    // Login: the hosted UI's authorize URL with an S256 challenge of the cookie's verifier.
    let (query, signin_cookie) = deployed.login("/contact?q=carol%40initech.test").await;
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["client_id"], CLIENT);
    assert_eq!(query["redirect_uri"], deployed.callback);
    assert_eq!(query["scope"], "openid email profile");
    assert_eq!(query["code_challenge_method"], "S256");
    let (state, verifier) = {
        let value = signin_cookie.strip_prefix("kairos_signin=").unwrap();
        let mut parts = value.split('.');
        (parts.next().unwrap().to_string(), parts.next().unwrap().to_string())
    };
    assert_eq!(query["state"], state);
    assert_eq!(
        query["code_challenge"],
        s256(&verifier),
        "S256 of the verifier the cookie keeps"
    );
    assert!((43..=128).contains(&verifier.len()), "RFC 7636's verifier length");
    let login = deployed.get("/console/login", &[]).await;
    let attributes = set_cookie(&login, "kairos_signin").unwrap();
    assert!(
        attributes.ends_with("; Path=/console; Max-Age=600; HttpOnly; Secure; SameSite=Lax"),
        "{attributes}"
    );
    assert_ne!(
        cookie(&login, "kairos_signin").unwrap(),
        signin_cookie,
        "a new state each time"
    );

    // The hosted UI signs the user in and issues a code for this challenge.
    let id_token = deployed.cognito.id_token(&key, "ada@x.test", &["viewer"], 3600);
    deployed
        .cognito
        .grant("code-1", &query["code_challenge"], &query["redirect_uri"], &id_token);

    // A callback whose state is not the browser's is refused before any exchange.
    let forged = deployed
        .get(
            &format!("/console/callback?code=code-1&state={}", "0".repeat(64)),
            std::slice::from_ref(&signin_cookie),
        )
        .await;
    assert_eq!(forged.status_code, 400);
    assert!(text(&forged).contains("state does not match"), "{}", text(&forged));
    assert!(cookie(&forged, "kairos_session").is_none());
    let no_cookie = deployed
        .get(&format!("/console/callback?code=code-1&state={state}"), &[])
        .await;
    assert_eq!(no_cookie.status_code, 400, "{}", text(&no_cookie));
    assert!(
        deployed.cognito.token_requests().is_empty(),
        "no exchange was attempted"
    );

    // The right state: the code is exchanged with the verifier, the session set, back to the page.
    let callback = format!("/console/callback?code=code-1&state={state}");
    let signed_in = deployed.get(&callback, std::slice::from_ref(&signin_cookie)).await;
    assert_eq!(signed_in.status_code, 303, "{}", text(&signed_in));
    assert_eq!(location(&signed_in), "/console/contact?q=carol%40initech.test");
    let exchanged = deployed.cognito.token_requests();
    assert_eq!(exchanged.len(), 1);
    let form = &exchanged[0];
    assert_eq!(form["grant_type"], "authorization_code");
    assert_eq!(form["client_id"], CLIENT);
    assert_eq!(form["code"], "code-1");
    assert_eq!(form["redirect_uri"], deployed.callback);
    assert_eq!(form["code_verifier"], verifier);
    assert!(!form.contains_key("client_secret"), "a public client");
    let session = cookie(&signed_in, "kairos_session").expect("the session cookie");
    assert_eq!(session, format!("kairos_session={id_token}"));
    let attributes = set_cookie(&signed_in, "kairos_session").unwrap();
    assert!(attributes.contains("; Path=/console; "), "{attributes}");
    assert!(attributes.ends_with("; HttpOnly; Secure; SameSite=Lax"), "{attributes}");
    assert!(
        (3500..=3600).contains(&max_age(&signed_in, "kairos_session")),
        "the token's lifetime"
    );
    assert_eq!(max_age(&signed_in, "kairos_signin"), 0, "the sign-in cookie is cleared");
    assert!(!text(&signed_in).contains(&id_token));

    // The code is used up: the same callback again fails at the pool.
    let replayed = deployed.get(&callback, &[signin_cookie]).await;
    assert_eq!(replayed.status_code, 502);
    assert!(text(&replayed).contains("invalid_grant"), "{}", text(&replayed));

    // With the cookie: pages as ada, a viewer; her publish is refused for want of the role.
    let page = deployed
        .get(
            "/console/contact?q=carol%40initech.test",
            std::slice::from_ref(&session),
        )
        .await;
    assert_eq!(page.status_code, 200, "{}", text(&page));
    let body = text(&page);
    assert!(body.contains("ada@x.test") && body.contains("carol@initech.test"));
    assert!(!body.contains(&id_token), "the token never reaches a page");
    let csrf = cookie(&page, "kairos_csrf").unwrap();
    let at = body.find("name=\"csrf\" value=\"").unwrap() + 19;
    let token = &body[at..at + 64];
    let mut publish = request(Method::POST, "/console/rules", &[session.clone(), csrf]);
    publish.body = Some(format!(
        "csrf={token}&action=publish&base=1&message=m&text=segments%3A+%5B%5D"
    ));
    let refused = deployed.send(publish).await;
    assert_eq!(refused.status_code, 403, "{}", text(&refused));
    assert!(text(&refused).contains("needs the publisher role; ada@x.test has the viewer role"));
    assert_eq!(deployed.console.rules().current().number, 1, "nothing was published");

    // Logout: the session cleared, then the hosted UI's logout back to the console.
    let out = deployed.get("/console/logout", &[session]).await;
    assert_eq!(out.status_code, 303);
    assert_eq!(max_age(&out, "kairos_session"), 0);
    let domain = deployed.callback.trim_end_matches("/console/callback");
    assert_eq!(
        location(&out),
        format!(
            "{}/logout?client_id={CLIENT}&logout_uri={}",
            deployed.cognito.url,
            urlencode(&format!("{domain}/console"))
        )
    );

    let logs = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("signed in"), "the sign-in is logged: {logs}");
    for secret in [id_token.as_str(), &verifier, &state, "code-1"] {
        assert!(!logs.contains(secret), "a secret in the logs: {secret}");
    }
}

#[tokio::test]
async fn tokens_failing_any_check_are_refused_at_the_callback_and_in_the_cookie() {
    let (logs, _guard) = capture_logs();
    let deployed = Deployed::start(Duration::from_secs(60)).await;
    let key = TestKey::new(0, "k1");
    let cognito = &deployed.cognito;
    let claims = || cognito.claims("bo@x.test", &["publisher"], 3600);
    let header = json!({"kid": "k1", "alg": "RS256"});
    let with = |name: &str, value: serde_json::Value| {
        let mut claims = claims();
        claims[name] = value;
        sign(&key, &header, &claims)
    };
    let good = sign(&key, &header, &claims());
    let tampered = {
        let (signed, signature) = good.rsplit_once('.').unwrap();
        let (head, _) = signed.split_once('.').unwrap();
        let mut claims = claims();
        claims["cognito:groups"] = json!(["publisher", "admin"]);
        let body = base64_url(&claims.to_string());
        format!("{head}.{body}.{signature}")
    };
    let now = chrono::Utc::now().timestamp();
    let bad = [
        ("expired", cognito.id_token(&key, "bo@x.test", &["publisher"], -3600)),
        ("wrong audience", with("aud", json!("another-client"))),
        (
            "wrong issuer",
            with("iss", json!("https://cognito-idp.eu-west-1.amazonaws.com/other")),
        ),
        ("an access token", with("token_use", json!("access"))),
        ("not valid yet", with("nbf", json!(now + 3600))),
        ("bad signature", tampered),
        ("another key under k1", sign(&TestKey::new(1, "k1"), &header, &claims())),
        (
            "unknown kid",
            sign(&TestKey::new(1, "k9"), &json!({"kid": "k9", "alg": "RS256"}), &claims()),
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                base64_url(r#"{"kid":"k1","alg":"none"}"#),
                base64_url(&claims().to_string())
            ),
        ),
        ("no user", {
            let mut claims = claims();
            claims
                .as_object_mut()
                .unwrap()
                .retain(|k, _| k != "email" && k != "sub");
            sign(&key, &header, &claims)
        }),
    ];
    for (what, token) in &bad {
        // In the cookie: the page redirects to sign-in and the cookie is cleared.
        let page = deployed
            .get("/console/segments", &[format!("kairos_session={token}")])
            .await;
        assert_eq!(page.status_code, 303, "{what}: {}", text(&page));
        assert_eq!(location(&page), "/console/login?next=%2Fsegments", "{what}");
        assert_eq!(max_age(&page, "kairos_session"), 0, "{what}");
        // From the pool: the callback refuses it and sets no session.
        let callback = deployed.sign_in(token, "/").await;
        assert_eq!(callback.status_code, 401, "{what}: {}", text(&callback));
        assert!(
            text(&callback).starts_with("sign-in refused"),
            "{what}: {}",
            text(&callback)
        );
        assert!(cookie(&callback, "kairos_session").is_none(), "{what}");
        assert!(!text(&callback).contains(token.as_str()), "{what}");
    }
    // The good token still passes (a control: the refusals are the checks, not the set-up).
    let page = deployed
        .get("/console/segments", &[format!("kairos_session={good}")])
        .await;
    assert_eq!(page.status_code, 200, "{}", text(&page));
    assert!(text(&page).contains("bo@x.test"));

    let logs = String::from_utf8(logs.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("the token has expired"), "{logs}");
    assert!(logs.contains("the token is not for the console's app client"), "{logs}");
    for (what, token) in &bad {
        let signature = token.rsplit('.').next().unwrap();
        assert!(
            signature.is_empty() || !logs.contains(signature),
            "{what}: the token in the logs"
        );
    }
}

#[tokio::test]
async fn the_jwks_is_fetched_once_and_again_for_a_new_kid() {
    let deployed = Deployed::start(Duration::ZERO).await;
    let cognito = &deployed.cognito;
    let k1 = cognito.id_token(&TestKey::new(0, "k1"), "cy@x.test", &["editor"], 3600);
    assert_eq!(cognito.jwks_fetches(), 0, "fetched on first use");
    for _ in 0..3 {
        let page = deployed
            .get("/console/segments", &[format!("kairos_session={k1}")])
            .await;
        assert_eq!(page.status_code, 200, "{}", text(&page));
    }
    assert_eq!(cognito.jwks_fetches(), 1, "cached for the container's life");

    // The pool rotates to a new key: the first token naming it refetches the JWKS.
    let rotated = TestKey::new(1, "k2");
    cognito.publish(&rotated);
    let k2 = cognito.id_token(&rotated, "cy@x.test", &["editor"], 3600);
    let page = deployed
        .get("/console/segments", &[format!("kairos_session={k2}")])
        .await;
    assert_eq!(page.status_code, 200, "{}", text(&page));
    assert_eq!(cognito.jwks_fetches(), 2);
    let page = deployed
        .get("/console/segments", &[format!("kairos_session={k1}")])
        .await;
    assert_eq!(page.status_code, 200, "the old key is still known");
    assert_eq!(cognito.jwks_fetches(), 2);

    // A kid the pool does not have: refetched (interval zero here), still unknown, refused.
    let k9 = cognito.id_token(&TestKey::new(1, "k9"), "cy@x.test", &["editor"], 3600);
    let page = deployed
        .get("/console/segments", &[format!("kairos_session={k9}")])
        .await;
    assert_eq!(page.status_code, 303);
    assert_eq!(cognito.jwks_fetches(), 3);
}

#[tokio::test]
async fn made_up_kids_do_not_refetch_the_jwks_within_the_interval() {
    let deployed = Deployed::start(Duration::from_secs(3600)).await;
    let cognito = &deployed.cognito;
    let k1 = cognito.id_token(&TestKey::new(0, "k1"), "cy@x.test", &["viewer"], 3600);
    let page = deployed
        .get("/console/segments", &[format!("kairos_session={k1}")])
        .await;
    assert_eq!(page.status_code, 200, "{}", text(&page));
    for kid in ["k7", "k8", "k9"] {
        let token = cognito.id_token(&TestKey::new(1, kid), "cy@x.test", &["viewer"], 3600);
        let page = deployed
            .get("/console/segments", &[format!("kairos_session={token}")])
            .await;
        assert_eq!(page.status_code, 303, "{kid}");
    }
    assert_eq!(cognito.jwks_fetches(), 1, "one fetch for the first token only");
}

#[tokio::test]
async fn an_authorizers_claims_are_still_accepted_and_a_pool_outage_is_not_a_sign_out() {
    let deployed = Deployed::start(Duration::from_secs(60)).await;
    // An HTTP API JWT authorizer in front (e.g. a header-carrying client): its claims stand.
    let mut req = apigw_request(JWT_FIXTURE, Method::GET, "/console/segments");
    req.raw_query_string = None;
    req.cookies = None;
    add_claims(&mut req, &[("email", "dee@x.test"), ("cognito:groups", "[viewer]")]);
    let page = deployed.send(req).await;
    assert_eq!(page.status_code, 200, "{}", text(&page));
    assert!(text(&page).contains("dee@x.test"));
    assert_eq!(deployed.cognito.jwks_fetches(), 0, "nothing to verify");

    // The pool's keys cannot be fetched: 503, and the session cookie is kept.
    let k1 = deployed
        .cognito
        .id_token(&TestKey::new(0, "k1"), "ed@x.test", &["viewer"], 3600);
    let unreachable = SignIn::new("http://127.0.0.1:9/pool", CLIENT, "http://127.0.0.1:9").unwrap();
    let router = Arc::new(unreachable).wrap(signed_in_router(Arc::clone(&deployed.console)));
    let page = lambda::handle(
        router,
        request(Method::GET, "/console/segments", &[format!("kairos_session={k1}")]),
    )
    .await;
    assert_eq!(page.status_code, 503, "{}", text(&page));
    assert!(page.cookies.is_empty(), "not signed out");
}

fn base64_url(text: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(text)
}
