//! Turns every error response into the API's error body.
//!
//! Handlers answer with [`AppError`](crate::error::AppError) already; this
//! catches what comes from elsewhere (an unknown route, a wrong method, a body
//! over the limit, a timeout, an axum extractor's plain-text rejection) so
//! that a client never has to parse two error formats.

use axum::body::to_bytes;
use axum::extract::Request;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::json;

use crate::error::error_response;
use crate::gateway::request_id::clipped;

/// Longest plain-text error body kept as the message.
const MAX_MESSAGE: usize = 2048;

pub async fn middleware(request: Request, next: Next) -> Response {
    // Both are the client's choice and go back in the message: cut them like the access log does.
    let method = clipped(request.method().as_str());
    let path = clipped(request.uri().path());
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/json"));
    if status.as_u16() < 400 || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = to_bytes(body, MAX_MESSAGE)
        .await
        .ok()
        .map(|body| String::from_utf8_lossy(&body).trim().to_owned())
        .filter(|text| !text.is_empty());
    let (code, message) = match status {
        StatusCode::NOT_FOUND => ("not_found", format!("no route for {method} {path}")),
        StatusCode::METHOD_NOT_ALLOWED => (
            "method_not_allowed",
            format!("{method} is not allowed on {path}"),
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "payload_too_large",
            "the request body is larger than the server accepts".to_owned(),
        ),
        StatusCode::REQUEST_TIMEOUT | StatusCode::GATEWAY_TIMEOUT => (
            "timeout",
            "the request took longer than the server allows".to_owned(),
        ),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => (
            "unsupported_media_type",
            text.unwrap_or_else(|| "send the body as application/json".to_owned()),
        ),
        StatusCode::TOO_MANY_REQUESTS => ("rate_limited", "too many requests".to_owned()),
        s if s.is_server_error() => (
            "internal_error",
            "the server could not complete the request; quote the request id to an operator"
                .to_owned(),
        ),
        StatusCode::UNAUTHORIZED => (
            "unauthenticated",
            text.unwrap_or_else(|| "authentication required".to_owned()),
        ),
        StatusCode::FORBIDDEN => (
            "forbidden",
            text.unwrap_or_else(|| "not allowed".to_owned()),
        ),
        StatusCode::UNPROCESSABLE_ENTITY => (
            "invalid_body",
            text.unwrap_or_else(|| "invalid body".to_owned()),
        ),
        _ => (
            "bad_request",
            text.unwrap_or_else(|| "the request is not valid".to_owned()),
        ),
    };
    // Keep the original headers (Allow, Retry-After, security headers), swap the body.
    let (normalized, body) = error_response(status, code, message, json!({})).into_parts();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.extend(normalized.headers.clone());
    Response::from_parts(parts, body)
}
