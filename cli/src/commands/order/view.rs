//! How orders are shown: a list row, one order with its lines and history,
//! refunds and the analytics' tables. Money is written in the order's
//! currency (`19.99 USD`), never as minor units.

use serde::Serialize;
use shop_wire::money::{Currency, format_amount};
use shop_wire::orders::{
    CurrencyAmount, DayRevenue, FinancialStatus, Fulfillment, FulfillmentStatus, Order,
    OrderAnalytics, OrderId, OrderItem, OrderStatus, StatusChange, StatusCount, TopProduct,
};
use shop_wire::payments::Refund;
use time::OffsetDateTime;

use crate::error::CliError;
use crate::output::{CellKind, Column, Format, Output, Tabular};

/// `1999` USD as `19.99 USD`.
pub(in crate::commands) fn money(minor: i64, currency: Currency) -> String {
    format!("{} {currency}", format_amount(minor, currency))
}

impl Tabular for Order {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("number", "number").kind(CellKind::Id),
            Column::new("status", "status").kind(CellKind::Status),
            Column::new("payment", "financial_status").kind(CellKind::Status),
            Column::new("items", "item_count"),
            Column::new("total", "total").kind(CellKind::Id),
            // Wide only: the payment column already says whether anything was refunded.
            Column::new("refunded", "refunded")
                .kind(CellKind::Id)
                .wide(),
            Column::new("customer", "customer_email"),
            Column::new("age", "created_at").kind(CellKind::Age),
            Column::new("id", "id").kind(CellKind::Id).wide(),
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
            ("total", money(self.total_cents, self.currency)),
            ("refunded", refunded),
        ]
    }
}

/// An order as a table shows it on its own: what it is and where it stands;
/// its lines and history get tables of their own.
#[derive(Serialize)]
struct OrderView<'a> {
    number: &'a str,
    id: &'a OrderId,
    status: OrderStatus,
    financial_status: FinancialStatus,
    fulfillment_status: FulfillmentStatus,
    subtotal: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    discount: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shipping: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tax: Option<String>,
    total: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    refunded: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ship_to: Option<String>,
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
            financial_status: order.financial_status,
            fulfillment_status: order.fulfillment_status,
            subtotal: money(order.pricing.subtotal_cents, order.currency),
            discount: (order.pricing.discount_cents != 0)
                .then(|| money(order.pricing.discount_cents, order.currency)),
            shipping: order.pricing.shipping_method.as_ref().map(|method| {
                format!(
                    "{} ({})",
                    money(order.pricing.shipping_cents, order.currency),
                    method.name
                )
            }),
            tax: (order.pricing.tax_cents != 0).then(|| {
                let inside = if order.pricing.prices_include_tax {
                    " included"
                } else {
                    ""
                };
                format!("{}{inside}", money(order.pricing.tax_cents, order.currency))
            }),
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
            ship_to: order
                .pricing
                .shipping_address
                .as_ref()
                .map(|a| format!("{}, {} {}, {}", a.name, a.postal_code, a.city, a.country)),
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
pub(in crate::commands) struct PricedLine<'a> {
    sku: &'a str,
    name: &'a str,
    quantity: i64,
    unit_price_cents: i64,
    line_total_cents: i64,
    #[serde(skip)]
    currency: Currency,
}

impl<'a> PricedLine<'a> {
    pub(in crate::commands) fn new(
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

impl Tabular for Fulfillment {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("shipped", "shipped_at").kind(CellKind::Time),
            Column::new("items", "units"),
            Column::new("carrier", "carrier"),
            Column::new("tracking", "tracking_number").kind(CellKind::Id),
            Column::new("delivered", "delivered_at").kind(CellKind::Time),
            Column::new("tracking url", "tracking_url").kind(CellKind::Id),
            Column::new("id", "id").kind(CellKind::Id).wide(),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.id.to_string()
    }

    fn display_fields(&self) -> Vec<(&'static str, String)> {
        let units: Vec<String> = self
            .items
            .iter()
            .map(|item| format!("{} x{}", item.sku, item.quantity))
            .collect();
        vec![("units", units.join(", "))]
    }
}

/// One order: on a terminal its summary, its lines, its shipments and its
/// history as tables; otherwise the order as the server sent it.
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
    if !order.fulfillments.is_empty() {
        eprintln!("\nshipments:");
        output.list(&(), &order.fulfillments)?;
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
            Column::new("amount", "amount").kind(CellKind::Id),
            Column::new("status", "status").kind(CellKind::Status),
            Column::new("reason", "reason"),
            Column::new("age", "created_at").kind(CellKind::Age),
            Column::new("id", "id").kind(CellKind::Id).wide(),
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
pub(super) fn print_analytics(
    output: &mut Output,
    analytics: &OrderAnalytics,
) -> Result<(), CliError> {
    if output.format() != Format::Table {
        return output.one(analytics);
    }
    eprintln!("orders by status:");
    output.list(&(), &analytics.counts_by_status)?;
    eprintln!("\naverage order value (net):");
    output.list(&(), &analytics.average_order_value)?;
    eprintln!("\ntop products:");
    output.list(&(), &analytics.top_products)?;
    eprintln!(
        "\nnet revenue by day placed (captured minus refunded; orders: those not refunded in full):"
    );
    output.list(&(), &analytics.revenue_by_day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order_json() -> serde_json::Value {
        serde_json::json!({
            "id": "ord_01JDQ6Z5R3K8V2N4M7P9T0W1XY",
            "number": "ORD-001042",
            "status": "paid",
            "financial_status": "paid",
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

    #[test]
    fn an_order_list_shows_number_status_and_total_and_ids_are_ids() {
        let orders = vec![order()];
        let table = Output::render_for_test(Format::Table, |o| o.list(&(), &orders));
        let header = table.lines().next().expect("header");
        for column in ["NUMBER", "STATUS", "ITEMS", "TOTAL", "CUSTOMER", "AGE"] {
            assert!(header.contains(column), "{table}");
        }
        assert!(table.contains("304.98 USD"), "{table}");
        assert!(
            table.contains("ORD-001042") && !table.contains("ord_"),
            "{table}"
        );
        let wide =
            Output::render_sized_for_test(Format::Table, None, true, |o| o.list(&(), &orders));
        let header = wide.lines().next().expect("header");
        assert!(
            header.contains("ID") && header.contains("CREATED ("),
            "{wide}"
        );
        assert!(wide.contains("ord_01JDQ6Z5R3K8V2N4M7P9T0W1XY"), "{wide}");
        let ids = Output::render_for_test(Format::Id, |o| o.list(&(), &orders));
        assert_eq!(ids, "ord_01JDQ6Z5R3K8V2N4M7P9T0W1XY\n");
        let csv_text = Output::render_for_test(Format::Csv, |o| o.list(&(), &orders));
        assert!(
            csv_text.starts_with("id,number,status,financial_status,items,"),
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
