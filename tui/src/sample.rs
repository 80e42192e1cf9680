//! Made-up but plausible states, built through the same [`App::apply`] the
//! live feed uses: for the snapshot tests and the render benchmark. All
//! times derive from the `now` passed in, so a fixed `now` gives the same
//! screen every run.

use std::collections::BTreeMap;

use serde_json::json;
use shop_wire::inventory::Stock;
use shop_wire::{Event, HealthStatus, ServiceHealth, SystemHealth};
use time::{Duration, OffsetDateTime};

use crate::app::{App, SERVICES};
use crate::event::{Section, StockPage, Update};
use crate::metrics::Rates;

/// A fixed instant for tests: 2026-11-24 12:00:00 UTC.
pub fn noon() -> OffsetDateTime {
    time::macros::datetime!(2026-11-24 12:00:00 UTC)
}

/// Nothing answered yet but the health report: a fresh server with no data.
pub fn empty(now: OffsetDateTime) -> App {
    let mut app = App::new(now);
    app.url = "http://127.0.0.1:7467".into();
    app.apply(Update::Health(health(&[])));
    app.apply(Update::Stock(Section::Missing));
    app.apply(Update::Orders(Section::Missing));
    app.apply(Update::SearchAnalytics(Section::Missing));
    app
}

/// A busy shop: traffic on every service, stock with a few low SKUs,
/// orders in every state and a stream of searches.
pub fn normal(now: OffsetDateTime) -> App {
    build(now, 24, 40)
}

/// Everything of [`normal`], and most SKUs at or below their threshold.
pub fn low_stock(now: OffsetDateTime) -> App {
    let mut app = normal(now);
    let items = (0..30)
        .map(|i| stock(&format!("SKU-{i:04}"), i % 4, 5, now))
        .collect();
    app.apply(Update::Stock(Section::Ready(StockPage {
        items,
        total: 30,
    })));
    app
}

/// [`normal`], then the server went away 12 seconds ago.
pub fn unreachable(now: OffsetDateTime) -> App {
    let mut app = normal(now - Duration::seconds(12));
    app.apply(Update::Unreachable(
        "Connection refused (os error 111)".into(),
    ));
    app.tick(now);
    app
}

/// The benchmark's state: `orders` orders (each created and paid) and `skus` SKUs.
pub fn large(now: OffsetDateTime, orders: usize, skus: usize) -> App {
    build(now, orders, skus)
}

fn build(now: OffsetDateTime, orders: usize, skus: usize) -> App {
    let mut app = App::new(now - Duration::minutes(30));
    app.url = "http://127.0.0.1:7467".into();
    app.apply(Update::Health(health(&[(
        "payments",
        HealthStatus::Degraded,
    )])));
    for step in 0..60u32 {
        let wave = f64::from((step * 7) % 23);
        let rates: BTreeMap<String, Rates> = SERVICES
            .iter()
            .enumerate()
            .map(|(i, name)| {
                let busy = (i as f64 + 1.0) * 3.0 + wave;
                let rates = Rates {
                    requests_per_second: busy,
                    error_ratio: if *name == "payments" { 0.062 } else { 0.0 },
                    p99_ms: Some(2.0 + i as f64 * 4.5 + wave / 10.0),
                };
                ((*name).to_owned(), rates)
            })
            .collect();
        app.apply(Update::Rates(rates));
    }
    let items = (0..skus)
        .map(|i| {
            let available = (i as i64 * 7) % 120 + i as i64 / 3;
            stock(&format!("SKU-{i:04}"), available, 5, now)
        })
        .collect();
    app.apply(Update::Stock(Section::Ready(StockPage {
        items,
        total: skus as u64,
    })));
    app.apply(Update::Reservations(Section::Ready(7)));
    app.apply(Update::Orders(Section::Ready(Vec::new())));
    let mut id = 1000u64;
    let mut event = |kind: &str, at: OffsetDateTime, data: serde_json::Value| {
        id += 1;
        Event {
            id,
            kind: kind.to_owned(),
            occurred_at: at,
            data,
        }
    };
    for i in 0..orders {
        let at = now - Duration::seconds(((orders - i) * 30 / orders.max(1)) as i64 * 60);
        let order = json!({
            "id": format!("ord_{i:06}"),
            "number": format!("ORD-{:06}", 1000 + i),
            "status": "pending",
            "items": [{"sku": format!("SKU-{:04}", i % 40), "name": "Thing", "quantity": 1 + i % 3,
                       "unit_price_cents": 1999, "line_total_cents": 1999}],
            "total_cents": 1999 + (i as i64 * 1250) % 20_000,
            "currency": "USD",
            "customer_email": format!("c{i}@example.com"),
        });
        app.apply(Update::Event(event("order.created", at, order.clone())));
        let next = match i % 5 {
            0 => Some("paid"),
            1 => Some("shipped"),
            2 => Some("cancelled"),
            3 => Some("delivered"),
            _ => None,
        };
        if let Some(next) = next {
            if next != "cancelled" {
                let payment = json!({
                    "order_id": order["id"], "number": order["number"],
                    "customer_email": order["customer_email"], "method": "card",
                    "currency": "USD", "amount_cents": order["total_cents"],
                });
                let captured = event(
                    "payment.captured",
                    at + Duration::seconds(19),
                    payment.clone(),
                );
                app.apply(Update::Event(captured));
                let paid = event("order.paid", at + Duration::seconds(20), order.clone());
                app.apply(Update::Event(paid));
                if i % 10 == 3 {
                    let refunded = event("payment.refunded", at + Duration::seconds(50), payment);
                    app.apply(Update::Event(refunded));
                }
            }
            if next != "paid" {
                let kind = format!("order.{next}");
                let moved = event(&kind, at + Duration::seconds(40), order);
                app.apply(Update::Event(moved));
            }
        }
    }
    let queries = [
        "red shoes",
        "boots",
        "linen shirt",
        "umbrella",
        "qwzx",
        "boots",
    ];
    for i in 0..40usize {
        let query = queries[i % queries.len()];
        let results = if query == "qwzx" {
            0
        } else {
            3 + i as u64 % 17
        };
        let at = now - Duration::seconds(((40 - i) * 20) as i64);
        let data = json!({
            "query": query,
            "result_count": results,
            "latency_ms": 1.5 + (i % 7) as f64,
            "cache_hit": i % 3 != 0,
        });
        app.apply(Update::Event(event("search.query", at, data)));
    }
    for (i, (kind, sku, delta, available, reason)) in [
        ("inventory.adjusted", "SKU-0001", -2, 3, Some("recount")),
        ("inventory.adjusted", "SKU-0042", 20, 64, Some("delivery")),
        ("inventory.reserved", "SKU-0007", 0, 0, None),
        ("inventory.committed", "SKU-0007", -1, 0, None),
    ]
    .into_iter()
    .enumerate()
    {
        let at = now - Duration::seconds(90 - i as i64 * 20);
        let data = json!({
            "sku": sku, "on_hand": available + 1, "reserved": 1, "available": available,
            "low_stock_threshold": 5, "delta": delta, "reason": reason,
            "quantity": if delta == 0 || kind == "inventory.committed" { Some(1) } else { None },
        });
        app.apply(Update::Event(event(kind, at, data)));
    }
    let registered = json!({"email": "dana@example.com", "user_id": "usr_01"});
    app.apply(Update::Event(event(
        "user.registered",
        now - Duration::seconds(5),
        registered,
    )));
    app.tick(now);
    app
}

fn stock(sku: &str, available: i64, threshold: i64, now: OffsetDateTime) -> Stock {
    Stock {
        sku: sku.to_owned(),
        on_hand: available + 2,
        reserved: 2,
        available,
        low_stock_threshold: threshold,
        updated_at: now,
    }
}

fn health(unwell: &[(&str, HealthStatus)]) -> SystemHealth {
    let services: Vec<ServiceHealth> = SERVICES
        .iter()
        .map(|name| ServiceHealth {
            service: (*name).to_owned(),
            status: unwell
                .iter()
                .find(|(n, _)| n == name)
                .map_or(HealthStatus::Ok, |(_, s)| *s),
            checks: BTreeMap::new(),
        })
        .collect();
    SystemHealth {
        status: services
            .iter()
            .map(|s| s.status)
            .max()
            .unwrap_or(HealthStatus::Ok),
        version: "0.1.0".into(),
        uptime_seconds: 3 * 3600 + 125,
        services,
    }
}
