//! Every review of a run as the raw export writes it: current and superseded, oldest first.

use shared::review::ReviewRecord;

use super::numbered;
use super::{Store, StoreError};

#[derive(sqlx::FromRow)]
struct RecordRow {
    review_id: i64,
    instance_id: i64,
    question_id: String,
    country_code: String,
    reviewer: String,
    decision: String,
    corrected_code: Option<i64>,
    edited_output: Option<String>,
    note: Option<String>,
    created_at: String,
    /// 0 or 1 (an integer on both databases).
    is_current: i64,
    supersedes: Option<i64>,
}

impl TryFrom<RecordRow> for ReviewRecord {
    type Error = StoreError;

    fn try_from(row: RecordRow) -> Result<Self, StoreError> {
        let review_id = row.review_id;
        let corrected_code = row
            .corrected_code
            .map(|code| {
                u32::try_from(code).map_err(|_| StoreError::Invalid(format!("review {review_id}: code {code}")))
            })
            .transpose()?;
        Ok(ReviewRecord {
            review_id,
            instance_id: row.instance_id,
            question_id: row.question_id,
            country_code: row.country_code,
            reviewer: row.reviewer,
            decision: row.decision,
            corrected_code,
            edited_output: row.edited_output,
            note: row.note,
            created_at: row.created_at,
            is_current: row.is_current != 0,
            supersedes: row.supersedes,
        })
    }
}

impl Store {
    /// All reviews of `run_id`'s instances (none for a run without reviews; 404 for no run).
    pub async fn review_records(&self, run_id: i64) -> Result<Vec<ReviewRecord>, StoreError> {
        self.run(run_id).await?;
        let rows: Vec<RecordRow> = sqlx::query_as(numbered(
            "SELECT r.review_id, r.instance_id, i.question_id, i.country_code, r.reviewer, r.decision,
                    r.corrected_code, r.edited_output, r.note, r.created_at, r.is_current, r.supersedes
             FROM reviews AS r JOIN instances AS i ON i.instance_id = r.instance_id
             WHERE i.run_id = ? ORDER BY r.review_id",
        ))
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(ReviewRecord::try_from).collect()
    }
}
