//! A collaborator starts a small run in the browser and follows it to the end.

use std::time::{Duration, Instant};

use e2e::Session;
use fantoccini::Locator;

/// Debug builds answer a few prompts a second; the run below has 2 + 3 × 2 = 8.
const RUN_TIMEOUT: Duration = Duration::from_secs(300);

#[tokio::test]
async fn a_collaborator_starts_a_run_and_sees_its_progress_reach_the_end() {
    let session = Session::start().await;
    session.open("/runs").await;
    // The form's defaults: USA, CHN, NGA; topics 0 and 1; unaware + P1; answer + collect.
    session.texts("form.new-run input[name=topic]", 13).await;
    let client = &session.client;
    let name = client.find(Locator::Css("form.new-run input[name=name]")).await.unwrap();
    name.clear().await.unwrap();
    name.send_keys("browser run").await.unwrap();
    let per_topic = client.find(Locator::Css("form.new-run input[name=questions_per_topic]")).await.unwrap();
    per_topic.clear().await.unwrap();
    per_topic.send_keys("2").await.unwrap();
    // Only the first topic.
    let topics = client.find_all(Locator::Css("form.new-run input[name=topic]")).await.unwrap();
    topics[1].click().await.unwrap();
    client.find(Locator::Css("form.new-run button[type=submit]")).await.unwrap().click().await.unwrap();

    let started = Instant::now();
    loop {
        let status = session.texts("[data-testid=run-status]", 1).await;
        if status[0] == "completed" {
            break;
        }
        assert!(!matches!(status[0].as_str(), "failed" | "cancelled"), "the run ended {}", status[0]);
        assert!(started.elapsed() < RUN_TIMEOUT, "the run did not complete in time (status {})", status[0]);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let answer = client.find(Locator::Css(".stage[data-stage=answer]")).await.unwrap();
    assert_eq!(answer.attr("data-total").await.unwrap().as_deref(), Some("8"));
    assert_eq!(answer.attr("data-done").await.unwrap().as_deref(), Some("8"));
    let collect = client.find(Locator::Css(".stage[data-stage=collect]")).await.unwrap();
    assert_eq!(collect.attr("data-done").await.unwrap().as_deref(), Some("1"));
    let log = session.texts("[data-testid=log]", 1).await;
    assert!(log[0].contains("culture-related instances"), "{}", log[0]);
    // The run is listed, completed.
    session.open("/runs").await;
    let rows = session.texts("table.runs tr.run", 2).await;
    assert!(rows.iter().any(|row| row.contains("browser run") && row.contains("completed")), "{rows:?}");

    // Compared with the imported release: the configurations differ, both have P1 scores.
    session.open("/runs/compare?a=1&b=2").await;
    let diff = session.texts("table.config-diff tr.differs", 3).await;
    assert!(diff.iter().any(|row| row.starts_with("name")), "{diff:?}");
    let scores = session.texts("table.compare-scores tr.culture-score", 18).await;
    assert_eq!(scores.len(), 18);
    let usa = scores.iter().find(|row| row.starts_with("USA")).unwrap();
    assert!(usa.contains("71.12"), "run 1's USA P1 score is the paper's: {usa}");
    session.close().await;
}

#[tokio::test]
async fn a_finished_run_opened_by_its_url_shows_its_stages_and_log() {
    let session = Session::start().await;
    // Run 1 is the imported release: answer and collect stages, finished.
    session.open("/runs/1").await;
    let stages = session.texts(".stages .stage", 2).await;
    assert!(stages[0].starts_with("answer") && stages[0].contains("4921/4921"), "{stages:?}");
    let log = session.texts("[data-testid=log]", 1).await;
    assert!(log[0].contains("1373 culture-related instances"), "{}", log[0]);
    // Its raw reviews download from the page (open mode: anyone on this machine may).
    let link = session
        .client
        .wait()
        .at_most(Duration::from_secs(20))
        .for_element(Locator::Css("[data-testid=run-files] a[href$='format=csv']"))
        .await
        .unwrap();
    let href = link.attr("href").await.unwrap().unwrap();
    assert_eq!(href, "/api/runs/1/reviews/export?format=csv");
    let script = "return fetch(arguments[0]).then(response => response.text());";
    let csv = session.client.execute(script, vec![serde_json::Value::String(href)]).await.unwrap();
    assert!(csv.as_str().unwrap().starts_with("review_id,instance_id,question_id"), "{csv}");
    session.close().await;
}
