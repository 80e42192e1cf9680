//! The gateway: one router for every service, with the cross-cutting layers
//! of SPEC section 3 in front of all of them.
//!
//! From the outside in: request id and access log, error normalization,
//! metrics, secure headers, CORS, panic catching, rate limits, body limit,
//! idempotency, and (on every route but the event stream) a timeout.

pub mod completion;
pub mod connections;
pub mod errors;
pub mod idempotency;
pub mod json;
pub mod metrics;
mod openapi_errors;
pub mod proxy;
pub mod rate_limit;
pub mod request_id;
pub mod tls;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::middleware::{from_fn, from_fn_with_state};
use axum::response::IntoResponse;
use serde::Serialize;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::tokens::sha256_hex;
use crate::error::error_response;
use crate::services;
use crate::state::AppState;
use json::ApiJson;
use rate_limit::Limiters;

/// The client's address, as rate limits and session records see it, for plain and TLS connections alike.
#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub std::net::SocketAddr);

/// Sweeps expired idempotency records and idle rate-limit state.
pub const GATEWAY_SWEEPER: &str = "gateway_sweeper";

#[derive(OpenApi)]
#[openapi(
    info(title = "shop", description = "The shop commerce platform API. Errors are always `{\"error\":{\"code\",\"message\",\"request_id\",\"details\"}}`; every mutating route accepts `Idempotency-Key`."),
    modifiers(&BearerAuth),
    components(schemas(
        shop_wire::ErrorBody,
        shop_wire::Event,
        // Named by the export and import parameters, which take them by reference.
        shop_wire::products::DataFormat,
        shop_wire::products::StockImport,
        shop_wire::reports::ReportGroup,
        services::reports::ReportFormat,
        shop_wire::documents::DocumentFormat
    ))
)]
struct ApiDoc;

struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Version {
    name: &'static str,
    version: &'static str,
}

/// The server's name and version: the cheapest JSON route, for liveness probes.
#[utoipa::path(get, path = "/api/version", tag = "platform", responses((status = 200, body = Version)))]
async fn version() -> ApiJson<Version> {
    ApiJson(Version {
        name: "shop",
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// Prometheus metrics in the text exposition format. The business figures
/// (revenue, refunds, order and payment counts) are only for staff tokens,
/// the configured scrape token (`SHOP_METRICS_TOKEN`) and the configured
/// addresses (`SHOP_METRICS_ADDRESSES`); anyone else gets the rest.
#[utoipa::path(get, path = "/metrics", tag = "platform", security((), ("bearer" = [])),
    responses((status = 200, content_type = "text/plain")))]
async fn metrics_text(
    State(state): State<AppState>,
    ConnectInfo(ClientAddr(peer)): ConnectInfo<ClientAddr>,
    headers: HeaderMap,
) -> impl IntoResponse {
    let text = metrics::handle().render();
    let text = if reads_business_metrics(&state, &headers, peer.ip()).await {
        text
    } else {
        metrics::public_part(&text)
    };
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text)
}

/// Whether a scrape may see the business figures. A bearer that is neither
/// the scrape token nor a live staff session is not refused: it simply
/// gets the public part, as an anonymous scrape does.
async fn reads_business_metrics(state: &AppState, headers: &HeaderMap, client: IpAddr) -> bool {
    if state.config.metrics_addresses.contains(&client) {
        return true;
    }
    let Some(token) = crate::auth::bearer_token(headers) else {
        return false;
    };
    if let Some(configured) = &state.config.metrics_token {
        // Compared as digests, so the time taken says nothing about the token.
        if sha256_hex(token) == sha256_hex(configured) {
            return true;
        }
    }
    let Ok(claims) = state.tokens.verify(token) else {
        return false;
    };
    matches!(
        crate::auth::session_role(state, &claims.sid, &claims.sub).await,
        Ok(Some(role)) if role.is_staff()
    )
}

/// The serialized OpenAPI document, made once at start and shared by every response.
#[derive(Clone)]
struct OpenApiJson(Bytes);

/// This document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "platform", responses((status = 200, content_type = "application/json")))]
async fn openapi_json(State(OpenApiJson(doc)): State<OpenApiJson>) -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], doc)
}

/// Opens the request's audit scope: its client address and request id, and
/// (once the auth extractor knows it) its caller, carried to every write it
/// makes. See `store::audit`.
async fn audit_scope(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let ip = request
        .extensions()
        .get::<ConnectInfo<ClientAddr>>()
        .map(|info| info.0.0.ip().to_string());
    crate::store::audit::AuditScope::new(ip, request_id::current())
        .run(next.run(request))
        .await
}

async fn no_route() -> StatusCode {
    StatusCode::NOT_FOUND
}

/// Every route with its middleware, and the OpenAPI document that describes them.
pub fn app(state: AppState) -> Router {
    let config = state.config.clone();
    let limiters = Limiters::new(&config.rate_limits, state.tokens.clone());
    spawn_sweeper(&state, limiters.clone());

    let timeout = TimeoutLayer::with_status_code(
        StatusCode::GATEWAY_TIMEOUT,
        Duration::from_secs(config.request_timeout_seconds),
    );
    let (timed, mut doc) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .nest("/api/users", services::users::router(limiters.clone()))
        .nest("/api/notifications", services::notifications::router())
        .nest("/api/products", services::products::router())
        .nest("/api/inventory", services::inventory::router())
        .nest("/api/cart", services::cart::router())
        .nest("/api/orders", services::orders::router())
        .nest("/api/returns", services::returns::router())
        .nest("/api/documents", services::documents::router())
        .nest("/api/payments", services::payments::router())
        .nest("/api/search", services::search::router())
        .nest("/api/keys", services::keys::router())
        .nest("/api/audit", services::audit::router())
        .nest("/api/webhooks", services::webhooks::router())
        .nest("/api/shipping", services::pricing::shipping_router())
        .nest("/api/tax", services::pricing::tax_router())
        .nest("/api/discounts", services::pricing::discounts_router())
        .nest("/api/customers", services::reports::customers_router())
        .nest("/api/reports", services::reports::reports_router())
        .routes(routes!(version))
        .routes(routes!(services::health::system))
        .routes(routes!(metrics_text))
        .routes(routes!(services::events::log))
        // Innermost: on the task that runs the handler (the completion layer spawns one).
        .layer(from_fn(audit_scope))
        .layer(from_fn_with_state(state.clone(), idempotency::middleware))
        // Inside the timeout: a request that times out still runs to its end.
        .layer(from_fn(completion::middleware))
        .layer(timeout)
        .split_for_parts();
    // The event stream is long-lived by design, so it is outside the timeout.
    let (streams, stream_doc) = OpenApiRouter::new()
        .routes(routes!(services::events::stream))
        .layer(from_fn(audit_scope))
        .split_for_parts();
    let (uploads, upload_doc) = OpenApiRouter::new()
        .nest("/api/products", services::products::upload_router())
        .layer(from_fn(audit_scope))
        .split_for_parts();
    let (doc_route, doc_doc) = OpenApiRouter::new()
        .routes(routes!(openapi_json))
        .split_for_parts();
    doc.merge(stream_doc);
    doc.merge(upload_doc);
    doc.merge(doc_doc);
    openapi_errors::add_gateway_errors(&mut doc);
    let doc = OpenApiJson(Bytes::from(
        doc.to_json().expect("the OpenAPI document serializes"),
    ));

    let bounded = timed
        .merge(streams)
        .with_state(state.clone())
        .merge(doc_route.with_state(doc))
        .layer(DefaultBodyLimit::max(config.body_limit_bytes))
        .layer(RequestBodyLimitLayer::new(config.body_limit_bytes));
    // Uploads stream bodies of any size: outside the body limit and the
    // idempotency layer (which buffers bodies), under every other layer.
    let routes = bounded
        .merge(uploads.with_state(state.clone()))
        .fallback(no_route)
        .layer(from_fn_with_state(limiters, rate_limit::middleware))
        .layer(CatchPanicLayer::custom(|panic: Box<dyn std::any::Any + Send>| {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            tracing::error!(panic = %message, "handler panicked");
            error_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "the server could not complete the request; quote the request id to an operator".to_owned(),
                serde_json::json!({}),
            )
        }));
    let routes = match cors(&config.cors_origins) {
        Some(cors) => routes.layer(cors),
        None => routes,
    };
    secure_headers(routes, config.tls_cert.is_some())
        .layer(from_fn(metrics::middleware))
        .layer(from_fn(errors::middleware))
        .layer(from_fn(request_id::middleware))
}

fn cors(origins: &[String]) -> Option<CorsLayer> {
    let origins: Vec<HeaderValue> = origins
        .iter()
        .filter_map(|o| HeaderValue::from_str(o).ok())
        .collect();
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins))
            .allow_methods([
                Method::GET,
                Method::POST,
                Method::PUT,
                Method::PATCH,
                Method::DELETE,
            ])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                header::IF_MATCH,
                HeaderName::from_static(idempotency::HEADER),
                HeaderName::from_static(request_id::HEADER),
                HeaderName::from_static("last-event-id"),
            ])
            .expose_headers([
                HeaderName::from_static(request_id::HEADER),
                header::RETRY_AFTER,
                HeaderName::from_static(idempotency::REPLAYED_HEADER),
            ])
            .max_age(Duration::from_secs(3600)),
    )
}

fn secure_headers(router: Router, tls: bool) -> Router {
    let fixed = [
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; frame-ancestors 'none'",
        ),
        (header::CACHE_CONTROL, "no-store"),
        (
            HeaderName::from_static("cross-origin-resource-policy"),
            "same-origin",
        ),
    ];
    let mut router = router;
    for (name, value) in fixed {
        router = router.layer(SetResponseHeaderLayer::if_not_present(
            name,
            HeaderValue::from_static(value),
        ));
    }
    if tls {
        router = router.layer(SetResponseHeaderLayer::if_not_present(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        ));
    }
    router
}

fn spawn_sweeper(state: &AppState, limiters: Arc<Limiters>) {
    let sweeper_state = state.clone();
    state.workers.spawn_periodic(
        GATEWAY_SWEEPER,
        Duration::from_secs(state.config.sweep_interval_seconds),
        move || {
            let (state, limiters) = (sweeper_state.clone(), limiters.clone());
            async move {
                limiters.forget_idle();
                let purged = state
                    .store
                    .purge_idempotency(crate::store::now() - idempotency::RETENTION)
                    .await?;
                if purged > 0 {
                    tracing::info!(purged, "swept expired idempotency keys");
                }
                Ok(())
            }
        },
    );
}
