//! `shop order`: checkout, an order's life (pay, ship, deliver, cancel,
//! refund) and order analytics.
//!
//! `order create` places one order from `--item` flags or a cart; `order
//! create -` places many, one per NDJSON line of stdin (see [`batch`]).
//! Amounts are typed and shown as decimals in the order's own currency and
//! travel as integer minor units. A declined payment is exit 7, and the order
//! it was for stays pending, to be paid later with `order pay`.

mod batch;

use serde::Serialize;
use shop_wire::Page;
use shop_wire::cart::{CartId, LineRequest};
use shop_wire::money::{Currency, format_amount};
use shop_wire::orders::{
    CurrencyAmount, DayRevenue, NewOrder, Order, OrderAnalytics, OrderId, OrderItem, OrderStatus,
    ShipOrder, StatusChange, StatusCount, TopProduct, Transition,
};
use shop_wire::payments::{MethodKind, PaymentMethod, Refund, RefundRequest};
use time::OffsetDateTime;

use super::product::{Amount, parse_price};
use super::{PageArgs, all_pages, choice, more_hint, parse_email, parse_sku};
use crate::client::ApiClient;
use crate::context::Context;
use crate::error::CliError;
use crate::output::{CellKind, Column, Format, Output, Tabular};

/// Orders of `order create -` sent at once.
const DEFAULT_CONCURRENCY: usize = 8;

/// What `--pay` accepts, for help texts and errors.
const PAY_FORMS: &str =
    "card:NUMBER[:MM/YY[:CVC]], apple_pay:TOKEN, google_pay:TOKEN, paypal:TOKEN or bank_transfer";

#[derive(Debug, clap::Subcommand)]
pub enum OrderCommand {
    /// Place an order from --item lines or a cart, and with --pay pay it at once;
    /// `order create -` places one order per NDJSON line of stdin.
    #[command(after_help = CREATE_HELP)]
    Create(CreateArgs),
    /// List orders, newest first, by status, customer and date.
    #[command(after_help = "\
Example: shop order list --status paid --from 2026-11-01 -q | xargs -n1 shop order ship")]
    List(ListArgs),
    /// Show one order with its items and status history.
    Get {
        /// The order's id (ord_...) or number (ORD-001042).
        #[arg(value_name = "ORDER", value_parser = parse_order_ref)]
        order: String,
    },
    /// Pay a pending order (one whose payment was declined, or that was placed without --pay).
    #[command(after_help = "\
Exit 7 when the payment is declined; the order stays pending and can be paid again.
Example: shop order pay ORD-001042 --pay card:4242424242424242:12/29")]
    Pay {
        /// The order's id (ord_...) or number (ORD-001042).
        #[arg(value_name = "ORDER", value_parser = parse_order_ref)]
        order: String,
        /// How to pay: card:NUMBER[:MM/YY[:CVC]], apple_pay:TOKEN, google_pay:TOKEN, paypal:TOKEN or bank_transfer.
        #[arg(long, value_name = "METHOD", value_parser = parse_pay)]
        pay: PaymentMethod,
    },
    /// Mark a paid order shipped (staff).
    #[command(after_help = "\
Example: shop order list --status paid -q | xargs -n1 shop order ship")]
    Ship {
        /// The order's id (ord_...) or number (ORD-001042).
        #[arg(value_name = "ORDER", value_parser = parse_order_ref)]
        order: String,
        /// The carrier's tracking number.
        #[arg(long, value_name = "TRACKING", value_parser = parse_text)]
        tracking: Option<String>,
        /// A note for the order's history.
        #[arg(long, value_parser = parse_text)]
        note: Option<String>,
    },
    /// Mark a shipped order delivered (staff).
    Deliver {
        /// The order's id (ord_...) or number (ORD-001042).
        #[arg(value_name = "ORDER", value_parser = parse_order_ref)]
        order: String,
        /// A note for the order's history.
        #[arg(long, value_parser = parse_text)]
        note: Option<String>,
    },
    /// Cancel a pending or paid order; its stock is released (refund a paid one separately).
    Cancel {
        /// The order's id (ord_...) or number (ORD-001042).
        #[arg(value_name = "ORDER", value_parser = parse_order_ref)]
        order: String,
        /// Why, for the order's history.
        #[arg(long, value_parser = parse_text)]
        note: Option<String>,
    },
    /// Refund an order's payment, all that is left of it or --amount (staff).
    #[command(after_help = "\
The amount is a decimal in the order's currency. Refunding more than was captured and not
yet refunded is refused (exit 5).
Example: shop order refund ORD-001042 --amount 12.50 --reason 'damaged in transit'")]
    Refund {
        /// The order's id (ord_...) or number (ORD-001042).
        #[arg(value_name = "ORDER", value_parser = parse_order_ref)]
        order: String,
        /// How much, as a decimal like 12.50 [default: all that is left].
        #[arg(long, value_name = "AMOUNT", value_parser = parse_price)]
        amount: Option<Amount>,
        /// Why, kept with the refund.
        #[arg(long, value_parser = parse_text)]
        reason: Option<String>,
    },
    /// Orders by status, revenue by day, average order value and best sellers (staff).
    Analytics,
}

const CREATE_HELP: &str = "\
One order:
  shop order create --item CHAIR-01:2 --item LAMP-02:1 --pay card:4242424242424242
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
    /// A line of the order, SKU:QTY (like CHAIR-01:2); repeat for more.
    #[arg(long = "item", value_name = "SKU:QTY", value_parser = parse_item)]
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
    /// With `-`: orders sent at once (results are still written in input order) [default: 8].
    #[arg(long, value_name = "N", allow_negative_numbers = true, conflicts_with_all = ["items", "cart"],
          value_parser = clap::value_parser!(u16).range(1..=64))]
    concurrency: Option<u16>,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only this status: pending, paid, shipped, delivered or cancelled.
    #[arg(long, value_parser = choice::<OrderStatus>(OrderStatus::ALL.iter().map(|s| s.as_str())))]
    status: Option<OrderStatus>,
    /// Only this customer's orders.
    #[arg(long, value_name = "EMAIL", value_parser = parse_email)]
    customer: Option<String>,
    /// Only orders placed at or after this day (2026-11-01) or time (RFC 3339).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    from: Option<String>,
    /// Only orders placed before this day's end (2026-11-30) or this time (RFC 3339).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    to: Option<String>,
    #[command(flatten)]
    page: PageArgs,
}

/// `-` and nothing else: the one positional of `order create`.
fn parse_stdin_marker(text: &str) -> Result<String, String> {
    if text == "-" {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "`{text}`: the only argument is `-` (read NDJSON orders from stdin); \
             give one order's lines with --item SKU:QTY"
        ))
    }
}

/// `SKU:QTY` with a whole QTY of at least 1.
pub(super) fn parse_item(text: &str) -> Result<LineRequest, String> {
    let (sku, quantity) = text
        .trim()
        .split_once(':')
        .ok_or_else(|| format!("`{text}` is not SKU:QTY (like CHAIR-01:2)"))?;
    let sku = parse_sku(sku)?;
    let quantity = parse_quantity(quantity, 1)
        .map_err(|err| format!("`{text}`: {err} (SKU:QTY, like CHAIR-01:2)"))?;
    Ok(LineRequest { sku, quantity })
}

/// A whole number of units, at least `min`.
pub(super) fn parse_quantity(text: &str, min: i64) -> Result<i64, String> {
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
/// of next year. Whether the card is any good is the payment provider's call
/// (test numbers that fail the checksum are how a decline is tried out).
pub(super) fn parse_pay(text: &str) -> Result<PaymentMethod, String> {
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

pub(super) fn parse_cart_id(text: &str) -> Result<CartId, String> {
    text.trim()
        .parse()
        .map_err(|err| format!("`{text}`: {err}"))
}

/// A day (`2026-11-01`) or an RFC 3339 time, passed on as typed.
fn parse_date(text: &str) -> Result<String, String> {
    let text = text.trim();
    let day = time::macros::format_description!("[year]-[month]-[day]");
    let valid = time::Date::parse(text, &day).is_ok()
        || OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).is_ok();
    if valid {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "`{text}` is neither a day like 2026-11-01 nor an RFC 3339 time like 2026-11-01T09:00:00Z"
        ))
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

/// `1999` USD as `19.99 USD`.
pub(super) fn money(minor: i64, currency: Currency) -> String {
    format!("{} {currency}", format_amount(minor, currency))
}

/// A refund amount in minor units of `currency`: more than nothing.
pub(super) fn refund_cents(amount: &Amount, currency: Currency) -> Result<i64, CliError> {
    let cents = amount.minor_units(currency, "--amount")?;
    if cents == 0 {
        return Err(CliError::Usage(
            "--amount: a refund of 0 refunds nothing".into(),
        ));
    }
    Ok(cents)
}

impl Tabular for Order {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("number", "number").kind(CellKind::Id),
            Column::new("status", "status").kind(CellKind::Status),
            Column::new("items", "item_count"),
            Column::new("total", "total").kind(CellKind::Id),
            Column::new("customer", "customer_email"),
            Column::new("created", "created_at").kind(CellKind::Time),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.id.to_string()
    }

    fn display_fields(&self) -> Vec<(&'static str, String)> {
        vec![("total", money(self.total_cents, self.currency))]
    }
}

/// An order as a table shows it on its own: what it is and where it stands;
/// its lines and history get tables of their own.
#[derive(Serialize)]
struct OrderView<'a> {
    number: &'a str,
    id: &'a OrderId,
    status: OrderStatus,
    total: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    refunded: Option<String>,
    customer: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    payment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    payment_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tracking_number: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cart: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

impl<'a> From<&'a Order> for OrderView<'a> {
    fn from(order: &'a Order) -> Self {
        OrderView {
            number: &order.number,
            id: &order.id,
            status: order.status,
            total: money(order.total_cents, order.currency),
            refunded: (order.refunded_cents != 0)
                .then(|| money(order.refunded_cents, order.currency)),
            customer: &order.customer_email,
            payment: order.payment_id.as_ref().map(ToString::to_string),
            payment_error: order
                .payment_error
                .as_ref()
                .map(|e| format!("{}: {}", e.code, e.message)),
            tracking_number: order.tracking_number.as_deref(),
            cart: order.cart_id.as_ref().map(ToString::to_string),
            created_at: order.created_at,
            updated_at: order.updated_at,
        }
    }
}

impl Tabular for OrderView<'_> {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("status", "status").kind(CellKind::Status),
            Column::new("id", "id").kind(CellKind::Id),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.id.to_string()
    }
}

/// A cart or order line with its prices written in the currency.
#[derive(Serialize)]
pub(super) struct PricedLine<'a> {
    sku: &'a str,
    name: &'a str,
    quantity: i64,
    unit_price_cents: i64,
    line_total_cents: i64,
    #[serde(skip)]
    currency: Currency,
}

impl<'a> PricedLine<'a> {
    pub(super) fn new(
        (sku, name): (&'a str, &'a str),
        quantity: i64,
        unit_price_cents: i64,
        line_total_cents: i64,
        currency: Currency,
    ) -> Self {
        PricedLine {
            sku,
            name,
            quantity,
            unit_price_cents,
            line_total_cents,
            currency,
        }
    }

    fn of_order(item: &'a OrderItem, currency: Currency) -> Self {
        PricedLine::new(
            (&item.sku, &item.name),
            item.quantity,
            item.unit_price_cents,
            item.line_total_cents,
            currency,
        )
    }
}

impl Tabular for PricedLine<'_> {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("sku", "sku").kind(CellKind::Id),
            Column::new("name", "name"),
            Column::new("qty", "quantity"),
            Column::new("unit price", "unit_price").kind(CellKind::Id),
            Column::new("line total", "line_total").kind(CellKind::Id),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.sku.to_owned()
    }

    fn display_fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("unit_price", money(self.unit_price_cents, self.currency)),
            ("line_total", money(self.line_total_cents, self.currency)),
        ]
    }
}

impl Tabular for StatusChange {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("at", "at").kind(CellKind::Time),
            Column::new("from", "from"),
            Column::new("to", "to").kind(CellKind::Status),
            Column::new("by", "actor"),
            Column::new("note", "note"),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.to.to_string()
    }
}

/// One order: on a terminal its summary, its lines and its history as
/// tables; otherwise the order as the server sent it.
pub(super) fn print_order(output: &mut Output, order: &Order) -> Result<(), CliError> {
    if output.format() != Format::Table {
        return output.one(order);
    }
    output.one(&OrderView::from(order))?;
    let lines: Vec<PricedLine<'_>> = order
        .items
        .iter()
        .map(|item| PricedLine::of_order(item, order.currency))
        .collect();
    if !lines.is_empty() {
        eprintln!();
        output.list(&(), &lines)?;
    }
    if !order.history.is_empty() {
        eprintln!("\nhistory:");
        output.list(&(), &order.history)?;
    }
    Ok(())
}

impl Tabular for Refund {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("id", "id").kind(CellKind::Id),
            Column::new("amount", "amount").kind(CellKind::Id),
            Column::new("status", "status").kind(CellKind::Status),
            Column::new("reason", "reason"),
            Column::new("created", "created_at").kind(CellKind::Time),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.id.to_string()
    }

    fn display_fields(&self) -> Vec<(&'static str, String)> {
        vec![("amount", money(self.amount_cents, self.currency))]
    }
}

impl Tabular for StatusCount {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("status", "status").kind(CellKind::Status),
            Column::new("orders", "count"),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.status.to_string()
    }
}

impl Tabular for DayRevenue {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("day", "day").kind(CellKind::Id),
            Column::new("orders", "orders"),
            Column::new("revenue", "revenue").kind(CellKind::Id),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.day.clone()
    }

    fn display_fields(&self) -> Vec<(&'static str, String)> {
        vec![("revenue", money(self.revenue_cents, self.currency))]
    }
}

impl Tabular for CurrencyAmount {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("currency", "currency"),
            Column::new("average order", "amount").kind(CellKind::Id),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.currency.to_string()
    }

    fn display_fields(&self) -> Vec<(&'static str, String)> {
        vec![("amount", money(self.amount_cents, self.currency))]
    }
}

impl Tabular for TopProduct {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("sku", "sku").kind(CellKind::Id),
            Column::new("name", "name"),
            Column::new("qty sold", "quantity"),
            Column::new("revenue", "revenue").kind(CellKind::Id),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.sku.clone()
    }

    fn display_fields(&self) -> Vec<(&'static str, String)> {
        vec![("revenue", money(self.revenue_cents, self.currency))]
    }
}

impl Tabular for OrderAnalytics {
    fn columns() -> &'static [Column] {
        &[]
    }

    fn id(&self) -> String {
        String::new()
    }
}

/// On a terminal a table per part; otherwise the whole document as one record.
fn print_analytics(output: &mut Output, analytics: &OrderAnalytics) -> Result<(), CliError> {
    if output.format() != Format::Table {
        return output.one(analytics);
    }
    eprintln!("orders by status:");
    output.list(&(), &analytics.counts_by_status)?;
    eprintln!("\naverage order value:");
    output.list(&(), &analytics.average_order_value)?;
    eprintln!("\ntop products:");
    output.list(&(), &analytics.top_products)?;
    eprintln!("\nrevenue by day (paid, shipped and delivered orders):");
    output.list(&(), &analytics.revenue_by_day)
}

/// Adds what to do next to the errors a person can act on: a declined
/// payment leaves a pending order to pay again; an illegal transition says
/// which ones the order allows.
pub(super) fn explain(err: CliError) -> CliError {
    let CliError::Api(mut api) = err else {
        return err;
    };
    let details = &api.detail.details;
    let text = |key: &str| details.get(key).and_then(serde_json::Value::as_str);
    let hint = match api.detail.code.as_str() {
        _ if api.status == 402 => text("order_number").or(text("order_id")).map(|order| {
            format!(
                "order {order} stays pending; pay it with `shop order pay {order} --pay METHOD`"
            )
        }),
        "illegal_transition" => {
            let allowed: Vec<&str> = details
                .get("allowed")
                .and_then(serde_json::Value::as_array)
                .map(|list| list.iter().filter_map(serde_json::Value::as_str).collect())
                .unwrap_or_default();
            text("from").map(|from| match allowed.as_slice() {
                [] => format!("an order that is {from} cannot change any more"),
                next => format!("an order that is {from} can become {}", next.join(" or ")),
            })
        }
        _ => None,
    };
    if let Some(hint) = hint {
        api.detail.message = format!("{}; {hint}", api.detail.message.trim_end_matches('.'));
    }
    CliError::Api(api)
}

impl OrderCommand {
    pub async fn run(self, context: &Context) -> Result<(), CliError> {
        let client = context.client().await?;
        let mut output = context.output();
        match self {
            OrderCommand::Create(args) if args.stdin.is_some() => {
                batch::run(
                    context,
                    &client,
                    &mut output,
                    args.concurrency.map_or(DEFAULT_CONCURRENCY, usize::from),
                )
                .await
            }
            OrderCommand::Create(args) => {
                let order: Order = client
                    .post("/api/orders")
                    .json(&NewOrder {
                        cart_id: args.cart,
                        items: merge_items(args.items),
                        customer_email: args.customer,
                        payment: args.pay,
                    })?
                    .send()
                    .await
                    .map_err(explain)?;
                print_order(&mut output, &order)?;
                if output.format() == Format::Table && order.status == OrderStatus::Pending {
                    eprintln!(
                        "\norder {} is pending; pay it with `shop order pay {} --pay METHOD`",
                        order.number, order.number
                    );
                }
                Ok(())
            }
            OrderCommand::List(args) => {
                let page = if args.page.all {
                    all_pages(|limit, offset| list_page(&client, &args, limit, offset)).await?
                } else {
                    list_page(&client, &args, args.page.limit, args.page.offset).await?
                };
                output.list(&page, &page.items)?;
                more_hint(&output, &page, "orders");
                Ok(())
            }
            OrderCommand::Get { order } => {
                let order: Order = client.get(&format!("/api/orders/{order}")).send().await?;
                print_order(&mut output, &order)
            }
            OrderCommand::Pay { order, pay } => {
                let order: Order = client
                    .post(&format!("/api/orders/{order}/pay"))
                    .json(&pay)?
                    .send()
                    .await
                    .map_err(explain)?;
                print_order(&mut output, &order)
            }
            OrderCommand::Ship {
                order,
                tracking,
                note,
            } => {
                let body = ShipOrder {
                    tracking_number: tracking,
                    note,
                };
                transition(&client, &mut output, &order, "ship", &body).await
            }
            OrderCommand::Deliver { order, note } => {
                transition(
                    &client,
                    &mut output,
                    &order,
                    "deliver",
                    &Transition { note },
                )
                .await
            }
            OrderCommand::Cancel { order, note } => {
                transition(&client, &mut output, &order, "cancel", &Transition { note }).await
            }
            OrderCommand::Refund {
                order,
                amount,
                reason,
            } => {
                let amount_cents = match &amount {
                    Some(amount) => {
                        let current: Order =
                            client.get(&format!("/api/orders/{order}")).send().await?;
                        Some(refund_cents(amount, current.currency)?)
                    }
                    None => None,
                };
                let refund: Refund = client
                    .post(&format!("/api/orders/{order}/refund"))
                    .json(&RefundRequest {
                        amount_cents,
                        reason,
                    })?
                    .send()
                    .await?;
                output.one(&refund)
            }
            OrderCommand::Analytics => {
                let analytics: OrderAnalytics = client.get("/api/orders/analytics").send().await?;
                print_analytics(&mut output, &analytics)
            }
        }
    }
}

async fn transition(
    client: &ApiClient,
    output: &mut Output,
    order: &str,
    action: &str,
    body: &impl Serialize,
) -> Result<(), CliError> {
    let order: Order = client
        .post(&format!("/api/orders/{order}/{action}"))
        .json(body)?
        .send()
        .await
        .map_err(explain)?;
    print_order(output, &order)
}

async fn list_page(
    client: &ApiClient,
    args: &ListArgs,
    limit: u32,
    offset: u64,
) -> Result<Page<Order>, CliError> {
    client
        .get("/api/orders")
        .query_opt("status", args.status)
        .query_opt("customer", args.customer.as_deref())
        .query_opt("from", args.from.as_deref())
        .query_opt("to", args.to.as_deref())
        .query("limit", limit.to_string())
        .query("offset", offset.to_string())
        .send()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn order_json() -> serde_json::Value {
        serde_json::json!({
            "id": "ord_01JDQ6Z5R3K8V2N4M7P9T0W1XY",
            "number": "ORD-001042",
            "status": "paid",
            "items": [
                {"sku": "CHAIR-01", "name": "Oak chair", "quantity": 2,
                 "unit_price_cents": 12999, "line_total_cents": 25998},
                {"sku": "LAMP-02", "name": "Brass lamp", "quantity": 1,
                 "unit_price_cents": 4500, "line_total_cents": 4500}
            ],
            "item_count": 3,
            "total_cents": 30498,
            "refunded_cents": 0,
            "currency": "USD",
            "customer_email": "kim@example.com",
            "user_id": null,
            "payment_id": "pay_01JDQ6Z5R3K8V2N4M7P9T0W1XY",
            "cart_id": null,
            "payment_error": null,
            "tracking_number": null,
            "history": [
                {"from": null, "to": "pending", "actor": "kim@example.com", "note": null,
                 "at": "2026-11-23T14:05:09Z"},
                {"from": "pending", "to": "paid", "actor": "system", "note": "card ****4242",
                 "at": "2026-11-23T14:05:10Z"}
            ],
            "created_at": "2026-11-23T14:05:09Z",
            "updated_at": "2026-11-23T14:05:10Z"
        })
    }

    fn order() -> Order {
        serde_json::from_value(order_json()).expect("an order")
    }

    fn parse(args: &[&str]) -> Result<crate::Cli, clap::Error> {
        crate::Cli::try_parse_from(["shop", "order"].iter().chain(args))
    }

    fn create(args: &[&str]) -> CreateArgs {
        let cli = parse(&[&["create"], args].concat()).unwrap_or_else(|err| panic!("{err}"));
        match cli.command {
            crate::Command::Remote(crate::RemoteCommand::Order(OrderCommand::Create(args))) => args,
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
        for (bad, says) in [
            ("CHAIR-01", "is not SKU:QTY"),
            ("CHAIR-01:0", "at least 1"),
            ("CHAIR-01:-1", "not a whole number"),
            ("CHAIR-01:1.5", "not a whole number"),
            ("CHAIR-01:", "not a whole number"),
            (":2", "a SKU is 1 to 64"),
            ("chair-01:2", "SKUs are upper case: CHAIR-01"),
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
        assert!(parse_date("2026-11-01").is_ok());
        assert!(parse_date("2026-11-01T09:00:00Z").is_ok());
        for bad in ["2026-13-01", "yesterday", "2026-11-01 09:00"] {
            assert!(parse_date(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn refund_amounts_are_exact_in_the_currency_and_more_than_nothing() {
        let amount = parse_price("12.50").expect("amount");
        assert_eq!(refund_cents(&amount, Currency::USD).ok(), Some(1250));
        let jpy: Currency = "JPY".parse().expect("JPY");
        let err = refund_cents(&amount, jpy).expect_err("JPY has no decimals");
        assert_eq!(err.exit_code(), 2);
        let zero = parse_price("0.00").expect("amount");
        assert_eq!(
            refund_cents(&zero, Currency::USD)
                .expect_err("zero")
                .exit_code(),
            2
        );
        assert!(parse_price("-5").is_err());
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
            (&["create", "--item", "CHAIR-01"], "is not SKU:QTY"),
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

    #[test]
    fn an_order_list_shows_number_status_and_total_and_ids_are_ids() {
        let orders = vec![order()];
        let table = Output::render_for_test(Format::Table, |o| o.list(&(), &orders));
        let header = table.lines().next().expect("header");
        for column in ["NUMBER", "STATUS", "ITEMS", "TOTAL", "CUSTOMER", "CREATED"] {
            assert!(header.contains(column), "{table}");
        }
        assert!(table.contains("304.98 USD"), "{table}");
        assert!(table.contains("ORD-001042") && table.contains("2026-11-23 14:05:09"));
        let ids = Output::render_for_test(Format::Id, |o| o.list(&(), &orders));
        assert_eq!(ids, "ord_01JDQ6Z5R3K8V2N4M7P9T0W1XY\n");
        let csv_text = Output::render_for_test(Format::Csv, |o| o.list(&(), &orders));
        assert!(
            csv_text.starts_with("id,number,status,items,"),
            "{csv_text}"
        );
    }

    #[test]
    fn one_order_shows_its_lines_and_history_on_a_terminal_and_the_document_otherwise() {
        let table = Output::render_for_test(Format::Table, |o| print_order(o, &order()));
        for text in [
            "ORD-001042",
            "304.98 USD",
            "129.99 USD",
            "259.98 USD",
            "UNIT PRICE",
            "card ****4242",
            "pending",
        ] {
            assert!(table.contains(text), "{text}: {table}");
        }
        assert!(!table.contains("REFUNDED"), "nothing refunded: {table}");
        let json = Output::render_for_test(Format::Json, |o| print_order(o, &order()));
        let value: serde_json::Value = serde_json::from_str(&json).expect("json");
        assert_eq!(value["total_cents"], 30498);
        assert_eq!(value["history"][1]["to"], "paid");
    }

    #[test]
    fn declines_and_illegal_transitions_say_what_to_do_next() {
        use crate::error::ApiError;
        let api = |status, code: &str, details| {
            CliError::Api(Box::new(ApiError {
                status,
                detail: shop_wire::ErrorDetail {
                    code: code.into(),
                    message: "Refused.".into(),
                    request_id: "r".into(),
                    details,
                },
            }))
        };
        let declined = explain(api(
            402,
            "card_declined",
            serde_json::json!({"order_id": "ord_x", "order_number": "ORD-000007", "payment_id": "pay_x"}),
        ));
        assert_eq!(declined.exit_code(), 7);
        assert_eq!(
            declined.to_string(),
            "Refused; order ORD-000007 stays pending; pay it with `shop order pay ORD-000007 --pay METHOD`"
        );
        let illegal = explain(api(
            409,
            "illegal_transition",
            serde_json::json!({"from": "delivered", "to": "cancelled", "allowed": []}),
        ));
        assert_eq!(illegal.exit_code(), 5);
        assert!(
            illegal.to_string().ends_with("cannot change any more"),
            "{illegal}"
        );
        let illegal = explain(api(
            409,
            "illegal_transition",
            serde_json::json!({"from": "pending", "to": "shipped", "allowed": ["paid", "cancelled"]}),
        ));
        assert!(
            illegal
                .to_string()
                .ends_with("can become paid or cancelled"),
            "{illegal}"
        );
        let other = explain(api(404, "not_found", serde_json::json!({})));
        assert_eq!(other.to_string(), "Refused.");
    }

    #[test]
    fn analytics_print_a_table_per_part_or_one_document() {
        let analytics: OrderAnalytics = serde_json::from_value(serde_json::json!({
            "counts_by_status": [{"status": "paid", "count": 3}],
            "revenue_by_day": [{"day": "2026-11-23", "currency": "USD", "orders": 3, "revenue_cents": 91494}],
            "average_order_value": [{"currency": "USD", "amount_cents": 30498}],
            "top_products": [{"sku": "CHAIR-01", "name": "Oak chair", "quantity": 6,
                              "revenue_cents": 77994, "currency": "USD"}]
        }))
        .expect("analytics");
        let table = Output::render_for_test(Format::Table, |o| print_analytics(o, &analytics));
        for text in [
            "914.94 USD",
            "304.98 USD",
            "779.94 USD",
            "QTY SOLD",
            "2026-11-23",
        ] {
            assert!(table.contains(text), "{text}: {table}");
        }
        let line = Output::render_for_test(Format::Ndjson, |o| print_analytics(o, &analytics));
        assert_eq!(line.lines().count(), 1);
        let parsed: OrderAnalytics = serde_json::from_str(&line).expect("json");
        assert_eq!(parsed, analytics);
    }
}
