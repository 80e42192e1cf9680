//! The rules of shipping an order, as plain functions over plain data: what
//! one shipment takes of each line, when the order is `shipped`, how far it
//! went out (`fulfillment_status`), and a shipment's tracking URL.
//!
//! An order is shipped line by line, in as many shipments as it takes; its
//! status stays `paid` until the last unit goes out. The store loads the
//! lines with what each has shipped, asks [`decide_shipment`], and writes
//! the plan with guarded statements (never more of a line than it has), so
//! two shipments that race cannot both take the last units.

use std::collections::BTreeMap;

use shop_wire::orders::{FulfillmentItem, FulfillmentStatus, OrderStatus};

use super::rules::{Payments, TransitionRefusal, decide_transition};

/// The tracking pages of a few big carriers, by the name given as
/// `carrier` (compared without case); `[carriers]` in the config adds to
/// them or replaces them. `{tracking}` stands for the tracking number.
pub const BUILT_IN_CARRIERS: &[(&str, &str)] = &[
    (
        "dhl",
        "https://www.dhl.com/en/express/tracking.html?AWB={tracking}",
    ),
    (
        "fedex",
        "https://www.fedex.com/fedextrack/?trknbr={tracking}",
    ),
    ("ups", "https://www.ups.com/track?tracknum={tracking}"),
    (
        "usps",
        "https://tools.usps.com/go/TrackConfirmAction?tLabels={tracking}",
    ),
];

/// What a template must contain to be filled.
pub const TRACKING_PLACEHOLDER: &str = "{tracking}";

/// The tracking URL of a shipment: the one given wins; otherwise the
/// carrier's template (from `configured`, then the built-ins) with the
/// tracking number in it, percent-encoded; otherwise none.
pub fn tracking_url(
    configured: &BTreeMap<String, String>,
    carrier: Option<&str>,
    tracking_number: Option<&str>,
    given: Option<&str>,
) -> Option<String> {
    if let Some(url) = given {
        return Some(url.to_owned());
    }
    let carrier = carrier?.trim().to_ascii_lowercase();
    let tracking = tracking_number?;
    let template = configured
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(&carrier))
        .map(|(_, template)| template.as_str())
        .or_else(|| {
            BUILT_IN_CARRIERS
                .iter()
                .find(|(name, _)| *name == carrier)
                .map(|(_, template)| *template)
        })?;
    Some(template.replace(TRACKING_PLACEHOLDER, &crate::web::pages::encode(tracking)))
}

/// An order line, with how many of its units went out so far.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShippedLine {
    /// Where the line is in the order; it names the line in a plan.
    pub position: i64,
    pub sku: String,
    pub quantity: i64,
    pub shipped: i64,
}

impl ShippedLine {
    fn left(&self) -> i64 {
        self.quantity - self.shipped
    }
}

/// What one shipment takes: units of each line (by position), in line order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShipmentPlan {
    pub lines: Vec<(i64, i64)>,
    /// After it nothing is left to ship: the order becomes `shipped`.
    pub completes: bool,
}

/// Why a shipment cannot be made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShipRefusal {
    /// Only a paid order ships (this one is `from`).
    Illegal { from: OrderStatus },
    /// Everything its payment took was refunded: there is nothing to ship.
    Refunded,
    /// The order has no line of this SKU.
    NotInOrder { sku: String },
    /// More of a SKU was asked for than is left to ship of it.
    Exceeds { sku: String, asked: i64, left: i64 },
}

/// Decides one shipment of an order in `status` whose lines are `lines`:
/// `asked` items (a SKU given twice counts once with both quantities), or
/// everything left. The units of a SKU on several lines are taken from the
/// first line first.
pub fn decide_shipment(
    status: OrderStatus,
    payments: &Payments,
    lines: &[ShippedLine],
    asked: Option<&[FulfillmentItem]>,
) -> Result<ShipmentPlan, ShipRefusal> {
    match decide_transition(status, OrderStatus::Shipped, payments) {
        Err(TransitionRefusal::Refunded) => return Err(ShipRefusal::Refunded),
        Err(_) => return Err(ShipRefusal::Illegal { from: status }),
        Ok(_) => {}
    }
    let mut plan: Vec<(i64, i64)> = Vec::new();
    match asked {
        None => {
            plan.extend(
                lines
                    .iter()
                    .filter(|line| line.left() > 0)
                    .map(|line| (line.position, line.left())),
            );
        }
        Some(asked) => {
            let mut wanted: Vec<(&str, i64)> = Vec::new();
            for item in asked {
                match wanted.iter_mut().find(|(sku, _)| *sku == item.sku) {
                    Some((_, quantity)) => *quantity += item.quantity,
                    None => wanted.push((&item.sku, item.quantity)),
                }
            }
            for (sku, mut quantity) in wanted {
                let of_sku: Vec<&ShippedLine> = lines.iter().filter(|l| l.sku == sku).collect();
                if of_sku.is_empty() {
                    return Err(ShipRefusal::NotInOrder {
                        sku: sku.to_owned(),
                    });
                }
                let left: i64 = of_sku.iter().map(|l| l.left()).sum();
                if quantity > left {
                    return Err(ShipRefusal::Exceeds {
                        sku: sku.to_owned(),
                        asked: quantity,
                        left,
                    });
                }
                for line in of_sku {
                    let take = quantity.min(line.left());
                    if take > 0 {
                        plan.push((line.position, take));
                        quantity -= take;
                    }
                }
            }
            plan.sort_unstable();
        }
    }
    if plan.is_empty() {
        // A paid order always has something left: its last shipment made it `shipped`.
        return Err(ShipRefusal::Illegal { from: status });
    }
    let completes = lines.iter().all(|line| {
        let taken: i64 = plan
            .iter()
            .filter(|(position, _)| *position == line.position)
            .map(|(_, quantity)| quantity)
            .sum();
        line.shipped + taken >= line.quantity
    });
    Ok(ShipmentPlan {
        lines: plan,
        completes,
    })
}

/// How far an order in `status` went out, from its lines' `(quantity,
/// shipped)`: a delivered order is delivered, a shipped one shipped; a paid
/// one with some units out is `partially_shipped`.
pub fn fulfillment_status(
    status: OrderStatus,
    lines: impl IntoIterator<Item = (i64, i64)>,
) -> FulfillmentStatus {
    match status {
        OrderStatus::Delivered => FulfillmentStatus::Delivered,
        OrderStatus::Shipped => FulfillmentStatus::Shipped,
        _ if lines.into_iter().any(|(_, shipped)| shipped > 0) => {
            FulfillmentStatus::PartiallyShipped
        }
        _ => FulfillmentStatus::Unfulfilled,
    }
}

/// Whether an order in `from` with `shipped_units` gone out may move to
/// `to`: a paid order is not cancelled once anything shipped, since
/// cancelling refunds and restocks every line, the shipped ones too; what
/// went out comes back as a return.
pub fn check_cancel_unshipped(
    from: OrderStatus,
    to: OrderStatus,
    shipped_units: i64,
) -> Result<(), TransitionRefusal> {
    if from == OrderStatus::Paid && to == OrderStatus::Cancelled && shipped_units > 0 {
        Err(TransitionRefusal::PartlyShipped)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::orders::rules::PaymentFacts;
    use shop_wire::payments::PaymentId;

    fn line(position: i64, sku: &str, quantity: i64, shipped: i64) -> ShippedLine {
        ShippedLine {
            position,
            sku: sku.to_owned(),
            quantity,
            shipped,
        }
    }

    fn item(sku: &str, quantity: i64) -> FulfillmentItem {
        FulfillmentItem {
            sku: sku.to_owned(),
            quantity,
        }
    }

    fn paid() -> Payments {
        Payments::default()
    }

    #[test]
    fn without_items_a_shipment_takes_everything_left_and_ships_the_order() {
        let lines = [line(0, "A", 2, 1), line(1, "B", 3, 0), line(2, "C", 1, 1)];
        let plan = decide_shipment(OrderStatus::Paid, &paid(), &lines, None).expect("plan");
        assert_eq!(plan.lines, [(0, 1), (1, 3)]);
        assert!(plan.completes);
    }

    #[test]
    fn a_partial_shipment_leaves_the_order_paid_and_the_rest_ships_later() {
        let lines = [line(0, "A", 2, 0), line(1, "B", 3, 0)];
        let first = [item("B", 2)];
        let plan = decide_shipment(OrderStatus::Paid, &paid(), &lines, Some(&first)).expect("plan");
        assert_eq!(plan.lines, [(1, 2)]);
        assert!(!plan.completes);
        let after = [line(0, "A", 2, 0), line(1, "B", 3, 2)];
        let rest = [item("A", 2), item("B", 1)];
        let plan = decide_shipment(OrderStatus::Paid, &paid(), &after, Some(&rest)).expect("plan");
        assert!(plan.completes);
    }

    #[test]
    fn more_than_is_left_of_a_sku_is_refused_with_what_is_left() {
        let lines = [line(0, "A", 2, 1)];
        assert_eq!(
            decide_shipment(OrderStatus::Paid, &paid(), &lines, Some(&[item("A", 2)])),
            Err(ShipRefusal::Exceeds {
                sku: "A".to_owned(),
                asked: 2,
                left: 1
            })
        );
        // The same SKU twice counts together.
        assert_eq!(
            decide_shipment(
                OrderStatus::Paid,
                &paid(),
                &lines,
                Some(&[item("A", 1), item("A", 1)])
            ),
            Err(ShipRefusal::Exceeds {
                sku: "A".to_owned(),
                asked: 2,
                left: 1
            })
        );
        assert_eq!(
            decide_shipment(OrderStatus::Paid, &paid(), &lines, Some(&[item("Z", 1)])),
            Err(ShipRefusal::NotInOrder {
                sku: "Z".to_owned()
            })
        );
    }

    #[test]
    fn a_sku_on_two_lines_is_taken_from_the_first_line_first() {
        let lines = [line(0, "A", 2, 1), line(1, "B", 1, 0), line(2, "A", 3, 0)];
        let plan = decide_shipment(OrderStatus::Paid, &paid(), &lines, Some(&[item("A", 3)]))
            .expect("plan");
        assert_eq!(plan.lines, [(0, 1), (2, 2)]);
        assert!(!plan.completes);
    }

    #[test]
    fn only_a_paid_order_not_refunded_in_full_ships() {
        let lines = [line(0, "A", 1, 0)];
        for from in [
            OrderStatus::Pending,
            OrderStatus::Shipped,
            OrderStatus::Delivered,
            OrderStatus::Cancelled,
        ] {
            assert_eq!(
                decide_shipment(from, &paid(), &lines, None),
                Err(ShipRefusal::Illegal { from })
            );
        }
        let refunded = Payments {
            in_flight: None,
            captured: Some(PaymentFacts {
                id: PaymentId::generate(),
                amount_cents: 500,
                refunded_cents: 500,
            }),
        };
        assert_eq!(
            decide_shipment(OrderStatus::Paid, &refunded, &lines, None),
            Err(ShipRefusal::Refunded)
        );
    }

    #[test]
    fn the_fulfillment_status_follows_the_lines_and_the_status() {
        use FulfillmentStatus as F;
        assert_eq!(
            fulfillment_status(OrderStatus::Paid, [(2, 0), (1, 0)]),
            F::Unfulfilled
        );
        assert_eq!(
            fulfillment_status(OrderStatus::Paid, [(2, 1), (1, 0)]),
            F::PartiallyShipped
        );
        assert_eq!(
            fulfillment_status(OrderStatus::Shipped, [(2, 2)]),
            F::Shipped
        );
        assert_eq!(
            fulfillment_status(OrderStatus::Delivered, [(2, 2)]),
            F::Delivered
        );
        assert_eq!(
            fulfillment_status(OrderStatus::Pending, [(2, 0)]),
            F::Unfulfilled
        );
    }

    #[test]
    fn a_partly_shipped_order_is_not_cancelled() {
        use OrderStatus::{Cancelled, Delivered, Paid};
        assert_eq!(check_cancel_unshipped(Paid, Cancelled, 0), Ok(()));
        assert_eq!(
            check_cancel_unshipped(Paid, Cancelled, 1),
            Err(TransitionRefusal::PartlyShipped)
        );
        // Other moves are the state machine's to judge.
        assert_eq!(check_cancel_unshipped(Paid, Delivered, 1), Ok(()));
    }

    #[test]
    fn a_given_tracking_url_wins_then_the_configured_template_then_the_built_in() {
        let mut configured = BTreeMap::new();
        configured.insert(
            "acme".to_owned(),
            "https://acme.example/t/{tracking}".to_owned(),
        );
        configured.insert(
            "UPS".to_owned(),
            "https://ups.example/{tracking}".to_owned(),
        );
        assert_eq!(
            tracking_url(&configured, Some("acme"), Some("AB 12/3"), None).as_deref(),
            Some("https://acme.example/t/AB%2012%2F3")
        );
        assert_eq!(
            tracking_url(&configured, Some("ups"), Some("1Z9"), None).as_deref(),
            Some("https://ups.example/1Z9"),
            "the config replaces a built-in"
        );
        assert_eq!(
            tracking_url(&BTreeMap::new(), Some("FedEx"), Some("77"), None).as_deref(),
            Some("https://www.fedex.com/fedextrack/?trknbr=77")
        );
        assert_eq!(
            tracking_url(
                &configured,
                Some("acme"),
                Some("1"),
                Some("https://x.example/1")
            )
            .as_deref(),
            Some("https://x.example/1")
        );
        assert_eq!(
            tracking_url(&configured, Some("nobody"), Some("1"), None),
            None
        );
        assert_eq!(tracking_url(&configured, Some("acme"), None, None), None);
        assert_eq!(tracking_url(&configured, None, Some("1"), None), None);
    }
}
