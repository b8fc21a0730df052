//! A moto server (the real DynamoDB and SQS wire protocols) on a free loopback
//! port, stopped when dropped. `make test` installs it into build/venv. It runs
//! through `moto_server.py`, which answers one DynamoDB request at a time: moto's own
//! server does not apply a conditional write atomically, DynamoDB does.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Moto {
    child: Child,
    pub endpoint: String,
}

/// The Python that has moto installed.
fn python() -> PathBuf {
    if let Ok(path) = std::env::var("KAIROS_MOTO_PYTHON") {
        return PathBuf::from(path);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("build/venv/bin/python")
}

impl Moto {
    pub fn start() -> Moto {
        let python = python();
        assert!(
            python.exists(),
            "no Python with moto at {}: run `make test` (it installs moto into build/venv) or set KAIROS_MOTO_PYTHON",
            python.display()
        );
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/support/moto_server.py");
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let child = Command::new(&python)
            .arg(script)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto server starts");
        let moto = Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "moto server did not listen on port {port} within 30 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        moto
    }

    /// An SDK configuration pointing every client at this server.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        kairos::local::sdk_config(&self.endpoint).await
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
