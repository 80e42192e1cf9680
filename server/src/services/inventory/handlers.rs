//! HTTP handlers of the inventory service: each translates a request to one
//! domain call and its answer back. Every route but health is for staff.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use shop_wire::inventory::{
    AdjustStock, Movement, ReconcileReport, ReconcileRequest, Reservation, ReservationId,
    ReservationStatus, ReserveRequest, SetStock, Stock,
};
use shop_wire::{ErrorBody, Page, ServiceHealth};

use super::domain;
use crate::auth::Staff;
use crate::error::{AppError, AppResult};
use crate::gateway::json::{ApiJson, ApiQuery, page_offset};
use crate::services::health::database_check;
use crate::services::page_limit;
use crate::state::AppState;
use crate::store::{ReservationQuery, StockOperation, StockQuery};

const TAG: &str = "inventory";

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Only SKUs with available stock at or under their low-stock threshold.
    #[param(nullable = false)]
    low: Option<bool>,
    /// Case-insensitive text in the SKU.
    #[param(nullable = false)]
    q: Option<String>,
    /// `available` (lowest first, the default) or `sku`.
    #[param(nullable = false, pattern = r"^(available|sku)$")]
    sort: Option<String>,
    /// Page size, 1-500 (default 50).
    #[param(nullable = false, minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// Items to skip (default 0).
    #[param(nullable = false, minimum = 0, maximum = 1_000_000)]
    offset: Option<u64>,
}

/// Stock per SKU, lowest available first (staff).
#[utoipa::path(get, path = "", tag = TAG, security(("bearer" = [])), params(ListParams),
    responses((status = 200, body = Page<Stock>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    _: Staff,
    ApiQuery(params): ApiQuery<ListParams>,
) -> AppResult<ApiJson<Page<Stock>>> {
    let by_sku = match params.sort.as_deref().unwrap_or("available") {
        "available" => false,
        "sku" => true,
        other => {
            return Err(AppError::validation(
                "sort",
                format!("unknown sort `{other}` (expected available or sku)"),
            ));
        }
    };
    let query = StockQuery {
        low_only: params.low.unwrap_or(false),
        text: params
            .q
            .map(|q| q.trim().to_owned())
            .filter(|q| !q.is_empty()),
        by_sku,
        limit: page_limit(params.limit)?,
        offset: page_offset(params.offset)?,
    };
    Ok(ApiJson(domain::list(&state, query).await?))
}

/// One SKU's stock (staff).
#[utoipa::path(get, path = "/{sku}", tag = TAG, security(("bearer" = [])),
    params(("sku" = String, Path, description = "the SKU")),
    responses((status = 200, body = Stock), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    _: Staff,
    Path(sku): Path<String>,
) -> AppResult<ApiJson<Stock>> {
    Ok(ApiJson(domain::stock(&state, &sku).await?))
}

/// Set the count on hand, e.g. after a stocktake (staff); refused below what is reserved.
#[utoipa::path(put, path = "/{sku}", tag = TAG, security(("bearer" = [])), request_body = SetStock,
    params(("sku" = String, Path, description = "the SKU")),
    responses((status = 200, body = Stock), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn set(
    State(state): State<AppState>,
    Staff(caller): Staff,
    Path(sku): Path<String>,
    ApiJson(request): ApiJson<SetStock>,
) -> AppResult<ApiJson<Stock>> {
    let operation = StockOperation::Set(request.on_hand);
    let stock = domain::change(
        &state,
        &caller,
        &sku,
        operation,
        &request.reason,
        request.low_stock_threshold,
    )
    .await?;
    Ok(ApiJson(stock))
}

/// Add to or take from the count on hand (staff); 409 `insufficient_stock`
/// when it would go below 0 or below what is reserved.
#[utoipa::path(post, path = "/{sku}/adjustments", tag = TAG, security(("bearer" = [])), request_body = AdjustStock,
    params(("sku" = String, Path, description = "the SKU")),
    responses((status = 200, body = Stock), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn adjust(
    State(state): State<AppState>,
    Staff(caller): Staff,
    Path(sku): Path<String>,
    ApiJson(request): ApiJson<AdjustStock>,
) -> AppResult<ApiJson<Stock>> {
    let operation = StockOperation::Adjust(request.delta);
    let stock = domain::change(&state, &caller, &sku, operation, &request.reason, None).await?;
    Ok(ApiJson(stock))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    /// Page size, 1-500 (default 50).
    #[param(nullable = false, minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// Items to skip (default 0).
    #[param(nullable = false, minimum = 0, maximum = 1_000_000)]
    offset: Option<u64>,
}

/// The SKU's stock ledger, newest first (staff).
#[utoipa::path(get, path = "/{sku}/movements", tag = TAG, security(("bearer" = [])), params(("sku" = String, Path, description = "the SKU"), PageParams),
    responses((status = 200, body = Page<Movement>), (status = 404, body = ErrorBody)))]
pub async fn movements(
    State(state): State<AppState>,
    _: Staff,
    Path(sku): Path<String>,
    ApiQuery(params): ApiQuery<PageParams>,
) -> AppResult<ApiJson<Page<Movement>>> {
    let limit = page_limit(params.limit)?;
    Ok(ApiJson(
        domain::movements(&state, &sku, limit, page_offset(params.offset)?).await?,
    ))
}

/// Hold stock (staff); 409 `insufficient_stock` naming what is available.
#[utoipa::path(post, path = "/{sku}/reservations", tag = TAG, security(("bearer" = [])), request_body = ReserveRequest,
    params(("sku" = String, Path, description = "the SKU")),
    responses((status = 201, body = Reservation), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn reserve(
    State(state): State<AppState>,
    Staff(caller): Staff,
    Path(sku): Path<String>,
    ApiJson(request): ApiJson<ReserveRequest>,
) -> AppResult<(StatusCode, ApiJson<Reservation>)> {
    let reservation = domain::reserve(&state, &caller, &sku, request).await?;
    Ok((StatusCode::CREATED, ApiJson(reservation)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ReservationParams {
    #[param(nullable = false)]
    sku: Option<String>,
    #[param(nullable = false)]
    status: Option<ReservationStatus>,
    /// What the reservations are for, exactly (a cart or order id).
    #[param(nullable = false)]
    reference: Option<String>,
    /// Page size, 1-500 (default 50).
    #[param(nullable = false, minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// Items to skip (default 0).
    #[param(nullable = false, minimum = 0, maximum = 1_000_000)]
    offset: Option<u64>,
}

/// Reservations, newest first (staff).
#[utoipa::path(get, path = "/reservations", tag = TAG, security(("bearer" = [])), params(ReservationParams),
    responses((status = 200, body = Page<Reservation>), (status = 400, body = ErrorBody)))]
pub async fn reservations(
    State(state): State<AppState>,
    _: Staff,
    ApiQuery(params): ApiQuery<ReservationParams>,
) -> AppResult<ApiJson<Page<Reservation>>> {
    let query = ReservationQuery {
        sku: params.sku,
        status: params.status,
        reference: params.reference,
        limit: page_limit(params.limit)?,
        offset: page_offset(params.offset)?,
    };
    Ok(ApiJson(domain::reservations(&state, query).await?))
}

fn reservation_id(raw: &str) -> AppResult<ReservationId> {
    raw.parse()
        .map_err(|_| AppError::not_found(format!("reservation {raw}")))
}

/// One reservation (staff).
#[utoipa::path(get, path = "/reservations/{id}", tag = TAG, security(("bearer" = [])),
    params(("id" = String, Path, description = "reservation id (res_...)")),
    responses((status = 200, body = Reservation), (status = 404, body = ErrorBody)))]
pub async fn reservation(
    State(state): State<AppState>,
    _: Staff,
    Path(id): Path<String>,
) -> AppResult<ApiJson<Reservation>> {
    Ok(ApiJson(
        domain::reservation(&state, &reservation_id(&id)?).await?,
    ))
}

/// Give a reservation's stock back (staff); 409 `reservation_not_active` unless it is active.
#[utoipa::path(post, path = "/reservations/{id}/release", tag = TAG, security(("bearer" = [])),
    params(("id" = String, Path, description = "reservation id (res_...)")),
    responses((status = 200, body = Reservation), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn release(
    State(state): State<AppState>,
    Staff(caller): Staff,
    Path(id): Path<String>,
) -> AppResult<ApiJson<Reservation>> {
    let id = reservation_id(&id)?;
    Ok(ApiJson(
        domain::finish(&state, Some(&caller), &id, ReservationStatus::Released).await?,
    ))
}

/// Turn a reservation into a sale: on hand and reserved both drop (staff).
#[utoipa::path(post, path = "/reservations/{id}/commit", tag = TAG, security(("bearer" = [])),
    params(("id" = String, Path, description = "reservation id (res_...)")),
    responses((status = 200, body = Reservation), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn commit(
    State(state): State<AppState>,
    Staff(caller): Staff,
    Path(id): Path<String>,
) -> AppResult<ApiJson<Reservation>> {
    let id = reservation_id(&id)?;
    Ok(ApiJson(
        domain::finish(&state, Some(&caller), &id, ReservationStatus::Committed).await?,
    ))
}

/// Check the inventory invariants over the whole database; with `fix`, repair drift (staff).
#[utoipa::path(post, path = "/reconcile", tag = TAG, security(("bearer" = [])), request_body = ReconcileRequest,
    responses((status = 200, body = ReconcileReport), (status = 403, body = ErrorBody)))]
pub async fn reconcile(
    State(state): State<AppState>,
    Staff(caller): Staff,
    ApiJson(request): ApiJson<ReconcileRequest>,
) -> AppResult<ApiJson<ReconcileReport>> {
    Ok(ApiJson(
        domain::reconcile(&state, &caller, request.fix).await?,
    ))
}

/// The inventory service's health.
#[utoipa::path(get, path = "/health", tag = TAG,
    responses((status = 200, body = ServiceHealth), (status = 503, body = ServiceHealth)))]
pub async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let health = super::health(&state, database_check(&state).await);
    crate::services::health::respond(health.status, health)
}
