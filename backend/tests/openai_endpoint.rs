//! Our OpenAI-compatible endpoint with the default model: only for accounts; a greedy reply with
//! its logprobs; the same reply streamed; a trained adapter named as a model; a prefilled
//! assistant message continued. (Option distributions read from it by the remote engine client:
//! `remote_engine.rs`.)

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::header::AUTHORIZATION;
use axum::http::{Method, Request, StatusCode};
use culturespa::api::{app, AppState};
use culturespa::auth::{new_api_token, token_digest};
use culturespa::engine::{LoraSettings, TrainableAdapter};
use culturespa::server::open_store;
use culturespa::survey::SurveyData;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use shared::auth::Role;
use tower::ServiceExt;

async fn state() -> (AppState, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let survey = Arc::new(SurveyData::embedded().unwrap());
    let store = open_store(dir.path(), &survey).await.unwrap();
    store.add_user("cy", "unused-hash", Role::Collaborator).await.unwrap();
    let secret = new_api_token();
    store.create_api_token("cy", "tests", &token_digest(&secret)).await.unwrap();
    (AppState::new(survey, store, None, common::model_source()), secret, dir)
}

async fn call(
    state: &AppState,
    method: Method,
    uri: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, String) {
    let mut request = Request::builder().method(method).uri(uri).header("content-type", "application/json");
    if let Some(token) = token {
        request = request.header(AUTHORIZATION, format!("Bearer {token}"));
    }
    let body = body.map_or_else(Body::empty, |body| Body::from(body.to_string()));
    let response = app(state.clone()).oneshot(request.body(body).unwrap()).await.unwrap();
    let status = response.status();
    (status, String::from_utf8(response.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap())
}

fn chat(model: &str, question: &str) -> Value {
    json!({
        "model": model, "temperature": 0, "max_tokens": 8, "seed": 1, "logprobs": true, "top_logprobs": 5,
        "messages": [{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": question}],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_greedy_reply_carries_its_logprobs_and_streams_alike() {
    let (state, token, _dir) = state().await;
    let question = "What is the capital of France? Answer in one word.";
    let (status, _) =
        call(&state, Method::POST, "/v1/chat/completions", None, Some(chat("smollm2-135m", question))).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "the public gets nothing");

    let (status, body) =
        call(&state, Method::POST, "/v1/chat/completions", Some(&token), Some(chat("smollm2-135m", question))).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let reply: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(reply["object"], "chat.completion");
    let choice = &reply["choices"][0];
    let content = choice["message"]["content"].as_str().unwrap();
    assert!(content.contains("Paris"), "{content}");
    let steps = choice["logprobs"]["content"].as_array().unwrap();
    assert_eq!(steps.len() as u64, reply["usage"]["completion_tokens"].as_u64().unwrap());
    let usage = &reply["usage"];
    assert_eq!(
        usage["total_tokens"],
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
    );
    for step in steps {
        let top = step["top_logprobs"].as_array().unwrap();
        assert_eq!(top.len(), 5);
        // Greedy: the chosen token is the most likely one; the alternatives come most likely first.
        assert_eq!(step["logprob"], top[0]["logprob"], "{step}");
        let logprobs: Vec<f64> = top.iter().map(|entry| entry["logprob"].as_f64().unwrap()).collect();
        assert!(logprobs.windows(2).all(|pair| pair[0] >= pair[1]) && logprobs[0] <= 0.0, "{logprobs:?}");
        assert!(logprobs.iter().map(|logprob| logprob.exp()).sum::<f64>() <= 1.0 + 1e-9);
    }

    // Streamed: the same content in chunks, then [DONE].
    let mut streamed = chat("smollm2-135m", question);
    streamed["stream"] = json!(true);
    let (status, body) = call(&state, Method::POST, "/v1/chat/completions", Some(&token), Some(streamed)).await;
    assert_eq!(status, StatusCode::OK);
    let data: Vec<&str> = body.lines().filter_map(|line| line.strip_prefix("data: ")).collect();
    assert_eq!(data.last(), Some(&"[DONE]"));
    let chunks: Vec<Value> = data[..data.len() - 1].iter().map(|chunk| serde_json::from_str(chunk).unwrap()).collect();
    let joined: String = chunks.iter().filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(joined, content);
    assert_eq!(chunks.last().unwrap()["choices"][0]["finish_reason"], choice["finish_reason"]);

    // A stop string cuts the reply there.
    let mut stopped = chat("smollm2-135m", question);
    stopped["stop"] = json!("ris");
    let (_, body) = call(&state, Method::POST, "/v1/chat/completions", Some(&token), Some(stopped)).await;
    let reply: Value = serde_json::from_str(&body).unwrap();
    let cut = reply["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(cut, &content[..content.find("ris").unwrap()]);
    assert_eq!(reply["choices"][0]["finish_reason"], "stop");

    // Bounds are named.
    let mut greedy = chat("smollm2-135m", question);
    greedy["max_tokens"] = json!(100_000);
    let (status, body) = call(&state, Method::POST, "/v1/chat/completions", Some(&token), Some(greedy)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("max_tokens"), "{body}");
    let (status, _) =
        call(&state, Method::POST, "/v1/chat/completions", Some(&token), Some(chat("nope", question))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trained_adapter_is_a_model_and_listed() {
    let (state, token, dir) = state().await;
    // A fresh adapter (B = 0) answers exactly as the base model does.
    let config: shared::RunConfig =
        serde_json::from_value(json!({"name": "adapter", "questions_per_topic": 1, "stages": ["answer"]})).unwrap();
    let run = state.store.create_run(&config, &shared::RunOrigin::Local).await.unwrap();
    let engine = state.runs.engine_for(None).await.unwrap();
    let model_config = engine.info().config.clone();
    let adapter =
        TrainableAdapter::init(&model_config, &culturespa::engine::Device::Cpu, LoraSettings::default(), 3).unwrap();
    let folder = dir.path().join(format!("runs/{}/adapters/zero", run.run_id));
    adapter.snapshot(model_config.num_layers, None).unwrap().save(&folder).unwrap();
    let name = format!("runs/{}/adapters/zero", run.run_id);

    let (status, body) = call(&state, Method::GET, "/v1/models", Some(&token), None).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<String> = serde_json::from_str::<Value>(&body).unwrap()["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|model| model["id"].as_str().unwrap().to_string())
        .collect();
    assert!(ids.contains(&"smollm2-135m".to_string()) && ids.contains(&name), "{ids:?}");

    let question = "Name a colour.";
    let (_, base) =
        call(&state, Method::POST, "/v1/chat/completions", Some(&token), Some(chat("smollm2-135m", question))).await;
    let (status, adapted) =
        call(&state, Method::POST, "/v1/chat/completions", Some(&token), Some(chat(&name, question))).await;
    assert_eq!(status, StatusCode::OK, "{adapted}");
    let content = |body: &str| serde_json::from_str::<Value>(body).unwrap()["choices"][0]["message"]["content"].clone();
    assert_eq!(content(&adapted), content(&base));
    let (status, _) = call(
        &state,
        Method::POST,
        "/v1/chat/completions",
        Some(&token),
        Some(chat("runs/1/adapters/../../x", question)),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefilled_assistant_message_is_continued_not_answered_anew() {
    let (state, token, _dir) = state().await;
    let question = "Pick a number from 1 to 10.";
    let mut base = chat("smollm2-135m", question);
    base["max_tokens"] = json!(1);
    let (status, body) = call(&state, Method::POST, "/v1/chat/completions", Some(&token), Some(base.clone())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let base_tokens = serde_json::from_str::<Value>(&body).unwrap()["usage"]["prompt_tokens"].as_u64().unwrap();

    let mut prefilled = base.clone();
    prefilled["messages"].as_array_mut().unwrap().push(json!({"role": "assistant", "content": "1"}));
    prefilled["continue_final_message"] = json!(true);
    prefilled["add_generation_prompt"] = json!(false);
    let (status, body) =
        call(&state, Method::POST, "/v1/chat/completions", Some(&token), Some(prefilled.clone())).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let tokens = serde_json::from_str::<Value>(&body).unwrap()["usage"]["prompt_tokens"].as_u64().unwrap();
    assert_eq!(tokens, base_tokens + 1, "the prompt is the exchange and the digit, no new turn");

    prefilled["add_generation_prompt"] = json!(true);
    let (status, body) = call(&state, Method::POST, "/v1/chat/completions", Some(&token), Some(prefilled)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    base["continue_final_message"] = json!(true);
    let (status, body) = call(&state, Method::POST, "/v1/chat/completions", Some(&token), Some(base)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body.contains("assistant"), "{body}");
}
