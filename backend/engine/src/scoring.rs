//! Scoring mode: the probability of each answer option from one forward pass.
//!
//! P(option c) = P(the reply starts with the digits of c and, where another option extends c, the
//! next token is not a digit), renormalised over the options — the definition of
//! `shared/bench/llamacpp_score.py`. A two-digit code needs the distribution after its first digit:
//! that digit is appended as a branch token, so the same pass yields it.

use std::collections::HashSet;

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::batch::{
    common_prefix_len, plan_batches, BatchLimits, PlanSummary, PlannedSequence, PrefixCache, PrefixTree,
};
use super::error::{EngineError, Result};
use super::model::{log_normalizers, KvCache, LlamaModel, SequenceInput};
use super::schedule::{run_in_order, single_thread_pools, ScheduleStats};
use super::tokenizer::TextTokenizer;

/// A fully templated prompt and its option codes ("1".."n").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScorePrompt {
    pub id: String,
    pub text: String,
    pub choices: Vec<String>,
}

/// The distribution over a prompt's options and the most probable one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OptionScores {
    pub probs: Vec<f64>,
    pub answer: String,
}

/// An option code as digits: one, or two where the first is branched on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CodeDigits {
    One(u8),
    Two(u8, u8),
}

/// A prompt tokenized and checked, with the first digits whose continuation is needed.
#[derive(Debug, Clone)]
pub struct PreparedPrompt {
    pub tokens: Vec<u32>,
    choices: Vec<String>,
    codes: Vec<CodeDigits>,
    branch_digits: Vec<u8>,
    branch_tokens: Vec<u32>,
}

impl PreparedPrompt {
    pub fn branch_count(&self) -> usize {
        self.branch_tokens.len()
    }
}

/// Turns prompts into option distributions with a model and its tokenizer.
pub struct Scorer {
    digit_ids: [u32; 10],
    /// The output head restricted to the ten digit tokens: `[10, hidden]`.
    digit_head: Tensor,
    limits: BatchLimits,
    /// Single-thread pools that each run a whole batch (see [`single_thread_pools`]); none when
    /// batches run on the calling thread with the tensor library's own threads.
    workers: Vec<rayon::ThreadPool>,
}

impl std::fmt::Debug for Scorer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scorer")
            .field("digit_ids", &self.digit_ids)
            .field("limits", &self.limits)
            .field("workers", &self.workers.len())
            .finish()
    }
}

/// Counters of a scoring run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ScoreCounters {
    pub prompts: usize,
    /// Tokens that went through the model (prefix tokens once, not once per prompt).
    pub tokens_evaluated: usize,
}

/// What a scoring run did: its counters, how its batches looked and how busy the workers were.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct ScoreReport {
    pub counters: ScoreCounters,
    pub plans: PlanSummary,
    /// Distinct shared prefixes computed.
    pub prefixes: usize,
    pub schedule: ScheduleStats,
}

impl Scorer {
    pub fn new(model: &LlamaModel, tokenizer: &TextTokenizer, limits: BatchLimits) -> Result<Self> {
        Self::with_digit_ids(model, tokenizer.digit_ids()?, limits)
    }

    /// A scorer for a model whose digit tokens "0".."9" have these ids.
    pub fn with_digit_ids(model: &LlamaModel, digit_ids: [u32; 10], limits: BatchLimits) -> Result<Self> {
        let digit_head = model.head_rows(&digit_ids)?;
        let concurrent = if model.uses_cpu_kernels() {
            limits.concurrent_batches.unwrap_or_else(rayon::current_num_threads)
        } else {
            1
        };
        let workers = if concurrent > 1 { single_thread_pools(concurrent)? } else { Vec::new() };
        let limits = BatchLimits { balance_over: limits.balance_over.max(workers.len()), ..limits };
        Ok(Scorer { digit_ids, digit_head, limits, workers })
    }

    pub fn limits(&self) -> BatchLimits {
        self.limits
    }

    /// Tokenizes and validates one prompt.
    pub fn prepare(
        &self,
        tokenizer: &TextTokenizer,
        context_length: usize,
        prompt: &ScorePrompt,
    ) -> Result<PreparedPrompt> {
        let codes = parse_codes(&prompt.id, &prompt.choices)?;
        let tokens = tokenizer.encode(&prompt.text)?;
        self.prepare_tokens(&prompt.id, tokens, &prompt.choices, codes, context_length)
    }

    /// Validates an already tokenized prompt.
    pub fn prepare_token_prompt(
        &self,
        id: &str,
        tokens: Vec<u32>,
        choices: &[String],
        context_length: usize,
    ) -> Result<PreparedPrompt> {
        let codes = parse_codes(id, choices)?;
        self.prepare_tokens(id, tokens, choices, codes, context_length)
    }

    fn prepare_tokens(
        &self,
        id: &str,
        tokens: Vec<u32>,
        choices: &[String],
        codes: Vec<CodeDigits>,
        context_length: usize,
    ) -> Result<PreparedPrompt> {
        let mut branch_digits = Vec::new();
        for code in &codes {
            if let CodeDigits::Two(first, _) = code {
                if !branch_digits.contains(first) {
                    branch_digits.push(*first);
                }
            }
        }
        if tokens.is_empty() {
            return Err(EngineError::EmptyPrompt { id: id.to_string() });
        }
        let needed = tokens.len() + usize::from(!branch_digits.is_empty());
        if needed > context_length {
            return Err(EngineError::PromptTooLong { id: id.to_string(), tokens: needed, context: context_length });
        }
        let branch_tokens = branch_digits.iter().map(|d| self.digit_ids[usize::from(*d)]).collect();
        Ok(PreparedPrompt { tokens, choices: choices.to_vec(), codes, branch_digits, branch_tokens })
    }

    /// Scores prepared prompts in batches, calling `on_batch` in prompt order after each batch
    /// with the index of its first prompt and its scores; stops with `Cancelled` when
    /// `should_stop` says so. With several workers the batches form a work queue: each worker
    /// computes the next batch (and its prefix, when no one has yet) as soon as it is free.
    /// The results depend on the prompts alone, not on the workers' timing.
    pub fn score_all(
        &self,
        model: &LlamaModel,
        prompts: &[PreparedPrompt],
        should_stop: impl FnMut() -> bool,
        mut on_batch: impl FnMut(usize, Vec<OptionScores>, ScoreCounters),
    ) -> Result<ScoreReport> {
        let planned: Vec<PlannedSequence> =
            prompts.iter().map(|p| PlannedSequence { tokens: &p.tokens, branch_count: p.branch_count() }).collect();
        let plans = plan_batches(&planned, self.limits);
        let plan_summary = PlanSummary::of(&plans, &planned);
        let prefix_lens: Vec<usize> =
            plans.iter().map(|plan| shared_prefix_len(&prompts[plan.members.clone()], plan.prefix_len)).collect();
        let tree = PrefixTree::new(
            plans.iter().zip(&prefix_lens).map(|(plan, &len)| &prompts[plan.members.start].tokens[..len]),
        );
        let mut totals = ScoreCounters::default();
        let schedule = run_in_order(
            &self.workers,
            plans.len(),
            should_stop,
            |index| {
                let members = &prompts[plans[index].members.clone()];
                let (past, computed) = tree.prefix_of(model, index)?;
                let scored = self.score_after(model, past.as_ref(), members, prefix_lens[index]);
                tree.finished(index);
                let (scores, evaluated) = scored?;
                Ok((scores, computed + evaluated))
            },
            |index, (scores, evaluated)| {
                totals.prompts += plans[index].members.len();
                totals.tokens_evaluated += evaluated;
                on_batch(plans[index].members.start, scores, totals);
            },
        )?;
        Ok(ScoreReport { counters: totals, plans: plan_summary, prefixes: tree.len(), schedule })
    }

    /// One forward pass for prompts that share their first `prefix_len` tokens; returns their
    /// scores and the number of tokens evaluated.
    pub fn score_batch(
        &self,
        model: &LlamaModel,
        prefix_cache: &mut PrefixCache,
        members: &[PreparedPrompt],
        prefix_len: usize,
    ) -> Result<(Vec<OptionScores>, usize)> {
        if members.is_empty() {
            return Ok((Vec::new(), 0));
        }
        let prefix_len = shared_prefix_len(members, prefix_len);
        let (past, computed) = prefix_cache.prepare(model, &members[0].tokens[..prefix_len])?;
        let (scores, evaluated) = self.score_after(model, past.as_ref(), members, prefix_len)?;
        Ok((scores, computed + evaluated))
    }

    /// Scores `members` whose first `prefix_len` tokens are in `past`; returns the scores and the
    /// number of tokens evaluated beyond the prefix.
    fn score_after(
        &self,
        model: &LlamaModel,
        past: Option<&KvCache>,
        members: &[PreparedPrompt],
        prefix_len: usize,
    ) -> Result<(Vec<OptionScores>, usize)> {
        let sequences: Vec<SequenceInput> = members
            .iter()
            .map(|p| SequenceInput { tokens: &p.tokens[prefix_len..], branch_tokens: &p.branch_tokens })
            .collect();
        let evaluated = sequences.iter().map(|s| s.tokens.len() + s.branch_tokens.len()).sum::<usize>();
        let hidden = model.forward(past, &sequences, false)?.hidden;
        let digit_logits = model.logits_for(&hidden, &self.digit_head)?.to_vec2::<f32>()?;

        // Branch rows also need their full-vocabulary normaliser: P(next is not a digit) uses it.
        let mut branch_rows = Vec::new();
        let mut row = 0u32;
        for prompt in members {
            row += 1;
            for _ in 0..prompt.branch_count() {
                branch_rows.push(row);
                row += 1;
            }
        }
        let branch_normalizers = if branch_rows.is_empty() {
            Vec::new()
        } else {
            let rows = Tensor::from_slice(&branch_rows, branch_rows.len(), model.device())?;
            log_normalizers(&model.logits(&hidden.index_select(&rows, 0)?)?)?
        };

        let mut scores = Vec::with_capacity(members.len());
        let mut row = 0usize;
        let mut branch = 0usize;
        for prompt in members {
            let main = &digit_logits[row];
            row += 1;
            // Per branch digit: log P(next digit = j | prompt, first digit), j = 0..9.
            let mut continuations: Vec<(u8, [f64; 10])> = Vec::with_capacity(prompt.branch_count());
            for digit in &prompt.branch_digits {
                let normalizer = branch_normalizers[branch];
                let logits = &digit_logits[row];
                let mut log_probs = [0.0f64; 10];
                for (slot, logit) in log_probs.iter_mut().zip(logits) {
                    *slot = f64::from(*logit) - normalizer;
                }
                continuations.push((*digit, log_probs));
                row += 1;
                branch += 1;
            }
            scores.push(option_scores(prompt, main, &continuations));
        }
        Ok((scores, evaluated))
    }
}

/// The prefix every member shares, leaving each at least its last token.
fn shared_prefix_len(members: &[PreparedPrompt], planned: usize) -> usize {
    let first = &members[0].tokens;
    members.iter().fold(planned, |len, p| len.min(common_prefix_len(first, &p.tokens)).min(p.tokens.len() - 1))
}

/// Option codes as digits; scoring handles codes of one or two digits, each used once.
fn parse_codes(id: &str, choices: &[String]) -> Result<Vec<CodeDigits>> {
    if choices.is_empty() {
        return Err(EngineError::NoOptions { id: id.to_string() });
    }
    let mut seen = HashSet::new();
    let mut codes = Vec::with_capacity(choices.len());
    for code in choices {
        if !seen.insert(code.as_str()) {
            return Err(EngineError::DuplicateOption { id: id.to_string(), code: code.clone() });
        }
        let unscorable = || EngineError::UnscorableOption { id: id.to_string(), code: code.clone() };
        if code.is_empty() || !code.bytes().all(|b| b.is_ascii_digit()) {
            return Err(unscorable());
        }
        let digits: Vec<u8> = code.bytes().map(|b| b - b'0').collect();
        codes.push(match digits.as_slice() {
            [d] => CodeDigits::One(*d),
            [first, second] => CodeDigits::Two(*first, *second),
            _ => return Err(unscorable()),
        });
    }
    Ok(codes)
}

/// Renormalised option probabilities from the digit logits after the prompt (their softmax
/// normaliser cancels) and the continuation log-probabilities after branched first digits.
fn option_scores(prompt: &PreparedPrompt, main: &[f32], continuations: &[(u8, [f64; 10])]) -> OptionScores {
    let continuation = |digit: u8| continuations.iter().find(|(d, _)| *d == digit).map(|(_, lp)| lp);
    let log_scores: Vec<f64> = prompt
        .codes
        .iter()
        .map(|code| match *code {
            CodeDigits::One(digit) => {
                let head = f64::from(main[usize::from(digit)]);
                match continuation(digit) {
                    // Another option extends this one: the reply must stop after the digit.
                    Some(log_probs) => {
                        let digit_mass: f64 = log_probs.iter().map(|lp| lp.exp()).sum();
                        head + (1.0 - digit_mass).max(0.0).ln()
                    }
                    None => head,
                }
            }
            CodeDigits::Two(first, second) => {
                let head = f64::from(main[usize::from(first)]);
                match continuation(first) {
                    Some(log_probs) => head + log_probs[usize::from(second)],
                    None => f64::NEG_INFINITY,
                }
            }
        })
        .collect();
    let probs = normalize(&log_scores);
    let best = probs.iter().enumerate().fold(0, |best, (i, p)| if *p > probs[best] { i } else { best });
    OptionScores { probs, answer: prompt.choices[best].clone() }
}

/// Softmax of log-scores; uniform when every score is impossible.
fn normalize(log_scores: &[f64]) -> Vec<f64> {
    let max = log_scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if max == f64::NEG_INFINITY {
        return vec![1.0 / log_scores.len() as f64; log_scores.len()];
    }
    let weights: Vec<f64> = log_scores.iter().map(|s| (s - max).exp()).collect();
    let total: f64 = weights.iter().sum();
    weights.iter().map(|w| w / total).collect()
}
