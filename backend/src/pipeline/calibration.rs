//! Calibration of option distributions (the run option `calibration`), the pure part: the
//! questions a calibration scores instead of the real one, and the arithmetic.
//!
//! - Content-free (Zhao et al. 2021, "Calibrate Before Use"): the same prompt with the question
//!   text replaced by `N/A` (same setting, same options) gives p_cf; the answer is q ∝ p / p_cf.
//! - Permutation prior (PriDe; Zheng et al. 2023, "Large Language Models Are Not Robust Multiple
//!   Choice Selectors"): for a few questions, every cyclic permutation of the option texts over
//!   the fixed option codes is scored; a question's prior over positions is
//!   softmax_d(mean_permutations log p(d)), the prior is the mean of those over the questions, and
//!   the answer is q ∝ p / prior.
//!
//! The run's stored `distribution` is q (its argmax the parsed code); the model's own p is kept
//! beside it as `raw_distribution`.

use shared::Question;

/// The content-free input of Zhao et al.
pub const CONTENT_FREE_TEXT: &str = "N/A";
/// Questions per option-code set whose permutations estimate a PriDe prior (the paper uses 5 %
/// of the test set; WVS option sets have 2–11 options, so this is 8–44 prompts per setting).
pub const PERMUTATION_QUESTIONS: usize = 4;
/// A prior probability below this is treated as this, so that a division stays finite.
const PRIOR_FLOOR: f64 = 1e-12;

/// `question` with its text replaced by the content-free input; its options, id and source (and
/// so a P3 prompt's examples) stay.
pub fn content_free_question(question: &Question) -> Question {
    Question { text: CONTENT_FREE_TEXT.to_string(), ..question.clone() }
}

/// `question` with its option texts rotated by `shift` over the fixed codes: position i shows the
/// text of option (i + shift) mod k.
pub fn rotated_question(question: &Question, shift: usize) -> Question {
    let count = question.options.len();
    let mut rotated = question.clone();
    for (position, option) in rotated.options.iter_mut().enumerate() {
        option.text = question.options[(position + shift) % count.max(1)].text.clone();
    }
    rotated
}

/// The option codes of a question as a key (`1-2-3-4`): questions with the same codes share a
/// permutation prior, since the prior is one over the label tokens.
pub fn option_codes_key(question: &Question) -> String {
    question.option_codes().join("-")
}

/// q ∝ p / prior, normalised. `None` when the lengths differ or nothing is left.
pub fn divide_by_prior(distribution: &[f64], prior: &[f64]) -> Option<Vec<f64>> {
    if distribution.len() != prior.len() || distribution.is_empty() {
        return None;
    }
    let weights: Vec<f64> = distribution.iter().zip(prior).map(|(p, q)| p / q.max(PRIOR_FLOOR)).collect();
    let total: f64 = weights.iter().sum();
    (total.is_finite() && total > 0.0).then(|| weights.iter().map(|w| w / total).collect())
}

/// One question's PriDe prior from its distributions under every cyclic permutation (each in
/// position order): softmax over positions of the mean log-probability.
pub fn question_position_prior(permuted: &[Vec<f64>]) -> Option<Vec<f64>> {
    let count = permuted.first()?.len();
    if count == 0 || permuted.iter().any(|distribution| distribution.len() != count) {
        return None;
    }
    let mean_logs: Vec<f64> = (0..count)
        .map(|position| {
            permuted.iter().map(|distribution| distribution[position].max(PRIOR_FLOOR).ln()).sum::<f64>()
                / permuted.len() as f64
        })
        .collect();
    let max = mean_logs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let weights: Vec<f64> = mean_logs.iter().map(|log| (log - max).exp()).collect();
    let total: f64 = weights.iter().sum();
    Some(weights.iter().map(|w| w / total).collect())
}

/// The prior of several questions: the mean of their priors (PriDe averages over its estimation
/// samples).
pub fn mean_prior(priors: &[Vec<f64>]) -> Option<Vec<f64>> {
    let count = priors.first()?.len();
    if priors.iter().any(|prior| prior.len() != count) {
        return None;
    }
    Some(
        (0..count)
            .map(|position| priors.iter().map(|prior| prior[position]).sum::<f64>() / priors.len() as f64)
            .collect(),
    )
}

/// The index of the largest probability (the first of equals).
pub fn argmax(distribution: &[f64]) -> Option<usize> {
    distribution.iter().enumerate().fold(None, |best, (index, p)| match best {
        Some(best_index) if distribution[best_index] >= *p => Some(best_index),
        _ => Some(index),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use shared::{QuestionOption, QuestionSource};

    fn question(texts: &[&str]) -> Question {
        Question {
            question_id: "Q1".into(),
            text: "How important is family in your life?".into(),
            options: texts
                .iter()
                .enumerate()
                .map(|(index, text)| QuestionOption { code: index as u32 + 1, text: text.to_string() })
                .collect(),
            topic: 0,
            source: QuestionSource::Wvs,
        }
    }

    #[test]
    fn the_content_free_question_keeps_everything_but_the_text() {
        let original = question(&["Very important", "Not important"]);
        let free = content_free_question(&original);
        assert_eq!(free.text, "N/A");
        assert_eq!(free.options, original.options);
        assert_eq!(free.question_id, original.question_id);
    }

    #[test]
    fn rotation_moves_texts_over_fixed_codes() {
        let rotated = rotated_question(&question(&["a", "b", "c"]), 1);
        let shown: Vec<(u32, &str)> = rotated.options.iter().map(|o| (o.code, o.text.as_str())).collect();
        assert_eq!(shown, [(1, "b"), (2, "c"), (3, "a")]);
        assert_eq!(option_codes_key(&rotated), "1-2-3");
    }

    #[test]
    fn dividing_by_a_prior_removes_it() {
        // A model that prefers position 1 three to one, and a content that prefers option 2 two
        // to one: p ∝ prior × content, so p / prior gives the content back.
        let prior = [0.75, 0.25];
        let content = [1.0 / 3.0, 2.0 / 3.0];
        let p: Vec<f64> = {
            let raw: Vec<f64> = prior.iter().zip(content).map(|(a, b)| a * b).collect();
            let total: f64 = raw.iter().sum();
            raw.iter().map(|x| x / total).collect()
        };
        let q = divide_by_prior(&p, &prior).unwrap();
        assert!((q[0] - 1.0 / 3.0).abs() < 1e-12 && (q[1] - 2.0 / 3.0).abs() < 1e-12, "{q:?}");
        assert_eq!(divide_by_prior(&[0.5, 0.5], &[1.0]), None);
    }

    #[test]
    fn the_permutation_prior_of_a_pure_position_bias_is_that_bias() {
        // A model that ignores the texts and answers [0.6, 0.3, 0.1] by position, whatever the
        // permutation: its prior is exactly that.
        let bias = vec![0.6, 0.3, 0.1];
        let prior = question_position_prior(&[bias.clone(), bias.clone(), bias.clone()]).unwrap();
        for (a, b) in prior.iter().zip(&bias) {
            assert!((a - b).abs() < 1e-12, "{prior:?}");
        }
    }

    #[test]
    fn the_permutation_prior_of_a_content_reader_is_uniform() {
        // A model that always picks the text "b" (probability 0.8, others 0.1) wherever it stands:
        // over the three rotations each position gets 0.8 once and 0.1 twice, so no position is
        // preferred.
        let rotations = [vec![0.1, 0.8, 0.1], vec![0.8, 0.1, 0.1], vec![0.1, 0.1, 0.8]];
        let prior = question_position_prior(&rotations).unwrap();
        for p in &prior {
            assert!((p - 1.0 / 3.0).abs() < 1e-12, "{prior:?}");
        }
        let mean = mean_prior(&[vec![0.5, 0.5], vec![0.7, 0.3]]).unwrap();
        assert!((mean[0] - 0.6).abs() < 1e-12 && (mean[1] - 0.4).abs() < 1e-12);
    }

    #[test]
    fn argmax_takes_the_first_of_equals() {
        assert_eq!(argmax(&[0.2, 0.4, 0.4]), Some(1));
        assert_eq!(argmax(&[]), None);
    }

    proptest! {
        #[test]
        fn a_calibrated_distribution_is_a_distribution(
            p in proptest::collection::vec(0.0f64..1.0, 2..12),
            prior in proptest::collection::vec(0.0f64..1.0, 2..12),
        ) {
            let count = p.len().min(prior.len());
            if let Some(q) = divide_by_prior(&p[..count], &prior[..count]) {
                prop_assert!((q.iter().sum::<f64>() - 1.0).abs() < 1e-9);
                prop_assert!(q.iter().all(|x| x.is_finite() && *x >= 0.0));
            }
        }
    }
}
