//! Orders in SQLite.
//!
//! The checkout is split where the provider is called: one transaction
//! records the order `pending`, holds its stock and records the payment
//! `processing`; the provider is asked outside any transaction; a second
//! transaction records the answer, and for a success commits the stock and
//! marks the order paid together (the second transaction is in `payments`).

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use shop_wire::Event;
use shop_wire::cart::CartStatus;
use shop_wire::events::{EventData, MakeEvent};
use shop_wire::inventory::ReservationStatus;
use shop_wire::money::Currency;
use shop_wire::orders::{Order, OrderId, OrderItem, OrderStatus, PaymentFailure, StatusChange};
use shop_wire::payments::PaymentStatus;
use time::OffsetDateTime;

use super::carts::{cart_lines, check_lines, check_out_cart, lines_held, merge_lines, read_cart};
use super::filter::Filter;
use super::inventory::{
    Hold, active_reservation, check_available, extend_reservations, finish_active, reserve_checked,
    restock, sell_unreserved,
};
use super::payments::{insert_payment, payment_in_flight, read_payment};
use super::{SqliteStore, append, conversion, from_millis, millis, parse_column};
use crate::store::{
    CommerceEvents, LineRefusal, NewEvent, OrderCreate, OrderDraft, OrderKey, OrderQuery,
    OrderSource, OrderStore, ReserveItem, StoreError, StoreResult, TransitionOutcome,
    TransitionRequest, now,
};

const ORDER_COLUMNS: &str = "id, number, status, customer_email, user_id, cart_id, currency, \
     total_cents, refunded_cents, payment_id, payment_error_code, payment_error_message, \
     tracking_number, created_at, updated_at";
/// Orders count from 1001, so the first order of a shop does not look like its only one.
const FIRST_NUMBER: i64 = 1001;

/// `ORD-001042` from 1042.
pub(crate) fn order_number(number: i64) -> String {
    format!("ORD-{number:06}")
}

fn order_row(row: &Row<'_>) -> rusqlite::Result<Order> {
    let error_code: Option<String> = row.get("payment_error_code")?;
    let error_message: Option<String> = row.get("payment_error_message")?;
    Ok(Order {
        id: parse_column(row, "id")?,
        number: order_number(row.get("number")?),
        status: parse_column(row, "status")?,
        items: Vec::new(),
        item_count: 0,
        total_cents: row.get("total_cents")?,
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

/// An order line with the reservation that holds its stock.
pub(super) struct StoredItem {
    pub(super) position: i64,
    pub(super) item: OrderItem,
    pub(super) reservation_id: Option<String>,
}

pub(super) fn order_items(conn: &Connection, order: &str) -> rusqlite::Result<Vec<StoredItem>> {
    conn.prepare_cached(
        "SELECT position, sku, name, quantity, unit_price_cents, reservation_id
         FROM order_items WHERE order_id = ?1 ORDER BY position",
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
        })
    })?
    .collect()
}

fn with_items(conn: &Connection, mut order: Order) -> rusqlite::Result<Order> {
    let items = order_items(conn, order.id.as_str())?;
    order.item_count = items.iter().map(|i| i.item.quantity).sum();
    order.items = items.into_iter().map(|i| i.item).collect();
    Ok(order)
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

/// One order with its lines and history.
pub(super) fn read_order(conn: &Connection, id: &str) -> rusqlite::Result<Option<Order>> {
    let order = conn
        .prepare_cached(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = ?1"))?
        .query_row([id], order_row)
        .optional()?;
    order
        .map(|order| {
            let mut order = with_items(conn, order)?;
            order.history = history(conn, order.id.as_str())?;
            Ok(order)
        })
        .transpose()
}

pub(super) fn must_read_order(tx: &Transaction<'_>, id: &str) -> StoreResult<Order> {
    read_order(tx, id)?
        .ok_or_else(|| StoreError::Backend(format!("order {id} vanished mid-change").into()))
}

pub(super) fn record_status(
    tx: &Transaction<'_>,
    order: &str,
    from: Option<OrderStatus>,
    to: OrderStatus,
    actor: &str,
    note: Option<&str>,
) -> StoreResult<()> {
    let at = millis(now());
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
        at
    ])?;
    if from.is_some() {
        tx.prepare_cached("UPDATE orders SET status = ?2, updated_at = ?3 WHERE id = ?1")?
            .execute(params![order, to.as_str(), at])?;
    }
    Ok(())
}

/// Cancels an order in this transaction: a pending one's stock is released
/// (and a bank transfer awaiting settlement is cancelled), a paid one's
/// sold units go back on hand.
pub(super) fn cancel_order(
    tx: &Transaction<'_>,
    order: &Order,
    actor: &str,
    note: Option<&str>,
    events: CommerceEvents,
    pending: &mut Vec<NewEvent>,
) -> StoreResult<Order> {
    let id = order.id.as_str();
    match order.status {
        OrderStatus::Pending => {
            for item in order_items(tx, id)? {
                if let Some(reservation) = &item.reservation_id
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
        OrderStatus::Paid => {
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
        status => {
            return Err(StoreError::Backend(
                format!("an order {status} cannot be cancelled").into(),
            ));
        }
    }
    record_status(
        tx,
        id,
        Some(order.status),
        OrderStatus::Cancelled,
        actor,
        note,
    )?;
    let cancelled = must_read_order(tx, id)?;
    pending.push((events.order)(EventData::OrderCancelled, &cancelled));
    Ok(cancelled)
}

/// Holds stock again for the lines of a pending order whose hold ran out;
/// `Err` with the refusal (and nothing written) when the stock is gone.
pub(super) fn hold_again(
    tx: &Transaction<'_>,
    order: &Order,
    hold_until: OffsetDateTime,
    actor: &str,
    events: CommerceEvents,
    pending: &mut Vec<NewEvent>,
) -> StoreResult<Result<(), LineRefusal>> {
    let id = order.id.as_str();
    let items = order_items(tx, id)?;
    let mut lapsed = Vec::new();
    for item in &items {
        let held = match &item.reservation_id {
            Some(reservation) => active_reservation(tx, reservation)?.is_some(),
            None => false,
        };
        if !held {
            lapsed.push(item);
        }
    }
    let wanted: Vec<ReserveItem> = lapsed
        .iter()
        .map(|item| ReserveItem {
            sku: item.item.sku.clone(),
            quantity: item.item.quantity,
        })
        .collect();
    if let Some(refusal) = check_available(tx, &wanted)? {
        return Ok(Err(super::carts::line_refusal(refusal)));
    }
    for (item, line) in lapsed.iter().zip(&wanted) {
        let hold = Hold {
            expires_at: hold_until,
            reference: Some(id.to_owned()),
            actor: Some(actor.to_owned()),
        };
        let effect = reserve_checked(tx, line, hold)?;
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
    }
    let all: Vec<String> = order_items(tx, id)?
        .into_iter()
        .filter_map(|item| item.reservation_id)
        .collect();
    extend_reservations(tx, &all, hold_until, id)?;
    tx.prepare_cached("UPDATE orders SET pay_by = ?2 WHERE id = ?1")?
        .execute(params![id, millis(hold_until)])?;
    Ok(Ok(()))
}

/// Commits the stock of a paid order: each line's reservation, or, where
/// the hold ran out, units still available. Checks every line before
/// writing any; false (nothing written) when some line's stock is gone.
pub(super) fn commit_stock(
    tx: &Transaction<'_>,
    order: &Order,
    actor: &str,
    events: CommerceEvents,
    pending: &mut Vec<NewEvent>,
) -> StoreResult<bool> {
    let items = order_items(tx, order.id.as_str())?;
    let mut unheld = Vec::new();
    for item in &items {
        let held = match &item.reservation_id {
            Some(reservation) => active_reservation(tx, reservation)?.is_some(),
            None => false,
        };
        if !held {
            unheld.push(ReserveItem {
                sku: item.item.sku.clone(),
                quantity: item.item.quantity,
            });
        }
    }
    if check_available(tx, &unheld)?.is_some() {
        return Ok(false);
    }
    for item in &items {
        let committed = match &item.reservation_id {
            Some(reservation) => finish_active(
                tx,
                reservation,
                ReservationStatus::Committed,
                Some(actor.to_owned()),
            )?,
            None => None,
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
    Ok(true)
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
            let id = draft.id.as_str();
            let mut pending = Vec::new();
            // (sku, name, quantity, unit price, reservation) per line, and the currency.
            let mut lines: Vec<(String, String, i64, i64, String)> = Vec::new();
            let currency: Currency;
            let mut cart_id = None;
            match &draft.source {
                OrderSource::Items(items) => {
                    let items = merge_lines(items.clone());
                    let products = match check_lines(tx, &items, None) {
                        Ok(Ok(products)) => products,
                        Ok(Err(LineRefusal::CurrencyMismatch { .. })) => {
                            return Ok(OrderCreate::MixedCurrencies);
                        }
                        Ok(Err(refusal)) => return Ok(OrderCreate::Refused(refusal)),
                        Err(err) => return Err(err),
                    };
                    currency = products.first().map_or(Currency::USD, |p| p.currency);
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
                        lines.push((
                            item.sku.clone(),
                            product.name,
                            item.quantity,
                            product.price_cents,
                            reservation,
                        ));
                    }
                }
                OrderSource::Cart(cart) => {
                    let Some(record) = read_cart(tx, cart.as_str())? else {
                        return Ok(OrderCreate::CartNotFound);
                    };
                    if record.cart.status != CartStatus::Active {
                        return Ok(OrderCreate::CartNotActive(record.cart.status));
                    }
                    if record.cart.items.is_empty() {
                        return Ok(OrderCreate::CartEmpty);
                    }
                    if record.cart.expires_at <= now() || !lines_held(tx, cart.as_str())? {
                        return Ok(OrderCreate::CartNotActive(CartStatus::Expired));
                    }
                    for item in &record.cart.items {
                        match super::carts::product_info(tx, &item.sku)? {
                            Some(product) if product.active => {}
                            Some(_) => {
                                return Ok(OrderCreate::Refused(LineRefusal::Archived(
                                    item.sku.clone(),
                                )));
                            }
                            None => {
                                return Ok(OrderCreate::Refused(LineRefusal::UnknownSku(
                                    item.sku.clone(),
                                )));
                            }
                        }
                    }
                    currency = record.cart.currency;
                    let taken = cart_lines(tx, cart.as_str())?;
                    let reservations: Vec<String> = taken.iter().map(|(_, r)| r.clone()).collect();
                    extend_reservations(tx, &reservations, draft.pay_by, id)?;
                    for (item, reservation) in taken {
                        lines.push((
                            item.sku,
                            item.name,
                            item.quantity,
                            item.unit_price_cents,
                            reservation,
                        ));
                    }
                    check_out_cart(tx, cart.as_str(), events, &mut pending)?;
                    cart_id = Some(cart.to_string());
                }
            }
            let total: i64 = lines.iter().map(|(_, _, q, p, _)| q * p).sum();
            let number: i64 = tx
                .prepare_cached("SELECT coalesce(max(number) + 1, ?1) FROM orders")?
                .query_row([FIRST_NUMBER], |row| row.get(0))?;
            let at = millis(now());
            tx.prepare_cached(
                "INSERT INTO orders (id, number, status, customer_email, user_id, cart_id, currency,
                     total_cents, idempotency_key, pay_by, created_at, updated_at)
                 VALUES (?1, ?2, 'pending', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?10)",
            )?
            .execute(params![
                id,
                number,
                draft.customer_email,
                draft.user_id.as_ref().map(|u| u.to_string()),
                cart_id,
                currency.code(),
                total,
                draft.idempotency_key,
                millis(draft.pay_by),
                at
            ])?;
            let mut insert_item = tx.prepare_cached(
                "INSERT INTO order_items (order_id, position, sku, name, quantity, unit_price_cents,
                     reservation_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            for (position, (sku, name, quantity, price, reservation)) in lines.iter().enumerate() {
                insert_item.execute(params![
                    id,
                    position as i64 + 1,
                    sku,
                    name,
                    quantity,
                    price,
                    reservation
                ])?;
            }
            record_status(tx, id, None, OrderStatus::Pending, &draft.actor, None)?;
            let mut order = must_read_order(tx, id)?;
            let payment = match &draft.payment {
                Some(payment) => {
                    let payment = insert_payment(tx, &order, payment)?;
                    order.payment_id = Some(payment.id.clone());
                    Some(Box::new(payment))
                }
                None => None,
            };
            pending.push((events.order)(EventData::OrderCreated, &order));
            let logged = append(tx, pending)?;
            Ok(OrderCreate::Created {
                order: Box::new(order),
                payment,
                events: logged,
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
            let Some(current) = read_order(tx, order.as_str())? else {
                return Ok(TransitionOutcome::NotFound);
            };
            let to = request.to;
            // Paid is reached only through a payment, never by decree.
            if to == OrderStatus::Paid || !current.status.can_become(to) {
                return Ok(TransitionOutcome::Illegal {
                    from: current.status,
                });
            }
            let mut pending = Vec::new();
            let changed = match to {
                OrderStatus::Cancelled => {
                    if let Some(in_flight) = payment_in_flight(tx, order.as_str())?
                        && in_flight.status == PaymentStatus::Processing
                    {
                        return Ok(TransitionOutcome::PaymentInFlight);
                    }
                    if current.status == OrderStatus::Paid
                        && let Some(payment) = &current.payment_id
                        && let Some(payment) = read_payment(tx, payment.as_str())?
                        && payment.refunded_cents < payment.amount_cents
                    {
                        return Ok(TransitionOutcome::NeedsRefund {
                            payment_id: payment.id,
                        });
                    }
                    cancel_order(
                        tx,
                        &current,
                        &request.actor,
                        request.note.as_deref(),
                        events,
                        &mut pending,
                    )?
                }
                _ => {
                    if let Some(tracking) = &request.tracking_number {
                        tx.prepare_cached("UPDATE orders SET tracking_number = ?2 WHERE id = ?1")?
                            .execute(params![order.as_str(), tracking])?;
                    }
                    record_status(
                        tx,
                        order.as_str(),
                        Some(current.status),
                        to,
                        &request.actor,
                        request.note.as_deref(),
                    )?;
                    let changed = must_read_order(tx, order.as_str())?;
                    let kind: MakeEvent<Order> = match to {
                        OrderStatus::Shipped => EventData::OrderShipped,
                        _ => EventData::OrderDelivered,
                    };
                    pending.push((events.order)(kind, &changed));
                    changed
                }
            };
            let logged = append(tx, pending)?;
            Ok(TransitionOutcome::Done(Box::new(changed), logged))
        })
        .await
    }

    async fn expire_orders(
        &self,
        now: OffsetDateTime,
        limit: u32,
        events: CommerceEvents,
    ) -> StoreResult<(u64, Vec<Event>)> {
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
                cancel_order(
                    tx,
                    &order,
                    "system",
                    Some("not paid in time"),
                    events,
                    &mut pending,
                )?;
            }
            Ok((due.len() as u64, append(tx, pending)?))
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
            if let Some(status) = query.status {
                filter.add_one("status = ?", status.as_str());
            }
            if let Some(email) = &query.customer_email {
                filter.add_one("customer_email = ? COLLATE NOCASE", email.clone());
            }
            filter.owner(&query.owner, "");
            if let Some(from) = query.from {
                filter.add_one("created_at >= ?", millis(from));
            }
            if let Some(to) = query.to {
                filter.add_one("created_at < ?", millis(to));
            }
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
