//! What evaluations and imports need beyond the pipeline's writes: finding a run by its origin
//! (an imported release is known by its source), counting its answers, removing it.

use shared::{Run, RunOrigin};

use super::{to_json, Store, StoreError};

impl Store {
    /// The runs made from `origin`, oldest first.
    pub async fn runs_with_origin(&self, origin: &RunOrigin) -> Result<Vec<Run>, StoreError> {
        // Origins are stored as serde_json writes them, so equal origins have equal text.
        let run_ids: Vec<i64> = sqlx::query_scalar("SELECT run_id FROM runs WHERE origin_json = ? ORDER BY run_id")
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
            sqlx::query_as("SELECT COUNT(*), COUNT(country_code) FROM answers WHERE run_id = ?")
                .bind(run_id)
                .fetch_one(&self.pool)
                .await?;
        Ok((all as u64, with_culture as u64))
    }

    /// Deletes a run with its events, answers, instances and their reviews (foreign-key cascades).
    pub async fn delete_run(&self, run_id: i64) -> Result<(), StoreError> {
        let deleted = sqlx::query("DELETE FROM runs WHERE run_id = ?").bind(run_id).execute(&self.pool).await?;
        if deleted.rows_affected() == 0 {
            return Err(StoreError::NotFound(format!("run {run_id}")));
        }
        Ok(())
    }
}
