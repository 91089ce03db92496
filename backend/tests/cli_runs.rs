//! `culturespa runs list` and `culturespa runs scores`: the imported release (run 1) scores as the
//! paper reports, in text and JSON; an unknown run or variant is named.

mod common;

use std::sync::Arc;

use culturespa::server::open_store;
use culturespa::survey::SurveyData;
use serde_json::Value;
use shared::review::{NewReview, ReviewRecord};
use shared::ReviewDecision;

fn runs(data_dir: &std::path::Path, args: &[&str]) -> (bool, String, String) {
    let output = common::culturespa(data_dir).arg("runs").args(args).output().unwrap();
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).to_string();
    (output.status.success(), text(&output.stdout), text(&output.stderr))
}

#[tokio::test]
async fn the_command_line_lists_runs_and_prints_the_papers_scores() {
    let dir = tempfile::tempdir().unwrap();
    let survey = Arc::new(SurveyData::embedded().unwrap());
    // A fresh store imports the paper's release as run 1; two reviews of one instance by ann, the
    // second superseding the first.
    let store = open_store(dir.path(), &survey).await.unwrap();
    let (_, instances) = store
        .instances(&culturespa::store::InstanceFilter { run_id: Some(1), ..Default::default() }, 1, 0)
        .await
        .unwrap();
    let instance_id = instances[0].instance_id;
    let review = |decision, note: Option<&str>| NewReview {
        decision,
        note: note.map(str::to_string),
        edited_output: None,
        reviewer: None,
    };
    store.add_review(instance_id, "ann", &review(ReviewDecision::Accept, None)).await.unwrap();
    let second = review(ReviewDecision::ChangeAnswer { code: 2 }, Some("closer to \"2\", see Q5"));
    store.add_review(instance_id, "ann", &second).await.unwrap();
    drop(store);

    let (ok, list, _) = runs(dir.path(), &["list"]);
    assert!(ok && list.lines().nth(1).is_some_and(|line| line.starts_with("1\tcompleted\t")), "{list}");
    let (ok, json, _) = runs(dir.path(), &["list", "--json"]);
    assert!(ok);
    assert_eq!(serde_json::from_str::<Value>(&json).unwrap()["total"], 1);

    let (ok, table, _) = runs(dir.path(), &["scores", "1"]);
    assert!(ok && table.contains("P1") && table.lines().count() == 20, "{table}");
    let average_line = table.lines().find(|line| line.starts_with("average\t")).unwrap();
    let average: f64 = average_line.split('\t').nth(1).unwrap().parse().unwrap();
    common::assert_reference("paper_metric_p1_llama3_8b", average);
    let (ok, json, _) = runs(dir.path(), &["scores", "1", "--variant", "unaware", "--json"]);
    assert!(ok);
    let scores: Value = serde_json::from_str(&json).unwrap();
    common::assert_reference("paper_metric_unaware_llama3_8b", scores["average"].as_f64().unwrap());
    assert_eq!(scores["scores"].as_array().unwrap().len(), 18);

    // 95 % bootstrap intervals: each holds its culture's score; the same seed gives the same ones.
    let (ok, json, _) = runs(dir.path(), &["scores", "1", "--intervals", "200", "--json"]);
    assert!(ok);
    let with_intervals: Value = serde_json::from_str(&json).unwrap();
    let intervals = with_intervals["intervals"].as_array().unwrap();
    assert_eq!(intervals.len(), 18);
    for (culture, interval) in with_intervals["scores"]["scores"].as_array().unwrap().iter().zip(intervals) {
        assert_eq!(culture["country_code"], interval["country_code"]);
        let (score, low, high) = (
            culture["score"].as_f64().unwrap(),
            interval["score"]["low"].as_f64().unwrap(),
            interval["score"]["high"].as_f64().unwrap(),
        );
        assert!(low < high && low <= score && score <= high, "{culture} {interval}");
    }
    let (_, again, _) = runs(dir.path(), &["scores", "1", "--intervals", "200", "--json"]);
    assert_eq!(again, json);
    let (ok, table, _) = runs(dir.path(), &["scores", "1", "--intervals", "100"]);
    assert!(ok && table.lines().nth(1).is_some_and(|line| line.contains(" [") && line.contains(", ")), "{table}");

    // The raw review export: both reviews, the superseded one marked so.
    let (ok, csv, _) = runs(dir.path(), &["reviews", "1"]);
    assert!(ok, "{csv}");
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 3, "{csv}");
    assert!(rows[0].starts_with("review_id,instance_id,question_id,country_code,reviewer,decision"), "{csv}");
    assert!(rows[1].contains(",ann,accept,") && rows[1].ends_with(",false,"), "{csv}");
    assert!(
        rows[2].contains(",ann,change_answer,2,,\"closer to \"\"2\"\", see Q5\",") && rows[2].ends_with(",true,1"),
        "{csv}"
    );
    let (ok, json, _) = runs(dir.path(), &["reviews", "1", "--format", "json"]);
    assert!(ok);
    let records: Vec<ReviewRecord> = serde_json::from_str(&json).unwrap();
    assert_eq!(records.len(), 2);
    assert_eq!((records[1].supersedes, records[1].corrected_code), (Some(records[0].review_id), Some(2)));

    let (ok, _, error) = runs(dir.path(), &["scores", "9"]);
    assert!(!ok && error.contains("run 9 not found"), "{error}");
    let (ok, _, error) = runs(dir.path(), &["scores", "1", "--variant", "P7"]);
    assert!(!ok && error.contains("variant 'P7' not found"), "{error}");
}
