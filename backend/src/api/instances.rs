//! `GET /api/instances` (filters, queues, search), `GET /api/instances/download` (CSV or JSON of
//! all matches) and `GET /api/instances/{id}` (everything needed to judge one).

use axum::extract::{Path, Query, State};
use axum::http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use shared::api::Page;
use shared::review::{InstanceDetail, InstanceItem};
use shared::{PromptVariant, ReviewStatus};

use super::auth::Viewer;
use super::{AppError, AppState, Paging};
use crate::pipeline::answer_prompt::{answer_user_prompt, aware_system_prompt};
use crate::store::{InstanceFilter, ReviewFilter, ReviewQueue, WVS_SET};

#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InstanceQuery {
    run: Option<i64>,
    /// A country code, any case.
    culture: Option<String>,
    /// Topic index 0–12 or name.
    topic: Option<String>,
    /// A reviewer's queue (`pending`, `submitted`, `discarded`) or a review status (`accepted`,
    /// `rejected`, `flagged`, `disputed`).
    status: Option<String>,
    /// Only instances whose reviewers disagree.
    #[serde(default)]
    disagreement: bool,
    /// Words searched in the question id, text and options.
    q: Option<String>,
    /// Whose queue `status` means; the logged-in user by default.
    reviewer: Option<String>,
}

impl InstanceQuery {
    fn filter(&self, state: &AppState, viewer: &Viewer) -> Result<InstanceFilter, AppError> {
        let country_code = match self.culture.as_deref().filter(|code| !code.is_empty()) {
            Some(code) => Some(
                state
                    .survey
                    .culture(&code.to_ascii_uppercase())
                    .ok_or_else(|| AppError::NotFound(format!("culture '{code}'")))?
                    .country_code
                    .clone(),
            ),
            None => None,
        };
        let topic = match self.topic.as_deref().filter(|topic| !topic.is_empty()) {
            Some(topic) => {
                Some(state.survey.topic(topic).ok_or_else(|| AppError::NotFound(format!("topic '{topic}'")))?.index)
            }
            None => None,
        };
        let owner = viewer.queue_owner(self.reviewer.as_deref());
        let (queue, review_status) = match self.status.as_deref().unwrap_or_default() {
            "" => (None, None),
            "pending" => (Some((ReviewQueue::Pending, owner)), None),
            queue @ ("submitted" | "discarded") => {
                let Some(owner) = owner else {
                    return Err(AppError::BadRequest(format!(
                        "the {queue} queue is a reviewer's: name the `reviewer`"
                    )));
                };
                let queue = if queue == "submitted" { ReviewQueue::Submitted } else { ReviewQueue::Discarded };
                (Some((queue, Some(owner))), None)
            }
            "accepted" => (None, Some(ReviewStatus::Accepted)),
            "rejected" => (None, Some(ReviewStatus::Rejected)),
            "flagged" => (None, Some(ReviewStatus::Flagged)),
            "disputed" => (None, Some(ReviewStatus::Disputed)),
            other => {
                return Err(AppError::BadRequest(format!(
                    "status '{other}': one of pending, submitted, discarded, accepted, rejected, flagged, disputed"
                )))
            }
        };
        Ok(InstanceFilter {
            run_id: self.run,
            country_code,
            topic,
            review_status,
            queue,
            disagreement: self.disagreement,
            search: self.q.clone(),
        })
    }
}

#[utoipa::path(
    get,
    path = "/api/instances",
    tag = "instances",
    params(InstanceQuery, Paging),
    responses(
        (status = 200, body = Page<InstanceItem>),
        shared::api::RequestErrors,
    )
)]
pub async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<InstanceQuery>,
    Query(paging): Query<Paging>,
) -> Result<Json<Page<InstanceItem>>, AppError> {
    let filter = query.filter(&state, &viewer)?;
    let (total, items) = state.store.instance_items(&filter, paging.limit(), paging.offset()).await?;
    Ok(Json(Page { total, items }))
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
#[derive(utoipa::ToSchema)]
pub enum DownloadFormat {
    #[default]
    Csv,
    Json,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DownloadQuery {
    #[serde(default)]
    format: DownloadFormat,
}

const CSV_HEADER: [&str; 14] = [
    "instance_id",
    "run_id",
    "question_set",
    "question_id",
    "culture",
    "topic",
    "question",
    "unaware_code",
    "unaware_option",
    "aware_code",
    "aware_option",
    "review_status",
    "reviews",
    "required_reviews",
];

/// Every instance matching the filters (no paging), as a CSV or JSON attachment.
#[utoipa::path(
    get,
    path = "/api/instances/download",
    tag = "instances",
    params(InstanceQuery, DownloadQuery),
    responses(
        (status = 200, description = "OK"),
        shared::api::RequestErrors,
    )
)]
pub async fn download(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<InstanceQuery>,
    Query(download): Query<DownloadQuery>,
) -> Result<Response, AppError> {
    let filter = query.filter(&state, &viewer)?;
    let (_, items) = state.store.instance_items(&filter, u32::MAX, 0).await?;
    let (content_type, file_name, body) = match download.format {
        DownloadFormat::Json => {
            let json = serde_json::to_string_pretty(&items)
                .map_err(|error| AppError::Internal(format!("serialising instances: {error}")))?;
            ("application/json", "instances.json", json)
        }
        DownloadFormat::Csv => ("text/csv; charset=utf-8", "instances.csv", instances_csv(&items)),
    };
    let disposition = format!("attachment; filename=\"{file_name}\"");
    Ok(([(CONTENT_TYPE, content_type.to_string()), (CONTENT_DISPOSITION, disposition)], body).into_response())
}

fn instances_csv(items: &[InstanceItem]) -> String {
    let mut csv = CSV_HEADER.join(",") + "\r\n";
    for item in items {
        let instance = &item.instance;
        let status = serde_json::to_value(instance.review_status).ok();
        let fields = [
            instance.instance_id.to_string(),
            instance.run_id.to_string(),
            item.question_set.clone(),
            instance.question_id.clone(),
            instance.country_code.clone(),
            instance.topic.to_string(),
            item.question_text.clone(),
            instance.unaware_code.to_string(),
            item.unaware_option.clone().unwrap_or_default(),
            instance.aware_code.to_string(),
            item.aware_option.clone().unwrap_or_default(),
            status.as_ref().and_then(|value| value.as_str()).unwrap_or_default().to_string(),
            item.reviews.to_string(),
            item.required_reviews.to_string(),
        ];
        csv.push_str(&fields.iter().map(|field| csv_field(field)).collect::<Vec<_>>().join(","));
        csv.push_str("\r\n");
    }
    csv
}

/// RFC 4180: quote a field that holds a comma, a quote or a line break; double its quotes.
fn csv_field(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

#[utoipa::path(
    get,
    path = "/api/instances/{instance_id}",
    tag = "instances",
    params(("instance_id" = i64, Path)),
    responses(
        (status = 200, body = InstanceDetail),
        shared::api::RequestErrors,
    )
)]
pub async fn detail(
    State(state): State<AppState>,
    Path(instance_id): Path<i64>,
) -> Result<Json<InstanceDetail>, AppError> {
    let item = state.store.instance_item(instance_id).await?;
    let instance = &item.instance;
    let question = state.store.question(&item.question_set, &instance.question_id).await?;
    let answers = state.store.answers_to(instance.run_id, &item.question_set, &instance.question_id).await?;
    let unaware = answers
        .iter()
        .find(|answer| answer.country_code.is_none() && answer.variant == PromptVariant::Unaware)
        .cloned();
    // The instance does not record which aware variant it came from: P1 first, then any that matches.
    let is_this_aware = |answer: &&shared::Answer| {
        answer.country_code.as_deref() == Some(instance.country_code.as_str())
            && answer.variant.is_culture_specific()
            && answer.parsed_code == Some(instance.aware_code)
    };
    let aware = answers
        .iter()
        .filter(is_this_aware)
        .find(|answer| answer.variant == PromptVariant::P1)
        .or_else(|| answers.iter().find(is_this_aware))
        .cloned();
    let aware_variant = aware.as_ref().map_or(PromptVariant::P1, |answer| answer.variant);
    let other_cultures = answers
        .iter()
        .filter(|answer| {
            answer.variant == aware_variant
                && answer.country_code.as_deref().is_some_and(|code| code != instance.country_code)
        })
        .cloned()
        .collect();
    let human = (item.question_set == WVS_SET)
        .then(|| state.survey.human(&instance.country_code, &instance.question_id).cloned())
        .flatten();
    let filter = ReviewFilter { instance_id: Some(instance_id), ..ReviewFilter::default() };
    let (_, reviews) = state.store.reviews(&filter, u32::MAX, 0).await?;
    let culture = state
        .survey
        .culture(&instance.country_code)
        .ok_or_else(|| AppError::NotFound(format!("culture '{}'", instance.country_code)))?;
    Ok(Json(InstanceDetail {
        system_prompt: aware_system_prompt(culture),
        user_prompt: answer_user_prompt(&question),
        item,
        question,
        unaware,
        aware,
        other_cultures,
        human,
        reviews,
    }))
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_when_they_must_be() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a, b"), "\"a, b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
