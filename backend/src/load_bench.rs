//! `culturespa bench api`: the instance list under load. A store of its own is filled with
//! `instances` culture-related instances (copies of the paper's released run), served on loopback,
//! and `clients` clients ask for pages of it at once, as the browser does: the whole list at a
//! random offset, and one run's instances of a culture. Latencies per request, as JSON.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rand::{RngExt, SeedableRng};
use serde::Serialize;

use crate::api::{app, AppState};
use crate::models::ModelSource;
use crate::server::open_store;
use crate::survey::SurveyData;

pub struct ApiBenchOptions {
    pub instances: u32,
    pub clients: usize,
    pub requests: usize,
    pub seed: u64,
}

#[derive(Debug, Serialize)]
pub struct Latencies {
    pub requests: usize,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct ApiBenchSummary {
    pub instances: u64,
    pub clients: usize,
    pub requests: usize,
    pub failed: usize,
    pub requests_per_s: f64,
    pub all: Latencies,
    /// `GET /api/instances?limit=50&offset=RANDOM`: the whole list, a page anywhere in it.
    pub list_page: Latencies,
    /// `GET /api/instances?run=R&culture=C&limit=50`: one run's instances of a culture.
    pub run_culture: Latencies,
}

/// Runs the bench with a store in a folder of its own under `work_dir`, removed afterwards.
pub async fn run_api_bench(
    options: &ApiBenchOptions,
    work_dir: &Path,
    models: ModelSource,
) -> anyhow::Result<ApiBenchSummary> {
    let dir = work_dir.join(format!("culturespa-bench-api-{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    let outcome = bench_in(options, &dir, models).await;
    let _ = std::fs::remove_dir_all(&dir);
    outcome
}

async fn bench_in(options: &ApiBenchOptions, dir: &Path, models: ModelSource) -> anyhow::Result<ApiBenchSummary> {
    let survey = Arc::new(SurveyData::embedded()?);
    let store = open_store(dir, &survey).await?;
    let instances = fill(&store, options.instances).await?;
    let runs: Vec<i64> = sqlx::query_scalar("SELECT DISTINCT run_id FROM instances").fetch_all(store.pool()).await?;
    let cultures: Vec<String> = survey.cultures.iter().map(|culture| culture.country_code.clone()).collect();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let router = app(AppState::new(survey, store, None, models));
    let server = tokio::spawn(async move { axum::serve(listener, router).await });

    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for client_index in 0..options.clients {
        let (client, runs, cultures) = (client.clone(), runs.clone(), cultures.clone());
        let count = options.requests / options.clients + usize::from(client_index < options.requests % options.clients);
        let mut rng = rand::rngs::ChaCha8Rng::seed_from_u64(options.seed.wrapping_add(client_index as u64));
        tasks.spawn(async move {
            let mut timings = Vec::with_capacity(count);
            for request in 0..count {
                let list_page = request % 2 == 0;
                let path = if list_page {
                    format!(
                        "/api/instances?limit=50&offset={}",
                        rng.random_range(0..instances.saturating_sub(50).max(1))
                    )
                } else {
                    let run = runs[rng.random_range(0..runs.len())];
                    format!(
                        "/api/instances?run={run}&culture={}&limit=50",
                        cultures[rng.random_range(0..cultures.len())]
                    )
                };
                let sent = Instant::now();
                let ok = get(&client, addr, &path).await;
                timings.push((list_page, sent.elapsed(), ok));
            }
            timings
        });
    }
    let mut timings = Vec::with_capacity(options.requests);
    while let Some(done) = tasks.join_next().await {
        timings.extend(done?);
    }
    let elapsed = started.elapsed();
    server.abort();
    let pick = |want: Option<bool>| -> Vec<Duration> {
        timings.iter().filter(|(list, _, _)| want.is_none_or(|want| *list == want)).map(|(_, took, _)| *took).collect()
    };
    Ok(ApiBenchSummary {
        instances,
        clients: options.clients,
        requests: timings.len(),
        failed: timings.iter().filter(|(_, _, ok)| !ok).count(),
        requests_per_s: (timings.len() as f64 / elapsed.as_secs_f64() * 10.0).round() / 10.0,
        all: latencies(pick(None)),
        list_page: latencies(pick(Some(true))),
        run_culture: latencies(pick(Some(false))),
    })
}

async fn get(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>,
    addr: SocketAddr,
    path: &str,
) -> bool {
    let Ok(request) = Request::get(format!("http://{addr}{path}")).body(Full::new(Bytes::new())) else { return false };
    match client.request(request).await {
        Ok(response) => response.status() == StatusCode::OK && response.into_body().collect().await.is_ok(),
        Err(_) => false,
    }
}

fn latencies(mut timings: Vec<Duration>) -> Latencies {
    timings.sort();
    let at = |quantile: f64| -> f64 {
        let Some(last) = timings.len().checked_sub(1) else { return 0.0 };
        let index = ((last as f64) * quantile).round() as usize;
        (timings[index].as_secs_f64() * 1e5).round() / 100.0
    };
    Latencies { requests: timings.len(), p50_ms: at(0.5), p99_ms: at(0.99), max_ms: at(1.0) }
}

/// Copies the released run (run 1) and its instances until the store holds at least `target`
/// instances; returns how many it holds.
async fn fill(store: &crate::store::Store, target: u32) -> anyhow::Result<u64> {
    let per_copy: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM instances WHERE run_id = 1").fetch_one(store.pool()).await?;
    let per_copy = per_copy.max(1);
    let copies = ((i64::from(target) + per_copy - 1) / per_copy - 1).max(0);
    let mut transaction = store.pool().begin_with("BEGIN IMMEDIATE").await?;
    for copy in 0..copies {
        let run_id: i64 = sqlx::query_scalar(
            "INSERT INTO runs (name, config_json, origin_json, status, created_at, updated_at)
             SELECT name || ' (bench copy ' || ? || ')', config_json, origin_json, status, created_at, updated_at
             FROM runs WHERE run_id = 1 RETURNING run_id",
        )
        .bind(copy + 1)
        .fetch_one(&mut *transaction)
        .await?;
        sqlx::query(
            "INSERT INTO instances (run_id, question_set, question_id, country_code, topic, unaware_code, aware_code,
                                    review_status)
             SELECT ?, question_set, question_id, country_code, topic, unaware_code, aware_code, review_status
             FROM instances WHERE run_id = 1",
        )
        .bind(run_id)
        .execute(&mut *transaction)
        .await?;
    }
    transaction.commit().await?;
    Ok(sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM instances").fetch_one(store.pool()).await? as u64)
}
