//! The filters of an instance listing, and its SQL built from the filters that are set: only their conditions and
//! only the joins they need, so that SQLite uses the indexes (a `(? IS NULL OR column = ?)` for
//! every possible filter keeps it from doing so, and at 200,000 instances a page took a second).

use shared::ReviewStatus;

use super::Backend;

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

/// A value bound to a `?` of the built SQL, in order.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Bind {
    Int(i64),
    Text(String),
}

/// `FROM instances AS i` with its joins, and the `WHERE` clause (empty when nothing filters).
#[derive(Debug)]
pub(super) struct FilterSql {
    pub from: String,
    pub where_clause: String,
    pub binds: Vec<Bind>,
}

const CURRENT_REVIEWS: &str =
    "SELECT COUNT(*) FROM reviews AS r WHERE r.instance_id = i.instance_id AND r.is_current = 1";

pub(super) fn filter_sql(
    filter: &InstanceFilter,
    status: Option<String>,
    search: Option<String>,
    backend: Backend,
) -> FilterSql {
    let (mut conditions, mut binds): (Vec<String>, Vec<Bind>) = (Vec::new(), Vec::new());
    let (mut questions, mut settings) = (false, false);
    if let Some(run_id) = filter.run_id {
        conditions.push("i.run_id = ?".into());
        binds.push(Bind::Int(run_id));
    }
    if let Some(code) = &filter.country_code {
        conditions.push("i.country_code = ?".into());
        binds.push(Bind::Text(code.clone()));
    }
    if let Some(topic) = filter.topic {
        conditions.push("i.topic = ?".into());
        binds.push(Bind::Int(i64::from(topic)));
    }
    if let Some(status) = status {
        conditions.push("i.review_status = ?".into());
        binds.push(Bind::Text(status));
    }
    if filter.disagreement {
        conditions.push(
            "(SELECT COUNT(DISTINCT r.label) FROM reviews AS r WHERE r.instance_id = i.instance_id AND r.is_current = 1) > 1"
                .into(),
        );
    }
    if let Some(pattern) = search {
        questions = true;
        // The options' texts, from their JSON as each database reads it.
        let option_texts = match backend {
            Backend::Sqlite => "SELECT json_extract(o.value, '$.text') AS text FROM json_each(q.options_json) AS o",
            Backend::Postgres => {
                "SELECT o.value ->> 'text' AS text FROM json_array_elements(q.options_json::json) AS o"
            }
        };
        conditions.push(format!(
            r"(LOWER(i.question_id) LIKE ? ESCAPE '\' OR LOWER(q.text) LIKE ? ESCAPE '\'
              OR EXISTS (SELECT 1 FROM ({option_texts}) AS t WHERE LOWER(t.text) LIKE ? ESCAPE '\'))"
        ));
        binds.extend([Bind::Text(pattern.clone()), Bind::Text(pattern.clone()), Bind::Text(pattern)]);
    }
    if let Some((queue, reviewer)) = &filter.queue {
        match (queue, reviewer) {
            (ReviewQueue::Pending, reviewer) => {
                settings = true;
                if let Some(reviewer) = reviewer {
                    conditions.push(
                        "NOT EXISTS (SELECT 1 FROM reviews AS r WHERE r.instance_id = i.instance_id \
                         AND r.is_current = 1 AND r.reviewer = ?)"
                            .into(),
                    );
                    binds.push(Bind::Text(reviewer.clone()));
                }
                conditions.push(format!("({CURRENT_REVIEWS}) < COALESCE(s.reviewers_per_instance, 1)"));
            }
            // Without a reviewer no one's kept or discarded reviews match.
            (ReviewQueue::Submitted | ReviewQueue::Discarded, None) => conditions.push("1 = 0".into()),
            (ReviewQueue::Submitted, Some(reviewer)) => {
                conditions.push(
                    "EXISTS (SELECT 1 FROM reviews AS r WHERE r.instance_id = i.instance_id AND r.is_current = 1 \
                     AND r.reviewer = ? AND r.label LIKE 'answer:%')"
                        .into(),
                );
                binds.push(Bind::Text(reviewer.clone()));
            }
            (ReviewQueue::Discarded, Some(reviewer)) => {
                conditions.push(
                    "EXISTS (SELECT 1 FROM reviews AS r WHERE r.instance_id = i.instance_id AND r.is_current = 1 \
                     AND r.reviewer = ? AND r.label IN ('reject', 'flag'))"
                        .into(),
                );
                binds.push(Bind::Text(reviewer.clone()));
            }
        }
    }
    let mut from = "FROM instances AS i".to_string();
    if questions {
        from.push_str(" LEFT JOIN questions AS q ON q.question_set = i.question_set AND q.question_id = i.question_id");
    }
    if settings {
        from.push_str(" LEFT JOIN review_settings AS s ON s.run_id = i.run_id");
    }
    let where_clause =
        if conditions.is_empty() { String::new() } else { format!("WHERE {}", conditions.join(" AND ")) };
    FilterSql { from, where_clause, binds }
}
