//! User accounts and their login sessions. Passwords arrive here already hashed, session tokens
//! as digests: the store never sees a secret.

use shared::auth::{Role, User};

use super::{Store, StoreError};

/// A stored account with what logging in checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub user_id: i64,
    pub user: User,
    /// The Argon2 PHC string.
    pub password_hash: String,
}

fn parse_role(text: &str) -> Result<Role, StoreError> {
    Role::parse(text).ok_or_else(|| StoreError::Invalid(format!("role '{text}'")))
}

impl Store {
    /// Adds an account; a taken username is a conflict.
    pub async fn add_user(&self, username: &str, password_hash: &str, role: Role) -> Result<User, StoreError> {
        let inserted = sqlx::query(
            "INSERT OR IGNORE INTO users (username, password_hash, role, created_at)
             VALUES (?, ?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))",
        )
        .bind(username)
        .bind(password_hash)
        .bind(role.as_str())
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
        Ok(sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM users)").fetch_one(&self.pool).await?)
    }

    /// All accounts, by name.
    pub async fn users(&self) -> Result<Vec<User>, StoreError> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT username, role FROM users ORDER BY username").fetch_all(&self.pool).await?;
        rows.into_iter().map(|(username, role)| Ok(User { username, role: parse_role(&role)? })).collect()
    }

    pub async fn credentials(&self, username: &str) -> Result<Option<Credentials>, StoreError> {
        let row: Option<(i64, String, String, String)> =
            sqlx::query_as("SELECT user_id, username, role, password_hash FROM users WHERE username = ?")
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
        let mut transaction = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query("DELETE FROM sessions WHERE expires_at <= strftime('%Y-%m-%dT%H:%M:%fZ', 'now')")
            .execute(&mut *transaction)
            .await?;
        sqlx::query(
            "INSERT INTO sessions (token_sha256, user_id, created_at, expires_at)
             VALUES (?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now'), strftime('%Y-%m-%dT%H:%M:%fZ', 'now', ?))",
        )
        .bind(token_sha256)
        .bind(user_id)
        .bind(format!("+{lifetime_days} days"))
        .execute(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// The user of an unexpired session.
    pub async fn session_user(&self, token_sha256: &str) -> Result<Option<User>, StoreError> {
        let row: Option<(String, String)> = sqlx::query_as(
            "SELECT u.username, u.role FROM sessions AS s JOIN users AS u ON u.user_id = s.user_id
             WHERE s.token_sha256 = ? AND s.expires_at > strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        )
        .bind(token_sha256)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|(username, role)| Ok(User { username, role: parse_role(&role)? })).transpose()
    }

    pub async fn delete_session(&self, token_sha256: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM sessions WHERE token_sha256 = ?").bind(token_sha256).execute(&self.pool).await?;
        Ok(())
    }

    /// Removes an account and its sessions (its reviews stay, under its name).
    pub async fn remove_user(&self, username: &str) -> Result<(), StoreError> {
        let removed = sqlx::query("DELETE FROM users WHERE username = ?").bind(username).execute(&self.pool).await?;
        if removed.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("user '{username}'")));
        }
        Ok(())
    }

    /// Changes an account's role; its sessions carry the new role from their next request.
    pub async fn set_role(&self, username: &str, role: Role) -> Result<User, StoreError> {
        let changed = sqlx::query("UPDATE users SET role = ? WHERE username = ?")
            .bind(role.as_str())
            .bind(username)
            .execute(&self.pool)
            .await?;
        if changed.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("user '{username}'")));
        }
        Ok(User { username: username.to_string(), role })
    }

    /// Replaces an account's password and ends its sessions (one transaction).
    pub async fn set_password(&self, username: &str, password_hash: &str) -> Result<(), StoreError> {
        let mut transaction = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        let changed = sqlx::query("UPDATE users SET password_hash = ? WHERE username = ?")
            .bind(password_hash)
            .bind(username)
            .execute(&mut *transaction)
            .await?;
        if changed.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("user '{username}'")));
        }
        sqlx::query("DELETE FROM sessions WHERE user_id = (SELECT user_id FROM users WHERE username = ?)")
            .bind(username)
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(())
    }

    /// Ends every session of an account; returns how many there were.
    pub async fn revoke_sessions(&self, username: &str) -> Result<u64, StoreError> {
        if self.credentials(username).await?.is_none() {
            return Err(StoreError::NotFound(format!("user '{username}'")));
        }
        let revoked =
            sqlx::query("DELETE FROM sessions WHERE user_id = (SELECT user_id FROM users WHERE username = ?)")
                .bind(username)
                .execute(&self.pool)
                .await?;
        Ok(revoked.rows_affected())
    }
}
