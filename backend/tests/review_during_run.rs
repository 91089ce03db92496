//! Reviews while a run writes: a real server on loopback executes a run (its answers stored in
//! chunks, each commit made to wait a while so that the run is writing for seconds), and 20
//! annotators × 10 reviews start after its first chunk is stored. Every review is acknowledged and
//! stored, and the run completes with all its answers.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{Method, StatusCode};
use common::HttpClient;
use culturespa::api::{app, AppState};
use culturespa::pipeline::runner::{ANSWER_CHUNK, SLOW_COMMITS_MS};
use culturespa::server::open_store;
use culturespa::survey::SurveyData;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use shared::RunStatus;

const ANNOTATORS: usize = 20;
const REVIEWS_EACH: usize = 10;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reviews_while_a_run_writes_are_all_stored_and_the_run_completes() {
    // SAFETY: set before this test binary's only test starts any other thread that reads the
    // environment. Each commit of the run's answers waits 1.5 s first.
    unsafe { std::env::set_var(SLOW_COMMITS_MS, "1500") };
    let dir = tempfile::tempdir().unwrap();
    let survey = Arc::new(SurveyData::embedded().unwrap());
    let store = open_store(dir.path(), &survey).await.unwrap();
    let state = AppState::new(survey, store.clone(), None, common::model_source());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app(state)).await });
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();

    // 4 questions × (unaware + 18 cultures) = 76 answers: three chunks of at most 32.
    let config = json!({
        "name": "writing", "topics": [3], "questions_per_topic": 4, "variants": ["unaware", "p1"],
        "answer_mode": "scoring", "stages": ["answer"]
    });
    let (status, body) = common::http_send(&client, addr, Method::POST, "/api/runs", Some(config)).await.unwrap();
    assert_eq!(status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&body));
    let run_id = serde_json::from_slice::<Value>(&body).unwrap()["run_id"].as_i64().unwrap();

    // The burst starts once the first chunk is stored: two more commits are to come.
    let started = Instant::now();
    while store.answer_counts(run_id).await.unwrap().0 < ANSWER_CHUNK as u64 {
        assert!(started.elapsed() < Duration::from_secs(300), "the run stored no chunk");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (_, body) = common::http_send(&client, addr, Method::GET, "/api/instances?run=1&limit=30", None).await.unwrap();
    let instance_ids: Arc<Vec<i64>> = Arc::new(
        serde_json::from_slice::<Value>(&body).unwrap()["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|item| item["instance_id"].as_i64().unwrap())
            .collect(),
    );
    let failures = common::review_burst(&client, addr, instance_ids, ANNOTATORS, REVIEWS_EACH).await;
    assert!(failures.is_empty(), "{} reviews failed: {:?}", failures.len(), &failures[..failures.len().min(3)]);
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM reviews").fetch_one(store.pool()).await.unwrap();
    assert_eq!(stored as usize, ANNOTATORS * REVIEWS_EACH);

    while store.run(run_id).await.unwrap().status != RunStatus::Completed {
        let status = store.run(run_id).await.unwrap().status;
        assert!(!matches!(status, RunStatus::Failed | RunStatus::Cancelled), "{status:?}");
        assert!(started.elapsed() < Duration::from_secs(600), "the run did not complete");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(store.answer_counts(run_id).await.unwrap().0, 76);
}
