//! The real server killed (SIGKILL) in the middle of a run and of a burst of reviews: on restart
//! every review it acknowledged is there, and it resumes the run, which ends with exactly the
//! answers of the same run done without interruption.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use common::{culturespa, Db, HttpClient};
use culturespa::pipeline::runner::{ANSWER_CHUNK, PAUSE_AFTER_COMMITS, PAUSE_FILE};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

/// 20 questions × (unaware + 2 cultures × P1): two chunks of answers.
const RUN_FILE: &str = r#"
name = "fault test"
cultures = ["USA", "CHN"]
topics = [0]
questions_per_topic = 20
variants = ["unaware", "p1"]
answer_mode = "scoring"
stages = ["answer", "collect"]
"#;
const ANSWERS: usize = 20 * 3;
const REVIEWS: usize = 20;
const TIMEOUT: Duration = Duration::from_secs(600);
const ANSWERS_SQL: &str = "SELECT question_id || '|' || IFNULL(country_code, '-') || '|' || variant || '|' || \
     IFNULL(parsed_code, '') || '|' || IFNULL(distribution_json, '') FROM answers WHERE run_id = 2 \
     ORDER BY question_id, country_code, variant";
const INSTANCES_SQL: &str = "SELECT question_id || '|' || country_code || '|' || unaware_code || '|' || aware_code \
     FROM instances WHERE run_id = 2 ORDER BY question_id, country_code";

/// The status and the JSON body; a server that is not up (yet, or any more) is a 503.
async fn send(
    client: &HttpClient,
    addr: SocketAddr,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    match common::http_send(client, addr, method, path, body).await {
        Ok((status, bytes)) => (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null)),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, Value::Null),
    }
}

fn serve(data_dir: &Path, addr: SocketAddr, pause_file: Option<&Path>) -> Child {
    let mut command = culturespa(data_dir);
    command.args(["serve", "--addr", &addr.to_string(), "--static-dir", "no-frontend"]).stderr(Stdio::null());
    if let Some(file) = pause_file {
        command.env(PAUSE_AFTER_COMMITS, "1").env(PAUSE_FILE, file);
    }
    command.spawn().unwrap()
}

/// The test's HTTP calls, on a runtime of its own (the database checks open their own too).
struct Http {
    runtime: tokio::runtime::Runtime,
    client: HttpClient,
    addr: SocketAddr,
}

impl Http {
    fn new(addr: SocketAddr) -> Http {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let client = {
            let _entered = runtime.enter();
            Client::builder(TokioExecutor::new()).build_http()
        };
        Http { runtime, client, addr }
    }

    fn call(&self, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        self.runtime.block_on(send(&self.client, self.addr, method, path, body))
    }

    fn wait_until_up(&self) {
        let started = Instant::now();
        while self.call(Method::GET, "/api/health", None).0 != StatusCode::OK {
            assert!(started.elapsed() < TIMEOUT, "the server did not come up");
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

fn free_address() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

#[test]
fn a_killed_server_keeps_acknowledged_reviews_and_resumes_its_run_to_the_same_answers() {
    let work = tempfile::tempdir().unwrap();
    // The same run, never interrupted, from the command line.
    let run_file = work.path().join("run.toml");
    std::fs::write(&run_file, RUN_FILE).unwrap();
    let whole = work.path().join("whole");
    let status = culturespa(&whole).args(["run", "--config"]).arg(&run_file).stderr(Stdio::null()).status().unwrap();
    assert!(status.success());
    let whole_db = Db::of(&whole);
    assert_eq!(whole_db.count("SELECT CAST(COUNT(*) AS TEXT) FROM answers WHERE run_id = 2"), ANSWERS);

    // The server: the run through the API, paused after its first stored chunk.
    let killed = work.path().join("killed");
    let addr = free_address();
    let pause_file = work.path().join("paused");
    let mut server = serve(&killed, addr, Some(&pause_file));
    let http = Http::new(addr);
    http.wait_until_up();
    let config = json!({
        "name": "fault test", "cultures": ["USA", "CHN"], "topics": [0], "questions_per_topic": 20,
        "variants": ["unaware", "p1"], "answer_mode": "scoring", "stages": ["answer", "collect"]
    });
    let (status, run) = http.call(Method::POST, "/api/runs", Some(config));
    assert_eq!(status, StatusCode::CREATED, "{run}");
    assert_eq!(run["run_id"], 2);
    let started = Instant::now();
    while !pause_file.exists() {
        assert!(started.elapsed() < TIMEOUT, "the run did not store its first chunk");
        std::thread::sleep(Duration::from_millis(50));
    }
    // Reviews while the run is paused mid-stage; each acknowledged one must survive the kill.
    let (_, page) = http.call(Method::GET, &format!("/api/instances?run=1&limit={REVIEWS}"), None);
    let mut acknowledged = 0;
    for item in page["items"].as_array().unwrap() {
        let path = format!("/api/instances/{}/reviews", item["instance_id"]);
        let body = json!({"decision": "accept", "reviewer": "ann"});
        if http.call(Method::POST, &path, Some(body)).0 == StatusCode::CREATED {
            acknowledged += 1;
        }
    }
    assert_eq!(acknowledged, REVIEWS);
    server.kill().unwrap();
    server.wait().unwrap();
    let killed_db = Db::of(&killed);
    assert_eq!(killed_db.count("SELECT CAST(COUNT(*) AS TEXT) FROM answers WHERE run_id = 2"), ANSWER_CHUNK);
    assert_eq!(killed_db.rows("SELECT status FROM runs WHERE run_id = 2"), ["running"]);

    // Restarted, the server resumes the run by itself.
    let mut server = serve(&killed, addr, None);
    http.wait_until_up();
    let started = Instant::now();
    loop {
        let (_, run) = http.call(Method::GET, "/api/runs/2", None);
        match run["status"].as_str() {
            Some("completed") => break,
            Some("failed" | "cancelled") => panic!("{run}"),
            _ => {}
        }
        assert!(started.elapsed() < TIMEOUT, "the resumed run did not complete");
        std::thread::sleep(Duration::from_millis(200));
    }
    let reviews = killed_db.count("SELECT CAST(COUNT(*) AS TEXT) FROM reviews WHERE reviewer = 'ann'");
    server.kill().unwrap();
    server.wait().unwrap();
    assert_eq!(reviews, REVIEWS, "every acknowledged review is there");
    assert_eq!(killed_db.rows(ANSWERS_SQL), whole_db.rows(ANSWERS_SQL));
    assert_eq!(killed_db.rows(INSTANCES_SQL), whole_db.rows(INSTANCES_SQL));
}
