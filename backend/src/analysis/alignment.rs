//! The paper's alignment metric, exactly as its `result_analysis_run_3.py` computes it (see the data
//! README, "The paper's metric").

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
pub use shared::analysis::SkippedCulture;
use shared::{CultureScore, Question};

use super::distribution::{compare_to_human, validate_distribution};
use super::AnalysisError;
use crate::survey::SurveyData;

/// The paper keeps a parsed answer only in 0..=10, whatever the question's own option range.
pub const MAX_VALID_ANSWER: u32 = 10;
/// Scores are reported ×100.
const PERCENT: f64 = 100.0;

/// The first run of ASCII digits in a reply: the paper's `\d+` (the released replies hold no
/// other digits, so Python's Unicode `\d` finds the same runs).
fn first_digit_run(reply: &str) -> Option<&str> {
    let start = reply.find(|c: char| c.is_ascii_digit())?;
    let rest = &reply[start..];
    let end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
    Some(&rest[..end])
}

/// The paper's prediction: the first integer of the reply, kept only if it is in 0..=10.
pub fn paper_answer_code(reply: &str) -> Option<u32> {
    // A run of digits too long for u32 is far above 10: invalid either way.
    first_digit_run(reply)?.parse::<u32>().ok().filter(|code| *code <= MAX_VALID_ANSWER)
}

/// The first integer of the reply if it is one of the question's option codes (what a run stores
/// as the parsed answer; stricter than the paper's metric).
pub fn option_answer_code(reply: &str, question: &Question) -> Option<u32> {
    let code = first_digit_run(reply)?.parse::<u32>().ok()?;
    question.options.iter().any(|option| option.code == code).then_some(code)
}

/// One scored question: the predicted code, the gold code and the question's option count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodePair {
    pub predicted: u32,
    pub gold: u32,
    pub option_count: usize,
}

/// S = 1 − sqrt(Σ(a − g)²) / sqrt(Σ(n − 1)²) over the pairs; `None` when there is nothing to
/// divide by (no pairs).
pub fn alignment(pairs: impl IntoIterator<Item = CodePair>) -> Option<f64> {
    let (mut squared_error, mut squared_range) = (0.0_f64, 0.0_f64);
    for pair in pairs {
        let error = f64::from(pair.predicted) - f64::from(pair.gold);
        let range = pair.option_count.saturating_sub(1) as f64;
        squared_error += error * error;
        squared_range += range * range;
    }
    (squared_range > 0.0).then(|| 1.0 - squared_error.sqrt() / squared_range.sqrt())
}

/// A model's answers as the metrics read them: per question id, the predicted code (already
/// valid) and, in scoring mode, the option distribution.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Predictions {
    codes: HashMap<String, u32>,
    distributions: HashMap<String, Vec<f64>>,
}

impl Predictions {
    /// From (question id, raw reply) pairs with the paper's rule; invalid replies are left out.
    pub fn from_replies<'a>(replies: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let codes = replies
            .into_iter()
            .filter_map(|(question_id, reply)| Some((question_id.to_string(), paper_answer_code(reply)?)))
            .collect();
        Predictions { codes, distributions: HashMap::new() }
    }

    pub fn insert_code(&mut self, question_id: &str, code: u32) {
        self.codes.insert(question_id.to_string(), code);
    }

    /// Adds the model's option distribution (in option order) after checking it fits the question.
    pub fn insert_distribution(&mut self, question: &Question, distribution: Vec<f64>) -> Result<(), AnalysisError> {
        validate_distribution(&distribution, question.options.len())
            .map_err(|error| AnalysisError::Distribution { question_id: question.question_id.clone(), error })?;
        self.distributions.insert(question.question_id.clone(), distribution);
        Ok(())
    }

    /// Every valid predicted code, by question id.
    pub fn codes(&self) -> &HashMap<String, u32> {
        &self.codes
    }

    pub fn code(&self, question_id: &str) -> Option<u32> {
        self.codes.get(question_id).copied()
    }

    pub fn distribution(&self, question_id: &str) -> Option<&[f64]> {
        self.distributions.get(question_id).map(Vec::as_slice)
    }

    /// How many questions have a valid predicted code.
    pub fn len(&self) -> usize {
        self.codes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.codes.is_empty()
    }
}

/// What a culture's score is computed from: a (prediction, human majority) pair per question with
/// both, and the 1 − JSD of each question where the model gave a distribution.
#[derive(Debug, Clone, Default)]
pub struct CultureSample {
    pub pairs: Vec<CodePair>,
    pub one_minus_jsd: Vec<f64>,
    pub humans_answered: u32,
    pub questions_skipped: u32,
}

/// The questions a culture's score reads, as [`score_culture`] reads them.
pub fn culture_sample(survey: &SurveyData, country_code: &str, predictions: &Predictions) -> CultureSample {
    let mut pairs = Vec::with_capacity(survey.questions.len());
    let mut humans_answered = 0_u32;
    let mut questions_skipped = 0_u32;
    let mut one_minus_jsd = Vec::new();
    for question in &survey.questions {
        let Some(human) = survey.human(country_code, &question.question_id) else {
            questions_skipped += 1;
            continue;
        };
        humans_answered += 1;
        if let Some(distribution) = predictions.distribution(&question.question_id) {
            // A question whose human shares all fall outside its options has no distribution to compare.
            if let Ok(comparison) = compare_to_human(question, human, distribution) {
                one_minus_jsd.push(comparison.one_minus_jsd);
            }
        }
        match (predictions.code(&question.question_id), human.majority_code()) {
            (Some(predicted), Some(gold)) => {
                pairs.push(CodePair { predicted, gold, option_count: question.options.len() })
            }
            _ => questions_skipped += 1,
        }
    }
    CultureSample { pairs, one_minus_jsd, humans_answered, questions_skipped }
}

/// The paper's score of `predictions` against one culture's majority answers, over the kept WVS
/// questions; with distributions, also the mean 1 − Jensen–Shannon distance (×100).
pub fn score_culture(
    survey: &SurveyData,
    country_code: &str,
    predictions: &Predictions,
) -> Result<CultureScore, SkippedCulture> {
    let skipped = |reason: &str| SkippedCulture { country_code: country_code.to_string(), reason: reason.to_string() };
    if survey.culture(country_code).is_none() {
        return Err(skipped("not one of the survey's cultures"));
    }
    let CultureSample { pairs, one_minus_jsd, humans_answered, questions_skipped } =
        culture_sample(survey, country_code, predictions);
    if humans_answered == 0 {
        return Err(skipped("no human answers for this culture"));
    }
    let questions_scored = pairs.len() as u32;
    let score =
        alignment(pairs).ok_or_else(|| skipped("no question has both a human answer and a valid prediction"))?;
    Ok(CultureScore {
        country_code: country_code.to_string(),
        score: PERCENT * score,
        questions_scored,
        questions_skipped,
        one_minus_jsd: mean(&one_minus_jsd).map(|value| PERCENT * value),
    })
}

/// The scores of several cultures and their plain mean (the paper's headline number).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CultureScores {
    pub scores: Vec<CultureScore>,
    pub skipped_cultures: Vec<SkippedCulture>,
    /// Mean of the scores; `None` when no culture got one.
    pub average: Option<f64>,
}

/// Scores each (culture, predictions) pair; cultures that cannot be scored are listed, not zeroed.
pub fn score_cultures<'a>(
    survey: &SurveyData,
    targets: impl IntoIterator<Item = (&'a str, &'a Predictions)>,
) -> CultureScores {
    let mut scores = Vec::new();
    let mut skipped_cultures = Vec::new();
    for (country_code, predictions) in targets {
        match score_culture(survey, country_code, predictions) {
            Ok(score) => scores.push(score),
            Err(skipped) => skipped_cultures.push(skipped),
        }
    }
    let average = mean(&scores.iter().map(|score| score.score).collect::<Vec<_>>());
    CultureScores { scores, skipped_cultures, average }
}

fn mean(values: &[f64]) -> Option<f64> {
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_paper_keeps_the_first_integer_when_it_is_at_most_10() {
        assert_eq!(paper_answer_code("Option 3"), Some(3));
        assert_eq!(paper_answer_code("10."), Some(10));
        assert_eq!(paper_answer_code("12"), None);
        assert_eq!(paper_answer_code(""), None);
        assert_eq!(paper_answer_code("I'd be happy to answer!"), None);
        assert_eq!(paper_answer_code("0"), Some(0));
        assert_eq!(paper_answer_code("007"), Some(7));
        assert_eq!(paper_answer_code("I'd say... 5.5"), Some(5));
        assert_eq!(paper_answer_code("1.Very important"), Some(1));
        // Only the first integer counts, even when a later one would be valid.
        assert_eq!(paper_answer_code("Between 12 and 3"), None);
        assert_eq!(paper_answer_code("99999999999999999999999"), None);
    }

    #[test]
    fn the_paper_does_not_check_the_question_range_but_a_stored_answer_does() {
        let survey = SurveyData::embedded().unwrap();
        let q1 = survey.question("Q1").unwrap(); // codes 1..=4
        assert_eq!(paper_answer_code("7"), Some(7));
        assert_eq!(option_answer_code("7", q1), None);
        assert_eq!(option_answer_code("0", q1), None);
        assert_eq!(option_answer_code("Option 4.", q1), Some(4));
        let q94 = survey.question("Q94").unwrap(); // codes 0..=2
        assert_eq!(option_answer_code("0", q94), Some(0));
        assert_eq!(option_answer_code("", q94), None);
    }

    #[test]
    fn alignment_follows_the_formula() {
        let pair = |predicted, gold, option_count| CodePair { predicted, gold, option_count };
        // d = sqrt(0 + 4) = 2, d_max = sqrt(9 + 9); S = 1 − 2 / sqrt(18).
        let score = alignment([pair(1, 1, 4), pair(3, 1, 4)]).unwrap();
        assert!((score - (1.0 - 2.0 / 18f64.sqrt())).abs() < 1e-12);
        assert_eq!(alignment([pair(2, 2, 10)]), Some(1.0));
        assert_eq!(alignment([]), None);
    }

    #[test]
    fn skipped_questions_and_cultures_are_counted_not_zeroed() {
        let survey = SurveyData::embedded().unwrap();
        let predictions = Predictions::from_replies([("Q1", "1"), ("Q2", "no idea"), ("Q3", "11")]);
        assert_eq!(predictions.len(), 1);
        let usa = score_culture(&survey, "USA", &predictions).unwrap();
        assert_eq!((usa.questions_scored, usa.questions_skipped), (1, 258));
        assert_eq!(usa.one_minus_jsd, None);
        let unknown = score_culture(&survey, "MEX", &predictions).unwrap_err();
        assert_eq!(unknown.country_code, "MEX");
        let nothing = score_culture(&survey, "USA", &Predictions::default()).unwrap_err();
        assert!(nothing.reason.contains("valid prediction"), "{}", nothing.reason);

        let scores = score_cultures(&survey, [("USA", &predictions), ("XXX", &predictions)]);
        assert_eq!(scores.scores.len(), 1);
        assert_eq!(scores.skipped_cultures.len(), 1);
        assert_eq!(scores.average, Some(scores.scores[0].score));
        assert_eq!(score_cultures(&survey, []).average, None);
    }

    #[test]
    fn distributions_fill_one_minus_jsd() {
        let survey = SurveyData::embedded().unwrap();
        let q1 = survey.question("Q1").unwrap();
        let mut predictions = Predictions::default();
        predictions.insert_code("Q1", 1);
        assert!(predictions.insert_distribution(q1, vec![0.5, 0.5]).is_err());
        let human = crate::analysis::human_over_options(q1, survey.human("USA", "Q1").unwrap()).unwrap();
        predictions.insert_distribution(q1, human).unwrap();
        let usa = score_culture(&survey, "USA", &predictions).unwrap();
        assert!((usa.one_minus_jsd.unwrap() - 100.0).abs() < 1e-6);
    }
}
