//! Answer (and Evaluate, the same work over the WVS questions): every question culture-unaware and
//! for each culture in each culture-aware variant, by scoring or by sampling, in chunks that are
//! stored with their progress event in one transaction.

use std::collections::HashSet;

use rand::rngs::ChaCha8Rng;
use rand::SeedableRng;
use shared::{AnswerMode, PromptVariant, Question, QuestionSelection, Run, RunEvent, Stage};

use super::calibrate::Calibrator;
use super::inference::{sample_replies, RunEngine};
use super::score::{score_items, ScoreItem};
use super::work::{render_all, shared_starts_together, stage_adapters, Prompt, Rendered, StageAdapters, WorkItem};
use super::{Runner, RunnerError};
use crate::analysis::option_answer_code;
use crate::engine::{AdapterChoice, SamplingParams};
use crate::pipeline::calibration::argmax;
use crate::store::{AnswerKey, NewAnswer, WVS_SET};

/// Prompts per stored chunk: large enough to batch well, small enough that a kill loses little.
pub const ANSWER_CHUNK: usize = 32;

/// The run's settings in order: unaware once, then each culture-aware variant for each culture.
fn settings(run: &Run, all_cultures: &[String]) -> Vec<(PromptVariant, Option<String>)> {
    let cultures = if run.config.cultures.is_empty() { all_cultures.to_vec() } else { run.config.cultures.clone() };
    let mut settings = Vec::new();
    for &variant in &run.config.variants {
        if variant.is_culture_specific() {
            settings.extend(cultures.iter().map(|code| (variant, Some(code.clone()))));
        } else {
            settings.push((variant, None));
        }
    }
    settings
}

/// The questions of the run: per topic (all topics when none is named), `questions_per_topic` of
/// the set (all of them for 0), the first ones or a sample drawn with the run's seed (kept in the
/// set's order); the Evaluate stage takes every WVS question.
pub(super) async fn run_questions(
    runner: &Runner,
    run: &Run,
    stage: Stage,
    question_set: &str,
) -> Result<Vec<Question>, RunnerError> {
    const ALL: u32 = u32::MAX;
    if stage == Stage::Evaluate {
        return Ok(runner.store.questions(WVS_SET, None, ALL, 0).await?.1);
    }
    let per_topic = if run.config.questions_per_topic == 0 { ALL } else { run.config.questions_per_topic };
    let topics: Vec<u8> = if run.config.topics.is_empty() {
        runner.survey.topics.iter().map(|t| t.index).collect()
    } else {
        run.config.topics.clone()
    };
    let mut questions = Vec::new();
    for topic in topics {
        match run.config.question_selection {
            QuestionSelection::First => {
                questions.extend(runner.store.questions(question_set, Some(topic), per_topic, 0).await?.1)
            }
            QuestionSelection::Random => {
                let all = runner.store.questions(question_set, Some(topic), ALL, 0).await?.1;
                // Each topic draws from its own stream, so one topic's sample never depends on another's.
                let mut rng = ChaCha8Rng::seed_from_u64(run.config.seed.wrapping_add(u64::from(topic)));
                let take = all.len().min(per_topic as usize);
                let mut chosen = rand::seq::index::sample(&mut rng, all.len(), take).into_vec();
                chosen.sort_unstable();
                questions.extend(chosen.into_iter().map(|index| all[index].clone()));
            }
        }
    }
    if questions.is_empty() {
        return Err(RunnerError::Config {
            run_id: run.run_id,
            message: format!("question set '{question_set}' has no questions in the run's topics"),
        });
    }
    Ok(questions)
}

/// Every prompt of the stage in order: culture-major, so that consecutive prompts share the
/// system prompt, which the engine caches.
pub(super) fn stage_work<'q>(runner: &Runner, run: &Run, questions: &'q [Question]) -> Vec<WorkItem<'q>> {
    let all_cultures: Vec<String> = runner.survey.cultures.iter().map(|c| c.country_code.clone()).collect();
    let mut work = Vec::new();
    for (variant, country_code) in settings(run, &all_cultures) {
        work.extend(questions.iter().map(|question| WorkItem {
            question,
            variant,
            country_code: country_code.clone(),
        }));
    }
    work
}

/// The items of `work` with no stored answer yet: what the stage, a batch file or its results
/// still have to answer.
pub(super) async fn pending_work<'w, 'q>(
    runner: &Runner,
    run_id: i64,
    work: &'w [WorkItem<'q>],
    question_set: &str,
) -> Result<Vec<&'w WorkItem<'q>>, RunnerError> {
    let stored: HashSet<AnswerKey> = runner.store.answer_keys(run_id).await?.into_iter().collect();
    Ok(work.iter().filter(|item| !stored.contains(&item.key(question_set))).collect())
}

pub(super) async fn answer_stage(
    runner: &Runner,
    run: &Run,
    stage: Stage,
    question_set: &str,
) -> Result<(), RunnerError> {
    let run_id = run.run_id;
    let questions = run_questions(runner, run, stage, question_set).await?;
    let adapters = stage_adapters(runner, run, stage).await?;
    let work = stage_work(runner, run, &questions);
    let pending = pending_work(runner, run_id, &work, question_set).await?;
    let total = work.len() as u64;
    let mut done = total - pending.len() as u64;
    runner.emit(run_id, RunEvent::StageStarted { stage, total }).await?;
    let calibrator = match run.config.answer_mode {
        AnswerMode::Scoring => {
            Calibrator::prepare(runner, run, stage, question_set, &questions, &pending, &adapters).await?
        }
        AnswerMode::Sampling => Calibrator::none(),
    };
    // Scoring is prefill alone, where shared starts pay (a score does not depend on the order): it
    // renders every prompt once, up front, to order them. Sampling is mostly decoding: it keeps the
    // stage's order and renders a chunk at a time.
    let scoring = run.config.answer_mode == AnswerMode::Scoring;
    let mut sorted = if scoring {
        shared_starts_together(&adapters, render_all(runner, run, &pending)?).into_iter()
    } else {
        Vec::new().into_iter()
    };
    if done > 0 {
        runner
            .emit(run_id, RunEvent::Log { message: format!("{stage:?}: resuming, {done} of {total} answers stored") })
            .await?;
    }

    // A remote server answers many requests at once: a chunk keeps it busy.
    let chunk_size = match &runner.engine {
        RunEngine::Remote(remote) => ANSWER_CHUNK.max(2 * remote.max_in_flight()),
        RunEngine::Local(_) => ANSWER_CHUNK,
    };
    for chunk in pending.chunks(chunk_size) {
        if runner.cancel.is_cancelled() {
            return Err(crate::engine::EngineError::Cancelled.into());
        }
        // The sorted prompts come a chunk at a time, as many as the chunk of `pending` holds.
        let rendered =
            if scoring { sorted.by_ref().take(chunk.len()).collect() } else { render_all(runner, run, chunk)? };
        let answers = answer_chunk(runner, run, question_set, &rendered, &adapters, &calibrator).await?;
        done += answers.len() as u64;
        let mut transaction = runner.store.begin().await?;
        transaction.insert_answers(run_id, &answers).await?;
        let event = runner.emit_in(&mut transaction, run_id, RunEvent::Progress { stage, done, total }).await?;
        super::pause::before_commit().await;
        transaction.commit().await?;
        runner.publish(run_id, event.0, event.1);
        super::pause::after_commit();
    }
    runner.emit(run_id, RunEvent::StageFinished { stage }).await
}

/// Prompts of a chunk answered by one engine job: the adapter, and (position in chunk, prompt).
type PromptGroup<'p> = (Option<AdapterChoice>, Vec<(usize, &'p Prompt)>);

/// Answers one chunk with the model; a prompt that cannot be built is stored as a recorded skip.
async fn answer_chunk(
    runner: &Runner,
    run: &Run,
    question_set: &str,
    rendered: &[Rendered<'_, '_>],
    adapters: &StageAdapters,
    calibrator: &Calibrator,
) -> Result<Vec<NewAnswer>, RunnerError> {
    let chunk: Vec<&WorkItem<'_>> = rendered.iter().map(|entry| entry.item).collect();
    let mut answers: Vec<Option<NewAnswer>> = Vec::with_capacity(chunk.len());
    let mut to_model = Vec::new(); // (position in chunk, prompt)
    let mut skipped = Vec::new();
    for (position, entry) in rendered.iter().enumerate() {
        match &entry.prompt {
            Ok(prompt) => {
                to_model.push((position, prompt));
                answers.push(None);
            }
            Err(error) => {
                skipped.push(format!("{}: {error}", entry.item.prompt_id()));
                answers.push(Some(new_answer(question_set, entry.item, None, None, None)));
            }
        }
    }
    for message in skipped {
        runner.emit(run.run_id, RunEvent::Log { message: format!("skipped {message}") }).await?;
    }
    // One engine job per adapter, prompts in chunk order within each.
    let mut groups: Vec<PromptGroup<'_>> = Vec::new();
    for (position, prompt) in to_model {
        let choice = adapters.for_item(chunk[position]);
        match groups.iter_mut().find(|(existing, _)| *existing == choice) {
            Some((_, members)) => members.push((position, prompt)),
            None => groups.push((choice, vec![(position, prompt)])),
        }
    }
    for (adapter, to_model) in groups {
        match run.config.answer_mode {
            AnswerMode::Scoring => {
                let items: Vec<ScoreItem> = to_model
                    .iter()
                    .map(|(position, prompt)| ScoreItem {
                        id: chunk[*position].prompt_id(),
                        prompt: (*prompt).clone(),
                        question: chunk[*position].question,
                    })
                    .collect();
                let distributions = score_items(runner, run, adapter, &items).await?;
                for ((position, _), raw) in to_model.iter().zip(distributions) {
                    let item = chunk[*position];
                    let calibrated = calibrator.calibrate(item, &raw);
                    let code = argmax(&calibrated).map(|index| item.question.options[index].code);
                    let mut answer = new_answer(question_set, item, None, code, Some(calibrated));
                    answer.raw_distribution = calibrator.calibrates().then_some(raw);
                    answers[*position] = Some(answer);
                }
            }
            AnswerMode::Sampling => {
                let prompts: Vec<(String, Prompt)> = to_model
                    .iter()
                    .map(|(position, prompt)| (chunk[*position].prompt_id(), (*prompt).clone()))
                    .collect();
                let params = SamplingParams { seed: run.config.seed, ..SamplingParams::default() };
                let replies = sample_replies(runner, adapter, prompts, params).await?;
                for ((position, _), reply) in to_model.iter().zip(replies) {
                    let item = chunk[*position];
                    let code = option_answer_code(&reply, item.question);
                    answers[*position] = Some(new_answer(question_set, item, Some(reply), code, None));
                }
            }
        }
    }
    Ok(answers.into_iter().flatten().collect())
}

pub(super) fn new_answer(
    question_set: &str,
    item: &WorkItem<'_>,
    raw_reply: Option<String>,
    parsed_code: Option<u32>,
    distribution: Option<Vec<f64>>,
) -> NewAnswer {
    NewAnswer {
        question_set: question_set.to_string(),
        question_id: item.question.question_id.clone(),
        country_code: item.country_code.clone(),
        variant: item.variant,
        raw_reply,
        parsed_code,
        distribution,
        raw_distribution: None,
    }
}
