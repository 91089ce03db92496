//! The paper's metric and culture relations on the shipped fixtures: the released Llama-3-8B
//! answers must reproduce the data README's reference scores, and the human majority answers the
//! released culture similarity table.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use culturespa::analysis::{
    average_linkage, human_similarity_matrix, load_released, paper_answer_code, pearson_off_diagonal, score_released,
    similarity_matrix, AnalysisError, ReleasedScores, ReleasedSet, ScoredAgainst, SettingScores, Target,
    EMBEDDED_SOURCE,
};
use culturespa::survey::SurveyData;
use shared::PromptVariant;

fn released_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(EMBEDDED_SOURCE)
}

fn released_scores() -> (SurveyData, ReleasedScores) {
    let survey = SurveyData::embedded().unwrap();
    let released = ReleasedSet::from_dir(&released_dir(), &survey).unwrap();
    let scores = score_released(&survey, &released);
    (survey, scores)
}

fn setting<'a>(scores: &'a ReleasedScores, name: &str) -> &'a SettingScores {
    scores.settings.iter().find(|setting| setting.setting == name).unwrap_or_else(|| panic!("no setting {name}"))
}

/// The README reports scores ×100 with 2 decimals.
fn rounded(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

fn assert_scores(setting: &SettingScores, expected: &[(&str, f64)]) {
    let actual: Vec<(&str, f64)> =
        setting.scores.iter().map(|score| (score.country_code.as_str(), rounded(score.score))).collect();
    assert_eq!(actual, expected, "{}", setting.setting);
}

const UNAWARE: [(&str, f64); 18] = [
    ("USA", 68.34),
    ("CAN", 70.91),
    ("BOL", 57.30),
    ("BRA", 58.76),
    ("GBR", 68.87),
    ("NLD", 69.79),
    ("DEU", 69.10),
    ("UKR", 63.71),
    ("CHN", 62.19),
    ("RUS", 63.12),
    ("IND", 56.55),
    ("THA", 63.59),
    ("KEN", 54.14),
    ("NGA", 52.05),
    ("ETH", 55.31),
    ("ZWE", 53.13),
    ("AUS", 67.43),
    ("NZL", 68.23),
];

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

#[test]
fn culture_unaware_reproduces_the_paper_per_culture_and_on_average() {
    let (_, scores) = released_scores();
    let unaware = setting(&scores, "culture_unaware");
    assert_eq!((unaware.variant, unaware.scored_against), (PromptVariant::Unaware, ScoredAgainst::AllCultures));
    assert_eq!(unaware.files, ["wvs_result_culture_unaware_0.json"]);
    assert_scores(unaware, &UNAWARE);
    common::assert_reference("paper_metric_unaware_llama3_8b", unaware.average.unwrap());
    assert!(unaware.skipped_cultures.is_empty());
    // Every kept question is either scored or counted as skipped.
    for score in &unaware.scores {
        assert_eq!(score.questions_scored + score.questions_skipped, 259, "{}", score.country_code);
    }
    // China has 37 questions without a human answer, so at least 37 are skipped.
    let china = unaware.scores.iter().find(|score| score.country_code == "CHN").unwrap();
    assert!(china.questions_skipped >= 37, "{}", china.questions_skipped);
}

#[test]
fn culture_aware_p1_reproduces_the_paper_per_culture_and_on_average() {
    let (_, scores) = released_scores();
    let aware = setting(&scores, "culture_aware");
    assert_eq!((aware.variant, aware.scored_against), (PromptVariant::P1, ScoredAgainst::OwnCulture));
    assert_eq!(aware.files.len(), 18);
    assert_scores(aware, &P1);
    common::assert_reference("paper_metric_p1_llama3_8b", aware.average.unwrap());
    assert!(aware.notes.is_empty());
}

#[test]
fn self_alignment_settings_reproduce_the_paper() {
    let (_, scores) = released_scores();
    let p1_p3 = setting(&scores, "culture_aware_self_alignment");
    assert_eq!(p1_p3.variant, PromptVariant::P1P3);
    assert_scores(p1_p3, &[("USA", 66.99)]);
    let p2_p3 = setting(&scores, "cross_culture_thinking_self_alignment");
    assert_eq!(p2_p3.variant, PromptVariant::P2P3);
    assert_scores(p2_p3, &[("USA", 66.83), ("CAN", 69.55)]);
    assert!(p2_p3.notes.iter().any(|note| note.contains("2 of 18")), "{:?}", p2_p3.notes);
    // P3: the culture is not recorded, so both identical files are scored against all 18.
    let p3 = setting(&scores, "self_alignment");
    let p3_american = setting(&scores, "self_alignment_American");
    for p3_setting in [p3, p3_american] {
        assert_eq!(p3_setting.variant, PromptVariant::P3);
        assert_eq!(p3_setting.scored_against, ScoredAgainst::AllCultures);
        assert_eq!(p3_setting.scores.len(), 18);
        assert!(p3_setting.notes.iter().any(|note| note.contains("not recorded")), "{:?}", p3_setting.notes);
    }
    assert_eq!(p3.scores, p3_american.scores);
    let order: Vec<&str> = scores.settings.iter().map(|setting| setting.setting.as_str()).collect();
    assert_eq!(
        order,
        [
            "culture_unaware",
            "culture_aware",
            "culture_aware_self_alignment",
            "cross_culture_thinking_self_alignment",
            "self_alignment",
            "self_alignment_American",
        ]
    );
}

#[test]
fn the_embedded_release_is_the_shipped_folder() {
    let survey = SurveyData::embedded().unwrap();
    let embedded = load_released(None, &survey).unwrap();
    let from_dir = load_released(Some(&released_dir()), &survey).unwrap();
    assert_eq!(embedded.files.len(), 24);
    assert_eq!(embedded, from_dir);
    assert_eq!(from_dir.source, EMBEDDED_SOURCE);
}

#[test]
fn integer_parsing_edge_cases() {
    assert_eq!(paper_answer_code("Option 3"), Some(3));
    assert_eq!(paper_answer_code("10."), Some(10));
    assert_eq!(paper_answer_code("12"), None);
    assert_eq!(paper_answer_code(""), None);
    assert_eq!(paper_answer_code("I would choose option 2.2, which means"), Some(2));
}

fn copy_of_release() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(released_dir()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    dir
}

#[test]
fn a_malformed_file_is_named_with_its_line_and_column() {
    let survey = SurveyData::embedded().unwrap();
    let dir = copy_of_release();
    let file = dir.path().join("wvs_result_culture_aware_KEN_0.json");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, &text[..text.len() / 3]).unwrap();
    let error = ReleasedSet::from_dir(dir.path(), &survey).unwrap_err();
    let AnalysisError::Parse { file, line, column, .. } = &error else { panic!("expected a parse error, got {error}") };
    assert!(file.ends_with("wvs_result_culture_aware_KEN_0.json"));
    assert!(*line > 1 && *column > 0);
    assert!(error.to_string().contains("wvs_result_culture_aware_KEN_0.json: line"), "{error}");

    std::fs::write(dir.path().join("wvs_result_culture_aware_KEN_0.json"), text.replacen("\"Q1\"", "\"Q999\"", 1))
        .unwrap();
    let error = ReleasedSet::from_dir(dir.path(), &survey).unwrap_err().to_string();
    assert!(error.contains("wvs_result_culture_aware_KEN_0.json") && error.contains("Q999"), "{error}");
}

#[test]
fn unknown_file_names_are_skipped_and_listed() {
    let survey = SurveyData::embedded().unwrap();
    let dir = copy_of_release();
    std::fs::write(dir.path().join("notes.txt"), "not an answer file").unwrap();
    std::fs::write(dir.path().join("wvs_result_culture_aware_MEX_0.json"), "[]").unwrap();
    let released = ReleasedSet::from_dir(dir.path(), &survey).unwrap();
    let skipped: Vec<&str> = released.skipped_files.iter().map(|file| file.file_name.as_str()).collect();
    assert_eq!(skipped, ["notes.txt", "wvs_result_culture_aware_MEX_0.json"]);
    assert_eq!(released.files.len(), 24);
    // The answer files are exactly the embedded release's, so it is that source (it imports once).
    assert_eq!(released.source, EMBEDDED_SOURCE);

    // One changed answer makes the folder a source of its own, named as given.
    let file = dir.path().join("wvs_result_culture_aware_KEN_0.json");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replacen("\"answer\": \"", "\"answer\": \"Option ", 1)).unwrap();
    let released = ReleasedSet::from_dir(dir.path(), &survey).unwrap();
    assert_eq!(released.source, dir.path().display().to_string());
}

#[test]
fn score_released_prints_json_and_a_table() {
    let binary = env!("CARGO_BIN_EXE_culturespa");
    let output = Command::new(binary).args(["score-released"]).arg(released_dir()).arg("--json").output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let settings = json["settings"].as_array().unwrap();
    assert_eq!(settings.len(), 6);
    assert_eq!(settings[0]["setting"], "culture_unaware");
    assert_eq!(settings[0]["variant"], "unaware");
    assert_eq!(settings[0]["scores"].as_array().unwrap().len(), 18);
    assert_eq!(settings[0]["scores"][0]["country_code"], "USA");
    assert_eq!(rounded(settings[1]["average"].as_f64().unwrap()), 66.61);

    let output = Command::new(binary).args(["score-released"]).arg(released_dir()).output().unwrap();
    assert!(output.status.success());
    let table = String::from_utf8(output.stdout).unwrap();
    assert!(table.lines().any(|line| line.starts_with("culture_unaware") && line.contains("62.36")), "{table}");
    assert!(table.contains("not recorded"), "{table}");

    let missing = Command::new(binary).args(["score-released", "/nonexistent/folder"]).output().unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("/nonexistent/folder"));
}

#[test]
fn human_majority_answers_reproduce_the_released_similarity_table() {
    let survey = SurveyData::embedded().unwrap();
    let matrix = human_similarity_matrix(&survey);
    assert_eq!(matrix.country_codes.len(), 18);
    let mut compared = 0;
    for a in &matrix.country_codes {
        for b in matrix.country_codes.iter().filter(|b| *b != a) {
            assert_eq!(matrix.get(a, b), survey.similarity(a, b), "{a}-{b}");
            compared += 1;
        }
        assert_eq!(matrix.get(a, a), Some(100.0));
    }
    assert_eq!(compared, 306);
}

/// Each culture's P1 answers, with the paper's parsing rule.
fn p1_codes(survey: &SurveyData) -> Vec<(String, HashMap<String, u32>)> {
    let released = load_released(None, survey).unwrap();
    let mut by_culture: Vec<(String, HashMap<String, u32>)> = released
        .files
        .iter()
        .filter(|file| file.kind.variant == PromptVariant::P1)
        .map(|file| {
            let Target::Culture(code) = &file.kind.target else { panic!("P1 without a culture") };
            let codes = file
                .answers
                .iter()
                .filter_map(|answer| Some((answer.question_id.clone(), paper_answer_code(&answer.answer)?)))
                .collect();
            (code.clone(), codes)
        })
        .collect();
    let position = |code: &str| survey.cultures.iter().position(|culture| culture.country_code == code);
    by_culture.sort_by_key(|(code, _)| position(code));
    by_culture
}

#[test]
fn model_relations_correlate_with_human_relations_and_cluster_deterministically() {
    let survey = SurveyData::embedded().unwrap();
    let codes = p1_codes(&survey);
    let cultures: Vec<(&str, &HashMap<String, u32>)> =
        codes.iter().map(|(code, codes)| (code.as_str(), codes)).collect();
    let model = similarity_matrix(&survey, &cultures);
    let human = human_similarity_matrix(&survey);
    assert_eq!(model.country_codes, human.country_codes);
    let correlation = pearson_off_diagonal(&model, &human).unwrap().unwrap();
    println!("Pearson r (Llama-3-8B P1 vs human culture similarity): {correlation:.4}");
    common::assert_reference("pearson_p1_vs_human_similarity", correlation);

    let clustering = average_linkage(&human);
    assert_eq!(clustering.merges.len(), 17);
    let mut order = clustering.order.clone();
    order.sort();
    let mut all = human.country_codes.clone();
    all.sort();
    assert_eq!(order, all);
    // Merge distances of average linkage never decrease.
    assert!(clustering.merges.windows(2).all(|pair| pair[0].distance <= pair[1].distance + 1e-9));
    assert_eq!(average_linkage(&human), clustering);
    println!("human clustering order: {}", clustering.order.join(" "));
    println!("model clustering order: {}", average_linkage(&model).order.join(" "));
}
