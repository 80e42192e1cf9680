//! The rules of returns as plain functions over plain data: which shipped
//! units a return may take, until when, its state machine, and what its
//! refund gives back.
//!
//! A line's returned units never pass its shipped units, across every
//! return of the order that was not rejected: the store grows a line's
//! `returned` with a guarded statement, so returns that race cannot both
//! take the last shipped unit.

use shop_wire::returns::{NewReturnItem, ReturnStatus};
use time::{Duration, OffsetDateTime};

/// An order line as far as returns care.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReturnableLine {
    pub position: i64,
    pub sku: String,
    pub shipped: i64,
    /// Units of it in returns that were not rejected.
    pub returned: i64,
    pub unit_price_cents: i64,
}

impl ReturnableLine {
    fn left(&self) -> i64 {
        self.shipped - self.returned
    }
}

/// One line of a return, decided: units of the order line at `position`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedLine {
    pub position: i64,
    pub sku: String,
    pub quantity: i64,
    pub reason: String,
    pub unit_price_cents: i64,
}

/// Why a return cannot be opened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ReturnRefusal {
    /// Nothing of the order has shipped: it is cancelled or refunded instead.
    NothingShipped,
    NotInOrder {
        sku: String,
    },
    /// More of a SKU than shipped and is not in another return.
    Exceeds {
        sku: String,
        asked: i64,
        left: i64,
    },
    /// The return window closed at `closed_at`.
    WindowClosed {
        closed_at: OffsetDateTime,
    },
}

/// When the return window of an order closes: `days` after its delivery,
/// or after its last shipment if it was not delivered (`None`: nothing shipped).
pub fn window_closes(
    last_shipped: Option<OffsetDateTime>,
    delivered: Option<OffsetDateTime>,
    days: u32,
) -> Option<OffsetDateTime> {
    delivered
        .or(last_shipped)
        .map(|from| from + Duration::days(i64::from(days)))
}

/// Decides a return of `asked` (a SKU given twice counts once, with both
/// quantities, under its first reason) of an order whose lines are `lines`,
/// at `now`, when its window closes at `closes`.
pub fn decide_return(
    lines: &[ReturnableLine],
    asked: &[NewReturnItem],
    closes: Option<OffsetDateTime>,
    now: OffsetDateTime,
) -> Result<Vec<PlannedLine>, ReturnRefusal> {
    let Some(closes) = closes else {
        return Err(ReturnRefusal::NothingShipped);
    };
    if now > closes {
        return Err(ReturnRefusal::WindowClosed { closed_at: closes });
    }
    let mut wanted: Vec<(&str, i64, &str)> = Vec::new();
    for item in asked {
        match wanted.iter_mut().find(|(sku, _, _)| *sku == item.sku) {
            Some((_, quantity, _)) => *quantity += item.quantity,
            None => wanted.push((&item.sku, item.quantity, &item.reason)),
        }
    }
    let mut plan = Vec::new();
    for (sku, mut quantity, reason) in wanted {
        let of_sku: Vec<&ReturnableLine> = lines.iter().filter(|l| l.sku == sku).collect();
        if of_sku.is_empty() {
            return Err(ReturnRefusal::NotInOrder {
                sku: sku.to_owned(),
            });
        }
        let left: i64 = of_sku.iter().map(|l| l.left()).sum();
        if quantity > left {
            return Err(ReturnRefusal::Exceeds {
                sku: sku.to_owned(),
                asked: quantity,
                left,
            });
        }
        for line in of_sku {
            let take = quantity.min(line.left());
            if take > 0 {
                plan.push(PlannedLine {
                    position: line.position,
                    sku: line.sku.clone(),
                    quantity: take,
                    reason: reason.to_owned(),
                    unit_price_cents: line.unit_price_cents,
                });
                quantity -= take;
            }
        }
    }
    plan.sort_by_key(|line| line.position);
    Ok(plan)
}

/// The money of the order a return is from, as it was charged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OrderMoney {
    /// The goods at the prices ordered; `None` for orders placed before
    /// checkout priced discounts, shipping and tax.
    pub subtotal_cents: Option<i64>,
    pub discount_cents: i64,
    pub shipping_cents: i64,
    pub total_cents: i64,
}

impl OrderMoney {
    /// The money of an order as the API shows it.
    pub fn of(order: &shop_wire::orders::Order) -> Self {
        OrderMoney {
            subtotal_cents: Some(order.pricing.subtotal_cents).filter(|cents| *cents > 0),
            discount_cents: order.pricing.discount_cents,
            shipping_cents: order.pricing.shipping_cents,
            total_cents: order.total_cents,
        }
    }
}

/// `amount × part / whole`, rounded half up, in integers (no float cents).
fn share(amount: i64, part: i64, whole: i64) -> i64 {
    if whole <= 0 {
        return 0;
    }
    let scaled = i128::from(amount) * i128::from(part);
    let whole = i128::from(whole);
    i64::try_from((2 * scaled + whole) / (2 * whole)).unwrap_or(amount)
}

/// What the refund of a return gives back: its units at the prices they
/// were ordered at, less their share of the order's discounts, plus their
/// share of tax that was added on top of the prices (none where prices
/// include tax: the price already holds it). Shares are by value. Tax is
/// shared over the goods and the shipping, as both may be taxed; where
/// shipping was not, a return gets back slightly less than the tax its
/// goods bore, never more than was paid for them.
pub fn refund_cents(lines: &[PlannedLine], order: OrderMoney) -> i64 {
    let value: i64 = lines
        .iter()
        .map(|line| line.quantity * line.unit_price_cents)
        .sum();
    let Some(subtotal) = order.subtotal_cents.filter(|subtotal| *subtotal > 0) else {
        return value;
    };
    let goods = value - share(order.discount_cents, value, subtotal);
    let charged_before_tax = subtotal - order.discount_cents + order.shipping_cents;
    let added_tax = order.total_cents - charged_before_tax;
    let tax = if added_tax > 0 {
        share(added_tax, goods, charged_before_tax)
    } else {
        0
    };
    goods + tax
}

/// What giving back an order's shipping refunds: the shipping and its
/// share of tax added on top (as [`refund_cents`] shares it).
pub fn shipping_refund_cents(order: OrderMoney) -> i64 {
    let Some(subtotal) = order.subtotal_cents.filter(|subtotal| *subtotal > 0) else {
        return order.shipping_cents;
    };
    let charged_before_tax = subtotal - order.discount_cents + order.shipping_cents;
    let added_tax = (order.total_cents - charged_before_tax).max(0);
    order.shipping_cents + share(added_tax, order.shipping_cents, charged_before_tax)
}

/// How long a claimed refund may go unrecorded at the payment before the
/// claim is taken for one a crash left behind: far beyond the moment
/// between claiming and recording it, which is one request.
pub const CLAIM_ABANDONED_AFTER: Duration = Duration::minutes(2);

/// Where the refund a return claimed stands, from the payment's record of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClaimedRefund {
    /// It went through: the return is refunded.
    Done,
    /// With the provider, or being recorded by the request that claimed it.
    UnderWay,
    /// It failed, or a crash left the claim with no refund behind it: the
    /// claim is released and the refund may be made again.
    Abandoned,
}

/// What became of the refund a return claimed at `claimed_at`: `recorded`
/// is the payment's refund of that id, if it has one.
pub fn claimed_refund(
    recorded: Option<shop_wire::payments::RefundStatus>,
    claimed_at: OffsetDateTime,
    now: OffsetDateTime,
) -> ClaimedRefund {
    use shop_wire::payments::RefundStatus;
    match recorded {
        Some(RefundStatus::Succeeded) => ClaimedRefund::Done,
        Some(RefundStatus::Processing) => ClaimedRefund::UnderWay,
        Some(RefundStatus::Failed) => ClaimedRefund::Abandoned,
        None if now - claimed_at > CLAIM_ABANDONED_AFTER => ClaimedRefund::Abandoned,
        None => ClaimedRefund::UnderWay,
    }
}

/// Whether a return in `from` may move to `to`; `Err(from)` when not.
pub fn check_move(from: ReturnStatus, to: ReturnStatus) -> Result<(), ReturnStatus> {
    if from.can_become(to) {
        Ok(())
    } else {
        Err(from)
    }
}

/// Whether each line's units go back on hand: the line's own choice, else
/// the one for all (`true` unless said).
pub fn restock_choice(sku: &str, all: Option<bool>, lines: &[(String, bool)]) -> bool {
    lines
        .iter()
        .find(|(s, _)| s == sku)
        .map_or(all.unwrap_or(true), |(_, restock)| *restock)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(position: i64, sku: &str, shipped: i64, returned: i64) -> ReturnableLine {
        ReturnableLine {
            position,
            sku: sku.to_owned(),
            shipped,
            returned,
            unit_price_cents: 1000,
        }
    }

    fn asked(sku: &str, quantity: i64) -> NewReturnItem {
        NewReturnItem {
            sku: sku.to_owned(),
            quantity,
            reason: "too small".to_owned(),
        }
    }

    fn at(day: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + Duration::days(day)
    }

    #[test]
    fn the_window_runs_from_delivery_or_else_from_the_last_shipment() {
        assert_eq!(window_closes(Some(at(1)), Some(at(3)), 30), Some(at(33)));
        assert_eq!(window_closes(Some(at(1)), None, 30), Some(at(31)));
        assert_eq!(window_closes(None, None, 30), None);
    }

    #[test]
    fn a_return_takes_shipped_units_not_in_another_return() {
        let lines = [line(0, "A", 2, 1), line(1, "B", 0, 0), line(2, "A", 1, 0)];
        let plan = decide_return(&lines, &[asked("A", 2)], Some(at(30)), at(1)).expect("plan");
        assert_eq!(
            plan.iter()
                .map(|l| (l.position, l.quantity))
                .collect::<Vec<_>>(),
            [(0, 1), (2, 1)]
        );
        let undiscounted = OrderMoney {
            subtotal_cents: None,
            discount_cents: 0,
            shipping_cents: 0,
            total_cents: 0,
        };
        assert_eq!(refund_cents(&plan, undiscounted), 2000);
        assert_eq!(
            decide_return(&lines, &[asked("A", 2), asked("A", 1)], Some(at(30)), at(1)),
            Err(ReturnRefusal::Exceeds {
                sku: "A".to_owned(),
                asked: 3,
                left: 2
            })
        );
        assert_eq!(
            decide_return(&lines, &[asked("B", 1)], Some(at(30)), at(1)),
            Err(ReturnRefusal::Exceeds {
                sku: "B".to_owned(),
                asked: 1,
                left: 0
            }),
            "an unshipped line is not returned"
        );
        assert_eq!(
            decide_return(&lines, &[asked("Z", 1)], Some(at(30)), at(1)),
            Err(ReturnRefusal::NotInOrder {
                sku: "Z".to_owned()
            })
        );
    }

    #[test]
    fn a_late_return_and_one_of_nothing_shipped_are_refused() {
        let lines = [line(0, "A", 1, 0)];
        assert_eq!(
            decide_return(&lines, &[asked("A", 1)], Some(at(30)), at(31)),
            Err(ReturnRefusal::WindowClosed { closed_at: at(30) })
        );
        assert!(decide_return(&lines, &[asked("A", 1)], Some(at(30)), at(30)).is_ok());
        assert_eq!(
            decide_return(&lines, &[asked("A", 1)], None, at(1)),
            Err(ReturnRefusal::NothingShipped)
        );
    }

    #[test]
    fn returns_move_forward_only() {
        use ReturnStatus::*;
        assert_eq!(check_move(Requested, Approved), Ok(()));
        assert_eq!(check_move(Requested, Rejected), Ok(()));
        assert_eq!(check_move(Approved, Received), Ok(()));
        assert_eq!(check_move(Received, Refunded), Ok(()));
        assert_eq!(check_move(Requested, Received), Err(Requested));
        assert_eq!(check_move(Rejected, Approved), Err(Rejected));
        assert_eq!(check_move(Refunded, Refunded), Err(Refunded));
        assert!(Received.is_open() && !Rejected.is_open() && !Refunded.is_open());
    }

    #[test]
    fn each_line_restocks_as_it_says_else_as_all_do() {
        let lines = [("A".to_owned(), false)];
        assert!(!restock_choice("A", Some(true), &lines));
        assert!(restock_choice("B", None, &lines));
        assert!(!restock_choice("B", Some(false), &lines));
    }

    fn two_units_at(unit_price_cents: i64) -> Vec<PlannedLine> {
        vec![PlannedLine {
            position: 0,
            sku: "A".to_owned(),
            quantity: 2,
            reason: "too big".to_owned(),
            unit_price_cents,
        }]
    }

    #[test]
    fn a_refund_takes_off_the_discount_share_and_adds_back_the_tax_share() {
        // 100.00 of goods, 10 % off, 5.00 shipping, 7.25 % tax on top of
        // goods and shipping: total 100 - 10 + 5 + 6.89 = 101.89.
        let order = OrderMoney {
            subtotal_cents: Some(10_000),
            discount_cents: 1_000,
            shipping_cents: 500,
            total_cents: 10_189,
        };
        // Half the goods: 50.00 - 5.00 discount + 7.25 % of 45.00.
        assert_eq!(refund_cents(&two_units_at(2_500), order), 4_500 + 326);
        // Everything returned never gets back more than the goods were charged.
        let everything = refund_cents(&two_units_at(5_000), order);
        assert!(everything <= order.total_cents - 500, "{everything}");
        // With the shipping and its tax, all of it is the whole charge.
        let shipping = shipping_refund_cents(order);
        assert_eq!(shipping, 500 + 36);
        assert_eq!(everything + shipping, order.total_cents);
    }

    #[test]
    fn prices_with_tax_in_them_refund_the_discounted_price_only() {
        let order = OrderMoney {
            subtotal_cents: Some(11_900),
            discount_cents: 1_190,
            shipping_cents: 0,
            total_cents: 10_710,
        };
        assert_eq!(refund_cents(&two_units_at(2_975), order), 5_950 - 595);
    }

    #[test]
    fn a_claimed_refund_left_by_a_crash_is_released_but_one_under_way_is_not() {
        use shop_wire::payments::RefundStatus;
        let claimed = at(0);
        let soon = claimed + Duration::seconds(5);
        let later = claimed + CLAIM_ABANDONED_AFTER + Duration::seconds(1);
        assert_eq!(
            claimed_refund(Some(RefundStatus::Succeeded), claimed, soon),
            ClaimedRefund::Done
        );
        assert_eq!(
            claimed_refund(Some(RefundStatus::Processing), claimed, later),
            ClaimedRefund::UnderWay
        );
        assert_eq!(
            claimed_refund(Some(RefundStatus::Failed), claimed, soon),
            ClaimedRefund::Abandoned
        );
        assert_eq!(claimed_refund(None, claimed, soon), ClaimedRefund::UnderWay);
        assert_eq!(
            claimed_refund(None, claimed, later),
            ClaimedRefund::Abandoned
        );
    }
}
