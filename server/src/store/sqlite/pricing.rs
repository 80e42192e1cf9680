//! Shipping zones, tax rates and the pricing facts of products in SQLite.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use shop_wire::cart::CartId;
use shop_wire::pricing::{Discount, DiscountId, ShippingZone, ShippingZoneId, TaxRate, TaxRateId};
use time::OffsetDateTime;

use super::audit;
use super::{
    SqliteStore, append, backend, conversion, from_millis, is_unique_violation, millis,
    parse_column,
};
use crate::store::audit::snapshot;
use crate::store::{
    AuditChange, ClaimRefusal, DiscountKey, DiscountUse, NewEvent, PricingContext, PricingQuery,
    PricingStore, ProductFacts, StoreError, StoreResult,
};

const ZONE_COLUMNS: &str = "z.id, z.name, z.currency, z.methods, z.created_at,
     (SELECT json_group_array(country) FROM
        (SELECT country FROM shipping_zone_countries c WHERE c.zone_id = z.id ORDER BY country))
     AS countries";

const RATE_COLUMNS: &str = "id, country, region, name, rate_bps, tax_category, created_at";

fn zone_row(row: &Row<'_>) -> rusqlite::Result<ShippingZone> {
    let methods: String = row.get("methods")?;
    let countries: String = row.get("countries")?;
    Ok(ShippingZone {
        id: parse_column(row, "id")?,
        name: row.get("name")?,
        countries: serde_json::from_str(&countries).map_err(conversion)?,
        currency: parse_column(row, "currency")?,
        methods: serde_json::from_str(&methods).map_err(conversion)?,
        created_at: from_millis(row.get("created_at")?)?,
    })
}

fn rate_row(row: &Row<'_>) -> rusqlite::Result<TaxRate> {
    Ok(TaxRate {
        id: parse_column(row, "id")?,
        country: row.get("country")?,
        region: row.get("region")?,
        name: row.get("name")?,
        rate_bps: row.get("rate_bps")?,
        tax_category: row.get("tax_category")?,
        created_at: from_millis(row.get("created_at")?)?,
    })
}

fn zone(conn: &Connection, id: &ShippingZoneId) -> rusqlite::Result<Option<ShippingZone>> {
    conn.prepare_cached(&format!(
        "SELECT {ZONE_COLUMNS} FROM shipping_zones z WHERE z.id = ?1"
    ))?
    .query_row([id.as_str()], zone_row)
    .optional()
}

/// The error of an insert: a unique violation is the `field` of an
/// `entity` another row has, anything else is the backend's.
fn duplicate(entity: &'static str, field: &'static str) -> impl Fn(rusqlite::Error) -> StoreError {
    move |err| {
        if is_unique_violation(&err) {
            StoreError::Duplicate { entity, field }
        } else {
            err.into()
        }
    }
}

/// Logs a row just written as `ENTITY.created` in the audit log, and its events.
fn record_created<T: serde::Serialize>(
    tx: &Transaction<'_>,
    entity: &'static str,
    id: &str,
    row: &T,
    events: Vec<NewEvent>,
) -> StoreResult<()> {
    audit::record(
        tx,
        [AuditChange::diff(
            format!("{entity}.created"),
            entity,
            id,
            serde_json::Value::Null,
            snapshot(row),
        )],
    )?;
    append(tx, events)
}

/// Deletes the row `id` of `table` that was `found` (`None`: there was
/// none, and nothing happens), logging it as `ENTITY.deleted` with the
/// events `events` makes of it.
fn delete_found<T: serde::Serialize>(
    tx: &Transaction<'_>,
    table: &str,
    entity: &'static str,
    id: &str,
    found: Option<T>,
    events: for<'a> fn(&'a T) -> Vec<NewEvent>,
) -> StoreResult<Option<T>> {
    let Some(found) = found else {
        return Ok(None);
    };
    tx.prepare_cached(&format!("DELETE FROM {table} WHERE id = ?1"))?
        .execute([id])?;
    audit::record(
        tx,
        [AuditChange::diff(
            format!("{entity}.deleted"),
            entity,
            id,
            snapshot(&found),
            serde_json::Value::Null,
        )],
    )?;
    append(tx, events(&found))?;
    Ok(Some(found))
}

/// The codes applied to a cart, in the order they were applied.
pub(super) fn cart_codes(conn: &Connection, cart: &str) -> rusqlite::Result<Vec<String>> {
    conn.prepare_cached("SELECT code FROM cart_discounts WHERE cart_id = ?1 ORDER BY rowid")?
        .query_map([cart], |row| row.get(0))?
        .collect()
}

/// Everything `query` prices by.
fn read_context(conn: &Connection, query: &PricingQuery) -> rusqlite::Result<PricingContext> {
    let skus = serde_json::to_string(&query.skus).map_err(conversion)?;
    let products = conn
        .prepare_cached(
            "SELECT sku, price_cents, currency, active, weight_grams, tax_category,
                 requires_shipping
             FROM products WHERE sku IN (SELECT value FROM json_each(?1))",
        )?
        .query_map([skus], |row| {
            Ok(ProductFacts {
                sku: row.get("sku")?,
                price_cents: row.get("price_cents")?,
                currency: parse_column(row, "currency")?,
                active: row.get("active")?,
                weight_grams: row.get("weight_grams")?,
                tax_category: row.get("tax_category")?,
                requires_shipping: row.get("requires_shipping")?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let zones = conn
        .prepare_cached(&format!(
            "SELECT {ZONE_COLUMNS} FROM shipping_zones z ORDER BY z.id"
        ))?
        .query_map([], zone_row)?
        .collect::<rusqlite::Result<_>>()?;
    let rates = conn
        .prepare_cached(&format!("SELECT {RATE_COLUMNS} FROM tax_rates ORDER BY id"))?
        .query_map([], rate_row)?
        .collect::<rusqlite::Result<_>>()?;
    let cart_codes: Vec<String> = match &query.cart {
        Some(cart) => cart_codes(conn, cart.as_str())?,
        None => Vec::new(),
    };
    let codes: Vec<String> = query
        .codes
        .iter()
        .map(|code| code.trim().to_uppercase())
        .chain(cart_codes.iter().cloned())
        .collect();
    let discounts = conn
        .prepare_cached(&format!(
            "SELECT {DISCOUNT_COLUMNS},
                 CASE WHEN d.per_customer_limit IS NULL THEN 0
                      ELSE (SELECT count(*) FROM discount_uses u
                            WHERE u.discount_id = d.id AND u.customer_email = ?2
                              AND u.released = 0)
                 END AS customer_uses
             FROM discounts d
             WHERE d.code IN (SELECT value FROM json_each(?1)) OR d.automatic = 1"
        ))?
        .query_map(
            params![
                serde_json::to_string(&codes).map_err(conversion)?,
                query.customer_email
            ],
            |row| {
                Ok(DiscountUse {
                    discount: discount_row(row)?,
                    customer_uses: row.get("customer_uses")?,
                })
            },
        )?
        .collect::<rusqlite::Result<_>>()?;
    Ok(PricingContext {
        products,
        zones,
        rates,
        discounts,
        cart_codes,
    })
}

const DISCOUNT_COLUMNS: &str = "d.id, d.code, d.kind, d.value, d.currency, d.min_subtotal_cents, \
     d.starts_at, d.ends_at, d.usage_limit, d.per_customer_limit, d.automatic, d.active, \
     d.times_used, d.created_at";

fn discount_row(row: &Row<'_>) -> rusqlite::Result<Discount> {
    let time = |column: &str| -> rusqlite::Result<Option<OffsetDateTime>> {
        row.get::<_, Option<i64>>(column)?
            .map(from_millis)
            .transpose()
    };
    Ok(Discount {
        id: parse_column(row, "id")?,
        code: row.get("code")?,
        kind: parse_column(row, "kind")?,
        value: row.get("value")?,
        currency: row
            .get::<_, Option<String>>("currency")?
            .map(|c| {
                c.parse()
                    .map_err(|e: String| conversion(std::io::Error::other(e)))
            })
            .transpose()?,
        min_subtotal_cents: row.get("min_subtotal_cents")?,
        starts_at: time("starts_at")?,
        ends_at: time("ends_at")?,
        usage_limit: row.get("usage_limit")?,
        per_customer_limit: row.get("per_customer_limit")?,
        automatic: row.get("automatic")?,
        active: row.get("active")?,
        times_used: row.get("times_used")?,
        created_at: from_millis(row.get("created_at")?)?,
    })
}

fn find_discount(conn: &Connection, key: &DiscountKey) -> rusqlite::Result<Option<Discount>> {
    let (filter, value) = match key {
        DiscountKey::Id(id) => ("d.id = ?1", id.to_string()),
        DiscountKey::Code(code) => ("d.code = ?1", code.trim().to_uppercase()),
    };
    conn.prepare_cached(&format!(
        "SELECT {DISCOUNT_COLUMNS} FROM discounts d WHERE {filter}"
    ))?
    .query_row([value], discount_row)
    .optional()
}

/// Claims one use of each of `discounts` for an order, in its transaction:
/// a guarded increment (never past `usage_limit`, never of a disabled one)
/// and a guarded use row (never past `per_customer_limit` for the
/// customer). When one cannot be claimed, those claimed before it are
/// given back and nothing stays written.
pub(super) fn claim_discounts(
    tx: &Transaction<'_>,
    order: &str,
    customer: &str,
    discounts: &[Discount],
) -> StoreResult<Result<(), ClaimRefusal>> {
    let mut count = tx.prepare_cached(
        "UPDATE discounts SET times_used = times_used + 1
         WHERE id = ?1 AND active = 1 AND (usage_limit IS NULL OR times_used < usage_limit)",
    )?;
    let mut record = tx.prepare_cached(
        "INSERT INTO discount_uses (discount_id, order_id, customer_email)
         SELECT ?1, ?2, ?3
         WHERE CASE WHEN ?4 IS NULL THEN 1
                    ELSE (SELECT count(*) FROM discount_uses
                          WHERE discount_id = ?1 AND customer_email = ?3 AND released = 0) < ?4
               END",
    )?;
    for (claimed, discount) in discounts.iter().enumerate() {
        let id = discount.id.as_str();
        let refusal = if count.execute([id])? == 0 {
            Some(ClaimRefusal::LimitReached(discount.id.clone()))
        } else if record.execute(params![id, order, customer, discount.per_customer_limit])? == 0 {
            // This one's count was taken; it goes back with the others.
            unclaim(tx, order, &discounts[claimed..=claimed])?;
            Some(ClaimRefusal::CustomerLimitReached(discount.id.clone()))
        } else {
            None
        };
        if let Some(refusal) = refusal {
            unclaim(tx, order, &discounts[..claimed])?;
            return Ok(Err(refusal));
        }
    }
    Ok(Ok(()))
}

fn unclaim(tx: &Transaction<'_>, order: &str, discounts: &[Discount]) -> StoreResult<()> {
    for discount in discounts {
        tx.prepare_cached("UPDATE discounts SET times_used = times_used - 1 WHERE id = ?1")?
            .execute([discount.id.as_str()])?;
        tx.prepare_cached("DELETE FROM discount_uses WHERE discount_id = ?1 AND order_id = ?2")?
            .execute([discount.id.as_str(), order])?;
    }
    Ok(())
}

/// Gives back the uses an order claimed, once: a second call finds them
/// given back and changes nothing.
pub(super) fn release_discounts(tx: &Transaction<'_>, order: &str) -> StoreResult<()> {
    tx.prepare_cached(
        "UPDATE discounts SET times_used = times_used - 1
         WHERE id IN (SELECT discount_id FROM discount_uses WHERE order_id = ?1 AND released = 0)",
    )?
    .execute([order])?;
    tx.prepare_cached(
        "UPDATE discount_uses SET released = 1 WHERE order_id = ?1 AND released = 0",
    )?
    .execute([order])?;
    Ok(())
}

#[async_trait]
impl PricingStore for SqliteStore {
    async fn pricing_context(&self, query: PricingQuery) -> StoreResult<PricingContext> {
        self.read(move |conn| {
            // One read transaction, so zones, rates, prices and discounts are of one moment.
            conn.execute_batch("BEGIN")?;
            let context = read_context(conn, &query);
            conn.execute_batch("COMMIT")?;
            context
        })
        .await
    }

    async fn insert_shipping_zone(
        &self,
        zone: &ShippingZone,
        events: Vec<NewEvent>,
    ) -> StoreResult<()> {
        let zone = zone.clone();
        self.write(move |tx| {
            tx.prepare_cached(
                "INSERT INTO shipping_zones (id, name, currency, methods, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                zone.id.as_str(),
                zone.name,
                zone.currency.code(),
                serde_json::to_string(&zone.methods).map_err(backend)?,
                millis(zone.created_at),
            ])?;
            let mut claim = tx.prepare_cached(
                "INSERT INTO shipping_zone_countries (country, zone_id) VALUES (?1, ?2)",
            )?;
            for country in &zone.countries {
                claim
                    .execute(params![country, zone.id.as_str()])
                    .map_err(duplicate("shipping zone", "country"))?;
            }
            record_created(tx, "shipping_zone", zone.id.as_str(), &zone, events)?;
            Ok(())
        })
        .await
    }

    async fn delete_shipping_zone(
        &self,
        id: &ShippingZoneId,
        events: for<'a> fn(&'a ShippingZone) -> Vec<NewEvent>,
    ) -> StoreResult<Option<ShippingZone>> {
        let id = id.clone();
        self.write(move |tx| {
            let found = zone(tx, &id)?;
            delete_found(
                tx,
                "shipping_zones",
                "shipping_zone",
                id.as_str(),
                found,
                events,
            )
        })
        .await
    }

    async fn insert_tax_rate(&self, rate: &TaxRate, events: Vec<NewEvent>) -> StoreResult<()> {
        let rate = rate.clone();
        self.write(move |tx| {
            tx.prepare_cached(&format!(
                "INSERT INTO tax_rates ({RATE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
            ))?
            .execute(params![
                rate.id.as_str(),
                rate.country,
                rate.region,
                rate.name,
                rate.rate_bps,
                rate.tax_category,
                millis(rate.created_at),
            ])
            .map_err(duplicate("tax rate", "country, region and tax_category"))?;
            record_created(tx, "tax_rate", rate.id.as_str(), &rate, events)?;
            Ok(())
        })
        .await
    }

    async fn delete_tax_rate(
        &self,
        id: &TaxRateId,
        events: for<'a> fn(&'a TaxRate) -> Vec<NewEvent>,
    ) -> StoreResult<Option<TaxRate>> {
        let id = id.clone();
        self.write(move |tx| {
            let found = tx
                .prepare_cached(&format!(
                    "SELECT {RATE_COLUMNS} FROM tax_rates WHERE id = ?1"
                ))?
                .query_row([id.as_str()], rate_row)
                .optional()?;
            delete_found(tx, "tax_rates", "tax_rate", id.as_str(), found, events)
        })
        .await
    }

    async fn insert_discount(&self, discount: &Discount, events: Vec<NewEvent>) -> StoreResult<()> {
        let discount = discount.clone();
        self.write(move |tx| {
            tx.prepare_cached(
                "INSERT INTO discounts (id, code, kind, value, currency, min_subtotal_cents,
                     starts_at, ends_at, usage_limit, per_customer_limit, automatic, active,
                     times_used, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            )?
            .execute(params![
                discount.id.as_str(),
                discount.code,
                discount.kind.as_str(),
                discount.value,
                discount.currency.map(|c| c.code()),
                discount.min_subtotal_cents,
                discount.starts_at.map(millis),
                discount.ends_at.map(millis),
                discount.usage_limit,
                discount.per_customer_limit,
                discount.automatic,
                discount.active,
                discount.times_used,
                millis(discount.created_at),
            ])
            .map_err(duplicate("discount", "code"))?;
            record_created(tx, "discount", discount.id.as_str(), &discount, events)?;
            Ok(())
        })
        .await
    }

    async fn discounts(&self) -> StoreResult<Vec<Discount>> {
        self.read(|conn| {
            conn.prepare_cached(&format!(
                "SELECT {DISCOUNT_COLUMNS} FROM discounts d ORDER BY d.id DESC"
            ))?
            .query_map([], discount_row)?
            .collect()
        })
        .await
    }

    async fn discount(&self, key: &DiscountKey) -> StoreResult<Option<Discount>> {
        let key = key.clone();
        self.read(move |conn| find_discount(conn, &key)).await
    }

    async fn disable_discount(
        &self,
        id: &DiscountId,
        events: for<'a> fn(&'a Discount) -> Vec<NewEvent>,
    ) -> StoreResult<Option<Discount>> {
        let id = id.clone();
        self.write(move |tx| {
            let Some(before) = find_discount(tx, &DiscountKey::Id(id.clone()))? else {
                return Ok(None);
            };
            let changed = tx
                .prepare_cached("UPDATE discounts SET active = 0 WHERE id = ?1 AND active = 1")?
                .execute([id.as_str()])?;
            if changed == 0 {
                return Ok(Some(before));
            }
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
            )?;
            append(tx, events(&after))?;
            Ok(Some(after))
        })
        .await
    }

    async fn add_cart_discount(&self, cart: &CartId, code: &str) -> StoreResult<bool> {
        let (cart, code) = (cart.clone(), code.to_owned());
        self.write(move |tx| {
            let added = tx
                .prepare_cached(
                    "INSERT INTO cart_discounts (cart_id, code) VALUES (?1, ?2)
                     ON CONFLICT DO NOTHING",
                )?
                .execute([cart.as_str(), code.as_str()])?;
            Ok(added == 1)
        })
        .await
    }
}
