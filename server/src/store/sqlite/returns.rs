//! Returns in SQLite.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use shop_wire::events::{EventData, MakeEvent};
use shop_wire::returns::{Return, ReturnId, ReturnItem, ReturnStatus};

use super::audit;
use super::inventory::restock;
use super::{SqliteStore, append, from_millis, millis, parse_column};
use crate::services::returns::rules::{
    self, PlannedLine, ReturnRefusal, ReturnableLine, check_move, restock_choice,
};
use crate::store::{
    ReturnCreate, ReturnDraft, ReturnEvents, ReturnMove, ReturnQuery, ReturnStep, ReturnStore,
    StoreResult, audited_return, now, return_change,
};

use super::filter::Filter;

const RETURN_COLUMNS: &str = "r.id, r.order_id, o.number, o.customer_email, o.currency, r.status, \
     r.note, r.refund_cents, r.shipping_refund_cents, r.refund_id, r.created_at, r.updated_at";

fn return_row(row: &Row<'_>) -> rusqlite::Result<Return> {
    Ok(Return {
        id: parse_column(row, "id")?,
        order_id: parse_column(row, "order_id")?,
        order_number: crate::services::orders::rules::order_number(row.get("number")?),
        customer_email: row.get("customer_email")?,
        status: parse_column(row, "status")?,
        items: Vec::new(),
        note: row.get("note")?,
        refund_cents: row.get("refund_cents")?,
        shipping_refund_cents: row.get("shipping_refund_cents")?,
        currency: parse_column(row, "currency")?,
        refund_id: row
            .get::<_, Option<String>>("refund_id")?
            .map(|id| id.parse().map_err(super::conversion))
            .transpose()?,
        created_at: from_millis(row.get("created_at")?)?,
        updated_at: from_millis(row.get("updated_at")?)?,
    })
}

/// The items of a return, with the order line each came from.
fn return_items(conn: &Connection, id: &str) -> rusqlite::Result<Vec<(i64, ReturnItem)>> {
    conn.prepare_cached(
        "SELECT position, sku, quantity, reason, unit_price_cents, restocked
         FROM return_items WHERE return_id = ?1 ORDER BY position",
    )?
    .query_map([id], |row| {
        Ok((
            row.get(0)?,
            ReturnItem {
                sku: row.get(1)?,
                quantity: row.get(2)?,
                reason: row.get(3)?,
                unit_price_cents: row.get(4)?,
                restocked: row.get(5)?,
            },
        ))
    })?
    .collect()
}

fn read_return(conn: &Connection, id: &str) -> rusqlite::Result<Option<Return>> {
    let found = conn
        .prepare_cached(&format!(
            "SELECT {RETURN_COLUMNS} FROM returns r JOIN orders o ON o.id = r.order_id
             WHERE r.id = ?1"
        ))?
        .query_row([id], return_row)
        .optional()?;
    found
        .map(|mut found| {
            found.items = return_items(conn, id)?
                .into_iter()
                .map(|(_, item)| item)
                .collect();
            Ok(found)
        })
        .transpose()
}

fn must_read_return(tx: &Transaction<'_>, id: &str) -> StoreResult<Return> {
    read_return(tx, id)?.ok_or_else(|| {
        crate::store::StoreError::Backend(format!("return {id} vanished mid-change").into())
    })
}

/// An order's lines with what shipped and what is in returns already.
fn returnable_lines(tx: &Transaction<'_>, order: &str) -> StoreResult<Vec<ReturnableLine>> {
    Ok(tx
        .prepare_cached(
            "SELECT position, sku, shipped_quantity, returned_quantity, unit_price_cents
             FROM order_items WHERE order_id = ?1 ORDER BY position",
        )?
        .query_map([order], |row| {
            Ok(ReturnableLine {
                position: row.get(0)?,
                sku: row.get(1)?,
                shipped: row.get(2)?,
                returned: row.get(3)?,
                unit_price_cents: row.get(4)?,
            })
        })?
        .collect::<rusqlite::Result<_>>()?)
}

/// When the order's last shipment went and, once every shipment arrived, when the last did.
fn shipped_and_delivered(
    tx: &Transaction<'_>,
    order: &str,
) -> StoreResult<(Option<time::OffsetDateTime>, Option<time::OffsetDateTime>)> {
    let (shipped, delivered, undelivered): (Option<i64>, Option<i64>, i64) = tx
        .prepare_cached(
            "SELECT max(shipped_at), max(delivered_at), count(*) - count(delivered_at)
             FROM fulfillments WHERE order_id = ?1",
        )?
        .query_row([order], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))?;
    let delivered = delivered.filter(|_| undelivered == 0);
    Ok((
        shipped.map(from_millis).transpose()?,
        delivered.map(from_millis).transpose()?,
    ))
}

/// Adds (or, `sign` -1, gives back) a return's units to its lines'
/// returned units, guarded: never past what shipped. A line without the
/// units undoes the lines before it and answers what is left of its SKU.
fn take_returned(
    tx: &Transaction<'_>,
    order: &str,
    lines: &[PlannedLine],
) -> StoreResult<Result<(), ReturnRefusal>> {
    let mut take = tx.prepare_cached(
        "UPDATE order_items SET returned_quantity = returned_quantity + ?3
         WHERE order_id = ?1 AND position = ?2 AND returned_quantity + ?3 <= shipped_quantity",
    )?;
    for (taken, line) in lines.iter().enumerate() {
        if take.execute(params![order, line.position, line.quantity])? == 1 {
            continue;
        }
        give_back(
            tx,
            order,
            lines[..taken].iter().map(|l| (l.position, l.quantity)),
        )?;
        let left: i64 = tx
            .prepare_cached(
                "SELECT coalesce(sum(shipped_quantity - returned_quantity), 0) FROM order_items
                 WHERE order_id = ?1 AND sku = ?2",
            )?
            .query_row(params![order, line.sku], |row| row.get(0))?;
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

fn give_back(
    tx: &Transaction<'_>,
    order: &str,
    lines: impl Iterator<Item = (i64, i64)>,
) -> StoreResult<()> {
    let mut undo = tx.prepare_cached(
        "UPDATE order_items SET returned_quantity = returned_quantity - ?3
         WHERE order_id = ?1 AND position = ?2",
    )?;
    for (position, quantity) in lines {
        undo.execute(params![order, position, quantity])?;
    }
    Ok(())
}

fn record(
    tx: &Transaction<'_>,
    was: serde_json::Value,
    now: &Return,
    kind: Option<MakeEvent<Return>>,
    events: ReturnEvents,
) -> StoreResult<()> {
    audit::record(tx, [return_change(was, now, kind)])?;
    if let Some(kind) = kind {
        append(tx, vec![events(kind, now)])?;
    }
    Ok(())
}

fn create(
    tx: &Transaction<'_>,
    draft: &ReturnDraft,
    events: ReturnEvents,
) -> StoreResult<ReturnCreate> {
    let order = draft.order.as_str();
    let money = tx
        .prepare_cached(
            "SELECT subtotal_cents, discount_cents, shipping_cents, total_cents
             FROM orders WHERE id = ?1",
        )?
        .query_row([order], |row| {
            Ok(rules::OrderMoney {
                subtotal_cents: row.get(0)?,
                discount_cents: row.get(1)?,
                shipping_cents: row.get(2)?,
                total_cents: row.get(3)?,
            })
        })
        .optional()?;
    let Some(money) = money else {
        return Ok(ReturnCreate::NotFound);
    };
    let lines = returnable_lines(tx, order)?;
    let (shipped, delivered) = shipped_and_delivered(tx, order)?;
    let closes = rules::window_closes(shipped, delivered, draft.window_days);
    let plan = match rules::decide_return(&lines, &draft.items, closes, draft.now) {
        Ok(plan) => plan,
        Err(refusal) => return Ok(ReturnCreate::Refused(refusal)),
    };
    if let Err(refusal) = take_returned(tx, order, &plan)? {
        return Ok(ReturnCreate::Refused(refusal));
    }
    let at = millis(now());
    tx.prepare_cached(
        "INSERT INTO returns (id, order_id, status, note, refund_cents, created_at, updated_at)
         VALUES (?1, ?2, 'requested', ?3, ?4, ?5, ?5)",
    )?
    .execute(params![
        draft.id.as_str(),
        order,
        draft.note,
        rules::refund_cents(&plan, money),
        at
    ])?;
    let mut insert = tx.prepare_cached(
        "INSERT INTO return_items (return_id, position, sku, quantity, reason, unit_price_cents)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for line in &plan {
        insert.execute(params![
            draft.id.as_str(),
            line.position,
            line.sku,
            line.quantity,
            line.reason,
            line.unit_price_cents
        ])?;
    }
    let created = must_read_return(tx, draft.id.as_str())?;
    record(
        tx,
        serde_json::Value::Null,
        &created,
        Some(EventData::ReturnRequested),
        events,
    )?;
    Ok(ReturnCreate::Created(Box::new(created)))
}

fn step(
    tx: &Transaction<'_>,
    id: &ReturnId,
    step: &ReturnStep,
    actor: &str,
    note: Option<&str>,
    events: ReturnEvents,
) -> StoreResult<ReturnMove> {
    let Some(current) = read_return(tx, id.as_str())? else {
        return Ok(ReturnMove::NotFound);
    };
    let was = audited_return(&current);
    let (to, kind): (ReturnStatus, Option<MakeEvent<Return>>) = match step {
        ReturnStep::Approve => (ReturnStatus::Approved, Some(EventData::ReturnApproved)),
        ReturnStep::Reject => (ReturnStatus::Rejected, Some(EventData::ReturnRejected)),
        ReturnStep::Receive { .. } => (ReturnStatus::Received, Some(EventData::ReturnReceived)),
        ReturnStep::Refunded => (ReturnStatus::Refunded, Some(EventData::ReturnRefunded)),
        ReturnStep::ClaimRefund {
            refund,
            shipping_cents,
        } => {
            if current.status != ReturnStatus::Received {
                return Ok(ReturnMove::Illegal {
                    from: current.status,
                });
            }
            if *shipping_cents > 0 {
                let other: Option<ReturnId> = tx
                    .prepare_cached(
                        "SELECT o.id AS id FROM returns r JOIN returns o ON o.order_id = r.order_id
                         WHERE r.id = ?1 AND o.id <> r.id AND o.shipping_refund_cents > 0
                           AND o.status <> 'rejected'",
                    )?
                    .query_row([id.as_str()], |row| parse_column(row, "id"))
                    .optional()?;
                if let Some(other) = other {
                    return Ok(ReturnMove::ShippingRefunded(other));
                }
            }
            let claimed = tx
                .prepare_cached(
                    "UPDATE returns SET refund_id = ?2, shipping_refund_cents = ?4, updated_at = ?3
                     WHERE id = ?1 AND status = 'received'
                       AND (refund_id IS NULL
                            OR refund_id IN (SELECT id FROM refunds WHERE status = 'failed'))",
                )?
                .execute(params![
                    id.as_str(),
                    refund.as_str(),
                    millis(now()),
                    shipping_cents
                ])?;
            if claimed == 0 {
                let held = current.refund_id.clone().unwrap_or_else(|| refund.clone());
                return Ok(ReturnMove::RefundClaimed(held));
            }
            let claimed = must_read_return(tx, id.as_str())?;
            record(tx, was, &claimed, None, events)?;
            return Ok(ReturnMove::Done(Box::new(claimed)));
        }
        ReturnStep::ReleaseRefund { refund } => {
            tx.prepare_cached(
                "UPDATE returns SET refund_id = NULL WHERE id = ?1 AND refund_id = ?2
                   AND NOT EXISTS (SELECT 1 FROM refunds WHERE id = ?2)",
            )?
            .execute(params![id.as_str(), refund.as_str()])?;
            return Ok(ReturnMove::Done(Box::new(must_read_return(
                tx,
                id.as_str(),
            )?)));
        }
    };
    if let Err(from) = check_move(current.status, to) {
        return Ok(ReturnMove::Illegal { from });
    }
    let moved = tx
        .prepare_cached(
            "UPDATE returns SET status = ?3, note = coalesce(?4, note), updated_at = ?5
             WHERE id = ?1 AND status = ?2",
        )?
        .execute(params![
            id.as_str(),
            current.status.as_str(),
            to.as_str(),
            note,
            millis(now())
        ])?;
    if moved != 1 {
        return Ok(ReturnMove::Illegal {
            from: current.status,
        });
    }
    let order = current.order_id.as_str();
    let lines = return_items(tx, id.as_str())?;
    match step {
        ReturnStep::Reject => {
            give_back(tx, order, lines.iter().map(|(p, item)| (*p, item.quantity)))?;
        }
        ReturnStep::Receive { all, lines: chosen } => {
            let reason = format!("{} returned ({id})", current.order_number);
            let mut mark = tx.prepare_cached(
                "UPDATE return_items SET restocked = ?3 WHERE return_id = ?1 AND position = ?2",
            )?;
            let mut stock_events = Vec::new();
            for (position, item) in &lines {
                let back = restock_choice(&item.sku, *all, chosen);
                mark.execute(params![id.as_str(), position, back])?;
                if back
                    && let Some(effect) = restock(
                        tx,
                        &item.sku,
                        item.quantity,
                        reason.clone(),
                        Some(actor.to_owned()),
                    )?
                {
                    stock_events.extend(crate::services::inventory::domain::stock_events(&effect));
                }
            }
            append(tx, stock_events)?;
        }
        _ => {}
    }
    let changed = must_read_return(tx, id.as_str())?;
    record(tx, was, &changed, kind, events)?;
    Ok(ReturnMove::Done(Box::new(changed)))
}

#[async_trait]
impl ReturnStore for SqliteStore {
    async fn create_return(
        &self,
        draft: ReturnDraft,
        events: ReturnEvents,
    ) -> StoreResult<ReturnCreate> {
        self.write(move |tx| create(tx, &draft, events)).await
    }

    async fn move_return(
        &self,
        id: &ReturnId,
        step_to: ReturnStep,
        actor: String,
        note: Option<String>,
        events: ReturnEvents,
    ) -> StoreResult<ReturnMove> {
        let id = id.clone();
        self.write(move |tx| step(tx, &id, &step_to, &actor, note.as_deref(), events))
            .await
    }

    async fn return_by_id(&self, id: &ReturnId) -> StoreResult<Option<Return>> {
        let id = id.clone();
        self.read(move |conn| read_return(conn, id.as_str())).await
    }

    async fn list_returns(&self, query: &ReturnQuery) -> StoreResult<(Vec<Return>, u64)> {
        let query = query.clone();
        self.read(move |conn| {
            let mut filter = Filter::default();
            filter.add_some("r.status = ?", query.status.map(|s| s.as_str().to_owned()));
            if query.open {
                filter.add("r.status IN ('requested', 'approved', 'received')", []);
            }
            filter.add_some("r.order_id = ?", query.order.map(|o| o.to_string()));
            filter.owner(&query.owner, "o.");
            let from = "FROM returns r JOIN orders o ON o.id = r.order_id";
            let total = filter.count(conn, from)?;
            let select = format!("SELECT {RETURN_COLUMNS} {from}");
            let page = (query.limit, query.offset);
            let found = filter.page(conn, &select, "r.id DESC", page, return_row)?;
            let found = found
                .into_iter()
                .map(|mut found| {
                    found.items = return_items(conn, found.id.as_str())?
                        .into_iter()
                        .map(|(_, item)| item)
                        .collect();
                    Ok(found)
                })
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((found, total))
        })
        .await
    }
}
