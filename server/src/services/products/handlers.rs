//! HTTP handlers of the products service: each translates a request to one
//! domain call and its answer back. Reading the catalog is public (it is the
//! storefront); changing it, and seeing archived products, is for staff.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use shop_wire::products::{
    Category, DataFormat, ImportSummary, Product, ProductPatch, ProductRequest, StockImport,
};
use shop_wire::{ErrorBody, Page, ServiceHealth};

use super::{domain, export, import};
use crate::auth::{Staff, Viewer};
use crate::error::{AppError, AppResult};
use crate::gateway::json::{ApiJson, ApiQuery, page_offset};
use crate::services::health::database_check;
use crate::services::{if_match_version, page_limit};
use crate::state::AppState;
use crate::store::{ProductOrder, ProductQuery, ProductStatus};

const TAG: &str = "products";

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// A category path; matches it and everything below it (`furniture` covers `furniture/chairs`).
    #[param(
        nullable = false,
        max_length = 400,
        pattern = r"^(\s*|[^/\x00-\x1f\x7f-\x9f]*[^/\s\x00-\x1f\x7f-\x9f][^/\x00-\x1f\x7f-\x9f]*(/[^/\x00-\x1f\x7f-\x9f]*[^/\s\x00-\x1f\x7f-\x9f][^/\x00-\x1f\x7f-\x9f]*){0,4})$"
    )]
    category: Option<String>,
    /// Lowest price in minor units (cents), inclusive.
    #[param(nullable = false)]
    min_price: Option<i64>,
    /// Highest price in minor units (cents), inclusive.
    #[param(nullable = false)]
    max_price: Option<i64>,
    /// Case-insensitive text in the SKU, name or description.
    #[param(nullable = false)]
    q: Option<String>,
    /// Only products with stock available (true) or without (false).
    #[param(nullable = false)]
    in_stock: Option<bool>,
    /// `active` (default), or for staff `archived` or `all`.
    #[param(nullable = false, pattern = r"^(active|archived|all)$")]
    status: Option<String>,
    /// `price`, `name` or `created_at` (default), `-` first for descending; ties break by id.
    #[param(nullable = false, pattern = r"^-?(price|name|created_at)$")]
    sort: Option<String>,
    /// Page size, 1-500 (default 50).
    #[param(nullable = false, minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// Items to skip (default 0).
    #[param(nullable = false, minimum = 0, maximum = 1_000_000)]
    offset: Option<u64>,
}

fn parse_status(raw: Option<&str>) -> AppResult<ProductStatus> {
    match raw.unwrap_or("active") {
        "active" => Ok(ProductStatus::Active),
        "archived" => Ok(ProductStatus::Archived),
        "all" => Ok(ProductStatus::All),
        other => Err(AppError::validation(
            "status",
            format!("unknown status `{other}` (expected active, archived or all)"),
        )),
    }
}

fn parse_sort(raw: Option<&str>) -> AppResult<(ProductOrder, bool)> {
    let raw = raw.unwrap_or("created_at");
    let (descending, field) = match raw.strip_prefix('-') {
        Some(field) => (true, field),
        None => (false, raw),
    };
    let order = match field {
        "created_at" => ProductOrder::CreatedAt,
        "price" => ProductOrder::Price,
        "name" => ProductOrder::Name,
        other => {
            return Err(AppError::validation(
                "sort",
                format!(
                    "unknown sort `{other}` (expected price, name or created_at, with - for descending)"
                ),
            ));
        }
    };
    Ok((order, descending))
}

/// Products, filtered, sorted and paged. Archived ones only for staff.
#[utoipa::path(get, path = "", tag = TAG, params(ListParams),
    responses((status = 200, body = Page<Product>), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    viewer: Viewer,
    ApiQuery(params): ApiQuery<ListParams>,
) -> AppResult<ApiJson<Arc<Page<Product>>>> {
    let status = parse_status(params.status.as_deref())?;
    if status != ProductStatus::Active && !viewer.is_staff() {
        return Err(AppError::forbidden("only staff can list archived products"));
    }
    let category = match params.category.as_deref().map(domain::normalize_category) {
        Some(Ok(category)) => category,
        Some(Err(problem)) => return Err(AppError::validation("category", problem)),
        None => None,
    };
    let (order, descending) = parse_sort(params.sort.as_deref())?;
    let query = ProductQuery {
        category,
        min_price: params.min_price,
        max_price: params.max_price,
        text: params
            .q
            .map(|q| q.trim().to_owned())
            .filter(|q| !q.is_empty()),
        in_stock: params.in_stock,
        status,
        order,
        descending,
        limit: page_limit(params.limit)?,
        offset: page_offset(params.offset)?,
    };
    Ok(ApiJson(domain::list(&state, query).await?))
}

/// Create a product (staff); `stock` and `low_stock_threshold` set its inventory.
#[utoipa::path(post, path = "", tag = TAG, security(("bearer" = [])), request_body = ProductRequest,
    responses((status = 201, body = Product), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Staff(caller): Staff,
    ApiJson(request): ApiJson<ProductRequest>,
) -> AppResult<(StatusCode, ApiJson<Product>)> {
    let product = domain::create(&state, &caller, request).await?;
    Ok((StatusCode::CREATED, ApiJson(product)))
}

/// One product by id (`prd_...`) or SKU; an archived one only for staff (404 otherwise).
#[utoipa::path(get, path = "/{key}", tag = TAG,
    params(("key" = String, Path, description = "product id (prd_...) or SKU")),
    responses((status = 200, body = Product), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    viewer: Viewer,
    Path(key): Path<String>,
) -> AppResult<ApiJson<Product>> {
    Ok(ApiJson(
        domain::get_for(&state, &key, viewer.is_staff()).await?,
    ))
}

/// Change some fields (staff). With `version` in the body or `If-Match`,
/// only if the product is still at that version (else 409 `version_conflict`).
#[utoipa::path(patch, path = "/{key}", tag = TAG, security(("bearer" = [])), request_body = ProductPatch,
    params(("key" = String, Path, description = "product id (prd_...) or SKU")),
    responses((status = 200, body = Product), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    _: Staff,
    Path(key): Path<String>,
    headers: HeaderMap,
    ApiJson(patch): ApiJson<ProductPatch>,
) -> AppResult<ApiJson<Product>> {
    let if_match = if_match_version(&headers, "product")?;
    Ok(ApiJson(
        domain::update(&state, &key, patch, if_match).await?,
    ))
}

/// Delete a product with its stock and ledger (staff); refused while stock is reserved for it.
#[utoipa::path(delete, path = "/{key}", tag = TAG, security(("bearer" = [])),
    params(("key" = String, Path, description = "product id (prd_...) or SKU")),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    _: Staff,
    Path(key): Path<String>,
) -> AppResult<StatusCode> {
    domain::delete(&state, &key).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Archive a product (staff): hidden from the storefront, kept for order history.
#[utoipa::path(post, path = "/{key}/archive", tag = TAG, security(("bearer" = [])),
    params(("key" = String, Path, description = "product id (prd_...) or SKU")),
    responses((status = 200, body = Product), (status = 404, body = ErrorBody)))]
pub async fn archive(
    State(state): State<AppState>,
    _: Staff,
    Path(key): Path<String>,
) -> AppResult<ApiJson<Product>> {
    Ok(ApiJson(domain::archive(&state, &key).await?))
}

/// The category tree with the number of active products in each subtree.
#[utoipa::path(get, path = "/categories", tag = TAG, responses((status = 200, body = Page<Category>)))]
pub async fn categories(State(state): State<AppState>) -> AppResult<ApiJson<Page<Category>>> {
    Ok(ApiJson(domain::categories(&state).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ImportParams {
    /// `json`, `ndjson` or `csv`; by default taken from the Content-Type.
    #[param(nullable = false)]
    format: Option<DataFormat>,
    /// Check every row and report, writing nothing.
    #[param(nullable = false)]
    dry_run: Option<bool>,
    /// What a row's `stock` does to a product that already exists: `ignore`
    /// (the default: its stock is left alone), `set` or `add`. Products the
    /// import creates always start with their row's stock.
    #[param(nullable = false)]
    stock: Option<StockImport>,
}

fn format_from_content_type(headers: &HeaderMap) -> Option<DataFormat> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let essence = value.split(';').next()?.trim();
    DataFormat::ALL
        .iter()
        .copied()
        .find(|f| f.content_type() == essence)
}

/// Import products from a JSON array, NDJSON or CSV body, upserting by SKU
/// (staff). The body is streamed, so it may be of any size. Bad rows are
/// reported by line and the good ones still land.
#[utoipa::path(post, path = "/import", tag = TAG, security(("bearer" = [])), params(ImportParams),
    request_body(content = String, description = "the file, in the format named by `format` or Content-Type"),
    responses((status = 200, body = ImportSummary), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn import(
    State(state): State<AppState>,
    Staff(caller): Staff,
    ApiQuery(params): ApiQuery<ImportParams>,
    headers: HeaderMap,
    body: Body,
) -> AppResult<ApiJson<ImportSummary>> {
    let format = params
        .format
        .or_else(|| format_from_content_type(&headers))
        .ok_or_else(|| {
            AppError::validation(
                "format",
                "say json, ndjson or csv (or send Content-Type application/json, application/x-ndjson or text/csv)",
            )
        })?;
    let modes = (
        params.dry_run.unwrap_or(false),
        params.stock.unwrap_or_default(),
    );
    Ok(ApiJson(
        import::import(&state, &caller, format, modes, body).await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportParams {
    /// `json`, `ndjson` (default) or `csv`.
    #[param(nullable = false)]
    format: Option<DataFormat>,
    /// `active`, `archived` or `all` (default).
    #[param(nullable = false, pattern = r"^(active|archived|all)$")]
    status: Option<String>,
}

/// The catalog in an import format, streamed (staff). Importing it back changes nothing.
#[utoipa::path(get, path = "/export", tag = TAG, security(("bearer" = [])), params(ExportParams),
    responses((status = 200, description = "the catalog in the format asked for",
        content((String = "application/x-ndjson"), (Vec<ProductRequest> = "application/json"), (String = "text/csv"))),
        (status = 403, body = ErrorBody)))]
pub async fn export(
    State(state): State<AppState>,
    _: Staff,
    ApiQuery(params): ApiQuery<ExportParams>,
) -> AppResult<Response> {
    let format = params.format.unwrap_or_default();
    let status = parse_status(Some(params.status.as_deref().unwrap_or("all")))?;
    let body = export::export(state, format, status);
    Ok((
        [(header::CONTENT_TYPE, format.response_content_type())],
        body,
    )
        .into_response())
}

/// The products service's health.
#[utoipa::path(get, path = "/health", tag = TAG,
    responses((status = 200, body = ServiceHealth), (status = 503, body = ServiceHealth)))]
pub async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let health = super::health(database_check(&state).await);
    crate::services::health::respond(health.status, health)
}
