//! The route × role matrix: every route of the API (read from the router's source, so a route
//! without a row fails), for open mode, no login, an annotator, a collaborator and an admin,
//! passes or refuses the viewer as its row says; a collaborator's personal API token is let in
//! exactly where the collaborator's session is.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Body;
use axum::http::header::{HeaderName, AUTHORIZATION, COOKIE, SET_COOKIE};
use axum::http::{Method, Request, StatusCode};
use culturespa::api::{app, AppState};
use culturespa::auth::hash_password;
use culturespa::server::open_store;
use culturespa::survey::SurveyData;
use serde_json::{json, Value};
use shared::auth::Role;
use tower::ServiceExt;

mod common;

/// Who may use a route.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Policy {
    /// Anyone, logged in or not.
    Public,
    /// Any account (and anyone in open mode).
    Annotator,
    /// Collaborators and admins (and anyone in open mode).
    Collaborator,
    /// Any account; open mode has none (400).
    Account,
    /// Admins; open mode has none (400).
    Admin,
}

/// `(method, route as the router writes it, a request of it, body, policy)`.
fn matrix(instance_id: i64) -> Vec<(Method, &'static str, String, Option<Value>, Policy)> {
    use Policy::*;
    let get = |route: &'static str, uri: &str, policy| (Method::GET, route, uri.to_string(), None, policy);
    vec![
        get("/health", "/api/health", Public),
        get("/cultures", "/api/cultures", Public),
        get("/cultures/{country_code}", "/api/cultures/USA", Public),
        get("/topics", "/api/topics", Public),
        get("/topics/{topic}", "/api/topics/0", Public),
        get("/questions", "/api/questions", Public),
        get("/questions/{question_id}", "/api/questions/Q1", Public),
        get("/questions/{question_id}/answers", "/api/questions/Q1/answers?run=1", Public),
        get("/models", "/api/models", Public),
        get("/engines", "/api/engines", Collaborator),
        get("/openapi.json", "/api/openapi.json", Public),
        get("/runs", "/api/runs", Public),
        // Valid JSON that the validator refuses: past the role check, nothing is launched.
        (
            Method::POST,
            "/runs",
            "/api/runs".into(),
            Some(json!({"name": "", "questions_per_topic": 1, "stages": ["answer"]})),
            Collaborator,
        ),
        get("/runs/{run_id}", "/api/runs/1", Public),
        get("/runs/{run_id}/events", "/api/runs/1/events", Public),
        get("/runs/{run_id}/stream", "/api/runs/1/stream", Public),
        (Method::POST, "/runs/{run_id}/cancel", "/api/runs/1/cancel".into(), None, Collaborator),
        (Method::POST, "/runs/{run_id}/resume", "/api/runs/1/resume".into(), None, Collaborator),
        get("/me", "/api/me", Public),
        (Method::POST, "/login", "/api/login".into(), Some(json!({"username": "nobody", "password": "x"})), Public),
        get("/instances", "/api/instances?run=1", Public),
        get("/instances/download", "/api/instances/download?run=1", Public),
        get("/instances/{instance_id}", &format!("/api/instances/{instance_id}"), Public),
        (
            Method::POST,
            "/instances/{instance_id}/reviews",
            format!("/api/instances/{instance_id}/reviews"),
            Some(json!({"decision": "accept", "reviewer": "someone"})),
            Annotator,
        ),
        get("/reviews", "/api/reviews?run=1", Annotator),
        (Method::DELETE, "/reviews/{review_id}", "/api/reviews/999999?reviewer=someone".into(), None, Annotator),
        get("/runs/{run_id}/review-settings", "/api/runs/1/review-settings", Public),
        (
            Method::PUT,
            "/runs/{run_id}/review-settings",
            "/api/runs/1/review-settings".into(),
            Some(json!({"reviewers_per_instance": 1})),
            Collaborator,
        ),
        get("/runs/{run_id}/agreement", "/api/runs/1/agreement", Collaborator),
        get("/runs/{run_id}/export", "/api/runs/1/export", Collaborator),
        get("/runs/{run_id}/reviews/export", "/api/runs/1/reviews/export?format=csv", Collaborator),
        get("/runs/{run_id}/adapters", "/api/runs/1/adapters", Public),
        get("/runs/{run_id}/adapters/{name}/download", "/api/runs/1/adapters/joint/download", Public),
        get("/scores", "/api/scores?run=1", Public),
        get("/scores/released", "/api/scores/released", Public),
        get("/persona-meter", "/api/persona-meter?run=1&variant=P1", Public),
        get("/relations", "/api/relations?source=human", Public),
        get("/culture-map", "/api/culture-map", Public),
        get("/tokens", "/api/tokens", Account),
        (Method::POST, "/tokens", "/api/tokens".into(), Some(json!({"name": "matrix"})), Account),
        (Method::DELETE, "/tokens/{token_id}", "/api/tokens/999999".into(), None, Account),
        get("/users", "/api/users", Admin),
        // An invalid username: past the role check, nothing is added.
        (
            Method::POST,
            "/users",
            "/api/users".into(),
            Some(json!({"username": "", "password": "x", "role": "annotator"})),
            Admin,
        ),
        (Method::PUT, "/users/{username}", "/api/users/nobody".into(), Some(json!({"role": "annotator"})), Admin),
        (Method::DELETE, "/users/{username}", "/api/users/nobody".into(), None, Admin),
        (Method::POST, "/users/{username}/revoke", "/api/users/nobody/revoke".into(), None, Admin),
        // The OpenAI-compatible endpoint: accounts only, never the public (nor open mode). An
        // unknown model: past the role check, nothing is generated.
        (
            Method::POST,
            "/v1/chat/completions",
            "/v1/chat/completions".into(),
            Some(json!({"model": "nope", "messages": [{"role": "user", "content": "hi"}]})),
            Account,
        ),
        (Method::GET, "/v1/models", "/v1/models".into(), None, Account),
        // Last: it ends the session it is sent with.
        (Method::POST, "/logout", "/api/logout".into(), None, Public),
    ]
}

async fn status(
    state: &AppState,
    method: &Method,
    uri: &str,
    body: &Option<Value>,
    credential: Option<(HeaderName, &str)>,
) -> StatusCode {
    let mut request = Request::builder().method(method.clone()).uri(uri).header("content-type", "application/json");
    if let Some((name, value)) = credential {
        request = request.header(name, value);
    }
    let body = body.as_ref().map_or_else(Body::empty, |body| Body::from(body.to_string()));
    // Only the status: a stream's body may go on.
    app(state.clone()).oneshot(request.body(body).unwrap()).await.unwrap().status()
}

async fn state() -> (AppState, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let survey = Arc::new(SurveyData::embedded().unwrap());
    let store = open_store(dir.path(), &survey).await.unwrap();
    (AppState::new(survey, store, None, common::model_source()), dir)
}

async fn login(state: &AppState, username: &str, role: Role) -> String {
    let password = format!("{username}-password");
    state.store.add_user(username, &hash_password(&password).unwrap(), role).await.unwrap();
    let body = json!({"username": username, "password": password});
    let request = Request::builder().method(Method::POST).uri("/api/login").header("content-type", "application/json");
    let response = app(state.clone()).oneshot(request.body(Body::from(body.to_string())).unwrap()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.headers()[SET_COOKIE].to_str().unwrap().split(';').next().unwrap().to_string()
}

/// A personal API token of the session's user, made through the API.
async fn api_token(state: &AppState, cookie: &str) -> String {
    use http_body_util::BodyExt;
    let request = Request::builder()
        .method(Method::POST)
        .uri("/api/tokens")
        .header("content-type", "application/json")
        .header(COOKIE, cookie)
        .body(Body::from(json!({"name": "matrix script"}).to_string()))
        .unwrap();
    let response = app(state.clone()).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let created: Value = serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    created["secret"].as_str().unwrap().to_string()
}

async fn first_instance_id(state: &AppState) -> i64 {
    use http_body_util::BodyExt;
    let request = Request::builder().uri("/api/instances?run=1&limit=1").body(Body::empty()).unwrap();
    let response = app(state.clone()).oneshot(request).await.unwrap();
    let page: Value = serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    page["items"][0]["instance_id"].as_i64().unwrap_or_else(|| panic!("{page}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_lets_in_the_roles_of_its_row_and_no_others() {
    let (open_state, _open_dir) = state().await;
    let (state, _dir) = state().await;
    let annotator = login(&state, "ann", Role::Annotator).await;
    let collaborator = login(&state, "cy", Role::Collaborator).await;
    let admin = login(&state, "ada", Role::Admin).await;
    let instance_id = first_instance_id(&state).await;
    let token = api_token(&state, &collaborator).await;

    let rows = matrix(instance_id);
    let covered: BTreeSet<(String, String)> =
        rows.iter().map(|(method, route, ..)| (method.to_string(), route.to_string())).collect();
    assert_eq!(covered, common::declared_routes(), "each route of the router has exactly one row");

    let refused = |status: StatusCode| matches!(status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN);
    let mut wrong = Vec::new();
    for (method, route, uri, body, policy) in &rows {
        let open = status(&open_state, method, uri, body, None).await;
        let anonymous = status(&state, method, uri, body, None).await;
        let as_annotator = status(&state, method, uri, body, Some((COOKIE, &annotator))).await;
        let as_collaborator = status(&state, method, uri, body, Some((COOKIE, &collaborator))).await;
        let as_admin = status(&state, method, uri, body, Some((COOKIE, &admin))).await;
        let with_token = status(&state, method, uri, body, Some((AUTHORIZATION, &format!("Bearer {token}")))).await;
        // Login with wrong credentials is a 401 where accounts exist (the credentials, not the
        // role), and a 400 in open mode (there is nothing to log in to).
        let login_row = *route == "/login";
        let expected = match policy {
            Policy::Public => [false, false, false, false, false],
            Policy::Annotator => [false, true, false, false, false],
            Policy::Collaborator => [false, true, true, false, false],
            Policy::Account => [false, true, false, false, false],
            Policy::Admin => [false, true, true, true, false],
        };
        if matches!(policy, Policy::Account | Policy::Admin) {
            assert_eq!(open, StatusCode::BAD_REQUEST, "{method} {route}: open mode has no accounts");
        }
        if refused(with_token) != refused(as_collaborator) {
            wrong.push(format!(
                "{method} {route}: the collaborator's token got {with_token}, its session {as_collaborator}"
            ));
        }
        let got = [open, anonymous, as_annotator, as_collaborator, as_admin];
        let outcome: Vec<bool> = got.iter().map(|status| refused(*status)).collect();
        let expected_outcome = if login_row { vec![false, true, true, true, true] } else { expected.to_vec() };
        if outcome != expected_outcome {
            wrong
                .push(format!("{method} {route}: open/anonymous/annotator/collaborator/admin got {got:?}, {policy:?}"));
        }
        if matches!(policy, Policy::Annotator | Policy::Collaborator) && !login_row {
            assert_eq!(anonymous, StatusCode::UNAUTHORIZED, "{method} {route}");
        }
        if matches!(policy, Policy::Collaborator | Policy::Admin) {
            assert_eq!(as_annotator, StatusCode::FORBIDDEN, "{method} {route}");
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
