//! HTTP as the destinations use it: a request built as data, sent through a
//! [`Transport`]. [`ReqwestTransport`] sends it; [`DryRun`] records it and
//! answers as the CRM would on success, so `kairos demo` shows each request a
//! CRM would receive without sending it.

use std::future::Future;
use std::sync::Mutex;

/// A request to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// `GET`, `POST`, `PUT`, `PATCH`.
    pub method: &'static str,
    /// The full URL.
    pub url: String,
    /// Headers, secrets included (never logged: see [`HttpRequest::redacted`]).
    pub headers: Vec<(String, String)>,
    /// The body, if any.
    pub body: Option<String>,
}

impl HttpRequest {
    /// A request without headers or body.
    pub fn new(method: &'static str, url: impl Into<String>) -> HttpRequest {
        HttpRequest {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: None,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: &str, value: impl Into<String>) -> HttpRequest {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// Sets a JSON body.
    pub fn json(self, body: &serde_json::Value) -> HttpRequest {
        let mut r = self.header("content-type", "application/json");
        r.body = Some(body.to_string());
        r
    }

    /// Sets a form-encoded body.
    pub fn form(self, pairs: &[(&str, &str)]) -> HttpRequest {
        let mut r = self.header("content-type", "application/x-www-form-urlencoded");
        let mut form = form_urlencoded::Serializer::new(String::new());
        form.extend_pairs(pairs);
        r.body = Some(form.finish());
        r
    }

    /// The request line and headers with credentials masked, for display.
    pub fn redacted(&self) -> String {
        let secret = ["authorization", "x-api-token", "webhook-signature"];
        let headers: Vec<String> = self
            .headers
            .iter()
            .filter(|(n, _)| n != "content-type")
            .map(
                |(n, v)| match (secret.contains(&n.to_ascii_lowercase().as_str()), v.split_once(' ')) {
                    (true, Some((scheme, _))) => format!("{n}: {scheme} [redacted]"),
                    (true, None) => format!("{n}: [redacted]"),
                    (false, _) => format!("{n}: {v}"),
                },
            )
            .collect();
        let mut line = format!("{} {}", self.method, self.url);
        if !headers.is_empty() {
            line.push_str(&format!("  [{}]", headers.join("; ")));
        }
        line
    }
}

impl HttpRequest {
    /// The body with credentials masked (a JWT bearer `assertion`), for display.
    pub fn shown_body(&self) -> String {
        let body = self.body.as_deref().unwrap_or("");
        match body.find("assertion=") {
            Some(at) => format!("{}assertion=[redacted]", &body[..at]),
            None => body.to_string(),
        }
    }
}

/// A response: status, headers (names lowercased) and body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HttpResponse {
    /// The HTTP status.
    pub status: u16,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// The body as text.
    pub body: String,
}

impl HttpResponse {
    /// A response with a JSON body.
    pub fn json(status: u16, body: serde_json::Value) -> HttpResponse {
        HttpResponse {
            status,
            headers: Vec::new(),
            body: body.to_string(),
        }
    }

    /// A header's value (name case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_str())
    }

    /// A header's value as a number.
    pub fn number(&self, name: &str) -> Option<u64> {
        self.header(name).and_then(|v| v.trim().parse().ok())
    }

    /// The body parsed as JSON (`null` if it is not).
    pub fn value(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The first characters of the body, for an error's reason.
    pub fn excerpt(&self) -> String {
        self.body.chars().take(300).collect()
    }
}

/// Why a request got no response (timeout, connection refused): retryable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TransportError(pub String);

/// Sends requests.
pub trait Transport: Send + Sync {
    /// Sends one request and reads the whole response.
    fn send(&self, request: HttpRequest) -> impl Future<Output = Result<HttpResponse, TransportError>> + Send;
}

/// HTTP through reqwest, with one client built at cold start.
#[derive(Debug, Clone)]
pub struct ReqwestTransport {
    client: reqwest::Client,
}

impl ReqwestTransport {
    /// Sends through `client` (built with a timeout and no redirects).
    pub fn new(client: reqwest::Client) -> ReqwestTransport {
        ReqwestTransport { client }
    }
}

impl Transport for ReqwestTransport {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let method =
            reqwest::Method::from_bytes(request.method.as_bytes()).map_err(|e| TransportError(e.to_string()))?;
        let mut builder = self.client.request(method, &request.url);
        for (name, value) in &request.headers {
            builder = builder.header(name, value);
        }
        if let Some(body) = request.body {
            builder = builder.body(body);
        }
        let response = builder
            .send()
            .await
            .map_err(|e| TransportError(e.without_url().to_string()))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .filter_map(|(n, v)| Some((n.as_str().to_string(), v.to_str().ok()?.to_string())))
            .collect();
        let body = response
            .text()
            .await
            .map_err(|e| TransportError(e.without_url().to_string()))?;
        Ok(HttpResponse { status, headers, body })
    }
}

/// Records each request and answers it with `answer` (what the CRM says on
/// success), sending nothing.
pub struct DryRun {
    answer: Box<dyn Fn(&HttpRequest) -> HttpResponse + Send + Sync>,
    sent: Mutex<Vec<HttpRequest>>,
}

impl DryRun {
    /// Answers every request with `answer`.
    pub fn new(answer: impl Fn(&HttpRequest) -> HttpResponse + Send + Sync + 'static) -> DryRun {
        DryRun {
            answer: Box::new(answer),
            sent: Mutex::new(Vec::new()),
        }
    }

    /// Takes the requests recorded so far.
    pub fn take(&self) -> Vec<HttpRequest> {
        self.sent.lock().unwrap_or_else(|e| e.into_inner()).drain(..).collect()
    }
}

impl Transport for DryRun {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let response = (self.answer)(&request);
        self.sent.lock().unwrap_or_else(|e| e.into_inner()).push(request);
        Ok(response)
    }
}

impl<T: Transport> Transport for std::sync::Arc<T> {
    fn send(&self, request: HttpRequest) -> impl Future<Output = Result<HttpResponse, TransportError>> + Send {
        (**self).send(request)
    }
}
