//! Personal API tokens: named, per account, stored as digests. A request that uses one marks it
//! used (at most one write a minute per token).

use shared::auth::{ApiToken, User};

use super::users::{parse_role, user_id_of};
use super::{now, now_to_the_minute, numbered};
use super::{Store, StoreError};

/// The most tokens one account may hold.
pub const MAX_API_TOKENS_PER_USER: i64 = 20;

type TokenRow = (i64, String, String, Option<String>);

fn token((token_id, name, created_at, last_used_at): TokenRow) -> ApiToken {
    ApiToken { token_id, name, created_at, last_used_at }
}

impl Store {
    /// Adds a token named `name` (checked by `auth::validate_token_name`) to `username`'s account;
    /// a name the account already uses is a conflict, as is a 21st token.
    pub async fn create_api_token(
        &self,
        username: &str,
        name: &str,
        token_sha256: &str,
    ) -> Result<ApiToken, StoreError> {
        let mut transaction = self.write_transaction().await?;
        let user_id = user_id_of(&mut transaction, username).await?;
        let held: i64 = sqlx::query_scalar(numbered("SELECT COUNT(*) FROM api_tokens WHERE user_id = ?"))
            .bind(user_id)
            .fetch_one(&mut *transaction)
            .await?;
        if held >= MAX_API_TOKENS_PER_USER {
            return Err(StoreError::Conflict(format!(
                "{username} holds {held} API tokens, the most an account may: revoke one first"
            )));
        }
        let row: Option<TokenRow> = sqlx::query_as(numbered(
            "INSERT INTO api_tokens (user_id, name, token_sha256, created_at)
             VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING
             RETURNING token_id, name, created_at, last_used_at",
        ))
        .bind(user_id)
        .bind(name)
        .bind(token_sha256)
        .bind(now())
        .fetch_optional(&mut *transaction)
        .await?;
        let row = row.ok_or_else(|| StoreError::Conflict(format!("{username} already has a token named '{name}'")))?;
        transaction.commit().await?;
        Ok(token(row))
    }

    /// `username`'s tokens, oldest first.
    pub async fn api_tokens(&self, username: &str) -> Result<Vec<ApiToken>, StoreError> {
        let rows: Vec<TokenRow> = sqlx::query_as(numbered(
            "SELECT t.token_id, t.name, t.created_at, t.last_used_at
             FROM api_tokens AS t JOIN users AS u ON u.user_id = t.user_id
             WHERE u.username = ? ORDER BY t.token_id",
        ))
        .bind(username)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.into_iter().map(token).collect())
    }

    /// Revokes one of `username`'s tokens; someone else's token is not found.
    pub async fn revoke_api_token(&self, username: &str, token_id: i64) -> Result<(), StoreError> {
        let removed = sqlx::query(numbered(
            "DELETE FROM api_tokens WHERE token_id = ? AND user_id = (SELECT user_id FROM users WHERE username = ?)",
        ))
        .bind(token_id)
        .bind(username)
        .execute(&self.pool)
        .await?;
        if removed.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("API token {token_id} of {username}")));
        }
        Ok(())
    }

    /// The user a token belongs to, marking it used (to the minute: at most one write a minute).
    pub async fn api_token_user(&self, token_sha256: &str) -> Result<Option<User>, StoreError> {
        let row: Option<(String, String)> = sqlx::query_as(numbered(
            "SELECT u.username, u.role FROM api_tokens AS t JOIN users AS u ON u.user_id = t.user_id
             WHERE t.token_sha256 = ?",
        ))
        .bind(token_sha256)
        .fetch_optional(&self.pool)
        .await?;
        let Some((username, role)) = row else {
            return Ok(None);
        };
        sqlx::query(numbered(
            "UPDATE api_tokens SET last_used_at = ?
             WHERE token_sha256 = ? AND (last_used_at IS NULL OR last_used_at <> ?)",
        ))
        .bind(now_to_the_minute())
        .bind(token_sha256)
        .bind(now_to_the_minute())
        .execute(&self.pool)
        .await?;
        Ok(Some(User { username, role: parse_role(&role)? }))
    }
}
