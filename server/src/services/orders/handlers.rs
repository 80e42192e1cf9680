//! HTTP handlers of the orders service: each translates a request to one
//! domain call. Customers see and act on their own orders; staff on all.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use shop_wire::orders::{
    FinancialStatus, NewOrder, Order, OrderAnalytics, OrderStatus, ShipOrder, Transition,
};
use shop_wire::payments::{PaymentMethod, Refund, RefundRequest};
use shop_wire::{ErrorBody, Page, ServiceHealth};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::domain;
use crate::auth::{AuthUser, Staff};
use crate::error::{AppError, AppResult};
use crate::gateway::idempotency;
use crate::gateway::json::{ApiJson, ApiQuery, page_offset};
use crate::services::health::database_check;
use crate::services::page_limit;
use crate::state::AppState;
use crate::store::OrderQuery;

const TAG: &str = "orders";

/// Check out from a cart (`cart_id`) or explicit `items`, paying with
/// `payment` when given. 201 with the order (`paid`, or `pending` for a bank
/// transfer or without payment); 402 when the payment is declined (the
/// order stays pending; its id is in `details`); 409 `insufficient_stock`.
#[utoipa::path(post, path = "", tag = TAG, security(("bearer" = [])), request_body = NewOrder,
    responses((status = 201, body = Order), (status = 200, body = Order, description = "a retry with the same Idempotency-Key"),
        (status = 400, body = ErrorBody), (status = 402, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: AuthUser,
    headers: HeaderMap,
    ApiJson(request): ApiJson<NewOrder>,
) -> AppResult<(StatusCode, ApiJson<Order>)> {
    let key = headers
        .get(idempotency::HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (order, created) = domain::create(&state, &caller, request, key.as_deref()).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, ApiJson(order)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// pending, paid, shipped, delivered or cancelled.
    #[param(
        nullable = false,
        pattern = r"^(pending|paid|shipped|delivered|cancelled)$"
    )]
    status: Option<String>,
    /// Where the money stands: pending, paid, partially_refunded, refunded or voided.
    #[param(
        nullable = false,
        pattern = r"^(pending|paid|partially_refunded|refunded|voided)$"
    )]
    financial_status: Option<String>,
    /// The customer's email (staff).
    #[param(nullable = false)]
    customer: Option<String>,
    /// Placed at or after: RFC 3339 or YYYY-MM-DD (UTC).
    #[param(
        nullable = false,
        pattern = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])([Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))?$"
    )]
    from: Option<String>,
    /// Placed before: RFC 3339 or YYYY-MM-DD (UTC, the day itself excluded).
    #[param(
        nullable = false,
        pattern = r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])([Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,9})?([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9]))?$"
    )]
    to: Option<String>,
    /// Page size, 1-500 (default 50).
    #[param(nullable = false, minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// Items to skip (default 0).
    #[param(nullable = false, minimum = 0, maximum = 1_000_000)]
    offset: Option<u64>,
}

fn instant(field: &str, raw: &str) -> AppResult<OffsetDateTime> {
    if let Ok(at) = OffsetDateTime::parse(raw, &Rfc3339) {
        return Ok(at);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(raw, &format)
        .map(|day| day.midnight().assume_utc())
        .map_err(|_| AppError::validation(field, "must be a date (2026-11-24) or an RFC 3339 time"))
}

/// Orders, newest first: a customer's own, or all for staff.
#[utoipa::path(get, path = "", tag = TAG, security(("bearer" = [])), params(ListParams),
    responses((status = 200, body = Page<Order>), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiQuery(params): ApiQuery<ListParams>,
) -> AppResult<ApiJson<Page<Order>>> {
    let status = params
        .status
        .as_deref()
        .map(str::parse::<OrderStatus>)
        .transpose()
        .map_err(|problem| AppError::validation("status", problem))?;
    let financial_status = params
        .financial_status
        .as_deref()
        .map(str::parse::<FinancialStatus>)
        .transpose()
        .map_err(|problem| AppError::validation("financial_status", problem))?;
    let query = OrderQuery {
        status,
        financial_status,
        customer_email: params
            .customer
            .map(|c| c.trim().to_owned())
            .filter(|c| !c.is_empty()),
        owner: None,
        from: params
            .from
            .as_deref()
            .map(|f| instant("from", f))
            .transpose()?,
        to: params.to.as_deref().map(|t| instant("to", t)).transpose()?,
        limit: page_limit(params.limit)?,
        offset: page_offset(params.offset)?,
    };
    Ok(ApiJson(domain::list(&state, &caller, query).await?))
}

/// Counts by status, revenue by day, average order value, top products (staff).
#[utoipa::path(get, path = "/analytics", tag = TAG, security(("bearer" = [])),
    responses((status = 200, body = OrderAnalytics), (status = 403, body = ErrorBody)))]
pub async fn analytics(
    State(state): State<AppState>,
    _: Staff,
) -> AppResult<ApiJson<OrderAnalytics>> {
    Ok(ApiJson(domain::analytics(&state).await?))
}

/// One order with its status history, by id or number (`ORD-001042`).
#[utoipa::path(get, path = "/{key}", tag = TAG, security(("bearer" = [])),
    params(("key" = String, Path, description = "order id (ord_...) or number (ORD-001042)")),
    responses((status = 200, body = Order), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(key): Path<String>,
) -> AppResult<ApiJson<Order>> {
    Ok(ApiJson(domain::get(&state, &caller, &key).await?))
}

/// Pay a pending order; 402 when declined.
#[utoipa::path(post, path = "/{key}/pay", tag = TAG, security(("bearer" = [])), request_body = PaymentMethod,
    params(("key" = String, Path, description = "order id or number")),
    responses((status = 200, body = Order), (status = 400, body = ErrorBody), (status = 402, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn pay(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(key): Path<String>,
    ApiJson(method): ApiJson<PaymentMethod>,
) -> AppResult<ApiJson<Order>> {
    Ok(ApiJson(domain::pay(&state, &caller, &key, method).await?))
}

/// Ship a paid order, or some of its items (staff). Without `items`
/// everything not shipped yet goes; the order is `shipped` once nothing is
/// left (until then its `fulfillment_status` is `partially_shipped`). 409
/// `ship_exceeds_remaining` refuses more of a SKU than is left to ship,
/// `illegal_transition` an order that is not paid, `order_refunded` one
/// refunded in full; 400 `not_in_order` a SKU the order does not have.
#[utoipa::path(post, path = "/{key}/ship", tag = TAG, security(("bearer" = [])), request_body = Option<ShipOrder>,
    params(("key" = String, Path, description = "order id or number")),
    responses((status = 200, body = Order), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn ship(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(key): Path<String>,
    body: Option<ApiJson<ShipOrder>>,
) -> AppResult<ApiJson<Order>> {
    let request = body.map(|ApiJson(r)| r).unwrap_or_default();
    Ok(ApiJson(domain::ship(&state, &caller, &key, request).await?))
}

/// Mark a shipped order delivered (staff).
#[utoipa::path(post, path = "/{key}/deliver", tag = TAG, security(("bearer" = [])), request_body = Option<Transition>,
    params(("key" = String, Path, description = "order id or number")),
    responses((status = 200, body = Order), (status = 409, body = ErrorBody)))]
pub async fn deliver(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(key): Path<String>,
    body: Option<ApiJson<Transition>>,
) -> AppResult<ApiJson<Order>> {
    let request = body.map(|ApiJson(r)| r).unwrap_or_default();
    Ok(ApiJson(
        domain::transition(
            &state,
            &caller,
            &key,
            OrderStatus::Delivered,
            request.note,
            None,
        )
        .await?,
    ))
}

/// Cancel a pending order (releasing its stock) or a paid one (staff:
/// refunding what is left of its payment and restocking).
#[utoipa::path(post, path = "/{key}/cancel", tag = TAG, security(("bearer" = [])), request_body = Option<Transition>,
    params(("key" = String, Path, description = "order id or number")),
    responses((status = 200, body = Order), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(key): Path<String>,
    body: Option<ApiJson<Transition>>,
) -> AppResult<ApiJson<Order>> {
    let request = body.map(|ApiJson(r)| r).unwrap_or_default();
    Ok(ApiJson(
        domain::transition(
            &state,
            &caller,
            &key,
            OrderStatus::Cancelled,
            request.note,
            None,
        )
        .await?,
    ))
}

/// Refund (part of) a paid order (staff); 409 `refund_exceeds_captured`.
#[utoipa::path(post, path = "/{key}/refund", tag = TAG, security(("bearer" = [])), request_body = Option<RefundRequest>,
    params(("key" = String, Path, description = "order id or number")),
    responses((status = 201, body = Refund), (status = 402, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn refund(
    State(state): State<AppState>,
    Staff(caller): Staff,
    Path(key): Path<String>,
    body: Option<ApiJson<RefundRequest>>,
) -> AppResult<(StatusCode, ApiJson<Refund>)> {
    let request = body.map(|ApiJson(r)| r).unwrap_or_default();
    let refund = domain::refund(&state, &caller, &key, request).await?;
    Ok((StatusCode::CREATED, ApiJson(refund)))
}

/// The orders service's health.
#[utoipa::path(get, path = "/health", tag = TAG,
    responses((status = 200, body = ServiceHealth), (status = 503, body = ServiceHealth)))]
pub async fn health(State(state): State<AppState>) -> (StatusCode, ApiJson<ServiceHealth>) {
    let health = super::health(&state, database_check(&state).await);
    crate::services::health::respond(health.status, health)
}
