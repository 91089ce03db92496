//! Sampling mode: the paper's way of answering, a reply drawn token by token with temperature
//! and nucleus (top-p) sampling from a seeded generator, so the same inputs give the same bytes.

use std::sync::OnceLock;

use regex::Regex;
use serde::{Deserialize, Serialize};

use super::batch::PrefixCache;
use super::error::{EngineError, InvalidSetting, Result};
use super::model::{LlamaModel, SequenceInput};
use super::rng::SeededRng;
use super::tokenizer::TextTokenizer;

/// The paper's answering settings: temperature 0.6, top_p 0.9, at most 256 new tokens, seed 42.
pub const PAPER_TEMPERATURE: f64 = 0.6;
pub const PAPER_TOP_P: f64 = 0.9;
pub const PAPER_MAX_NEW_TOKENS: usize = 256;
pub const PAPER_SEED: u64 = 42;

/// How to draw a reply. Temperature 0 means greedy decoding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SamplingParams {
    pub temperature: f64,
    pub top_p: f64,
    pub max_new_tokens: usize,
    pub seed: u64,
    /// Tokens that end the reply besides the model's end-of-turn tokens.
    #[serde(default)]
    pub stop_tokens: Vec<u32>,
    /// With each reply token, its log-probability and the `top_logprobs` most likely tokens at
    /// that step (the model's distribution at temperature 1, as OpenAI's `logprobs` report them);
    /// 0: none.
    #[serde(default)]
    pub top_logprobs: usize,
}

/// The most alternatives a reply token may carry (OpenAI's bound).
pub const MAX_TOP_LOGPROBS: usize = 20;

impl Default for SamplingParams {
    fn default() -> Self {
        SamplingParams {
            temperature: PAPER_TEMPERATURE,
            top_p: PAPER_TOP_P,
            max_new_tokens: PAPER_MAX_NEW_TOKENS,
            seed: PAPER_SEED,
            stop_tokens: Vec::new(),
            top_logprobs: 0,
        }
    }
}

impl SamplingParams {
    pub fn greedy(max_new_tokens: usize) -> Self {
        SamplingParams {
            temperature: 0.0,
            top_p: 1.0,
            max_new_tokens,
            seed: 0,
            stop_tokens: Vec::new(),
            top_logprobs: 0,
        }
    }

    /// The settings' ranges, naming the field that is out of its range.
    pub fn check(&self) -> std::result::Result<(), InvalidSetting> {
        if !self.temperature.is_finite() || self.temperature < 0.0 {
            return Err(InvalidSetting::new("temperature", format!("{} is not a finite number ≥ 0", self.temperature)));
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return Err(InvalidSetting::new("top_p", format!("{} is not in (0, 1]", self.top_p)));
        }
        if self.max_new_tokens == 0 {
            return Err(InvalidSetting::new("max_new_tokens", "must be at least 1"));
        }
        if self.top_logprobs > MAX_TOP_LOGPROBS {
            return Err(InvalidSetting::new(
                "top_logprobs",
                format!("{} is more than {MAX_TOP_LOGPROBS}", self.top_logprobs),
            ));
        }
        Ok(())
    }

    pub fn validate(&self) -> Result<()> {
        self.check().map_err(|error| EngineError::InvalidSampling(error.to_string()))
    }
}

/// A fully templated prompt to answer by sampling.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GenerationPrompt {
    pub id: String,
    pub text: String,
}

/// Why a reply ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    Stop,
    Length,
}

/// A sampled reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Generation {
    pub text: String,
    pub tokens: Vec<u32>,
    /// The first run of digits in the reply, the paper's parsed answer.
    pub answer: Option<String>,
    pub finish_reason: FinishReason,
    /// Tokens of the prompt the reply continues.
    #[serde(default)]
    pub prompt_tokens: usize,
    /// Per reply token, when the parameters asked for `top_logprobs`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub logprobs: Vec<TokenLogprobs>,
}

/// A token, its text (decoded alone) and its log-probability at one step of a reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenLogprob {
    pub token: u32,
    pub text: String,
    pub logprob: f64,
}

/// A reply token's log-probability and the most likely tokens at its step, most likely first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenLogprobs {
    pub chosen: TokenLogprob,
    pub top: Vec<TokenLogprob>,
}

/// The log-softmax of `logits` at `token`, and the `top` most likely tokens (ties: lower id first).
fn token_logprobs(tokenizer: &TextTokenizer, logits: &[f32], token: u32, top: usize) -> Result<TokenLogprobs> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let log_total = logits.iter().map(|&logit| f64::from(logit - max).exp()).sum::<f64>().ln();
    let logprob = |id: usize| f64::from(logits[id] - max) - log_total;
    let mut order: Vec<usize> = (0..logits.len()).collect();
    let top = top.min(order.len());
    if top > 0 {
        order.select_nth_unstable_by(top - 1, |&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
        order.truncate(top);
        order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    }
    let entry = |id: usize| -> Result<TokenLogprob> {
        Ok(TokenLogprob { token: id as u32, text: tokenizer.decode(&[id as u32], false)?, logprob: logprob(id) })
    };
    Ok(TokenLogprobs {
        chosen: entry(token as usize)?,
        top: order.into_iter().take(top).map(entry).collect::<Result<_>>()?,
    })
}

/// The first `\d+` of a reply.
pub fn parse_answer(reply: &str) -> Option<String> {
    static DIGITS: OnceLock<Option<Regex>> = OnceLock::new();
    let regex = DIGITS.get_or_init(|| Regex::new(r"\d+").ok()).as_ref()?;
    regex.find(reply).map(|m| m.as_str().to_string())
}

/// Picks the next token from full-vocabulary logits.
pub fn choose_token(logits: &[f32], params: &SamplingParams, rng: &mut SeededRng) -> u32 {
    if params.temperature == 0.0 {
        return argmax(logits);
    }
    let scaled: Vec<f64> = logits.iter().map(|&l| f64::from(l) / params.temperature).collect();
    let max = scaled.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let weights: Vec<f64> = scaled.iter().map(|s| (s - max).exp()).collect();
    let total: f64 = weights.iter().sum();
    let mut order: Vec<usize> = (0..weights.len()).collect();
    // Ties keep the lower id first, so the order is fully determined.
    order.sort_by(|&a, &b| weights[b].total_cmp(&weights[a]).then(a.cmp(&b)));
    let mut kept_mass = 0.0;
    let mut kept = 0;
    for &id in &order {
        kept_mass += weights[id];
        kept += 1;
        if kept_mass >= params.top_p * total {
            break;
        }
    }
    let mut target = rng.next_unit() * kept_mass;
    for &id in &order[..kept] {
        target -= weights[id];
        if target < 0.0 {
            return id as u32;
        }
    }
    order[kept - 1] as u32
}

fn argmax(values: &[f32]) -> u32 {
    values.iter().enumerate().fold(0, |best, (i, v)| if *v > values[best] { i } else { best }) as u32
}

/// Draws one reply for `prompt_tokens`, reusing the cached key/values of a common prefix.
pub fn generate(
    model: &LlamaModel,
    tokenizer: &TextTokenizer,
    prefix_cache: &mut PrefixCache,
    prompt_tokens: &[u32],
    params: &SamplingParams,
    mut should_stop: impl FnMut() -> bool,
) -> Result<(Generation, usize)> {
    let Some((&last, prefix)) = prompt_tokens.split_last() else {
        return Err(EngineError::InvalidBatch("an empty prompt cannot be continued".into()));
    };
    let context = model.config().context_length;
    let (past, mut evaluated) = prefix_cache.prepare(model, prefix)?;
    let mut rng = SeededRng::new(params.seed);
    let mut generated = Vec::new();
    let mut next_input = last;
    let mut cache = past;
    let mut finish_reason = FinishReason::Length;
    let mut logprobs = Vec::new();
    while generated.len() < params.max_new_tokens && prompt_tokens.len() + generated.len() < context {
        if should_stop() {
            return Err(EngineError::Cancelled);
        }
        let input = [next_input];
        let output = model.forward(cache.as_ref(), &[SequenceInput { tokens: &input, branch_tokens: &[] }], true)?;
        evaluated += 1;
        cache = output.cache;
        let logits = model.logits(&output.hidden)?.squeeze(0)?.to_vec1::<f32>()?;
        let token = choose_token(&logits, params, &mut rng);
        if tokenizer.stop_ids().contains(&token) || params.stop_tokens.contains(&token) {
            finish_reason = FinishReason::Stop;
            break;
        }
        if params.top_logprobs > 0 {
            logprobs.push(token_logprobs(tokenizer, &logits, token, params.top_logprobs)?);
        }
        generated.push(token);
        next_input = token;
    }
    let text = tokenizer.decode(&generated, true)?;
    let answer = parse_answer(&text);
    let prompt_tokens = prompt_tokens.len();
    Ok((Generation { text, tokens: generated, answer, finish_reason, prompt_tokens, logprobs }, evaluated))
}
