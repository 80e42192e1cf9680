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
//! Result pages are cached by normalized query, filters and page; any
//! change to the index moves a generation and older pages are ignored.
//! Searches are recorded in memory and written in batches (with their
//! `search.query` events) by a worker. Purchases come from `order.paid`
//! events, read from the durable event log with a cursor; views from
//! `POST /api/search/analytics/view`.
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
use std::sync::{Arc, Mutex, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
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
use crate::services::health::{HealthReport, database_check};
use crate::state::AppState;
use crate::store::SearchRecord;
use index::Index;
use suggest::Suggester;

pub const NAME: &str = "search";
pub const INDEXER: &str = "search_indexer";
pub const RECORDER: &str = "search_analytics";
pub const SUGGESTER: &str = "search_suggestions";
pub const PURCHASES: &str = "search_purchases";
/// Recorded searches kept in memory at most between two flushes.
const MAX_BUFFERED: usize = 100_000;

/// A cached page and the index generation it was computed at.
struct CachedPage {
    generation: u64,
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
    /// Moves on every change that can change a result.
    generation: AtomicU64,
    cache: moka::sync::Cache<String, Arc<CachedPage>>,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
    suggester: RwLock<Arc<Suggester>>,
    suggestions_stale: AtomicBool,
    /// Stock events for SKUs the start-up build has not reached yet, by SKU.
    pending_stock: Mutex<Option<FxHashMap<String, (i64, u64)>>>,
    /// Products whose committed change the index has not re-read yet: marked
    /// by the commit, cleared by whoever re-reads them (the write's own
    /// request, or the indexer's next round when that request was dropped
    /// or its read failed).
    pub(crate) unindexed: Mutex<FxHashSet<ProductId>>,
    /// Every product id and SKU the store has had since start: a key it
    /// has never seen is answered 404 without a database read.
    known: AtomicBloomFilter<FxBuildHasher>,
    records: Mutex<Vec<SearchRecord>>,
    dropped_records: AtomicU64,
    build: Mutex<Option<BuildStats>>,
    pruned_at: Mutex<Option<std::time::Instant>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
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
            unindexed: Mutex::default(),
            known: Self::known_filter(config.bloom_false_positive_rate, 100_000),
            records: Mutex::new(Vec::new()),
            dropped_records: AtomicU64::new(0),
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

    pub fn read(&self) -> RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> RwLockWriteGuard<'_, Index> {
        self.index.write().unwrap_or_else(PoisonError::into_inner)
    }

    /// Marks every cached page and suggestion out of date.
    fn changed(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.suggestions_stale.store(true, Ordering::Release);
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
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
            .filter(|page| page.generation == self.generation());
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
        page.map(|p| p.response.clone())
    }

    fn fill(&self, key: String, generation: u64, response: Arc<SearchResponse>) {
        if self.generation() == generation {
            self.cache.insert(
                key,
                Arc::new(CachedPage {
                    generation,
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
        let applied = self.write().set_available(sku, available, event.id);
        if applied {
            self.changed();
        } else if let Some(pending) = lock(&self.pending_stock).as_mut() {
            let entry = pending
                .entry(sku.to_owned())
                .or_insert((available, event.id));
            if event.id >= entry.1 {
                *entry = (available, event.id);
            }
        }
    }

    /// Keeps a search for the analytics worker to write.
    pub fn record(&self, record: SearchRecord) {
        let mut records = lock(&self.records);
        if records.len() >= MAX_BUFFERED {
            self.dropped_records.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("shop_search_records_dropped_total").increment(1);
            return;
        }
        records.push(record);
    }

    fn take_records(&self) -> Vec<SearchRecord> {
        std::mem::take(&mut *lock(&self.records))
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

pub async fn health(state: &AppState) -> ServiceHealth {
    let mut report = HealthReport::new(NAME);
    report.add("database", database_check(state).await);
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
            async move { domain::flush_records(&state).await }
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
