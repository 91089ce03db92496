//! A general-ability probe, to check that culture alignment does not cost the model its general
//! abilities: perplexity on a held-out general text and accuracy on a small multiple-choice set,
//! for the base model or the model with an adapter (merged).

use candle_core::DType;
use serde::{Deserialize, Serialize};

use super::batch::BatchLimits;
use super::chat_template::ChatTemplate;
use super::error::{EngineError, Result};
use super::loader::LoadedModel;
use super::lora::LoraAdapter;
use super::model::LlamaModel;
use super::scoring::{ScorePrompt, Scorer};
use super::tokenizer::TextTokenizer;
use super::train::{answer_loss, TrainingExample};

/// Tokens per perplexity window (each window is scored from its own first token).
pub const PERPLEXITY_WINDOW: usize = 256;

/// One multiple-choice question; `answer` is the 1-based number of the right option.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct ChoiceQuestion {
    pub id: String,
    pub question: String,
    pub options: Vec<String>,
    pub answer: usize,
}

/// Reads multiple-choice questions, one JSON object per line; `source` names them in errors.
pub fn parse_choice_questions(text: &str, source: &str) -> Result<Vec<ChoiceQuestion>> {
    let mut questions = Vec::new();
    for (index, line) in text.lines().enumerate().filter(|(_, line)| !line.trim().is_empty()) {
        let broken = |reason: String| EngineError::InvalidTrainingData { path: source.into(), line: index + 1, reason };
        let question: ChoiceQuestion = serde_json::from_str(line).map_err(|e| broken(e.to_string()))?;
        if !(2..=9).contains(&question.options.len()) {
            return Err(broken(format!("{} options (2 to 9 can be scored)", question.options.len())));
        }
        if !(1..=question.options.len()).contains(&question.answer) {
            return Err(broken(format!("answer {} is not an option number", question.answer)));
        }
        questions.push(question);
    }
    Ok(questions)
}

/// What the probe measured for one model setting.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeReport {
    /// `base` or the adapter's folder.
    pub setting: String,
    /// exp(mean negative log-likelihood per predicted token) of the general text.
    pub perplexity: f64,
    pub tokens_predicted: usize,
    pub multiple_choice_accuracy: f64,
    pub multiple_choice_correct: usize,
    pub multiple_choice_questions: usize,
    /// How often the model chose option 1 (a model that always says 1 scores only by luck).
    pub chose_first_option: f64,
}

/// Perplexity of `text` under `model`, in windows of [`PERPLEXITY_WINDOW`] tokens.
pub fn perplexity(model: &LlamaModel, tokenizer: &TextTokenizer, text: &str) -> Result<(f64, usize)> {
    perplexity_of_tokens(model, &tokenizer.encode(text)?)
}

/// Perplexity of a token sequence and the number of tokens predicted: each window is an example
/// whose first token is the prompt and the rest the target of the training loss.
pub fn perplexity_of_tokens(model: &LlamaModel, tokens: &[u32]) -> Result<(f64, usize)> {
    let window = PERPLEXITY_WINDOW.min(model.config().context_length);
    let mut total_nll = 0.0;
    let mut predicted = 0;
    for chunk in tokens.chunks(window).filter(|chunk| chunk.len() > 1) {
        let example = TrainingExample {
            id: "the probe text".into(),
            prompt_tokens: chunk[..1].to_vec(),
            target_tokens: chunk[1..].to_vec(),
        };
        let (loss, count) = answer_loss(model, &[&example])?;
        total_nll += loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
        predicted += count;
    }
    if predicted == 0 {
        return Err(EngineError::EmptyPrompt { id: "the probe text".into() });
    }
    Ok(((total_nll / predicted as f64).exp(), predicted))
}

/// The prompt of a multiple-choice question.
pub fn choice_prompt(template: &ChatTemplate, question: &ChoiceQuestion) -> Result<String> {
    let options: Vec<String> =
        question.options.iter().enumerate().map(|(index, option)| format!("{}. {option}", index + 1)).collect();
    let user = format!(
        "Question: {}\nOptions: {}\nPlease return the number of the correct option only.",
        question.question,
        options.join(" ")
    );
    template.render_exchange("You are a helpful assistant. Answer the question correctly.", &user)
}

/// Runs the probe on the loaded model, with `adapter` merged into a copy of its weights if given.
pub fn run_probe(
    loaded: &LoadedModel,
    adapter: Option<(&str, &LoraAdapter)>,
    text: &str,
    questions: &[ChoiceQuestion],
) -> Result<ProbeReport> {
    let model = match adapter {
        Some((_, adapter)) => loaded.model.merged_with(adapter)?,
        None => loaded.model.clone(),
    };
    let (perplexity, tokens_predicted) = perplexity(&model, &loaded.tokenizer, text)?;
    let template = loaded.chat_template()?;
    let scorer = Scorer::new(&model, &loaded.tokenizer, BatchLimits::default())?;
    let context = model.config().context_length;
    let prepared = questions
        .iter()
        .map(|question| {
            let prompt = ScorePrompt {
                id: question.id.clone(),
                text: choice_prompt(template, question)?,
                choices: (1..=question.options.len()).map(|n| n.to_string()).collect(),
            };
            scorer.prepare(&loaded.tokenizer, context, &prompt)
        })
        .collect::<Result<Vec<_>>>()?;
    let mut answers = vec![String::new(); questions.len()];
    scorer.score_all(
        &model,
        &prepared,
        || false,
        |first, batch, _| {
            for (offset, scores) in batch.into_iter().enumerate() {
                answers[first + offset] = scores.answer;
            }
        },
    )?;
    let correct = questions.iter().zip(&answers).filter(|(q, a)| a.parse::<usize>().ok() == Some(q.answer)).count();
    let first = answers.iter().filter(|a| a.as_str() == "1").count();
    let count = questions.len().max(1) as f64;
    Ok(ProbeReport {
        setting: adapter.map_or_else(|| "base".to_string(), |(name, _)| name.to_string()),
        perplexity,
        tokens_predicted,
        multiple_choice_accuracy: correct as f64 / count,
        multiple_choice_correct: correct,
        multiple_choice_questions: questions.len(),
        chose_first_option: first as f64 / count,
    })
}
