//! Orders in SQLite.
//!
//! The checkout is split where the provider is called: one transaction
//! records the order `pending`, holds its stock and records the payment
//! `processing`; the provider is asked outside any transaction; a second
//! transaction records the answer, and for a success commits the stock and
//! marks the order paid together (the second transaction is in `payments`).

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use shop_wire::events::{EventData, MakeEvent};
use shop_wire::inventory::ReservationStatus;
use shop_wire::money::Currency;
use shop_wire::orders::{
    Fulfillment, FulfillmentItem, FulfillmentStatus, Order, OrderId, OrderItem, OrderStatus,
    PaymentFailure, StatusChange,
};
use shop_wire::pricing::OrderPricing;
use time::OffsetDateTime;

use super::audit;
use super::carts::{cart_lines, check_lines, check_out_cart, lines_held, read_cart, reprice_cart};
use super::filter::Filter;
use super::inventory::{
    Hold, available, extend_reservations, finish_active, reserve_checked, restock, sell_unreserved,
};
use super::payments::{insert_payment, payment_in_flight, read_payment};
use super::pricing::{claim_discounts, release_discounts};
use super::{SqliteStore, append, backend, conversion, from_millis, millis, parse_column};
use crate::services::cart::rules::{self as cart_rules, CheckoutRefusal};
use crate::services::inventory::rules::demand_per_sku;
use crate::services::orders::fulfilment::{self, ShipRefusal, ShipmentPlan, ShippedLine};
use crate::services::orders::rules::{
    self, Cancellation, LineHold, PaymentFacts, Payments, Transition, TransitionRefusal,
};
use crate::services::pricing::rules::{Wanted, gives_back_discounts, order_total, price_checkout};
use crate::store::AuditChange;
use crate::store::audit::{order_change, order_state};
use crate::store::{
    CommerceEvents, LineRefusal, NewEvent, OrderCreate, OrderDraft, OrderKey, OrderQuery,
    OrderSource, OrderStore, ReserveItem, ShipOutcome, ShipmentDraft, StoreError, StoreResult,
    StoredItem, TransitionOutcome, TransitionRequest, now,
};

const ORDER_COLUMNS: &str = "id, number, status, financial_status, customer_email, user_id, cart_id, currency, \
     total_cents, refunded_cents, payment_id, payment_error_code, payment_error_message, \
     tracking_number, created_at, updated_at, pricing";
fn order_row(row: &Row<'_>) -> rusqlite::Result<Order> {
    let error_code: Option<String> = row.get("payment_error_code")?;
    let error_message: Option<String> = row.get("payment_error_message")?;
    let total_cents: i64 = row.get("total_cents")?;
    let pricing = match row.get::<_, Option<String>>("pricing")? {
        Some(text) => serde_json::from_str(&text).map_err(conversion)?,
        // Placed before pricing: the total was the goods.
        None => OrderPricing {
            subtotal_cents: total_cents,
            ..OrderPricing::default()
        },
    };
    Ok(Order {
        id: parse_column(row, "id")?,
        number: rules::order_number(row.get("number")?),
        status: parse_column(row, "status")?,
        financial_status: parse_column(row, "financial_status")?,
        items: Vec::new(),
        item_count: 0,
        total_cents,
        refunded_cents: row.get("refunded_cents")?,
        currency: parse_column(row, "currency")?,
        customer_email: row.get("customer_email")?,
        user_id: optional_id(row, "user_id")?,
        payment_id: optional_id(row, "payment_id")?,
        cart_id: optional_id(row, "cart_id")?,
        payment_error: error_code.map(|code| PaymentFailure {
            code,
            message: error_message.unwrap_or_default(),
        }),
        tracking_number: row.get("tracking_number")?,
        fulfillment_status: FulfillmentStatus::Unfulfilled,
        fulfillments: Vec::new(),
        pricing,
        history: Vec::new(),
        created_at: from_millis(row.get("created_at")?)?,
        updated_at: from_millis(row.get("updated_at")?)?,
    })
}

fn optional_id<T: std::str::FromStr>(row: &Row<'_>, column: &str) -> rusqlite::Result<Option<T>>
where
    T::Err: std::error::Error + Send + Sync + 'static,
{
    row.get::<_, Option<String>>(column)?
        .map(|text| text.parse::<T>().map_err(conversion))
        .transpose()
}

pub(super) fn order_items(conn: &Connection, order: &str) -> rusqlite::Result<Vec<StoredItem>> {
    conn.prepare_cached(
        "SELECT i.position, i.sku, i.name, i.quantity, i.unit_price_cents, i.reservation_id,
                coalesce(r.status = 'active', 0), i.shipped_quantity
         FROM order_items i LEFT JOIN reservations r ON r.id = i.reservation_id
         WHERE i.order_id = ?1 ORDER BY i.position",
    )?
    .query_map([order], |row| {
        let quantity: i64 = row.get(3)?;
        let unit: i64 = row.get(4)?;
        Ok(StoredItem {
            position: row.get(0)?,
            item: OrderItem {
                sku: row.get(1)?,
                name: row.get(2)?,
                quantity,
                unit_price_cents: unit,
                line_total_cents: quantity * unit,
            },
            reservation_id: row.get(5)?,
            held: row.get(6)?,
            shipped: row.get(7)?,
        })
    })?
    .collect()
}

/// Gives the order its lines, its shipments and how far it went out.
fn set_items(conn: &Connection, order: &mut Order, items: &[StoredItem]) -> rusqlite::Result<()> {
    order.item_count = items.iter().map(|i| i.item.quantity).sum();
    order.items = items.iter().map(|i| i.item.clone()).collect();
    order.fulfillment_status = fulfilment::fulfillment_status(
        order.status,
        items.iter().map(|i| (i.item.quantity, i.shipped)),
    );
    order.fulfillments = if items.iter().any(|i| i.shipped > 0) {
        fulfillments(conn, order.id.as_str())?
    } else {
        Vec::new()
    };
    Ok(())
}

fn with_items(conn: &Connection, mut order: Order) -> rusqlite::Result<Order> {
    let items = order_items(conn, order.id.as_str())?;
    set_items(conn, &mut order, &items)?;
    Ok(order)
}

/// An order's shipments, oldest first, each with its units per SKU.
fn fulfillments(conn: &Connection, order: &str) -> rusqlite::Result<Vec<Fulfillment>> {
    let mut shipments: Vec<Fulfillment> = conn
        .prepare_cached(
            "SELECT id, carrier, tracking_number, tracking_url, shipped_at, delivered_at
             FROM fulfillments WHERE order_id = ?1 ORDER BY shipped_at, id",
        )?
        .query_map([order], |row| {
            Ok(Fulfillment {
                id: parse_column(row, "id")?,
                items: Vec::new(),
                carrier: row.get(1)?,
                tracking_number: row.get(2)?,
                tracking_url: row.get(3)?,
                shipped_at: from_millis(row.get(4)?)?,
                delivered_at: row.get::<_, Option<i64>>(5)?.map(from_millis).transpose()?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut items = conn.prepare_cached(
        "SELECT sku, sum(quantity) FROM fulfillment_items WHERE fulfillment_id = ?1
         GROUP BY sku ORDER BY min(position)",
    )?;
    for shipment in &mut shipments {
        shipment.items = items
            .query_map([shipment.id.as_str()], |row| {
                Ok(FulfillmentItem {
                    sku: row.get(0)?,
                    quantity: row.get(1)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
    }
    Ok(shipments)
}

fn history(conn: &Connection, order: &str) -> rusqlite::Result<Vec<StatusChange>> {
    conn.prepare_cached(
        "SELECT from_status, to_status, actor, note, at FROM order_history
         WHERE order_id = ?1 ORDER BY id",
    )?
    .query_map([order], |row| {
        Ok(StatusChange {
            from: row
                .get::<_, Option<String>>(0)?
                .map(|s| s.parse::<OrderStatus>())
                .transpose()
                .map_err(|err| conversion(std::io::Error::other(err)))?,
            to: parse_column(row, "to_status")?,
            actor: row.get(2)?,
            note: row.get(3)?,
            at: from_millis(row.get(4)?)?,
        })
    })?
    .collect()
}

/// One order with its lines (and their holds) and history: everything a
/// step of the order needs, loaded once, so the step can answer the order
/// it leaves without reading it again.
pub(super) fn load_order(
    conn: &Connection,
    id: &str,
) -> rusqlite::Result<Option<(Order, Vec<StoredItem>)>> {
    let order = conn
        .prepare_cached(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = ?1"))?
        .query_row([id], order_row)
        .optional()?;
    order
        .map(|mut order| {
            let items = order_items(conn, id)?;
            set_items(conn, &mut order, &items)?;
            order.history = history(conn, id)?;
            Ok((order, items))
        })
        .transpose()
}

/// One order with its lines and history.
pub(super) fn read_order(conn: &Connection, id: &str) -> rusqlite::Result<Option<Order>> {
    Ok(load_order(conn, id)?.map(|(order, _)| order))
}

pub(super) fn must_read_order(tx: &Transaction<'_>, id: &str) -> StoreResult<Order> {
    must_load_order(tx, id).map(|(order, _)| order)
}

pub(super) fn must_load_order(
    tx: &Transaction<'_>,
    id: &str,
) -> StoreResult<(Order, Vec<StoredItem>)> {
    load_order(tx, id)?
        .ok_or_else(|| StoreError::Backend(format!("order {id} vanished mid-change").into()))
}

/// Logs a status change in the order's history and answers it.
pub(super) fn insert_history(
    tx: &Transaction<'_>,
    order: &str,
    from: Option<OrderStatus>,
    to: OrderStatus,
    actor: &str,
    note: Option<&str>,
    at: OffsetDateTime,
) -> StoreResult<StatusChange> {
    tx.prepare_cached(
        "INSERT INTO order_history (order_id, from_status, to_status, actor, note, at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        order,
        from.map(OrderStatus::as_str),
        to.as_str(),
        actor,
        note,
        millis(at)
    ])?;
    Ok(StatusChange {
        from,
        to,
        actor: actor.to_owned(),
        note: note.map(str::to_owned),
        at,
    })
}

/// Brings the order's stored financial status in line with its refunds
/// (the orders service's rule), here and in `order`. A change of status
/// writes it with the status instead, in the same statement.
pub(super) fn settle_financial_status(tx: &Transaction<'_>, order: &mut Order) -> StoreResult<()> {
    let settled = rules::financial_status(order.status, order.total_cents, order.refunded_cents);
    if settled != order.financial_status {
        tx.prepare_cached("UPDATE orders SET financial_status = ?2 WHERE id = ?1")?
            .execute(params![order.id.as_str(), settled.as_str()])?;
        order.financial_status = settled;
    }
    Ok(())
}

/// Moves an order from `from` to `to` (guarded: only if it is still `from`)
/// with its history entry, and answers the order as it now is.
fn move_order(
    tx: &Transaction<'_>,
    mut order: Order,
    to: OrderStatus,
    actor: &str,
    note: Option<&str>,
) -> StoreResult<Order> {
    let at = now();
    let from = order.status;
    let financial = rules::financial_status(to, order.total_cents, order.refunded_cents);
    let changed = tx
        .prepare_cached(
            "UPDATE orders SET status = ?3, financial_status = ?5, updated_at = ?4
             WHERE id = ?1 AND status = ?2",
        )?
        .execute(params![
            order.id.as_str(),
            from.as_str(),
            to.as_str(),
            millis(at),
            financial.as_str()
        ])?;
    if changed != 1 {
        return Err(StoreError::Backend(
            format!("order {} left {from} under this change", order.id).into(),
        ));
    }
    let change = insert_history(tx, order.id.as_str(), Some(from), to, actor, note, at)?;
    order.status = to;
    order.financial_status = financial;
    order.updated_at = at;
    order.history.push(change);
    Ok(order)
}

/// What the order's payments are doing, for its state machine to decide a move.
fn payment_facts(tx: &Transaction<'_>, order: &Order) -> StoreResult<Payments> {
    let in_flight = payment_in_flight(tx, order.id.as_str())?.map(|p| p.status);
    let captured = match &order.payment_id {
        Some(id) if order.status != OrderStatus::Pending => {
            read_payment(tx, id.as_str())?.map(|p| PaymentFacts {
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

/// The free units of each SKU among `lines`, loaded for a rule to judge.
pub(super) fn availability(
    tx: &Transaction<'_>,
    lines: &[ReserveItem],
) -> StoreResult<Vec<(String, i64)>> {
    let mut levels: Vec<(String, i64)> = Vec::new();
    for line in lines {
        if levels.iter().all(|(sku, _)| *sku != line.sku)
            && let Some(free) = available(tx, &line.sku)?
        {
            levels.push((line.sku.clone(), free));
        }
    }
    Ok(levels)
}

pub(super) fn free_units(levels: &[(String, i64)]) -> impl Fn(&str) -> Option<i64> + '_ {
    |sku| levels.iter().find(|(s, _)| s == sku).map(|(_, free)| *free)
}

/// Cancels an order in this transaction as `cancellation` says: a pending
/// one's stock is released (and a bank transfer awaiting settlement is
/// cancelled), a paid one's sold units go back on hand.
pub(super) fn cancel_order(
    tx: &Transaction<'_>,
    order: Order,
    cancellation: Cancellation,
    actor: &str,
    note: Option<&str>,
    events: CommerceEvents,
    pending: &mut Vec<NewEvent>,
) -> StoreResult<Order> {
    let id = order.id.as_str();
    match cancellation {
        Cancellation::ReleaseHolds => {
            for item in order_items(tx, id)? {
                if let Some(reservation) = &item.reservation_id
                    && item.held
                    && let Some(effect) = finish_active(
                        tx,
                        reservation,
                        ReservationStatus::Released,
                        Some(actor.to_owned()),
                    )?
                {
                    pending.extend((events.stock)(&effect));
                }
            }
            tx.prepare_cached(
                "UPDATE payments SET status = 'canceled', updated_at = ?2
                 WHERE order_id = ?1 AND status = 'pending'",
            )?
            .execute(params![id, millis(now())])?;
        }
        Cancellation::Restock => {
            let reason = format!("{} cancelled: restock", order.number);
            for item in order_items(tx, id)? {
                if let Some(effect) = restock(
                    tx,
                    &item.item.sku,
                    item.item.quantity,
                    reason.clone(),
                    Some(actor.to_owned()),
                )? {
                    pending.extend((events.stock)(&effect));
                }
            }
        }
    }
    let cancelled = move_order(tx, order, OrderStatus::Cancelled, actor, note)?;
    if gives_back_discounts(&cancelled) {
        release_discounts(tx, cancelled.id.as_str())?;
    }
    pending.push((events.order)(EventData::OrderCancelled, &cancelled));
    Ok(cancelled)
}

/// Holds stock again for the lines of a pending order whose hold ran out;
/// `Err` with the refusal (and nothing written) when the stock is gone.
pub(super) fn hold_again(
    tx: &Transaction<'_>,
    order: &Order,
    items: &[StoredItem],
    hold_until: OffsetDateTime,
    actor: &str,
    events: CommerceEvents,
    pending: &mut Vec<NewEvent>,
) -> StoreResult<Result<(), LineRefusal>> {
    let id = order.id.as_str();
    let lines: Vec<LineHold> = items.iter().map(StoredItem::hold).collect();
    let lapsed = rules::lapsed(&lines);
    let levels = availability(tx, &lapsed)?;
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
        let effect = reserve_checked(tx, &line, hold)?;
        let reservation = effect
            .reservation
            .as_ref()
            .expect("a reservation's effect carries it")
            .id
            .to_string();
        tx.prepare_cached(
            "UPDATE order_items SET reservation_id = ?3 WHERE order_id = ?1 AND position = ?2",
        )?
        .execute(params![id, item.position, reservation])?;
        pending.extend((events.stock)(&effect));
        held.push(reservation);
    }
    extend_reservations(tx, &held, hold_until, id)?;
    tx.prepare_cached("UPDATE orders SET pay_by = ?2 WHERE id = ?1")?
        .execute(params![id, millis(hold_until)])?;
    Ok(Ok(()))
}

/// Commits the stock of a paid order, as [`rules::decide_fulfilment`]
/// allowed: each held line's reservation, or, where the hold ran out, units
/// still available.
pub(super) fn commit_stock(
    tx: &Transaction<'_>,
    order: &Order,
    items: &[StoredItem],
    actor: &str,
    events: CommerceEvents,
    pending: &mut Vec<NewEvent>,
) -> StoreResult<()> {
    for item in items {
        let committed = match &item.reservation_id {
            Some(reservation) if item.held => finish_active(
                tx,
                reservation,
                ReservationStatus::Committed,
                Some(actor.to_owned()),
            )?,
            _ => None,
        };
        let effect = match committed {
            Some(effect) => effect,
            None => sell_unreserved(
                tx,
                &item.item.sku,
                item.item.quantity,
                format!("{} paid after its hold ran out", order.number),
                Some(actor.to_owned()),
            )?,
        };
        pending.extend((events.stock)(&effect));
    }
    Ok(())
}

/// Prices an order's lines by its checkout and claims its discounts' uses,
/// before anything of the order is written: the breakdown to freeze, or
/// the answer that refuses the order.
fn price_and_claim(
    tx: &Transaction<'_>,
    draft: &OrderDraft,
    wanted: &[Wanted],
    at: OffsetDateTime,
) -> StoreResult<Result<OrderPricing, OrderCreate>> {
    let price = match price_checkout(&draft.checkout, wanted, true, at) {
        Ok(price) => price,
        Err(unpriced) => return Ok(Err(OrderCreate::Unpriceable(unpriced))),
    };
    if let Err(refusal) =
        claim_discounts(tx, draft.id.as_str(), &draft.customer_email, &price.uses)?
    {
        return Ok(Err(OrderCreate::DiscountUsedUp(refusal)));
    }
    Ok(Ok(price.freeze(&draft.checkout)))
}

#[async_trait]
impl OrderStore for SqliteStore {
    async fn create_order(
        &self,
        draft: OrderDraft,
        events: CommerceEvents,
    ) -> StoreResult<OrderCreate> {
        self.write(move |tx| {
            if let Some(key) = &draft.idempotency_key {
                let existing: Option<String> = tx
                    .prepare_cached("SELECT id FROM orders WHERE idempotency_key = ?1")?
                    .query_row([key], |row| row.get(0))
                    .optional()?;
                if let Some(id) = existing {
                    return Ok(OrderCreate::Existing(Box::new(must_read_order(tx, &id)?)));
                }
            }
            if let (Some(user), Some(max)) = (&draft.user_id, draft.max_unpaid) {
                let unpaid: i64 = tx
                    .prepare_cached(
                        "SELECT count(*) FROM orders WHERE user_id = ?1 AND status = 'pending'",
                    )?
                    .query_row([user.as_str()], |row| row.get(0))?;
                if let Err(max) = rules::check_unpaid(unpaid.unsigned_abs(), max) {
                    return Ok(OrderCreate::TooManyUnpaid(max));
                }
            }
            let id = draft.id.as_str();
            let at = now();
            let mut pending = Vec::new();
            // Each line with the reservation that holds its stock.
            let mut lines: Vec<(OrderItem, String)> = Vec::new();
            let currency: Currency;
            let pricing: OrderPricing;
            let mut cart_id = None;
            match &draft.source {
                OrderSource::Items(items) => {
                    let items = demand_per_sku(items);
                    let products = match check_lines(tx, &items, None) {
                        Ok(Ok(products)) => products,
                        Ok(Err(LineRefusal::CurrencyMismatch { .. })) => {
                            return Ok(OrderCreate::MixedCurrencies);
                        }
                        Ok(Err(refusal)) => return Ok(OrderCreate::Refused(refusal)),
                        Err(err) => return Err(err),
                    };
                    if let Err(refusal) =
                        cart_rules::check_all_quantities(&items, &products, draft.limits)
                    {
                        return Ok(OrderCreate::Refused(refusal));
                    }
                    currency = cart_rules::currency_of(products.first().map(|p| p.currency));
                    let wanted: Vec<Wanted> = items
                        .iter()
                        .zip(&products)
                        .map(|(item, product)| Wanted {
                            sku: item.sku.clone(),
                            quantity: item.quantity,
                            unit_price_cents: Some(product.price_cents),
                        })
                        .collect();
                    pricing = match price_and_claim(tx, &draft, &wanted, at)? {
                        Ok(pricing) => pricing,
                        Err(refused) => return Ok(refused),
                    };
                    for (item, product) in items.iter().zip(products) {
                        let hold = Hold {
                            expires_at: draft.pay_by,
                            reference: Some(id.to_owned()),
                            actor: Some(draft.actor.clone()),
                        };
                        let effect = reserve_checked(tx, item, hold)?;
                        pending.extend((events.stock)(&effect));
                        let reservation = effect
                            .reservation
                            .as_ref()
                            .expect("a reservation's effect carries it")
                            .id
                            .to_string();
                        let line = OrderItem {
                            sku: item.sku.clone(),
                            name: product.name,
                            quantity: item.quantity,
                            unit_price_cents: product.price_cents,
                            line_total_cents: item.quantity * product.price_cents,
                        };
                        lines.push((line, reservation));
                    }
                }
                OrderSource::Cart(cart) => {
                    let Some(record) = read_cart(tx, cart.as_str())? else {
                        return Ok(OrderCreate::CartNotFound);
                    };
                    let state = cart_rules::CartState {
                        status: record.cart.status,
                        version: record.cart.version,
                        expires_at: record.cart.expires_at,
                    };
                    let held = lines_held(tx, cart.as_str())?;
                    match cart_rules::check_checkout(state, record.cart.items.len(), held, at) {
                        Ok(()) => {}
                        Err(CheckoutRefusal::NotActive(status)) => {
                            return Ok(OrderCreate::CartNotActive(status));
                        }
                        Err(CheckoutRefusal::Empty) => return Ok(OrderCreate::CartEmpty),
                    }
                    let mut prices = Vec::with_capacity(record.cart.items.len());
                    for item in &record.cart.items {
                        let product = super::carts::product_info(tx, &item.sku)?;
                        if let Err(refusal) =
                            cart_rules::check_orderable(&item.sku, product.as_ref())
                        {
                            return Ok(OrderCreate::Refused(refusal));
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
                        reprice_cart(tx, cart.as_str(), &changes, events)?;
                        return Ok(OrderCreate::PricesChanged(changes));
                    }
                    currency = record.cart.currency;
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
                    pricing = match price_and_claim(tx, &draft, &wanted, at)? {
                        Ok(pricing) => pricing,
                        Err(refused) => return Ok(refused),
                    };
                    let taken = cart_lines(tx, cart.as_str())?;
                    let reservations: Vec<String> = taken.iter().map(|(_, r)| r.clone()).collect();
                    extend_reservations(tx, &reservations, draft.pay_by, id)?;
                    for (item, reservation) in taken {
                        let line = OrderItem {
                            sku: item.sku,
                            name: item.name,
                            quantity: item.quantity,
                            unit_price_cents: item.unit_price_cents,
                            line_total_cents: item.line_total_cents,
                        };
                        lines.push((line, reservation));
                    }
                    check_out_cart(tx, cart.as_str(), events, &mut pending)?;
                    cart_id = Some(cart.clone());
                }
            }
            let total = order_total(&pricing);
            let highest: Option<i64> = tx
                .prepare_cached("SELECT max(number) FROM orders")?
                .query_row([], |row| row.get(0))?;
            let number = rules::next_number(highest);
            let payment_id = draft.payment.as_ref().map(|p| p.id.clone());
            tx.prepare_cached(
                "INSERT INTO orders (id, number, status, customer_email, user_id, cart_id, currency,
                     total_cents, payment_id, idempotency_key, pay_by, created_at, updated_at,
                     subtotal_cents, discount_cents, shipping_cents, tax_cents, pricing)
                 VALUES (?1, ?2, 'pending', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11,
                     ?12, ?13, ?14, ?15, ?16)",
            )?
            .execute(params![
                id,
                number,
                draft.customer_email,
                draft.user_id.as_ref().map(|u| u.to_string()),
                cart_id.as_ref().map(|c| c.to_string()),
                currency.code(),
                total,
                payment_id.as_ref().map(|p| p.to_string()),
                draft.idempotency_key,
                millis(draft.pay_by),
                millis(at),
                pricing.subtotal_cents,
                pricing.discount_cents,
                pricing.shipping_cents,
                pricing.tax_cents,
                serde_json::to_string(&pricing).map_err(backend)?,
            ])?;
            let mut insert_item = tx.prepare_cached(
                "INSERT INTO order_items (order_id, position, sku, name, quantity, unit_price_cents,
                     reservation_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for (position, (line, reservation)) in lines.iter().enumerate() {
                insert_item.execute(params![
                    id,
                    position as i64 + 1,
                    line.sku,
                    line.name,
                    line.quantity,
                    line.unit_price_cents,
                    reservation
                ])?;
            }
            let created =
                insert_history(tx, id, None, OrderStatus::Pending, &draft.actor, None, at)?;
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
                Some(payment) => Some(Box::new(insert_payment(tx, &order, payment, at)?)),
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
            )?;
            append(tx, pending)?;
            Ok(OrderCreate::Created {
                order: Box::new(order),
                payment,
            })
        })
        .await
    }

    async fn transition_order(
        &self,
        order: &OrderId,
        request: TransitionRequest,
        events: CommerceEvents,
    ) -> StoreResult<TransitionOutcome> {
        let order = order.clone();
        self.write(move |tx| {
            if request.to == OrderStatus::Shipped {
                return ship_rest(tx, &order, request, events);
            }
            let Some((current, items)) = load_order(tx, order.as_str())? else {
                return Ok(TransitionOutcome::NotFound);
            };
            let shipped = items.iter().map(|item| item.shipped).sum();
            if let Err(TransitionRefusal::PartlyShipped) =
                fulfilment::check_cancel_unshipped(current.status, request.to, shipped)
            {
                return Ok(TransitionOutcome::PartlyShipped);
            }
            let payments = payment_facts(tx, &current)?;
            let was = order_state(&current);
            let mut pending = Vec::new();
            let changed = match rules::decide_transition(current.status, request.to, &payments) {
                Err(TransitionRefusal::Illegal { from }) => {
                    return Ok(TransitionOutcome::Illegal { from });
                }
                Err(TransitionRefusal::PaymentInFlight) => {
                    return Ok(TransitionOutcome::PaymentInFlight);
                }
                Err(TransitionRefusal::NeedsRefund { payment_id }) => {
                    return Ok(TransitionOutcome::NeedsRefund { payment_id });
                }
                Err(TransitionRefusal::Refunded) => return Ok(TransitionOutcome::Refunded),
                Err(TransitionRefusal::PartlyShipped) => {
                    return Ok(TransitionOutcome::PartlyShipped);
                }
                Ok(Transition::Cancel(cancellation)) => cancel_order(
                    tx,
                    current,
                    cancellation,
                    &request.actor,
                    request.note.as_deref(),
                    events,
                    &mut pending,
                )?,
                Ok(Transition::Advance(to)) => {
                    let mut current = current;
                    if let Some(tracking) = &request.tracking_number {
                        tx.prepare_cached("UPDATE orders SET tracking_number = ?2 WHERE id = ?1")?
                            .execute(params![order.as_str(), tracking])?;
                        current.tracking_number = Some(tracking.clone());
                    }
                    if to == OrderStatus::Delivered {
                        tx.prepare_cached(
                            "UPDATE fulfillments SET delivered_at = ?2
                             WHERE order_id = ?1 AND delivered_at IS NULL",
                        )?
                        .execute(params![order.as_str(), millis(now())])?;
                    }
                    let moved =
                        move_order(tx, current, to, &request.actor, request.note.as_deref())?;
                    let mut changed = must_read_order(tx, order.as_str())?;
                    changed.history = moved.history;
                    let kind: MakeEvent<Order> = match to {
                        OrderStatus::Shipped => EventData::OrderShipped,
                        _ => EventData::OrderDelivered,
                    };
                    pending.push((events.order)(kind, &changed));
                    changed
                }
            };
            audit::record(tx, [order_change(was, &changed)])?;
            append(tx, pending)?;
            Ok(TransitionOutcome::Done(Box::new(changed)))
        })
        .await
    }

    async fn ship_order(
        &self,
        order: &OrderId,
        draft: ShipmentDraft,
        events: CommerceEvents,
    ) -> StoreResult<ShipOutcome> {
        let order = order.clone();
        self.write(move |tx| ship(tx, &order, &draft, events)).await
    }

    async fn expire_orders(
        &self,
        now: OffsetDateTime,
        limit: u32,
        events: CommerceEvents,
    ) -> StoreResult<u64> {
        self.write(move |tx| {
            let due: Vec<String> = tx
                .prepare_cached(
                    "SELECT o.id FROM orders o
                     WHERE o.status = 'pending' AND o.pay_by <= ?1
                       AND NOT EXISTS (SELECT 1 FROM payments p
                                       WHERE p.order_id = o.id AND p.status = 'processing')
                     ORDER BY o.pay_by LIMIT ?2",
                )?
                .query_map(params![millis(now), limit], |row| row.get(0))?
                .collect::<rusqlite::Result<_>>()?;
            let mut pending = Vec::new();
            for id in &due {
                let order = must_read_order(tx, id)?;
                if let Some(cancellation) = rules::cancellation(order.status) {
                    audit::record(
                        tx,
                        [AuditChange::diff(
                            "order.cancelled",
                            "order",
                            id.as_str(),
                            order_state(&order),
                            serde_json::json!({"status": OrderStatus::Cancelled}),
                        )],
                    )?;
                    cancel_order(
                        tx,
                        order,
                        cancellation,
                        "system",
                        Some("not paid in time"),
                        events,
                        &mut pending,
                    )?;
                }
            }
            append(tx, pending)?;
            Ok(due.len() as u64)
        })
        .await
    }

    async fn order(&self, key: &OrderKey) -> StoreResult<Option<Order>> {
        let key = key.clone();
        self.read(move |conn| match key {
            OrderKey::Id(id) => read_order(conn, id.as_str()),
            OrderKey::Number(number) => {
                let id: Option<String> = conn
                    .prepare_cached("SELECT id FROM orders WHERE number = ?1")?
                    .query_row([number], |row| row.get(0))
                    .optional()?;
                id.map_or(Ok(None), |id| read_order(conn, &id))
            }
        })
        .await
    }

    async fn list_orders(&self, query: &OrderQuery) -> StoreResult<(Vec<Order>, u64)> {
        let query = query.clone();
        self.read(move |conn| {
            let mut filter = Filter::default();
            filter.add_some("status = ?", query.status.map(|s| s.as_str().to_owned()));
            filter.add_some(
                "financial_status = ?",
                query.financial_status.map(|s| s.as_str().to_owned()),
            );
            filter.add_some(
                "customer_email = ? COLLATE NOCASE",
                query.customer_email.clone(),
            );
            filter.owner(&query.owner, "");
            filter.add_some("created_at >= ?", query.from.map(millis));
            filter.add_some("created_at < ?", query.to.map(millis));
            let total = filter.count(conn, "FROM orders")?;
            let select = format!("SELECT {ORDER_COLUMNS} FROM orders");
            let page = (query.limit, query.offset);
            let orders = filter.page(conn, &select, "id DESC", page, order_row)?;
            let orders = orders
                .into_iter()
                .map(|order| with_items(conn, order))
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((orders, total))
        })
        .await
    }

    async fn order_counts(&self) -> StoreResult<Vec<(OrderStatus, u64)>> {
        self.read(|conn| {
            conn.prepare_cached("SELECT status, count(*) FROM orders GROUP BY status")?
                .query_map([], |row| {
                    Ok((parse_column(row, "status")?, row.get::<_, i64>(1)? as u64))
                })?
                .collect()
        })
        .await
    }
}

/// A move to `shipped` asked of the state machine: everything left goes
/// out in one shipment, without a carrier.
fn ship_rest(
    tx: &Transaction<'_>,
    order: &OrderId,
    request: TransitionRequest,
    events: CommerceEvents,
) -> StoreResult<TransitionOutcome> {
    let draft = ShipmentDraft {
        id: shop_wire::orders::FulfillmentId::generate(),
        items: None,
        carrier: None,
        tracking_number: request.tracking_number,
        tracking_url: None,
        actor: request.actor,
        note: request.note,
    };
    Ok(match ship(tx, order, &draft, events)? {
        ShipOutcome::Shipped(order) => TransitionOutcome::Done(order),
        ShipOutcome::NotFound => TransitionOutcome::NotFound,
        ShipOutcome::Refused(ShipRefusal::Refunded) => TransitionOutcome::Refunded,
        ShipOutcome::Refused(ShipRefusal::Illegal { from }) => TransitionOutcome::Illegal { from },
        ShipOutcome::Refused(refusal) => {
            return Err(StoreError::Backend(
                format!("shipping everything left was refused: {refusal:?}").into(),
            ));
        }
    })
}

/// One shipment, decided by the orders service's rule and written with a
/// guarded statement per line.
fn ship(
    tx: &Transaction<'_>,
    order: &OrderId,
    draft: &ShipmentDraft,
    events: CommerceEvents,
) -> StoreResult<ShipOutcome> {
    let Some((current, items)) = load_order(tx, order.as_str())? else {
        return Ok(ShipOutcome::NotFound);
    };
    let payments = payment_facts(tx, &current)?;
    let lines: Vec<ShippedLine> = items.iter().map(StoredItem::shipped_line).collect();
    let plan = match fulfilment::decide_shipment(
        current.status,
        &payments,
        &lines,
        draft.items.as_deref(),
    ) {
        Ok(plan) => plan,
        Err(refusal) => return Ok(ShipOutcome::Refused(refusal)),
    };
    if let Err(refusal) = take_units(tx, order.as_str(), &lines, &plan)? {
        return Ok(ShipOutcome::Refused(refusal));
    }
    let at = now();
    tx.prepare_cached(
        "INSERT INTO fulfillments (id, order_id, carrier, tracking_number, tracking_url, shipped_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        draft.id.as_str(),
        order.as_str(),
        draft.carrier,
        draft.tracking_number,
        draft.tracking_url,
        millis(at)
    ])?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO fulfillment_items (fulfillment_id, position, sku, quantity)
         VALUES (?1, ?2, ?3, ?4)",
    )?;
    for (position, quantity) in &plan.lines {
        let sku = lines
            .iter()
            .find(|line| line.position == *position)
            .map(|line| line.sku.as_str());
        insert.execute(params![draft.id.as_str(), position, sku, quantity])?;
    }
    tx.prepare_cached(
        "UPDATE orders SET tracking_number = coalesce(?2, tracking_number), updated_at = ?3
         WHERE id = ?1",
    )?
    .execute(params![order.as_str(), draft.tracking_number, millis(at)])?;
    let was = order_state(&current);
    let history = if plan.completes {
        move_order(
            tx,
            current,
            OrderStatus::Shipped,
            &draft.actor,
            draft.note.as_deref(),
        )?
        .history
    } else {
        current.history
    };
    let mut shipped = must_read_order(tx, order.as_str())?;
    shipped.history = history;
    let (action, kind): (&str, MakeEvent<Order>) = if plan.completes {
        ("order.shipped", EventData::OrderShipped)
    } else {
        ("order.partially_shipped", EventData::OrderPartiallyShipped)
    };
    audit::record(
        tx,
        [AuditChange::diff(
            action,
            "order",
            order.as_str(),
            was,
            order_state(&shipped),
        )],
    )?;
    append(tx, vec![(events.order)(kind, &shipped)])?;
    Ok(ShipOutcome::Shipped(Box::new(shipped)))
}

/// Adds the plan's units to each line's shipped units, guarded: a line
/// never ships more than its quantity, whatever shipped since the plan was
/// made. A line that no longer has the units undoes the lines before it
/// and answers what is left of its SKU.
fn take_units(
    tx: &Transaction<'_>,
    order: &str,
    lines: &[ShippedLine],
    plan: &ShipmentPlan,
) -> StoreResult<Result<(), ShipRefusal>> {
    let mut take = tx.prepare_cached(
        "UPDATE order_items SET shipped_quantity = shipped_quantity + ?3
         WHERE order_id = ?1 AND position = ?2 AND shipped_quantity + ?3 <= quantity",
    )?;
    for (taken, (position, quantity)) in plan.lines.iter().enumerate() {
        if take.execute(params![order, position, quantity])? == 1 {
            continue;
        }
        let mut undo = tx.prepare_cached(
            "UPDATE order_items SET shipped_quantity = shipped_quantity - ?3
             WHERE order_id = ?1 AND position = ?2",
        )?;
        for (position, quantity) in &plan.lines[..taken] {
            undo.execute(params![order, position, quantity])?;
        }
        let sku = lines
            .iter()
            .find(|line| line.position == *position)
            .map(|line| line.sku.clone())
            .unwrap_or_default();
        let left: i64 = tx
            .prepare_cached(
                "SELECT coalesce(sum(quantity - shipped_quantity), 0) FROM order_items
                 WHERE order_id = ?1 AND sku = ?2",
            )?
            .query_row(params![order, sku], |row| row.get(0))?;
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
