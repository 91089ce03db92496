//! The paper's filters on the released generated questions (13,000 → 12,891 → 12,860 → 12,847)
//! and how broken files are reported.

use std::collections::{BTreeMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use culturespa::pipeline::generated_files::read_generated_files;
use culturespa::pipeline::question_filter::{filter_generated, FilterSummary, RuleCounts};
use culturespa::pipeline::{filter_generated_files, GeneratedFileError, ImportError};
use culturespa::survey::SurveyData;
use shared::{Question, QuestionSource};

const TOPIC_COUNT: usize = 13;

/// DESIGN.md's kept questions per topic.
const KEPT_PER_TOPIC: [(&str, usize); TOPIC_COUNT] = [
    ("Social Capital, Trust & Organizational Membership", 1000),
    ("Social Values, Attitudes & Stereotypes", 999),
    ("Corruption", 998),
    ("Migration", 998),
    ("Postmaterialist Index", 996),
    ("Ethical Values and Norms", 994),
    ("Religious Values", 993),
    ("Political Culture & Political Regimes", 993),
    ("Science & Technology", 986),
    ("Economic Values", 984),
    ("Happiness and Well-being", 974),
    ("Political Interest & Political Participation", 971),
    ("Security", 961),
];

/// The released files in shell-glob order (topic_0, topic_1, topic_10, …): the filter must put
/// them in topic order itself.
fn released_files() -> Vec<PathBuf> {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../data/generated/Meta-Llama-3-8B-Instruct"));
    let mut files: Vec<PathBuf> = (0..TOPIC_COUNT)
        .map(|topic| dir.join(format!("generated_questions_topic_{topic}_from_all_seed.json.gz")))
        .collect();
    files.sort();
    files
}

fn expected_summary() -> FilterSummary {
    FilterSummary {
        input: 13_000,
        after_dedup: 12_891,
        after_digit_filter: 12_860,
        kept: 12_847,
        per_topic: KEPT_PER_TOPIC.iter().map(|(name, count)| (name.to_string(), *count)).collect::<BTreeMap<_, _>>(),
    }
}

#[test]
fn the_released_questions_filter_to_the_papers_counts() {
    let survey = SurveyData::embedded().unwrap();
    let outcome = filter_generated_files(&survey.records, &released_files(), "paper").unwrap();
    assert_eq!(outcome.summary, expected_summary());
    assert_eq!(
        outcome.rule_counts,
        RuleCounts {
            duplicates: 109,
            digit_only_dropped: 31,
            prefixes_removed: 2833,
            card_rewritten: 23,
            numbering_dropped: 13,
            hand_exempt: 1,
        }
    );

    let questions = &outcome.questions;
    let ids: HashSet<&str> = questions.iter().map(|q| q.question_id.as_str()).collect();
    assert_eq!(ids.len(), questions.len(), "ids are unique within the set");
    assert!(questions.windows(2).all(|pair| pair[0].topic <= pair[1].topic), "topic order");
    assert!(questions.iter().all(|q| q.source == QuestionSource::Generated { question_set: "paper".into() }));

    // Ids are positions in the paper's merged file: Q1062 is its example of a card question.
    let card = questions.iter().find(|q| q.question_id == "Q1062").unwrap();
    assert_eq!(card.text, "On a scale of 1 to 10, how much do you agree with the statement: 'I have the personal freedom to pursue my goals and aspirations without being held back by societal expectations or norms'?  Using this card on which 1 means 'Strongly disagree' and 10 means 'Strongly agree'");
    assert_eq!(card.options_line(), "1.1 2.2 3.3 4.4 5.5 6.6 7.7 8.8 9.9 10.10");

    // Q1036 lost its number prefixes; the hand-exempted Q1879 kept its own.
    let prefixed = questions.iter().find(|q| q.question_id == "Q1036").unwrap();
    assert_eq!(
        prefixed.options_line(),
        "1.Rarely or never 2.Occasionally 3.About half the time 4.Often 5.Almost always"
    );
    let exempt = questions.iter().find(|q| q.question_id == "Q1879").unwrap();
    assert_eq!(exempt.options_line(), "1.1-3: Too slow 2.4-6: Just right 3.7-8: Too fast 4.9-10: Extremely fast");

    // Questions whose first option is 0 number their options from 0.
    let zero_based = questions.iter().find(|q| q.question_id == "Q1000").unwrap();
    assert_eq!(zero_based.options[0].code, 0);
    assert_eq!(zero_based.options[10].code, 10);
}

#[test]
fn the_order_of_the_files_on_the_command_line_does_not_matter() {
    let survey = SurveyData::embedded().unwrap();
    let mut files = released_files();
    let forward = filter_generated(&survey.records, &read_generated_files(&files).unwrap(), "paper");
    files.reverse();
    let backward = filter_generated(&survey.records, &read_generated_files(&files).unwrap(), "paper");
    assert_eq!(forward.questions, backward.questions);
}

fn write_file(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn record_error(dir: &Path, text: &str) -> String {
    let survey = SurveyData::embedded().unwrap();
    let file = write_file(dir, "broken.json", text);
    match filter_generated_files(&survey.records, &[file], "test") {
        Err(ImportError::Files(error @ GeneratedFileError::Record { .. })) => error.to_string(),
        other => panic!("expected a record error, got {other:?}"),
    }
}

#[test]
fn a_broken_record_names_the_file_the_record_and_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let good = r#"{"question": "Q?", "option_lst": ["a", "b"], "class": "Corruption"}"#;
    let message = record_error(
        dir.path(),
        &format!(r#"[{good}, {{"question": "Q?", "option_lst": ["a", 3], "class": "Corruption"}}]"#),
    );
    assert!(
        message.contains("broken.json") && message.contains("record 1") && message.contains("`option_lst`"),
        "{message}"
    );
    let message = record_error(dir.path(), r#"[{"option_lst": ["a"], "class": "Corruption"}]"#);
    assert!(message.contains("record 0") && message.contains("`question`: missing"), "{message}");
    let message = record_error(dir.path(), r#"[{"question": "Q?", "option_lst": ["a"], "class": "Sports"}]"#);
    assert!(message.contains("`class`") && message.contains("Sports"), "{message}");
    let message = record_error(dir.path(), r#"[{"question": "Q?", "option_lst": ["a"]}]"#);
    assert!(message.contains("`class`: missing"), "{message}");
    let message =
        record_error(dir.path(), r#"[{"question": "Q?", "option_lst": ["a"], "class": "Corruption", "prompt": 5}]"#);
    assert!(message.contains("`prompt`"), "{message}");
    let message = record_error(dir.path(), "[3]");
    assert!(message.contains("record 0") && message.contains("not a JSON object"), "{message}");
}

#[test]
fn broken_files_name_the_file() {
    let survey = SurveyData::embedded().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let not_json = write_file(dir.path(), "not_json.json", "[{");
    let error = filter_generated_files(&survey.records, &[not_json], "test").unwrap_err().to_string();
    assert!(error.contains("not_json.json") && error.contains("not JSON"), "{error}");
    let not_a_list = write_file(dir.path(), "object.json", "{}");
    let error = filter_generated_files(&survey.records, &[not_a_list], "test").unwrap_err().to_string();
    assert!(error.contains("object.json") && error.contains("list"), "{error}");
    let missing = dir.path().join("missing.json");
    let error = filter_generated_files(&survey.records, &[missing], "test").unwrap_err().to_string();
    assert!(error.contains("missing.json") && error.contains("cannot read"), "{error}");
    let bad_gzip = dir.path().join("bad.json.gz");
    std::fs::write(&bad_gzip, [0x1f, 0x8b, 0x08, 0x00, 0x01]).unwrap();
    let error = filter_generated_files(&survey.records, &[bad_gzip], "test").unwrap_err().to_string();
    assert!(error.contains("bad.json.gz"), "{error}");
}

#[test]
fn plain_and_gzipped_files_read_alike_and_the_topic_can_come_from_the_file_name() {
    let survey = SurveyData::embedded().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = r#"[{"question": "How often do you vote?", "option_lst": ["1 (Always)", "2 (Never)"]},
                   {"question": "How important is family in your life?", "option_lst": ["a", "b"]}]"#;
    let plain = write_file(dir.path(), "generated_questions_topic_11_x.json", text);
    let gzipped = dir.path().join("mine_topic_11.json.gz");
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(text.as_bytes()).unwrap();
    std::fs::write(&gzipped, encoder.finish().unwrap()).unwrap();
    for file in [plain, gzipped] {
        let outcome = filter_generated_files(&survey.records, &[file], "mine").unwrap();
        // The second question is WVS Q1 and goes; the first loses its number prefixes.
        assert_eq!(outcome.summary.after_dedup, 1);
        let question: &Question = &outcome.questions[0];
        assert_eq!((question.question_id.as_str(), question.topic), ("Q0", 11));
        assert_eq!(question.options_line(), "1.Always 2.Never");
    }
}

#[test]
fn the_wvs_set_name_is_reserved() {
    let survey = SurveyData::embedded().unwrap();
    assert!(matches!(
        filter_generated_files(&survey.records, &released_files(), "wvs"),
        Err(ImportError::InvalidSetName(_))
    ));
    assert!(matches!(
        filter_generated_files(&survey.records, &released_files(), " "),
        Err(ImportError::InvalidSetName(_))
    ));
}

#[test]
fn the_filter_command_writes_the_questions_and_prints_the_summary() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("kept.json");
    let output = Command::new(env!("CARGO_BIN_EXE_culturespa"))
        .args(["questions", "filter", "--out"])
        .arg(&out)
        .args(released_files())
        .env("RUST_LOG", "error")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let summary: FilterSummary = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(summary, expected_summary());
    let questions: Vec<Question> = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(questions.len(), 12_847);
    assert_eq!(questions[0].source, QuestionSource::Generated { question_set: "generated".into() });
}

#[test]
fn the_filter_command_reports_a_broken_record() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_file(dir.path(), "broken.json", r#"[{"question": 1, "option_lst": [], "class": "Corruption"}]"#);
    let output = Command::new(env!("CARGO_BIN_EXE_culturespa"))
        .args(["questions", "filter", "--out"])
        .arg(dir.path().join("kept.json"))
        .arg(&file)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("broken.json: record 0: field `question`: not a string"), "{stderr}");
}

#[test]
fn every_released_record_gets_the_verdict_the_counts_report() {
    use culturespa::pipeline::question_filter::FilterVerdict;
    let survey = SurveyData::embedded().unwrap();
    let records = read_generated_files(&released_files()).unwrap();
    let outcome = filter_generated(&survey.records, &records, "paper");
    assert_eq!(outcome.verdicts.len(), records.len());
    let count = |label: &str| outcome.verdicts.iter().filter(|verdict| verdict.label() == label).count();
    let rules = &outcome.rule_counts;
    assert_eq!(count("duplicate"), rules.duplicates);
    assert_eq!(count("digit_only"), rules.digit_only_dropped);
    assert_eq!(count("numbering"), rules.numbering_dropped);
    assert_eq!(count("rewritten"), rules.prefixes_removed + rules.card_rewritten);
    assert_eq!(count("kept") + count("rewritten"), outcome.questions.len());
    // A kept record's verdict names its question, and the question keeps the record's topic.
    let by_id: BTreeMap<&str, &Question> =
        outcome.questions.iter().map(|question| (question.question_id.as_str(), question)).collect();
    for (record, verdict) in records.iter().zip(&outcome.verdicts) {
        if let Some(question_id) = verdict.question_id() {
            assert_eq!(by_id[question_id].topic, record.topic);
            if matches!(verdict, FilterVerdict::Kept { .. }) {
                assert_eq!(by_id[question_id].text, record.question);
            }
        }
    }
}
