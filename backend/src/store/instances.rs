//! Listing culture-related instances: by run, culture, topic, review status, a reviewer's queue,
//! disagreement between reviewers, and full-text search over the question and its options.

use shared::review::InstanceItem;
use shared::{Instance, QuestionOption, ReviewStatus};

use super::{from_json, to_json, Store, StoreError, StoreTransaction};

/// A reviewer's queues: what is left for them, what they kept, what they discarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReviewQueue {
    /// Not reviewed by the reviewer and still short of the reviews the run asks for.
    Pending,
    /// The reviewer kept it (accepted, changed or edited the answer).
    Submitted,
    /// The reviewer rejected it or flagged it as stereotyping.
    Discarded,
}

impl ReviewQueue {
    fn as_str(self) -> &'static str {
        match self {
            ReviewQueue::Pending => "pending",
            ReviewQueue::Submitted => "submitted",
            ReviewQueue::Discarded => "discarded",
        }
    }
}

/// Filters of an instance listing; `None` (and `false`) match everything.
#[derive(Debug, Clone, Default)]
pub struct InstanceFilter {
    pub run_id: Option<i64>,
    pub country_code: Option<String>,
    pub topic: Option<u8>,
    pub review_status: Option<ReviewStatus>,
    /// A reviewer's queue; [`ReviewQueue::Pending`] without a reviewer is every instance that
    /// still needs reviews.
    pub queue: Option<(ReviewQueue, Option<String>)>,
    /// Only instances whose current reviews say different things.
    pub disagreement: bool,
    /// Words searched (case-insensitively) in the question id, text and option texts.
    pub search: Option<String>,
}

pub(super) fn review_status_text(status: ReviewStatus) -> String {
    to_json(&status).trim_matches('"').to_string()
}

#[derive(sqlx::FromRow)]
struct InstanceRow {
    instance_id: i64,
    run_id: i64,
    question_set: String,
    question_id: String,
    country_code: String,
    topic: i64,
    unaware_code: i64,
    aware_code: i64,
    review_status: String,
    question_text: String,
    options_json: String,
    reviews: i64,
    required_reviews: i64,
}

impl InstanceRow {
    fn into_item(self) -> Result<InstanceItem, StoreError> {
        let options: Vec<QuestionOption> = from_json("questions", "options_json", &self.options_json)?;
        let option_text =
            |code: i64| options.iter().find(|option| i64::from(option.code) == code).map(|option| option.text.clone());
        Ok(InstanceItem {
            unaware_option: option_text(self.unaware_code),
            aware_option: option_text(self.aware_code),
            instance: Instance {
                instance_id: self.instance_id,
                run_id: self.run_id,
                question_id: self.question_id,
                country_code: self.country_code,
                topic: self.topic as u8,
                unaware_code: self.unaware_code as u32,
                aware_code: self.aware_code as u32,
                review_status: from_json("instances", "review_status", &format!("\"{}\"", self.review_status))?,
            },
            question_set: self.question_set,
            question_text: self.question_text,
            reviews: self.reviews as u32,
            required_reviews: self.required_reviews as u32,
        })
    }
}

const ITEM_COLUMNS: &str = "i.instance_id, i.run_id, i.question_set, i.question_id, i.country_code, i.topic,
    i.unaware_code, i.aware_code, i.review_status,
    COALESCE(q.text, '') AS question_text, COALESCE(q.options_json, '[]') AS options_json,
    (SELECT COUNT(*) FROM reviews AS r WHERE r.instance_id = i.instance_id AND r.is_current = 1) AS reviews,
    COALESCE(s.reviewers_per_instance, 1) AS required_reviews";

const ITEM_FROM: &str = "FROM instances AS i
    LEFT JOIN questions AS q ON q.question_set = i.question_set AND q.question_id = i.question_id
    LEFT JOIN review_settings AS s ON s.run_id = i.run_id";

/// The filters as numbered parameters: ?1 run, ?2 culture, ?3 topic, ?4 status, ?5 disagreement
/// (0/1), ?6 LIKE pattern, ?7 queue, ?8 reviewer.
const ITEM_WHERE: &str = r"WHERE (?1 IS NULL OR i.run_id = ?1)
    AND (?2 IS NULL OR i.country_code = ?2)
    AND (?3 IS NULL OR i.topic = ?3)
    AND (?4 IS NULL OR i.review_status = ?4)
    AND (?5 = 0 OR (SELECT COUNT(DISTINCT r.label) FROM reviews AS r
                    WHERE r.instance_id = i.instance_id AND r.is_current = 1) > 1)
    AND (?6 IS NULL OR i.question_id LIKE ?6 ESCAPE '\' OR q.text LIKE ?6 ESCAPE '\'
         OR EXISTS (SELECT 1 FROM json_each(q.options_json) AS o
                    WHERE json_extract(o.value, '$.text') LIKE ?6 ESCAPE '\'))
    AND (?7 IS NULL
         OR (?7 = 'pending'
             AND NOT EXISTS (SELECT 1 FROM reviews AS r
                             WHERE r.instance_id = i.instance_id AND r.is_current = 1 AND r.reviewer = ?8)
             AND (SELECT COUNT(*) FROM reviews AS r WHERE r.instance_id = i.instance_id AND r.is_current = 1)
                 < COALESCE(s.reviewers_per_instance, 1))
         OR (?7 = 'submitted'
             AND EXISTS (SELECT 1 FROM reviews AS r WHERE r.instance_id = i.instance_id AND r.is_current = 1
                         AND r.reviewer = ?8 AND r.label LIKE 'answer:%'))
         OR (?7 = 'discarded'
             AND EXISTS (SELECT 1 FROM reviews AS r WHERE r.instance_id = i.instance_id AND r.is_current = 1
                         AND r.reviewer = ?8 AND r.label IN ('reject', 'flag'))))";

/// `%words%` with LIKE's wildcards in the words escaped.
fn like_pattern(words: &str) -> String {
    let mut pattern = String::with_capacity(words.len() + 2);
    pattern.push('%');
    for character in words.trim().chars() {
        if matches!(character, '%' | '_' | '\\') {
            pattern.push('\\');
        }
        pattern.push(character);
    }
    pattern.push('%');
    pattern
}

impl Store {
    /// Instances matching `filter` in collection order, paged, with their total count.
    pub async fn instances(
        &self,
        filter: &InstanceFilter,
        limit: u32,
        offset: u32,
    ) -> Result<(u64, Vec<Instance>), StoreError> {
        let (total, items) = self.instance_items(filter, limit, offset).await?;
        Ok((total, items.into_iter().map(|item| item.instance).collect()))
    }

    /// Like [`Self::instances`], each with its question text, option texts and review counts.
    pub async fn instance_items(
        &self,
        filter: &InstanceFilter,
        limit: u32,
        offset: u32,
    ) -> Result<(u64, Vec<InstanceItem>), StoreError> {
        let status = filter.review_status.map(review_status_text);
        let topic = filter.topic.map(i64::from);
        let search = filter.search.as_deref().map(str::trim).filter(|words| !words.is_empty()).map(like_pattern);
        let queue = filter.queue.as_ref().map(|(queue, _)| queue.as_str());
        let reviewer = filter.queue.as_ref().and_then(|(_, reviewer)| reviewer.clone());
        let disagreement = i64::from(filter.disagreement);
        let total: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) {ITEM_FROM} {ITEM_WHERE}")))
            .bind(filter.run_id)
            .bind(&filter.country_code)
            .bind(topic)
            .bind(&status)
            .bind(disagreement)
            .bind(&search)
            .bind(queue)
            .bind(&reviewer)
            .fetch_one(&self.pool)
            .await?;
        let rows: Vec<InstanceRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
            "SELECT {ITEM_COLUMNS} {ITEM_FROM} {ITEM_WHERE} ORDER BY i.instance_id LIMIT ?9 OFFSET ?10"
        )))
        .bind(filter.run_id)
        .bind(&filter.country_code)
        .bind(topic)
        .bind(&status)
        .bind(disagreement)
        .bind(&search)
        .bind(queue)
        .bind(&reviewer)
        .bind(i64::from(limit))
        .bind(i64::from(offset))
        .fetch_all(&self.pool)
        .await?;
        let items = rows.into_iter().map(InstanceRow::into_item).collect::<Result<_, _>>()?;
        Ok((total as u64, items))
    }

    pub async fn instance_item(&self, instance_id: i64) -> Result<InstanceItem, StoreError> {
        let row: Option<InstanceRow> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT {ITEM_COLUMNS} {ITEM_FROM} WHERE i.instance_id = ?")))
                .bind(instance_id)
                .fetch_optional(&self.pool)
                .await?;
        row.ok_or_else(|| StoreError::NotFound(format!("instance {instance_id}")))?.into_item()
    }
}

impl StoreTransaction {
    /// The run and the culture-aware code of an instance.
    pub(super) async fn instance_run_and_aware_code(&mut self, instance_id: i64) -> Result<(i64, u32), StoreError> {
        let row: Option<(i64, i64)> = sqlx::query_as("SELECT run_id, aware_code FROM instances WHERE instance_id = ?")
            .bind(instance_id)
            .fetch_optional(&mut *self.transaction)
            .await?;
        let (run_id, aware_code) = row.ok_or_else(|| StoreError::NotFound(format!("instance {instance_id}")))?;
        Ok((run_id, aware_code as u32))
    }
}

#[cfg(test)]
mod tests {
    use super::like_pattern;

    #[test]
    fn like_patterns_escape_wildcards() {
        assert_eq!(like_pattern(" family "), "%family%");
        assert_eq!(like_pattern("100%_a\\b"), "%100\\%\\_a\\\\b%");
    }
}
