//! The Train stage with the default model: culture-joint and culture-specific adapters from a
//! run's instances (PEFT files, loss events), an adapter used by a later run's Answer stage, and
//! the settings and situations it refuses.

mod common;

use std::path::Path;
use std::sync::Arc;

use common::model;
use culturespa::api::{app, AppState};
use culturespa::engine::{CancelToken, Engine};
use culturespa::pipeline::runner::{adapters_dir, Runner};
use culturespa::runs::parse_run_file;
use culturespa::server::open_store;
use culturespa::store::{NewAnswer, WVS_SET};
use culturespa::survey::SurveyData;
use shared::{
    AdapterConfig, AnswerMode, PromptVariant, RunConfig, RunEvent, RunOrigin, RunStatus, Stage, TrainingConfig,
    TrainingMode,
};

async fn runner() -> (Runner, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let survey = Arc::new(SurveyData::embedded().unwrap());
    let store = open_store(dir.path(), &survey).await.unwrap();
    // Started as the server starts it: the catalogue gives the model's Hugging Face id.
    let options = common::model_source().engine_options(&model());
    let engine = tokio::task::spawn_blocking(move || Engine::start(options)).await.unwrap().unwrap();
    let runner = Runner {
        store,
        survey,
        engine: Arc::new(engine).into(),
        cancel: CancelToken::new(),
        updates: tokio::sync::broadcast::channel(1024).0,
    };
    (runner, dir)
}

fn config(name: &str, stages: Vec<Stage>, training: TrainingConfig) -> RunConfig {
    RunConfig {
        name: name.into(),
        model: None,
        question_set: None,
        cultures: vec!["USA".into(), "DEU".into()],
        topics: vec![0],
        questions_per_topic: 4,
        variants: vec![PromptVariant::Unaware, PromptVariant::P1],
        answer_mode: AnswerMode::Scoring,
        persona: Default::default(),
        scoring: Default::default(),
        calibration: Default::default(),
        question_selection: Default::default(),
        collect_from: None,
        seed: 7,
        generation: Default::default(),
        training,
        adapter: None,
        device: None,
        engine: None,
        stages,
    }
}

fn small_training(mode: TrainingMode) -> TrainingConfig {
    TrainingConfig {
        mode,
        learning_rate: 1e-3,
        batch_size: 4,
        micro_batch_size: 4,
        max_steps: Some(2),
        ..TrainingConfig::default()
    }
}

/// Answers to four WVS questions where each culture answers other than the unaware persona
/// (2 cultures × 4 questions = 8 instances), unless `differ` is false.
async fn store_answers(runner: &Runner, run_id: i64, differ: bool) {
    let questions = runner.store.questions(WVS_SET, Some(0), 4, 0).await.unwrap().1;
    let mut answers = Vec::new();
    for question in &questions {
        let answer = |country_code: Option<&str>, code: u32| NewAnswer {
            question_set: WVS_SET.into(),
            question_id: question.question_id.clone(),
            country_code: country_code.map(String::from),
            variant: if country_code.is_some() { PromptVariant::P1 } else { PromptVariant::Unaware },
            raw_reply: None,
            parsed_code: Some(code),
            distribution: None,
            raw_distribution: None,
        };
        answers.push(answer(None, 1));
        answers.push(answer(Some("USA"), if differ { 2 } else { 1 }));
        answers.push(answer(Some("DEU"), if differ { 3 } else { 1 }));
    }
    runner.store.insert_answers(run_id, &answers).await.unwrap();
}

async fn get(state: &AppState, uri: &str) -> Vec<u8> {
    use http_body_util::BodyExt;
    let request = axum::http::Request::builder().uri(uri).body(axum::body::Body::empty()).unwrap();
    let response = tower::ServiceExt::oneshot(app(state.clone()), request).await.unwrap();
    assert_eq!(response.status(), axum::http::StatusCode::OK, "{uri}");
    response.into_body().collect().await.unwrap().to_bytes().to_vec()
}

async fn events(runner: &Runner, run_id: i64) -> Vec<RunEvent> {
    runner.store.events(run_id, 0).await.unwrap().into_iter().map(|(_, event)| event).collect()
}

async fn distributions(runner: &Runner, run_id: i64) -> Vec<Vec<f64>> {
    let mut all = Vec::new();
    for variant in [PromptVariant::Unaware, PromptVariant::P1] {
        let answers = runner.store.run_answers(run_id, WVS_SET, variant).await.unwrap();
        all.extend(answers.into_iter().map(|answer| answer.distribution.expect("scoring stores distributions")));
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_train_joint_and_specific_adapters_and_answer_with_them() {
    let (runner, dir) = runner().await;
    let stages = vec![Stage::Collect, Stage::Train];

    // Culture-joint: one adapter from the 8 instances, two optimizer steps.
    let joint = runner
        .store
        .create_run(&config("joint", stages.clone(), small_training(TrainingMode::Joint)), &RunOrigin::Local)
        .await
        .unwrap();
    store_answers(&runner, joint.run_id, true).await;
    assert_eq!(runner.execute(joint.run_id).await.unwrap(), RunStatus::Completed);
    let joint_dir = adapters_dir(&runner, joint.run_id).unwrap().join("joint");
    assert_eq!(joint_dir, dir.path().join(format!("runs/{}/adapters/joint", joint.run_id)));
    for file in ["adapter_config.json", "adapter_model.safetensors", "trainer_state.json", "README.md"] {
        assert!(joint_dir.join(file).is_file(), "{file} is missing");
    }
    // The adapter names its base model by the catalogue's Hugging Face id, never a local path,
    // and its model card says so for the hub and PEFT.
    let adapter_config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(joint_dir.join("adapter_config.json")).unwrap()).unwrap();
    assert_eq!(adapter_config["base_model_name_or_path"], "HuggingFaceTB/SmolLM2-135M-Instruct");
    let card = std::fs::read_to_string(joint_dir.join("README.md")).unwrap();
    assert!(card.starts_with("---\nlibrary_name: peft\nbase_model: HuggingFaceTB/SmolLM2-135M-Instruct\n"), "{card}");
    assert!(card.contains("rank 8, alpha 16"), "{card}");
    // The probe of the adapter alone (`--no-base`): one row, named by the adapter's folder.
    let output =
        common::culturespa(dir.path()).args(["probe", "--no-base", "--adapter"]).arg(&joint_dir).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let rows: Vec<serde_json::Value> =
        String::from_utf8(output.stdout).unwrap().lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["setting"], joint_dir.display().to_string());
    assert_eq!(rows[0]["multiple_choice_questions"], 40);
    // Leaving the base out with no adapter to probe is refused, naming what is missing.
    let output = common::culturespa(dir.path()).args(["probe", "--no-base"]).output().unwrap();
    assert!(!output.status.success());
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("--adapter"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The browser's download: a tar of the PEFT folder.
    let state = AppState::new(Arc::clone(&runner.survey), runner.store.clone(), None, common::model_source());
    let listing = get(&state, &format!("/api/runs/{}/adapters", joint.run_id)).await;
    let listing: serde_json::Value = serde_json::from_slice(&listing).unwrap();
    assert_eq!(listing[0]["name"], "joint", "{listing}");
    let tar_bytes = get(&state, &format!("/api/runs/{}/adapters/joint/download", joint.run_id)).await;
    let mut archive = tar::Archive::new(tar_bytes.as_slice());
    let mut names: Vec<String> =
        archive.entries().unwrap().map(|entry| entry.unwrap().path().unwrap().display().to_string()).collect();
    names.sort();
    let folder = format!("culturespa_run{}_joint", joint.run_id);
    assert_eq!(
        names,
        ["README.md", "adapter_config.json", "adapter_model.safetensors"].map(|file| format!("{folder}/{file}"))
    );
    for name in ["..", "joint%2F..%2F..", ".hidden", "nope"] {
        let uri = format!("/api/runs/{}/adapters/{name}/download", joint.run_id);
        let request = axum::http::Request::builder().uri(uri).body(axum::body::Body::empty()).unwrap();
        let status = tower::ServiceExt::oneshot(app(state.clone()), request).await.unwrap().status();
        assert_eq!(status, axum::http::StatusCode::NOT_FOUND, "{name}");
    }
    let joint_events = events(&runner, joint.run_id).await;
    let losses: Vec<u64> = joint_events
        .iter()
        .filter_map(|e| if let RunEvent::Loss { step, .. } = e { Some(*step) } else { None })
        .collect();
    assert_eq!(losses, [1, 2]);
    assert!(joint_events.contains(&RunEvent::StageStarted { stage: Stage::Train, total: 2 }));
    assert!(
        joint_events.iter().any(
            |e| matches!(e, RunEvent::Log { message } if message.starts_with("adapter joint: 2 steps on 8 instances"))
        ),
        "{joint_events:?}"
    );

    // Culture-specific: one adapter per culture, one after the other, steps numbered across them.
    let specific_training = TrainingConfig { max_steps: Some(1), ..small_training(TrainingMode::Specific) };
    let specific =
        runner.store.create_run(&config("specific", stages, specific_training), &RunOrigin::Local).await.unwrap();
    store_answers(&runner, specific.run_id, true).await;
    assert_eq!(runner.execute(specific.run_id).await.unwrap(), RunStatus::Completed);
    let root = adapters_dir(&runner, specific.run_id).unwrap();
    assert!(root.join("USA/adapter_model.safetensors").is_file());
    assert!(root.join("DEU/adapter_model.safetensors").is_file());
    assert!(!root.join("joint").exists());
    let steps: Vec<u64> = events(&runner, specific.run_id)
        .await
        .iter()
        .filter_map(|e| if let RunEvent::Loss { step, .. } = e { Some(*step) } else { None })
        .collect();
    assert_eq!(steps, [1, 2]);

    // A later run answers with the joint adapter; its answers differ from the base model's.
    let answer_config = |name: &str, adapter: Option<AdapterConfig>| RunConfig {
        cultures: vec!["USA".into()],
        questions_per_topic: 2,
        adapter,
        device: None,
        engine: None,
        ..config(name, vec![Stage::Answer], TrainingConfig::default())
    };
    let adapter = AdapterConfig { path: joint_dir.display().to_string(), merged: true };
    let with_adapter =
        runner.store.create_run(&answer_config("with adapter", Some(adapter)), &RunOrigin::Local).await.unwrap();
    let base = runner.store.create_run(&answer_config("base", None), &RunOrigin::Local).await.unwrap();
    assert_eq!(runner.execute(with_adapter.run_id).await.unwrap(), RunStatus::Completed);
    assert_eq!(runner.execute(base.run_id).await.unwrap(), RunStatus::Completed);
    let (adapted, plain) =
        (distributions(&runner, with_adapter.run_id).await, distributions(&runner, base.run_id).await);
    assert_eq!(adapted.len(), 4);
    assert_eq!(plain.len(), 4);
    assert_ne!(adapted, plain, "the adapter changes the model's answers");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_without_instances_fails_its_train_stage_with_the_reason() {
    let (runner, _dir) = runner().await;
    let run = runner
        .store
        .create_run(
            &config("nothing to learn", vec![Stage::Collect, Stage::Train], small_training(TrainingMode::Joint)),
            &RunOrigin::Local,
        )
        .await
        .unwrap();
    store_answers(&runner, run.run_id, false).await;
    let error = runner.execute(run.run_id).await.unwrap_err().to_string();
    assert!(error.contains("no instances to train on"), "{error}");
    assert_eq!(runner.store.run(run.run_id).await.unwrap().status, RunStatus::Failed);

    // A missing adapter folder is named.
    let mut config = config("missing adapter", vec![Stage::Answer], TrainingConfig::default());
    config.adapter = Some(AdapterConfig { path: "/nonexistent/adapter".into(), merged: false });
    let run = runner.store.create_run(&config, &RunOrigin::Local).await.unwrap();
    let error = runner.execute(run.run_id).await.unwrap_err().to_string();
    assert!(error.contains("/nonexistent/adapter"), "{error}");
}

#[test]
fn run_files_name_bad_training_settings() {
    let survey = SurveyData::embedded().unwrap();
    let file = Path::new("run.toml");
    let base = "name = \"t\"\ncultures = [\"USA\"]\nquestions_per_topic = 2\n";
    let parse = |text: String| parse_run_file(file, &text, &survey);

    let config = parse(format!(
        "{base}stages = [\"answer\", \"collect\", \"train\"]\n[training]\nmode = \"specific\"\nrank = 4\nmax_steps = 3\n"
    ))
    .unwrap();
    assert_eq!(config.training.mode, TrainingMode::Specific);
    assert_eq!((config.training.rank, config.training.alpha, config.training.max_steps), (4, 16.0, Some(3)));

    let error =
        parse(format!("{base}stages = [\"answer\", \"collect\", \"train\"]\n[training]\nrank = 0\n")).unwrap_err();
    assert_eq!(error.to_string(), "run.toml: training.rank: must be at least 1");
    let error = parse(format!("{base}stages = [\"answer\", \"train\"]\n")).unwrap_err();
    assert!(error.to_string().contains("training needs the Collect stage"), "{error}");
    let error =
        parse(format!("{base}stages = [\"answer\", \"collect\", \"train\"]\n[training]\nranks = 4\n")).unwrap_err();
    assert!(error.to_string().contains("ranks"), "{error}");
    let error =
        parse(format!("{base}stages = [\"answer\", \"collect\", \"train\"]\n[adapter]\npath = \"adapters/joint\"\n"))
            .unwrap_err();
    assert!(error.to_string().contains("answers with its own adapters"), "{error}");
    let config =
        parse(format!("{base}stages = [\"evaluate\"]\n[adapter]\npath = \"adapters/joint\"\nmerged = false\n"))
            .unwrap();
    assert_eq!(config.adapter, Some(AdapterConfig { path: "adapters/joint".into(), merged: false }));
}
