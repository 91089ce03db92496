//! Users, roles and sessions as the API shows them.

use serde::{Deserialize, Serialize};

/// What a user may do. Every role may review; collaborators also see agreement and set how many
/// reviewers a run needs; admins may do everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Annotator,
    Collaborator,
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Annotator, Role::Collaborator, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Annotator => "annotator",
            Role::Collaborator => "collaborator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(text: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == text)
    }

    /// Whether the role may see agreement and change review settings.
    pub fn is_collaborator(self) -> bool {
        self >= Role::Collaborator
    }
}

/// How the server decides who may write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AccessMode {
    /// No user account exists: one machine, anyone may review under a name they give.
    Open,
    /// Accounts exist: writing needs a logged-in user.
    Accounts,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    pub username: String,
    pub role: Role,
}

/// `GET /api/me`: the access mode and who is logged in (never anyone in open mode).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Me {
    pub mode: AccessMode,
    pub user: Option<User>,
}

/// `POST /api/login`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Login {
    pub username: String,
    pub password: String,
}

/// A personal API token as its owner sees it: never the secret, which is shown once at creation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ApiToken {
    pub token_id: i64,
    pub name: String,
    pub created_at: String,
    /// When a request last used it (to the minute); `None` if never.
    pub last_used_at: Option<String>,
}

/// `POST /api/tokens`: a name for the new token (what it is for: "table script", "laptop").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewApiToken {
    pub name: String,
}

/// The answer to `POST /api/tokens`: the token and its secret, which the server does not keep
/// (send it as `Authorization: Bearer SECRET`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedApiToken {
    pub token: ApiToken,
    pub secret: String,
}

/// `POST /api/users` (admins): a new account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct NewUser {
    pub username: String,
    pub password: String,
    pub role: Role,
}

/// `PUT /api/users/{username}` (admins): change the role, set a new password, or both.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct UserChange {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// A new password; the account's sessions end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// An account as the admin page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Account {
    pub username: String,
    pub role: Role,
    pub created_at: String,
    /// Unexpired login sessions.
    pub sessions: u32,
    pub api_tokens: u32,
}

/// `POST /api/users/{username}/revoke`: what ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Revoked {
    pub sessions: u64,
    pub api_tokens: u64,
}
