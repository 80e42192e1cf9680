//! Payments and refunds in PostgreSQL.
//!
//! A refund is recorded `processing` first, so the sum of refunds in flight
//! and done can never pass what was captured, however many refunds race:
//! each locks its payment's row before it counts them, so racing refunds
//! of one payment count one after another. A payment's answer and a
//! refund's outcome lock their order's row first, as every step of an order
//! does (see `orders`), then the payment's.

use async_trait::async_trait;
use shop_wire::events::EventData;
use shop_wire::orders::{Order, OrderId, OrderStatus, PaymentFailure};
use shop_wire::payments::{Payment, PaymentId, PaymentStatus, Refund, RefundId, RefundStatus};
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, PgConnection, Row};
use time::OffsetDateTime;

use super::filter::Filter;
use super::inventory::extend_reservations;
use super::orders::{
    availability, cancel_order, commit_stock, free_units, hold_again, insert_history, load_order,
    must_lock_order, must_read_order, set_pay_by, settle_financial_status,
};
use super::pricing::release_discounts;
use super::{PgStore, audit, parse};
use crate::services::orders::rules::{self, Fulfilment, LineHold, NotPayable};
use crate::services::payments::rules::{self as payment_rules, RefundRefusal, Refundable};
use crate::services::pricing::rules::gives_back_discounts;
use crate::store::{
    AuditChange, BeginPayment, ChargeResult, CommerceEvents, FinishRefund, NewEvent, PaymentDone,
    PaymentDraft, PaymentQuery, PaymentStore, PendingRefund, RefundDraft, RefundResult,
    StartRefund, StoreError, StoreResult, StoredItem, now,
};

/// A payment's columns from `payments p`.
const PAYMENT_COLUMNS: &str = "p.id, p.order_id, p.amount_cents, p.refunded_cents, p.currency, \
     p.method, p.status, p.provider, p.provider_ref, p.card_brand, p.card_last4, \
     p.failure_code, p.failure_message, p.created_at, p.updated_at, \
     (SELECT number FROM orders WHERE orders.id = p.order_id) AS order_number";
/// A refund's columns from `refunds r`.
const REFUND_COLUMNS: &str = "r.id, r.payment_id, r.amount_cents, r.currency, r.reason, \
     r.status, r.failure_message, r.created_at";

fn payment_row(row: &PgRow) -> StoreResult<Payment> {
    Ok(Payment {
        id: parse(row, "id")?,
        order_id: parse(row, "order_id")?,
        order_number: row
            .try_get::<Option<i64>, _>("order_number")?
            .map(rules::order_number),
        amount_cents: row.try_get("amount_cents")?,
        refunded_cents: row.try_get("refunded_cents")?,
        currency: parse(row, "currency")?,
        method: parse(row, "method")?,
        status: parse(row, "status")?,
        provider: row.try_get("provider")?,
        provider_ref: row.try_get("provider_ref")?,
        card_brand: row.try_get("card_brand")?,
        card_last4: row.try_get("card_last4")?,
        failure_code: row.try_get("failure_code")?,
        failure_message: row.try_get("failure_message")?,
        refunds: Vec::new(),
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

fn refund_row(row: &PgRow) -> StoreResult<Refund> {
    Ok(Refund {
        id: parse(row, "id")?,
        payment_id: parse(row, "payment_id")?,
        amount_cents: row.try_get("amount_cents")?,
        currency: parse(row, "currency")?,
        reason: row.try_get("reason")?,
        status: parse(row, "status")?,
        failure_message: row.try_get("failure_message")?,
        created_at: row.try_get("created_at")?,
    })
}

/// A payment without its refunds; `lock` holds its row for this transaction.
async fn find_payment(
    conn: &mut PgConnection,
    id: &str,
    lock: bool,
) -> StoreResult<Option<Payment>> {
    let lock = if lock { " FOR UPDATE OF p" } else { "" };
    let sql = format!("SELECT {PAYMENT_COLUMNS} FROM payments p WHERE p.id = $1{lock}");
    sqlx::query(AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(payment_row)
        .transpose()
}

/// A payment with its refunds.
pub(super) async fn read_payment(
    conn: &mut PgConnection,
    id: &str,
) -> StoreResult<Option<Payment>> {
    let Some(mut payment) = find_payment(conn, id, false).await? else {
        return Ok(None);
    };
    let sql =
        format!("SELECT {REFUND_COLUMNS} FROM refunds r WHERE r.payment_id = $1 ORDER BY r.id");
    payment.refunds = sqlx::query(AssertSqlSafe(sql))
        .bind(id)
        .fetch_all(conn)
        .await?
        .iter()
        .map(refund_row)
        .collect::<StoreResult<_>>()?;
    Ok(Some(payment))
}

async fn must_read_payment(tx: &mut PgConnection, id: &str) -> StoreResult<Payment> {
    read_payment(tx, id)
        .await?
        .ok_or_else(|| StoreError::Backend(format!("payment {id} vanished mid-change").into()))
}

async fn read_refund(conn: &mut PgConnection, id: &str) -> StoreResult<Option<Refund>> {
    let sql = format!("SELECT {REFUND_COLUMNS} FROM refunds r WHERE r.id = $1");
    sqlx::query(AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(refund_row)
        .transpose()
}

async fn must_read_refund(tx: &mut PgConnection, id: &str) -> StoreResult<Refund> {
    read_refund(tx, id)
        .await?
        .ok_or_else(|| StoreError::Backend("refund vanished mid-change".into()))
}

/// Records a payment attempt `processing` (the caller links the order to it).
pub(super) async fn insert_payment(
    tx: &mut PgConnection,
    order: &Order,
    draft: &PaymentDraft,
    at: OffsetDateTime,
) -> StoreResult<Payment> {
    sqlx::query(
        "INSERT INTO payments (id, order_id, amount_cents, currency, method, status, provider,
             card_brand, card_last4, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, 'processing', $6, $7, $8, $9, $9)",
    )
    .bind(draft.id.as_str())
    .bind(order.id.as_str())
    .bind(order.total_cents)
    .bind(order.currency.code())
    .bind(draft.method.as_str())
    .bind(draft.provider)
    .bind(&draft.card_brand)
    .bind(&draft.card_last4)
    .bind(at)
    .execute(&mut *tx)
    .await?;
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

/// The order's payment that is still being taken (`processing`) or settled (`pending`).
pub(super) async fn payment_in_flight(
    tx: &mut PgConnection,
    order: &str,
) -> StoreResult<Option<Payment>> {
    let id: Option<String> = sqlx::query_scalar(
        "SELECT id FROM payments WHERE order_id = $1 AND status IN ('processing', 'pending')
         ORDER BY id DESC LIMIT 1",
    )
    .bind(order)
    .fetch_optional(&mut *tx)
    .await?;
    match id {
        Some(id) => must_read_payment(tx, &id).await.map(Some),
        None => Ok(None),
    }
}

async fn begin(
    tx: &mut PgConnection,
    order: &OrderId,
    payment: &PaymentDraft,
    (pay_by, actor): (OffsetDateTime, &str),
    events: CommerceEvents,
) -> StoreResult<(BeginPayment, Vec<NewEvent>)> {
    let Some((mut current, items)) = load_order(tx, order.as_str(), true).await? else {
        return Ok((BeginPayment::NotFound, Vec::new()));
    };
    let in_flight = payment_in_flight(tx, order.as_str()).await?;
    match (
        rules::check_payable(current.status, in_flight.is_some()),
        in_flight,
    ) {
        (Ok(()), _) => {}
        (Err(NotPayable::WrongStatus(status)), _) => {
            return Ok((BeginPayment::WrongStatus(status), Vec::new()));
        }
        (Err(NotPayable::InFlight), in_flight) => {
            let in_flight = in_flight.ok_or_else(|| {
                StoreError::Backend("a payment in flight vanished mid-change".into())
            })?;
            return Ok((BeginPayment::InFlight(Box::new(in_flight)), Vec::new()));
        }
    }
    let mut pending = Vec::new();
    let hold = (pay_by, actor);
    if let Err(refusal) = hold_again(tx, &current, &items, hold, events, &mut pending).await? {
        return Ok((BeginPayment::StockGone(refusal), Vec::new()));
    }
    let at = now();
    let started = insert_payment(tx, &current, payment, at).await?;
    sqlx::query("UPDATE orders SET payment_id = $2, updated_at = $3 WHERE id = $1")
        .bind(order.as_str())
        .bind(payment.id.as_str())
        .bind(at)
        .execute(&mut *tx)
        .await?;
    current.payment_id = Some(payment.id.clone());
    current.updated_at = at;
    let started = BeginPayment::Started {
        order: Box::new(current),
        payment: Box::new(started),
    };
    Ok((started, pending))
}

/// Writes a payment's new state with `set` (an assignment list over `$2...`
/// after `updated_at = $1`), and answers it as it now is (a payment still
/// being taken or settled has no refunds yet).
async fn update_payment(
    tx: &mut PgConnection,
    id: &PaymentId,
    set: &str,
    values: &[Option<&str>],
    at: OffsetDateTime,
) -> StoreResult<Payment> {
    let sql = format!(
        "UPDATE payments p SET updated_at = $1, {set} WHERE p.id = ${} RETURNING {PAYMENT_COLUMNS}",
        values.len() + 2
    );
    let mut query = sqlx::query(AssertSqlSafe(sql)).bind(at);
    for value in values {
        query = query.bind(*value);
    }
    let row = query.bind(id.as_str()).fetch_one(&mut *tx).await?;
    payment_row(&row)
}

async fn complete(
    tx: &mut PgConnection,
    payment: &PaymentId,
    result: ChargeResult,
    actor: &str,
    events: CommerceEvents,
) -> StoreResult<(PaymentDone, Vec<NewEvent>)> {
    let order_id: Option<String> =
        sqlx::query_scalar("SELECT order_id FROM payments WHERE id = $1")
            .bind(payment.as_str())
            .fetch_optional(&mut *tx)
            .await?;
    let Some(order_id) = order_id else {
        return Ok((PaymentDone::NotFound, Vec::new()));
    };
    let (mut order, items) = must_lock_order(tx, &order_id).await?;
    let before = find_payment(tx, payment.as_str(), true)
        .await?
        .ok_or_else(|| StoreError::Backend(format!("payment {payment} vanished").into()))?;
    let answer_is_pending = matches!(result, ChargeResult::Pending { .. });
    if !payment_rules::answer_counts(before.status, answer_is_pending) {
        let finished = must_read_payment(tx, payment.as_str()).await?;
        return Ok((PaymentDone::AlreadyFinished(Box::new(finished)), Vec::new()));
    }
    let at = now();
    let mut pending = Vec::new();
    match result {
        ChargeResult::Succeeded {
            provider_ref,
            card_brand,
            card_last4,
        } => {
            let paid = update_payment(
                tx,
                payment,
                "status = 'succeeded', provider_ref = $2,
                 card_brand = coalesce($3, card_brand), card_last4 = coalesce($4, card_last4),
                 failure_code = NULL, failure_message = NULL",
                &[
                    Some(&provider_ref),
                    card_brand.as_deref(),
                    card_last4.as_deref(),
                ],
                at,
            )
            .await?;
            pending.push((events.payment)(
                EventData::PaymentSucceeded,
                &paid,
                &order,
                None,
            ));
            let lines: Vec<LineHold> = items.iter().map(StoredItem::hold).collect();
            let levels = availability(tx, &rules::lapsed(&lines)).await?;
            let fulfilment = rules::decide_fulfilment(order.status, &lines, free_units(&levels));
            if fulfilment == Fulfilment::Unfulfillable {
                let done = PaymentDone::Unfulfillable {
                    order: Box::new(order),
                    payment: Box::new(paid),
                };
                return Ok((done, pending));
            }
            commit_stock(tx, &order, &items, actor, events, &mut pending).await?;
            let financial =
                rules::financial_status(OrderStatus::Paid, order.total_cents, order.refunded_cents);
            let changed = sqlx::query(
                "UPDATE orders SET status = 'paid', financial_status = $4, payment_id = $2,
                     payment_error_code = NULL, payment_error_message = NULL, updated_at = $3
                 WHERE id = $1 AND status = 'pending'",
            )
            .bind(order.id.as_str())
            .bind(payment.as_str())
            .bind(at)
            .bind(financial.as_str())
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed != 1 {
                return Err(StoreError::Backend(
                    format!("order {} left pending under its payment", order.id).into(),
                ));
            }
            let moved = (Some(OrderStatus::Pending), OrderStatus::Paid);
            let change = insert_history(tx, order.id.as_str(), moved, actor, None, at).await?;
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
            )
            .await?;
            pending.push((events.order)(EventData::OrderPaid, &order));
            let done = PaymentDone::Paid {
                order: Box::new(order),
                payment: Box::new(paid),
            };
            Ok((done, pending))
        }
        ChargeResult::Pending {
            provider_ref,
            hold_until,
        } => {
            let set = "status = 'pending', provider_ref = $2";
            let waiting = update_payment(tx, payment, set, &[Some(&provider_ref)], at).await?;
            let reservations: Vec<String> = items
                .iter()
                .filter_map(|item| item.reservation_id.clone())
                .collect();
            extend_reservations(tx, &reservations, hold_until, order.id.as_str()).await?;
            set_pay_by(tx, order.id.as_str(), hold_until).await?;
            let kind = EventData::PaymentPending;
            pending.push((events.payment)(kind, &waiting, &order, None));
            let done = PaymentDone::Pending {
                order: Box::new(order),
            };
            Ok((done, pending))
        }
        ChargeResult::Failed {
            code,
            message,
            provider_ref,
        } => {
            let failed = update_payment(
                tx,
                payment,
                "status = 'failed', failure_code = $2, failure_message = $3,
                 provider_ref = coalesce($4, provider_ref)",
                &[Some(&code), Some(&message), provider_ref.as_deref()],
                at,
            )
            .await?;
            sqlx::query(
                "UPDATE orders SET payment_error_code = $2, payment_error_message = $3,
                     updated_at = $4
                 WHERE id = $1",
            )
            .bind(order.id.as_str())
            .bind(&code)
            .bind(&message)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            let kind = EventData::PaymentFailed;
            pending.push((events.payment)(kind, &failed, &order, None));
            order.payment_error = Some(PaymentFailure { code, message });
            order.updated_at = at;
            let done = PaymentDone::Failed {
                order: Box::new(order),
                payment: Box::new(failed),
            };
            Ok((done, pending))
        }
    }
}

async fn start(
    tx: &mut PgConnection,
    payment: &PaymentId,
    draft: RefundDraft,
) -> StoreResult<StartRefund> {
    // The payment's lock makes racing refunds count the ones in flight
    // one after another.
    if find_payment(tx, payment.as_str(), true).await?.is_none() {
        return Ok(StartRefund::NotFound);
    }
    let current = must_read_payment(tx, payment.as_str()).await?;
    let in_flight: i64 = sqlx::query_scalar(
        "SELECT coalesce(sum(amount_cents), 0)::bigint FROM refunds
         WHERE payment_id = $1 AND status = 'processing'",
    )
    .bind(payment.as_str())
    .fetch_one(&mut *tx)
    .await?;
    let refundable = Refundable {
        status: current.status,
        captured_cents: current.amount_cents,
        refunded_cents: current.refunded_cents,
        in_flight_cents: in_flight,
    };
    let amount = match payment_rules::refund_amount(refundable, draft.amount_cents) {
        Ok(amount) => amount,
        Err(RefundRefusal::NotRefundable(status)) => return Ok(StartRefund::NotRefundable(status)),
        Err(RefundRefusal::NothingLeft) => return Ok(StartRefund::NothingLeft),
        Err(RefundRefusal::Exceeds { refundable }) => {
            return Ok(StartRefund::Exceeds { refundable });
        }
    };
    let at = now();
    sqlx::query(
        "INSERT INTO refunds (id, payment_id, amount_cents, currency, reason, status,
             cancels_order, actor, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, 'processing', $6, $7, $8, $8)",
    )
    .bind(draft.id.as_str())
    .bind(payment.as_str())
    .bind(amount)
    .bind(current.currency.code())
    .bind(&draft.reason)
    .bind(draft.cancels_order)
    .bind(&draft.actor)
    .bind(at)
    .execute(&mut *tx)
    .await?;
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
}

async fn finish(
    tx: &mut PgConnection,
    refund: &RefundId,
    result: RefundResult,
    events: CommerceEvents,
) -> StoreResult<(FinishRefund, Vec<NewEvent>)> {
    let order_id: Option<String> = sqlx::query_scalar(
        "SELECT p.order_id FROM refunds r JOIN payments p ON p.id = r.payment_id WHERE r.id = $1",
    )
    .bind(refund.as_str())
    .fetch_optional(&mut *tx)
    .await?;
    let Some(order_id) = order_id else {
        return Ok((FinishRefund::NotFound, Vec::new()));
    };
    must_lock_order(tx, &order_id).await?;
    let (cancels_order, actor): (bool, Option<String>) =
        sqlx::query_as("SELECT cancels_order, actor FROM refunds WHERE id = $1 FOR UPDATE")
            .bind(refund.as_str())
            .fetch_one(&mut *tx)
            .await?;
    let before = must_read_refund(tx, refund.as_str()).await?;
    if before.status != RefundStatus::Processing {
        return Ok((FinishRefund::AlreadyFinished(Box::new(before)), Vec::new()));
    }
    let actor = actor.unwrap_or_else(|| "system".to_owned());
    let at = now();
    let payment_id = before.payment_id.as_str();
    let mut pending = Vec::new();
    match result {
        RefundResult::Succeeded { provider_ref } => {
            sqlx::query(
                "UPDATE refunds SET status = 'succeeded', provider_ref = $2, updated_at = $3
                 WHERE id = $1",
            )
            .bind(refund.as_str())
            .bind(&provider_ref)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            let charged = find_payment(tx, payment_id, true)
                .await?
                .ok_or_else(|| StoreError::Backend("payment vanished mid-change".into()))?;
            let status = payment_rules::status_after_refund(
                charged.amount_cents,
                charged.refunded_cents + before.amount_cents,
            );
            // Guarded: whatever raced it, refunds never pass what was captured.
            let changed = sqlx::query(
                "UPDATE payments SET refunded_cents = refunded_cents + $2, status = $3,
                     updated_at = $4
                 WHERE id = $1 AND refunded_cents + $2 <= amount_cents",
            )
            .bind(payment_id)
            .bind(before.amount_cents)
            .bind(status.as_str())
            .bind(at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed != 1 {
                return Err(StoreError::Backend(
                    format!("refund {refund} would pass what payment {payment_id} captured").into(),
                ));
            }
            let payment = must_read_payment(tx, payment_id).await?;
            audit::record(
                tx,
                [AuditChange::diff(
                    "payment.refunded",
                    "payment",
                    payment_id,
                    serde_json::json!({"refunded_cents": charged.refunded_cents, "status": charged.status}),
                    serde_json::json!({"refunded_cents": payment.refunded_cents, "status": payment.status, "refund_id": refund}),
                )],
            )
            .await?;
            sqlx::query(
                "UPDATE orders SET refunded_cents = refunded_cents + $2, updated_at = $3
                 WHERE id = $1",
            )
            .bind(payment.order_id.as_str())
            .bind(before.amount_cents)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            let done = must_read_refund(tx, refund.as_str()).await?;
            let mut order = must_read_order(tx, payment.order_id.as_str()).await?;
            settle_financial_status(tx, &mut order).await?;
            if gives_back_discounts(&order) {
                release_discounts(tx, order.id.as_str()).await?;
            }
            let kind = EventData::PaymentRefunded;
            pending.push((events.payment)(kind, &payment, &order, Some(&done)));
            if cancels_order && let Some(cancellation) = rules::cancellation(order.status) {
                let by = (actor.as_str(), Some("cancelled and refunded"));
                cancel_order(tx, order, cancellation, by, events, &mut pending).await?;
            }
            let done = FinishRefund::Done {
                refund: Box::new(done),
            };
            Ok((done, pending))
        }
        RefundResult::Failed { message } => {
            sqlx::query(
                "UPDATE refunds SET status = 'failed', failure_message = $2, updated_at = $3
                 WHERE id = $1",
            )
            .bind(refund.as_str())
            .bind(&message)
            .bind(at)
            .execute(&mut *tx)
            .await?;
            let done = must_read_refund(tx, refund.as_str()).await?;
            let payment = must_read_payment(tx, payment_id).await?;
            let order = must_read_order(tx, payment.order_id.as_str()).await?;
            let kind = EventData::PaymentRefundFailed;
            pending.push((events.payment)(kind, &payment, &order, Some(&done)));
            let done = FinishRefund::Done {
                refund: Box::new(done),
            };
            Ok((done, pending))
        }
    }
}

#[async_trait]
impl PaymentStore for PgStore {
    async fn begin_payment(
        &self,
        order: &OrderId,
        payment: PaymentDraft,
        pay_by: OffsetDateTime,
        actor: String,
        events: CommerceEvents,
    ) -> StoreResult<BeginPayment> {
        let (begun, _) = self
            .write(move |tx| {
                let (order, payment, actor) = (order.clone(), payment.clone(), actor.clone());
                Box::pin(async move { begin(tx, &order, &payment, (pay_by, &actor), events).await })
            })
            .await?;
        Ok(begun)
    }

    async fn complete_payment(
        &self,
        payment: &PaymentId,
        result: ChargeResult,
        actor: String,
        events: CommerceEvents,
    ) -> StoreResult<PaymentDone> {
        let (done, _) = self
            .write(move |tx| {
                let (payment, result, actor) = (payment.clone(), result.clone(), actor.clone());
                Box::pin(async move { complete(tx, &payment, result, &actor, events).await })
            })
            .await?;
        Ok(done)
    }

    async fn start_refund(
        &self,
        payment: &PaymentId,
        draft: RefundDraft,
    ) -> StoreResult<StartRefund> {
        let (started, _) = self
            .write(move |tx| {
                let (payment, draft) = (payment.clone(), draft.clone());
                Box::pin(async move { Ok((start(tx, &payment, draft).await?, Vec::new())) })
            })
            .await?;
        Ok(started)
    }

    async fn finish_refund(
        &self,
        refund: &RefundId,
        result: RefundResult,
        events: CommerceEvents,
    ) -> StoreResult<FinishRefund> {
        let (finished, _) = self
            .write(move |tx| {
                let (refund, result) = (refund.clone(), result.clone());
                Box::pin(async move { finish(tx, &refund, result, events).await })
            })
            .await?;
        Ok(finished)
    }

    async fn payment(&self, id: &PaymentId) -> StoreResult<Option<Payment>> {
        let mut conn = self.pool.acquire().await?;
        read_payment(&mut conn, id.as_str()).await
    }

    async fn list_payments(&self, query: &PaymentQuery) -> StoreResult<(Vec<Payment>, u64)> {
        let filtered = |select: &str| {
            let mut filter = Filter::new(select);
            filter.add_some("p.status = ", query.status.map(|s| s.as_str()));
            filter.add_some(
                "p.order_id = ",
                query.order_id.as_ref().map(|o| o.to_string()),
            );
            filter.add_some("p.method = ", query.method.map(|m| m.as_str()));
            filter.owner(&query.owner, "o.");
            filter
        };
        let from = "FROM payments p JOIN orders o ON o.id = p.order_id";
        let total: i64 = filtered(&format!("SELECT count(*) {from}"))
            .query()
            .build_query_scalar()
            .fetch_one(&self.pool)
            .await?;
        let items = filtered(&format!("SELECT {PAYMENT_COLUMNS} {from}"))
            .page("p.id DESC", (query.limit, query.offset))
            .build()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(payment_row)
            .collect::<StoreResult<_>>()?;
        Ok((items, total as u64))
    }

    async fn processing_payments(&self) -> StoreResult<Vec<Payment>> {
        let sql = format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments p WHERE p.status = 'processing' ORDER BY p.id"
        );
        sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(payment_row)
            .collect()
    }

    async fn processing_refunds(&self) -> StoreResult<Vec<PendingRefund>> {
        let sql = format!(
            "SELECT {REFUND_COLUMNS}, p.provider_ref AS charge_ref
             FROM refunds r JOIN payments p ON p.id = r.payment_id
             WHERE r.status = 'processing' ORDER BY r.id"
        );
        sqlx::query(AssertSqlSafe(sql))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| {
                Ok(PendingRefund {
                    refund: refund_row(row)?,
                    provider_ref: row.try_get("charge_ref")?,
                })
            })
            .collect()
    }
}
