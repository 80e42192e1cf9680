//! Shipping zones, tax rates, discounts and the pricing facts of products
//! in PostgreSQL.
//!
//! The uniqueness rules (a country in one zone, one rate per scope, one
//! discount per code) are unique constraints, which hold when inserts race:
//! the second waits for the first and fails if it committed. A discount's
//! use is claimed with a guarded increment of its row; the row lock that
//! increment takes makes racing claims of one discount queue, so the
//! per-customer count read after it sees every use committed before.

use async_trait::async_trait;
use shop_wire::cart::CartId;
use shop_wire::pricing::{Discount, DiscountId, ShippingZone, ShippingZoneId, TaxRate, TaxRateId};
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, PgConnection, Row};

use super::{PgStore, audit, backend, parse};
use crate::store::audit::snapshot;
use crate::store::{
    AuditChange, ClaimRefusal, DiscountKey, DiscountUse, NewEvent, PricingContext, PricingQuery,
    PricingStore, ProductFacts, StoreResult,
};

const ZONE_COLUMNS: &str = "z.id, z.name, z.currency, z.methods::text AS methods, z.created_at,
     (SELECT coalesce(json_agg(c.country ORDER BY c.country), '[]')::text
      FROM shipping_zone_countries c WHERE c.zone_id = z.id) AS countries";

const RATE_COLUMNS: &str = "id, country, region, name, rate_bps, tax_category, created_at";

const DISCOUNT_COLUMNS: &str = "d.id, d.code, d.kind, d.value, d.currency, d.min_subtotal_cents, \
     d.starts_at, d.ends_at, d.usage_limit, d.per_customer_limit, d.automatic, d.active, \
     d.times_used, d.created_at";

fn zone_row(row: &PgRow) -> StoreResult<ShippingZone> {
    let methods: String = row.try_get("methods")?;
    let countries: String = row.try_get("countries")?;
    Ok(ShippingZone {
        id: parse(row, "id")?,
        name: row.try_get("name")?,
        countries: serde_json::from_str(&countries).map_err(backend)?,
        currency: parse(row, "currency")?,
        methods: serde_json::from_str(&methods).map_err(backend)?,
        created_at: row.try_get("created_at")?,
    })
}

fn rate_row(row: &PgRow) -> StoreResult<TaxRate> {
    Ok(TaxRate {
        id: parse(row, "id")?,
        country: row.try_get("country")?,
        region: row.try_get("region")?,
        name: row.try_get("name")?,
        rate_bps: u32::try_from(row.try_get::<i64, _>("rate_bps")?).map_err(backend)?,
        tax_category: row.try_get("tax_category")?,
        created_at: row.try_get("created_at")?,
    })
}

fn discount_row(row: &PgRow) -> StoreResult<Discount> {
    Ok(Discount {
        id: parse(row, "id")?,
        code: row.try_get("code")?,
        kind: parse(row, "kind")?,
        value: row.try_get("value")?,
        currency: row
            .try_get::<Option<String>, _>("currency")?
            .map(|c| {
                c.parse()
                    .map_err(|e: String| backend(std::io::Error::other(e)))
            })
            .transpose()?,
        min_subtotal_cents: row.try_get("min_subtotal_cents")?,
        starts_at: row.try_get("starts_at")?,
        ends_at: row.try_get("ends_at")?,
        usage_limit: row.try_get("usage_limit")?,
        per_customer_limit: row.try_get("per_customer_limit")?,
        automatic: row.try_get("automatic")?,
        active: row.try_get("active")?,
        times_used: row.try_get("times_used")?,
        created_at: row.try_get("created_at")?,
    })
}

async fn find_zone(
    conn: &mut PgConnection,
    id: &ShippingZoneId,
) -> StoreResult<Option<ShippingZone>> {
    let sql = format!("SELECT {ZONE_COLUMNS} FROM shipping_zones z WHERE z.id = $1");
    sqlx::query(AssertSqlSafe(sql))
        .bind(id.as_str())
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(zone_row)
        .transpose()
}

async fn find_rate(conn: &mut PgConnection, id: &TaxRateId) -> StoreResult<Option<TaxRate>> {
    let sql = format!("SELECT {RATE_COLUMNS} FROM tax_rates WHERE id = $1");
    sqlx::query(AssertSqlSafe(sql))
        .bind(id.as_str())
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(rate_row)
        .transpose()
}

/// A discount by id or code; `lock` holds its row for this transaction.
async fn find_discount(
    conn: &mut PgConnection,
    key: &DiscountKey,
    lock: bool,
) -> StoreResult<Option<Discount>> {
    let (filter, value) = match key {
        DiscountKey::Id(id) => ("d.id = $1", id.to_string()),
        DiscountKey::Code(code) => ("d.code = $1", code.trim().to_uppercase()),
    };
    let lock = if lock { " FOR UPDATE" } else { "" };
    let sql = format!("SELECT {DISCOUNT_COLUMNS} FROM discounts d WHERE {filter}{lock}");
    sqlx::query(AssertSqlSafe(sql))
        .bind(value)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(discount_row)
        .transpose()
}

/// The audit entry of a row just written, as `ENTITY.created`.
fn created<T: serde::Serialize>(entity: &'static str, id: &str, row: &T) -> AuditChange {
    AuditChange::diff(
        format!("{entity}.created"),
        entity,
        id,
        serde_json::Value::Null,
        snapshot(row),
    )
}

/// Deletes the row `id` of `table` that was `found` (`None`: there was
/// none, and nothing happens), logging it as `ENTITY.deleted`; answers it
/// with the events `events` makes of it.
async fn delete_found<T: serde::Serialize>(
    tx: &mut PgConnection,
    (table, entity): (&str, &'static str),
    id: &str,
    found: Option<T>,
    events: for<'a> fn(&'a T) -> Vec<NewEvent>,
) -> StoreResult<(Option<T>, Vec<NewEvent>)> {
    let Some(found) = found else {
        return Ok((None, Vec::new()));
    };
    sqlx::query(AssertSqlSafe(format!("DELETE FROM {table} WHERE id = $1")))
        .bind(id)
        .execute(&mut *tx)
        .await?;
    audit::record(
        tx,
        [AuditChange::diff(
            format!("{entity}.deleted"),
            entity,
            id,
            snapshot(&found),
            serde_json::Value::Null,
        )],
    )
    .await?;
    let events = events(&found);
    Ok((Some(found), events))
}

/// The codes applied to a cart, in the order they were applied.
pub(super) async fn cart_codes(conn: &mut PgConnection, cart: &str) -> StoreResult<Vec<String>> {
    Ok(
        sqlx::query_scalar("SELECT code FROM cart_discounts WHERE cart_id = $1 ORDER BY applied")
            .bind(cart)
            .fetch_all(conn)
            .await?,
    )
}

/// Everything `query` prices by.
async fn read_context(
    conn: &mut PgConnection,
    query: &PricingQuery,
) -> StoreResult<PricingContext> {
    let products = sqlx::query(
        "SELECT sku, price_cents, currency, active, weight_grams, tax_category, requires_shipping
         FROM products WHERE sku = ANY($1)",
    )
    .bind(&query.skus)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|row| {
        Ok(ProductFacts {
            sku: row.try_get("sku")?,
            price_cents: row.try_get("price_cents")?,
            currency: parse(row, "currency")?,
            active: row.try_get("active")?,
            weight_grams: row.try_get("weight_grams")?,
            tax_category: row.try_get("tax_category")?,
            requires_shipping: row.try_get("requires_shipping")?,
        })
    })
    .collect::<StoreResult<_>>()?;
    let sql = format!("SELECT {ZONE_COLUMNS} FROM shipping_zones z ORDER BY z.id");
    let zones = sqlx::query(AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(zone_row)
        .collect::<StoreResult<_>>()?;
    let sql = format!("SELECT {RATE_COLUMNS} FROM tax_rates ORDER BY id");
    let rates = sqlx::query(AssertSqlSafe(sql))
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(rate_row)
        .collect::<StoreResult<_>>()?;
    let cart_codes = match &query.cart {
        Some(cart) => cart_codes(conn, cart.as_str()).await?,
        None => Vec::new(),
    };
    let codes: Vec<String> = query
        .codes
        .iter()
        .map(|code| code.trim().to_uppercase())
        .chain(cart_codes.iter().cloned())
        .collect();
    let sql = format!(
        "SELECT {DISCOUNT_COLUMNS},
             CASE WHEN d.per_customer_limit IS NULL THEN 0
                  ELSE (SELECT count(*) FROM discount_uses u
                        WHERE u.discount_id = d.id AND u.customer_email = $2 AND NOT u.released)
             END AS customer_uses
         FROM discounts d
         WHERE d.code = ANY($1) OR d.automatic"
    );
    let discounts = sqlx::query(AssertSqlSafe(sql))
        .bind(codes)
        .bind(&query.customer_email)
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|row| {
            Ok(DiscountUse {
                discount: discount_row(row)?,
                customer_uses: row.try_get("customer_uses")?,
            })
        })
        .collect::<StoreResult<_>>()?;
    Ok(PricingContext {
        products,
        zones,
        rates,
        discounts,
        cart_codes,
    })
}

/// Claims one use of each of `discounts` for an order, in its transaction:
/// a guarded increment (never past `usage_limit`, never of a disabled one)
/// and a guarded use row (never past `per_customer_limit` for the
/// customer). When one cannot be claimed, nothing stays claimed: the caller
/// refuses the order and its transaction rolls back, but the claims taken
/// before are given back here too, so the answer does not depend on that.
pub(super) async fn claim_discounts(
    tx: &mut PgConnection,
    order: &str,
    customer: &str,
    discounts: &[Discount],
) -> StoreResult<Result<(), ClaimRefusal>> {
    for (claimed, discount) in discounts.iter().enumerate() {
        let id = discount.id.as_str();
        let counted = sqlx::query(
            "UPDATE discounts SET times_used = times_used + 1
             WHERE id = $1 AND active AND (usage_limit IS NULL OR times_used < usage_limit)",
        )
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let refusal = if counted == 0 {
            Some(ClaimRefusal::LimitReached(discount.id.clone()))
        } else {
            // The increment holds this discount's row: the count below
            // sees every use of it committed before.
            let recorded = sqlx::query(
                "INSERT INTO discount_uses (discount_id, order_id, customer_email)
                 SELECT $1, $2, $3
                 WHERE $4::bigint IS NULL
                    OR (SELECT count(*) FROM discount_uses
                        WHERE discount_id = $1 AND customer_email = $3 AND NOT released) < $4",
            )
            .bind(id)
            .bind(order)
            .bind(customer)
            .bind(discount.per_customer_limit)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if recorded == 0 {
                unclaim(tx, order, &discounts[claimed..=claimed]).await?;
                Some(ClaimRefusal::CustomerLimitReached(discount.id.clone()))
            } else {
                None
            }
        };
        if let Some(refusal) = refusal {
            unclaim(tx, order, &discounts[..claimed]).await?;
            return Ok(Err(refusal));
        }
    }
    Ok(Ok(()))
}

async fn unclaim(tx: &mut PgConnection, order: &str, discounts: &[Discount]) -> StoreResult<()> {
    for discount in discounts {
        sqlx::query("UPDATE discounts SET times_used = times_used - 1 WHERE id = $1")
            .bind(discount.id.as_str())
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM discount_uses WHERE discount_id = $1 AND order_id = $2")
            .bind(discount.id.as_str())
            .bind(order)
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// Gives back the uses an order claimed, once: a second call finds them
/// given back and changes nothing. The caller holds the order's row, so
/// two releases of one order never both find its uses unreleased.
pub(super) async fn release_discounts(tx: &mut PgConnection, order: &str) -> StoreResult<()> {
    sqlx::query(
        "WITH released AS (
             UPDATE discount_uses SET released = true
             WHERE order_id = $1 AND NOT released RETURNING discount_id)
         UPDATE discounts SET times_used = times_used - 1
         WHERE id IN (SELECT discount_id FROM released)",
    )
    .bind(order)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

#[async_trait]
impl PricingStore for PgStore {
    async fn pricing_context(&self, query: PricingQuery) -> StoreResult<PricingContext> {
        // One snapshot, so zones, rates, prices and discounts are of one moment.
        let mut tx = self.pool.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            .execute(&mut *tx)
            .await?;
        let context = read_context(&mut tx, &query).await?;
        tx.commit().await?;
        Ok(context)
    }

    async fn insert_shipping_zone(
        &self,
        zone: &ShippingZone,
        events: Vec<NewEvent>,
    ) -> StoreResult<()> {
        self.write(move |tx| {
            let (zone, events) = (zone.clone(), events.clone());
            Box::pin(async move {
                sqlx::query(
                    "INSERT INTO shipping_zones (id, name, currency, methods, created_at)
                     VALUES ($1, $2, $3, $4::jsonb, $5)",
                )
                .bind(zone.id.as_str())
                .bind(&zone.name)
                .bind(zone.currency.code())
                .bind(serde_json::to_string(&zone.methods).map_err(backend)?)
                .bind(zone.created_at)
                .execute(&mut *tx)
                .await?;
                // A country another zone has is a unique violation of
                // `shipping_zone_countries_pkey`: `Duplicate` on `country`.
                sqlx::query(
                    "INSERT INTO shipping_zone_countries (country, zone_id)
                     SELECT country, $2 FROM unnest($1::text[]) AS country",
                )
                .bind(&zone.countries)
                .bind(zone.id.as_str())
                .execute(&mut *tx)
                .await?;
                audit::record(tx, [created("shipping_zone", zone.id.as_str(), &zone)]).await?;
                Ok(((), events))
            })
        })
        .await?;
        Ok(())
    }

    async fn delete_shipping_zone(
        &self,
        id: &ShippingZoneId,
        events: for<'a> fn(&'a ShippingZone) -> Vec<NewEvent>,
    ) -> StoreResult<Option<ShippingZone>> {
        let (deleted, _) = self
            .write(move |tx| {
                let id = id.clone();
                Box::pin(async move {
                    let found = find_zone(tx, &id).await?;
                    let table = ("shipping_zones", "shipping_zone");
                    delete_found(tx, table, id.as_str(), found, events).await
                })
            })
            .await?;
        Ok(deleted)
    }

    async fn insert_tax_rate(&self, rate: &TaxRate, events: Vec<NewEvent>) -> StoreResult<()> {
        self.write(move |tx| {
            let (rate, events) = (rate.clone(), events.clone());
            Box::pin(async move {
                // A taken scope is a unique violation of `tax_rates_scope`.
                let sql = format!(
                    "INSERT INTO tax_rates ({RATE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)"
                );
                sqlx::query(AssertSqlSafe(sql))
                    .bind(rate.id.as_str())
                    .bind(&rate.country)
                    .bind(&rate.region)
                    .bind(&rate.name)
                    .bind(i64::from(rate.rate_bps))
                    .bind(&rate.tax_category)
                    .bind(rate.created_at)
                    .execute(&mut *tx)
                    .await?;
                audit::record(tx, [created("tax_rate", rate.id.as_str(), &rate)]).await?;
                Ok(((), events))
            })
        })
        .await?;
        Ok(())
    }

    async fn delete_tax_rate(
        &self,
        id: &TaxRateId,
        events: for<'a> fn(&'a TaxRate) -> Vec<NewEvent>,
    ) -> StoreResult<Option<TaxRate>> {
        let (deleted, _) = self
            .write(move |tx| {
                let id = id.clone();
                Box::pin(async move {
                    let found = find_rate(tx, &id).await?;
                    let table = ("tax_rates", "tax_rate");
                    delete_found(tx, table, id.as_str(), found, events).await
                })
            })
            .await?;
        Ok(deleted)
    }

    async fn insert_discount(&self, discount: &Discount, events: Vec<NewEvent>) -> StoreResult<()> {
        self.write(move |tx| {
            let (discount, events) = (discount.clone(), events.clone());
            Box::pin(async move {
                // A taken code is a unique violation of `discounts_code_key`.
                sqlx::query(
                    "INSERT INTO discounts (id, code, kind, value, currency, min_subtotal_cents,
                         starts_at, ends_at, usage_limit, per_customer_limit, automatic, active,
                         times_used, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)",
                )
                .bind(discount.id.as_str())
                .bind(&discount.code)
                .bind(discount.kind.as_str())
                .bind(discount.value)
                .bind(discount.currency.map(|c| c.code()))
                .bind(discount.min_subtotal_cents)
                .bind(discount.starts_at)
                .bind(discount.ends_at)
                .bind(discount.usage_limit)
                .bind(discount.per_customer_limit)
                .bind(discount.automatic)
                .bind(discount.active)
                .bind(discount.times_used)
                .bind(discount.created_at)
                .execute(&mut *tx)
                .await?;
                let change = created("discount", discount.id.as_str(), &discount);
                audit::record(tx, [change]).await?;
                Ok(((), events))
            })
        })
        .await?;
        Ok(())
    }

    async fn discounts(&self) -> StoreResult<Vec<Discount>> {
        let sql = format!("SELECT {DISCOUNT_COLUMNS} FROM discounts d ORDER BY d.id DESC");
        sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(discount_row)
            .collect()
    }

    async fn discount(&self, key: &DiscountKey) -> StoreResult<Option<Discount>> {
        let mut conn = self.pool.acquire().await?;
        find_discount(&mut conn, key, false).await
    }

    async fn disable_discount(
        &self,
        id: &DiscountId,
        events: for<'a> fn(&'a Discount) -> Vec<NewEvent>,
    ) -> StoreResult<Option<Discount>> {
        let (disabled, _) = self
            .write(move |tx| {
                let id = id.clone();
                Box::pin(async move {
                    let key = DiscountKey::Id(id.clone());
                    let Some(before) = find_discount(tx, &key, true).await? else {
                        return Ok((None, Vec::new()));
                    };
                    if !before.active {
                        return Ok((Some(before), Vec::new()));
                    }
                    sqlx::query("UPDATE discounts SET active = false WHERE id = $1")
                        .bind(id.as_str())
                        .execute(&mut *tx)
                        .await?;
                    let after = Discount {
                        active: false,
                        ..before.clone()
                    };
                    audit::record(
                        tx,
                        [AuditChange::diff(
                            "discount.disabled",
                            "discount",
                            id.as_str(),
                            snapshot(&before),
                            snapshot(&after),
                        )],
                    )
                    .await?;
                    let events = events(&after);
                    Ok((Some(after), events))
                })
            })
            .await?;
        Ok(disabled)
    }

    async fn add_cart_discount(&self, cart: &CartId, code: &str) -> StoreResult<bool> {
        let (added, _) = self
            .write(move |tx| {
                let (cart, code) = (cart.clone(), code.to_owned());
                Box::pin(async move {
                    let added = sqlx::query(
                        "INSERT INTO cart_discounts (cart_id, code) VALUES ($1, $2)
                         ON CONFLICT DO NOTHING",
                    )
                    .bind(cart.as_str())
                    .bind(code)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    Ok((added == 1, Vec::new()))
                })
            })
            .await?;
        Ok(added)
    }
}
