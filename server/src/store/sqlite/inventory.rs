//! Stock, its ledger and reservations in SQLite.
//!
//! Every change runs inside the store's single `BEGIN IMMEDIATE` writer: the
//! check (is there enough available?) and the write happen in one
//! transaction that no other writer can interleave with, and the schema's
//! CHECK constraints refuse negative stock or over-reservation even if a bug
//! slipped past the check. Each change writes its ledger entry and events in
//! the same transaction.

use async_trait::async_trait;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use shop_wire::inventory::{
    Drift, Movement, MovementKind, ReconcileReport, Reservation, ReservationId, ReservationStatus,
    Stock,
};
use time::OffsetDateTime;

use super::audit;
use super::filter::Filter;
use super::{SqliteStore, append, from_millis, millis, parse_column};
use crate::services::inventory::rules::{self, StockRefusal};
use crate::store::AuditChange;
use crate::store::audit::audited_stock;
use crate::store::{
    ExistingStock, InitialStock, InventoryStore, MovementDraft, ReservationQuery, ReservationWrite,
    ReserveItem, ReserveOutcome, StockChange, StockEffect, StockEvents, StockOperation, StockQuery,
    StockWrite, StoreResult, now,
};

const STOCK_COLUMNS: &str = "sku, on_hand, reserved, low_stock_threshold, low_alerted, updated_at, \
     (SELECT name FROM products WHERE products.sku = stock.sku) AS name";
const MOVEMENT_COLUMNS: &str = "id, sku, kind, on_hand_before, on_hand_after, reserved_before, \
     reserved_after, reason, actor, reference, at";
const RESERVATION_COLUMNS: &str = "id, sku, quantity, status, reference, expires_at, created_at";

/// A stock row with the low-stock alert flag that the wire type does not show.
struct StockRow {
    stock: Stock,
    low_alerted: bool,
}

fn stock_row(row: &Row<'_>) -> rusqlite::Result<StockRow> {
    let on_hand: i64 = row.get("on_hand")?;
    let reserved: i64 = row.get("reserved")?;
    Ok(StockRow {
        stock: Stock {
            sku: row.get("sku")?,
            name: row.get("name")?,
            on_hand,
            reserved,
            available: on_hand - reserved,
            low_stock_threshold: row.get("low_stock_threshold")?,
            updated_at: from_millis(row.get("updated_at")?)?,
        },
        low_alerted: row.get("low_alerted")?,
    })
}

fn movement_row(row: &Row<'_>) -> rusqlite::Result<Movement> {
    Ok(Movement {
        id: row.get::<_, i64>("id")? as u64,
        sku: row.get("sku")?,
        kind: parse_column(row, "kind")?,
        on_hand_before: row.get("on_hand_before")?,
        on_hand_after: row.get("on_hand_after")?,
        reserved_before: row.get("reserved_before")?,
        reserved_after: row.get("reserved_after")?,
        reason: row.get("reason")?,
        actor: row.get("actor")?,
        reference: row.get("reference")?,
        at: from_millis(row.get("at")?)?,
    })
}

fn reservation_row(row: &Row<'_>) -> rusqlite::Result<Reservation> {
    Ok(Reservation {
        id: parse_column(row, "id")?,
        sku: row.get("sku")?,
        quantity: row.get("quantity")?,
        status: parse_column(row, "status")?,
        expires_at: from_millis(row.get("expires_at")?)?,
        reference: row.get("reference")?,
        created_at: from_millis(row.get("created_at")?)?,
    })
}

fn read_stock(conn: &Connection, sku: &str) -> rusqlite::Result<Option<StockRow>> {
    conn.prepare_cached(&format!("SELECT {STOCK_COLUMNS} FROM stock WHERE sku = ?1"))?
        .query_row([sku], stock_row)
        .optional()
}

fn read_reservation(conn: &Connection, id: &str) -> rusqlite::Result<Option<Reservation>> {
    conn.prepare_cached(&format!(
        "SELECT {RESERVATION_COLUMNS} FROM reservations WHERE id = ?1"
    ))?
    .query_row([id], reservation_row)
    .optional()
}

/// Creates the stock row of a new product, with a ledger entry when it starts with stock.
pub(super) fn insert_stock(
    tx: &Transaction<'_>,
    sku: &str,
    initial: InitialStock,
    draft: MovementDraft,
    at: OffsetDateTime,
) -> StoreResult<()> {
    // A product that starts low has not crossed anything: no alert until it recovers and falls again.
    let low = rules::is_low(initial.on_hand, initial.low_stock_threshold);
    tx.prepare_cached(
        "INSERT INTO stock (sku, on_hand, reserved, low_stock_threshold, low_alerted, updated_at)
         VALUES (?1, ?2, 0, ?3, ?4, ?5)",
    )?
    .execute(params![
        sku,
        initial.on_hand,
        initial.low_stock_threshold,
        low,
        millis(at)
    ])?;
    if initial.on_hand > 0 {
        insert_movement(tx, sku, (0, initial.on_hand), (0, 0), draft, at)?;
    }
    Ok(())
}

fn insert_movement(
    tx: &Transaction<'_>,
    sku: &str,
    (on_hand_before, on_hand_after): (i64, i64),
    (reserved_before, reserved_after): (i64, i64),
    draft: MovementDraft,
    at: OffsetDateTime,
) -> StoreResult<Movement> {
    let id: i64 = tx
        .prepare_cached(
            "INSERT INTO stock_movements (sku, kind, on_hand_before, on_hand_after, reserved_before,
                 reserved_after, reason, actor, reference, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) RETURNING id",
        )?
        .query_row(
            params![
                sku,
                draft.kind.as_str(),
                on_hand_before,
                on_hand_after,
                reserved_before,
                reserved_after,
                draft.reason,
                draft.actor,
                draft.reference,
                millis(at)
            ],
            |row| row.get(0),
        )?;
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

/// Writes new counts for a SKU with their ledger entry, and tracks the
/// low-stock crossing: `became_low` is true only on the change that takes
/// stock on hand from above the threshold to at or below it.
///
/// The counts were decided from `before`, loaded in this transaction; the
/// write moves them by the difference and is guarded so that it never takes
/// available stock below zero, whatever another writer did in between (a
/// backend that does not serialize its writers finds out from the row count).
fn write_stock(
    tx: &Transaction<'_>,
    before: &StockRow,
    (on_hand, reserved, threshold): (i64, i64, i64),
    draft: MovementDraft,
    reservation: Option<Reservation>,
) -> StoreResult<StockEffect> {
    let at = now();
    let available = on_hand - reserved;
    let low = rules::is_low(on_hand, threshold);
    let changed = tx
        .prepare_cached(
            "UPDATE stock SET on_hand = on_hand + ?2, reserved = reserved + ?3,
                    low_stock_threshold = ?4, low_alerted = ?5, updated_at = ?6
             WHERE sku = ?1 AND reserved + ?3 >= 0 AND on_hand + ?2 >= reserved + ?3",
        )?
        .execute(params![
            before.stock.sku,
            on_hand - before.stock.on_hand,
            reserved - before.stock.reserved,
            threshold,
            low,
            millis(at)
        ])?;
    if changed != 1 {
        return Err(crate::store::StoreError::Backend(
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
    )?;
    Ok(StockEffect {
        stock: Stock {
            sku: before.stock.sku.clone(),
            name: before.stock.name.clone(),
            on_hand,
            reserved,
            available,
            low_stock_threshold: threshold,
            updated_at: at,
        },
        movement,
        reservation,
        became_low: rules::became_low(on_hand, threshold, before.low_alerted),
    })
}

/// Applies an import row's stock columns to an existing SKU: `Ok(None)` when
/// they change nothing, `Err(reason)` when they cannot apply.
pub(super) fn import_stock(
    tx: &Transaction<'_>,
    sku: &str,
    on_hand: ExistingStock,
    threshold: Option<i64>,
    draft: MovementDraft,
) -> StoreResult<Result<Option<StockEffect>, String>> {
    let Some(before) = read_stock(tx, sku)? else {
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
    write_stock(tx, &before, (on_hand, reserved, threshold), draft, None).map(|e| Ok(Some(e)))
}

/// What a new reservation holds stock for, and until when.
pub(super) struct Hold {
    pub expires_at: OffsetDateTime,
    pub reference: Option<String>,
    pub actor: Option<String>,
}

/// Checks that every item (summed per SKU) is available before anything is
/// written, so that a refusal leaves nothing behind.
pub(super) fn check_available(
    conn: &Connection,
    items: &[ReserveItem],
) -> StoreResult<Result<(), StockRefusal>> {
    let demands = rules::demand_per_sku(items);
    let mut levels = Vec::with_capacity(demands.len());
    for demand in &demands {
        levels.push(read_stock(conn, &demand.sku)?.map(|row| row.stock.available));
    }
    Ok(rules::check_available(demands.iter().zip(levels)))
}

/// The units of a SKU free to hold or sell; `None` when it has no stock record.
pub(super) fn available(conn: &Connection, sku: &str) -> StoreResult<Option<i64>> {
    Ok(read_stock(conn, sku)?.map(|row| row.stock.available))
}

/// Reserves one item whose availability [`check_available`] has confirmed in this transaction.
pub(super) fn reserve_checked(
    tx: &Transaction<'_>,
    item: &ReserveItem,
    hold: Hold,
) -> StoreResult<StockEffect> {
    let at = now();
    let reservation = Reservation {
        id: ReservationId::generate(),
        sku: item.sku.clone(),
        quantity: item.quantity,
        status: ReservationStatus::Active,
        expires_at: hold.expires_at,
        reference: hold.reference,
        created_at: at,
    };
    tx.prepare_cached(
        "INSERT INTO reservations (id, sku, quantity, status, reference, expires_at,
             created_at, updated_at)
         VALUES (?1, ?2, ?3, 'active', ?4, ?5, ?6, ?6)",
    )?
    .execute(params![
        reservation.id.as_str(),
        reservation.sku,
        reservation.quantity,
        reservation.reference,
        millis(reservation.expires_at),
        millis(at)
    ])?;
    let before = read_stock(tx, &reservation.sku)?.ok_or_else(|| {
        crate::store::StoreError::Backend("stock row vanished mid-transaction".into())
    })?;
    let counts = (
        before.stock.on_hand,
        before.stock.reserved + reservation.quantity,
        before.stock.low_stock_threshold,
    );
    let draft = MovementDraft {
        kind: MovementKind::Reserve,
        reason: reservation.reference.clone(),
        actor: hold.actor,
        reference: Some(reservation.id.to_string()),
    };
    write_stock(tx, &before, counts, draft, Some(reservation))
}

/// Reserves one item, or says why not (`Err` holds the refusal) without writing anything.
pub(super) fn reserve_one(
    tx: &Transaction<'_>,
    item: &ReserveItem,
    hold: Hold,
) -> StoreResult<Result<StockEffect, StockRefusal>> {
    match check_available(tx, std::slice::from_ref(item))? {
        Err(refusal) => Ok(Err(refusal)),
        Ok(()) => reserve_checked(tx, item, hold).map(Ok),
    }
}

/// An active reservation by id, read inside the writer's transaction.
pub(super) fn active_reservation(
    tx: &Transaction<'_>,
    id: &str,
) -> StoreResult<Option<Reservation>> {
    Ok(read_reservation(tx, id)?.filter(|r| r.status == ReservationStatus::Active))
}

/// Changes how much an active reservation holds (a cart line's new
/// quantity), or says how much is available when the stock cannot cover it.
pub(super) fn resize_reservation(
    tx: &Transaction<'_>,
    reservation: &Reservation,
    quantity: i64,
    actor: Option<String>,
) -> StoreResult<Result<StockEffect, StockRefusal>> {
    let before = read_stock(tx, &reservation.sku)?.ok_or_else(|| {
        crate::store::StoreError::Backend(
            format!("reservation {} has no stock row", reservation.id).into(),
        )
    })?;
    let delta = match rules::resize(
        &reservation.sku,
        reservation.quantity,
        quantity,
        before.stock.available,
    ) {
        Ok(delta) => delta,
        Err(refusal) => return Ok(Err(refusal)),
    };
    tx.prepare_cached("UPDATE reservations SET quantity = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![reservation.id.as_str(), quantity, millis(now())])?;
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
    write_stock(tx, &before, counts, draft, Some(resized)).map(Ok)
}

/// Moves every active reservation named to a new expiry and reference.
pub(super) fn extend_reservations(
    tx: &Transaction<'_>,
    ids: &[String],
    expires_at: OffsetDateTime,
    reference: &str,
) -> StoreResult<()> {
    let mut update = tx.prepare_cached(
        "UPDATE reservations SET expires_at = ?2, reference = ?3, updated_at = ?4
         WHERE id = ?1 AND status = 'active'",
    )?;
    let at = millis(now());
    for id in ids {
        update.execute(params![id, millis(expires_at), reference, at])?;
    }
    Ok(())
}

/// Puts sold units back on hand (a cancelled paid order), with a ledger entry.
pub(super) fn restock(
    tx: &Transaction<'_>,
    sku: &str,
    quantity: i64,
    reason: String,
    actor: Option<String>,
) -> StoreResult<Option<StockEffect>> {
    let Some(before) = read_stock(tx, sku)? else {
        return Ok(None);
    };
    let counts = (
        before.stock.on_hand + quantity,
        before.stock.reserved,
        before.stock.low_stock_threshold,
    );
    let draft = MovementDraft {
        kind: MovementKind::Adjust,
        reason: Some(reason),
        actor,
        reference: None,
    };
    write_stock(tx, &before, counts, draft, None).map(Some)
}

/// Sells units straight from available stock (an order paid after its hold
/// ran out), once [`check_available`] has confirmed them in this transaction.
pub(super) fn sell_unreserved(
    tx: &Transaction<'_>,
    sku: &str,
    quantity: i64,
    reason: String,
    actor: Option<String>,
) -> StoreResult<StockEffect> {
    let before = read_stock(tx, sku)?.ok_or_else(|| {
        crate::store::StoreError::Backend(format!("SKU {sku} has no stock row").into())
    })?;
    let counts = (
        before.stock.on_hand - quantity,
        before.stock.reserved,
        before.stock.low_stock_threshold,
    );
    let draft = MovementDraft {
        kind: MovementKind::Commit,
        reason: Some(reason),
        actor,
        reference: None,
    };
    write_stock(tx, &before, counts, draft, None)
}

/// Finishes an active reservation (commit, release or expire) by id inside
/// the writer's transaction; `None` when it is no longer active.
pub(super) fn finish_active(
    tx: &Transaction<'_>,
    id: &str,
    to: ReservationStatus,
    actor: Option<String>,
) -> StoreResult<Option<StockEffect>> {
    match active_reservation(tx, id)? {
        Some(reservation) => finish(tx, reservation, to, actor).map(Some),
        None => Ok(None),
    }
}

/// Moves an active reservation to its final state and its stock with it.
fn finish(
    tx: &Transaction<'_>,
    reservation: Reservation,
    to: ReservationStatus,
    actor: Option<String>,
) -> StoreResult<StockEffect> {
    let before = read_stock(tx, &reservation.sku)?.ok_or_else(|| {
        crate::store::StoreError::Backend(
            format!("reservation {} has no stock row", reservation.id).into(),
        )
    })?;
    let kind = match to {
        ReservationStatus::Committed => MovementKind::Commit,
        ReservationStatus::Expired => MovementKind::Expire,
        ReservationStatus::Released | ReservationStatus::Active => MovementKind::Release,
    };
    let at = now();
    tx.prepare_cached("UPDATE reservations SET status = ?2, updated_at = ?3 WHERE id = ?1")?
        .execute(params![reservation.id.as_str(), to.as_str(), millis(at)])?;
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
    write_stock(tx, &before, counts, draft, Some(finished))
}

#[async_trait]
impl InventoryStore for SqliteStore {
    async fn stock(&self, sku: &str) -> StoreResult<Option<Stock>> {
        let sku = sku.to_owned();
        self.read(move |conn| Ok(read_stock(conn, &sku)?.map(|row| row.stock)))
            .await
    }

    async fn list_stock(&self, query: &StockQuery) -> StoreResult<(Vec<Stock>, u64)> {
        let query = query.clone();
        self.read(move |conn| {
            let mut filter = Filter::default();
            if query.low_only {
                filter.add("on_hand - reserved <= low_stock_threshold", []);
            }
            filter.contains(&["sku"], query.text.as_deref());
            let total = filter.count(conn, "FROM stock")?;
            let order = if query.by_sku {
                "sku"
            } else {
                "on_hand - reserved, sku"
            };
            let select = format!("SELECT {STOCK_COLUMNS} FROM stock");
            let page = (query.limit, query.offset);
            let items = filter.page(conn, &select, order, page, |row| {
                stock_row(row).map(|r| r.stock)
            })?;
            Ok((items, total))
        })
        .await
    }

    async fn change_stock(
        &self,
        change: StockChange,
        events: StockEvents,
    ) -> StoreResult<StockWrite> {
        self.write(move |tx| {
            let Some(before) = read_stock(tx, &change.sku)? else {
                return Ok(StockWrite::NotFound);
            };
            let kind = match change.operation {
                StockOperation::Set(_) => MovementKind::Set,
                StockOperation::Adjust(_) => MovementKind::Adjust,
            };
            let reserved = before.stock.reserved;
            let Some(on_hand) =
                rules::on_hand_after(change.operation, before.stock.on_hand, reserved)
            else {
                return Ok(StockWrite::Insufficient {
                    on_hand: before.stock.on_hand,
                    reserved,
                });
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
            let effect = write_stock(tx, &before, (on_hand, reserved, threshold), draft, None)?;
            audit::record(
                tx,
                [AuditChange::diff(
                    action,
                    "stock",
                    effect.stock.sku.as_str(),
                    audited_stock(&before.stock),
                    audited_stock(&effect.stock),
                )],
            )?;
            append(tx, events(&effect))?;
            Ok(StockWrite::Changed(Box::new(effect.stock)))
        })
        .await
    }

    async fn movements(
        &self,
        sku: &str,
        limit: u32,
        offset: u64,
    ) -> StoreResult<(Vec<Movement>, u64)> {
        let sku = sku.to_owned();
        self.read(move |conn| {
            let total: i64 = conn
                .prepare_cached("SELECT count(*) FROM stock_movements WHERE sku = ?1")?
                .query_row([&sku], |row| row.get(0))?;
            let items = conn
                .prepare_cached(&format!(
                    "SELECT {MOVEMENT_COLUMNS} FROM stock_movements WHERE sku = ?1
                     ORDER BY id DESC LIMIT ?2 OFFSET ?3"
                ))?
                .query_map(params![sku, limit, offset as i64], movement_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((items, total as u64))
        })
        .await
    }

    async fn reserve(
        &self,
        items: Vec<ReserveItem>,
        expires_at: OffsetDateTime,
        reference: Option<String>,
        actor: Option<String>,
        events: StockEvents,
    ) -> StoreResult<ReserveOutcome> {
        self.write(move |tx| {
            if let Err(refusal) = check_available(tx, &items)? {
                return Ok(refusal.into());
            }
            let mut reservations = Vec::with_capacity(items.len());
            let mut pending = Vec::new();
            for item in items {
                let hold = Hold {
                    expires_at,
                    reference: reference.clone(),
                    actor: actor.clone(),
                };
                let effect = reserve_checked(tx, &item, hold)?;
                pending.extend(events(&effect));
                reservations.push(
                    effect
                        .reservation
                        .expect("a reservation's effect carries it"),
                );
            }
            append(tx, pending)?;
            Ok(ReserveOutcome::Reserved(reservations))
        })
        .await
    }

    async fn finish_reservation(
        &self,
        id: &ReservationId,
        to: ReservationStatus,
        actor: Option<String>,
        events: StockEvents,
    ) -> StoreResult<ReservationWrite> {
        let id = id.clone();
        self.write(move |tx| {
            let Some(reservation) = read_reservation(tx, id.as_str())? else {
                return Ok(ReservationWrite::NotFound);
            };
            if reservation.status != ReservationStatus::Active {
                return Ok(ReservationWrite::NotActive(reservation.status));
            }
            // Past its expiry but not yet swept: it is expired, whatever was asked.
            if reservation.expires_at <= now() {
                let effect = finish(tx, reservation, ReservationStatus::Expired, None)?;
                append(tx, events(&effect))?;
                return Ok(ReservationWrite::NotActive(ReservationStatus::Expired));
            }
            let effect = finish(tx, reservation, to, actor)?;
            append(tx, events(&effect))?;
            let reservation = effect
                .reservation
                .expect("finish always returns the reservation it finished");
            Ok(ReservationWrite::Done(Box::new(reservation)))
        })
        .await
    }

    async fn expire_reservations(
        &self,
        now: OffsetDateTime,
        limit: u32,
        events: StockEvents,
    ) -> StoreResult<u64> {
        self.write(move |tx| {
            let due = tx
                .prepare_cached(&format!(
                    "SELECT {RESERVATION_COLUMNS} FROM reservations
                     WHERE status = 'active' AND expires_at <= ?1 ORDER BY expires_at LIMIT ?2"
                ))?
                .query_map(params![millis(now), limit], reservation_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let count = due.len() as u64;
            let mut pending = Vec::new();
            let mut expired = Vec::with_capacity(due.len());
            for reservation in due {
                expired.push(AuditChange::diff(
                    "reservation.expired",
                    "reservation",
                    reservation.id.as_str(),
                    serde_json::json!({"status": reservation.status, "sku": reservation.sku, "quantity": reservation.quantity}),
                    serde_json::json!({"status": ReservationStatus::Expired, "sku": reservation.sku, "quantity": reservation.quantity}),
                ));
                let effect = finish(tx, reservation, ReservationStatus::Expired, None)?;
                pending.extend(events(&effect));
            }
            audit::record(tx, expired)?;
            append(tx, pending)?;
            Ok(count)
        })
        .await
    }

    async fn reservation(&self, id: &ReservationId) -> StoreResult<Option<Reservation>> {
        let id = id.clone();
        self.read(move |conn| read_reservation(conn, id.as_str()))
            .await
    }

    async fn reservations(&self, query: &ReservationQuery) -> StoreResult<(Vec<Reservation>, u64)> {
        let query = query.clone();
        self.read(move |conn| {
            let mut filter = Filter::default();
            filter.add_some("sku = ?", query.sku.clone());
            filter.add_some("status = ?", query.status.map(|s| s.as_str().to_owned()));
            filter.add_some("reference = ?", query.reference.clone());
            let total = filter.count(conn, "FROM reservations")?;
            let select = format!("SELECT {RESERVATION_COLUMNS} FROM reservations");
            let page = (query.limit, query.offset);
            let items = filter.page(conn, &select, "id DESC", page, reservation_row)?;
            Ok((items, total))
        })
        .await
    }

    async fn reconcile(
        &self,
        fix: bool,
        actor: Option<String>,
        events: StockEvents,
    ) -> StoreResult<ReconcileReport> {
        self.write(move |tx| {
            let skus_checked: i64 =
                tx.query_row("SELECT count(*) FROM stock", [], |row| row.get(0))?;
            let reservations_checked: i64 = tx.query_row(
                "SELECT count(*) FROM reservations WHERE status = 'active'",
                [],
                |row| row.get(0),
            )?;
            let mut drift = Vec::new();
            let reserved_drift = tx
                .prepare(
                    "SELECT s.sku, s.reserved,
                            (SELECT coalesce(sum(quantity), 0) FROM reservations r
                             WHERE r.sku = s.sku AND r.status = 'active') AS held
                     FROM stock s WHERE s.reserved != held ORDER BY s.sku",
                )?
                .query_map([], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, i64>(2)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            let mut pending = Vec::new();
            for (sku, found, expected) in reserved_drift {
                let mut fixed = false;
                if fix
                    && let Some(before) = read_stock(tx, &sku)?
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
                    let effect = write_stock(tx, &before, counts, draft, None)?;
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
            let ledger_drift = tx
                .prepare(
                    "SELECT s.sku, s.on_hand,
                            coalesce((SELECT m.on_hand_after FROM stock_movements m
                                      WHERE m.sku = s.sku ORDER BY m.id DESC LIMIT 1), 0) AS ledger
                     FROM stock s WHERE s.on_hand != ledger ORDER BY s.sku",
                )?
                .query_map([], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, i64>(1)?,
                        row.get::<_, i64>(2)?,
                    ))
                })?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            for (sku, found, expected) in ledger_drift {
                // A reserved fix above already wrote a ledger entry ending at the current count.
                let already = drift.iter().any(|d| d.sku == sku && d.fixed);
                let mut fixed = already;
                if fix && !already {
                    // The count on hand is the truth (it is what was sold against);
                    // the ledger gains the entry that explains it.
                    let at = now();
                    let draft = MovementDraft {
                        kind: MovementKind::Reconcile,
                        reason: Some("on hand changed outside the ledger".to_owned()),
                        actor: actor.clone(),
                        reference: None,
                    };
                    let before = read_stock(tx, &sku)?;
                    if let Some(before) = before {
                        let reserved = before.stock.reserved;
                        let movement = insert_movement(
                            tx,
                            &sku,
                            (expected, found),
                            (reserved, reserved),
                            draft,
                            at,
                        )?;
                        pending.extend(events(&StockEffect {
                            stock: before.stock,
                            movement,
                            reservation: None,
                            became_low: false,
                        }));
                        fixed = true;
                    }
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
            append(tx, pending)?;
            Ok(report)
        })
        .await
    }
}
