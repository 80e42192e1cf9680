//! Prometheus metrics: per service and route request counts, latency
//! histograms and errors, plus whatever gauges the services set.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::Response;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The process-wide recorder; installed once, however many servers a test process starts.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Suffix("duration_seconds".to_owned()),
                LATENCY_BUCKETS,
            )
            .expect("the latency buckets are not empty")
            .build_recorder();
        let handle = recorder.handle();
        // Fails only if another recorder is installed, and then this process's metrics go there.
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was already installed; /metrics may be empty");
        }
        describe();
        handle
    })
}

/// HELP text for every metric the server exports, so that a scrape passes
/// `promtool check metrics` and a dashboard can say what a series means.
/// One list, here, so that a new metric without a description is easy to
/// spot; the lint test in `tests/e2e/gateway.rs` fails when one is missing.
fn describe() {
    use crate::services::payments::provider::resilient::{CALLS_COUNTER, CIRCUIT_GAUGE};
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};

    describe_counter!(
        "shop_http_requests_total",
        "HTTP requests answered, by service, route, method and status"
    );
    describe_counter!(
        "shop_http_errors_total",
        "HTTP requests answered with a 5xx status, by service, route, method and status"
    );
    describe_gauge!(
        IN_FLIGHT_GAUGE,
        "HTTP requests being handled now (until their response starts)"
    );
    describe_histogram!(
        "shop_http_request_duration_seconds",
        Unit::Seconds,
        "Time to answer an HTTP request, by service, route and method"
    );
    describe_counter!(
        "shop_events_total",
        "Events written to the event log, by type"
    );
    describe_counter!(
        "shop_logins_total",
        "Login attempts, by outcome (ok or failed)"
    );
    describe_counter!("shop_orders_created_total", "Orders placed");
    describe_counter!(
        "shop_store_writer_statements_total",
        "SQL statements run by the store's one writer (savepoints and commits included)"
    );
    describe_counter!(
        "shop_store_writer_changes_total",
        "Changes the store's one writer applied; a transaction carries up to 64 (group commit)"
    );
    describe_histogram!(
        "shop_store_writer_transaction_seconds",
        Unit::Seconds,
        "Time the store's one writer spent per transaction, begin to commit; its sum is the writer's busy time"
    );
    describe_gauge!(
        "shop_store_wal_bytes",
        "Size of SQLite's write-ahead log when the checkpointer last looked"
    );
    describe_histogram!(
        "shop_store_checkpoint_seconds",
        Unit::Seconds,
        "Time per WAL checkpoint, by mode (PASSIVE, then RESTART once the log is large)"
    );
    describe_gauge!("shop_orders", "Orders in the store, by status");
    describe_gauge!(
        "shop_net_revenue_cents",
        "Net revenue in minor units, by currency: captured minus refunded, over the orders that \
         keep some of their money (as /api/orders/analytics and the dashboard count it)"
    );
    describe_counter!(
        "shop_payments_total",
        "Payment attempts, by outcome (succeeded, pending, failed, unknown)"
    );
    describe_counter!(
        "shop_revenue_cents_total",
        "Captured payments (gross, before refunds) in minor units of their currency, by \
         currency, since the server started; net revenue is shop_net_revenue_cents"
    );
    describe_counter!(
        "shop_refunds_cents_total",
        "Refunded amounts in minor units of their currency, by currency"
    );
    describe_counter!(
        CALLS_COUNTER,
        "Calls to the payment provider, by provider, operation and result"
    );
    describe_gauge!(
        CIRCUIT_GAUGE,
        "The payment provider's circuit breaker: 0 closed, 1 half-open, 2 open"
    );
    describe_gauge!(
        "shop_notifications_circuit_state",
        "The notification channels' circuit breakers: 0 closed, 1 half-open, 2 open"
    );
    describe_counter!(
        "shop_notifications_total",
        "Notifications that finished, by channel and outcome"
    );
    describe_gauge!(
        "shop_notifications_queue_depth",
        "Notifications waiting to be sent, by priority"
    );
    describe_counter!(
        "shop_webhook_deliveries_total",
        "Webhook delivery attempts, by endpoint and outcome (succeeded, failed, dead)"
    );
    describe_histogram!(
        "shop_webhook_delivery_seconds",
        Unit::Seconds,
        "How long one webhook delivery attempt took, by endpoint"
    );
    describe_gauge!(
        "shop_webhook_backlog",
        "Webhook deliveries waiting (pending or failed), over all endpoints"
    );
    describe_gauge!(
        "shop_webhook_circuit_state",
        "The webhook endpoints' circuit breakers: 0 closed, 1 half-open, 2 open"
    );
    describe_counter!(
        "shop_search_queries_total",
        "Searches answered, by whether the cache answered them"
    );
    describe_histogram!(
        "shop_search_query_duration_seconds",
        Unit::Seconds,
        "Time to answer a search"
    );
    describe_histogram!(
        "shop_search_suggest_duration_seconds",
        Unit::Seconds,
        "Time to answer a suggestion request"
    );
    describe_counter!(
        "shop_search_cache_requests_total",
        "Search cache lookups, by result (hit or miss)"
    );
    describe_gauge!(
        "shop_search_cache_hit_ratio",
        "Share of search cache lookups that hit, since start"
    );
    describe_counter!(
        "shop_search_bloom_lookups_total",
        "Bloom filter lookups, by filter and outcome"
    );
    describe_gauge!(
        "shop_search_bloom_false_positive_rate",
        "Bloom filter false positives seen over lookups, by filter"
    );
    describe_gauge!(
        "shop_search_bloom_estimated_false_positive_rate",
        "Bloom filter false positive rate expected from its fill, by filter"
    );
    describe_gauge!(
        "shop_search_bloom_items",
        "Items in a Bloom filter, by filter"
    );
    describe_counter!(
        "shop_search_records_dropped_total",
        "Searches and product views dropped because the analytics recorder was full, by kind"
    );
    describe_gauge!(
        "shop_search_index_documents",
        "Products in the search index"
    );
    describe_gauge!(
        "shop_search_index_terms",
        "Distinct terms in the search index"
    );
    describe_gauge!(
        "shop_search_index_bytes",
        Unit::Bytes,
        "Heap the search index takes"
    );
    describe_gauge!(
        "shop_search_index_build_seconds",
        Unit::Seconds,
        "Time the last full index build took"
    );
    describe_gauge!(
        "shop_search_suggestions",
        "Entries the suggester can complete"
    );
    describe_counter!(
        "shop_worker_restarts_total",
        "Background worker restarts after a panic or error, by worker"
    );
    describe_gauge!(
        "shop_worker_up",
        "Whether a background worker runs (1) or is restarting (0), by worker"
    );
}

/// The service a route belongs to: `/api/users/me` -> `users`; non-API routes -> `gateway`.
pub fn service_of(route: &str) -> &'static str {
    route
        .strip_prefix("/api/")
        .and_then(|rest| rest.split('/').next())
        .and_then(|name| crate::services::NAMES.iter().find(|known| **known == name))
        .copied()
        .unwrap_or("gateway")
}

/// The method as a label from a fixed set: any other method (HTTP allows
/// arbitrary tokens of any length) counts as `other`, so a client cannot
/// create series at will.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

const IN_FLIGHT_GAUGE: &str = "shop_http_requests_in_flight";

/// Counts a request as in flight until it is dropped, so that a request
/// whose client went away (its future dropped mid-handler) is uncounted too.
struct InFlight;

impl InFlight {
    fn start() -> Self {
        metrics::gauge!(IN_FLIGHT_GAUGE).increment(1.0);
        Self
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!(IN_FLIGHT_GAUGE).decrement(1.0);
    }
}

pub async fn middleware(request: Request, next: Next) -> Response {
    let _in_flight = InFlight::start();
    // Unmatched paths share one label, so scanners cannot blow up the series count.
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let method = method_label(request.method());
    let started = Instant::now();
    let response = next.run(request).await;
    let service = service_of(&route);
    let status = response.status().as_u16();
    let labels = [
        ("service", service.to_owned()),
        ("route", route),
        ("method", method.to_owned()),
    ];
    metrics::histogram!("shop_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    let mut counted = labels.to_vec();
    counted.push(("status", status.to_string()));
    metrics::counter!("shop_http_requests_total", &counted).increment(1);
    if status >= 500 {
        metrics::counter!("shop_http_errors_total", &counted).increment(1);
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        let custom = Method::from_bytes(&[b'X'; 2000]).expect("a token method");
        assert_eq!(method_label(&custom), "other");
        assert_eq!(method_label(&Method::TRACE), "other");
    }

    #[test]
    fn routes_map_to_their_service() {
        assert_eq!(service_of("/api/users/{id}"), "users");
        assert_eq!(service_of("/api/openapi.json"), "gateway");
        assert_eq!(service_of("/api/version"), "gateway");
        assert_eq!(service_of("/api/events"), "gateway");
        assert_eq!(service_of("/health"), "gateway");
        assert_eq!(service_of("unmatched"), "gateway");
    }
}

/// The series only staff and configured scrapers read: what the shop sells
/// and refunds, and how many orders and payments it has.
const BUSINESS_SERIES: &[&str] = &[
    "shop_revenue_cents_total",
    "shop_net_revenue_cents",
    "shop_refunds_cents_total",
    "shop_orders",
    "shop_orders_created_total",
    "shop_payments_total",
];

/// A scrape without the business series: their samples and their `# HELP`
/// and `# TYPE` lines are left out, everything else is kept as it is.
pub fn public_part(text: &str) -> String {
    let business = |line: &str| {
        let name = match line.strip_prefix("# ") {
            Some(comment) => comment.split_whitespace().nth(1).unwrap_or_default(),
            None => line
                .split(|c: char| c == '{' || c.is_whitespace())
                .next()
                .unwrap_or_default(),
        };
        BUSINESS_SERIES.contains(&name)
    };
    let mut public = String::with_capacity(text.len());
    for line in text.lines().filter(|line| !business(line)) {
        public.push_str(line);
        public.push('\n');
    }
    public
}

#[cfg(test)]
mod business_tests {
    use super::*;

    #[test]
    fn the_public_part_leaves_out_business_series_only() {
        let text = "# HELP shop_orders Orders in the store, by status\n\
                    # TYPE shop_orders gauge\n\
                    shop_orders{status=\"paid\"} 2\n\
                    # HELP shop_orders_created_total Orders placed\n\
                    shop_orders_created_total 2\n\
                    shop_revenue_cents_total{currency=\"USD\"} 1999\n\
                    # HELP shop_http_requests_total Requests\n\
                    shop_http_requests_total{method=\"GET\"} 7\n\
                    shop_orders_other 1\n";
        assert_eq!(
            public_part(text),
            "# HELP shop_http_requests_total Requests\n\
             shop_http_requests_total{method=\"GET\"} 7\n\
             shop_orders_other 1\n"
        );
    }
}
