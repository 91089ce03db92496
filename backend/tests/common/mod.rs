//! What the backend's tests that run the real default model share: its path, the `culturespa`
//! binary pointed at a data folder, and read-only queries of that folder's database.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// `<repo>/models/SmolLM2-135M-Instruct.Q4_1.gguf`; fails the test, saying how to get it, when missing.
pub fn model() -> PathBuf {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/SmolLM2-135M-Instruct.Q4_1.gguf");
    assert!(model.is_file(), "{} is missing: run scripts/fetch-model.sh", model.display());
    model
}

/// The models of the repository's models/ folder, the default model by its catalogue name.
pub fn model_source() -> culturespa::models::ModelSource {
    model();
    culturespa::models::ModelSource::new(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../models"),
        culturespa::server::DEFAULT_MODEL,
    )
    .expect("the model catalogue")
}

/// The `culturespa` binary with its data folder and the default model.
pub fn culturespa(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_culturespa"));
    command.env("CULTURESPA_DATA_DIR", data_dir).env("CULTURESPA_MODEL", model()).env("RUST_LOG", "warn");
    command
}

/// Runs `command` with the runner's pause hook at its `after_commits`-th commit of stored work,
/// waits until it is paused there and kills it: the kill falls at that stored-progress point
/// however fast or slow the engine is. Fails when the command ends first or takes `timeout`.
pub fn kill_at_commit(mut command: Command, after_commits: u64, pause_dir: &Path, timeout: std::time::Duration) {
    command.stderr(std::process::Stdio::null());
    let (mut child, _) = spawn_paused_at_commit(command, after_commits, pause_dir, timeout);
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Spawns `command` with the pause hook at its `after_commits`-th commit and returns once it is
/// paused there, with the pause file: removing the file lets it go on. Fails when the command
/// ends first or takes `timeout`.
pub fn spawn_paused_at_commit(
    mut command: Command,
    after_commits: u64,
    pause_dir: &Path,
    timeout: std::time::Duration,
) -> (std::process::Child, PathBuf) {
    use culturespa::pipeline::runner::{PAUSE_AFTER_COMMITS, PAUSE_FILE};
    let file = pause_dir.join(format!("paused-at-{after_commits}"));
    let mut child = command.env(PAUSE_AFTER_COMMITS, after_commits.to_string()).env(PAUSE_FILE, &file).spawn().unwrap();
    let started = std::time::Instant::now();
    while !file.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the command ended ({status}) before its commit {after_commits}");
        }
        assert!(started.elapsed() < timeout, "commit {after_commits} was not reached in {timeout:?}");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    (child, file)
}

/// Reads a run's database the way the server does, through sqlx, read-only.
pub struct Db(PathBuf);

impl Db {
    pub fn of(data_dir: &Path) -> Db {
        Db(data_dir.join("culturespa.db"))
    }

    /// The query's rows, each row's single text column.
    pub fn try_rows(&self, sql: &'static str) -> Result<Vec<String>, sqlx::Error> {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let url = format!("sqlite://{}?mode=ro", self.0.display());
            let pool = sqlx::SqlitePool::connect(&url).await?;
            let rows = sqlx::query_scalar(sql).fetch_all(&pool).await;
            pool.close().await;
            rows
        })
    }

    pub fn rows(&self, sql: &'static str) -> Vec<String> {
        self.try_rows(sql).unwrap()
    }

    /// A count; 0 while the database or its tables do not exist yet.
    pub fn count(&self, sql: &'static str) -> usize {
        self.try_rows(sql).ok().and_then(|rows| rows.first()?.parse().ok()).unwrap_or(0)
    }
}

/// A documented figure from `data/reference_values.json`: `(value, precision)`.
#[allow(dead_code)]
pub fn reference_value(name: &str) -> (f64, f64) {
    let text = include_str!("../../../data/reference_values.json");
    let values: serde_json::Value = serde_json::from_str(text).expect("data/reference_values.json is JSON");
    let entry = &values[name];
    let number =
        |field: &str| entry[field].as_f64().unwrap_or_else(|| panic!("{name}.{field} in reference_values.json"));
    (number("value"), number("precision"))
}

/// Asserts `actual` rounds to the documented figure `name` at its precision.
#[allow(dead_code)]
pub fn assert_reference(name: &str, actual: f64) {
    let (value, precision) = reference_value(name);
    let rounded = (actual / precision).round() * precision;
    assert!((rounded - value).abs() < precision / 2.0, "{name}: {actual} rounds to {rounded}, documented {value}");
}

/// An HTTP/1 client for tests against a server on loopback.
pub type HttpClient = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    http_body_util::Full<axum::body::Bytes>,
>;

/// Sends `method path` with a JSON body (or none) to `addr`; the status and the body's bytes.
pub async fn http_send(
    client: &HttpClient,
    addr: std::net::SocketAddr,
    method: axum::http::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<(axum::http::StatusCode, axum::body::Bytes), hyper_util::client::legacy::Error> {
    use http_body_util::BodyExt;
    let body = body.map(|body| axum::body::Bytes::from(body.to_string())).unwrap_or_default();
    let request = axum::http::Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
        .header("content-type", "application/json")
        .body(http_body_util::Full::new(body))
        .expect("a valid request");
    let response = client.request(request).await?;
    let status = response.status();
    let bytes = response.into_body().collect().await.map(|body| body.to_bytes()).unwrap_or_default();
    Ok((status, bytes))
}

/// `annotators` open-mode reviewers at once against the server at `addr`, each submitting
/// `reviews_each` reviews, annotator `a`'s `r`-th on `instance_ids[(a + r) % len]`, accepting and
/// rejecting in turn. Returns the failed ones as `"STATUS: body"`.
pub async fn review_burst(
    client: &HttpClient,
    addr: std::net::SocketAddr,
    instance_ids: std::sync::Arc<Vec<i64>>,
    annotators: usize,
    reviews_each: usize,
) -> Vec<String> {
    let mut tasks = tokio::task::JoinSet::new();
    for annotator in 0..annotators {
        let (client, instance_ids) = (client.clone(), std::sync::Arc::clone(&instance_ids));
        tasks.spawn(async move {
            let mut failures = Vec::new();
            for review in 0..reviews_each {
                let instance_id = instance_ids[(annotator + review) % instance_ids.len()];
                let decision = if review % 2 == 0 { "accept" } else { "reject" };
                let body = serde_json::json!({"decision": decision, "reviewer": format!("annotator-{annotator}")});
                let path = format!("/api/instances/{instance_id}/reviews");
                let (status, reply) = http_send(&client, addr, axum::http::Method::POST, &path, Some(body))
                    .await
                    .expect("the server answers");
                if !status.is_success() {
                    failures.push(format!("{status}: {}", String::from_utf8_lossy(&reply)));
                }
            }
            failures
        });
    }
    let mut failures = Vec::new();
    while let Some(outcome) = tasks.join_next().await {
        failures.extend(outcome.expect("an annotator task"));
    }
    failures
}

/// The routes the router declares: `(method, path)` of every `.route(...)` in api/mod.rs, and of
/// the OpenAI-compatible endpoint's (under `/v1`), however rustfmt lays the calls out.
pub fn declared_routes() -> std::collections::BTreeSet<(String, String)> {
    let sources = [("", include_str!("../../src/api/mod.rs")), ("/v1", include_str!("../../src/api/openai/mod.rs"))];
    let mut routes = std::collections::BTreeSet::new();
    for (prefix, source) in sources {
        for call in source.split(".route(\"").skip(1) {
            let raw_path = call.split('"').next().unwrap();
            // The handlers: up to the end of this `.route(...)` call's arguments.
            let rest = &call[raw_path.len()..];
            let end = [".route(", ".fallback(", ".layer(", ";"].iter().filter_map(|stop| rest.find(stop)).min();
            let handlers = &rest[..end.unwrap_or(rest.len())];
            let path = format!("{prefix}{raw_path}");
            for method in ["get", "post", "put", "delete", "patch"] {
                let called = handlers.match_indices(&format!("{method}(")).any(|(at, _)| {
                    at == 0
                        || !handlers.as_bytes()[at - 1].is_ascii_alphanumeric() && handlers.as_bytes()[at - 1] != b'_'
                });
                if called {
                    routes.insert((method.to_uppercase(), path.clone()));
                }
            }
        }
    }
    routes
}
