//! `shop payment`: payment attempts and their refunds, bank transfers to
//! settle, and payment analytics (staff).
//!
//! Amounts are typed as decimals in the payment's own currency, which is
//! read first; they travel as integer minor units.

use serde::Serialize;
use shop_wire::Page;
use shop_wire::money::Currency;
use shop_wire::orders::Order;
use shop_wire::payments::{
    CurrencyVolume, MethodCount, MethodKind, Payment, PaymentAnalytics, PaymentId, PaymentStatus,
    Refund, RefundRequest,
};
use time::OffsetDateTime;

use super::order::{confirm_money, money, parse_order_ref, parse_text, refund_cents};
use super::product::{Amount, parse_price};
use super::{PageArgs, all_pages, choice, more_hint};
use crate::client::ApiClient;
use crate::context::Context;
use crate::error::CliError;
use crate::output::{CellKind, Column, Format, Output, Tabular};

#[derive(Debug, clap::Subcommand)]
pub enum PaymentCommand {
    /// List payment attempts, newest first, by status, order and method.
    #[command(after_help = "\
Example: shop payment list --status failed -o ndjson | jq -r .failure_code | sort | uniq -c")]
    List(ListArgs),
    /// Show one payment with its refunds.
    Get {
        /// The payment id (pay_...), or the order (ord_... or ORD-001042) for its latest payment.
        #[arg(add = crate::complete::orders(), value_name = "PAYMENT", value_parser = parse_payment_ref)]
        id: PaymentRef,
    },
    /// Refund a payment, all that is left of it or --amount.
    #[command(after_help = "\
The amount is a decimal in the payment's currency. Refunding more than was captured and not
yet refunded is refused (exit 5). Without --amount everything left goes back: on a terminal it
asks first; elsewhere it needs --yes.
Example: shop payment refund pay_01JDQ6Z5R3K8V2N4M7P9T0W1XY --amount 12.50 --reason 'late delivery'")]
    Refund {
        /// The payment id (pay_...), or the order (ord_... or ORD-001042) for its latest payment.
        #[arg(add = crate::complete::orders(), value_name = "PAYMENT", value_parser = parse_payment_ref)]
        id: PaymentRef,
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
    /// Mark a pending bank transfer as received: the payment succeeds and its order is paid.
    Settle {
        /// The payment id (pay_...), or the order (ord_... or ORD-001042) for its latest payment.
        #[arg(add = crate::complete::orders(), value_name = "PAYMENT", value_parser = parse_payment_ref)]
        id: PaymentRef,
    },
    /// Attempts, success and refund rates, volume per currency and counts per method.
    Analytics,
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only this status: processing, pending, succeeded, failed, cancelled or refunded.
    #[arg(long, value_parser = payment_status(), hide_possible_values = true)]
    status: Option<PaymentStatus>,
    /// Only the payments of this order, by id (ord_...) or number (ORD-001042).
    #[arg(add = crate::complete::orders(), long, value_name = "ORDER", value_parser = parse_order_ref)]
    order: Option<String>,
    /// Only this method: card, apple_pay, google_pay, paypal or bank_transfer.
    #[arg(long, value_parser = choice::<MethodKind>(MethodKind::ALL.iter().map(|m| m.as_str())))]
    method: Option<MethodKind>,
    #[command(flatten)]
    page: PageArgs,
}

/// A payment as a person names it: its id, or the order it pays.
#[derive(Clone, Debug, PartialEq)]
pub enum PaymentRef {
    Payment(PaymentId),
    /// An order id or number; its latest payment is meant.
    Order(String),
}

impl PaymentRef {
    /// The payment id, looking up the order's latest payment when an order was named.
    async fn resolve(&self, client: &ApiClient) -> Result<PaymentId, CliError> {
        match self {
            PaymentRef::Payment(id) => Ok(id.clone()),
            PaymentRef::Order(order) => {
                let found: Order = client.get(&format!("/api/orders/{order}")).send().await?;
                found.payment_id.ok_or_else(|| {
                    CliError::NotFound(format!(
                        "order {} has no payment yet; pay it with `shop order pay {}`",
                        found.number, found.number
                    ))
                })
            }
        }
    }
}

/// `pay_...`, or an order by id or number (`ORD-001013`, any case).
fn parse_payment_ref(text: &str) -> Result<PaymentRef, String> {
    let text = text.trim();
    if text.starts_with("pay_") {
        return text
            .parse()
            .map(PaymentRef::Payment)
            .map_err(|err| format!("`{text}`: {err}"));
    }
    parse_order_ref(text).map(PaymentRef::Order).map_err(|_| {
        format!("`{text}` is not a payment id (pay_...) or an order (ord_... or ORD-001042)")
    })
}

/// The statuses `--status` takes. Orders spell `cancelled`, and so does the
/// command line; the wire keeps Stripe's `canceled` for a payment (it mirrors
/// a PaymentIntent's status), which is also accepted.
const PAYMENT_STATUSES: &[&str] = &[
    "processing",
    "pending",
    "succeeded",
    "failed",
    "cancelled",
    "canceled",
    "refunded",
];

fn payment_status() -> impl clap::builder::TypedValueParser<Value = PaymentStatus> {
    use clap::builder::TypedValueParser;
    clap::builder::PossibleValuesParser::new(PAYMENT_STATUSES).try_map(|text: String| {
        match text.as_str() {
            "cancelled" => Ok(PaymentStatus::Canceled),
            other => other.parse::<PaymentStatus>(),
        }
    })
}

/// A payment status as tables write it: `cancelled`, as orders spell it.
fn status_text(status: PaymentStatus) -> String {
    match status {
        PaymentStatus::Canceled => "cancelled".to_owned(),
        other => other.to_string(),
    }
}

impl Tabular for Payment {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("order", "order").kind(CellKind::Id),
            Column::new("method", "method"),
            Column::new("status", "status").kind(CellKind::Status),
            Column::new("amount", "amount").kind(CellKind::Id),
            Column::new("refunded", "refunded").kind(CellKind::Id),
            Column::new("age", "created_at").kind(CellKind::Age),
            Column::new("id", "id").kind(CellKind::Id).wide(),
            Column::new("order id", "order_id")
                .kind(CellKind::Id)
                .wide(),
            Column::new("created", "created_at")
                .kind(CellKind::Time)
                .wide(),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.id.to_string()
    }

    fn display_fields(&self) -> Vec<(&'static str, String)> {
        let refunded = if self.refunded_cents == 0 {
            String::new()
        } else {
            money(self.refunded_cents, self.currency)
        };
        vec![
            ("status", status_text(self.status)),
            ("order", order_label(self)),
            ("amount", money(self.amount_cents, self.currency)),
            ("refunded", refunded),
        ]
    }
}

/// The order a payment is for, by its number when the server sent it.
fn order_label(payment: &Payment) -> String {
    payment
        .order_number
        .clone()
        .unwrap_or_else(|| payment.order_id.to_string())
}

/// A payment as a table shows it on its own; its refunds get a table of their own.
#[derive(Serialize)]
struct PaymentView<'a> {
    id: &'a PaymentId,
    order: String,
    order_id: String,
    status: String,
    method: MethodKind,
    amount: String,
    refunded: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    card: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<String>,
    provider: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    provider_ref: Option<&'a str>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
}

impl<'a> From<&'a Payment> for PaymentView<'a> {
    fn from(payment: &'a Payment) -> Self {
        let card = match (&payment.card_brand, &payment.card_last4) {
            (Some(brand), Some(last4)) => Some(format!("{brand} •••• {last4}")),
            (None, Some(last4)) => Some(format!("•••• {last4}")),
            (brand, None) => brand.clone(),
        };
        let failure = match (&payment.failure_code, &payment.failure_message) {
            (Some(code), Some(message)) => Some(format!("{code}: {message}")),
            (code, message) => code.clone().or_else(|| message.clone()),
        };
        PaymentView {
            id: &payment.id,
            order: order_label(payment),
            order_id: payment.order_id.to_string(),
            status: status_text(payment.status),
            method: payment.method,
            amount: money(payment.amount_cents, payment.currency),
            refunded: money(payment.refunded_cents, payment.currency),
            card,
            failure,
            provider: &payment.provider,
            provider_ref: payment.provider_ref.as_deref(),
            created_at: payment.created_at,
            updated_at: payment.updated_at,
        }
    }
}

impl Tabular for PaymentView<'_> {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("id", "id").kind(CellKind::Id),
            Column::new("status", "status").kind(CellKind::Status),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.id.to_string()
    }
}

/// One payment: on a terminal its summary and a table of its refunds;
/// otherwise the payment as the server sent it.
fn print_payment(output: &mut Output, payment: &Payment) -> Result<(), CliError> {
    if output.format() != Format::Table {
        return output.one(payment);
    }
    output.one(&PaymentView::from(payment))?;
    if !payment.refunds.is_empty() {
        eprintln!("\nrefunds:");
        output.list(&(), &payment.refunds)?;
    }
    Ok(())
}

/// The rates and counts of the analytics, as one record.
#[derive(Serialize)]
struct Rates {
    attempts: u64,
    succeeded: u64,
    failed: u64,
    success_rate: String,
    refund_rate: String,
}

impl Tabular for Rates {
    fn columns() -> &'static [Column] {
        &[]
    }

    fn id(&self) -> String {
        String::new()
    }
}

impl Tabular for PaymentAnalytics {
    fn columns() -> &'static [Column] {
        &[]
    }

    fn id(&self) -> String {
        String::new()
    }
}

impl Tabular for CurrencyVolume {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("currency", "currency"),
            Column::new("payments", "payments"),
            Column::new("captured", "captured").kind(CellKind::Id),
            Column::new("refunded", "refunded").kind(CellKind::Id),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.currency.to_string()
    }

    fn display_fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("captured", money(self.captured_cents, self.currency)),
            ("refunded", money(self.refunded_cents, self.currency)),
        ]
    }
}

impl Tabular for MethodCount {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("method", "method"),
            Column::new("attempts", "attempts"),
            Column::new("succeeded", "succeeded"),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.method.to_string()
    }
}

/// `0.9312` as `93.1%`.
fn percent(rate: f64) -> String {
    format!("{:.1}%", rate * 100.0)
}

/// On a terminal the rates, then volume and methods as tables; otherwise
/// the whole document as one record.
fn print_analytics(output: &mut Output, analytics: &PaymentAnalytics) -> Result<(), CliError> {
    if output.format() != Format::Table {
        return output.one(analytics);
    }
    output.one(&Rates {
        attempts: analytics.attempts,
        succeeded: analytics.succeeded,
        failed: analytics.failed,
        success_rate: percent(analytics.success_rate),
        refund_rate: percent(analytics.refund_rate),
    })?;
    eprintln!("\nvolume:");
    output.list(&(), &analytics.volume)?;
    eprintln!("\nby method:");
    output.list(&(), &analytics.by_method)
}

impl PaymentCommand {
    pub async fn run(self, context: &Context) -> Result<(), CliError> {
        let client = context.client().await?;
        let mut output = context.output();
        match self {
            PaymentCommand::List(args) => {
                // The filter is by order id; a number is looked up first.
                let order_id = match &args.order {
                    Some(order) if !order.starts_with("ord_") => {
                        let order: Order =
                            client.get(&format!("/api/orders/{order}")).send().await?;
                        Some(order.id.to_string())
                    }
                    other => other.clone(),
                };
                let fetch = |limit: u32, offset: u64| {
                    list_page(&client, &args, order_id.as_deref(), limit, offset)
                };
                let page = if args.page.all {
                    all_pages(fetch).await?
                } else {
                    fetch(args.page.limit, args.page.offset).await?
                };
                output.list(&page, &page.items)?;
                more_hint(&output, &page, "payments");
                Ok(())
            }
            PaymentCommand::Get { id } => {
                let id = id.resolve(&client).await?;
                let payment: Payment = client.get(&format!("/api/payments/{id}")).send().await?;
                print_payment(&mut output, &payment)
            }
            PaymentCommand::Refund {
                id,
                amount,
                reason,
                yes,
            } => {
                let id = id.resolve(&client).await?;
                let amount_cents = match &amount {
                    Some(amount) => Some(refund_cents(amount, currency_of(&client, &id).await?)?),
                    None if !yes => {
                        let payment: Payment =
                            client.get(&format!("/api/payments/{id}")).send().await?;
                        let left = payment.amount_cents - payment.refunded_cents;
                        if left > 0 {
                            confirm_money(&format!(
                                "Refund all that is left of payment {id}{}, {}?",
                                payment
                                    .order_number
                                    .as_deref()
                                    .map(|n| format!(" ({n})"))
                                    .unwrap_or_default(),
                                money(left, payment.currency)
                            ))?;
                        }
                        None
                    }
                    None => None,
                };
                let refund: Refund = client
                    .post(&format!("/api/payments/{id}/refunds"))
                    .json(&RefundRequest {
                        amount_cents,
                        reason,
                    })?
                    .send()
                    .await?;
                output.one(&refund)
            }
            PaymentCommand::Settle { id } => {
                let id = id.resolve(&client).await?;
                let payment: Payment = client
                    .post(&format!("/api/payments/{id}/settle"))
                    .send()
                    .await?;
                print_payment(&mut output, &payment)
            }
            PaymentCommand::Analytics => {
                let analytics: PaymentAnalytics =
                    client.get("/api/payments/analytics").send().await?;
                print_analytics(&mut output, &analytics)
            }
        }
    }
}

async fn currency_of(client: &ApiClient, id: &PaymentId) -> Result<Currency, CliError> {
    let payment: Payment = client.get(&format!("/api/payments/{id}")).send().await?;
    Ok(payment.currency)
}

async fn list_page(
    client: &ApiClient,
    args: &ListArgs,
    order_id: Option<&str>,
    limit: u32,
    offset: u64,
) -> Result<Page<Payment>, CliError> {
    client
        .get("/api/payments")
        .query_opt("status", args.status)
        .query_opt("order_id", order_id)
        .query_opt("method", args.method)
        .query("limit", limit.to_string())
        .query("offset", offset.to_string())
        .send()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payment() -> Payment {
        serde_json::from_value(serde_json::json!({
            "id": "pay_01JDQ6Z5R3K8V2N4M7P9T0W1XY",
            "order_id": "ord_01JDQ6Z5R3K8V2N4M7P9T0W1XY",
            "amount_cents": 30498,
            "refunded_cents": 1250,
            "currency": "USD",
            "method": "card",
            "status": "succeeded",
            "provider": "simulated",
            "provider_ref": null,
            "card_brand": "visa",
            "card_last4": "4242",
            "failure_code": null,
            "failure_message": null,
            "refunds": [
                {"id": "ref_01JDQ6Z5R3K8V2N4M7P9T0W1XY", "payment_id": "pay_01JDQ6Z5R3K8V2N4M7P9T0W1XY",
                 "amount_cents": 1250, "currency": "USD", "reason": "scratched", "status": "succeeded",
                 "failure_message": null, "created_at": "2026-11-24T09:00:00Z"}
            ],
            "created_at": "2026-11-23T14:05:09Z",
            "updated_at": "2026-11-24T09:00:00Z"
        }))
        .expect("a payment")
    }

    #[test]
    fn a_payment_list_shows_amounts_in_the_currency() {
        let payments = vec![payment()];
        let table = Output::render_for_test(Format::Table, |o| o.list(&(), &payments));
        assert!(
            table.contains("304.98 USD") && table.contains("12.50 USD"),
            "{table}"
        );
        let ids = Output::render_for_test(Format::Id, |o| o.list(&(), &payments));
        assert_eq!(ids, "pay_01JDQ6Z5R3K8V2N4M7P9T0W1XY\n");
        let csv_text = Output::render_for_test(Format::Csv, |o| o.list(&(), &payments));
        assert!(
            csv_text.contains("amount_cents") && !csv_text.contains("304.98"),
            "{csv_text}"
        );
    }

    #[test]
    fn one_payment_shows_its_card_and_refunds() {
        let table = Output::render_for_test(Format::Table, |o| print_payment(o, &payment()));
        for text in ["visa •••• 4242", "simulated", "scratched", "12.50 USD"] {
            assert!(table.contains(text), "{text}: {table}");
        }
        let json = Output::render_for_test(Format::Json, |o| print_payment(o, &payment()));
        let parsed: Payment = serde_json::from_str(&json).expect("a payment");
        assert_eq!(parsed, payment());
    }

    #[test]
    fn analytics_show_rates_as_percentages() {
        let analytics: PaymentAnalytics = serde_json::from_value(serde_json::json!({
            "attempts": 10, "succeeded": 8, "failed": 2,
            "success_rate": 0.8, "refund_rate": 0.0412,
            "volume": [{"currency": "USD", "captured_cents": 100000, "refunded_cents": 4120, "payments": 8}],
            "by_method": [{"method": "card", "attempts": 9, "succeeded": 7}]
        }))
        .expect("analytics");
        let table = Output::render_for_test(Format::Table, |o| print_analytics(o, &analytics));
        for text in ["80.0%", "4.1%", "1000.00 USD", "41.20 USD", "ATTEMPTS"] {
            assert!(table.contains(text), "{text}: {table}");
        }
        assert!(matches!(
            parse_payment_ref("pay_01JDQ6Z5R3K8V2N4M7P9T0W1XY"),
            Ok(PaymentRef::Payment(_))
        ));
        assert_eq!(
            parse_payment_ref("ord-001013"),
            Ok(PaymentRef::Order("ORD-001013".into())),
            "an order number names its payment"
        );
        assert!(matches!(
            parse_payment_ref("ord_01JDQ6Z5R3K8V2N4M7P9T0W1XY"),
            Ok(PaymentRef::Order(_))
        ));
        assert!(parse_payment_ref("pay_nope").is_err());
        assert!(parse_payment_ref("1013").is_err());
    }
}
