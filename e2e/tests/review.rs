//! The annotator's pages in headless Chromium: reviewing with the keyboard (accept, reject, undo)
//! and the instances page filtered from its URL.

use std::time::{Duration, Instant};

use e2e::Session;
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::Locator;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(20);
const REVIEWER: &str = "e2e-ann";
/// China's instances in the imported release.
const CHINA_INSTANCES: u64 = 89;

async fn press(session: &Session, key: char) {
    let keys =
        KeyActions::new("keyboard".to_string()).then(KeyAction::Down { value: key }).then(KeyAction::Up { value: key });
    session.client.perform_actions(keys).await.unwrap();
}

/// The id of the instance the review page shows, once it is not `previous`.
async fn shown_instance(session: &Session, previous: Option<i64>) -> i64 {
    let started = Instant::now();
    loop {
        if let Ok(article) = session.client.find(Locator::Css("article.review-instance")).await {
            let id = article.attr("data-instance-id").await.ok().flatten().and_then(|id| id.parse::<i64>().ok());
            if let Some(id) = id.filter(|id| Some(*id) != previous) {
                return id;
            }
        }
        assert!(started.elapsed() < WAIT, "the review page still shows instance {previous:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// GETs an API path from the page (same origin) and returns its JSON.
async fn api(session: &Session, path: &str) -> Value {
    let script = "return fetch(arguments[0]).then(response => response.json());";
    session.client.execute(script, vec![Value::String(path.to_string())]).await.unwrap()
}

#[tokio::test]
async fn a_reviewer_accepts_rejects_and_undoes_with_the_keyboard() {
    let session = Session::start().await;
    session.open("/review").await;
    // Open local mode: the name is asked once.
    let name = session.client.wait().at_most(WAIT).for_element(Locator::Css("input[name=reviewer]")).await.unwrap();
    name.send_keys(REVIEWER).await.unwrap();
    session.client.find(Locator::Css("form.name-form button[type=submit]")).await.unwrap().click().await.unwrap();
    let hints = session.texts("[data-testid=key-hints]", 1).await;
    assert!(hints[0].contains("a accept") && hints[0].contains("x reject"), "{}", hints[0]);

    let first = shown_instance(&session, None).await;
    press(&session, 'a').await;
    let second = shown_instance(&session, Some(first)).await;
    press(&session, 'x').await;
    let third = shown_instance(&session, Some(second)).await;
    assert!(first < second && second < third, "{first} {second} {third}");
    press(&session, Key::Backspace.into()).await;
    // Undoing the rejection brings its instance back.
    assert_eq!(shown_instance(&session, Some(third)).await, second);

    let reviews = api(&session, "/api/reviews?run=1").await;
    assert_eq!(reviews["total"], 1, "{reviews}");
    let review = &reviews["items"][0];
    assert_eq!(review["instance_id"], first);
    assert_eq!(review["decision"], "accept");
    assert_eq!(review["reviewer"], REVIEWER);
    assert_eq!(api(&session, "/api/instances?run=1&status=accepted").await["total"], 1);
    assert_eq!(api(&session, "/api/instances?run=1&status=rejected").await["total"], 0);
    let pending = api(&session, &format!("/api/instances?run=1&status=pending&reviewer={REVIEWER}&limit=1")).await;
    assert_eq!(pending["total"], 1373 - 1);
    session.close().await;
}

#[tokio::test]
async fn the_instances_page_filters_by_culture_from_the_url() {
    let session = Session::start().await;
    session.open("/instances?culture=CHN").await;
    let cultures = session.texts("table.instances tr.instance td:nth-child(2)", 50).await;
    assert_eq!(cultures.len(), 50);
    assert!(cultures.iter().all(|culture| culture == "CHN"), "{cultures:?}");
    let count = session.texts("[data-testid=instance-count]", 1).await;
    assert_eq!(count[0], format!("1–50 of {CHINA_INSTANCES}"));
    let select = session.client.find(Locator::Css("select[name=culture]")).await.unwrap();
    assert_eq!(select.prop("value").await.unwrap().as_deref(), Some("CHN"));
    let csv = session.client.find(Locator::LinkText("CSV")).await.unwrap();
    let href = csv.attr("href").await.unwrap().unwrap_or_default();
    assert!(href.contains("format=csv") && href.contains("culture=CHN"), "{href}");
    session.close().await;
}
