//! The order's rules as plain functions over plain data: its state machine,
//! what cancelling does, when a payment may start, what a taken charge does
//! to the order's stock, and how orders are numbered.
//!
//! A step of the money path is: the store opens a transaction, loads (and,
//! on a networked database, locks) the order, its lines' holds and their
//! stock, calls a `decide_*`/`check_*` function here, and writes the effects
//! it returns with guarded statements. The same functions run on every
//! backend, and their tests need no database.

use shop_wire::orders::{FinancialStatus, OrderStatus};
use shop_wire::payments::{PaymentId, PaymentStatus};

use crate::services::inventory::rules::{StockRefusal, check_available, demand_per_sku};
use crate::store::ReserveItem;

/// Orders count from 1001, so the first order of a shop does not look like its only one.
pub const FIRST_NUMBER: i64 = 1001;

/// The number of a new order, after the highest one so far (`None`: the first).
pub fn next_number(highest: Option<i64>) -> i64 {
    highest.map_or(FIRST_NUMBER, |n| n + 1)
}

/// Whether a customer with `unpaid` pending orders may place another
/// (`max` 0: no cap): each unpaid order holds its stock for the payment
/// window, so without a cap one customer could hold a product's whole stock.
pub fn check_unpaid(unpaid: u64, max: u32) -> Result<(), u32> {
    if max > 0 && unpaid >= u64::from(max) {
        return Err(max);
    }
    Ok(())
}

/// `ORD-001042` from 1042.
pub fn order_number(number: i64) -> String {
    format!("ORD-{number:06}")
}

/// Where an order's money stands, from its status and what was refunded of
/// its `total_cents`: anything refunded says how much is left; otherwise a
/// pending order has paid nothing yet, a cancelled one was voided before
/// money was taken (a paid order is cancelled only through a full refund),
/// and every other status was paid.
pub fn financial_status(
    status: OrderStatus,
    total_cents: i64,
    refunded_cents: i64,
) -> FinancialStatus {
    if refunded_cents > 0 {
        return if refunded_cents >= total_cents {
            FinancialStatus::Refunded
        } else {
            FinancialStatus::PartiallyRefunded
        };
    }
    match status {
        OrderStatus::Pending => FinancialStatus::Pending,
        OrderStatus::Cancelled => FinancialStatus::Voided,
        OrderStatus::Paid | OrderStatus::Shipped | OrderStatus::Delivered => FinancialStatus::Paid,
    }
}

/// Whether an order in this financial status counts as sold in net revenue:
/// some of the money it took is kept. (A refunded order adds nothing to net
/// revenue, and is not counted among the orders either.)
pub fn is_sold(status: FinancialStatus) -> bool {
    matches!(
        status,
        FinancialStatus::Paid | FinancialStatus::PartiallyRefunded
    )
}

/// Whether money was taken for an order in this financial status, whatever
/// was refunded of it since: such an order makes its email a customer and
/// is in the sales report (a refunded one with its refund, so its net is 0,
/// as [`is_sold`] leaves it out of net revenue).
pub fn took_money(status: FinancialStatus) -> bool {
    is_sold(status) || status == FinancialStatus::Refunded
}

/// What cancelling an order does to its stock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cancellation {
    /// A pending order: its holds are released, and a bank transfer awaiting
    /// settlement is cancelled with it.
    ReleaseHolds,
    /// A paid order: its sold units go back on hand.
    Restock,
}

/// What cancelling an order in `status` does; `None` when it cannot be
/// cancelled (shipped, delivered, or cancelled already).
pub fn cancellation(status: OrderStatus) -> Option<Cancellation> {
    match status {
        OrderStatus::Pending => Some(Cancellation::ReleaseHolds),
        OrderStatus::Paid => Some(Cancellation::Restock),
        OrderStatus::Shipped | OrderStatus::Delivered | OrderStatus::Cancelled => None,
    }
}

/// The payment of an order, as far as its state machine cares.
#[derive(Clone, Debug)]
pub struct PaymentFacts {
    pub id: PaymentId,
    pub amount_cents: i64,
    pub refunded_cents: i64,
}

/// What the order's payments are doing while it is asked to move.
#[derive(Clone, Debug, Default)]
pub struct Payments {
    /// The status of its latest payment still being taken or settled, if any.
    pub in_flight: Option<PaymentStatus>,
    /// The payment that paid it, if it is paid.
    pub captured: Option<PaymentFacts>,
}

/// A move of the order's state machine, decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transition {
    Cancel(Cancellation),
    /// Shipped or delivered: the status changes (with the tracking number given).
    Advance(OrderStatus),
}

/// Why an order cannot move as asked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransitionRefusal {
    Illegal {
        from: OrderStatus,
    },
    /// A payment is being taken right now; try again in a moment.
    PaymentInFlight,
    /// A paid order with money left to refund: cancel it through a refund.
    NeedsRefund {
        payment_id: PaymentId,
    },
    /// Everything its payment took was refunded: there is nothing to ship.
    Refunded,
    /// Some of it went out: it is not cancelled (see
    /// [`super::fulfilment::check_cancel_unshipped`]).
    PartlyShipped,
}

/// Decides a move from `from` to `to` asked by someone (not a payment).
/// `paid` is reached only through a payment, never by decree.
pub fn decide_transition(
    from: OrderStatus,
    to: OrderStatus,
    payments: &Payments,
) -> Result<Transition, TransitionRefusal> {
    if to == OrderStatus::Paid || !from.can_become(to) {
        return Err(TransitionRefusal::Illegal { from });
    }
    if to == OrderStatus::Shipped
        && let Some(payment) = &payments.captured
        && payment.amount_cents > 0
        && payment.refunded_cents >= payment.amount_cents
    {
        return Err(TransitionRefusal::Refunded);
    }
    if to != OrderStatus::Cancelled {
        return Ok(Transition::Advance(to));
    }
    if payments.in_flight == Some(PaymentStatus::Processing) {
        return Err(TransitionRefusal::PaymentInFlight);
    }
    if from == OrderStatus::Paid
        && let Some(payment) = &payments.captured
        && payment.refunded_cents < payment.amount_cents
    {
        return Err(TransitionRefusal::NeedsRefund {
            payment_id: payment.id.clone(),
        });
    }
    let cancellation = cancellation(from).ok_or(TransitionRefusal::Illegal { from })?;
    Ok(Transition::Cancel(cancellation))
}

/// Why a new payment of an order cannot start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotPayable {
    WrongStatus(OrderStatus),
    /// A payment of the order is already processing or awaiting settlement.
    InFlight,
}

/// Whether a new payment attempt may start: the order is pending and no
/// other attempt is being taken or settled.
pub fn check_payable(status: OrderStatus, payment_in_flight: bool) -> Result<(), NotPayable> {
    if status != OrderStatus::Pending {
        return Err(NotPayable::WrongStatus(status));
    }
    if payment_in_flight {
        return Err(NotPayable::InFlight);
    }
    Ok(())
}

/// An order line with whether its stock is still held for it.
#[derive(Clone, Debug)]
pub struct LineHold {
    pub sku: String,
    pub quantity: i64,
    /// Its reservation is still active.
    pub held: bool,
}

/// The lines whose hold ran out, as the stock a late payment must hold (or
/// take) again.
pub fn lapsed(lines: &[LineHold]) -> Vec<ReserveItem> {
    lines
        .iter()
        .filter(|line| !line.held)
        .map(|line| ReserveItem {
            sku: line.sku.clone(),
            quantity: line.quantity,
        })
        .collect()
}

/// Whether the stock of the lapsed lines (see [`lapsed`]) is still there:
/// `available` gives the free units of a SKU (`None`: no stock record). A
/// payment for an order whose hold ran out may start only when it is.
pub fn check_hold_again(
    lapsed: &[ReserveItem],
    available: impl Fn(&str) -> Option<i64>,
) -> Result<(), StockRefusal> {
    let demands = demand_per_sku(lapsed);
    check_available(demands.iter().map(|d| (d, available(&d.sku))))
}

/// What a taken charge does to its order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fulfilment {
    /// The order becomes paid: each held line's reservation is committed, and
    /// each lapsed line's units are sold straight from available stock.
    Pay,
    /// The money was taken but the order cannot be fulfilled (it was
    /// cancelled meanwhile, or its hold ran out and the stock sold): the
    /// payment must be refunded, and the order and the stock stay as they are.
    Unfulfillable,
}

/// Decides what a successful charge does to an order in `status` whose
/// lines are `lines`, with `available` giving a SKU's free units.
pub fn decide_fulfilment(
    status: OrderStatus,
    lines: &[LineHold],
    available: impl Fn(&str) -> Option<i64>,
) -> Fulfilment {
    if status != OrderStatus::Pending {
        return Fulfilment::Unfulfillable;
    }
    match check_hold_again(&lapsed(lines), available) {
        Ok(()) => Fulfilment::Pay,
        Err(_) => Fulfilment::Unfulfillable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_number_from_1001_and_print_with_six_digits() {
        assert_eq!(next_number(None), 1001);
        assert_eq!(next_number(Some(1041)), 1042);
        assert_eq!(order_number(1042), "ORD-001042");
        assert_eq!(order_number(1_234_567), "ORD-1234567");
    }

    fn captured(amount: i64, refunded: i64) -> Payments {
        Payments {
            in_flight: None,
            captured: Some(PaymentFacts {
                id: PaymentId::generate(),
                amount_cents: amount,
                refunded_cents: refunded,
            }),
        }
    }

    #[test]
    fn paid_is_reached_only_through_a_payment() {
        for from in [
            OrderStatus::Pending,
            OrderStatus::Paid,
            OrderStatus::Shipped,
        ] {
            assert_eq!(
                decide_transition(from, OrderStatus::Paid, &Payments::default()),
                Err(TransitionRefusal::Illegal { from })
            );
        }
    }

    #[test]
    fn the_state_machine_moves_only_forward() {
        let none = Payments::default();
        assert_eq!(
            decide_transition(OrderStatus::Paid, OrderStatus::Shipped, &none),
            Ok(Transition::Advance(OrderStatus::Shipped))
        );
        assert_eq!(
            decide_transition(OrderStatus::Shipped, OrderStatus::Delivered, &none),
            Ok(Transition::Advance(OrderStatus::Delivered))
        );
        for (from, to) in [
            (OrderStatus::Pending, OrderStatus::Shipped),
            (OrderStatus::Shipped, OrderStatus::Cancelled),
            (OrderStatus::Delivered, OrderStatus::Cancelled),
            (OrderStatus::Cancelled, OrderStatus::Pending),
        ] {
            assert_eq!(
                decide_transition(from, to, &none),
                Err(TransitionRefusal::Illegal { from })
            );
        }
    }

    #[test]
    fn cancelling_releases_a_pending_order_and_restocks_a_paid_one() {
        assert_eq!(
            decide_transition(
                OrderStatus::Pending,
                OrderStatus::Cancelled,
                &Payments::default()
            ),
            Ok(Transition::Cancel(Cancellation::ReleaseHolds))
        );
        // A bank transfer awaiting settlement is cancelled with the order.
        let settling = Payments {
            in_flight: Some(PaymentStatus::Pending),
            captured: None,
        };
        assert_eq!(
            decide_transition(OrderStatus::Pending, OrderStatus::Cancelled, &settling),
            Ok(Transition::Cancel(Cancellation::ReleaseHolds))
        );
        // Paid and fully refunded already: nothing left to give back but the stock.
        assert_eq!(
            decide_transition(
                OrderStatus::Paid,
                OrderStatus::Cancelled,
                &captured(500, 500)
            ),
            Ok(Transition::Cancel(Cancellation::Restock))
        );
        assert_eq!(cancellation(OrderStatus::Shipped), None);
        assert_eq!(cancellation(OrderStatus::Cancelled), None);
    }

    #[test]
    fn a_fully_refunded_order_is_not_shipped_and_a_partly_refunded_one_is() {
        assert_eq!(
            decide_transition(OrderStatus::Paid, OrderStatus::Shipped, &captured(500, 500)),
            Err(TransitionRefusal::Refunded)
        );
        assert_eq!(
            decide_transition(OrderStatus::Paid, OrderStatus::Shipped, &captured(500, 499)),
            Ok(Transition::Advance(OrderStatus::Shipped))
        );
        // Already on its way: it may still be delivered.
        assert_eq!(
            decide_transition(
                OrderStatus::Shipped,
                OrderStatus::Delivered,
                &captured(500, 500)
            ),
            Ok(Transition::Advance(OrderStatus::Delivered))
        );
    }

    #[test]
    fn the_financial_status_follows_the_status_and_the_refunds() {
        use FinancialStatus as F;
        assert_eq!(financial_status(OrderStatus::Pending, 500, 0), F::Pending);
        assert_eq!(financial_status(OrderStatus::Cancelled, 500, 0), F::Voided);
        for paid in [
            OrderStatus::Paid,
            OrderStatus::Shipped,
            OrderStatus::Delivered,
        ] {
            assert_eq!(financial_status(paid, 500, 0), F::Paid);
            assert_eq!(financial_status(paid, 500, 1), F::PartiallyRefunded);
            assert_eq!(financial_status(paid, 500, 500), F::Refunded);
        }
        // A paid order cancelled through its full refund.
        assert_eq!(
            financial_status(OrderStatus::Cancelled, 500, 500),
            F::Refunded
        );
        // A charge taken for an order that could no longer be filled, given back.
        assert_eq!(
            financial_status(OrderStatus::Pending, 500, 500),
            F::Refunded
        );
        // A free order is paid once it is.
        assert_eq!(financial_status(OrderStatus::Paid, 0, 0), F::Paid);
        let sold: Vec<F> = F::ALL.iter().copied().filter(|s| is_sold(*s)).collect();
        assert_eq!(sold, [F::Paid, F::PartiallyRefunded]);
    }

    #[test]
    fn a_paid_order_with_money_left_is_cancelled_through_a_refund() {
        let payments = captured(500, 200);
        let id = payments.captured.as_ref().unwrap().id.clone();
        assert_eq!(
            decide_transition(OrderStatus::Paid, OrderStatus::Cancelled, &payments),
            Err(TransitionRefusal::NeedsRefund { payment_id: id })
        );
    }

    #[test]
    fn an_order_is_not_cancelled_while_a_charge_is_being_taken() {
        let taking = Payments {
            in_flight: Some(PaymentStatus::Processing),
            captured: None,
        };
        assert_eq!(
            decide_transition(OrderStatus::Pending, OrderStatus::Cancelled, &taking),
            Err(TransitionRefusal::PaymentInFlight)
        );
    }

    #[test]
    fn one_payment_at_a_time_and_only_of_a_pending_order() {
        assert_eq!(check_payable(OrderStatus::Pending, false), Ok(()));
        assert_eq!(
            check_payable(OrderStatus::Pending, true),
            Err(NotPayable::InFlight)
        );
        assert_eq!(
            check_payable(OrderStatus::Paid, false),
            Err(NotPayable::WrongStatus(OrderStatus::Paid))
        );
    }

    fn line(sku: &str, quantity: i64, held: bool) -> LineHold {
        LineHold {
            sku: sku.to_owned(),
            quantity,
            held,
        }
    }

    #[test]
    fn a_late_payment_holds_again_only_the_lapsed_lines_if_their_stock_is_there() {
        let lines = [line("A", 2, true), line("B", 3, false), line("B", 1, false)];
        let again = lapsed(&lines);
        assert_eq!(again.len(), 2);
        assert_eq!(check_hold_again(&again, |_| Some(4)), Ok(()));
        // Two lapsed lines of one SKU must fit together.
        assert_eq!(
            check_hold_again(&again, |_| Some(3)),
            Err(StockRefusal::Insufficient {
                sku: "B".to_owned(),
                available: 3,
                requested: 4
            })
        );
        assert_eq!(check_hold_again(&lapsed(&lines[..1]), |_| Some(0)), Ok(()));
    }

    #[test]
    fn a_taken_charge_pays_only_a_pending_order_whose_stock_is_still_there() {
        let held = [line("A", 2, true)];
        assert_eq!(
            decide_fulfilment(OrderStatus::Pending, &held, |_| Some(0)),
            Fulfilment::Pay
        );
        // Cancelled meanwhile (the sweeper, or the customer).
        assert_eq!(
            decide_fulfilment(OrderStatus::Cancelled, &held, |_| Some(10)),
            Fulfilment::Unfulfillable
        );
        // The hold ran out: paid if the units are still free, not if they sold.
        let lapsed = [line("A", 2, false)];
        assert_eq!(
            decide_fulfilment(OrderStatus::Pending, &lapsed, |_| Some(2)),
            Fulfilment::Pay
        );
        assert_eq!(
            decide_fulfilment(OrderStatus::Pending, &lapsed, |_| Some(1)),
            Fulfilment::Unfulfillable
        );
    }

    #[test]
    fn a_customer_has_at_most_the_cap_of_unpaid_orders() {
        assert_eq!(check_unpaid(4, 5), Ok(()));
        assert_eq!(check_unpaid(5, 5), Err(5));
        assert_eq!(check_unpaid(500, 0), Ok(()));
    }
}
