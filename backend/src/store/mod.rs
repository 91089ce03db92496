//! The embedded store: SQLite through sqlx, WAL mode, migrations from `backend/migrations`.
//! Writes that belong together run in one transaction.

mod answer_codec;
mod answers;
mod api_tokens;
mod calibration;
mod generation;
mod instance_filter;
mod instances;
mod pipeline;
mod questions;
mod review_records;
mod reviews;
mod run_answers;
mod runs;
mod users;

use std::path::Path;
use std::str::FromStr;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous};

pub use answers::NewAnswer;
pub use api_tokens::MAX_API_TOKENS_PER_USER;
pub use generation::{generated_set_name, is_generated_set_name, GenerationAttempt};
pub use instance_filter::{InstanceFilter, ReviewQueue};
pub use pipeline::AnswerKey;
pub use reviews::{LabelledReview, ReviewFilter};
pub use users::Credentials;

/// The file name of the database inside the data directory.
pub const DATABASE_FILE: &str = "culturespa.db";
/// The question set that holds the WVS questions.
pub const WVS_SET: &str = "wvs";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database")]
    Database(#[from] sqlx::Error),
    #[error("migrating the database")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored JSON in {table}.{column} does not parse")]
    Json { table: &'static str, column: &'static str, source: serde_json::Error },
    #[error("{0} not found")]
    NotFound(String),
    /// The write would clash with what is stored (a taken name, an out-of-order undo).
    #[error("{0}")]
    Conflict(String),
    /// The write belongs to someone else.
    #[error("{0}")]
    Forbidden(String),
    /// A stored value this version cannot read.
    #[error("stored {0} is not valid")]
    Invalid(String),
}

/// A handle on the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: SqlitePool,
    /// The data directory of an on-disk store: run outputs (SFT files) go under it.
    data_dir: Option<std::path::PathBuf>,
}

impl Store {
    /// Opens (creating it on first use) the database in `data_dir` and applies the migrations.
    pub async fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|error| {
            StoreError::Database(sqlx::Error::Configuration(
                format!("cannot create the data directory {}: {error}", data_dir.display()).into(),
            ))
        })?;
        let options = SqliteConnectOptions::new()
            .filename(data_dir.join(DATABASE_FILE))
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(10));
        let pool = SqlitePoolOptions::new().max_connections(8).connect_with(options).await?;
        Self::migrated(pool, Some(data_dir.to_path_buf())).await
    }

    /// A private in-memory database (tests, one-off commands).
    pub async fn in_memory() -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str("sqlite::memory:")?.foreign_keys(true);
        // One connection: every connection to `:memory:` is a database of its own.
        let pool = SqlitePoolOptions::new().max_connections(1).connect_with(options).await?;
        Self::migrated(pool, None).await
    }

    async fn migrated(pool: SqlitePool, data_dir: Option<std::path::PathBuf>) -> Result<Self, StoreError> {
        sqlx::migrate!("./migrations").run(&pool).await?;
        Ok(Store { pool, data_dir })
    }

    /// Where the store's files live; `None` for an in-memory store.
    pub fn data_dir(&self) -> Option<&Path> {
        self.data_dir.as_deref()
    }

    /// A path as runs' logs and the API show it: relative to the data folder when inside it
    /// (`runs/7/adapters/joint`), otherwise its last component, so that nothing public tells
    /// where the server keeps its files.
    pub fn shown_path(&self, path: &Path) -> String {
        let inside = self.data_dir().and_then(|data_dir| {
            path.strip_prefix(data_dir).ok().map(Path::to_path_buf).or_else(|| {
                let data_dir = data_dir.canonicalize().ok()?;
                path.canonicalize().ok()?.strip_prefix(data_dir).ok().map(Path::to_path_buf)
            })
        });
        match inside {
            Some(relative) => relative.display().to_string(),
            None => path.file_name().map_or_else(String::new, |name| name.to_string_lossy().into_owned()),
        }
    }

    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Starts a transaction: writes that belong together go through one and commit at once. It
    /// takes SQLite's write lock at its start (`BEGIN IMMEDIATE`): a deferred transaction that reads
    /// before it writes fails at once with "database is locked" when another writer got there
    /// first, while one that begins immediately waits for the lock (the busy timeout).
    pub async fn begin(&self) -> Result<StoreTransaction, StoreError> {
        Ok(StoreTransaction { transaction: self.pool.begin_with("BEGIN IMMEDIATE").await? })
    }
}

/// Writes in one transaction; nothing of them is visible or kept unless [`Self::commit`] runs.
pub struct StoreTransaction {
    transaction: sqlx::Transaction<'static, sqlx::Sqlite>,
}

impl StoreTransaction {
    pub async fn commit(self) -> Result<(), StoreError> {
        self.transaction.commit().await?;
        Ok(())
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    // Serialising our own plain data types cannot fail (no maps with non-string keys).
    serde_json::to_string(value).unwrap_or_else(|error| unreachable!("serialising stored JSON: {error}"))
}

fn from_json<T: serde::de::DeserializeOwned>(
    table: &'static str,
    column: &'static str,
    text: &str,
) -> Result<T, StoreError> {
    serde_json::from_str(text).map_err(|source| StoreError::Json { table, column, source })
}
