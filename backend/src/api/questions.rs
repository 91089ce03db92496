use axum::extract::{Path, Query, State};
use axum::Json;
use serde::Deserialize;
use shared::api::{Page, QuestionDetail};
use shared::{Answer, Question};

use super::{AppError, AppState, Paging};
use crate::store::WVS_SET;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QuestionQuery {
    /// Topic index 0–12 or name.
    topic: Option<String>,
    /// The question set; `wvs` by default.
    set: Option<String>,
}

#[utoipa::path(
    get,
    path = "/api/questions",
    tag = "questions",
    params(QuestionQuery, Paging),
    responses(
        (status = 200, body = Page<Question>),
        shared::api::RequestErrors,
    )
)]
pub async fn list(
    State(state): State<AppState>,
    Query(query): Query<QuestionQuery>,
    Query(paging): Query<Paging>,
) -> Result<Json<Page<Question>>, AppError> {
    let topic = match &query.topic {
        Some(topic) => {
            Some(state.survey.topic(topic).ok_or_else(|| AppError::NotFound(format!("topic '{topic}'")))?.index)
        }
        None => None,
    };
    let question_set = query.set.as_deref().unwrap_or(WVS_SET);
    let (total, items) = state.store.questions(question_set, topic, paging.limit(), paging.offset()).await?;
    if total == 0 && question_set != WVS_SET {
        return Err(AppError::NotFound(format!("question set '{question_set}'")));
    }
    Ok(Json(Page { total, items }))
}

/// A WVS question with every culture's human answer distribution.
#[utoipa::path(
    get,
    path = "/api/questions/{question_id}",
    tag = "questions",
    params(("question_id" = String, Path)),
    responses(
        (status = 200, body = QuestionDetail),
        shared::api::RequestErrors,
    )
)]
pub async fn detail(
    State(state): State<AppState>,
    Path(question_id): Path<String>,
) -> Result<Json<QuestionDetail>, AppError> {
    let question = state.store.question(WVS_SET, &question_id).await?;
    let human = state
        .survey
        .cultures
        .iter()
        .filter_map(|culture| state.survey.human(&culture.country_code, &question_id).cloned())
        .collect();
    Ok(Json(QuestionDetail { question, human }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AnswersQuery {
    /// The run; the newest one by default.
    run: Option<i64>,
    /// The question set; `wvs` by default.
    set: Option<String>,
}

/// A run's answers to a question: the culture-unaware one first, then each culture's.
#[utoipa::path(
    get,
    path = "/api/questions/{question_id}/answers",
    tag = "questions",
    params(("question_id" = String, Path), AnswersQuery),
    responses(
        (status = 200, body = Page<Answer>),
        shared::api::RequestErrors,
    )
)]
pub async fn answers(
    State(state): State<AppState>,
    Path(question_id): Path<String>,
    Query(query): Query<AnswersQuery>,
) -> Result<Json<Page<Answer>>, AppError> {
    let question_set = query.set.as_deref().unwrap_or(WVS_SET);
    state.store.question(question_set, &question_id).await?;
    let run_id = match query.run {
        Some(run_id) => state.store.run(run_id).await?.run_id,
        None => match state.store.runs(1, 0).await?.1.first() {
            Some(run) => run.run_id,
            None => return Ok(Json(Page { total: 0, items: Vec::new() })),
        },
    };
    let items = state.store.answers_to(run_id, question_set, &question_id).await?;
    Ok(Json(Page { total: items.len() as u64, items }))
}
