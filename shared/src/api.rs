//! Request and response bodies of the JSON API under `/api`.

use serde::{Deserialize, Serialize};

use crate::Question;

/// Every list endpoint answers `{"total": N, "items": [...]}`; `limit`/`offset` page through it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Page<T> {
    pub total: u64,
    pub items: Vec<T>,
}

/// The JSON body of every API error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// A short machine-readable kind: `not_found`, `bad_request`, `internal`.
    pub error: String,
    /// What went wrong, for a person.
    pub message: String,
}

/// The error response every endpoint of the API description lists: `4XX` with an [`ErrorBody`]
/// (`responses(..., shared::api::RequestErrors)` in a handler's annotation).
#[cfg(feature = "openapi")]
#[derive(utoipa::IntoResponses)]
#[response(status = "4XX", description = "what is wrong with the request, or who may do it")]
pub struct RequestErrors(pub ErrorBody);

/// Query of `GET /api/questions`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QuestionQuery {
    /// Topic index 0–12, or the topic's name.
    pub topic: Option<String>,
    pub limit: Option<u32>,
    pub offset: Option<u32>,
}

/// `GET /api/questions/{id}` with its human answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QuestionDetail {
    pub question: Question,
    pub human: Vec<crate::HumanDistribution>,
}

/// `GET /api/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Health {
    pub status: String,
    pub version: String,
}
