//! Reviews of instances, the run-level review settings, and the instance status they determine.
//!
//! One current review per (instance, reviewer): a new review supersedes the reviewer's older one,
//! and undoing it makes the older one current again. Every write also refreshes the status of the
//! instances it touches, in the same transaction.

use std::collections::BTreeMap;

use shared::review::{NewReview, ReviewSettings};
use shared::{Review, ReviewDecision, ReviewStatus};

use super::instances::review_status_text;
use super::{now, numbered};
use super::{Store, StoreError, StoreTransaction};
use crate::curation::{derive_review_status, ReviewLabel};

/// Which reviews to list; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct ReviewFilter {
    pub run_id: Option<i64>,
    pub reviewer: Option<String>,
    pub instance_id: Option<i64>,
    /// Newest first instead of oldest first.
    pub newest_first: bool,
}

/// A current review's label, for agreement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelledReview {
    pub instance_id: i64,
    pub reviewer: String,
    pub label: ReviewLabel,
}

#[derive(sqlx::FromRow)]
struct ReviewRow {
    review_id: i64,
    instance_id: i64,
    reviewer: String,
    decision: String,
    corrected_code: Option<i64>,
    note: Option<String>,
    edited_output: Option<String>,
    created_at: String,
}

const REVIEW_COLUMNS: &str =
    "r.review_id, r.instance_id, r.reviewer, r.decision, r.corrected_code, r.note, r.edited_output, r.created_at";

impl ReviewRow {
    fn into_review(self) -> Result<Review, StoreError> {
        let decision = match (self.decision.as_str(), self.corrected_code) {
            ("accept", _) => ReviewDecision::Accept,
            ("reject", _) => ReviewDecision::Reject,
            ("flag_stereotype", _) => ReviewDecision::FlagStereotype,
            ("change_answer", Some(code)) => ReviewDecision::ChangeAnswer { code: code as u32 },
            (other, _) => {
                return Err(StoreError::Invalid(format!("review {}: decision '{other}'", self.review_id)));
            }
        };
        Ok(Review {
            review_id: self.review_id,
            instance_id: self.instance_id,
            reviewer: self.reviewer,
            decision,
            note: self.note,
            edited_output: self.edited_output,
            created_at: self.created_at,
        })
    }
}

fn decision_columns(decision: &ReviewDecision) -> (&'static str, Option<i64>) {
    match decision {
        ReviewDecision::Accept => ("accept", None),
        ReviewDecision::Reject => ("reject", None),
        ReviewDecision::ChangeAnswer { code } => ("change_answer", Some(i64::from(*code))),
        ReviewDecision::FlagStereotype => ("flag_stereotype", None),
    }
}

fn parse_label(text: &str) -> Result<ReviewLabel, StoreError> {
    ReviewLabel::parse(text).ok_or_else(|| StoreError::Invalid(format!("review label '{text}'")))
}

impl Store {
    /// Records `reviewer`'s review of an instance (see [`StoreTransaction::add_review`]).
    pub async fn add_review(&self, instance_id: i64, reviewer: &str, review: &NewReview) -> Result<Review, StoreError> {
        let mut transaction = self.begin().await?;
        let stored = transaction.add_review(instance_id, reviewer, review).await?;
        transaction.commit().await?;
        Ok(stored)
    }

    /// Undoes a review (see [`StoreTransaction::undo_review`]).
    pub async fn undo_review(&self, review_id: i64, reviewer: &str) -> Result<Review, StoreError> {
        let mut transaction = self.begin().await?;
        let undone = transaction.undo_review(review_id, reviewer).await?;
        transaction.commit().await?;
        Ok(undone)
    }

    /// Sets how many reviewers a run's instances need (see [`StoreTransaction::set_review_settings`]).
    pub async fn set_review_settings(&self, run_id: i64, settings: ReviewSettings) -> Result<(), StoreError> {
        let mut transaction = self.begin().await?;
        transaction.set_review_settings(run_id, settings).await?;
        transaction.commit().await
    }

    pub async fn review_settings(&self, run_id: i64) -> Result<ReviewSettings, StoreError> {
        self.run(run_id).await?;
        let reviewers: Option<i64> =
            sqlx::query_scalar(numbered("SELECT reviewers_per_instance FROM review_settings WHERE run_id = ?"))
                .bind(run_id)
                .fetch_optional(&self.pool)
                .await?;
        Ok(reviewers
            .map_or_else(ReviewSettings::default, |count| ReviewSettings { reviewers_per_instance: count as u32 }))
    }

    /// Current reviews matching `filter`, paged, with their total count.
    pub async fn reviews(
        &self,
        filter: &ReviewFilter,
        limit: u32,
        offset: u32,
    ) -> Result<(u64, Vec<Review>), StoreError> {
        const WHERE: &str = "FROM reviews AS r JOIN instances AS i ON i.instance_id = r.instance_id
            WHERE r.is_current = 1 AND (?1 IS NULL OR i.run_id = ?1) AND (?2 IS NULL OR r.reviewer = ?2)
              AND (?3 IS NULL OR r.instance_id = ?3)";
        let total: i64 = sqlx::query_scalar(numbered(format!("SELECT COUNT(*) {WHERE}")))
            .bind(filter.run_id)
            .bind(&filter.reviewer)
            .bind(filter.instance_id)
            .fetch_one(&self.pool)
            .await?;
        let order = if filter.newest_first { "DESC" } else { "ASC" };
        let rows: Vec<ReviewRow> = sqlx::query_as(numbered(format!(
            "SELECT {REVIEW_COLUMNS} {WHERE} ORDER BY r.review_id {order} LIMIT ?4 OFFSET ?5"
        )))
        .bind(filter.run_id)
        .bind(&filter.reviewer)
        .bind(filter.instance_id)
        .bind(i64::from(limit))
        .bind(i64::from(offset))
        .fetch_all(&self.pool)
        .await?;
        let reviews = rows.into_iter().map(ReviewRow::into_review).collect::<Result<_, _>>()?;
        Ok((total as u64, reviews))
    }

    /// The labels of a run's current reviews, by instance and then reviewer.
    pub async fn review_labels(&self, run_id: i64) -> Result<Vec<LabelledReview>, StoreError> {
        let rows: Vec<(i64, String, String)> = sqlx::query_as(numbered(
            "SELECT r.instance_id, r.reviewer, r.label FROM reviews AS r
             JOIN instances AS i ON i.instance_id = r.instance_id
             WHERE i.run_id = ? AND r.is_current = 1 ORDER BY r.instance_id, r.reviewer",
        ))
        .bind(run_id)
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(instance_id, reviewer, label)| {
                Ok(LabelledReview { instance_id, reviewer, label: parse_label(&label)? })
            })
            .collect()
    }
}

impl StoreTransaction {
    /// Records `reviewer`'s review of an instance; it supersedes the reviewer's current review of
    /// it, if any, and the instance's status follows. Returns the stored review.
    pub async fn add_review(
        &mut self,
        instance_id: i64,
        reviewer: &str,
        review: &NewReview,
    ) -> Result<Review, StoreError> {
        let (run_id, aware_code) = self.instance_run_and_aware_code(instance_id).await?;
        let label = ReviewLabel::of(&review.decision, review.edited_output.as_deref(), aware_code);
        let superseded: Option<i64> = sqlx::query_scalar(numbered(
            "SELECT review_id FROM reviews WHERE instance_id = ? AND reviewer = ? AND is_current = 1",
        ))
        .bind(instance_id)
        .bind(reviewer)
        .fetch_optional(&mut *self.transaction)
        .await?;
        if let Some(superseded) = superseded {
            sqlx::query(numbered("UPDATE reviews SET is_current = 0 WHERE review_id = ?"))
                .bind(superseded)
                .execute(&mut *self.transaction)
                .await?;
        }
        let (decision, corrected_code) = decision_columns(&review.decision);
        let edited_output = review.edited_output.as_deref().map(str::trim).filter(|output| !output.is_empty());
        let review_id: i64 = sqlx::query_scalar(numbered(
            "INSERT INTO reviews
                 (instance_id, reviewer, decision, corrected_code, note, edited_output, label, supersedes, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING review_id",
        ))
        .bind(instance_id)
        .bind(reviewer)
        .bind(decision)
        .bind(corrected_code)
        .bind(review.note.as_deref().map(str::trim).filter(|note| !note.is_empty()))
        .bind(edited_output)
        .bind(label.to_text())
        .bind(superseded)
        .bind(now())
        .fetch_one(&mut *self.transaction)
        .await?;
        self.refresh_review_status(instance_id, run_id).await?;
        self.review(review_id).await
    }

    /// Deletes `reviewer`'s latest review, which must be `review_id`; the review it superseded
    /// becomes current again and the instance's status follows. Returns the deleted review.
    pub async fn undo_review(&mut self, review_id: i64, reviewer: &str) -> Result<Review, StoreError> {
        let review = self.review(review_id).await?;
        if review.reviewer != reviewer {
            return Err(StoreError::Forbidden(format!(
                "review {review_id} is {}'s, not {reviewer}'s",
                review.reviewer
            )));
        }
        let latest: i64 = sqlx::query_scalar(numbered("SELECT MAX(review_id) FROM reviews WHERE reviewer = ?"))
            .bind(reviewer)
            .fetch_one(&mut *self.transaction)
            .await?;
        if latest != review_id {
            return Err(StoreError::Conflict(format!(
                "review {review_id} is not {reviewer}'s latest review ({latest}); only the latest can be undone"
            )));
        }
        let supersedes: Option<i64> =
            sqlx::query_scalar(numbered("SELECT supersedes FROM reviews WHERE review_id = ?"))
                .bind(review_id)
                .fetch_one(&mut *self.transaction)
                .await?;
        sqlx::query(numbered("DELETE FROM reviews WHERE review_id = ?"))
            .bind(review_id)
            .execute(&mut *self.transaction)
            .await?;
        if let Some(previous) = supersedes {
            sqlx::query(numbered("UPDATE reviews SET is_current = 1 WHERE review_id = ?"))
                .bind(previous)
                .execute(&mut *self.transaction)
                .await?;
        }
        let (run_id, _) = self.instance_run_and_aware_code(review.instance_id).await?;
        self.refresh_review_status(review.instance_id, run_id).await?;
        Ok(review)
    }

    /// Stores how many reviewers a run's instances need and refreshes the status of them all.
    pub async fn set_review_settings(&mut self, run_id: i64, settings: ReviewSettings) -> Result<(), StoreError> {
        let exists: Option<i64> = sqlx::query_scalar(numbered("SELECT run_id FROM runs WHERE run_id = ?"))
            .bind(run_id)
            .fetch_optional(&mut *self.transaction)
            .await?;
        if exists.is_none() {
            return Err(StoreError::NotFound(format!("run {run_id}")));
        }
        sqlx::query(numbered(
            "INSERT INTO review_settings (run_id, reviewers_per_instance) VALUES (?, ?)
             ON CONFLICT (run_id) DO UPDATE SET reviewers_per_instance = excluded.reviewers_per_instance",
        ))
        .bind(run_id)
        .bind(i64::from(settings.reviewers_per_instance))
        .execute(&mut *self.transaction)
        .await?;
        let rows: Vec<(i64, String)> = sqlx::query_as(numbered(
            "SELECT r.instance_id, r.label FROM reviews AS r JOIN instances AS i ON i.instance_id = r.instance_id
             WHERE i.run_id = ? AND r.is_current = 1",
        ))
        .bind(run_id)
        .fetch_all(&mut *self.transaction)
        .await?;
        let mut labels_by_instance: BTreeMap<i64, Vec<ReviewLabel>> = BTreeMap::new();
        for (instance_id, label) in rows {
            labels_by_instance.entry(instance_id).or_default().push(parse_label(&label)?);
        }
        sqlx::query(numbered("UPDATE instances SET review_status = ? WHERE run_id = ?"))
            .bind(review_status_text(ReviewStatus::Pending))
            .bind(run_id)
            .execute(&mut *self.transaction)
            .await?;
        for (instance_id, labels) in labels_by_instance {
            let status = derive_review_status(&labels, settings.reviewers_per_instance);
            self.set_review_status(instance_id, status).await?;
        }
        Ok(())
    }

    async fn review(&mut self, review_id: i64) -> Result<Review, StoreError> {
        let row: Option<ReviewRow> =
            sqlx::query_as(numbered(format!("SELECT {REVIEW_COLUMNS} FROM reviews AS r WHERE r.review_id = ?")))
                .bind(review_id)
                .fetch_optional(&mut *self.transaction)
                .await?;
        row.ok_or_else(|| StoreError::NotFound(format!("review {review_id}")))?.into_review()
    }

    async fn refresh_review_status(&mut self, instance_id: i64, run_id: i64) -> Result<(), StoreError> {
        let required: Option<i64> =
            sqlx::query_scalar(numbered("SELECT reviewers_per_instance FROM review_settings WHERE run_id = ?"))
                .bind(run_id)
                .fetch_optional(&mut *self.transaction)
                .await?;
        let labels: Vec<String> =
            sqlx::query_scalar(numbered("SELECT label FROM reviews WHERE instance_id = ? AND is_current = 1"))
                .bind(instance_id)
                .fetch_all(&mut *self.transaction)
                .await?;
        let labels = labels.iter().map(|label| parse_label(label)).collect::<Result<Vec<_>, _>>()?;
        let required = required.map_or(ReviewSettings::default().reviewers_per_instance, |count| count as u32);
        self.set_review_status(instance_id, derive_review_status(&labels, required)).await
    }

    async fn set_review_status(&mut self, instance_id: i64, status: ReviewStatus) -> Result<(), StoreError> {
        sqlx::query(numbered("UPDATE instances SET review_status = ? WHERE instance_id = ?"))
            .bind(review_status_text(status))
            .bind(instance_id)
            .execute(&mut *self.transaction)
            .await?;
        Ok(())
    }
}
