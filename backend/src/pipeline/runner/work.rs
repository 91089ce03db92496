//! What an Answer or Evaluate stage works on: one prompt to answer (a question in a setting),
//! its rendered prompt, and the adapter that answers it. The answering
//! ([`super::answer`]) and the calibration ([`super::calibrate`]) both take them from here.

use std::collections::HashMap;

use shared::{PromptVariant, Question, Run, RunEvent, Stage, TrainingMode};

use super::train::{adapters_dir, JOINT_ADAPTER};
use super::{Runner, RunnerError};
use crate::engine::AdapterChoice;
use crate::pipeline::answer_prompt::{placed_answer_prompt, AnswerPromptError};
use crate::remote::ChatPrompt;
use crate::store::AnswerKey;

/// One prompt to answer: a question in a setting.
pub(super) struct WorkItem<'a> {
    pub question: &'a Question,
    pub variant: PromptVariant,
    pub country_code: Option<String>,
}

impl WorkItem<'_> {
    pub(super) fn key(&self, question_set: &str) -> AnswerKey {
        AnswerKey {
            question_set: question_set.to_string(),
            question_id: self.question.question_id.clone(),
            country_code: self.country_code.clone(),
            variant: self.variant,
        }
    }

    pub(super) fn prompt_id(&self) -> String {
        format!(
            "{}/{}/{}",
            self.variant.label(),
            self.country_code.as_deref().unwrap_or("-"),
            self.question.question_id
        )
    }
}

/// Which adapter answers which prompt: none, one for all (a configured adapter, or the run's
/// culture-joint one when it evaluates after training), or one per culture (culture-specific
/// training: each culture's culture-aware prompts with its own adapter, unaware ones with the base).
#[derive(Debug, Default)]
pub(super) struct StageAdapters {
    all: Option<AdapterChoice>,
    per_culture: HashMap<String, AdapterChoice>,
}

impl StageAdapters {
    pub(super) fn for_item(&self, item: &WorkItem<'_>) -> Option<AdapterChoice> {
        if let Some(choice) = &self.all {
            return Some(choice.clone());
        }
        item.country_code.as_ref().and_then(|code| self.per_culture.get(code).cloned())
    }
}

/// Loads the stage's adapters into the engine (named by their folder, so runs never mix them up).
pub(super) async fn stage_adapters(runner: &Runner, run: &Run, stage: Stage) -> Result<StageAdapters, RunnerError> {
    let load = |path: std::path::PathBuf, merged: bool| {
        let engine = runner.engine.local("answering with an adapter").cloned();
        async move {
            let engine = engine?;
            let name = path.display().to_string();
            let loaded = tokio::task::spawn_blocking(move || engine.load_adapter(name.clone(), &path).map(|_| name));
            Ok::<_, RunnerError>(AdapterChoice { name: loaded.await??, merged })
        }
    };
    if stage == Stage::Evaluate && run.config.stages.contains(&Stage::Train) {
        let root = adapters_dir(runner, run.run_id)?;
        return match run.config.training.mode {
            TrainingMode::Joint => {
                Ok(StageAdapters { all: Some(load(root.join(JOINT_ADAPTER), true).await?), ..Default::default() })
            }
            TrainingMode::Specific => {
                let mut per_culture = HashMap::new();
                let mut without = Vec::new();
                for culture in &runner.survey.cultures {
                    let dir = root.join(&culture.country_code);
                    if dir.join(crate::engine::lora::ADAPTER_WEIGHTS_FILE).exists() {
                        per_culture.insert(culture.country_code.clone(), load(dir, true).await?);
                    } else {
                        without.push(culture.country_code.clone());
                    }
                }
                if !without.is_empty() {
                    let message = format!(
                        "no culture-specific adapter (no instances) for {}: answered by the base model",
                        without.join(", ")
                    );
                    runner.emit(run.run_id, RunEvent::Log { message }).await?;
                }
                Ok(StageAdapters { all: None, per_culture })
            }
        };
    }
    match &run.config.adapter {
        Some(adapter) => Ok(StageAdapters {
            all: Some(load(adapter.path.clone().into(), adapter.merged).await?),
            ..Default::default()
        }),
        None => Ok(StageAdapters::default()),
    }
}

/// A prompt as the run's engine takes it: the exchange, and its text (the templated prompt for
/// the in-process engine; for a remote one what it is sent, which identifies it).
#[derive(Debug, Clone)]
pub(super) struct Prompt {
    pub chat: ChatPrompt,
    pub text: String,
}

/// The prompt of a question in a setting, in the run's persona placement; the inner error is a
/// prompt that cannot be built (recorded as a skip).
pub(super) fn render_prompt(
    runner: &Runner,
    run: &Run,
    question: &Question,
    variant: PromptVariant,
    country_code: Option<&str>,
) -> Result<Result<Prompt, AnswerPromptError>, RunnerError> {
    match placed_answer_prompt(&runner.survey, question, variant, country_code, run.config.persona) {
        Ok(chat) => Ok(Ok(runner.engine.prompt(ChatPrompt { system: chat.system, user: chat.user })?)),
        Err(error) => Ok(Err(error)),
    }
}

/// A pending prompt and its rendering; the inner error is a prompt that cannot be built (stored
/// as a recorded skip). Rendered once per stage: the order and the answering both read it.
pub(super) struct Rendered<'w, 'q> {
    pub item: &'w WorkItem<'q>,
    pub prompt: Result<Prompt, AnswerPromptError>,
}

/// Renders each item's prompt, in the items' order.
pub(super) fn render_all<'w, 'q>(
    runner: &Runner,
    run: &Run,
    items: &[&'w WorkItem<'q>],
) -> Result<Vec<Rendered<'w, 'q>>, RunnerError> {
    items
        .iter()
        .map(|&item| {
            let prompt = render_prompt(runner, run, item.question, item.variant, item.country_code.as_deref())?;
            Ok(Rendered { item, prompt })
        })
        .collect()
}

/// `rendered` in the order an engine answers them fastest: by adapter, then by prompt text, so
/// that prompts sharing a start are neighbours and each chunk computes the start once. A P3 prompt
/// differs from the same question's prompt for another culture only in the example answers, while
/// two questions of one culture share no more than the instructions: sorted, a chunk of P3 prompts
/// computes 2.6 times fewer characters (the 259 questions × 18 cultures, chunks of 32). P1's
/// order hardly changes: its system prompt already groups a culture. What is stored does not
/// depend on the order, only how soon. A prompt that cannot be built sorts first.
pub(super) fn shared_starts_together<'w, 'q>(
    adapters: &StageAdapters,
    rendered: Vec<Rendered<'w, 'q>>,
) -> Vec<Rendered<'w, 'q>> {
    let keyed = rendered
        .into_iter()
        .map(|entry| {
            let adapter = adapters.for_item(entry.item).map(|choice| choice.name);
            let text = entry.prompt.as_ref().map(|prompt| prompt.text.clone()).unwrap_or_default();
            (adapter, text, entry)
        })
        .collect();
    sort_by_shared_start(keyed)
}

/// Sorts `(adapter, prompt text, item)` by adapter, then text (stable), and keeps the items.
fn sort_by_shared_start<T>(mut keyed: Vec<(Option<String>, String, T)>) -> Vec<T> {
    keyed.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    keyed.into_iter().map(|(_, _, item)| item).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::answer_prompt::answer_prompt;
    use crate::survey::SurveyData;

    /// Characters each prompt has beyond its common start with the previous one, a chunk of 32
    /// starting afresh: what an engine that shares prefixes within a chunk computes.
    fn computed_characters(texts: &[&String]) -> usize {
        texts
            .chunks(32)
            .map(|chunk| {
                let mut previous = "";
                chunk
                    .iter()
                    .map(|text| {
                        let shared = text.bytes().zip(previous.bytes()).take_while(|(a, b)| a == b).count();
                        previous = text.as_str();
                        text.len() - shared
                    })
                    .sum::<usize>()
            })
            .sum()
    }

    #[test]
    fn sorted_p3_prompts_share_their_starts_and_each_adapters_prompts_stay_together() {
        let survey = SurveyData::embedded().unwrap();
        let questions = &survey.questions[..40];
        // Culture by culture, as a stage lists them.
        let mut listed = Vec::new();
        for culture in &survey.cultures {
            for question in questions {
                let chat = answer_prompt(&survey, question, PromptVariant::P3, Some(&culture.country_code)).unwrap();
                listed.push((culture.country_code.clone(), format!("{}\n{}", chat.system, chat.user)));
            }
        }
        let texts: Vec<&String> = listed.iter().map(|(_, text)| text).collect();
        let listed_cost = computed_characters(&texts);

        // One adapter for all (or none): a question's cultures come together.
        let sorted = sort_by_shared_start(listed.iter().map(|(_, text)| (None, text.clone(), text)).collect());
        assert_eq!(sorted.len(), listed.len());
        let sorted_cost = computed_characters(&sorted);
        assert!(2 * sorted_cost < listed_cost, "{sorted_cost} of {listed_cost} characters");

        // An adapter per culture: each culture's prompts stay one run, sorted within it.
        let by_adapter = sort_by_shared_start(
            listed.iter().map(|(code, text)| (Some(code.clone()), text.clone(), (code, text))).collect(),
        );
        let mut codes: Vec<&String> = by_adapter.iter().map(|(code, _)| *code).collect();
        codes.dedup();
        assert_eq!(codes.len(), survey.cultures.len(), "one run per adapter");
        for run in by_adapter.chunks(questions.len()) {
            assert!(run.windows(2).all(|pair| pair[0].1 <= pair[1].1));
        }
    }
}
