//! Order and payment analytics in SQLite: read-only aggregates.

use async_trait::async_trait;
use rusqlite::Connection;
use shop_wire::orders::{
    CurrencyAmount, DayRevenue, FinancialStatus, OrderAnalytics, StatusCount, TopProduct,
};
use shop_wire::payments::{CurrencyVolume, MethodCount, MethodKind, PaymentAnalytics};

use super::{SqliteStore, millis, parse_column};
use crate::services::orders::rules;
use crate::store::{AnalyticsStore, StoreResult, now};

/// The orders that count in net revenue, as the orders service's rule says.
fn sold_condition() -> String {
    let sold: Vec<String> = FinancialStatus::ALL
        .iter()
        .filter(|status| rules::is_sold(**status))
        .map(|status| format!("'{}'", status.as_str()))
        .collect();
    format!("financial_status IN ({})", sold.join(", "))
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
