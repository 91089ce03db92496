//! The priors a calibrated Answer or Evaluate stage divides by (see `runner/calibrate.rs`),
//! stored once each so that a resumed stage reuses them.

use std::collections::HashMap;

use super::numbered;
use super::{from_json, to_json, Store, StoreError, StoreTransaction};

impl Store {
    /// The run's stored calibration priors in a question set, by key.
    pub async fn calibration_priors(
        &self,
        run_id: i64,
        question_set: &str,
    ) -> Result<HashMap<String, Vec<f64>>, StoreError> {
        let rows: Vec<(String, String)> = sqlx::query_as(numbered(
            "SELECT prior_key, prior_json FROM calibration_priors WHERE run_id = ? AND question_set = ?",
        ))
        .bind(run_id)
        .bind(question_set)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(|(key, json)| Ok((key, from_json("calibration_priors", "prior_json", &json)?))).collect()
    }
}

impl StoreTransaction {
    /// Stores priors of the run; a key already stored keeps its prior.
    pub async fn insert_calibration_priors(
        &mut self,
        run_id: i64,
        question_set: &str,
        priors: &[(String, Vec<f64>)],
    ) -> Result<(), StoreError> {
        for (key, prior) in priors {
            sqlx::query(numbered(
                "INSERT INTO calibration_priors (run_id, question_set, prior_key, prior_json)
                 VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            ))
            .bind(run_id)
            .bind(question_set)
            .bind(key)
            .bind(to_json(prior))
            .execute(&mut *self.transaction)
            .await?;
        }
        Ok(())
    }
}
