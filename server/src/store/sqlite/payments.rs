//! Payments and refunds in SQLite.
//!
//! A refund is recorded `processing` first, so the sum of refunds in flight
//! and done can never pass what was captured, however many refunds race.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use shop_wire::events::EventData;
use shop_wire::orders::{Order, OrderId, OrderStatus, PaymentFailure};
use shop_wire::payments::{Payment, PaymentId, PaymentStatus, Refund, RefundId, RefundStatus};
use time::OffsetDateTime;

use super::audit;
use super::filter::Filter;
use super::inventory::extend_reservations;
use super::orders::{
    availability, cancel_order, commit_stock, free_units, hold_again, insert_history, load_order,
    must_load_order, must_read_order, settle_financial_status,
};
use super::pricing::release_discounts;
use super::{SqliteStore, append, from_millis, millis, parse_column};
use crate::services::orders::rules::{self, Fulfilment, LineHold, NotPayable};
use crate::services::payments::rules::{self as payment_rules, RefundRefusal, Refundable};
use crate::services::pricing::rules::gives_back_discounts;
use crate::store::AuditChange;
use crate::store::{
    BeginPayment, ChargeResult, CommerceEvents, FinishRefund, PaymentDone, PaymentDraft,
    PaymentQuery, PaymentStore, PendingRefund, RefundDraft, RefundResult, StartRefund, StoreError,
    StoreResult, StoredItem, now,
};

const PAYMENT_COLUMNS: &str = "id, order_id, amount_cents, refunded_cents, currency, method, \
     status, provider, provider_ref, card_brand, card_last4, failure_code, failure_message, \
     created_at, updated_at, \
     (SELECT number FROM orders WHERE orders.id = payments.order_id) AS order_number";
const REFUND_COLUMNS: &str =
    "id, payment_id, amount_cents, currency, reason, status, failure_message, created_at";

fn payment_row(row: &Row<'_>) -> rusqlite::Result<Payment> {
    Ok(Payment {
        id: parse_column(row, "id")?,
        order_id: parse_column(row, "order_id")?,
        order_number: row
            .get::<_, Option<i64>>("order_number")?
            .map(rules::order_number),
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

pub(super) fn read_payment(conn: &Connection, id: &str) -> rusqlite::Result<Option<Payment>> {
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

/// Records a payment attempt `processing` (the caller links the order to it).
pub(super) fn insert_payment(
    tx: &Transaction<'_>,
    order: &Order,
    draft: &PaymentDraft,
    at: OffsetDateTime,
) -> StoreResult<Payment> {
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
    Ok(Payment {
        id: draft.id.clone(),
        order_id: order.id.clone(),
        order_number: Some(order.number.clone()),
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
pub(super) fn payment_in_flight(tx: &Transaction<'_>, order: &str) -> StoreResult<Option<Payment>> {
    let id: Option<String> = tx
        .prepare_cached(
            "SELECT id FROM payments WHERE order_id = ?1 AND status IN ('processing', 'pending')
             ORDER BY id DESC LIMIT 1",
        )?
        .query_row([order], |row| row.get(0))
        .optional()?;
    id.map(|id| must_read_payment(tx, &id)).transpose()
}

#[async_trait]
impl PaymentStore for SqliteStore {
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
            let Some((mut current, items)) = load_order(tx, order.as_str())? else {
                return Ok(BeginPayment::NotFound);
            };
            let in_flight = payment_in_flight(tx, order.as_str())?;
            match (
                rules::check_payable(current.status, in_flight.is_some()),
                in_flight,
            ) {
                (Ok(()), _) => {}
                (Err(NotPayable::WrongStatus(status)), _) => {
                    return Ok(BeginPayment::WrongStatus(status));
                }
                (Err(NotPayable::InFlight), in_flight) => {
                    let in_flight = in_flight.ok_or_else(|| {
                        StoreError::Backend("a payment in flight vanished mid-change".into())
                    })?;
                    return Ok(BeginPayment::InFlight(Box::new(in_flight)));
                }
            }
            let mut pending = Vec::new();
            if let Err(refusal) =
                hold_again(tx, &current, &items, pay_by, &actor, events, &mut pending)?
            {
                return Ok(BeginPayment::StockGone(refusal));
            }
            let at = now();
            let started = insert_payment(tx, &current, &payment, at)?;
            tx.prepare_cached("UPDATE orders SET payment_id = ?2, updated_at = ?3 WHERE id = ?1")?
                .execute(params![order.as_str(), payment.id.as_str(), millis(at)])?;
            current.payment_id = Some(payment.id.clone());
            current.updated_at = at;
            append(tx, pending)?;
            Ok(BeginPayment::Started {
                order: Box::new(current),
                payment: Box::new(started),
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
            let before = tx
                .prepare_cached(&format!(
                    "SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = ?1"
                ))?
                .query_row([payment.as_str()], payment_row)
                .optional()?;
            let Some(before) = before else {
                return Ok(PaymentDone::NotFound);
            };
            let answer_is_pending = matches!(result, ChargeResult::Pending { .. });
            if !payment_rules::answer_counts(before.status, answer_is_pending) {
                let finished = must_read_payment(tx, payment.as_str())?;
                return Ok(PaymentDone::AlreadyFinished(Box::new(finished)));
            }
            let (mut order, items) = must_load_order(tx, before.order_id.as_str())?;
            let at = now();
            let mut pending = Vec::new();
            // A payment that is still being taken or settled has no refunds yet.
            let update_payment = |sql: &str, values: &[&dyn rusqlite::ToSql]| {
                tx.prepare_cached(&format!("{sql} RETURNING {PAYMENT_COLUMNS}"))?
                    .query_row(values, payment_row)
            };
            match result {
                ChargeResult::Succeeded {
                    provider_ref,
                    card_brand,
                    card_last4,
                } => {
                    let paid = update_payment(
                        "UPDATE payments SET status = 'succeeded', provider_ref = ?2,
                             card_brand = coalesce(?3, card_brand), card_last4 = coalesce(?4, card_last4),
                             failure_code = NULL, failure_message = NULL, updated_at = ?5
                         WHERE id = ?1",
                        params![payment.as_str(), provider_ref, card_brand, card_last4, millis(at)],
                    )?;
                    pending.push((events.payment)(EventData::PaymentSucceeded, &paid, &order, None));
                    let lines: Vec<LineHold> = items.iter().map(StoredItem::hold).collect();
                    let levels = availability(tx, &rules::lapsed(&lines))?;
                    let fulfilment =
                        rules::decide_fulfilment(order.status, &lines, free_units(&levels));
                    if fulfilment == Fulfilment::Unfulfillable {
                        append(tx, pending)?;
                        return Ok(PaymentDone::Unfulfillable {
                            order: Box::new(order),
                            payment: Box::new(paid),
                        });
                    }
                    commit_stock(tx, &order, &items, &actor, events, &mut pending)?;
                    let financial = rules::financial_status(
                        OrderStatus::Paid,
                        order.total_cents,
                        order.refunded_cents,
                    );
                    let changed = tx
                        .prepare_cached(
                            "UPDATE orders SET status = 'paid', financial_status = ?4,
                                 payment_id = ?2,
                                 payment_error_code = NULL, payment_error_message = NULL,
                                 updated_at = ?3
                             WHERE id = ?1 AND status = 'pending'",
                        )?
                        .execute(params![
                            order.id.as_str(),
                            payment.as_str(),
                            millis(at),
                            financial.as_str()
                        ])?;
                    if changed != 1 {
                        return Err(StoreError::Backend(
                            format!("order {} left pending under its payment", order.id).into(),
                        ));
                    }
                    let change = insert_history(
                        tx,
                        order.id.as_str(),
                        Some(OrderStatus::Pending),
                        OrderStatus::Paid,
                        &actor,
                        None,
                        at,
                    )?;
                    order.status = OrderStatus::Paid;
                    order.financial_status = financial;
                    order.payment_id = Some(payment.clone());
                    order.payment_error = None;
                    order.updated_at = at;
                    order.history.push(change);
                    audit::record(
                        tx,
                        [AuditChange::diff(
                            "order.paid",
                            "order",
                            order.id.as_str(),
                            serde_json::json!({"status": OrderStatus::Pending}),
                            serde_json::json!({"status": OrderStatus::Paid, "payment_id": payment}),
                        )],
                    )?;
                    pending.push((events.order)(EventData::OrderPaid, &order));
                    append(tx, pending)?;
                    Ok(PaymentDone::Paid {
                        order: Box::new(order),
                        payment: Box::new(paid),
                    })
                }
                ChargeResult::Pending {
                    provider_ref,
                    hold_until,
                } => {
                    let waiting = update_payment(
                        "UPDATE payments SET status = 'pending', provider_ref = ?2, updated_at = ?3
                         WHERE id = ?1",
                        params![payment.as_str(), provider_ref, millis(at)],
                    )?;
                    let reservations: Vec<String> = items
                        .iter()
                        .filter_map(|item| item.reservation_id.clone())
                        .collect();
                    extend_reservations(tx, &reservations, hold_until, order.id.as_str())?;
                    tx.prepare_cached("UPDATE orders SET pay_by = ?2 WHERE id = ?1")?
                        .execute(params![order.id.as_str(), millis(hold_until)])?;
                    pending.push((events.payment)(EventData::PaymentPending, &waiting, &order, None));
                    append(tx, pending)?;
                    Ok(PaymentDone::Pending {
                        order: Box::new(order),
                    })
                }
                ChargeResult::Failed {
                    code,
                    message,
                    provider_ref,
                } => {
                    let failed = update_payment(
                        "UPDATE payments SET status = 'failed', failure_code = ?2, failure_message = ?3,
                             provider_ref = coalesce(?4, provider_ref), updated_at = ?5
                         WHERE id = ?1",
                        params![payment.as_str(), code, message, provider_ref, millis(at)],
                    )?;
                    tx.prepare_cached(
                        "UPDATE orders SET payment_error_code = ?2, payment_error_message = ?3,
                             updated_at = ?4 WHERE id = ?1",
                    )?
                    .execute(params![order.id.as_str(), code, message, millis(at)])?;
                    pending.push((events.payment)(EventData::PaymentFailed, &failed, &order, None));
                    order.payment_error = Some(PaymentFailure { code, message });
                    order.updated_at = at;
                    append(tx, pending)?;
                    Ok(PaymentDone::Failed {
                        order: Box::new(order),
                        payment: Box::new(failed),
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
            let in_flight: i64 = tx
                .prepare_cached(
                    "SELECT coalesce(sum(amount_cents), 0) FROM refunds
                     WHERE payment_id = ?1 AND status = 'processing'",
                )?
                .query_row([payment.as_str()], |row| row.get(0))?;
            let refundable = Refundable {
                status: current.status,
                captured_cents: current.amount_cents,
                refunded_cents: current.refunded_cents,
                in_flight_cents: in_flight,
            };
            let amount = match payment_rules::refund_amount(refundable, draft.amount_cents) {
                Ok(amount) => amount,
                Err(RefundRefusal::NotRefundable(status)) => {
                    return Ok(StartRefund::NotRefundable(status));
                }
                Err(RefundRefusal::NothingLeft) => return Ok(StartRefund::NothingLeft),
                Err(RefundRefusal::Exceeds { refundable }) => {
                    return Ok(StartRefund::Exceeds { refundable });
                }
            };
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
                    let charged = must_read_payment(tx, payment_id)?;
                    let status = payment_rules::status_after_refund(
                        charged.amount_cents,
                        charged.refunded_cents + before.amount_cents,
                    );
                    // Guarded: whatever raced it, refunds never pass what was captured.
                    let changed = tx
                        .prepare_cached(
                            "UPDATE payments SET refunded_cents = refunded_cents + ?2, status = ?3,
                                 updated_at = ?4
                             WHERE id = ?1 AND refunded_cents + ?2 <= amount_cents",
                        )?
                        .execute(params![
                            payment_id,
                            before.amount_cents,
                            status.as_str(),
                            at
                        ])?;
                    if changed != 1 {
                        return Err(StoreError::Backend(
                            format!(
                                "refund {} would pass what payment {payment_id} captured",
                                refund
                            )
                            .into(),
                        ));
                    }
                    let payment = must_read_payment(tx, payment_id)?;
                    audit::record(
                        tx,
                        [AuditChange::diff(
                            "payment.refunded",
                            "payment",
                            payment_id,
                            serde_json::json!({"refunded_cents": charged.refunded_cents, "status": charged.status}),
                            serde_json::json!({"refunded_cents": payment.refunded_cents, "status": payment.status, "refund_id": refund}),
                        )],
                    )?;
                    tx.prepare_cached(
                        "UPDATE orders SET refunded_cents = refunded_cents + ?2, updated_at = ?3
                         WHERE id = ?1",
                    )?
                    .execute(params![
                        payment.order_id.as_str(),
                        before.amount_cents,
                        at
                    ])?;
                    let done = read_refund(tx, refund.as_str())?
                        .ok_or_else(|| StoreError::Backend("refund vanished mid-change".into()))?;
                    let mut order = must_read_order(tx, payment.order_id.as_str())?;
                    settle_financial_status(tx, &mut order)?;
                    if gives_back_discounts(&order) {
                        release_discounts(tx, order.id.as_str())?;
                    }
                    pending.push((events.payment)(
                        EventData::PaymentRefunded,
                        &payment,
                        &order,
                        Some(&done),
                    ));
                    if cancels_order && let Some(cancellation) = rules::cancellation(order.status) {
                        cancel_order(
                            tx,
                            order,
                            cancellation,
                            &actor,
                            Some("cancelled and refunded"),
                            events,
                            &mut pending,
                        )?;
                    }
                    append(tx, pending)?;
                    Ok(FinishRefund::Done {
                        refund: Box::new(done),
                    })
                }
                RefundResult::Failed { message } => {
                    tx.prepare_cached(
                        "UPDATE refunds SET status = 'failed', failure_message = ?2, updated_at = ?3
                         WHERE id = ?1",
                    )?
                    .execute(params![refund.as_str(), message, at])?;
                    let done = read_refund(tx, refund.as_str())?
                        .ok_or_else(|| StoreError::Backend("refund vanished mid-change".into()))?;
                    let payment = must_read_payment(tx, payment_id)?;
                    let order = must_read_order(tx, payment.order_id.as_str())?;
                    pending.push((events.payment)(
                        EventData::PaymentRefundFailed,
                        &payment,
                        &order,
                        Some(&done),
                    ));
                    append(tx, pending)?;
                    Ok(FinishRefund::Done {
                        refund: Box::new(done),
                    })
                }
            }
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
            filter.add_some("p.status = ?", query.status.map(|s| s.as_str().to_owned()));
            filter.add_some(
                "p.order_id = ?",
                query.order_id.as_ref().map(|o| o.to_string()),
            );
            filter.add_some("p.method = ?", query.method.map(|m| m.as_str().to_owned()));
            filter.owner(&query.owner, "o.");
            let from = "FROM payments p JOIN orders o ON o.id = p.order_id";
            let total = filter.count(conn, from)?;
            let columns = PAYMENT_COLUMNS
                .replace("payments.order_id", "p.order_id")
                .split(", ")
                .map(|c| {
                    if c.starts_with('(') {
                        c.to_owned()
                    } else {
                        format!("p.{c}")
                    }
                })
                .collect::<Vec<_>>()
                .join(", ");
            let select = format!("SELECT {columns} {from}");
            let page = (query.limit, query.offset);
            let items = filter.page(conn, &select, "p.id DESC", page, payment_row)?;
            Ok((items, total))
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
                "SELECT {columns}, p.provider_ref AS charge_ref
                 FROM refunds r JOIN payments p ON p.id = r.payment_id
                 WHERE r.status = 'processing' ORDER BY r.id"
            ))?
            .query_map([], |row| {
                Ok(PendingRefund {
                    refund: refund_row(row)?,
                    provider_ref: row.get("charge_ref")?,
                })
            })?
            .collect()
        })
        .await
    }
}
