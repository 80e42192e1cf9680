//! The audit log service (`/api/audit`): who changed what, read only.
//!
//! Entries are written by the store in each change's own transaction (see
//! `store::audit`); this service only reads them. There is no route that
//! edits or deletes an entry, and the database refuses both.
//!
//! Reading the log needs an admin, or an API key with `reports:read` whose
//! creator is (still) an admin: the log names people, their addresses and
//! every price and stock change, which is more than staff may list.

use axum::extract::State;
use serde::Deserialize;
use shop_wire::audit::AuditEntry;
use shop_wire::{ErrorBody, Page};
use time::OffsetDateTime;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Admin;
use crate::error::{AppError, AppResult};
use crate::gateway::json::{ApiJson, ApiQuery, page_offset};
use crate::services::page_limit;
use crate::state::AppState;
use crate::store::AuditQuery;

const TAG: &str = "audit";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditParams {
    /// The actor's email, their id (`usr_...`, `key_...`), or `system`.
    #[param(nullable = false)]
    actor: Option<String>,
    /// The kind of thing changed: `product`, `stock`, `user`, `order`, `payment`, `template`, `key`.
    #[param(nullable = false)]
    entity: Option<String>,
    /// Its id (a product's `prd_...`, a stock row's SKU, ...).
    #[param(nullable = false)]
    entity_id: Option<String>,
    /// An action such as `product.updated`, or a family such as `product`.
    #[param(nullable = false)]
    action: Option<String>,
    /// Entries at or after this time (RFC 3339).
    #[param(nullable = false, format = DateTime, pattern = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$")]
    from: Option<String>,
    /// Entries before this time (RFC 3339).
    #[param(nullable = false, format = DateTime, pattern = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$")]
    to: Option<String>,
    /// Page size, 1-500 (default 50).
    #[param(nullable = false, minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// Entries to skip (default 0).
    #[param(nullable = false, minimum = 0, maximum = 1_000_000)]
    offset: Option<u64>,
}

fn time_param(field: &str, value: Option<&str>) -> AppResult<Option<OffsetDateTime>> {
    value
        .map(|text| {
            OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).map_err(
                |_| {
                    AppError::validation(
                        field,
                        "must be an RFC 3339 time, e.g. 2026-01-31T12:00:00Z",
                    )
                },
            )
        })
        .transpose()
}

/// The audit log, newest first (admin, or a `reports:read` key of an admin).
#[utoipa::path(get, path = "", tag = TAG, security(("bearer" = [])), params(AuditParams),
    responses((status = 200, body = Page<AuditEntry>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    _: Admin,
    ApiQuery(params): ApiQuery<AuditParams>,
) -> AppResult<ApiJson<Page<AuditEntry>>> {
    let non_empty = |value: Option<String>| value.filter(|v| !v.trim().is_empty());
    let query = AuditQuery {
        actor: non_empty(params.actor),
        entity: non_empty(params.entity),
        entity_id: non_empty(params.entity_id),
        action: non_empty(params.action),
        from: time_param("from", params.from.as_deref())?,
        to: time_param("to", params.to.as_deref())?,
        limit: page_limit(params.limit)?,
        offset: page_offset(params.offset)?,
    };
    let (items, total) = state.store.list_audit(&query).await?;
    Ok(ApiJson(Page {
        items,
        total,
        limit: query.limit,
        offset: query.offset,
    }))
}
