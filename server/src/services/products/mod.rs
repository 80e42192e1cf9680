//! The products service (`/api/products`): the catalog, its categories, and
//! bulk import and export.
//!
//! Products are read far more than written, so reads by id or SKU go
//! through [`cache::ProductCache`], which every write in this process
//! invalidates before it answers. Imports stream ([`import`]) and exports
//! stream ([`export`]), so neither holds a catalog in memory.

pub mod cache;
pub mod demo;
pub mod domain;
pub mod export;
mod handlers;
pub mod import;
pub mod rules;

use shop_wire::ServiceHealth;
use shop_wire::health::Check;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::services::health::HealthReport;
use crate::state::AppState;

pub const NAME: &str = "products";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::list, handlers::create))
        .routes(routes!(handlers::categories))
        .routes(routes!(handlers::export))
        .routes(routes!(handlers::health))
        .routes(routes!(handlers::get, handlers::update, handlers::delete))
        .routes(routes!(handlers::archive))
}

/// The import route: outside the body limit, the idempotency layer (which
/// would buffer the body) and the request timeout, because an import streams
/// a body of any size for as long as it takes. Retrying an import is safe
/// without a key: it upserts by SKU, so a second run changes nothing.
pub fn upload_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(handlers::import))
}

pub fn health(database: Check) -> ServiceHealth {
    let mut report = HealthReport::new(NAME);
    report.add("database", database);
    report.finish()
}
