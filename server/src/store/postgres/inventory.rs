//! Stock, its ledger and reservations in PostgreSQL.
//!
//! Writers run concurrently here, so every change first locks the stock rows
//! it decides from (`SELECT ... FOR UPDATE`), and a change that needs several
//! takes them in one statement in SKU order: two multi-line reservations
//! over the same SKUs queue behind each other instead of deadlocking. The
//! rules decide from the locked counts, and the write is still guarded by
//! the invariants (`... AND on_hand + $2 >= reserved + $3`), as the schema's
//! CHECK constraints are, so a bug that slipped past the lock changes
//! nothing. A reservation's row is locked before its stock row, and only
//! the expiry sweeper takes several, skipping those another node holds
//! (`FOR UPDATE SKIP LOCKED`), so sweepers on several nodes split the work.

use std::collections::BTreeSet;

use async_trait::async_trait;
use shop_wire::inventory::{
    Drift, Movement, MovementKind, ReconcileReport, Reservation, ReservationId, ReservationStatus,
    Stock,
};
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, PgConnection, Row};
use time::OffsetDateTime;

use super::filter::Filter;
use super::{PgStore, audit, parse};
use crate::services::inventory::rules::{self, StockRefusal};
use crate::store::audit::audited_stock;
use crate::store::{
    AuditChange, ExistingStock, InitialStock, InventoryStore, MovementDraft, ReservationQuery,
    ReservationWrite, ReserveItem, ReserveOutcome, StockChange, StockEffect, StockEvents,
    StockOperation, StockQuery, StockWrite, StoreError, StoreResult, now,
};

const STOCK_COLUMNS: &str = "sku, on_hand, reserved, low_stock_threshold, low_alerted, updated_at, \
     (SELECT name FROM products WHERE products.sku = stock.sku) AS name";
const MOVEMENT_COLUMNS: &str = "id, sku, kind, on_hand_before, on_hand_after, reserved_before, \
     reserved_after, reason, actor, reference, at";
const RESERVATION_COLUMNS: &str = "id, sku, quantity, status, reference, expires_at, created_at";

/// A stock row with the low-stock alert flag that the wire type does not show.
#[derive(Clone)]
struct StockRow {
    stock: Stock,
    low_alerted: bool,
}

fn stock_row(row: &PgRow) -> StoreResult<StockRow> {
    let on_hand: i64 = row.try_get("on_hand")?;
    let reserved: i64 = row.try_get("reserved")?;
    Ok(StockRow {
        stock: Stock {
            sku: row.try_get("sku")?,
            name: row.try_get("name")?,
            on_hand,
            reserved,
            available: on_hand - reserved,
            low_stock_threshold: row.try_get("low_stock_threshold")?,
            updated_at: row.try_get("updated_at")?,
        },
        low_alerted: row.try_get("low_alerted")?,
    })
}

fn movement_row(row: &PgRow) -> StoreResult<Movement> {
    Ok(Movement {
        id: row.try_get::<i64, _>("id")? as u64,
        sku: row.try_get("sku")?,
        kind: parse(row, "kind")?,
        on_hand_before: row.try_get("on_hand_before")?,
        on_hand_after: row.try_get("on_hand_after")?,
        reserved_before: row.try_get("reserved_before")?,
        reserved_after: row.try_get("reserved_after")?,
        reason: row.try_get("reason")?,
        actor: row.try_get("actor")?,
        reference: row.try_get("reference")?,
        at: row.try_get("at")?,
    })
}

fn reservation_row(row: &PgRow) -> StoreResult<Reservation> {
    Ok(Reservation {
        id: parse(row, "id")?,
        sku: row.try_get("sku")?,
        quantity: row.try_get("quantity")?,
        status: parse(row, "status")?,
        expires_at: row.try_get("expires_at")?,
        reference: row.try_get("reference")?,
        created_at: row.try_get("created_at")?,
    })
}

async fn read_stock(conn: &mut PgConnection, sku: &str) -> StoreResult<Option<StockRow>> {
    let sql = format!("SELECT {STOCK_COLUMNS} FROM stock WHERE sku = $1");
    sqlx::query(AssertSqlSafe(sql))
        .bind(sku)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(stock_row)
        .transpose()
}

/// Locks the stock rows of `skus` (those that exist) in SKU order, the one
/// order every change takes them in; returns them in that order.
async fn lock_stock(conn: &mut PgConnection, skus: &BTreeSet<&str>) -> StoreResult<Vec<StockRow>> {
    let skus: Vec<&str> = skus.iter().copied().collect();
    let sql =
        format!("SELECT {STOCK_COLUMNS} FROM stock WHERE sku = ANY($1) ORDER BY sku FOR UPDATE");
    sqlx::query(AssertSqlSafe(sql))
        .bind(skus)
        .fetch_all(conn)
        .await?
        .iter()
        .map(stock_row)
        .collect()
}

/// Locks one SKU's stock row; `None` when it has none.
async fn lock_one(conn: &mut PgConnection, sku: &str) -> StoreResult<Option<StockRow>> {
    Ok(lock_stock(conn, &BTreeSet::from([sku])).await?.pop())
}

async fn read_reservation(
    conn: &mut PgConnection,
    id: &str,
    lock: bool,
) -> StoreResult<Option<Reservation>> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let sql = format!("SELECT {RESERVATION_COLUMNS} FROM reservations WHERE id = $1{lock}");
    sqlx::query(AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(reservation_row)
        .transpose()
}

/// Creates the stock row of a new product, with a ledger entry when it starts with stock.
pub(super) async fn insert_stock(
    tx: &mut PgConnection,
    sku: &str,
    initial: InitialStock,
    draft: MovementDraft,
    at: OffsetDateTime,
) -> StoreResult<()> {
    // A product that starts low has not crossed anything: no alert until it recovers and falls again.
    let low = rules::is_low(initial.on_hand, initial.low_stock_threshold);
    sqlx::query(
        "INSERT INTO stock (sku, on_hand, reserved, low_stock_threshold, low_alerted, updated_at)
         VALUES ($1, $2, 0, $3, $4, $5)",
    )
    .bind(sku)
    .bind(initial.on_hand)
    .bind(initial.low_stock_threshold)
    .bind(low)
    .bind(at)
    .execute(&mut *tx)
    .await?;
    if initial.on_hand > 0 {
        insert_movement(tx, sku, (0, initial.on_hand), (0, 0), draft, at).await?;
    }
    Ok(())
}

async fn insert_movement(
    tx: &mut PgConnection,
    sku: &str,
    (on_hand_before, on_hand_after): (i64, i64),
    (reserved_before, reserved_after): (i64, i64),
    draft: MovementDraft,
    at: OffsetDateTime,
) -> StoreResult<Movement> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO stock_movements (sku, kind, on_hand_before, on_hand_after, reserved_before,
             reserved_after, reason, actor, reference, at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id",
    )
    .bind(sku)
    .bind(draft.kind.as_str())
    .bind(on_hand_before)
    .bind(on_hand_after)
    .bind(reserved_before)
    .bind(reserved_after)
    .bind(&draft.reason)
    .bind(&draft.actor)
    .bind(&draft.reference)
    .bind(at)
    .fetch_one(&mut *tx)
    .await?;
    Ok(Movement {
        id: id as u64,
        sku: sku.to_owned(),
        kind: draft.kind,
        on_hand_before,
        on_hand_after,
        reserved_before,
        reserved_after,
        reason: draft.reason,
        actor: draft.actor,
        reference: draft.reference,
        at,
    })
}

/// Writes new counts for a SKU, decided from `before` (its row, locked in
/// this transaction), with their ledger entry, and tracks the low-stock
/// crossing. The write moves the counts by the difference, guarded by the
/// invariants.
async fn write_stock(
    tx: &mut PgConnection,
    before: &StockRow,
    (on_hand, reserved, threshold): (i64, i64, i64),
    draft: MovementDraft,
    reservation: Option<Reservation>,
) -> StoreResult<StockEffect> {
    let at = now();
    let low = rules::is_low(on_hand, threshold);
    let changed = sqlx::query(
        "UPDATE stock SET on_hand = on_hand + $2, reserved = reserved + $3,
                low_stock_threshold = $4, low_alerted = $5, updated_at = $6
         WHERE sku = $1 AND reserved + $3 >= 0 AND on_hand + $2 >= reserved + $3",
    )
    .bind(&before.stock.sku)
    .bind(on_hand - before.stock.on_hand)
    .bind(reserved - before.stock.reserved)
    .bind(threshold)
    .bind(low)
    .bind(at)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if changed != 1 {
        return Err(StoreError::Backend(
            format!(
                "the stock of {} changed under this change",
                before.stock.sku
            )
            .into(),
        ));
    }
    let movement = insert_movement(
        tx,
        &before.stock.sku,
        (before.stock.on_hand, on_hand),
        (before.stock.reserved, reserved),
        draft,
        at,
    )
    .await?;
    Ok(StockEffect {
        stock: Stock {
            sku: before.stock.sku.clone(),
            name: before.stock.name.clone(),
            on_hand,
            reserved,
            available: on_hand - reserved,
            low_stock_threshold: threshold,
            updated_at: at,
        },
        movement,
        reservation,
        became_low: rules::became_low(on_hand, threshold, before.low_alerted),
    })
}

/// The row as [`write_stock`] left it, for a next change in the same transaction.
fn after(effect: &StockEffect) -> StockRow {
    StockRow {
        stock: effect.stock.clone(),
        low_alerted: rules::is_low(effect.stock.on_hand, effect.stock.low_stock_threshold),
    }
}

/// Applies an import row's stock columns to an existing SKU: `Ok(None)` when
/// they change nothing, `Err(reason)` when they cannot apply.
pub(super) async fn import_stock(
    tx: &mut PgConnection,
    sku: &str,
    on_hand: ExistingStock,
    threshold: Option<i64>,
    draft: MovementDraft,
) -> StoreResult<Result<Option<StockEffect>, String>> {
    let Some(before) = lock_one(tx, sku).await? else {
        return Ok(Err(format!("SKU {sku} has no stock record")));
    };
    let on_hand = match on_hand {
        ExistingStock::Keep => before.stock.on_hand,
        ExistingStock::Set(on_hand) => on_hand,
        ExistingStock::Add(delivered) => before.stock.on_hand.saturating_add(delivered),
    };
    let threshold = threshold.unwrap_or(before.stock.low_stock_threshold);
    if on_hand == before.stock.on_hand && threshold == before.stock.low_stock_threshold {
        return Ok(Ok(None));
    }
    if rules::on_hand_after(StockOperation::Set(on_hand), 0, before.stock.reserved).is_none() {
        return Ok(Err(format!(
            "stock {on_hand} is below the {} units reserved for {sku}",
            before.stock.reserved
        )));
    }
    let reserved = before.stock.reserved;
    let effect = write_stock(tx, &before, (on_hand, reserved, threshold), draft, None).await?;
    Ok(Ok(Some(effect)))
}

/// Moves a reservation (its row locked by the caller) to its final state
/// and its stock with it.
async fn finish(
    tx: &mut PgConnection,
    reservation: Reservation,
    to: ReservationStatus,
    actor: Option<String>,
) -> StoreResult<StockEffect> {
    let before = lock_one(tx, &reservation.sku).await?.ok_or_else(|| {
        StoreError::Backend(format!("reservation {} has no stock row", reservation.id).into())
    })?;
    let kind = match to {
        ReservationStatus::Committed => MovementKind::Commit,
        ReservationStatus::Expired => MovementKind::Expire,
        ReservationStatus::Released | ReservationStatus::Active => MovementKind::Release,
    };
    sqlx::query("UPDATE reservations SET status = $2, updated_at = $3 WHERE id = $1")
        .bind(reservation.id.as_str())
        .bind(to.as_str())
        .bind(now())
        .execute(&mut *tx)
        .await?;
    let (on_hand_delta, reserved_delta) = rules::finish_deltas(to, reservation.quantity);
    let counts = (
        before.stock.on_hand + on_hand_delta,
        before.stock.reserved + reserved_delta,
        before.stock.low_stock_threshold,
    );
    let draft = MovementDraft {
        kind,
        reason: reservation.reference.clone(),
        actor,
        reference: Some(reservation.id.to_string()),
    };
    let finished = Reservation {
        status: to,
        ..reservation
    };
    write_stock(tx, &before, counts, draft, Some(finished)).await
}

/// What a new reservation holds stock for, and until when.
pub(super) struct Hold {
    pub expires_at: OffsetDateTime,
    pub reference: Option<String>,
    pub actor: Option<String>,
}

/// Records a new active reservation of `item` (its stock is the caller's to move).
async fn insert_reservation(
    tx: &mut PgConnection,
    item: &ReserveItem,
    hold: &Hold,
) -> StoreResult<Reservation> {
    let at = now();
    let reservation = Reservation {
        id: ReservationId::generate(),
        sku: item.sku.clone(),
        quantity: item.quantity,
        status: ReservationStatus::Active,
        expires_at: hold.expires_at,
        reference: hold.reference.clone(),
        created_at: at,
    };
    sqlx::query(
        "INSERT INTO reservations (id, sku, quantity, status, reference, expires_at,
             created_at, updated_at)
         VALUES ($1, $2, $3, 'active', $4, $5, $6, $6)",
    )
    .bind(reservation.id.as_str())
    .bind(&reservation.sku)
    .bind(reservation.quantity)
    .bind(&reservation.reference)
    .bind(reservation.expires_at)
    .bind(at)
    .execute(&mut *tx)
    .await?;
    Ok(reservation)
}

/// Holds `item` on the stock row `row` (locked in this transaction) for a
/// reservation, with its ledger entry.
async fn hold_on(
    tx: &mut PgConnection,
    row: &StockRow,
    item: &ReserveItem,
    hold: Hold,
) -> StoreResult<StockEffect> {
    let reservation = insert_reservation(tx, item, &hold).await?;
    let counts = (
        row.stock.on_hand,
        row.stock.reserved + item.quantity,
        row.stock.low_stock_threshold,
    );
    let draft = MovementDraft {
        kind: MovementKind::Reserve,
        reason: hold.reference,
        actor: hold.actor,
        reference: Some(reservation.id.to_string()),
    };
    write_stock(tx, row, counts, draft, Some(reservation)).await
}

/// The id of the reservation a stock effect made or changed.
pub(super) fn reservation_of(effect: &StockEffect) -> String {
    effect
        .reservation
        .as_ref()
        .expect("a reservation's effect carries it")
        .id
        .to_string()
}

/// Checks that every item (summed per SKU) is available before anything is
/// written, so that a refusal leaves nothing behind. Locks the SKUs' stock
/// rows in SKU order, so what was checked still holds when it is written.
pub(super) async fn check_available(
    tx: &mut PgConnection,
    items: &[ReserveItem],
) -> StoreResult<Result<(), StockRefusal>> {
    let rows = lock_stock(tx, &items.iter().map(|i| i.sku.as_str()).collect()).await?;
    let demands = rules::demand_per_sku(items);
    let levels = demands.iter().map(|demand| {
        let row = rows.iter().find(|row| row.stock.sku == demand.sku);
        (demand, row.map(|row| row.stock.available))
    });
    Ok(rules::check_available(levels))
}

/// The units of a SKU free to hold or sell, its row locked; `None` when it
/// has no stock record.
pub(super) async fn available(tx: &mut PgConnection, sku: &str) -> StoreResult<Option<i64>> {
    Ok(lock_one(tx, sku).await?.map(|row| row.stock.available))
}

/// Locks the stock row of `sku`, which a change in progress holds or sells.
async fn must_lock(tx: &mut PgConnection, sku: &str) -> StoreResult<StockRow> {
    lock_one(tx, sku)
        .await?
        .ok_or_else(|| StoreError::Backend(format!("SKU {sku} has no stock row").into()))
}

/// Reserves one item whose availability [`check_available`] has confirmed
/// (and locked) in this transaction.
pub(super) async fn reserve_checked(
    tx: &mut PgConnection,
    item: &ReserveItem,
    hold: Hold,
) -> StoreResult<StockEffect> {
    let row = must_lock(tx, &item.sku).await?;
    hold_on(tx, &row, item, hold).await
}

/// Reserves one item, or says why not (`Err` holds the refusal) without writing anything.
pub(super) async fn reserve_one(
    tx: &mut PgConnection,
    item: &ReserveItem,
    hold: Hold,
) -> StoreResult<Result<StockEffect, StockRefusal>> {
    match check_available(tx, std::slice::from_ref(item)).await? {
        Err(refusal) => Ok(Err(refusal)),
        Ok(()) => reserve_checked(tx, item, hold).await.map(Ok),
    }
}

/// An active reservation by id, its row locked for this transaction.
pub(super) async fn active_reservation(
    tx: &mut PgConnection,
    id: &str,
) -> StoreResult<Option<Reservation>> {
    Ok(read_reservation(tx, id, true)
        .await?
        .filter(|r| r.status == ReservationStatus::Active))
}

/// Changes how much an active reservation (locked by the caller) holds (a
/// cart line's new quantity), or says how much is available when the stock
/// cannot cover it.
pub(super) async fn resize_reservation(
    tx: &mut PgConnection,
    reservation: &Reservation,
    quantity: i64,
    actor: Option<String>,
) -> StoreResult<Result<StockEffect, StockRefusal>> {
    let before = must_lock(tx, &reservation.sku).await?;
    let delta = match rules::resize(
        &reservation.sku,
        reservation.quantity,
        quantity,
        before.stock.available,
    ) {
        Ok(delta) => delta,
        Err(refusal) => return Ok(Err(refusal)),
    };
    sqlx::query("UPDATE reservations SET quantity = $2, updated_at = $3 WHERE id = $1")
        .bind(reservation.id.as_str())
        .bind(quantity)
        .bind(now())
        .execute(&mut *tx)
        .await?;
    let counts = (
        before.stock.on_hand,
        before.stock.reserved + delta,
        before.stock.low_stock_threshold,
    );
    let draft = MovementDraft {
        kind: if delta >= 0 {
            MovementKind::Reserve
        } else {
            MovementKind::Release
        },
        reason: reservation.reference.clone(),
        actor,
        reference: Some(reservation.id.to_string()),
    };
    let resized = Reservation {
        quantity,
        ..reservation.clone()
    };
    write_stock(tx, &before, counts, draft, Some(resized))
        .await
        .map(Ok)
}

/// Moves every active reservation named to a new expiry and reference.
pub(super) async fn extend_reservations(
    tx: &mut PgConnection,
    ids: &[String],
    expires_at: OffsetDateTime,
    reference: &str,
) -> StoreResult<()> {
    sqlx::query(
        "UPDATE reservations SET expires_at = $2, reference = $3, updated_at = $4
         WHERE id = ANY($1) AND status = 'active'",
    )
    .bind(ids)
    .bind(expires_at)
    .bind(reference)
    .bind(now())
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Moves a SKU's units on hand by `delta` outside any reservation (a
/// restock of a cancelled paid order, a sale after a hold ran out), with
/// a ledger entry of `kind`.
async fn move_on_hand(
    tx: &mut PgConnection,
    before: &StockRow,
    delta: i64,
    kind: MovementKind,
    reason: String,
    actor: Option<String>,
) -> StoreResult<StockEffect> {
    let counts = (
        before.stock.on_hand + delta,
        before.stock.reserved,
        before.stock.low_stock_threshold,
    );
    let draft = MovementDraft {
        kind,
        reason: Some(reason),
        actor,
        reference: None,
    };
    write_stock(tx, before, counts, draft, None).await
}

/// Puts sold units back on hand (a cancelled paid order), with a ledger entry.
pub(super) async fn restock(
    tx: &mut PgConnection,
    sku: &str,
    quantity: i64,
    reason: String,
    actor: Option<String>,
) -> StoreResult<Option<StockEffect>> {
    let Some(before) = lock_one(tx, sku).await? else {
        return Ok(None);
    };
    let effect = move_on_hand(tx, &before, quantity, MovementKind::Adjust, reason, actor).await?;
    Ok(Some(effect))
}

/// Sells units straight from available stock (an order paid after its hold
/// ran out), once [`check_available`] has confirmed them in this transaction.
pub(super) async fn sell_unreserved(
    tx: &mut PgConnection,
    sku: &str,
    quantity: i64,
    reason: String,
    actor: Option<String>,
) -> StoreResult<StockEffect> {
    let before = must_lock(tx, sku).await?;
    move_on_hand(tx, &before, -quantity, MovementKind::Commit, reason, actor).await
}

/// Finishes an active reservation (commit, release or expire) by id;
/// `None` when it is no longer active.
pub(super) async fn finish_active(
    tx: &mut PgConnection,
    id: &str,
    to: ReservationStatus,
    actor: Option<String>,
) -> StoreResult<Option<StockEffect>> {
    match active_reservation(tx, id).await? {
        Some(reservation) => finish(tx, reservation, to, actor).await.map(Some),
        None => Ok(None),
    }
}

/// Reserves every item, or none: locks the SKUs' rows in SKU order, checks
/// the demands against them, then holds each item.
async fn reserve_all(
    tx: &mut PgConnection,
    items: Vec<ReserveItem>,
    expires_at: OffsetDateTime,
    reference: Option<String>,
    actor: Option<String>,
) -> StoreResult<Result<Vec<StockEffect>, StockRefusal>> {
    let mut rows = lock_stock(tx, &items.iter().map(|i| i.sku.as_str()).collect()).await?;
    let demands = rules::demand_per_sku(&items);
    let levels = demands.iter().map(|demand| {
        let row = rows.iter().find(|row| row.stock.sku == demand.sku);
        (demand, row.map(|row| row.stock.available))
    });
    if let Err(refusal) = rules::check_available(levels) {
        return Ok(Err(refusal));
    }
    let mut effects = Vec::with_capacity(items.len());
    for item in items {
        let row = rows
            .iter_mut()
            .find(|row| row.stock.sku == item.sku)
            .expect("check_available refused every SKU without a stock row");
        let hold = Hold {
            expires_at,
            reference: reference.clone(),
            actor: actor.clone(),
        };
        let effect = hold_on(tx, row, &item, hold).await?;
        *row = after(&effect);
        effects.push(effect);
    }
    Ok(Ok(effects))
}

#[async_trait]
impl InventoryStore for PgStore {
    async fn stock(&self, sku: &str) -> StoreResult<Option<Stock>> {
        let mut conn = self.pool.acquire().await?;
        Ok(read_stock(&mut conn, sku).await?.map(|row| row.stock))
    }

    async fn list_stock(&self, query: &StockQuery) -> StoreResult<(Vec<Stock>, u64)> {
        let filtered = |select: &str| {
            let mut filter = Filter::new(select);
            if query.low_only {
                filter
                    .and()
                    .push("on_hand - reserved <= low_stock_threshold");
            }
            filter.contains(&["sku"], query.text.as_deref());
            filter
        };
        let total: i64 = filtered("SELECT count(*) FROM stock")
            .query()
            .build_query_scalar()
            .fetch_one(&self.pool)
            .await?;
        let order = if query.by_sku {
            "sku"
        } else {
            "on_hand - reserved, sku"
        };
        let items = filtered(&format!("SELECT {STOCK_COLUMNS} FROM stock"))
            .page(order, (query.limit, query.offset))
            .build()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(|row| stock_row(row).map(|row| row.stock))
            .collect::<StoreResult<_>>()?;
        Ok((items, total as u64))
    }

    async fn change_stock(
        &self,
        change: StockChange,
        events: StockEvents,
    ) -> StoreResult<StockWrite> {
        let (write, _) = self
            .write(move |tx| {
                let change = change.clone();
                Box::pin(async move {
                    let Some(before) = lock_one(tx, &change.sku).await? else {
                        return Ok((StockWrite::NotFound, Vec::new()));
                    };
                    let kind = match change.operation {
                        StockOperation::Set(_) => MovementKind::Set,
                        StockOperation::Adjust(_) => MovementKind::Adjust,
                    };
                    let reserved = before.stock.reserved;
                    let Some(on_hand) =
                        rules::on_hand_after(change.operation, before.stock.on_hand, reserved)
                    else {
                        let refused = StockWrite::Insufficient {
                            on_hand: before.stock.on_hand,
                            reserved,
                        };
                        return Ok((refused, Vec::new()));
                    };
                    let threshold = change
                        .low_stock_threshold
                        .unwrap_or(before.stock.low_stock_threshold);
                    let draft = MovementDraft {
                        kind,
                        reason: Some(change.reason),
                        actor: change.actor,
                        reference: None,
                    };
                    let action = match kind {
                        MovementKind::Set => "inventory.set",
                        _ => "inventory.adjusted",
                    };
                    let effect =
                        write_stock(tx, &before, (on_hand, reserved, threshold), draft, None)
                            .await?;
                    audit::record(
                        tx,
                        [AuditChange::diff(
                            action,
                            "stock",
                            effect.stock.sku.as_str(),
                            audited_stock(&before.stock),
                            audited_stock(&effect.stock),
                        )],
                    )
                    .await?;
                    Ok((
                        StockWrite::Changed(Box::new(effect.stock.clone())),
                        events(&effect),
                    ))
                })
            })
            .await?;
        Ok(write)
    }

    async fn movements(
        &self,
        sku: &str,
        limit: u32,
        offset: u64,
    ) -> StoreResult<(Vec<Movement>, u64)> {
        let total: i64 = sqlx::query_scalar("SELECT count(*) FROM stock_movements WHERE sku = $1")
            .bind(sku)
            .fetch_one(&self.pool)
            .await?;
        let sql = format!(
            "SELECT {MOVEMENT_COLUMNS} FROM stock_movements WHERE sku = $1
             ORDER BY id DESC LIMIT $2 OFFSET $3"
        );
        let items = sqlx::query(AssertSqlSafe(sql))
            .bind(sku)
            .bind(i64::from(limit))
            .bind(offset as i64)
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(movement_row)
            .collect::<StoreResult<_>>()?;
        Ok((items, total as u64))
    }

    async fn reserve(
        &self,
        items: Vec<ReserveItem>,
        expires_at: OffsetDateTime,
        reference: Option<String>,
        actor: Option<String>,
        events: StockEvents,
    ) -> StoreResult<ReserveOutcome> {
        let (outcome, _) = self
            .write(move |tx| {
                let (items, reference, actor) = (items.clone(), reference.clone(), actor.clone());
                Box::pin(async move {
                    match reserve_all(tx, items, expires_at, reference, actor).await? {
                        Err(refusal) => Ok((refusal.into(), Vec::new())),
                        Ok(effects) => {
                            let pending = effects.iter().flat_map(events).collect();
                            let reservations = effects
                                .into_iter()
                                .filter_map(|effect| effect.reservation)
                                .collect();
                            Ok((ReserveOutcome::Reserved(reservations), pending))
                        }
                    }
                })
            })
            .await?;
        Ok(outcome)
    }

    async fn finish_reservation(
        &self,
        id: &ReservationId,
        to: ReservationStatus,
        actor: Option<String>,
        events: StockEvents,
    ) -> StoreResult<ReservationWrite> {
        let (write, _) = self
            .write(move |tx| {
                let (id, actor) = (id.clone(), actor.clone());
                Box::pin(async move {
                    let Some(reservation) = read_reservation(tx, id.as_str(), true).await? else {
                        return Ok((ReservationWrite::NotFound, Vec::new()));
                    };
                    if reservation.status != ReservationStatus::Active {
                        return Ok((ReservationWrite::NotActive(reservation.status), Vec::new()));
                    }
                    // Past its expiry but not yet swept: it is expired, whatever was asked.
                    if reservation.expires_at <= now() {
                        let effect =
                            finish(tx, reservation, ReservationStatus::Expired, None).await?;
                        let expired = ReservationWrite::NotActive(ReservationStatus::Expired);
                        return Ok((expired, events(&effect)));
                    }
                    let effect = finish(tx, reservation, to, actor).await?;
                    let pending = events(&effect);
                    let reservation = effect
                        .reservation
                        .expect("finish always returns the reservation it finished");
                    Ok((ReservationWrite::Done(Box::new(reservation)), pending))
                })
            })
            .await?;
        Ok(write)
    }

    async fn expire_reservations(
        &self,
        now: OffsetDateTime,
        limit: u32,
        events: StockEvents,
    ) -> StoreResult<u64> {
        let (count, _) = self
            .write(move |tx| {
                Box::pin(async move {
                    // Another node's sweep holds its batch: this one takes the next.
                    let sql = format!(
                        "SELECT {RESERVATION_COLUMNS} FROM reservations
                         WHERE status = 'active' AND expires_at <= $1 ORDER BY expires_at LIMIT $2
                         FOR UPDATE SKIP LOCKED"
                    );
                    let due = sqlx::query(AssertSqlSafe(sql))
                        .bind(now)
                        .bind(i64::from(limit))
                        .fetch_all(&mut *tx)
                        .await?
                        .iter()
                        .map(reservation_row)
                        .collect::<StoreResult<Vec<_>>>()?;
                    lock_stock(tx, &due.iter().map(|r| r.sku.as_str()).collect()).await?;
                    let count = due.len() as u64;
                    let mut pending = Vec::new();
                    let mut expired = Vec::with_capacity(due.len());
                    for reservation in due {
                        let state = |status| {
                            serde_json::json!({
                                "status": status,
                                "sku": reservation.sku,
                                "quantity": reservation.quantity,
                            })
                        };
                        expired.push(AuditChange::diff(
                            "reservation.expired",
                            "reservation",
                            reservation.id.as_str(),
                            state(reservation.status),
                            state(ReservationStatus::Expired),
                        ));
                        let effect =
                            finish(tx, reservation, ReservationStatus::Expired, None).await?;
                        pending.extend(events(&effect));
                    }
                    audit::record(tx, expired).await?;
                    Ok((count, pending))
                })
            })
            .await?;
        Ok(count)
    }

    async fn reservation(&self, id: &ReservationId) -> StoreResult<Option<Reservation>> {
        let mut conn = self.pool.acquire().await?;
        read_reservation(&mut conn, id.as_str(), false).await
    }

    async fn reservations(&self, query: &ReservationQuery) -> StoreResult<(Vec<Reservation>, u64)> {
        let filtered = |select: &str| {
            let mut filter = Filter::new(select);
            filter.add_some("sku = ", query.sku.clone());
            filter.add_some("status = ", query.status.map(|s| s.as_str()));
            filter.add_some("reference = ", query.reference.clone());
            filter
        };
        let total: i64 = filtered("SELECT count(*) FROM reservations")
            .query()
            .build_query_scalar()
            .fetch_one(&self.pool)
            .await?;
        let items = filtered(&format!("SELECT {RESERVATION_COLUMNS} FROM reservations"))
            .page("id DESC", (query.limit, query.offset))
            .build()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(reservation_row)
            .collect::<StoreResult<_>>()?;
        Ok((items, total as u64))
    }

    async fn reconcile(
        &self,
        fix: bool,
        actor: Option<String>,
        events: StockEvents,
    ) -> StoreResult<ReconcileReport> {
        let (report, _) = self
            .write(move |tx| {
                let actor = actor.clone();
                Box::pin(async move { reconcile(tx, fix, actor, events).await })
            })
            .await?;
        Ok(report)
    }
}

/// The drifts of one check: a SKU, the count found and the one expected.
async fn drifts(tx: &mut PgConnection, sql: &'static str) -> StoreResult<Vec<(String, i64, i64)>> {
    sqlx::query_as(sql).fetch_all(tx).await.map_err(Into::into)
}

/// Checks the inventory invariants and, with `fix`, repairs what drifted.
///
/// Every stock row is locked first (in SKU order): every change of stock or
/// of an active reservation locks its SKU's row, so from then on the counts
/// and the reservations stand still, as under SQLite's single writer.
async fn reconcile(
    tx: &mut PgConnection,
    fix: bool,
    actor: Option<String>,
    events: StockEvents,
) -> StoreResult<(ReconcileReport, Vec<crate::store::NewEvent>)> {
    let skus_checked = sqlx::query("SELECT sku FROM stock ORDER BY sku FOR UPDATE")
        .fetch_all(&mut *tx)
        .await?
        .len();
    let reservations_checked: i64 =
        sqlx::query_scalar("SELECT count(*) FROM reservations WHERE status = 'active'")
            .fetch_one(&mut *tx)
            .await?;
    let reserved_drift = drifts(
        tx,
        "SELECT s.sku, s.reserved, coalesce(r.held, 0)::bigint
         FROM stock s LEFT JOIN (SELECT sku, sum(quantity) AS held FROM reservations
                                 WHERE status = 'active' GROUP BY sku) r USING (sku)
         WHERE s.reserved <> coalesce(r.held, 0) ORDER BY s.sku",
    )
    .await?;
    let mut drift = Vec::new();
    let mut pending = Vec::new();
    for (sku, found, expected) in reserved_drift {
        let mut fixed = false;
        if fix
            && let Some(before) = read_stock(tx, &sku).await?
            && expected <= before.stock.on_hand
        {
            let counts = (
                before.stock.on_hand,
                expected,
                before.stock.low_stock_threshold,
            );
            let draft = MovementDraft {
                kind: MovementKind::Reconcile,
                reason: Some("reserved did not match the active reservations".to_owned()),
                actor: actor.clone(),
                reference: None,
            };
            let effect = write_stock(tx, &before, counts, draft, None).await?;
            pending.extend(events(&effect));
            fixed = true;
        }
        drift.push(Drift {
            sku,
            check: "reserved_matches_reservations".to_owned(),
            expected,
            found,
            fixed,
        });
    }
    let ledger_drift = drifts(
        tx,
        "SELECT sku, on_hand, ledger FROM (
             SELECT s.sku, s.on_hand,
                    coalesce((SELECT m.on_hand_after FROM stock_movements m
                              WHERE m.sku = s.sku ORDER BY m.id DESC LIMIT 1), 0) AS ledger
             FROM stock s) AS counted
         WHERE on_hand <> ledger ORDER BY sku",
    )
    .await?;
    for (sku, found, expected) in ledger_drift {
        // A reserved fix above already wrote a ledger entry ending at the current count.
        let already = drift.iter().any(|d| d.sku == sku && d.fixed);
        let mut fixed = already;
        if fix
            && !already
            && let Some(before) = read_stock(tx, &sku).await?
        {
            // The count on hand is the truth (it is what was sold against);
            // the ledger gains the entry that explains it.
            let draft = MovementDraft {
                kind: MovementKind::Reconcile,
                reason: Some("on hand changed outside the ledger".to_owned()),
                actor: actor.clone(),
                reference: None,
            };
            let reserved = before.stock.reserved;
            let movement = insert_movement(
                tx,
                &sku,
                (expected, found),
                (reserved, reserved),
                draft,
                now(),
            )
            .await?;
            pending.extend(events(&StockEffect {
                stock: before.stock,
                movement,
                reservation: None,
                became_low: false,
            }));
            fixed = true;
        }
        drift.push(Drift {
            sku,
            check: "ledger_matches_on_hand".to_owned(),
            expected,
            found,
            fixed,
        });
    }
    let report = ReconcileReport {
        consistent: drift.is_empty(),
        skus_checked: skus_checked as u64,
        reservations_checked: reservations_checked as u64,
        drift,
    };
    Ok((report, pending))
}
