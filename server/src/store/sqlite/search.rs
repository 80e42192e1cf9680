//! Search's tables in SQLite: searches and their hourly counts, purchases,
//! views and the pairs of products bought or viewed together.

use std::collections::BTreeSet;

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use shop_wire::products::{Product, ProductId};
use shop_wire::search::{QueryCount, SearchAnalytics, VolumePoint};
use time::OffsetDateTime;

use super::catalog::{COLUMNS, product_row};
use super::notifications::move_cursor;
use super::{SqliteStore, append, conversion, from_millis, millis, parse_column};
use crate::services::search::rules as search_rules;
use crate::store::{
    CursorMove, NewEvent, PopularQuery, ProductPopularity, ProductView, RelatedProduct,
    SearchDocument, SearchRecord, SearchStore, StoreResult, ViewPairing,
};

const HOUR_MS: i64 = 3_600_000;
/// Items of one order paired with each other at most: an order of 200
/// lines would otherwise write 40,000 pairs.
const MAX_PAIRED_ITEMS: usize = 20;

fn document_columns() -> String {
    let product = COLUMNS
        .split(", ")
        .map(|c| format!("p.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "{product}, coalesce(s.on_hand - s.reserved, 0) AS available,
         coalesce(pp.purchases, 0) AS purchases, coalesce(pp.views, 0) AS views"
    )
}

const DOCUMENT_JOINS: &str = "FROM products p
     LEFT JOIN stock s ON s.sku = p.sku
     LEFT JOIN product_popularity pp ON pp.product_id = p.id";

fn document_row(row: &Row<'_>) -> rusqlite::Result<SearchDocument> {
    let purchases: i64 = row.get("purchases")?;
    let views: i64 = row.get("views")?;
    Ok(SearchDocument {
        product: product_row(row)?,
        available: row.get("available")?,
        popularity: ProductPopularity::score(purchases as u64, views as u64),
    })
}

fn ids_json(ids: &[ProductId]) -> String {
    serde_json::Value::from(ids.iter().map(ProductId::as_str).collect::<Vec<_>>()).to_string()
}

fn popularity(conn: &Connection, id: &str) -> rusqlite::Result<ProductPopularity> {
    let counts = conn
        .prepare_cached("SELECT purchases, views FROM product_popularity WHERE product_id = ?1")?
        .query_row([id], |row| {
            Ok((row.get::<_, i64>(0)? as u64, row.get::<_, i64>(1)? as u64))
        })
        .optional()?
        .unwrap_or((0, 0));
    Ok(ProductPopularity {
        id: id.parse().map_err(conversion)?,
        purchases: counts.0,
        views: counts.1,
    })
}

fn add_pair(tx: &Transaction<'_>, a: &str, b: &str, purchases: i64, views: i64) -> StoreResult<()> {
    let mut upsert = tx.prepare_cached(
        "INSERT INTO product_pairs (product_id, other_id, co_purchases, co_views)
         VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (product_id, other_id) DO UPDATE SET
             co_purchases = co_purchases + excluded.co_purchases,
             co_views = co_views + excluded.co_views",
    )?;
    upsert.execute(params![a, b, purchases, views])?;
    upsert.execute(params![b, a, purchases, views])?;
    Ok(())
}

fn query_counts(
    conn: &Connection,
    sql: &str,
    since: i64,
    limit: u32,
) -> rusqlite::Result<Vec<QueryCount>> {
    conn.prepare_cached(sql)?
        .query_map(params![since, limit], |row| {
            Ok(QueryCount {
                query: row.get(0)?,
                count: row.get::<_, i64>(1)? as u64,
            })
        })?
        .collect()
}

#[async_trait]
impl SearchStore for SqliteStore {
    async fn search_documents_after(
        &self,
        after: Option<ProductId>,
        batch: u32,
    ) -> StoreResult<Vec<SearchDocument>> {
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {} {DOCUMENT_JOINS} WHERE p.id > ?1 ORDER BY p.id LIMIT ?2",
                document_columns()
            ))?
            .query_map(
                params![after.as_ref().map_or("", ProductId::as_str), batch],
                document_row,
            )?
            .collect()
        })
        .await
    }

    async fn search_documents(&self, ids: Vec<ProductId>) -> StoreResult<Vec<SearchDocument>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {} {DOCUMENT_JOINS} WHERE p.id IN (SELECT value FROM json_each(?1))",
                document_columns()
            ))?
            .query_map([ids_json(&ids)], document_row)?
            .collect()
        })
        .await
    }

    async fn products_by_ids(&self, ids: Vec<ProductId>) -> StoreResult<Vec<Product>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM products WHERE id IN (SELECT value FROM json_each(?1))"
            ))?
            .query_map([ids_json(&ids)], product_row)?
            .collect()
        })
        .await
    }

    async fn record_searches(
        &self,
        records: Vec<SearchRecord>,
        events: Vec<NewEvent>,
    ) -> StoreResult<()> {
        self.write(move |tx| {
            let mut insert = tx.prepare_cached(
                "INSERT INTO search_queries (query, raw, filters, result_count, latency_us, cache_hit, at, client)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            let mut count = tx.prepare_cached(
                "INSERT INTO search_query_stats (hour, query, searches, zero_results, latency_us, cache_hits)
                 VALUES (?1, ?2, 1, ?3, ?4, ?5)
                 ON CONFLICT (hour, query) DO UPDATE SET
                     searches = searches + 1,
                     zero_results = zero_results + excluded.zero_results,
                     latency_us = latency_us + excluded.latency_us,
                     cache_hits = cache_hits + excluded.cache_hits",
            )?;
            for r in &records {
                let at = millis(r.at);
                let latency = i64::try_from(r.latency_us).unwrap_or(i64::MAX);
                insert.execute(params![
                    r.query,
                    r.raw,
                    r.filters.to_string(),
                    r.result_count as i64,
                    latency,
                    r.cache_hit,
                    at,
                    r.client
                ])?;
                count.execute(params![
                    at - at.rem_euclid(HOUR_MS),
                    r.query,
                    i64::from(r.result_count == 0),
                    latency,
                    i64::from(r.cache_hit)
                ])?;
            }
            append(tx, events)?;
            Ok(())
        })
        .await
    }

    async fn search_analytics(
        &self,
        since: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<SearchAnalytics> {
        let since_ms = millis(since);
        let since_ms = since_ms - since_ms.rem_euclid(HOUR_MS);
        self.read(move |conn| {
            let (total, zero, hits, latency): (i64, i64, i64, i64) = conn
                .prepare_cached(
                    "SELECT coalesce(sum(searches), 0), coalesce(sum(zero_results), 0),
                            coalesce(sum(cache_hits), 0), coalesce(sum(latency_us), 0)
                     FROM search_query_stats WHERE hour >= ?1",
                )?
                .query_row([since_ms], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
                })?;
            // An empty query is browsing, not a query anyone typed: counted
            // in the volume, left out of the lists.
            let top_queries = query_counts(
                conn,
                "SELECT query, sum(searches) AS n FROM search_query_stats
                 WHERE hour >= ?1 AND query != '' GROUP BY query ORDER BY n DESC, query LIMIT ?2",
                since_ms,
                limit,
            )?;
            let zero_result_queries = query_counts(
                conn,
                "SELECT query, sum(zero_results) AS n FROM search_query_stats
                 WHERE hour >= ?1 AND query != '' GROUP BY query HAVING n > 0
                 ORDER BY n DESC, query LIMIT ?2",
                since_ms,
                limit,
            )?;
            let volume = conn
                .prepare_cached(
                    "SELECT hour, sum(searches) FROM search_query_stats
                     WHERE hour >= ?1 GROUP BY hour ORDER BY hour",
                )?
                .query_map([since_ms], |row| {
                    Ok(VolumePoint {
                        hour: from_millis(row.get(0)?)?,
                        count: row.get::<_, i64>(1)? as u64,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(SearchAnalytics {
                since: from_millis(since_ms)?,
                total_queries: total as u64,
                zero_result_total: zero as u64,
                cache_hits: hits as u64,
                avg_latency_ms: if total > 0 {
                    latency as f64 / total as f64 / 1000.0
                } else {
                    0.0
                },
                top_queries,
                zero_result_queries,
                volume,
            })
        })
        .await
    }

    async fn popular_queries(
        &self,
        since: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<Vec<PopularQuery>> {
        let since = millis(since);
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT query, count(*) AS n, count(DISTINCT client) AS clients
                 FROM search_queries
                 WHERE at >= ?1 AND query != '' AND result_count > 0
                 GROUP BY query ORDER BY n DESC, query LIMIT ?2",
            )?
            .query_map(params![since, limit], |row| {
                Ok(PopularQuery {
                    query: row.get(0)?,
                    searches: row.get::<_, i64>(1)?.unsigned_abs(),
                    clients: row.get::<_, i64>(2)?.unsigned_abs(),
                })
            })?
            .collect()
        })
        .await
    }

    async fn record_purchases(
        &self,
        orders: Vec<Vec<String>>,
        cursor: CursorMove,
    ) -> StoreResult<Vec<ProductPopularity>> {
        self.write(move |tx| {
            let mut touched = BTreeSet::new();
            for skus in orders {
                let mut ids: Vec<String> = Vec::new();
                for sku in skus {
                    let id: Option<String> = tx
                        .prepare_cached("SELECT id FROM products WHERE sku = ?1")?
                        .query_row([&sku], |row| row.get(0))
                        .optional()?;
                    if let Some(id) = id
                        && !ids.contains(&id)
                    {
                        ids.push(id);
                    }
                }
                for id in &ids {
                    tx.prepare_cached(
                        "INSERT INTO product_popularity (product_id, purchases) VALUES (?1, 1)
                         ON CONFLICT (product_id) DO UPDATE SET purchases = purchases + 1",
                    )?
                    .execute([id])?;
                }
                let paired = &ids[..ids.len().min(MAX_PAIRED_ITEMS)];
                for (i, a) in paired.iter().enumerate() {
                    for b in &paired[i + 1..] {
                        add_pair(tx, a, b, 1, 0)?;
                    }
                }
                touched.extend(ids);
            }
            move_cursor(tx, cursor)?;
            touched
                .iter()
                .map(|id| popularity(tx, id).map_err(Into::into))
                .collect()
        })
        .await
    }

    async fn record_views(
        &self,
        views: Vec<ProductView>,
        window: time::Duration,
        pair_with: u32,
    ) -> StoreResult<Vec<ProductPopularity>> {
        self.write(move |tx| {
            let mut viewed = Vec::new();
            for view in views {
                record_view(tx, &view, window, pair_with)?;
                if !viewed.contains(&view.product) {
                    viewed.push(view.product);
                }
            }
            viewed
                .iter()
                .map(|id| popularity(tx, id.as_str()).map_err(Into::into))
                .collect()
        })
        .await
    }

    async fn related_products(
        &self,
        product: &ProductId,
        limit: u32,
    ) -> StoreResult<Vec<RelatedProduct>> {
        let id = product.clone();
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT other_id, co_purchases, co_views FROM product_pairs WHERE product_id = ?1
                 ORDER BY co_purchases * 3 + co_views DESC, other_id LIMIT ?2",
            )?
            .query_map(params![id.as_str(), limit], |row| {
                Ok(RelatedProduct {
                    id: parse_column(row, "other_id")?,
                    co_purchases: row.get::<_, i64>(1)? as u64,
                    co_views: row.get::<_, i64>(2)? as u64,
                })
            })?
            .collect()
        })
        .await
    }

    async fn prune_search_history(&self, before: OffsetDateTime) -> StoreResult<u64> {
        let before = millis(before);
        self.write(move |tx| {
            let mut removed = tx
                .prepare_cached("DELETE FROM search_queries WHERE at < ?1")?
                .execute([before])?;
            removed += tx
                .prepare_cached("DELETE FROM search_query_stats WHERE hour < ?1")?
                .execute([before - before.rem_euclid(HOUR_MS)])?;
            removed += tx
                .prepare_cached("DELETE FROM product_views WHERE at < ?1")?
                .execute([before])?;
            Ok(removed as u64)
        })
        .await
    }
}

/// Counts one view, and its co-views when it pairs.
fn record_view(
    tx: &Transaction<'_>,
    view: &ProductView,
    window: time::Duration,
    pair_with: u32,
) -> StoreResult<()> {
    let id = view.product.as_str();
    tx.prepare_cached(
        "INSERT INTO product_popularity (product_id, views) VALUES (?1, 1)
             ON CONFLICT (product_id) DO UPDATE SET views = views + 1",
    )?
    .execute([id])?;
    let from = millis(view.at - window);
    let pairing = match &view.pairing {
        Some(pairing) => {
            let paired: i64 = tx
                .prepare_cached(
                    "SELECT count(*) FROM product_views WHERE client = ?1 AND at >= ?2",
                )?
                .query_row(params![pairing.client, from], |row| row.get(0))?;
            search_rules::view_may_pair(paired.unsigned_abs(), pairing.per_client)
                .then_some(pairing)
        }
        None => None,
    };
    if let Some(ViewPairing {
        viewer: session,
        client,
        ..
    }) = pairing
    {
        // A product seen again within the window was paired the first time.
        let seen: bool = tx
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM product_views
                     WHERE session = ?1 AND product_id = ?2 AND at >= ?3)",
            )?
            .query_row(params![session, id, from], |row| row.get(0))?;
        if !seen {
            let others: Vec<String> = tx
                .prepare_cached(
                    "SELECT product_id FROM product_views
                         WHERE session = ?1 AND at >= ?2 AND product_id != ?3
                         GROUP BY product_id ORDER BY max(at) DESC LIMIT ?4",
                )?
                .query_map(params![session, from, id, pair_with], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            for other in others {
                // One account counts once per pair, however often it
                // views the two: co-views are distinct viewers.
                let (a, b) = if id < other.as_str() {
                    (id, other.as_str())
                } else {
                    (other.as_str(), id)
                };
                let first = tx
                    .prepare_cached(
                        "INSERT OR IGNORE INTO product_pair_viewers (product_id, other_id, viewer)
                             VALUES (?1, ?2, ?3)",
                    )?
                    .execute(params![a, b, session])?;
                if first == 1 {
                    add_pair(tx, id, &other, 0, 1)?;
                }
            }
        }
        tx.prepare_cached(
            "INSERT INTO product_views (session, product_id, at, client) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![session, id, millis(view.at), client])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::tests::store;
    use crate::store::{CatalogStore, EventStore, InitialStock, NotificationStore, now};
    use shop_wire::products::ProductRequest;

    async fn add(store: &SqliteStore, sku: &str, stock: i64) -> Product {
        let product = crate::services::products::domain::product_from(ProductRequest {
            sku: sku.to_owned(),
            name: format!("Product {sku}"),
            price_cents: 100,
            active: true,
            ..ProductRequest::default()
        })
        .expect("valid")
        .0;
        store
            .insert_product(
                &product,
                InitialStock {
                    on_hand: stock,
                    low_stock_threshold: 0,
                },
                None,
                Vec::new(),
            )
            .await
            .expect("insert");
        product
    }

    #[tokio::test]
    async fn documents_carry_stock_and_popularity() {
        let (_dir, store) = store();
        let a = add(&store, "A-1", 7).await;
        let b = add(&store, "B-1", 0).await;
        let counts = store
            .record_purchases(
                vec![vec![
                    "A-1".into(),
                    "B-1".into(),
                    "A-1".into(),
                    "GONE".into(),
                ]],
                CursorMove {
                    consumer: "search",
                    from: 0,
                    to: 42,
                },
            )
            .await
            .expect("purchases");
        assert_eq!(counts.len(), 2);
        assert!(
            counts.iter().all(|c| c.purchases == 1),
            "a repeated SKU counts once"
        );
        assert_eq!(store.event_cursor("search").await.expect("cursor"), 42);
        let docs = store
            .search_documents_after(None, 10)
            .await
            .expect("documents");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0].product.id, a.id);
        assert_eq!(docs[0].available, 7);
        assert_eq!(docs[0].popularity, 3.0);
        let related = store.related_products(&b.id, 5).await.expect("related");
        assert_eq!(
            related,
            [RelatedProduct {
                id: a.id.clone(),
                co_purchases: 1,
                co_views: 0
            }]
        );
        let only_b = store
            .search_documents(vec![b.id.clone()])
            .await
            .expect("by id");
        assert_eq!(only_b.len(), 1);
        assert_eq!(
            store
                .products_by_ids(vec![a.id.clone(), b.id.clone()])
                .await
                .expect("products")
                .len(),
            2
        );
    }

    #[tokio::test]
    async fn views_in_one_session_pair_once() {
        let (_dir, store) = store();
        let a = add(&store, "A-1", 1).await;
        let b = add(&store, "B-1", 1).await;
        let at = now();
        let window = time::Duration::hours(1);
        let pairing = |viewer: &str, per_client: u32| {
            Some(ViewPairing {
                viewer: viewer.to_owned(),
                client: "c1".to_owned(),
                per_client,
            })
        };
        let view = |product: &Product, pairing: Option<ViewPairing>, at| ProductView {
            product: product.id.clone(),
            pairing,
            at,
        };
        let mut views: Vec<ProductView> = [&a, &b, &a, &b]
            .into_iter()
            .map(|product| view(product, pairing("s1", 0), at))
            .collect();
        // The same viewer again after the window: still one co-view.
        let later = at + time::Duration::hours(2);
        views.extend([&a, &b].map(|product| view(product, pairing("s1", 0), later)));
        // A client past its cap pairs nothing, however many viewers it names.
        for viewer in ["s2", "s3"] {
            views.extend([&a, &b].map(|product| view(product, pairing(viewer, 2), later)));
        }
        views.push(view(&a, None, at));
        let counts = store.record_views(views, window, 10).await.expect("views");
        assert_eq!(
            counts.iter().map(|c| (&c.id, c.views)).collect::<Vec<_>>(),
            [(&a.id, 6), (&b.id, 5)],
            "each viewed product once, with all its views"
        );
        let related = store.related_products(&a.id, 5).await.expect("related");
        assert_eq!(related[0].co_views, 1, "{related:?}");
    }

    #[tokio::test]
    async fn searches_are_counted_per_hour_and_query() {
        let (_dir, store) = store();
        let at = now();
        let record = |query: &str, results: u64| SearchRecord {
            query: query.to_owned(),
            raw: query.to_owned(),
            filters: serde_json::json!({}),
            result_count: results,
            latency_us: 500,
            cache_hit: false,
            at,
            client: Some(format!("client-{results}")),
        };
        store
            .record_searches(
                vec![
                    record("oak", 3),
                    record("oak", 3),
                    record("zzz", 0),
                    record("", 9),
                ],
                vec![NewEvent::example()],
            )
            .await
            .expect("record");
        assert_eq!(store.events_after(0, 10).await.expect("events").len(), 1);
        let analytics = store
            .search_analytics(at - time::Duration::hours(1), 10)
            .await
            .expect("analytics");
        assert_eq!(analytics.total_queries, 4);
        assert_eq!(
            analytics.top_queries,
            [
                QueryCount {
                    query: "oak".into(),
                    count: 2
                },
                QueryCount {
                    query: "zzz".into(),
                    count: 1
                }
            ]
        );
        assert_eq!(analytics.zero_result_queries.len(), 1);
        assert_eq!(analytics.volume.iter().map(|v| v.count).sum::<u64>(), 4);
        assert!((analytics.avg_latency_ms - 0.5).abs() < 1e-9);
        let popular = store
            .popular_queries(at - time::Duration::hours(1), 10)
            .await
            .expect("popular");
        assert_eq!(
            popular,
            [PopularQuery {
                query: "oak".to_owned(),
                searches: 2,
                clients: 1
            }]
        );
        assert_eq!(
            store
                .prune_search_history(at + time::Duration::hours(2))
                .await
                .expect("prune"),
            7,
            "4 searches and 3 hourly counts"
        );
    }
}
