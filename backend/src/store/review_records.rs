//! Every review of a run as the raw export writes it: current and superseded, oldest first.

use shared::review::ReviewRecord;

use super::{Store, StoreError};

type RecordRow =
    (i64, i64, String, String, String, String, Option<i64>, Option<String>, Option<String>, String, bool, Option<i64>);

impl Store {
    /// All reviews of `run_id`'s instances (none for a run without reviews; 404 for no run).
    pub async fn review_records(&self, run_id: i64) -> Result<Vec<ReviewRecord>, StoreError> {
        self.run(run_id).await?;
        let rows: Vec<RecordRow> = sqlx::query_as(
            "SELECT r.review_id, r.instance_id, i.question_id, i.country_code, r.reviewer, r.decision,
                    r.corrected_code, r.edited_output, r.note, r.created_at, r.is_current, r.supersedes
             FROM reviews AS r JOIN instances AS i ON i.instance_id = r.instance_id
             WHERE i.run_id = ? ORDER BY r.review_id",
        )
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(
                |(
                    review_id,
                    instance_id,
                    question_id,
                    country_code,
                    reviewer,
                    decision,
                    code,
                    edited,
                    note,
                    at,
                    current,
                    supersedes,
                )| {
                    let corrected_code = code
                        .map(|code| {
                            u32::try_from(code)
                                .map_err(|_| StoreError::Invalid(format!("review {review_id}: code {code}")))
                        })
                        .transpose()?;
                    Ok(ReviewRecord {
                        review_id,
                        instance_id,
                        question_id,
                        country_code,
                        reviewer,
                        decision,
                        corrected_code,
                        edited_output: edited,
                        note,
                        created_at: at,
                        is_current: current,
                        supersedes,
                    })
                },
            )
            .collect()
    }
}
