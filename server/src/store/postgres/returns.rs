//! Returns in PostgreSQL.
//!
//! Writers run at once here, so every step of a return, and the opening of
//! one, locks its order's row first, as every other step of an order does:
//! returns of one order queue, and each decides from what the one before it
//! committed. That is what keeps the one-return-per-order shipping refund
//! whole, since its check reads other returns' rows. The returned units are
//! still grown by a guarded statement (never past what shipped), and a
//! received return's restocks lock stock rows in SKU order, as the
//! inventory takes them.

use async_trait::async_trait;
use shop_wire::events::{EventData, MakeEvent};
use shop_wire::returns::{Return, ReturnId, ReturnItem, ReturnStatus};
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, PgConnection, Row};

use super::filter::Filter;
use super::inventory::restock;
use super::{PgStore, audit, parse};
use crate::services::returns::rules::{
    self, PlannedLine, ReturnRefusal, ReturnableLine, check_move, restock_choice,
};
use crate::store::{
    NewEvent, ReturnCreate, ReturnDraft, ReturnEvents, ReturnMove, ReturnQuery, ReturnStep,
    ReturnStore, StoreError, StoreResult, audited_return, now, return_change,
};

const RETURN_COLUMNS: &str = "r.id, r.order_id, o.number, o.customer_email, o.currency, r.status, \
     r.note, r.refund_cents, r.shipping_refund_cents, r.refund_id, r.created_at, r.updated_at";

fn return_row(row: &PgRow) -> StoreResult<Return> {
    Ok(Return {
        id: parse(row, "id")?,
        order_id: parse(row, "order_id")?,
        order_number: crate::services::orders::rules::order_number(row.try_get("number")?),
        customer_email: row.try_get("customer_email")?,
        status: parse(row, "status")?,
        items: Vec::new(),
        note: row.try_get("note")?,
        refund_cents: row.try_get("refund_cents")?,
        shipping_refund_cents: row.try_get("shipping_refund_cents")?,
        currency: parse(row, "currency")?,
        refund_id: row
            .try_get::<Option<String>, _>("refund_id")?
            .map(|id| id.parse().map_err(super::backend))
            .transpose()?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

/// The items of a return, with the order line each came from.
async fn return_items(conn: &mut PgConnection, id: &str) -> StoreResult<Vec<(i64, ReturnItem)>> {
    sqlx::query(
        "SELECT position, sku, quantity, reason, unit_price_cents, restocked
         FROM return_items WHERE return_id = $1 ORDER BY position",
    )
    .bind(id)
    .fetch_all(conn)
    .await?
    .iter()
    .map(|row| {
        Ok((
            row.try_get("position")?,
            ReturnItem {
                sku: row.try_get("sku")?,
                quantity: row.try_get("quantity")?,
                reason: row.try_get("reason")?,
                unit_price_cents: row.try_get("unit_price_cents")?,
                restocked: row.try_get("restocked")?,
            },
        ))
    })
    .collect()
}

async fn with_items(conn: &mut PgConnection, mut found: Return) -> StoreResult<Return> {
    found.items = return_items(conn, found.id.as_str())
        .await?
        .into_iter()
        .map(|(_, item)| item)
        .collect();
    Ok(found)
}

async fn read_return(conn: &mut PgConnection, id: &str) -> StoreResult<Option<Return>> {
    let sql = format!(
        "SELECT {RETURN_COLUMNS} FROM returns r JOIN orders o ON o.id = r.order_id
         WHERE r.id = $1"
    );
    let found = sqlx::query(AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?
        .as_ref()
        .map(return_row)
        .transpose()?;
    match found {
        Some(found) => Ok(Some(with_items(conn, found).await?)),
        None => Ok(None),
    }
}

async fn must_read_return(tx: &mut PgConnection, id: &str) -> StoreResult<Return> {
    read_return(tx, id)
        .await?
        .ok_or_else(|| StoreError::Backend(format!("return {id} vanished mid-change").into()))
}

/// An order's lines with what shipped and what is in returns already.
async fn returnable_lines(tx: &mut PgConnection, order: &str) -> StoreResult<Vec<ReturnableLine>> {
    sqlx::query(
        "SELECT position, sku, shipped_quantity, returned_quantity, unit_price_cents
         FROM order_items WHERE order_id = $1 ORDER BY position",
    )
    .bind(order)
    .fetch_all(tx)
    .await?
    .iter()
    .map(|row| {
        Ok(ReturnableLine {
            position: row.try_get("position")?,
            sku: row.try_get("sku")?,
            shipped: row.try_get("shipped_quantity")?,
            returned: row.try_get("returned_quantity")?,
            unit_price_cents: row.try_get("unit_price_cents")?,
        })
    })
    .collect()
}

/// When the order's last shipment went and, once every shipment arrived, when the last did.
async fn shipped_and_delivered(
    tx: &mut PgConnection,
    order: &str,
) -> StoreResult<(Option<time::OffsetDateTime>, Option<time::OffsetDateTime>)> {
    let row = sqlx::query(
        "SELECT max(shipped_at) AS shipped, max(delivered_at) AS delivered,
                count(*) - count(delivered_at) AS undelivered
         FROM fulfillments WHERE order_id = $1",
    )
    .bind(order)
    .fetch_one(tx)
    .await?;
    let undelivered: i64 = row.try_get("undelivered")?;
    let delivered: Option<time::OffsetDateTime> = row.try_get("delivered")?;
    Ok((
        row.try_get("shipped")?,
        delivered.filter(|_| undelivered == 0),
    ))
}

/// Adds a return's units to its lines' returned units, guarded: never
/// past what shipped. A line without the units undoes the lines before it
/// and answers what is left of its SKU.
async fn take_returned(
    tx: &mut PgConnection,
    order: &str,
    lines: &[PlannedLine],
) -> StoreResult<Result<(), ReturnRefusal>> {
    for (taken, line) in lines.iter().enumerate() {
        let took = sqlx::query(
            "UPDATE order_items SET returned_quantity = returned_quantity + $3
             WHERE order_id = $1 AND position = $2 AND returned_quantity + $3 <= shipped_quantity",
        )
        .bind(order)
        .bind(line.position)
        .bind(line.quantity)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if took == 1 {
            continue;
        }
        let before = lines[..taken].iter().map(|l| (l.position, l.quantity));
        give_back(tx, order, before).await?;
        let left: i64 = sqlx::query_scalar(
            "SELECT coalesce(sum(shipped_quantity - returned_quantity), 0)::bigint
             FROM order_items WHERE order_id = $1 AND sku = $2",
        )
        .bind(order)
        .bind(&line.sku)
        .fetch_one(&mut *tx)
        .await?;
        let asked = lines
            .iter()
            .filter(|l| l.sku == line.sku)
            .map(|l| l.quantity)
            .sum();
        return Ok(Err(ReturnRefusal::Exceeds {
            sku: line.sku.clone(),
            asked,
            left,
        }));
    }
    Ok(Ok(()))
}

/// Takes `(position, quantity)` units back out of the lines' returned units.
async fn give_back(
    tx: &mut PgConnection,
    order: &str,
    lines: impl Iterator<Item = (i64, i64)>,
) -> StoreResult<()> {
    for (position, quantity) in lines {
        sqlx::query(
            "UPDATE order_items SET returned_quantity = returned_quantity - $3
             WHERE order_id = $1 AND position = $2",
        )
        .bind(order)
        .bind(position)
        .bind(quantity)
        .execute(&mut *tx)
        .await?;
    }
    Ok(())
}

/// The audit entry of a change of a return, and its event (none for a
/// claimed refund, which only starts one) after `pending`.
async fn record(
    tx: &mut PgConnection,
    was: serde_json::Value,
    now: &Return,
    kind: Option<MakeEvent<Return>>,
    events: ReturnEvents,
    pending: &mut Vec<NewEvent>,
) -> StoreResult<()> {
    audit::record(tx, [return_change(was, now, kind)]).await?;
    if let Some(kind) = kind {
        pending.push(events(kind, now));
    }
    Ok(())
}

async fn create(
    tx: &mut PgConnection,
    draft: &ReturnDraft,
    events: ReturnEvents,
) -> StoreResult<(ReturnCreate, Vec<NewEvent>)> {
    let order = draft.order.as_str();
    let money = sqlx::query(
        "SELECT subtotal_cents, discount_cents, shipping_cents, total_cents
         FROM orders WHERE id = $1 FOR UPDATE",
    )
    .bind(order)
    .fetch_optional(&mut *tx)
    .await?
    .map(|row| -> StoreResult<rules::OrderMoney> {
        Ok(rules::OrderMoney {
            subtotal_cents: row.try_get("subtotal_cents")?,
            discount_cents: row.try_get("discount_cents")?,
            shipping_cents: row.try_get("shipping_cents")?,
            total_cents: row.try_get("total_cents")?,
        })
    })
    .transpose()?;
    let Some(money) = money else {
        return Ok((ReturnCreate::NotFound, Vec::new()));
    };
    let lines = returnable_lines(tx, order).await?;
    let (shipped, delivered) = shipped_and_delivered(tx, order).await?;
    let closes = rules::window_closes(shipped, delivered, draft.window_days);
    let plan = match rules::decide_return(&lines, &draft.items, closes, draft.now) {
        Ok(plan) => plan,
        Err(refusal) => return Ok((ReturnCreate::Refused(refusal), Vec::new())),
    };
    if let Err(refusal) = take_returned(tx, order, &plan).await? {
        return Ok((ReturnCreate::Refused(refusal), Vec::new()));
    }
    let at = now();
    sqlx::query(
        "INSERT INTO returns (id, order_id, status, note, refund_cents, created_at, updated_at)
         VALUES ($1, $2, 'requested', $3, $4, $5, $5)",
    )
    .bind(draft.id.as_str())
    .bind(order)
    .bind(&draft.note)
    .bind(rules::refund_cents(&plan, money))
    .bind(at)
    .execute(&mut *tx)
    .await?;
    let positions: Vec<i64> = plan.iter().map(|line| line.position).collect();
    let skus: Vec<&str> = plan.iter().map(|line| line.sku.as_str()).collect();
    let quantities: Vec<i64> = plan.iter().map(|line| line.quantity).collect();
    let reasons: Vec<&str> = plan.iter().map(|line| line.reason.as_str()).collect();
    let prices: Vec<i64> = plan.iter().map(|line| line.unit_price_cents).collect();
    sqlx::query(
        "INSERT INTO return_items (return_id, position, sku, quantity, reason, unit_price_cents)
         SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::bigint[], $5::text[], $6::bigint[])",
    )
    .bind(draft.id.as_str())
    .bind(positions)
    .bind(skus)
    .bind(quantities)
    .bind(reasons)
    .bind(prices)
    .execute(&mut *tx)
    .await?;
    let created = must_read_return(tx, draft.id.as_str()).await?;
    let mut pending = Vec::new();
    let requested = Some(EventData::ReturnRequested as MakeEvent<Return>);
    let was = serde_json::Value::Null;
    record(tx, was, &created, requested, events, &mut pending).await?;
    Ok((ReturnCreate::Created(Box::new(created)), pending))
}

/// Claims a received return's refund, and the order's shipping with it
/// unless another return of the order (seen under the order's lock) gave
/// it back already.
async fn claim_refund(
    tx: &mut PgConnection,
    current: Return,
    (refund, shipping_cents): (&shop_wire::payments::RefundId, i64),
    events: ReturnEvents,
) -> StoreResult<(ReturnMove, Vec<NewEvent>)> {
    let id = current.id.as_str();
    if current.status != ReturnStatus::Received {
        let from = current.status;
        return Ok((ReturnMove::Illegal { from }, Vec::new()));
    }
    if shipping_cents > 0 {
        let other: Option<String> = sqlx::query_scalar(
            "SELECT o.id FROM returns r JOIN returns o ON o.order_id = r.order_id
             WHERE r.id = $1 AND o.id <> r.id AND o.shipping_refund_cents > 0
               AND o.status <> 'rejected'
             LIMIT 1",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(other) = other {
            let other = other.parse().map_err(super::backend)?;
            return Ok((ReturnMove::ShippingRefunded(other), Vec::new()));
        }
    }
    let claimed = sqlx::query(
        "UPDATE returns SET refund_id = $2, shipping_refund_cents = $4, updated_at = $3
         WHERE id = $1 AND status = 'received'
           AND (refund_id IS NULL
                OR refund_id IN (SELECT id FROM refunds WHERE status = 'failed'))",
    )
    .bind(id)
    .bind(refund.as_str())
    .bind(now())
    .bind(shipping_cents)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if claimed == 0 {
        let held = current.refund_id.clone().unwrap_or_else(|| refund.clone());
        return Ok((ReturnMove::RefundClaimed(held), Vec::new()));
    }
    let claimed = must_read_return(tx, id).await?;
    let mut pending = Vec::new();
    record(
        tx,
        audited_return(&current),
        &claimed,
        None,
        events,
        &mut pending,
    )
    .await?;
    Ok((ReturnMove::Done(Box::new(claimed)), pending))
}

/// Marks each item of a return being received as restocked or not, and
/// puts the restocked units back on hand, their stock rows locked in SKU
/// order; answers the stock events.
async fn receive(
    tx: &mut PgConnection,
    current: &Return,
    (all, chosen): (Option<bool>, &[(String, bool)]),
    actor: &str,
) -> StoreResult<Vec<NewEvent>> {
    let id = current.id.as_str();
    let reason = format!("{} returned ({id})", current.order_number);
    let mut back = Vec::new();
    for (position, item) in return_items(tx, id).await? {
        let restocked = restock_choice(&item.sku, all, chosen);
        sqlx::query(
            "UPDATE return_items SET restocked = $3 WHERE return_id = $1 AND position = $2",
        )
        .bind(id)
        .bind(position)
        .bind(restocked)
        .execute(&mut *tx)
        .await?;
        if restocked {
            back.push(item);
        }
    }
    back.sort_by(|a, b| a.sku.cmp(&b.sku));
    let mut stock_events = Vec::new();
    for item in back {
        let actor = Some(actor.to_owned());
        if let Some(effect) = restock(tx, &item.sku, item.quantity, reason.clone(), actor).await? {
            stock_events.extend(crate::services::inventory::domain::stock_events(&effect));
        }
    }
    Ok(stock_events)
}

async fn step(
    tx: &mut PgConnection,
    id: &ReturnId,
    step: &ReturnStep,
    (actor, note): (&str, Option<&str>),
    events: ReturnEvents,
) -> StoreResult<(ReturnMove, Vec<NewEvent>)> {
    let order: Option<String> = sqlx::query_scalar("SELECT order_id FROM returns WHERE id = $1")
        .bind(id.as_str())
        .fetch_optional(&mut *tx)
        .await?;
    let Some(order) = order else {
        return Ok((ReturnMove::NotFound, Vec::new()));
    };
    sqlx::query("SELECT 1 FROM orders WHERE id = $1 FOR UPDATE")
        .bind(&order)
        .execute(&mut *tx)
        .await?;
    // Read under the order's lock: what the last step of the order committed.
    let current = must_read_return(tx, id.as_str()).await?;
    let (to, kind): (ReturnStatus, MakeEvent<Return>) = match step {
        ReturnStep::Approve => (ReturnStatus::Approved, EventData::ReturnApproved),
        ReturnStep::Reject => (ReturnStatus::Rejected, EventData::ReturnRejected),
        ReturnStep::Receive { .. } => (ReturnStatus::Received, EventData::ReturnReceived),
        ReturnStep::Refunded => (ReturnStatus::Refunded, EventData::ReturnRefunded),
        ReturnStep::ClaimRefund {
            refund,
            shipping_cents,
        } => return claim_refund(tx, current, (refund, *shipping_cents), events).await,
        ReturnStep::ReleaseRefund { refund } => {
            sqlx::query(
                "UPDATE returns SET refund_id = NULL WHERE id = $1 AND refund_id = $2
                   AND NOT EXISTS (SELECT 1 FROM refunds WHERE id = $2)",
            )
            .bind(id.as_str())
            .bind(refund.as_str())
            .execute(&mut *tx)
            .await?;
            let released = must_read_return(tx, id.as_str()).await?;
            return Ok((ReturnMove::Done(Box::new(released)), Vec::new()));
        }
    };
    if let Err(from) = check_move(current.status, to) {
        return Ok((ReturnMove::Illegal { from }, Vec::new()));
    }
    let moved = sqlx::query(
        "UPDATE returns SET status = $3, note = coalesce($4, note), updated_at = $5
         WHERE id = $1 AND status = $2",
    )
    .bind(id.as_str())
    .bind(current.status.as_str())
    .bind(to.as_str())
    .bind(note)
    .bind(now())
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if moved != 1 {
        let from = current.status;
        return Ok((ReturnMove::Illegal { from }, Vec::new()));
    }
    let mut pending = match step {
        ReturnStep::Reject => {
            let lines = return_items(tx, id.as_str()).await?;
            let units = lines.iter().map(|(p, item)| (*p, item.quantity));
            give_back(tx, &order, units).await?;
            Vec::new()
        }
        ReturnStep::Receive { all, lines } => receive(tx, &current, (*all, lines), actor).await?,
        _ => Vec::new(),
    };
    let changed = must_read_return(tx, id.as_str()).await?;
    let was = audited_return(&current);
    record(tx, was, &changed, Some(kind), events, &mut pending).await?;
    Ok((ReturnMove::Done(Box::new(changed)), pending))
}

#[async_trait]
impl ReturnStore for PgStore {
    async fn create_return(
        &self,
        draft: ReturnDraft,
        events: ReturnEvents,
    ) -> StoreResult<ReturnCreate> {
        let (created, _) = self
            .write(move |tx| {
                let draft = draft.clone();
                Box::pin(async move { create(tx, &draft, events).await })
            })
            .await?;
        Ok(created)
    }

    async fn move_return(
        &self,
        id: &ReturnId,
        step_to: ReturnStep,
        actor: String,
        note: Option<String>,
        events: ReturnEvents,
    ) -> StoreResult<ReturnMove> {
        let (moved, _) = self
            .write(move |tx| {
                let (id, step_to) = (id.clone(), step_to.clone());
                let (actor, note) = (actor.clone(), note.clone());
                Box::pin(
                    async move { step(tx, &id, &step_to, (&actor, note.as_deref()), events).await },
                )
            })
            .await?;
        Ok(moved)
    }

    async fn return_by_id(&self, id: &ReturnId) -> StoreResult<Option<Return>> {
        let mut conn = self.pool.acquire().await?;
        read_return(&mut conn, id.as_str()).await
    }

    async fn list_returns(&self, query: &ReturnQuery) -> StoreResult<(Vec<Return>, u64)> {
        let filtered = |select: &str| {
            let mut filter = Filter::new(select);
            filter.add_some("r.status = ", query.status.map(|s| s.as_str()));
            if query.open {
                filter
                    .and()
                    .push("r.status IN ('requested', 'approved', 'received')");
            }
            filter.add_some("r.order_id = ", query.order.as_ref().map(|o| o.to_string()));
            filter.owner(&query.owner, "o.");
            filter
        };
        let from = "FROM returns r JOIN orders o ON o.id = r.order_id";
        let total: i64 = filtered(&format!("SELECT count(*) {from}"))
            .query()
            .build_query_scalar()
            .fetch_one(&self.pool)
            .await?;
        let mut conn = self.pool.acquire().await?;
        let found = filtered(&format!("SELECT {RETURN_COLUMNS} {from}"))
            .page("r.id DESC", (query.limit, query.offset))
            .build()
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(return_row)
            .collect::<StoreResult<Vec<_>>>()?;
        let mut listed = Vec::with_capacity(found.len());
        for found in found {
            listed.push(with_items(&mut conn, found).await?);
        }
        Ok((listed, total as u64))
    }
}
