//! Search's tables in PostgreSQL: searches and their hourly counts,
//! purchases, views and the pairs of products bought or viewed together.
//!
//! Several nodes record at once, so every count is an upsert that adds
//! (`count = count + excluded.count`), never a read followed by a write:
//! two nodes counting the same pair both land. A batch's counts are summed
//! first and upserted in key order, one statement per table, so batches
//! touching the same rows take their locks in the same order and queue
//! rather than deadlock. A viewer counts once per pair because the insert
//! of its (pair, viewer) key decides it, which racing nodes cannot both win.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use shop_wire::products::{Product, ProductId};
use shop_wire::search::{QueryCount, SearchAnalytics, VolumePoint};
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, PgConnection, Row};
use time::{OffsetDateTime, Time, UtcOffset};

use super::catalog::{COLUMNS as PRODUCT_COLUMNS, product_row};
use super::events::move_cursor;
use super::{PgStore, parse};
use crate::services::search::rules as search_rules;
use crate::store::{
    CursorMove, NewEvent, PopularQuery, ProductPopularity, ProductView, RelatedProduct,
    SearchDocument, SearchRecord, SearchStore, StoreResult, ViewPairing,
};

/// Items of one order paired with each other at most (as on SQLite): an
/// order of 200 lines would otherwise write 40,000 pairs.
const MAX_PAIRED_ITEMS: usize = 20;

/// The advisory lock class of a client's pairing views (`"view"`): the
/// per-client cap counts the client's views, which no row lock covers.
const VIEW_LOCKS: i32 = 0x7669_6577;

/// A product with its stock and popularity; products without stock or
/// popularity rows read as none of either.
fn document_select() -> String {
    format!(
        "SELECT {PRODUCT_COLUMNS}, coalesce(s.on_hand - s.reserved, 0) AS available,
                coalesce(pp.purchases, 0) AS purchases, coalesce(pp.views, 0) AS views
         FROM products p
         LEFT JOIN stock s ON s.sku = p.sku
         LEFT JOIN product_popularity pp ON pp.product_id = p.id"
    )
}

fn document_row(row: &PgRow) -> StoreResult<SearchDocument> {
    let purchases: i64 = row.try_get("purchases")?;
    let views: i64 = row.try_get("views")?;
    Ok(SearchDocument {
        product: product_row(row)?,
        available: row.try_get("available")?,
        popularity: ProductPopularity::score(purchases as u64, views as u64),
    })
}

fn id_texts(ids: &[ProductId]) -> Vec<String> {
    ids.iter().map(ProductId::to_string).collect()
}

/// The UTC hour `at` falls in: the key of the hourly counts.
fn hour_of(at: OffsetDateTime) -> OffsetDateTime {
    let utc = at.to_offset(UtcOffset::UTC);
    utc.replace_time(Time::MIDNIGHT + time::Duration::hours(i64::from(utc.hour())))
}

/// The counts of `ids` now, in id order; ids never counted are left out.
async fn popularity(tx: &mut PgConnection, ids: &[String]) -> StoreResult<Vec<ProductPopularity>> {
    sqlx::query(
        "SELECT product_id, purchases, views FROM product_popularity
         WHERE product_id = ANY($1) ORDER BY product_id",
    )
    .bind(ids)
    .fetch_all(&mut *tx)
    .await?
    .iter()
    .map(|row| {
        Ok(ProductPopularity {
            id: parse(row, "product_id")?,
            purchases: row.try_get::<i64, _>("purchases")? as u64,
            views: row.try_get::<i64, _>("views")? as u64,
        })
    })
    .collect()
}

/// Adds `(purchases, views)` to each product's counts, in id order.
async fn add_popularity(
    tx: &mut PgConnection,
    counts: &BTreeMap<String, (i64, i64)>,
) -> StoreResult<()> {
    if counts.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = counts.keys().map(String::as_str).collect();
    let purchases: Vec<i64> = counts.values().map(|c| c.0).collect();
    let views: Vec<i64> = counts.values().map(|c| c.1).collect();
    sqlx::query(
        "INSERT INTO product_popularity (product_id, purchases, views)
         SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS c(id, p, v) ORDER BY c.id
         ON CONFLICT (product_id) DO UPDATE SET
             purchases = product_popularity.purchases + excluded.purchases,
             views = product_popularity.views + excluded.views",
    )
    .bind(ids)
    .bind(purchases)
    .bind(views)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Adds `(co_purchases, co_views)` to each pair, both directions given by
/// the caller, in key order.
async fn add_pairs(
    tx: &mut PgConnection,
    pairs: &BTreeMap<(String, String), (i64, i64)>,
) -> StoreResult<()> {
    if pairs.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = pairs.keys().map(|(a, _)| a.as_str()).collect();
    let others: Vec<&str> = pairs.keys().map(|(_, b)| b.as_str()).collect();
    let purchases: Vec<i64> = pairs.values().map(|c| c.0).collect();
    let views: Vec<i64> = pairs.values().map(|c| c.1).collect();
    sqlx::query(
        "INSERT INTO product_pairs (product_id, other_id, co_purchases, co_views)
         SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bigint[])
             AS c(id, other, p, v)
         ORDER BY c.id, c.other
         ON CONFLICT (product_id, other_id) DO UPDATE SET
             co_purchases = product_pairs.co_purchases + excluded.co_purchases,
             co_views = product_pairs.co_views + excluded.co_views",
    )
    .bind(ids)
    .bind(others)
    .bind(purchases)
    .bind(views)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Counts a pair once in each direction.
fn count_pair(
    pairs: &mut BTreeMap<(String, String), (i64, i64)>,
    a: &str,
    b: &str,
    (purchases, views): (i64, i64),
) {
    for key in [(a.to_owned(), b.to_owned()), (b.to_owned(), a.to_owned())] {
        let count = pairs.entry(key).or_default();
        count.0 += purchases;
        count.1 += views;
    }
}

async fn query_counts(
    conn: &mut PgConnection,
    sql: &'static str,
    since: OffsetDateTime,
    limit: u32,
) -> StoreResult<Vec<QueryCount>> {
    sqlx::query(sql)
        .bind(since)
        .bind(i64::from(limit))
        .fetch_all(conn)
        .await?
        .iter()
        .map(|row| {
            Ok(QueryCount {
                query: row.try_get("query")?,
                count: row.try_get::<i64, _>("n")? as u64,
            })
        })
        .collect()
}

#[async_trait]
impl SearchStore for PgStore {
    async fn search_documents_after(
        &self,
        after: Option<ProductId>,
        batch: u32,
    ) -> StoreResult<Vec<SearchDocument>> {
        // Ids compare as bytes (COLLATE "C"), so "" is before every id and
        // the pages are in SQLite's order.
        let sql = format!(
            "{} WHERE p.id > $1 ORDER BY p.id LIMIT $2",
            document_select()
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(after.as_ref().map_or("", ProductId::as_str))
            .bind(i64::from(batch))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(document_row)
            .collect()
    }

    async fn search_documents(&self, ids: Vec<ProductId>) -> StoreResult<Vec<SearchDocument>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!("{} WHERE p.id = ANY($1)", document_select());
        sqlx::query(AssertSqlSafe(sql))
            .bind(id_texts(&ids))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(document_row)
            .collect()
    }

    async fn products_by_ids(&self, ids: Vec<ProductId>) -> StoreResult<Vec<Product>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!("SELECT {PRODUCT_COLUMNS} FROM products p WHERE p.id = ANY($1)");
        sqlx::query(AssertSqlSafe(sql))
            .bind(id_texts(&ids))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(product_row)
            .collect()
    }

    async fn record_searches(
        &self,
        records: Vec<SearchRecord>,
        events: Vec<NewEvent>,
    ) -> StoreResult<()> {
        // The batch's hourly counts, summed per (hour, query): one upsert
        // cannot touch a row twice, and key order is the lock order.
        let mut stats: BTreeMap<(OffsetDateTime, String), [i64; 4]> = BTreeMap::new();
        for r in &records {
            let count = stats.entry((hour_of(r.at), r.query.clone())).or_default();
            count[0] += 1;
            count[1] += i64::from(r.result_count == 0);
            count[2] += i64::try_from(r.latency_us).unwrap_or(i64::MAX);
            count[3] += i64::from(r.cache_hit);
        }
        // Shared by the attempts of a retried transaction.
        let (records, stats) = (Arc::new(records), Arc::new(stats));
        self.write(move |tx| {
            let (records, stats) = (records.clone(), stats.clone());
            let events = events.clone();
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO search_queries (query, raw, filters, result_count, latency_us,
                         cache_hit, at, client)
                     SELECT q, r, f::jsonb, n, l, h, a, c
                     FROM unnest($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[],
                                 $6::boolean[], $7::timestamptz[], $8::text[])
                         AS s(q, r, f, n, l, h, a, c)",
                )
                .bind(records.iter().map(|r| r.query.as_str()).collect::<Vec<_>>())
                .bind(records.iter().map(|r| r.raw.as_str()).collect::<Vec<_>>())
                .bind(
                    records
                        .iter()
                        .map(|r| r.filters.to_string())
                        .collect::<Vec<_>>(),
                )
                .bind(
                    records
                        .iter()
                        .map(|r| r.result_count as i64)
                        .collect::<Vec<_>>(),
                )
                .bind(
                    records
                        .iter()
                        .map(|r| i64::try_from(r.latency_us).unwrap_or(i64::MAX))
                        .collect::<Vec<_>>(),
                )
                .bind(records.iter().map(|r| r.cache_hit).collect::<Vec<_>>())
                .bind(records.iter().map(|r| r.at).collect::<Vec<_>>())
                .bind(
                    records
                        .iter()
                        .map(|r| r.client.as_deref())
                        .collect::<Vec<_>>(),
                )
                .execute(&mut *tx)
                .await?;
                sqlx::query(
                    "INSERT INTO search_query_stats
                         (hour, query, searches, zero_results, latency_us, cache_hits)
                     SELECT * FROM unnest($1::timestamptz[], $2::text[], $3::bigint[],
                                          $4::bigint[], $5::bigint[], $6::bigint[])
                         AS s(hour, query, n, z, l, h)
                     ORDER BY s.hour, s.query
                     ON CONFLICT (hour, query) DO UPDATE SET
                         searches = search_query_stats.searches + excluded.searches,
                         zero_results = search_query_stats.zero_results + excluded.zero_results,
                         latency_us = search_query_stats.latency_us + excluded.latency_us,
                         cache_hits = search_query_stats.cache_hits + excluded.cache_hits",
                )
                .bind(stats.keys().map(|(hour, _)| *hour).collect::<Vec<_>>())
                .bind(stats.keys().map(|(_, q)| q.as_str()).collect::<Vec<_>>())
                .bind(stats.values().map(|c| c[0]).collect::<Vec<_>>())
                .bind(stats.values().map(|c| c[1]).collect::<Vec<_>>())
                .bind(stats.values().map(|c| c[2]).collect::<Vec<_>>())
                .bind(stats.values().map(|c| c[3]).collect::<Vec<_>>())
                .execute(&mut *tx)
                .await?;
                Ok(((), events))
            })
        })
        .await?;
        Ok(())
    }

    async fn search_analytics(
        &self,
        since: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<SearchAnalytics> {
        let since = hour_of(since);
        let mut conn = self.pool.acquire().await?;
        let totals = sqlx::query(
            "SELECT coalesce(sum(searches), 0)::bigint AS total,
                    coalesce(sum(zero_results), 0)::bigint AS zero,
                    coalesce(sum(cache_hits), 0)::bigint AS hits,
                    coalesce(sum(latency_us), 0)::bigint AS latency
             FROM search_query_stats WHERE hour >= $1",
        )
        .bind(since)
        .fetch_one(&mut *conn)
        .await?;
        let total: i64 = totals.try_get("total")?;
        let latency: i64 = totals.try_get("latency")?;
        // An empty query is browsing, not a query anyone typed: counted
        // in the volume, left out of the lists.
        let top_queries = query_counts(
            &mut conn,
            "SELECT query, sum(searches)::bigint AS n FROM search_query_stats
             WHERE hour >= $1 AND query <> '' GROUP BY query ORDER BY n DESC, query LIMIT $2",
            since,
            limit,
        )
        .await?;
        let zero_result_queries = query_counts(
            &mut conn,
            "SELECT query, sum(zero_results)::bigint AS n FROM search_query_stats
             WHERE hour >= $1 AND query <> '' GROUP BY query HAVING sum(zero_results) > 0
             ORDER BY n DESC, query LIMIT $2",
            since,
            limit,
        )
        .await?;
        let volume = sqlx::query(
            "SELECT hour, sum(searches)::bigint AS n FROM search_query_stats
             WHERE hour >= $1 GROUP BY hour ORDER BY hour",
        )
        .bind(since)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|row| {
            Ok(VolumePoint {
                hour: row.try_get("hour")?,
                count: row.try_get::<i64, _>("n")? as u64,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
        Ok(SearchAnalytics {
            since,
            total_queries: total as u64,
            zero_result_total: totals.try_get::<i64, _>("zero")? as u64,
            cache_hits: totals.try_get::<i64, _>("hits")? as u64,
            avg_latency_ms: if total > 0 {
                latency as f64 / total as f64 / 1000.0
            } else {
                0.0
            },
            top_queries,
            zero_result_queries,
            volume,
        })
    }

    async fn popular_queries(
        &self,
        since: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<Vec<PopularQuery>> {
        sqlx::query(
            "SELECT query, count(*) AS n, count(DISTINCT client) AS clients
             FROM search_queries
             WHERE at >= $1 AND query <> '' AND result_count > 0
             GROUP BY query ORDER BY n DESC, query LIMIT $2",
        )
        .bind(since)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok(PopularQuery {
                query: row.try_get("query")?,
                searches: row.try_get::<i64, _>("n")?.unsigned_abs(),
                clients: row.try_get::<i64, _>("clients")?.unsigned_abs(),
            })
        })
        .collect()
    }

    async fn record_purchases(
        &self,
        orders: Vec<Vec<String>>,
        cursor: CursorMove,
    ) -> StoreResult<Vec<ProductPopularity>> {
        let skus: Vec<String> = orders
            .iter()
            .flatten()
            .cloned()
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        // Shared by the attempts of a retried transaction.
        let (orders, skus) = (Arc::new(orders), Arc::new(skus));
        let (touched, _) = self
            .write(move |tx| {
                let (orders, skus) = (orders.clone(), skus.clone());
                Box::pin(async move {
                    let ids: HashMap<String, String> =
                        sqlx::query("SELECT sku, id FROM products WHERE sku = ANY($1)")
                            .bind(&*skus)
                            .fetch_all(&mut *tx)
                            .await?
                            .iter()
                            .map(|row| Ok((row.try_get("sku")?, row.try_get("id")?)))
                            .collect::<StoreResult<_>>()?;
                    let mut bought: BTreeMap<String, (i64, i64)> = BTreeMap::new();
                    let mut pairs = BTreeMap::new();
                    for order in orders.iter() {
                        // Each product once per order, in the order's order.
                        let mut products: Vec<&str> = Vec::new();
                        for id in order.iter().filter_map(|sku| ids.get(sku)) {
                            if !products.contains(&id.as_str()) {
                                products.push(id);
                            }
                        }
                        for id in &products {
                            bought.entry((*id).to_owned()).or_default().0 += 1;
                        }
                        let paired = &products[..products.len().min(MAX_PAIRED_ITEMS)];
                        for (i, a) in paired.iter().enumerate() {
                            for b in &paired[i + 1..] {
                                count_pair(&mut pairs, a, b, (1, 0));
                            }
                        }
                    }
                    add_popularity(tx, &bought).await?;
                    add_pairs(tx, &pairs).await?;
                    move_cursor(tx, cursor).await?;
                    let touched: Vec<String> = bought.into_keys().collect();
                    Ok((popularity(tx, &touched).await?, Vec::new()))
                })
            })
            .await?;
        Ok(touched)
    }

    async fn record_views(
        &self,
        views: Vec<ProductView>,
        window: time::Duration,
        pair_with: u32,
    ) -> StoreResult<Vec<ProductPopularity>> {
        // Shared by the attempts of a retried transaction.
        let views = Arc::new(views);
        let (counts, _) = self
            .write(move |tx| {
                let views = views.clone();
                Box::pin(async move {
                    lock_clients(tx, &views).await?;
                    let mut viewed: Vec<String> = Vec::new();
                    let mut counts = Counts::default();
                    for view in views.iter() {
                        record_view(tx, view, (window, pair_with), &mut counts).await?;
                        if !viewed.contains(&view.product.to_string()) {
                            viewed.push(view.product.to_string());
                        }
                    }
                    // Once for the batch, in key order, as purchases do.
                    add_popularity(tx, &counts.popularity).await?;
                    add_pairs(tx, &counts.pairs).await?;
                    // In the order first viewed, as SQLite returns them.
                    let mut counts = popularity(tx, &viewed).await?;
                    counts.sort_by_key(|c| viewed.iter().position(|id| id == c.id.as_str()));
                    Ok((counts, Vec::new()))
                })
            })
            .await?;
        Ok(counts)
    }

    async fn related_products(
        &self,
        product: &ProductId,
        limit: u32,
    ) -> StoreResult<Vec<RelatedProduct>> {
        sqlx::query(
            "SELECT other_id, co_purchases, co_views FROM product_pairs WHERE product_id = $1
             ORDER BY co_purchases * 3 + co_views DESC, other_id LIMIT $2",
        )
        .bind(product.as_str())
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .iter()
        .map(|row| {
            Ok(RelatedProduct {
                id: parse(row, "other_id")?,
                co_purchases: row.try_get::<i64, _>("co_purchases")? as u64,
                co_views: row.try_get::<i64, _>("co_views")? as u64,
            })
        })
        .collect()
    }

    async fn prune_search_history(&self, before: OffsetDateTime) -> StoreResult<u64> {
        let (removed, _) = self
            .write(move |tx| {
                Box::pin(async move {
                    let mut removed = sqlx::query("DELETE FROM search_queries WHERE at < $1")
                        .bind(before)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    removed += sqlx::query("DELETE FROM search_query_stats WHERE hour < $1")
                        .bind(hour_of(before))
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    removed += sqlx::query("DELETE FROM product_views WHERE at < $1")
                        .bind(before)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    Ok((removed, Vec::new()))
                })
            })
            .await?;
        Ok(removed)
    }
}

/// Locks the clients whose views may pair, in one order: a client's cap
/// counts its pairing views, so two nodes recording the same client's
/// views must not both count below the cap and both pair. Transaction
/// locks, released at commit; collisions of the hash only queue more.
async fn lock_clients(tx: &mut PgConnection, views: &[ProductView]) -> StoreResult<()> {
    let clients: BTreeSet<&str> = views
        .iter()
        .filter_map(|v| v.pairing.as_ref())
        .filter(|p| p.per_client > 0)
        .map(|p| p.client.as_str())
        .collect();
    if clients.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "SELECT pg_advisory_xact_lock($1, k)
         FROM (SELECT DISTINCT hashtext(c) AS k FROM unnest($2::text[]) AS c ORDER BY k) AS keys",
    )
    .bind(VIEW_LOCKS)
    .bind(clients.into_iter().collect::<Vec<_>>())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// What a batch of views adds to the counts, written once at its end:
/// a view's pairing reads only the views and viewers tables, never these.
#[derive(Default)]
struct Counts {
    popularity: BTreeMap<String, (i64, i64)>,
    pairs: BTreeMap<(String, String), (i64, i64)>,
}

/// Records one view, and counts it and its co-views (when it pairs) in
/// `counts`; `(window, pair_with)` bound what it pairs with.
async fn record_view(
    tx: &mut PgConnection,
    view: &ProductView,
    (window, pair_with): (time::Duration, u32),
    counts: &mut Counts,
) -> StoreResult<()> {
    let id = view.product.as_str();
    counts.popularity.entry(id.to_owned()).or_default().1 += 1;
    let from = view.at - window;
    let pairing = match &view.pairing {
        Some(pairing) => {
            let paired: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM product_views WHERE client = $1 AND at >= $2",
            )
            .bind(&pairing.client)
            .bind(from)
            .fetch_one(&mut *tx)
            .await?;
            search_rules::view_may_pair(paired.unsigned_abs(), pairing.per_client)
                .then_some(pairing)
        }
        None => None,
    };
    let Some(ViewPairing {
        viewer: session,
        client,
        ..
    }) = pairing
    else {
        return Ok(());
    };
    // A product seen again within the window was paired the first time.
    let seen: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM product_views
             WHERE session = $1 AND product_id = $2 AND at >= $3)",
    )
    .bind(session)
    .bind(id)
    .bind(from)
    .fetch_one(&mut *tx)
    .await?;
    if !seen {
        let others: Vec<String> = sqlx::query_scalar(
            "SELECT product_id FROM product_views
             WHERE session = $1 AND at >= $2 AND product_id <> $3
             GROUP BY product_id ORDER BY max(at) DESC, product_id LIMIT $4",
        )
        .bind(session)
        .bind(from)
        .bind(id)
        .bind(i64::from(pair_with))
        .fetch_all(&mut *tx)
        .await?;
        for other in others {
            // One account counts once per pair, however often it views
            // the two: co-views are distinct viewers. The key's insert
            // decides it, so racing nodes count the viewer once.
            let (a, b) = if id < other.as_str() {
                (id, other.as_str())
            } else {
                (other.as_str(), id)
            };
            let first = sqlx::query(
                "INSERT INTO product_pair_viewers (product_id, other_id, viewer)
                 VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
            )
            .bind(a)
            .bind(b)
            .bind(session)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if first == 1 {
                count_pair(&mut counts.pairs, id, &other, (0, 1));
            }
        }
    }
    sqlx::query(
        "INSERT INTO product_views (session, product_id, at, client) VALUES ($1, $2, $3, $4)",
    )
    .bind(session)
    .bind(id)
    .bind(view.at)
    .bind(client)
    .execute(&mut *tx)
    .await?;
    Ok(())
}
