//! OpenAI batch files, as `vllm run-batch` and OpenAI's Batch API take them: one request a line,
//! `{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body"}`, and one result a
//! line, `{"custom_id", "response": {"status_code", "body"}, "error"}`.

use std::collections::HashMap;
use std::io::BufRead;
use std::path::Path;

use serde_json::{json, Value};

use super::EngineRequest;

/// Lines of a results file at most (a stage of the paper's size has about 300,000 requests).
pub const MAX_RESULT_LINES: usize = 10_000_000;

#[derive(Debug, thiserror::Error)]
#[error("{file}, line {line}: {message}")]
pub struct BatchFileError {
    pub file: String,
    pub line: usize,
    pub message: String,
}

/// The `custom_id` of one of a prompt's requests: its first position, the position after a
/// digit string, or its sampled reply.
pub fn custom_id(prompt_id: &str, request: &EngineRequest, sampled: bool) -> String {
    match (&request.prefix, sampled) {
        (_, true) => format!("{prompt_id}#reply"),
        (None, false) => format!("{prompt_id}#first"),
        (Some(prefix), false) => format!("{prompt_id}#after-{prefix}"),
    }
}

/// A request line of a batch file.
pub fn request_line(custom_id: &str, request: &EngineRequest) -> String {
    json!({"custom_id": custom_id, "method": "POST", "url": format!("/v1{}", request.path), "body": request.body})
        .to_string()
}

/// What a results file holds: the reply bodies by `custom_id`, and the requests that failed with
/// what the server said.
#[derive(Debug, Default)]
pub struct BatchResults {
    pub replies: HashMap<String, Value>,
    pub failed: HashMap<String, String>,
}

/// Reads a results file; a line that is not a result is an error naming the line.
pub fn read_results(file: &Path) -> Result<BatchResults, BatchFileError> {
    let name = file.display().to_string();
    let fail = |line: usize, message: String| BatchFileError { file: name.clone(), line, message };
    let reader = std::io::BufReader::new(std::fs::File::open(file).map_err(|error| fail(0, error.to_string()))?);
    let mut results = BatchResults::default();
    for (index, line) in reader.lines().enumerate() {
        let number = index + 1;
        if number > MAX_RESULT_LINES {
            return Err(fail(number, format!("more than {MAX_RESULT_LINES} lines")));
        }
        let line = line.map_err(|error| fail(number, error.to_string()))?;
        if line.trim().is_empty() {
            continue;
        }
        let value: Value = serde_json::from_str(&line).map_err(|error| fail(number, format!("not JSON: {error}")))?;
        let custom_id = value
            .get("custom_id")
            .and_then(Value::as_str)
            .ok_or_else(|| fail(number, "no `custom_id`".into()))?
            .to_string();
        let error = value.get("error").filter(|error| !error.is_null());
        let status = value.pointer("/response/status_code").and_then(Value::as_u64);
        let body = value.pointer("/response/body").filter(|body| !body.is_null());
        match (error, status, body) {
            (None, Some(200) | None, Some(body)) => {
                results.failed.remove(&custom_id);
                results.replies.insert(custom_id, body.clone());
            }
            (Some(error), _, _) => {
                let message = error.get("message").and_then(Value::as_str).map(str::to_string);
                results.failed.insert(custom_id, message.unwrap_or_else(|| error.to_string()));
            }
            (None, Some(status), _) => {
                let message = body.map(|body| super::reply::error_message(&body.to_string())).unwrap_or_default();
                results.failed.insert(custom_id, format!("status {status} {message}").trim().to_string());
            }
            (None, None, None) => return Err(fail(number, "neither `response.body` nor `error`".into())),
        }
    }
    Ok(results)
}
