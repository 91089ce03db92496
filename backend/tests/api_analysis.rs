//! The explorer's analysis endpoints through `app(state).oneshot(...)`: run scores, the released
//! settings, culture relations and the culture map, on the paper's released Llama-3-8B answers
//! (run 1) and on a hand-made scoring-mode run.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use culturespa::analysis::human_over_options;
use culturespa::api::{app, AppState};
use culturespa::pipeline::answer_prompt::cross_culture_system_prompt;
use culturespa::server::open_store;
use culturespa::store::{NewAnswer, WVS_SET};
use culturespa::survey::SurveyData;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use shared::analysis::{CultureMap, RelationKind, Relations, ReleasedScores, RunScores, ScoredAgainst};
use shared::api::ErrorBody;
use shared::{PromptVariant, RunConfig, RunOrigin};
use tower::ServiceExt;

/// The run the server imports the paper's release as, on first start.
const RELEASE_RUN: i64 = 1;

async fn state() -> (AppState, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let survey = Arc::new(SurveyData::embedded().unwrap());
    let store = open_store(dir.path(), &survey).await.unwrap();
    (AppState::new(survey, store, None, models()), dir)
}

async fn get(state: &AppState, uri: &str) -> (StatusCode, Value) {
    let response = app(state.clone()).oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn get_ok<T: serde::de::DeserializeOwned>(state: &AppState, uri: &str) -> T {
    let (status, body) = get(state, uri).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {body}");
    serde_json::from_value(body).unwrap()
}

/// The README reports scores ×100 with 2 decimals.
fn rounded(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// The data README's per-culture P1 scores of the released answers.
const P1: [(&str, f64); 18] = [
    ("USA", 71.12),
    ("CAN", 71.29),
    ("BOL", 61.41),
    ("BRA", 62.83),
    ("GBR", 71.54),
    ("NLD", 70.34),
    ("DEU", 70.50),
    ("UKR", 67.88),
    ("CHN", 66.54),
    ("RUS", 67.06),
    ("IND", 62.97),
    ("THA", 66.15),
    ("KEN", 60.60),
    ("NGA", 61.96),
    ("ETH", 61.09),
    ("ZWE", 65.53),
    ("AUS", 68.33),
    ("NZL", 71.81),
];

#[tokio::test]
async fn the_released_run_scores_as_in_the_paper_per_culture_and_topic() {
    let (state, _dir) = state().await;
    let scores: RunScores = get_ok(&state, "/api/scores?run=1").await;
    assert_eq!(
        (scores.run_id, scores.variant, scores.scored_against),
        (1, PromptVariant::P1, ScoredAgainst::OwnCulture)
    );
    assert_eq!(scores.available_variants, [PromptVariant::Unaware, PromptVariant::P1]);
    let actual: Vec<(&str, f64)> =
        scores.scores.iter().map(|score| (score.country_code.as_str(), rounded(score.score))).collect();
    assert_eq!(actual, P1);
    assert_eq!(rounded(scores.average.unwrap()), 66.61);
    // Sampled replies have no distributions.
    assert_eq!(scores.average_one_minus_jsd, None);
    assert!(scores.scores.iter().all(|score| score.questions_scored + score.questions_skipped == 259));

    assert_eq!(scores.topic_scores.len(), 18);
    for (row, score) in scores.topic_scores.iter().zip(&scores.scores) {
        assert_eq!(row.country_code, score.country_code);
        assert_eq!(row.topics.len(), 13);
        let per_topic: u32 = row.topics.iter().map(|topic| topic.questions_scored).sum();
        assert_eq!(per_topic, score.questions_scored, "{}", row.country_code);
        assert!(row.topics.iter().flat_map(|topic| topic.score).all(|value| value <= 100.0));
    }

    let same: RunScores = get_ok(&state, "/api/scores?run=1&variant=p1").await;
    assert_eq!(same, scores);
    let unaware: RunScores = get_ok(&state, "/api/scores?run=1&variant=unaware").await;
    assert_eq!(unaware.scored_against, ScoredAgainst::AllCultures);
    assert_eq!(unaware.scores.len(), 18);
    assert_eq!(rounded(unaware.average.unwrap()), 62.36);
}

#[tokio::test]
async fn the_released_settings_are_all_scored() {
    let (state, _dir) = state().await;
    let released: ReleasedScores = get_ok(&state, "/api/scores/released").await;
    let settings: Vec<(&str, &str, Option<f64>)> = released
        .settings
        .iter()
        .map(|setting| (setting.setting.as_str(), setting.variant_label.as_str(), setting.average.map(rounded)))
        .collect();
    assert_eq!(settings.len(), 6);
    assert_eq!(settings[0], ("culture_unaware", "unaware", Some(62.36)));
    assert_eq!(settings[1], ("culture_aware", "P1", Some(66.61)));
    assert_eq!(settings[2], ("culture_aware_self_alignment", "P1+P3", Some(66.99)));
}

#[tokio::test]
async fn unknown_runs_variants_and_sources_are_json_errors_that_name_them() {
    let (state, _dir) = state().await;
    for (uri, status, named) in [
        ("/api/scores?run=99", StatusCode::NOT_FOUND, "run 99"),
        ("/api/scores?run=1&variant=P2", StatusCode::NOT_FOUND, "variant 'P2' in run 1"),
        ("/api/scores?run=1&variant=P1%2BP3", StatusCode::NOT_FOUND, "variant 'P1+P3' in run 1"),
        ("/api/scores?run=1&variant=P9", StatusCode::NOT_FOUND, "variant 'P9'"),
        ("/api/scores", StatusCode::BAD_REQUEST, "`run` is required"),
        ("/api/scores?run=abc", StatusCode::BAD_REQUEST, "'abc'"),
        ("/api/relations?source=run:42", StatusCode::NOT_FOUND, "run 42"),
        ("/api/relations?source=difference:42", StatusCode::NOT_FOUND, "run 42"),
        ("/api/relations?source=humans", StatusCode::BAD_REQUEST, "'humans'"),
        ("/api/relations?source=model:1", StatusCode::BAD_REQUEST, "'model:1'"),
        ("/api/relations?source=run:1&variant=P3", StatusCode::NOT_FOUND, "variant 'P3' in run 1"),
        (
            "/api/relations?source=run:1&variant=unaware",
            StatusCode::NOT_FOUND,
            "culture-specific unaware answers of run 1",
        ),
        ("/api/culture-map?run=99", StatusCode::NOT_FOUND, "run 99"),
        ("/api/culture-map?run=1&compare=98", StatusCode::NOT_FOUND, "run 98"),
        ("/api/culture-map?compare=1", StatusCode::BAD_REQUEST, "`compare` needs `run`"),
    ] {
        let (actual, body) = get(&state, uri).await;
        assert_eq!(actual, status, "{uri}: {body}");
        let body: ErrorBody = serde_json::from_value(body).unwrap();
        assert!(body.message.contains(named), "{uri}: {}", body.message);
    }
}

#[tokio::test]
async fn human_relations_are_the_released_similarity_table_with_the_p2_neighbours() {
    let (state, _dir) = state().await;
    let relations: Relations = get_ok(&state, "/api/relations?source=human").await;
    let default: Relations = get_ok(&state, "/api/relations").await;
    assert_eq!(relations, default);
    assert_eq!(
        (relations.kind, relations.source.as_str(), relations.pearson_with_human),
        (RelationKind::Human, "human", None)
    );
    assert_eq!(relations.country_codes.len(), 18);
    let mut compared = 0;
    for (a, row) in relations.country_codes.iter().zip(&relations.values) {
        assert_eq!(row.len(), 18);
        for (b, value) in relations.country_codes.iter().zip(row) {
            if a == b {
                assert_eq!(*value, Some(100.0));
            } else {
                assert_eq!(*value, state.survey.similarity(a, b), "{a}-{b}");
                compared += 1;
            }
        }
    }
    assert_eq!(compared, 306);
    let mut order = relations.clustering.order.clone();
    order.sort();
    let mut codes = relations.country_codes.clone();
    codes.sort();
    assert_eq!(order, codes);
    assert_eq!(relations.clustering.merges.len(), 17);

    // The neighbours are the cultures the paper's P2 prompt names, in its order.
    let adjective = |code: &str| state.survey.culture(code).unwrap().adjective.clone();
    for entry in &relations.neighbours {
        let culture = state.survey.culture(&entry.country_code).unwrap();
        let prompt = cross_culture_system_prompt(&state.survey, culture).unwrap();
        let similar: Vec<String> = entry.most_similar.iter().map(|n| adjective(&n.country_code)).collect();
        let different: Vec<String> = entry.most_different.iter().map(|n| adjective(&n.country_code)).collect();
        let expected_similar = format!("similar to {}, {}, and {} cultures", similar[0], similar[1], similar[2]);
        let expected_different =
            format!("different from {}, {}, and {} cultures", different[0], different[1], different[2]);
        assert!(prompt.contains(&expected_similar), "{prompt}");
        assert!(prompt.contains(&expected_different), "{prompt}");
        assert!(entry.most_similar[0].value >= entry.most_similar[2].value);
        assert!(entry.most_different[0].value <= entry.most_different[2].value);
    }
}

#[tokio::test]
async fn run_relations_correlate_with_the_human_ones_and_their_difference_is_cell_by_cell() {
    let (state, _dir) = state().await;
    let human: Relations = get_ok(&state, "/api/relations?source=human").await;
    let model: Relations = get_ok(&state, "/api/relations?source=run:1").await;
    assert_eq!((model.kind, model.source.as_str(), model.run_id), (RelationKind::Run, "run:1", Some(1)));
    assert_eq!(model.country_codes, human.country_codes);
    let pearson = model.pearson_with_human.unwrap();
    println!("Pearson r, Llama-3-8B P1 (run 1) vs human culture similarity: {pearson:.4}");
    common::assert_reference("pearson_p1_vs_human_similarity", pearson);
    assert!(model.values.iter().enumerate().all(|(index, row)| row[index] == Some(100.0)));

    let difference: Relations = get_ok(&state, "/api/relations?source=difference:1").await;
    assert_eq!((difference.kind, difference.source.as_str()), (RelationKind::Difference, "difference:1"));
    assert_eq!(difference.pearson_with_human, model.pearson_with_human);
    // Drawn in the human clustering's order.
    assert_eq!(difference.clustering, human.clustering);
    for a in 0..18 {
        for b in 0..18 {
            let expected = ((model.values[a][b].unwrap() - human.values[a][b].unwrap()) * 10.0).round() / 10.0;
            assert_eq!(difference.values[a][b], Some(expected), "{a} {b}");
        }
    }
}

/// A scoring-mode run (no replies, a distribution per answer) whose USA and KEN personas answer
/// exactly as those cultures' people do, and whose NGA persona answers nothing.
async fn human_copy_run(state: &AppState) -> i64 {
    let config: RunConfig = serde_json::from_value(json!({
        "name": "human copy", "questions_per_topic": 0, "stages": ["answer"], "answer_mode": "scoring"
    }))
    .unwrap();
    let run = state.store.create_run(&config, &RunOrigin::Local).await.unwrap();
    let mut answers = Vec::new();
    for country_code in ["USA", "KEN"] {
        for question in &state.survey.questions {
            let Some(human) = state.survey.human(country_code, &question.question_id) else { continue };
            let Ok(distribution) = human_over_options(question, human) else { continue };
            answers.push(NewAnswer {
                question_set: WVS_SET.to_string(),
                question_id: question.question_id.clone(),
                country_code: Some(country_code.to_string()),
                variant: PromptVariant::P1,
                raw_reply: None,
                parsed_code: human.majority_code(),
                distribution: Some(distribution),
                raw_distribution: None,
            });
        }
    }
    state.store.insert_answers(run.run_id, &answers).await.unwrap();
    run.run_id
}

#[tokio::test]
async fn a_scoring_mode_run_uses_its_codes_and_distributions() {
    let (state, _dir) = state().await;
    let run_id = human_copy_run(&state).await;
    let scores: RunScores = get_ok(&state, &format!("/api/scores?run={run_id}")).await;
    let codes: Vec<&str> = scores.scores.iter().map(|score| score.country_code.as_str()).collect();
    assert_eq!(codes, ["USA", "KEN"]);
    for score in &scores.scores {
        assert!((score.score - 100.0).abs() < 1e-9, "{score:?}");
        assert!((score.one_minus_jsd.unwrap() - 100.0).abs() < 1e-6, "{score:?}");
    }
    assert!((scores.average_one_minus_jsd.unwrap() - 100.0).abs() < 1e-6);
    assert!(scores.topic_scores.iter().flat_map(|row| &row.topics).flat_map(|topic| topic.score).all(|s| s > 99.99));

    // Two cultures answering as their people do are exactly as similar as those people.
    let relations: Relations = get_ok(&state, &format!("/api/relations?source=run:{run_id}")).await;
    assert_eq!(relations.country_codes, ["USA", "KEN"]);
    assert_eq!(relations.values[0][1], state.survey.similarity("USA", "KEN"));
    // One off-diagonal value each way, both equal: no variance, no correlation.
    assert_eq!(relations.pearson_with_human, None);
}

#[tokio::test]
async fn the_culture_map_places_cultures_personas_and_arrows() {
    let (state, _dir) = state().await;
    let human_only: CultureMap = get_ok(&state, "/api/culture-map").await;
    assert_eq!(human_only.cultures.len(), 18);
    assert_eq!(human_only.items.len(), 10);
    assert!(human_only.personas.is_none() && human_only.arrows.is_empty());
    let at = |map: &CultureMap, code: &str| {
        let point = map.cultures.iter().find(|point| point.country_code == code).unwrap();
        (point.secular_rational, point.self_expression)
    };
    for code in ["NLD", "NGA", "ETH", "USA", "CHN", "RUS"] {
        let (x, y) = at(&human_only, code);
        println!("{code}: secular-rational {x:+.2}, self-expression {y:+.2}");
    }
    assert!(at(&human_only, "NLD").0 > at(&human_only, "NGA").0);
    assert!(at(&human_only, "NZL").1 > at(&human_only, "ETH").1);

    let released: CultureMap = get_ok(&state, &format!("/api/culture-map?run={RELEASE_RUN}")).await;
    assert_eq!(released.cultures, human_only.cultures);
    let personas = released.personas.as_ref().unwrap();
    assert_eq!((personas.run_id, personas.variant), (RELEASE_RUN, PromptVariant::P1));
    assert_eq!(personas.points.len(), 18);
    assert!(personas.unplaced.is_empty());
    let unaware = personas.unaware.as_ref().expect("run 1 has unaware answers");
    println!("Llama-3-8B unaware: ({:+.2}, {:+.2})", unaware.secular_rational, unaware.self_expression);
    for point in &personas.points {
        println!(
            "Llama-3-8B as {}: ({:+.2}, {:+.2})",
            point.country_code, point.secular_rational, point.self_expression
        );
    }

    // Arrows from run 1's personas to the human copies land on the humans' places.
    let copy = human_copy_run(&state).await;
    let compared: CultureMap = get_ok(&state, &format!("/api/culture-map?run={RELEASE_RUN}&compare={copy}")).await;
    let arrow_codes: Vec<&str> = compared.arrows.iter().map(|arrow| arrow.country_code.as_str()).collect();
    assert_eq!(arrow_codes, ["USA", "KEN"]);
    for arrow in &compared.arrows {
        let (x, y) = at(&human_only, &arrow.country_code);
        assert!((arrow.to_secular_rational - x).abs() < 1e-9 && (arrow.to_self_expression - y).abs() < 1e-9);
        let start = personas.points.iter().find(|point| point.country_code == arrow.country_code).unwrap();
        assert_eq!(
            (arrow.from_secular_rational, arrow.from_self_expression),
            (start.secular_rational, start.self_expression)
        );
    }
    // The same request gives the same map.
    let again: CultureMap = get_ok(&state, &format!("/api/culture-map?run={RELEASE_RUN}&compare={copy}")).await;
    assert_eq!(again, compared);
}

/// The repository's models folder and the default model (no test here loads it).
fn models() -> culturespa::models::ModelSource {
    culturespa::models::ModelSource::new(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../models"),
        culturespa::server::DEFAULT_MODEL,
    )
    .unwrap()
}

#[tokio::test]
async fn the_persona_meter_of_the_released_run_counts_its_instances_and_its_scores() {
    let (state, _dir) = state().await;
    let meter: shared::analysis::PersonaMeter =
        get_ok(&state, &format!("/api/persona-meter?run={RELEASE_RUN}&variant=P1&resamples=200")).await;
    // Recounted from the stored replies with the paper's rule (the first integer, if ≤ 10): the
    // pairs where both answers are valid, and how many of them differ: the 1,373 instances.
    let replies = |variant| {
        let store = state.store.clone();
        async move { store.run_answers(RELEASE_RUN, WVS_SET, variant).await.unwrap() }
    };
    let valid = |answer: &shared::Answer| answer.raw_reply.as_deref().and_then(culturespa::analysis::paper_answer_code);
    let unaware: std::collections::HashMap<String, u32> = replies(PromptVariant::Unaware)
        .await
        .iter()
        .filter_map(|answer| Some((answer.question_id.clone(), valid(answer)?)))
        .collect();
    let (mut pairs, mut differing) = (0u32, 0u32);
    for answer in replies(PromptVariant::P1).await {
        if let (Some(aware), Some(unaware)) = (valid(&answer), unaware.get(&answer.question_id)) {
            pairs += 1;
            differing += u32::from(aware != *unaware);
        }
    }
    assert_eq!(differing, 1373);
    assert_eq!(meter.pairs, pairs);
    assert_eq!((meter.changed.unwrap() * f64::from(pairs)).round() as u32, differing);
    assert_eq!(meter.cultures.len(), 18);
    // Each culture's aware and unaware scores average to about the paper's P1 and unaware figures
    // (66.61 and 62.36): the meter scores both on the questions where both answers are valid, the
    // paper each on its own valid answers, which moves the means by a few hundredths.
    let mean = |pick: fn(&shared::analysis::PersonaDirection) -> f64| {
        meter.cultures.iter().map(pick).sum::<f64>() / meter.cultures.len() as f64
    };
    assert!((mean(|c| c.aware_score) - 66.61).abs() < 0.05, "{}", mean(|c| c.aware_score));
    assert!((mean(|c| c.unaware_score) - 62.36).abs() < 0.05, "{}", mean(|c| c.unaware_score));
    assert!((meter.mean_delta_score.unwrap() - (mean(|c| c.aware_score) - mean(|c| c.unaware_score))).abs() < 1e-9);
    for culture in &meter.cultures {
        assert!(culture.delta_score_interval.low <= culture.delta_score_interval.high);
    }
    // Sampled replies carry no distributions.
    assert_eq!(meter.mean_total_variation, None);
    assert!(meter.cultures.iter().all(|c| c.delta_one_minus_jsd.is_none()));

    for (uri, status) in [
        (format!("/api/persona-meter?run={RELEASE_RUN}&variant=unaware"), StatusCode::BAD_REQUEST),
        (format!("/api/persona-meter?run={RELEASE_RUN}&resamples=0"), StatusCode::BAD_REQUEST),
        (format!("/api/persona-meter?run={RELEASE_RUN}&resamples=99999"), StatusCode::BAD_REQUEST),
        ("/api/persona-meter".to_string(), StatusCode::BAD_REQUEST),
        ("/api/persona-meter?run=999".to_string(), StatusCode::NOT_FOUND),
    ] {
        let (actual, body) = get(&state, &uri).await;
        assert_eq!(actual, status, "{uri}: {body}");
        assert!(body["message"].is_string(), "{uri}: {body}");
    }
}
