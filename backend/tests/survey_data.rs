//! The WVS loader: what it keeps, how it numbers options, and how it reports broken files.

use std::path::Path;

use culturespa::survey::{DataError, SurveyData, DATA_FILES};
use shared::QuestionSource;

fn data_dir() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../data/wvs"))
}

#[test]
fn keeps_259_questions_in_13_topics_and_18_cultures() {
    let survey = SurveyData::embedded().unwrap();
    assert_eq!(survey.records.len(), 291);
    assert_eq!(survey.questions.len(), 259);
    assert!(survey.question("Q223").is_none());
    assert!(survey.question("Q260").is_none());
    assert!(survey.question("Q234A").is_some());
    assert!(survey.questions.iter().all(|q| q.source == QuestionSource::Wvs));
    assert_eq!(survey.cultures.len(), 18);
    let counts: Vec<u32> = survey.topics.iter().map(|t| t.question_count).collect();
    assert_eq!(counts, [45, 11, 49, 6, 9, 10, 21, 6, 6, 12, 23, 36, 25]);
    assert_eq!(counts.iter().sum::<u32>(), 259);
    // Q223 is dropped from topic 11's range Q199–Q234 (+Q234A).
    assert_eq!(survey.question("Q234A").unwrap().topic, 11);
    assert_eq!(survey.question("Q259").unwrap().topic, 12);
}

#[test]
fn option_codes_start_at_zero_only_for_the_zero_questions() {
    let survey = SurveyData::embedded().unwrap();
    let first_code = |id: &str| survey.question(id).unwrap().options[0].code;
    for id in ["Q94", "Q105", "Q119", "Q122", "Q129", "Q241", "Q249"] {
        assert_eq!(first_code(id), 0, "{id}");
    }
    for id in ["Q1", "Q93", "Q106", "Q118", "Q120", "Q121", "Q130", "Q240", "Q250"] {
        assert_eq!(first_code(id), 1, "{id}");
    }
    let q1 = survey.question("Q1").unwrap();
    assert_eq!(q1.options_line(), "1.Very important 2.Rather important 3.Not very important 4.Not at all important");
    // Codes are consecutive.
    for question in &survey.questions {
        let start = question.options[0].code;
        for (offset, option) in question.options.iter().enumerate() {
            assert_eq!(option.code, start + offset as u32, "{}", question.question_id);
        }
    }
}

#[test]
fn human_answers_keep_the_file_order_and_the_majority_first() {
    let survey = SurveyData::embedded().unwrap();
    let aus_q1 = survey.human("AUS", "Q1").unwrap();
    assert_eq!(aus_q1.majority_code(), Some(1));
    assert!((aus_q1.shares[0].share - 0.9023717595146167).abs() < 1e-15);
    let aus_q94 = survey.human("AUS", "Q94").unwrap();
    assert_eq!(aus_q94.shares.iter().map(|s| s.code).collect::<Vec<_>>(), [0, 1, 2]);
    // 60 empty cells in all, 37 of them for China.
    let empty = |code: &str| survey.questions.iter().filter(|q| survey.human(code, &q.question_id).is_none()).count();
    assert_eq!(survey.cultures.iter().map(|c| empty(&c.country_code)).sum::<usize>(), 60);
    assert_eq!(empty("CHN"), 37);
    assert_eq!(survey.culture("CHN").unwrap().answered_questions, 259 - 37);
}

#[test]
fn similarity_orders_cultures() {
    let survey = SurveyData::embedded().unwrap();
    assert_eq!(survey.similarity("USA", "CAN"), Some(71.3));
    let ordered = survey.cultures_by_similarity("USA");
    assert_eq!(ordered.len(), 17);
    assert!(ordered.windows(2).all(|pair| pair[0].1 >= pair[1].1));
    assert_eq!(survey.similar_questions("Q1")[..3], ["Q5", "Q4", "Q6"]);
}

#[test]
fn reading_the_shipped_folder_equals_the_embedded_copy() {
    let from_dir = SurveyData::from_dir(data_dir()).unwrap();
    let embedded = SurveyData::embedded().unwrap();
    assert_eq!(from_dir.questions, embedded.questions);
    assert_eq!(from_dir.cultures, embedded.cultures);
}

fn broken_copy(file: &str, contents: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for name in DATA_FILES {
        std::fs::copy(data_dir().join(name), dir.path().join(name)).unwrap();
    }
    std::fs::write(dir.path().join(file), contents).unwrap();
    dir
}

#[test]
fn a_missing_file_is_named() {
    let dir = broken_copy("country_similarity.json", "{}");
    std::fs::remove_file(dir.path().join("wvs_questions.json")).unwrap();
    let error = SurveyData::from_dir(dir.path()).unwrap_err();
    assert!(matches!(error, DataError::Read { .. }));
    assert!(error.to_string().contains("wvs_questions.json"), "{error}");
}

#[test]
fn a_truncated_file_is_named_with_its_line() {
    let text = std::fs::read_to_string(data_dir().join("wvs_questions.json")).unwrap();
    let dir = broken_copy("wvs_questions.json", &text[..text.len() / 2]);
    let error = SurveyData::from_dir(dir.path()).unwrap_err();
    let DataError::Parse { file, line, .. } = &error else { panic!("expected a parse error, got {error}") };
    assert!(file.ends_with("wvs_questions.json"));
    assert!(*line > 1);
}

#[test]
fn invalid_content_names_the_field() {
    let text = std::fs::read_to_string(data_dir().join("proportions_group_by_country.json")).unwrap();
    // An answer code that Q1 does not have.
    let broken = text.replacen("\"1\": 0.9023717595146167", "\"9\": 0.9023717595146167", 1);
    assert_ne!(broken, text, "the fixture edit must apply");
    let dir = broken_copy("proportions_group_by_country.json", &broken);
    let error = SurveyData::from_dir(dir.path()).unwrap_err().to_string();
    assert!(error.contains("proportions_group_by_country.json") && error.contains("AUS.Q1.9"), "{error}");

    let dir = broken_copy("country_similarity.json", "{\"USA\": {}}");
    let error = SurveyData::from_dir(dir.path()).unwrap_err().to_string();
    assert!(error.contains("country_similarity.json") && error.contains("USA.CAN"), "{error}");
}
