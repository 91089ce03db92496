//! The harness of the browser tests: the `culturespa` server on a free port with a fresh data
//! directory, chromedriver, and a headless Chromium session (Debian's, never a downloaded one).

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};

const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);
const ELEMENT_TIMEOUT: Duration = Duration::from_secs(20);
const CHROMIUM: &str = "/usr/bin/chromium";
/// The default model, where `scripts/fetch-model.sh` puts it.
const DEFAULT_MODEL: &str = "models/SmolLM2-135M-Instruct.Q4_1.gguf";

/// The workspace root (the parent of this crate).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|listener| listener.local_addr()).map(|addr| addr.port()).unwrap()
}

/// A child process killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn wait_for_port(port: u16, what: &str) {
    let started = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(started.elapsed() < STARTUP_TIMEOUT, "{what} did not listen on port {port} in time");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The `culturespa` binary that `cargo build -p culturespa` put beside this test's target dir.
fn server_binary() -> PathBuf {
    // The test runs as <target>/debug/deps/browser-<hash>; the binary is <target>/debug/culturespa.
    let exe = std::env::current_exe().unwrap();
    let binary = exe.parent().and_then(Path::parent).unwrap().join("culturespa");
    assert!(binary.is_file(), "{} is missing: run `cargo build -p culturespa` first", binary.display());
    binary
}

/// A running app and a browser pointed at it.
pub struct Session {
    pub client: Client,
    pub base_url: String,
    pub data_dir: tempfile::TempDir,
    _server: Process,
    _driver: Process,
}

impl Session {
    pub async fn start() -> Session {
        let root = workspace_root();
        let dist = root.join("dist");
        assert!(dist.join("index.html").is_file(), "no built app in {}: run `trunk build --release`", dist.display());
        let data_dir = tempfile::tempdir().unwrap();
        let server_port = free_port();
        let server = Command::new(server_binary())
            .args(["serve", "--addr", &format!("127.0.0.1:{server_port}")])
            .arg("--data-dir")
            .arg(data_dir.path())
            .arg("--static-dir")
            .arg(&dist)
            .arg("--model")
            .arg(root.join(DEFAULT_MODEL))
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        let server = Process(server);

        let driver_port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={driver_port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver not found: run `scripts/setup.sh --browser`");
        let driver = Process(driver);
        wait_for_port(server_port, "the server").await;
        wait_for_port(driver_port, "chromedriver").await;

        let profile = data_dir.path().join("chromium-profile");
        let capabilities = serde_json::json!({
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    "--no-first-run", "--window-size=1200,1000",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }
        });
        let client = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities.as_object().unwrap().clone())
            .connect(&format!("http://127.0.0.1:{driver_port}"))
            .await
            .unwrap();
        Session {
            client,
            base_url: format!("http://127.0.0.1:{server_port}"),
            data_dir,
            _server: server,
            _driver: driver,
        }
    }

    /// Runs `culturespa ARGS --data-dir DIR` on this session's data (as an operator on the server's
    /// machine would); fails the test when it fails.
    pub fn cli(&self, args: &[&str], envs: &[(&str, &str)]) -> String {
        let output = Command::new(server_binary())
            .args(args)
            .arg("--data-dir")
            .arg(self.data_dir.path())
            .envs(envs.iter().copied())
            .env("RUST_LOG", "warn")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "culturespa {args:?}: {text}");
        text
    }

    pub async fn open(&self, path: &str) {
        self.client.goto(&format!("{}{path}", self.base_url)).await.unwrap();
    }

    /// Waits until at least `count` elements match `css`, and returns their texts.
    pub async fn texts(&self, css: &str, count: usize) -> Vec<String> {
        let started = Instant::now();
        loop {
            let elements = self.client.find_all(Locator::Css(css)).await.unwrap();
            if elements.len() >= count {
                let mut texts = Vec::with_capacity(elements.len());
                for element in elements {
                    texts.push(element.text().await.unwrap());
                }
                return texts;
            }
            assert!(
                started.elapsed() < ELEMENT_TIMEOUT,
                "expected {count} elements matching `{css}`, found {}",
                elements.len()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn close(self) {
        let _ = self.client.close().await;
    }
}
