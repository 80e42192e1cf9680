//! HTTP handlers of the payments service: each translates a request to one
//! domain call. Customers see the payments of their own orders; refunds,
//! settlement and analytics are for staff.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use shop_wire::payments::{
    MethodKind, Payment, PaymentAnalytics, PaymentId, PaymentStatus, Refund, RefundRequest,
};
use shop_wire::{ErrorBody, OrderId, Page, ServiceHealth};

use super::domain;
use crate::auth::{AuthUser, Staff};
use crate::error::{AppError, AppResult};
use crate::gateway::json::{ApiJson, ApiQuery, page_offset};
use crate::services::health::database_check;
use crate::services::page_limit;
use crate::state::AppState;
use crate::store::PaymentQuery;

const TAG: &str = "payments";

fn payment_id(raw: &str) -> AppResult<PaymentId> {
    raw.parse()
        .map_err(|_| AppError::not_found(format!("payment {raw}")))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// processing, pending, succeeded, failed, canceled or refunded.
    #[param(
        nullable = false,
        pattern = r"^(processing|pending|succeeded|failed|canceled|refunded)$"
    )]
    status: Option<String>,
    /// Only the payments of this order (ord_...).
    #[param(
        nullable = false,
        pattern = r"^ord_[0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{26}$"
    )]
    order_id: Option<String>,
    /// card, apple_pay, google_pay, paypal or bank_transfer.
    #[param(
        nullable = false,
        pattern = r"^(card|apple_pay|google_pay|paypal|bank_transfer)$"
    )]
    method: Option<String>,
    /// Page size, 1-500 (default 50).
    #[param(nullable = false, minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// Items to skip (default 0).
    #[param(nullable = false, minimum = 0, maximum = 1_000_000)]
    offset: Option<u64>,
}

/// Payment attempts, newest first: of a customer's own orders, or all for staff.
#[utoipa::path(get, path = "", tag = TAG, security(("bearer" = [])), params(ListParams),
    responses((status = 200, body = Page<Payment>), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiQuery(params): ApiQuery<ListParams>,
) -> AppResult<ApiJson<Page<Payment>>> {
    let query = PaymentQuery {
        status: params
            .status
            .as_deref()
            .map(str::parse::<PaymentStatus>)
            .transpose()
            .map_err(|problem| AppError::validation("status", problem))?,
        order_id: params
            .order_id
            .as_deref()
            .map(str::parse::<OrderId>)
            .transpose()
            .map_err(|problem| AppError::validation("order_id", problem.to_string()))?,
        method: params
            .method
            .as_deref()
            .map(str::parse::<MethodKind>)
            .transpose()
            .map_err(|problem| AppError::validation("method", problem))?,
        owner: None,
        limit: page_limit(params.limit)?,
        offset: page_offset(params.offset)?,
    };
    Ok(ApiJson(domain::list(&state, &caller, query).await?))
}

/// Volume, success rate and refund rate (staff).
#[utoipa::path(get, path = "/analytics", tag = TAG, security(("bearer" = [])),
    responses((status = 200, body = PaymentAnalytics), (status = 403, body = ErrorBody)))]
pub async fn analytics(
    State(state): State<AppState>,
    _: Staff,
) -> AppResult<ApiJson<PaymentAnalytics>> {
    Ok(ApiJson(domain::analytics(&state).await?))
}

/// One payment with its refunds.
#[utoipa::path(get, path = "/{id}", tag = TAG, security(("bearer" = [])),
    params(("id" = String, Path, description = "payment id (pay_...)")),
    responses((status = 200, body = Payment), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
) -> AppResult<ApiJson<Payment>> {
    Ok(ApiJson(
        domain::get(&state, &caller, &payment_id(&id)?).await?,
    ))
}

/// Refund `amount_cents` (default: all that is left) of a captured payment
/// (staff); 409 `refund_exceeds_captured` beyond what is left.
#[utoipa::path(post, path = "/{id}/refunds", tag = TAG, security(("bearer" = [])), request_body = Option<RefundRequest>,
    params(("id" = String, Path, description = "payment id (pay_...)")),
    responses((status = 201, body = Refund), (status = 400, body = ErrorBody), (status = 402, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn refund(
    State(state): State<AppState>,
    Staff(caller): Staff,
    Path(id): Path<String>,
    body: Option<ApiJson<RefundRequest>>,
) -> AppResult<(StatusCode, ApiJson<Refund>)> {
    let request = body.map(|ApiJson(r)| r).unwrap_or_default();
    let actor = crate::services::actor(&state, &caller)
        .await?
        .unwrap_or_default();
    let id = payment_id(&id)?;
    let refund = domain::refund(&state, &actor, &id, request, false).await?;
    Ok((StatusCode::CREATED, ApiJson(refund)))
}

/// Confirm that a bank transfer arrived (staff): the order becomes paid.
#[utoipa::path(post, path = "/{id}/settle", tag = TAG, security(("bearer" = [])),
    params(("id" = String, Path, description = "payment id (pay_...)")),
    responses((status = 200, body = Payment), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn settle(
    State(state): State<AppState>,
    Staff(caller): Staff,
    Path(id): Path<String>,
) -> AppResult<ApiJson<Payment>> {
    let id = payment_id(&id)?;
    Ok(ApiJson(domain::settle(&state, &caller, &id).await?))
}

/// The payments service's health, with the provider's circuit breaker.
#[utoipa::path(get, path = "/health", tag = TAG,
    responses((status = 200, body = ServiceHealth), (status = 503, body = ServiceHealth)))]
pub async fn health(State(state): State<AppState>) -> (StatusCode, ApiJson<ServiceHealth>) {
    let health = super::health(&state, database_check(&state).await);
    crate::services::health::respond(health.status, health)
}
