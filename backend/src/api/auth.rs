//! Who is asking: open local mode while no account exists, otherwise the user of the session
//! cookie or of a personal API token (`Authorization: Bearer csp_...`). `POST /api/login`,
//! `POST /api/logout`, `GET /api/me`.

use std::sync::LazyLock;

use axum::extract::{FromRequestParts, State};
use axum::http::header::{AUTHORIZATION, COOKIE, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{AppendHeaders, IntoResponse};
use axum::Json;
use shared::auth::{AccessMode, Login, Me, Role, User};

use super::login_limits::{login_keys, ClientAddress};
use super::{AppError, AppState};
use crate::auth::{hash_password, new_session_token, token_digest, verify_password};

pub const SESSION_COOKIE: &str = "culturespa_session";
const SESSION_DAYS: u32 = 30;
const SECONDS_PER_DAY: u32 = 24 * 60 * 60;
/// The longest reviewer name open mode accepts.
const MAX_REVIEWER_CHARS: usize = 64;
/// Verified when the username is unknown, so that a wrong name costs as long as a wrong password.
static UNKNOWN_USER_HASH: LazyLock<String> = LazyLock::new(|| hash_password(&new_session_token()).unwrap_or_default());

/// Who sends a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Viewer {
    /// No account exists: anyone may review under the name they give.
    Open,
    /// Accounts exist and the request has no valid session.
    Anonymous,
    User(User),
}

impl Viewer {
    pub fn me(&self) -> Me {
        match self {
            Viewer::Open => Me { mode: AccessMode::Open, user: None },
            Viewer::Anonymous => Me { mode: AccessMode::Accounts, user: None },
            Viewer::User(user) => Me { mode: AccessMode::Accounts, user: Some(user.clone()) },
        }
    }

    /// The name reviews are written under: the logged-in user's, or in open mode the `claimed` one.
    pub fn reviewer(&self, claimed: Option<&str>) -> Result<String, AppError> {
        match self {
            Viewer::User(user) => Ok(user.username.clone()),
            Viewer::Anonymous => Err(AppError::Unauthorized("log in to review".to_string())),
            Viewer::Open => {
                let name = claimed.map(str::trim).unwrap_or_default();
                if name.is_empty() || name.chars().count() > MAX_REVIEWER_CHARS || name.chars().any(char::is_control) {
                    return Err(AppError::BadRequest(format!(
                        "open mode: give your name as `reviewer` (1 to {MAX_REVIEWER_CHARS} characters)"
                    )));
                }
                Ok(name.to_string())
            }
        }
    }

    /// The reviewer whose queues a listing shows: the logged-in user unless another is named.
    pub fn queue_owner(&self, named: Option<&str>) -> Option<String> {
        let named = named.map(str::trim).filter(|name| !name.is_empty()).map(str::to_string);
        match self {
            Viewer::User(user) => named.or_else(|| Some(user.username.clone())),
            Viewer::Open | Viewer::Anonymous => named,
        }
    }

    /// Any logged-in user (and anyone in open mode): annotators and up read the reviews.
    pub fn require_annotator(&self) -> Result<(), AppError> {
        match self {
            Viewer::Open | Viewer::User(_) => Ok(()),
            Viewer::Anonymous => Err(AppError::Unauthorized("log in to see the reviews".to_string())),
        }
    }

    /// The logged-in user (sessions and API tokens are an account's; open mode has none).
    pub fn require_user(&self) -> Result<&User, AppError> {
        match self {
            Viewer::User(user) => Ok(user),
            Viewer::Open => Err(AppError::BadRequest(
                "no user account exists: the server runs in open local mode (add one with `culturespa users add`)"
                    .to_string(),
            )),
            Viewer::Anonymous => Err(AppError::Unauthorized("log in first".to_string())),
        }
    }

    /// Admins only, even in open mode: accounts are administered by an account (or the CLI).
    pub fn require_admin(&self) -> Result<&User, AppError> {
        let user = self.require_user()?;
        if user.role != Role::Admin {
            return Err(AppError::Forbidden(format!(
                "{} is an {}: this needs an admin",
                user.username,
                user.role.as_str()
            )));
        }
        Ok(user)
    }

    /// Collaborators and admins (and anyone in open mode) see agreement and change settings.
    pub fn require_collaborator(&self) -> Result<(), AppError> {
        match self {
            Viewer::Open => Ok(()),
            Viewer::Anonymous => Err(AppError::Unauthorized("log in as a collaborator".to_string())),
            Viewer::User(user) if user.role.is_collaborator() => Ok(()),
            Viewer::User(user) => Err(AppError::Forbidden(format!(
                "{} is an {}: this needs a collaborator or an admin",
                user.username,
                user.role.as_str()
            ))),
        }
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        if !state.store.has_users().await? {
            return Ok(Viewer::Open);
        }
        if let Some(token) = bearer_token(&parts.headers)? {
            return match state.store.api_token_user(&token_digest(token)).await? {
                Some(user) => Ok(Viewer::User(user)),
                None => Err(AppError::Unauthorized("the API token is not valid: revoked, or mistyped".to_string())),
            };
        }
        let Some(token) = session_token(&parts.headers) else {
            return Ok(Viewer::Anonymous);
        };
        Ok(state.store.session_user(&token_digest(&token)).await?.map_or(Viewer::Anonymous, Viewer::User))
    }
}

/// The token of an `Authorization: Bearer TOKEN` header, if the request has one.
fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, AppError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|token| !token.is_empty());
    match token {
        Some(token) => Ok(Some(token)),
        None => Err(AppError::Unauthorized("the Authorization header is not `Bearer TOKEN`".to_string())),
    }
}

fn session_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|cookies| cookies.split(';'))
        .filter_map(|cookie| cookie.trim().split_once('='))
        .find(|(name, _)| *name == SESSION_COOKIE)
        .map(|(_, token)| token.to_string())
        .filter(|token| !token.is_empty())
}

/// Whether the session cookie is `Secure`: the server was told it is served over HTTPS, or the
/// proxy in front of it says this request came so (`X-Forwarded-Proto: https`).
fn secure(state: &AppState, headers: &HeaderMap) -> bool {
    state.secure_cookies
        || headers
            .get("x-forwarded-proto")
            .and_then(|value| value.to_str().ok())
            .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"))
}

fn session_cookie(token: &str, max_age_seconds: u32, secure: bool) -> Result<HeaderValue, AppError> {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={token}; HttpOnly; SameSite=Lax; Path=/; Max-Age={max_age_seconds}{secure}"
    ))
    .map_err(|_| AppError::BadRequest("the session token is not a valid cookie value".to_string()))
}

#[utoipa::path(
    get,
    path = "/api/me",
    tag = "auth",
    responses(
        (status = 200, body = Me),
    )
)]
pub async fn me(viewer: Viewer) -> Json<Me> {
    Json(viewer.me())
}

#[utoipa::path(
    post,
    path = "/api/login",
    tag = "auth",
    request_body = Login,
    responses(
        (status = 200, description = "OK"),
        shared::api::RequestErrors,
    )
)]
pub async fn login(
    State(state): State<AppState>,
    ClientAddress(address): ClientAddress,
    headers: HeaderMap,
    Json(login): Json<Login>,
) -> Result<impl IntoResponse, AppError> {
    if !state.store.has_users().await? {
        return Err(AppError::BadRequest(
            "no user account exists: the server runs in open local mode (add one with `culturespa users add`)"
                .to_string(),
        ));
    }
    let keys = login_keys(&login.username, address);
    state.login_limits.check(&keys)?;
    let credentials = state.store.credentials(login.username.trim()).await?;
    let known_hash = credentials.as_ref().map(|credentials| credentials.password_hash.clone());
    let password = login.password;
    // Argon2 takes tens of milliseconds: off the async workers.
    let verified = tokio::task::spawn_blocking(move || {
        verify_password(&password, known_hash.as_deref().unwrap_or(UNKNOWN_USER_HASH.as_str()))
    })
    .await
    .map_err(|error| AppError::Internal(format!("verifying the password: {error}")))?;
    let Some(credentials) = credentials.filter(|_| verified) else {
        state.login_limits.failed(&keys);
        return Err(AppError::Unauthorized("wrong username or password".to_string()));
    };
    state.login_limits.succeeded(&keys);
    let token = new_session_token();
    state.store.create_session(credentials.user_id, &token_digest(&token), SESSION_DAYS).await?;
    let cookie = session_cookie(&token, SESSION_DAYS * SECONDS_PER_DAY, secure(&state, &headers))?;
    Ok((AppendHeaders([(SET_COOKIE, cookie)]), Json(Viewer::User(credentials.user).me())))
}

#[utoipa::path(
    post,
    path = "/api/logout",
    tag = "auth",
    responses(
        (status = 200, description = "OK"),
        shared::api::RequestErrors,
    )
)]
pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Result<impl IntoResponse, AppError> {
    if let Some(token) = session_token(&headers) {
        state.store.delete_session(&token_digest(&token)).await?;
    }
    let mode = if state.store.has_users().await? { AccessMode::Accounts } else { AccessMode::Open };
    Ok((AppendHeaders([(SET_COOKIE, session_cookie("", 0, secure(&state, &headers))?)]), Json(Me { mode, user: None })))
}
