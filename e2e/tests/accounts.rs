//! The admin's and a user's account pages in headless Chromium: log in, add an account, change
//! its role, make a personal API token whose secret then works from a script.

use std::time::{Duration, Instant};

use e2e::Session;
use fantoccini::Locator;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(20);

/// Waits until the element matching `css` has text containing `part`; returns the text.
async fn wait_for_text(session: &Session, css: &str, part: &str) -> String {
    let started = Instant::now();
    loop {
        if let Ok(element) = session.client.find(Locator::Css(css)).await {
            if let Ok(text) = element.text().await {
                if text.contains(part) {
                    return text;
                }
            }
        }
        assert!(started.elapsed() < WAIT, "`{css}` never showed {part:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn fill(session: &Session, css: &str, text: &str) {
    let input = session.client.wait().at_most(WAIT).for_element(Locator::Css(css)).await.unwrap();
    input.clear().await.unwrap();
    input.send_keys(text).await.unwrap();
}

async fn click(session: &Session, css: &str) {
    session.client.wait().at_most(WAIT).for_element(Locator::Css(css)).await.unwrap().click().await.unwrap();
}

#[tokio::test]
async fn an_admin_adds_an_account_changes_its_role_and_makes_a_token() {
    let session = Session::start().await;
    session.cli(&["users", "add", "ada", "--role", "admin"], &[("CULTURESPA_PASSWORD", "ada-password")]);

    session.open("/admin").await;
    fill(&session, "form.login-form input[name=username]", "ada").await;
    fill(&session, "form.login-form input[name=password]", "ada-password").await;
    click(&session, "form.login-form button[type=submit]").await;
    wait_for_text(&session, "table.accounts", "ada").await;

    fill(&session, "form.add-account input[name=new-username]", "ann").await;
    fill(&session, "form.add-account input[name=password]", "ann-password").await;
    click(&session, "form.add-account select[name=new-role] option[value=collaborator]").await;
    click(&session, "form.add-account button[type=submit]").await;
    wait_for_text(&session, "[data-testid=admin-message]", "Added ann (collaborator)").await;
    wait_for_text(&session, "table.accounts", "ann").await;

    click(&session, "tr[data-username=ann] select[name=role] option[value=annotator]").await;
    wait_for_text(&session, "[data-testid=admin-message]", "ann is annotator").await;
    // Ada cannot demote herself: she is the last admin.
    click(&session, "tr[data-username=ada] select[name=role] option[value=collaborator]").await;
    wait_for_text(&session, "[data-testid=admin-message]", "ada is the last admin").await;

    session.open("/account").await;
    fill(&session, "form.token-form input[name=token-name]", "e2e script").await;
    click(&session, "form.token-form button[type=submit]").await;
    let shown = wait_for_text(&session, "[data-testid=token-secret]", "csp_").await;
    let secret = shown.split_whitespace().find(|word| word.starts_with("csp_")).unwrap().trim_end_matches('\'');
    wait_for_text(&session, "table.tokens", "e2e script").await;

    // The secret works from a script without the session cookie, as ada.
    let script = "return fetch(arguments[0], {credentials: 'omit', headers: {Authorization: 'Bearer ' + arguments[1]}})
        .then(response => response.json());";
    let args = vec![Value::String(format!("{}/api/me", session.base_url)), Value::String(secret.to_string())];
    let me = session.client.execute(script, args).await.unwrap();
    assert_eq!(me["user"]["username"], "ada", "{me}");
    session.close().await;
}
