//! Personal API tokens of the logged-in user: `GET /api/tokens`, `POST /api/tokens` (the secret is
//! in that answer only), `DELETE /api/tokens/{token_id}`.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use shared::auth::{ApiToken, CreatedApiToken, NewApiToken};

use super::auth::Viewer;
use super::{AppError, AppState};
use crate::auth::{new_api_token, token_digest, validate_token_name};

#[utoipa::path(
    get,
    path = "/api/tokens",
    tag = "tokens",
    responses(
        (status = 200, body = Vec<ApiToken>),
        shared::api::RequestErrors,
    )
)]
pub async fn list(State(state): State<AppState>, viewer: Viewer) -> Result<Json<Vec<ApiToken>>, AppError> {
    let user = viewer.require_user()?;
    Ok(Json(state.store.api_tokens(&user.username).await?))
}

#[utoipa::path(
    post,
    path = "/api/tokens",
    tag = "tokens",
    request_body = NewApiToken,
    responses(
        (status = 201, body = CreatedApiToken),
        shared::api::RequestErrors,
    )
)]
pub async fn create(
    State(state): State<AppState>,
    viewer: Viewer,
    Json(new_token): Json<NewApiToken>,
) -> Result<(StatusCode, Json<CreatedApiToken>), AppError> {
    let user = viewer.require_user()?;
    let name = validate_token_name(&new_token.name)?;
    let secret = new_api_token();
    let token = state.store.create_api_token(&user.username, name, &token_digest(&secret)).await?;
    Ok((StatusCode::CREATED, Json(CreatedApiToken { token, secret })))
}

#[utoipa::path(
    delete,
    path = "/api/tokens/{token_id}",
    tag = "tokens",
    params(("token_id" = i64, Path)),
    responses(
        (status = 204, description = "done"),
        shared::api::RequestErrors,
    )
)]
pub async fn revoke(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(token_id): Path<i64>,
) -> Result<StatusCode, AppError> {
    let user = viewer.require_user()?;
    state.store.revoke_api_token(&user.username, token_id).await?;
    Ok(StatusCode::NO_CONTENT)
}
