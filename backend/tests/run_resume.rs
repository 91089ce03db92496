//! A small real run on CPU with the default model: killed in the middle and resumed, it ends with
//! exactly the answers and instances of a run that was never interrupted. It runs on the release
//! path (the fused CPU kernels, `--cpu-kernels on`), which debug builds leave off by default.

mod common;

use common::{kill_at_commit, Db};
use culturespa::pipeline::runner::ANSWER_CHUNK;
use std::io::BufRead;
use std::process::Stdio;
use std::time::Duration;

const RUN_FILE: &str = r#"
name = "resume test"
cultures = ["USA", "CHN", "NGA"]
topics = [0, "Happiness and Well-being"]
questions_per_topic = 10
variants = ["unaware", "p1"]
answer_mode = "scoring"
stages = ["answer", "collect", "export"]
"#;
/// 20 questions × (unaware + 3 cultures × P1): 3 chunks of answers, so a kill can fall between.
const EXPECTED_ANSWERS: usize = 20 * (1 + 3);
/// The release is imported as run 1 on first start; the test's run is the next.
const RUN_ID: i64 = 2;
const RUN_TIMEOUT: Duration = Duration::from_secs(600);

const ANSWERS_SQL: &str = "SELECT question_set || '|' || question_id || '|' || IFNULL(country_code, '-') || '|' || \
     variant || '|' || IFNULL(raw_reply, '') || '|' || IFNULL(parsed_code, '') || '|' || IFNULL(distribution_json, '') \
     FROM answers WHERE run_id = 2 ORDER BY question_set, question_id, country_code, variant";
const INSTANCES_SQL: &str =
    "SELECT question_id || '|' || country_code || '|' || topic || '|' || unaware_code || '|' || \
     aware_code FROM instances WHERE run_id = 2 ORDER BY question_id, country_code";
const ANSWER_COUNT_SQL: &str = "SELECT CAST(COUNT(*) AS TEXT) FROM answers WHERE run_id = 2";
const RUN_STATUS_SQL: &str = "SELECT status FROM runs WHERE run_id = 2";

#[test]
fn a_killed_run_resumes_to_the_same_answers_as_an_uninterrupted_one() {
    // The release path: the fused CPU kernels, as release builds run them (the fast engine).
    killed_run_resumes(&[("CULTURESPA_CPU_KERNELS", "on")]);
}

#[test]
fn a_killed_run_of_a_slow_engine_resumes_alike() {
    // Every chunk waits 400 ms before it is stored: the kill still falls after the first one.
    killed_run_resumes(&[(culturespa::pipeline::runner::SLOW_COMMITS_MS, "400")]);
}

fn killed_run_resumes(environment: &'static [(&'static str, &'static str)]) {
    let culturespa_with = |data_dir: &std::path::Path| {
        let mut command = common::culturespa(data_dir);
        command.envs(environment.iter().copied());
        command
    };
    let work = tempfile::tempdir().unwrap();
    let run_file = work.path().join("run.toml");
    std::fs::write(&run_file, RUN_FILE).unwrap();

    let whole = work.path().join("whole");
    let status =
        culturespa_with(&whole).args(["run", "--config"]).arg(&run_file).stderr(Stdio::null()).status().unwrap();
    assert!(status.success());
    let whole_db = Db::of(&whole);
    assert_eq!(whole_db.count(ANSWER_COUNT_SQL), EXPECTED_ANSWERS);
    assert_eq!(whole_db.rows(RUN_STATUS_SQL), ["completed"]);

    let killed = work.path().join("killed");
    // Killed once its first chunk of answers is stored (the runner pauses there for the kill).
    let mut command = culturespa_with(&killed);
    command.args(["run", "--config"]).arg(&run_file);
    kill_at_commit(command, 1, work.path(), RUN_TIMEOUT);
    let killed_db = Db::of(&killed);
    assert_eq!(killed_db.count(ANSWER_COUNT_SQL), ANSWER_CHUNK, "one chunk of answers after the kill");
    assert_ne!(killed_db.rows(RUN_STATUS_SQL), ["completed"]);

    let status =
        culturespa_with(&killed).args(["run", "--resume", &RUN_ID.to_string()]).stderr(Stdio::null()).status().unwrap();
    assert!(status.success());
    assert_eq!(killed_db.rows(RUN_STATUS_SQL), ["completed"]);
    assert_eq!(killed_db.rows(ANSWERS_SQL), whole_db.rows(ANSWERS_SQL));
    assert_eq!(killed_db.rows(INSTANCES_SQL), whole_db.rows(INSTANCES_SQL));
    // Every answer is there once: the resume redid nothing that was stored.
    assert_eq!(killed_db.count(ANSWER_COUNT_SQL), EXPECTED_ANSWERS);

    // Both SFT formats, joint and per culture, with the same bytes.
    for file in
        ["alpaca/joint/culturespa_run2_alpaca_joint.jsonl", "messages/joint/culturespa_run2_messages_joint.jsonl"]
    {
        let whole_file = whole.join("runs/2/sft").join(file);
        let killed_file = killed.join("runs/2/sft").join(file);
        assert!(whole_file.is_file(), "{} is missing", whole_file.display());
        assert_eq!(std::fs::read(&killed_file).unwrap(), std::fs::read(&whole_file).unwrap(), "{file}");
    }
    for format in ["alpaca", "messages"] {
        let info = whole.join("runs/2/sft").join(format).join("specific/dataset_info.json");
        assert!(info.is_file(), "{} is missing", info.display());
    }
}

/// Ctrl-C at a stored-progress point: the run stops after that chunk, is stored as cancelled, the
/// command exits non-zero (so a script running runs in turn stops too), and `--resume` finishes it.
#[test]
fn an_interrupted_run_exits_non_zero_and_resumes() {
    let work = tempfile::tempdir().unwrap();
    let run_file = work.path().join("run.toml");
    std::fs::write(&run_file, RUN_FILE).unwrap();
    let data = work.path().join("data");
    let mut command = common::culturespa(&data);
    command.args(["run", "--config"]).arg(&run_file).stderr(Stdio::piped());
    let (mut child, pause_file) = common::spawn_paused_at_commit(command, 1, work.path(), RUN_TIMEOUT);
    let interrupt = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(interrupt.success());
    // The handler cancels the run before it prints this line; only then may the runner go on.
    let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut said = String::new();
    let mut line = String::new();
    while !line.contains("stopping after the current chunk") {
        line.clear();
        assert_ne!(stderr.read_line(&mut line).unwrap(), 0, "stderr closed before the interrupt was seen: {said}");
        said.push_str(&line);
    }
    std::fs::remove_file(&pause_file).unwrap();
    std::io::copy(&mut stderr, &mut std::io::sink()).unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "an interrupted run must not exit as a success");

    let db = Db::of(&data);
    assert_eq!(db.rows(RUN_STATUS_SQL), ["cancelled"]);
    assert_eq!(db.count(ANSWER_COUNT_SQL), ANSWER_CHUNK, "the run stopped after the chunk it had stored");
    let status = common::culturespa(&data)
        .args(["run", "--resume", &RUN_ID.to_string()])
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(db.rows(RUN_STATUS_SQL), ["completed"]);
    assert_eq!(db.count(ANSWER_COUNT_SQL), EXPECTED_ANSWERS);
    // Each sitting says what computed it (the model's file name, not the server's folders).
    let engine_logs = "SELECT json_extract(event_json, '$.message') FROM run_events WHERE run_id = 2 \
                       AND json_extract(event_json, '$.message') LIKE 'engine:%' ORDER BY event_id";
    let sitting = "engine: SmolLM2-135M-Instruct.Q4_1.gguf on cpu, projections f32";
    assert_eq!(db.rows(engine_logs), [sitting, sitting]);
}
