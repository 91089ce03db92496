//! Our OpenAI-compatible endpoint, so that other tools can use the server's models and the
//! adapters its runs trained: `POST /v1/chat/completions` (streamed or not, with `logprobs` /
//! `top_logprobs` and `seed`) and `GET /v1/models`. Only for accounts (a personal API token as
//! `Authorization: Bearer`): never open to the public, not even in open mode.

mod chat;
mod models;
mod types;

use axum::routing::{get, post};
use axum::Router;

use super::AppState;

pub use types::{ChatCompletion, ChatCompletionRequest};

/// The `/v1` routes, nested by [`super::app`].
pub fn routes() -> Router<AppState> {
    Router::new().route("/chat/completions", post(chat::completions)).route("/models", get(models::list))
}
