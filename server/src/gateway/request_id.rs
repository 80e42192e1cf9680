//! `X-Request-Id`: accepted from the client when sane, generated otherwise,
//! echoed on the response, attached to every log line of the request and to
//! every error body. Also writes the one access-log line per request.

use std::time::Instant;

use axum::extract::{ConnectInfo, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use tracing::Instrument;

use super::ClientAddr;

pub const HEADER: &str = "x-request-id";

tokio::task_local! {
    static REQUEST_ID: String;
}

/// The id of the request being handled on this task, if any.
pub fn current() -> Option<String> {
    REQUEST_ID.try_with(Clone::clone).ok()
}

/// A client's id is kept if it is 1-128 visible ASCII characters; anything
/// else could forge log lines, so it is replaced.
fn accepted(value: &HeaderValue) -> Option<String> {
    let text = value.to_str().ok()?;
    let sane = !text.is_empty() && text.len() <= 128 && text.bytes().all(|b| b.is_ascii_graphic());
    sane.then(|| text.to_owned())
}

/// The longest method or path the access log writes; a client chooses both,
/// and a 60 KB method must not become a 60 KB log line.
const LOGGED_VALUE_MAX: usize = 256;

/// `value`, cut to [`LOGGED_VALUE_MAX`] bytes (on a character boundary) with `…` when cut.
pub(crate) fn clipped(value: &str) -> String {
    if value.len() <= LOGGED_VALUE_MAX {
        return value.to_owned();
    }
    let mut end = LOGGED_VALUE_MAX;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &value[..end])
}

pub async fn middleware(request: Request, next: Next) -> Response {
    let id = request
        .headers()
        .get(HEADER)
        .and_then(accepted)
        .unwrap_or_else(|| format!("req_{}", ulid::Ulid::new()));
    // Behind a trusted proxy this is the forwarded client, not the proxy.
    let client = request
        .extensions()
        .get::<ConnectInfo<ClientAddr>>()
        .map(|info| info.0.0.ip());
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        client = client.map(tracing::field::display),
        method = %clipped(request.method().as_str()),
        path = %clipped(request.uri().path()),
    );
    let started = Instant::now();
    let mut response = REQUEST_ID
        .scope(id.clone(), next.run(request))
        .instrument(span.clone())
        .await;
    let status = response.status().as_u16();
    // Microseconds are all a reader of the log can use: 0.37, not 0.37166899999999997.
    let latency_ms = (started.elapsed().as_secs_f64() * 100_000.0).round() / 100.0;
    span.in_scope(|| {
        if status >= 500 {
            tracing::error!(status, latency_ms, "request failed");
        } else {
            tracing::info!(status, latency_ms, "request");
        }
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert(HEADER, value);
    }
    response
}

/// `work` as part of the current request, keeping its id and log span when
/// it runs on a task of its own (task-locals do not follow a spawn).
pub fn carried<F: std::future::Future>(work: F) -> impl std::future::Future<Output = F::Output> {
    let work = work.instrument(tracing::Span::current());
    match current() {
        Some(id) => futures::future::Either::Left(REQUEST_ID.scope(id, work)),
        None => futures::future::Either::Right(work),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut_in_the_log() {
        assert_eq!(clipped("GET"), "GET");
        let cut = clipped(&"é".repeat(400));
        assert!(cut.len() <= LOGGED_VALUE_MAX + "…".len(), "{}", cut.len());
        assert!(cut.ends_with('…'));
    }

    #[test]
    fn forged_or_oversized_ids_are_not_accepted() {
        assert_eq!(
            accepted(&HeaderValue::from_static("abc-123")),
            Some("abc-123".to_owned())
        );
        assert_eq!(accepted(&HeaderValue::from_static("has space")), None);
        assert_eq!(
            accepted(&HeaderValue::from_str(&"x".repeat(129)).expect("header")),
            None
        );
    }
}
