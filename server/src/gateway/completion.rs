//! Every mutating request runs to its end, whoever stops waiting for it.
//!
//! axum drops a handler's future when its client disconnects or the request
//! times out, and a change of several steps (a checkout: order, payment,
//! stock) stopped between them would leave a payment `processing` and stock
//! held until the recovery worker and the sweeper got to them. This layer
//! runs the rest of a mutating request (the idempotency claim, the handler
//! and the storing of its response) on a task of its own: the connection
//! only waits for it, so dropping the wait cancels nothing. Reads are not
//! spawned: dropping them loses nothing. Uploads stream their bodies and are
//! not under this layer: an import cut off mid-body cannot finish anyway, and
//! its rows are committed batch by batch.

use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{Method, StatusCode};
use axum::middleware::Next;
use axum::response::Response;

use super::request_id;
use crate::error::AppError;

/// Whether a request may change something, and so must not be cut short.
pub fn is_mutating(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

pub async fn middleware(request: Request, next: Next) -> Result<Response, AppError> {
    if !is_mutating(request.method()) {
        return Ok(next.run(request).await);
    }
    // The body is read here, on the connection's task: once the client has
    // sent it, hanging up cannot take it from the request. (The body limit
    // layer outside bounds it.)
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, usize::MAX)
        .await
        .map_err(|_| AppError::Status {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "payload_too_large",
            message: "the request body is larger than the server accepts".to_owned(),
        })?;
    let request = Request::from_parts(parts, Body::from(body));
    match tokio::spawn(request_id::carried(next.run(request))).await {
        Ok(response) => Ok(response),
        // A panic in the handler: answered as any other (500, no internals).
        Err(err) => Err(AppError::internal(anyhow::anyhow!(
            "the request's task ended without a response: {err}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use axum::Router;
    use axum::body::Body;
    use axum::middleware::from_fn;
    use axum::routing::post;
    use tower::ServiceExt;

    use super::*;

    /// A route whose work takes a while, and a flag it sets when it is done.
    fn slow_route(layered: bool) -> (Router, Arc<AtomicBool>) {
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        let router = Router::new().route(
            "/work",
            post(move || async move {
                tokio::time::sleep(Duration::from_millis(100)).await;
                flag.store(true, Ordering::SeqCst);
            }),
        );
        let router = if layered {
            router.layer(from_fn(middleware))
        } else {
            router
        };
        (router, done)
    }

    async fn send_and_give_up(router: Router) {
        let request = Request::post("/work").body(Body::empty()).expect("request");
        // The client stops waiting long before the work is done.
        let answered =
            tokio::time::timeout(Duration::from_millis(10), router.oneshot(request)).await;
        assert!(answered.is_err(), "the work should outlast the wait");
        tokio::time::sleep(Duration::from_millis(400)).await;
    }

    #[tokio::test]
    async fn a_mutating_request_finishes_after_its_caller_stops_waiting() {
        let (router, done) = slow_route(true);
        send_and_give_up(router).await;
        assert!(done.load(Ordering::SeqCst), "the work was cut short");
        // Without the layer the same wait cancels the work: the test above is not vacuous.
        let (router, done) = slow_route(false);
        send_and_give_up(router).await;
        assert!(!done.load(Ordering::SeqCst));
    }
}
