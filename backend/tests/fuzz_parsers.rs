//! Every parser of untrusted input, fed mutated seeds (`tests/fuzz_corpus/`) and arbitrary text:
//! each returns a value or an error, and never panics. A run file or configuration that parses
//! goes through the run validator too.

use std::path::Path;

use culturespa::engine::train::parse_sft_text;
use culturespa::pipeline::python_literal::parse_python_str_list;
use culturespa::pipeline::{parse_generation_reply, read_generated_files};
use culturespa::runs::{parse_run_file, validate_run};
use culturespa::survey::SurveyData;
use proptest::prelude::*;

const RUN_FILE: &str = include_str!("fuzz_corpus/run_file.toml");
const RUN_CONFIG: &str = include_str!("fuzz_corpus/run_config.json");
const REPLY: &str = include_str!("fuzz_corpus/generation_reply.txt");
const PYTHON_LIST: &str = include_str!("fuzz_corpus/python_list.txt");
const SFT: &str = include_str!("fuzz_corpus/sft.jsonl");
const GENERATED: &str = include_str!("fuzz_corpus/generated_questions.json");

/// One edit of a text: insert, delete or replace a character, or cut the text there.
#[derive(Debug, Clone)]
enum Edit {
    Insert(usize, char),
    Delete(usize),
    Replace(usize, char),
    Truncate(usize),
}

fn edit() -> impl Strategy<Value = Edit> {
    // Characters that matter to these formats, and any other.
    let interesting =
        prop::sample::select(vec!['"', '\'', '\\', '{', '}', '[', ']', ',', ':', '=', '\n', '0', '9', '-', 'é']);
    let character = prop_oneof![interesting, any::<char>()];
    prop_oneof![
        (any::<usize>(), character.clone()).prop_map(|(at, c)| Edit::Insert(at, c)),
        any::<usize>().prop_map(Edit::Delete),
        (any::<usize>(), character).prop_map(|(at, c)| Edit::Replace(at, c)),
        any::<usize>().prop_map(Edit::Truncate),
    ]
}

/// The seed with up to 8 edits, or arbitrary text.
fn mutated(seed: &'static str) -> impl Strategy<Value = String> {
    prop_oneof![
        4 => prop::collection::vec(edit(), 1..8).prop_map(move |edits| apply(seed, &edits)),
        1 => ".{0,200}",
    ]
}

fn apply(seed: &str, edits: &[Edit]) -> String {
    let mut chars: Vec<char> = seed.chars().collect();
    for edit in edits {
        let at = |index: usize| if chars.is_empty() { 0 } else { index % chars.len() };
        match *edit {
            Edit::Insert(index, c) => {
                let index = if chars.is_empty() { 0 } else { index % (chars.len() + 1) };
                chars.insert(index, c);
            }
            Edit::Delete(index) if !chars.is_empty() => {
                chars.remove(at(index));
            }
            Edit::Replace(index, c) if !chars.is_empty() => {
                let index = at(index);
                chars[index] = c;
            }
            Edit::Truncate(index) => chars.truncate(at(index)),
            _ => {}
        }
    }
    chars.into_iter().collect()
}

fn survey() -> &'static SurveyData {
    static SURVEY: std::sync::OnceLock<SurveyData> = std::sync::OnceLock::new();
    SURVEY.get_or_init(|| SurveyData::embedded().unwrap())
}

#[test]
fn the_seeds_parse() {
    parse_run_file(Path::new("run.toml"), RUN_FILE, survey()).unwrap();
    validate_run(serde_json::from_str(RUN_CONFIG).unwrap(), survey()).unwrap();
    parse_generation_reply(REPLY).unwrap();
    assert_eq!(parse_python_str_list(PYTHON_LIST.trim()).unwrap().0.len(), 5);
    assert_eq!(parse_sft_text(SFT, Path::new("sft.jsonl")).unwrap().len(), 2);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("generated_questions_topic_2_from_all_seed.json");
    std::fs::write(&file, GENERATED).unwrap();
    assert_eq!(read_generated_files(&[file]).unwrap().len(), 2);
}

proptest! {
    #[test]
    fn run_files_never_panic(text in mutated(RUN_FILE)) {
        let _ = parse_run_file(Path::new("run.toml"), &text, survey());
    }

    #[test]
    fn run_configurations_from_requests_never_panic(text in mutated(RUN_CONFIG)) {
        if let Ok(config) = serde_json::from_str(&text) {
            let _ = validate_run(config, survey());
        }
    }

    #[test]
    fn model_replies_never_panic(text in mutated(REPLY)) {
        let _ = parse_generation_reply(&text);
    }

    #[test]
    fn python_option_lists_never_panic(text in mutated(PYTHON_LIST)) {
        let _ = parse_python_str_list(&text);
    }

    #[test]
    fn sft_files_never_panic(text in mutated(SFT)) {
        let _ = parse_sft_text(&text, Path::new("sft.jsonl"));
    }

    #[test]
    fn generated_question_files_never_panic(text in mutated(GENERATED)) {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("generated_questions_topic_2_from_all_seed.json");
        std::fs::write(&file, &text).unwrap();
        let _ = read_generated_files(&[file]);
    }
}
