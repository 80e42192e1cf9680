//! The search service's rules: what a valid query is, how a page is served
//! (cache, index, products, highlights), how searches are recorded, and how
//! the index is built at start and kept current after.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use shop_wire::events::{EventData, EventKind, SearchQueryEvent};
use shop_wire::products::{Product, ProductId};
use shop_wire::search::{
    FacetCount, PriceBucket, Recommendation, Recommendations, SearchAnalytics, SearchFacets,
    SearchHit, SearchResponse, StockFacet, Suggestions,
};
use shop_wire::{Event, UserId};

use super::index::{Filters, Matching, PRICE_BUCKETS, Ranked};
use super::suggest::{Phrases, Suggester};
use super::{BuildStats, SearchService, lock, rules, text};
use crate::auth::tokens::sha256_hex;
use crate::services::error::{DomainError, DomainResult};
use crate::services::products::domain::{normalize_category, product_key};
use crate::state::AppState;
use crate::store::{NewEvent, ProductKey, ProductView, SearchRecord, ViewPairing, now};

/// The longest query accepted, in characters (Algolia's limit too).
pub const MAX_QUERY: usize = 512;
pub const MAX_LIMIT: i64 = 100;
pub const DEFAULT_LIMIT: i64 = 20;
/// The deepest page: past it, results are not worth ranking.
pub const MAX_OFFSET: i64 = 10_000;
const MAX_PREFIX: usize = 100;
const MAX_SESSION: usize = 128;
/// How long a search waits for the start-up build before answering 503.
const READY_WAIT: Duration = Duration::from_secs(10);
/// Products read per batch by the start-up build.
const BUILD_BATCH: u32 = 5_000;
/// Views in one session this close together count as viewed together.
const CO_VIEW_WINDOW: time::Duration = time::Duration::hours(24);
const CO_VIEW_PAIRS: u32 = 10;
/// Queries searched within this many days feed the suggestions.
const SUGGEST_QUERY_DAYS: i64 = 30;
const SUGGEST_QUERIES: u32 = 10_000;
/// Words of description shown around the first match.
const SNIPPET_WORDS: usize = 24;
/// How often search and view history past its retention is deleted.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// A search request as the handler read it, before checking.
#[derive(Clone, Debug, Default)]
pub struct SearchParams {
    pub q: Option<String>,
    pub category: Option<String>,
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    pub in_stock: Option<bool>,
    pub limit: Option<i64>,
    pub offset: Option<i64>,
}

/// A checked search request.
#[derive(Clone, Debug)]
pub struct SearchQuery {
    pub text: String,
    pub filters: Filters,
    pub limit: usize,
    pub offset: usize,
}

pub fn check_limit(limit: Option<i64>, default: i64, max: i64) -> DomainResult<usize> {
    match limit.unwrap_or(default) {
        n @ 1.. if n <= max => Ok(n as usize),
        _ => Err(DomainError::validation(
            "limit",
            format!("must be between 1 and {max}"),
        )),
    }
}

impl SearchParams {
    pub fn check(self) -> DomainResult<SearchQuery> {
        // A trailing space is kept: it says the last word is complete (no prefix matching).
        let text = self.q.unwrap_or_default().trim_start().to_owned();
        if text.chars().count() > MAX_QUERY {
            return Err(DomainError::validation(
                "q",
                format!("must be at most {MAX_QUERY} characters"),
            ));
        }
        let category = match self.category.as_deref().map(normalize_category) {
            Some(Ok(category)) => category,
            Some(Err(problem)) => return Err(DomainError::validation("category", problem)),
            None => None,
        };
        for (field, price) in [("min_price", self.min_price), ("max_price", self.max_price)] {
            if price.is_some_and(|p| p < 0) {
                return Err(DomainError::validation(field, "must not be negative"));
            }
        }
        // A `min_price` above `max_price` is an empty range: it matches
        // nothing, as the catalog's list does, rather than being refused.
        let limit = check_limit(self.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
        let offset = match self.offset.unwrap_or(0) {
            n @ 0..=MAX_OFFSET => n as usize,
            _ => {
                return Err(DomainError::validation(
                    "offset",
                    format!("must be between 0 and {MAX_OFFSET}; narrow the query to go deeper"),
                ));
            }
        };
        Ok(SearchQuery {
            text,
            filters: Filters {
                category,
                min_price: self.min_price,
                max_price: self.max_price,
                in_stock: self.in_stock,
            },
            limit,
            offset,
        })
    }
}

impl SearchQuery {
    /// The cache key: queries that differ only in case, accents or
    /// punctuation share one entry (the last word's "still typing" state
    /// changes prefix matching, so it is part of it).
    fn cache_key(&self) -> String {
        let typing = self.text.chars().last().is_some_and(char::is_alphanumeric);
        format!(
            "{}|{}|{:?}|{}|{}",
            text::normalize_phrase(&self.text),
            typing,
            self.filters,
            self.offset,
            self.limit
        )
    }

    fn filters_json(&self) -> Value {
        let f = &self.filters;
        let mut out = serde_json::Map::new();
        if let Some(c) = &f.category {
            out.insert("category".into(), json!(c));
        }
        if let Some(p) = f.min_price {
            out.insert("min_price".into(), json!(p));
        }
        if let Some(p) = f.max_price {
            out.insert("max_price".into(), json!(p));
        }
        if let Some(s) = f.in_stock {
            out.insert("in_stock".into(), json!(s));
        }
        Value::Object(out)
    }
}

async fn wait_ready(search: &SearchService) -> DomainResult<()> {
    if search.is_ready() || search.wait_ready(READY_WAIT).await {
        return Ok(());
    }
    Err(DomainError::Unavailable {
        code: "search_index_building",
        message: "the search index is still being built after a start; retry in a moment"
            .to_owned(),
        details: json!({}),
    })
}

/// A digest of a client address: enough to tell searchers and viewers
/// apart, without keeping their addresses in the search history.
pub fn client_digest(address: IpAddr) -> String {
    sha256_hex(address.to_string())[..16].to_owned()
}

/// One page of results for `query`: from the cache while a search now would
/// give the same page (see the module's docs), else ranked by the index.
/// Every search is recorded.
pub async fn search(
    state: &AppState,
    query: SearchQuery,
    client: Option<IpAddr>,
) -> DomainResult<Arc<SearchResponse>> {
    let started = Instant::now();
    let search = &state.search;
    wait_ready(search).await?;
    let key = query.cache_key();
    let (response, cache_hit) = match search.cached(&key) {
        Some(response) => (response, true),
        None => {
            let ranking = Instant::now();
            let (ranked, position) = search.rank(&query);
            metrics::histogram!("shop_search_query_duration_seconds")
                .record(ranking.elapsed().as_secs_f64());
            count_bloom(&ranked);
            let matching = ranked.matching;
            let response = Arc::new(respond(state, &query, ranked).await?);
            search.fill(key, position, &query, matching, response.clone());
            (response, false)
        }
    };
    let latency = started.elapsed();
    metrics::counter!("shop_search_queries_total", "cache" => if cache_hit { "hit" } else { "miss" },
        "matching" => response.matching.clone())
    .increment(1);
    search.record(SearchRecord {
        query: text::normalize_phrase(&query.text),
        raw: query.text.trim_end().chars().take(200).collect(),
        filters: query.filters_json(),
        result_count: response.total,
        latency_us: latency.as_micros() as u64,
        cache_hit,
        at: now(),
        client: client.map(client_digest),
    });
    Ok(response)
}

fn count_bloom(ranked: &Ranked) {
    let b = ranked.bloom;
    for (outcome, n) in [
        ("skipped", b.skipped),
        ("found", b.found),
        ("false_positive", b.false_positives),
    ] {
        if n > 0 {
            metrics::counter!("shop_search_bloom_lookups_total", "filter" => "typo_terms", "outcome" => outcome)
                .increment(n);
        }
    }
}

/// The active products with these ids, from the product cache where it has them.
async fn products(
    state: &AppState,
    ids: &[ProductId],
) -> DomainResult<HashMap<ProductId, Product>> {
    let generation = state.catalog.generation();
    let mut found = HashMap::with_capacity(ids.len());
    let mut missing = Vec::new();
    for id in ids {
        match state.catalog.get(&ProductKey::Id(id.clone())) {
            Some(product) => {
                found.insert(id.clone(), product);
            }
            None => missing.push(id.clone()),
        }
    }
    if !missing.is_empty() {
        for product in state.store.products_by_ids(missing).await? {
            state.catalog.fill(&product, generation);
            found.insert(product.id.clone(), product);
        }
    }
    // A product archived between ranking and reading is left out.
    found.retain(|_, p| p.active);
    Ok(found)
}

async fn respond(
    state: &AppState,
    query: &SearchQuery,
    ranked: Ranked,
) -> DomainResult<SearchResponse> {
    let ids: Vec<ProductId> = ranked.hits.iter().map(|h| h.id.clone()).collect();
    let mut products = products(state, &ids).await?;
    let terms: HashSet<&str> = ranked.matched_terms.iter().map(String::as_str).collect();
    let items = ranked
        .hits
        .iter()
        .enumerate()
        .filter_map(|(i, hit)| {
            let product = products.remove(&hit.id)?;
            Some(SearchHit {
                rank: (query.offset + i + 1) as u64,
                highlights: highlights(&product, &terms),
                score: (f64::from(hit.score) * 10_000.0).round() / 10_000.0,
                available: hit.available,
                product,
            })
        })
        .collect();
    let facets = &ranked.facets;
    let mut price = Vec::with_capacity(facets.prices.len());
    let mut min = 0;
    for (i, count) in facets.prices.iter().enumerate() {
        let max = PRICE_BUCKETS.get(i).copied();
        price.push(PriceBucket {
            min_cents: min,
            max_cents: max,
            count: *count,
        });
        min = max.unwrap_or(min);
    }
    Ok(SearchResponse {
        items,
        total: ranked.total,
        limit: query.limit as u32,
        offset: query.offset as u64,
        query: query.text.trim_end().to_owned(),
        facets: SearchFacets {
            categories: facets
                .categories
                .iter()
                .map(|(value, count)| FacetCount {
                    value: value.clone(),
                    count: *count,
                })
                .collect(),
            price,
            in_stock: StockFacet {
                in_stock: facets.in_stock,
                out_of_stock: facets.out_of_stock,
            },
        },
        matching: match ranked.matching {
            Matching::All => "all",
            Matching::Any => "any",
            Matching::Browse => "browse",
        }
        .to_owned(),
    })
}

/// `text` with the words whose stem is one of `terms` in `<em>`, the rest
/// escaped; `None` when nothing matched. With `window`, only about that
/// many words around the first match, with ellipses.
fn mark(text: &str, terms: &HashSet<&str>, window: Option<usize>) -> Option<String> {
    let words = text::words(text);
    // Stemming only changes a word's ending, never its first letter: a word
    // that starts like no matched term is not stemmed at all.
    let hits: Vec<bool> = words
        .iter()
        .map(|w| {
            let first = w.normalized.chars().next();
            terms.iter().any(|t| t.chars().next() == first)
                && terms.contains(text::stem(&w.normalized).as_ref())
        })
        .collect();
    let first = hits.iter().position(|h| *h)?;
    let (from, to) = match window {
        Some(window) if words.len() > window => {
            let from = first.saturating_sub(window / 4);
            (from, (from + window).min(words.len()))
        }
        _ => (0, words.len()),
    };
    let mut out = String::new();
    let mut at = if from == 0 {
        0
    } else {
        out.push('…');
        words[from].start
    };
    for i in from..to {
        let word = &words[i];
        text::escape_html(&mut out, &text[at..word.start]);
        if hits[i] {
            out.push_str("<em>");
            text::escape_html(&mut out, &text[word.start..word.end]);
            out.push_str("</em>");
        } else {
            text::escape_html(&mut out, &text[word.start..word.end]);
        }
        at = word.end;
    }
    if to < words.len() {
        out.push('…');
    } else {
        text::escape_html(&mut out, &text[at..]);
    }
    Some(out)
}

fn highlights(product: &Product, terms: &HashSet<&str>) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    if terms.is_empty() {
        return out;
    }
    if let Some(name) = mark(&product.name, terms, None) {
        out.insert("name".to_owned(), name);
    }
    if let Some(category) = product
        .category
        .as_deref()
        .and_then(|c| mark(c, terms, None))
    {
        out.insert("category".to_owned(), category);
    }
    for (key, value) in &product.attributes {
        if let Some(value) = mark(value, terms, None) {
            out.insert(format!("attributes.{key}"), value);
        }
    }
    if let Some(description) = mark(&product.description, terms, Some(SNIPPET_WORDS)) {
        out.insert("description".to_owned(), description);
    }
    out
}

/// Completions of `prefix`; like a search, it waits for the index built at
/// start: asked before the build, the suggester would answer nothing.
pub async fn suggest(state: &AppState, prefix: &str, limit: usize) -> DomainResult<Suggestions> {
    if prefix.chars().count() > MAX_PREFIX {
        return Err(DomainError::validation(
            "prefix",
            format!("must be at most {MAX_PREFIX} characters"),
        ));
    }
    wait_ready(&state.search).await?;
    let started = Instant::now();
    let suggestions = state.search.suggester().suggest(prefix, limit);
    metrics::histogram!("shop_search_suggest_duration_seconds")
        .record(started.elapsed().as_secs_f64());
    Ok(Suggestions { suggestions })
}

/// Search analytics over the last `hours`, with every search (and view) made so far included.
pub async fn analytics(state: &AppState, hours: i64, limit: u32) -> DomainResult<SearchAnalytics> {
    if !(1..=24 * 366).contains(&hours) {
        return Err(DomainError::validation(
            "hours",
            "must be between 1 and 8784 (a year)",
        ));
    }
    flush_analytics(state)
        .await
        .map_err(DomainError::internal)?;
    let since = now() - time::Duration::hours(hours - 1);
    Ok(state.store.search_analytics(since, limit).await?)
}

/// Writes the views and the searches (with their `search.query` events)
/// recorded since the last flush.
pub async fn flush_analytics(state: &AppState) -> anyhow::Result<()> {
    flush_views(state).await?;
    let records = state.search.take_records();
    if records.is_empty() {
        return Ok(());
    }
    let events = records
        .iter()
        .map(|r| NewEvent {
            occurred_at: r.at,
            data: EventData::SearchQuery(SearchQueryEvent {
                query: r.raw.clone(),
                normalized: r.query.clone(),
                filters: r.filters.clone(),
                result_count: r.result_count,
                latency_ms: r.latency_us as f64 / 1000.0,
                cache_hit: r.cache_hit,
            }),
        })
        .collect();
    state.store.record_searches(records, events).await?;
    state
        .search
        .suggestions_stale
        .store(true, Ordering::Release);
    Ok(())
}

/// Writes the buffered views in one transaction and moves the products'
/// popularity in the index.
async fn flush_views(state: &AppState) -> anyhow::Result<()> {
    let views = state.search.take_views();
    if views.is_empty() {
        return Ok(());
    }
    let counts = state
        .store
        .record_views(views, CO_VIEW_WINDOW, CO_VIEW_PAIRS)
        .await?;
    state.search.set_popularity(&counts);
    Ok(())
}

/// A product key as the recommendation and view routes take it: `prd_...`
/// or a SKU, answered 404 at once when the store has never had it.
async fn resolve(state: &AppState, raw: &str) -> DomainResult<Product> {
    let not_found = || DomainError::not_found(format!("product {raw}"));
    if !state.search.may_exist(raw) {
        return Err(not_found());
    }
    let key = product_key(raw);
    if let Some(product) = state.catalog.get(&key) {
        return Ok(product);
    }
    state.store.product(&key).await?.ok_or_else(not_found)
}

/// Records a product view, written with the next batch of analytics: it
/// takes no write of its own and changes no cached page. Only a signed-in
/// `viewer`'s views pair into
/// co-views (one account counts once per pair, and one client address
/// pairs a capped number of views a day); an anonymous `session` is checked
/// but pairs nothing, since anyone can make up any number of them.
pub async fn view(
    state: &AppState,
    raw: &str,
    session: Option<String>,
    viewer: Option<&UserId>,
    client: IpAddr,
) -> DomainResult<()> {
    if let Some(session) = &session
        && (session.is_empty()
            || session.chars().count() > MAX_SESSION
            || session.chars().any(char::is_control))
    {
        return Err(DomainError::validation(
            "session",
            format!("must be 1-{MAX_SESSION} characters without control characters"),
        ));
    }
    let product = resolve(state, raw).await?;
    state.search.record_view(ProductView {
        product: product.id,
        pairing: viewer.map(|user| ViewPairing {
            viewer: user.to_string(),
            client: client_digest(client),
            per_client: state.config.search.co_views_per_client,
        }),
        at: now(),
    });
    Ok(())
}

/// What to show beside a product: bought together, then viewed together,
/// then the nearest category's most popular products. Never the product
/// itself, never an archived product.
pub async fn recommendations(
    state: &AppState,
    raw: &str,
    limit: usize,
) -> DomainResult<Recommendations> {
    let product = resolve(state, raw).await?;
    let related = state
        .store
        .related_products(&product.id, (limit * 3 + 10) as u32)
        .await?;
    let mut picked: Vec<(ProductId, f64, &'static str, u64, u64)> = {
        let index = state.search.read();
        related
            .into_iter()
            .filter(|r| r.id != product.id && index.contains(&r.id))
            .take(limit)
            .map(|r| {
                let reason = if r.co_purchases > 0 {
                    "co_purchase"
                } else {
                    "co_view"
                };
                let score = (r.co_purchases * 3 + r.co_views) as f64;
                (r.id, score, reason, r.co_purchases, r.co_views)
            })
            .collect()
    };
    if picked.len() < limit
        && let Some(category) = &product.category
    {
        let mut exclude: Vec<ProductId> = picked.iter().map(|p| p.0.clone()).collect();
        exclude.push(product.id.clone());
        let similar = state.search.read().similar(
            category,
            product.price_cents,
            &exclude,
            limit - picked.len(),
        );
        picked.extend(similar.into_iter().map(|id| (id, 0.0, "category", 0, 0)));
    }
    let ids: Vec<ProductId> = picked.iter().map(|p| p.0.clone()).collect();
    let mut products = products(state, &ids).await?;
    let items: Vec<Recommendation> = picked
        .into_iter()
        .filter_map(|(id, score, reason, co_purchases, co_views)| {
            Some(Recommendation {
                rank: 0,
                product: products.remove(&id)?,
                score,
                reason: reason.to_owned(),
                co_purchases,
                co_views,
            })
        })
        .enumerate()
        .map(|(i, mut r)| {
            r.rank = i as u64 + 1;
            r
        })
        .collect();
    Ok(Recommendations {
        product_id: product.id,
        total: items.len() as u64,
        items,
    })
}

/// Brings these products' index entries up to date after a catalog write
/// committed: re-read (with stock and popularity) and re-indexed, or taken
/// out when archived or gone. Called before the write's response goes out.
/// A failed read is logged and retried by the indexer; the write stands.
pub async fn catalog_changed(state: &AppState, ids: Vec<ProductId>) {
    if ids.is_empty() {
        return;
    }
    // The commit marked them; this read is after it, so it covers the mark.
    {
        let mut unindexed = lock(&state.search.unindexed);
        for id in &ids {
            unindexed.remove(id);
        }
    }
    match state.store.search_documents(ids.clone()).await {
        Ok(documents) => apply(&state.search, &ids, documents),
        Err(err) => {
            tracing::error!(error = %err, products = ids.len(), "cannot re-read changed products for the search index; retrying");
            lock(&state.search.unindexed).extend(ids);
        }
    }
}

fn apply(search: &SearchService, ids: &[ProductId], documents: Vec<crate::store::SearchDocument>) {
    let found: HashSet<ProductId> = documents.iter().map(|d| d.product.id.clone()).collect();
    let mut index = search.write();
    for document in documents {
        search.know(document.product.id.as_str());
        search.know(&document.product.sku);
        index.upsert(document);
    }
    for id in ids.iter().filter(|id| !found.contains(*id)) {
        index.delete(id);
    }
    index.settle();
    drop(index);
    search.changed();
}

/// Takes a deleted product out of the index.
pub fn product_deleted(state: &AppState, id: &ProductId) {
    lock(&state.search.unindexed).remove(id);
    state.search.write().delete(id);
    state.search.changed();
}

/// The products named by product events (an import's batch).
pub fn changed_products(events: &[Event]) -> Vec<ProductId> {
    events
        .iter()
        // Decode only the product events: an import's batch is mostly stock events.
        .filter(|e| {
            e.event_kind()
                .is_some_and(|k| k.family() == EventKind::ProductCreated.family())
        })
        .filter_map(|e| e.decode().ok()?.product_id().cloned())
        .collect()
}

/// The indexer's round: the start-up build once, then the products whose
/// change no request re-read (its read failed, or it was dropped first).
pub async fn keep_index(state: &AppState) -> anyhow::Result<()> {
    if !state.search.is_ready() {
        build(state).await?;
    }
    let unindexed: Vec<ProductId> = lock(&state.search.unindexed).drain().collect();
    if !unindexed.is_empty() {
        match state.store.search_documents(unindexed.clone()).await {
            Ok(documents) => apply(&state.search, &unindexed, documents),
            Err(err) => {
                lock(&state.search.unindexed).extend(unindexed);
                return Err(err.into());
            }
        }
    }
    let due = lock(&state.search.pruned_at).is_none_or(|at| at.elapsed() >= PRUNE_EVERY);
    if due {
        *lock(&state.search.pruned_at) = Some(Instant::now());
        let days = i64::try_from(state.config.search.history_days).unwrap_or(36_500);
        let pruned = state
            .store
            .prune_search_history(now() - time::Duration::days(days.min(36_500)))
            .await?;
        if pruned > 0 {
            tracing::info!(pruned, "pruned old search history");
        }
    }
    state.search.report_metrics();
    Ok(())
}

/// Reads every product from the store into the index, a batch at a time,
/// reading the next batch while the last is being indexed. Writes that land
/// meanwhile go to the index directly; the versions kept per product make
/// the build's older copies lose to them.
pub async fn build(state: &AppState) -> anyhow::Result<()> {
    let started = Instant::now();
    let store = state.store.clone();
    let (sender, mut batches) = tokio::sync::mpsc::channel(2);
    let reader = tokio::spawn(async move {
        let mut after = None;
        loop {
            let batch = store.search_documents_after(after, BUILD_BATCH).await?;
            let full = batch.len() == BUILD_BATCH as usize;
            after = batch.last().map(|d| d.product.id.clone());
            if batch.is_empty() || sender.send(batch).await.is_err() || !full {
                return anyhow::Ok(());
            }
        }
    });
    let mut products = 0;
    while let Some(batch) = batches.recv().await {
        products += batch.len();
        let search = state.search.clone();
        tokio::task::spawn_blocking(move || {
            let mut index = search.write();
            for document in batch {
                search.know(document.product.id.as_str());
                search.know(&document.product.sku);
                index.upsert(document);
            }
        })
        .await?;
    }
    reader.await??;
    let search = &state.search;
    {
        let mut index = search.write();
        index.settle();
        index.compact();
        // Stock that changed while the build ran, newest event per SKU.
        if let Some(pending) = lock(&search.pending_stock).take() {
            for (sku, (available, event)) in pending {
                index.set_available(&sku, available, event);
            }
        }
    }
    search.changed();
    let millis = started.elapsed().as_millis() as u64;
    *lock(&search.build) = Some(BuildStats { millis });
    refresh_suggestions(state, true).await?;
    search.ready.send_replace(true);
    let index = search.read();
    tracing::info!(
        products,
        indexed = index.len(),
        terms = index.term_count(),
        heap_mib = index.heap_bytes() / (1 << 20),
        millis,
        "search index built"
    );
    Ok(())
}

/// Rebuilds the suggestions from the index's product names and popularity
/// and the searches that found something, when any of them changed (or
/// always, with `force`). The build runs on the blocking pool; the old
/// suggester answers until the new one is swapped in.
pub async fn refresh_suggestions(state: &AppState, force: bool) -> anyhow::Result<()> {
    let search = state.search.clone();
    if !force && !search.suggestions_stale.swap(false, Ordering::AcqRel) {
        return Ok(());
    }
    search.suggestions_stale.store(false, Ordering::Release);
    let since = now() - time::Duration::days(SUGGEST_QUERY_DAYS);
    let queries = state.store.popular_queries(since, SUGGEST_QUERIES).await?;
    let min_clients = state.config.search.suggest_min_clients;
    let started = Instant::now();
    let suggester = tokio::task::spawn_blocking(move || {
        let mut phrases = Phrases::default();
        {
            let index = search.read();
            index.for_each_name(|name, popularity| phrases.add_name(name, popularity));
            for popular in &queries {
                let words: Vec<&str> = popular.query.split(' ').collect();
                let known = |word: &str| index.known_term(word).is_some();
                if rules::query_suggestable(&words, known, popular.clients, min_clients) {
                    phrases.add_query(&popular.query, popular.searches);
                }
            }
        }
        let suggester = Suggester::build(phrases);
        search.set_suggester(suggester);
        search.suggester().len()
    })
    .await?;
    tracing::debug!(
        suggestions = suggester,
        millis = started.elapsed().as_millis() as u64,
        "suggestions rebuilt"
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn terms<'a>(list: &[&'a str]) -> HashSet<&'a str> {
        list.iter().copied().collect()
    }

    #[test]
    fn highlights_mark_matched_stems_and_escape_the_rest() {
        assert_eq!(
            mark("Oak <Dining> Chairs & more", &terms(&["chair"]), None).as_deref(),
            Some("Oak &lt;Dining&gt; <em>Chairs</em> &amp; more")
        );
        assert_eq!(mark("nothing here", &terms(&["chair"]), None), None);
        let long = (0..100)
            .map(|i| format!("w{i}"))
            .collect::<Vec<_>>()
            .join(" ")
            + " chair end";
        let snippet = mark(&long, &terms(&["chair"]), Some(10)).expect("a match");
        assert!(snippet.starts_with('…'), "{snippet}");
        assert!(snippet.contains("<em>chair</em>"), "{snippet}");
    }

    #[test]
    fn bad_parameters_are_named() {
        let check = |params: SearchParams| params.check().map(|_| ()).map_err(|e| e.to_string());
        assert!(
            check(SearchParams::default()).is_ok(),
            "an empty query browses"
        );
        let long = SearchParams {
            q: Some("x".repeat(10_000)),
            ..SearchParams::default()
        };
        assert!(check(long).unwrap_err().starts_with("q:"));
        let negative = SearchParams {
            limit: Some(-1),
            ..SearchParams::default()
        };
        assert!(check(negative).unwrap_err().starts_with("limit:"));
        let deep = SearchParams {
            offset: Some(MAX_OFFSET + 1),
            ..SearchParams::default()
        };
        assert!(check(deep).unwrap_err().starts_with("offset:"));
        let crossed = SearchParams {
            min_price: Some(10),
            max_price: Some(5),
            ..SearchParams::default()
        };
        // A crossed range is valid and simply empty.
        assert!(check(crossed).is_ok());
    }

    #[test]
    fn queries_differing_in_case_and_punctuation_share_a_cache_entry() {
        let query = |q: &str| {
            SearchParams {
                q: Some(q.to_owned()),
                ..SearchParams::default()
            }
            .check()
            .expect("valid")
            .cache_key()
        };
        assert_eq!(query("Oak Chair"), query("  oak   CHAIR"));
        assert_eq!(query("café"), query("CAFE"));
        assert_ne!(
            query("oak chair"),
            query("oak chair "),
            "prefix matching differs"
        );
        assert_ne!(query("oak"), query("oak chair"));
    }
}
