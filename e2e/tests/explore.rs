//! The explorer in headless Chromium: alignment scores on the cultures page, the relations
//! heatmap and the culture map, on the paper's released Llama-3-8B answers (run 1).

use std::time::{Duration, Instant};

use e2e::Session;
use fantoccini::Locator;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(20);
const CULTURES: usize = 18;
/// A phone's viewport, in CSS pixels.
const PHONE: (u32, u32) = (390, 844);

/// Waits until exactly `expected` elements match `css` (fewer: still loading).
async fn wait_for_count(session: &Session, css: &str, expected: usize) {
    let started = Instant::now();
    loop {
        let found = session.client.find_all(Locator::Css(css)).await.unwrap().len();
        if found == expected {
            return;
        }
        assert!(found < expected, "expected {expected} elements matching `{css}`, found {found}");
        assert!(started.elapsed() < WAIT, "expected {expected} elements matching `{css}`, found {found}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn script(session: &Session, source: &str) -> Value {
    session.client.execute(source, Vec::new()).await.unwrap()
}

/// Waits until the page's URL contains `part` (client-side navigation).
async fn wait_for_url(session: &Session, part: &str) -> String {
    let started = Instant::now();
    loop {
        let url = session.client.current_url().await.unwrap().to_string();
        if url.contains(part) {
            return url;
        }
        assert!(started.elapsed() < WAIT, "the URL {url} never contained {part}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Whether the page is wider than the window (a phone would have to scroll sideways).
async fn overflows_horizontally(session: &Session) -> bool {
    script(session, "return document.documentElement.scrollWidth > window.innerWidth + 1;").await == Value::Bool(true)
}

#[tokio::test]
async fn the_cultures_page_scores_each_culture_in_a_sortable_table_and_a_bar_chart() {
    let session = Session::start().await;
    session.open("/").await;
    // The cultures table is still there.
    assert_eq!(session.texts("table.cultures tr.culture", CULTURES).await.len(), CULTURES);
    let rows = session.texts("table.scores tr.score-row", CULTURES).await;
    assert_eq!(rows.len(), CULTURES);
    assert!(rows[0].starts_with("USA") && rows[0].contains("71.12"), "{}", rows[0]);
    wait_for_count(&session, "svg.bars rect.bar", CULTURES).await;
    let summary = session.texts("p.summary", 1).await;
    assert!(summary[0].contains("P1") && summary[0].contains("66.61"), "{summary:?}");
    wait_for_count(&session, "table.topic-scores tr.topic-row", CULTURES).await;
    assert!(session.texts("table.released tr.released-row", 6).await[1].contains("66.61"));

    // A header click sorts (highest score first) and puts the order in the URL.
    session.client.find(Locator::Css("a.sort[data-sort='score']")).await.unwrap().click().await.unwrap();
    let url = wait_for_url(&session, "sort=score").await;
    assert!(url.contains("order=desc"), "{url}");
    let started = Instant::now();
    loop {
        let first = session.texts("table.scores tr.score-row", CULTURES).await.remove(0);
        if first.starts_with("NZL") {
            assert!(first.contains("71.81"), "{first}");
            break;
        }
        assert!(started.elapsed() < WAIT, "the highest score did not come first: {first}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // The URL alone restores a view: the unaware answers against every culture.
    session.open("/?run=1&variant=unaware").await;
    let summary = session.texts("p.summary", 1).await;
    assert!(summary[0].contains("unaware") && summary[0].contains("62.36"), "{summary:?}");

    // Each table downloads as CSV and JSON.
    let href = session.client.find(Locator::Css("span.download a.csv")).await.unwrap().attr("href").await.unwrap();
    assert!(href.unwrap_or_default().starts_with("data:text/csv"));
    let json = session.client.find(Locator::Css("span.download a.json")).await.unwrap().attr("download").await.unwrap();
    assert!(json.unwrap_or_default().ends_with(".json"));
    session.close().await;
}

#[tokio::test]
async fn the_relations_page_draws_an_18_by_18_heatmap_for_each_source() {
    let session = Session::start().await;
    session.open("/relations").await;
    wait_for_count(&session, "svg.heatmap rect.cell", CULTURES * CULTURES).await;
    let tooltip = script(&session, "return document.querySelector('svg.heatmap rect.cell title').textContent;").await;
    assert!(tooltip.as_str().is_some_and(|text| text.contains(" – ") && text.contains(": 100.0")), "{tooltip}");
    // Selecting a culture lists its nearest and farthest cultures (the P2 prompt's for humans).
    session.open("/relations?source=human&culture=USA").await;
    let similar = session.texts("ol.most-similar li", 3).await;
    assert_eq!(similar.len(), 3);
    assert!(similar[0].starts_with("CAN"), "{similar:?}");
    assert_eq!(session.texts("ol.most-different li", 3).await.len(), 3);

    session.client.find(Locator::Css("a.source:nth-of-type(3)")).await.unwrap().click().await.unwrap();
    wait_for_url(&session, "source=difference%3A1").await;
    let pearson = session.texts("p[data-testid='pearson']", 1).await;
    assert!(pearson[0].contains("0.634"), "{pearson:?}");
    wait_for_count(&session, "svg.heatmap rect.cell", CULTURES * CULTURES).await;
    session.close().await;
}

#[tokio::test]
async fn the_culture_map_shows_18_cultures_the_personas_and_arrows() {
    let session = Session::start().await;
    session.open("/map").await;
    wait_for_count(&session, "svg.culture-map circle.culture-point", CULTURES).await;
    wait_for_count(&session, "svg.culture-map rect.persona-point", CULTURES).await;
    wait_for_count(&session, "svg.culture-map path.unaware-point", 1).await;
    let labels = session.texts("svg.culture-map text.culture-label", CULTURES).await;
    assert!(labels.iter().any(|label| label == "NLD"), "{labels:?}");

    session.open("/map?run=none").await;
    wait_for_count(&session, "svg.culture-map circle.culture-point", CULTURES).await;
    wait_for_count(&session, "svg.culture-map rect.persona-point", 0).await;

    session.open("/map?run=1&compare=1").await;
    wait_for_count(&session, "svg.culture-map line.arrow", CULTURES).await;

    session.open("/map?run=99").await;
    let errors = session.texts("p.error", 1).await;
    assert!(errors[0].contains("run 99 not found"), "{errors:?}");
    session.close().await;
}

#[tokio::test]
async fn every_explorer_page_fits_a_phone_screen() {
    let session = Session::start().await;
    session.client.set_window_size(PHONE.0, PHONE.1).await.unwrap();
    for (path, ready) in [
        ("/", "svg.bars rect.bar"),
        ("/relations", "svg.heatmap rect.cell"),
        ("/map", "svg.culture-map circle.culture-point"),
    ] {
        session.open(path).await;
        session.texts(ready, 1).await;
        let width = script(&session, "return window.innerWidth;").await;
        assert!(width.as_u64().is_some_and(|width| width <= u64::from(PHONE.0)), "{path}: window {width}");
        assert!(!overflows_horizontally(&session).await, "{path} is wider than a phone screen");
    }
    session.close().await;
}
