//! Returns (`/api/returns`, and `POST /api/orders/{id}/returns` to open
//! one): shipped units a customer sends back, approved or rejected by
//! staff, received (restocked or not) and refunded through the order's
//! payment. Part of the orders service: its health and metrics are the
//! orders service's.

pub mod domain;
pub(crate) mod handlers;
pub mod rules;

use shop_wire::events::MakeEvent;
use shop_wire::returns::Return;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;
use crate::store::NewEvent;

/// How the store makes a return's event, inside the change's transaction.
pub fn return_event(kind: MakeEvent<Return>, found: &Return) -> NewEvent {
    NewEvent::now(kind(found.clone()))
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::list))
        .routes(routes!(handlers::get))
        .routes(routes!(handlers::approve))
        .routes(routes!(handlers::reject))
        .routes(routes!(handlers::receive))
        .routes(routes!(handlers::refund))
}
