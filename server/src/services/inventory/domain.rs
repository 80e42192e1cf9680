//! The inventory's rules: what a stock change or reservation may be, and the
//! events each one emits. The invariants themselves (available never below
//! 0, reserved equal to the active reservations) are kept by the store,
//! which checks and writes in one transaction.

use serde_json::json;
use shop_wire::Page;
use shop_wire::events::{EventData, StockEvent};
use shop_wire::inventory::{
    Movement, MovementKind, ReconcileReport, Reservation, ReservationId, ReservationStatus,
    ReserveRequest, Stock,
};

use crate::auth::AuthUser;
use crate::services::actor;
use crate::services::error::{DomainError, DomainResult};
use crate::services::products::domain::MAX_STOCK;
use crate::state::AppState;
use crate::store::{
    NewEvent, ReservationQuery, ReservationWrite, ReserveItem, ReserveOutcome, StockChange,
    StockEffect, StockOperation, StockQuery, StockWrite, now,
};

const MAX_REASON: usize = 500;
const MAX_REFERENCE: usize = 200;

/// The events of one committed stock change: what happened, and
/// `inventory.low_stock` when it took the SKU to its threshold.
pub fn stock_events(effect: &StockEffect) -> Vec<NewEvent> {
    let kind = match effect.movement.kind {
        MovementKind::Set | MovementKind::Adjust => EventData::InventoryAdjusted,
        MovementKind::Reserve => EventData::InventoryReserved,
        MovementKind::Release => EventData::InventoryReleased,
        MovementKind::Commit => EventData::InventoryCommitted,
        MovementKind::Expire => EventData::InventoryExpired,
        MovementKind::Reconcile => EventData::InventoryReconciled,
    };
    let change = StockEvent::new(&effect.stock, &effect.movement, effect.reservation.as_ref());
    let mut events = vec![NewEvent::now(kind(change))];
    if effect.became_low {
        events.push(NewEvent::now(EventData::InventoryLowStock(
            (&effect.stock).into(),
        )));
    }
    events
}

fn not_found(sku: &str) -> DomainError {
    DomainError::not_found(format!("stock for SKU {sku}"))
}

fn check_reason(reason: &str) -> DomainResult<String> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(DomainError::validation(
            "reason",
            "say why the stock changes, e.g. \"delivery from supplier\" or \"stocktake\"",
        ));
    }
    if reason.chars().count() > MAX_REASON || reason.chars().any(char::is_control) {
        return Err(DomainError::validation(
            "reason",
            format!("must be at most {MAX_REASON} characters, without control characters"),
        ));
    }
    Ok(reason.to_owned())
}

fn check_count(field: &str, value: i64) -> DomainResult<()> {
    if (0..=MAX_STOCK).contains(&value) {
        Ok(())
    } else {
        Err(DomainError::validation(
            field,
            format!("must be between 0 and {MAX_STOCK}"),
        ))
    }
}

pub async fn stock(state: &AppState, sku: &str) -> DomainResult<Stock> {
    state.store.stock(sku).await?.ok_or_else(|| not_found(sku))
}

pub async fn list(state: &AppState, query: StockQuery) -> DomainResult<Page<Stock>> {
    let (items, total) = state.store.list_stock(&query).await?;
    Ok(Page {
        items,
        total,
        limit: query.limit,
        offset: query.offset,
    })
}

pub async fn movements(
    state: &AppState,
    sku: &str,
    limit: u32,
    offset: u64,
) -> DomainResult<Page<Movement>> {
    stock(state, sku).await?;
    let (items, total) = state.store.movements(sku, limit, offset).await?;
    Ok(Page {
        items,
        total,
        limit,
        offset,
    })
}

/// Sets (a stocktake) or adjusts the count on hand, refusing any change that
/// would leave it below 0 or below what is reserved.
pub async fn change(
    state: &AppState,
    caller: &AuthUser,
    sku: &str,
    operation: StockOperation,
    reason: &str,
    low_stock_threshold: Option<i64>,
) -> DomainResult<Stock> {
    let reason = check_reason(reason)?;
    match operation {
        StockOperation::Set(on_hand) => check_count("on_hand", on_hand)?,
        StockOperation::Adjust(0) => {
            return Err(DomainError::validation("delta", "must not be 0"));
        }
        StockOperation::Adjust(delta) => {
            if delta.unsigned_abs() > MAX_STOCK as u64 {
                return Err(DomainError::validation(
                    "delta",
                    format!("must be between -{MAX_STOCK} and {MAX_STOCK}"),
                ));
            }
        }
    }
    if let Some(threshold) = low_stock_threshold {
        check_count("low_stock_threshold", threshold)?;
    }
    let change = StockChange {
        sku: sku.to_owned(),
        operation: operation.clone(),
        low_stock_threshold,
        reason,
        actor: actor(state, caller).await?,
    };
    match state.store.change_stock(change, stock_events).await? {
        StockWrite::Changed(stock) => Ok(*stock),
        StockWrite::NotFound => Err(not_found(sku)),
        StockWrite::Insufficient { on_hand, reserved } => {
            let wanted = match operation {
                StockOperation::Set(n) => n,
                StockOperation::Adjust(delta) => on_hand.saturating_add(delta),
            };
            let message = if wanted < 0 {
                format!("{sku} has {on_hand} on hand; this change would take it to {wanted}")
            } else {
                format!("{sku} has {reserved} reserved; on hand cannot go to {wanted}, below that")
            };
            Err(DomainError::Conflict {
                code: "insufficient_stock",
                message,
                details: json!({ "sku": sku, "on_hand": on_hand, "reserved": reserved, "available": on_hand - reserved }),
            })
        }
    }
}

/// Holds stock for a cart or an order until it is committed, released or expires.
pub async fn reserve(
    state: &AppState,
    caller: &AuthUser,
    sku: &str,
    request: ReserveRequest,
) -> DomainResult<Reservation> {
    let items = vec![ReserveItem {
        sku: sku.to_owned(),
        quantity: request.quantity,
    }];
    let mut reserved = reserve_items(
        state,
        Some(caller),
        items,
        request.ttl_seconds,
        request.reference,
    )
    .await?;
    reserved.pop().ok_or_else(|| {
        DomainError::internal(anyhow::anyhow!("a reservation of one item made none"))
    })
}

/// Holds stock for every item or for none: the entry point for carts and orders.
pub async fn reserve_items(
    state: &AppState,
    caller: Option<&AuthUser>,
    items: Vec<ReserveItem>,
    ttl_seconds: Option<u64>,
    reference: Option<String>,
) -> DomainResult<Vec<Reservation>> {
    let settings = &state.config.inventory;
    let ttl = ttl_seconds.unwrap_or(settings.reservation_ttl_seconds);
    if ttl == 0 || ttl > settings.max_reservation_ttl_seconds {
        return Err(DomainError::validation(
            "ttl_seconds",
            format!(
                "must be between 1 and {}",
                settings.max_reservation_ttl_seconds
            ),
        ));
    }
    if items.is_empty() {
        return Err(DomainError::validation(
            "items",
            "reserve at least one item",
        ));
    }
    for item in &items {
        if !(1..=MAX_STOCK).contains(&item.quantity) {
            return Err(DomainError::validation(
                "quantity",
                format!("must be between 1 and {MAX_STOCK}"),
            ));
        }
    }
    if let Some(reference) = &reference
        && (reference.trim().is_empty() || reference.chars().count() > MAX_REFERENCE)
    {
        return Err(DomainError::validation(
            "reference",
            format!("must be 1-{MAX_REFERENCE} characters"),
        ));
    }
    let actor = match caller {
        Some(caller) => actor(state, caller).await?,
        None => None,
    };
    let expires_at = now() + time::Duration::seconds(ttl as i64);
    match state
        .store
        .reserve(items, expires_at, reference, actor, stock_events)
        .await?
    {
        ReserveOutcome::Reserved(reservations) => Ok(reservations),
        ReserveOutcome::UnknownSku(sku) => Err(not_found(&sku)),
        ReserveOutcome::Insufficient {
            sku,
            available,
            requested,
        } => Err(DomainError::Conflict {
            code: "insufficient_stock",
            message: format!("{sku} has {available} available; {requested} requested"),
            details: json!({ "sku": sku, "available": available, "requested": requested }),
        }),
    }
}

/// Releases (stock available again) or commits (sold) an active reservation.
pub async fn finish(
    state: &AppState,
    caller: Option<&AuthUser>,
    id: &ReservationId,
    to: ReservationStatus,
) -> DomainResult<Reservation> {
    let actor = match caller {
        Some(caller) => actor(state, caller).await?,
        None => None,
    };
    match state
        .store
        .finish_reservation(id, to, actor, stock_events)
        .await?
    {
        ReservationWrite::Done(reservation) => Ok(*reservation),
        ReservationWrite::NotFound => Err(DomainError::not_found(format!("reservation {id}"))),
        ReservationWrite::NotActive(status) => Err(DomainError::Conflict {
            code: "reservation_not_active",
            message: format!("reservation {id} is {status}; only an active one can be {to}"),
            details: json!({ "status": status }),
        }),
    }
}

pub async fn reservation(state: &AppState, id: &ReservationId) -> DomainResult<Reservation> {
    state
        .store
        .reservation(id)
        .await?
        .ok_or_else(|| DomainError::not_found(format!("reservation {id}")))
}

pub async fn reservations(
    state: &AppState,
    query: ReservationQuery,
) -> DomainResult<Page<Reservation>> {
    let (items, total) = state.store.reservations(&query).await?;
    Ok(Page {
        items,
        total,
        limit: query.limit,
        offset: query.offset,
    })
}

pub async fn reconcile(
    state: &AppState,
    caller: &AuthUser,
    fix: bool,
) -> DomainResult<ReconcileReport> {
    let actor = actor(state, caller).await?;
    let report = state.store.reconcile(fix, actor, stock_events).await?;
    if !report.consistent {
        tracing::warn!(
            drift = report.drift.len(),
            fixed = fix,
            "inventory reconcile found drift"
        );
    }
    Ok(report)
}

/// Expires due reservations, a batch at a time, until none is left.
pub async fn sweep(state: &AppState) -> anyhow::Result<u64> {
    const BATCH: u32 = 500;
    let mut expired = 0;
    loop {
        let count = state
            .store
            .expire_reservations(now(), BATCH, stock_events)
            .await?;
        expired += count;
        if count < u64::from(BATCH) {
            return Ok(expired);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shop_wire::events::EventKind;
    use shop_wire::inventory::Movement;

    fn effect(kind: MovementKind, became_low: bool) -> StockEffect {
        let at = now();
        StockEffect {
            stock: Stock {
                sku: "MUG-1".to_owned(),
                name: None,
                on_hand: 8,
                reserved: 5,
                available: 3,
                low_stock_threshold: 3,
                updated_at: at,
            },
            movement: Movement {
                id: 1,
                sku: "MUG-1".to_owned(),
                kind,
                on_hand_before: 10,
                on_hand_after: 8,
                reserved_before: 5,
                reserved_after: 5,
                reason: Some("breakage".to_owned()),
                actor: Some("clerk@example.com".to_owned()),
                reference: None,
                at,
            },
            reservation: None,
            became_low,
        }
    }

    #[test]
    fn a_change_names_its_kind_and_a_crossing_adds_one_low_stock_event() {
        let events = stock_events(&effect(MovementKind::Adjust, true));
        let kinds: Vec<&str> = events.iter().map(|e| e.data.kind().as_str()).collect();
        assert_eq!(kinds, ["inventory.adjusted", "inventory.low_stock"]);
        assert_eq!(events[0].data.to_value()["delta"], -2);
        assert_eq!(events[1].data.to_value()["threshold"], 3);
        let events = stock_events(&effect(MovementKind::Commit, false));
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].data.kind(), EventKind::InventoryCommitted);
    }

    #[test]
    fn reasons_are_required_and_bounded() {
        assert!(check_reason("  ").is_err());
        assert!(check_reason(&"x".repeat(501)).is_err());
        assert_eq!(
            check_reason(" stocktake ").ok().as_deref(),
            Some("stocktake")
        );
    }
}
