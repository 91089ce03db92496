//! Cloze scoring (the formulation OLMES uses for small models, Gu et al. 2024): each option's
//! text is scored as the reply, and the options are compared by their log-likelihood per
//! character. The distribution over options is the softmax of those normalised scores.

use serde::{Deserialize, Serialize};

use super::batch::PrefixCache;
use super::error::{EngineError, Result};
use super::model::{log_sum_exp, LlamaModel, SequenceInput};
use super::scoring::OptionScores;
use super::tokenizer::TextTokenizer;

/// A fully templated prompt, its option codes and the text of each option (in the same order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClozePrompt {
    pub id: String,
    pub text: String,
    pub choices: Vec<String>,
    pub option_texts: Vec<String>,
}

/// One prompt's options scored as continuations; returns the scores and the tokens evaluated.
/// The prompt (all but its last token) goes through `prefix_cache`, so consecutive prompts that
/// share a start compute it once.
pub fn score_cloze(
    model: &LlamaModel,
    tokenizer: &TextTokenizer,
    prefix_cache: &mut PrefixCache,
    prompt: &ClozePrompt,
) -> Result<(OptionScores, usize)> {
    if prompt.choices.is_empty() {
        return Err(EngineError::NoOptions { id: prompt.id.clone() });
    }
    if prompt.choices.len() != prompt.option_texts.len() {
        return Err(EngineError::InvalidBatch(format!(
            "prompt {}: {} option codes but {} option texts",
            prompt.id,
            prompt.choices.len(),
            prompt.option_texts.len()
        )));
    }
    let tokens = tokenizer.encode(&prompt.text)?;
    let Some((&last, start)) = tokens.split_last() else {
        return Err(EngineError::EmptyPrompt { id: prompt.id.clone() });
    };
    let options = prompt
        .option_texts
        .iter()
        .map(|text| {
            let ids = tokenizer.encode(text)?;
            if ids.is_empty() {
                return Err(EngineError::InvalidBatch(format!("prompt {}: option {text:?} has no tokens", prompt.id)));
            }
            Ok(ids)
        })
        .collect::<Result<Vec<_>>>()?;
    let context = model.config().context_length;
    let longest = options.iter().map(Vec::len).max().unwrap_or(0);
    if tokens.len() + longest > context {
        return Err(EngineError::PromptTooLong { id: prompt.id.clone(), tokens: tokens.len() + longest, context });
    }
    let (past, computed) = prefix_cache.prepare(model, start)?;
    // Each option continues the prompt from its last token: row j predicts the option's token j.
    let sequences: Vec<Vec<u32>> =
        options.iter().map(|ids| std::iter::once(last).chain(ids[..ids.len() - 1].iter().copied()).collect()).collect();
    let inputs: Vec<SequenceInput> =
        sequences.iter().map(|tokens| SequenceInput { tokens, branch_tokens: &[] }).collect();
    let hidden = model.forward_every_row(past.as_ref(), &inputs)?;
    let logits = model.logits(&hidden)?.to_vec2::<f32>()?;
    let mut row = 0;
    let mut normalised = Vec::with_capacity(options.len());
    for (ids, text) in options.iter().zip(&prompt.option_texts) {
        let mut log_likelihood = 0.0;
        for &id in ids {
            let logits = &logits[row];
            log_likelihood += f64::from(logits[id as usize]) - log_sum_exp(logits);
            row += 1;
        }
        normalised.push(log_likelihood / text.chars().count().max(1) as f64);
    }
    let max = normalised.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let weights: Vec<f64> = normalised.iter().map(|s| (s - max).exp()).collect();
    let total: f64 = weights.iter().sum();
    let probs: Vec<f64> = weights.iter().map(|w| w / total).collect();
    let best = probs.iter().enumerate().fold(0, |best, (i, p)| if *p > probs[best] { i } else { best });
    let evaluated = computed + sequences.iter().map(Vec::len).sum::<usize>();
    Ok((OptionScores { probs, answer: prompt.choices[best].clone() }, evaluated))
}
