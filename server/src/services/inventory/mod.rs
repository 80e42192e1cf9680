//! The inventory service (`/api/inventory`): stock per SKU, its movement
//! ledger, reservations with expiry, low-stock alerts and a reconcile check.
//!
//! All the arithmetic happens in the store inside one write transaction per
//! change, guarded by CHECK constraints, so no interleaving of requests can
//! oversell. The sweeper ([`RESERVATION_SWEEPER`]) returns the stock of
//! reservations whose time ran out.

pub mod domain;
mod handlers;
pub mod rules;

use std::time::Duration;

use shop_wire::ServiceHealth;
use shop_wire::health::Check;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::services::health::HealthReport;
use crate::state::AppState;

pub const NAME: &str = "inventory";
pub const RESERVATION_SWEEPER: &str = "reservation_sweeper";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::list))
        .routes(routes!(handlers::reservations))
        .routes(routes!(handlers::reconcile))
        .routes(routes!(handlers::health))
        .routes(routes!(handlers::reservation))
        .routes(routes!(handlers::release))
        .routes(routes!(handlers::commit))
        .routes(routes!(handlers::get, handlers::set))
        .routes(routes!(handlers::adjust))
        .routes(routes!(handlers::movements))
        .routes(routes!(handlers::reserve))
}

pub fn spawn_workers(state: &AppState) {
    let sweeper_state = state.clone();
    state.workers.spawn_periodic(
        RESERVATION_SWEEPER,
        Duration::from_millis(state.config.inventory.sweep_interval_ms),
        move || {
            let state = sweeper_state.clone();
            async move {
                let expired = domain::sweep(&state).await?;
                if expired > 0 {
                    tracing::info!(expired, "expired reservations returned their stock");
                }
                Ok(())
            }
        },
    );
}

pub fn health(state: &AppState, database: Check) -> ServiceHealth {
    let mut report = HealthReport::new(NAME);
    report.add("database", database);
    report.add_worker(&state.workers, RESERVATION_SWEEPER);
    report.finish()
}
