//! Scoring prompts in the run's formulation (digit labels or cloze), for the Answer stage and
//! for the calibrations that score stand-in prompts.

use shared::{Question, Run, ScoringFormulation};

use super::inference::{remote_error, RunEngine};
use super::work::Prompt;
use super::{Runner, RunnerError};
use crate::engine::{AdapterChoice, ClozePrompt, ScorePrompt};

/// A templated prompt for a question.
pub(super) struct ScoreItem<'a> {
    pub id: String,
    pub prompt: Prompt,
    pub question: &'a Question,
}

/// The option distribution of every item (in option order), in one engine job.
pub(super) async fn score_items(
    runner: &Runner,
    run: &Run,
    adapter: Option<AdapterChoice>,
    items: &[ScoreItem<'_>],
) -> Result<Vec<Vec<f64>>, RunnerError> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let engine = match &runner.engine {
        RunEngine::Local(engine) => engine,
        RunEngine::Remote(remote) => {
            // The validator keeps adapters and cloze scoring to the in-process engine.
            let prompts: Vec<_> =
                items.iter().map(|item| (item.prompt.chat.clone(), item.question.option_codes())).collect();
            return remote.score(&prompts, &runner.cancel).await.map_err(remote_error);
        }
    };
    let job = match run.config.scoring {
        ScoringFormulation::Digits => {
            let prompts = items
                .iter()
                .map(|item| ScorePrompt {
                    id: item.id.clone(),
                    text: item.prompt.text.clone(),
                    choices: item.question.option_codes(),
                })
                .collect();
            engine.score_with_adapter(prompts, adapter, runner.cancel.clone(), |_| {})?
        }
        ScoringFormulation::Cloze => {
            let prompts = items
                .iter()
                .map(|item| ClozePrompt {
                    id: item.id.clone(),
                    text: item.prompt.text.clone(),
                    choices: item.question.option_codes(),
                    option_texts: item.question.options.iter().map(|o| o.text.clone()).collect(),
                })
                .collect();
            engine.score_cloze(prompts, adapter, runner.cancel.clone(), |_| {})?
        }
    };
    let outcome = tokio::task::spawn_blocking(move || job.wait()).await??;
    Ok(outcome.scores.into_iter().map(|scores| scores.probs).collect())
}
