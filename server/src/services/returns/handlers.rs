//! HTTP for returns: each handler translates the request to a call of
//! [`super::domain`]; the domain's errors carry their status and code.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use shop_wire::returns::{
    NewReturn, ReceiveReturn, RefundReturn, Return, ReturnNote, ReturnStatus,
};
use shop_wire::{ErrorBody, OrderId, Page};

use super::domain;
use crate::auth::AuthUser;
use crate::error::{AppError, AppResult};
use crate::gateway::json::{ApiJson, ApiQuery, page_offset};
use crate::services::page_limit;
use crate::state::AppState;
use crate::store::ReturnQuery;

const TAG: &str = "returns";

/// Open a return of shipped units of an order, each with a reason: a
/// customer for their own orders, staff for any. 409
/// `return_exceeds_shipped` refuses more of a SKU than shipped and is in no
/// other return, `return_window_closed` a request after the window,
/// `not_shipped` an order with nothing shipped.
#[utoipa::path(post, path = "/{key}/returns", tag = TAG, security(("bearer" = [])), request_body = NewReturn,
    params(("key" = String, Path, description = "order id or number")),
    responses((status = 201, body = Return), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(key): Path<String>,
    ApiJson(request): ApiJson<NewReturn>,
) -> AppResult<(StatusCode, ApiJson<Return>)> {
    let created = domain::create(&state, &caller, &key, request).await?;
    Ok((StatusCode::CREATED, ApiJson(created)))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// requested, approved, rejected, received or refunded.
    #[param(
        nullable = false,
        pattern = r"^(requested|approved|rejected|received|refunded)$"
    )]
    status: Option<String>,
    /// Only those still waiting on the shop (requested, approved, received).
    #[param(nullable = false)]
    open: Option<bool>,
    /// The order's id.
    #[param(value_type = Option<String>, nullable = false, pattern = r"^ord_[0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{26}$")]
    order: Option<String>,
    /// Page size, 1-500 (default 50).
    #[param(nullable = false, minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// Items to skip (default 0).
    #[param(nullable = false, minimum = 0, maximum = 1_000_000)]
    offset: Option<u64>,
}

/// Returns, newest first: a customer's own, or all for staff.
#[utoipa::path(get, path = "", tag = TAG, security(("bearer" = [])), params(ListParams),
    responses((status = 200, body = Page<Return>), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiQuery(params): ApiQuery<ListParams>,
) -> AppResult<ApiJson<Page<Return>>> {
    let status = params
        .status
        .as_deref()
        .map(str::parse::<ReturnStatus>)
        .transpose()
        .map_err(|problem| AppError::validation("status", problem))?;
    let order = params
        .order
        .as_deref()
        .map(str::parse::<OrderId>)
        .transpose()
        .map_err(|problem| AppError::validation("order", problem.to_string()))?;
    let query = ReturnQuery {
        status,
        open: params.open.unwrap_or(false),
        order,
        owner: None,
        limit: page_limit(params.limit)?,
        offset: page_offset(params.offset)?,
    };
    Ok(ApiJson(domain::list(&state, &caller, query).await?))
}

/// One return.
#[utoipa::path(get, path = "/{id}", tag = TAG, security(("bearer" = [])),
    params(("id" = String, Path, description = "return id (ret_...)")),
    responses((status = 200, body = Return), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
) -> AppResult<ApiJson<Return>> {
    Ok(ApiJson(domain::get(&state, &caller, &id).await?))
}

/// Approve a requested return (staff); 409 `illegal_transition` lists the allowed moves.
#[utoipa::path(post, path = "/{id}/approve", tag = TAG, security(("bearer" = [])), request_body = Option<ReturnNote>,
    params(("id" = String, Path, description = "return id (ret_...)")),
    responses((status = 200, body = Return), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn approve(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
    body: Option<ApiJson<ReturnNote>>,
) -> AppResult<ApiJson<Return>> {
    let note = body.and_then(|ApiJson(r)| r.note);
    Ok(ApiJson(domain::approve(&state, &caller, &id, note).await?))
}

/// Reject a requested return (staff): its units may be returned again.
#[utoipa::path(post, path = "/{id}/reject", tag = TAG, security(("bearer" = [])), request_body = Option<ReturnNote>,
    params(("id" = String, Path, description = "return id (ret_...)")),
    responses((status = 200, body = Return), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn reject(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
    body: Option<ApiJson<ReturnNote>>,
) -> AppResult<ApiJson<Return>> {
    let note = body.and_then(|ApiJson(r)| r.note);
    Ok(ApiJson(domain::reject(&state, &caller, &id, note).await?))
}

/// Receive an approved return (staff): each line restocks (with a stock
/// ledger entry) unless `restock: false` says otherwise, for all or per SKU.
#[utoipa::path(post, path = "/{id}/receive", tag = TAG, security(("bearer" = [])), request_body = Option<ReceiveReturn>,
    params(("id" = String, Path, description = "return id (ret_...)")),
    responses((status = 200, body = Return), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn receive(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
    body: Option<ApiJson<ReceiveReturn>>,
) -> AppResult<ApiJson<Return>> {
    let request = body.map(|ApiJson(r)| r).unwrap_or_default();
    Ok(ApiJson(
        domain::receive(&state, &caller, &id, request).await?,
    ))
}

/// Refund a received return through its order's payment (staff): its
/// `refund_cents`, and with `include_shipping` the order's shipping and its
/// tax (`shipping_refund_cents`; 409 `shipping_already_refunded` when
/// another return of the order gave it back), within what is left of the
/// payment (409 `refund_exceeds_captured`); 402 when the provider refuses.
#[utoipa::path(post, path = "/{id}/refund", tag = TAG, security(("bearer" = [])), request_body = Option<RefundReturn>,
    params(("id" = String, Path, description = "return id (ret_...)")),
    responses((status = 200, body = Return), (status = 402, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn refund(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
    body: Option<ApiJson<RefundReturn>>,
) -> AppResult<ApiJson<Return>> {
    let request = body.map(|ApiJson(r)| r).unwrap_or_default();
    Ok(ApiJson(
        domain::refund(&state, &caller, &id, request).await?,
    ))
}
