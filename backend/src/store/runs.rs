use shared::{Run, RunConfig, RunEvent, RunOrigin, RunStatus};

use super::{from_json, to_json, Store, StoreError, StoreTransaction};
use super::{now, numbered};

#[derive(sqlx::FromRow)]
struct RunRow {
    run_id: i64,
    config_json: String,
    origin_json: String,
    status: String,
    created_at: String,
    updated_at: String,
}

impl RunRow {
    fn into_run(self) -> Result<Run, StoreError> {
        Ok(Run {
            run_id: self.run_id,
            config: from_json("runs", "config_json", &self.config_json)?,
            origin: from_json("runs", "origin_json", &self.origin_json)?,
            status: from_json("runs", "status", &format!("\"{}\"", self.status))?,
            created_at: self.created_at,
            updated_at: self.updated_at,
        })
    }
}

const RUN_COLUMNS: &str = "run_id, config_json, origin_json, status, created_at, updated_at";

impl Store {
    pub async fn create_run(&self, config: &RunConfig, origin: &RunOrigin) -> Result<Run, StoreError> {
        let mut transaction = self.begin().await?;
        let run_id = transaction.create_run(config, origin).await?;
        transaction.commit().await?;
        self.run(run_id).await
    }

    pub async fn run(&self, run_id: i64) -> Result<Run, StoreError> {
        let row: Option<RunRow> = sqlx::query_as(numbered(format!("SELECT {RUN_COLUMNS} FROM runs WHERE run_id = ?")))
            .bind(run_id)
            .fetch_optional(&self.pool)
            .await?;
        row.ok_or_else(|| StoreError::NotFound(format!("run {run_id}")))?.into_run()
    }

    /// The runs that were queued or running when the process that ran them stopped (or that are
    /// running now), oldest first.
    pub async fn runs_in_flight(&self) -> Result<Vec<i64>, StoreError> {
        let pending = RunStatus::Pending.as_str();
        let running = RunStatus::Running.as_str();
        Ok(sqlx::query_scalar(numbered("SELECT run_id FROM runs WHERE status IN (?, ?) ORDER BY run_id"))
            .bind(pending)
            .bind(running)
            .fetch_all(&self.pool)
            .await?)
    }

    /// Runs, newest first, paged.
    pub async fn runs(&self, limit: u32, offset: u32) -> Result<(u64, Vec<Run>), StoreError> {
        let total: i64 = sqlx::query_scalar(numbered("SELECT COUNT(*) FROM runs")).fetch_one(&self.pool).await?;
        let rows: Vec<RunRow> =
            sqlx::query_as(numbered(format!("SELECT {RUN_COLUMNS} FROM runs ORDER BY run_id DESC LIMIT ? OFFSET ?")))
                .bind(i64::from(limit))
                .bind(i64::from(offset))
                .fetch_all(&self.pool)
                .await?;
        let items = rows.into_iter().map(RunRow::into_run).collect::<Result<_, _>>()?;
        Ok((total as u64, items))
    }

    /// Records an event of a run (see [`StoreTransaction::append_event`]).
    pub async fn append_event(&self, run_id: i64, event: &RunEvent) -> Result<i64, StoreError> {
        let mut transaction = self.begin().await?;
        let event_id = transaction.append_event(run_id, event).await?;
        transaction.commit().await?;
        Ok(event_id)
    }

    /// The run's events after `after_event_id` (0 for all), oldest first, with their ids.
    pub async fn events(&self, run_id: i64, after_event_id: i64) -> Result<Vec<(i64, RunEvent)>, StoreError> {
        let rows: Vec<(i64, String)> = sqlx::query_as(numbered(
            "SELECT event_id, event_json FROM run_events WHERE run_id = ? AND event_id > ? ORDER BY event_id",
        ))
        .bind(run_id)
        .bind(after_event_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(|(event_id, json)| Ok((event_id, from_json("run_events", "event_json", &json)?))).collect()
    }
}

impl StoreTransaction {
    /// Creates a pending run and returns its id.
    pub async fn create_run(&mut self, config: &RunConfig, origin: &RunOrigin) -> Result<i64, StoreError> {
        let run_id: i64 = sqlx::query_scalar(numbered(
            "INSERT INTO runs (name, config_json, origin_json, status, created_at, updated_at)
             VALUES (?, ?, ?, 'pending', ?, ?)
             RETURNING run_id",
        ))
        .bind(&config.name)
        .bind(to_json(config))
        .bind(to_json(origin))
        .bind(now())
        .bind(now())
        .fetch_one(&mut *self.transaction)
        .await?;
        Ok(run_id)
    }

    /// Records an event of a run; `StageStarted` and `Finished` also set the run's status.
    pub async fn append_event(&mut self, run_id: i64, event: &RunEvent) -> Result<i64, StoreError> {
        let event_id: i64 = sqlx::query_scalar(numbered(
            "INSERT INTO run_events (run_id, event_json, created_at)
             VALUES (?, ?, ?) RETURNING event_id",
        ))
        .bind(run_id)
        .bind(to_json(event))
        .bind(now())
        .fetch_one(&mut *self.transaction)
        .await?;
        let status = match event {
            RunEvent::Finished { status } => Some(*status),
            RunEvent::StageStarted { .. } => Some(RunStatus::Running),
            _ => None,
        };
        if let Some(status) = status {
            sqlx::query(numbered("UPDATE runs SET status = ?, updated_at = ? WHERE run_id = ?"))
                .bind(status.as_str())
                .bind(now())
                .bind(run_id)
                .execute(&mut *self.transaction)
                .await?;
        }
        Ok(event_id)
    }
}

impl Store {
    /// The runs made from `origin`, oldest first.
    pub async fn runs_with_origin(&self, origin: &RunOrigin) -> Result<Vec<Run>, StoreError> {
        // Origins are stored as serde_json writes them, so equal origins have equal text.
        let run_ids: Vec<i64> =
            sqlx::query_scalar(numbered("SELECT run_id FROM runs WHERE origin_json = ? ORDER BY run_id"))
                .bind(to_json(origin))
                .fetch_all(&self.pool)
                .await?;
        let mut runs = Vec::with_capacity(run_ids.len());
        for run_id in run_ids {
            runs.push(self.run(run_id).await?);
        }
        Ok(runs)
    }

    /// How many answers the run holds: all of them, and those given for a culture.
    pub async fn answer_counts(&self, run_id: i64) -> Result<(u64, u64), StoreError> {
        let (all, with_culture): (i64, i64) =
            sqlx::query_as(numbered("SELECT COUNT(*), COUNT(country_code) FROM answers WHERE run_id = ?"))
                .bind(run_id)
                .fetch_one(&self.pool)
                .await?;
        Ok((all as u64, with_culture as u64))
    }

    /// Deletes a run with its events, answers, instances and their reviews (foreign-key cascades).
    pub async fn delete_run(&self, run_id: i64) -> Result<(), StoreError> {
        let deleted =
            sqlx::query(numbered("DELETE FROM runs WHERE run_id = ?")).bind(run_id).execute(&self.pool).await?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("run {run_id}")));
        }
        Ok(())
    }
}
