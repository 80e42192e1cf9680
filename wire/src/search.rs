//! Search: ranked results with facets and highlights, suggestions,
//! recommendations and search analytics.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::products::{Product, ProductId};

/// `GET /api/search`: one page of ranked products, with facets over every match.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchResponse {
    pub items: Vec<SearchHit>,
    /// Every product matching the query and filters, not just this page.
    pub total: u64,
    pub limit: u32,
    pub offset: u64,
    /// The query as asked (trimmed).
    pub query: String,
    pub facets: SearchFacets,
    /// `all` (every word matched), `any` (no product had every word; most
    /// words matched first) or `browse` (no words: most popular first).
    pub matching: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchHit {
    /// 1-based position in the whole result list.
    pub rank: u64,
    pub product: Product,
    /// Relevance (BM25F with typo and phrase adjustments); popularity when browsing.
    pub score: f64,
    /// Units available to sell now.
    pub available: i64,
    /// Matched words wrapped in `<em>`, the rest HTML-escaped, for the fields
    /// that matched: `name`, `description` (an excerpt), `category`, `attributes.<key>`.
    pub highlights: BTreeMap<String, String>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchFacets {
    /// Each category holding a result, and each of its ancestors, with the results in its subtree.
    pub categories: Vec<FacetCount>,
    /// Results per price range (minor units; `max_cents` exclusive, absent on the last).
    pub price: Vec<PriceBucket>,
    pub in_stock: StockFacet,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FacetCount {
    pub value: String,
    pub count: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PriceBucket {
    pub min_cents: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_cents: Option<i64>,
    pub count: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StockFacet {
    #[serde(rename = "true")]
    pub in_stock: u64,
    #[serde(rename = "false")]
    pub out_of_stock: u64,
}

/// `GET /api/search/suggest?prefix=`: completions, most popular first.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Suggestions {
    pub suggestions: Vec<String>,
}

/// `GET /api/search/recommendations/{id}`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Recommendations {
    pub product_id: ProductId,
    pub items: Vec<Recommendation>,
    pub total: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Recommendation {
    pub rank: u64,
    pub product: Product,
    pub score: f64,
    /// `co_purchase`, `co_view` or `category`.
    pub reason: String,
    pub co_purchases: u64,
    pub co_views: u64,
}

/// `POST /api/search/analytics/view`: a product page was seen.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ViewRequest {
    /// The product's id (`prd_...`) or SKU.
    pub product: String,
    /// The visitor's session, checked and kept for compatibility: only a
    /// signed-in caller's views pair into co-views (by their account), since
    /// anyone can make up any number of anonymous sessions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(
        feature = "openapi",
        schema(
            min_length = 1,
            max_length = 128,
            pattern = r"^[^\x00-\x1f\x7f-\x9f]*$"
        )
    )]
    pub session: Option<String>,
}

/// `GET /api/search/analytics`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SearchAnalytics {
    /// The window the figures cover, from this hour on.
    #[serde(with = "time::serde::rfc3339")]
    pub since: OffsetDateTime,
    pub total_queries: u64,
    pub zero_result_total: u64,
    pub cache_hits: u64,
    pub avg_latency_ms: f64,
    pub top_queries: Vec<QueryCount>,
    pub zero_result_queries: Vec<QueryCount>,
    /// Searches per hour, oldest first; hours without a search are left out.
    pub volume: Vec<VolumePoint>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct QueryCount {
    pub query: String,
    pub count: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct VolumePoint {
    #[serde(with = "time::serde::rfc3339")]
    pub hour: OffsetDateTime,
    pub count: u64,
}
