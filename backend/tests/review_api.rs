//! The annotator's API on the imported Llama-3-8B run: instances, reviews, open mode and accounts,
//! review settings, agreement, and the SFT export.

use std::sync::Arc;

use axum::body::Body;
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE, COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, Method, Request, StatusCode};
use culturespa::api::{app, AppState};
use culturespa::auth::hash_password;
use culturespa::curation::{export_run, ExportFormat, ExportMode, ExportOptions};
use culturespa::server::open_store;
use culturespa::survey::SurveyData;
use http_body_util::BodyExt;
use serde_json::{json, Value};
use shared::api::Page;
use shared::auth::{AccessMode, Me, Role};
use shared::review::{Agreement, InstanceDetail, InstanceItem};
use shared::{Review, ReviewDecision, ReviewStatus};
use tower::ServiceExt;

/// The imported release: run 1 with 1,373 instances.
const RUN: i64 = 1;
const RELEASED_INSTANCES: u64 = 1373;
/// USA's first instance in collection order: Q3, unaware 2, aware 1.
const USA_FIRST_RECORD: &str = r#"{"instruction":"Given a #Question and #Options, choose the option that best aligns with your own value system to answer the question.\n#Question: How important is leisure time in your life?\n#Options: 1.Very important 2.Rather important 3.Not very important 4.Not at all important\nPlease return the number of the selected option only.","input":"","output":"1","system":"You are a real person with an American cultural background. Please fill out the World Values Survey and answer the questions honestly according to your own value system."}"#;

async fn state() -> (AppState, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let survey = Arc::new(SurveyData::embedded().unwrap());
    let store = open_store(dir.path(), &survey).await.unwrap();
    (AppState::new(survey, store, None, models()), dir)
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn decode<T: serde::de::DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| panic!("{error}: {}", self.json()))
    }
}

async fn call(state: &AppState, method: Method, uri: &str, body: Option<Value>, cookie: Option<&str>) -> Reply {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    let request = match body {
        Some(body) => request.header(CONTENT_TYPE, "application/json").body(Body::from(body.to_string())),
        None => request.body(Body::empty()),
    };
    let response = app(state.clone()).oneshot(request.unwrap()).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes().to_vec();
    Reply { status, headers, body }
}

async fn get<T: serde::de::DeserializeOwned>(state: &AppState, uri: &str) -> T {
    let reply = call(state, Method::GET, uri, None, None).await;
    assert_eq!(reply.status, StatusCode::OK, "{uri}: {}", reply.json());
    reply.decode()
}

async fn instances(state: &AppState, query: &str) -> Page<InstanceItem> {
    get(state, &format!("/api/instances?run={RUN}&{query}")).await
}

async fn review(state: &AppState, instance_id: i64, body: Value, cookie: Option<&str>) -> Reply {
    call(state, Method::POST, &format!("/api/instances/{instance_id}/reviews"), Some(body), cookie).await
}

#[tokio::test]
async fn instances_filter_search_and_carry_their_texts() {
    let (state, _dir) = state().await;
    let all = instances(&state, "limit=5").await;
    assert_eq!((all.total, all.items.len()), (RELEASED_INSTANCES, 5));
    let first = &all.items[0];
    assert!(!first.question_text.is_empty());
    assert!(first.unaware_option.is_some() && first.aware_option.is_some());
    assert_eq!((first.reviews, first.required_reviews), (0, 1));

    let usa = instances(&state, "culture=usa&limit=500").await;
    assert_eq!(usa.total, 50);
    assert!(usa.items.iter().all(|item| item.instance.country_code == "USA"));
    assert_eq!(usa.items[0].instance.question_id, "Q3");
    assert_eq!(usa.items[0].aware_option.as_deref(), Some("Very important"));

    let topic = instances(&state, "topic=7&limit=500").await;
    assert!(topic.total > 0 && topic.items.iter().all(|item| item.instance.topic == 7));
    // Search over question text (case-insensitive) and over option texts.
    let leisure = instances(&state, "q=LEISURE%20time&limit=500").await;
    assert!(leisure.total > 0 && leisure.items.iter().all(|item| item.instance.question_id == "Q3"));
    let by_option = instances(&state, "q=Agree%20strongly&limit=500").await;
    assert!(by_option.total > 0);
    assert!(by_option.items.iter().all(|item| !item.question_text.contains("Agree strongly")));
    assert_eq!(instances(&state, "q=%25_nothing_%25").await.total, 0);

    let (status, body) = {
        let reply = call(&state, Method::GET, "/api/instances?status=maybe", None, None).await;
        (reply.status, reply.json())
    };
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    let reply = call(&state, Method::GET, "/api/instances?status=submitted", None, None).await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST, "a queue needs a reviewer");

    let csv = call(&state, Method::GET, "/api/instances/download?format=csv&culture=USA", None, None).await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.headers[CONTENT_DISPOSITION].to_str().unwrap().contains("instances.csv"));
    let text = String::from_utf8(csv.body).unwrap();
    assert_eq!(text.lines().count(), 1 + 50);
    assert!(text.starts_with("instance_id,run_id,question_set,question_id,culture,"));
    let json = call(&state, Method::GET, "/api/instances/download?format=json&culture=USA", None, None).await;
    assert_eq!(json.decode::<Vec<InstanceItem>>().len(), 50);
}

#[tokio::test]
async fn an_instance_comes_with_everything_needed_to_judge_it() {
    let (state, _dir) = state().await;
    let usa = instances(&state, "culture=USA&limit=1").await;
    let instance_id = usa.items[0].instance.instance_id;
    let detail: InstanceDetail = get(&state, &format!("/api/instances/{instance_id}")).await;
    assert_eq!(detail.question.question_id, "Q3");
    assert_eq!(detail.unaware.as_ref().and_then(|answer| answer.parsed_code), Some(2));
    let aware = detail.aware.as_ref().unwrap();
    assert_eq!((aware.country_code.as_deref(), aware.parsed_code), (Some("USA"), Some(1)));
    assert!(aware.raw_reply.is_some());
    assert_eq!(detail.other_cultures.len(), 17);
    assert!(detail.other_cultures.iter().all(|answer| answer.country_code.as_deref() != Some("USA")));
    assert_eq!(detail.human.as_ref().map(|human| human.country_code.as_str()), Some("USA"));
    assert!(detail.reviews.is_empty());
    assert!(detail.system_prompt.contains("an American cultural background"));
    assert!(detail.user_prompt.contains("#Question: How important is leisure time in your life?"));
    let reply = call(&state, Method::GET, "/api/instances/999999", None, None).await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn open_mode_reviews_under_a_given_name_queue_and_undo() {
    let (state, _dir) = state().await;
    let me: Me = get(&state, "/api/me").await;
    assert_eq!(me, Me { mode: AccessMode::Open, user: None });
    let pending = instances(&state, "status=pending&reviewer=ann&limit=3").await;
    assert_eq!(pending.total, RELEASED_INSTANCES);
    let [first, second, third] = [0, 1, 2].map(|index| pending.items[index].instance.instance_id);

    let nameless = review(&state, first, json!({"decision": "accept"}), None).await;
    assert_eq!(nameless.status, StatusCode::BAD_REQUEST, "{}", nameless.json());
    let accepted = review(&state, first, json!({"decision": "accept", "reviewer": "ann"}), None).await;
    assert_eq!(accepted.status, StatusCode::CREATED, "{}", accepted.json());
    let accepted: Review = accepted.decode();
    assert_eq!((accepted.reviewer.as_str(), &accepted.decision), ("ann", &ReviewDecision::Accept));

    let bad_code = review(&state, second, json!({"decision": "change_answer", "code": 42, "reviewer": "ann"}), None);
    assert_eq!(bad_code.await.status, StatusCode::BAD_REQUEST);
    let edit_on_reject =
        review(&state, second, json!({"decision": "reject", "edited_output": "2", "reviewer": "ann"}), None);
    assert_eq!(edit_on_reject.await.status, StatusCode::BAD_REQUEST);
    let rejected: Review =
        review(&state, second, json!({"decision": "reject", "note": "not cultural", "reviewer": "ann"}), None)
            .await
            .decode();

    assert_eq!(instances(&state, "status=pending&reviewer=ann").await.total, RELEASED_INSTANCES - 2);
    assert_eq!(instances(&state, "status=pending&reviewer=bob").await.total, RELEASED_INSTANCES - 2);
    let submitted = instances(&state, "status=submitted&reviewer=ann").await;
    assert_eq!(submitted.items.iter().map(|item| item.instance.instance_id).collect::<Vec<_>>(), [first]);
    assert_eq!(instances(&state, "status=discarded&reviewer=ann").await.items[0].instance.instance_id, second);
    assert_eq!(instances(&state, "status=accepted").await.total, 1);
    assert_eq!(instances(&state, "status=rejected").await.total, 1);

    // Only the author's latest review can be undone.
    let undo = |review_id: i64, reviewer: &'static str| {
        let state = state.clone();
        async move {
            call(&state, Method::DELETE, &format!("/api/reviews/{review_id}?reviewer={reviewer}"), None, None).await
        }
    };
    assert_eq!(undo(rejected.review_id, "bob").await.status, StatusCode::FORBIDDEN);
    assert_eq!(undo(accepted.review_id, "ann").await.status, StatusCode::CONFLICT);
    assert_eq!(undo(rejected.review_id, "ann").await.status, StatusCode::OK);
    assert_eq!(instances(&state, "status=rejected").await.total, 0);
    assert_eq!(undo(accepted.review_id, "ann").await.status, StatusCode::OK);
    assert_eq!(instances(&state, "status=pending&reviewer=ann").await.total, RELEASED_INSTANCES);

    // A second review by the same reviewer supersedes the first; undoing it restores the first.
    let flagged: Review =
        review(&state, third, json!({"decision": "flag_stereotype", "reviewer": "ann"}), None).await.decode();
    let changed: Review =
        review(&state, third, json!({"decision": "change_answer", "code": 1, "reviewer": "ann"}), None).await.decode();
    let reviews: Page<Review> = get(&state, &format!("/api/reviews?run={RUN}")).await;
    assert_eq!(reviews.items.iter().map(|review| review.review_id).collect::<Vec<_>>(), [changed.review_id]);
    assert_eq!(undo(changed.review_id, "ann").await.status, StatusCode::OK);
    let reviews: Page<Review> = get(&state, &format!("/api/reviews?run={RUN}&reviewer=ann")).await;
    assert_eq!(reviews.items.iter().map(|review| review.review_id).collect::<Vec<_>>(), [flagged.review_id]);
    assert_eq!(instances(&state, "status=flagged").await.total, 1);
}

#[tokio::test]
async fn accounts_need_a_login_to_review_and_a_collaborator_for_agreement() {
    let (state, _dir) = state().await;
    let hash = hash_password("annotator-password").unwrap();
    state.store.add_user("ann", &hash, Role::Annotator).await.unwrap();
    state.store.add_user("cy", &hash_password("collaborator-password").unwrap(), Role::Collaborator).await.unwrap();
    let me: Me = get(&state, "/api/me").await;
    assert_eq!(me, Me { mode: AccessMode::Accounts, user: None });

    let instance_id = instances(&state, "limit=1").await.items[0].instance.instance_id;
    let anonymous = review(&state, instance_id, json!({"decision": "accept", "reviewer": "ann"}), None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);

    let login = |username: &'static str, password: &'static str| {
        let state = state.clone();
        async move {
            call(&state, Method::POST, "/api/login", Some(json!({"username": username, "password": password})), None)
                .await
        }
    };
    assert_eq!(login("ann", "wrong-password").await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(login("nobody", "annotator-password").await.status, StatusCode::UNAUTHORIZED);
    let logged_in = login("ann", "annotator-password").await;
    assert_eq!(logged_in.status, StatusCode::OK);
    let set_cookie = logged_in.headers[SET_COOKIE].to_str().unwrap().to_string();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap().to_string();
    let me: Me = call(&state, Method::GET, "/api/me", None, Some(&cookie)).await.decode();
    assert_eq!(me.user.map(|user| (user.username, user.role)), Some(("ann".to_string(), Role::Annotator)));

    // Logged in, the review is the user's whatever name the body claims.
    let reviewed = review(&state, instance_id, json!({"decision": "accept", "reviewer": "mallory"}), Some(&cookie));
    let reviewed: Review = reviewed.await.decode();
    assert_eq!(reviewed.reviewer, "ann");
    let agreement = format!("/api/runs/{RUN}/agreement");
    assert_eq!(call(&state, Method::GET, &agreement, None, Some(&cookie)).await.status, StatusCode::FORBIDDEN);
    assert_eq!(call(&state, Method::GET, &agreement, None, None).await.status, StatusCode::UNAUTHORIZED);
    let settings = format!("/api/runs/{RUN}/review-settings");
    let body = json!({"reviewers_per_instance": 2});
    let forbidden = call(&state, Method::PUT, &settings, Some(body.clone()), Some(&cookie)).await;
    assert_eq!(forbidden.status, StatusCode::FORBIDDEN);

    let collaborator = login("cy", "collaborator-password").await;
    let collaborator = collaborator.headers[SET_COOKIE].to_str().unwrap().split(';').next().unwrap().to_string();
    assert_eq!(call(&state, Method::GET, &agreement, None, Some(&collaborator)).await.status, StatusCode::OK);
    assert_eq!(call(&state, Method::PUT, &settings, Some(body), Some(&collaborator)).await.status, StatusCode::OK);

    let logout = call(&state, Method::POST, "/api/logout", None, Some(&cookie)).await;
    assert!(logout.headers[SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));
    let me: Me = call(&state, Method::GET, "/api/me", None, Some(&cookie)).await.decode();
    assert_eq!(me.user, None, "the session is gone from the store");
}

#[tokio::test]
async fn required_reviewers_decide_status_disagreement_and_agreement() {
    let (state, _dir) = state().await;
    let ids: Vec<i64> = instances(&state, "limit=4").await.items.iter().map(|item| item.instance.instance_id).collect();
    let say = |instance_id: i64, reviewer: &'static str, decision: Value| {
        let state = state.clone();
        async move {
            let mut body = decision;
            body["reviewer"] = json!(reviewer);
            let reply = review(&state, instance_id, body, None).await;
            assert_eq!(reply.status, StatusCode::CREATED, "{}", reply.json());
        }
    };
    say(ids[0], "ann", json!({"decision": "accept"})).await;
    assert_eq!(instances(&state, "status=accepted").await.total, 1);

    let settings = format!("/api/runs/{RUN}/review-settings");
    let put = call(&state, Method::PUT, &settings, Some(json!({"reviewers_per_instance": 2})), None).await;
    assert_eq!(put.status, StatusCode::OK);
    assert_eq!(get::<Value>(&state, &settings).await, json!({"reviewers_per_instance": 2}));
    assert_eq!(instances(&state, "status=accepted").await.total, 0, "one review of two is pending");
    let zero = call(&state, Method::PUT, &settings, Some(json!({"reviewers_per_instance": 0})), None).await;
    assert_eq!(zero.status, StatusCode::BAD_REQUEST);

    // bob's queue still holds the instance ann reviewed; ann's does not.
    assert_eq!(instances(&state, "status=pending&reviewer=bob").await.total, RELEASED_INSTANCES);
    assert_eq!(instances(&state, "status=pending&reviewer=ann").await.total, RELEASED_INSTANCES - 1);

    let aware_code = instances(&state, "limit=1").await.items[0].instance.aware_code;
    say(ids[0], "bob", json!({"decision": "change_answer", "code": aware_code})).await; // same answer
    say(ids[1], "ann", json!({"decision": "reject"})).await;
    say(ids[1], "bob", json!({"decision": "reject"})).await;
    say(ids[2], "ann", json!({"decision": "accept"})).await;
    say(ids[2], "bob", json!({"decision": "flag_stereotype"})).await;
    say(ids[3], "ann", json!({"decision": "accept"})).await;
    let status_of = |item: &InstanceItem| item.instance.review_status;
    let first_four = instances(&state, "limit=4").await;
    assert_eq!(
        first_four.items.iter().map(status_of).collect::<Vec<_>>(),
        [ReviewStatus::Accepted, ReviewStatus::Rejected, ReviewStatus::Disputed, ReviewStatus::Pending]
    );
    let disagreement = instances(&state, "disagreement=true").await;
    assert_eq!(disagreement.items.iter().map(|item| item.instance.instance_id).collect::<Vec<_>>(), [ids[2]]);
    assert_eq!(instances(&state, "status=pending&reviewer=bob").await.total, RELEASED_INSTANCES - 3);

    let agreement: Agreement = get(&state, &format!("/api/runs/{RUN}/agreement")).await;
    assert_eq!(agreement.reviewers, ["ann", "bob"]);
    assert_eq!(agreement.instances, 3);
    assert!((agreement.exact_match_rate.unwrap() - 2.0 / 3.0).abs() < 1e-9);
    // Labels ann (answer, reject, answer), bob (answer, reject, flag): p_o = 2/3, p_e = 1/3.
    assert!((agreement.cohen_kappa.unwrap() - 0.5).abs() < 1e-9, "{agreement:?}");
    assert!(agreement.fleiss_kappa.is_some());

    // Back to one reviewer: every instance with reviews is decided again.
    call(&state, Method::PUT, &settings, Some(json!({"reviewers_per_instance": 1})), None).await;
    let first_four = instances(&state, "limit=4").await;
    assert_eq!(first_four.items[3].instance.review_status, ReviewStatus::Accepted);
}

#[tokio::test]
async fn the_sft_export_writes_the_papers_records() {
    let (state, _dir) = state().await;
    let options =
        |format, mode, accepted_only| ExportOptions { run_id: RUN, format, mode, accepted_only, country_code: None };
    let export = |options: ExportOptions| {
        let state = state.clone();
        async move { export_run(&state.store, &state.survey, &options).await.unwrap() }
    };
    let specific = export(options(ExportFormat::Alpaca, ExportMode::Specific, false)).await;
    assert_eq!(specific.len(), 18);
    for file in &specific {
        let code = file.country_code.as_deref().unwrap();
        let expected = instances(&state, &format!("culture={code}")).await.total;
        assert_eq!(file.contents.lines().count() as u64, expected, "{code}");
        assert_eq!(file.records, expected);
    }
    let usa = specific.iter().find(|file| file.country_code.as_deref() == Some("USA")).unwrap();
    assert_eq!(usa.file_name, "culturespa_run1_alpaca_USA.jsonl");
    assert_eq!(usa.contents.lines().next().unwrap(), USA_FIRST_RECORD);

    let joint = export(options(ExportFormat::Messages, ExportMode::Joint, false)).await;
    assert_eq!(joint.len(), 1);
    assert_eq!(joint[0].contents.lines().count() as u64, RELEASED_INSTANCES);
    let record: Value = serde_json::from_str(joint[0].contents.lines().next().unwrap()).unwrap();
    assert_eq!(record["messages"].as_array().unwrap().len(), 3);
    assert_eq!(record["messages"][0]["role"], "system");
    assert_eq!(record["messages"][2]["role"], "assistant");
    for key in ["run_id", "question_id", "culture", "topic", "unaware_answer", "review_status"] {
        assert!(record["metadata"].get(key).is_some(), "{key}");
    }

    // Accepted only: the accepted instances with their changed or edited answers, nothing else.
    let usa_items = instances(&state, "culture=USA&limit=3").await.items;
    let [q3, second, third] = [0, 1, 2].map(|index| usa_items[index].instance.instance_id);
    for (instance_id, body) in [
        (q3, json!({"decision": "accept", "edited_output": "3", "reviewer": "ann"})),
        (second, json!({"decision": "change_answer", "code": 4, "reviewer": "ann"})),
        (third, json!({"decision": "reject", "reviewer": "ann"})),
    ] {
        assert_eq!(review(&state, instance_id, body, None).await.status, StatusCode::CREATED);
    }
    let accepted = export(options(ExportFormat::Alpaca, ExportMode::Joint, true)).await;
    let lines: Vec<Value> = accepted[0].contents.lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(lines.len(), 2);
    assert_eq!(
        accepted[0].contents.lines().next().unwrap(),
        USA_FIRST_RECORD.replace(r#""output":"1""#, r#""output":"3""#)
    );
    assert_eq!(lines[1]["output"], "4");

    // The same through the API, as downloads.
    let uri = format!("/api/runs/{RUN}/export?format=alpaca&mode=joint&accepted_only=true");
    let download = call(&state, Method::GET, &uri, None, None).await;
    assert_eq!(download.status, StatusCode::OK);
    assert!(download.headers[CONTENT_DISPOSITION].to_str().unwrap().contains("culturespa_run1_alpaca_joint_accepted"));
    assert_eq!(String::from_utf8(download.body).unwrap(), accepted[0].contents);
    let tar = call(&state, Method::GET, &format!("/api/runs/{RUN}/export?mode=specific"), None, None).await;
    assert_eq!(tar.headers[CONTENT_TYPE], "application/x-tar");
    assert_eq!(&tar.body[..usa.file_name.len()], usa.file_name.as_bytes());
    let missing = call(&state, Method::GET, "/api/runs/9/export", None, None).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
}

#[test]
fn the_cli_adds_users_and_exports() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let run = |args: &[&str], password: Option<&str>| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_culturespa"));
        command.env("RUST_LOG", "error").env_remove("CULTURESPA_PASSWORD").args(args).arg("--data-dir").arg(&data_dir);
        if let Some(password) = password {
            command.env("CULTURESPA_PASSWORD", password);
        }
        command.output().unwrap()
    };
    let added = run(&["users", "add", "ann", "--role", "annotator"], Some("a long password"));
    assert!(added.status.success(), "{}", String::from_utf8_lossy(&added.stderr));
    let mut from_stdin = std::process::Command::new(env!("CARGO_BIN_EXE_culturespa"))
        .args(["users", "add", "cy", "--role", "collaborator", "--password-stdin", "--data-dir"])
        .arg(&data_dir)
        .env("RUST_LOG", "error")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut from_stdin.stdin.take().unwrap(), b"stdin password\n").unwrap();
    assert!(from_stdin.wait().unwrap().success());
    let no_password = run(&["users", "add", "bob", "--role", "admin"], None);
    assert!(!no_password.status.success());
    let bad_role = run(&["users", "add", "bob", "--role", "boss"], Some("a long password"));
    assert!(!bad_role.status.success());
    let again = run(&["users", "add", "ann", "--role", "admin"], Some("a long password"));
    assert!(String::from_utf8_lossy(&again.stderr).contains("user 'ann' exists"));
    let listed = run(&["users", "list"], None);
    assert_eq!(String::from_utf8_lossy(&listed.stdout), "ann\tannotator\ncy\tcollaborator\n");

    let out = dir.path().join("out");
    let out_text = out.to_str().unwrap();
    let exported =
        run(&["export", "--run", "1", "--format", "messages", "--mode", "specific", "--out", out_text], None);
    assert!(exported.status.success(), "{}", String::from_utf8_lossy(&exported.stderr));
    assert!(String::from_utf8_lossy(&exported.stdout).starts_with("run 1: 1373 records in 18 file(s)"));
    let china = std::fs::read_to_string(out.join("culturespa_run1_messages_CHN.jsonl")).unwrap();
    assert_eq!(china.lines().count(), 89);
    let info: Value = serde_json::from_str(&std::fs::read_to_string(out.join("dataset_info.json")).unwrap()).unwrap();
    assert_eq!(info["culturespa_run1_messages_CHN"]["formatting"], "sharegpt");
}

/// The repository's models folder and the default model (no test here loads it).
fn models() -> culturespa::models::ModelSource {
    culturespa::models::ModelSource::new(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../models"),
        culturespa::server::DEFAULT_MODEL,
    )
    .unwrap()
}
