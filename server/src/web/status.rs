//! The live status page: every service's health, request rate, p99 and
//! error rate, from the sources `shop dashboard` reads (`/health`,
//! `/metrics`, the event stream). Anyone may read it, so it shows no
//! business figures; `/status/ops` adds stock, orders and searches for staff.

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Json, Response};
use futures::StreamExt;
use serde_json::{Value, json};
use shop_wire::health::SERVICES;

use crate::web::WebState;
use crate::web::pages::{message_page, render};
use crate::web::session::Visitor;

/// The page as it stands now; the script then keeps it current.
pub async fn page(State(web): State<WebState>, Extension(visitor): Extension<Visitor>) -> Response {
    let health = web.call(&visitor, Method::GET, "/health", None).await;
    let services = services(&health.body);
    render(
        &web,
        &visitor,
        StatusCode::OK,
        "status.html",
        json!({"services": services, "overall": health.body["status"], "version": health.body["version"], "ops": false}),
    )
}

/// The eight services in the dashboard's order, each with its health (unknown when `/health` did not say).
fn services(health: &Value) -> Vec<Value> {
    SERVICES
        .iter()
        .map(|name| {
            let status = health["services"]
                .as_array()
                .and_then(|all| all.iter().find(|s| s["service"] == *name))
                .map_or(json!("unknown"), |s| s["status"].clone());
            json!({"name": name, "status": status})
        })
        .collect()
}

fn staff(visitor: &Visitor) -> bool {
    visitor.with(|s| s.user.as_ref().is_some_and(|u| u.is_staff()))
}

fn not_staff(web: &WebState, visitor: &Visitor) -> Response {
    message_page(web, visitor, StatusCode::FORBIDDEN, "status.staff_only", "")
}

/// The staff view: the public page plus stock, orders and searches.
pub async fn ops(State(web): State<WebState>, Extension(visitor): Extension<Visitor>) -> Response {
    if !staff(&visitor) {
        return not_staff(&web, &visitor);
    }
    let (health, figures) = tokio::join!(
        web.call(&visitor, Method::GET, "/health", None),
        figures(&web, &visitor),
    );
    let services = services(&health.body);
    render(
        &web,
        &visitor,
        StatusCode::OK,
        "status.html",
        json!({"services": services, "overall": health.body["status"], "version": health.body["version"], "ops": true, "figures": figures}),
    )
}

/// Stock running lowest, orders by status and today's searches, as the staff API reports them.
async fn figures(web: &WebState, visitor: &Visitor) -> Value {
    let (stock, orders, searches) = tokio::join!(
        web.call(visitor, Method::GET, "/api/inventory?limit=8", None),
        web.call(visitor, Method::GET, "/api/orders/analytics", None),
        web.call(
            visitor,
            Method::GET,
            "/api/search/analytics?hours=24&limit=8",
            None
        ),
    );
    json!({
        "stock": stock.body["items"],
        "orders": orders.body["counts_by_status"],
        "searches": {"total": searches.body["total_queries"], "zero": searches.body["zero_result_total"], "top": searches.body["top_queries"]},
    })
}

/// The staff figures as JSON, fetched by the page whenever the event stream says something changed.
pub async fn ops_data(
    State(web): State<WebState>,
    Extension(visitor): Extension<Visitor>,
) -> Response {
    if !staff(&visitor) {
        return StatusCode::FORBIDDEN.into_response();
    }
    Json(figures(&web, &visitor).await).into_response()
}

/// The API's event stream, with the staff member's token (which the browser never holds).
pub async fn ops_events(
    State(web): State<WebState>,
    Extension(visitor): Extension<Visitor>,
) -> Response {
    let Some(token) = visitor.with(|s| {
        s.user
            .as_ref()
            .filter(|u| u.is_staff())
            .map(|u| u.access_token.clone())
    }) else {
        return StatusCode::FORBIDDEN.into_response();
    };
    let caller = crate::web::api::Caller {
        addr: visitor.addr,
        access_token: Some(&token),
        cart_token: None,
    };
    let response = web.api.stream(caller, "/api/events").await;
    if !response.status().is_success() {
        return response;
    }
    // A browser's EventSource hands one listener only the unnamed events, and
    // the page wants every type: the names go (each event's JSON still says its type).
    let (parts, body) = response.into_parts();
    let events = body
        .into_data_stream()
        .map(|chunk| chunk.map(|bytes| Bytes::from(unnamed(&bytes))));
    Response::from_parts(parts, Body::from_stream(events))
}

/// An SSE chunk without its `event:` lines. The stream writes each event in one chunk.
fn unnamed(chunk: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(chunk.len());
    for line in chunk.split_inclusive(|b| *b == b'\n') {
        if !line.starts_with(b"event:") {
            out.extend_from_slice(line);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::unnamed;

    #[test]
    fn event_names_are_dropped_and_the_rest_kept() {
        let chunk = b"id: 7\nevent: stock.changed\ndata: {\"type\":\"stock.changed\"}\n\n";
        assert_eq!(
            unnamed(chunk),
            b"id: 7\ndata: {\"type\":\"stock.changed\"}\n\n".to_vec()
        );
        assert_eq!(unnamed(b": keep-alive\n\n"), b": keep-alive\n\n".to_vec());
    }
}
