//! A headless Chromium driven through WebDriver: Debian's `chromedriver`
//! (package `chromium-driver`, installed by `make browser` and `.ci/run`)
//! started on a free loopback port, spoken to with reqwest. Only the
//! handful of WebDriver commands the console tests use.

use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// WebDriver's key for an element reference.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A browser session; chromedriver is stopped when dropped.
pub struct Browser {
    driver: Child,
    base: String,
    http: reqwest::Client,
}

impl Browser {
    /// Starts chromedriver (`KAIROS_CHROMEDRIVER`, else `chromedriver` on
    /// PATH) and a headless Chromium session.
    pub async fn start() -> Browser {
        let program = std::env::var("KAIROS_CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let driver = Command::new(&program)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!("starting `{program}`: {e}; install Chromium and its driver with `make browser` (Debian: chromium chromium-driver)")
            });
        let http = reqwest::Client::new();
        let root = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            if http.get(format!("{root}/status")).send().await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let caps = json!({"capabilities": {"alwaysMatch": {"goog:chromeOptions": {
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,1100"]
        }}}});
        let mut browser = Browser {
            driver,
            base: root,
            http,
        };
        let created = browser.call("POST", "/session", caps).await;
        let id = created["sessionId"].as_str().expect("a session id").to_string();
        browser.base = format!("{}/session/{id}", browser.base);
        browser
    }

    async fn call(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.base);
        let req = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body),
        };
        let answer: Value = req.send().await.unwrap().json().await.unwrap();
        answer["value"].clone()
    }

    async fn checked(&self, method: &str, path: &str, body: Value) -> Value {
        let value = self.call(method, path, body).await;
        if let Some(error) = value.get("error") {
            panic!("WebDriver {method} {path}: {error}: {}", value["message"]);
        }
        value
    }

    /// Opens `url` (waits for the page to load).
    pub async fn goto(&self, url: &str) {
        self.checked("POST", "/url", json!({"url": url})).await;
    }

    /// The first element matching a CSS selector.
    pub async fn find(&self, css: &str) -> String {
        let found = self
            .checked("POST", "/element", json!({"using": "css selector", "value": css}))
            .await;
        found[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("finding `{css}`: {found}"))
            .to_string()
    }

    /// The rendered text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        let el = self.find(css).await;
        self.checked("GET", &format!("/element/{el}/text"), json!({}))
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The text of `css` once it contains `needle` (a click's page may still
    /// be loading), or its last text after 10 s (the caller's assert then says what was there).
    pub async fn wait_for(&self, css: &str, needle: &str) -> String {
        let mut last = String::new();
        for _ in 0..100 {
            let found = self
                .call("POST", "/element", json!({"using": "css selector", "value": css}))
                .await;
            if let Some(el) = found[ELEMENT].as_str() {
                let text = self.call("GET", &format!("/element/{el}/text"), json!({})).await;
                last = text.as_str().unwrap_or_default().to_string();
                if last.contains(needle) {
                    return last;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        last
    }

    /// Scrolls the first element matching `css` to the top of the window (for a screenshot).
    pub async fn scroll_to(&self, css: &str) {
        let el = self.find(css).await;
        let script = "arguments[0].scrollIntoView(true);";
        let args = json!([{ ELEMENT: el }]);
        self.checked("POST", "/execute/sync", json!({"script": script, "args": args}))
            .await;
    }

    /// Clicks the first element matching `css`.
    pub async fn click(&self, css: &str) {
        let el = self.find(css).await;
        self.checked("POST", &format!("/element/{el}/click"), json!({})).await;
    }

    /// Clears the field matching `css` and types `text` into it.
    pub async fn fill(&self, css: &str, text: &str) {
        let el = self.find(css).await;
        self.checked("POST", &format!("/element/{el}/clear"), json!({})).await;
        self.checked("POST", &format!("/element/{el}/value"), json!({"text": text}))
            .await;
    }

    /// Whether a JavaScript alert is open (a script injected into the page would open one).
    pub async fn alert_open(&self) -> bool {
        self.call("GET", "/alert/text", json!({})).await.get("error").is_none()
    }

    /// A PNG of the window, written to `dir/name.png` when `dir` is given.
    pub async fn screenshot(&self, dir: Option<&std::path::Path>, name: &str) {
        let Some(dir) = dir else { return };
        use base64::Engine;
        let png = self.checked("GET", "/screenshot", json!({})).await;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap())
            .unwrap();
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(format!("{name}.png")), bytes).unwrap();
    }
}

impl Drop for Browser {
    /// Ends the session (chromedriver closes Chromium; killing chromedriver
    /// alone would leave it running), then stops chromedriver.
    fn drop(&mut self) {
        use std::io::{Read, Write};
        let Some(rest) = self.base.strip_prefix("http://") else {
            return;
        };
        if let Some((host, path)) = rest.split_once('/') {
            if let Ok(mut stream) = std::net::TcpStream::connect(host) {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                let request = format!("DELETE /{path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
                let _ = stream.write_all(request.as_bytes());
                let _ = stream.read_to_end(&mut Vec::new());
            }
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
