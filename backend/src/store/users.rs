//! User accounts and their login sessions. Passwords arrive here already hashed, session tokens
//! as digests: the store never sees a secret.

use shared::auth::{Account, Revoked, Role, User};

use super::{now, numbered, timestamp};
use super::{Store, StoreError};

/// A stored account with what logging in checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user_id: i64,
    pub user: User,
    /// The Argon2 PHC string.
    pub password_hash: String,
}

pub(super) fn parse_role(text: &str) -> Result<Role, StoreError> {
    Role::parse(text).ok_or_else(|| StoreError::Invalid(format!("role '{text}'")))
}

impl Store {
    /// Adds an account; a taken username is a conflict.
    pub async fn add_user(&self, username: &str, password_hash: &str, role: Role) -> Result<User, StoreError> {
        let inserted = sqlx::query(numbered(
            "INSERT INTO users (username, password_hash, role, created_at)
             VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
        ))
        .bind(username)
        .bind(password_hash)
        .bind(role.as_str())
        .bind(now())
        .execute(&self.pool)
        .await?
        .rows_affected();
        if inserted == 0 {
            return Err(StoreError::Conflict(format!("user '{username}' exists")));
        }
        Ok(User { username: username.to_string(), role })
    }

    /// Whether any account exists: without one the server runs in open local mode.
    pub async fn has_users(&self) -> Result<bool, StoreError> {
        // Counted, not EXISTS: SQLite answers that with an integer, PostgreSQL with a boolean.
        let found: i64 = sqlx::query_scalar(numbered("SELECT COUNT(*) FROM (SELECT 1 FROM users LIMIT 1) AS one_user"))
            .fetch_one(&self.pool)
            .await?;
        Ok(found > 0)
    }

    /// All accounts, by name.
    pub async fn users(&self) -> Result<Vec<User>, StoreError> {
        let rows: Vec<(String, String)> =
            sqlx::query_as(numbered("SELECT username, role FROM users ORDER BY username"))
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter().map(|(username, role)| Ok(User { username, role: parse_role(&role)? })).collect()
    }

    pub async fn credentials(&self, username: &str) -> Result<Option<Credentials>, StoreError> {
        let row: Option<(i64, String, String, String)> =
            sqlx::query_as(numbered("SELECT user_id, username, role, password_hash FROM users WHERE username = ?"))
                .bind(username)
                .fetch_optional(&self.pool)
                .await?;
        row.map(|(user_id, username, role, password_hash)| {
            Ok(Credentials { user_id, user: User { username, role: parse_role(&role)? }, password_hash })
        })
        .transpose()
    }

    /// Starts a session for `user_id` that lasts `lifetime_days`; expired sessions go on the way.
    pub async fn create_session(&self, user_id: i64, token_sha256: &str, lifetime_days: u32) -> Result<(), StoreError> {
        let mut transaction = self.write_transaction().await?;
        sqlx::query(numbered("DELETE FROM sessions WHERE expires_at <= ?"))
            .bind(now())
            .execute(&mut *transaction)
            .await?;
        let expires = time::OffsetDateTime::now_utc() + time::Duration::days(i64::from(lifetime_days));
        sqlx::query(numbered(
            "INSERT INTO sessions (token_sha256, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)",
        ))
        .bind(token_sha256)
        .bind(user_id)
        .bind(now())
        .bind(timestamp(expires))
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// The user of an unexpired session.
    pub async fn session_user(&self, token_sha256: &str) -> Result<Option<User>, StoreError> {
        let row: Option<(String, String)> = sqlx::query_as(numbered(
            "SELECT u.username, u.role FROM sessions AS s JOIN users AS u ON u.user_id = s.user_id
             WHERE s.token_sha256 = ? AND s.expires_at > ?",
        ))
        .bind(token_sha256)
        .bind(now())
        .fetch_optional(&self.pool)
        .await?;
        row.map(|(username, role)| Ok(User { username, role: parse_role(&role)? })).transpose()
    }

    pub async fn delete_session(&self, token_sha256: &str) -> Result<(), StoreError> {
        sqlx::query(numbered("DELETE FROM sessions WHERE token_sha256 = ?"))
            .bind(token_sha256)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Removes an account, its sessions and its API tokens (its reviews stay, under its name).
    /// The last admin stays while other accounts exist: someone must be able to administer them.
    pub async fn remove_user(&self, username: &str) -> Result<(), StoreError> {
        let mut transaction = self.write_transaction().await?;
        keeps_an_admin(&mut transaction, username, None).await?;
        let removed = sqlx::query(numbered("DELETE FROM users WHERE username = ?"))
            .bind(username)
            .execute(&mut *transaction)
            .await?;
        if removed.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("user '{username}'")));
        }
        transaction.commit().await?;
        Ok(())
    }

    /// Every account with its creation time and how many sessions and API tokens it holds.
    pub async fn accounts(&self) -> Result<Vec<Account>, StoreError> {
        let rows: Vec<(String, String, String, i64, i64)> = sqlx::query_as(numbered(
            "SELECT u.username, u.role, u.created_at,
                    (SELECT COUNT(*) FROM sessions AS s
                     WHERE s.user_id = u.user_id AND s.expires_at > ?),
                    (SELECT COUNT(*) FROM api_tokens AS t WHERE t.user_id = u.user_id)
             FROM users AS u ORDER BY u.username",
        ))
        .bind(now())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(username, role, created_at, sessions, api_tokens)| {
                Ok(Account {
                    username,
                    role: parse_role(&role)?,
                    created_at,
                    sessions: u32::try_from(sessions).unwrap_or(u32::MAX),
                    api_tokens: u32::try_from(api_tokens).unwrap_or(u32::MAX),
                })
            })
            .collect()
    }

    /// Changes an account's role; its sessions and tokens carry the new role from their next
    /// request. The last admin is not demoted while other accounts exist.
    pub async fn set_role(&self, username: &str, role: Role) -> Result<User, StoreError> {
        self.change_account(username, Some(role), None).await
    }

    /// Replaces an account's password and ends its sessions.
    pub async fn set_password(&self, username: &str, password_hash: &str) -> Result<(), StoreError> {
        self.change_account(username, None, Some(password_hash)).await.map(drop)
    }

    /// A new role, a new password (which ends the account's sessions), or both, in one transaction.
    pub async fn change_account(
        &self,
        username: &str,
        role: Option<Role>,
        password_hash: Option<&str>,
    ) -> Result<User, StoreError> {
        let mut transaction = self.write_transaction().await?;
        let current: Option<String> = sqlx::query_scalar(numbered("SELECT role FROM users WHERE username = ?"))
            .bind(username)
            .fetch_optional(&mut *transaction)
            .await?;
        let current = current.ok_or_else(|| StoreError::NotFound(format!("user '{username}'")))?;
        let role = match role {
            Some(role) => {
                keeps_an_admin(&mut transaction, username, Some(role)).await?;
                sqlx::query(numbered("UPDATE users SET role = ? WHERE username = ?"))
                    .bind(role.as_str())
                    .bind(username)
                    .execute(&mut *transaction)
                    .await?;
                role
            }
            None => parse_role(&current)?,
        };
        if let Some(password_hash) = password_hash {
            sqlx::query(numbered("UPDATE users SET password_hash = ? WHERE username = ?"))
                .bind(password_hash)
                .bind(username)
                .execute(&mut *transaction)
                .await?;
            sqlx::query(numbered(
                "DELETE FROM sessions WHERE user_id = (SELECT user_id FROM users WHERE username = ?)",
            ))
            .bind(username)
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        Ok(User { username: username.to_string(), role })
    }

    /// Ends every session of an account and revokes its API tokens (one transaction).
    pub async fn revoke_credentials(&self, username: &str) -> Result<Revoked, StoreError> {
        let mut transaction = self.write_transaction().await?;
        let user_id = user_id_of(&mut transaction, username).await?;
        let sessions = sqlx::query(numbered("DELETE FROM sessions WHERE user_id = ?"))
            .bind(user_id)
            .execute(&mut *transaction)
            .await?;
        let api_tokens = sqlx::query(numbered("DELETE FROM api_tokens WHERE user_id = ?"))
            .bind(user_id)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(Revoked { sessions: sessions.rows_affected(), api_tokens: api_tokens.rows_affected() })
    }
}

/// The id of `username`'s account, read inside a transaction; a missing account is not found.
pub(super) async fn user_id_of(transaction: &mut sqlx::AnyConnection, username: &str) -> Result<i64, StoreError> {
    let user_id: Option<i64> = sqlx::query_scalar(numbered("SELECT user_id FROM users WHERE username = ?"))
        .bind(username)
        .fetch_optional(&mut *transaction)
        .await?;
    user_id.ok_or_else(|| StoreError::NotFound(format!("user '{username}'")))
}

/// Fails when `username` is the last admin, other accounts exist, and it would stop being an admin
/// (removed: `new_role` `None`, or given another role).
async fn keeps_an_admin(
    transaction: &mut sqlx::AnyConnection,
    username: &str,
    new_role: Option<Role>,
) -> Result<(), StoreError> {
    if new_role == Some(Role::Admin) {
        return Ok(());
    }
    let (is_admin, admins, accounts): (i64, i64, i64) = sqlx::query_as(numbered(
        "SELECT (SELECT COUNT(*) FROM users WHERE username = ? AND role = 'admin'),
                (SELECT COUNT(*) FROM users WHERE role = 'admin'),
                (SELECT COUNT(*) FROM users)",
    ))
    .bind(username)
    .fetch_one(&mut *transaction)
    .await?;
    if is_admin > 0 && admins == 1 && accounts > 1 {
        return Err(StoreError::Conflict(format!("{username} is the last admin: make another account admin first")));
    }
    Ok(())
}
