use std::path::Path;

use serde_json::json;
use shared::RemoteEngineConfig;

use super::batch::{custom_id, read_results, request_line};
use super::*;

fn config(url: &str) -> RemoteEngineConfig {
    RemoteEngineConfig { url: url.into(), model: "m".into(), api_key_env: None, template: None, max_in_flight: None }
}

fn prompt() -> ChatPrompt {
    ChatPrompt { system: "Be brief.".into(), user: "Pick 1 to 10.".into() }
}

#[test]
fn base_urls_are_plain_http_with_a_host() {
    assert_eq!(checked_base_url("http://gpu-box:8000/v1/").unwrap(), "http://gpu-box:8000/v1");
    for bad in ["gpu-box:8000/v1", "ftp://x/v1", "http:///v1", "http://user:pw@x/v1", "http://x/v1?key=1"] {
        assert!(matches!(checked_base_url(bad), Err(RemoteError::Url { .. })), "{bad}");
    }
    if cfg!(feature = "tls") {
        assert_eq!(checked_base_url("https://gpu-box/v1").unwrap(), "https://gpu-box/v1");
        RemoteEngine::connect(&config("https://gpu-box/v1")).unwrap();
    } else {
        let error = checked_base_url("https://x/v1").unwrap_err().to_string();
        assert!(error.contains("`tls` feature"), "{error}");
    }
}

#[test]
fn a_missing_key_variable_is_named() {
    let engine = RemoteEngineConfig {
        api_key_env: Some("CULTURESPA_NO_SUCH_VARIABLE_SET".into()),
        ..config("http://127.0.0.1:9/v1")
    };
    let error = RemoteEngine::connect(&engine).unwrap_err().to_string();
    assert!(error.contains("CULTURESPA_NO_SUCH_VARIABLE_SET"), "{error}");
}

#[test]
fn chat_scoring_asks_for_the_first_position_and_continues_each_extended_digit() {
    let engine = RemoteEngine::connect(&config("http://127.0.0.1:9/v1")).unwrap();
    let codes: Vec<String> = (1..=10).map(|code| code.to_string()).collect();
    let requests = engine.score_requests(&prompt(), &codes).unwrap();
    assert_eq!(requests.len(), 2);
    let first = &requests[0];
    assert_eq!((first.path, first.prefix.as_deref()), (CHAT_PATH, None));
    assert_eq!(first.body["max_tokens"], 1);
    assert_eq!(first.body["top_logprobs"], TOP_LOGPROBS);
    assert_eq!(first.body["messages"].as_array().unwrap().len(), 2);
    assert!(first.body.get("continue_final_message").is_none());
    let branch = &requests[1];
    assert_eq!(branch.prefix.as_deref(), Some("1"));
    assert_eq!(branch.body["messages"][2], json!({"role": "assistant", "content": "1"}));
    assert_eq!(branch.body["continue_final_message"], true);
    assert_eq!(branch.body["add_generation_prompt"], false);
}

#[test]
fn with_a_template_prompts_are_rendered_here_and_sent_as_completions() {
    let model = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/SmolLM2-135M-Instruct.Q4_1.gguf");
    let engine = RemoteEngine::connect(&RemoteEngineConfig {
        template: Some(model.display().to_string()),
        ..config("http://127.0.0.1:9/v1")
    })
    .unwrap();
    let codes: Vec<String> = (1..=10).map(|code| code.to_string()).collect();
    let requests = engine.score_requests(&prompt(), &codes).unwrap();
    let text = requests[0].body["prompt"].as_str().unwrap();
    assert_eq!(requests[0].path, COMPLETIONS_PATH);
    assert!(text.contains("Pick 1 to 10.") && text.ends_with("assistant\n"), "{text}");
    assert_eq!(requests[1].body["prompt"].as_str().unwrap(), format!("{text}1"));
    assert_eq!(requests[0].body["logprobs"], TOP_LOGPROBS);
    assert_eq!(engine.prompt_key(&prompt()).unwrap(), text);

    let missing = RemoteEngine::connect(&RemoteEngineConfig {
        template: Some("no/such/model.gguf".into()),
        ..config("http://127.0.0.1:9/v1")
    });
    assert!(missing.unwrap_err().to_string().contains("engine.template 'no/such/model.gguf'"));
}

#[test]
fn batch_lines_round_trip_and_bad_lines_are_named() {
    let engine = RemoteEngine::connect(&config("http://127.0.0.1:9/v1")).unwrap();
    let sampling = RemoteSampling { temperature: 0.7, top_p: 0.9, max_tokens: 64, seed: 3, stop: vec![] };
    let request = engine.generation_request(&prompt(), &sampling).unwrap();
    let line: serde_json::Value = serde_json::from_str(&request_line("P1/USA/Q1#reply", &request)).unwrap();
    assert_eq!(line["url"], "/v1/chat/completions");
    assert_eq!(line["method"], "POST");
    assert_eq!(line["body"]["seed"], 3);
    assert_eq!(custom_id("P1/USA/Q1", &request, true), "P1/USA/Q1#reply");

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("results.jsonl");
    let ok = json!({"custom_id": "a#first", "response": {"status_code": 200, "body": {"choices": []}}, "error": null});
    let refused =
        json!({"custom_id": "b#first", "response": {"status_code": 400, "body": {"error": {"message": "too long"}}}});
    std::fs::write(&file, format!("{ok}\n\n{refused}\n")).unwrap();
    let results = read_results(&file).unwrap();
    assert!(results.replies.contains_key("a#first"));
    assert!(results.failed["b#first"].contains("too long"), "{:?}", results.failed);

    std::fs::write(&file, format!("{ok}\n{{\"response\": {{}}}}\n")).unwrap();
    let error = read_results(&file).unwrap_err();
    assert_eq!(error.line, 2);
    assert!(error.to_string().contains("custom_id"), "{error}");
}

#[test]
fn an_engines_file_is_checked_entry_by_entry() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("engines.toml");
    std::fs::write(
        &file,
        "[[engine]]\nname = \"gpu\"\nurl = \"http://gpu-box:8000/v1\"\nmodel = \"meta-llama/Meta-Llama-3-8B-Instruct\"\n\
         api_key_env = \"VLLM_API_KEY\"\n",
    )
    .unwrap();
    let engines = read_engines_file(&file).unwrap();
    assert_eq!(engines[0].name, "gpu");
    assert_eq!(engines[0].engine.api_key_env.as_deref(), Some("VLLM_API_KEY"));

    for (text, expected) in [
        ("[[engine]]\nname = \"a\"\nurl = \"gpu-box\"\nmodel = \"m\"\n", "engine[0].url"),
        ("[[engine]]\nname = \"a\"\nurl = \"http://x/v1\"\nmodel = \"m\"\nkey = \"secret\"\n", "unknown field"),
        (
            "[[engine]]\nname = \"a\"\nurl = \"http://x/v1\"\nmodel = \"m\"\n[[engine]]\nname = \"a\"\nurl = \"http://y/v1\"\nmodel = \"m\"\n",
            "named twice",
        ),
    ] {
        std::fs::write(&file, text).unwrap();
        let error = read_engines_file(&file).unwrap_err().to_string();
        assert!(error.contains(expected), "{expected}: {error}");
    }
}
