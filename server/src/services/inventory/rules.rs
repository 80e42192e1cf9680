//! Stock availability as plain functions over plain data.
//!
//! A store loads (and, on a networked database, locks) the stock rows a step
//! needs, asks these functions whether the step may go ahead, and then writes
//! with guarded statements (`... WHERE on_hand - reserved >= ?`), so the same
//! rules hold on every backend and their tests need no database.

use shop_wire::inventory::ReservationStatus;

use crate::store::{ReserveItem, ReserveOutcome, StockOperation};

/// Why stock cannot be held or taken.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StockRefusal {
    UnknownSku(String),
    Insufficient {
        sku: String,
        available: i64,
        requested: i64,
    },
}

impl From<StockRefusal> for ReserveOutcome {
    fn from(refusal: StockRefusal) -> Self {
        match refusal {
            StockRefusal::UnknownSku(sku) => ReserveOutcome::UnknownSku(sku),
            StockRefusal::Insufficient {
                sku,
                available,
                requested,
            } => ReserveOutcome::Insufficient {
                sku,
                available,
                requested,
            },
        }
    }
}

/// Sums repeated SKUs into one demand each, in first-seen order: two lines
/// of one SKU must fit the stock together, not each on its own.
pub fn demand_per_sku(items: &[ReserveItem]) -> Vec<ReserveItem> {
    let mut merged: Vec<ReserveItem> = Vec::with_capacity(items.len());
    for item in items {
        match merged.iter_mut().find(|m| m.sku == item.sku) {
            Some(existing) => existing.quantity += item.quantity,
            None => merged.push(item.clone()),
        }
    }
    merged
}

/// Checks demands (one per SKU, see [`demand_per_sku`]) against the units
/// available of each, `None` for a SKU without stock: the first that does
/// not fit is the refusal.
pub fn check_available<'a>(
    demands: impl IntoIterator<Item = (&'a ReserveItem, Option<i64>)>,
) -> Result<(), StockRefusal> {
    for (demand, available) in demands {
        let Some(available) = available else {
            return Err(StockRefusal::UnknownSku(demand.sku.clone()));
        };
        if demand.quantity > available {
            return Err(StockRefusal::Insufficient {
                sku: demand.sku.clone(),
                available,
                requested: demand.quantity,
            });
        }
    }
    Ok(())
}

/// How much more (or, negative, less) a hold of `held` units takes to become
/// `quantity`, when `available` units are free besides it.
pub fn resize(sku: &str, held: i64, quantity: i64, available: i64) -> Result<i64, StockRefusal> {
    let delta = quantity - held;
    if delta > available {
        return Err(StockRefusal::Insufficient {
            sku: sku.to_owned(),
            available: available + held,
            requested: quantity,
        });
    }
    Ok(delta)
}

/// The count on hand after a stocktake or an adjustment, which never falls
/// below what is reserved; `None` when it would (or would overflow).
pub fn on_hand_after(operation: StockOperation, on_hand: i64, reserved: i64) -> Option<i64> {
    let after = match operation {
        StockOperation::Set(count) => Some(count),
        StockOperation::Adjust(delta) => on_hand.checked_add(delta),
    };
    after.filter(|count| *count >= reserved)
}

/// How a reservation that ends moves stock: `(on_hand, reserved)` deltas.
/// A committed hold is sold (it leaves on hand too); any other end returns it.
pub fn finish_deltas(to: ReservationStatus, quantity: i64) -> (i64, i64) {
    match to {
        ReservationStatus::Committed => (-quantity, -quantity),
        ReservationStatus::Released | ReservationStatus::Expired | ReservationStatus::Active => {
            (0, -quantity)
        }
    }
}

/// Whether stock is low: at or below the threshold.
pub fn is_low(count: i64, threshold: i64) -> bool {
    count <= threshold
}

/// A low-stock alert fires once, on the change that takes stock *on hand*
/// from above its threshold to at or below it (`alerted` remembers the last
/// crossing). Holds do not count: a cart or an unpaid order that takes the
/// whole stock and gives it back is not a reason to reorder, and anyone can
/// make one; a sale, a write-off or a stocktake is.
pub fn became_low(on_hand: i64, threshold: i64, alerted: bool) -> bool {
    is_low(on_hand, threshold) && !alerted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(sku: &str, quantity: i64) -> ReserveItem {
        ReserveItem {
            sku: sku.to_owned(),
            quantity,
        }
    }

    #[test]
    fn repeated_skus_are_one_demand_in_first_seen_order() {
        let demands = demand_per_sku(&[item("B", 1), item("A", 2), item("B", 3)]);
        let summed: Vec<(&str, i64)> = demands
            .iter()
            .map(|d| (d.sku.as_str(), d.quantity))
            .collect();
        assert_eq!(summed, [("B", 4), ("A", 2)]);
    }

    #[test]
    fn availability_refuses_the_first_line_that_does_not_fit() {
        let (a, b) = (item("A", 3), item("B", 5));
        assert_eq!(check_available([(&a, Some(3)), (&b, Some(5))]), Ok(()));
        assert_eq!(
            check_available([(&a, Some(3)), (&b, Some(4))]),
            Err(StockRefusal::Insufficient {
                sku: "B".to_owned(),
                available: 4,
                requested: 5
            })
        );
        assert_eq!(
            check_available([(&a, None), (&b, Some(0))]),
            Err(StockRefusal::UnknownSku("A".to_owned()))
        );
    }

    #[test]
    fn a_hold_grows_only_into_free_stock_and_reports_what_it_could_have() {
        assert_eq!(resize("A", 2, 5, 3), Ok(3));
        assert_eq!(resize("A", 5, 1, 0), Ok(-4));
        assert_eq!(
            resize("A", 2, 6, 3),
            Err(StockRefusal::Insufficient {
                sku: "A".to_owned(),
                available: 5,
                requested: 6
            })
        );
    }

    #[test]
    fn stock_on_hand_never_falls_below_what_is_reserved() {
        assert_eq!(on_hand_after(StockOperation::Set(7), 10, 7), Some(7));
        assert_eq!(on_hand_after(StockOperation::Set(6), 10, 7), None);
        assert_eq!(on_hand_after(StockOperation::Adjust(-3), 10, 7), Some(7));
        assert_eq!(on_hand_after(StockOperation::Adjust(-4), 10, 7), None);
        assert_eq!(on_hand_after(StockOperation::Adjust(i64::MAX), 10, 0), None);
    }

    #[test]
    fn only_a_committed_hold_leaves_on_hand() {
        assert_eq!(finish_deltas(ReservationStatus::Committed, 3), (-3, -3));
        assert_eq!(finish_deltas(ReservationStatus::Released, 3), (0, -3));
        assert_eq!(finish_deltas(ReservationStatus::Expired, 3), (0, -3));
    }

    #[test]
    fn the_low_stock_alert_fires_once_per_crossing() {
        assert!(became_low(5, 5, false));
        assert!(!became_low(5, 5, true));
        assert!(!became_low(6, 5, false));
    }
}
