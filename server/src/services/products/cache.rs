//! Products by id and by SKU for the hot read path (`GET /api/products/{id}`),
//! and list pages (category pages) for the storefront.
//!
//! Every committed product change in this process invalidates what it
//! changed before the write's response goes out (the cache follows the
//! store's `product.*` events), so a client never reads back an older
//! product than the one it just wrote, and a write whose request was
//! dropped is not left behind in the cache. A read that raced a write must not put the old copy
//! back: each read notes the generation it started at and only fills the
//! cache if no write happened in between. A cached page remembers the
//! generation it was read at and is ignored once any product has changed
//! since, so a page is never older than the last write.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use moka::sync::Cache;
use shop_wire::events::{EventData, EventKind};
use shop_wire::products::{Product, ProductId};
use shop_wire::{Event, Page};

use crate::store::{ProductKey, ProductQuery};

#[derive(Clone)]
pub struct ProductCache {
    by_id: Cache<String, Product>,
    by_sku: Cache<String, Product>,
    /// List pages by their query, with the generation they were read at.
    pages: Cache<String, (u64, Arc<Page<Product>>)>,
    generation: Arc<AtomicU64>,
}

impl ProductCache {
    pub fn new() -> Self {
        let cache = || {
            Cache::builder()
                .max_capacity(50_000)
                // Bounds how long another node's write could go unseen once several share a database.
                .time_to_live(Duration::from_secs(30))
                .build()
        };
        ProductCache {
            by_id: cache(),
            by_sku: cache(),
            pages: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(Duration::from_secs(30))
                .build(),
            generation: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Whether a query's page may be cached: stock changes with every sale and
    /// does not move the generation, so pages filtered by stock are not kept.
    pub fn caches(query: &ProductQuery) -> bool {
        query.in_stock.is_none()
    }

    fn page_key(query: &ProductQuery) -> String {
        format!("{query:?}")
    }

    /// The cached page of `query`, if it was read since the last product write.
    pub fn page(&self, query: &ProductQuery) -> Option<Arc<Page<Product>>> {
        let (generation, page) = self.pages.get(&Self::page_key(query))?;
        (generation == self.generation()).then_some(page)
    }

    /// Caches a page read from the store at `generation`, unless a write happened since.
    pub fn fill_page(&self, query: &ProductQuery, page: Arc<Page<Product>>, generation: u64) {
        if self.generation() == generation {
            self.pages.insert(Self::page_key(query), (generation, page));
        }
    }

    pub fn get(&self, key: &ProductKey) -> Option<Product> {
        match key {
            ProductKey::Id(id) => self.by_id.get(id.as_str()),
            ProductKey::Sku(sku) => self.by_sku.get(sku),
        }
    }

    /// The generation a read starts at; pass it to [`ProductCache::fill`].
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Caches a product read from the store, unless a write happened since `generation`.
    pub fn fill(&self, product: &Product, generation: u64) {
        if self.generation() == generation {
            self.by_id.insert(product.id.to_string(), product.clone());
            self.by_sku.insert(product.sku.clone(), product.clone());
        }
    }

    /// Forgets a product that was written or deleted.
    fn changed(&self, id: &ProductId, sku: &str) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.by_id.invalidate(id.as_str());
        self.by_sku.invalidate(sku);
    }

    /// Forgets the product a committed `product.*` event names.
    pub fn on_event(&self, event: &Event) {
        if event
            .event_kind()
            .is_none_or(|kind| kind.family() != EventKind::ProductCreated.family())
        {
            return;
        }
        match event.decode() {
            Ok(
                EventData::ProductCreated(product)
                | EventData::ProductUpdated(product)
                | EventData::ProductArchived(product),
            ) => self.changed(&product.id, &product.sku),
            Ok(EventData::ProductDeleted(product)) => self.changed(&product.id, &product.sku),
            // Unreadable: forget everything rather than keep a stale copy.
            _ => self.clear(),
        }
    }

    /// Forgets everything.
    fn clear(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.by_id.invalidate_all();
        self.by_sku.invalidate_all();
    }
}

impl Default for ProductCache {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shop_wire::products::ProductRequest;

    fn product() -> Product {
        crate::services::products::domain::product_from(ProductRequest {
            sku: "MUG-1".to_owned(),
            name: "Mug".to_owned(),
            price_cents: 900,
            active: true,
            ..ProductRequest::default()
        })
        .expect("valid")
        .0
    }

    #[test]
    fn a_read_that_raced_a_write_does_not_refill_the_cache() {
        let cache = ProductCache::new();
        let product = product();
        let before = cache.generation();
        cache.changed(&product.id, &product.sku);
        cache.fill(&product, before);
        assert!(cache.get(&ProductKey::Sku("MUG-1".to_owned())).is_none());

        cache.fill(&product, cache.generation());
        assert_eq!(
            cache.get(&ProductKey::Id(product.id.clone())),
            Some(product.clone())
        );
        assert!(cache.get(&ProductKey::Sku("MUG-1".to_owned())).is_some());
        cache.clear();
        assert!(cache.get(&ProductKey::Id(product.id)).is_none());
    }

    #[test]
    fn a_page_read_before_any_write_is_not_served_after_it() {
        let cache = ProductCache::new();
        let query = ProductQuery {
            category: Some("kitchen".to_owned()),
            limit: 20,
            ..ProductQuery::default()
        };
        let page = Arc::new(Page {
            items: vec![product()],
            total: 1,
            limit: 20,
            offset: 0,
        });
        cache.fill_page(&query, page.clone(), cache.generation());
        assert_eq!(cache.page(&query), Some(page.clone()));
        let other = ProductQuery {
            offset: 20,
            ..query.clone()
        };
        assert!(cache.page(&other).is_none(), "each page is its own entry");
        {
            let product = product();
            cache.changed(&product.id, &product.sku);
        }
        assert!(cache.page(&query).is_none());
        assert!(!ProductCache::caches(&ProductQuery {
            in_stock: Some(true),
            ..query
        }));
    }
}
