//! The remote engine client against real OpenAI-compatible servers on loopback: our own
//! `/v1` endpoint (the default model) and llama.cpp's server from llama-cpp-python (when
//! `CULTURESPA_LLAMACPP_PYTHON` names its venv's python, as `make test` does). On the same WVS
//! prompts its option distributions agree with the in-process engine; a run answers through it;
//! a stage written as an OpenAI batch file and read back stores the same answers; failures are
//! retried or reported clearly.

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use culturespa::api::{app, AppState};
use culturespa::auth::{new_api_token, token_digest};
use culturespa::engine::{CancelToken, Engine, ScorePrompt};
use culturespa::pipeline::answer_prompt::answer_prompt;
use culturespa::pipeline::runner::{read_batch, write_batch, RunEngine, Runner};
use culturespa::remote::{ChatPrompt, RemoteEngine, RemoteError};
use culturespa::runs::{validate_run, RunService};
use culturespa::server::open_store;
use culturespa::survey::SurveyData;
use serde_json::{json, Value};
use shared::auth::Role;
use shared::{PromptVariant, RemoteEngineConfig, RunConfig, RunStatus};

const KEY_VARIABLE: &str = "CULTURESPA_TEST_REMOTE_KEY";

/// Our server on loopback with an account whose API token is in [`KEY_VARIABLE`].
async fn our_server() -> (AppState, SocketAddr, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let survey = Arc::new(SurveyData::embedded().unwrap());
    let store = open_store(dir.path(), &survey).await.unwrap();
    store.add_user("cy", "unused-hash", Role::Collaborator).await.unwrap();
    let secret = new_api_token();
    store.create_api_token("cy", "tests", &token_digest(&secret)).await.unwrap();
    let state = AppState::new(survey, store, None, common::model_source());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let router = app(state.clone());
    tokio::spawn(async move { axum::serve(listener, router).await });
    // Each server's token differs: the engine config names the variable, so give each its own.
    let variable = format!("{KEY_VARIABLE}_{}", address.port());
    std::env::set_var(&variable, &secret);
    (state, address, dir)
}

fn our_engine(address: SocketAddr) -> RemoteEngineConfig {
    RemoteEngineConfig {
        url: format!("http://{address}/v1"),
        model: "smollm2-135m".into(),
        api_key_env: Some(format!("{KEY_VARIABLE}_{}", address.port())),
        template: None,
        max_in_flight: Some(4),
    }
}

/// WVS prompts with one- and two-digit option codes, unaware and as two cultures.
fn cases(survey: &SurveyData, one_digit: usize, two_digit: usize) -> Vec<(ChatPrompt, Vec<String>)> {
    let short = survey.questions.iter().filter(|question| question.options.len() <= 9).take(one_digit);
    let long = survey.questions.iter().filter(|question| question.options.len() >= 10).take(two_digit);
    let mut cases = Vec::new();
    for question in short.chain(long) {
        for (variant, culture) in
            [(PromptVariant::Unaware, None), (PromptVariant::P1, Some("USA")), (PromptVariant::P1, Some("CHN"))]
        {
            let prompt = answer_prompt(survey, question, variant, culture).unwrap();
            let codes = question.option_codes();
            cases.push((ChatPrompt { system: prompt.system, user: prompt.user }, codes));
        }
    }
    cases
}

async fn in_process(engine: &Arc<Engine>, cases: &[(ChatPrompt, Vec<String>)]) -> Vec<Vec<f64>> {
    let template = engine.chat_template().unwrap().clone();
    let prompts: Vec<ScorePrompt> = cases
        .iter()
        .enumerate()
        .map(|(index, (prompt, codes))| ScorePrompt {
            id: index.to_string(),
            text: template.render_exchange(&prompt.system, &prompt.user).unwrap(),
            choices: codes.clone(),
        })
        .collect();
    let job = engine.score(prompts, |_| {}).unwrap();
    let outcome = tokio::task::spawn_blocking(move || job.wait()).await.unwrap().unwrap();
    outcome.scores.into_iter().map(|scores| scores.probs).collect()
}

/// (share of equal argmaxes, mean total variation) of two lists of distributions.
fn agreement(a: &[Vec<f64>], b: &[Vec<f64>]) -> (f64, f64) {
    assert_eq!(a.len(), b.len());
    let argmax = |values: &[f64]| (0..values.len()).fold(0, |best, i| if values[i] > values[best] { i } else { best });
    let same = a.iter().zip(b).filter(|(x, y)| argmax(x) == argmax(y)).count();
    let variation: f64 =
        a.iter().zip(b).map(|(x, y)| 0.5 * x.iter().zip(y.iter()).map(|(p, q)| (p - q).abs()).sum::<f64>()).sum();
    (same as f64 / a.len() as f64, variation / a.len() as f64)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_our_endpoint_it_agrees_with_the_in_process_engine_two_digit_options_included() {
    let (state, address, _dir) = our_server().await;
    let survey = SurveyData::embedded().unwrap();
    let cases = cases(&survey, 8, 4);
    assert!(cases.iter().any(|(_, codes)| codes.iter().any(|code| code.len() == 2)));
    let engine = state.runs.engine_for(None).await.unwrap();
    let local = in_process(&engine, &cases).await;
    let remote = RemoteEngine::connect(&our_engine(address)).unwrap();
    let answered = remote.score(&cases, &CancelToken::new()).await.unwrap();
    let (same_argmax, total_variation) = agreement(&local, &answered);
    eprintln!("our endpoint, {} prompts: argmax {same_argmax:.4}, mean TV {total_variation:.6}", cases.len());
    assert!(same_argmax >= 0.97, "argmax agreement {same_argmax}");
    assert!(total_variation <= 0.03, "mean total variation {total_variation}");
}

async fn all_answers(store: &culturespa::store::Store, run_id: i64) -> Vec<shared::Answer> {
    let mut answers = store.run_answers(run_id, "wvs", PromptVariant::Unaware).await.unwrap();
    answers.extend(store.run_answers(run_id, "wvs", PromptVariant::P1).await.unwrap());
    answers.sort_by(|a, b| (&a.question_id, &a.country_code).cmp(&(&b.question_id, &b.country_code)));
    answers
}

fn run_config(name: &str, engine: RemoteEngineConfig) -> RunConfig {
    serde_json::from_value(json!({
        "name": name, "cultures": ["USA"], "topics": [0, 1], "questions_per_topic": 1,
        "variants": ["unaware", "p1"], "answer_mode": "scoring", "stages": ["answer", "collect"],
        "engine": engine,
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_answers_through_it_and_a_batch_file_read_back_stores_the_same_answers() {
    let (_state, address, _server_dir) = our_server().await;
    let dir = tempfile::tempdir().unwrap();
    let survey = Arc::new(SurveyData::embedded().unwrap());
    let store = open_store(dir.path(), &survey).await.unwrap();
    let service = RunService::new(store.clone(), Arc::clone(&survey), common::model_source());
    let updates = tokio::sync::broadcast::channel(1024).0;

    // Live: the run's Answer stage through the remote engine.
    let live = validate_run(run_config("live", our_engine(address)), &survey).unwrap();
    let live = store.create_run(&live, &shared::RunOrigin::Local).await.unwrap();
    let status = service.execute(live.run_id, None, CancelToken::new(), updates.clone()).await.unwrap();
    assert_eq!(status, RunStatus::Completed);
    let live_answers = all_answers(&store, live.run_id).await;
    assert_eq!(live_answers.len(), 4, "2 questions, unaware and as USA");

    // Offline: the same run's requests as a batch file, answered line by line as `vllm run-batch`
    // would, read back; resuming the run then has nothing left to ask.
    let offline = validate_run(run_config("offline", our_engine(address)), &survey).unwrap();
    let offline = store.create_run(&offline, &shared::RunOrigin::Local).await.unwrap();
    let runner = Runner {
        store: store.clone(),
        survey: Arc::clone(&survey),
        engine: RunEngine::Remote(Arc::new(RemoteEngine::connect(&our_engine(address)).unwrap())),
        cancel: CancelToken::new(),
        updates: updates.clone(),
    };
    let mut requests = Vec::new();
    let written = write_batch(&runner, offline.run_id, &mut requests).await.unwrap();
    assert_eq!(written.pending, 4);
    let requests = String::from_utf8(requests).unwrap();
    assert_eq!(requests.lines().count(), written.done);
    let client = reqwest::Client::new();
    let token = std::env::var(format!("{KEY_VARIABLE}_{}", address.port())).unwrap();
    let mut results = String::new();
    for (index, line) in requests.lines().enumerate() {
        let request: Value = serde_json::from_str(line).unwrap();
        assert_eq!(request["method"], "POST");
        assert_eq!(request["url"], "/v1/chat/completions");
        if index == 0 {
            // A request that failed in the batch: its prompt stays pending on the first read.
            let failed = json!({"custom_id": request["custom_id"], "response": null, "error": {"message": "GPU lost"}});
            results.push_str(&format!("{failed}\n"));
            continue;
        }
        let url = format!("http://{address}{}", request["url"].as_str().unwrap());
        let body: Value =
            client.post(url).bearer_auth(&token).json(&request["body"]).send().await.unwrap().json().await.unwrap();
        let result = json!({"id": index, "custom_id": request["custom_id"], "response": {"status_code": 200, "body": body}, "error": null});
        results.push_str(&format!("{result}\n"));
    }
    let results_file = dir.path().join("results.jsonl");
    std::fs::write(&results_file, &results).unwrap();
    let read = read_batch(&runner, offline.run_id, &results_file).await.unwrap();
    assert_eq!((read.done, read.missing), (3, 1), "{read:?}");
    assert!(read.failures[0].contains("GPU lost"), "{read:?}");

    // The failed request answered on a second pass (a retry of the batch).
    let first: Value = serde_json::from_str(requests.lines().next().unwrap()).unwrap();
    let url = format!("http://{address}{}", first["url"].as_str().unwrap());
    let body: Value =
        client.post(url).bearer_auth(&token).json(&first["body"]).send().await.unwrap().json().await.unwrap();
    let retried = json!({"custom_id": first["custom_id"], "response": {"status_code": 200, "body": body}});
    std::fs::write(&results_file, format!("{results}{retried}\n")).unwrap();
    let read = read_batch(&runner, offline.run_id, &results_file).await.unwrap();
    assert_eq!((read.pending, read.done, read.missing), (1, 1, 0), "{read:?}");

    let status = service.execute(offline.run_id, None, CancelToken::new(), updates).await.unwrap();
    assert_eq!(status, RunStatus::Completed);
    let offline_answers = all_answers(&store, offline.run_id).await;
    assert_eq!(offline_answers.len(), live_answers.len());
    for (a, b) in live_answers.iter().zip(&offline_answers) {
        assert_eq!((&a.question_id, &a.country_code, a.parsed_code), (&b.question_id, &b.country_code, b.parsed_code));
        let (x, y) = (a.distribution.as_ref().unwrap(), b.distribution.as_ref().unwrap());
        assert!(x.iter().zip(y).all(|(p, q)| (p - q).abs() < 1e-9), "{x:?} vs {y:?}");
    }
}

/// A stand-in server: answers `/v1/chat/completions` with `reply(call number, request)`.
async fn fake_server(
    reply: impl Fn(usize, Value) -> (u16, Value) + Send + Sync + 'static,
) -> (SocketAddr, Arc<AtomicUsize>) {
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&calls);
    let reply = Arc::new(reply);
    let router = axum::Router::new().route(
        "/v1/chat/completions",
        axum::routing::post(move |axum::Json(request): axum::Json<Value>| {
            let (reply, counter) = (Arc::clone(&reply), Arc::clone(&counter));
            async move {
                let (status, body) = reply(counter.fetch_add(1, Ordering::SeqCst), request);
                (axum::http::StatusCode::from_u16(status).unwrap(), axum::Json(body))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (address, calls)
}

fn logprob_reply(prompt_tokens: u64, top: &[(&str, f64)]) -> Value {
    let top: Vec<Value> =
        top.iter().map(|(token, p)| json!({"token": token, "logprob": p.ln(), "bytes": null})).collect();
    json!({
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "1"}, "finish_reason": "length",
                     "logprobs": {"content": [{"token": "1", "logprob": -0.1, "bytes": null, "top_logprobs": top}]}}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 1, "total_tokens": prompt_tokens + 1},
    })
}

fn plain(address: SocketAddr) -> RemoteEngineConfig {
    RemoteEngineConfig {
        url: format!("http://{address}/v1"),
        model: "m".into(),
        api_key_env: None,
        template: None,
        max_in_flight: Some(2),
    }
}

fn prompt() -> ChatPrompt {
    ChatPrompt { system: "s".into(), user: "u".into() }
}

#[tokio::test]
async fn overloaded_answers_are_retried_and_a_refusal_is_reported_with_the_servers_words() {
    let (address, calls) = fake_server(|call, _| match call {
        0 => (503, json!({"error": {"message": "warming up"}})),
        1 => (429, json!({"error": {"message": "slow down"}})),
        _ => (200, logprob_reply(10, &[("2", 0.75), ("1", 0.25)])),
    })
    .await;
    let remote = RemoteEngine::connect(&plain(address)).unwrap();
    let codes = vec!["1".to_string(), "2".to_string()];
    let scored = remote.score(&[(prompt(), codes.clone())], &CancelToken::new()).await.unwrap();
    assert_eq!(calls.load(Ordering::SeqCst), 3, "two retries, then the answer");
    assert!((scored[0][1] - 0.75).abs() < 1e-9, "{scored:?}");

    let (address, calls) = fake_server(|_, _| (400, json!({"error": {"message": "model 'm' does not exist"}}))).await;
    let error = RemoteEngine::connect(&plain(address)).unwrap().score(&[(prompt(), codes)], &CancelToken::new()).await;
    let error = error.unwrap_err();
    assert!(matches!(error, RemoteError::Status { status: 400, .. }), "{error}");
    assert!(error.to_string().contains("model 'm' does not exist"), "{error}");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "a refusal is not retried");
}

#[tokio::test]
async fn a_server_that_ignores_the_prefilled_digit_is_caught_and_one_without_logprobs_named() {
    // A new assistant turn instead of a continued one: more prompt tokens than the digit adds.
    let (address, _) = fake_server(|_, request| {
        let prefilled = request["messages"].as_array().unwrap().len() == 3;
        (200, logprob_reply(if prefilled { 17 } else { 10 }, &[("1", 0.9), ("2", 0.1)]))
    })
    .await;
    let ten: Vec<String> = (1..=10).map(|code| code.to_string()).collect();
    let error = RemoteEngine::connect(&plain(address)).unwrap().score(&[(prompt(), ten)], &CancelToken::new()).await;
    assert!(matches!(error, Err(RemoteError::NoPrefill { .. })), "{error:?}");

    let (address, _) = fake_server(|_, _| {
        (200, json!({"choices": [{"index": 0, "message": {"role": "assistant", "content": "1"}, "finish_reason": "length"}]}))
    })
    .await;
    let codes = vec!["1".to_string(), "2".to_string()];
    let error = RemoteEngine::connect(&plain(address)).unwrap().score(&[(prompt(), codes)], &CancelToken::new()).await;
    assert!(error.unwrap_err().to_string().contains("no `logprobs`"));
}

/// llama.cpp's server (llama-cpp-python) on the default GGUF, on a free loopback port.
struct LlamaCppServer {
    child: std::process::Child,
    address: SocketAddr,
}

impl Drop for LlamaCppServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn llama_cpp_server(python: &str) -> LlamaCppServer {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let gguf = common::model();
    let child = std::process::Command::new(python)
        .args(["-m", "llama_cpp.server", "--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["--n_ctx", "2048", "--n_threads", "2", "--model"])
        .arg(&gguf)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start llama-cpp-python's server");
    let server = LlamaCppServer { child, address: SocketAddr::from(([127, 0, 0, 1], port)) };
    let client = reqwest::Client::new();
    for _ in 0..240 {
        if client
            .get(format!("http://{}/v1/models", server.address))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return server;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("llama-cpp-python's server did not answer within a minute");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_llama_cpp_server_it_agrees_with_the_in_process_engine() {
    let Ok(python) = std::env::var("CULTURESPA_LLAMACPP_PYTHON") else {
        eprintln!("skipped: CULTURESPA_LLAMACPP_PYTHON is not set (make test sets it: scripts/setup-llamacpp.sh)");
        return;
    };
    let server = llama_cpp_server(&python).await;
    let survey = SurveyData::embedded().unwrap();
    let cases = cases(&survey, 24, 8);
    let engine = Arc::new(Engine::start(culturespa::engine::EngineOptions::new(common::model())).unwrap());
    let local = in_process(&engine, &cases).await;

    // Prompts rendered here with the model's own template, scored through /v1/completions.
    let config = RemoteEngineConfig {
        url: format!("http://{}/v1", server.address),
        model: "smollm2".into(),
        api_key_env: None,
        template: Some(common::model().display().to_string()),
        max_in_flight: Some(1),
    };
    let remote = RemoteEngine::connect(&config).unwrap();
    let answered = remote.score(&cases, &CancelToken::new()).await.unwrap();
    let (same_argmax, total_variation) = agreement(&local, &answered);
    eprintln!("llama.cpp's server, {} prompts: argmax {same_argmax:.4}, mean TV {total_variation:.6}", cases.len());
    assert!(same_argmax >= 0.97, "argmax agreement {same_argmax}");
    assert!(total_variation <= 0.03, "mean total variation {total_variation}");

    // Through chat completions this server opens a new turn after a prefilled digit: caught.
    let chat = RemoteEngine::connect(&RemoteEngineConfig { template: None, ..config }).unwrap();
    let ten = cases.iter().find(|(_, codes)| codes.len() >= 10).unwrap().clone();
    let error = chat.score(&[ten], &CancelToken::new()).await;
    assert!(matches!(error, Err(RemoteError::NoPrefill { .. })), "{error:?}");
}
