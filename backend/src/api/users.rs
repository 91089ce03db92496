//! Accounts, for admins: `GET /api/users`, `POST /api/users`, `PUT /api/users/{username}` (role,
//! password), `DELETE /api/users/{username}`, `POST /api/users/{username}/revoke` (sessions and
//! API tokens). The same as `culturespa users ...` on the server's machine.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use shared::auth::{Account, NewUser, Revoked, User, UserChange};

use super::auth::Viewer;
use super::{AppError, AppState};
use crate::auth::{hash_password, validate_username};

#[utoipa::path(
    get,
    path = "/api/users",
    tag = "users",
    responses(
        (status = 200, body = Vec<Account>),
        shared::api::RequestErrors,
    )
)]
pub async fn list(State(state): State<AppState>, viewer: Viewer) -> Result<Json<Vec<Account>>, AppError> {
    viewer.require_admin()?;
    Ok(Json(state.store.accounts().await?))
}

#[utoipa::path(
    post,
    path = "/api/users",
    tag = "users",
    request_body = NewUser,
    responses(
        (status = 201, body = User),
        shared::api::RequestErrors,
    )
)]
pub async fn add(
    State(state): State<AppState>,
    viewer: Viewer,
    Json(new_user): Json<NewUser>,
) -> Result<(StatusCode, Json<User>), AppError> {
    viewer.require_admin()?;
    validate_username(&new_user.username)?;
    let password_hash = hash(new_user.password).await?;
    Ok((StatusCode::CREATED, Json(state.store.add_user(&new_user.username, &password_hash, new_user.role).await?)))
}

#[utoipa::path(
    put,
    path = "/api/users/{username}",
    tag = "users",
    params(("username" = String, Path)),
    request_body = UserChange,
    responses(
        (status = 200, body = User),
        shared::api::RequestErrors,
    )
)]
pub async fn change(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(username): Path<String>,
    Json(change): Json<UserChange>,
) -> Result<Json<User>, AppError> {
    viewer.require_admin()?;
    if change.role.is_none() && change.password.is_none() {
        return Err(AppError::BadRequest("give a new `role`, a new `password`, or both".to_string()));
    }
    // Hash first: a password too short changes nothing.
    let password_hash = match change.password {
        Some(password) => Some(hash(password).await?),
        None => None,
    };
    Ok(Json(state.store.change_account(&username, change.role, password_hash.as_deref()).await?))
}

#[utoipa::path(
    delete,
    path = "/api/users/{username}",
    tag = "users",
    params(("username" = String, Path)),
    responses(
        (status = 204, description = "done"),
        shared::api::RequestErrors,
    )
)]
pub async fn remove(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(username): Path<String>,
) -> Result<StatusCode, AppError> {
    viewer.require_admin()?;
    state.store.remove_user(&username).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[utoipa::path(
    post,
    path = "/api/users/{username}/revoke",
    tag = "users",
    params(("username" = String, Path)),
    responses(
        (status = 200, body = Revoked),
        shared::api::RequestErrors,
    )
)]
pub async fn revoke(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(username): Path<String>,
) -> Result<Json<Revoked>, AppError> {
    viewer.require_admin()?;
    Ok(Json(state.store.revoke_credentials(&username).await?))
}

/// Argon2 off the async workers.
async fn hash(password: String) -> Result<String, AppError> {
    tokio::task::spawn_blocking(move || hash_password(&password))
        .await
        .map_err(|error| AppError::Internal(format!("hashing the password: {error}")))?
        .map_err(AppError::from)
}
