//! `GET /api/openapi.json`: an OpenAPI 3.1 description that documents every route the router
//! declares under /api, with the shared types as its schemas.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use culturespa::api::{app, AppState};
use culturespa::store::Store;
use culturespa::survey::SurveyData;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

#[tokio::test]
async fn the_openapi_description_documents_every_api_route_and_the_shared_types() {
    let survey = Arc::new(SurveyData::embedded().unwrap());
    let state = AppState::new(survey, Store::in_memory().await.unwrap(), None, common::model_source());
    let request = Request::builder().uri("/api/openapi.json").body(Body::empty()).unwrap();
    let response = app(state).oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "public, as the API's reads are");
    let document: Value = serde_json::from_slice(&response.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert!(document["openapi"].as_str().unwrap().starts_with("3.1"), "{}", document["openapi"]);

    let paths = document["paths"].as_object().unwrap();
    let mut missing = Vec::new();
    for (method, route) in common::declared_routes() {
        if route.starts_with("/v1/") {
            continue; // OpenAI's own API, described by OpenAI
        }
        let documented = paths.get(&format!("/api{route}")).and_then(|path| path.get(method.to_lowercase()));
        if documented.is_none() {
            missing.push(format!("{method} /api{route}"));
        }
    }
    assert!(missing.is_empty(), "undocumented: {missing:?}");

    // A request body and a response from the shared types, with what they hold.
    let create = &paths["/api/runs"]["post"];
    assert!(create["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        .as_str()
        .is_some_and(|reference| reference.ends_with("/RunConfig")));
    let schemas = document["components"]["schemas"].as_object().unwrap();
    let run_config = &schemas["RunConfig"]["properties"];
    for field in ["cultures", "variants", "stages", "engine", "device"] {
        assert!(run_config.get(field).is_some(), "RunConfig.{field}");
    }
    assert!(schemas.contains_key("RemoteEngineConfig") && schemas.contains_key("ErrorBody"));
    // Errors are described once: a request's fault answers with an ErrorBody.
    let error = &create["responses"]["4XX"];
    assert!(
        error["content"]["application/json"]["schema"]["$ref"]
            .as_str()
            .is_some_and(|reference| reference.ends_with("/ErrorBody")),
        "{error}"
    );
    // Path parameters are named as in the routes.
    let detail = &paths["/api/runs/{run_id}"]["get"]["parameters"][0];
    assert_eq!((detail["name"].as_str(), detail["in"].as_str()), (Some("run_id"), Some("path")));
}
