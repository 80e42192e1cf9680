//! Orders, payments and refunds in SQLite.
//!
//! The checkout is split where the provider is called: one transaction
//! records the order `pending`, holds its stock and records the payment
//! `processing`; the provider is asked outside any transaction; a second
//! transaction records the answer, and for a success commits the stock and
//! marks the order paid together. A refund is recorded `processing` first, so
//! the sum of refunds in flight and done can never pass what was captured,
//! however many refunds race.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use shop_wire::Event;
use shop_wire::cart::CartStatus;
use shop_wire::events::{EventData, MakeEvent};
use shop_wire::inventory::ReservationStatus;
use shop_wire::money::Currency;
use shop_wire::orders::{
    CurrencyAmount, DayRevenue, Order, OrderAnalytics, OrderId, OrderItem, OrderStatus,
    PaymentFailure, StatusChange, StatusCount, TopProduct,
};
use shop_wire::payments::{
    CurrencyVolume, MethodCount, MethodKind, Payment, PaymentAnalytics, PaymentId, PaymentStatus,
    Refund, RefundId, RefundStatus,
};
use time::OffsetDateTime;

use super::carts::{cart_lines, check_lines, check_out_cart, lines_held, merge_lines, read_cart};
use super::inventory::{
    Hold, active_reservation, check_available, extend_reservations, finish_active, reserve_checked,
    restock, sell_unreserved,
};
use super::{SqliteStore, append, conversion, from_millis, millis, parse_column};
use crate::store::{
    BeginPayment, ChargeResult, CommerceEvents, FinishRefund, LineRefusal, NewEvent, OrderCreate,
    OrderDraft, OrderKey, OrderQuery, OrderSource, OrderStore, PaymentDone, PaymentDraft,
    PaymentQuery, PendingRefund, RefundDraft, RefundResult, ReserveItem, StartRefund, StoreError,
    StoreResult, TransitionOutcome, TransitionRequest, now,
};

const ORDER_COLUMNS: &str = "id, number, status, customer_email, user_id, cart_id, currency, \
     total_cents, refunded_cents, payment_id, payment_error_code, payment_error_message, \
     tracking_number, created_at, updated_at";
const PAYMENT_COLUMNS: &str = "id, order_id, amount_cents, refunded_cents, currency, method, \
     status, provider, provider_ref, card_brand, card_last4, failure_code, failure_message, \
     created_at, updated_at";
const REFUND_COLUMNS: &str =
    "id, payment_id, amount_cents, currency, reason, status, failure_message, created_at";

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

fn payment_row(row: &Row<'_>) -> rusqlite::Result<Payment> {
    Ok(Payment {
        id: parse_column(row, "id")?,
        order_id: parse_column(row, "order_id")?,
        amount_cents: row.get("amount_cents")?,
        refunded_cents: row.get("refunded_cents")?,
        currency: parse_column(row, "currency")?,
        method: parse_column(row, "method")?,
        status: parse_column(row, "status")?,
        provider: row.get("provider")?,
        provider_ref: row.get("provider_ref")?,
        card_brand: row.get("card_brand")?,
        card_last4: row.get("card_last4")?,
        failure_code: row.get("failure_code")?,
        failure_message: row.get("failure_message")?,
        refunds: Vec::new(),
        created_at: from_millis(row.get("created_at")?)?,
        updated_at: from_millis(row.get("updated_at")?)?,
    })
}

fn refund_row(row: &Row<'_>) -> rusqlite::Result<Refund> {
    Ok(Refund {
        id: parse_column(row, "id")?,
        payment_id: parse_column(row, "payment_id")?,
        amount_cents: row.get("amount_cents")?,
        currency: parse_column(row, "currency")?,
        reason: row.get("reason")?,
        status: parse_column(row, "status")?,
        failure_message: row.get("failure_message")?,
        created_at: from_millis(row.get("created_at")?)?,
    })
}

/// An order line with the reservation that holds its stock.
struct StoredItem {
    position: i64,
    item: OrderItem,
    reservation_id: Option<String>,
}

fn order_items(conn: &Connection, order: &str) -> rusqlite::Result<Vec<StoredItem>> {
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
fn read_order(conn: &Connection, id: &str) -> rusqlite::Result<Option<Order>> {
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

fn must_read_order(tx: &Transaction<'_>, id: &str) -> StoreResult<Order> {
    read_order(tx, id)?
        .ok_or_else(|| StoreError::Backend(format!("order {id} vanished mid-change").into()))
}

fn read_payment(conn: &Connection, id: &str) -> rusqlite::Result<Option<Payment>> {
    let payment = conn
        .prepare_cached(&format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = ?1"
        ))?
        .query_row([id], payment_row)
        .optional()?;
    payment
        .map(|mut payment| {
            payment.refunds = conn
                .prepare_cached(&format!(
                    "SELECT {REFUND_COLUMNS} FROM refunds WHERE payment_id = ?1 ORDER BY id"
                ))?
                .query_map([id], refund_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(payment)
        })
        .transpose()
}

fn must_read_payment(tx: &Transaction<'_>, id: &str) -> StoreResult<Payment> {
    read_payment(tx, id)?
        .ok_or_else(|| StoreError::Backend(format!("payment {id} vanished mid-change").into()))
}

fn read_refund(conn: &Connection, id: &str) -> rusqlite::Result<Option<Refund>> {
    conn.prepare_cached(&format!(
        "SELECT {REFUND_COLUMNS} FROM refunds WHERE id = ?1"
    ))?
    .query_row([id], refund_row)
    .optional()
}

fn record_status(
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

fn insert_payment(
    tx: &Transaction<'_>,
    order: &Order,
    draft: &PaymentDraft,
) -> StoreResult<Payment> {
    let at = now();
    tx.prepare_cached(
        "INSERT INTO payments (id, order_id, amount_cents, currency, method, status, provider,
             card_brand, card_last4, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, 'processing', ?6, ?7, ?8, ?9, ?9)",
    )?
    .execute(params![
        draft.id.as_str(),
        order.id.as_str(),
        order.total_cents,
        order.currency.code(),
        draft.method.as_str(),
        draft.provider,
        draft.card_brand,
        draft.card_last4,
        millis(at)
    ])?;
    tx.prepare_cached("UPDATE orders SET payment_id = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![order.id.as_str(), draft.id.as_str(), millis(at)])?;
    Ok(Payment {
        id: draft.id.clone(),
        order_id: order.id.clone(),
        amount_cents: order.total_cents,
        refunded_cents: 0,
        currency: order.currency,
        method: draft.method,
        status: PaymentStatus::Processing,
        provider: draft.provider.to_owned(),
        provider_ref: None,
        card_brand: draft.card_brand.clone(),
        card_last4: draft.card_last4.clone(),
        failure_code: None,
        failure_message: None,
        refunds: Vec::new(),
        created_at: at,
        updated_at: at,
    })
}

/// The order's payments that are still being taken (`processing`) or settled (`pending`).
fn payment_in_flight(tx: &Transaction<'_>, order: &str) -> StoreResult<Option<Payment>> {
    let id: Option<String> = tx
        .prepare_cached(
            "SELECT id FROM payments WHERE order_id = ?1 AND status IN ('processing', 'pending')
             ORDER BY id DESC LIMIT 1",
        )?
        .query_row([order], |row| row.get(0))
        .optional()?;
    id.map(|id| must_read_payment(tx, &id)).transpose()
}

/// Cancels an order in this transaction: a pending one's stock is released
/// (and a bank transfer awaiting settlement is cancelled), a paid one's
/// sold units go back on hand.
fn cancel_order(
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
fn hold_again(
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
fn commit_stock(
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

/// A `WHERE` clause built from the conditions a list query sets, with its
/// parameters numbered in order (`?` in a condition is its next value).
#[derive(Default)]
struct Filter {
    clauses: Vec<String>,
    values: Vec<Box<dyn rusqlite::ToSql + Send>>,
}

impl Filter {
    fn add(&mut self, condition: &str, values: Vec<Box<dyn rusqlite::ToSql + Send>>) {
        let mut values = values.into_iter();
        let mut numbered = String::with_capacity(condition.len() + 4);
        for c in condition.chars() {
            if c == '?' {
                self.values.push(
                    values
                        .next()
                        .expect("a value for each `?` of the condition"),
                );
                numbered.push_str(&format!("?{}", self.values.len()));
            } else {
                numbered.push(c);
            }
        }
        self.clauses.push(numbered);
    }

    fn add_one(&mut self, condition: &str, value: impl rusqlite::ToSql + Send + 'static) {
        self.add(condition, vec![Box::new(value)]);
    }

    /// A customer's own rows: by their account, or by their email on orders placed for them.
    fn owner(&mut self, owner: &Option<(shop_wire::UserId, String)>, prefix: &str) {
        if let Some((user, email)) = owner {
            self.add(
                &format!("({prefix}user_id = ? OR {prefix}customer_email = ? COLLATE NOCASE)"),
                vec![Box::new(user.to_string()), Box::new(email.clone())],
            );
        }
    }

    fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", self.clauses.join(" AND "))
        }
    }

    fn count(&self, conn: &Connection, from: &str) -> rusqlite::Result<u64> {
        let params = rusqlite::params_from_iter(self.values.iter().map(|v| v.as_ref()));
        let total: i64 = conn.query_row(
            &format!("SELECT count(*) {from} {}", self.sql()),
            params,
            |row| row.get(0),
        )?;
        Ok(total as u64)
    }

    /// A page of `SELECT columns from` in `order`, read with `map`.
    fn page<T>(
        mut self,
        conn: &Connection,
        select: &str,
        order: &str,
        (limit, offset): (u32, u64),
        map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
    ) -> rusqlite::Result<Vec<T>> {
        let filter = self.sql();
        self.values.push(Box::new(limit));
        self.values.push(Box::new(offset as i64));
        let n = self.values.len();
        conn.prepare(&format!(
            "{select} {filter} ORDER BY {order} LIMIT ?{} OFFSET ?{n}",
            n - 1
        ))?
        .query_map(
            rusqlite::params_from_iter(self.values.iter().map(|v| v.as_ref())),
            map,
        )?
        .collect()
    }
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

    async fn begin_payment(
        &self,
        order: &OrderId,
        payment: PaymentDraft,
        pay_by: OffsetDateTime,
        actor: String,
        events: CommerceEvents,
    ) -> StoreResult<BeginPayment> {
        let order = order.clone();
        self.write(move |tx| {
            let Some(current) = read_order(tx, order.as_str())? else {
                return Ok(BeginPayment::NotFound);
            };
            if current.status != OrderStatus::Pending {
                return Ok(BeginPayment::WrongStatus(current.status));
            }
            if let Some(in_flight) = payment_in_flight(tx, order.as_str())? {
                return Ok(BeginPayment::InFlight(Box::new(in_flight)));
            }
            let mut pending = Vec::new();
            if let Err(refusal) = hold_again(tx, &current, pay_by, &actor, events, &mut pending)? {
                return Ok(BeginPayment::StockGone(refusal));
            }
            let started = insert_payment(tx, &current, &payment)?;
            let logged = append(tx, pending)?;
            Ok(BeginPayment::Started {
                order: Box::new(must_read_order(tx, order.as_str())?),
                payment: Box::new(started),
                events: logged,
            })
        })
        .await
    }

    async fn complete_payment(
        &self,
        payment: &PaymentId,
        result: ChargeResult,
        actor: String,
        events: CommerceEvents,
    ) -> StoreResult<PaymentDone> {
        let payment = payment.clone();
        self.write(move |tx| {
            let Some(before) = read_payment(tx, payment.as_str())? else {
                return Ok(PaymentDone::NotFound);
            };
            let settling = before.status == PaymentStatus::Pending
                && !matches!(result, ChargeResult::Pending { .. });
            if before.status != PaymentStatus::Processing && !settling {
                return Ok(PaymentDone::AlreadyFinished(Box::new(before)));
            }
            let order = must_read_order(tx, before.order_id.as_str())?;
            let at = millis(now());
            let mut pending = Vec::new();
            match result {
                ChargeResult::Succeeded {
                    provider_ref,
                    card_brand,
                    card_last4,
                } => {
                    tx.prepare_cached(
                        "UPDATE payments SET status = 'succeeded', provider_ref = ?2,
                             card_brand = coalesce(?3, card_brand), card_last4 = coalesce(?4, card_last4),
                             failure_code = NULL, failure_message = NULL, updated_at = ?5
                         WHERE id = ?1",
                    )?
                    .execute(params![payment.as_str(), provider_ref, card_brand, card_last4, at])?;
                    let paid = must_read_payment(tx, payment.as_str())?;
                    pending.push((events.payment)(EventData::PaymentSucceeded, &paid, &order, None));
                    let fulfillable = order.status == OrderStatus::Pending
                        && commit_stock(tx, &order, &actor, events, &mut pending)?;
                    if !fulfillable {
                        let logged = append(tx, pending)?;
                        return Ok(PaymentDone::Unfulfillable {
                            order: Box::new(order),
                            payment: Box::new(paid),
                            events: logged,
                        });
                    }
                    tx.prepare_cached(
                        "UPDATE orders SET payment_id = ?2, payment_error_code = NULL,
                             payment_error_message = NULL WHERE id = ?1",
                    )?
                    .execute(params![order.id.as_str(), payment.as_str()])?;
                    record_status(
                        tx,
                        order.id.as_str(),
                        Some(OrderStatus::Pending),
                        OrderStatus::Paid,
                        &actor,
                        None,
                    )?;
                    let order = must_read_order(tx, order.id.as_str())?;
                    pending.push((events.order)(EventData::OrderPaid, &order));
                    let logged = append(tx, pending)?;
                    Ok(PaymentDone::Paid {
                        order: Box::new(order),
                        payment: Box::new(paid),
                        events: logged,
                    })
                }
                ChargeResult::Pending {
                    provider_ref,
                    hold_until,
                } => {
                    tx.prepare_cached(
                        "UPDATE payments SET status = 'pending', provider_ref = ?2, updated_at = ?3
                         WHERE id = ?1",
                    )?
                    .execute(params![payment.as_str(), provider_ref, at])?;
                    let reservations: Vec<String> = order_items(tx, order.id.as_str())?
                        .into_iter()
                        .filter_map(|item| item.reservation_id)
                        .collect();
                    extend_reservations(tx, &reservations, hold_until, order.id.as_str())?;
                    tx.prepare_cached("UPDATE orders SET pay_by = ?2 WHERE id = ?1")?
                        .execute(params![order.id.as_str(), millis(hold_until)])?;
                    let waiting = must_read_payment(tx, payment.as_str())?;
                    pending.push((events.payment)(EventData::PaymentPending, &waiting, &order, None));
                    let logged = append(tx, pending)?;
                    Ok(PaymentDone::Pending {
                        order: Box::new(must_read_order(tx, order.id.as_str())?),
                        payment: Box::new(waiting),
                        events: logged,
                    })
                }
                ChargeResult::Failed {
                    code,
                    message,
                    provider_ref,
                } => {
                    tx.prepare_cached(
                        "UPDATE payments SET status = 'failed', failure_code = ?2, failure_message = ?3,
                             provider_ref = coalesce(?4, provider_ref), updated_at = ?5
                         WHERE id = ?1",
                    )?
                    .execute(params![payment.as_str(), code, message, provider_ref, at])?;
                    tx.prepare_cached(
                        "UPDATE orders SET payment_error_code = ?2, payment_error_message = ?3,
                             updated_at = ?4 WHERE id = ?1",
                    )?
                    .execute(params![order.id.as_str(), code, message, at])?;
                    let failed = must_read_payment(tx, payment.as_str())?;
                    pending.push((events.payment)(EventData::PaymentFailed, &failed, &order, None));
                    let logged = append(tx, pending)?;
                    Ok(PaymentDone::Failed {
                        order: Box::new(must_read_order(tx, order.id.as_str())?),
                        payment: Box::new(failed),
                        events: logged,
                    })
                }
            }
        })
        .await
    }

    async fn start_refund(
        &self,
        payment: &PaymentId,
        draft: RefundDraft,
    ) -> StoreResult<StartRefund> {
        let payment = payment.clone();
        self.write(move |tx| {
            let Some(current) = read_payment(tx, payment.as_str())? else {
                return Ok(StartRefund::NotFound);
            };
            match current.status {
                PaymentStatus::Succeeded => {}
                PaymentStatus::Refunded => return Ok(StartRefund::NothingLeft),
                status => return Ok(StartRefund::NotRefundable(status)),
            }
            let in_flight: i64 = tx
                .prepare_cached(
                    "SELECT coalesce(sum(amount_cents), 0) FROM refunds
                     WHERE payment_id = ?1 AND status = 'processing'",
                )?
                .query_row([payment.as_str()], |row| row.get(0))?;
            let refundable = current.amount_cents - current.refunded_cents - in_flight;
            if refundable <= 0 {
                return Ok(StartRefund::NothingLeft);
            }
            let amount = draft.amount_cents.unwrap_or(refundable);
            if amount > refundable {
                return Ok(StartRefund::Exceeds { refundable });
            }
            let at = now();
            tx.prepare_cached(
                "INSERT INTO refunds (id, payment_id, amount_cents, currency, reason, status,
                     cancels_order, actor, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, 'processing', ?6, ?7, ?8, ?8)",
            )?
            .execute(params![
                draft.id.as_str(),
                payment.as_str(),
                amount,
                current.currency.code(),
                draft.reason,
                draft.cancels_order,
                draft.actor,
                millis(at)
            ])?;
            let refund = Refund {
                id: draft.id,
                payment_id: payment.clone(),
                amount_cents: amount,
                currency: current.currency,
                reason: draft.reason,
                status: RefundStatus::Processing,
                failure_message: None,
                created_at: at,
            };
            Ok(StartRefund::Started {
                refund: Box::new(refund),
                payment: Box::new(current),
            })
        })
        .await
    }

    async fn finish_refund(
        &self,
        refund: &RefundId,
        result: RefundResult,
        events: CommerceEvents,
    ) -> StoreResult<FinishRefund> {
        let refund = refund.clone();
        self.write(move |tx| {
            let Some(before) = read_refund(tx, refund.as_str())? else {
                return Ok(FinishRefund::NotFound);
            };
            if before.status != RefundStatus::Processing {
                return Ok(FinishRefund::AlreadyFinished(Box::new(before)));
            }
            let (cancels_order, actor): (bool, Option<String>) = tx
                .prepare_cached("SELECT cancels_order, actor FROM refunds WHERE id = ?1")?
                .query_row([refund.as_str()], |row| Ok((row.get(0)?, row.get(1)?)))?;
            let actor = actor.unwrap_or_else(|| "system".to_owned());
            let at = millis(now());
            let payment_id = before.payment_id.as_str();
            let mut pending = Vec::new();
            match result {
                RefundResult::Succeeded { provider_ref } => {
                    tx.prepare_cached(
                        "UPDATE refunds SET status = 'succeeded', provider_ref = ?2, updated_at = ?3
                         WHERE id = ?1",
                    )?
                    .execute(params![refund.as_str(), provider_ref, at])?;
                    tx.prepare_cached(
                        "UPDATE payments SET refunded_cents = refunded_cents + ?2,
                             status = CASE WHEN refunded_cents + ?2 = amount_cents THEN 'refunded' ELSE status END,
                             updated_at = ?3
                         WHERE id = ?1",
                    )?
                    .execute(params![payment_id, before.amount_cents, at])?;
                    let payment = must_read_payment(tx, payment_id)?;
                    tx.prepare_cached(
                        "UPDATE orders SET refunded_cents = refunded_cents + ?2, updated_at = ?3
                         WHERE id = ?1",
                    )?
                    .execute(params![payment.order_id.as_str(), before.amount_cents, at])?;
                    let done = read_refund(tx, refund.as_str())?.ok_or_else(|| {
                        StoreError::Backend("refund vanished mid-change".into())
                    })?;
                    let mut order = must_read_order(tx, payment.order_id.as_str())?;
                    pending.push((events.payment)(
                        EventData::PaymentRefunded,
                        &payment,
                        &order,
                        Some(&done),
                    ));
                    if cancels_order
                        && matches!(order.status, OrderStatus::Pending | OrderStatus::Paid)
                    {
                        order = cancel_order(
                            tx,
                            &order,
                            &actor,
                            Some("cancelled and refunded"),
                            events,
                            &mut pending,
                        )?;
                    }
                    let logged = append(tx, pending)?;
                    Ok(FinishRefund::Done {
                        refund: Box::new(done),
                        payment: Box::new(payment),
                        order: Box::new(order),
                        events: logged,
                    })
                }
                RefundResult::Failed { message } => {
                    tx.prepare_cached(
                        "UPDATE refunds SET status = 'failed', failure_message = ?2, updated_at = ?3
                         WHERE id = ?1",
                    )?
                    .execute(params![refund.as_str(), message, at])?;
                    let done = read_refund(tx, refund.as_str())?.ok_or_else(|| {
                        StoreError::Backend("refund vanished mid-change".into())
                    })?;
                    let payment = must_read_payment(tx, payment_id)?;
                    let order = must_read_order(tx, payment.order_id.as_str())?;
                    pending.push((events.payment)(
                        EventData::PaymentRefundFailed,
                        &payment,
                        &order,
                        Some(&done),
                    ));
                    let logged = append(tx, pending)?;
                    Ok(FinishRefund::Done {
                        refund: Box::new(done),
                        payment: Box::new(payment),
                        order: Box::new(order),
                        events: logged,
                    })
                }
            }
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
            const SOLD: &str = "status IN ('paid', 'shipped', 'delivered')";
            let revenue_by_day = conn
                .prepare(&format!(
                    "SELECT date(created_at / 1000, 'unixepoch') AS day, currency, count(*),
                            sum(total_cents - refunded_cents)
                     FROM orders WHERE {SOLD} AND created_at >= ?1
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
            let average_order_value = conn
                .prepare(&format!(
                    "SELECT currency, sum(total_cents) / count(*) FROM orders WHERE {SOLD}
                     GROUP BY currency ORDER BY currency"
                ))?
                .query_map([], |row| {
                    Ok(CurrencyAmount {
                        currency: parse_column(row, "currency")?,
                        amount_cents: row.get(1)?,
                    })
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let top_products = conn
                .prepare(&format!(
                    "SELECT i.sku, max(i.name), sum(i.quantity) AS sold,
                            sum(i.quantity * i.unit_price_cents), o.currency
                     FROM order_items i JOIN orders o ON o.id = i.order_id
                     WHERE o.{SOLD}
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

    async fn payment(&self, id: &PaymentId) -> StoreResult<Option<Payment>> {
        let id = id.clone();
        self.read(move |conn| read_payment(conn, id.as_str())).await
    }

    async fn list_payments(&self, query: &PaymentQuery) -> StoreResult<(Vec<Payment>, u64)> {
        let query = query.clone();
        self.read(move |conn| {
            let mut filter = Filter::default();
            if let Some(status) = query.status {
                filter.add_one("p.status = ?", status.as_str());
            }
            if let Some(order) = &query.order_id {
                filter.add_one("p.order_id = ?", order.to_string());
            }
            if let Some(method) = query.method {
                filter.add_one("p.method = ?", method.as_str());
            }
            filter.owner(&query.owner, "o.");
            let from = "FROM payments p JOIN orders o ON o.id = p.order_id";
            let total = filter.count(conn, from)?;
            let columns = PAYMENT_COLUMNS
                .split(", ")
                .map(|c| format!("p.{c}"))
                .collect::<Vec<_>>()
                .join(", ");
            let select = format!("SELECT {columns} {from}");
            let page = (query.limit, query.offset);
            let items = filter.page(conn, &select, "p.id DESC", page, payment_row)?;
            Ok((items, total))
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

    async fn processing_payments(&self) -> StoreResult<Vec<Payment>> {
        self.read(|conn| {
            conn.prepare(&format!(
                "SELECT {PAYMENT_COLUMNS} FROM payments WHERE status = 'processing' ORDER BY id"
            ))?
            .query_map([], payment_row)?
            .collect()
        })
        .await
    }

    async fn processing_refunds(&self) -> StoreResult<Vec<PendingRefund>> {
        self.read(|conn| {
            let columns = REFUND_COLUMNS
                .split(", ")
                .map(|c| format!("r.{c}"))
                .collect::<Vec<_>>()
                .join(", ");
            conn.prepare(&format!(
                "SELECT {columns}, p.provider AS provider, p.provider_ref AS charge_ref
                 FROM refunds r JOIN payments p ON p.id = r.payment_id
                 WHERE r.status = 'processing' ORDER BY r.id"
            ))?
            .query_map([], |row| {
                Ok(PendingRefund {
                    refund: refund_row(row)?,
                    provider: row.get("provider")?,
                    provider_ref: row.get("charge_ref")?,
                })
            })?
            .collect()
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
