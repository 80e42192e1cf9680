//! Products and categories in PostgreSQL, and the upsert behind imports.
//!
//! A category filter matches a path and its subtree (`furniture` covers
//! `furniture` and `furniture/...`, not `furniture-x`) as an equality or a
//! `LIKE 'furniture/%'` prefix, both of which the `text_pattern_ops` index
//! serves whatever the database's collation.

use std::collections::BTreeSet;

use async_trait::async_trait;
use shop_wire::Event;
use shop_wire::products::{Product, ProductId};
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, PgConnection, Row};

use super::filter::Filter;
use super::inventory::{import_stock, insert_stock};
use super::{PgStore, audit, backend, parse};
use crate::services::products::domain::same_content;
use crate::store::audit::snapshot;
use crate::store::{
    AuditChange, CatalogStore, DeletedEvents, ImportOutcome, ImportRow, InitialStock,
    MovementDraft, NewEvent, ProductChange, ProductDelete, ProductEvents, ProductKey, ProductOrder,
    ProductQuery, ProductStatus, ProductWrite, StockEvents, StoreError, StoreResult, escape_like,
    now,
};

/// A product's columns from `products p`, the JSON ones as text.
pub(super) const COLUMNS: &str = "p.id, p.sku, p.name, p.description, p.category, p.price_cents, p.currency, \
     p.attributes::text AS attributes, p.images::text AS images, p.active, p.version, \
     p.created_at, p.updated_at, p.weight_grams, p.tax_category, p.requires_shipping";

pub(super) fn product_row(row: &PgRow) -> StoreResult<Product> {
    let attributes: String = row.try_get("attributes")?;
    let images: String = row.try_get("images")?;
    Ok(Product {
        id: parse(row, "id")?,
        sku: row.try_get("sku")?,
        name: row.try_get("name")?,
        description: row.try_get("description")?,
        category: row.try_get("category")?,
        price_cents: row.try_get("price_cents")?,
        currency: parse(row, "currency")?,
        attributes: serde_json::from_str(&attributes).map_err(backend)?,
        images: serde_json::from_str(&images).map_err(backend)?,
        active: row.try_get("active")?,
        weight_grams: row.try_get("weight_grams")?,
        tax_category: row.try_get("tax_category")?,
        requires_shipping: row.try_get("requires_shipping")?,
        version: row.try_get::<i64, _>("version")? as u64,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn json_text(value: &impl serde::Serialize) -> StoreResult<String> {
    serde_json::to_string(value).map_err(backend)
}

async fn insert(tx: &mut PgConnection, product: &Product) -> StoreResult<()> {
    sqlx::query(
        "INSERT INTO products (id, sku, name, description, category, price_cents, currency,
             attributes, images, active, version, created_at, updated_at, weight_grams,
             tax_category, requires_shipping)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9::jsonb, $10, $11, $12, $13, $14,
             $15, $16)",
    )
    .bind(product.id.as_str())
    .bind(&product.sku)
    .bind(&product.name)
    .bind(&product.description)
    .bind(&product.category)
    .bind(product.price_cents)
    .bind(product.currency.code())
    .bind(json_text(&product.attributes)?)
    .bind(json_text(&product.images)?)
    .bind(product.active)
    .bind(product.version as i64)
    .bind(product.created_at)
    .bind(product.updated_at)
    .bind(product.weight_grams)
    .bind(&product.tax_category)
    .bind(product.requires_shipping)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Writes every mutable field of `product` if the stored row is at `expected`.
async fn update(tx: &mut PgConnection, product: &Product, expected: u64) -> StoreResult<bool> {
    let changed = sqlx::query(
        "UPDATE products SET name = $3, description = $4, category = $5, price_cents = $6,
                currency = $7, attributes = $8::jsonb, images = $9::jsonb, active = $10,
                version = $11, updated_at = $12, weight_grams = $13, tax_category = $14,
                requires_shipping = $15
         WHERE id = $1 AND version = $2",
    )
    .bind(product.id.as_str())
    .bind(expected as i64)
    .bind(&product.name)
    .bind(&product.description)
    .bind(&product.category)
    .bind(product.price_cents)
    .bind(product.currency.code())
    .bind(json_text(&product.attributes)?)
    .bind(json_text(&product.images)?)
    .bind(product.active)
    .bind(product.version as i64)
    .bind(product.updated_at)
    .bind(product.weight_grams)
    .bind(&product.tax_category)
    .bind(product.requires_shipping)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    Ok(changed == 1)
}

/// A product by id or SKU; `lock` holds its row for this transaction.
async fn find(
    conn: &mut PgConnection,
    key: &ProductKey,
    lock: bool,
) -> StoreResult<Option<Product>> {
    let (column, value) = match key {
        ProductKey::Id(id) => ("id", id.as_str()),
        ProductKey::Sku(sku) => ("sku", sku.as_str()),
    };
    let lock = if lock { " FOR UPDATE" } else { "" };
    let sql = format!("SELECT {COLUMNS} FROM products p WHERE p.{column} = $1{lock}");
    sqlx::query(AssertSqlSafe(sql))
        .bind(value)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(product_row)
        .transpose()
}

/// `select` filtered by a product query.
fn filter(select: &str, query: &ProductQuery) -> Filter {
    let mut filter = Filter::new(select);
    match query.status {
        ProductStatus::Active => {
            filter.and().push("p.active");
        }
        ProductStatus::Archived => {
            filter.and().push("NOT p.active");
        }
        ProductStatus::All => {}
    }
    if let Some(category) = &query.category {
        filter
            .and()
            .push("(p.category = ")
            .push_bind(category.clone())
            .push(" OR p.category LIKE ")
            .push_bind(format!("{}/%", escape_like(category)))
            .push(" ESCAPE '\\')");
    }
    filter.add_some("p.price_cents >= ", query.min_price);
    filter.add_some("p.price_cents <= ", query.max_price);
    filter.contains(&["p.sku", "p.name", "p.description"], query.text.as_deref());
    if let Some(in_stock) = query.in_stock {
        let not = if in_stock { "" } else { "NOT " };
        filter.and().push(format_args!(
            "{not}EXISTS (SELECT 1 FROM stock s WHERE s.sku = p.sku AND s.on_hand > s.reserved)"
        ));
    }
    filter
}

#[async_trait]
impl CatalogStore for PgStore {
    async fn insert_product(
        &self,
        product: &Product,
        stock: InitialStock,
        actor: Option<String>,
        events: Vec<NewEvent>,
    ) -> StoreResult<()> {
        self.write(move |tx| {
            let (product, actor, events) = (product.clone(), actor.clone(), events.clone());
            Box::pin(async move {
                insert(tx, &product).await?;
                let draft = MovementDraft::initial(actor);
                insert_stock(tx, &product.sku, stock, draft, product.created_at).await?;
                audit::record(
                    tx,
                    [AuditChange::diff(
                        "product.created",
                        "product",
                        product.id.as_str(),
                        serde_json::Value::Null,
                        snapshot(&product),
                    )],
                )
                .await?;
                Ok(((), events))
            })
        })
        .await?;
        Ok(())
    }

    async fn product(&self, key: &ProductKey) -> StoreResult<Option<Product>> {
        let mut conn = self.pool.acquire().await?;
        find(&mut conn, key, false).await
    }

    async fn list_products(&self, query: &ProductQuery) -> StoreResult<(Vec<Product>, u64)> {
        let total: i64 = filter("SELECT count(*) FROM products p", query)
            .query()
            .build_query_scalar()
            .fetch_one(&self.pool)
            .await?;
        let direction = if query.descending { "DESC" } else { "ASC" };
        // Ids are time-ordered, so creation order is id order.
        let order = match query.order {
            ProductOrder::CreatedAt => format!("p.id {direction}"),
            ProductOrder::Price => format!("p.price_cents {direction}, p.id {direction}"),
            ProductOrder::Name => format!("p.name {direction}, p.id {direction}"),
        };
        let products = filter(&format!("SELECT {COLUMNS} FROM products p"), query)
            .page(&order, (query.limit, query.offset))
            .build()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(product_row)
            .collect::<StoreResult<_>>()?;
        Ok((products, total as u64))
    }

    async fn update_product(
        &self,
        product: &Product,
        expected_version: u64,
        events: Vec<NewEvent>,
    ) -> StoreResult<ProductWrite> {
        let (write, _) = self
            .write(move |tx| {
                let (product, events) = (product.clone(), events.clone());
                Box::pin(async move {
                    // Locked, so the audit's before is the version this update replaces.
                    let before = find(tx, &ProductKey::Id(product.id.clone()), true).await?;
                    let Some(before) = before else {
                        return Ok((ProductWrite::NotFound, Vec::new()));
                    };
                    if !update(tx, &product, expected_version).await? {
                        let conflict = ProductWrite::VersionConflict {
                            current: before.version,
                        };
                        return Ok((conflict, Vec::new()));
                    }
                    let action = if before.active && !product.active {
                        "product.archived"
                    } else {
                        "product.updated"
                    };
                    audit::record(
                        tx,
                        [AuditChange::diff(
                            action,
                            "product",
                            product.id.as_str(),
                            snapshot(&before),
                            snapshot(&product),
                        )],
                    )
                    .await?;
                    Ok((ProductWrite::Written(Box::new(product)), events))
                })
            })
            .await?;
        Ok(write)
    }

    async fn delete_product(
        &self,
        key: &ProductKey,
        events: DeletedEvents,
    ) -> StoreResult<ProductDelete> {
        let (deleted, _) = self
            .write(move |tx| {
                let key = key.clone();
                Box::pin(async move {
                    let Some(product) = find(tx, &key, true).await? else {
                        return Ok((ProductDelete::NotFound, Vec::new()));
                    };
                    // A reservation is made under its stock row's lock: holding
                    // it, none can start between this count and the delete.
                    sqlx::query("SELECT 1 FROM stock WHERE sku = $1 FOR UPDATE")
                        .bind(&product.sku)
                        .execute(&mut *tx)
                        .await?;
                    let active: i64 = sqlx::query_scalar(
                        "SELECT count(*) FROM reservations WHERE sku = $1 AND status = 'active'",
                    )
                    .bind(&product.sku)
                    .fetch_one(&mut *tx)
                    .await?;
                    if active > 0 {
                        let in_use = ProductDelete::InUse {
                            active_reservations: active as u64,
                        };
                        return Ok((in_use, Vec::new()));
                    }
                    // An order's lines are written with their reservations,
                    // under the same lock: none can appear after this count.
                    let orders: i64 = sqlx::query_scalar(
                        "SELECT count(DISTINCT order_id) FROM order_items WHERE sku = $1",
                    )
                    .bind(&product.sku)
                    .fetch_one(&mut *tx)
                    .await?;
                    if orders > 0 {
                        let ordered = ProductDelete::Ordered {
                            orders: orders as u64,
                        };
                        return Ok((ordered, Vec::new()));
                    }
                    // Lines of carts that ended (expired, merged) still name their old holds.
                    sqlx::query("DELETE FROM cart_items WHERE sku = $1")
                        .bind(&product.sku)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("DELETE FROM reservations WHERE sku = $1")
                        .bind(&product.sku)
                        .execute(&mut *tx)
                        .await?;
                    // The stock row and its ledger go with the product (ON DELETE CASCADE).
                    sqlx::query("DELETE FROM products WHERE id = $1")
                        .bind(product.id.as_str())
                        .execute(&mut *tx)
                        .await?;
                    audit::record(
                        tx,
                        [AuditChange::diff(
                            "product.deleted",
                            "product",
                            product.id.as_str(),
                            snapshot(&product),
                            serde_json::Value::Null,
                        )],
                    )
                    .await?;
                    let pending = events(&product);
                    Ok((ProductDelete::Deleted(Box::new(product)), pending))
                })
            })
            .await?;
        Ok(deleted)
    }

    async fn category_counts(&self) -> StoreResult<Vec<(String, u64)>> {
        let counts: Vec<(String, i64)> = sqlx::query_as(
            "SELECT category, count(*) FROM products
             WHERE active AND category IS NOT NULL GROUP BY category ORDER BY category",
        )
        .fetch_all(&self.pool)
        .await?;
        Ok(counts
            .into_iter()
            .map(|(category, count)| (category, count as u64))
            .collect())
    }

    async fn import_products(
        &self,
        rows: Vec<ImportRow>,
        default_threshold: i64,
        actor: Option<String>,
        dry_run: bool,
        events: (ProductEvents, StockEvents),
    ) -> StoreResult<(Vec<ImportOutcome>, Vec<Event>)> {
        let (outcomes, logged) = self
            .write(move |tx| {
                let (rows, actor) = (rows.clone(), actor.clone());
                Box::pin(async move {
                    // The rows of the SKUs that exist, locked in SKU order
                    // (products, then stock, as every other change takes
                    // them), so imports racing over the same SKUs queue
                    // rather than deadlock.
                    let skus: BTreeSet<&str> =
                        rows.iter().map(|r| r.product.sku.as_str()).collect();
                    let skus: Vec<&str> = skus.into_iter().collect();
                    sqlx::query(
                        "SELECT 1 FROM products WHERE sku = ANY($1) ORDER BY sku FOR UPDATE",
                    )
                    .bind(&skus)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query("SELECT 1 FROM stock WHERE sku = ANY($1) ORDER BY sku FOR UPDATE")
                        .bind(&skus)
                        .execute(&mut *tx)
                        .await?;
                    if dry_run {
                        sqlx::query("SAVEPOINT dry_run").execute(&mut *tx).await?;
                    }
                    let mut outcomes = Vec::with_capacity(rows.len());
                    let mut pending = Vec::new();
                    for row in rows {
                        let (outcome, row_events) =
                            import_row(tx, row, default_threshold, actor.clone(), events).await?;
                        pending.extend(row_events);
                        outcomes.push(outcome);
                    }
                    if dry_run {
                        // Everything the rows did is undone: a dry run writes nothing.
                        sqlx::query("ROLLBACK TO SAVEPOINT dry_run")
                            .execute(&mut *tx)
                            .await?;
                        return Ok((outcomes, Vec::new()));
                    }
                    Ok((outcomes, pending))
                })
            })
            .await?;
        Ok((outcomes, logged))
    }

    async fn products_after(
        &self,
        after: Option<ProductId>,
        status: ProductStatus,
        batch: u32,
    ) -> StoreResult<Vec<Product>> {
        let active = match status {
            ProductStatus::Active => "AND p.active",
            ProductStatus::Archived => "AND NOT p.active",
            ProductStatus::All => "",
        };
        let sql = format!(
            "SELECT {COLUMNS} FROM products p WHERE p.id > $1 {active} ORDER BY p.id LIMIT $2"
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(after.as_ref().map_or("", ProductId::as_str))
            .bind(i64::from(batch))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(product_row)
            .collect()
    }
}

/// Upserts one import row inside the batch's transaction.
async fn import_row(
    tx: &mut PgConnection,
    row: ImportRow,
    default_threshold: i64,
    actor: Option<String>,
    (product_events, stock_events): (ProductEvents, StockEvents),
) -> StoreResult<(ImportOutcome, Vec<NewEvent>)> {
    let at = now();
    let stored = find(tx, &ProductKey::Sku(row.product.sku.clone()), false).await?;
    let Some(stored) = stored else {
        let mut product = row.product;
        product.version = 1;
        product.created_at = at;
        product.updated_at = at;
        insert(tx, &product).await?;
        let initial = InitialStock {
            on_hand: row.stock.unwrap_or(0),
            low_stock_threshold: row.low_stock_threshold.unwrap_or(default_threshold),
        };
        insert_stock(tx, &product.sku, initial, MovementDraft::import(actor), at).await?;
        audit::record(
            tx,
            [AuditChange::diff(
                "product.created",
                "product",
                product.id.as_str(),
                serde_json::Value::Null,
                snapshot(&product),
            )],
        )
        .await?;
        let events = product_events(ProductChange::Created, &product);
        return Ok((ImportOutcome::Created, events));
    };
    let mut events = Vec::new();
    let draft = MovementDraft::import(actor);
    match import_stock(
        tx,
        &stored.sku,
        row.existing_stock,
        row.low_stock_threshold,
        draft,
    )
    .await?
    {
        Ok(Some(effect)) => events.extend(stock_events(&effect)),
        Ok(None) => {}
        Err(reason) => return Ok((ImportOutcome::Failed(reason), Vec::new())),
    }
    if same_content(&stored, &row.product) {
        let outcome = if events.is_empty() {
            ImportOutcome::Unchanged
        } else {
            ImportOutcome::Updated
        };
        return Ok((outcome, events));
    }
    let product = Product {
        id: stored.id.clone(),
        version: stored.version + 1,
        created_at: stored.created_at,
        updated_at: at,
        ..row.product
    };
    if !update(tx, &product, stored.version).await? {
        return Err(StoreError::Backend(
            "a product changed inside the import's own transaction".into(),
        ));
    }
    audit::record(
        tx,
        [AuditChange::diff(
            "product.updated",
            "product",
            product.id.as_str(),
            snapshot(&stored),
            snapshot(&product),
        )],
    )
    .await?;
    events.extend(product_events(ProductChange::Updated, &product));
    Ok((ImportOutcome::Updated, events))
}
