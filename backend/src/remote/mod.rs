//! Remote engines: any OpenAI-compatible server (vLLM, llama.cpp's server, mistral.rs, TGI,
//! another CultureSPA) answers and generates instead of the in-process engine. Scoring reads the
//! option distribution from `top_logprobs` ([`digits`]); requests run many at once up to a bound,
//! failed ones are retried with backoff, and the same requests can be written as an OpenAI batch
//! file and their results read back ([`batch`]).

pub mod batch;
pub mod digits;
mod engines_file;
mod reply;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{self, StreamExt, TryStreamExt};
use serde_json::{json, Value};
use shared::RemoteEngineConfig;
use tokio::sync::Semaphore;

use crate::engine::{CancelToken, ChatMessage, ChatTemplate, EngineError};
pub use engines_file::{read_engines_file, EnginesFileError};
pub use reply::{first_position, reply_text};

/// Requests in flight at once unless the engine says otherwise, and the most it may say.
pub const DEFAULT_IN_FLIGHT: u32 = 8;
pub const MAX_IN_FLIGHT: u32 = 256;
/// Alternatives asked for at each position (what OpenAI and vLLM allow at most by default).
pub const TOP_LOGPROBS: u32 = 20;
/// Tries of one request before its error is the stage's.
const MAX_TRIES: u32 = 6;
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(30);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("engine.url '{url}': {reason}")]
    Url { url: String, reason: String },
    #[error("engine.api_key_env: the environment variable {0} is not set")]
    MissingKey(String),
    #[error("engine.template '{path}': {source}")]
    Template { path: String, source: EngineError },
    // `endpoint` names the model and the path, not the server's address: run events are public.
    #[error("{endpoint}: {message}")]
    Http { endpoint: String, message: String },
    #[error("{endpoint} answered {status}: {message}")]
    Status { endpoint: String, status: u16, message: String },
    #[error("{endpoint}: {message}")]
    Reply { endpoint: String, message: String },
    #[error(
        "{endpoint}: the server does not continue a final assistant message (`continue_final_message`), which a \
         two-digit option needs; give the engine a `template` (a local copy of the model's files) to score \
         through /v1/completions"
    )]
    NoPrefill { endpoint: String },
    #[error("cancelled")]
    Cancelled,
}

/// A system + user exchange, the form every prompt of a stage has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChatPrompt {
    pub system: String,
    pub user: String,
}

/// How a reply is sampled.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteSampling {
    pub temperature: f64,
    pub top_p: f64,
    pub max_tokens: u32,
    pub seed: u64,
    pub stop: Vec<String>,
}

impl From<&crate::engine::SamplingParams> for RemoteSampling {
    fn from(params: &crate::engine::SamplingParams) -> Self {
        RemoteSampling {
            temperature: params.temperature,
            top_p: params.top_p,
            max_tokens: u32::try_from(params.max_new_tokens).unwrap_or(u32::MAX),
            seed: params.seed,
            stop: Vec::new(),
        }
    }
}

/// One request to the server: its path under the base URL and its body. `prefix` is the digit
/// string a scoring branch continues (`None`: the reply's first position).
#[derive(Debug, Clone, PartialEq)]
pub struct EngineRequest {
    pub path: &'static str,
    pub body: Value,
    pub prefix: Option<String>,
}

pub const CHAT_PATH: &str = "/chat/completions";
pub const COMPLETIONS_PATH: &str = "/completions";

pub struct RemoteEngine {
    config: RemoteEngineConfig,
    base_url: String,
    client: reqwest::Client,
    api_key: Option<String>,
    /// Set: prompts are rendered here and sent to `/completions`.
    template: Option<ChatTemplate>,
    in_flight: Arc<Semaphore>,
}

impl std::fmt::Debug for RemoteEngine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteEngine").field("url", &self.base_url).field("model", &self.config.model).finish()
    }
}

/// The base URL, checked: http (https with the `tls` feature), a host, no query.
pub fn checked_base_url(url: &str) -> Result<String, RemoteError> {
    let refuse = |reason: &str| RemoteError::Url { url: url.to_string(), reason: reason.to_string() };
    let rest = if let Some(rest) = url.strip_prefix("http://") {
        rest
    } else if let Some(rest) = url.strip_prefix("https://") {
        if !cfg!(feature = "tls") {
            return Err(refuse("https needs a build with the `tls` feature (plain http works without)"));
        }
        rest
    } else {
        return Err(refuse("must start with http:// or https://"));
    };
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty() || host.contains('@') {
        return Err(refuse("must name a host (and no user or password)"));
    }
    if url.contains(['?', '#', ' ']) {
        return Err(refuse("must be a plain base URL, such as http://host:8000/v1"));
    }
    Ok(url.trim_end_matches('/').to_string())
}

impl RemoteEngine {
    /// Checks the engine's settings and prepares its client (nothing is sent yet).
    pub fn connect(config: &RemoteEngineConfig) -> Result<Self, RemoteError> {
        let base_url = checked_base_url(&config.url)?;
        let api_key = match &config.api_key_env {
            Some(variable) => Some(std::env::var(variable).map_err(|_| RemoteError::MissingKey(variable.clone()))?),
            None => None,
        };
        let template = config
            .template
            .as_deref()
            .map(|path| {
                crate::engine::load_chat_template(Path::new(path))
                    .map_err(|source| RemoteError::Template { path: path.to_string(), source })
            })
            .transpose()?;
        let in_flight = config.max_in_flight.unwrap_or(DEFAULT_IN_FLIGHT).clamp(1, MAX_IN_FLIGHT) as usize;
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(REQUEST_TIMEOUT)
            .build()
            .map_err(|error| RemoteError::Http { endpoint: config.model.clone(), message: error.to_string() })?;
        Ok(RemoteEngine {
            config: config.clone(),
            base_url,
            client,
            api_key,
            template,
            in_flight: Arc::new(Semaphore::new(in_flight)),
        })
    }

    /// How errors name a request: the served model and the path.
    fn endpoint(&self, path: &str) -> String {
        format!("the remote engine of {} (POST …/v1{path})", self.config.model)
    }

    pub fn config(&self) -> &RemoteEngineConfig {
        &self.config
    }

    /// Requests in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.config.max_in_flight.unwrap_or(DEFAULT_IN_FLIGHT).clamp(1, MAX_IN_FLIGHT) as usize
    }

    /// The text that identifies a prompt (what the engine is sent, in either form).
    pub fn prompt_key(&self, prompt: &ChatPrompt) -> Result<String, RemoteError> {
        match &self.template {
            Some(template) => self.render(template, prompt, None),
            None => Ok(serde_json::to_string(&[&prompt.system, &prompt.user]).unwrap_or_default()),
        }
    }

    fn render(
        &self,
        template: &ChatTemplate,
        prompt: &ChatPrompt,
        prefill: Option<&str>,
    ) -> Result<String, RemoteError> {
        let messages = [ChatMessage::system(&prompt.system), ChatMessage::user(&prompt.user)];
        let text = template.render(&messages, true).map_err(|source| RemoteError::Template {
            path: self.config.template.clone().unwrap_or_default(),
            source,
        })?;
        Ok(text + prefill.unwrap_or_default())
    }

    fn messages(prompt: &ChatPrompt, prefill: Option<&str>) -> Value {
        let mut messages =
            vec![json!({"role": "system", "content": prompt.system}), json!({"role": "user", "content": prompt.user})];
        if let Some(prefill) = prefill {
            messages.push(json!({"role": "assistant", "content": prefill}));
        }
        Value::Array(messages)
    }

    /// The requests that score a prompt whose options are `codes`: its first position, and the
    /// position after each digit string an option extends.
    pub fn score_requests(&self, prompt: &ChatPrompt, codes: &[String]) -> Result<Vec<EngineRequest>, RemoteError> {
        let mut requests = vec![self.position_request(prompt, None)?];
        for prefix in digits::branch_prefixes(codes) {
            requests.push(self.position_request(prompt, Some(prefix))?);
        }
        Ok(requests)
    }

    fn position_request(&self, prompt: &ChatPrompt, prefix: Option<String>) -> Result<EngineRequest, RemoteError> {
        let model = &self.config.model;
        Ok(match &self.template {
            Some(template) => EngineRequest {
                path: COMPLETIONS_PATH,
                body: json!({
                    "model": model, "prompt": self.render(template, prompt, prefix.as_deref())?,
                    "max_tokens": 1, "temperature": 0.0, "logprobs": TOP_LOGPROBS,
                }),
                prefix,
            },
            None => {
                let mut body = json!({
                    "model": model, "messages": Self::messages(prompt, prefix.as_deref()),
                    "max_tokens": 1, "temperature": 0.0, "logprobs": true, "top_logprobs": TOP_LOGPROBS,
                });
                if prefix.is_some() {
                    body["continue_final_message"] = json!(true);
                    body["add_generation_prompt"] = json!(false);
                }
                EngineRequest { path: CHAT_PATH, body, prefix }
            }
        })
    }

    /// The request that samples a reply.
    pub fn generation_request(
        &self,
        prompt: &ChatPrompt,
        sampling: &RemoteSampling,
    ) -> Result<EngineRequest, RemoteError> {
        let mut body = json!({
            "model": self.config.model, "temperature": sampling.temperature, "top_p": sampling.top_p,
            "max_tokens": sampling.max_tokens, "seed": sampling.seed,
        });
        if !sampling.stop.is_empty() {
            body["stop"] = json!(sampling.stop);
        }
        let path = match &self.template {
            Some(template) => {
                body["prompt"] = json!(self.render(template, prompt, None)?);
                COMPLETIONS_PATH
            }
            None => {
                body["messages"] = Self::messages(prompt, None);
                CHAT_PATH
            }
        };
        Ok(EngineRequest { path, body, prefix: None })
    }

    /// The option distribution of each prompt (in order), from the server's replies.
    pub async fn score(
        &self,
        prompts: &[(ChatPrompt, Vec<String>)],
        cancel: &CancelToken,
    ) -> Result<Vec<Vec<f64>>, RemoteError> {
        let mut all = Vec::new();
        for (index, (prompt, codes)) in prompts.iter().enumerate() {
            for request in self.score_requests(prompt, codes)? {
                all.push((index, request));
            }
        }
        let replies: Vec<(usize, EngineRequest, Value)> =
            stream::iter(all.into_iter().map(|(index, request)| async move {
                let reply = self.post(&request, cancel).await?;
                Ok::<_, RemoteError>((index, request, reply))
            }))
            .buffered(self.max_in_flight())
            .try_collect()
            .await?;
        let mut positions: Vec<Vec<(Option<String>, Value)>> = vec![Vec::new(); prompts.len()];
        for (index, request, reply) in replies {
            positions[index].push((request.prefix, reply));
        }
        prompts.iter().zip(positions).map(|((_, codes), replies)| self.distribution(codes, &replies)).collect()
    }

    /// A prompt's distribution from the replies to its [`RemoteEngine::score_requests`].
    pub fn distribution(&self, codes: &[String], replies: &[(Option<String>, Value)]) -> Result<Vec<f64>, RemoteError> {
        let reply_error = |message: String| RemoteError::Reply { endpoint: self.endpoint(CHAT_PATH), message };
        let mut first = None;
        let mut branches = BTreeMap::new();
        for (prefix, reply) in replies {
            let (tokens, prompt_tokens) = first_position(reply).map_err(reply_error)?;
            match prefix {
                None => first = Some((tokens, prompt_tokens)),
                Some(prefix) => {
                    branches.insert(prefix.clone(), (tokens, prompt_tokens));
                }
            }
        }
        let (first, first_prompt_tokens) =
            first.ok_or_else(|| reply_error("no reply for the first position".into()))?;
        if self.template.is_none() {
            // A server that continued the assistant message saw one token more (the digit); one
            // that ignored it opened a new turn.
            for (_, branch_prompt_tokens) in branches.values() {
                if let (Some(first), Some(branch)) = (first_prompt_tokens, branch_prompt_tokens) {
                    if *branch != first + 1 {
                        return Err(RemoteError::NoPrefill { endpoint: self.endpoint(CHAT_PATH) });
                    }
                }
            }
        }
        let branches = branches.into_iter().map(|(prefix, (tokens, _))| (prefix, tokens)).collect();
        digits::option_distribution(codes, &first, &branches).map_err(reply_error)
    }

    /// Samples a reply to each prompt (in order).
    pub async fn generate(
        &self,
        prompts: &[(ChatPrompt, RemoteSampling)],
        cancel: &CancelToken,
    ) -> Result<Vec<String>, RemoteError> {
        let requests = prompts
            .iter()
            .map(|(prompt, sampling)| self.generation_request(prompt, sampling))
            .collect::<Result<Vec<_>, _>>()?;
        stream::iter(requests.into_iter().map(|request| async move {
            let reply = self.post(&request, cancel).await?;
            reply_text(&reply).map_err(|message| RemoteError::Reply { endpoint: self.endpoint(CHAT_PATH), message })
        }))
        .buffered(self.max_in_flight())
        .try_collect()
        .await
    }

    /// Sends a request, retrying connection failures, timeouts, 429 and 5xx answers with
    /// exponential backoff (or the server's `Retry-After`).
    async fn post(&self, request: &EngineRequest, cancel: &CancelToken) -> Result<Value, RemoteError> {
        let url = format!("{}{}", self.base_url, request.path);
        let endpoint = self.endpoint(request.path);
        let mut backoff = FIRST_BACKOFF;
        let mut tries = 0;
        loop {
            if cancel.is_cancelled() {
                return Err(RemoteError::Cancelled);
            }
            tries += 1;
            let outcome = {
                let _permit = self.in_flight.acquire().await.map_err(|_| RemoteError::Cancelled)?;
                let mut builder = self.client.post(&url).json(&request.body);
                if let Some(key) = &self.api_key {
                    builder = builder.bearer_auth(key);
                }
                builder.send().await
            };
            let (retry, error, wait) = match outcome {
                Ok(response) if response.status().is_success() => {
                    return response.json::<Value>().await.map_err(|error| RemoteError::Reply {
                        endpoint: endpoint.clone(),
                        message: format!("not JSON: {error}"),
                    });
                }
                Ok(response) => {
                    let status = response.status().as_u16();
                    let retry_after = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|value| value.to_str().ok())
                        .and_then(|value| value.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let body = response.text().await.unwrap_or_default();
                    let message = reply::error_message(&body);
                    let retry = status == 408 || status == 429 || status >= 500;
                    (retry, RemoteError::Status { endpoint: endpoint.clone(), status, message }, retry_after)
                }
                Err(error) => {
                    // Its message would name the address otherwise.
                    let error = error.without_url();
                    let retry = error.is_connect() || error.is_timeout() || error.is_request();
                    (retry, RemoteError::Http { endpoint: endpoint.clone(), message: error_chain(&error) }, None)
                }
            };
            if !retry || tries >= MAX_TRIES {
                return Err(error);
            }
            let wait = wait.unwrap_or(backoff).min(MAX_BACKOFF);
            tracing::warn!(%url, try_number = tries, wait_ms = wait.as_millis() as u64, "retrying: {error}");
            tokio::time::sleep(wait).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

/// An error with its causes ("error sending request: connection refused").
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests;
