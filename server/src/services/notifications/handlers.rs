//! HTTP handlers of the notifications service: each translates a request to
//! one domain call and its answer back. Every route but health is for staff.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use shop_wire::notifications::{
    Channel, Delivery, Notification, NotificationAnalytics, NotificationId, NotificationStatus,
    Priority, SendRequest, Template, TemplateRequest,
};
use shop_wire::{ErrorBody, Page, ServiceHealth};

use super::domain;
use crate::auth::Staff;
use crate::error::{AppError, AppResult};
use crate::gateway::json::{ApiJson, ApiQuery, page_offset};
use crate::services::health::database_check;
use crate::state::AppState;
use crate::store::{DeliveryQuery, NotificationQuery};

const TAG: &str = "notifications";

fn parse_id(raw: &str) -> AppResult<NotificationId> {
    raw.parse()
        .map_err(|_| AppError::not_found(format!("notification {raw}")))
}

/// Queue a notification (staff). It is sent by the background worker; poll
/// `GET /api/notifications/{id}` for its status.
#[utoipa::path(post, path = "", tag = TAG, security(("bearer" = [])), request_body = SendRequest,
    responses((status = 201, body = Notification), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn send(
    State(state): State<AppState>,
    _: Staff,
    ApiJson(request): ApiJson<SendRequest>,
) -> AppResult<(StatusCode, ApiJson<Notification>)> {
    Ok((
        StatusCode::CREATED,
        ApiJson(domain::send(&state, request).await?),
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    #[param(nullable = false)]
    status: Option<NotificationStatus>,
    #[param(nullable = false)]
    channel: Option<Channel>,
    #[param(nullable = false)]
    template: Option<String>,
    /// Exact recipient.
    #[param(nullable = false)]
    recipient: Option<String>,
    #[param(nullable = false)]
    priority: Option<Priority>,
    /// Page size, 1-500 (default 50).
    #[param(nullable = false, minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// Items to skip (default 0).
    #[param(nullable = false, minimum = 0, maximum = 1_000_000)]
    offset: Option<u64>,
}

/// Notifications, newest first, filtered (staff).
#[utoipa::path(get, path = "", tag = TAG, security(("bearer" = [])), params(ListParams),
    responses((status = 200, body = Page<Notification>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Staff(reader): Staff,
    ApiQuery(params): ApiQuery<ListParams>,
) -> AppResult<ApiJson<Page<Notification>>> {
    let query = NotificationQuery {
        status: params.status,
        channel: params.channel,
        template: params.template,
        recipient: params.recipient,
        priority: params.priority,
        limit: crate::services::page_limit(params.limit)?,
        offset: page_offset(params.offset)?,
    };
    Ok(ApiJson(domain::list(&state, reader.role, query).await?))
}

/// One notification with its variables, rendered content and attempts (staff).
#[utoipa::path(get, path = "/{id}", tag = TAG, security(("bearer" = [])),
    params(("id" = String, Path, description = "notification id (ntf_...)")),
    responses((status = 200, body = Notification), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Staff(reader): Staff,
    Path(id): Path<String>,
) -> AppResult<ApiJson<Notification>> {
    let notification = domain::get(&state, &parse_id(&id)?).await?;
    Ok(ApiJson(domain::shown_to(reader.role, notification)))
}

/// Send again (staff): a failed or dead notification is queued again; a sent
/// one is copied into a new notification (`resent_from`). 409 otherwise.
#[utoipa::path(post, path = "/{id}/resend", tag = TAG, security(("bearer" = [])),
    params(("id" = String, Path, description = "notification id (ntf_...)")),
    responses((status = 200, body = Notification), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn resend(
    State(state): State<AppState>,
    Staff(reader): Staff,
    Path(id): Path<String>,
) -> AppResult<ApiJson<Notification>> {
    let notification = domain::resend(&state, &parse_id(&id)?).await?;
    Ok(ApiJson(domain::shown_to(reader.role, notification)))
}

/// Every template: the built-ins and the user-defined ones (which replace a
/// built-in of the same name and channel) (staff).
#[utoipa::path(get, path = "/templates", tag = TAG, security(("bearer" = [])),
    responses((status = 200, body = Page<Template>), (status = 403, body = ErrorBody)))]
pub async fn templates(
    State(state): State<AppState>,
    _: Staff,
) -> AppResult<ApiJson<Page<Template>>> {
    let items = domain::templates(&state).await?;
    Ok(ApiJson(Page {
        total: items.len() as u64,
        limit: items.len() as u32,
        offset: 0,
        items,
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TemplateParams {
    /// Only this channel's version.
    #[param(nullable = false)]
    channel: Option<Channel>,
}

/// A template by name, one entry per channel it exists for (staff).
#[utoipa::path(get, path = "/templates/{name}", tag = TAG, security(("bearer" = [])),
    params(("name" = String, Path, description = "template name"), TemplateParams),
    responses((status = 200, body = Vec<Template>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn template(
    State(state): State<AppState>,
    _: Staff,
    Path(name): Path<String>,
    ApiQuery(params): ApiQuery<TemplateParams>,
) -> AppResult<ApiJson<Vec<Template>>> {
    Ok(ApiJson(
        domain::template(&state, &name, params.channel).await?,
    ))
}

/// Create or replace a user-defined template (staff). It is compiled first:
/// a syntax error is 400 with the engine's message and line.
#[utoipa::path(post, path = "/templates", tag = TAG, security(("bearer" = [])), request_body = TemplateRequest,
    responses((status = 201, body = Template), (status = 200, body = Template), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn save_template(
    State(state): State<AppState>,
    _: Staff,
    ApiJson(request): ApiJson<TemplateRequest>,
) -> AppResult<(StatusCode, ApiJson<Template>)> {
    let (created, template) = domain::save_template(&state, request).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, ApiJson(template)))
}

/// Counts by channel, template and status; median time to send; queue depth (staff).
#[utoipa::path(get, path = "/analytics", tag = TAG, security(("bearer" = [])),
    responses((status = 200, body = NotificationAnalytics), (status = 403, body = ErrorBody)))]
pub async fn analytics(
    State(state): State<AppState>,
    _: Staff,
) -> AppResult<ApiJson<NotificationAnalytics>> {
    Ok(ApiJson(domain::analytics(&state).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DeliveryParams {
    #[param(nullable = false)]
    channel: Option<Channel>,
    #[param(nullable = false)]
    recipient: Option<String>,
    /// Page size, 1-500 (default 50).
    #[param(nullable = false, minimum = 1, maximum = 500)]
    limit: Option<u32>,
    #[param(nullable = false, minimum = 0, maximum = 1_000_000)]
    offset: Option<u64>,
}

/// What the local sinks delivered, newest first (staff): the channels with no
/// provider configured.
#[utoipa::path(get, path = "/deliveries", tag = TAG, security(("bearer" = [])), params(DeliveryParams),
    responses((status = 200, body = Page<Delivery>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn deliveries(
    State(state): State<AppState>,
    Staff(reader): Staff,
    ApiQuery(params): ApiQuery<DeliveryParams>,
) -> AppResult<ApiJson<Page<Delivery>>> {
    let query = DeliveryQuery {
        channel: params.channel,
        recipient: params.recipient,
        limit: crate::services::page_limit(params.limit)?,
        offset: page_offset(params.offset)?,
    };
    Ok(ApiJson(
        domain::deliveries(&state, reader.role, query).await?,
    ))
}

/// The notifications service's health: database, workers, each channel's circuit breaker.
#[utoipa::path(get, path = "/health", tag = TAG, responses((status = 200, body = ServiceHealth), (status = 503, body = ServiceHealth)))]
pub async fn health(State(state): State<AppState>) -> (StatusCode, ApiJson<ServiceHealth>) {
    let health = super::health(&state, database_check(&state).await).await;
    crate::services::health::respond(health.status, health)
}
