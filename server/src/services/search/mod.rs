//! The search service (`/api/search`): ranked full-text search with typo
//! tolerance, filters, facets and highlights; autocomplete; recommendations;
//! search analytics.
//!
//! The index ([`index`]) lives in memory and is the only thing searches
//! read (plus the product cache for the page's products). It is built from
//! the store at start, in the background, while the server already answers
//! other routes; searches wait for it. After that every catalog write in
//! this process updates it before its response goes out (the products
//! domain calls [`domain::catalog_changed`]), and stock levels follow the
//! `inventory.*` events synchronously through [`EventBus::observe`], so a
//! search never returns what the last answered write changed. The commit
//! also marks each changed product, so one whose request was dropped before
//! it re-read the product is re-read by the indexer's next round.
//!
//! Result pages are cached by normalized query, filters and page, and a
//! page is served only while it is what a search would compute now, up to
//! popularity; it is checked when served: a catalog change moves a
//! generation and drops every page; a product going in or out of stock
//! drops the pages it is a result of whatever its stock (their `in_stock`
//! facet or filter counts it differently), found by matching the page's
//! query against the products the index logged as flipped since the page
//! was ranked; any other stock change of a product a page shows changes
//! only the level its hit shows (ranking, total and facets never read
//! levels), so the page is served, and kept, with each hit's `available`
//! taken from the index. Popularity (views, purchases) changes no page: a
//! page's order by popularity is at most the cache's time to live old.
//! Searches and views are recorded in memory and written in batches
//! (searches with their `search.query` events) by a worker, so a view never
//! takes a write transaction of its own. Purchases come from `order.paid`
//! events, read from the durable event log with a cursor.
//!
//! [`EventBus::observe`]: crate::events::EventBus::observe

pub mod domain;
mod handlers;
pub mod index;
pub mod recommend;
pub mod rules;
pub mod suggest;
pub mod text;
pub mod typo;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard, TryLockError};
use std::time::Duration;

use fastbloom::AtomicBloomFilter;
use rustc_hash::{FxBuildHasher, FxHashMap, FxHashSet};
use shop_wire::events::{EventData, EventKind};
use shop_wire::health::Check;
use shop_wire::products::ProductId;
use shop_wire::search::SearchResponse;
use shop_wire::{Event, HealthStatus, ServiceHealth};
use tokio::sync::watch;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::config::SearchConfig;
use crate::services::health::HealthReport;
use crate::state::AppState;
use crate::store::{ProductPopularity, ProductView, SearchRecord};
use domain::SearchQuery;
use index::{Filters, Index, Matching, Ranked};
use suggest::Suggester;

pub const NAME: &str = "search";
pub const INDEXER: &str = "search_indexer";
pub const RECORDER: &str = "search_analytics";
pub const SUGGESTER: &str = "search_suggestions";
pub const PURCHASES: &str = "search_purchases";
/// Recorded searches, and views, kept in memory at most between two flushes.
const MAX_BUFFERED: usize = 100_000;

/// A cached page, with what it answers and where the index stood when it
/// was computed.
struct CachedPage {
    generation: u64,
    /// The index's count of stock flips the page is known to be current at:
    /// when it was computed, or a later count once the flips since were
    /// found to leave it as it is.
    stock_flips: AtomicU64,
    /// The query as the index was asked it, and how its words matched, to
    /// tell which products going in or out of stock change the page.
    query: String,
    filters: Filters,
    matching: Matching,
    response: Arc<SearchResponse>,
}

/// Figures of the last start-up build, for health and `/metrics`.
#[derive(Clone, Copy, Debug, Default)]
pub struct BuildStats {
    pub millis: u64,
}

/// The search service's state, shared by handlers and workers.
pub struct SearchService {
    config: SearchConfig,
    index: RwLock<Index>,
    ready: watch::Sender<bool>,
    /// Moves on every catalog change.
    generation: AtomicU64,
    cache: moka::sync::Cache<String, Arc<CachedPage>>,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    suggester: RwLock<Arc<Suggester>>,
    suggestions_stale: AtomicBool,
    /// Stock events for SKUs the start-up build has not reached yet, by SKU.
    pending_stock: Mutex<Option<FxHashMap<String, (i64, u64)>>>,
    /// Stock levels that arrived while the index was locked (a search
    /// ranking, a batch being indexed), newest event per SKU. The commit
    /// feed runs on the store's one writer, which must not wait for the
    /// index; whoever takes the index next applies these first.
    stock_backlog: Mutex<FxHashMap<String, (i64, u64)>>,
    backlogged: AtomicBool,
    /// Products whose committed change the index has not re-read yet: marked
    /// by the commit, cleared by whoever re-reads them (the write's own
    /// request, or the indexer's next round when that request was dropped
    /// or its read failed).
    pub(crate) unindexed: Mutex<FxHashSet<ProductId>>,
    /// Every product id and SKU the store has had since start: a key it
    /// has never seen is answered 404 without a database read.
    known: AtomicBloomFilter<FxBuildHasher>,
    records: Mutex<Vec<SearchRecord>>,
    views: Mutex<Vec<ProductView>>,
    build: Mutex<Option<BuildStats>>,
    pruned_at: Mutex<Option<std::time::Instant>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Adds to a buffer the analytics worker empties, or counts the item as
/// dropped when the worker has fallen [`MAX_BUFFERED`] behind.
fn buffer<T>(items: &Mutex<Vec<T>>, item: T, kind: &'static str) {
    let mut items = lock(items);
    if items.len() >= MAX_BUFFERED {
        metrics::counter!("shop_search_records_dropped_total", "kind" => kind).increment(1);
        return;
    }
    items.push(item);
}

/// Where the index stood when a page was ranked: the catalog generation
/// before (a page ranked while the catalog changed is not cached), and the
/// stock flips the ranking saw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CachePosition {
    generation: u64,
    stock_flips: u64,
}

/// Keeps the level of the newest event per SKU.
fn keep_newest(levels: &mut FxHashMap<String, (i64, u64)>, sku: &str, available: i64, event: u64) {
    let entry = levels.entry(sku.to_owned()).or_insert((available, event));
    if event >= entry.1 {
        *entry = (available, event);
    }
}

impl SearchService {
    pub fn new(config: &SearchConfig) -> Self {
        let (ready, _) = watch::channel(false);
        SearchService {
            index: RwLock::new(Index::new(config.bloom_false_positive_rate)),
            ready,
            generation: AtomicU64::new(0),
            cache: moka::sync::Cache::builder()
                .max_capacity(config.cache_capacity)
                // Bounds how long another node's write could go unseen once several share a database.
                .time_to_live(Duration::from_secs(60))
                .build(),
            cache_hits: AtomicU64::new(0),
            cache_misses: AtomicU64::new(0),
            suggester: RwLock::new(Arc::new(Suggester::empty())),
            suggestions_stale: AtomicBool::new(true),
            pending_stock: Mutex::new(Some(FxHashMap::default())),
            stock_backlog: Mutex::default(),
            backlogged: AtomicBool::new(false),
            unindexed: Mutex::default(),
            known: Self::known_filter(config.bloom_false_positive_rate, 100_000),
            records: Mutex::new(Vec::new()),
            views: Mutex::new(Vec::new()),
            build: Mutex::new(None),
            pruned_at: Mutex::new(None),
            config: config.clone(),
        }
    }

    fn known_filter(rate: f64, capacity: usize) -> AtomicBloomFilter<FxBuildHasher> {
        AtomicBloomFilter::with_false_pos(rate)
            .hasher(FxBuildHasher)
            .expected_items(capacity.max(1024))
    }

    /// The index, with every committed stock level applied.
    pub fn read(&self) -> RwLockReadGuard<'_, Index> {
        if self.backlogged.load(Ordering::Acquire) {
            // Taking the index for writing applies the backlog.
            drop(self.write());
        }
        self.index.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Index> {
        let mut index = self.index.write().unwrap_or_else(PoisonError::into_inner);
        self.apply_backlog(&mut index);
        index
    }

    fn apply_backlog(&self, index: &mut Index) {
        if !self.backlogged.swap(false, Ordering::AcqRel) {
            return;
        }
        let levels = std::mem::take(&mut *lock(&self.stock_backlog));
        for (sku, (available, event)) in levels {
            self.apply_stock(index, &sku, available, event);
        }
    }

    /// Sets a SKU's stock level, or keeps it for the start-up build when
    /// the index does not have the SKU yet.
    fn apply_stock(&self, index: &mut Index, sku: &str, available: i64, event: u64) {
        if index.set_available(sku, available, event).is_none()
            && let Some(pending) = lock(&self.pending_stock).as_mut()
        {
            keep_newest(pending, sku, available, event);
        }
    }

    /// Marks every cached page and the suggestions out of date: the catalog changed.
    fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.suggestions_stale.store(true, Ordering::Release);
    }

    /// Sets the popularity of products whose purchases or views were
    /// counted. The suggestions, which rank by it, are rebuilt; cached pages
    /// stay (see the module's docs).
    fn set_popularity(&self, counts: &[ProductPopularity]) {
        if counts.is_empty() {
            return;
        }
        let mut index = self.write();
        for c in counts {
            index.set_popularity(&c.id, ProductPopularity::score(c.purchases, c.views));
        }
        drop(index);
        self.suggestions_stale.store(true, Ordering::Release);
    }

    /// Ranks `query` on the index as it is now, noting where the cache
    /// stood for [`Self::fill`].
    pub fn rank(&self, query: &SearchQuery) -> (Ranked, CachePosition) {
        let generation = self.generation.load(Ordering::Acquire);
        let index = self.read();
        let ranked = index.search(&query.text, &query.filters, query.offset, query.limit);
        let position = CachePosition {
            generation,
            stock_flips: index.flips(),
        };
        (ranked, position)
    }

    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Waits up to `limit` for the start-up build; false if it is still running.
    pub async fn wait_ready(&self, limit: Duration) -> bool {
        let mut ready = self.ready.subscribe();
        tokio::time::timeout(limit, ready.wait_for(|r| *r))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    fn cached(&self, key: &str) -> Option<Arc<SearchResponse>> {
        let page = self
            .cache
            .get(key)
            .and_then(|page| self.current(key, &page));
        let counter = if page.is_some() {
            &self.cache_hits
        } else {
            &self.cache_misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        let (hits, misses) = (
            self.cache_hits.load(Ordering::Relaxed),
            self.cache_misses.load(Ordering::Relaxed),
        );
        metrics::counter!("shop_search_cache_requests_total", "result" => if page.is_some() { "hit" } else { "miss" }).increment(1);
        metrics::gauge!("shop_search_cache_hit_ratio").set(hits as f64 / (hits + misses) as f64);
        page
    }

    /// The cached page under `key` as a search now would give it, up to
    /// popularity, or `None` when it is out of date: the catalog changed, or
    /// a product that went in or out of stock since is among its results
    /// (whatever their stock). A product on the page whose stock level moved
    /// on the same side of zero changes nothing but the level its hit shows
    /// (ranking, total and facets do not read levels), so the page is served
    /// with today's levels and kept so.
    fn current(&self, key: &str, page: &CachedPage) -> Option<Arc<SearchResponse>> {
        if page.generation != self.generation.load(Ordering::Acquire) {
            return None;
        }
        // Reading applies stock levels that met a locked index first.
        let index = self.read();
        let flips = index.flips();
        let since = page.stock_flips.load(Ordering::Acquire);
        if flips != since {
            if index.flips_change(since, &page.query, &page.filters, page.matching) {
                return None;
            }
            // The next search of this page checks only the flips after these.
            page.stock_flips.fetch_max(flips, Ordering::AcqRel);
        }
        let levels: Vec<i64> = page
            .response
            .items
            .iter()
            .map(|hit| index.available(&hit.product.id))
            .collect::<Option<_>>()?;
        drop(index);
        let shown = page.response.items.iter().map(|hit| hit.available);
        if shown.eq(levels.iter().copied()) {
            return Some(page.response.clone());
        }
        let mut response = (*page.response).clone();
        for (hit, level) in response.items.iter_mut().zip(levels) {
            hit.available = level;
        }
        let response = Arc::new(response);
        self.cache.insert(
            key.to_owned(),
            Arc::new(CachedPage {
                generation: page.generation,
                stock_flips: AtomicU64::new(page.stock_flips.load(Ordering::Acquire)),
                query: page.query.clone(),
                filters: page.filters.clone(),
                matching: page.matching,
                response: response.clone(),
            }),
        );
        Some(response)
    }

    /// Caches a page ranked at `at` as `matching`, unless the catalog changed since.
    fn fill(
        &self,
        key: String,
        at: CachePosition,
        query: &SearchQuery,
        matching: Matching,
        response: Arc<SearchResponse>,
    ) {
        if self.generation.load(Ordering::Acquire) == at.generation {
            self.cache.insert(
                key,
                Arc::new(CachedPage {
                    generation: at.generation,
                    stock_flips: AtomicU64::new(at.stock_flips),
                    query: query.text.clone(),
                    filters: query.filters.clone(),
                    matching,
                    response,
                }),
            );
        }
    }

    /// Remembers a product key (id or SKU) as one the store has.
    fn know(&self, key: &str) {
        self.known.insert(key);
    }

    /// False when the store has certainly never had a product with this id or SKU.
    pub fn may_exist(&self, key: &str) -> bool {
        let maybe = self.known.contains(key);
        metrics::counter!("shop_search_bloom_lookups_total", "filter" => "product_keys",
            "outcome" => if maybe { "maybe" } else { "skipped" })
        .increment(1);
        maybe
    }

    /// Follows committed changes: a stock level from an `inventory.*` event
    /// is applied before the request that caused it answers; a product from
    /// a `product.*` event is marked for re-reading.
    pub fn on_event(&self, event: &Event) {
        // Every committed event passes here: decode only the stock and product ones.
        let Some(family) = event.event_kind().map(EventKind::family) else {
            return;
        };
        if family == EventKind::ProductCreated.family() {
            if let Some(id) = event.decode().ok().as_ref().and_then(EventData::product_id) {
                lock(&self.unindexed).insert(id.clone());
            }
            return;
        }
        if family != EventKind::InventoryAdjusted.family() {
            return;
        }
        let Ok(data) = event.decode() else {
            return;
        };
        let Some((sku, available)) = data.stock_level() else {
            return;
        };
        match self.index.try_write() {
            Ok(mut index) => {
                self.apply_backlog(&mut index);
                self.apply_stock(&mut index, sku, available, event.id);
            }
            Err(TryLockError::Poisoned(poisoned)) => {
                let mut index = poisoned.into_inner();
                self.apply_backlog(&mut index);
                self.apply_stock(&mut index, sku, available, event.id);
            }
            Err(TryLockError::WouldBlock) => {
                keep_newest(&mut lock(&self.stock_backlog), sku, available, event.id);
                self.backlogged.store(true, Ordering::Release);
            }
        }
        // No page is dropped here: a page is checked against the index's
        // stock when it is served, and reading the index applies the backlog.
    }

    /// Keeps a search for the analytics worker to write.
    pub fn record(&self, record: SearchRecord) {
        buffer(&self.records, record, "searches");
    }

    /// Keeps a product view for the analytics worker to write.
    pub fn record_view(&self, view: ProductView) {
        buffer(&self.views, view, "views");
    }

    fn take_records(&self) -> Vec<SearchRecord> {
        std::mem::take(&mut *lock(&self.records))
    }

    fn take_views(&self) -> Vec<ProductView> {
        std::mem::take(&mut *lock(&self.views))
    }

    pub fn suggester(&self) -> Arc<Suggester> {
        self.suggester
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_suggester(&self, suggester: Suggester) {
        *self
            .suggester
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(suggester);
    }

    pub fn build_stats(&self) -> Option<BuildStats> {
        *lock(&self.build)
    }

    /// Publishes the index's figures as gauges.
    fn report_metrics(&self) {
        let index = self.read();
        let bloom = index.bloom_stats();
        metrics::gauge!("shop_search_index_documents").set(index.len() as f64);
        metrics::gauge!("shop_search_index_terms").set(index.term_count() as f64);
        metrics::gauge!("shop_search_index_bytes").set(index.heap_bytes() as f64);
        drop(index);
        metrics::gauge!("shop_search_bloom_false_positive_rate", "filter" => "typo_terms")
            .set(bloom.configured_false_positive_rate);
        metrics::gauge!("shop_search_bloom_estimated_false_positive_rate", "filter" => "typo_terms")
            .set(bloom.estimated_false_positive_rate);
        metrics::gauge!("shop_search_bloom_items", "filter" => "typo_terms")
            .set(bloom.items as f64);
        metrics::gauge!("shop_search_bloom_false_positive_rate", "filter" => "product_keys")
            .set(self.config.bloom_false_positive_rate);
        metrics::gauge!("shop_search_suggestions").set(self.suggester().len() as f64);
        if let Some(build) = self.build_stats() {
            metrics::gauge!("shop_search_index_build_seconds").set(build.millis as f64 / 1000.0);
        }
    }
}

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(handlers::search))
        .routes(routes!(handlers::suggest))
        .routes(routes!(handlers::analytics))
        .routes(routes!(handlers::view))
        .routes(routes!(handlers::recommendations))
        .routes(routes!(handlers::health))
}

pub fn health(state: &AppState, database: Check) -> ServiceHealth {
    let mut report = HealthReport::new(NAME);
    report.add("database", database);
    let search = &state.search;
    let index = if search.is_ready() {
        let index = search.read();
        Check {
            status: HealthStatus::Ok,
            message: Some(format!(
                "{} products, {} terms, {} suggestions",
                index.len(),
                index.term_count(),
                search.suggester().len()
            )),
        }
    } else {
        Check {
            status: HealthStatus::Degraded,
            message: Some(format!(
                "building: {} products indexed so far",
                search.read().len()
            )),
        }
    };
    report.add("index", index);
    for worker in [INDEXER, RECORDER, SUGGESTER, PURCHASES] {
        report.add_worker(&state.workers, worker);
    }
    report.finish()
}

pub fn spawn_workers(state: &AppState) {
    let indexer = state.clone();
    state
        .workers
        .spawn_periodic(INDEXER, Duration::from_secs(1), move || {
            let state = indexer.clone();
            async move { domain::keep_index(&state).await }
        });
    let recorder = state.clone();
    state.workers.spawn_periodic(
        RECORDER,
        Duration::from_millis(state.config.search.analytics_flush_ms),
        move || {
            let state = recorder.clone();
            async move { domain::flush_analytics(&state).await }
        },
    );
    let suggester = state.clone();
    state.workers.spawn_periodic(
        SUGGESTER,
        Duration::from_millis(state.config.search.suggest_refresh_ms),
        move || {
            let state = suggester.clone();
            async move { domain::refresh_suggestions(&state, false).await }
        },
    );
    recommend::spawn(state);
}

#[cfg(test)]
mod tests {
    use shop_wire::events::StockEvent;
    use shop_wire::inventory::MovementKind;
    use shop_wire::products::ProductRequest;

    use super::*;
    use crate::store::{NewEvent, SearchDocument};

    fn stock_event(id: u64, sku: &str, available: i64) -> Event {
        NewEvent::now(EventData::InventoryAdjusted(StockEvent {
            sku: sku.to_owned(),
            kind: MovementKind::Adjust,
            on_hand: available,
            reserved: 0,
            available,
            low_stock_threshold: 0,
            delta: 0,
            reason: None,
            actor: None,
            reservation: None,
        }))
        .logged(id)
    }

    fn product(sku: &str, name: &str) -> shop_wire::products::Product {
        crate::services::products::domain::product_from(ProductRequest {
            sku: sku.to_owned(),
            name: name.to_owned(),
            price_cents: 900,
            active: true,
            ..ProductRequest::default()
        })
        .expect("valid")
        .0
    }

    /// A service whose index holds these products with 5 units each.
    fn indexed(products: &[&shop_wire::products::Product]) -> SearchService {
        let search = SearchService::new(&SearchConfig::default());
        for product in products {
            search.write().upsert(SearchDocument {
                product: (*product).clone(),
                available: 5,
                popularity: 0.0,
            });
        }
        search
    }

    fn page(items: Vec<shop_wire::search::SearchHit>) -> Arc<SearchResponse> {
        Arc::new(SearchResponse {
            total: items.len() as u64,
            items,
            limit: 10,
            offset: 0,
            query: "mug".to_owned(),
            facets: Default::default(),
            matching: "all".to_owned(),
        })
    }

    /// Caches, under `text`, the page a search for `text` gives now.
    fn cache_page(
        search: &SearchService,
        text: &str,
        filters: Filters,
        products: &[&shop_wire::products::Product],
    ) {
        let query = SearchQuery {
            text: text.to_owned(),
            filters,
            limit: 10,
            offset: 0,
        };
        let (ranked, position) = search.rank(&query);
        let items = ranked
            .hits
            .iter()
            .enumerate()
            .map(|(rank, hit)| shop_wire::search::SearchHit {
                rank: rank as u64 + 1,
                product: products
                    .iter()
                    .find(|p| p.id == hit.id)
                    .map(|p| (*p).clone())
                    .expect("one of the products"),
                score: f64::from(hit.score),
                available: hit.available,
                highlights: Default::default(),
            })
            .collect();
        search.fill(
            text.to_owned(),
            position,
            &query,
            ranked.matching,
            page(items),
        );
    }

    #[test]
    fn a_stock_level_that_meets_a_locked_index_is_applied_before_the_next_read() {
        let mug = product("MUG-1", "Stoneware Mug");
        let search = indexed(&[&mug]);
        cache_page(&search, "mug", Filters::default(), &[&mug]);

        // A search holds the index: the commit feed must not wait for it.
        let reading = search.index.read().expect("read");
        search.on_event(&stock_event(7, "MUG-1", 3));
        search.on_event(&stock_event(6, "MUG-1", 4));
        drop(reading);

        let served = search.cached("mug").expect("a level keeps the page");
        assert_eq!(
            served.items[0].available, 3,
            "the page showed 5 units; the backlog is applied before it is served, \
             the newest level, not the last to arrive"
        );
        search.on_event(&stock_event(8, "MUG-1", 2));
        assert_eq!(search.read().available(&mug.id), Some(2));
    }

    #[test]
    fn a_page_outlives_views_and_stock_levels_but_not_a_flip_among_its_results() {
        let shown = product("MUG-1", "Stoneware Mug");
        let other = product("MUG-2", "Enamel Mug");
        let kettle = product("KETTLE-1", "Copper Kettle");
        let all = [&shown, &other, &kettle];
        let search = indexed(&all);
        cache_page(&search, "stoneware", Filters::default(), &all);

        // Popularity (views, purchases) and another product's level keep it.
        search.set_popularity(&[ProductPopularity {
            id: shown.id.clone(),
            purchases: 2,
            views: 9,
        }]);
        search.on_event(&stock_event(1, "MUG-2", 4));
        assert!(
            search.cached("stoneware").is_some(),
            "views and unrelated stock keep the page"
        );

        // A level of a product on the page is the level its hit shows, and
        // all it changes: the page is served, and kept, with the new level.
        search.on_event(&stock_event(2, "MUG-1", 4));
        let served = search.cached("stoneware").expect("kept");
        assert_eq!(served.items[0].available, 4, "its own product's level");
        assert_eq!(
            search.cache.get("stoneware").expect("cached").response,
            served,
            "kept with the new level"
        );
        assert_eq!(
            search.cached("stoneware").expect("kept").items[0].available,
            4
        );

        // A product going in or out of stock drops the pages whose results
        // hold it whatever their stock: their `in_stock` facet or filter.
        let in_stock = Filters {
            in_stock: Some(true),
            ..Filters::default()
        };
        cache_page(&search, "mug", in_stock, &all);
        search.on_event(&stock_event(3, "KETTLE-1", 0));
        assert!(search.cached("mug").is_some(), "the kettle is no mug");
        search.on_event(&stock_event(4, "MUG-2", 0));
        assert!(
            search.cached("mug").is_none(),
            "it leaves the in-stock mugs"
        );
        assert!(
            search.cached("stoneware").is_some(),
            "the enamel mug is no stoneware"
        );
        let checked = search.cache.get("stoneware").expect("cached");
        assert_eq!(
            checked.stock_flips.load(Ordering::Acquire),
            search.read().flips(),
            "the flips found harmless are not checked again"
        );

        // A page ranked before a flip that changes it is cached, never served.
        let enamel = SearchQuery {
            text: "enamel".to_owned(),
            filters: Filters::default(),
            limit: 10,
            offset: 0,
        };
        let (ranked, position) = search.rank(&enamel);
        search.on_event(&stock_event(5, "MUG-2", 3));
        search.fill(
            "enamel".to_owned(),
            position,
            &enamel,
            ranked.matching,
            page(Vec::new()),
        );
        assert!(search.cached("enamel").is_none());

        // A page ranked while the catalog changed is not cached at all.
        let (ranked, position) = search.rank(&enamel);
        search.changed();
        search.fill(
            "late".to_owned(),
            position,
            &enamel,
            ranked.matching,
            page(Vec::new()),
        );
        assert!(search.cache.get("late").is_none());
    }
}
