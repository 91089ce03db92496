use serde::{Deserialize, Serialize};

/// Where a model comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ModelKind {
    /// Named by the shipped catalogue (`scripts/fetch-model.sh NAME` installs it).
    Catalogue,
    /// Another GGUF file or Hugging Face folder found in the models folder.
    Local,
}

/// A model runs can name: `GET /api/models`, `culturespa models`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ModelListing {
    pub name: String,
    pub title: String,
    pub kind: ModelKind,
    pub installed: bool,
    pub bytes: Option<u64>,
    pub licence: Option<String>,
    pub licence_source: Option<String>,
    pub upstream: Option<String>,
    pub architecture: Option<String>,
    pub notes: Option<String>,
    /// The model of runs that name none.
    pub default: bool,
}
