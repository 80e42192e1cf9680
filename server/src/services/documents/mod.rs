//! Documents of orders (`GET /api/orders/{id}/invoice` and `/packing-slip`,
//! templates at `/api/documents/templates`): HTML from templates the shop
//! may edit, or PDF, and invoice numbers from one gapless sequence. Part of
//! the orders service: its health and metrics are the orders service's.

pub mod domain;
pub(crate) mod handlers;
mod pdf;
pub mod rules;
pub mod templates;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::templates))
        .routes(routes!(
            handlers::template,
            handlers::save_template,
            handlers::reset_template
        ))
}
