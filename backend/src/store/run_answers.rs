//! Reading a run's answers back for analysis: every answer of one prompt variant, and which
//! variants a run has.

use shared::{Answer, PromptVariant};

use super::answers::variant_text;
use super::{from_json, Store, StoreError};

/// An answer row as stored.
#[derive(sqlx::FromRow)]
pub(super) struct StoredAnswer {
    run_id: i64,
    question_id: String,
    country_code: Option<String>,
    variant: String,
    raw_reply: Option<String>,
    parsed_code: Option<i64>,
    distribution_json: Option<String>,
    raw_distribution_json: Option<String>,
}

pub(super) fn parse_variant(text: &str) -> Result<PromptVariant, StoreError> {
    from_json("answers", "variant", &format!("\"{text}\""))
}

impl StoredAnswer {
    pub(super) fn into_answer(self) -> Result<Answer, StoreError> {
        Ok(Answer {
            run_id: self.run_id,
            question_id: self.question_id,
            country_code: self.country_code,
            variant: parse_variant(&self.variant)?,
            raw_reply: self.raw_reply,
            // A stored code is an option code, so it fits u32; anything else is no answer.
            parsed_code: self.parsed_code.and_then(|code| u32::try_from(code).ok()),
            distribution: self
                .distribution_json
                .map(|json| from_json("answers", "distribution_json", &json))
                .transpose()?,
            raw_distribution: self
                .raw_distribution_json
                .map(|json| from_json("answers", "raw_distribution_json", &json))
                .transpose()?,
        })
    }
}

impl Store {
    /// Every answer of the run in one question set and prompt variant, by culture (unaware
    /// answers, which have none, first) and then in storage order.
    pub async fn run_answers(
        &self,
        run_id: i64,
        question_set: &str,
        variant: PromptVariant,
    ) -> Result<Vec<Answer>, StoreError> {
        let rows: Vec<StoredAnswer> = sqlx::query_as(
            "SELECT run_id, question_id, country_code, variant, raw_reply, parsed_code, distribution_json,
                    raw_distribution_json
             FROM answers WHERE run_id = ? AND question_set = ? AND variant = ?
             ORDER BY country_code IS NOT NULL, country_code, answer_id",
        )
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
            sqlx::query_scalar("SELECT DISTINCT variant FROM answers WHERE run_id = ? AND question_set = ?")
                .bind(run_id)
                .bind(question_set)
                .fetch_all(&self.pool)
                .await?;
        let mut variants = texts.iter().map(|text| parse_variant(text)).collect::<Result<Vec<_>, _>>()?;
        variants.sort_by_key(|variant| PromptVariant::ALL.iter().position(|known| known == variant));
        Ok(variants)
    }
}
