//! `Idempotency-Key` for every mutating route.
//!
//! The first request with a key claims it durably, runs, and stores its
//! response; a retry with the same key and the same request gets that stored
//! response back (marked `Idempotent-Replayed: true`) without running again;
//! the same key with a different request is a 409. A request is the same when
//! its method, path, query, `Authorization` header and body are, so one
//! caller's key can never replay another caller's response. Server errors and
//! 429s are not stored: the client may retry them for real.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::error::AppError;
use crate::state::AppState;
use crate::store::{IdempotencyBegin, StoredResponse};

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// Responses are kept for replay this long.
pub const RETENTION: time::Duration = time::Duration::hours(24);
/// A claim older than this whose request never finished (the process died) can be retried.
const STALE_CLAIM: time::Duration = time::Duration::minutes(5);

fn fingerprint(
    method: &Method,
    uri: &str,
    authorization: Option<&HeaderValue>,
    body: &[u8],
) -> String {
    let mut hash = Sha256::new();
    for part in [
        method.as_str().as_bytes(),
        uri.as_bytes(),
        authorization.map_or(&[][..], HeaderValue::as_bytes),
    ] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hash.update(body);
    hex::encode(hash.finalize())
}

fn valid_key(value: &HeaderValue) -> Option<String> {
    let key = value.to_str().ok()?;
    (!key.is_empty() && key.len() <= 255 && key.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| key.to_owned())
}

pub async fn middleware(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, AppError> {
    let mutating = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    let Some(raw_key) = request.headers().get(HEADER).filter(|_| mutating) else {
        return Ok(next.run(request).await);
    };
    let key = valid_key(raw_key).ok_or_else(|| {
        AppError::validation(
            HEADER,
            "must be 1-255 visible ASCII characters, e.g. a UUID",
        )
    })?;
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, state.config.body_limit_bytes)
        .await
        .map_err(|_| AppError::Status {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "payload_too_large",
            message: "the request body is larger than the server accepts".to_owned(),
        })?;
    let uri = parts.uri.path_and_query().map_or("", |pq| pq.as_str());
    let print = fingerprint(
        &parts.method,
        uri,
        parts.headers.get(header::AUTHORIZATION),
        &body,
    );

    match state
        .store
        .begin_idempotent(&key, &print, STALE_CLAIM)
        .await?
    {
        IdempotencyBegin::Replay(stored) => Ok(replay(stored)),
        IdempotencyBegin::Mismatch => Err(AppError::conflict(
            "idempotency_key_reused",
            "this Idempotency-Key was already used for a different request",
        )),
        IdempotencyBegin::InProgress => Err(AppError::conflict(
            "idempotency_in_progress",
            "a request with this Idempotency-Key is still running; retry shortly",
        )),
        IdempotencyBegin::Started => {
            let response = next.run(Request::from_parts(parts, Body::from(body))).await;
            finish(&state, &key, response).await
        }
    }
}

async fn finish(state: &AppState, key: &str, response: Response) -> Result<Response, AppError> {
    let status = response.status();
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        state.store.abandon_idempotent(key).await?;
        return Ok(response);
    }
    // The request has run: its response must be kept whatever its size, or a
    // retry would run it a second time.
    let (parts, body) = response.into_parts();
    let bytes = to_bytes(body, usize::MAX)
        .await
        .map_err(AppError::internal)?;
    let stored = StoredResponse {
        status: status.as_u16(),
        content_type: parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: bytes.to_vec(),
    };
    state.store.complete_idempotent(key, &stored).await?;
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

fn replay(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut response = (status, stored.body).into_response();
    let headers = response.headers_mut();
    if let Some(value) = stored
        .content_type
        .and_then(|ct| HeaderValue::from_str(&ct).ok())
    {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_separates_callers_and_bodies() {
        let alice = HeaderValue::from_static("Bearer a");
        let bob = HeaderValue::from_static("Bearer b");
        let base = fingerprint(&Method::POST, "/api/x", Some(&alice), b"{}");
        assert_eq!(
            base,
            fingerprint(&Method::POST, "/api/x", Some(&alice), b"{}")
        );
        assert_ne!(
            base,
            fingerprint(&Method::POST, "/api/x", Some(&bob), b"{}")
        );
        assert_ne!(
            base,
            fingerprint(&Method::POST, "/api/x", Some(&alice), b"{ }")
        );
        assert_ne!(
            base,
            fingerprint(&Method::POST, "/api/y", Some(&alice), b"{}")
        );
    }
}
