//! Products and categories in SQLite, and the batched upsert behind imports.
//!
//! A category filter matches a path and its subtree as one index range
//! (`furniture` covers `furniture` and `furniture/...`, because `/` sorts just
//! before `0`), so a category page never scans the catalog.

use std::collections::BTreeMap;

use async_trait::async_trait;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use shop_wire::Event;
use shop_wire::products::{Product, ProductId};

use super::audit;
use super::events::append_returning;
use super::filter::Filter;
use super::inventory::{import_stock, insert_stock};
use super::{SqliteStore, append, backend, conversion, from_millis, millis, parse_column};
use crate::services::products::domain::same_content;
use crate::store::AuditChange;
use crate::store::audit::snapshot;
use crate::store::{
    CatalogStore, DeletedEvents, ImportOutcome, ImportRow, InitialStock, MovementDraft, NewEvent,
    ProductChange, ProductDelete, ProductEvents, ProductKey, ProductOrder, ProductQuery,
    ProductStatus, ProductWrite, StockEvents, StoreError, StoreResult, now,
};

pub(super) const COLUMNS: &str = "id, sku, name, description, category, price_cents, currency, attributes, \
     images, active, version, created_at, updated_at, weight_grams, tax_category, requires_shipping";

pub(super) fn product_row(row: &Row<'_>) -> rusqlite::Result<Product> {
    let attributes: String = row.get("attributes")?;
    let images: String = row.get("images")?;
    Ok(Product {
        id: parse_column(row, "id")?,
        sku: row.get("sku")?,
        name: row.get("name")?,
        description: row.get("description")?,
        category: row.get("category")?,
        price_cents: row.get("price_cents")?,
        currency: parse_column(row, "currency")?,
        attributes: serde_json::from_str::<BTreeMap<String, String>>(&attributes)
            .map_err(conversion)?,
        images: serde_json::from_str(&images).map_err(conversion)?,
        active: row.get("active")?,
        weight_grams: row.get("weight_grams")?,
        tax_category: row.get("tax_category")?,
        requires_shipping: row.get("requires_shipping")?,
        version: row.get::<_, i64>("version")? as u64,
        created_at: from_millis(row.get("created_at")?)?,
        updated_at: from_millis(row.get("updated_at")?)?,
    })
}

fn json_text(value: &impl serde::Serialize) -> StoreResult<String> {
    serde_json::to_string(value).map_err(backend)
}

fn insert(tx: &Transaction<'_>, product: &Product) -> StoreResult<()> {
    tx.prepare_cached(&format!(
        "INSERT INTO products ({COLUMNS})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)"
    ))?
    .execute(params![
        product.id.as_str(),
        product.sku,
        product.name,
        product.description,
        product.category,
        product.price_cents,
        product.currency.code(),
        json_text(&product.attributes)?,
        json_text(&product.images)?,
        product.active,
        product.version as i64,
        millis(product.created_at),
        millis(product.updated_at),
        product.weight_grams,
        product.tax_category,
        product.requires_shipping,
    ])
    .map_err(|err| {
        if super::is_unique_violation(&err) {
            StoreError::Duplicate {
                entity: "product",
                field: "sku",
            }
        } else {
            err.into()
        }
    })?;
    Ok(())
}

/// Writes every mutable field of `product` if the stored row is at `expected`.
fn update(tx: &Transaction<'_>, product: &Product, expected: u64) -> StoreResult<bool> {
    let changed = tx
        .prepare_cached(
            "UPDATE products SET name = ?3, description = ?4, category = ?5, price_cents = ?6,
                    currency = ?7, attributes = ?8, images = ?9, active = ?10, version = ?11,
                    updated_at = ?12, weight_grams = ?13, tax_category = ?14,
                    requires_shipping = ?15
             WHERE id = ?1 AND version = ?2",
        )?
        .execute(params![
            product.id.as_str(),
            expected as i64,
            product.name,
            product.description,
            product.category,
            product.price_cents,
            product.currency.code(),
            json_text(&product.attributes)?,
            json_text(&product.images)?,
            product.active,
            product.version as i64,
            millis(product.updated_at),
            product.weight_grams,
            product.tax_category,
            product.requires_shipping,
        ])?;
    Ok(changed == 1)
}

fn find(conn: &Connection, key: &ProductKey) -> rusqlite::Result<Option<Product>> {
    match key {
        ProductKey::Id(id) => conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM products WHERE id = ?1"))?
            .query_row([id.as_str()], product_row)
            .optional(),
        ProductKey::Sku(sku) => conn
            .prepare_cached(&format!("SELECT {COLUMNS} FROM products WHERE sku = ?1"))?
            .query_row([sku], product_row)
            .optional(),
    }
}

/// The filter of a product query.
fn filter(query: &ProductQuery) -> Filter {
    let mut filter = Filter::default();
    let status = match query.status {
        ProductStatus::Active => "p.active = 1",
        ProductStatus::Archived => "p.active = 0",
        ProductStatus::All => "p.active IN (0, 1)",
    };
    filter.add(status, []);
    if let Some(category) = &query.category {
        // One index range from the path to everything under it; the OR only
        // drops lookalikes inside the range (`furniture-x` sorts before `furniture/`).
        filter.add(
            "p.category >= ? AND p.category < ? AND (p.category = ? OR p.category >= ?)",
            [
                category.clone(),
                format!("{category}0"),
                category.clone(),
                format!("{category}/"),
            ]
            .map(Value::from),
        );
    }
    filter.add_some("p.price_cents >= ?", query.min_price);
    filter.add_some("p.price_cents <= ?", query.max_price);
    filter.contains(&["p.sku", "p.name", "p.description"], query.text.as_deref());
    if let Some(in_stock) = query.in_stock {
        let not = if in_stock { "" } else { "NOT " };
        filter.add(
            &format!(
                "{not}EXISTS (SELECT 1 FROM stock s WHERE s.sku = p.sku AND s.on_hand > s.reserved)"
            ),
            [],
        );
    }
    filter
}

#[async_trait]
impl CatalogStore for SqliteStore {
    async fn insert_product(
        &self,
        product: &Product,
        stock: InitialStock,
        actor: Option<String>,
        events: Vec<NewEvent>,
    ) -> StoreResult<()> {
        let product = product.clone();
        self.write(move |tx| {
            insert(tx, &product)?;
            insert_stock(
                tx,
                &product.sku,
                stock,
                MovementDraft::initial(actor),
                product.created_at,
            )?;
            audit::record(
                tx,
                [AuditChange::diff(
                    "product.created",
                    "product",
                    product.id.as_str(),
                    serde_json::Value::Null,
                    snapshot(&product),
                )],
            )?;
            append(tx, events)?;
            Ok(())
        })
        .await
    }

    async fn product(&self, key: &ProductKey) -> StoreResult<Option<Product>> {
        let key = key.clone();
        self.read(move |conn| find(conn, &key)).await
    }

    async fn list_products(&self, query: &ProductQuery) -> StoreResult<(Vec<Product>, u64)> {
        let query = query.clone();
        self.read(move |conn| {
            let mut filter = filter(&query);
            let total = filter.count(conn, "FROM products p")?;
            let direction = if query.descending { "DESC" } else { "ASC" };
            // Ids are time-ordered, so creation order is id order: one index, no sort.
            let order = match query.order {
                ProductOrder::CreatedAt => format!("p.id {direction}"),
                ProductOrder::Price => format!("p.price_cents {direction}, p.id {direction}"),
                ProductOrder::Name => format!("p.name {direction}, p.id {direction}"),
            };
            let columns = COLUMNS
                .split(", ")
                .map(|c| format!("p.{c}"))
                .collect::<Vec<_>>()
                .join(", ");
            let clause = filter.sql();
            let limit = filter.limit((query.limit, query.offset));
            // The page's ids first (from an index where the filter allows),
            // then their rows: a sort moves ids, not whole products.
            let sql = format!(
                "SELECT {columns} FROM products p WHERE p.id IN
                    (SELECT p.id FROM products p {clause} ORDER BY {order} {limit})
                 ORDER BY {order}"
            );
            let products = filter.query(conn, &sql, product_row)?;
            Ok((products, total))
        })
        .await
    }

    async fn update_product(
        &self,
        product: &Product,
        expected_version: u64,
        events: Vec<NewEvent>,
    ) -> StoreResult<ProductWrite> {
        let product = product.clone();
        self.write(move |tx| {
            let before = find(tx, &ProductKey::Id(product.id.clone()))?;
            if update(tx, &product, expected_version)? {
                if let Some(before) = before {
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
                    )?;
                }
                append(tx, events)?;
                return Ok(ProductWrite::Written(Box::new(product)));
            }
            Ok(match find(tx, &ProductKey::Id(product.id.clone()))? {
                Some(current) => ProductWrite::VersionConflict {
                    current: current.version,
                },
                None => ProductWrite::NotFound,
            })
        })
        .await
    }

    async fn delete_product(
        &self,
        key: &ProductKey,
        events: DeletedEvents,
    ) -> StoreResult<ProductDelete> {
        let key = key.clone();
        self.write(move |tx| {
            let Some(product) = find(tx, &key)? else {
                return Ok(ProductDelete::NotFound);
            };
            let active: i64 = tx
                .prepare_cached(
                    "SELECT count(*) FROM reservations WHERE sku = ?1 AND status = 'active'",
                )?
                .query_row([&product.sku], |row| row.get(0))?;
            if active > 0 {
                return Ok(ProductDelete::InUse {
                    active_reservations: active as u64,
                });
            }
            let orders: i64 = tx
                .prepare_cached("SELECT count(DISTINCT order_id) FROM order_items WHERE sku = ?1")?
                .query_row([&product.sku], |row| row.get(0))?;
            if orders > 0 {
                return Ok(ProductDelete::Ordered {
                    orders: orders as u64,
                });
            }
            // Lines of carts that ended (expired, merged) still name their old holds.
            tx.prepare_cached("DELETE FROM cart_items WHERE sku = ?1")?
                .execute([&product.sku])?;
            tx.prepare_cached("DELETE FROM reservations WHERE sku = ?1")?
                .execute([&product.sku])?;
            // The stock row and its ledger go with the product (ON DELETE CASCADE).
            tx.prepare_cached("DELETE FROM products WHERE id = ?1")?
                .execute([product.id.as_str()])?;
            audit::record(
                tx,
                [AuditChange::diff(
                    "product.deleted",
                    "product",
                    product.id.as_str(),
                    snapshot(&product),
                    serde_json::Value::Null,
                )],
            )?;
            append(tx, events(&product))?;
            Ok(ProductDelete::Deleted(Box::new(product)))
        })
        .await
    }

    async fn category_counts(&self) -> StoreResult<Vec<(String, u64)>> {
        self.read(|conn| {
            conn.prepare_cached(
                "SELECT category, count(*) FROM products
                 WHERE active = 1 AND category IS NOT NULL GROUP BY category ORDER BY category",
            )?
            .query_map([], |row| Ok((row.get(0)?, row.get::<_, i64>(1)? as u64)))?
            .collect()
        })
        .await
    }

    async fn import_products(
        &self,
        rows: Vec<ImportRow>,
        default_threshold: i64,
        actor: Option<String>,
        dry_run: bool,
        events: (ProductEvents, StockEvents),
    ) -> StoreResult<(Vec<ImportOutcome>, Vec<Event>)> {
        self.write_alone(move |tx| {
            if dry_run {
                tx.execute_batch("SAVEPOINT dry_run")?;
            }
            let mut outcomes = Vec::with_capacity(rows.len());
            let mut pending = Vec::new();
            for row in rows {
                let (outcome, row_events) =
                    import_row(tx, row, default_threshold, actor.clone(), events)?;
                pending.extend(row_events);
                outcomes.push(outcome);
            }
            if dry_run {
                // Everything the rows did is undone: a dry run writes nothing.
                tx.execute_batch("ROLLBACK TO dry_run; RELEASE dry_run")?;
                return Ok((outcomes, Vec::new()));
            }
            Ok((outcomes, append_returning(tx, pending)?))
        })
        .await
    }

    async fn products_after(
        &self,
        after: Option<ProductId>,
        status: ProductStatus,
        batch: u32,
    ) -> StoreResult<Vec<Product>> {
        self.read(move |conn| {
            let active = match status {
                ProductStatus::Active => "active = 1",
                ProductStatus::Archived => "active = 0",
                ProductStatus::All => "active IN (0, 1)",
            };
            conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM products WHERE id > ?1 AND {active} ORDER BY id LIMIT ?2"
            ))?
            .query_map(
                params![after.as_ref().map_or("", ProductId::as_str), batch],
                product_row,
            )?
            .collect()
        })
        .await
    }
}

/// Upserts one import row inside the batch's transaction.
fn import_row(
    tx: &Transaction<'_>,
    row: ImportRow,
    default_threshold: i64,
    actor: Option<String>,
    (product_events, stock_events): (ProductEvents, StockEvents),
) -> StoreResult<(ImportOutcome, Vec<NewEvent>)> {
    let at = now();
    let stored = find(tx, &ProductKey::Sku(row.product.sku.clone()))?;
    let Some(stored) = stored else {
        let mut product = row.product;
        product.version = 1;
        product.created_at = at;
        product.updated_at = at;
        insert(tx, &product)?;
        insert_stock(
            tx,
            &product.sku,
            InitialStock {
                on_hand: row.stock.unwrap_or(0),
                low_stock_threshold: row.low_stock_threshold.unwrap_or(default_threshold),
            },
            MovementDraft::import(actor),
            at,
        )?;
        audit::record(
            tx,
            [AuditChange::diff(
                "product.created",
                "product",
                product.id.as_str(),
                serde_json::Value::Null,
                snapshot(&product),
            )],
        )?;
        let events = product_events(ProductChange::Created, &product);
        return Ok((ImportOutcome::Created, events));
    };
    let mut events = Vec::new();
    match import_stock(
        tx,
        &stored.sku,
        row.existing_stock,
        row.low_stock_threshold,
        MovementDraft::import(actor),
    )? {
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
    if !update(tx, &product, stored.version)? {
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
    )?;
    events.extend(product_events(ProductChange::Updated, &product));
    Ok((ImportOutcome::Updated, events))
}
