//! Distributional metrics between a model's option distribution and a culture's human answers:
//! 1 − Jensen–Shannon distance and the normalised Wasserstein-1 distance on the ordinal codes.

use serde::{Deserialize, Serialize};
use shared::{HumanDistribution, Question};

/// Options a distribution needs before an ordinal distance means anything.
const MIN_OPTIONS: usize = 2;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DistributionError {
    #[error("{given} probabilities for {options} options")]
    LengthMismatch { given: usize, options: usize },
    #[error("fewer than {MIN_OPTIONS} options")]
    TooFewOptions,
    #[error("a probability is negative or not finite")]
    InvalidEntry,
    #[error("the probabilities sum to 0")]
    ZeroMass,
}

/// Checks that a distribution has one finite, non-negative entry per option and some mass.
pub(super) fn validate_distribution(distribution: &[f64], options: usize) -> Result<(), DistributionError> {
    if options < MIN_OPTIONS {
        return Err(DistributionError::TooFewOptions);
    }
    if distribution.len() != options {
        return Err(DistributionError::LengthMismatch { given: distribution.len(), options });
    }
    normalised(distribution).map(|_| ())
}

fn normalised(values: &[f64]) -> Result<Vec<f64>, DistributionError> {
    if values.iter().any(|value| !value.is_finite() || *value < 0.0) {
        return Err(DistributionError::InvalidEntry);
    }
    let total: f64 = values.iter().sum();
    if total <= 0.0 {
        return Err(DistributionError::ZeroMass);
    }
    Ok(values.iter().map(|value| value / total).collect())
}

/// Both distributions renormalised, after checking they have the same (usable) length.
fn normalised_pair(model: &[f64], human: &[f64]) -> Result<(Vec<f64>, Vec<f64>), DistributionError> {
    if human.len() < MIN_OPTIONS {
        return Err(DistributionError::TooFewOptions);
    }
    if model.len() != human.len() {
        return Err(DistributionError::LengthMismatch { given: model.len(), options: human.len() });
    }
    Ok((normalised(model)?, normalised(human)?))
}

/// 1 − Jensen–Shannon distance with base-2 logarithms, so in [0, 1] (1: identical). Both inputs
/// are renormalised to sum to 1.
pub fn one_minus_js_distance(model: &[f64], human: &[f64]) -> Result<f64, DistributionError> {
    let (model, human) = normalised_pair(model, human)?;
    let divergence: f64 = model
        .iter()
        .zip(&human)
        .map(|(&p, &q)| {
            let middle = (p + q) / 2.0;
            (relative_entropy_term(p, middle) + relative_entropy_term(q, middle)) / 2.0
        })
        .sum();
    // Rounding can leave a divergence a hair below 0 or above 1.
    Ok(1.0 - divergence.clamp(0.0, 1.0).sqrt())
}

/// p·log2(p/m), with 0·log 0 = 0.
fn relative_entropy_term(p: f64, middle: f64) -> f64 {
    if p > 0.0 {
        p * (p / middle).log2()
    } else {
        0.0
    }
}

/// Wasserstein-1 distance between two distributions over consecutive ordinal codes (unit apart),
/// divided by the code range n − 1, so in [0, 1] (0: identical). Inputs are renormalised.
pub fn wasserstein_ordinal(model: &[f64], human: &[f64]) -> Result<f64, DistributionError> {
    let (model, human) = normalised_pair(model, human)?;
    let code_range = (human.len() - 1) as f64;
    let (mut model_cumulative, mut human_cumulative, mut transport) = (0.0, 0.0, 0.0);
    // The last cumulative difference is 0 (both sum to 1), so it is left out.
    for (p, q) in model.iter().zip(&human).take(human.len() - 1) {
        model_cumulative += p;
        human_cumulative += q;
        transport += f64::abs(model_cumulative - human_cumulative);
    }
    Ok((transport / code_range).clamp(0.0, 1.0))
}

/// The culture's shares over the question's options, in option order, renormalised to sum to 1
/// (the file's shares are of all respondents, so they sum to less than 1).
pub fn human_over_options(question: &Question, human: &HumanDistribution) -> Result<Vec<f64>, DistributionError> {
    let shares: Vec<f64> = question
        .options
        .iter()
        .map(|option| human.shares.iter().filter(|entry| entry.code == option.code).map(|entry| entry.share).sum())
        .collect();
    normalised(&shares)
}

/// Both distributional metrics of a model's distribution (in option order) against a culture.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DistributionComparison {
    /// 1 − Jensen–Shannon distance, in [0, 1].
    pub one_minus_jsd: f64,
    /// Wasserstein-1 on the codes divided by the code range, in [0, 1].
    pub wasserstein: f64,
}

pub fn compare_to_human(
    question: &Question,
    human: &HumanDistribution,
    model: &[f64],
) -> Result<DistributionComparison, DistributionError> {
    validate_distribution(model, question.options.len())?;
    let human = human_over_options(question, human)?;
    Ok(DistributionComparison {
        one_minus_jsd: one_minus_js_distance(model, &human)?,
        wasserstein: wasserstein_ordinal(model, &human)?,
    })
}

#[cfg(test)]
mod tests {
    use shared::{CodeShare, QuestionOption, QuestionSource};

    use super::*;

    const TOLERANCE: f64 = 1e-12;

    fn close(actual: f64, expected: f64) -> bool {
        (actual - expected).abs() < TOLERANCE
    }

    #[test]
    fn jensen_shannon_by_hand() {
        assert!(close(one_minus_js_distance(&[0.2, 0.8], &[0.2, 0.8]).unwrap(), 1.0));
        assert!(close(one_minus_js_distance(&[1.0, 0.0], &[0.0, 1.0]).unwrap(), 0.0));
        // M = (0.75, 0.25): KL(P‖M) = 1 − ½·log2 3, KL(Q‖M) = 2 − log2 3, JSD = 1.5 − ¾·log2 3.
        let divergence = 1.5 - 0.75 * 3f64.log2();
        assert!(close(one_minus_js_distance(&[0.5, 0.5], &[1.0, 0.0]).unwrap(), 1.0 - divergence.sqrt()));
        assert!(close(one_minus_js_distance(&[0.5, 0.5], &[1.0, 0.0]).unwrap(), 0.4420769547158562));
        // Unnormalised inputs are renormalised first.
        assert!(close(one_minus_js_distance(&[1.0, 1.0], &[2.0, 0.0]).unwrap(), 1.0 - divergence.sqrt()));
    }

    #[test]
    fn wasserstein_by_hand() {
        assert!(close(wasserstein_ordinal(&[1.0, 0.0, 0.0], &[0.0, 0.0, 1.0]).unwrap(), 1.0));
        // CDFs (0.5, 1.0) and (0, 0.5): transport 1, code range 2.
        assert!(close(wasserstein_ordinal(&[0.5, 0.5, 0.0], &[0.0, 0.5, 0.5]).unwrap(), 0.5));
        // One step of 0.25 mass over a range of 4: 0.25 / 4.
        let model = [0.0, 0.75, 0.25, 0.0, 0.0];
        let human = [0.0, 1.0, 0.0, 0.0, 0.0];
        assert!(close(wasserstein_ordinal(&model, &human).unwrap(), 0.0625));
        assert!(close(wasserstein_ordinal(&human, &human).unwrap(), 0.0));
    }

    #[test]
    fn bad_distributions_are_errors() {
        assert_eq!(
            one_minus_js_distance(&[1.0], &[0.5, 0.5]),
            Err(DistributionError::LengthMismatch { given: 1, options: 2 })
        );
        assert_eq!(wasserstein_ordinal(&[1.0], &[1.0]), Err(DistributionError::TooFewOptions));
        assert_eq!(one_minus_js_distance(&[-0.1, 1.1], &[0.5, 0.5]), Err(DistributionError::InvalidEntry));
        assert_eq!(one_minus_js_distance(&[f64::NAN, 1.0], &[0.5, 0.5]), Err(DistributionError::InvalidEntry));
        assert_eq!(wasserstein_ordinal(&[0.0, 0.0], &[0.5, 0.5]), Err(DistributionError::ZeroMass));
    }

    #[test]
    fn human_shares_are_put_in_option_order_and_renormalised() {
        let question = Question {
            question_id: "Q94".to_string(),
            text: "Member of a church?".to_string(),
            options: ["Not a member", "Inactive member", "Active member"]
                .iter()
                .zip(0..)
                .map(|(text, code)| QuestionOption { code, text: text.to_string() })
                .collect(),
            topic: 2,
            source: QuestionSource::Wvs,
        };
        let human = HumanDistribution {
            country_code: "AUS".to_string(),
            question_id: "Q94".to_string(),
            shares: vec![CodeShare { code: 1, share: 0.5 }, CodeShare { code: 0, share: 0.3 }],
        };
        let over_options = human_over_options(&question, &human).unwrap();
        assert!(over_options.iter().zip([0.375, 0.625, 0.0]).all(|(a, b)| close(*a, b)), "{over_options:?}");
        let comparison = compare_to_human(&question, &human, &[0.0, 0.0, 1.0]).unwrap();
        // CDFs (0, 0) and (0.375, 1): transport 1.375 over a range of 2.
        assert!(close(comparison.wasserstein, 0.6875));
        assert!(close(comparison.one_minus_jsd, 0.0));
        assert!(compare_to_human(&question, &human, &[1.0, 0.0]).is_err());
    }
}
