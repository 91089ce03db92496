//! 95 % bootstrap intervals of each culture's scores: the questions a culture's score reads are
//! resampled with replacement (seeded), the paper's metric and the mean 1 − JSD recomputed, and
//! the 2.5th and 97.5th percentiles kept.

use serde::Serialize;
use shared::analysis::Interval;

use super::persona_meter::{draw, interval};
use super::{alignment, culture_sample, scoring_targets, PersonaPredictions};
use crate::engine::rng::SeededRng;
use crate::survey::SurveyData;

const PERCENT: f64 = 100.0;

/// A culture's intervals (×100), beside its scores.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CultureIntervals {
    pub country_code: String,
    /// Questions resampled for the paper's metric.
    pub questions: u32,
    pub score: Interval,
    /// Where the model gave distributions.
    pub one_minus_jsd: Option<Interval>,
}

/// The intervals of every culture a run's personas are scored against (as `score_run` scores
/// them), from `resamples` resamples seeded with `seed`.
pub fn score_intervals(
    survey: &SurveyData,
    personas: &[PersonaPredictions],
    resamples: u32,
    seed: u64,
) -> Vec<CultureIntervals> {
    let (_, targets) = scoring_targets(survey, personas);
    let mut rng = SeededRng::new(seed);
    let mut intervals = Vec::new();
    for (country_code, predictions) in targets {
        let sample = culture_sample(survey, country_code, predictions);
        if sample.pairs.is_empty() {
            continue;
        }
        let mut scores = Vec::with_capacity(resamples as usize);
        let mut divergences = Vec::with_capacity(resamples as usize);
        for _ in 0..resamples.max(1) {
            let pairs = (0..sample.pairs.len()).map(|_| sample.pairs[draw(&mut rng, sample.pairs.len())]);
            scores.extend(alignment(pairs).map(|score| PERCENT * score));
            if !sample.one_minus_jsd.is_empty() {
                let n = sample.one_minus_jsd.len();
                let total: f64 = (0..n).map(|_| sample.one_minus_jsd[draw(&mut rng, n)]).sum();
                divergences.push(PERCENT * total / n as f64);
            }
        }
        let Some(score) = interval(&mut scores) else { continue };
        intervals.push(CultureIntervals {
            country_code: country_code.to_string(),
            questions: sample.pairs.len() as u32,
            score,
            one_minus_jsd: interval(&mut divergences),
        });
    }
    intervals
}
