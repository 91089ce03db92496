//! The store: the embedded SQLite (WAL mode, the default) or PostgreSQL (`--database-url
//! postgres://…`), through sqlx's `Any` driver with one SQL text for both (numbered parameters,
//! `ON CONFLICT`, timestamps written by us), migrations from `backend/migrations` and their
//! PostgreSQL twins in `backend/migrations-postgres`. Writes that belong together run in one
//! transaction; write transactions take the database's write lock at their start.

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
use std::sync::OnceLock;

use sqlx::any::AnyPoolOptions;
use sqlx::AnyPool;
use sqlx::{AssertSqlSafe, Executor};

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

/// Which database a store is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The database every [`Store::open`] of this process uses instead of the data folder's SQLite
/// file (`--database-url`); set once, at start.
static DATABASE_URL: OnceLock<String> = OnceLock::new();

/// Makes every store this process opens live on `url` (`postgres://…` or `sqlite://…`); the data
/// folder still holds run outputs. Returns false when one was set already.
pub fn use_database_url(url: String) -> bool {
    DATABASE_URL.set(url).is_ok()
}

/// A handle on the database; cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// The data directory of an on-disk store: run outputs (SFT files) go under it.
    data_dir: Option<std::path::PathBuf>,
}

impl Store {
    /// Opens (creating it on first use) the database in `data_dir` and applies the migrations;
    /// with [`use_database_url`], that database instead (run outputs still go under `data_dir`).
    pub async fn open(data_dir: &Path) -> Result<Self, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|error| {
            StoreError::Database(sqlx::Error::Configuration(
                format!("cannot create the data directory {}: {error}", data_dir.display()).into(),
            ))
        })?;
        let url = match DATABASE_URL.get() {
            Some(url) => url.clone(),
            None => format!("sqlite://{}?mode=rwc", data_dir.join(DATABASE_FILE).display()),
        };
        Self::connect(&url, Some(data_dir.to_path_buf())).await
    }

    /// A private in-memory SQLite database (tests, one-off commands).
    pub async fn in_memory() -> Result<Self, StoreError> {
        // One connection: every connection to `:memory:` is a database of its own.
        Self::connect_with(Backend::Sqlite, "sqlite::memory:", 1, None).await
    }

    /// The store on a database named by URL: `postgres://user@host/db` or `sqlite://path`.
    pub async fn connect(url: &str, data_dir: Option<std::path::PathBuf>) -> Result<Self, StoreError> {
        let backend = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Backend::Postgres
        } else if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            return Err(StoreError::Database(sqlx::Error::Configuration(
                "the database URL must start with postgres:// or sqlite://".into(),
            )));
        };
        Self::connect_with(backend, url, 8, data_dir).await
    }

    async fn connect_with(
        backend: Backend,
        url: &str,
        max_connections: u32,
        data_dir: Option<std::path::PathBuf>,
    ) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .after_connect(move |connection, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        connection
                            .execute(
                                "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000; \
                                 PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;",
                            )
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(url)
            .await?;
        match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations").run(&pool).await?,
            Backend::Postgres => sqlx::migrate!("./migrations-postgres").run(&pool).await?,
        }
        Ok(Store { pool, backend, data_dir })
    }

    pub fn backend(&self) -> Backend {
        self.backend
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

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Starts a transaction: writes that belong together go through one and commit at once.
    pub async fn begin(&self) -> Result<StoreTransaction, StoreError> {
        Ok(StoreTransaction { transaction: self.write_transaction().await? })
    }

    /// A transaction that holds the database's write lock from its start, so that what it reads
    /// before it writes stays true until it commits (one writer at a time, as SQLite has it).
    /// SQLite: `BEGIN IMMEDIATE` (a deferred transaction that reads first would fail with
    /// "database is locked" when another writer got there first; this one waits, up to the busy
    /// timeout). PostgreSQL: a transaction-scoped advisory lock taken first.
    async fn write_transaction(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        match self.backend {
            Backend::Sqlite => Ok(self.pool.begin_with("BEGIN IMMEDIATE").await?),
            Backend::Postgres => {
                let mut transaction = self.pool.begin().await?;
                sqlx::query(numbered(format!("SELECT pg_advisory_xact_lock({WRITE_LOCK_KEY})")))
                    .execute(&mut *transaction)
                    .await?;
                Ok(transaction)
            }
        }
    }
}

/// The advisory lock of the store's writers on PostgreSQL (any number no one else uses).
const WRITE_LOCK_KEY: i64 = 0x4355_4c54_5552_4553; // "CULTURES"

/// Writes in one transaction; nothing of them is visible or kept unless [`Self::commit`] runs.
pub struct StoreTransaction {
    transaction: sqlx::Transaction<'static, sqlx::Any>,
}

impl StoreTransaction {
    pub async fn commit(self) -> Result<(), StoreError> {
        self.transaction.commit().await?;
        Ok(())
    }
}

/// SQL with its `?` parameters numbered (`$1`, `$2`, … in order; `?N` keeps its number), which
/// both SQLite and PostgreSQL read: one text for both databases. A `?` inside a quoted string
/// stays as it is.
fn numbered(sql: impl AsRef<str>) -> AssertSqlSafe<String> {
    AssertSqlSafe(number_parameters(sql.as_ref()))
}

fn number_parameters(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let (mut number, mut quoted) = (0, false);
    let mut characters = sql.chars().peekable();
    while let Some(character) = characters.next() {
        match character {
            '\'' => {
                quoted = !quoted;
                out.push(character);
            }
            '?' if !quoted => {
                out.push('$');
                if characters.peek().is_some_and(char::is_ascii_digit) {
                    continue; // `?N`: its digits follow as they are
                }
                number += 1;
                out.push_str(&number.to_string());
            }
            _ => out.push(character),
        }
    }
    out
}

/// A time as the store writes it: UTC, ISO 8601 with milliseconds (`2026-12-07T06:05:16.123Z`),
/// so that text order is time order.
fn timestamp(at: time::OffsetDateTime) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    at.to_offset(time::UtcOffset::UTC).format(FORMAT).unwrap_or_default()
}

fn now() -> String {
    timestamp(time::OffsetDateTime::now_utc())
}

/// The minute, as `last_used_at` of API tokens records it (`2026-12-07T06:05Z`).
fn now_to_the_minute() -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'_>] =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]Z");
    time::OffsetDateTime::now_utc().format(FORMAT).unwrap_or_default()
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

#[cfg(test)]
mod tests {
    #[test]
    fn parameters_are_numbered_in_order_outside_quotes() {
        assert_eq!(
            super::number_parameters("a = ? AND b LIKE '?%' AND c IN (?, ?)"),
            "a = $1 AND b LIKE '?%' AND c IN ($2, $3)"
        );
        assert_eq!(super::number_parameters("(?1 IS NULL OR x = ?1) LIMIT ?2"), "($1 IS NULL OR x = $1) LIMIT $2");
    }
}
