//! `shop order`: checkout, an order's life (pay, ship, deliver, cancel,
//! refund) and order analytics.
//!
//! `order create` places one order from `--item` flags or a cart; `order
//! create -` places many, one per NDJSON line of stdin (see [`batch`]).
//! Amounts are typed and shown as decimals in the order's own currency and
//! travel as integer minor units. A declined payment is exit 7, and the order
//! it was for stays pending, to be paid later with `order pay`.
//!
//! One module per area: [`create`] (one order, its items and payment
//! methods), [`batch`] (many from stdin), [`quote`] (pricing without
//! ordering, and the address, shipping and discount options both take),
//! [`list`], [`ship`] (one shipment, or a file of them), [`transition`]
//! (pay, deliver, cancel, refund), [`document`] (the invoice and the
//! packing slip) and [`view`] (how orders, their lines and the analytics
//! are shown).

mod batch;
mod create;
mod document;
mod list;
mod quote;
mod ship;
mod transition;
mod view;

use shop_wire::orders::{Order, OrderAnalytics, OrderId, Transition};
use shop_wire::payments::PaymentMethod;

use super::product::{Amount, parse_price};
use crate::context::Context;
use crate::error::CliError;

pub(super) use create::{parse_cart_id, parse_item, parse_quantity};
pub(super) use transition::{confirm_money, refund_cents};
pub(super) use view::{PricedLine, money};

#[derive(Debug, clap::Subcommand)]
pub enum OrderCommand {
    /// Place an order from --item lines or a cart, and with --pay pay it at once;
    /// `order create -` places one order per NDJSON line of stdin.
    #[command(after_help = create::CREATE_HELP)]
    Create(Box<create::CreateArgs>),
    /// Price an order without placing it: subtotal, discounts, shipping, tax and total,
    /// and the shipping methods for the address.
    #[command(after_help = quote::QUOTE_HELP)]
    Quote(Box<quote::QuoteArgs>),
    /// List orders, newest first, by status, payment (financial status), customer and date.
    #[command(after_help = "\
Example: shop order list --status paid --financial-status paid -q | xargs -n1 shop order ship")]
    List(list::ListArgs),
    /// Show one order with its items and status history.
    Get {
        /// The order's id (ord_...) or number (ORD-001042).
        #[arg(add = crate::complete::orders(), value_name = "ORDER", value_parser = parse_order_ref)]
        order: String,
    },
    /// Pay a pending order (one whose payment was declined, or that was placed without --pay).
    #[command(after_help = "\
Exit 7 when the payment is declined; the order stays pending and can be paid again.
Example: shop order pay ORD-001042 --pay card:4242424242424242:12/29")]
    Pay {
        /// The order's id (ord_...) or number (ORD-001042).
        #[arg(add = crate::complete::orders(), value_name = "ORDER", value_parser = parse_order_ref)]
        order: String,
        /// How to pay: card:NUMBER[:MM/YY[:CVC]], apple_pay:TOKEN, google_pay:TOKEN, paypal:TOKEN or bank_transfer.
        #[arg(long, value_name = "METHOD", value_parser = create::parse_pay)]
        pay: PaymentMethod,
    },
    /// Ship a paid order, all that is left of it or some --item units, or many orders from a
    /// CSV file (--from-file) (staff); one refunded in full is refused (exit 5).
    #[command(after_help = ship::SHIP_HELP)]
    Ship(Box<ship::ShipArgs>),
    /// Mark a shipped order delivered (staff).
    Deliver {
        /// The order's id (ord_...) or number (ORD-001042).
        #[arg(add = crate::complete::orders(), value_name = "ORDER", value_parser = parse_order_ref)]
        order: String,
        /// A note for the order's history.
        #[arg(long, value_parser = parse_text)]
        note: Option<String>,
    },
    /// Cancel a pending order (its stock is released) or a paid one (staff: what is left of its
    /// payment is refunded to the customer and its items are restocked).
    #[command(after_help = "\
Cancelling a paid order moves money: on a terminal it asks first; elsewhere it needs --yes.
Example: shop order cancel ORD-001042 --note 'customer asked' --yes")]
    Cancel {
        /// The order's id (ord_...) or number (ORD-001042).
        #[arg(add = crate::complete::orders(), value_name = "ORDER", value_parser = parse_order_ref)]
        order: String,
        /// Why, for the order's history.
        #[arg(long, value_parser = parse_text)]
        note: Option<String>,
        /// Do not ask before refunding a paid order (needed when not on a terminal).
        #[arg(short, long)]
        yes: bool,
    },
    /// Refund an order's payment, all that is left of it or --amount (staff).
    #[command(after_help = "\
The amount is a decimal in the order's currency. Refunding more than was captured and not
yet refunded is refused (exit 5). Without --amount everything left goes back: on a terminal it
asks first; elsewhere it needs --yes.
Example: shop order refund ORD-001042 --amount 12.50 --reason 'damaged in transit'")]
    Refund {
        /// The order's id (ord_...) or number (ORD-001042).
        #[arg(add = crate::complete::orders(), value_name = "ORDER", value_parser = parse_order_ref)]
        order: String,
        /// How much, as a decimal like 12.50 [default: all that is left].
        #[arg(long, value_name = "AMOUNT", allow_hyphen_values = true, value_parser = parse_price)]
        amount: Option<Amount>,
        /// Why, kept with the refund.
        #[arg(long, value_parser = parse_text)]
        reason: Option<String>,
        /// Do not ask before refunding everything left (needed when not on a terminal).
        #[arg(short, long)]
        yes: bool,
    },
    /// Orders by status, revenue by day, average order value and best sellers (staff).
    Analytics,
    /// Print an order's invoice (HTML, or --pdf); its number is issued the first time.
    #[command(after_help = document::INVOICE_HELP)]
    Invoice(document::DocumentArgs),
    /// Print an order's packing slip: what is left to pack and where it goes (staff).
    #[command(after_help = document::PACKING_SLIP_HELP)]
    PackingSlip(document::DocumentArgs),
}

/// An order by id (`ord_...`) or number (`ORD-001042`, any case), checked
/// before it goes into a URL path.
pub(super) fn parse_order_ref(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.starts_with("ord_") {
        return text
            .parse::<OrderId>()
            .map(|id| id.as_str().to_owned())
            .map_err(|err| format!("`{text}`: {err}"));
    }
    let upper = text.to_ascii_uppercase();
    match upper.strip_prefix("ORD-") {
        Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(upper)
        }
        _ => Err(format!(
            "`{text}` is not an order id (ord_...) or number (like ORD-001042)"
        )),
    }
}

/// A note, reason or tracking number: not blank.
pub(super) fn parse_text(text: &str) -> Result<String, String> {
    let text = text.trim();
    if text.is_empty() {
        Err("cannot be empty".to_owned())
    } else {
        Ok(text.to_owned())
    }
}

impl OrderCommand {
    pub async fn run(self, context: &Context) -> Result<(), CliError> {
        let client = context.client().await?;
        let mut output = context.output();
        match self {
            OrderCommand::Create(args) => create::run(context, &client, &mut output, *args).await,
            OrderCommand::Quote(args) => quote::run(&client, &mut output, *args).await,
            OrderCommand::List(args) => list::run(&client, &mut output, &args).await,
            OrderCommand::Get { order } => {
                let order: Order = client.get(&format!("/api/orders/{order}")).send().await?;
                view::print_order(&mut output, &order)
            }
            OrderCommand::Pay { order, pay } => {
                transition::pay(&client, &mut output, &order, &pay).await
            }
            OrderCommand::Ship(args) => ship::run(&client, &mut output, *args).await,
            OrderCommand::Deliver { order, note } => {
                let body = Transition { note };
                transition::transition(&client, &mut output, &order, "deliver", &body).await
            }
            OrderCommand::Cancel { order, note, yes } => {
                if !yes {
                    transition::confirm_cancel(&client, &order).await?;
                }
                let body = Transition { note };
                transition::transition(&client, &mut output, &order, "cancel", &body).await
            }
            OrderCommand::Refund {
                order,
                amount,
                reason,
                yes,
            } => {
                let refund = transition::RefundArgs {
                    amount: amount.as_ref(),
                    reason,
                    yes,
                };
                transition::refund(&client, &mut output, &order, refund).await
            }
            OrderCommand::Invoice(args) => document::run(&client, "invoice", args).await,
            OrderCommand::PackingSlip(args) => document::run(&client, "packing-slip", args).await,
            OrderCommand::Analytics => {
                let analytics: OrderAnalytics = client.get("/api/orders/analytics").send().await?;
                view::print_analytics(&mut output, &analytics)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_are_named_by_id_or_number() {
        assert!(parse_order_ref("ord_01JDQ6Z5R3K8V2N4M7P9T0W1XY").is_ok());
        assert_eq!(parse_order_ref("ORD-001042").as_deref(), Ok("ORD-001042"));
        assert_eq!(parse_order_ref("ord-001042").as_deref(), Ok("ORD-001042"));
        for bad in [
            "ord_nope",
            "1042",
            "ORD-",
            "ORD-12a",
            "pay_01JDQ6Z5R3K8V2N4M7P9T0W1XY",
        ] {
            assert!(parse_order_ref(bad).is_err(), "{bad}");
        }
    }
}
