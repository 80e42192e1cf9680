//! Order and payment analytics in PostgreSQL: read-only aggregates, the
//! same figures as SQLite's for the same orders.
//!
//! Days, ISO weeks and months are the UTC ones, whatever the session's time
//! zone (`AT TIME ZONE 'UTC'`); sums of bigint are numeric in PostgreSQL
//! and cast back; text is sorted byte-wise (`COLLATE "C"`), as SQLite
//! sorts it, so ties come out in the same order on both backends.

use async_trait::async_trait;
use shop_wire::orders::{
    CurrencyAmount, DayRevenue, FinancialStatus, OrderAnalytics, StatusCount, TopProduct,
};
use shop_wire::payments::{CurrencyVolume, MethodCount, MethodKind, PaymentAnalytics};
use shop_wire::reports::{Customer, ReportGroup, SalesRow};
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, PgConnection, Postgres, QueryBuilder, Row};

use super::{PgStore, parse};
use crate::services::orders::rules;
use crate::store::{AnalyticsStore, CustomerQuery, SalesQuery, StoreResult, escape_like, now};

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

/// Which buyers [`buyers`] reads.
enum Buyers<'a> {
    /// Those whose email or name contains the text (any case), if one is given.
    Matching(Option<&'a str>),
    /// The one whose orders were placed for this email (any case).
    Email(&'a str),
}

/// Buyers by email: each one's orders that took money, their net per
/// currency, and the currency and address name of their latest order, with
/// how many buyers matched (`matching`), after `prefix` (which may open a
/// subquery). The caller pushes the rest (an order and a page, or the end
/// of its subquery) onto what this returns.
fn buyers(prefix: &str, which: &Buyers<'_>) -> QueryBuilder<Postgres> {
    let took = status_condition(rules::took_money);
    let mut sql = QueryBuilder::new(format!(
        "{prefix}WITH bought AS (
             SELECT customer_email AS email, currency, total_cents - refunded_cents AS net,
                    created_at,
                    coalesce(pricing -> 'billing_address' ->> 'name',
                             pricing -> 'shipping_address' ->> 'name') AS address_name
             FROM orders WHERE {took}"
    ));
    if let Buyers::Email(email) = which {
        // Served by `orders_customer` on lower(customer_email).
        sql.push(" AND lower(customer_email) = lower(")
            .push_bind(email.to_string())
            .push(")");
    }
    sql.push(
        "),
         latest AS (
             SELECT DISTINCT ON (email) email, created_at AS last_at, currency, address_name
             FROM bought ORDER BY email, created_at DESC
         ),
         per_currency AS (
             SELECT email, currency, sum(net)::bigint AS net FROM bought GROUP BY email, currency
         ),
         totals AS (
             SELECT email, count(*) AS orders_count, min(created_at) AS first_at
             FROM bought GROUP BY email
         ),
         nets AS (
             SELECT email, array_agg(currency) AS currencies, array_agg(net) AS nets
             FROM per_currency GROUP BY email
         ),
         matched AS (
             SELECT l.email, u.id AS user_id, coalesce(u.name, l.address_name) AS name,
                    t.orders_count, l.currency, n.currencies, n.nets, t.first_at, l.last_at
             FROM latest l JOIN totals t ON t.email = l.email JOIN nets n ON n.email = l.email
             LEFT JOIN users u
                 ON lower(u.email) = lower(l.email) AND u.email_verified_at IS NOT NULL
         )
         SELECT *, count(*) OVER () AS matching FROM matched",
    );
    if let Buyers::Matching(Some(text)) = which {
        let pattern = format!("%{}%", escape_like(text));
        sql.push(" WHERE email ILIKE ")
            .push_bind(pattern.clone())
            .push(" ESCAPE '\\' OR name ILIKE ")
            .push_bind(pattern)
            .push(" ESCAPE '\\'");
    }
    sql
}

/// A row of [`buyers`], with how many rows matched in all.
fn customer_row(row: &PgRow) -> StoreResult<(Customer, u64)> {
    let currency = parse(row, "currency")?;
    let codes: Vec<String> = row.try_get("currencies")?;
    let nets: Vec<i64> = row.try_get("nets")?;
    let mut spent = codes
        .iter()
        .zip(nets)
        .map(|(code, net)| {
            Ok(CurrencyAmount {
                currency: code.parse().map_err(|e: String| {
                    super::backend(std::io::Error::other(format!("currency: {e}")))
                })?,
                amount_cents: net,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
    spent.sort_by_key(|s| s.currency.code());
    let total_spent_cents = spent
        .iter()
        .find(|s| s.currency == currency)
        .map_or(0, |s| s.amount_cents);
    let user_id: Option<String> = row.try_get("user_id")?;
    let customer = Customer {
        email: row.try_get("email")?,
        user_id: user_id
            .map(|id| id.parse::<shop_wire::UserId>())
            .transpose()
            .map_err(super::backend)?,
        name: row.try_get("name")?,
        orders_count: row.try_get::<i64, _>("orders_count")? as u64,
        total_spent_cents,
        currency,
        spent,
        first_order_at: row.try_get("first_at")?,
        last_order_at: row.try_get("last_at")?,
    };
    Ok((customer, row.try_get::<i64, _>("matching")? as u64))
}

/// The `to_char` format of a period's label, of a UTC time.
fn period_format(group: ReportGroup) -> &'static str {
    match group {
        ReportGroup::Day => "YYYY-MM-DD",
        // ISO 8601 weeks (Monday first; a week belongs to its Thursday's year).
        ReportGroup::Week => "IYYY-\"W\"IW",
        ReportGroup::Month => "YYYY-MM",
    }
}

/// Net revenue over all days, per currency, with how many sold orders it came from.
async fn net_per_currency(conn: &mut PgConnection) -> StoreResult<Vec<(CurrencyAmount, i64)>> {
    let sql = format!(
        "SELECT currency, sum(total_cents - refunded_cents)::bigint AS net, count(*) AS orders
         FROM orders WHERE {} GROUP BY currency ORDER BY currency COLLATE \"C\"",
        sold_condition()
    );
    sqlx::query(AssertSqlSafe(sql))
        .fetch_all(conn)
        .await?
        .iter()
        .map(|row| {
            let net = CurrencyAmount {
                currency: parse(row, "currency")?,
                amount_cents: row.try_get("net")?,
            };
            Ok((net, row.try_get("orders")?))
        })
        .collect()
}

#[async_trait]
impl AnalyticsStore for PgStore {
    async fn order_analytics(&self) -> StoreResult<OrderAnalytics> {
        let mut conn = self.pool.acquire().await?;
        let counts_by_status = sqlx::query(
            "SELECT status, count(*) AS n FROM orders GROUP BY status ORDER BY status COLLATE \"C\"",
        )
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|row| {
            Ok(StatusCount {
                status: parse(row, "status")?,
                count: row.try_get::<i64, _>("n")? as u64,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
        let sold = sold_condition();
        let sql = format!(
            "SELECT to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD') AS day, currency,
                    count(*) AS orders, sum(total_cents - refunded_cents)::bigint AS revenue
             FROM orders WHERE {sold} AND created_at >= $1
             GROUP BY day, currency ORDER BY day, currency COLLATE \"C\""
        );
        let revenue_by_day = sqlx::query(AssertSqlSafe(sql))
            .bind(now() - time::Duration::days(90))
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|row| {
                Ok(DayRevenue {
                    day: row.try_get("day")?,
                    currency: parse(row, "currency")?,
                    orders: row.try_get::<i64, _>("orders")? as u64,
                    revenue_cents: row.try_get("revenue")?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        let average_order_value = net_per_currency(&mut conn)
            .await?
            .into_iter()
            .map(|(net, orders)| CurrencyAmount {
                amount_cents: net.amount_cents / orders,
                ..net
            })
            .collect();
        let sql = format!(
            "SELECT i.sku, max(i.name COLLATE \"C\") AS name, sum(i.quantity)::bigint AS sold,
                    sum(i.quantity * i.unit_price_cents)::bigint AS revenue, o.currency
             FROM order_items i JOIN orders o ON o.id = i.order_id
             WHERE o.{sold}
             GROUP BY i.sku, o.currency ORDER BY sold DESC, i.sku LIMIT 10"
        );
        let top_products = sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(|row| {
                Ok(TopProduct {
                    sku: row.try_get("sku")?,
                    name: row.try_get("name")?,
                    quantity: row.try_get("sold")?,
                    revenue_cents: row.try_get("revenue")?,
                    currency: parse(row, "currency")?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        Ok(OrderAnalytics {
            counts_by_status,
            revenue_by_day,
            average_order_value,
            top_products,
        })
    }

    async fn net_revenue(&self) -> StoreResult<Vec<CurrencyAmount>> {
        let mut conn = self.pool.acquire().await?;
        Ok(net_per_currency(&mut conn)
            .await?
            .into_iter()
            .map(|(net, _)| net)
            .collect())
    }

    async fn payment_analytics(&self) -> StoreResult<PaymentAnalytics> {
        let mut conn = self.pool.acquire().await?;
        let counts = sqlx::query(
            "SELECT count(*) AS attempts,
                    count(*) FILTER (WHERE status IN ('succeeded', 'refunded')) AS succeeded,
                    count(*) FILTER (WHERE status = 'failed') AS failed
             FROM payments",
        )
        .fetch_one(&mut *conn)
        .await?;
        let attempts: i64 = counts.try_get("attempts")?;
        let succeeded: i64 = counts.try_get("succeeded")?;
        let failed: i64 = counts.try_get("failed")?;
        let volume = sqlx::query(
            "SELECT currency, sum(amount_cents)::bigint AS captured,
                    sum(refunded_cents)::bigint AS refunded, count(*) AS payments
             FROM payments WHERE status IN ('succeeded', 'refunded')
             GROUP BY currency ORDER BY currency COLLATE \"C\"",
        )
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|row| {
            Ok(CurrencyVolume {
                currency: parse(row, "currency")?,
                captured_cents: row.try_get("captured")?,
                refunded_cents: row.try_get("refunded")?,
                payments: row.try_get::<i64, _>("payments")? as u64,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
        let by_method = sqlx::query(
            "SELECT method, count(*) AS attempts,
                    count(*) FILTER (WHERE status IN ('succeeded', 'refunded')) AS succeeded
             FROM payments GROUP BY method ORDER BY method COLLATE \"C\"",
        )
        .fetch_all(&mut *conn)
        .await?
        .iter()
        .map(|row| {
            Ok(MethodCount {
                method: parse::<MethodKind>(row, "method")?,
                attempts: row.try_get::<i64, _>("attempts")? as u64,
                succeeded: row.try_get::<i64, _>("succeeded")? as u64,
            })
        })
        .collect::<StoreResult<Vec<_>>>()?;
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
    }

    async fn customers(&self, query: &CustomerQuery) -> StoreResult<(Vec<Customer>, u64)> {
        let which = Buyers::Matching(query.text.as_deref());
        let mut conn = self.pool.acquire().await?;
        let mut page = buyers("", &which);
        page.push(" ORDER BY last_at DESC, email COLLATE \"C\" LIMIT ")
            .push_bind(i64::from(query.limit))
            .push(" OFFSET ")
            .push_bind(query.offset as i64);
        let rows = page
            .build()
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(customer_row)
            .collect::<StoreResult<Vec<_>>>()?;
        let total = match rows.first() {
            Some((_, matching)) => *matching,
            // Past the last page: count what matched without a page.
            None if query.offset > 0 => {
                let mut count = buyers("SELECT count(*) FROM (", &which);
                count.push(") AS b");
                count
                    .build_query_scalar::<i64>()
                    .fetch_one(&mut *conn)
                    .await? as u64
            }
            None => 0,
        };
        Ok((rows.into_iter().map(|(c, _)| c).collect(), total))
    }

    async fn customer(&self, email: &str) -> StoreResult<Option<Customer>> {
        let mut one = buyers("", &Buyers::Email(email));
        one.push(" ORDER BY last_at DESC, email COLLATE \"C\" LIMIT 1");
        one.build()
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(|row| customer_row(row).map(|(customer, _)| customer))
            .transpose()
    }

    async fn sales(&self, query: &SalesQuery) -> StoreResult<Vec<SalesRow>> {
        let took = status_condition(rules::took_money);
        let format = period_format(query.group);
        let sql = format!(
            "SELECT to_char(created_at AT TIME ZONE 'UTC', '{format}') AS period,
                    currency, count(*) AS orders, sum(total_cents)::bigint AS gross,
                    sum(discount_cents)::bigint AS discount, sum(shipping_cents)::bigint AS shipping,
                    sum(tax_cents)::bigint AS tax, sum(refunded_cents)::bigint AS refunds
             FROM orders
             WHERE {took} AND created_at >= $1 AND created_at < $2
             GROUP BY period, currency ORDER BY period, currency COLLATE \"C\""
        );
        sqlx::query(AssertSqlSafe(sql))
            .bind(query.from)
            .bind(query.to)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| {
                let gross: i64 = row.try_get("gross")?;
                let refunds: i64 = row.try_get("refunds")?;
                Ok(SalesRow {
                    period: row.try_get("period")?,
                    currency: parse(row, "currency")?,
                    orders: row.try_get::<i64, _>("orders")? as u64,
                    gross_cents: gross,
                    discount_cents: row.try_get("discount")?,
                    shipping_cents: row.try_get("shipping")?,
                    tax_cents: row.try_get("tax")?,
                    refunds_cents: refunds,
                    net_cents: gross - refunds,
                })
            })
            .collect()
    }
}
