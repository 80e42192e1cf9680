//! The orders service (`/api/orders`): checkout, the status state machine
//! with its history, refunds through the payments service, and analytics.
//!
//! Two workers keep the money path whole: [`ORDER_SWEEPER`] cancels orders
//! not paid in time (their stock goes back) and publishes the `shop_orders`
//! gauge, and [`PAYMENT_RECOVERY`]
//! finishes provider calls that a crash or an outage left open — at start
//! for everything open, then every few seconds for calls past their timeout.

pub mod domain;
pub mod events;
pub mod fulfilment;
mod handlers;
pub mod rules;

use std::time::{Duration, Instant};

use shop_wire::ServiceHealth;
use shop_wire::health::Check;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::services::health::HealthReport;
use crate::services::payments;
use crate::state::AppState;

pub const NAME: &str = "orders";
pub const ORDER_SWEEPER: &str = "order_sweeper";
pub const PAYMENT_RECOVERY: &str = "payment_recovery";
/// How often the `shop_net_revenue_cents` gauge is brought up to date.
const NET_REVENUE_EVERY: Duration = Duration::from_secs(5);

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::create, handlers::list))
        .routes(routes!(handlers::analytics))
        .routes(routes!(crate::services::pricing::handlers::quote))
        .routes(routes!(handlers::health))
        .routes(routes!(handlers::get))
        .routes(routes!(handlers::pay))
        .routes(routes!(handlers::ship))
        .routes(routes!(handlers::deliver))
        .routes(routes!(handlers::cancel))
        .routes(routes!(handlers::refund))
        .routes(routes!(crate::services::returns::handlers::create))
        .routes(routes!(crate::services::documents::handlers::invoice))
        .routes(routes!(crate::services::documents::handlers::packing_slip))
}

pub fn spawn_workers(state: &AppState) {
    let sweeper_state = state.clone();
    // Net revenue adds up every sold order: a scan, so not every second.
    let revenue_published = std::sync::Mutex::new(None::<Instant>);
    state.workers.spawn_periodic(
        ORDER_SWEEPER,
        Duration::from_millis(state.config.commerce.sweep_interval_ms),
        move || {
            let state = sweeper_state.clone();
            let revenue_due = {
                let mut published = revenue_published
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let due = published.is_none_or(|at| at.elapsed() >= NET_REVENUE_EVERY);
                if due {
                    *published = Some(Instant::now());
                }
                due
            };
            async move {
                let cancelled = domain::sweep(&state).await?;
                if cancelled > 0 {
                    tracing::info!(
                        cancelled,
                        "unpaid orders cancelled and their stock released"
                    );
                }
                // The business gauge of orders by status, for /metrics and the dashboard.
                for (status, count) in state.store.order_counts().await? {
                    metrics::gauge!("shop_orders", "status" => status.as_str()).set(count as f64);
                }
                if revenue_due {
                    for net in state.store.net_revenue().await? {
                        metrics::gauge!("shop_net_revenue_cents", "currency" => net.currency.code())
                            .set(net.amount_cents as f64);
                    }
                }
                Ok(())
            }
        },
    );
    let recovery_state = state.clone();
    let settings = &state.config.commerce;
    // A call younger than its whole retry budget may still be answered.
    let budget = settings.provider_timeout_ms * u64::from(settings.provider_attempts)
        + settings.provider_retry_base_ms * (1 << settings.provider_attempts.min(10));
    let started = std::sync::atomic::AtomicBool::new(false);
    state
        .workers
        .spawn_periodic(PAYMENT_RECOVERY, Duration::from_secs(5), move || {
            let state = recovery_state.clone();
            // The first round runs at start: nothing of this process is in flight yet.
            let first = !started.swap(true, std::sync::atomic::Ordering::SeqCst);
            let min_age = if first {
                time::Duration::ZERO
            } else {
                time::Duration::milliseconds(budget as i64)
            };
            async move {
                let (charges, refunds) = payments::domain::recover(&state, min_age).await?;
                if charges + refunds > 0 {
                    tracing::info!(charges, refunds, "finished provider calls left open");
                }
                Ok(())
            }
        });
}

pub fn health(state: &AppState, database: Check) -> ServiceHealth {
    let mut report = HealthReport::new(NAME);
    report.add("database", database);
    report.add_worker(&state.workers, ORDER_SWEEPER);
    report.add_worker(&state.workers, PAYMENT_RECOVERY);
    report.finish()
}
