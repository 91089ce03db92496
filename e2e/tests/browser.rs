//! The app as a person sees it, in headless Chromium.

use e2e::Session;

#[tokio::test]
async fn the_cultures_page_shows_18_cultures_and_13_topics() {
    let session = Session::start().await;
    session.open("/").await;
    let cultures = session.texts("table.cultures tr.culture", 18).await;
    assert_eq!(cultures.len(), 18);
    assert!(cultures[0].starts_with("USA") && cultures[0].contains("North America"), "{}", cultures[0]);
    assert!(cultures.iter().any(|row| row.starts_with("CHN") && row.ends_with("222")), "{cultures:?}");
    let topics = session.texts("table.topics tr.topic", 13).await;
    assert_eq!(topics.len(), 13);
    assert!(topics[7].contains("Postmaterialist Index") && topics[7].ends_with('6'), "{}", topics[7]);
    session.close().await;
}

#[tokio::test]
async fn the_questions_page_filters_by_topic_from_the_url() {
    let session = Session::start().await;
    session.open("/questions?topic=7").await;
    let questions = session.texts("ol.questions li", 6).await;
    assert_eq!(questions.len(), 6);
    assert!(questions[0].starts_with("Q152"), "{}", questions[0]);
    let counts = session.texts("p.count", 1).await;
    assert_eq!(counts[0], "1–6 of 6");
    session.close().await;
}

#[tokio::test]
async fn an_unknown_topic_shows_the_api_error() {
    let session = Session::start().await;
    session.open("/questions?topic=42").await;
    let errors = session.texts("p.error", 1).await;
    assert!(errors[0].contains("topic '42' not found"), "{}", errors[0]);
    session.close().await;
}

#[tokio::test]
async fn the_app_runs_under_its_content_security_policy_which_stops_injected_scripts() {
    let inject = "
        window.injected = false;
        const injected = document.createElement('script');
        injected.textContent = 'window.injected = true;';
        document.head.appendChild(injected);
        return window.injected;";
    let session = Session::start().await;
    // Where no policy holds, the injected inline script runs.
    session.client.goto("about:blank").await.unwrap();
    assert_eq!(session.client.execute(inject, vec![]).await.unwrap(), true);
    session.open("/").await;
    // The app (its inline loader and the WebAssembly) ran: the page is drawn.
    session.texts("table.cultures tr.culture", 18).await;
    assert_eq!(session.client.execute(inject, vec![]).await.unwrap(), false, "the policy stops an injected script");
    session.close().await;
}
