//! Orders in PostgreSQL.
//!
//! The checkout is split where the provider is called, as on SQLite: one
//! transaction records the order `pending`, holds its stock and records the
//! payment `processing`; the provider is asked outside any transaction; a
//! second records the answer (in `payments`).
//!
//! Writers run at once here, so every step of an existing order locks the
//! order's row first: steps of one order (a shipment, a cancellation, a
//! payment's answer, a refund's) queue, and each decides from what the one
//! before it committed. Below the order, locks are taken as the inventory
//! takes them: reservations, then stock rows in SKU order. The sweeper of
//! unpaid orders skips orders another node's sweep holds. Order numbers
//! come from a sequence.

use async_trait::async_trait;
use shop_wire::events::{EventData, MakeEvent};
use shop_wire::inventory::ReservationStatus;
use shop_wire::money::Currency;
use shop_wire::orders::{
    Fulfillment, FulfillmentItem, FulfillmentStatus, Order, OrderId, OrderItem, OrderStatus,
    PaymentFailure, StatusChange,
};
use shop_wire::pricing::OrderPricing;
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, PgConnection, Row};
use time::OffsetDateTime;

use super::carts::{
    cart_lines, check_lines, check_out_cart, lines_held, lock_cart, product_info, reprice_cart,
};
use super::filter::Filter;
use super::inventory::{
    Hold, available, extend_reservations, finish_active, reservation_of, reserve_checked, restock,
    sell_unreserved,
};
use super::payments::{insert_payment, payment_in_flight, read_payment};
use super::pricing::{claim_discounts, release_discounts};
use super::{PgStore, audit, backend, parse};
use crate::services::cart::rules::{self as cart_rules, CheckoutRefusal};
use crate::services::inventory::rules::demand_per_sku;
use crate::services::orders::fulfilment::{self, ShipRefusal, ShipmentPlan, ShippedLine};
use crate::services::orders::rules::{
    self, Cancellation, LineHold, PaymentFacts, Payments, Transition, TransitionRefusal,
};
use crate::services::pricing::rules::{Wanted, gives_back_discounts, order_total, price_checkout};
use crate::store::audit::{order_change, order_state};
use crate::store::{
    AuditChange, CommerceEvents, LineRefusal, NewEvent, OrderCreate, OrderDraft, OrderKey,
    OrderQuery, OrderSource, OrderStore, ReserveItem, ShipOutcome, ShipmentDraft, StoreError,
    StoreResult, StoredItem, TransitionOutcome, TransitionRequest, now,
};

const ORDER_COLUMNS: &str = "id, number, status, financial_status, customer_email, user_id, \
     cart_id, currency, total_cents, refunded_cents, payment_id, payment_error_code, \
     payment_error_message, tracking_number, created_at, updated_at, pricing::text AS pricing";

fn order_row(row: &PgRow) -> StoreResult<Order> {
    let error_code: Option<String> = row.try_get("payment_error_code")?;
    let error_message: Option<String> = row.try_get("payment_error_message")?;
    let total_cents: i64 = row.try_get("total_cents")?;
    let pricing = match row.try_get::<Option<String>, _>("pricing")? {
        Some(text) => serde_json::from_str(&text).map_err(backend)?,
        // Placed before pricing (a copied SQLite shop): the total was the goods.
        None => OrderPricing {
            subtotal_cents: total_cents,
            ..OrderPricing::default()
        },
    };
    Ok(Order {
        id: parse(row, "id")?,
        number: rules::order_number(row.try_get("number")?),
        status: parse(row, "status")?,
        financial_status: parse(row, "financial_status")?,
        items: Vec::new(),
        item_count: 0,
        total_cents,
        refunded_cents: row.try_get("refunded_cents")?,
        currency: parse(row, "currency")?,
        customer_email: row.try_get("customer_email")?,
        user_id: optional_id(row, "user_id")?,
        payment_id: optional_id(row, "payment_id")?,
        cart_id: optional_id(row, "cart_id")?,
        payment_error: error_code.map(|code| PaymentFailure {
            code,
            message: error_message.unwrap_or_default(),
        }),
        tracking_number: row.try_get("tracking_number")?,
        fulfillment_status: FulfillmentStatus::Unfulfilled,
        fulfillments: Vec::new(),
        pricing,
        history: Vec::new(),
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn optional_id<T: std::str::FromStr>(row: &PgRow, column: &str) -> StoreResult<Option<T>>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    row.try_get::<Option<String>, _>(column)?
        .map(|text| text.parse::<T>().map_err(backend))
        .transpose()
}

async fn order_items(conn: &mut PgConnection, order: &str) -> StoreResult<Vec<StoredItem>> {
    sqlx::query(
        "SELECT i.position, i.sku, i.name, i.quantity, i.unit_price_cents, i.reservation_id,
                coalesce(r.status = 'active', false) AS held, i.shipped_quantity
         FROM order_items i LEFT JOIN reservations r ON r.id = i.reservation_id
         WHERE i.order_id = $1 ORDER BY i.position",
    )
    .bind(order)
    .fetch_all(conn)
    .await?
    .iter()
    .map(|row| {
        let quantity: i64 = row.try_get("quantity")?;
        let unit: i64 = row.try_get("unit_price_cents")?;
        Ok(StoredItem {
            position: row.try_get("position")?,
            item: OrderItem {
                sku: row.try_get("sku")?,
                name: row.try_get("name")?,
                quantity,
                unit_price_cents: unit,
                line_total_cents: quantity * unit,
            },
            reservation_id: row.try_get("reservation_id")?,
            held: row.try_get("held")?,
            shipped: row.try_get("shipped_quantity")?,
        })
    })
    .collect()
}

/// Gives the order its lines, its shipments and how far it went out.
async fn set_items(
    conn: &mut PgConnection,
    order: &mut Order,
    items: &[StoredItem],
) -> StoreResult<()> {
    order.item_count = items.iter().map(|i| i.item.quantity).sum();
    order.items = items.iter().map(|i| i.item.clone()).collect();
    order.fulfillment_status = fulfilment::fulfillment_status(
        order.status,
        items.iter().map(|i| (i.item.quantity, i.shipped)),
    );
    order.fulfillments = if items.iter().any(|i| i.shipped > 0) {
        fulfillments(conn, order.id.as_str()).await?
    } else {
        Vec::new()
    };
    Ok(())
}

async fn with_items(conn: &mut PgConnection, mut order: Order) -> StoreResult<Order> {
    let items = order_items(conn, order.id.as_str()).await?;
    set_items(conn, &mut order, &items).await?;
    Ok(order)
}

/// An order's shipments, oldest first, each with its units per SKU.
async fn fulfillments(conn: &mut PgConnection, order: &str) -> StoreResult<Vec<Fulfillment>> {
    let mut shipments: Vec<Fulfillment> = sqlx::query(
        "SELECT id, carrier, tracking_number, tracking_url, shipped_at, delivered_at
         FROM fulfillments WHERE order_id = $1 ORDER BY shipped_at, id",
    )
    .bind(order)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(|row| {
        Ok(Fulfillment {
            id: parse(row, "id")?,
            items: Vec::new(),
            carrier: row.try_get("carrier")?,
            tracking_number: row.try_get("tracking_number")?,
            tracking_url: row.try_get("tracking_url")?,
            shipped_at: row.try_get("shipped_at")?,
            delivered_at: row.try_get("delivered_at")?,
        })
    })
    .collect::<StoreResult<_>>()?;
    let units = sqlx::query(
        "SELECT i.fulfillment_id, i.sku, sum(i.quantity)::bigint AS quantity
         FROM fulfillment_items i JOIN fulfillments f ON f.id = i.fulfillment_id
         WHERE f.order_id = $1
         GROUP BY i.fulfillment_id, i.sku ORDER BY i.fulfillment_id, min(i.position)",
    )
    .bind(order)
    .fetch_all(&mut *conn)
    .await?;
    for row in &units {
        let shipment: String = row.try_get("fulfillment_id")?;
        if let Some(shipment) = shipments.iter_mut().find(|f| f.id.as_str() == shipment) {
            shipment.items.push(FulfillmentItem {
                sku: row.try_get("sku")?,
                quantity: row.try_get("quantity")?,
            });
        }
    }
    Ok(shipments)
}

async fn history(conn: &mut PgConnection, order: &str) -> StoreResult<Vec<StatusChange>> {
    sqlx::query(
        "SELECT from_status, to_status, actor, note, at FROM order_history
         WHERE order_id = $1 ORDER BY id",
    )
    .bind(order)
    .fetch_all(conn)
    .await?
    .iter()
    .map(|row| {
        Ok(StatusChange {
            from: row
                .try_get::<Option<String>, _>("from_status")?
                .map(|s| s.parse::<OrderStatus>())
                .transpose()
                .map_err(|err| backend(std::io::Error::other(err)))?,
            to: parse(row, "to_status")?,
            actor: row.try_get("actor")?,
            note: row.try_get("note")?,
            at: row.try_get("at")?,
        })
    })
    .collect()
}

/// One order with its lines (and their holds) and history: everything a
/// step of the order needs, loaded once. `lock` holds the order's row for
/// this transaction, which every step of an existing order takes first.
pub(super) async fn load_order(
    conn: &mut PgConnection,
    id: &str,
    lock: bool,
) -> StoreResult<Option<(Order, Vec<StoredItem>)>> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let sql = format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = $1{lock}");
    let order = sqlx::query(AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .as_ref()
        .map(order_row)
        .transpose()?;
    let Some(mut order) = order else {
        return Ok(None);
    };
    let items = order_items(conn, id).await?;
    set_items(conn, &mut order, &items).await?;
    order.history = history(conn, id).await?;
    Ok(Some((order, items)))
}

/// One order with its lines and history.
async fn read_order(conn: &mut PgConnection, id: &str) -> StoreResult<Option<Order>> {
    Ok(load_order(conn, id, false).await?.map(|(order, _)| order))
}

pub(super) async fn must_read_order(tx: &mut PgConnection, id: &str) -> StoreResult<Order> {
    read_order(tx, id)
        .await?
        .ok_or_else(|| StoreError::Backend(format!("order {id} vanished mid-change").into()))
}

/// The order `id`, its row locked, with its lines; it must exist.
pub(super) async fn must_lock_order(
    tx: &mut PgConnection,
    id: &str,
) -> StoreResult<(Order, Vec<StoredItem>)> {
    load_order(tx, id, true)
        .await?
        .ok_or_else(|| StoreError::Backend(format!("order {id} vanished mid-change").into()))
}

/// Logs a status change in the order's history and answers it.
pub(super) async fn insert_history(
    tx: &mut PgConnection,
    order: &str,
    (from, to): (Option<OrderStatus>, OrderStatus),
    actor: &str,
    note: Option<&str>,
    at: OffsetDateTime,
) -> StoreResult<StatusChange> {
    sqlx::query(
        "INSERT INTO order_history (order_id, from_status, to_status, actor, note, at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(order)
    .bind(from.map(OrderStatus::as_str))
    .bind(to.as_str())
    .bind(actor)
    .bind(note)
    .bind(at)
    .execute(&mut *tx)
    .await?;
    Ok(StatusChange {
        from,
        to,
        actor: actor.to_owned(),
        note: note.map(str::to_owned),
        at,
    })
}

/// Brings the order's stored financial status in line with its refunds
/// (the orders service's rule), here and in `order`.
pub(super) async fn settle_financial_status(
    tx: &mut PgConnection,
    order: &mut Order,
) -> StoreResult<()> {
    let settled = rules::financial_status(order.status, order.total_cents, order.refunded_cents);
    if settled != order.financial_status {
        sqlx::query("UPDATE orders SET financial_status = $2 WHERE id = $1")
            .bind(order.id.as_str())
            .bind(settled.as_str())
            .execute(&mut *tx)
            .await?;
        order.financial_status = settled;
    }
    Ok(())
}

/// Moves an order from its status to `to` (guarded: only if it still has
/// it) with its history entry, and answers the order as it now is.
async fn move_order(
    tx: &mut PgConnection,
    mut order: Order,
    to: OrderStatus,
    actor: &str,
    note: Option<&str>,
) -> StoreResult<Order> {
    let at = now();
    let from = order.status;
    let financial = rules::financial_status(to, order.total_cents, order.refunded_cents);
    let changed = sqlx::query(
        "UPDATE orders SET status = $3, financial_status = $5, updated_at = $4
         WHERE id = $1 AND status = $2",
    )
    .bind(order.id.as_str())
    .bind(from.as_str())
    .bind(to.as_str())
    .bind(at)
    .bind(financial.as_str())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if changed != 1 {
        return Err(StoreError::Backend(
            format!("order {} left {from} under this change", order.id).into(),
        ));
    }
    let change = insert_history(tx, order.id.as_str(), (Some(from), to), actor, note, at).await?;
    order.status = to;
    order.financial_status = financial;
    order.updated_at = at;
    order.history.push(change);
    Ok(order)
}

/// What the order's payments are doing, for its state machine to decide a move.
async fn payment_facts(tx: &mut PgConnection, order: &Order) -> StoreResult<Payments> {
    let in_flight = payment_in_flight(tx, order.id.as_str())
        .await?
        .map(|p| p.status);
    let captured = match &order.payment_id {
        Some(id) if order.status != OrderStatus::Pending => {
            read_payment(tx, id.as_str()).await?.map(|p| PaymentFacts {
                id: p.id,
                amount_cents: p.amount_cents,
                refunded_cents: p.refunded_cents,
            })
        }
        _ => None,
    };
    Ok(Payments {
        in_flight,
        captured,
    })
}

/// The free units of each SKU among `lines` (their stock rows locked, in
/// SKU order), loaded for a rule to judge.
pub(super) async fn availability(
    tx: &mut PgConnection,
    lines: &[ReserveItem],
) -> StoreResult<Vec<(String, i64)>> {
    let mut skus: Vec<&str> = lines.iter().map(|line| line.sku.as_str()).collect();
    skus.sort_unstable();
    skus.dedup();
    let mut levels: Vec<(String, i64)> = Vec::with_capacity(skus.len());
    for sku in skus {
        if let Some(free) = available(tx, sku).await? {
            levels.push((sku.to_owned(), free));
        }
    }
    Ok(levels)
}

pub(super) fn free_units(levels: &[(String, i64)]) -> impl Fn(&str) -> Option<i64> + '_ {
    |sku| levels.iter().find(|(s, _)| s == sku).map(|(_, free)| *free)
}

/// Cancels an order (locked by the caller) in this transaction as
/// `cancellation` says: a pending one's stock is released (and a bank
/// transfer awaiting settlement is cancelled), a paid one's sold units go
/// back on hand.
pub(super) async fn cancel_order(
    tx: &mut PgConnection,
    order: Order,
    cancellation: Cancellation,
    (actor, note): (&str, Option<&str>),
    events: CommerceEvents,
    pending: &mut Vec<NewEvent>,
) -> StoreResult<Order> {
    let id = order.id.as_str();
    match cancellation {
        Cancellation::ReleaseHolds => {
            for item in order_items(tx, id).await? {
                let Some(reservation) = item.reservation_id.as_deref().filter(|_| item.held) else {
                    continue;
                };
                let released = ReservationStatus::Released;
                let actor = Some(actor.to_owned());
                if let Some(effect) = finish_active(tx, reservation, released, actor).await? {
                    pending.extend((events.stock)(&effect));
                }
            }
            sqlx::query(
                "UPDATE payments SET status = 'canceled', updated_at = $2
                 WHERE order_id = $1 AND status = 'pending'",
            )
            .bind(id)
            .bind(now())
            .execute(&mut *tx)
            .await?;
        }
        Cancellation::Restock => {
            let reason = format!("{} cancelled: restock", order.number);
            let mut items = order_items(tx, id).await?;
            // Stock rows are locked in SKU order, as every change takes them.
            items.sort_by(|a, b| a.item.sku.cmp(&b.item.sku));
            for item in items {
                let (sku, quantity) = (&item.item.sku, item.item.quantity);
                let actor = Some(actor.to_owned());
                if let Some(effect) = restock(tx, sku, quantity, reason.clone(), actor).await? {
                    pending.extend((events.stock)(&effect));
                }
            }
        }
    }
    let cancelled = move_order(tx, order, OrderStatus::Cancelled, actor, note).await?;
    if gives_back_discounts(&cancelled) {
        release_discounts(tx, cancelled.id.as_str()).await?;
    }
    pending.push((events.order)(EventData::OrderCancelled, &cancelled));
    Ok(cancelled)
}

/// Holds stock again for the lines of a pending order (locked) whose hold
/// ran out; `Err` with the refusal (and nothing written) when the stock is gone.
pub(super) async fn hold_again(
    tx: &mut PgConnection,
    order: &Order,
    items: &[StoredItem],
    (hold_until, actor): (OffsetDateTime, &str),
    events: CommerceEvents,
    pending: &mut Vec<NewEvent>,
) -> StoreResult<Result<(), LineRefusal>> {
    let id = order.id.as_str();
    let lines: Vec<LineHold> = items.iter().map(StoredItem::hold).collect();
    let lapsed = rules::lapsed(&lines);
    let levels = availability(tx, &lapsed).await?;
    if let Err(refusal) = rules::check_hold_again(&lapsed, free_units(&levels)) {
        return Ok(Err(refusal.into()));
    }
    let mut held = Vec::with_capacity(items.len());
    for item in items {
        if item.held {
            held.extend(item.reservation_id.clone());
            continue;
        }
        let line = ReserveItem {
            sku: item.item.sku.clone(),
            quantity: item.item.quantity,
        };
        let hold = Hold {
            expires_at: hold_until,
            reference: Some(id.to_owned()),
            actor: Some(actor.to_owned()),
        };
        let effect = reserve_checked(tx, &line, hold).await?;
        let reservation = reservation_of(&effect);
        sqlx::query(
            "UPDATE order_items SET reservation_id = $3 WHERE order_id = $1 AND position = $2",
        )
        .bind(id)
        .bind(item.position)
        .bind(&reservation)
        .execute(&mut *tx)
        .await?;
        pending.extend((events.stock)(&effect));
        held.push(reservation);
    }
    extend_reservations(tx, &held, hold_until, id).await?;
    set_pay_by(tx, id, hold_until).await?;
    Ok(Ok(()))
}

pub(super) async fn set_pay_by(
    tx: &mut PgConnection,
    order: &str,
    pay_by: OffsetDateTime,
) -> StoreResult<()> {
    sqlx::query("UPDATE orders SET pay_by = $2 WHERE id = $1")
        .bind(order)
        .bind(pay_by)
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Commits the stock of a paid order, as [`rules::decide_fulfilment`]
/// allowed: each held line's reservation, or, where the hold ran out, units
/// still available.
pub(super) async fn commit_stock(
    tx: &mut PgConnection,
    order: &Order,
    items: &[StoredItem],
    actor: &str,
    events: CommerceEvents,
    pending: &mut Vec<NewEvent>,
) -> StoreResult<()> {
    for item in items {
        let committed = match &item.reservation_id {
            Some(reservation) if item.held => {
                let to = ReservationStatus::Committed;
                finish_active(tx, reservation, to, Some(actor.to_owned())).await?
            }
            _ => None,
        };
        let effect = match committed {
            Some(effect) => effect,
            None => {
                let reason = format!("{} paid after its hold ran out", order.number);
                let (sku, quantity) = (&item.item.sku, item.item.quantity);
                sell_unreserved(tx, sku, quantity, reason, Some(actor.to_owned())).await?
            }
        };
        pending.extend((events.stock)(&effect));
    }
    Ok(())
}

/// Prices an order's lines by its checkout and claims its discounts' uses,
/// before anything of the order is written: the breakdown to freeze, or
/// the answer that refuses the order.
async fn price_and_claim(
    tx: &mut PgConnection,
    draft: &OrderDraft,
    wanted: &[Wanted],
    at: OffsetDateTime,
) -> StoreResult<Result<OrderPricing, OrderCreate>> {
    let price = match price_checkout(&draft.checkout, wanted, true, at) {
        Ok(price) => price,
        Err(unpriced) => return Ok(Err(OrderCreate::Unpriceable(unpriced))),
    };
    let (order, customer) = (draft.id.as_str(), &draft.customer_email);
    if let Err(refusal) = claim_discounts(tx, order, customer, &price.uses).await? {
        return Ok(Err(OrderCreate::DiscountUsedUp(refusal)));
    }
    Ok(Ok(price.freeze(&draft.checkout)))
}

/// An order's lines with the reservations that hold them, its currency,
/// price and cart, as its source (items or a cart) gives them.
struct Placed {
    lines: Vec<(OrderItem, String)>,
    currency: Currency,
    pricing: OrderPricing,
    cart_id: Option<shop_wire::cart::CartId>,
}

/// Checks, prices and holds the items asked for; or the answer that refuses them.
async fn place_items(
    tx: &mut PgConnection,
    draft: &OrderDraft,
    items: &[ReserveItem],
    events: CommerceEvents,
    pending: &mut Vec<NewEvent>,
) -> StoreResult<Result<Placed, OrderCreate>> {
    let at = now();
    let items = demand_per_sku(items);
    let products = match check_lines(tx, &items, None).await? {
        Ok(products) => products,
        Err(LineRefusal::CurrencyMismatch { .. }) => return Ok(Err(OrderCreate::MixedCurrencies)),
        Err(refusal) => return Ok(Err(OrderCreate::Refused(refusal))),
    };
    if let Err(refusal) = cart_rules::check_all_quantities(&items, &products, draft.limits) {
        return Ok(Err(OrderCreate::Refused(refusal)));
    }
    let currency = cart_rules::currency_of(products.first().map(|p| p.currency));
    let wanted: Vec<Wanted> = items
        .iter()
        .zip(&products)
        .map(|(item, product)| Wanted {
            sku: item.sku.clone(),
            quantity: item.quantity,
            unit_price_cents: Some(product.price_cents),
        })
        .collect();
    let pricing = match price_and_claim(tx, draft, &wanted, at).await? {
        Ok(pricing) => pricing,
        Err(refused) => return Ok(Err(refused)),
    };
    let mut lines = Vec::with_capacity(items.len());
    for (item, product) in items.iter().zip(products) {
        let hold = Hold {
            expires_at: draft.pay_by,
            reference: Some(draft.id.to_string()),
            actor: Some(draft.actor.clone()),
        };
        let effect = reserve_checked(tx, item, hold).await?;
        pending.extend((events.stock)(&effect));
        let line = OrderItem {
            sku: item.sku.clone(),
            name: product.name,
            quantity: item.quantity,
            unit_price_cents: product.price_cents,
            line_total_cents: item.quantity * product.price_cents,
        };
        lines.push((line, reservation_of(&effect)));
    }
    Ok(Ok(Placed {
        lines,
        currency,
        pricing,
        cart_id: None,
    }))
}

/// Checks and prices a cart's lines and takes over their holds, checking the
/// cart out; or the answer that refuses it (a cart repriced on the way
/// logs that in `pending`, and stays repriced).
async fn place_cart(
    tx: &mut PgConnection,
    draft: &OrderDraft,
    cart: &shop_wire::cart::CartId,
    events: CommerceEvents,
    pending: &mut Vec<NewEvent>,
) -> StoreResult<Result<Placed, OrderCreate>> {
    let at = now();
    let Some(record) = lock_cart(tx, cart.as_str()).await? else {
        return Ok(Err(OrderCreate::CartNotFound));
    };
    let state = cart_rules::CartState {
        status: record.cart.status,
        version: record.cart.version,
        expires_at: record.cart.expires_at,
    };
    let held = lines_held(tx, cart.as_str()).await?;
    match cart_rules::check_checkout(state, record.cart.items.len(), held, at) {
        Ok(()) => {}
        Err(CheckoutRefusal::NotActive(status)) => {
            return Ok(Err(OrderCreate::CartNotActive(status)));
        }
        Err(CheckoutRefusal::Empty) => return Ok(Err(OrderCreate::CartEmpty)),
    }
    let mut prices = Vec::with_capacity(record.cart.items.len());
    for item in &record.cart.items {
        let product = product_info(tx, &item.sku).await?;
        if let Err(refusal) = cart_rules::check_orderable(&item.sku, product.as_ref()) {
            return Ok(Err(OrderCreate::Refused(refusal)));
        }
        if let Some(product) = product {
            prices.push((
                item.sku.as_str(),
                item.unit_price_cents,
                product.price_cents,
            ));
        }
    }
    let changes = cart_rules::price_changes(prices);
    if !changes.is_empty() {
        pending.push(reprice_cart(tx, cart.as_str(), &changes, events).await?);
        return Ok(Err(OrderCreate::PricesChanged(changes)));
    }
    let wanted: Vec<Wanted> = record
        .cart
        .items
        .iter()
        .map(|item| Wanted {
            sku: item.sku.clone(),
            quantity: item.quantity,
            unit_price_cents: Some(item.unit_price_cents),
        })
        .collect();
    let pricing = match price_and_claim(tx, draft, &wanted, at).await? {
        Ok(pricing) => pricing,
        Err(refused) => return Ok(Err(refused)),
    };
    let taken = cart_lines(tx, cart.as_str()).await?;
    let reservations: Vec<String> = taken.iter().map(|(_, r)| r.clone()).collect();
    extend_reservations(tx, &reservations, draft.pay_by, draft.id.as_str()).await?;
    let lines = taken
        .into_iter()
        .map(|(item, reservation)| {
            let line = OrderItem {
                sku: item.sku,
                name: item.name,
                quantity: item.quantity,
                unit_price_cents: item.unit_price_cents,
                line_total_cents: item.line_total_cents,
            };
            (line, reservation)
        })
        .collect();
    check_out_cart(tx, cart.as_str(), events, pending).await?;
    Ok(Ok(Placed {
        lines,
        currency: record.cart.currency,
        pricing,
        cart_id: Some(cart.clone()),
    }))
}

async fn create(
    tx: &mut PgConnection,
    draft: &OrderDraft,
    events: CommerceEvents,
) -> StoreResult<(OrderCreate, Vec<NewEvent>)> {
    if let Some(key) = &draft.idempotency_key {
        // Checkouts with one key queue here, so a retry racing its first
        // attempt finds the order instead of failing on the unique key.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(format!("checkout {key}"))
            .execute(&mut *tx)
            .await?;
        let existing: Option<String> =
            sqlx::query_scalar("SELECT id FROM orders WHERE idempotency_key = $1")
                .bind(key)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(id) = existing {
            let order = must_read_order(tx, &id).await?;
            return Ok((OrderCreate::Existing(Box::new(order)), Vec::new()));
        }
    }
    if let (Some(user), Some(max)) = (&draft.user_id, draft.max_unpaid) {
        // A customer's checkouts count their unpaid orders one at a time.
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
            .bind(format!("unpaid orders of {user}"))
            .execute(&mut *tx)
            .await?;
        let unpaid: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM orders WHERE user_id = $1 AND status = 'pending'",
        )
        .bind(user.as_str())
        .fetch_one(&mut *tx)
        .await?;
        if let Err(max) = rules::check_unpaid(unpaid.unsigned_abs(), max) {
            return Ok((OrderCreate::TooManyUnpaid(max), Vec::new()));
        }
    }
    let id = draft.id.as_str();
    let at = now();
    let mut pending = Vec::new();
    let placed = match &draft.source {
        OrderSource::Items(items) => place_items(tx, draft, items, events, &mut pending).await?,
        OrderSource::Cart(cart) => place_cart(tx, draft, cart, events, &mut pending).await?,
    };
    let Placed {
        lines,
        currency,
        pricing,
        cart_id,
    } = match placed {
        Ok(placed) => placed,
        Err(refused) => return Ok((refused, pending)),
    };
    let total = order_total(&pricing);
    let number: i64 = sqlx::query_scalar("SELECT nextval('order_numbers')")
        .fetch_one(&mut *tx)
        .await?;
    let payment_id = draft.payment.as_ref().map(|p| p.id.clone());
    sqlx::query(
        "INSERT INTO orders (id, number, status, financial_status, customer_email, user_id,
             cart_id, currency, total_cents, payment_id, idempotency_key, pay_by, created_at,
             updated_at, subtotal_cents, discount_cents, shipping_cents, tax_cents, pricing)
         VALUES ($1, $2, 'pending', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12,
             $13, $14, $15, $16, $17::jsonb)",
    )
    .bind(id)
    .bind(number)
    .bind(rules::financial_status(OrderStatus::Pending, total, 0).as_str())
    .bind(&draft.customer_email)
    .bind(draft.user_id.as_ref().map(|u| u.to_string()))
    .bind(cart_id.as_ref().map(|c| c.to_string()))
    .bind(currency.code())
    .bind(total)
    .bind(payment_id.as_ref().map(|p| p.to_string()))
    .bind(&draft.idempotency_key)
    .bind(draft.pay_by)
    .bind(at)
    .bind(pricing.subtotal_cents)
    .bind(pricing.discount_cents)
    .bind(pricing.shipping_cents)
    .bind(pricing.tax_cents)
    .bind(serde_json::to_string(&pricing).map_err(backend)?)
    .execute(&mut *tx)
    .await?;
    let positions: Vec<i64> = (1..=lines.len() as i64).collect();
    let skus: Vec<&str> = lines.iter().map(|(l, _)| l.sku.as_str()).collect();
    let names: Vec<&str> = lines.iter().map(|(l, _)| l.name.as_str()).collect();
    let quantities: Vec<i64> = lines.iter().map(|(l, _)| l.quantity).collect();
    let prices: Vec<i64> = lines.iter().map(|(l, _)| l.unit_price_cents).collect();
    let reservations: Vec<&str> = lines.iter().map(|(_, r)| r.as_str()).collect();
    // One statement for every line: an order costs the same round trips
    // whatever its size.
    sqlx::query(
        "INSERT INTO order_items (order_id, position, sku, name, quantity, unit_price_cents,
             reservation_id)
         SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::bigint[],
             $6::bigint[], $7::text[])",
    )
    .bind(id)
    .bind(positions)
    .bind(skus)
    .bind(names)
    .bind(quantities)
    .bind(prices)
    .bind(reservations)
    .execute(&mut *tx)
    .await?;
    let created =
        insert_history(tx, id, (None, OrderStatus::Pending), &draft.actor, None, at).await?;
    let items: Vec<OrderItem> = lines.into_iter().map(|(line, _)| line).collect();
    let order = Order {
        id: draft.id.clone(),
        number: rules::order_number(number),
        status: OrderStatus::Pending,
        financial_status: rules::financial_status(OrderStatus::Pending, total, 0),
        item_count: items.iter().map(|i| i.quantity).sum(),
        items,
        total_cents: total,
        refunded_cents: 0,
        currency,
        customer_email: draft.customer_email.clone(),
        user_id: draft.user_id.clone(),
        payment_id,
        cart_id,
        payment_error: None,
        tracking_number: None,
        fulfillment_status: FulfillmentStatus::Unfulfilled,
        fulfillments: Vec::new(),
        pricing,
        history: vec![created],
        created_at: at,
        updated_at: at,
    };
    let payment = match &draft.payment {
        Some(payment) => Some(Box::new(insert_payment(tx, &order, payment, at).await?)),
        None => None,
    };
    pending.push((events.order)(EventData::OrderCreated, &order));
    audit::record(
        tx,
        [AuditChange::diff(
            "order.created",
            "order",
            order.id.as_str(),
            serde_json::Value::Null,
            serde_json::json!({
                "number": order.number,
                "status": order.status,
                "total_cents": order.total_cents,
                "currency": order.currency,
                "customer_email": order.customer_email,
            }),
        )],
    )
    .await?;
    let created = OrderCreate::Created {
        order: Box::new(order),
        payment,
    };
    Ok((created, pending))
}

async fn transition(
    tx: &mut PgConnection,
    order: &OrderId,
    request: TransitionRequest,
    events: CommerceEvents,
) -> StoreResult<(TransitionOutcome, Vec<NewEvent>)> {
    if request.to == OrderStatus::Shipped {
        return ship_rest(tx, order, request, events).await;
    }
    let Some((current, items)) = load_order(tx, order.as_str(), true).await? else {
        return Ok((TransitionOutcome::NotFound, Vec::new()));
    };
    let refused = |outcome| Ok((outcome, Vec::new()));
    let shipped = items.iter().map(|item| item.shipped).sum();
    if let Err(TransitionRefusal::PartlyShipped) =
        fulfilment::check_cancel_unshipped(current.status, request.to, shipped)
    {
        return refused(TransitionOutcome::PartlyShipped);
    }
    let payments = payment_facts(tx, &current).await?;
    let was = order_state(&current);
    let mut pending = Vec::new();
    let changed = match rules::decide_transition(current.status, request.to, &payments) {
        Err(TransitionRefusal::Illegal { from }) => {
            return refused(TransitionOutcome::Illegal { from });
        }
        Err(TransitionRefusal::PaymentInFlight) => {
            return refused(TransitionOutcome::PaymentInFlight);
        }
        Err(TransitionRefusal::NeedsRefund { payment_id }) => {
            return refused(TransitionOutcome::NeedsRefund { payment_id });
        }
        Err(TransitionRefusal::Refunded) => return refused(TransitionOutcome::Refunded),
        Err(TransitionRefusal::PartlyShipped) => return refused(TransitionOutcome::PartlyShipped),
        Ok(Transition::Cancel(cancellation)) => {
            let by = (request.actor.as_str(), request.note.as_deref());
            cancel_order(tx, current, cancellation, by, events, &mut pending).await?
        }
        Ok(Transition::Advance(to)) => {
            let mut current = current;
            if let Some(tracking) = &request.tracking_number {
                sqlx::query("UPDATE orders SET tracking_number = $2 WHERE id = $1")
                    .bind(order.as_str())
                    .bind(tracking)
                    .execute(&mut *tx)
                    .await?;
                current.tracking_number = Some(tracking.clone());
            }
            if to == OrderStatus::Delivered {
                sqlx::query(
                    "UPDATE fulfillments SET delivered_at = $2
                     WHERE order_id = $1 AND delivered_at IS NULL",
                )
                .bind(order.as_str())
                .bind(now())
                .execute(&mut *tx)
                .await?;
            }
            let note = request.note.as_deref();
            let moved = move_order(tx, current, to, &request.actor, note).await?;
            let mut changed = must_read_order(tx, order.as_str()).await?;
            changed.history = moved.history;
            let kind: MakeEvent<Order> = match to {
                OrderStatus::Shipped => EventData::OrderShipped,
                _ => EventData::OrderDelivered,
            };
            pending.push((events.order)(kind, &changed));
            changed
        }
    };
    audit::record(tx, [order_change(was, &changed)]).await?;
    Ok((TransitionOutcome::Done(Box::new(changed)), pending))
}

/// A move to `shipped` asked of the state machine: everything left goes
/// out in one shipment, without a carrier.
async fn ship_rest(
    tx: &mut PgConnection,
    order: &OrderId,
    request: TransitionRequest,
    events: CommerceEvents,
) -> StoreResult<(TransitionOutcome, Vec<NewEvent>)> {
    let draft = ShipmentDraft {
        id: shop_wire::orders::FulfillmentId::generate(),
        items: None,
        carrier: None,
        tracking_number: request.tracking_number,
        tracking_url: None,
        actor: request.actor,
        note: request.note,
    };
    let (shipped, pending) = ship(tx, order, &draft, events).await?;
    let outcome = match shipped {
        ShipOutcome::Shipped(order) => TransitionOutcome::Done(order),
        ShipOutcome::NotFound => TransitionOutcome::NotFound,
        ShipOutcome::Refused(ShipRefusal::Refunded) => TransitionOutcome::Refunded,
        ShipOutcome::Refused(ShipRefusal::Illegal { from }) => TransitionOutcome::Illegal { from },
        ShipOutcome::Refused(refusal) => {
            return Err(StoreError::Backend(
                format!("shipping everything left was refused: {refusal:?}").into(),
            ));
        }
    };
    Ok((outcome, pending))
}

/// One shipment, decided by the orders service's rule from the order as
/// its lock finds it, and written with a guarded statement per line.
async fn ship(
    tx: &mut PgConnection,
    order: &OrderId,
    draft: &ShipmentDraft,
    events: CommerceEvents,
) -> StoreResult<(ShipOutcome, Vec<NewEvent>)> {
    let Some((current, items)) = load_order(tx, order.as_str(), true).await? else {
        return Ok((ShipOutcome::NotFound, Vec::new()));
    };
    let payments = payment_facts(tx, &current).await?;
    let lines: Vec<ShippedLine> = items.iter().map(StoredItem::shipped_line).collect();
    let asked = draft.items.as_deref();
    let plan = match fulfilment::decide_shipment(current.status, &payments, &lines, asked) {
        Ok(plan) => plan,
        Err(refusal) => return Ok((ShipOutcome::Refused(refusal), Vec::new())),
    };
    if let Err(refusal) = take_units(tx, order.as_str(), &lines, &plan).await? {
        return Ok((ShipOutcome::Refused(refusal), Vec::new()));
    }
    let at = now();
    sqlx::query(
        "INSERT INTO fulfillments (id, order_id, carrier, tracking_number, tracking_url,
             shipped_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(draft.id.as_str())
    .bind(order.as_str())
    .bind(&draft.carrier)
    .bind(&draft.tracking_number)
    .bind(&draft.tracking_url)
    .bind(at)
    .execute(&mut *tx)
    .await?;
    let positions: Vec<i64> = plan.lines.iter().map(|(position, _)| *position).collect();
    let quantities: Vec<i64> = plan.lines.iter().map(|(_, quantity)| *quantity).collect();
    let skus: Vec<Option<&str>> = positions
        .iter()
        .map(|position| {
            lines
                .iter()
                .find(|line| line.position == *position)
                .map(|line| line.sku.as_str())
        })
        .collect();
    sqlx::query(
        "INSERT INTO fulfillment_items (fulfillment_id, position, sku, quantity)
         SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::bigint[])",
    )
    .bind(draft.id.as_str())
    .bind(positions)
    .bind(skus)
    .bind(quantities)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE orders SET tracking_number = coalesce($2, tracking_number), updated_at = $3
         WHERE id = $1",
    )
    .bind(order.as_str())
    .bind(&draft.tracking_number)
    .bind(at)
    .execute(&mut *tx)
    .await?;
    let was = order_state(&current);
    let history = if plan.completes {
        let note = draft.note.as_deref();
        move_order(tx, current, OrderStatus::Shipped, &draft.actor, note)
            .await?
            .history
    } else {
        current.history
    };
    let mut shipped = must_read_order(tx, order.as_str()).await?;
    shipped.history = history;
    let (action, kind): (&str, MakeEvent<Order>) = if plan.completes {
        ("order.shipped", EventData::OrderShipped)
    } else {
        ("order.partially_shipped", EventData::OrderPartiallyShipped)
    };
    let after = order_state(&shipped);
    let change = AuditChange::diff(action, "order", order.as_str(), was, after);
    audit::record(tx, [change]).await?;
    let pending = vec![(events.order)(kind, &shipped)];
    Ok((ShipOutcome::Shipped(Box::new(shipped)), pending))
}

/// Adds the plan's units to each line's shipped units, guarded: a line
/// never ships more than its quantity, whatever shipped since the plan was
/// made. A line that no longer has the units undoes the lines before it
/// and answers what is left of its SKU.
async fn take_units(
    tx: &mut PgConnection,
    order: &str,
    lines: &[ShippedLine],
    plan: &ShipmentPlan,
) -> StoreResult<Result<(), ShipRefusal>> {
    for (taken, (position, quantity)) in plan.lines.iter().enumerate() {
        let took = sqlx::query(
            "UPDATE order_items SET shipped_quantity = shipped_quantity + $3
             WHERE order_id = $1 AND position = $2 AND shipped_quantity + $3 <= quantity",
        )
        .bind(order)
        .bind(position)
        .bind(quantity)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if took == 1 {
            continue;
        }
        for (position, quantity) in &plan.lines[..taken] {
            sqlx::query(
                "UPDATE order_items SET shipped_quantity = shipped_quantity - $3
                 WHERE order_id = $1 AND position = $2",
            )
            .bind(order)
            .bind(position)
            .bind(quantity)
            .execute(&mut *tx)
            .await?;
        }
        let sku = lines
            .iter()
            .find(|line| line.position == *position)
            .map(|line| line.sku.clone())
            .unwrap_or_default();
        let left: i64 = sqlx::query_scalar(
            "SELECT coalesce(sum(quantity - shipped_quantity), 0)::bigint FROM order_items
             WHERE order_id = $1 AND sku = $2",
        )
        .bind(order)
        .bind(&sku)
        .fetch_one(&mut *tx)
        .await?;
        let asked = plan
            .lines
            .iter()
            .filter(|(p, _)| lines.iter().any(|l| l.position == *p && l.sku == sku))
            .map(|(_, q)| q)
            .sum();
        return Ok(Err(ShipRefusal::Exceeds { sku, asked, left }));
    }
    Ok(Ok(()))
}

async fn expire(
    tx: &mut PgConnection,
    now: OffsetDateTime,
    limit: u32,
    events: CommerceEvents,
) -> StoreResult<(u64, Vec<NewEvent>)> {
    // Another node's sweep (or a payment's answer) holds its orders: this
    // one takes the next.
    let due: Vec<String> = sqlx::query_scalar(
        "SELECT o.id FROM orders o
         WHERE o.status = 'pending' AND o.pay_by <= $1
           AND NOT EXISTS (SELECT 1 FROM payments p
                           WHERE p.order_id = o.id AND p.status = 'processing')
         ORDER BY o.pay_by LIMIT $2
         FOR UPDATE OF o SKIP LOCKED",
    )
    .bind(now)
    .bind(i64::from(limit))
    .fetch_all(&mut *tx)
    .await?;
    let mut pending = Vec::new();
    for id in &due {
        let order = must_read_order(tx, id).await?;
        let Some(cancellation) = rules::cancellation(order.status) else {
            continue;
        };
        audit::record(
            tx,
            [AuditChange::diff(
                "order.cancelled",
                "order",
                id.as_str(),
                order_state(&order),
                serde_json::json!({"status": OrderStatus::Cancelled}),
            )],
        )
        .await?;
        let by = ("system", Some("not paid in time"));
        cancel_order(tx, order, cancellation, by, events, &mut pending).await?;
    }
    Ok((due.len() as u64, pending))
}

#[async_trait]
impl OrderStore for PgStore {
    async fn create_order(
        &self,
        draft: OrderDraft,
        events: CommerceEvents,
    ) -> StoreResult<OrderCreate> {
        let (created, _) = self
            .write(move |tx| {
                let draft = draft.clone();
                Box::pin(async move { create(tx, &draft, events).await })
            })
            .await?;
        Ok(created)
    }

    async fn transition_order(
        &self,
        order: &OrderId,
        request: TransitionRequest,
        events: CommerceEvents,
    ) -> StoreResult<TransitionOutcome> {
        let (outcome, _) = self
            .write(move |tx| {
                let (order, request) = (order.clone(), request.clone());
                Box::pin(async move { transition(tx, &order, request, events).await })
            })
            .await?;
        Ok(outcome)
    }

    async fn ship_order(
        &self,
        order: &OrderId,
        draft: ShipmentDraft,
        events: CommerceEvents,
    ) -> StoreResult<ShipOutcome> {
        let (outcome, _) = self
            .write(move |tx| {
                let (order, draft) = (order.clone(), draft.clone());
                Box::pin(async move { ship(tx, &order, &draft, events).await })
            })
            .await?;
        Ok(outcome)
    }

    async fn expire_orders(
        &self,
        now: OffsetDateTime,
        limit: u32,
        events: CommerceEvents,
    ) -> StoreResult<u64> {
        let (count, _) = self
            .write(move |tx| Box::pin(async move { expire(tx, now, limit, events).await }))
            .await?;
        Ok(count)
    }

    async fn order(&self, key: &OrderKey) -> StoreResult<Option<Order>> {
        let mut conn = self.pool.acquire().await?;
        let id = match key {
            OrderKey::Id(id) => id.to_string(),
            OrderKey::Number(number) => {
                let found: Option<String> =
                    sqlx::query_scalar("SELECT id FROM orders WHERE number = $1")
                        .bind(number)
                        .fetch_optional(&mut *conn)
                        .await?;
                let Some(id) = found else {
                    return Ok(None);
                };
                id
            }
        };
        read_order(&mut conn, &id).await
    }

    async fn list_orders(&self, query: &OrderQuery) -> StoreResult<(Vec<Order>, u64)> {
        let filtered = |select: &str| {
            let mut filter = Filter::new(select);
            filter.add_some("status = ", query.status.map(|s| s.as_str()));
            filter.add_some(
                "financial_status = ",
                query.financial_status.map(|s| s.as_str()),
            );
            if let Some(email) = &query.customer_email {
                filter
                    .and()
                    .push("lower(customer_email) = lower(")
                    .push_bind(email.clone())
                    .push(")");
            }
            filter.owner(&query.owner, "");
            filter.add_some("created_at >= ", query.from);
            filter.add_some("created_at < ", query.to);
            filter
        };
        let total: i64 = filtered("SELECT count(*) FROM orders")
            .query()
            .build_query_scalar()
            .fetch_one(&self.pool)
            .await?;
        let mut conn = self.pool.acquire().await?;
        let orders = filtered(&format!("SELECT {ORDER_COLUMNS} FROM orders"))
            .page("id DESC", (query.limit, query.offset))
            .build()
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(order_row)
            .collect::<StoreResult<Vec<_>>>()?;
        let mut listed = Vec::with_capacity(orders.len());
        for order in orders {
            listed.push(with_items(&mut conn, order).await?);
        }
        Ok((listed, total as u64))
    }

    async fn order_counts(&self) -> StoreResult<Vec<(OrderStatus, u64)>> {
        sqlx::query("SELECT status, count(*) AS count FROM orders GROUP BY status")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| {
                Ok((
                    parse(row, "status")?,
                    row.try_get::<i64, _>("count")? as u64,
                ))
            })
            .collect()
    }
}
