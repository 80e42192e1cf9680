//! The payments service (`/api/payments`): payment attempts, refunds with a
//! per-payment ledger, bank-transfer settlement, analytics, and the
//! providers that move the money ([`provider`]).

pub mod domain;
mod handlers;
pub mod provider;
pub mod rules;

use shop_wire::ServiceHealth;
use shop_wire::health::Check;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::services::health::HealthReport;
use crate::state::AppState;

pub const NAME: &str = "payments";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::list))
        .routes(routes!(handlers::analytics))
        .routes(routes!(handlers::health))
        .routes(routes!(handlers::get))
        .routes(routes!(handlers::refund))
        .routes(routes!(handlers::settle))
}

pub fn health(state: &AppState, database: Check) -> ServiceHealth {
    let mut report = HealthReport::new(NAME);
    report.add("database", database);
    report.add("provider", state.payments.health());
    report.finish()
}
