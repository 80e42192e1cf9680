//! HTTP handlers of the webhooks service: each translates a request to one
//! domain call and its answer back. Every route is for staff.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use shop_wire::webhooks::{
    CreateWebhook, DeliveryStatus, ReplayRequest, ReplayResult, TestResult, UpdateWebhook, Webhook,
    WebhookDelivery,
};
use shop_wire::{ErrorBody, Page};

use super::domain;
use crate::auth::Staff;
use crate::error::AppResult;
use crate::gateway::json::{ApiJson, ApiQuery, page_offset};
use crate::state::AppState;
use crate::store::WebhookDeliveryQuery;

const TAG: &str = "webhooks";

/// Add an endpoint (staff). The answer carries its signing secret
/// (`whsec_...`), shown only here and after a rotation. The URL must be
/// `https://` and resolve to public addresses only (400 otherwise), unless
/// its host is allowed with `--webhook-allow-host`.
#[utoipa::path(post, path = "", tag = TAG, security(("bearer" = [])), request_body = CreateWebhook,
    responses((status = 201, body = Webhook), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    _: Staff,
    ApiJson(request): ApiJson<CreateWebhook>,
) -> AppResult<(StatusCode, ApiJson<Webhook>)> {
    Ok((
        StatusCode::CREATED,
        ApiJson(domain::create(&state, request).await?),
    ))
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

/// Every endpoint, oldest first, without secrets (staff).
#[utoipa::path(get, path = "", tag = TAG, security(("bearer" = [])), params(PageParams),
    responses((status = 200, body = Page<Webhook>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    _: Staff,
    ApiQuery(params): ApiQuery<PageParams>,
) -> AppResult<ApiJson<Page<Webhook>>> {
    let limit = crate::services::page_limit(params.limit)?;
    let offset = page_offset(params.offset)?;
    Ok(ApiJson(domain::list(&state, limit, offset).await?))
}

/// One endpoint, without its secret (staff).
#[utoipa::path(get, path = "/{id}", tag = TAG, security(("bearer" = [])),
    params(("id" = String, Path, description = "webhook id (whk_...)")),
    responses((status = 200, body = Webhook), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    _: Staff,
    Path(id): Path<String>,
) -> AppResult<ApiJson<Webhook>> {
    Ok(ApiJson(domain::get(&state, &id).await?))
}

/// Change an endpoint's URL, patterns, description or status (staff);
/// `{"status":"active"}` enables a disabled one again.
#[utoipa::path(patch, path = "/{id}", tag = TAG, security(("bearer" = [])), request_body = UpdateWebhook,
    params(("id" = String, Path, description = "webhook id (whk_...)")),
    responses((status = 200, body = Webhook), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    _: Staff,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<UpdateWebhook>,
) -> AppResult<ApiJson<Webhook>> {
    Ok(ApiJson(domain::update(&state, &id, request).await?))
}

/// Remove an endpoint and its delivery log (staff).
#[utoipa::path(delete, path = "/{id}", tag = TAG, security(("bearer" = [])),
    params(("id" = String, Path, description = "webhook id (whk_...)")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    _: Staff,
    Path(id): Path<String>,
) -> AppResult<StatusCode> {
    domain::delete(&state, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveryParams {
    /// Only this status: pending, succeeded, failed or dead.
    #[param(nullable = false)]
    status: Option<DeliveryStatus>,
    /// Page size, 1-500 (default 50).
    #[param(nullable = false, minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// Items to skip (default 0).
    #[param(nullable = false, minimum = 0, maximum = 1_000_000)]
    offset: Option<u64>,
}

/// An endpoint's deliveries, newest first (staff).
#[utoipa::path(get, path = "/{id}/deliveries", tag = TAG, security(("bearer" = [])),
    params(("id" = String, Path, description = "webhook id (whk_...)"), DeliveryParams),
    responses((status = 200, body = Page<WebhookDelivery>), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn deliveries(
    State(state): State<AppState>,
    _: Staff,
    Path(id): Path<String>,
    ApiQuery(params): ApiQuery<DeliveryParams>,
) -> AppResult<ApiJson<Page<WebhookDelivery>>> {
    let query = WebhookDeliveryQuery {
        status: params.status,
        limit: crate::services::page_limit(params.limit)?,
        offset: page_offset(params.offset)?,
    };
    Ok(ApiJson(domain::deliveries(&state, &id, query).await?))
}

/// Deliver one delivery again, whatever its status (staff), with the same
/// `webhook-id`; 409 while an attempt of it is under way.
#[utoipa::path(post, path = "/{id}/deliveries/{delivery}/replay", tag = TAG, security(("bearer" = [])),
    params(("id" = String, Path, description = "webhook id (whk_...)"),
           ("delivery" = String, Path, description = "delivery id (msg_...)")),
    responses((status = 200, body = WebhookDelivery), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn replay_one(
    State(state): State<AppState>,
    _: Staff,
    Path((id, delivery)): Path<(String, String)>,
) -> AppResult<ApiJson<WebhookDelivery>> {
    Ok(ApiJson(domain::replay_one(&state, &id, &delivery).await?))
}

/// Deliver again every failed or dead delivery created since a time (staff).
#[utoipa::path(post, path = "/{id}/replay", tag = TAG, security(("bearer" = [])), request_body = ReplayRequest,
    params(("id" = String, Path, description = "webhook id (whk_...)")),
    responses((status = 200, body = ReplayResult), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn replay_since(
    State(state): State<AppState>,
    _: Staff,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<ReplayRequest>,
) -> AppResult<ApiJson<ReplayResult>> {
    Ok(ApiJson(
        domain::replay_since(&state, &id, request.since).await?,
    ))
}

/// Send a `webhook.test` event to the endpoint (staff): it is logged and
/// delivered like any event, to this endpoint only; watch its deliveries.
#[utoipa::path(post, path = "/{id}/test", tag = TAG, security(("bearer" = [])),
    params(("id" = String, Path, description = "webhook id (whk_...)")),
    responses((status = 202, body = TestResult), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn test(
    State(state): State<AppState>,
    _: Staff,
    Path(id): Path<String>,
) -> AppResult<(StatusCode, ApiJson<TestResult>)> {
    Ok((
        StatusCode::ACCEPTED,
        ApiJson(domain::test(&state, &id).await?),
    ))
}

/// Replace the signing secret (staff); the answer carries the new one. The
/// old secret also signs for the configured overlap (24 h by default), so
/// receivers can switch without missing a delivery.
#[utoipa::path(post, path = "/{id}/rotate-secret", tag = TAG, security(("bearer" = [])),
    params(("id" = String, Path, description = "webhook id (whk_...)")),
    responses((status = 200, body = Webhook), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn rotate_secret(
    State(state): State<AppState>,
    _: Staff,
    Path(id): Path<String>,
) -> AppResult<ApiJson<Webhook>> {
    Ok(ApiJson(domain::rotate_secret(&state, &id).await?))
}
