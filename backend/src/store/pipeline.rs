//! What the resumable runner asks the store: which answers a run already has.

use shared::PromptVariant;

use super::answer_codec::{parse_variant, variant_text};
use super::numbered;
use super::{Store, StoreError};

/// Identifies one answer of a run: (question, culture, variant).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AnswerKey {
    pub question_set: String,
    pub question_id: String,
    pub country_code: Option<String>,
    pub variant: PromptVariant,
}

impl Store {
    /// The keys of every answer the run has stored.
    pub async fn answer_keys(&self, run_id: i64) -> Result<Vec<AnswerKey>, StoreError> {
        let rows: Vec<(String, String, Option<String>, String)> = sqlx::query_as(numbered(
            "SELECT question_set, question_id, country_code, variant FROM answers WHERE run_id = ? ORDER BY answer_id",
        ))
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(question_set, question_id, country_code, variant)| {
                Ok(AnswerKey { question_set, question_id, country_code, variant: parse_variant(&variant)? })
            })
            .collect()
    }

    /// How many culture-aware answers of `variant` the run has whose unaware counterpart and own
    /// answer both parsed: the pairs that could become instances.
    pub async fn aware_answer_count(&self, run_id: i64, variant: PromptVariant) -> Result<u64, StoreError> {
        let count: i64 = sqlx::query_scalar(numbered(
            "SELECT COUNT(*) FROM answers AS aware
             JOIN answers AS unaware
               ON unaware.run_id = aware.run_id AND unaware.question_set = aware.question_set
              AND unaware.question_id = aware.question_id
              AND unaware.country_code IS NULL AND unaware.variant = 'unaware'
             WHERE aware.run_id = ? AND aware.variant = ? AND aware.country_code IS NOT NULL
               AND aware.parsed_code IS NOT NULL AND unaware.parsed_code IS NOT NULL",
        ))
        .bind(run_id)
        .bind(variant_text(variant))
        .fetch_one(&self.pool)
        .await?;
        Ok(count as u64)
    }
}
