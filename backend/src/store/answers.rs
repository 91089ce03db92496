use shared::{Answer, Instance, PromptVariant, ReviewDecision, ReviewStatus};

use super::{from_json, to_json, Store, StoreError, StoreTransaction};

/// An answer to store; the run is given separately.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAnswer {
    pub question_set: String,
    pub question_id: String,
    pub country_code: Option<String>,
    pub variant: PromptVariant,
    pub raw_reply: Option<String>,
    pub parsed_code: Option<u32>,
    pub distribution: Option<Vec<f64>>,
}

pub(super) fn variant_text(variant: PromptVariant) -> String {
    to_json(&variant).trim_matches('"').to_string()
}

fn review_status_text(status: ReviewStatus) -> String {
    to_json(&status).trim_matches('"').to_string()
}

#[derive(sqlx::FromRow)]
struct AnswerRow {
    run_id: i64,
    question_id: String,
    country_code: Option<String>,
    variant: String,
    raw_reply: Option<String>,
    parsed_code: Option<i64>,
    distribution_json: Option<String>,
}

#[derive(sqlx::FromRow)]
struct InstanceRow {
    instance_id: i64,
    run_id: i64,
    question_id: String,
    country_code: String,
    topic: i64,
    unaware_code: i64,
    aware_code: i64,
    review_status: String,
}

/// Filters of an instance listing; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct InstanceFilter {
    pub run_id: Option<i64>,
    pub country_code: Option<String>,
    pub topic: Option<u8>,
    pub review_status: Option<ReviewStatus>,
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
        let rows: Vec<AnswerRow> = sqlx::query_as(
            "SELECT run_id, question_id, country_code, variant, raw_reply, parsed_code, distribution_json
             FROM answers WHERE run_id = ? AND question_set = ? AND question_id = ?
             ORDER BY country_code IS NOT NULL, country_code, variant",
        )
        .bind(run_id)
        .bind(question_set)
        .bind(question_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|row| {
                Ok(Answer {
                    run_id: row.run_id,
                    question_id: row.question_id,
                    country_code: row.country_code,
                    variant: from_json("answers", "variant", &format!("\"{}\"", row.variant))?,
                    raw_reply: row.raw_reply,
                    parsed_code: row.parsed_code.map(|code| code as u32),
                    distribution: row
                        .distribution_json
                        .map(|json| from_json("answers", "distribution_json", &json))
                        .transpose()?,
                })
            })
            .collect()
    }

    /// Collects the run's culture-related instances (see [`StoreTransaction::collect_instances`]).
    pub async fn collect_instances(&self, run_id: i64, aware_variant: PromptVariant) -> Result<u64, StoreError> {
        let mut transaction = self.begin().await?;
        let inserted = transaction.collect_instances(run_id, aware_variant).await?;
        transaction.commit().await?;
        Ok(inserted)
    }

    pub async fn instances(
        &self,
        filter: &InstanceFilter,
        limit: u32,
        offset: u32,
    ) -> Result<(u64, Vec<Instance>), StoreError> {
        const WHERE: &str = "WHERE (?1 IS NULL OR run_id = ?1) AND (?2 IS NULL OR country_code = ?2)
                               AND (?3 IS NULL OR topic = ?3) AND (?4 IS NULL OR review_status = ?4)";
        let status = filter.review_status.map(review_status_text);
        let topic = filter.topic.map(i64::from);
        let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM instances {WHERE}")))
            .bind(filter.run_id)
            .bind(&filter.country_code)
            .bind(topic)
            .bind(&status)
            .fetch_one(&self.pool)
            .await?;
        let rows: Vec<InstanceRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT instance_id, run_id, question_id, country_code, topic, unaware_code, aware_code, review_status
             FROM instances {WHERE} ORDER BY instance_id LIMIT ?5 OFFSET ?6"
        )))
        .bind(filter.run_id)
        .bind(&filter.country_code)
        .bind(topic)
        .bind(&status)
        .bind(i64::from(limit))
        .bind(i64::from(offset))
        .fetch_all(&self.pool)
        .await?;
        let items = rows
            .into_iter()
            .map(|row| {
                Ok(Instance {
                    instance_id: row.instance_id,
                    run_id: row.run_id,
                    question_id: row.question_id,
                    country_code: row.country_code,
                    topic: row.topic as u8,
                    unaware_code: row.unaware_code as u32,
                    aware_code: row.aware_code as u32,
                    review_status: from_json("instances", "review_status", &format!("\"{}\"", row.review_status))?,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok((total as u64, items))
    }

    /// Records a review and sets the instance's status from it, in one transaction.
    pub async fn add_review(
        &self,
        instance_id: i64,
        reviewer: &str,
        decision: &ReviewDecision,
        note: Option<&str>,
    ) -> Result<i64, StoreError> {
        let (decision_text, corrected_code, status) = match decision {
            ReviewDecision::Accept => ("accept", None, ReviewStatus::Accepted),
            ReviewDecision::Reject => ("reject", None, ReviewStatus::Rejected),
            ReviewDecision::ChangeAnswer { code } => ("change_answer", Some(i64::from(*code)), ReviewStatus::Accepted),
            ReviewDecision::FlagStereotype => ("flag_stereotype", None, ReviewStatus::Flagged),
        };
        let mut transaction = self.pool.begin().await?;
        let updated = sqlx::query("UPDATE instances SET review_status = ? WHERE instance_id = ?")
            .bind(review_status_text(status))
            .bind(instance_id)
            .execute(&mut *transaction)
            .await?
            .rows_affected();
        if updated == 0 {
            return Err(StoreError::NotFound(format!("instance {instance_id}")));
        }
        let review_id: i64 = sqlx::query_scalar(
            "INSERT INTO reviews (instance_id, reviewer, decision, corrected_code, note, created_at)
             VALUES (?, ?, ?, ?, ?, strftime('%Y-%m-%dT%H:%M:%fZ', 'now')) RETURNING review_id",
        )
        .bind(instance_id)
        .bind(reviewer)
        .bind(decision_text)
        .bind(corrected_code)
        .bind(note)
        .fetch_one(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(review_id)
    }
}

impl StoreTransaction {
    /// Stores a batch of answers of a run in this transaction. An answer already stored for the
    /// same (question, culture, variant) is kept, so a resumed stage never duplicates work.
    pub async fn insert_answers(&mut self, run_id: i64, answers: &[NewAnswer]) -> Result<u64, StoreError> {
        let mut inserted = 0;
        for answer in answers {
            inserted += sqlx::query(
                "INSERT OR IGNORE INTO answers
                 (run_id, question_set, question_id, country_code, variant, raw_reply, parsed_code, distribution_json)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(run_id)
            .bind(&answer.question_set)
            .bind(&answer.question_id)
            .bind(&answer.country_code)
            .bind(variant_text(answer.variant))
            .bind(&answer.raw_reply)
            .bind(answer.parsed_code.map(i64::from))
            .bind(answer.distribution.as_ref().map(to_json))
            .execute(&mut *self.transaction)
            .await?
            .rows_affected();
        }
        Ok(inserted)
    }

    /// Collects the run's culture-related instances: (question, culture) where both the unaware
    /// answer and the `aware_variant` answer parsed and differ. Idempotent. Returns the new count.
    pub async fn collect_instances(&mut self, run_id: i64, aware_variant: PromptVariant) -> Result<u64, StoreError> {
        let inserted = sqlx::query(
            "INSERT OR IGNORE INTO instances
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
             ORDER BY aware.answer_id",
        )
        .bind(run_id)
        .bind(variant_text(aware_variant))
        .execute(&mut *self.transaction)
        .await?
        .rows_affected();
        Ok(inserted)
    }
}
