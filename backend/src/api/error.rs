use axum::extract::OriginalUri;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use shared::api::ErrorBody;

use crate::analysis::AnalysisError;
use crate::runs::RunError;
use crate::store::StoreError;

/// The one error type of the server; every handler returns it and it renders as a JSON body.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    /// Needs a logged-in user.
    #[error("{0}")]
    Unauthorized(String),
    /// Logged in, but not allowed.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Analysis(#[from] AnalysisError),
}

impl From<StoreError> for AppError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(what) => AppError::NotFound(what),
            StoreError::Conflict(message) => AppError::Conflict(message),
            StoreError::Forbidden(message) => AppError::Forbidden(message),
            other => AppError::Store(other),
        }
    }
}

impl From<RunError> for AppError {
    fn from(error: RunError) -> Self {
        match error {
            RunError::Invalid(_)
            | RunError::InvalidFile { .. }
            | RunError::RunFile(_)
            | RunError::ModelNotInstalled(_) => AppError::BadRequest(error.to_string()),
            RunError::NotRunning { .. } | RunError::Completed(_) | RunError::Imported(_) | RunError::Active(_) => {
                AppError::Conflict(error.to_string())
            }
            RunError::Store(error) => error.into(),
            RunError::Runner(error) => AppError::Internal(error.to_string()),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, kind) = match &self {
            AppError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            AppError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            AppError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, "unauthorized"),
            AppError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            AppError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            AppError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            AppError::Store(_) | AppError::Analysis(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        let message = error_chain(&self);
        if status.is_server_error() {
            tracing::error!(error = %message, "request failed");
        }
        (status, Json(ErrorBody { error: kind.to_string(), message })).into_response()
    }
}

pub async fn api_not_found(OriginalUri(uri): OriginalUri) -> AppError {
    AppError::NotFound(format!("API route {}", uri.path()))
}

/// The error and its sources, `outer: inner: ...`.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut message = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}
