//! HTTP handlers of pricing: shipping zones, tax rates and discounts
//! (staff), the quote and a cart's codes (anyone signed in). Each
//! translates a request to one domain call.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use shop_wire::addresses::{NewSavedAddress, SavedAddress};
use shop_wire::pricing::{
    ApplyDiscount, Discount, NewDiscount, NewShippingZone, NewTaxRate, Quote, QuoteRequest,
    ShippingZone, TaxRate,
};
use shop_wire::{ErrorBody, Page};

use super::{address_book, domain};
use crate::auth::{AuthUser, Staff};
use crate::error::AppResult;
use crate::gateway::json::ApiJson;
use crate::state::AppState;

fn page<T>(items: Vec<T>) -> Page<T> {
    Page {
        total: items.len() as u64,
        limit: items.len() as u32,
        offset: 0,
        items,
    }
}

/// Every shipping zone with its methods, oldest first (staff).
#[utoipa::path(get, path = "/zones", tag = "shipping", security(("bearer" = [])),
    responses((status = 200, body = Page<ShippingZone>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_zones(
    State(state): State<AppState>,
    _: Staff,
) -> AppResult<ApiJson<Page<ShippingZone>>> {
    Ok(ApiJson(page(domain::zones(&state).await?)))
}

/// Add a shipping zone (staff): its countries, the currency of its prices,
/// and its methods. 400 `unknown_country`, `invalid_shipping_rate`; 409
/// `country_in_another_zone`.
#[utoipa::path(post, path = "/zones", tag = "shipping", security(("bearer" = [])), request_body = NewShippingZone,
    responses((status = 201, body = ShippingZone), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_zone(
    State(state): State<AppState>,
    _: Staff,
    ApiJson(request): ApiJson<NewShippingZone>,
) -> AppResult<(StatusCode, ApiJson<ShippingZone>)> {
    let zone = domain::create_zone(&state, request).await?;
    Ok((StatusCode::CREATED, ApiJson(zone)))
}

/// Remove a shipping zone (staff); orders placed keep the shipping they were sold with.
#[utoipa::path(delete, path = "/zones/{id}", tag = "shipping", security(("bearer" = [])),
    params(("id" = String, Path, description = "zone id (shz_...)")),
    responses((status = 200, body = ShippingZone), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_zone(
    State(state): State<AppState>,
    _: Staff,
    Path(id): Path<String>,
) -> AppResult<ApiJson<ShippingZone>> {
    Ok(ApiJson(domain::delete_zone(&state, &id).await?))
}

/// Every tax rate, oldest first (staff).
#[utoipa::path(get, path = "/rates", tag = "tax", security(("bearer" = [])),
    responses((status = 200, body = Page<TaxRate>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_rates(
    State(state): State<AppState>,
    _: Staff,
) -> AppResult<ApiJson<Page<TaxRate>>> {
    Ok(ApiJson(page(domain::rates(&state).await?)))
}

/// Add a tax rate of a country, or of one region of it, for every product
/// or one tax category (staff). 400 `unknown_country`, `invalid_tax_rate`;
/// 409 `tax_rate_exists`.
#[utoipa::path(post, path = "/rates", tag = "tax", security(("bearer" = [])), request_body = NewTaxRate,
    responses((status = 201, body = TaxRate), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_rate(
    State(state): State<AppState>,
    _: Staff,
    ApiJson(request): ApiJson<NewTaxRate>,
) -> AppResult<(StatusCode, ApiJson<TaxRate>)> {
    let rate = domain::create_rate(&state, request).await?;
    Ok((StatusCode::CREATED, ApiJson(rate)))
}

/// Remove a tax rate (staff); orders placed keep the tax they were sold with.
#[utoipa::path(delete, path = "/rates/{id}", tag = "tax", security(("bearer" = [])),
    params(("id" = String, Path, description = "rate id (txr_...)")),
    responses((status = 200, body = TaxRate), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_rate(
    State(state): State<AppState>,
    _: Staff,
    Path(id): Path<String>,
) -> AppResult<ApiJson<TaxRate>> {
    Ok(ApiJson(domain::delete_rate(&state, &id).await?))
}

/// Price an order without placing it: subtotal, discounts, shipping, tax
/// and total exactly as `POST /api/orders` would charge them, and the
/// shipping methods for the address. Changes nothing. 400
/// `unknown_country`, `shipping_method_unavailable`,
/// `shipping_address_required`; 404 `unknown_sku`; 409 `currency_mismatch`.
#[utoipa::path(post, path = "/quote", tag = "orders", security(("bearer" = [])), request_body = QuoteRequest,
    responses((status = 200, body = Quote), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn quote(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiJson(request): ApiJson<QuoteRequest>,
) -> AppResult<ApiJson<Quote>> {
    Ok(ApiJson(domain::quote(&state, &caller, request).await?))
}

/// Every discount, newest first (staff).
#[utoipa::path(get, path = "", tag = "discounts", security(("bearer" = [])),
    responses((status = 200, body = Page<Discount>), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_discounts(
    State(state): State<AppState>,
    _: Staff,
) -> AppResult<ApiJson<Page<Discount>>> {
    Ok(ApiJson(page(domain::discounts(&state).await?)))
}

/// Add a discount code or an automatic promotion (staff). 400
/// `invalid_discount_value`, `invalid_discount_window`; 409 `discount_code_exists`.
#[utoipa::path(post, path = "", tag = "discounts", security(("bearer" = [])), request_body = NewDiscount,
    responses((status = 201, body = Discount), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create_discount(
    State(state): State<AppState>,
    _: Staff,
    ApiJson(request): ApiJson<NewDiscount>,
) -> AppResult<(StatusCode, ApiJson<Discount>)> {
    let discount = domain::create_discount(&state, request).await?;
    Ok((StatusCode::CREATED, ApiJson(discount)))
}

/// One discount, by id or code (staff), with `times_used`.
#[utoipa::path(get, path = "/{id}", tag = "discounts", security(("bearer" = [])),
    params(("id" = String, Path, description = "discount id (dsc_...) or code")),
    responses((status = 200, body = Discount), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_discount(
    State(state): State<AppState>,
    _: Staff,
    Path(id): Path<String>,
) -> AppResult<ApiJson<Discount>> {
    Ok(ApiJson(domain::discount(&state, &id).await?))
}

/// Disable a discount (staff): no order gets it any more.
#[utoipa::path(post, path = "/{id}/disable", tag = "discounts", security(("bearer" = [])),
    params(("id" = String, Path, description = "discount id (dsc_...) or code")),
    responses((status = 200, body = Discount), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn disable_discount(
    State(state): State<AppState>,
    _: Staff,
    Path(id): Path<String>,
) -> AppResult<ApiJson<Discount>> {
    Ok(ApiJson(domain::disable_discount(&state, &id).await?))
}

/// Apply a discount code to a cart (its owner): it is used at the cart's
/// checkout. Answers the cart's price with the code. 400
/// `discount_already_applied`; 404 `unknown_discount`; 409
/// `discount_expired`, `discount_not_started`, `discount_limit_reached`,
/// `discount_customer_limit_reached`, `discount_minimum_not_met`,
/// `discount_disabled`, `currency_mismatch`.
#[utoipa::path(post, path = "/{id}/discounts", tag = "cart", security(("bearer" = [])), request_body = ApplyDiscount,
    params(("id" = String, Path, description = "cart id (crt_...)")),
    responses((status = 200, body = Quote), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn apply_to_cart(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
    ApiJson(request): ApiJson<ApplyDiscount>,
) -> AppResult<ApiJson<Quote>> {
    Ok(ApiJson(
        domain::apply_to_cart(&state, &caller, &id, request).await?,
    ))
}

/// The caller's address book, oldest first.
#[utoipa::path(get, path = "/me/addresses", tag = "users", security(("bearer" = [])),
    responses((status = 200, body = Page<SavedAddress>), (status = 401, body = ErrorBody)))]
pub async fn list_addresses(
    State(state): State<AppState>,
    caller: AuthUser,
) -> AppResult<ApiJson<Page<SavedAddress>>> {
    Ok(ApiJson(page(
        address_book::list(&state, &caller.user_id).await?,
    )))
}

/// Save an address to the caller's book, checked as a checkout checks one;
/// `default_shipping`/`default_billing` move the default to it. 409
/// `address_book_full` past 20 addresses.
#[utoipa::path(post, path = "/me/addresses", tag = "users", security(("bearer" = [])), request_body = NewSavedAddress,
    responses((status = 201, body = SavedAddress), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn save_address(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiJson(request): ApiJson<NewSavedAddress>,
) -> AppResult<(StatusCode, ApiJson<SavedAddress>)> {
    let saved = address_book::save(&state, &caller.user_id, request).await?;
    Ok((StatusCode::CREATED, ApiJson(saved)))
}

/// Delete an address of the caller's book; orders and carts that used it
/// keep their copy. Another customer's address is not found.
#[utoipa::path(delete, path = "/me/addresses/{id}", tag = "users", security(("bearer" = [])),
    params(("id" = String, Path, description = "address id (adr_...)")),
    responses((status = 200, body = SavedAddress), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete_address(
    State(state): State<AppState>,
    caller: AuthUser,
    Path(id): Path<String>,
) -> AppResult<ApiJson<SavedAddress>> {
    Ok(ApiJson(
        address_book::delete(&state, &caller.user_id, &id).await?,
    ))
}
