use axum::extract::OriginalUri;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use shared::api::ErrorBody;

use crate::analysis::AnalysisError;
use crate::auth::AuthError;
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
    /// Too many attempts or too much queued work: try again later.
    #[error("{0}")]
    TooManyRequests(String),
    #[error("{0}")]
    Internal(String),
    #[error(transparent)]
    Store(StoreError),
    #[error(transparent)]
    Analysis(AnalysisError),
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

impl From<AnalysisError> for AppError {
    fn from(error: AnalysisError) -> Self {
        match error {
            AnalysisError::NotFound(what) => AppError::NotFound(what),
            AnalysisError::Store(error) => error.into(),
            other => AppError::Analysis(other),
        }
    }
}

impl From<AuthError> for AppError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Hash(_) => AppError::Internal(error.to_string()),
            AuthError::InvalidUsername | AuthError::PasswordTooShort | AuthError::InvalidTokenName => {
                AppError::BadRequest(error.to_string())
            }
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
            RunError::NotRunning { .. }
            | RunError::Completed(_)
            | RunError::Imported(_)
            | RunError::Active(_)
            | RunError::ExecutedElsewhere(_) => AppError::Conflict(error.to_string()),
            RunError::LockFile { .. } => AppError::Internal(error.to_string()),
            RunError::QueueFull(_) => AppError::TooManyRequests(error.to_string()),
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
            AppError::TooManyRequests(_) => (StatusCode::TOO_MANY_REQUESTS, "too_many_requests"),
            AppError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
            AppError::Store(_) | AppError::Analysis(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal"),
        };
        let message = if status.is_server_error() {
            // The details (a driver's text, a path) stay in the log, under an id the body gives.
            let request = next_error_id();
            tracing::error!(request, error = %error_chain(&self), "request failed");
            format!("internal error (request {request}); the server's log has the details")
        } else {
            error_chain(&self)
        };
        (status, Json(ErrorBody { error: kind.to_string(), message })).into_response()
    }
}

/// A number for each failed request, to find its details in the log.
fn next_error_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// Any error response without a JSON body (axum's rejections of a bad path, query string or
/// body, a too-large body) gets the JSON error body, with the rejection's own text.
pub async fn json_errors(response: Response) -> Response {
    let (status, headers) = (response.status(), response.headers());
    let is_json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("application/json"));
    let event_stream = headers
        .get(axum::http::header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/event-stream"));
    if !(status.is_client_error() || status.is_server_error()) || is_json || event_stream {
        return response;
    }
    const MAX_REJECTION_BYTES: usize = 4096;
    let text = match axum::body::to_bytes(response.into_body(), MAX_REJECTION_BYTES).await {
        Ok(bytes) => String::from_utf8_lossy(&bytes).trim().to_string(),
        Err(_) => String::new(),
    };
    let kind = match status {
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::PAYLOAD_TOO_LARGE => "too_large",
        status if status.is_server_error() => "internal",
        _ => "bad_request",
    };
    let message = if status.is_server_error() || text.is_empty() {
        status.canonical_reason().unwrap_or("error").to_string()
    } else {
        text
    };
    (status, Json(ErrorBody { error: kind.to_string(), message })).into_response()
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
