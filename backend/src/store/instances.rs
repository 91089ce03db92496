//! Listing culture-related instances: by run, culture, topic, review status, a reviewer's queue,
//! disagreement between reviewers, and full-text search over the question and its options.

use shared::review::InstanceItem;
use shared::{Instance, QuestionOption, ReviewStatus};

use super::instance_filter::{filter_sql, Bind, FilterSql, InstanceFilter};
use super::numbered;
use super::{from_json, to_json, Store, StoreError, StoreTransaction};

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

/// `%words%` with LIKE's wildcards in the words escaped.
fn like_pattern(words: &str) -> String {
    let mut pattern = String::with_capacity(words.len() + 2);
    pattern.push('%');
    // Lowercase, as the columns it is matched with are: case-insensitive on both databases
    // (SQLite's LIKE ignores ASCII case, PostgreSQL's does not).
    for character in words.trim().to_lowercase().chars() {
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
        let search = filter.search.as_deref().map(str::trim).filter(|words| !words.is_empty()).map(like_pattern);
        let FilterSql { from, where_clause, binds } = filter_sql(filter, status, search, self.backend);
        let mut count = sqlx::query_scalar::<_, i64>(numbered(format!("SELECT COUNT(*) {from} {where_clause}")));
        for bind in &binds {
            count = match bind {
                Bind::Int(value) => count.bind(*value),
                Bind::Text(text) => count.bind(text.clone()),
            };
        }
        let total = count.fetch_one(&self.pool).await?;
        // The page's ids from the filtered instances alone, then their rows with the joins.
        let mut page = sqlx::query_scalar::<_, i64>(numbered(format!(
            "SELECT i.instance_id {from} {where_clause} ORDER BY i.instance_id LIMIT ? OFFSET ?"
        )));
        for bind in &binds {
            page = match bind {
                Bind::Int(value) => page.bind(*value),
                Bind::Text(text) => page.bind(text.clone()),
            };
        }
        let ids = page.bind(i64::from(limit)).bind(i64::from(offset)).fetch_all(&self.pool).await?;
        let placeholders = vec!["?"; ids.len()].join(", ");
        let mut rows_query = sqlx::query_as::<_, InstanceRow>(numbered(format!(
            "SELECT {ITEM_COLUMNS} {ITEM_FROM} WHERE i.instance_id IN ({placeholders}) ORDER BY i.instance_id"
        )));
        for id in &ids {
            rows_query = rows_query.bind(*id);
        }
        let rows: Vec<InstanceRow> = if ids.is_empty() { Vec::new() } else { rows_query.fetch_all(&self.pool).await? };
        let items = rows.into_iter().map(InstanceRow::into_item).collect::<Result<_, _>>()?;
        Ok((total as u64, items))
    }

    pub async fn instance_item(&self, instance_id: i64) -> Result<InstanceItem, StoreError> {
        let row: Option<InstanceRow> =
            sqlx::query_as(numbered(format!("SELECT {ITEM_COLUMNS} {ITEM_FROM} WHERE i.instance_id = ?")))
                .bind(instance_id)
                .fetch_optional(&self.pool)
                .await?;
        row.ok_or_else(|| StoreError::NotFound(format!("instance {instance_id}")))?.into_item()
    }
}

impl StoreTransaction {
    /// The run and the culture-aware code of an instance.
    pub(super) async fn instance_run_and_aware_code(&mut self, instance_id: i64) -> Result<(i64, u32), StoreError> {
        let row: Option<(i64, i64)> =
            sqlx::query_as(numbered("SELECT run_id, aware_code FROM instances WHERE instance_id = ?"))
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
        assert_eq!(like_pattern(" Family "), "%family%");
        assert_eq!(like_pattern("100%_a\\b"), "%100\\%\\_a\\\\b%");
    }
}
