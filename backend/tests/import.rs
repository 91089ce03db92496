//! Importing the paper's released answers as a run: what it stores, that it happens once, and that
//! the server's first start does it.

use std::time::Instant;

use culturespa::analysis::{import_embedded_release, import_released, load_released, AnalysisError, EMBEDDED_SOURCE};
use culturespa::server::open_store;
use culturespa::store::{InstanceFilter, Store, WVS_SET};
use culturespa::survey::SurveyData;
use shared::{AnswerMode, PromptVariant, RunConfig, RunEvent, RunOrigin, RunStatus, Stage};

/// Answers in the unaware file and the 18 P1 files (259 questions each).
const IMPORTED_ANSWERS: u64 = 19 * 259;
/// (question, culture) pairs whose P1 and unaware answers both parse as option codes and differ.
const RELEASED_INSTANCES: u64 = 1373;

fn origin() -> RunOrigin {
    RunOrigin::Imported { source: EMBEDDED_SOURCE.to_string() }
}

#[tokio::test]
async fn the_release_imports_as_a_completed_run_with_its_instances_once() {
    let dir = tempfile::tempdir().unwrap();
    let survey = SurveyData::embedded().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let released = load_released(None, &survey).unwrap();

    let started = Instant::now();
    let summary = import_released(&store, &survey, &released, Some("baseline")).await.unwrap();
    println!("import took {:?}", started.elapsed());
    assert!(summary.created);
    assert_eq!(summary.answers, IMPORTED_ANSWERS);
    assert_eq!(summary.aware_answers, 18 * 259);
    assert_eq!(summary.instances, RELEASED_INSTANCES);

    let run = store.run(summary.run_id).await.unwrap();
    assert_eq!(run.status, RunStatus::Completed);
    assert_eq!(run.origin, origin());
    assert_eq!(run.config.name, "baseline");
    assert_eq!(run.config.model.as_deref(), Some("Meta-Llama-3-8B-Instruct"));
    assert_eq!(run.config.cultures.len(), 18);
    assert_eq!(run.config.cultures[0], "USA");
    assert_eq!(run.config.answer_mode, AnswerMode::Sampling);

    let events: Vec<RunEvent> = store.events(run.run_id, 0).await.unwrap().into_iter().map(|(_, e)| e).collect();
    assert_eq!(events.first(), Some(&RunEvent::StageStarted { stage: Stage::Answer, total: IMPORTED_ANSWERS }));
    assert!(events.contains(&RunEvent::StageFinished { stage: Stage::Answer }));
    assert!(events.contains(&RunEvent::StageFinished { stage: Stage::Collect }));
    assert!(events.iter().any(|event| matches!(event, RunEvent::Progress { stage: Stage::Collect, .. })));
    assert_eq!(events.last(), Some(&RunEvent::Finished { status: RunStatus::Completed }));

    // Raw replies are kept; the parsed code must be one of the question's option codes.
    let q1 = store.answers_to(run.run_id, WVS_SET, "Q1").await.unwrap();
    assert_eq!(q1.len(), 19);
    assert_eq!(q1[0].country_code, None);
    assert_eq!(q1[0].variant, PromptVariant::Unaware);
    assert!(q1.iter().all(|answer| answer.raw_reply.is_some() && answer.distribution.is_none()));
    let mut unparsed = 0;
    for question in &survey.questions {
        for answer in store.answers_to(run.run_id, WVS_SET, &question.question_id).await.unwrap() {
            match answer.parsed_code {
                Some(code) => assert!(question.options.iter().any(|option| option.code == code)),
                None => unparsed += 1,
            }
        }
    }
    assert!(unparsed > 0, "some released replies are not option codes");

    let filter = InstanceFilter { run_id: Some(run.run_id), ..Default::default() };
    let (total, instances) = store.instances(&filter, 5, 0).await.unwrap();
    assert_eq!(total, RELEASED_INSTANCES);
    assert!(instances.iter().all(|instance| instance.aware_code != instance.unaware_code));

    // Idempotent: the same source again creates nothing.
    let again = import_released(&store, &survey, &released, None).await.unwrap();
    assert!(!again.created);
    assert_eq!((again.run_id, again.answers, again.instances), (run.run_id, IMPORTED_ANSWERS, RELEASED_INSTANCES));
    assert_eq!(import_embedded_release(&store, &survey).await.unwrap().run_id, run.run_id);
    assert_eq!(store.runs(10, 0).await.unwrap().0, 1);
    assert_eq!(store.instances(&filter, 1, 0).await.unwrap().0, RELEASED_INSTANCES);
    assert_eq!(store.events(run.run_id, 0).await.unwrap().len(), events.len());
}

#[tokio::test]
async fn the_server_imports_the_release_on_first_start_only() {
    let dir = tempfile::tempdir().unwrap();
    let survey = SurveyData::embedded().unwrap();
    let started = Instant::now();
    let store = open_store(dir.path(), &survey).await.unwrap();
    println!("first start (migrations, questions, import) took {:?}", started.elapsed());
    let (total, runs) = store.runs(10, 0).await.unwrap();
    assert_eq!(total, 1);
    assert_eq!(runs[0].origin, origin());
    assert_eq!(runs[0].status, RunStatus::Completed);
    drop(store);

    let started = Instant::now();
    let store = open_store(dir.path(), &survey).await.unwrap();
    println!("second start took {:?}", started.elapsed());
    assert_eq!(store.runs(10, 0).await.unwrap().0, 1);
    let filter = InstanceFilter { run_id: Some(runs[0].run_id), ..Default::default() };
    assert_eq!(store.instances(&filter, 1, 0).await.unwrap().0, RELEASED_INSTANCES);
}

#[tokio::test]
async fn an_import_that_did_not_finish_is_replaced() {
    let survey = SurveyData::embedded().unwrap();
    let store = Store::in_memory().await.unwrap();
    let config = RunConfig {
        name: "interrupted".to_string(),
        model: None,
        question_set: None,
        cultures: Vec::new(),
        topics: Vec::new(),
        questions_per_topic: 0,
        variants: vec![PromptVariant::Unaware, PromptVariant::P1],
        answer_mode: AnswerMode::Sampling,
        persona: Default::default(),
        scoring: Default::default(),
        calibration: Default::default(),
        question_selection: Default::default(),
        collect_from: None,
        seed: 42,
        generation: Default::default(),
        training: Default::default(),
        adapter: None,
        device: None,
        engine: None,
        stages: vec![Stage::Answer],
    };
    let interrupted = store.create_run(&config, &origin()).await.unwrap();
    store.append_event(interrupted.run_id, &RunEvent::StageStarted { stage: Stage::Answer, total: 1 }).await.unwrap();

    let summary = import_embedded_release(&store, &survey).await.unwrap();
    assert!(summary.created);
    let (total, runs) = store.runs(10, 0).await.unwrap();
    assert_eq!(total, 1);
    // SQLite may reuse the deleted run's id: tell the runs apart by what they hold.
    assert_eq!(runs[0].status, RunStatus::Completed);
    assert_eq!(runs[0].config.name, "Meta-Llama-3-8B-Instruct (paper release)");
    let events = store.events(summary.run_id, 0).await.unwrap();
    assert_eq!(events[0].1, RunEvent::StageStarted { stage: Stage::Answer, total: IMPORTED_ANSWERS });
    assert_eq!(summary.instances, RELEASED_INSTANCES);
}

#[tokio::test]
async fn a_set_without_an_unaware_file_imports_nothing() {
    let survey = SurveyData::embedded().unwrap();
    let store = Store::in_memory().await.unwrap();
    let mut released = load_released(None, &survey).unwrap();
    released.files.retain(|file| file.kind.variant != PromptVariant::Unaware);
    let error = import_released(&store, &survey, &released, None).await.unwrap_err();
    assert!(matches!(error, AnalysisError::Import { .. }), "{error}");
    assert!(error.to_string().contains("culture_unaware"), "{error}");
    assert_eq!(store.runs(10, 0).await.unwrap().0, 0);
}
