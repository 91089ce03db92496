//! The calibrations of a scoring-mode Answer or Evaluate stage (the run option `calibration`):
//! before answering, the priors its pending answers need are read from the store or estimated
//! with the model (the same adapter as the answers) and stored, each once; every answer is then
//! divided by its prior. The arithmetic and the stand-in questions are in
//! [`crate::pipeline::calibration`].
//!
//! Prior keys: `{stage}/content_free/{variant}/{culture or -}/{sha256 of the content-free prompt,
//! 16 hex}` and `{stage}/permutation/{variant}/{culture or -}/{option codes}`. The stage is part
//! of the key because an Evaluate stage answers the same set as the Answer stage before it with
//! the adapters the run trained: its priors are the adapted model's, not the base model's.

use std::collections::{BTreeMap, HashMap};

use rand::rngs::ChaCha8Rng;
use rand::SeedableRng;
use sha2::{Digest, Sha256};
use shared::{Calibration, Question, Run, RunEvent, Stage};

use super::score::{score_items, ScoreItem};
use super::work::{render_prompt, Prompt, StageAdapters, WorkItem};
use super::{Runner, RunnerError};
use crate::engine::AdapterChoice;
use crate::pipeline::calibration::{
    content_free_question, divide_by_prior, mean_prior, option_codes_key, question_position_prior, rotated_question,
    PERMUTATION_QUESTIONS,
};

/// Stand-in prompts scored per engine job while estimating priors (whole priors at a time).
const PRIOR_JOB_PROMPTS: usize = 64;

/// The priors of a stage and how to apply them.
pub(super) struct Calibrator {
    method: Calibration,
    keys: HashMap<String, String>,
    priors: HashMap<String, Vec<f64>>,
}

/// A prior still to estimate: the stand-in questions to score and how their distributions
/// combine (content-free: the one distribution; permutation: rotations grouped per question).
struct PriorTask {
    key: String,
    adapter: Option<AdapterChoice>,
    stand_ins: Vec<(Question, Prompt)>,
    /// Permutation: how many consecutive stand-ins are the rotations of one question.
    group: usize,
    option_count: usize,
}

impl Calibrator {
    /// The calibrator of a run that does not calibrate.
    pub(super) fn none() -> Self {
        Calibrator { method: Calibration::None, keys: HashMap::new(), priors: HashMap::new() }
    }

    /// Reads the stored priors the pending items need and estimates the missing ones.
    pub(super) async fn prepare(
        runner: &Runner,
        run: &Run,
        stage: Stage,
        question_set: &str,
        questions: &[Question],
        pending: &[&WorkItem<'_>],
        adapters: &StageAdapters,
    ) -> Result<Self, RunnerError> {
        let method = run.config.calibration;
        if method == Calibration::None {
            return Ok(Self::none());
        }
        let stored = runner.store.calibration_priors(run.run_id, question_set).await?;
        let mut keys = HashMap::new();
        let mut tasks: BTreeMap<String, PriorTask> = BTreeMap::new();
        for item in pending {
            let setting = format!("{}/{}", variant_name(item), item.country_code.as_deref().unwrap_or("-"));
            let key = match method {
                Calibration::None => unreachable!("returned above"),
                Calibration::ContentFree => {
                    let stand_in = content_free_question(item.question);
                    let Ok(prompt) = render_prompt(runner, run, &stand_in, item.variant, item.country_code.as_deref())?
                    else {
                        continue; // the real prompt cannot be built either: a recorded skip
                    };
                    let digest = hex(&Sha256::digest(prompt.text.as_bytes())[..8]);
                    let key = format!("{}/content_free/{setting}/{digest}", stage.as_str());
                    if !stored.contains_key(&key) && !tasks.contains_key(&key) {
                        let option_count = stand_in.options.len();
                        let task = PriorTask {
                            key: key.clone(),
                            adapter: adapters.for_item(item),
                            stand_ins: vec![(stand_in, prompt)],
                            group: 1,
                            option_count,
                        };
                        tasks.insert(key.clone(), task);
                    }
                    key
                }
                Calibration::Permutation => {
                    let codes = option_codes_key(item.question);
                    let key = format!("{}/permutation/{setting}/{codes}", stage.as_str());
                    if !stored.contains_key(&key) && !tasks.contains_key(&key) {
                        let task = permutation_task(runner, run, questions, item, &key, &codes, adapters)?;
                        tasks.insert(key.clone(), task);
                    }
                    key
                }
            };
            keys.insert(item_id(item), key);
        }
        let mut priors = stored;
        if !tasks.is_empty() {
            let prompts: usize = tasks.values().map(|task| task.stand_ins.len()).sum();
            let message = format!(
                "calibration ({}): estimating {} priors from {prompts} stand-in prompts",
                method.as_str(),
                tasks.len()
            );
            runner.emit(run.run_id, RunEvent::Log { message }).await?;
            estimate(runner, run, question_set, tasks.into_values().collect(), &mut priors).await?;
        }
        Ok(Calibrator { method, keys, priors })
    }

    /// The calibrated distribution of an item's raw one (the raw one itself without calibration).
    pub(super) fn calibrate(&self, item: &WorkItem<'_>, raw: &[f64]) -> Vec<f64> {
        if self.method == Calibration::None {
            return raw.to_vec();
        }
        self.keys
            .get(&item_id(item))
            .and_then(|key| self.priors.get(key))
            .and_then(|prior| divide_by_prior(raw, prior))
            .unwrap_or_else(|| raw.to_vec())
    }

    pub(super) fn calibrates(&self) -> bool {
        self.method != Calibration::None
    }
}

fn item_id(item: &WorkItem<'_>) -> String {
    format!("{}/{}", item.country_code.as_deref().unwrap_or("-"), item.question.question_id) + "/" + &variant_name(item)
}

fn variant_name(item: &WorkItem<'_>) -> String {
    item.variant.label().to_string()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The PriDe task of an item's setting and option codes: a seeded sample of the stage's questions
/// with those codes (the seed is the run's, mixed with the codes so that each code set draws its
/// own), every cyclic rotation of each.
fn permutation_task(
    runner: &Runner,
    run: &Run,
    questions: &[Question],
    item: &WorkItem<'_>,
    key: &str,
    codes: &str,
    adapters: &StageAdapters,
) -> Result<PriorTask, RunnerError> {
    let candidates: Vec<&Question> = questions.iter().filter(|q| option_codes_key(q) == codes).collect();
    let digest = Sha256::digest(codes.as_bytes());
    let mix = u64::from_le_bytes(digest[..8].try_into().unwrap_or([0; 8]));
    let mut rng = ChaCha8Rng::seed_from_u64(run.config.seed ^ mix);
    let mut chosen: Vec<usize> =
        rand::seq::index::sample(&mut rng, candidates.len(), candidates.len().min(PERMUTATION_QUESTIONS)).into_vec();
    chosen.sort_unstable();
    let option_count = item.question.options.len();
    let mut stand_ins = Vec::new();
    for index in chosen {
        let mut rotations = Vec::with_capacity(option_count);
        for shift in 0..option_count {
            let rotated = rotated_question(candidates[index], shift);
            match render_prompt(runner, run, &rotated, item.variant, item.country_code.as_deref())? {
                Ok(prompt) => rotations.push((rotated, prompt)),
                Err(_) => break, // this question has no prompt in this setting: not in the sample
            }
        }
        if rotations.len() == option_count {
            stand_ins.extend(rotations);
        }
    }
    Ok(PriorTask {
        key: key.to_string(),
        adapter: adapters.for_item(item),
        stand_ins,
        group: option_count,
        option_count,
    })
}

/// Scores the tasks' stand-ins, whole tasks per engine job, and stores each job's priors in one
/// transaction. A task with nothing to score gets the uniform prior (no change).
async fn estimate(
    runner: &Runner,
    run: &Run,
    question_set: &str,
    tasks: Vec<PriorTask>,
    priors: &mut HashMap<String, Vec<f64>>,
) -> Result<(), RunnerError> {
    let mut batches: Vec<Vec<PriorTask>> = Vec::new();
    for task in tasks {
        let fits = batches.last().is_some_and(|batch| {
            batch[0].adapter == task.adapter
                && batch.iter().map(|t| t.stand_ins.len()).sum::<usize>() + task.stand_ins.len() <= PRIOR_JOB_PROMPTS
        });
        match batches.last_mut() {
            Some(batch) if fits => batch.push(task),
            _ => batches.push(vec![task]),
        }
    }
    for batch in batches {
        if runner.cancel.is_cancelled() {
            return Err(crate::engine::EngineError::Cancelled.into());
        }
        let items: Vec<ScoreItem> = batch
            .iter()
            .flat_map(|task| {
                task.stand_ins.iter().enumerate().map(|(index, (question, prompt))| ScoreItem {
                    id: format!("{}#{index}", task.key),
                    prompt: prompt.clone(),
                    question,
                })
            })
            .collect();
        let mut distributions = score_items(runner, run, batch[0].adapter.clone(), &items).await?.into_iter();
        let mut estimated = Vec::with_capacity(batch.len());
        for task in &batch {
            let own: Vec<Vec<f64>> = distributions.by_ref().take(task.stand_ins.len()).collect();
            let uniform = vec![1.0 / task.option_count.max(1) as f64; task.option_count];
            let prior = if own.is_empty() {
                uniform
            } else {
                let per_question: Vec<Vec<f64>> =
                    own.chunks(task.group.max(1)).filter_map(question_position_prior).collect();
                mean_prior(&per_question).unwrap_or(uniform)
            };
            estimated.push((task.key.clone(), prior));
        }
        let mut transaction = runner.store.begin().await?;
        transaction.insert_calibration_priors(run.run_id, question_set, &estimated).await?;
        transaction.commit().await?;
        priors.extend(estimated);
    }
    Ok(())
}
