//! The storage interface of search: documents, analytics and popularity.

use async_trait::async_trait;

use shop_wire::products::{Product, ProductId};
use shop_wire::search::SearchAnalytics;
use time::OffsetDateTime;

use super::{CursorMove, NewEvent, StoreResult};

/// A product as the search index takes it: with its stock and popularity.
#[derive(Clone, Debug)]
pub struct SearchDocument {
    pub product: Product,
    /// On hand minus reserved.
    pub available: i64,
    pub popularity: f32,
}

/// One search as analytics records it.
#[derive(Clone, Debug)]
pub struct SearchRecord {
    /// Normalized: lower case, no accents, single spaces.
    pub query: String,
    /// As asked, trimmed and cut to 200 characters.
    pub raw: String,
    pub filters: serde_json::Value,
    pub result_count: u64,
    pub latency_us: u64,
    pub cache_hit: bool,
    pub at: OffsetDateTime,
    /// A digest of who searched (the client address), to count distinct searchers.
    pub client: Option<String>,
}

/// A query searched since some time that found something.
#[derive(Clone, Debug, PartialEq)]
pub struct PopularQuery {
    pub query: String,
    pub searches: u64,
    /// How many different clients searched it.
    pub clients: u64,
}

/// Who viewed a product and how their views may pair into co-views.
#[derive(Clone, Debug)]
pub struct ViewPairing {
    /// The signed-in account; anonymous views do not pair.
    pub viewer: String,
    /// A digest of the client address, whose pairing views are capped.
    pub client: String,
    /// At most this many of the client's views pair within the window (0: no cap).
    pub per_client: u32,
}

/// A product view, buffered by the search service and written in a batch.
#[derive(Clone, Debug)]
pub struct ProductView {
    pub product: ProductId,
    /// Who viewed it, when the view may pair into co-views.
    pub pairing: Option<ViewPairing>,
    pub at: OffsetDateTime,
}

/// A product that was bought or viewed together with another.
#[derive(Clone, Debug, PartialEq)]
pub struct RelatedProduct {
    pub id: ProductId,
    pub co_purchases: u64,
    pub co_views: u64,
}

/// How often a product was bought and viewed; popularity is derived from these.
#[derive(Clone, Debug, PartialEq)]
pub struct ProductPopularity {
    pub id: ProductId,
    pub purchases: u64,
    pub views: u64,
}

impl ProductPopularity {
    /// A purchase counts as much as three views.
    pub fn score(purchases: u64, views: u64) -> f32 {
        (purchases * 3 + views) as f32
    }
}

#[async_trait]
pub trait SearchStore: Send + Sync {
    /// Every product (archived ones too) with its stock and popularity, in id
    /// order, `batch` at a time from after `after`: the start-up build.
    async fn search_documents_after(
        &self,
        after: Option<ProductId>,
        batch: u32,
    ) -> StoreResult<Vec<SearchDocument>>;
    /// These products as the index takes them; missing ones (deleted) are left out.
    async fn search_documents(&self, ids: Vec<ProductId>) -> StoreResult<Vec<SearchDocument>>;
    /// These products, in no particular order; missing ones are left out.
    async fn products_by_ids(&self, ids: Vec<ProductId>) -> StoreResult<Vec<Product>>;
    /// Records searches (raw and counted per hour) and logs their events.
    async fn record_searches(
        &self,
        records: Vec<SearchRecord>,
        events: Vec<NewEvent>,
    ) -> StoreResult<()>;
    /// Top and zero-result queries and volume per hour since `since`.
    async fn search_analytics(
        &self,
        since: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<SearchAnalytics>;
    /// The most searched queries since `since` that found something, with
    /// their counts and how many different clients searched them.
    async fn popular_queries(
        &self,
        since: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<Vec<PopularQuery>>;
    /// Counts paid orders (each a list of SKUs, repeated SKUs once) as
    /// purchases and co-purchases, and moves `cursor` in one transaction, or
    /// writes nothing (see [`CursorMove`]), so no order is counted twice
    /// whatever the number of nodes. Returns the new counts of the products involved.
    async fn record_purchases(
        &self,
        orders: Vec<Vec<String>>,
        cursor: CursorMove,
    ) -> StoreResult<Vec<ProductPopularity>>;
    /// Counts `views` in order, in one transaction: each a view, and a
    /// co-view with each product its viewer viewed in the `window` before it
    /// (at most `pair_with` of them). Returns the new counts of the viewed
    /// products, each once.
    async fn record_views(
        &self,
        views: Vec<ProductView>,
        window: time::Duration,
        pair_with: u32,
    ) -> StoreResult<Vec<ProductPopularity>>;
    /// Products bought or viewed with `product`, strongest first (a co-purchase weighs three co-views).
    async fn related_products(
        &self,
        product: &ProductId,
        limit: u32,
    ) -> StoreResult<Vec<RelatedProduct>>;
    /// Deletes search records and views older than `before`; returns how many.
    async fn prune_search_history(&self, before: OffsetDateTime) -> StoreResult<u64>;
}
