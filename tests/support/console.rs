//! The console served on a free loopback port ([`ConsoleServer`]) and a
//! browser-like HTTP session over it ([`Session`]: keeps the CSRF cookie,
//! reads each page's token, posts forms, does not follow redirects).

use aws_lambda_events::apigw::ApiGatewayV2httpRequest;
use aws_lambda_events::http::Method;
use kairos::console::{Console, COOKIE_NAME};
use std::sync::Arc;

/// The official API Gateway v2 request after a JWT authorizer verified a token.
pub const JWT_FIXTURE: &str = include_str!("../fixtures/example-apigw-v2-request-jwt-authorizer.json");

/// An official API Gateway v2 request (`fixture`: [`JWT_FIXTURE`] or
/// [`super::APIGW_FIXTURE`]) turned into `method path` (a `?query` split off).
pub fn apigw_request(fixture: &str, method: Method, path: &str) -> ApiGatewayV2httpRequest {
    let mut req: ApiGatewayV2httpRequest = serde_json::from_str(fixture).unwrap();
    let (raw, query) = path.split_once('?').unwrap_or((path, ""));
    req.raw_path = Some(raw.to_string());
    req.raw_query_string = Some(query.to_string());
    req.request_context.http.method = method;
    req
}

/// Adds `claims` to the ones the request's JWT authorizer verified.
pub fn add_claims(req: &mut ApiGatewayV2httpRequest, claims: &[(&str, &str)]) {
    let jwt = req.request_context.authorizer.as_mut().unwrap().jwt.as_mut().unwrap();
    for (name, value) in claims {
        jwt.claims.insert(name.to_string(), value.to_string());
    }
}

/// A running console; stopped when dropped.
pub struct ConsoleServer {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// The state it serves.
    pub console: Arc<Console>,
    task: tokio::task::JoinHandle<()>,
}

impl ConsoleServer {
    /// The embedded default (demo rules and events).
    pub async fn demo() -> ConsoleServer {
        ConsoleServer::start(kairos_evaluate::DEFAULT_RULES, kairos::demo::DEFAULT_EVENTS).await
    }

    /// A console over these rules and events.
    pub async fn start(rules: &str, events: &str) -> ConsoleServer {
        let console = Arc::new(Console::new(rules, events).await.expect("console state"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let served = Arc::clone(&console);
        let task = tokio::spawn(async move {
            kairos::console::serve(listener, served).await.unwrap();
        });
        ConsoleServer { url, console, task }
    }

    /// The demo console behind sign-in, every request arriving as `identity`
    /// (what the AWS function puts in each request from the verified token).
    pub async fn signed_in(identity: kairos::console::access::Identity) -> ConsoleServer {
        let events = kairos::demo::DEFAULT_EVENTS;
        let console = Arc::new(
            Console::new(kairos_evaluate::DEFAULT_RULES, events)
                .await
                .expect("console state"),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let router = kairos::console::signed_in_router(Arc::clone(&console)).layer(axum::Extension(identity));
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        ConsoleServer { url, console, task }
    }

    /// A new browser-like session.
    pub fn session(&self) -> Session {
        Session::at(&self.url)
    }
}

impl Drop for ConsoleServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Any console router (e.g. over the AWS backend, behind sign-in) served on a
/// free loopback port; stopped when dropped.
pub struct Served {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    task: tokio::task::JoinHandle<()>,
}

impl Served {
    /// Serves `router`.
    pub async fn start(router: axum::Router) -> Served {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            axum::serve(listener, router).await.unwrap();
        });
        Served { url, task }
    }

    /// A new browser-like session.
    pub fn session(&self) -> Session {
        Session::at(&self.url)
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One answer: status, `Location` (redirects) and body.
#[derive(Debug)]
pub struct Page {
    pub status: u16,
    pub location: Option<String>,
    pub body: String,
}

/// A session: its CSRF cookie and the token of the last page read.
pub struct Session {
    url: String,
    client: reqwest::Client,
    /// The `kairos_csrf` cookie's value, once set.
    pub cookie: Option<String>,
    /// The token the last page's forms carry.
    pub csrf: Option<String>,
}

impl Session {
    /// A new session with the site at `url`.
    pub fn at(url: &str) -> Session {
        Session {
            url: url.to_string(),
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
            csrf: None,
        }
    }

    /// GETs `path` (with the session's cookie).
    pub async fn get(&mut self, path: &str) -> Page {
        let req = self.client.get(format!("{}{path}", self.url));
        self.send(req).await
    }

    /// POSTs a form to `path`, adding the session's CSRF token unless `fields` has one.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Page {
        let mut form = form_urlencoded::Serializer::new(String::new());
        if !fields.iter().any(|(k, _)| *k == "csrf") {
            form.append_pair("csrf", self.csrf.as_deref().unwrap_or(""));
        }
        for (k, v) in fields {
            form.append_pair(k, v);
        }
        let req = self
            .client
            .post(format!("{}{path}", self.url))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.finish());
        self.send(req).await
    }

    async fn send(&mut self, mut req: reqwest::RequestBuilder) -> Page {
        if let Some(cookie) = &self.cookie {
            req = req.header("cookie", format!("{COOKIE_NAME}={cookie}"));
        }
        let response = req.send().await.unwrap();
        for set in response.headers().get_all("set-cookie") {
            let set = set.to_str().unwrap();
            if let Some(value) = set.strip_prefix(&format!("{COOKIE_NAME}=")) {
                self.cookie = Some(value.split(';').next().unwrap().to_string());
            }
        }
        let status = response.status().as_u16();
        let location = response
            .headers()
            .get("location")
            .map(|l| l.to_str().unwrap().to_string());
        let body = response.text().await.unwrap();
        if let Some(token) = field_value(&body, "csrf") {
            self.csrf = Some(token);
        }
        Page { status, location, body }
    }
}

/// The value of the first `<input name="NAME" value="…">` in a page.
pub fn field_value(body: &str, name: &str) -> Option<String> {
    let at = body.find(&format!("name=\"{name}\" value=\""))?;
    let rest = &body[at + name.len() + 15..];
    Some(rest[..rest.find('"')?].to_string())
}

/// The console function's environment over `stack` (as the template sets
/// it): its table, write-back queue, audit table, rules object and archive.
pub fn aws_environment(stack: &super::Stack) -> std::collections::HashMap<String, String> {
    let buckets = &stack.infra.buckets;
    [
        ("KAIROS_TABLE", stack.infra.table.clone()),
        ("KAIROS_WRITEBACK_QUEUE_URL", stack.url("WritebackQueue").to_string()),
        ("KAIROS_AUDIT_TABLE", stack.audit_table().to_string()),
        (
            "KAIROS_RULES_URI",
            format!("s3://{}/segments.yaml", buckets["RulesBucket"]),
        ),
        ("KAIROS_ARCHIVE", format!("s3://{}/events/", buckets["ArchiveBucket"])),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// The console over `stack`, as the console function builds it from its environment.
pub fn aws_console(stack: &super::Stack) -> Arc<Console<kairos::console::Aws>> {
    let env = aws_environment(stack);
    let config = kairos::console::AwsConfig::from_env(|name| env.get(name).cloned()).expect("configuration");
    Arc::new(Console::aws(config, &stack.aws, kairos::local::s3_client(&stack.aws)))
}
