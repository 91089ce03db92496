use shared::{Answer, PromptVariant};

use super::answer_codec::{variant_text, StoredAnswer};
use super::numbered;
use super::{to_json, Store, StoreError, StoreTransaction};

/// An answer to store; the run is given separately.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAnswer {
    pub question_set: String,
    pub question_id: String,
    pub country_code: Option<String>,
    pub variant: PromptVariant,
    pub raw_reply: Option<String>,
    pub parsed_code: Option<u32>,
    /// After the run's calibration (the answer).
    pub distribution: Option<Vec<f64>>,
    /// The model's own distribution, when the run calibrates.
    pub raw_distribution: Option<Vec<f64>>,
}

impl Store {
    /// Stores a batch of answers of a run in one transaction. An answer already stored for the
    /// same (question, culture, variant) is kept, so a resumed stage never duplicates work.
    pub async fn insert_answers(&self, run_id: i64, answers: &[NewAnswer]) -> Result<u64, StoreError> {
        let mut transaction = self.begin().await?;
        let inserted = transaction.insert_answers(run_id, answers).await?;
        transaction.commit().await?;
        Ok(inserted)
    }

    /// All answers of a run to one question, unaware first, then by culture.
    pub async fn answers_to(
        &self,
        run_id: i64,
        question_set: &str,
        question_id: &str,
    ) -> Result<Vec<Answer>, StoreError> {
        let rows: Vec<StoredAnswer> = sqlx::query_as(numbered(
            "SELECT run_id, question_id, country_code, variant, raw_reply, parsed_code, distribution_json,
                    raw_distribution_json
             FROM answers WHERE run_id = ? AND question_set = ? AND question_id = ?
             ORDER BY country_code IS NOT NULL, country_code, variant",
        ))
        .bind(run_id)
        .bind(question_set)
        .bind(question_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(StoredAnswer::into_answer).collect()
    }

    /// Collects the run's culture-related instances (see [`StoreTransaction::collect_instances`]).
    pub async fn collect_instances(&self, run_id: i64, aware_variant: PromptVariant) -> Result<u64, StoreError> {
        let mut transaction = self.begin().await?;
        let inserted = transaction.collect_instances(run_id, aware_variant).await?;
        transaction.commit().await?;
        Ok(inserted)
    }
}

impl StoreTransaction {
    /// Stores a batch of answers of a run in this transaction. An answer already stored for the
    /// same (question, culture, variant) is kept, so a resumed stage never duplicates work.
    pub async fn insert_answers(&mut self, run_id: i64, answers: &[NewAnswer]) -> Result<u64, StoreError> {
        let mut inserted = 0;
        for answer in answers {
            inserted += sqlx::query(numbered(
                "INSERT INTO answers
                 (run_id, question_set, question_id, country_code, variant, raw_reply, parsed_code, distribution_json,
                  raw_distribution_json)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            ))
            .bind(run_id)
            .bind(&answer.question_set)
            .bind(&answer.question_id)
            .bind(&answer.country_code)
            .bind(variant_text(answer.variant))
            .bind(&answer.raw_reply)
            .bind(answer.parsed_code.map(i64::from))
            .bind(answer.distribution.as_ref().map(to_json))
            .bind(answer.raw_distribution.as_ref().map(to_json))
            .execute(&mut *self.transaction)
            .await?
            .rows_affected();
        }
        Ok(inserted)
    }

    /// Collects the run's culture-related instances: (question, culture) where both the unaware
    /// answer and the `aware_variant` answer parsed and differ. Idempotent. Returns the new count.
    pub async fn collect_instances(&mut self, run_id: i64, aware_variant: PromptVariant) -> Result<u64, StoreError> {
        let inserted = sqlx::query(numbered(
            "INSERT INTO instances
                 (run_id, question_set, question_id, country_code, topic, unaware_code, aware_code)
             SELECT aware.run_id, aware.question_set, aware.question_id, aware.country_code, q.topic,
                    unaware.parsed_code, aware.parsed_code
             FROM answers AS aware
             JOIN answers AS unaware
               ON unaware.run_id = aware.run_id AND unaware.question_set = aware.question_set
              AND unaware.question_id = aware.question_id
              AND unaware.country_code IS NULL AND unaware.variant = 'unaware'
             JOIN questions AS q ON q.question_set = aware.question_set AND q.question_id = aware.question_id
             WHERE aware.run_id = ? AND aware.variant = ? AND aware.country_code IS NOT NULL
               AND aware.parsed_code IS NOT NULL AND unaware.parsed_code IS NOT NULL
               AND aware.parsed_code <> unaware.parsed_code
             ORDER BY aware.answer_id
             ON CONFLICT DO NOTHING",
        ))
        .bind(run_id)
        .bind(variant_text(aware_variant))
        .execute(&mut *self.transaction)
        .await?
        .rows_affected();
        Ok(inserted)
    }
}
