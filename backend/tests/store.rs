//! The store: migrations on an empty database and round trips of what the pipeline writes. The
//! tests that do not open a SQLite file run on PostgreSQL too when `CULTURESPA_TEST_POSTGRES_URL`
//! names a server (`scripts/test-postgres.sh`, part of `make test`): each in a database of its own.

use std::sync::atomic::{AtomicUsize, Ordering};

use culturespa::store::{InstanceFilter, NewAnswer, ReviewFilter, Store, StoreError, WVS_SET};
use culturespa::survey::SurveyData;
use shared::review::NewReview;
use shared::{
    AnswerMode, PromptVariant, ReviewDecision, ReviewStatus, RunConfig, RunEvent, RunOrigin, RunStatus, Stage,
};

/// A fresh store: in memory, or a new database on the PostgreSQL server of the environment.
async fn store() -> Store {
    let Ok(server) = std::env::var("CULTURESPA_TEST_POSTGRES_URL") else {
        return Store::in_memory().await.unwrap();
    };
    static DATABASES: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let name = format!("store_test_{}_{}_{nanos}", std::process::id(), DATABASES.fetch_add(1, Ordering::SeqCst));
    sqlx::any::install_default_drivers();
    let admin = sqlx::AnyPool::connect(&format!("{server}/postgres")).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).execute(&admin).await.unwrap();
    admin.close().await;
    let store = Store::connect(&format!("{server}/{name}"), None).await.unwrap();
    assert_eq!(store.backend(), culturespa::store::Backend::Postgres);
    store
}

fn config() -> RunConfig {
    RunConfig {
        name: "small".to_string(),
        model: None,
        question_set: None,
        cultures: vec!["USA".to_string(), "CHN".to_string()],
        topics: vec![0],
        questions_per_topic: 10,
        variants: vec![PromptVariant::Unaware, PromptVariant::P1],
        answer_mode: AnswerMode::Scoring,
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
        stages: vec![Stage::Answer, Stage::Collect],
    }
}

fn review(decision: ReviewDecision, note: Option<&str>) -> NewReview {
    NewReview { decision, note: note.map(str::to_string), edited_output: None, reviewer: None }
}

fn answer(question_id: &str, country_code: Option<&str>, variant: PromptVariant, code: Option<u32>) -> NewAnswer {
    NewAnswer {
        question_set: WVS_SET.to_string(),
        question_id: question_id.to_string(),
        country_code: country_code.map(str::to_string),
        variant,
        raw_reply: code.map(|c| c.to_string()),
        parsed_code: code,
        distribution: Some(vec![0.5, 0.25, 0.25]),
        raw_distribution: None,
    }
}

#[tokio::test]
async fn migrations_apply_to_an_empty_database_on_disk_and_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).await.unwrap();
    let (total, runs) = store.runs(10, 0).await.unwrap();
    assert_eq!((total, runs.len()), (0, 0));
    let created = store.create_run(&config(), &RunOrigin::Local).await.unwrap();
    drop(store);
    // Reopening applies no migration twice and keeps the data.
    let store = Store::open(dir.path()).await.unwrap();
    assert_eq!(store.run(created.run_id).await.unwrap(), created);
    let journal: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(store.pool()).await.unwrap();
    assert_eq!(journal, "wal");
}

#[tokio::test]
async fn questions_round_trip_and_seeding_is_idempotent() {
    let survey = SurveyData::embedded().unwrap();
    let store = store().await;
    assert_eq!(store.insert_questions(&survey.questions, "test").await.unwrap(), 259);
    assert_eq!(store.insert_questions(&survey.questions, "test").await.unwrap(), 0);
    let (total, page) = store.questions(WVS_SET, Some(1), 5, 0).await.unwrap();
    assert_eq!(total, 11);
    assert_eq!(page.len(), 5);
    assert_eq!(page[0], *survey.question("Q46").unwrap());
    let (_, rest) = store.questions(WVS_SET, Some(1), 50, 10).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(store.question(WVS_SET, "Q94").await.unwrap(), *survey.question("Q94").unwrap());
    assert!(matches!(store.question(WVS_SET, "Q999").await, Err(StoreError::NotFound(_))));
}

#[tokio::test]
async fn runs_and_events_round_trip_and_finish_sets_the_status() {
    let store = store().await;
    let run = store.create_run(&config(), &RunOrigin::Imported { source: "x".into() }).await.unwrap();
    assert_eq!(run.status, RunStatus::Pending);
    assert_eq!(run.config, config());
    let events = [
        RunEvent::StageStarted { stage: Stage::Answer, total: 3 },
        RunEvent::Progress { stage: Stage::Answer, done: 3, total: 3 },
        RunEvent::Finished { status: RunStatus::Completed },
    ];
    let mut ids = Vec::new();
    for event in &events {
        ids.push(store.append_event(run.run_id, event).await.unwrap());
    }
    let stored = store.events(run.run_id, 0).await.unwrap();
    assert_eq!(stored.iter().map(|(_, e)| e.clone()).collect::<Vec<_>>(), events);
    assert_eq!(store.events(run.run_id, ids[1]).await.unwrap().len(), 1);
    assert_eq!(store.run(run.run_id).await.unwrap().status, RunStatus::Completed);
}

#[tokio::test]
async fn instances_are_collected_once_and_reviews_set_their_status() {
    let survey = SurveyData::embedded().unwrap();
    let store = store().await;
    store.insert_questions(&survey.questions, "test").await.unwrap();
    let run = store.create_run(&config(), &RunOrigin::Local).await.unwrap();
    let answers = [
        answer("Q1", None, PromptVariant::Unaware, Some(1)),
        answer("Q1", Some("USA"), PromptVariant::P1, Some(1)), // same: no instance
        answer("Q1", Some("CHN"), PromptVariant::P1, Some(2)), // differs: instance
        answer("Q2", None, PromptVariant::Unaware, None),
        answer("Q2", Some("CHN"), PromptVariant::P1, Some(3)), // unaware did not parse: none
        answer("Q46", None, PromptVariant::Unaware, Some(4)),
        answer("Q46", Some("USA"), PromptVariant::P1, Some(2)), // differs: instance
    ];
    assert_eq!(store.insert_answers(run.run_id, &answers).await.unwrap(), 7);
    // A resumed stage writing the same answers again adds nothing.
    assert_eq!(store.insert_answers(run.run_id, &answers[..3]).await.unwrap(), 0);
    let stored = store.answers_to(run.run_id, WVS_SET, "Q1").await.unwrap();
    assert_eq!(stored.len(), 3);
    assert_eq!(stored[0].country_code, None);
    assert_eq!(stored[1].distribution.as_deref(), Some(&[0.5, 0.25, 0.25][..]));

    assert_eq!(store.collect_instances(run.run_id, PromptVariant::P1).await.unwrap(), 2);
    assert_eq!(store.collect_instances(run.run_id, PromptVariant::P1).await.unwrap(), 0);
    let all = InstanceFilter { run_id: Some(run.run_id), ..Default::default() };
    let (total, instances) = store.instances(&all, 10, 0).await.unwrap();
    assert_eq!(total, 2);
    assert_eq!((instances[0].question_id.as_str(), instances[0].country_code.as_str()), ("Q1", "CHN"));
    assert_eq!((instances[0].unaware_code, instances[0].aware_code, instances[0].topic), (1, 2, 0));
    assert_eq!((instances[1].question_id.as_str(), instances[1].topic), ("Q46", 1));

    let usa = InstanceFilter { country_code: Some("USA".into()), ..all.clone() };
    assert_eq!(store.instances(&usa, 10, 0).await.unwrap().0, 1);
    // Searched in ids, question texts and option texts, whatever the case.
    let search = |words: &str| InstanceFilter { search: Some(words.into()), ..all.clone() };
    let (found, items) = store.instance_items(&search("q46"), 10, 0).await.unwrap();
    assert_eq!((found, items[0].instance.question_id.as_str()), (1, "Q46"));
    // "How important is family in your life?" — its text; "Rather important" — one of its options only.
    for words in ["FAMILY", "Rather IMPORTANT"] {
        let (found, items) = store.instance_items(&search(words), 10, 0).await.unwrap();
        assert_eq!((found, items[0].instance.question_id.as_str()), (1, "Q1"), "{words}");
    }
    assert_eq!(store.instance_items(&search("no such words"), 10, 0).await.unwrap().0, 0);

    store.add_review(instances[0].instance_id, "ann", &review(ReviewDecision::Reject, None)).await.unwrap();
    let changed = store
        .add_review(instances[1].instance_id, "ann", &review(ReviewDecision::ChangeAnswer { code: 3 }, Some("closer")))
        .await
        .unwrap();
    assert_eq!((changed.reviewer.as_str(), changed.note.as_deref()), ("ann", Some("closer")));
    let rejected = InstanceFilter { review_status: Some(ReviewStatus::Rejected), ..all.clone() };
    let (_, rejected) = store.instances(&rejected, 10, 0).await.unwrap();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].instance_id, instances[0].instance_id);
    // A review of an unknown instance writes nothing.
    assert!(matches!(
        store.add_review(999, "ann", &review(ReviewDecision::Accept, None)).await,
        Err(StoreError::NotFound(_))
    ));
    let reviews: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM reviews").fetch_one(store.pool()).await.unwrap();
    assert_eq!(reviews, 2);
    let by_ann = ReviewFilter { run_id: Some(run.run_id), reviewer: Some("ann".into()), ..Default::default() };
    let (total, listed) = store.reviews(&by_ann, 10, 0).await.unwrap();
    assert_eq!(
        (total, listed[0].instance_id, listed[1].instance_id),
        (2, instances[0].instance_id, instances[1].instance_id)
    );
    let nobody = ReviewFilter { reviewer: Some("bob".into()), ..Default::default() };
    assert_eq!(store.reviews(&nobody, 10, 0).await.unwrap().0, 0);
}

#[tokio::test]
async fn a_transaction_that_is_not_committed_leaves_nothing() {
    let store = store().await;
    let mut transaction = store.begin().await.unwrap();
    let run_id = transaction.create_run(&config(), &RunOrigin::Local).await.unwrap();
    transaction.append_event(run_id, &RunEvent::StageStarted { stage: Stage::Answer, total: 1 }).await.unwrap();
    drop(transaction);
    assert_eq!(store.runs(10, 0).await.unwrap().0, 0);
    let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM run_events").fetch_one(store.pool()).await.unwrap();
    assert_eq!(events, 0);
}

#[tokio::test]
async fn the_review_workflow_migration_keeps_older_reviews_as_history() {
    use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};
    let dir = tempfile::tempdir().unwrap();
    // A database as the first release left it: only the initial migration, reviewed twice by ann.
    let first_migration = dir.path().join("first_migration");
    std::fs::create_dir(&first_migration).unwrap();
    let migrations = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
    std::fs::copy(migrations.join("0001_initial.sql"), first_migration.join("0001_initial.sql")).unwrap();
    let options = SqliteConnectOptions::new().filename(dir.path().join("culturespa.db")).create_if_missing(true);
    let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await.unwrap();
    sqlx::migrate::Migrator::new(first_migration.as_path()).await.unwrap().run(&pool).await.unwrap();
    for statement in [
        "INSERT INTO runs VALUES (1, 'old', '{}', '{}', 'completed', '', '')",
        "INSERT INTO instances (instance_id, run_id, question_set, question_id, country_code, topic, unaware_code, aware_code, review_status)
         VALUES (1, 1, 'wvs', 'Q1', 'USA', 0, 1, 2, 'rejected'), (2, 1, 'wvs', 'Q2', 'USA', 0, 1, 2, 'accepted')",
        "INSERT INTO reviews (review_id, instance_id, reviewer, decision, corrected_code, note, created_at)
         VALUES (1, 1, 'ann', 'accept', NULL, NULL, 'a'), (2, 1, 'ann', 'reject', NULL, NULL, 'b'),
                (3, 2, 'bob', 'change_answer', 3, NULL, 'c')",
    ] {
        sqlx::query(statement).execute(&pool).await.unwrap();
    }
    pool.close().await;

    let store = Store::open(dir.path()).await.unwrap();
    let rows: Vec<(i64, String, i64, Option<i64>)> =
        sqlx::query_as("SELECT review_id, label, is_current, supersedes FROM reviews ORDER BY review_id")
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(
        rows,
        [
            (1, "answer:2".to_string(), 0, None),
            (2, "reject".to_string(), 1, Some(1)),
            (3, "answer:3".to_string(), 1, None)
        ]
    );
    let statuses: Vec<String> = sqlx::query_scalar("SELECT review_status FROM instances ORDER BY instance_id")
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert_eq!(statuses, ["rejected", "accepted"]);
    // Undoing ann's latest review brings her first one back.
    store.undo_review(2, "ann").await.unwrap();
    let statuses: Vec<String> = sqlx::query_scalar("SELECT review_status FROM instances ORDER BY instance_id")
        .fetch_all(store.pool())
        .await
        .unwrap();
    assert_eq!(statuses, ["accepted", "accepted"]);
}

#[tokio::test]
async fn accounts_sessions_and_tokens_round_trip_and_the_last_admin_stays() {
    use shared::auth::Role;
    let store = store().await;
    store.add_user("ada", "hash-a", Role::Admin).await.unwrap();
    store.add_user("cy", "hash-c", Role::Collaborator).await.unwrap();
    assert!(matches!(store.add_user("cy", "other", Role::Annotator).await, Err(StoreError::Conflict(_))));
    let cy = store.credentials("cy").await.unwrap().unwrap();
    store.create_session(cy.user_id, "session-digest", 7).await.unwrap();
    assert_eq!(store.session_user("session-digest").await.unwrap().unwrap().username, "cy");
    assert!(store.session_user("unknown").await.unwrap().is_none());

    let token = store.create_api_token("cy", "laptop", "token-digest").await.unwrap();
    assert!(token.created_at.ends_with('Z') && token.created_at.len() == "2026-12-07T06:05:16.123Z".len());
    assert!(matches!(store.create_api_token("cy", "laptop", "other").await, Err(StoreError::Conflict(_))));
    assert_eq!(store.api_token_user("token-digest").await.unwrap().unwrap().username, "cy");
    let listed = store.api_tokens("cy").await.unwrap();
    assert_eq!(listed[0].last_used_at.as_deref().map(str::len), Some("2026-12-07T06:05Z".len()));

    let accounts = store.accounts().await.unwrap();
    assert_eq!(
        accounts.iter().map(|a| (a.username.as_str(), a.sessions, a.api_tokens)).collect::<Vec<_>>(),
        [("ada", 0, 0), ("cy", 1, 1)]
    );
    assert!(matches!(store.set_role("ada", Role::Annotator).await, Err(StoreError::Conflict(_))));
    assert!(matches!(store.remove_user("ada").await, Err(StoreError::Conflict(_))));
    let revoked = store.revoke_credentials("cy").await.unwrap();
    assert_eq!((revoked.sessions, revoked.api_tokens), (1, 1));
    assert!(store.session_user("session-digest").await.unwrap().is_none());
    store.remove_user("cy").await.unwrap();
    store.remove_user("ada").await.unwrap();
}
