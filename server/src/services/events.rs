//! `GET /api/events`: the event log as Server-Sent Events.
//!
//! A client resumes where it left off by sending the last id it saw in
//! `Last-Event-ID` (browsers' EventSource does so on reconnect) or `?after=`.
//! The stream ends when the server shuts down, so shutdown never waits on it.
//! `GET /api/events/log` pages through the same log as JSON, for clients
//! that want what happened so far and then stop (`shop events` without `--follow`).

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use shop_wire::{Event, Page};

use crate::auth::Staff;
use crate::error::{AppError, AppResult};
use crate::events::TypeFilter;
use crate::gateway::json::{ApiJson, ApiQuery};
use crate::state::AppState;
use crate::store::EventQuery;

/// The largest page of the event log one request returns.
const MAX_LOG_PAGE: u32 = 1000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct StreamParams {
    /// Comma-separated type patterns such as `order.*,user.registered`; all types when absent.
    #[serde(rename = "type")]
    kind: Option<String>,
    /// Start after this event id (overridden by a `Last-Event-ID` header); 0 replays the whole log.
    /// Without either, the stream starts with new events only.
    after: Option<u64>,
}

/// Stream events as Server-Sent Events (staff).
#[utoipa::path(get, path = "/api/events", tag = "events", security(("bearer" = [])), params(StreamParams),
    responses((status = 200, content_type = "text/event-stream", description = "one SSE message per event: `id`, `event` = type, `data` = the event JSON"),
              (status = 401, body = shop_wire::ErrorBody), (status = 403, body = shop_wire::ErrorBody)))]
pub async fn stream(
    State(state): State<AppState>,
    _: Staff,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<StreamParams>,
) -> AppResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    let last_event_id = match headers.get("last-event-id") {
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    AppError::validation("Last-Event-ID", "must be an event id (a whole number)")
                })?,
        ),
        None => None,
    };
    let after = match last_event_id.or(params.after) {
        Some(after) => after,
        None => state.store.latest_event_id().await?,
    };
    let filter = TypeFilter::parse(params.kind.as_deref().unwrap_or_default());
    let events = state
        .events
        .stream_after(after)
        .take_until(state.shutdown.clone().cancelled_owned())
        .filter_map(move |item| {
            let message = match item {
                Ok(event) if filter.matches(&event.kind) => {
                    let data = serde_json::to_string(&event).unwrap_or_default();
                    Some(Ok(SseEvent::default()
                        .id(event.id.to_string())
                        .event(event.kind)
                        .data(data)))
                }
                Ok(_) => None,
                Err(err) => {
                    tracing::error!(error = %err, "event stream read failed; closing it");
                    None
                }
            };
            std::future::ready(message)
        });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct LogParams {
    /// Comma-separated type patterns such as `order.*,user.registered`; all types when absent.
    #[serde(rename = "type")]
    kind: Option<String>,
    /// Only events with an id greater than this (default 0: from the start).
    after: Option<u64>,
    /// Page size, 1-1000 (default 100).
    limit: Option<u32>,
    /// Matching events to skip (default 0).
    offset: Option<u64>,
}

/// Page through the event log, oldest first (staff).
#[utoipa::path(get, path = "/api/events/log", tag = "events", security(("bearer" = [])), params(LogParams),
    responses((status = 200, body = shop_wire::Page<shop_wire::Event>), (status = 400, body = shop_wire::ErrorBody),
              (status = 401, body = shop_wire::ErrorBody), (status = 403, body = shop_wire::ErrorBody)))]
pub async fn log(
    State(state): State<AppState>,
    _: Staff,
    ApiQuery(params): ApiQuery<LogParams>,
) -> AppResult<ApiJson<Page<Event>>> {
    let limit = params.limit.unwrap_or(100);
    if limit == 0 || limit > MAX_LOG_PAGE {
        return Err(AppError::validation(
            "limit",
            format!("must be between 1 and {MAX_LOG_PAGE}"),
        ));
    }
    let query = EventQuery {
        after: params.after.unwrap_or(0),
        types: TypeFilter::parse(params.kind.as_deref().unwrap_or_default()).into_patterns(),
        limit,
        offset: params.offset.unwrap_or(0),
    };
    let (items, total) = state.store.list_events(&query).await?;
    Ok(ApiJson(Page {
        items,
        total,
        limit,
        offset: query.offset,
    }))
}
