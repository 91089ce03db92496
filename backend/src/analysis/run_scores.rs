//! A stored run's answers as the metrics read them, and the paper's score of a run per culture and
//! per topic (`GET /api/scores`).

use shared::analysis::{CultureTopicScores, RunScores, ScoredAgainst, TopicScore};
use shared::{Answer, PromptVariant, Run};

use super::alignment::{alignment, paper_answer_code, score_cultures, CodePair, Predictions, MAX_VALID_ANSWER};
use super::AnalysisError;
use crate::survey::SurveyData;

/// Scores are reported ×100.
const PERCENT: f64 = 100.0;

/// The predictions of one persona: a culture's answers, or the culture-unaware ones (`None`).
#[derive(Debug, Clone, PartialEq)]
pub struct PersonaPredictions {
    pub country_code: Option<String>,
    pub predictions: Predictions,
}

/// Groups a run's answers (of one variant) by culture, in the order the cultures first appear,
/// reading each answer as the paper does: the first integer of the raw reply, kept if 0..=10.
/// Scoring-mode answers have no reply: their stored code (the distribution's argmax) is used, and
/// their distribution feeds the distributional metrics. Answers to questions outside the kept
/// WVS set are left out.
pub fn predictions_from_answers(
    survey: &SurveyData,
    answers: &[Answer],
) -> Result<Vec<PersonaPredictions>, AnalysisError> {
    let mut personas: Vec<PersonaPredictions> = Vec::new();
    for answer in answers {
        let Some(question) = survey.question(&answer.question_id) else { continue };
        let position = match personas.iter().position(|persona| persona.country_code == answer.country_code) {
            Some(position) => position,
            None => {
                personas.push(PersonaPredictions {
                    country_code: answer.country_code.clone(),
                    predictions: Predictions::default(),
                });
                personas.len() - 1
            }
        };
        let predictions = &mut personas[position].predictions;
        let code = match &answer.raw_reply {
            Some(reply) => paper_answer_code(reply),
            None => answer.parsed_code.filter(|code| *code <= MAX_VALID_ANSWER),
        };
        if let Some(code) = code {
            predictions.insert_code(&answer.question_id, code);
        }
        if let Some(distribution) = &answer.distribution {
            predictions.insert_distribution(question, distribution.clone())?;
        }
    }
    Ok(personas)
}

/// Which (culture, predictions) pairs to score: each culture's own answers when the run answered
/// as cultures, else the culture-unaware answers against every culture.
pub fn scoring_targets<'a>(
    survey: &'a SurveyData,
    personas: &'a [PersonaPredictions],
) -> (ScoredAgainst, Vec<(&'a str, &'a Predictions)>) {
    let own: Vec<(&str, &Predictions)> =
        personas.iter().filter_map(|persona| Some((persona.country_code.as_deref()?, &persona.predictions))).collect();
    if !own.is_empty() {
        let mut own = own;
        own.sort_by_key(|(code, _)| survey.cultures.iter().position(|culture| culture.country_code == *code));
        return (ScoredAgainst::OwnCulture, own);
    }
    let all = personas
        .iter()
        .filter(|persona| persona.country_code.is_none())
        .flat_map(|persona| {
            survey.cultures.iter().map(move |culture| (culture.country_code.as_str(), &persona.predictions))
        })
        .collect();
    (ScoredAgainst::AllCultures, all)
}

/// The paper's score of `predictions` against one culture on each topic's questions.
pub fn topic_scores(survey: &SurveyData, country_code: &str, predictions: &Predictions) -> Vec<TopicScore> {
    survey
        .topics
        .iter()
        .map(|topic| {
            let pairs: Vec<CodePair> = survey
                .questions
                .iter()
                .filter(|question| question.topic == topic.index)
                .filter_map(|question| {
                    Some(CodePair {
                        predicted: predictions.code(&question.question_id)?,
                        gold: survey.human(country_code, &question.question_id)?.majority_code()?,
                        option_count: question.options.len(),
                    })
                })
                .collect();
            TopicScore {
                topic: topic.index,
                questions_scored: pairs.len() as u32,
                score: alignment(pairs).map(|score| PERCENT * score),
            }
        })
        .collect()
}

/// A run's answers of one variant, scored per culture and per (culture, topic).
pub struct RunScoring<'a> {
    pub run: &'a Run,
    pub variant: PromptVariant,
    pub available_variants: Vec<PromptVariant>,
    pub personas: &'a [PersonaPredictions],
}

pub fn score_run(survey: &SurveyData, scoring: RunScoring<'_>) -> RunScores {
    let (scored_against, targets) = scoring_targets(survey, scoring.personas);
    let topic_scores = targets
        .iter()
        .map(|(country_code, predictions)| CultureTopicScores {
            country_code: country_code.to_string(),
            topics: topic_scores(survey, country_code, predictions),
        })
        .collect::<Vec<_>>();
    let scored = score_cultures(survey, targets);
    // Only cultures that got a score keep their topic row, so both lists line up.
    let topic_scores = topic_scores
        .into_iter()
        .filter(|row| scored.scores.iter().any(|score| score.country_code == row.country_code))
        .collect();
    let distributional: Vec<f64> = scored.scores.iter().filter_map(|score| score.one_minus_jsd).collect();
    let average_one_minus_jsd =
        (!distributional.is_empty()).then(|| distributional.iter().sum::<f64>() / distributional.len() as f64);
    RunScores {
        run_id: scoring.run.run_id,
        run_name: scoring.run.config.name.clone(),
        variant: scoring.variant,
        variant_label: scoring.variant.label().to_string(),
        scored_against,
        available_variants: scoring.available_variants,
        scores: scored.scores,
        skipped_cultures: scored.skipped_cultures,
        average: scored.average,
        average_one_minus_jsd,
        topic_scores,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(
        country_code: Option<&str>,
        question_id: &str,
        raw_reply: Option<&str>,
        parsed_code: Option<u32>,
    ) -> Answer {
        Answer {
            run_id: 1,
            question_id: question_id.to_string(),
            country_code: country_code.map(str::to_string),
            variant: PromptVariant::P1,
            raw_reply: raw_reply.map(str::to_string),
            parsed_code,
            distribution: None,
            raw_distribution: None,
        }
    }

    #[test]
    fn replies_are_read_with_the_paper_rule_and_codes_only_without_a_reply() {
        let survey = SurveyData::embedded().unwrap();
        let answers = [
            // The paper keeps 7 for a 4-option question (its rule ignores the option range).
            answer(Some("USA"), "Q1", Some("7"), None),
            // A reply wins over a stored code.
            answer(Some("USA"), "Q2", Some("no idea"), Some(2)),
            answer(Some("USA"), "Q3", None, Some(3)),
            answer(Some("KEN"), "Q1", Some("Option 2."), Some(2)),
            answer(Some("KEN"), "Q2", None, Some(11)),
            answer(Some("KEN"), "generated-1", Some("1"), Some(1)),
        ];
        let personas = predictions_from_answers(&survey, &answers).unwrap();
        assert_eq!(personas.len(), 2);
        let usa = &personas[0].predictions;
        assert_eq!((usa.code("Q1"), usa.code("Q2"), usa.code("Q3")), (Some(7), None, Some(3)));
        let ken = &personas[1].predictions;
        assert_eq!((ken.code("Q1"), ken.code("Q2"), ken.len()), (Some(2), None, 1));
    }

    #[test]
    fn a_distribution_that_does_not_fit_its_question_is_an_error() {
        let survey = SurveyData::embedded().unwrap();
        let mut bad = answer(Some("USA"), "Q1", None, Some(1));
        bad.distribution = Some(vec![1.0, 0.0]);
        assert!(matches!(
            predictions_from_answers(&survey, &[bad]),
            Err(AnalysisError::Distribution { question_id, .. }) if question_id == "Q1"
        ));
    }

    #[test]
    fn topic_scores_cover_the_13_topics_and_match_the_whole_score_on_one_topic() {
        let survey = SurveyData::embedded().unwrap();
        let mut predictions = Predictions::default();
        for question in survey.questions.iter().filter(|question| question.topic == 7) {
            predictions.insert_code(&question.question_id, 1);
        }
        let topics = topic_scores(&survey, "NLD", &predictions);
        assert_eq!(topics.len(), 13);
        assert_eq!(topics[7].questions_scored, 6);
        assert!(topics.iter().filter(|topic| topic.topic != 7).all(|topic| topic.score.is_none()));
        let whole = crate::analysis::score_culture(&survey, "NLD", &predictions).unwrap();
        assert!((topics[7].score.unwrap() - whole.score).abs() < 1e-9);
    }
}
