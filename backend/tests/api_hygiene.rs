//! What every response carries: the JSON error body for every error (axum's own rejections
//! included) that never shows the internals, security headers, a request body limit.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode};
use culturespa::api::{app, AppState};
use culturespa::server::open_store;
use culturespa::survey::SurveyData;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

async fn state() -> (AppState, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let survey = Arc::new(SurveyData::embedded().unwrap());
    let store = open_store(dir.path(), &survey).await.unwrap();
    (AppState::new(survey, store, None, common::model_source()), dir)
}

async fn call(state: &AppState, method: Method, uri: &str, body: Body) -> (StatusCode, HeaderMap, Vec<u8>) {
    let request = Request::builder().method(method).uri(uri).header("content-type", "application/json");
    let response = app(state.clone()).oneshot(request.body(body).unwrap()).await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    (status, headers, response.into_body().collect().await.unwrap().to_bytes().to_vec())
}

fn error_body(body: &[u8]) -> (String, String) {
    let value: Value = serde_json::from_slice(body)
        .unwrap_or_else(|_| panic!("not a JSON error body: {}", String::from_utf8_lossy(body)));
    (value["error"].as_str().unwrap().to_string(), value["message"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn axum_rejections_come_as_the_json_error_body() {
    let (state, _dir) = state().await;
    let (status, _, body) = call(&state, Method::GET, "/api/instances?limit=lots", Body::empty()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (kind, message) = error_body(&body);
    assert_eq!(kind, "bad_request");
    assert!(message.contains("limit"), "{message}");

    let (status, _, body) = call(&state, Method::GET, "/api/runs/first", Body::empty()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_body(&body).0, "bad_request");

    let (status, _, body) = call(&state, Method::POST, "/api/runs", Body::from("{\"name\": ")).await;
    assert!(status.is_client_error(), "{status}");
    assert_eq!(error_body(&body).0, "bad_request");

    let large = format!("{{\"name\": \"{}\"}}", "x".repeat(2 << 20));
    let (status, _, body) = call(&state, Method::POST, "/api/runs", Body::from(large)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(error_body(&body).0, "too_large");
}

#[tokio::test]
async fn an_internal_error_names_a_request_id_and_not_the_internals() {
    let (state, _dir) = state().await;
    sqlx::query("UPDATE runs SET config_json = '{' WHERE run_id = 1").execute(state.store.pool()).await.unwrap();
    let (status, _, body) = call(&state, Method::GET, "/api/runs/1", Body::empty()).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    let (kind, message) = error_body(&body);
    assert_eq!(kind, "internal");
    assert!(message.starts_with("internal error (request "), "{message}");
    for internal in ["config_json", "parse", "EOF", "database"] {
        assert!(!message.contains(internal), "{message}");
    }
}

#[tokio::test]
async fn every_response_carries_the_security_headers() {
    let (state, _dir) = state().await;
    for uri in ["/api/health", "/api/nope", "/api/runs/first"] {
        let (_, headers, _) = call(&state, Method::GET, uri, Body::empty()).await;
        let header =
            |name: &str| headers.get(name).and_then(|value| value.to_str().ok()).unwrap_or_default().to_string();
        assert_eq!(header("x-content-type-options"), "nosniff", "{uri}");
        assert_eq!(header("x-frame-options"), "DENY", "{uri}");
        assert_eq!(header("referrer-policy"), "same-origin", "{uri}");
        assert!(header("content-security-policy").contains("frame-ancestors 'none'"), "{uri}");
    }
}

#[tokio::test]
async fn the_page_may_run_its_own_inline_loader_and_no_other_inline_script() {
    let dir = tempfile::tempdir().unwrap();
    let dist = dir.path().join("dist");
    std::fs::create_dir(&dist).unwrap();
    std::fs::write(dist.join("index.html"), "<html><head><script type=\"module\">alert(1)</script></head></html>")
        .unwrap();
    let survey = Arc::new(SurveyData::embedded().unwrap());
    let store = open_store(dir.path(), &survey).await.unwrap();
    let state = AppState::new(survey, store, Some(dist), common::model_source());
    for uri in ["/", "/review"] {
        let (status, headers, body) = call(&state, Method::GET, uri, Body::empty()).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert!(String::from_utf8_lossy(&body).contains("alert(1)"));
        let policy = headers["content-security-policy"].to_str().unwrap();
        let scripts = policy.split("; ").find(|directive| directive.starts_with("script-src")).unwrap();
        // sha256("alert(1)"): `printf 'alert(1)' | openssl dgst -sha256 -binary | base64`.
        assert_eq!(
            scripts, "script-src 'self' 'wasm-unsafe-eval' 'sha256-bhHHL3z2vDgxUt0W3dWQOrprscmda2Y5pLsLg4GF+pI='",
            "{uri}"
        );
        assert!(policy.contains("default-src 'self'") && policy.contains("object-src 'none'"), "{policy}");
    }
}

async fn call_with(
    state: &AppState,
    method: Method,
    uri: &str,
    body: Value,
    headers: &[(&str, &str)],
) -> (StatusCode, HeaderMap, Vec<u8>) {
    let mut request = Request::builder().method(method).uri(uri).header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = app(state.clone()).oneshot(request.body(Body::from(body.to_string())).unwrap()).await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    (status, headers, response.into_body().collect().await.unwrap().to_bytes().to_vec())
}

#[tokio::test]
async fn a_browser_request_from_another_site_changes_nothing() {
    let (state, _dir) = state().await;
    let body = serde_json::json!({"name": "", "questions_per_topic": 1, "stages": ["answer"]});
    let foreign = [("origin", "http://evil.example"), ("host", "studio.example:8080")];
    let (status, _, reply) = call_with(&state, Method::POST, "/api/runs", body.clone(), &foreign).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(error_body(&reply).1.contains("evil.example"));
    // Its own pages, and scripts that send no Origin, get to the validator.
    let own = [("origin", "http://studio.example:8080"), ("host", "studio.example:8080")];
    assert_eq!(call_with(&state, Method::POST, "/api/runs", body.clone(), &own).await.0, StatusCode::BAD_REQUEST);
    assert_eq!(call_with(&state, Method::POST, "/api/runs", body, &[]).await.0, StatusCode::BAD_REQUEST);
    // Reads are not held to it.
    let (status, ..) = call_with(&state, Method::GET, "/api/health", Value::Null, &foreign).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn logins_are_rate_limited_per_user_and_cookies_are_secure_behind_https() {
    let (state, _dir) = state().await;
    let hash = culturespa::auth::hash_password("right-password").unwrap();
    state.store.add_user("ann", &hash, shared::auth::Role::Annotator).await.unwrap();
    state.store.add_user("bob", &hash, shared::auth::Role::Annotator).await.unwrap();
    let login = |username: &str, password: &str| serde_json::json!({"username": username, "password": password});

    let (status, headers, _) = call_with(
        &state,
        Method::POST,
        "/api/login",
        login("bob", "right-password"),
        &[("x-forwarded-proto", "https")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(headers["set-cookie"].to_str().unwrap().ends_with("; Secure"));
    let (_, headers, _) = call_with(&state, Method::POST, "/api/login", login("bob", "right-password"), &[]).await;
    assert!(!headers["set-cookie"].to_str().unwrap().contains("Secure"));

    for _ in 0..10 {
        let (status, ..) = call_with(&state, Method::POST, "/api/login", login("ann", "wrong"), &[]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let (status, _, body) = call_with(&state, Method::POST, "/api/login", login("ANN", "right-password"), &[]).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(error_body(&body).0, "too_many_requests");
    let (status, ..) = call_with(&state, Method::POST, "/api/login", login("bob", "right-password"), &[]).await;
    assert_eq!(status, StatusCode::OK, "another user is not held back");
}

#[tokio::test]
async fn a_run_configuration_with_an_unknown_field_is_refused_naming_it() {
    let (state, _dir) = state().await;
    let body = serde_json::json!({"name": "typo", "questions_per_topic": 1, "stages": ["answer"], "culture": ["USA"]});
    let (status, _, reply) = call_with(&state, Method::POST, "/api/runs", body, &[]).await;
    assert!(status.is_client_error(), "{status}");
    let (kind, message) = error_body(&reply);
    assert_eq!(kind, "bad_request");
    assert!(message.contains("unknown field `culture`"), "{message}");
}

#[tokio::test]
async fn behind_a_proxy_the_forwarded_host_is_the_origin_checked() {
    let (state, _dir) = state().await;
    let body = serde_json::json!({"name": "", "questions_per_topic": 1, "stages": ["answer"]});
    let proxied =
        [("origin", "https://studio.example"), ("host", "127.0.0.1:8080"), ("x-forwarded-host", "studio.example")];
    assert_eq!(call_with(&state, Method::POST, "/api/runs", body, &proxied).await.0, StatusCode::BAD_REQUEST);
}
