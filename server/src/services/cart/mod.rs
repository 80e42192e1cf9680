//! The cart service (`/api/cart`): carts for signed-in users and anonymous
//! visitors, each line holding its stock through a reservation that grows,
//! shrinks and is released with the line. Idle carts expire
//! ([`CART_SWEEPER`]) and give their stock back; an anonymous cart merges
//! into the user's when they log in with its token.

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

pub const NAME: &str = "cart";
pub const CART_SWEEPER: &str = "cart_sweeper";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::create, handlers::current))
        .routes(routes!(handlers::health))
        .routes(routes!(handlers::get))
        .routes(routes!(handlers::add, handlers::clear))
        .routes(routes!(handlers::update, handlers::remove))
        .routes(routes!(crate::services::pricing::handlers::apply_to_cart))
        .routes(routes!(handlers::set_checkout))
}

pub fn spawn_workers(state: &AppState) {
    let sweeper_state = state.clone();
    state.workers.spawn_periodic(
        CART_SWEEPER,
        Duration::from_millis(state.config.commerce.sweep_interval_ms),
        move || {
            let state = sweeper_state.clone();
            async move {
                let expired = domain::sweep(&state).await?;
                if expired > 0 {
                    tracing::info!(expired, "idle carts expired and released their stock");
                }
                Ok(())
            }
        },
    );
}

pub fn health(state: &AppState, database: Check) -> ServiceHealth {
    let mut report = HealthReport::new(NAME);
    report.add("database", database);
    report.add_worker(&state.workers, CART_SWEEPER);
    report.finish()
}
