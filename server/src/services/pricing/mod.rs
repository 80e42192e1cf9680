//! Pricing at checkout (SPEC section 9): shipping zones (`/api/shipping`),
//! tax rates (`/api/tax`), discounts (`/api/discounts`), and the quote
//! (`POST /api/orders/quote`) and a cart's codes (`POST
//! /api/cart/{id}/discounts`), routed by the orders and cart services.
//!
//! The rules are plain functions: [`rules::price`] prices an order from its
//! lines, destination, the zones, rates and the discounts [`rules::admit`]
//! let in; [`address`] checks a postal address; [`tables`] checks zones,
//! rates and discounts as staff write them. The store reads and writes the
//! tables, and claims a discount's uses with guarded writes.

pub mod address;
pub mod address_book;
pub mod demo;
pub mod domain;
pub(crate) mod handlers;
pub mod rules;
pub mod tables;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

/// `/api/shipping`.
pub fn shipping_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::list_zones, handlers::create_zone))
        .routes(routes!(handlers::delete_zone))
}

/// `/api/discounts`.
pub fn discounts_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::list_discounts, handlers::create_discount))
        .routes(routes!(handlers::get_discount))
        .routes(routes!(handlers::disable_discount))
}

/// `/api/tax`.
pub fn tax_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::list_rates, handlers::create_rate))
        .routes(routes!(handlers::delete_rate))
}
