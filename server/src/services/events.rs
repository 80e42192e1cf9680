//! `GET /api/events`: the event log as Server-Sent Events.
//!
//! A client resumes where it left off by sending the last id it saw in
//! `Last-Event-ID` (browsers' EventSource does so on reconnect) or `?after=`.
//! The stream ends when the server shuts down, so shutdown never waits on it.
//! `GET /api/events/log` pages through the same log as JSON, for clients
//! that want what happened so far and then stop (`shop events` without `--follow`).

use std::convert::Infallible;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use serde::Deserialize;
use shop_wire::events::EventKind;
use shop_wire::users::Role;
use shop_wire::{Event, Page};

use crate::auth::{AuthUser, Credential, Staff, bearer_token, credential_role};
use crate::error::{AppError, AppResult};
use crate::events::TypeFilter;
use crate::gateway::json::{ApiJson, ApiQuery, page_offset};
use crate::state::AppState;
use crate::store::EventQuery;

/// The largest page of the event log one request returns.
const MAX_LOG_PAGE: u32 = 1000;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StreamParams {
    /// Comma-separated type patterns such as `order.*,user.registered`; all types when absent.
    #[serde(rename = "type")]
    #[param(nullable = false)]
    kind: Option<String>,
    /// Start after this event id (overridden by a `Last-Event-ID` header); 0 replays the whole log.
    /// Without either, the stream starts with new events only.
    #[param(nullable = false, minimum = 0, maximum = 9_223_372_036_854_775_807_u64)]
    after: Option<u64>,
}

/// Stream events as Server-Sent Events (staff).
#[utoipa::path(get, path = "/api/events", tag = "events", security(("bearer" = [])), params(StreamParams),
    responses((status = 200, content_type = "text/event-stream", description = "one SSE message per event: `id`, `event` = type, `data` = the event JSON"),
              (status = 400, body = shop_wire::ErrorBody), (status = 401, body = shop_wire::ErrorBody), (status = 403, body = shop_wire::ErrorBody)))]
pub async fn stream(
    State(state): State<AppState>,
    Staff(caller): Staff,
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
    let filter = type_filter(params.kind.as_deref())?;
    // The extractor verified this token a moment ago; its expiry ends the stream too.
    // An API key has no token expiry; its own is checked with its revocation.
    let token_expires = match caller.credential {
        Credential::Key(_) => Some(UNIX_EPOCH + Duration::from_secs(u64::from(u32::MAX))),
        Credential::Session(_) => bearer_token(&headers)
            .and_then(|token| state.tokens.verify(token).ok())
            .map(|claims| UNIX_EPOCH + Duration::from_secs(claims.exp)),
    }
    .ok_or_else(|| AppError::unauthenticated("invalid_token", "the access token is not valid"))?;
    let after = match event_id("Last-Event-ID", last_event_id)?.or(event_id("after", params.after)?)
    {
        Some(after) => after,
        None => state.store.latest_event_id().await?,
    };
    let events = state.events.stream_after(after, "live");
    let stopped = state.shutdown.clone().cancelled_owned();
    let messages = async_stream::stream! {
        let mut events = std::pin::pin!(events);
        let mut stopped = std::pin::pin!(stopped);
        let mut recheck = tokio::time::interval(STREAM_RECHECK);
        let mut role = caller.role;
        loop {
            let item = tokio::select! {
                () = &mut stopped => break,
                _ = recheck.tick() => {
                    match still_allowed(&state, &caller, token_expires).await {
                        Some(now) => role = now,
                        None => break,
                    }
                    continue;
                }
                item = events.next() => item,
            };
            let event = match item {
                Some(Ok(event)) => event,
                Some(Err(err)) => {
                    tracing::error!(error = %err, "event stream read failed; closing it");
                    break;
                }
                None => break,
            };
            if concerns_session(&event, &caller) {
                match still_allowed(&state, &caller, token_expires).await {
                    Some(now) => role = now,
                    None => break,
                }
            }
            if visible_to(role, &event.kind) && filter.matches(&event.kind) {
                let data = serde_json::to_string(&event).unwrap_or_default();
                yield Ok(SseEvent::default()
                    .id(event.id.to_string())
                    .event(event.kind.as_str())
                    .data(data));
            }
        }
    };
    Ok(Sse::new(messages).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// How often an open stream asks again whether its caller may still read it.
const STREAM_RECHECK: Duration = Duration::from_secs(2);

/// The most type patterns one request may give; each becomes a clause of
/// the log's query, and SQLite refuses an expression tree past about 1000.
pub const MAX_TYPE_PATTERNS: usize = 32;

fn type_filter(kind: Option<&str>) -> AppResult<TypeFilter> {
    let filter = TypeFilter::parse(kind.unwrap_or_default());
    if filter.len() > MAX_TYPE_PATTERNS {
        return Err(AppError::validation(
            "type",
            format!("at most {MAX_TYPE_PATTERNS} patterns, comma-separated"),
        ));
    }
    Ok(filter)
}

/// `user.*` events carry emails, login addresses and session ids: the user
/// list's data, which only admins may read. Staff see every other event.
const ADMIN_ONLY_PREFIX: &str = "user.";

fn visible_to(role: Role, kind: &str) -> bool {
    role == Role::Admin || !kind.starts_with(ADMIN_ONLY_PREFIX)
}

/// A `user.*` event about the stream's own user or session (a logout, a
/// revocation, a role change), after which its rights are checked at once.
fn concerns_session(event: &Event, caller: &AuthUser) -> bool {
    let names = |field: &str, id: &str| event.data.get(field).and_then(|v| v.as_str()) == Some(id);
    match &caller.credential {
        Credential::Key(key) if event.kind == EventKind::KeyRevoked.as_str() => {
            names("id", key.as_str())
        }
        Credential::Key(_) => {
            event.kind.starts_with(ADMIN_ONLY_PREFIX) && names("user_id", caller.user_id.as_str())
        }
        Credential::Session(session) => {
            event.kind.starts_with(ADMIN_ONLY_PREFIX)
                && (names("session_id", session.as_str())
                    || names("user_id", caller.user_id.as_str()))
        }
    }
}

/// The caller's current role while their token is unexpired, their session
/// live and their role still staff; `None` ends the stream.
async fn still_allowed(
    state: &AppState,
    caller: &AuthUser,
    token_expires: SystemTime,
) -> Option<Role> {
    if SystemTime::now() >= token_expires {
        return None;
    }
    match credential_role(state, caller).await {
        Ok(Some(role)) if role.is_staff() => Some(role),
        Ok(_) => None,
        Err(err) => {
            tracing::warn!(error = %err, "cannot re-check an event stream's session; closing it");
            None
        }
    }
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct LogParams {
    /// Comma-separated type patterns such as `order.*,user.registered`; all types when absent.
    #[serde(rename = "type")]
    #[param(nullable = false)]
    kind: Option<String>,
    /// Only events with an id greater than this (default 0: from the start).
    #[param(nullable = false, minimum = 0, maximum = 9_223_372_036_854_775_807_u64)]
    after: Option<u64>,
    /// Page size, 1-1000 (default 100).
    #[param(nullable = false, minimum = 1, maximum = 1000)]
    limit: Option<u32>,
    /// Matching events to skip (default 0).
    #[param(nullable = false, minimum = 0, maximum = 1_000_000)]
    offset: Option<u64>,
}

/// An event id as a client names it: ids are SQLite integers, so one past
/// `i64::MAX` names no event that can ever exist and is refused, not wrapped.
fn event_id(field: &str, id: Option<u64>) -> AppResult<Option<u64>> {
    match id {
        Some(id) if i64::try_from(id).is_err() => Err(AppError::validation(
            field,
            format!("must be an event id between 0 and {}", i64::MAX),
        )),
        id => Ok(id),
    }
}

/// Page through the event log, oldest first (staff).
#[utoipa::path(get, path = "/api/events/log", tag = "events", security(("bearer" = [])), params(LogParams),
    responses((status = 200, body = shop_wire::Page<shop_wire::Event>), (status = 400, body = shop_wire::ErrorBody),
              (status = 401, body = shop_wire::ErrorBody), (status = 403, body = shop_wire::ErrorBody)))]
pub async fn log(
    State(state): State<AppState>,
    Staff(caller): Staff,
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
        after: event_id("after", params.after)?.unwrap_or(0),
        types: type_filter(params.kind.as_deref())?.into_patterns(),
        excluded: if caller.role == Role::Admin {
            Vec::new()
        } else {
            vec![format!("{ADMIN_ONLY_PREFIX}*")]
        },
        limit,
        offset: page_offset(params.offset)?,
    };
    let (items, total) = state.store.list_events(&query).await?;
    Ok(ApiJson(Page {
        items,
        total,
        limit,
        offset: query.offset,
    }))
}
