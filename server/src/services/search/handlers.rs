//! HTTP handlers of the search service: each reads its parameters and makes
//! one domain call. Searching, suggestions, recommendations and recording a
//! view are public (the storefront); analytics are for staff.

use std::sync::Arc;

use axum::extract::{ConnectInfo, Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use shop_wire::search::{
    Recommendations, SearchAnalytics, SearchResponse, Suggestions, ViewRequest,
};
use shop_wire::{ErrorBody, ServiceHealth};

use super::domain::{self, SearchParams, check_limit};
use crate::auth::{Staff, Viewer};
use crate::error::{AppError, AppResult};
use crate::gateway::ClientAddr;
use crate::gateway::json::{ApiJson, ApiQuery};
use crate::services::health::database_check;
use crate::state::AppState;

const TAG: &str = "search";

/// Refuses parameters whose percent-decoded bytes are not UTF-8. The query
/// extractor would quietly turn them into U+FFFD, and a search for
/// replacement characters is not what anyone asked for.
fn utf8_parameters(raw: Option<&str>) -> AppResult<()> {
    let Some(raw) = raw else {
        return Ok(());
    };
    for pair in raw.split('&') {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let mut bytes = Vec::with_capacity(value.len());
        let mut rest = value.as_bytes();
        while let Some((&b, tail)) = rest.split_first() {
            let decoded = match (b, tail) {
                (b'%', [h, l, ..]) => {
                    match (char::from(*h).to_digit(16), char::from(*l).to_digit(16)) {
                        (Some(h), Some(l)) => {
                            rest = &tail[2..];
                            bytes.push((h * 16 + l) as u8);
                            continue;
                        }
                        _ => b,
                    }
                }
                (b'+', _) => b' ',
                _ => b,
            };
            bytes.push(decoded);
            rest = tail;
        }
        if std::str::from_utf8(&bytes).is_err() {
            return Err(AppError::BadRequest {
                code: "invalid_query",
                message: format!("{name}: not valid UTF-8 once percent-decoded"),
            });
        }
    }
    Ok(())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SearchQueryParams {
    /// Words to look for (at most 512 characters). Empty or absent: browse,
    /// most popular first. Punctuation and operators are ignored; the last
    /// word also matches as a prefix unless the query ends with a space.
    #[param(nullable = false, max_length = 512)]
    q: Option<String>,
    /// A category path; matches it and everything below it.
    #[param(
        nullable = false,
        max_length = 400,
        pattern = r"^(\s*|[^/\x00-\x1f\x7f-\x9f]*[^/\s\x00-\x1f\x7f-\x9f][^/\x00-\x1f\x7f-\x9f]*(/[^/\x00-\x1f\x7f-\x9f]*[^/\s\x00-\x1f\x7f-\x9f][^/\x00-\x1f\x7f-\x9f]*){0,4})$"
    )]
    category: Option<String>,
    /// Lowest price in minor units (cents), inclusive.
    #[param(nullable = false, minimum = 0)]
    min_price: Option<i64>,
    /// Highest price in minor units (cents), inclusive.
    #[param(nullable = false, minimum = 0)]
    max_price: Option<i64>,
    /// Only products with stock available (true) or without (false).
    #[param(nullable = false)]
    in_stock: Option<bool>,
    /// Page size, 1-100 (default 20).
    #[param(nullable = false, minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// Results to skip, 0-10000 (default 0).
    #[param(nullable = false, minimum = 0, maximum = 10_000)]
    offset: Option<i64>,
}

/// Ranked search with filters, facets and highlights.
#[utoipa::path(get, path = "", tag = TAG, params(SearchQueryParams),
    responses((status = 200, body = SearchResponse), (status = 400, body = ErrorBody), (status = 503, body = ErrorBody)))]
pub async fn search(
    State(state): State<AppState>,
    ConnectInfo(ClientAddr(peer)): ConnectInfo<ClientAddr>,
    RawQuery(raw): RawQuery,
    ApiQuery(params): ApiQuery<SearchQueryParams>,
) -> AppResult<ApiJson<Arc<SearchResponse>>> {
    utf8_parameters(raw.as_deref())?;
    let query = SearchParams {
        q: params.q,
        category: params.category,
        min_price: params.min_price,
        max_price: params.max_price,
        in_stock: params.in_stock,
        limit: params.limit,
        offset: params.offset,
    }
    .check()?;
    Ok(ApiJson(
        domain::search(&state, query, Some(peer.ip())).await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SuggestParams {
    /// What has been typed so far (at most 100 characters).
    #[serde(default)]
    #[param(max_length = 100)]
    prefix: String,
    /// How many suggestions, 1-20 (default 10).
    #[param(nullable = false, minimum = 1, maximum = 20)]
    limit: Option<i64>,
}

/// Completions of a prefix from product names and past searches, most popular first.
#[utoipa::path(get, path = "/suggest", tag = TAG, params(SuggestParams),
    responses((status = 200, body = Suggestions), (status = 400, body = ErrorBody)))]
pub async fn suggest(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    ApiQuery(params): ApiQuery<SuggestParams>,
) -> AppResult<ApiJson<Suggestions>> {
    utf8_parameters(raw.as_deref())?;
    let limit = check_limit(params.limit, 10, 20)?;
    Ok(ApiJson(
        domain::suggest(&state, &params.prefix, limit).await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AnalyticsParams {
    /// The window, in hours back from now (default 24).
    #[param(nullable = false, minimum = 1, maximum = 8784)]
    hours: Option<i64>,
    /// Entries per list, 1-100 (default 10).
    #[param(nullable = false, minimum = 1, maximum = 100)]
    limit: Option<i64>,
}

/// Top queries, zero-result queries and search volume per hour (staff).
#[utoipa::path(get, path = "/analytics", tag = TAG, security(("bearer" = [])), params(AnalyticsParams),
    responses((status = 200, body = SearchAnalytics), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn analytics(
    State(state): State<AppState>,
    _: Staff,
    ApiQuery(params): ApiQuery<AnalyticsParams>,
) -> AppResult<ApiJson<SearchAnalytics>> {
    let limit = check_limit(params.limit, 10, 100)? as u32;
    Ok(ApiJson(
        domain::analytics(&state, params.hours.unwrap_or(24), limit).await?,
    ))
}

/// Record that a product was viewed: it feeds popularity and, for a
/// signed-in caller, the "viewed together" recommendations.
#[utoipa::path(post, path = "/analytics/view", tag = TAG, request_body = ViewRequest,
    responses((status = 204), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn view(
    State(state): State<AppState>,
    viewer: Viewer,
    ConnectInfo(ClientAddr(peer)): ConnectInfo<ClientAddr>,
    ApiJson(request): ApiJson<ViewRequest>,
) -> AppResult<StatusCode> {
    let user = viewer.0.map(|user| user.user_id);
    domain::view(
        &state,
        &request.product,
        request.session,
        user.as_ref(),
        peer.ip(),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct RecommendationParams {
    /// How many, 1-50 (default 10).
    #[param(nullable = false, minimum = 1, maximum = 50)]
    limit: Option<i64>,
}

/// Products to show beside one: bought together, viewed together, then the same category.
#[utoipa::path(get, path = "/recommendations/{key}", tag = TAG, params(RecommendationParams,
        ("key" = String, Path, description = "product id (prd_...) or SKU")),
    responses((status = 200, body = Recommendations), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn recommendations(
    State(state): State<AppState>,
    Path(key): Path<String>,
    ApiQuery(params): ApiQuery<RecommendationParams>,
) -> AppResult<ApiJson<Recommendations>> {
    let limit = check_limit(params.limit, 10, 50)?;
    Ok(ApiJson(domain::recommendations(&state, &key, limit).await?))
}

/// The search service's health: the database, the index and the workers.
#[utoipa::path(get, path = "/health", tag = TAG,
    responses((status = 200, body = ServiceHealth), (status = 503, body = ServiceHealth)))]
pub async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let health = super::health(&state, database_check(&state).await);
    crate::services::health::respond(health.status, health)
}

#[cfg(test)]
mod tests {
    use super::utf8_parameters;

    #[test]
    fn parameters_must_decode_to_utf8() {
        assert!(utf8_parameters(None).is_ok());
        assert!(utf8_parameters(Some("q=caf%C3%A9+au+lait&limit=5")).is_ok());
        assert!(
            utf8_parameters(Some("q=100%")).is_ok(),
            "a stray % is itself"
        );
        let err = utf8_parameters(Some("limit=5&q=%FF%FE")).expect_err("invalid");
        assert!(err.to_string().starts_with("q:"), "{err}");
    }
}
