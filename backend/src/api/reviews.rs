//! Reviews: `POST /api/instances/{id}/reviews`, `DELETE /api/reviews/{id}` (undo the author's
//! latest), `GET /api/reviews`; per run `GET`/`PUT /api/runs/{id}/review-settings` and
//! `GET /api/runs/{id}/agreement` (collaborators).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use shared::api::Page;
use shared::review::{Agreement, NewReview, ReviewSettings};
use shared::{Review, ReviewDecision};

use super::auth::Viewer;
use super::{AppError, AppState, Paging};
use crate::curation::agreement;
use crate::store::ReviewFilter;

const MAX_NOTE_CHARS: usize = 2000;
const MAX_EDITED_OUTPUT_CHARS: usize = 2000;
const MAX_REVIEWERS_PER_INSTANCE: u32 = 100;

#[utoipa::path(
    post,
    path = "/api/instances/{instance_id}/reviews",
    tag = "reviews",
    params(("instance_id" = i64, Path)),
    request_body = NewReview,
    responses(
        (status = 201, body = Review),
        shared::api::RequestErrors,
    )
)]
pub async fn create(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(instance_id): Path<i64>,
    Json(review): Json<NewReview>,
) -> Result<(StatusCode, Json<Review>), AppError> {
    let reviewer = viewer.reviewer(review.reviewer.as_deref())?;
    let item = state.store.instance_item(instance_id).await?;
    if let ReviewDecision::ChangeAnswer { code } = review.decision {
        let question = state.store.question(&item.question_set, &item.instance.question_id).await?;
        if !question.options.iter().any(|option| option.code == code) {
            return Err(AppError::BadRequest(format!(
                "{} has no option {code} (options: {})",
                question.question_id,
                question.option_codes().join(", ")
            )));
        }
    }
    let edited = review.edited_output.as_deref().map(str::trim).filter(|output| !output.is_empty());
    if edited.is_some() && matches!(review.decision, ReviewDecision::Reject | ReviewDecision::FlagStereotype) {
        return Err(AppError::BadRequest("an edited output goes with accept or change_answer".to_string()));
    }
    if edited.is_some_and(|output| output.chars().count() > MAX_EDITED_OUTPUT_CHARS) {
        return Err(AppError::BadRequest(format!("an edited output has at most {MAX_EDITED_OUTPUT_CHARS} characters")));
    }
    if review.note.as_deref().is_some_and(|note| note.chars().count() > MAX_NOTE_CHARS) {
        return Err(AppError::BadRequest(format!("a note has at most {MAX_NOTE_CHARS} characters")));
    }
    let stored = state.store.add_review(instance_id, &reviewer, &review).await?;
    Ok((StatusCode::CREATED, Json(stored)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UndoQuery {
    /// The author's name in open mode.
    reviewer: Option<String>,
}

/// Undoes the author's latest review; the review it superseded, if any, counts again.
#[utoipa::path(
    delete,
    path = "/api/reviews/{review_id}",
    tag = "reviews",
    params(("review_id" = i64, Path), UndoQuery),
    responses(
        (status = 200, body = Review),
        shared::api::RequestErrors,
    )
)]
pub async fn undo(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(review_id): Path<i64>,
    Query(query): Query<UndoQuery>,
) -> Result<Json<Review>, AppError> {
    let reviewer = viewer.reviewer(query.reviewer.as_deref())?;
    Ok(Json(state.store.undo_review(review_id, &reviewer).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReviewQuery {
    run: Option<i64>,
    reviewer: Option<String>,
    instance: Option<i64>,
    #[serde(default)]
    newest_first: bool,
}

/// Current reviews (one per reviewer and instance), oldest first unless `newest_first`: names,
/// notes and edits, for annotators and up (the public sees instances' aggregate status).
#[utoipa::path(
    get,
    path = "/api/reviews",
    tag = "reviews",
    params(ReviewQuery, Paging),
    responses(
        (status = 200, body = Page<Review>),
        shared::api::RequestErrors,
    )
)]
pub async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    Query(query): Query<ReviewQuery>,
    Query(paging): Query<Paging>,
) -> Result<Json<Page<Review>>, AppError> {
    viewer.require_annotator()?;
    let filter = ReviewFilter {
        run_id: query.run,
        reviewer: query.reviewer,
        instance_id: query.instance,
        newest_first: query.newest_first,
    };
    let (total, items) = state.store.reviews(&filter, paging.limit(), paging.offset()).await?;
    Ok(Json(Page { total, items }))
}

#[utoipa::path(
    get,
    path = "/api/runs/{run_id}/review-settings",
    tag = "reviews",
    params(("run_id" = i64, Path)),
    responses(
        (status = 200, body = ReviewSettings),
        shared::api::RequestErrors,
    )
)]
pub async fn settings(
    State(state): State<AppState>,
    Path(run_id): Path<i64>,
) -> Result<Json<ReviewSettings>, AppError> {
    Ok(Json(state.store.review_settings(run_id).await?))
}

/// Sets how many reviewers each instance of the run needs; every instance's status follows.
#[utoipa::path(
    put,
    path = "/api/runs/{run_id}/review-settings",
    tag = "reviews",
    params(("run_id" = i64, Path)),
    request_body = ReviewSettings,
    responses(
        (status = 200, body = ReviewSettings),
        shared::api::RequestErrors,
    )
)]
pub async fn set_settings(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(run_id): Path<i64>,
    Json(settings): Json<ReviewSettings>,
) -> Result<Json<ReviewSettings>, AppError> {
    viewer.require_collaborator()?;
    if !(1..=MAX_REVIEWERS_PER_INSTANCE).contains(&settings.reviewers_per_instance) {
        return Err(AppError::BadRequest(format!("reviewers_per_instance is 1 to {MAX_REVIEWERS_PER_INSTANCE}")));
    }
    state.store.set_review_settings(run_id, settings).await?;
    Ok(Json(settings))
}

#[utoipa::path(
    get,
    path = "/api/runs/{run_id}/agreement",
    tag = "reviews",
    params(("run_id" = i64, Path)),
    responses(
        (status = 200, body = Agreement),
        shared::api::RequestErrors,
    )
)]
pub async fn agreement_of(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(run_id): Path<i64>,
) -> Result<Json<Agreement>, AppError> {
    viewer.require_collaborator()?;
    state.store.run(run_id).await?;
    let labels = state.store.review_labels(run_id).await?;
    Ok(Json(agreement(run_id, &labels)))
}
