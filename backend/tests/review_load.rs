//! Reviewers at once against a real server on loopback (a file database, the server's own pool):
//! 50 annotators submit 20 reviews each concurrently; every review is acknowledged and stored,
//! none fails, and several reviewers of one instance are all kept.

mod common;

use common::HttpClient;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Bytes;
use axum::http::{Method, StatusCode};
use culturespa::api::{app, AppState};
use culturespa::server::open_store;
use culturespa::survey::SurveyData;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

const ANNOTATORS: usize = 50;
const REVIEWS_EACH: usize = 20;
/// The instances they share: each annotator reviews 20 consecutive ones, starting at its own.
const INSTANCES: usize = 40;

async fn send(
    client: &HttpClient,
    addr: SocketAddr,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (StatusCode, Bytes) {
    common::http_send(client, addr, method, path, body).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_annotators_reviewing_at_once_are_all_stored() {
    let dir = tempfile::tempdir().unwrap();
    let survey = Arc::new(SurveyData::embedded().unwrap());
    let store = open_store(dir.path(), &survey).await.unwrap();
    let state = AppState::new(survey, store.clone(), None, common::model_source());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app(state)).await });
    let client: HttpClient = Client::builder(TokioExecutor::new()).build_http();

    let (status, body) =
        send(&client, addr, Method::GET, &format!("/api/instances?run=1&limit={INSTANCES}"), None).await;
    assert_eq!(status, StatusCode::OK);
    let page: Value = serde_json::from_slice(&body).unwrap();
    let instance_ids: Vec<i64> =
        page["items"].as_array().unwrap().iter().map(|item| item["instance_id"].as_i64().unwrap()).collect();
    assert_eq!(instance_ids.len(), INSTANCES);
    let instance_ids = Arc::new(instance_ids);

    let failures = common::review_burst(&client, addr, instance_ids.clone(), ANNOTATORS, REVIEWS_EACH).await;
    assert!(
        failures.is_empty(),
        "{} of {} reviews failed: {:?}",
        failures.len(),
        ANNOTATORS * REVIEWS_EACH,
        &failures[..failures.len().min(3)]
    );

    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM reviews").fetch_one(store.pool()).await.unwrap();
    assert_eq!(stored as usize, ANNOTATORS * REVIEWS_EACH);
    // Every reviewer of the first instance kept their review.
    let expected: HashSet<String> = (0..ANNOTATORS)
        .filter(|annotator| (0..REVIEWS_EACH).any(|review| (annotator + review) % INSTANCES == 0))
        .map(|annotator| format!("annotator-{annotator}"))
        .collect();
    let reviewers: Vec<String> =
        sqlx::query_scalar("SELECT reviewer FROM reviews WHERE instance_id = ? AND is_current = 1")
            .bind(instance_ids[0])
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert!(expected.len() > 1);
    assert_eq!(reviewers.into_iter().collect::<HashSet<_>>(), expected);
}
