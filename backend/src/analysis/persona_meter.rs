//! The persona meter: does a culture persona move a model's answers, and toward that culture's
//! people? Movement is the share of (question, culture) pairs whose culture-aware answer differs
//! from the unaware one and the mean total variation between their distributions; direction is the
//! change of the paper's metric and of 1 − JSD from the unaware to the aware answers of each
//! culture on the same questions, with a 95 % bootstrap interval over the questions (seeded), beside
//! what a uniform answerer scores there. A model that says "1" to everything shows up as a
//! first-option share near 1.

use shared::analysis::{Interval, PersonaDirection, PersonaMeter};
use shared::{PromptVariant, Question};

use super::alignment::{alignment, CodePair, Predictions};
use super::distribution::{compare_to_human, human_over_options, one_minus_js_distance};
use super::run_scores::predictions_from_answers;
use super::AnalysisError;
use crate::engine::rng::SeededRng;
use crate::store::{Store, WVS_SET};
use crate::survey::SurveyData;

const PERCENT: f64 = 100.0;
/// Bootstrap resamples of the questions (and uniform-answerer draws) by default.
pub const DEFAULT_RESAMPLES: u32 = 1000;
pub const DEFAULT_SEED: u64 = 20_240_917;

/// What the meter reads: a run's unaware answers and its culture-aware ones of one variant.
pub struct MeterInput<'a> {
    pub run_id: i64,
    pub variant: PromptVariant,
    pub unaware: &'a Predictions,
    /// (country code, that culture's aware answers).
    pub aware: Vec<(&'a str, &'a Predictions)>,
    pub resamples: u32,
    pub seed: u64,
}

/// The meter of a stored run's `variant` (culture-aware) against its unaware answers, on the WVS
/// questions.
pub async fn run_persona_meter(
    store: &Store,
    survey: &SurveyData,
    run_id: i64,
    variant: PromptVariant,
    resamples: u32,
    seed: u64,
) -> Result<PersonaMeter, AnalysisError> {
    if variant == PromptVariant::Unaware {
        return Err(AnalysisError::Meter(
            "the meter compares a culture-aware variant with the unaware answers; pick one, e.g. P1".into(),
        ));
    }
    let unaware = predictions_from_answers(survey, &store.run_answers(run_id, WVS_SET, PromptVariant::Unaware).await?)?;
    let aware = predictions_from_answers(survey, &store.run_answers(run_id, WVS_SET, variant).await?)?;
    let unaware = unaware
        .iter()
        .find(|persona| persona.country_code.is_none())
        .ok_or_else(|| AnalysisError::Meter(format!("run {run_id} has no unaware answers to compare with")))?;
    let aware: Vec<(&str, &Predictions)> =
        aware.iter().filter_map(|persona| Some((persona.country_code.as_deref()?, &persona.predictions))).collect();
    if aware.is_empty() {
        return Err(AnalysisError::Meter(format!("run {run_id} has no {} answers", variant.label())));
    }
    let input = MeterInput { run_id, variant, unaware: &unaware.predictions, aware, resamples, seed };
    Ok(persona_meter(survey, input))
}

pub fn persona_meter(survey: &SurveyData, input: MeterInput<'_>) -> PersonaMeter {
    let resamples = input.resamples.max(1);
    let mut rng = SeededRng::new(input.seed);
    let is_first = |question: &Question, code: u32| question.options.first().is_some_and(|first| first.code == code);

    let first_unaware = share(
        survey
            .questions
            .iter()
            .filter_map(|question| input.unaware.code(&question.question_id).map(|code| is_first(question, code))),
    );
    let first_aware = share(input.aware.iter().flat_map(|(_, aware)| {
        survey
            .questions
            .iter()
            .filter_map(|question| aware.code(&question.question_id).map(|code| is_first(question, code)))
    }));

    let (mut pairs, mut changed, mut variation) = (0u32, 0u32, Vec::new());
    let mut cultures = Vec::new();
    let mut ordered = input.aware.clone();
    ordered.sort_by_key(|(code, _)| survey.cultures.iter().position(|culture| culture.country_code == *code));
    for (country_code, aware) in ordered {
        for question in &survey.questions {
            let id = &question.question_id;
            if let (Some(a), Some(u)) = (aware.code(id), input.unaware.code(id)) {
                pairs += 1;
                changed += u32::from(a != u);
            }
            if let (Some(a), Some(u)) = (aware.distribution(id), input.unaware.distribution(id)) {
                variation.push(0.5 * a.iter().zip(u).map(|(x, y)| (x - y).abs()).sum::<f64>());
            }
        }
        if let Some(direction) = direction(survey, country_code, input.unaware, aware, resamples, &mut rng) {
            cultures.push(direction);
        }
    }
    let mean_delta_score = mean(&cultures.iter().map(|c| c.delta_score).collect::<Vec<_>>());
    let mean_delta_one_minus_jsd = mean(&cultures.iter().filter_map(|c| c.delta_one_minus_jsd).collect::<Vec<_>>());
    PersonaMeter {
        run_id: input.run_id,
        variant: input.variant,
        variant_label: input.variant.label().to_string(),
        pairs,
        first_option_unaware: first_unaware,
        first_option_aware: first_aware,
        changed: (pairs > 0).then(|| f64::from(changed) / f64::from(pairs)),
        mean_total_variation: mean(&variation),
        cultures,
        mean_delta_score,
        mean_delta_one_minus_jsd,
        resamples,
        seed: input.seed,
    }
}

/// One question of a culture's direction: both codes, the human majority and option count, and
/// both 1 − JSD values where the distributions are there.
struct Scored<'a> {
    question: &'a Question,
    unaware: u32,
    aware: u32,
    gold: u32,
    jsd: Option<(f64, f64)>,
    uniform_jsd: Option<f64>,
}

fn direction(
    survey: &SurveyData,
    country_code: &str,
    unaware: &Predictions,
    aware: &Predictions,
    resamples: u32,
    rng: &mut SeededRng,
) -> Option<PersonaDirection> {
    let scored: Vec<Scored> = survey
        .questions
        .iter()
        .filter_map(|question| {
            let id = &question.question_id;
            let human = survey.human(country_code, id)?;
            let (u, a) = (unaware.code(id)?, aware.code(id)?);
            let jsd = match (unaware.distribution(id), aware.distribution(id)) {
                (Some(ud), Some(ad)) => compare_to_human(question, human, ud)
                    .ok()
                    .zip(compare_to_human(question, human, ad).ok())
                    .map(|(cu, ca)| (cu.one_minus_jsd, ca.one_minus_jsd)),
                _ => None,
            };
            let uniform = vec![1.0 / question.options.len() as f64; question.options.len()];
            let uniform_jsd =
                human_over_options(question, human).ok().and_then(|human| one_minus_js_distance(&uniform, &human).ok());
            Some(Scored { question, unaware: u, aware: a, gold: human.majority_code()?, jsd, uniform_jsd })
        })
        .collect();
    if scored.is_empty() {
        return None;
    }
    let score = |items: &[&Scored], pick: fn(&Scored) -> u32| {
        alignment(items.iter().map(|s| CodePair {
            predicted: pick(s),
            gold: s.gold,
            option_count: s.question.options.len(),
        }))
    };
    let all: Vec<&Scored> = scored.iter().collect();
    let unaware_score = score(&all, |s| s.unaware)?;
    let aware_score = score(&all, |s| s.aware)?;

    let with_jsd: Vec<(f64, f64)> = scored.iter().filter_map(|s| s.jsd).collect();
    let jsd_means = (!with_jsd.is_empty()).then(|| {
        let n = with_jsd.len() as f64;
        (with_jsd.iter().map(|j| j.0).sum::<f64>() / n, with_jsd.iter().map(|j| j.1).sum::<f64>() / n)
    });

    let mut score_deltas = Vec::with_capacity(resamples as usize);
    let mut jsd_deltas = Vec::with_capacity(resamples as usize);
    let mut uniform_scores = Vec::with_capacity(resamples as usize);
    for _ in 0..resamples {
        let sample: Vec<&Scored> = (0..scored.len()).map(|_| &scored[draw(rng, scored.len())]).collect();
        if let (Some(a), Some(u)) = (score(&sample, |s| s.aware), score(&sample, |s| s.unaware)) {
            score_deltas.push(PERCENT * (a - u));
        }
        if !with_jsd.is_empty() {
            let total: f64 = (0..with_jsd.len())
                .map(|_| {
                    let (u, a) = with_jsd[draw(rng, with_jsd.len())];
                    a - u
                })
                .sum();
            jsd_deltas.push(PERCENT * total / with_jsd.len() as f64);
        }
        // A uniform answerer: one random option per question, scored on all of them.
        let uniform = alignment(scored.iter().map(|s| CodePair {
            predicted: s.question.options[draw(rng, s.question.options.len())].code,
            gold: s.gold,
            option_count: s.question.options.len(),
        }));
        uniform_scores.extend(uniform.map(|value| PERCENT * value));
    }
    let uniform_jsd: Vec<f64> = scored.iter().filter_map(|s| s.uniform_jsd).collect();
    let changed = scored.iter().filter(|s| s.aware != s.unaware).count() as f64 / scored.len() as f64;
    Some(PersonaDirection {
        country_code: country_code.to_string(),
        questions: scored.len() as u32,
        changed,
        unaware_score: PERCENT * unaware_score,
        aware_score: PERCENT * aware_score,
        delta_score: PERCENT * (aware_score - unaware_score),
        delta_score_interval: interval(&mut score_deltas)?,
        uniform_score: mean(&uniform_scores)?,
        unaware_one_minus_jsd: jsd_means.map(|(u, _)| PERCENT * u),
        aware_one_minus_jsd: jsd_means.map(|(_, a)| PERCENT * a),
        delta_one_minus_jsd: jsd_means.map(|(u, a)| PERCENT * (a - u)),
        delta_one_minus_jsd_interval: interval(&mut jsd_deltas),
        uniform_one_minus_jsd: mean(&uniform_jsd).map(|value| PERCENT * value),
    })
}

/// A uniform index below `len` (> 0).
pub(super) fn draw(rng: &mut SeededRng, len: usize) -> usize {
    ((rng.next_unit() * len as f64) as usize).min(len - 1)
}

/// The 2.5 and 97.5 percentiles (nearest rank); `None` for no values.
pub(super) fn interval(values: &mut [f64]) -> Option<Interval> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let at = |p: f64| values[((p * (values.len() - 1) as f64).round() as usize).min(values.len() - 1)];
    Some(Interval { low: at(0.025), high: at(0.975) })
}

fn share(flags: impl Iterator<Item = bool>) -> Option<f64> {
    let (mut count, mut hits) = (0u32, 0u32);
    for flag in flags {
        count += 1;
        hits += u32::from(flag);
    }
    (count > 0).then(|| f64::from(hits) / f64::from(count))
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::score_culture;

    fn first_option_everywhere(survey: &SurveyData) -> Predictions {
        let mut predictions = Predictions::default();
        for question in &survey.questions {
            predictions.insert_code(&question.question_id, question.options[0].code);
        }
        predictions
    }

    fn human_majority(survey: &SurveyData, country_code: &str) -> Predictions {
        let mut predictions = Predictions::default();
        for question in &survey.questions {
            if let Some(code) = survey.human(country_code, &question.question_id).and_then(|h| h.majority_code()) {
                predictions.insert_code(&question.question_id, code);
            }
        }
        predictions
    }

    fn meter(survey: &SurveyData, unaware: &Predictions, aware: Vec<(&str, &Predictions)>) -> PersonaMeter {
        let input = MeterInput { run_id: 1, variant: PromptVariant::P1, unaware, aware, resamples: 200, seed: 3 };
        persona_meter(survey, input)
    }

    #[test]
    fn an_answerer_that_copies_the_humans_moves_toward_them_by_what_the_unaware_one_missed() {
        let survey = SurveyData::embedded().unwrap();
        let unaware = first_option_everywhere(&survey);
        let usa = human_majority(&survey, "USA");
        let meter = meter(&survey, &unaware, vec![("USA", &usa)]);
        let direction = &meter.cultures[0];
        assert_eq!(direction.country_code, "USA");
        assert!((direction.aware_score - 100.0).abs() < 1e-9);
        let unaware_score = score_culture(&survey, "USA", &unaware).unwrap().score;
        assert!((direction.unaware_score - unaware_score).abs() < 1e-9);
        assert!((direction.delta_score - (100.0 - unaware_score)).abs() < 1e-9);
        let interval = direction.delta_score_interval;
        assert!(interval.low > 0.0 && interval.low <= interval.high, "{interval:?}");
        let differing = usa.codes().iter().filter(|(id, code)| unaware.code(id) != Some(**code)).count();
        assert_eq!(meter.pairs as usize, usa.len());
        assert!((meter.changed.unwrap() - differing as f64 / usa.len() as f64).abs() < 1e-12);
        assert_eq!(meter.first_option_unaware, Some(1.0));
        // A uniform answerer scores between the two on the paper's metric.
        assert!(direction.uniform_score > 0.0 && direction.uniform_score < 100.0);
    }

    #[test]
    fn a_persona_that_changes_nothing_has_no_movement_and_a_zero_interval() {
        let survey = SurveyData::embedded().unwrap();
        let unaware = first_option_everywhere(&survey);
        let meter = meter(&survey, &unaware, vec![("NGA", &unaware), ("CHN", &unaware)]);
        assert_eq!(meter.changed, Some(0.0));
        // Cultures come in the survey's order whatever order they were given in.
        let order: Vec<usize> = meter
            .cultures
            .iter()
            .map(|c| survey.cultures.iter().position(|s| s.country_code == c.country_code).unwrap())
            .collect();
        assert!(order.windows(2).all(|pair| pair[0] < pair[1]));
        for direction in &meter.cultures {
            assert_eq!(direction.delta_score, 0.0);
            assert_eq!((direction.delta_score_interval.low, direction.delta_score_interval.high), (0.0, 0.0));
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_intervals() {
        let survey = SurveyData::embedded().unwrap();
        let unaware = first_option_everywhere(&survey);
        let usa = human_majority(&survey, "USA");
        let run = |seed| {
            persona_meter(
                &survey,
                MeterInput {
                    run_id: 1,
                    variant: PromptVariant::P1,
                    unaware: &unaware,
                    aware: vec![("USA", &usa)],
                    resamples: 100,
                    seed,
                },
            )
        };
        assert_eq!(run(1), run(1));
    }
}
