//! HTTP handlers of the cart service: each translates a request to one
//! domain call. A cart is reached by its owner's bearer token, or by the
//! anonymous cart's secret in `X-Cart-Token`.

use axum::Extension;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use shop_wire::addresses::SetCartCheckout;
use shop_wire::cart::{AddCartItem, CART_TOKEN_HEADER, Cart, CartId, NewCart, UpdateCartItem};
use shop_wire::{ErrorBody, ServiceHealth};

use super::domain::{self, CartAccess};
use crate::auth::Viewer;
use crate::error::{AppError, AppResult};
use crate::gateway::ClientAddr;
use crate::gateway::idempotency::CarriesSecret;
use crate::gateway::json::{ApiJson, ApiQuery};
use crate::services::health::database_check;
use crate::services::if_match_version;
use crate::state::AppState;
use crate::store::CartChange;

const TAG: &str = "cart";

fn access(viewer: Viewer, headers: &HeaderMap) -> CartAccess {
    CartAccess {
        client: None,
        user: viewer.0,
        token: headers
            .get(CART_TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty()),
    }
}

fn cart_id(raw: &str) -> AppResult<CartId> {
    raw.parse()
        .map_err(|_| AppError::not_found(format!("cart {raw}")))
}

/// The version a change is made to: the body's `expected_version`, else `If-Match`.
fn expected(body: Option<u64>, headers: &HeaderMap) -> AppResult<Option<u64>> {
    match body {
        Some(version) => Ok(Some(version)),
        None => if_match_version(headers, "cart"),
    }
}

/// Start a cart (201), or get the signed-in user's active one (200). An
/// anonymous cart's answer carries its `token` once: send it back as `X-Cart-Token`.
#[utoipa::path(post, path = "", tag = TAG, request_body = Option<NewCart>,
    responses((status = 201, body = Cart), (status = 200, body = Cart), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 429, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    ConnectInfo(ClientAddr(peer)): ConnectInfo<ClientAddr>,
    body: Option<ApiJson<NewCart>>,
) -> AppResult<(StatusCode, Option<Extension<CarriesSecret>>, ApiJson<Cart>)> {
    // The body is optional: an empty POST starts an empty cart.
    let request = body.map(|ApiJson(r)| r).unwrap_or_default();
    let access = CartAccess {
        client: Some(peer.ip()),
        ..access(viewer, &headers)
    };
    let (cart, created) = domain::create(&state, &access, request).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let secret = cart.token.is_some().then_some(Extension(CarriesSecret));
    Ok((status, secret, ApiJson(cart)))
}

/// The caller's active cart.
#[utoipa::path(get, path = "", tag = TAG,
    responses((status = 200, body = Cart), (status = 404, body = ErrorBody)))]
pub async fn current(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
) -> AppResult<ApiJson<Cart>> {
    Ok(ApiJson(
        domain::current(&state, &access(viewer, &headers)).await?,
    ))
}

/// One cart the caller may see.
#[utoipa::path(get, path = "/{id}", tag = TAG,
    params(("id" = String, Path, description = "cart id (crt_...)")),
    responses((status = 200, body = Cart), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> AppResult<ApiJson<Cart>> {
    Ok(ApiJson(
        domain::get(&state, &access(viewer, &headers), &id).await?,
    ))
}

/// Add units of a SKU (holding their stock); 409 `insufficient_stock`,
/// `version_conflict`, `cart_expired`, `product_archived`, `currency_mismatch`,
/// `quantity_limit`; 403 for staff, who see a customer's cart but do not change it.
#[utoipa::path(post, path = "/{id}/items", tag = TAG, request_body = AddCartItem,
    params(("id" = String, Path, description = "cart id (crt_...)")),
    responses((status = 200, body = Cart), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn add(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<AddCartItem>,
) -> AppResult<ApiJson<Cart>> {
    let expected = expected(request.expected_version, &headers)?;
    let change = CartChange::Add {
        sku: request.sku,
        quantity: request.quantity,
    };
    let id = cart_id(&id)?;
    Ok(ApiJson(
        domain::apply(&state, &access(viewer, &headers), &id, change, expected).await?,
    ))
}

/// Set a line's quantity (0 removes it); lowering it releases stock.
#[utoipa::path(patch, path = "/{id}/items/{sku}", tag = TAG, request_body = UpdateCartItem,
    params(("id" = String, Path, description = "cart id (crt_...)"), ("sku" = String, Path, description = "the line's SKU", min_length = 1, max_length = 64, pattern = r"^[A-Z0-9][A-Z0-9._-]*$")),
    responses((status = 200, body = Cart), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path((id, sku)): Path<(String, String)>,
    ApiJson(request): ApiJson<UpdateCartItem>,
) -> AppResult<ApiJson<Cart>> {
    let expected = expected(request.expected_version, &headers)?;
    let change = CartChange::Set {
        sku,
        quantity: request.quantity,
    };
    let id = cart_id(&id)?;
    Ok(ApiJson(
        domain::apply(&state, &access(viewer, &headers), &id, change, expected).await?,
    ))
}

/// Set where the cart's order goes and how it is shipped: its shipping and
/// billing addresses (written out, or `*_address_id` from the caller's
/// address book) and a shipping method's code. An order or a quote of the
/// cart uses them unless it says otherwise. Replaces what was set before.
#[utoipa::path(put, path = "/{id}/checkout", tag = TAG, request_body = SetCartCheckout,
    params(("id" = String, Path, description = "cart id (crt_...)")),
    responses((status = 200, body = Cart), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn set_checkout(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<SetCartCheckout>,
) -> AppResult<ApiJson<Cart>> {
    let expected = expected(request.expected_version, &headers)?;
    let id = cart_id(&id)?;
    let access = access(viewer, &headers);
    Ok(ApiJson(
        domain::set_checkout(&state, &access, &id, request, expected).await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct VersionParams {
    /// Change only if the cart is still at this version (or use `If-Match`).
    #[param(nullable = false)]
    expected_version: Option<u64>,
}

/// Remove a line, releasing its stock.
#[utoipa::path(delete, path = "/{id}/items/{sku}", tag = TAG, params(VersionParams,
        ("id" = String, Path, description = "cart id (crt_...)"), ("sku" = String, Path, description = "the line's SKU", min_length = 1, max_length = 64, pattern = r"^[A-Z0-9][A-Z0-9._-]*$")),
    responses((status = 200, body = Cart), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn remove(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path((id, sku)): Path<(String, String)>,
    ApiQuery(params): ApiQuery<VersionParams>,
) -> AppResult<ApiJson<Cart>> {
    let expected = expected(params.expected_version, &headers)?;
    let id = cart_id(&id)?;
    Ok(ApiJson(
        domain::apply(
            &state,
            &access(viewer, &headers),
            &id,
            CartChange::Remove { sku },
            expected,
        )
        .await?,
    ))
}

/// Remove every line, releasing their stock.
#[utoipa::path(delete, path = "/{id}/items", tag = TAG, params(VersionParams,
        ("id" = String, Path, description = "cart id (crt_...)")),
    responses((status = 200, body = Cart), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn clear(
    State(state): State<AppState>,
    viewer: Viewer,
    headers: HeaderMap,
    Path(id): Path<String>,
    ApiQuery(params): ApiQuery<VersionParams>,
) -> AppResult<ApiJson<Cart>> {
    let expected = expected(params.expected_version, &headers)?;
    let id = cart_id(&id)?;
    Ok(ApiJson(
        domain::apply(
            &state,
            &access(viewer, &headers),
            &id,
            CartChange::Clear,
            expected,
        )
        .await?,
    ))
}

/// The cart service's health.
#[utoipa::path(get, path = "/health", tag = TAG,
    responses((status = 200, body = ServiceHealth), (status = 503, body = ServiceHealth)))]
pub async fn health(State(state): State<AppState>) -> (StatusCode, ApiJson<ServiceHealth>) {
    let health = super::health(&state, database_check(&state).await);
    crate::services::health::respond(health.status, health)
}
