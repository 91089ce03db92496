//! `questions import`: the filtered released questions as a stored question set, idempotent.

use std::path::{Path, PathBuf};
use std::process::Command;

use culturespa::pipeline::{import_generated_files, ImportSummary};
use culturespa::store::Store;
use culturespa::survey::SurveyData;
use shared::QuestionSource;

const KEPT: u64 = 12_847;

fn released_files() -> Vec<PathBuf> {
    let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../data/generated/Meta-Llama-3-8B-Instruct"));
    (0..13).map(|topic| dir.join(format!("generated_questions_topic_{topic}_from_all_seed.json.gz"))).collect()
}

#[tokio::test]
async fn importing_stores_the_filtered_set_once() {
    let survey = SurveyData::embedded().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();

    let first = import_generated_files(&store, &survey.records, &released_files(), "paper").await.unwrap();
    assert_eq!(first.question_set, "paper");
    assert_eq!(first.inserted, KEPT);
    assert_eq!(first.filter.kept as u64, KEPT);
    let again = import_generated_files(&store, &survey.records, &released_files(), "paper").await.unwrap();
    assert_eq!(again.inserted, 0, "a second import stores nothing new");
    assert_eq!(again.filter, first.filter);

    let (total, _) = store.questions("paper", None, 1, 0).await.unwrap();
    assert_eq!(total, KEPT);
    let (social_capital, _) = store.questions("paper", Some(2), 1, 0).await.unwrap();
    assert_eq!(social_capital, 1000);
    let card = store.question("paper", "Q1062").await.unwrap();
    assert_eq!(card.source, QuestionSource::Generated { question_set: "paper".into() });
    assert!(card.text.ends_with("Using this card on which 1 means 'Strongly disagree' and 10 means 'Strongly agree'"));
    // The WVS set is untouched.
    let (wvs_total, _) = store.questions("wvs", None, 1, 0).await.unwrap();
    assert_eq!(wvs_total, 0);
}

#[test]
fn the_import_command_prints_the_summary_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let import = || {
        let output = Command::new(env!("CARGO_BIN_EXE_culturespa"))
            .args(["questions", "import", "--set", "paper", "--data-dir"])
            .arg(dir.path())
            .args(released_files())
            .env("RUST_LOG", "error")
            .output()
            .unwrap();
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        serde_json::from_slice::<ImportSummary>(&output.stdout).unwrap()
    };
    let first = import();
    assert_eq!((first.question_set.as_str(), first.inserted, first.filter.input), ("paper", KEPT, 13_000));
    assert_eq!(import().inserted, 0);
}
