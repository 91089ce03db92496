//! The JSON API under `/api`, and the built frontend from the same origin.

mod error;
mod questions;
mod runs;
mod survey;

use std::path::PathBuf;
use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::trace::TraceLayer;

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
}

const DEFAULT_PAGE_SIZE: u32 = 50;
const MAX_PAGE_SIZE: u32 = 500;

/// `limit` / `offset` of list endpoints.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
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
        .route("/cultures", get(survey::cultures))
        .route("/cultures/{country_code}", get(survey::culture))
        .route("/topics", get(survey::topics))
        .route("/topics/{topic}", get(survey::topic))
        .route("/questions", get(questions::list))
        .route("/questions/{question_id}", get(questions::detail))
        .route("/runs", get(runs::list))
        .route("/runs/{run_id}", get(runs::detail))
        .route("/runs/{run_id}/events", get(runs::events))
        .route("/instances", get(runs::instances))
        .fallback(error::api_not_found);
    let router = Router::new().nest("/api", api);
    let router = match &state.static_dir {
        Some(dir) => router.fallback_service(ServeDir::new(dir).fallback(ServeFile::new(dir.join("index.html")))),
        None => router,
    };
    router.layer(TraceLayer::new_for_http()).with_state(state)
}
