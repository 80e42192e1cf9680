//! The API keys service (`/api/keys`): staff and admins make scoped keys for
//! other systems, list them and revoke them.
//!
//! The rules: only staff and admins make keys; a key names at least one
//! scope, and never acts with more than its creator's current role (checked
//! on every request by the auth extractors, not here); staff see and revoke
//! their own keys, admins everyone's. Keys themselves cannot use these routes.

pub mod domain;
mod handlers;

use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::state::AppState;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::list, handlers::create))
        .routes(routes!(handlers::get, handlers::revoke))
}
