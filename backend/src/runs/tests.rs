//! The run files users write, through the one validator: levers, the README's example, errors.

use std::path::Path;

use shared::{Calibration, PersonaPlacement, PromptVariant, QuestionSelection, RunConfig, ScoringFormulation, Stage};

use super::{parse_run_file, RunError};
use crate::survey::SurveyData;

fn parse(text: &str) -> Result<RunConfig, RunError> {
    let survey = SurveyData::embedded().unwrap();
    parse_run_file(Path::new("levers.toml"), text, &survey)
}

const BASE: &str = "name = \"levers\"\nquestions_per_topic = 2\nstages = [\"answer\", \"collect\"]\n";

#[test]
fn the_levers_default_to_the_papers_settings() {
    let config = parse(BASE).unwrap();
    assert_eq!(config.scoring, ScoringFormulation::Digits);
    assert_eq!(config.calibration, Calibration::None);
    assert_eq!(config.question_selection, QuestionSelection::First);
    assert_eq!(config.collect_from, None);
    assert_eq!(config.persona, PersonaPlacement::System);
}

#[test]
fn every_lever_is_read_from_the_run_file() {
    let text = format!(
        "{BASE}variants = [\"unaware\", \"p1\", \"p1_p3\"]\nscoring = \"cloze\"\ncalibration = \"content_free\"\n\
         question_selection = \"random\"\ncollect_from = \"p1_p3\"\npersona = \"both\"\n"
    );
    let config = parse(&text).unwrap();
    assert_eq!(config.scoring, ScoringFormulation::Cloze);
    assert_eq!(config.calibration, Calibration::ContentFree);
    assert_eq!(config.question_selection, QuestionSelection::Random);
    assert_eq!(config.collect_from, Some(PromptVariant::P1P3));
    assert_eq!(config.persona, PersonaPlacement::Both);
    let permutation = parse(&format!("{BASE}calibration = \"permutation\"\n")).unwrap();
    assert_eq!(permutation.calibration, Calibration::Permutation);
}

fn invalid_field(text: &str) -> (String, String) {
    match parse(text) {
        Err(RunError::InvalidFile { invalid, .. }) => (invalid.field, invalid.message),
        other => panic!("expected an invalid field, got {other:?}"),
    }
}

#[test]
fn levers_that_do_not_apply_are_refused_naming_the_field() {
    let sampling = format!("{BASE}answer_mode = \"sampling\"\n");
    assert_eq!(invalid_field(&format!("{sampling}calibration = \"permutation\"\n")).0, "calibration");
    assert_eq!(invalid_field(&format!("{sampling}scoring = \"cloze\"\n")).0, "scoring");
    let (field, message) = invalid_field(&format!("{BASE}collect_from = \"p2\"\n"));
    assert_eq!(field, "collect_from");
    assert!(message.contains("P2"), "{message}");
    assert_eq!(invalid_field(&format!("{BASE}collect_from = \"unaware\"\n")).0, "collect_from");
}

/// The run-file example of the README (its first ```toml block).
fn readme_example() -> String {
    let readme = include_str!("../../../README.md");
    let start = readme.find("```toml\n").expect("the README has a run-file example") + "```toml\n".len();
    let end = start + readme[start..].find("```").expect("the example ends");
    readme[start..end].to_string()
}

#[test]
fn the_readme_run_file_parses_as_it_says_with_each_documented_option() {
    let example = readme_example();
    let config = parse(&example).unwrap_or_else(|error| panic!("the README's run file: {error}"));
    assert_eq!(config.name, "small run");
    assert_eq!(config.cultures, ["USA", "CHN", "NGA"]);
    assert_eq!(config.topics.len(), 2);
    assert_eq!(config.questions_per_topic, 10);
    assert_eq!(config.variants, [PromptVariant::Unaware, PromptVariant::P1]);
    assert_eq!(config.stages, [Stage::Answer, Stage::Collect, Stage::Export]);

    // Every commented option, switched on alone (a table with all of its lines), still parses.
    let lines: Vec<&str> = example.lines().collect();
    let mut options_checked = 0;
    let mut index = 0;
    while index < lines.len() {
        let line = lines[index];
        let Some(commented) = line.strip_prefix("# ") else {
            index += 1;
            continue;
        };
        let option = commented.split("  #").next().unwrap_or(commented).trim_end();
        let (switched_on, next) = if option.starts_with('[') {
            let mut table = vec![option.to_string()];
            let mut next = index + 1;
            while next < lines.len() && lines[next].starts_with("# ") && !lines[next][2..].starts_with('[') {
                table.push(lines[next][2..].split("  #").next().unwrap_or_default().trim_end().to_string());
                next += 1;
            }
            (format!("{example}\n{}\n", table.join("\n")), next)
        } else {
            let mut text = String::new();
            for other in &lines {
                text.push_str(if std::ptr::eq(*other, line) { option } else { other });
                text.push('\n');
            }
            (text, index + 1)
        };
        if let Err(error) = parse(&switched_on) {
            panic!("the README's `{option}` does not parse: {error}");
        }
        options_checked += 1;
        index = next;
    }
    assert!(options_checked >= 11, "{options_checked} options checked");
    // Each variant the comment lists is a variant, in both spellings.
    for (text, variant) in
        [("p1_p3", PromptVariant::P1P3), ("p1p3", PromptVariant::P1P3), ("p2p3", PromptVariant::P2P3)]
    {
        let config = parse(&format!("{BASE}variants = [\"unaware\", \"{text}\"]\n")).unwrap();
        assert_eq!(config.variants, [PromptVariant::Unaware, variant]);
    }
}

#[test]
fn an_unknown_lever_value_is_a_parse_error_naming_the_file() {
    let error = parse(&format!("{BASE}calibration = \"sideways\"\n")).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, RunError::RunFile(_)), "{message}");
    assert!(message.starts_with("levers.toml") && message.contains("sideways"), "{message}");
}

#[test]
fn culture_codes_are_normalised_the_same_way_for_every_origin() {
    let survey = SurveyData::embedded().unwrap();
    let from_file = parse(&format!("{BASE}cultures = [\"usa\", \" chn\", \"NGA\"]\n")).unwrap();
    assert_eq!(from_file.cultures, ["USA", "CHN", "NGA"]);
    // The same configuration as a request body (JSON) validates to the same run.
    let mut from_request: RunConfig = serde_json::from_value(serde_json::json!({
        "name": "levers", "questions_per_topic": 2, "stages": ["answer", "collect"],
        "cultures": ["usa", " chn", "NGA"],
    }))
    .unwrap();
    from_request = super::validate_run(from_request, &survey).unwrap();
    assert_eq!(from_request, from_file);
    let (field, message) = invalid_field(&format!("{BASE}cultures = [\"USA\", \"XYZ\"]\n"));
    assert_eq!((field.as_str(), message.as_str()), ("cultures[1]", "unknown culture 'XYZ'"));
}

#[test]
fn topics_are_named_or_numbered_and_checked() {
    let config = parse(&format!("{BASE}topics = [\"economic values\", 12, \"0\"]\n")).unwrap();
    let economic = crate::survey::TOPICS.iter().position(|topic| topic.name == "Economic Values").unwrap();
    assert_eq!(config.topics, [economic as u8, 12, 0]);
    let error = parse(&format!("{BASE}topics = [2, 13]\n")).unwrap_err().to_string();
    assert_eq!(error, "levers.toml: topics[1]: unknown topic '13'");
}

#[test]
fn training_and_generation_settings_are_checked_by_the_engine_and_named_as_written() {
    let train = "name = \"t\"\nstages = [\"answer\", \"collect\", \"train\"]\n";
    for (table, field) in [
        ("rank = 0", "training.rank"),
        ("alpha = -1.0", "training.alpha"),
        ("dropout = 1.0", "training.dropout"),
        ("learning_rate = 0.0", "training.learning_rate"),
        ("micro_batch_size = 0", "training.micro_batch_size"),
        ("max_steps = 0", "training.max_steps"),
    ] {
        assert_eq!(invalid_field(&format!("{train}[training]\n{table}\n")).0, field, "{table}");
    }
    let generate = "name = \"g\"\nquestions_per_topic = 1\nstages = [\"generate\"]\n";
    for (table, field) in [
        ("top_p = 0.0", "generation.top_p"),
        ("temperature = -1.0", "generation.temperature"),
        ("max_new_tokens = 0", "generation.max_new_tokens"),
        ("max_attempts = 101", "generation.max_attempts"),
    ] {
        assert_eq!(invalid_field(&format!("{generate}[generation]\n{table}\n")).0, field, "{table}");
    }
}

#[test]
fn every_number_and_list_of_a_run_has_an_upper_bound() {
    let train = "name = \"t\"\nstages = [\"answer\", \"collect\", \"train\"]\n";
    for (table, field) in [
        ("rank = 100000", "training.rank"),
        ("epochs = 1000", "training.epochs"),
        ("batch_size = 100000", "training.batch_size"),
        ("micro_batch_size = 100000", "training.micro_batch_size"),
        ("max_steps = 100000000", "training.max_steps"),
        ("learning_rate = 5.0", "training.learning_rate"),
        ("alpha = 1e9", "training.alpha"),
    ] {
        let (found, message) = invalid_field(&format!("{train}[training]\n{table}\n"));
        assert_eq!(found, field, "{table}: {message}");
        assert!(message.contains("limit"), "{message}");
    }
    let (field, _) = invalid_field(&format!("{BASE}[generation]\nmax_new_tokens = 100000\n"));
    assert_eq!(field, "generation.max_new_tokens");
    assert_eq!(
        invalid_field(&BASE.replace("questions_per_topic = 2", "questions_per_topic = 99999")).0,
        "questions_per_topic"
    );
    assert_eq!(invalid_field(&BASE.replace("\"levers\"", &format!("\"{}\"", "x".repeat(201)))).0, "name");
    // Repeats are named where they are; a list longer than its values is refused at once.
    let (field, message) = invalid_field(&format!("{BASE}cultures = [\"USA\", \"chn\", \"usa\"]\n"));
    assert_eq!((field.as_str(), message.as_str()), ("cultures[2]", "'USA' is named twice"));
    assert_eq!(invalid_field(&format!("{BASE}topics = [1, 2, 1]\n")).0, "topics[2]");
    assert_eq!(invalid_field(&format!("{BASE}variants = [\"unaware\", \"p1\", \"p1\"]\n")).0, "variants[2]");
    let many: Vec<String> = (0..19).map(|_| "\"USA\"".to_string()).collect();
    assert_eq!(invalid_field(&format!("{BASE}cultures = [{}]\n", many.join(", "))).0, "cultures");
}

#[test]
fn a_device_is_read_as_the_engine_writes_it_and_a_bad_one_named() {
    assert_eq!(parse(BASE).unwrap().device, None);
    assert_eq!(parse(&format!("{BASE}device = \"cuda\"\n")).unwrap().device.as_deref(), Some("cuda:0"));
    assert_eq!(parse(&format!("{BASE}device = \"cuda:2\"\n")).unwrap().device.as_deref(), Some("cuda:2"));
    let (field, message) = invalid_field(&format!("{BASE}device = \"tpu\"\n"));
    assert_eq!(field, "device");
    assert!(message.contains("cpu, cuda or cuda:N"), "{message}");
}

#[test]
fn a_remote_engine_is_read_from_the_run_file_and_what_it_cannot_do_is_refused() {
    let engine = "engine = { url = \"http://gpu-box:8000/v1\", model = \"meta-llama/Meta-Llama-3-8B-Instruct\", \
                  api_key_env = \"VLLM_API_KEY\", max_in_flight = 64 }\n";
    let config = parse(&format!("{engine}{BASE}")).unwrap();
    let remote = config.engine.unwrap();
    assert_eq!((remote.url.as_str(), remote.max_in_flight), ("http://gpu-box:8000/v1", Some(64)));
    assert_eq!(remote.api_key_env.as_deref(), Some("VLLM_API_KEY"));

    let with = |engine_fields: &str, rest: &str| {
        invalid_field(&format!("engine = {{ model = \"m\", {engine_fields} }}\n{rest}{BASE}"))
    };
    assert_eq!(with("url = \"gpu-box:8000\"", "").0, "engine.url");
    assert_eq!(with("url = \"http://x/v1\", max_in_flight = 100000", "").0, "engine.max_in_flight");
    assert_eq!(with("url = \"http://x/v1\", api_key_env = \"$(cat key)\"", "").0, "engine.api_key_env");
    assert_eq!(with("url = \"http://x/v1\"", "scoring = \"cloze\"\n").0, "scoring");
    assert_eq!(with("url = \"http://x/v1\"", "device = \"cuda\"\n").0, "device");
    assert_eq!(with("url = \"http://x/v1\"", "model = \"smollm2-135m\"\n").0, "model");
    let trains = format!(
        "engine = {{ url = \"http://x/v1\", model = \"m\" }}\n{}",
        BASE.replace("\"collect\"]", "\"collect\", \"train\"]")
    );
    assert_eq!(invalid_field(&trains).0, "engine");
}
