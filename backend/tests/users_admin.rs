//! Administering accounts: change a role, end sessions, reset a password, remove an account,
//! personal API tokens; from the store, the admin API (the admin page's) and the command line.

mod common;

use std::sync::Arc;

use axum::body::Body;
use axum::http::header::{AUTHORIZATION, COOKIE, SET_COOKIE};
use axum::http::{Method, Request, StatusCode};
use culturespa::api::{app, AppState};
use culturespa::auth::{hash_password, token_digest};
use culturespa::server::open_store;
use culturespa::store::{Store, MAX_API_TOKENS_PER_USER};
use culturespa::survey::SurveyData;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use shared::auth::Role;
use tower::ServiceExt;

#[tokio::test]
async fn roles_sessions_passwords_and_accounts_are_administered() {
    let store = Store::in_memory().await.unwrap();
    store.add_user("ann", "hash-1", Role::Annotator).await.unwrap();
    store.create_session(store.credentials("ann").await.unwrap().unwrap().user_id, "token-1", 1).await.unwrap();
    assert_eq!(store.session_user("token-1").await.unwrap().unwrap().role, Role::Annotator);

    // A new role holds from the session's next request.
    store.set_role("ann", Role::Collaborator).await.unwrap();
    assert_eq!(store.session_user("token-1").await.unwrap().unwrap().role, Role::Collaborator);

    let revoked = store.revoke_credentials("ann").await.unwrap();
    assert_eq!((revoked.sessions, revoked.api_tokens), (1, 0));
    assert_eq!(store.session_user("token-1").await.unwrap(), None);

    let user_id = store.credentials("ann").await.unwrap().unwrap().user_id;
    store.create_session(user_id, "token-2", 1).await.unwrap();
    store.set_password("ann", "hash-2").await.unwrap();
    assert_eq!(store.credentials("ann").await.unwrap().unwrap().password_hash, "hash-2");
    assert_eq!(store.session_user("token-2").await.unwrap(), None, "a new password ends the sessions");

    store.create_session(user_id, "token-3", 1).await.unwrap();
    store.remove_user("ann").await.unwrap();
    assert!(store.users().await.unwrap().is_empty());
    assert_eq!(store.session_user("token-3").await.unwrap(), None);
    for missing in [store.remove_user("ann").await.unwrap_err(), store.set_role("ann", Role::Admin).await.unwrap_err()]
    {
        assert!(missing.to_string().contains("user 'ann' not found"), "{missing}");
    }
}

#[test]
fn the_command_line_administers_accounts() {
    let dir = tempfile::tempdir().unwrap();
    let users = |args: &[&str]| {
        let output = common::culturespa(dir.path())
            .arg("users")
            .args(args)
            .env("CULTURESPA_PASSWORD", "a-long-password")
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).to_string() + &String::from_utf8_lossy(&output.stderr),
        )
    };
    assert!(users(&["add", "ann", "--role", "annotator"]).0);
    let (ok, text) = users(&["role", "ann", "admin"]);
    assert!(ok && text.contains("ann is now admin"), "{text}");
    let (ok, text) = users(&["list"]);
    assert!(ok && text.contains("ann\tadmin"), "{text}");
    let (ok, secret) = users(&["token", "add", "ann", "table script"]);
    assert!(ok && secret.contains("csp_") && secret.contains("the secret is shown this once"), "{secret}");
    let (ok, text) = users(&["token", "add", "ann", "table script"]);
    assert!(!ok && text.contains("already has a token named 'table script'"), "{text}");
    let (ok, text) = users(&["token", "list", "ann"]);
    assert!(ok && text.starts_with("1\ttable script\t") && text.trim_end().ends_with("never used"), "{text}");
    let (ok, text) = users(&["token", "list", "nobody"]);
    assert!(!ok && text.contains("user 'nobody' not found"), "{text}");
    assert!(users(&["token", "add", "ann", "laptop"]).0);
    let (ok, text) = users(&["token", "revoke", "ann", "1"]);
    assert!(ok && text.contains("revoked API token 1 of ann"), "{text}");
    let (ok, text) = users(&["revoke", "ann"]);
    assert!(ok && text.contains("ended 0 session(s) and revoked 1 API token(s) of ann"), "{text}");
    assert!(users(&["reset-password", "ann"]).0);
    assert!(users(&["remove", "ann"]).0);
    let (ok, text) = users(&["remove", "ann"]);
    assert!(!ok && text.contains("not found"), "{text}");
}

#[tokio::test]
async fn api_tokens_are_named_bounded_and_die_with_their_account() {
    let store = Store::in_memory().await.unwrap();
    store.add_user("ann", "hash", Role::Annotator).await.unwrap();
    store.add_user("bob", "hash", Role::Collaborator).await.unwrap();
    let token = store.create_api_token("ann", "laptop", &token_digest("secret-1")).await.unwrap();
    assert_eq!((token.name.as_str(), token.last_used_at.as_deref()), ("laptop", None));
    let conflict = store.create_api_token("ann", "laptop", &token_digest("secret-2")).await.unwrap_err();
    assert!(conflict.to_string().contains("already has a token named 'laptop'"), "{conflict}");

    let user = store.api_token_user(&token_digest("secret-1")).await.unwrap().unwrap();
    assert_eq!((user.username.as_str(), user.role), ("ann", Role::Annotator));
    assert!(store.api_tokens("ann").await.unwrap()[0].last_used_at.is_some(), "using a token marks it");
    assert_eq!(store.api_token_user(&token_digest("secret-2")).await.unwrap(), None);

    // Bob cannot revoke Ann's token; Ann can.
    let missing = store.revoke_api_token("bob", token.token_id).await.unwrap_err();
    assert!(missing.to_string().contains("not found"), "{missing}");
    store.revoke_api_token("ann", token.token_id).await.unwrap();
    assert_eq!(store.api_token_user(&token_digest("secret-1")).await.unwrap(), None);

    // At most MAX_API_TOKENS_PER_USER.
    for index in 0..MAX_API_TOKENS_PER_USER {
        store.create_api_token("bob", &format!("t{index}"), &token_digest(&format!("bob-{index}"))).await.unwrap();
    }
    let full = store.create_api_token("bob", "one more", &token_digest("bob-x")).await.unwrap_err();
    assert!(full.to_string().contains("revoke one first"), "{full}");
    // Removing the account removes its tokens.
    store.remove_user("bob").await.unwrap();
    assert_eq!(store.api_token_user(&token_digest("bob-0")).await.unwrap(), None);
}

#[tokio::test]
async fn the_last_admin_stays_while_other_accounts_exist() {
    let store = Store::in_memory().await.unwrap();
    store.add_user("ada", "hash", Role::Admin).await.unwrap();
    store.add_user("ann", "hash", Role::Annotator).await.unwrap();
    for refused in
        [store.remove_user("ada").await.unwrap_err(), store.set_role("ada", Role::Collaborator).await.unwrap_err()]
    {
        assert!(refused.to_string().contains("ada is the last admin"), "{refused}");
    }
    store.set_role("ann", Role::Admin).await.unwrap();
    store.set_role("ada", Role::Collaborator).await.unwrap();
    store.remove_user("ann").await.unwrap_err();
    store.remove_user("ada").await.unwrap();
    // The only account may go: the server is then in open local mode again.
    store.remove_user("ann").await.unwrap();
    assert!(!store.has_users().await.unwrap());
}

/// Sends a request to the app; the status and the JSON body (`Null` when empty).
async fn send(
    state: &AppState,
    method: Method,
    uri: &str,
    credential: Option<(&str, &str)>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(uri).header("content-type", "application/json");
    if let Some((name, value)) = credential {
        request = request.header(name, value);
    }
    let body = body.map_or_else(Body::empty, |body| Body::from(body.to_string()));
    let response = app(state.clone()).oneshot(request.body(body).unwrap()).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

async fn login(state: &AppState, username: &str, password: &str) -> Result<String, StatusCode> {
    let body = json!({"username": username, "password": password});
    let request = Request::builder().method(Method::POST).uri("/api/login").header("content-type", "application/json");
    let response = app(state.clone()).oneshot(request.body(Body::from(body.to_string())).unwrap()).await.unwrap();
    if response.status() != StatusCode::OK {
        return Err(response.status());
    }
    Ok(response.headers()[SET_COOKIE].to_str().unwrap().split(';').next().unwrap().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_administers_accounts_and_a_user_their_tokens_through_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let survey = Arc::new(SurveyData::embedded().unwrap());
    let store = open_store(dir.path(), &survey).await.unwrap();
    store.add_user("ada", &hash_password("ada-password").unwrap(), Role::Admin).await.unwrap();
    let state = AppState::new(survey, store, None, common::model_source());
    let admin_cookie = login(&state, "ada", "ada-password").await.unwrap();
    let admin = Some((COOKIE.as_str(), admin_cookie.as_str()));

    // Add an annotator; a short password or a taken name changes nothing.
    let new_user = json!({"username": "ann", "password": "ann-password", "role": "annotator"});
    assert_eq!(send(&state, Method::POST, "/api/users", admin, Some(new_user.clone())).await.0, StatusCode::CREATED);
    assert_eq!(send(&state, Method::POST, "/api/users", admin, Some(new_user)).await.0, StatusCode::CONFLICT);
    let short = json!({"username": "bo", "password": "short", "role": "annotator"});
    let (status, body) = send(&state, Method::POST, "/api/users", admin, Some(short)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["message"].as_str().unwrap().contains("at least 8 characters"), "{body}");

    // Ann logs in and makes a token; the token is Ann.
    let ann_cookie = login(&state, "ann", "ann-password").await.unwrap();
    let ann = Some((COOKIE.as_str(), ann_cookie.as_str()));
    let (status, created) = send(&state, Method::POST, "/api/tokens", ann, Some(json!({"name": "script"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let bearer = format!("Bearer {}", created["secret"].as_str().unwrap());
    let with_token = Some((AUTHORIZATION.as_str(), bearer.as_str()));
    let (_, me) = send(&state, Method::GET, "/api/me", with_token, None).await;
    assert_eq!(me["user"]["username"], "ann");
    let (_, tokens) = send(&state, Method::GET, "/api/tokens", ann, None).await;
    assert_eq!(tokens[0]["name"], "script");
    assert!(tokens[0]["last_used_at"].is_string(), "{tokens}");
    assert!(tokens[0].get("secret").is_none() && !tokens.to_string().contains("csp_"), "{tokens}");
    // The account page lists counts.
    let (_, accounts) = send(&state, Method::GET, "/api/users", admin, None).await;
    let ann_row = accounts.as_array().unwrap().iter().find(|row| row["username"] == "ann").unwrap().clone();
    assert_eq!((ann_row["sessions"].as_u64(), ann_row["api_tokens"].as_u64()), (Some(1), Some(1)), "{accounts}");

    // A malformed header and an unknown token are refused with what is wrong.
    let (status, body) = send(&state, Method::GET, "/api/me", Some(("authorization", "Basic abc")), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["message"].as_str().unwrap().contains("Bearer TOKEN"), "{body}");
    let (status, _) = send(&state, Method::GET, "/api/me", Some(("authorization", "Bearer csp_nope")), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Role change holds for the token at once; a reset password ends the session.
    let change = json!({"role": "collaborator", "password": "ann-new-password"});
    let (status, user) = send(&state, Method::PUT, "/api/users/ann", admin, Some(change)).await;
    assert_eq!((status, user["role"].as_str()), (StatusCode::OK, Some("collaborator")));
    let (_, me) = send(&state, Method::GET, "/api/me", with_token, None).await;
    assert_eq!(me["user"]["role"], "collaborator");
    assert_eq!(send(&state, Method::GET, "/api/tokens", ann, None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(login(&state, "ann", "ann-password").await, Err(StatusCode::UNAUTHORIZED));
    login(&state, "ann", "ann-new-password").await.unwrap();
    let unknown = json!({"role": "annotator", "shoe_size": 9});
    assert_eq!(
        send(&state, Method::PUT, "/api/users/ann", admin, Some(unknown)).await.0,
        StatusCode::UNPROCESSABLE_ENTITY
    );

    // Revoke: the session and the token end.
    let (status, revoked) = send(&state, Method::POST, "/api/users/ann/revoke", admin, None).await;
    assert_eq!((status, revoked), (StatusCode::OK, json!({"sessions": 1, "api_tokens": 1})));
    assert_eq!(send(&state, Method::GET, "/api/me", with_token, None).await.0, StatusCode::UNAUTHORIZED);

    // The last admin cannot demote or remove itself; ann can be removed.
    let (status, body) = send(&state, Method::DELETE, "/api/users/ada", admin, None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(send(&state, Method::DELETE, "/api/users/ann", admin, None).await.0, StatusCode::NO_CONTENT);
    let (_, accounts) = send(&state, Method::GET, "/api/users", admin, None).await;
    assert_eq!(accounts.as_array().unwrap().len(), 1);

    // A token revoked by its owner ends too.
    let (_, created) = send(&state, Method::POST, "/api/tokens", admin, Some(json!({"name": "ci"}))).await;
    let token_id = created["token"]["token_id"].as_i64().unwrap();
    let bearer = format!("Bearer {}", created["secret"].as_str().unwrap());
    assert_eq!(send(&state, Method::GET, "/api/users", Some(("authorization", &bearer)), None).await.0, StatusCode::OK);
    let uri = format!("/api/tokens/{token_id}");
    assert_eq!(send(&state, Method::DELETE, &uri, admin, None).await.0, StatusCode::NO_CONTENT);
    assert_eq!(
        send(&state, Method::GET, "/api/users", Some(("authorization", &bearer)), None).await.0,
        StatusCode::UNAUTHORIZED
    );
}
