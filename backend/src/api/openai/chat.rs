//! `POST /v1/chat/completions`: the messages rendered with the model's own chat template, one
//! reply sampled by the in-process engine (with a trained adapter when `model` names one).
//! `stream: true` answers as server-sent `chat.completion.chunk`s ending with `[DONE]` (the reply
//! is sent once it is complete: the engine samples a reply as one job).

use std::convert::Infallible;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures_util::stream;
use serde_json::json;

use super::types::{
    ChatCompletion, ChatCompletionRequest, Choice, ChoiceLogprobs, LogprobEntry, MessageContent, ResponseMessage,
    TopLogprob, Usage,
};
use crate::api::auth::Viewer;
use crate::api::{AppError, AppState, MAX_CHAT_REQUESTS};
use crate::engine::{
    AdapterChoice, CancelToken, ChatMessage, FinishReason, Generation, GenerationPrompt, SamplingParams, TokenLogprob,
    MAX_TOP_LOGPROBS,
};

/// The most messages, reply tokens and stop strings a request may ask for.
const MAX_MESSAGES: usize = 64;
const MAX_REPLY_TOKENS: u32 = 2048;
const DEFAULT_REPLY_TOKENS: u32 = 256;
const MAX_STOP_STRINGS: usize = 4;

/// What a request asks of the engine, checked.
struct Plan {
    /// The model as the request named it (echoed back).
    model: String,
    /// The base model's name (`None`: the server's default) and the adapter folder, if any.
    base: Option<String>,
    adapter: Option<(String, String)>,
    messages: Vec<ChatMessage>,
    params: SamplingParams,
    stop: Vec<String>,
    stream: bool,
    /// The reply continues the final assistant message.
    continue_final: bool,
}

fn bad(message: impl Into<String>) -> AppError {
    AppError::BadRequest(message.into())
}

/// Checks the request and resolves its model: an installed model's name, or a trained adapter
/// as `runs/RUN_ID/adapters/NAME` (answered by the base model of that run).
async fn plan(state: &AppState, request: ChatCompletionRequest) -> Result<Plan, AppError> {
    if request.n.is_some_and(|n| n != 1) {
        return Err(bad("`n`: this server samples one choice per request"));
    }
    if request.messages.is_empty() || request.messages.len() > MAX_MESSAGES {
        return Err(bad(format!("`messages`: 1 to {MAX_MESSAGES} messages")));
    }
    let mut messages = Vec::with_capacity(request.messages.len());
    for (index, message) in request.messages.into_iter().enumerate() {
        if !matches!(message.role.as_str(), "system" | "user" | "assistant" | "developer") {
            return Err(bad(format!("`messages[{index}].role`: '{}' is not system, user or assistant", message.role)));
        }
        let content = match message.content {
            MessageContent::Text(text) => text,
            MessageContent::Parts(parts) => {
                if parts.iter().any(|part| part.kind != "text") {
                    return Err(bad(format!("`messages[{index}].content`: only text parts are supported")));
                }
                parts.into_iter().filter_map(|part| part.text).collect::<Vec<_>>().join("")
            }
        };
        // `developer` is the newer name of the system role.
        let role = if message.role == "developer" { "system".to_string() } else { message.role };
        messages.push(ChatMessage { role, content });
    }
    let continue_final = request.continue_final_message;
    if continue_final && messages.last().is_none_or(|message| message.role != "assistant" || message.content.is_empty())
    {
        return Err(bad("`continue_final_message`: the last message must be the assistant's, with text to continue"));
    }
    if continue_final && request.add_generation_prompt == Some(true) {
        return Err(bad("`add_generation_prompt` must be false with `continue_final_message`"));
    }
    let max_tokens = request.max_completion_tokens.or(request.max_tokens).unwrap_or(DEFAULT_REPLY_TOKENS);
    if !(1..=MAX_REPLY_TOKENS).contains(&max_tokens) {
        return Err(bad(format!("`max_tokens`: 1 to {MAX_REPLY_TOKENS}")));
    }
    let temperature = request.temperature.unwrap_or(1.0);
    if !(0.0..=2.0).contains(&temperature) {
        return Err(bad("`temperature`: 0 to 2"));
    }
    let top_logprobs = request.top_logprobs.unwrap_or(0) as usize;
    if top_logprobs > 0 && !request.logprobs {
        return Err(bad("`top_logprobs` needs `logprobs: true`"));
    }
    if top_logprobs > MAX_TOP_LOGPROBS {
        return Err(bad(format!("`top_logprobs`: 0 to {MAX_TOP_LOGPROBS}")));
    }
    let stop = request.stop.map(|stop| stop.strings()).unwrap_or_default();
    if stop.len() > MAX_STOP_STRINGS || stop.iter().any(String::is_empty) {
        return Err(bad(format!("`stop`: up to {MAX_STOP_STRINGS} non-empty strings")));
    }
    let params = SamplingParams {
        temperature,
        top_p: request.top_p.unwrap_or(1.0),
        max_new_tokens: max_tokens as usize,
        seed: request.seed.unwrap_or(0),
        stop_tokens: Vec::new(),
        // Logprobs of the chosen token are reported even without alternatives.
        top_logprobs: if request.logprobs { top_logprobs.max(1) } else { 0 },
    };
    params.check().map_err(|error| bad(format!("`{}`: {}", error.field, error.reason)))?;
    let (base, adapter) = resolve_model(state, &request.model).await?;
    Ok(Plan { model: request.model, base, adapter, messages, params, stop, stream: request.stream, continue_final })
}

async fn resolve_model(state: &AppState, model: &str) -> Result<(Option<String>, Option<(String, String)>), AppError> {
    if let Some(rest) = model.strip_prefix("runs/") {
        let run_id: i64 = rest
            .split('/')
            .next()
            .and_then(|id| id.parse().ok())
            .ok_or_else(|| AppError::NotFound(format!("model '{model}'")))?;
        let folder = state.runs.trained_adapter(model).map_err(|_| AppError::NotFound(format!("model '{model}'")))?;
        let run = state.store.run(run_id).await?;
        return Ok((run.config.model, Some((model.to_string(), folder))));
    }
    let installed = state.models.registry.list().into_iter().any(|listing| listing.installed && listing.name == model);
    if !installed {
        return Err(AppError::NotFound(format!("model '{model}' (GET /v1/models lists them)")));
    }
    Ok((Some(model.to_string()), None))
}

pub async fn completions(
    State(state): State<AppState>,
    viewer: Viewer,
    Json(request): Json<ChatCompletionRequest>,
) -> Result<Response, AppError> {
    viewer.require_user()?;
    let _permit = state.chat_requests.clone().try_acquire_owned().map_err(|_| {
        AppError::TooManyRequests(format!("{MAX_CHAT_REQUESTS} chat completions are being answered: try again shortly"))
    })?;
    let plan = plan(&state, request).await?;
    let engine = state.runs.engine_for(plan.base.as_deref()).await?;
    let adapter = match &plan.adapter {
        Some((name, folder)) => {
            let (engine, name, folder) = (engine.clone(), name.clone(), folder.clone());
            let loaded = tokio::task::spawn_blocking(move || engine.load_adapter(name.clone(), folder).map(|_| name));
            let name = loaded.await.map_err(|error| AppError::Internal(error.to_string()))?.map_err(engine_error)?;
            Some(AdapterChoice { name, merged: true })
        }
        None => None,
    };
    let text = prompt_text(&engine, &plan)?;
    let prompts = vec![GenerationPrompt { id: "chat".into(), text }];
    let job = engine
        .generate_with_adapter(prompts, plan.params.clone(), adapter, CancelToken::new(), |_| {})
        .map_err(engine_error)?;
    let outcome = tokio::task::spawn_blocking(move || job.wait())
        .await
        .map_err(|error| AppError::Internal(error.to_string()))?
        .map_err(engine_error)?;
    let generation =
        outcome.generations.into_iter().next().ok_or_else(|| AppError::Internal("no reply came back".into()))?;
    let completion = completion(&plan, generation);
    if plan.stream {
        return Ok(streamed(completion).into_response());
    }
    Ok(Json(completion).into_response())
}

/// The messages in the model's template: ready for a new assistant turn, or cut right after the
/// final assistant message's text when the reply continues it (as vLLM does).
fn prompt_text(engine: &crate::engine::Engine, plan: &Plan) -> Result<String, AppError> {
    let template = engine.chat_template().map_err(engine_error)?;
    if !plan.continue_final {
        return template.render(&plan.messages, true).map_err(engine_error);
    }
    let mut text = template.render(&plan.messages, false).map_err(engine_error)?;
    let last = plan.messages.last().map(|message| message.content.as_str()).unwrap_or_default();
    let end = text
        .rfind(last)
        .map(|start| start + last.len())
        .ok_or_else(|| bad("`continue_final_message`: the model's template does not keep the final message's text"))?;
    text.truncate(end);
    Ok(text)
}

fn engine_error(error: crate::engine::EngineError) -> AppError {
    match error {
        crate::engine::EngineError::PromptTooLong { .. } | crate::engine::EngineError::InvalidSampling(_) => {
            AppError::BadRequest(error.to_string())
        }
        other => AppError::Internal(other.to_string()),
    }
}

/// The reply cut at the first stop string (which is left out, as OpenAI does).
fn cut_at_stop(text: &str, stop: &[String]) -> Option<usize> {
    stop.iter().filter_map(|stop| text.find(stop.as_str())).min()
}

fn completion(plan: &Plan, generation: Generation) -> ChatCompletion {
    let mut content = generation.text;
    let mut finish_reason = match generation.finish_reason {
        FinishReason::Stop => "stop",
        FinishReason::Length => "length",
    };
    let mut logprob_entries = generation.logprobs;
    if let Some(end) = cut_at_stop(&content, &plan.stop) {
        content.truncate(end);
        finish_reason = "stop";
        // Keep the logprobs of the tokens that make up the kept text.
        let mut length = 0;
        logprob_entries.retain(|entry| {
            let keep = length < end;
            length += entry.chosen.text.len();
            keep
        });
    }
    let entry = |token: &TokenLogprob| TopLogprob {
        token: token.text.clone(),
        logprob: token.logprob,
        bytes: token.text.as_bytes().to_vec(),
    };
    let asked_top = plan.params.top_logprobs;
    let logprobs = (plan.params.top_logprobs > 0).then(|| ChoiceLogprobs {
        content: logprob_entries
            .iter()
            .map(|step| LogprobEntry {
                token: step.chosen.text.clone(),
                logprob: step.chosen.logprob,
                bytes: step.chosen.text.as_bytes().to_vec(),
                top_logprobs: step.top.iter().take(asked_top).map(entry).collect(),
            })
            .collect(),
    });
    let completion_tokens = generation.tokens.len() as u64;
    let prompt_tokens = generation.prompt_tokens as u64;
    let created = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |elapsed| elapsed.as_secs());
    ChatCompletion {
        id: format!("chatcmpl-{created}-{}", crate::auth::new_session_token().get(..12).unwrap_or_default()),
        object: "chat.completion".into(),
        created,
        model: plan.model.clone(),
        choices: vec![Choice {
            index: 0,
            message: ResponseMessage { role: "assistant".into(), content },
            logprobs,
            finish_reason: finish_reason.into(),
        }],
        usage: Usage { prompt_tokens, completion_tokens, total_tokens: prompt_tokens + completion_tokens },
    }
}

/// The completion as `chat.completion.chunk` events: the role, the content (with its logprobs),
/// the finish reason with the usage, then `[DONE]`.
fn streamed(completion: ChatCompletion) -> Sse<impl futures_util::Stream<Item = Result<Event, Infallible>>> {
    let choice = &completion.choices[0];
    let chunk = |delta: serde_json::Value, logprobs: serde_json::Value, finish: serde_json::Value| {
        json!({
            "id": completion.id, "object": "chat.completion.chunk", "created": completion.created,
            "model": completion.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": logprobs, "finish_reason": finish}],
        })
    };
    let logprobs = serde_json::to_value(&choice.logprobs).unwrap_or(serde_json::Value::Null);
    let mut last = chunk(json!({}), serde_json::Value::Null, json!(choice.finish_reason));
    last["usage"] = serde_json::to_value(completion.usage).unwrap_or_default();
    let events = vec![
        chunk(json!({"role": "assistant", "content": ""}), serde_json::Value::Null, serde_json::Value::Null),
        chunk(json!({"content": choice.message.content}), logprobs, serde_json::Value::Null),
        last,
    ];
    let events = events
        .into_iter()
        .map(|event| Ok(Event::default().data(event.to_string())))
        .chain(std::iter::once(Ok(Event::default().data("[DONE]"))));
    Sse::new(stream::iter(events))
}
