//! HTTP handlers of the API keys service.

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use shop_wire::keys::{ApiKey, CreatedKey, NewKey};
use shop_wire::{ErrorBody, KeyId};

use super::domain;
use crate::auth::Staff;
use crate::error::{AppError, AppResult};
use crate::gateway::idempotency::CarriesSecret;
use crate::gateway::json::ApiJson;
use crate::state::AppState;

const TAG: &str = "keys";

fn key_id(raw: &str) -> AppResult<KeyId> {
    raw.parse()
        .map_err(|_| AppError::not_found(format!("key {raw}")))
}

/// Make an API key (staff). The secret is in this response only.
#[utoipa::path(post, path = "", tag = TAG, security(("bearer" = [])), request_body = NewKey,
    responses((status = 201, body = CreatedKey), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Staff(caller): Staff,
    ApiJson(request): ApiJson<NewKey>,
) -> AppResult<(StatusCode, Extension<CarriesSecret>, ApiJson<CreatedKey>)> {
    let created = domain::create(&state, &caller, request).await?;
    Ok((
        StatusCode::CREATED,
        Extension(CarriesSecret),
        ApiJson(created),
    ))
}

/// List keys (staff: their own; admins: all). Secrets are never listed.
#[utoipa::path(get, path = "", tag = TAG, security(("bearer" = [])),
    responses((status = 200, body = shop_wire::Page<ApiKey>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Staff(caller): Staff,
) -> AppResult<ApiJson<shop_wire::Page<ApiKey>>> {
    let keys = domain::list(&state, &caller).await?;
    let total = keys.len() as u64;
    Ok(ApiJson(shop_wire::Page {
        limit: keys.len() as u32,
        items: keys,
        total,
        offset: 0,
    }))
}

/// One key.
#[utoipa::path(get, path = "/{id}", tag = TAG, security(("bearer" = [])),
    params(("id" = String, Path, description = "key id (key_...)")),
    responses((status = 200, body = ApiKey), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    Staff(caller): Staff,
    Path(id): Path<String>,
) -> AppResult<ApiJson<ApiKey>> {
    Ok(ApiJson(domain::get(&state, &caller, &key_id(&id)?).await?))
}

/// Revoke a key: it stops working at once.
#[utoipa::path(delete, path = "/{id}", tag = TAG, security(("bearer" = [])),
    params(("id" = String, Path, description = "key id (key_...)")),
    responses((status = 200, body = ApiKey), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn revoke(
    State(state): State<AppState>,
    Staff(caller): Staff,
    Path(id): Path<String>,
) -> AppResult<ApiJson<ApiKey>> {
    Ok(ApiJson(
        domain::revoke(&state, &caller, &key_id(&id)?).await?,
    ))
}
