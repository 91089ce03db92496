//! Runs through the API: validation, a real small run followed over server-sent events to its end,
//! cancel and resume rules.

mod common;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use culturespa::api::{app, AppState};
use culturespa::runs::RunLock;
use culturespa::server::open_store;
use culturespa::survey::SurveyData;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use shared::{Run, RunEvent, RunStatus};
use tower::ServiceExt;

async fn state() -> (AppState, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let survey = Arc::new(SurveyData::embedded().unwrap());
    let store = open_store(dir.path(), &survey).await.unwrap();
    (AppState::new(survey, store, None, common::model_source()), dir)
}

async fn call(state: &AppState, method: Method, uri: &str, body: Option<Value>) -> (StatusCode, Vec<u8>) {
    let request = Request::builder().method(method).uri(uri).header("content-type", "application/json");
    let body = body.map_or_else(Body::empty, |body| Body::from(body.to_string()));
    let response = app(state.clone()).oneshot(request.body(body).unwrap()).await.unwrap();
    let status = response.status();
    (status, response.into_body().collect().await.unwrap().to_bytes().to_vec())
}

fn small_run(name: &str) -> Value {
    json!({
        "name": name, "cultures": ["USA", "KEN"], "topics": [3], "questions_per_topic": 2,
        "variants": ["unaware", "p1"], "answer_mode": "scoring", "stages": ["answer", "collect"]
    })
}

#[tokio::test]
async fn a_run_is_launched_and_its_stream_replays_every_event_to_the_end() {
    let (state, _dir) = state().await;
    let (status, body) = call(&state, Method::POST, "/api/runs", Some(small_run("api run"))).await;
    assert_eq!(status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&body));
    let run: Run = serde_json::from_slice(&body).unwrap();

    // The stream ends after the run's Finished event.
    let stream_uri = format!("/api/runs/{}/stream", run.run_id);
    let stream = tokio::time::timeout(Duration::from_secs(120), call(&state, Method::GET, &stream_uri, None));
    let Ok((status, body)) = stream.await else {
        let events = state.store.events(run.run_id, 0).await.unwrap();
        panic!("the stream did not end; stored events: {events:?}");
    };
    assert_eq!(status, StatusCode::OK);
    let text = String::from_utf8(body).unwrap();
    let events: Vec<RunEvent> = text
        .lines()
        .filter_map(|line| line.strip_prefix("data: "))
        .map(|data| serde_json::from_value(serde_json::from_str::<Value>(data).unwrap()["event"].clone()).unwrap())
        .collect();
    assert_eq!(events.last(), Some(&RunEvent::Finished { status: RunStatus::Completed }), "{text}");
    // 2 questions × (unaware + 2 cultures).
    assert!(events.contains(&RunEvent::Progress { stage: shared::Stage::Answer, done: 6, total: 6 }), "{events:?}");

    let (_, body) = call(&state, Method::GET, &format!("/api/runs/{}", run.run_id), None).await;
    let stored: Run = serde_json::from_slice(&body).unwrap();
    assert_eq!(stored.status, RunStatus::Completed);
    // A completed run is not resumed, and there is nothing to cancel.
    let (status, _) = call(&state, Method::POST, &format!("/api/runs/{}/resume", run.run_id), None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = call(&state, Method::POST, &format!("/api/runs/{}/cancel", run.run_id), None).await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn a_bad_run_config_is_a_400_that_names_the_field() {
    let (state, _dir) = state().await;
    let mut config = small_run("bad");
    config["cultures"] = json!(["USA", "XYZ"]);
    let (status, body) = call(&state, Method::POST, "/api/runs", Some(config)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("unknown culture 'XYZ'"));

    let mut config = small_run("bad");
    config["stages"] = json!(["train"]);
    let (status, body) = call(&state, Method::POST, "/api/runs", Some(config)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(String::from_utf8_lossy(&body).contains("stages"));

    // A request names an installed model, never a path on the server.
    for model in [common::model().display().to_string(), "../models/SmolLM2-135M-Instruct.Q4_1.gguf".into()] {
        let mut config = small_run("bad");
        config["model"] = json!(model);
        let (status, body) = call(&state, Method::POST, "/api/runs", Some(config)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let message = String::from_utf8_lossy(&body);
        assert!(message.contains("model: ") && message.contains("not an installed model"), "{message}");
    }
    // Nothing was stored but the imported release.
    let (_, body) = call(&state, Method::GET, "/api/runs", None).await;
    assert_eq!(serde_json::from_slice::<Value>(&body).unwrap()["total"], 1);
}

#[tokio::test]
async fn the_models_endpoint_lists_the_catalogue_and_a_run_may_name_an_installed_one() {
    let (state, _dir) = state().await;
    let (status, body) = call(&state, Method::GET, "/api/models", None).await;
    assert_eq!(status, StatusCode::OK);
    let listings: Vec<shared::ModelListing> = serde_json::from_slice(&body).unwrap();
    let names: Vec<&str> = listings.iter().map(|listing| listing.name.as_str()).collect();
    for name in ["smollm2-135m", "qwen2.5-coder-0.5b", "qwen2.5-coder-1.5b"] {
        assert!(names.contains(&name), "{names:?}");
    }
    let default = listings.iter().find(|listing| listing.default).unwrap();
    assert_eq!((default.name.as_str(), default.installed), ("smollm2-135m", true));
    let mut config = small_run("named model");
    config["model"] = json!("smollm2-135m");
    config["stages"] = json!(["answer"]);
    let (status, body) = call(&state, Method::POST, "/api/runs", Some(config)).await;
    assert_eq!(status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&body));
    let run: shared::Run = serde_json::from_slice(&body).unwrap();
    assert_eq!(run.config.model.as_deref(), Some("smollm2-135m"));
    // Stop it if it is still queued (not asserted: it may have ended already).
    let _ = state.runs.cancel(run.run_id).await;
}

#[tokio::test]
async fn culture_codes_in_a_request_are_read_as_a_run_file_reads_them() {
    let (state, _dir) = state().await;
    let mut config = small_run("lower case");
    config["cultures"] = json!(["usa", "ken"]);
    config["stages"] = json!(["answer"]);
    let (status, body) = call(&state, Method::POST, "/api/runs", Some(config)).await;
    assert_eq!(status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&body));
    let run: shared::Run = serde_json::from_slice(&body).unwrap();
    assert_eq!(run.config.cultures, ["USA", "KEN"]);
    // Stop it if it is still queued (not asserted: it may have ended already).
    let _ = state.runs.cancel(run.run_id).await;
}

#[tokio::test]
async fn the_imported_release_cannot_be_resumed() {
    let (state, _dir) = state().await;
    let (status, body) = call(&state, Method::POST, "/api/runs/1/resume", None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{}", String::from_utf8_lossy(&body));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_left_in_flight_by_a_dead_server_are_resumed_at_start_and_complete() {
    let (state, dir) = state().await;
    let mut config: shared::RunConfig = serde_json::from_value(small_run("left running")).unwrap();
    config.cultures = vec!["USA".into()];
    config.questions_per_topic = 1;
    config.stages = vec![shared::Stage::Answer];
    let run = state.store.create_run(&config, &shared::RunOrigin::Local).await.unwrap();
    // The server died in the run's Answer stage: the stage started, nothing finished.
    let started = RunEvent::StageStarted { stage: shared::Stage::Answer, total: 2 };
    state.store.append_event(run.run_id, &started).await.unwrap();
    assert_eq!(state.store.run(run.run_id).await.unwrap().status, RunStatus::Running);

    // While another process executes it (a `culturespa run` holds its lock), a starting server
    // leaves it alone and a resume request is refused.
    let other_process = RunLock::try_acquire(Some(dir.path()), run.run_id).unwrap().unwrap();
    assert!(state.runs.resume_interrupted().await.unwrap().is_empty());
    let (status, body) = call(&state, Method::POST, &format!("/api/runs/{}/resume", run.run_id), None).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(String::from_utf8_lossy(&body).contains("being executed by another process"));
    drop(other_process);

    // At start: the imported release (completed) is left alone, the run is queued again.
    assert_eq!(state.runs.resume_interrupted().await.unwrap(), [run.run_id]);
    let deadline = std::time::Instant::now() + Duration::from_secs(300);
    loop {
        match state.store.run(run.run_id).await.unwrap().status {
            RunStatus::Completed => break,
            RunStatus::Failed | RunStatus::Cancelled => panic!("{:?}", state.store.events(run.run_id, 0).await),
            _ => {}
        }
        assert!(std::time::Instant::now() < deadline, "the resumed run did not complete");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let events = state.store.events(run.run_id, 0).await.unwrap();
    let told = events.iter().any(|(_, event)| {
        matches!(event, RunEvent::Log { message } if message.starts_with("the server stopped while this run was in flight"))
    });
    assert!(told, "{events:?}");
    assert_eq!(state.store.answer_counts(run.run_id).await.unwrap().0, 2, "1 question × (unaware + USA)");
}

#[tokio::test]
async fn a_request_names_adapters_this_server_trained_and_learns_nothing_of_other_paths() {
    let (state, dir) = state().await;
    let adapter = dir.path().join("runs/7/adapters/joint");
    std::fs::create_dir_all(&adapter).unwrap();
    std::fs::write(adapter.join("adapter_config.json"), "{}").unwrap();
    std::fs::create_dir_all(dir.path().join("runs/8/adapters")).unwrap();
    std::os::unix::fs::symlink("/etc", dir.path().join("runs/8/adapters/escape")).unwrap();
    let mut refusals = Vec::new();
    for path in [
        "/etc",
        "../runs/7/adapters/joint",
        "runs/7/adapters/../../../..",
        "runs/8/adapters/escape",
        "runs/7/adapters/nope",
        "runs/7",
    ] {
        let mut config = small_run("adapter");
        config["stages"] = json!(["answer"]);
        config["adapter"] = json!({"path": path, "merged": true});
        let (status, body) = call(&state, Method::POST, "/api/runs", Some(config)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}");
        refusals.push(serde_json::from_slice::<Value>(&body).unwrap()["message"].clone());
    }
    assert!(refusals.windows(2).all(|pair| pair[0] == pair[1]), "the same answer for every path: {refusals:?}");
    assert!(refusals[0].as_str().unwrap().starts_with("adapter.path: not an adapter this server trained"));

    let mut config = small_run("adapter");
    config["stages"] = json!(["answer"]);
    config["adapter"] = json!({"path": "runs/7/adapters/joint", "merged": true});
    let (status, body) = call(&state, Method::POST, "/api/runs", Some(config)).await;
    assert_eq!(status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&body));
    let run: Run = serde_json::from_slice(&body).unwrap();
    // The run keeps the resolved folder; the API shows it relative to the data folder, so the
    // public does not learn where the server keeps its files.
    let stored = state.store.run(run.run_id).await.unwrap().config.adapter.unwrap().path;
    assert_eq!(std::path::Path::new(&stored), adapter.canonicalize().unwrap());
    assert_eq!(run.config.adapter.unwrap().path, "runs/7/adapters/joint");
    let (_, body) = call(&state, Method::GET, &format!("/api/runs/{}", run.run_id), None).await;
    let shown: Run = serde_json::from_slice(&body).unwrap();
    assert_eq!(shown.config.adapter.unwrap().path, "runs/7/adapters/joint");
    let data_dir = dir.path().canonicalize().unwrap().display().to_string();
    let (_, body) = call(&state, Method::GET, "/api/runs", None).await;
    assert!(!String::from_utf8_lossy(&body).contains(&data_dir), "{}", String::from_utf8_lossy(&body));
    // A run of the command line that named its model by a path shows the file's name.
    let mut by_path: shared::RunConfig = serde_json::from_value(small_run("by path")).unwrap();
    by_path.model = Some(common::model().display().to_string());
    let cli_run = state.store.create_run(&by_path, &shared::RunOrigin::Local).await.unwrap();
    let (_, body) = call(&state, Method::GET, &format!("/api/runs/{}", cli_run.run_id), None).await;
    let shown: Run = serde_json::from_slice(&body).unwrap();
    assert_eq!(shown.config.model.as_deref(), Some("SmolLM2-135M-Instruct.Q4_1.gguf"));
    // Stop it if it is still queued (not asserted: it may have ended already).
    let _ = state.runs.cancel(run.run_id).await;
}

#[tokio::test]
async fn event_streams_are_capped_and_a_closed_one_frees_its_place() {
    let (state, _dir) = state().await;
    let state = state.with_event_stream_limit(2);
    // A stored run that is not launched: its stream stays open (no Finished event).
    let config: shared::RunConfig = serde_json::from_value(small_run("followed")).unwrap();
    let run = state.runs.create_from_request(config).await.unwrap();
    let uri = format!("/api/runs/{}/stream", run.run_id);
    let open = |state: AppState, uri: String| async move {
        let request = Request::builder().uri(uri).body(Body::empty()).unwrap();
        app(state).oneshot(request).await.unwrap()
    };
    let first = open(state.clone(), uri.clone()).await;
    let second = open(state.clone(), uri.clone()).await;
    assert_eq!((first.status(), second.status()), (StatusCode::OK, StatusCode::OK));
    let refused = open(state.clone(), uri.clone()).await;
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    let body: Value = serde_json::from_slice(&refused.into_body().collect().await.unwrap().to_bytes()).unwrap();
    assert!(body["message"].as_str().unwrap().contains("2 event streams are open"), "{body}");
    // Other requests are not affected.
    assert_eq!(call(&state, Method::GET, &format!("/api/runs/{}/events", run.run_id), None).await.0, StatusCode::OK);
    // The client of the first goes away: its place is free.
    drop(first);
    assert_eq!(open(state.clone(), uri.clone()).await.status(), StatusCode::OK);
    drop(second);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_on_a_device_this_build_lacks_fails_saying_so() {
    let (state, _dir) = state().await;
    let mut config = small_run("on a gpu");
    config["device"] = json!("cuda");
    let (status, body) = call(&state, Method::POST, "/api/runs", Some(config)).await;
    assert_eq!(status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&body));
    let run: Run = serde_json::from_slice(&body).unwrap();
    assert_eq!(run.config.device.as_deref(), Some("cuda:0"));
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while state.store.run(run.run_id).await.unwrap().status != RunStatus::Failed {
        assert!(std::time::Instant::now() < deadline, "{:?}", state.store.events(run.run_id, 0).await);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let events = state.store.events(run.run_id, 0).await.unwrap();
    let told = events.iter().any(|(_, event)| {
        matches!(event, RunEvent::Log { message }
            if message.starts_with("cannot load the model smollm2-135m on cuda:0:")
                && message.contains("the CUDA device is unavailable"))
    });
    assert!(told, "{events:?}");
}

#[tokio::test]
async fn a_request_picks_one_of_the_servers_remote_engines_and_never_an_address_of_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let survey = Arc::new(SurveyData::embedded().unwrap());
    let store = open_store(dir.path(), &survey).await.unwrap();
    let offered = shared::RemoteEngineConfig {
        url: "http://127.0.0.1:9/v1".into(),
        model: "served-model".into(),
        api_key_env: None,
        template: None,
        max_in_flight: Some(4),
    };
    let listing = shared::RemoteEngineListing { name: "gpu box".into(), engine: offered.clone() };
    let models = common::model_source().with_remote_engines(vec![listing]);
    let state = AppState::new(survey, store, None, models);

    let (status, body) = call(&state, Method::GET, "/api/engines", None).await;
    assert_eq!(status, StatusCode::OK);
    let listed: Vec<shared::RemoteEngineListing> = serde_json::from_slice(&body).unwrap();
    assert_eq!(listed[0].engine, offered);

    let before = state.store.runs(10, 0).await.unwrap().0;
    let mut config = small_run("elsewhere");
    config["engine"] = json!({"url": "http://169.254.169.254/v1", "model": "served-model"});
    let (status, body) = call(&state, Method::POST, "/api/runs", Some(config)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let body = String::from_utf8(body).unwrap();
    assert!(body.contains("engine") && body.contains("not one of the server's engines"), "{body}");
    assert_eq!(state.store.runs(10, 0).await.unwrap().0, before, "nothing stored");

    let mut config = small_run("offered");
    config["engine"] = serde_json::to_value(&offered).unwrap();
    let (status, body) = call(&state, Method::POST, "/api/runs", Some(config)).await;
    assert_eq!(status, StatusCode::CREATED, "{}", String::from_utf8_lossy(&body));
}
