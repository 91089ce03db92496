//! The models runs can name.

use axum::extract::State;
use axum::Json;
use shared::ModelListing;

use super::AppState;

/// `GET /api/models`: the catalogue (installed or not) and the other models of the server's
/// models folder. A run started from the browser names one of the installed ones.
#[utoipa::path(
    get,
    path = "/api/models",
    tag = "models",
    responses(
        (status = 200, body = Vec<ModelListing>),
    )
)]
pub async fn list(State(state): State<AppState>) -> Json<Vec<ModelListing>> {
    Json(state.models.registry.list())
}
