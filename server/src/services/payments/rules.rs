//! The money rules of a payment as plain functions: when a provider's answer
//! still counts, and how much may be refunded.
//!
//! A store loads (and, on a networked database, locks) the payment with the
//! sum of its refunds in flight, calls these, and writes what they decide;
//! their tests need no database.

use shop_wire::payments::PaymentStatus;

/// Whether the provider's answer to a charge is still to be recorded: a
/// charge `processing` takes any answer, and a bank transfer awaiting
/// settlement (`pending`) takes its settlement (success or failure). Anything
/// else was finished before (a repeat of a recovery) and changes nothing.
pub fn answer_counts(status: PaymentStatus, answer_is_pending: bool) -> bool {
    match status {
        PaymentStatus::Processing => true,
        PaymentStatus::Pending => !answer_is_pending,
        _ => false,
    }
}

/// What a payment holds that a refund is measured against.
#[derive(Clone, Copy, Debug)]
pub struct Refundable {
    pub status: PaymentStatus,
    pub captured_cents: i64,
    pub refunded_cents: i64,
    /// Refunds recorded `processing` whose provider call is not answered yet.
    pub in_flight_cents: i64,
}

/// Why a refund cannot start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefundRefusal {
    NotRefundable(PaymentStatus),
    NothingLeft,
    /// More than is left: captured minus refunded minus refunds in flight.
    Exceeds {
        refundable: i64,
    },
}

/// The amount a new refund takes (`requested`, or all that is left when
/// `None`). The ceiling counts refunds in flight, so however many refunds
/// race, their sum never passes what was captured.
pub fn refund_amount(payment: Refundable, requested: Option<i64>) -> Result<i64, RefundRefusal> {
    match payment.status {
        PaymentStatus::Succeeded => {}
        PaymentStatus::Refunded => return Err(RefundRefusal::NothingLeft),
        status => return Err(RefundRefusal::NotRefundable(status)),
    }
    let refundable = payment.captured_cents - payment.refunded_cents - payment.in_flight_cents;
    if refundable <= 0 {
        return Err(RefundRefusal::NothingLeft);
    }
    let amount = requested.unwrap_or(refundable);
    if amount > refundable {
        return Err(RefundRefusal::Exceeds { refundable });
    }
    Ok(amount)
}

/// A payment's status once `refunded_cents` of its `captured_cents` are back
/// with the customer: `refunded` when all of it is.
pub fn status_after_refund(captured_cents: i64, refunded_cents: i64) -> PaymentStatus {
    if refunded_cents >= captured_cents {
        PaymentStatus::Refunded
    } else {
        PaymentStatus::Succeeded
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment(status: PaymentStatus, refunded: i64, in_flight: i64) -> Refundable {
        Refundable {
            status,
            captured_cents: 1000,
            refunded_cents: refunded,
            in_flight_cents: in_flight,
        }
    }

    #[test]
    fn the_ceiling_is_captured_minus_refunded_minus_in_flight() {
        let paid = payment(PaymentStatus::Succeeded, 300, 200);
        assert_eq!(refund_amount(paid, None), Ok(500));
        assert_eq!(refund_amount(paid, Some(500)), Ok(500));
        assert_eq!(refund_amount(paid, Some(1)), Ok(1));
        assert_eq!(
            refund_amount(paid, Some(501)),
            Err(RefundRefusal::Exceeds { refundable: 500 })
        );
        assert_eq!(
            refund_amount(payment(PaymentStatus::Succeeded, 600, 400), Some(1)),
            Err(RefundRefusal::NothingLeft)
        );
    }

    #[test]
    fn only_a_captured_payment_is_refunded() {
        assert_eq!(
            refund_amount(payment(PaymentStatus::Refunded, 1000, 0), None),
            Err(RefundRefusal::NothingLeft)
        );
        for status in [
            PaymentStatus::Processing,
            PaymentStatus::Pending,
            PaymentStatus::Failed,
            PaymentStatus::Canceled,
        ] {
            assert_eq!(
                refund_amount(payment(status, 0, 0), None),
                Err(RefundRefusal::NotRefundable(status))
            );
        }
    }

    #[test]
    fn a_payment_is_refunded_once_all_of_it_is_back() {
        assert_eq!(status_after_refund(1000, 999), PaymentStatus::Succeeded);
        assert_eq!(status_after_refund(1000, 1000), PaymentStatus::Refunded);
    }

    #[test]
    fn a_finished_charge_ignores_a_repeated_answer() {
        assert!(answer_counts(PaymentStatus::Processing, false));
        assert!(answer_counts(PaymentStatus::Processing, true));
        assert!(answer_counts(PaymentStatus::Pending, false));
        assert!(!answer_counts(PaymentStatus::Pending, true));
        for finished in [
            PaymentStatus::Succeeded,
            PaymentStatus::Failed,
            PaymentStatus::Refunded,
            PaymentStatus::Canceled,
        ] {
            assert!(!answer_counts(finished, false));
        }
    }
}
