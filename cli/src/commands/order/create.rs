//! `shop order create`: one order from `--item` lines or a cart, paid at
//! once with `--pay` or left pending; with `-`, many from stdin ([`super::batch`]).
//! Items and payment methods are checked here, before any request (exit 2).

use shop_wire::cart::{CartId, LineRequest};
use shop_wire::orders::{NewOrder, Order, OrderStatus};
use shop_wire::payments::{MethodKind, PaymentMethod};
use time::OffsetDateTime;

use super::super::{parse_email, parse_sku};
use super::batch;
use super::quote::PricingArgs;
use super::transition::explain;
use super::view::print_order;
use crate::client::ApiClient;
use crate::context::Context;
use crate::error::CliError;
use crate::output::{Format, Output};

/// Orders of `order create -` sent at once.
const DEFAULT_CONCURRENCY: usize = 8;

/// What `--pay` accepts, for help texts and errors.
const PAY_FORMS: &str =
    "card:NUMBER[:MM/YY[:CVC]], apple_pay:TOKEN, google_pay:TOKEN, paypal:TOKEN or bank_transfer";

pub(super) const CREATE_HELP: &str = "\
One order:
  shop order create --item CHAIR-01:2 --item LAMP-02:1 --pay card:4242424242424242
  shop order create --item MUG-01 --ship-to address.json --shipping standard --discount WINTER10
Once the shop ships (has a shipping zone) an order needs --ship-to (or --country with --name,
--line1, --city, --postal-code) and --shipping; `shop order quote` shows the price first.
  shop order create --cart crt_01JDQ6Z5R3K8V2N4M7P9T0W1XY --pay paypal:tok_123
A card's expiry defaults to December of next year. Without --pay the order stays pending for
`shop order pay`; with bank_transfer it stays pending until the transfer is settled.

Many orders, one JSON object per line of stdin, in the API's shape (each one
line of input; wrapped here to fit):
  {\"items\":[{\"sku\":\"CHAIR-01\",\"quantity\":2}],
   \"customer_email\":\"kim@example.com\",
   \"payment\":{\"method\":\"card\",\"card_number\":\"4242424242424242\",
              \"exp_month\":12,\"exp_year\":2029}}
  generate-orders | shop order create - --idempotency-key batch-7 > out.ndjson
Each input line gets one result line, in input order, whatever order they
finish in:
  {\"line\":1,\"ok\":true,\"order\":{...}}
  {\"line\":2,\"ok\":false,\"status\":402,
   \"error\":{\"code\":\"card_declined\",\"message\":...}}
Blank lines are skipped; a line that is not an order gets code invalid_json or invalid_order
and is not sent. With --idempotency-key K line N is sent with the key K-N, so running the
same input again replays the first answers and charges no card twice (use a new key to retry
the failed lines for real). -q prints the created orders' ids instead, failures on stderr.
Exit 0 when every line succeeded, else the code of the first failed line: 7 payment declined,
5 conflict (stock, archived product), 4 not found, 6 not allowed, 1 invalid or refused.
An unreachable server or an ended login (3, 6) stops the batch: lines in flight are
finished and reported, later lines are not sent.";

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("source").required(true).args(["stdin", "items", "cart"])))]
pub struct CreateArgs {
    /// `-`: read NDJSON orders from stdin, one per line, instead of --item/--cart.
    #[arg(value_name = "-", value_parser = parse_stdin_marker, conflicts_with_all = ["customer", "pay"])]
    stdin: Option<String>,
    /// A line of the order, SKU[:QTY] (like CHAIR-01:2; one unit without :QTY); repeat for more.
    #[arg(long = "item", value_name = "SKU[:QTY]", value_parser = parse_item)]
    items: Vec<LineRequest>,
    /// Check out this cart (crt_..., see `shop cart show -q`) instead of --item lines.
    #[arg(long, value_name = "CART", value_parser = parse_cart_id)]
    cart: Option<CartId>,
    /// The customer's email [default: yours]; staff may order for any customer.
    #[arg(long, value_name = "EMAIL", value_parser = parse_email)]
    customer: Option<String>,
    /// Pay at once: card:NUMBER[:MM/YY[:CVC]], apple_pay:TOKEN, google_pay:TOKEN, paypal:TOKEN or bank_transfer.
    #[arg(long, value_name = "METHOD", value_parser = parse_pay)]
    pay: Option<PaymentMethod>,
    #[command(flatten)]
    pricing: PricingArgs,
    /// With `-`: orders sent at once (results are still written in input order) [default: 8].
    #[arg(long, value_name = "N", allow_negative_numbers = true, conflicts_with_all = ["items", "cart"],
          value_parser = clap::value_parser!(u16).range(1..=64))]
    concurrency: Option<u16>,
}

/// `-` and nothing else: the one positional of `order create`.
fn parse_stdin_marker(text: &str) -> Result<String, String> {
    if text == "-" {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "`{text}`: the only argument is `-` (read NDJSON orders from stdin); \
             give one order's lines with --item SKU[:QTY]"
        ))
    }
}

/// `SKU[:QTY]` with a whole QTY of at least 1; one unit without it, as `cart add`.
pub(in crate::commands) fn parse_item(text: &str) -> Result<LineRequest, String> {
    let (sku, quantity) = match text.trim().split_once(':') {
        Some((sku, quantity)) => (sku, Some(quantity)),
        None => (text, None),
    };
    let sku = parse_sku(sku)?;
    let quantity = match quantity {
        Some(quantity) => parse_quantity(quantity, 1)
            .map_err(|err| format!("`{text}`: {err} (SKU[:QTY], like CHAIR-01:2)"))?,
        None => 1,
    };
    Ok(LineRequest { sku, quantity })
}

/// A whole number of units, at least `min`.
pub(in crate::commands) fn parse_quantity(text: &str, min: i64) -> Result<i64, String> {
    let text = text.trim();
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("the quantity `{text}` is not a whole number"));
    }
    let quantity: i64 = text
        .parse()
        .map_err(|_| format!("the quantity `{text}` is too large"))?;
    if quantity < min {
        return Err(format!("the quantity must be at least {min}"));
    }
    Ok(quantity)
}

/// The same SKU given twice is one line with both quantities, in first-seen order.
fn merge_items(items: Vec<LineRequest>) -> Vec<LineRequest> {
    let mut merged: Vec<LineRequest> = Vec::with_capacity(items.len());
    for item in items {
        match merged.iter_mut().find(|line| line.sku == item.sku) {
            Some(line) => line.quantity = line.quantity.saturating_add(item.quantity),
            None => merged.push(item),
        }
    }
    merged
}

/// `card:NUMBER[:MM/YY[:CVC]]`, `apple_pay:TOKEN`, `google_pay:TOKEN`,
/// `paypal:TOKEN` or `bank_transfer`. A card's expiry defaults to December
/// of next year. A number that fails the Luhn checksum is a typo, refused
/// here (exit 2) as the server would refuse it; whether a well-formed card is
/// any good is the payment provider's call (a decline, exit 7).
pub(in crate::commands) fn parse_pay(text: &str) -> Result<PaymentMethod, String> {
    parse_pay_at(text, OffsetDateTime::now_utc().year())
}

fn parse_pay_at(text: &str, this_year: i32) -> Result<PaymentMethod, String> {
    let text = text.trim();
    let (kind, rest) = match text.split_once(':') {
        Some((kind, rest)) => (kind, Some(rest)),
        None => (text, None),
    };
    let method: MethodKind = kind
        .to_ascii_lowercase()
        .parse()
        .map_err(|_| format!("`{kind}` is not a payment method; use {PAY_FORMS}"))?;
    let wallet = |token: Option<&str>| {
        let token = token
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                format!("{method} needs its token: {method}:TOKEN (from the wallet's checkout)")
            })?;
        Ok(PaymentMethod {
            method,
            card_number: None,
            exp_month: None,
            exp_year: None,
            cvc: None,
            token: Some(token.to_owned()),
        })
    };
    match method {
        MethodKind::BankTransfer => match rest {
            None => Ok(PaymentMethod {
                method,
                card_number: None,
                exp_month: None,
                exp_year: None,
                cvc: None,
                token: None,
            }),
            Some(_) => Err("bank_transfer takes nothing after it".to_owned()),
        },
        MethodKind::ApplePay | MethodKind::GooglePay | MethodKind::Paypal => wallet(rest),
        MethodKind::Card => parse_card(rest.unwrap_or_default(), this_year),
    }
}

/// `NUMBER[:MM/YY[:CVC]]`; spaces and dashes in the number are dropped.
fn parse_card(text: &str, this_year: i32) -> Result<PaymentMethod, String> {
    let mut parts = text.split(':');
    let number: String = parts
        .next()
        .unwrap_or_default()
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .collect();
    if !(12..=19).contains(&number.len()) || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(
            "a card is card:NUMBER[:MM/YY[:CVC]] with a 12-19 digit number \
             (like card:4242424242424242:12/29)"
                .to_owned(),
        );
    }
    if !luhn_valid(&number) {
        return Err(format!(
            "the card number ending {} fails its checksum (a typo?)",
            &number[number.len() - 4..]
        ));
    }
    let (month, year) = match parts.next() {
        None => (12, this_year + 1),
        Some(expiry) => parse_expiry(expiry, this_year)?,
    };
    let cvc = match parts.next() {
        None => None,
        Some(cvc) if (3..=4).contains(&cvc.len()) && cvc.bytes().all(|b| b.is_ascii_digit()) => {
            Some(cvc.to_owned())
        }
        Some(_) => return Err("a card's CVC is 3 or 4 digits".to_owned()),
    };
    if parts.next().is_some() {
        return Err(
            "too many parts: a card is card:NUMBER[:MM/YY[:CVC]] (like card:4242424242424242:12/29:123)"
                .to_owned(),
        );
    }
    let mut card = PaymentMethod::card(&number, month, year);
    card.cvc = cvc;
    Ok(card)
}

/// The Luhn checksum every card number carries: from the right, every
/// second digit doubled (less 9 when over 9), the sum a multiple of 10.
fn luhn_valid(digits: &str) -> bool {
    let sum: u32 = digits
        .bytes()
        .rev()
        .enumerate()
        .map(|(index, byte)| {
            let digit = u32::from(byte - b'0');
            match (index % 2 == 1, digit * 2) {
                (true, doubled) if doubled > 9 => doubled - 9,
                (true, doubled) => doubled,
                (false, _) => digit,
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

/// `MM/YY` or `MM/YYYY`. A past date is left to the provider (an expired card is declined).
fn parse_expiry(text: &str, this_year: i32) -> Result<(u32, i32), String> {
    let invalid = || format!("`{text}` is not a card expiry MM/YY (like 12/29)");
    let (month, year) = text.split_once('/').ok_or_else(invalid)?;
    let numeric = |part: &str| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit());
    if !numeric(month) || !numeric(year) || month.len() > 2 || !matches!(year.len(), 2 | 4) {
        return Err(invalid());
    }
    let month: u32 = month.parse().map_err(|_| invalid())?;
    if !(1..=12).contains(&month) {
        return Err(format!("`{text}`: the month is 01 to 12"));
    }
    let year: i32 = year.parse().map_err(|_| invalid())?;
    let year = if year < 100 {
        this_year - this_year % 100 + year
    } else {
        year
    };
    Ok((month, year))
}
pub(in crate::commands) fn parse_cart_id(text: &str) -> Result<CartId, String> {
    text.trim()
        .parse()
        .map_err(|err| format!("`{text}`: {err}"))
}

pub(super) async fn run(
    context: &Context,
    client: &ApiClient,
    output: &mut Output,
    args: CreateArgs,
) -> Result<(), CliError> {
    if args.stdin.is_some() {
        let concurrency = args.concurrency.map_or(DEFAULT_CONCURRENCY, usize::from);
        return batch::run(context, client, output, concurrency).await;
    }
    let order: Order = client
        .post("/api/orders")
        .json(&NewOrder {
            cart_id: args.cart,
            items: merge_items(args.items),
            customer_email: args.customer,
            payment: args.pay,
            shipping_address: args.pricing.order_address()?,
            shipping_address_id: args.pricing.saved_address(),
            billing_address: None,
            billing_address_id: None,
            shipping_method: args.pricing.shipping_method(),
            discount_codes: args.pricing.discount_codes(),
        })?
        .send()
        .await
        .map_err(explain)?;
    print_order(output, &order)?;
    if output.format() == Format::Table && order.status == OrderStatus::Pending {
        eprintln!(
            "\norder {} is pending; pay it with `shop order pay {} --pay METHOD`",
            order.number, order.number
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::OrderCommand;
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<crate::Cli, clap::Error> {
        crate::Cli::try_parse_from(["shop", "order"].iter().chain(args))
    }

    fn create(args: &[&str]) -> CreateArgs {
        let cli = parse(&[&["create"], args].concat()).unwrap_or_else(|err| panic!("{err}"));
        match cli.command {
            crate::Command::Remote(crate::RemoteCommand::Order(OrderCommand::Create(args))) => {
                *args
            }
            other => panic!("not an order create: {other:?}"),
        }
    }

    #[test]
    fn items_are_sku_colon_quantity() {
        assert_eq!(
            parse_item("CHAIR-01:2"),
            Ok(LineRequest {
                sku: "CHAIR-01".into(),
                quantity: 2
            })
        );
        assert_eq!(
            parse_item("chair-01"),
            Ok(LineRequest {
                sku: "CHAIR-01".into(),
                quantity: 1
            }),
            "one unit without :QTY, as `cart add`, and any case"
        );
        for (bad, says) in [
            ("CHAIR-01:0", "at least 1"),
            ("CHAIR-01:-1", "not a whole number"),
            ("CHAIR-01:1.5", "not a whole number"),
            ("CHAIR-01:", "not a whole number"),
            (":2", "a SKU is 1 to 64"),
            ("ch air:2", "only upper-case letters"),
            ("CHAIR-01:99999999999999999999", "too large"),
        ] {
            let err = parse_item(bad).expect_err(bad);
            assert!(err.contains(says), "{bad}: {err}");
        }
        assert_eq!(
            merge_items(vec![
                parse_item("A:1").expect("item"),
                parse_item("B:2").expect("item"),
                parse_item("A:3").expect("item"),
            ]),
            vec![
                parse_item("A:4").expect("item"),
                parse_item("B:2").expect("item")
            ]
        );
    }

    #[test]
    fn payment_methods_are_cards_wallets_or_bank_transfer() {
        let card = parse_pay_at("card:4242424242424242", 2026).expect("card");
        assert_eq!(card, PaymentMethod::card("4242424242424242", 12, 2027));
        let card = parse_pay_at("card:4242 4242-4242 4242:03/29:123", 2026).expect("card");
        assert_eq!(card.card_number.as_deref(), Some("4242424242424242"));
        assert_eq!((card.exp_month, card.exp_year), (Some(3), Some(2029)));
        assert_eq!(card.cvc.as_deref(), Some("123"));
        let card = parse_pay_at("card:4000000000000002:1/2031", 2026).expect("card");
        assert_eq!((card.exp_month, card.exp_year), (Some(1), Some(2031)));

        let paypal = parse_pay_at("paypal:tok_123", 2026).expect("paypal");
        assert_eq!(paypal.method, MethodKind::Paypal);
        assert_eq!(paypal.token.as_deref(), Some("tok_123"));
        assert!(paypal.card_number.is_none());
        assert_eq!(
            parse_pay_at("APPLE_PAY:t", 2026).expect("apple").method,
            MethodKind::ApplePay
        );
        assert_eq!(
            parse_pay_at("google_pay:t", 2026).expect("google").method,
            MethodKind::GooglePay
        );
        let transfer = parse_pay_at("bank_transfer", 2026).expect("transfer");
        assert_eq!(transfer.method, MethodKind::BankTransfer);
        assert_eq!(
            serde_json::to_value(&transfer).expect("json"),
            serde_json::json!({"method": "bank_transfer"})
        );

        for (bad, says) in [
            ("visa:4242424242424242", "not a payment method"),
            ("card", "12-19 digit number"),
            ("card:4242", "12-19 digit number"),
            ("card:42424242424242x2", "12-19 digit number"),
            ("card:4242424242424241", "ending 4241 fails its checksum"),
            ("card:4242424242424242:13/29", "month is 01 to 12"),
            ("card:4242424242424242:00/29", "month is 01 to 12"),
            ("card:4242424242424242:1229", "not a card expiry"),
            ("card:4242424242424242:12/2", "not a card expiry"),
            ("card:4242424242424242:12/29:12", "CVC is 3 or 4 digits"),
            ("card:4242424242424242:12/29:123:x", "too many parts"),
            ("paypal", "paypal needs its token"),
            ("apple_pay: ", "apple_pay needs its token"),
            ("bank_transfer:x", "takes nothing"),
        ] {
            let err = parse_pay_at(bad, 2026).expect_err(bad);
            assert!(err.contains(says), "{bad}: {err}");
        }
        let err = parse_pay_at("cash", 2026).expect_err("cash");
        assert!(err.contains("bank_transfer"), "lists the forms: {err}");
    }

    #[test]
    fn the_default_expiry_is_december_next_year() {
        let card = parse_pay("card:4242424242424242").expect("card");
        assert_eq!(card.exp_month, Some(12));
        assert_eq!(card.exp_year, Some(OffsetDateTime::now_utc().year() + 1));
    }

    #[test]
    fn create_takes_items_a_cart_or_stdin_and_only_one_of_them() {
        let args = create(&[
            "--item",
            "CHAIR-01:2",
            "--item",
            "LAMP-02:1",
            "--customer",
            "kim@example.com",
            "--pay",
            "bank_transfer",
        ]);
        assert_eq!(args.items.len(), 2);
        assert_eq!(args.customer.as_deref(), Some("kim@example.com"));
        assert!(args.stdin.is_none());
        assert_eq!(args.concurrency, None);
        let args = create(&["-", "--concurrency", "3"]);
        assert_eq!(
            (args.stdin.as_deref(), args.concurrency),
            (Some("-"), Some(3))
        );
        assert!(
            create(&["--cart", "crt_01JDQ6Z5R3K8V2N4M7P9T0W1XY"])
                .cart
                .is_some()
        );

        for (bad, says) in [
            (&["create"][..], "required"),
            (&["create", "--item", "CHAIR-01:0"], "at least 1"),
            (
                &[
                    "create",
                    "--item",
                    "A:1",
                    "--cart",
                    "crt_01JDQ6Z5R3K8V2N4M7P9T0W1XY",
                ],
                "cannot be used with",
            ),
            (&["create", "-", "--item", "A:1"], "cannot be used with"),
            (
                &["create", "-", "--pay", "bank_transfer"],
                "cannot be used with",
            ),
            (&["create", "x"], "the only argument is `-`"),
            (&["create", "-", "--concurrency", "0"], "0"),
            (
                &["create", "--item", "A:1", "--concurrency", "2"],
                "cannot be used with",
            ),
            (
                &["create", "--item", "A:1", "--pay", "card:12"],
                "12-19 digit",
            ),
            (
                &["create", "--item", "A:1", "--customer", "kim"],
                "not an email",
            ),
        ] {
            let err = parse(bad).expect_err(&format!("{bad:?}"));
            assert_eq!(err.exit_code(), 2, "{bad:?}");
            assert!(err.to_string().contains(says), "{bad:?}: {err}");
        }
    }

    #[test]
    fn a_card_number_never_shows_in_debug_output() {
        let args = create(&["--item", "A:1", "--pay", "card:4242424242424242:12/29:123"]);
        let debug = format!("{args:?}");
        assert!(!debug.contains("4242424242424242"), "{debug}");
        assert!(!debug.contains("123\""), "{debug}");
    }
}
