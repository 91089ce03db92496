//! How answers are written in the database and read back: the variant's text and the row type.
//! Both the writers ([`super::answers`]) and the readers ([`super::run_answers`]) use it.

use shared::{Answer, PromptVariant};

use super::{from_json, to_json, StoreError};

/// A prompt variant as stored (`p1_p3`): its serde name.
pub(super) fn variant_text(variant: PromptVariant) -> String {
    to_json(&variant).trim_matches('"').to_string()
}

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
