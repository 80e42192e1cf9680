//! Made-up but plausible states, built through the same [`App::apply`] the
//! live feed uses: for the snapshot tests and the render benchmark. All
//! times derive from the `now` passed in, so a fixed `now` gives the same
//! screen every run.

use std::collections::BTreeMap;

use shop_wire::events::{
    EventData, MakeEvent, PaymentEvent, RefundPart, ReservationPart, SearchQueryEvent, StockEvent,
    UserEvent,
};
use shop_wire::inventory::{MovementKind, Stock};
use shop_wire::money::Currency;
use shop_wire::notifications::{Channel, Notification, NotificationStatus, Priority};
use shop_wire::orders::{Order, OrderItem, OrderStatus};
use shop_wire::payments::{MethodKind, PaymentStatus, RefundStatus};
use shop_wire::{Event, HealthStatus, Role, ServiceHealth, SystemHealth};
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
    app.apply(Update::Notifications(Section::Missing));
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
    let mut event = |at: OffsetDateTime, data: EventData| {
        id += 1;
        event(id, at, data)
    };
    for i in 0..orders {
        let at = now - Duration::seconds(((orders - i) * 30 / orders.max(1)) as i64 * 60);
        let order = order(i, at);
        app.apply(Update::Event(event(
            at,
            EventData::OrderCreated(order.clone()),
        )));
        let next = match i % 5 {
            0 => Some(OrderStatus::Paid),
            1 => Some(OrderStatus::Shipped),
            2 => Some(OrderStatus::Cancelled),
            3 => Some(OrderStatus::Delivered),
            _ => None,
        };
        let Some(next) = next else {
            continue;
        };
        if next != OrderStatus::Cancelled {
            let captured = payment(&order, i as u64, false);
            let at = at + Duration::seconds(19);
            app.apply(Update::Event(event(
                at,
                EventData::PaymentSucceeded(captured),
            )));
            let paid = Order {
                status: OrderStatus::Paid,
                ..order.clone()
            };
            let at = at + Duration::seconds(1);
            app.apply(Update::Event(event(at, EventData::OrderPaid(paid))));
            if i % 10 == 3 {
                let refunded = payment(&order, i as u64, true);
                let at = at + Duration::seconds(30);
                app.apply(Update::Event(event(
                    at,
                    EventData::PaymentRefunded(refunded),
                )));
            }
        }
        if next != OrderStatus::Paid {
            let moved = Order {
                status: next,
                ..order
            };
            let make: fn(Order) -> EventData = match next {
                OrderStatus::Shipped => EventData::OrderShipped,
                OrderStatus::Delivered => EventData::OrderDelivered,
                _ => EventData::OrderCancelled,
            };
            let at = at + Duration::seconds(40);
            app.apply(Update::Event(event(at, make(moved))));
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
        let data = SearchQueryEvent {
            query: query.to_owned(),
            normalized: query.to_owned(),
            filters: serde_json::Value::Object(Default::default()),
            result_count: results,
            latency_ms: 1.5 + (i % 7) as f64,
            cache_hit: i % 3 != 0,
        };
        app.apply(Update::Event(event(at, EventData::SearchQuery(data))));
    }
    let movements = [
        (MovementKind::Adjust, "SKU-0001", -2, 3, Some("recount")),
        (MovementKind::Adjust, "SKU-0042", 20, 64, Some("delivery")),
        (MovementKind::Reserve, "SKU-0007", 0, 0, None),
        (MovementKind::Commit, "SKU-0007", -1, 0, None),
    ];
    for (i, (kind, sku, delta, available, reason)) in movements.into_iter().enumerate() {
        let make: MakeEvent<StockEvent> = match kind {
            MovementKind::Reserve => EventData::InventoryReserved,
            MovementKind::Commit => EventData::InventoryCommitted,
            _ => EventData::InventoryAdjusted,
        };
        let at = now - Duration::seconds(90 - i as i64 * 20);
        // A reservation held or turned into a sale says how many units.
        let held = delta == 0 || kind == MovementKind::Commit;
        let data = StockEvent {
            sku: sku.to_owned(),
            kind,
            on_hand: available + 1,
            reserved: 1,
            available,
            low_stock_threshold: 5,
            delta,
            reason: reason.map(str::to_owned),
            actor: None,
            reservation: held.then(|| ReservationPart {
                reservation_id: id_of("res", i as u64),
                quantity: 1,
                reference: None,
            }),
        };
        app.apply(Update::Event(event(at, make(data))));
    }
    let registered = UserEvent {
        user_id: id_of("usr", 1),
        email: "dana@example.com".to_owned(),
        name: "Dana".to_owned(),
        role: Role::Customer,
    };
    app.apply(Update::Event(event(
        now - Duration::seconds(5),
        EventData::UserRegistered(registered),
    )));
    app.apply(Update::Notifications(Section::Ready(notifications(now))));
    app.tick(now);
    app
}

/// An event of the log as the server sends it.
pub fn event(id: u64, at: OffsetDateTime, data: EventData) -> Event {
    Event {
        id,
        kind: data.kind().as_str().to_owned(),
        occurred_at: at,
        data: data.to_value(),
    }
}

/// An id of any kind that reads the same every run: `ord_000…0042`.
pub fn id_of<T: std::str::FromStr>(prefix: &str, n: u64) -> T
where
    T::Err: std::fmt::Debug,
{
    format!("{prefix}_{n:026}")
        .parse()
        .expect("26 decimal digits are a valid ULID body")
}

/// The `i`th sample order, pending, placed at `at`.
pub fn order(i: usize, at: OffsetDateTime) -> Order {
    let quantity = 1 + i as i64 % 3;
    Order {
        id: id_of("ord", i as u64),
        number: format!("ORD-{:06}", 1000 + i),
        status: OrderStatus::Pending,
        financial_status: shop_wire::orders::FinancialStatus::Pending,
        items: vec![OrderItem {
            sku: format!("SKU-{:04}", i % 40),
            name: "Thing".to_owned(),
            quantity,
            unit_price_cents: 1999,
            line_total_cents: 1999,
        }],
        item_count: quantity,
        total_cents: 1999 + (i as i64 * 1250) % 20_000,
        refunded_cents: 0,
        currency: Currency::USD,
        customer_email: format!("c{i}@example.com"),
        user_id: None,
        payment_id: None,
        cart_id: None,
        payment_error: None,
        tracking_number: None,
        fulfillment_status: shop_wire::orders::FulfillmentStatus::Unfulfilled,
        fulfillments: Vec::new(),
        pricing: Default::default(),
        history: Vec::new(),
        created_at: at,
        updated_at: at,
    }
}

/// The card payment of an order that paid all of it, or the refund of all of it.
pub fn payment(order: &Order, n: u64, refunded: bool) -> PaymentEvent {
    let id: shop_wire::PaymentId = id_of("pay", n);
    PaymentEvent {
        id: id.clone(),
        payment_id: id,
        order_id: order.id.clone(),
        number: order.number.clone(),
        customer_email: order.customer_email.clone(),
        method: MethodKind::Card,
        status: PaymentStatus::Succeeded,
        provider: "simulated".to_owned(),
        currency: order.currency,
        amount_cents: order.total_cents,
        refunded_cents: if refunded { order.total_cents } else { 0 },
        failure_code: None,
        refund: refunded.then(|| RefundPart {
            payment_amount_cents: order.total_cents,
            refund_id: id_of("ref", n),
            refund_status: RefundStatus::Succeeded,
            reason: None,
        }),
    }
}

/// Order emails: most sent, one dead after its attempts, one failed and
/// waiting for a retry, one still queued.
pub fn notifications(now: OffsetDateTime) -> Vec<Notification> {
    (0..8u64)
        .map(|i| {
            let at = now - Duration::minutes(10 - i as i64);
            let (status, attempts, error) = match i {
                2 => (
                    NotificationStatus::Dead,
                    5,
                    Some("smtp: 550 mailbox unavailable"),
                ),
                5 => (
                    NotificationStatus::Failed,
                    2,
                    Some("smtp: connection reset"),
                ),
                7 => (NotificationStatus::Queued, 0, None),
                _ => (NotificationStatus::Sent, 1, None),
            };
            Notification {
                id: id_of("ntf", i),
                channel: Channel::Email,
                recipient: format!("c{}@example.com", 10 + i),
                template: "order_confirmation".to_owned(),
                priority: Priority::Normal,
                status,
                attempts,
                last_error: error.map(str::to_owned),
                created_at: at,
                sent_at: (status == NotificationStatus::Sent).then_some(at),
                send_at: at,
                updated_at: at,
                event_id: None,
                resent_from: None,
                vars: None,
                rendered: None,
                history: Vec::new(),
            }
        })
        .collect()
}

fn stock(sku: &str, available: i64, threshold: i64, now: OffsetDateTime) -> Stock {
    Stock {
        sku: sku.to_owned(),
        name: None,
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
