//! Order and payment analytics in SQLite: read-only aggregates.

use async_trait::async_trait;
use rusqlite::Connection;
use shop_wire::orders::{
    CurrencyAmount, DayRevenue, FinancialStatus, OrderAnalytics, StatusCount, TopProduct,
};
use shop_wire::payments::{CurrencyVolume, MethodCount, MethodKind, PaymentAnalytics};
use shop_wire::reports::{Customer, ReportGroup, SalesRow};

use super::{SqliteStore, escape_like, from_millis, millis, parse_column};
use crate::services::orders::rules;
use crate::store::{AnalyticsStore, CustomerQuery, SalesQuery, StoreResult, now};

/// The orders whose financial status passes `rule` of the orders service.
fn status_condition(rule: fn(FinancialStatus) -> bool) -> String {
    let passing: Vec<String> = FinancialStatus::ALL
        .iter()
        .filter(|status| rule(**status))
        .map(|status| format!("'{}'", status.as_str()))
        .collect();
    format!("financial_status IN ({})", passing.join(", "))
}

/// The orders that count in net revenue, as the orders service's rule says.
fn sold_condition() -> String {
    status_condition(rules::is_sold)
}

/// Buyers by email: each one's orders that took money, their net per
/// currency, and the currency and address name of their latest order.
/// `?1` is an email to match exactly (or NULL), `?2` a LIKE pattern on the
/// email or the name (or NULL).
fn customers_sql(tail: &str) -> String {
    let took = status_condition(rules::took_money);
    format!(
        "WITH bought AS (
             SELECT customer_email AS email, currency, total_cents - refunded_cents AS net,
                    created_at,
                    coalesce(json_extract(pricing, '$.billing_address.name'),
                             json_extract(pricing, '$.shipping_address.name')) AS address_name
             FROM orders WHERE {took} AND (?1 IS NULL OR customer_email = ?1)
         ),
         -- SQLite takes the bare columns of the row with the max().
         latest AS (
             SELECT email, max(created_at) AS last_at, currency, address_name
             FROM bought GROUP BY email
         ),
         totals AS (
             SELECT email, count(*) AS orders_count, min(created_at) AS first_at,
                    json_group_array(json_array(currency, net)) AS nets
             FROM bought GROUP BY email
         ),
         buyers AS (
             SELECT l.email, u.id AS user_id, coalesce(u.name, l.address_name) AS name,
                    t.orders_count, l.currency, t.nets, t.first_at, l.last_at
             FROM latest l JOIN totals t ON t.email = l.email
             LEFT JOIN users u ON u.email = l.email AND u.email_verified_at IS NOT NULL
         )
         SELECT *, count(*) OVER () AS matching FROM buyers
         WHERE ?2 IS NULL OR email LIKE ?2 ESCAPE '\\' OR name LIKE ?2 ESCAPE '\\'
         {tail}"
    )
}

/// A row of [`customers_sql`], with how many rows matched in all.
fn customer_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(Customer, u64)> {
    let currency = parse_column(row, "currency")?;
    let nets: String = row.get("nets")?;
    let nets: Vec<(String, i64)> = serde_json::from_str(&nets).map_err(super::conversion)?;
    let mut spent: Vec<CurrencyAmount> = Vec::new();
    for (code, net) in nets {
        let code = code
            .parse()
            .map_err(|e: String| super::conversion(std::io::Error::other(e)))?;
        match spent.iter_mut().find(|s| s.currency == code) {
            Some(sum) => sum.amount_cents += net,
            None => spent.push(CurrencyAmount {
                currency: code,
                amount_cents: net,
            }),
        }
    }
    spent.sort_by_key(|s| s.currency.code());
    let total_spent_cents = spent
        .iter()
        .find(|s| s.currency == currency)
        .map_or(0, |s| s.amount_cents);
    let customer = Customer {
        email: row.get("email")?,
        user_id: row
            .get::<_, Option<String>>("user_id")?
            .map(|id| id.parse::<shop_wire::UserId>())
            .transpose()
            .map_err(super::conversion)?,
        name: row.get("name")?,
        orders_count: row.get::<_, i64>("orders_count")? as u64,
        total_spent_cents,
        currency,
        spent,
        first_order_at: from_millis(row.get("first_at")?)?,
        last_order_at: from_millis(row.get("last_at")?)?,
    };
    Ok((customer, row.get::<_, i64>("matching")? as u64))
}

/// The SQLite date format of a period's label.
fn period_format(group: ReportGroup) -> &'static str {
    match group {
        ReportGroup::Day => "%Y-%m-%d",
        // ISO 8601 weeks (Monday first; a week belongs to its Thursday's year).
        ReportGroup::Week => "%G-W%V",
        ReportGroup::Month => "%Y-%m",
    }
}

/// Net revenue over all days, per currency, with how many sold orders it came from.
fn net_per_currency(conn: &Connection) -> rusqlite::Result<Vec<(CurrencyAmount, i64)>> {
    conn.prepare(&format!(
        "SELECT currency, sum(total_cents - refunded_cents), count(*) FROM orders
         WHERE {} GROUP BY currency ORDER BY currency",
        sold_condition()
    ))?
    .query_map([], |row| {
        let net = CurrencyAmount {
            currency: parse_column(row, "currency")?,
            amount_cents: row.get(1)?,
        };
        Ok((net, row.get(2)?))
    })?
    .collect()
}

#[async_trait]
impl AnalyticsStore for SqliteStore {
    async fn order_analytics(&self) -> StoreResult<OrderAnalytics> {
        self.read(|conn| {
            let counts_by_status = conn
                .prepare("SELECT status, count(*) FROM orders GROUP BY status ORDER BY status")?
                .query_map([], |row| {
                    Ok(StatusCount {
                        status: parse_column(row, "status")?,
                        count: row.get::<_, i64>(1)? as u64,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let sold = sold_condition();
            let revenue_by_day = conn
                .prepare(&format!(
                    "SELECT date(created_at / 1000, 'unixepoch') AS day, currency, count(*),
                            sum(total_cents - refunded_cents)
                     FROM orders WHERE {sold} AND created_at >= ?1
                     GROUP BY day, currency ORDER BY day, currency"
                ))?
                .query_map([millis(now() - time::Duration::days(90))], |row| {
                    Ok(DayRevenue {
                        day: row.get(0)?,
                        currency: parse_column(row, "currency")?,
                        orders: row.get::<_, i64>(2)? as u64,
                        revenue_cents: row.get(3)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let average_order_value = net_per_currency(conn)?
                .into_iter()
                .map(|(net, orders)| CurrencyAmount {
                    amount_cents: net.amount_cents / orders,
                    ..net
                })
                .collect();
            let top_products = conn
                .prepare(&format!(
                    "SELECT i.sku, max(i.name), sum(i.quantity) AS sold,
                            sum(i.quantity * i.unit_price_cents), o.currency
                     FROM order_items i JOIN orders o ON o.id = i.order_id
                     WHERE o.{sold}
                     GROUP BY i.sku, o.currency ORDER BY sold DESC, i.sku LIMIT 10"
                ))?
                .query_map([], |row| {
                    Ok(TopProduct {
                        sku: row.get(0)?,
                        name: row.get(1)?,
                        quantity: row.get(2)?,
                        revenue_cents: row.get(3)?,
                        currency: parse_column(row, "currency")?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(OrderAnalytics {
                counts_by_status,
                revenue_by_day,
                average_order_value,
                top_products,
            })
        })
        .await
    }

    async fn net_revenue(&self) -> StoreResult<Vec<CurrencyAmount>> {
        self.read(|conn| {
            Ok(net_per_currency(conn)?
                .into_iter()
                .map(|(net, _)| net)
                .collect())
        })
        .await
    }

    async fn customers(&self, query: &CustomerQuery) -> StoreResult<(Vec<Customer>, u64)> {
        let pattern = query
            .text
            .as_ref()
            .map(|text| format!("%{}%", escape_like(text)));
        let (limit, offset) = (query.limit, query.offset as i64);
        self.read(move |conn| {
            let rows = conn
                .prepare_cached(&customers_sql(
                    "ORDER BY last_at DESC, email LIMIT ?3 OFFSET ?4",
                ))?
                .query_map(
                    rusqlite::params![Option::<String>::None, pattern, limit, offset],
                    customer_row,
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let total = match rows.first() {
                Some((_, matching)) => *matching,
                // Past the last page: count what matched without a page.
                None if offset > 0 => conn
                    .prepare_cached(&format!("SELECT count(*) FROM ({})", customers_sql("")))?
                    .query_row(rusqlite::params![Option::<String>::None, pattern], |row| {
                        row.get::<_, i64>(0)
                    })? as u64,
                None => 0,
            };
            Ok((rows.into_iter().map(|(c, _)| c).collect(), total))
        })
        .await
    }

    async fn customer(&self, email: &str) -> StoreResult<Option<Customer>> {
        let email = email.to_owned();
        self.read(move |conn| {
            Ok(conn
                .prepare_cached(&customers_sql(""))?
                .query_map(
                    rusqlite::params![email, Option::<String>::None],
                    customer_row,
                )?
                .next()
                .transpose()?
                .map(|(customer, _)| customer))
        })
        .await
    }

    async fn sales(&self, query: &SalesQuery) -> StoreResult<Vec<SalesRow>> {
        let took = status_condition(rules::took_money);
        let format = period_format(query.group);
        let (from, to) = (millis(query.from), millis(query.to));
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT strftime('{format}', created_at / 1000, 'unixepoch') AS period,
                            currency, count(*) AS orders, sum(total_cents) AS gross,
                            sum(discount_cents) AS discount, sum(shipping_cents) AS shipping,
                            sum(tax_cents) AS tax, sum(refunded_cents) AS refunds
                     FROM orders
                     WHERE {took} AND created_at >= ?1 AND created_at < ?2
                     GROUP BY period, currency ORDER BY period, currency"
            ))?
            .query_map([from, to], |row| {
                let gross: i64 = row.get("gross")?;
                let refunds: i64 = row.get("refunds")?;
                Ok(SalesRow {
                    period: row.get("period")?,
                    currency: parse_column(row, "currency")?,
                    orders: row.get::<_, i64>("orders")? as u64,
                    gross_cents: gross,
                    discount_cents: row.get("discount")?,
                    shipping_cents: row.get("shipping")?,
                    tax_cents: row.get("tax")?,
                    refunds_cents: refunds,
                    net_cents: gross - refunds,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()
        })
        .await
    }

    async fn payment_analytics(&self) -> StoreResult<PaymentAnalytics> {
        self.read(|conn| {
            let (attempts, succeeded, failed): (i64, i64, i64) = conn.query_row(
                "SELECT count(*),
                        coalesce(sum(status IN ('succeeded', 'refunded')), 0),
                        coalesce(sum(status = 'failed'), 0)
                 FROM payments",
                [],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
            )?;
            let volume = conn
                .prepare(
                    "SELECT currency, sum(amount_cents), sum(refunded_cents), count(*)
                     FROM payments WHERE status IN ('succeeded', 'refunded')
                     GROUP BY currency ORDER BY currency",
                )?
                .query_map([], |row| {
                    Ok(CurrencyVolume {
                        currency: parse_column(row, "currency")?,
                        captured_cents: row.get(1)?,
                        refunded_cents: row.get(2)?,
                        payments: row.get::<_, i64>(3)? as u64,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let by_method = conn
                .prepare(
                    "SELECT method, count(*), coalesce(sum(status IN ('succeeded', 'refunded')), 0)
                     FROM payments GROUP BY method ORDER BY method",
                )?
                .query_map([], |row| {
                    Ok(MethodCount {
                        method: parse_column::<MethodKind>(row, "method")?,
                        attempts: row.get::<_, i64>(1)? as u64,
                        succeeded: row.get::<_, i64>(2)? as u64,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let finished = succeeded + failed;
            let captured: i64 = volume.iter().map(|v| v.captured_cents).sum();
            let refunded: i64 = volume.iter().map(|v| v.refunded_cents).sum();
            Ok(PaymentAnalytics {
                attempts: attempts as u64,
                succeeded: succeeded as u64,
                failed: failed as u64,
                success_rate: if finished > 0 {
                    succeeded as f64 / finished as f64
                } else {
                    0.0
                },
                refund_rate: if captured > 0 {
                    refunded as f64 / captured as f64
                } else {
                    0.0
                },
                volume,
                by_method,
            })
        })
        .await
    }
}
