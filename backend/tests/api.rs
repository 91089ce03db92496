//! The API through `app(state).oneshot(...)`, with no socket.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use culturespa::api::{app, AppState};
use culturespa::server::open_store;
use culturespa::survey::SurveyData;
use http_body_util::BodyExt;
use serde_json::Value;
use shared::api::{ErrorBody, Page};
use shared::{Culture, Question, Topic};
use tower::ServiceExt;

async fn state() -> (AppState, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let survey = Arc::new(SurveyData::embedded().unwrap());
    let store = open_store(dir.path(), &survey).await.unwrap();
    (AppState::new(survey, store, None, models()), dir)
}

async fn get(state: &AppState, uri: &str) -> (StatusCode, Value) {
    let response = app(state.clone()).oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn get_ok<T: serde::de::DeserializeOwned>(state: &AppState, uri: &str) -> T {
    let (status, body) = get(state, uri).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {body}");
    serde_json::from_value(body).unwrap()
}

#[tokio::test]
async fn cultures_lists_the_18_cultures() {
    let (state, _dir) = state().await;
    let page: Page<Culture> = get_ok(&state, "/api/cultures").await;
    assert_eq!(page.total, 18);
    assert_eq!(page.items.len(), 18);
    assert_eq!(page.items[0].country_code, "USA");
    assert_eq!(page.items[0].adjective, "American");
    let paged: Page<Culture> = get_ok(&state, "/api/cultures?limit=5&offset=15").await;
    assert_eq!((paged.total, paged.items.len()), (18, 3));
    let nzl: Culture = get_ok(&state, "/api/cultures/nzl").await;
    assert_eq!(nzl.adjective, "New Zealand");
}

#[tokio::test]
async fn questions_page_through_the_259_kept_questions() {
    let (state, _dir) = state().await;
    let mut seen = Vec::new();
    let mut offset = 0;
    loop {
        let page: Page<Question> = get_ok(&state, &format!("/api/questions?limit=100&offset={offset}")).await;
        assert_eq!(page.total, 259);
        if page.items.is_empty() {
            break;
        }
        offset += page.items.len();
        seen.extend(page.items);
    }
    assert_eq!(seen.len(), 259);
    assert_eq!(seen.iter().find(|q| q.question_id == "Q94").unwrap().options[0].code, 0);

    let topic: Page<Question> = get_ok(&state, "/api/questions?topic=7").await;
    assert_eq!(topic.total, 6);
    assert!(topic.items.iter().all(|q| q.topic == 7));
    let by_name: Page<Question> = get_ok(&state, "/api/questions?topic=Postmaterialist%20Index&limit=2").await;
    assert_eq!((by_name.total, by_name.items.len()), (6, 2));
    let topics: Page<Topic> = get_ok(&state, "/api/topics").await;
    assert_eq!(topics.items.iter().map(|t| t.question_count).sum::<u32>(), 259);
}

#[tokio::test]
async fn a_question_comes_with_its_human_answers() {
    let (state, _dir) = state().await;
    let detail: shared::api::QuestionDetail = get_ok(&state, "/api/questions/Q1").await;
    assert_eq!(detail.question.question_id, "Q1");
    assert_eq!(detail.human.len(), 18);
    assert_eq!(detail.human[0].country_code, "USA");
}

#[tokio::test]
async fn unknown_things_are_404_with_a_json_body_that_names_them() {
    let (state, _dir) = state().await;
    for (uri, named) in [
        ("/api/cultures/XYZ", "culture 'XYZ'"),
        ("/api/topics/13", "topic '13'"),
        ("/api/questions?topic=13", "topic '13'"),
        ("/api/questions?topic=cooking", "topic 'cooking'"),
        ("/api/questions/Q999", "question wvs/Q999"),
        ("/api/runs/7", "run 7"),
        ("/api/instances?culture=XX", "culture 'XX'"),
        ("/api/nothing", "/api/nothing"),
    ] {
        let (status, body) = get(&state, uri).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{uri}");
        let body: ErrorBody = serde_json::from_value(body).unwrap();
        assert_eq!(body.error, "not_found");
        assert!(body.message.contains(named), "{uri}: {}", body.message);
    }
}

#[tokio::test]
async fn bad_paging_is_a_400() {
    let (state, _dir) = state().await;
    let (status, _) = get(&state, "/api/questions?limit=many").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// The repository's models folder and the default model (no test here loads it).
fn models() -> culturespa::models::ModelSource {
    culturespa::models::ModelSource::new(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../models"),
        culturespa::server::DEFAULT_MODEL,
    )
    .unwrap()
}
