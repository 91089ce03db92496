//! Starting, cancelling, resuming and following runs.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::Json;
use futures_util::stream::{self, Stream, StreamExt};
use serde::Deserialize;
use shared::{Run, RunConfig, RunEvent};
use tokio_stream::wrappers::BroadcastStream;

use super::auth::Viewer;
use super::runs::shown;
use super::{AppError, AppState};

/// `POST /api/runs`: validates and stores the run, and queues it.
#[utoipa::path(
    post,
    path = "/api/runs",
    tag = "run_control",
    request_body = RunConfig,
    responses(
        (status = 201, body = Run),
        shared::api::RequestErrors,
    )
)]
pub async fn create(
    State(state): State<AppState>,
    viewer: Viewer,
    Json(config): Json<RunConfig>,
) -> Result<(StatusCode, Json<Run>), AppError> {
    viewer.require_collaborator()?;
    let run = state.runs.create_from_request(config).await?;
    state.runs.launch(run.run_id);
    Ok((StatusCode::CREATED, Json(shown(&state.store, run))))
}

/// `POST /api/runs/{id}/cancel`: the run stops after its current chunk.
#[utoipa::path(
    post,
    path = "/api/runs/{run_id}/cancel",
    tag = "run_control",
    params(("run_id" = i64, Path)),
    responses(
        (status = 200, body = Run),
        shared::api::RequestErrors,
    )
)]
pub async fn cancel(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(run_id): Path<i64>,
) -> Result<Json<Run>, AppError> {
    viewer.require_collaborator()?;
    Ok(Json(shown(&state.store, state.runs.cancel(run_id).await?)))
}

/// `POST /api/runs/{id}/resume`: queues a stopped run again; it continues where it stopped.
#[utoipa::path(
    post,
    path = "/api/runs/{run_id}/resume",
    tag = "run_control",
    params(("run_id" = i64, Path)),
    responses(
        (status = 200, body = Run),
        shared::api::RequestErrors,
    )
)]
pub async fn resume(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(run_id): Path<i64>,
) -> Result<Json<Run>, AppError> {
    viewer.require_collaborator()?;
    Ok(Json(shown(&state.store, state.runs.resume(run_id).await?)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StreamQuery {
    /// Replay only the events after this id (also read from `Last-Event-ID`).
    after: Option<i64>,
}

/// `GET /api/runs/{id}/stream`: server-sent events, each `{"event_id", "event"}`: the stored
/// events first, then the new ones as they happen; ends after the run's `Finished` event. At most
/// `MAX_EVENT_STREAMS` are open at once (each holds a permit until it ends or its client leaves).
#[utoipa::path(
    get,
    path = "/api/runs/{run_id}/stream",
    tag = "run_control",
    params(("run_id" = i64, Path), StreamQuery),
    responses(
        (status = 200, description = "server-sent events: the run's stored events, then new ones as they happen", content_type = "text/event-stream"),
        shared::api::RequestErrors,
    )
)]
pub async fn stream(
    State(state): State<AppState>,
    Path(run_id): Path<i64>,
    Query(query): Query<StreamQuery>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AppError> {
    state.store.run(run_id).await?;
    let permit = Arc::clone(&state.event_streams).try_acquire_owned().map_err(|_| {
        AppError::TooManyRequests(format!(
            "{} event streams are open, the most this server keeps: try again later, or read \
             /api/runs/{run_id}/events",
            state.event_stream_limit
        ))
    })?;
    let after = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse().ok())
        .or(query.after)
        .unwrap_or(0);
    // Subscribe before reading the store, so no event falls between the two.
    let live = BroadcastStream::new(state.runs.subscribe());
    let stored = state.store.events(run_id, after).await?;
    let last_stored = stored.last().map_or(after, |(event_id, _)| *event_id);
    // A run that will go on (resumed) has events after its Finished one.
    let ended = matches!(stored.last(), Some((_, RunEvent::Finished { .. })));
    let replay = stream::iter(stored).map(|(event_id, event)| sse_event(event_id, &event));
    // The run's new events, up to and including its Finished event.
    let live = stream::unfold((live, ended), move |(mut live, finished)| async move {
        if finished {
            return None;
        }
        while let Some(update) = live.next().await {
            match update {
                Ok(update) if update.run_id == run_id && update.event_id > last_stored => {
                    let finished = matches!(update.event, RunEvent::Finished { .. });
                    return Some((sse_event(update.event_id, &update.event), (live, finished)));
                }
                // Another run's event, one already replayed, or a lag: the store has them all.
                _ => continue,
            }
        }
        None
    });
    // The permit goes with the stream: dropped when it ends or the client goes away.
    let events = replay.chain(live).map(move |event| {
        let _held = &permit;
        event
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

fn sse_event(event_id: i64, event: &RunEvent) -> Result<Event, Infallible> {
    let body = serde_json::json!({ "event_id": event_id, "event": event });
    Ok(Event::default().id(event_id.to_string()).data(body.to_string()))
}
