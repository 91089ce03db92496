//! Reading a run's answers back for analysis: every answer of one prompt variant, and which
//! variants a run has.

use shared::{Answer, PromptVariant};

use super::answer_codec::{parse_variant, variant_text, StoredAnswer};
use super::numbered;
use super::{Store, StoreError};

impl Store {
    /// Every answer of the run in one question set and prompt variant, by culture (unaware
    /// answers, which have none, first) and then in storage order.
    pub async fn run_answers(
        &self,
        run_id: i64,
        question_set: &str,
        variant: PromptVariant,
    ) -> Result<Vec<Answer>, StoreError> {
        let rows: Vec<StoredAnswer> = sqlx::query_as(numbered(
            "SELECT run_id, question_id, country_code, variant, raw_reply, parsed_code, distribution_json,
                    raw_distribution_json
             FROM answers WHERE run_id = ? AND question_set = ? AND variant = ?
             ORDER BY country_code IS NOT NULL, country_code, answer_id",
        ))
        .bind(run_id)
        .bind(question_set)
        .bind(variant_text(variant))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(StoredAnswer::into_answer).collect()
    }

    /// The prompt variants the run has answers for in a question set, in `PromptVariant::ALL` order.
    pub async fn run_variants(&self, run_id: i64, question_set: &str) -> Result<Vec<PromptVariant>, StoreError> {
        let texts: Vec<String> =
            sqlx::query_scalar(numbered("SELECT DISTINCT variant FROM answers WHERE run_id = ? AND question_set = ?"))
                .bind(run_id)
                .bind(question_set)
                .fetch_all(&self.pool)
                .await?;
        let mut variants = texts.iter().map(|text| parse_variant(text)).collect::<Result<Vec<_>, _>>()?;
        variants.sort_by_key(|variant| PromptVariant::ALL.iter().position(|known| known == variant));
        Ok(variants)
    }
}
