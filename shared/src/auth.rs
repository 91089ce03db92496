//! Users, roles and sessions as the API shows them.

use serde::{Deserialize, Serialize};

/// What a user may do. Every role may review; collaborators also see agreement and set how many
/// reviewers a run needs; admins may do everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
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
#[serde(rename_all = "snake_case")]
pub enum AccessMode {
    /// No user account exists: one machine, anyone may review under a name they give.
    Open,
    /// Accounts exist: writing needs a logged-in user.
    Accounts,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub username: String,
    pub role: Role,
}

/// `GET /api/me`: the access mode and who is logged in (never anyone in open mode).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Me {
    pub mode: AccessMode,
    pub user: Option<User>,
}

/// `POST /api/login`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Login {
    pub username: String,
    pub password: String,
}
