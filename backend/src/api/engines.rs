//! The remote engines this server offers: a run from the browser picks one of them by name and
//! never names an address itself.

use axum::extract::State;
use axum::Json;
use shared::RemoteEngineListing;

use super::auth::Viewer;
use super::{AppError, AppState};

/// `GET /api/engines`: the remote engines of `serve --engines FILE`, for those who launch runs
/// (collaborators; anyone in open local mode): the addresses are the team's.
#[utoipa::path(
    get,
    path = "/api/engines",
    tag = "engines",
    responses(
        (status = 200, body = Vec<RemoteEngineListing>),
        shared::api::RequestErrors,
    )
)]
pub async fn list(State(state): State<AppState>, viewer: Viewer) -> Result<Json<Vec<RemoteEngineListing>>, AppError> {
    viewer.require_collaborator()?;
    Ok(Json(state.models.remote_engines.clone()))
}
