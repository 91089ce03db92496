//! The JSON API under `/api`, and the built frontend from the same origin.

mod adapters;
mod auth;
mod content_security;
mod culture_map;
mod engines;
mod error;
mod export;
mod hygiene;
mod instances;
mod login_limits;
mod models;
pub mod openai;
mod openapi;
mod persona_meter;
mod questions;
mod relations;
mod reviews;
mod run_control;
mod runs;
mod scores;
mod survey;
mod tokens;
mod users;

use std::path::PathBuf;
use std::sync::Arc;

use axum::routing::get;
use axum::routing::{delete, post};
use axum::Router;
use serde::Deserialize;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::trace::TraceLayer;

use crate::models::ModelSource;
use crate::runs::RunService;
use crate::store::Store;
use crate::survey::SurveyData;

pub use error::AppError;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub survey: Arc<SurveyData>,
    pub store: Store,
    /// The Trunk-built frontend (`dist/`); `None` serves the API alone.
    pub static_dir: Option<PathBuf>,
    /// Runs launched from the browser, queued on the engine.
    pub runs: Arc<RunService>,
    /// The models runs may name (by name only: a request never names a path).
    pub models: ModelSource,
    /// Session cookies are `Secure` (served over HTTPS; also per request behind a proxy that says so).
    pub secure_cookies: bool,
    login_limits: Arc<login_limits::LoginLimits>,
    content_security: Arc<content_security::ContentSecurity>,
    /// One permit per open event stream (`GET /api/runs/{id}/stream`).
    event_streams: Arc<tokio::sync::Semaphore>,
    event_stream_limit: usize,
    /// One permit per `/v1/chat/completions` request being answered or waiting for the engine.
    chat_requests: Arc<tokio::sync::Semaphore>,
}

/// The most chat completions a server answers or queues at once; one more is refused (429).
pub const MAX_CHAT_REQUESTS: usize = 16;

/// The most event streams a server keeps open at once; one more is refused (429) until one closes.
pub const MAX_EVENT_STREAMS: usize = 64;

impl AppState {
    /// The state of a server whose runs use the models of `models`.
    pub fn new(survey: Arc<SurveyData>, store: Store, static_dir: Option<PathBuf>, models: ModelSource) -> Self {
        let runs = RunService::new(store.clone(), Arc::clone(&survey), models.clone());
        let content_security = Arc::new(content_security::ContentSecurity::new(static_dir.as_deref()));
        AppState {
            survey,
            store,
            static_dir,
            runs,
            models,
            secure_cookies: false,
            login_limits: Arc::default(),
            content_security,
            event_streams: Arc::new(tokio::sync::Semaphore::new(MAX_EVENT_STREAMS)),
            event_stream_limit: MAX_EVENT_STREAMS,
            chat_requests: Arc::new(tokio::sync::Semaphore::new(MAX_CHAT_REQUESTS)),
        }
    }

    /// At most `limit` open event streams instead of [`MAX_EVENT_STREAMS`].
    pub fn with_event_stream_limit(self, limit: usize) -> Self {
        AppState { event_streams: Arc::new(tokio::sync::Semaphore::new(limit)), event_stream_limit: limit, ..self }
    }

    /// Marks session cookies `Secure` (the server is reached over HTTPS).
    pub fn with_secure_cookies(self, secure_cookies: bool) -> Self {
        AppState { secure_cookies, ..self }
    }
}

const DEFAULT_PAGE_SIZE: u32 = 50;
const MAX_PAGE_SIZE: u32 = 500;

/// `limit` / `offset` of list endpoints.
#[derive(Debug, Clone, Copy, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Paging {
    pub limit: Option<u32>,
    pub offset: Option<u32>,
}

impl Paging {
    fn limit(self) -> u32 {
        self.limit.unwrap_or(DEFAULT_PAGE_SIZE).min(MAX_PAGE_SIZE)
    }

    fn offset(self) -> u32 {
        self.offset.unwrap_or(0)
    }

    /// The page of an in-memory list.
    fn slice<T: Clone>(self, items: &[T]) -> shared::api::Page<T> {
        let start = (self.offset() as usize).min(items.len());
        let end = start.saturating_add(self.limit() as usize).min(items.len());
        shared::api::Page { total: items.len() as u64, items: items[start..end].to_vec() }
    }
}

pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .route("/health", get(survey::health))
        .route("/openapi.json", get(openapi::openapi_json))
        .route("/cultures", get(survey::cultures))
        .route("/cultures/{country_code}", get(survey::culture))
        .route("/topics", get(survey::topics))
        .route("/topics/{topic}", get(survey::topic))
        .route("/questions", get(questions::list))
        .route("/questions/{question_id}", get(questions::detail))
        .route("/models", get(models::list))
        .route("/engines", get(engines::list))
        .route("/runs", get(runs::list).post(run_control::create))
        .route("/runs/{run_id}", get(runs::detail))
        .route("/runs/{run_id}/events", get(runs::events))
        .route("/runs/{run_id}/stream", get(run_control::stream))
        .route("/runs/{run_id}/cancel", post(run_control::cancel))
        .route("/runs/{run_id}/resume", post(run_control::resume))
        .route("/me", get(auth::me))
        .route("/login", post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/tokens", get(tokens::list).post(tokens::create))
        .route("/tokens/{token_id}", delete(tokens::revoke))
        .route("/users", get(users::list).post(users::add))
        .route("/users/{username}", axum::routing::put(users::change).delete(users::remove))
        .route("/users/{username}/revoke", post(users::revoke))
        .route("/questions/{question_id}/answers", get(questions::answers))
        .route("/instances", get(instances::list))
        .route("/instances/download", get(instances::download))
        .route("/instances/{instance_id}", get(instances::detail))
        .route("/instances/{instance_id}/reviews", post(reviews::create))
        .route("/reviews", get(reviews::list))
        .route("/reviews/{review_id}", delete(reviews::undo))
        .route("/runs/{run_id}/review-settings", get(reviews::settings).put(reviews::set_settings))
        .route("/runs/{run_id}/agreement", get(reviews::agreement_of))
        .route("/runs/{run_id}/export", get(export::export))
        .route("/runs/{run_id}/adapters", get(adapters::list))
        .route("/runs/{run_id}/adapters/{name}/download", get(adapters::download))
        .route("/runs/{run_id}/reviews/export", get(export::reviews))
        .route("/scores", get(scores::run_scores))
        .route("/scores/released", get(scores::released))
        .route("/persona-meter", get(persona_meter::persona_meter_of))
        .route("/relations", get(relations::relations))
        .route("/culture-map", get(culture_map::culture_map_of))
        .fallback(error::api_not_found)
        .layer(axum::middleware::from_fn(hygiene::same_origin))
        .layer(axum::middleware::map_response(error::json_errors))
        .layer(axum::extract::DefaultBodyLimit::max(hygiene::MAX_BODY_BYTES));
    // The OpenAI-compatible endpoint: the same error bodies, hygiene and limits as /api.
    let v1 = openai::routes()
        .fallback(error::api_not_found)
        .layer(axum::middleware::from_fn(hygiene::same_origin))
        .layer(axum::middleware::map_response(error::json_errors))
        .layer(axum::extract::DefaultBodyLimit::max(hygiene::MAX_BODY_BYTES));
    let router = Router::new().nest("/api", api).nest("/v1", v1);
    let router = match &state.static_dir {
        Some(dir) => router.fallback_service(ServeDir::new(dir).fallback(ServeFile::new(dir.join("index.html")))),
        None => router,
    };
    router
        .layer(axum::middleware::map_response_with_state(
            Arc::clone(&state.content_security),
            hygiene::security_headers,
        ))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
}
