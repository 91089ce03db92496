//! The Generate stage: run-file settings and their errors; replies a resumed run finds stored,
//! filtered into the question set that the Answer stage answers with the real default model; and
//! a real small generate run with the default model, killed in the middle and resumed, that ends
//! with exactly the replies and questions of a run that was never interrupted.

mod common;

use common::{culturespa, kill_at_commit, model, Db};
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use culturespa::engine::{CancelToken, Engine, EngineOptions};
use culturespa::pipeline::generation_prompt::{example_rng, generation_prompt, seed_examples, select_examples};
use culturespa::pipeline::runner::{derive_seed, Runner, RunnerError, SeedPurpose};
use culturespa::pipeline::{GenerationExample, ImportError};
use culturespa::runs::{parse_run_file, validate_run, RunError};
use culturespa::store::{generated_set_name, GenerationAttempt, Store};
use culturespa::survey::SurveyData;
use shared::{
    GenerationSettings, PromptVariant, RunConfig, RunEvent, RunOrigin, RunStatus, Stage,
    PAPER_GENERATION_MAX_NEW_TOKENS, PAPER_GENERATION_TEMPERATURE, PAPER_GENERATION_TOP_P,
};
use tokio::sync::broadcast;

fn survey() -> SurveyData {
    SurveyData::embedded().unwrap()
}

// ---------------------------------------------------------------------------------------------
// The run file.

const GENERATE_RUN: &str = r#"
name = "generate"
topics = [0, "Happiness and Well-being"]
questions_per_topic = 3
stages = ["generate", "answer"]
"#;

fn parse(text: &str) -> Result<RunConfig, RunError> {
    parse_run_file(Path::new("run.toml"), text, &survey())
}

#[test]
fn a_run_file_with_generate_takes_the_papers_sampling_unless_told_otherwise() {
    let config = parse(GENERATE_RUN).unwrap();
    assert_eq!(config.stages, [Stage::Generate, Stage::Answer]);
    assert_eq!(config.generation, GenerationSettings::default());
    assert_eq!(config.generation.temperature, PAPER_GENERATION_TEMPERATURE);
    assert_eq!(config.generation.top_p, PAPER_GENERATION_TOP_P);
    assert_eq!(config.generation.max_new_tokens, PAPER_GENERATION_MAX_NEW_TOKENS);

    let config = parse(&format!("{GENERATE_RUN}[generation]\nmax_attempts = 2\nmax_new_tokens = 64\n")).unwrap();
    assert_eq!(config.generation.max_attempts, 2);
    assert_eq!(config.generation.max_new_tokens, 64);
    assert_eq!(config.generation.temperature, PAPER_GENERATION_TEMPERATURE);
}

#[test]
fn bad_generation_settings_are_reported_with_the_file_and_the_field() {
    let with = |table: &str| parse(&format!("{GENERATE_RUN}[generation]\n{table}\n")).unwrap_err().to_string();
    let error = with("max_attempts = 0");
    assert!(error.starts_with("run.toml: generation.max_attempts:"), "{error}");
    assert!(with("top_p = 1.5").contains("generation.top_p"));
    assert!(with("temperature = -1.0").contains("generation.temperature"));
    assert!(with("max_new_tokens = 0").contains("generation.max_new_tokens"));
    let error = with("attempts = 3");
    assert!(error.starts_with("run.toml:") && error.contains("attempts"), "{error}");
}

#[test]
fn an_unknown_topic_is_reported_with_the_file_and_the_field() {
    let error = parse(&GENERATE_RUN.replace("[0, ", "[0, \"Cooking\", ")).unwrap_err().to_string();
    assert_eq!(error, "run.toml: topics[1]: unknown topic 'Cooking'");
    let error = parse(&GENERATE_RUN.replace("[0, ", "[13, ")).unwrap_err().to_string();
    assert_eq!(error, "run.toml: topics[0]: unknown topic '13'");
    // A configuration that comes through the API goes through the same validator.
    let mut config = parse(GENERATE_RUN).unwrap();
    config.topics = vec![1, 42];
    let invalid = validate_run(config, &survey()).unwrap_err();
    assert_eq!(invalid.field, "topics[1]");
    assert!(invalid.message.contains("unknown topic 42"), "{}", invalid.message);
}

#[test]
fn a_generating_run_answers_its_own_questions_only() {
    let error = parse(&format!("question_set = \"paper\"\n{GENERATE_RUN}")).unwrap_err().to_string();
    assert!(error.contains("question_set"), "{error}");
    // No import may take the name of a run's generated set.
    let refused = culturespa::pipeline::filter_generated_files(&survey().records, &[], &generated_set_name(3));
    assert!(matches!(refused, Err(ImportError::InvalidSetName(name)) if name == "run-3-generated"));
}

// ---------------------------------------------------------------------------------------------
// The stage in process, with the default model.

const MAX_ATTEMPTS: u32 = 2;

/// A stored configuration as the API takes it: fields left out take their defaults.
fn generating_config(topics: Vec<u8>) -> RunConfig {
    let config: RunConfig = serde_json::from_value(serde_json::json!({
        "name": "generate in process", "cultures": ["USA"], "topics": topics, "questions_per_topic": 3,
        "variants": ["unaware", "p1"], "answer_mode": "scoring", "seed": 42,
        "generation": {"max_attempts": MAX_ATTEMPTS},
        "stages": ["generate", "answer", "collect"],
    }))
    .unwrap();
    assert_eq!(config.generation, GenerationSettings { max_attempts: MAX_ATTEMPTS, ..GenerationSettings::default() });
    config
}

async fn runner(store: &Store) -> Runner {
    let engine = tokio::task::spawn_blocking(|| Engine::start(EngineOptions::new(model()))).await.unwrap().unwrap();
    let (updates, _) = broadcast::channel(1024);
    Runner {
        store: store.clone(),
        survey: Arc::new(survey()),
        engine: Arc::new(engine).into(),
        cancel: CancelToken::new(),
        updates,
    }
}

/// The user prompt the stage shows for a question, given the questions read before it.
fn prompt_for(survey: &SurveyData, topic: u8, question_index: u32, generated: &[GenerationExample]) -> String {
    let seeds = seed_examples(survey, topic);
    let mut rng = example_rng(derive_seed(42, SeedPurpose::Examples, topic, question_index, 0));
    let name = &survey.topics[usize::from(topic)].name;
    generation_prompt(name, select_examples(&seeds, generated, &mut rng)).user
}

/// Replies of a model that writes JSON, as a process that was stopped before filtering left them:
/// (topic, question index, replies in attempt order).
fn stored_replies(survey: &SurveyData) -> Vec<(u8, u32, Vec<String>)> {
    let wvs_question = survey.questions.iter().find(|question| question.topic == 1).unwrap();
    let wvs_options: Vec<&str> = wvs_question.options.iter().map(|option| option.text.as_str()).collect();
    vec![
        (0, 0, vec![r#"{"Question": "How important is it to you to help your neighbours?", "Options": ["Very important", "Rather important", "Not very important", "Not at all important"]}"#.into()]),
        (0, 1, vec![
            "Sure! Here is a question about values.".into(),
            "```json\n{\"question\": \"Should children be taught to respect elders?\", \"options\": [\"Agree\", \"Disagree\"]}\n```".into(),
        ]),
        (0, 2, vec!["I am ready to help.".into(), "{\"Question\": \"Unfinished".into()]),
        (1, 0, vec![r#"{"Question": "How often do you feel happy?", "Options": ["1. Always", "2. Often", "3. Rarely", "4. Never"]}"#.into()]),
        (1, 1, vec![serde_json::json!({"Question": wvs_question.text, "Options": wvs_options}).to_string()]),
        (1, 2, vec![r#"{"Question": "How satisfied are you?", "Options": ["1", "2", "3", "4", "5"]}"#.into()]),
    ]
}

async fn store_replies(store: &Store, run_id: i64, survey: &SurveyData) {
    let mut generated: std::collections::BTreeMap<u8, Vec<GenerationExample>> = Default::default();
    for (topic, question_index, replies) in stored_replies(survey) {
        let pool = generated.entry(topic).or_default();
        let prompt = prompt_for(survey, topic, question_index, pool);
        for (attempt, raw_reply) in replies.into_iter().enumerate() {
            let attempt = attempt as u32;
            let parsed = culturespa::pipeline::parse_generation_reply(&raw_reply)
                .map(|question| (question.question, question.options))
                .map_err(|error| error.to_string());
            if let Ok((question, options)) = &parsed {
                pool.push(GenerationExample { question: question.clone(), options: options.clone() });
            }
            let record = GenerationAttempt {
                topic,
                question_index,
                attempt,
                seed: derive_seed(42, SeedPurpose::Reply, topic, question_index, attempt),
                prompt: prompt.clone(),
                raw_reply,
                parsed,
                filter_verdict: None,
                question_id: None,
            };
            let mut transaction = store.begin().await.unwrap();
            transaction.insert_generation_attempt(run_id, &record).await.unwrap();
            transaction.commit().await.unwrap();
        }
    }
}

#[tokio::test]
async fn stored_replies_are_filtered_into_the_set_the_answer_stage_answers() {
    // On disk: the Collect stage reads while its transaction is open, which needs two connections.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let run = store.create_run(&generating_config(vec![0, 1]), &RunOrigin::Local).await.unwrap();
    let runner = runner(&store).await;
    store_replies(&store, run.run_id, &runner.survey).await;

    // Answering before the questions exist is refused.
    let early = runner.execute_stages(run.run_id, Some(Stage::Answer)).await.unwrap_err();
    assert!(early.to_string().contains("finish its Generate stage first"), "{early}");

    let run = store.create_run(&generating_config(vec![0, 1]), &RunOrigin::Local).await.unwrap();
    store_replies(&store, run.run_id, &runner.survey).await;
    assert_eq!(runner.execute(run.run_id).await.unwrap(), RunStatus::Completed);

    let attempts = store.generation_attempts(run.run_id).await.unwrap();
    // topic/question/attempt verdict question_id, "-" for none.
    let verdicts: Vec<String> = attempts
        .iter()
        .map(|a| {
            let verdict = a.filter_verdict.as_deref().unwrap_or("-");
            let question_id = a.question_id.as_deref().unwrap_or("-");
            format!("{}/{}/{} {verdict} {question_id}", a.topic, a.question_index, a.attempt)
        })
        .collect();
    assert_eq!(
        verdicts,
        [
            "0/0/0 kept Q0",
            "0/1/0 - -",
            "0/1/1 kept Q1",
            "0/2/0 - -",
            "0/2/1 - -",
            "1/0/0 rewritten Q2",
            "1/1/0 duplicate -",
            "1/2/0 digit_only -",
        ]
    );
    let set = generated_set_name(run.run_id);
    let (total, questions) = store.questions(&set, None, 100, 0).await.unwrap();
    assert_eq!(total, 3);
    assert_eq!(questions[0].text, "How important is it to you to help your neighbours?");
    assert_eq!(questions[1].options.iter().map(|o| o.text.as_str()).collect::<Vec<_>>(), ["Agree", "Disagree"]);
    assert_eq!(
        questions[2].options.iter().map(|o| (o.code, o.text.as_str())).collect::<Vec<_>>(),
        [(1, "Always"), (2, "Often"), (3, "Rarely"), (4, "Never")]
    );

    // The Answer stage answered the generated questions, unaware and as an American.
    let unaware = store.run_answers(run.run_id, &set, PromptVariant::Unaware).await.unwrap();
    let aware = store.run_answers(run.run_id, &set, PromptVariant::P1).await.unwrap();
    assert_eq!((unaware.len(), aware.len()), (3, 3));
    assert_eq!(store.answer_counts(run.run_id).await.unwrap(), (6, 3));
    assert!(unaware.iter().all(|answer| answer.parsed_code.is_some() && answer.distribution.is_some()));

    let events: Vec<RunEvent> = store.events(run.run_id, 0).await.unwrap().into_iter().map(|(_, e)| e).collect();
    let logs: Vec<&str> = events
        .iter()
        .filter_map(|event| match event {
            RunEvent::Log { message } => Some(message.as_str()),
            _ => None,
        })
        .collect();
    assert!(logs.iter().any(|log| log.starts_with("Generate: resuming, 6 of 6 questions done in 8 stored replies")));
    assert!(
        logs.contains(
            &"Generate: 5 questions read from 8 replies (3 skipped as unreadable: 62.5 % readable); 1 of 6 questions \
              given up after 2 attempts"
        ),
        "{logs:#?}"
    );
    assert!(
        logs.iter().any(|log| log.starts_with(
            "Generate: the paper's filters kept 3 of 5 questions (1 duplicates, 1 with digit-only options"
        )),
        "{logs:#?}"
    );
    let finished: Vec<Stage> = events
        .iter()
        .filter_map(|event| match event {
            RunEvent::StageFinished { stage } => Some(*stage),
            _ => None,
        })
        .collect();
    assert_eq!(finished, [Stage::Generate, Stage::Answer, Stage::Collect]);
}

#[tokio::test]
async fn a_stored_run_with_an_unknown_topic_fails_with_a_clear_error() {
    let store = Store::in_memory().await.unwrap();
    // Not through the run file or the API, which both refuse it: a configuration stored as it is.
    let run = store.create_run(&generating_config(vec![42]), &RunOrigin::Local).await.unwrap();
    let runner = runner(&store).await;
    let error = runner.execute(run.run_id).await.unwrap_err();
    assert!(matches!(error, RunnerError::Config { .. }), "{error:?}");
    assert_eq!(error.to_string(), format!("run {}: topic 42 is not one of the 13 WVS topics", run.run_id));
    assert_eq!(store.run(run.run_id).await.unwrap().status, RunStatus::Failed);
    assert!(store.generation_attempts(run.run_id).await.unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------------
// A real generate run with the default model, killed and resumed.

/// 2 topics × 3 questions, at most 2 replies each, short replies: small enough for two cores.
const REAL_RUN: &str = r#"
name = "generate resume test"
topics = [0, "Happiness and Well-being"]
questions_per_topic = 3
stages = ["generate"]

[generation]
max_attempts = 2
max_new_tokens = 40
"#;
const SLOTS: usize = 2 * 3;
/// The release is imported as run 1 on first start; the test's run is the next.
const RUN_ID: &str = "2";
const RUN_TIMEOUT: Duration = Duration::from_secs(900);

const ATTEMPTS_SQL: &str = "SELECT topic || '|' || question_index || '|' || attempt || '|' || seed || '|' || prompt \
     || '|' || raw_reply || '|' || IFNULL(question, '-') || '|' || IFNULL(options_json, '-') || '|' || \
     IFNULL(parse_error, '-') || '|' || IFNULL(filter_verdict, '-') || '|' || IFNULL(question_id, '-') \
     FROM generation_attempts WHERE run_id = 2 ORDER BY topic, question_index, attempt";
const QUESTIONS_SQL: &str = "SELECT question_id || '|' || topic || '|' || text || '|' || options_json \
     FROM questions WHERE question_set = 'run-2-generated' ORDER BY rowid";
const ATTEMPT_COUNT_SQL: &str = "SELECT CAST(COUNT(*) AS TEXT) FROM generation_attempts WHERE run_id = 2";
const SKIPPED_SQL: &str =
    "SELECT CAST(COUNT(*) AS TEXT) FROM generation_attempts WHERE run_id = 2 AND parse_error IS NOT NULL";
const READ_SQL: &str =
    "SELECT CAST(COUNT(*) AS TEXT) FROM generation_attempts WHERE run_id = 2 AND question IS NOT NULL";
/// Per question slot: its replies and whether one held a question.
const SLOTS_SQL: &str = "SELECT COUNT(*) || '|' || COUNT(question) FROM generation_attempts WHERE run_id = 2 \
     GROUP BY topic, question_index ORDER BY topic, question_index";
const EVENTS_SQL: &str = "SELECT event_json FROM run_events WHERE run_id = 2 ORDER BY event_id";
const RUN_STATUS_SQL: &str = "SELECT status FROM runs WHERE run_id = 2";

#[test]
fn a_real_generate_run_records_every_reply_and_a_killed_one_resumes_to_the_same_questions() {
    let work = tempfile::tempdir().unwrap();
    let run_file = work.path().join("run.toml");
    std::fs::write(&run_file, REAL_RUN).unwrap();

    let whole = work.path().join("whole");
    let status = culturespa(&whole).args(["run", "--config"]).arg(&run_file).stderr(Stdio::null()).status().unwrap();
    assert!(status.success());
    let whole_db = Db::of(&whole);
    assert_eq!(whole_db.rows(RUN_STATUS_SQL), ["completed"]);

    // Every question slot ends with a question or after its 2 replies; nothing is drawn after a question.
    let slots = whole_db.rows(SLOTS_SQL);
    assert_eq!(slots.len(), SLOTS, "{slots:?}");
    for slot in &slots {
        assert!(["1|1", "2|1", "2|0"].contains(&slot.as_str()), "replies|questions of a slot: {slot}");
    }
    let replies = whole_db.count(ATTEMPT_COUNT_SQL);
    let skipped = whole_db.count(SKIPPED_SQL);
    let read = whole_db.count(READ_SQL);
    assert_eq!(skipped + read, replies);
    eprintln!("the default model: {read} of {replies} replies held a question ({skipped} skipped)");
    // How many replies the model got right is the model's business (parsing and skipping are
    // tested with stored replies above); every skip is accounted for whatever their number.

    // Each skip is reported in the log, and the counts the stage reports are the stored ones.
    let events = whole_db.rows(EVENTS_SQL);
    let skip_logs = events.iter().filter(|event| event.contains("reply skipped (")).count();
    assert_eq!(skip_logs, skipped);
    let counts = format!("\"Generate: {read} questions read from {replies} replies ({skipped} skipped as unreadable");
    assert!(events.iter().any(|event| event.contains(&counts)), "{events:#?}");
    let last_progress = format!(r#"{{"kind":"progress","stage":"generate","done":{SLOTS},"total":{SLOTS}}}"#);
    assert!(events.contains(&last_progress), "{events:#?}");
    assert!(events.contains(&r#"{"kind":"stage_finished","stage":"generate"}"#.to_string()));
    let kept = whole_db.rows(QUESTIONS_SQL).len();
    assert!(kept <= read);
    let nothing_kept = events.iter().any(|event| event.contains("Generate: no question was kept"));
    assert_eq!(nothing_kept, kept == 0, "{events:#?}");

    // The same run killed once its first reply is stored, then finished with `culturespa generate`.
    let killed = work.path().join("killed");
    let mut command = culturespa(&killed);
    command.args(["run", "--config"]).arg(&run_file);
    kill_at_commit(command, 1, work.path(), RUN_TIMEOUT);
    let killed_db = Db::of(&killed);
    assert_eq!(killed_db.count(ATTEMPT_COUNT_SQL), 1, "one reply stored at the kill");
    assert_ne!(killed_db.rows(RUN_STATUS_SQL), ["completed"]);

    let status = culturespa(&killed).args(["generate", "--run", RUN_ID]).stderr(Stdio::null()).status().unwrap();
    assert!(status.success());
    assert_eq!(killed_db.rows(RUN_STATUS_SQL), ["completed"]);
    assert_eq!(killed_db.rows(ATTEMPTS_SQL), whole_db.rows(ATTEMPTS_SQL));
    assert_eq!(killed_db.rows(QUESTIONS_SQL), whole_db.rows(QUESTIONS_SQL));
    // Every reply is there once: the resume redrew nothing that was stored.
    assert_eq!(killed_db.count(ATTEMPT_COUNT_SQL), replies);
    let resumed_events = killed_db.rows(EVENTS_SQL);
    assert!(resumed_events.iter().any(|event| event.contains("Generate: resuming")), "{resumed_events:#?}");
}
