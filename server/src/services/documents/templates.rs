//! Rendering a document from its template: the shop's own, or the built-in.
//!
//! The engine and its limits are the notifications' (minijinja, strict
//! undefined, fuel): every variable is HTML-escaped, a name the context does
//! not have is an error with its line, and a template cannot loop for ever.
//! A template is checked on save by rendering a sample order with it, so a
//! saved template renders every real one.

use minijinja::{AutoEscape, Environment, UndefinedBehavior, Value};
use shop_wire::documents::{DocumentKind, InvoiceRecord};
use shop_wire::orders::{
    FinancialStatus, Fulfillment, FulfillmentItem, FulfillmentStatus, Order, OrderItem, OrderStatus,
};
use shop_wire::pricing::{AppliedDiscount, ChosenShipping, OrderPricing, PostalAddress, TaxLine};

use super::rules::{self, DocumentContext, MAX_TEMPLATE_BYTES, Seller};
use crate::services::notifications::templates::{TemplateError, error, money};

/// Instructions one render may execute: enough for an order of a thousand lines.
const FUEL: u64 = 2_000_000;

/// The template a shop gets until it saves its own.
pub fn builtin(kind: DocumentKind) -> &'static str {
    match kind {
        DocumentKind::Invoice => include_str!("builtin/invoice.html"),
        DocumentKind::PackingSlip => include_str!("builtin/packing_slip.html"),
    }
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    env.set_auto_escape_callback(|_| AutoEscape::Html);
    env.add_filter("money", money);
    env
}

fn too_long() -> TemplateError {
    TemplateError {
        part: "html",
        message: format!("is longer than {} KiB", MAX_TEMPLATE_BYTES / 1024),
        line: None,
    }
}

/// Renders `source` with the document's figures.
pub fn render(source: &str, context: &DocumentContext) -> Result<String, TemplateError> {
    if source.len() > MAX_TEMPLATE_BYTES {
        return Err(too_long());
    }
    environment()
        .template_from_str(source)
        .and_then(|template| template.render(Value::from(minijinja::value::Serde(context))))
        .map_err(|err| error("html", &err))
}

/// Whether `source` compiles and renders a sample order with every field set.
pub fn check(kind: DocumentKind, source: &str) -> Result<(), TemplateError> {
    if source.trim().is_empty() {
        return Err(TemplateError {
            part: "html",
            message: "must not be empty".to_owned(),
            line: None,
        });
    }
    let order = sample_order();
    let invoice = InvoiceRecord {
        number: rules::invoice_number("INV-", 1),
        sequence: 1,
        issued_at: order.updated_at,
    };
    let seller = Seller {
        name: "Sample shop".to_owned(),
        address: vec!["1 Sample Street".to_owned(), "10115 Berlin".to_owned()],
        tax_id: Some("DE123456789".to_owned()),
        email: Some("orders@shop.example".to_owned()),
    };
    render(
        source,
        &rules::context(kind, seller, &order, Some(&invoice)),
    )
    .map(drop)
}

/// An order with every optional part present, so a template's every branch
/// meets a real value when it is checked.
fn sample_order() -> Order {
    let at = time::OffsetDateTime::UNIX_EPOCH + time::Duration::days(20_000);
    let address = PostalAddress {
        name: "Sam Sample".to_owned(),
        line1: "2 Example Road".to_owned(),
        line2: Some("Flat 3".to_owned()),
        city: "Berlin".to_owned(),
        region: Some("BE".to_owned()),
        postal_code: "10117".to_owned(),
        country: "DE".to_owned(),
        phone: Some("+49 30 1234567".to_owned()),
    };
    Order {
        id: shop_wire::OrderId::generate(),
        number: "ORD-000001".to_owned(),
        status: OrderStatus::Shipped,
        financial_status: FinancialStatus::PartiallyRefunded,
        items: vec![OrderItem {
            sku: "SAMPLE-1".to_owned(),
            name: "Sample item".to_owned(),
            quantity: 2,
            unit_price_cents: 1250,
            line_total_cents: 2500,
        }],
        item_count: 2,
        total_cents: 2975,
        refunded_cents: 1250,
        currency: "EUR".parse().expect("EUR is an ISO 4217 code"),
        customer_email: "sam@example.com".to_owned(),
        user_id: None,
        payment_id: None,
        cart_id: None,
        payment_error: None,
        tracking_number: Some("1Z999".to_owned()),
        fulfillment_status: FulfillmentStatus::Shipped,
        fulfillments: vec![Fulfillment {
            id: shop_wire::orders::FulfillmentId::generate(),
            items: vec![FulfillmentItem {
                sku: "SAMPLE-1".to_owned(),
                quantity: 1,
            }],
            carrier: Some("dhl".to_owned()),
            tracking_number: Some("1Z999".to_owned()),
            tracking_url: None,
            shipped_at: at,
            delivered_at: None,
        }],
        pricing: OrderPricing {
            subtotal_cents: 2500,
            discount_cents: 250,
            shipping_cents: 725,
            tax_cents: 475,
            prices_include_tax: true,
            tax_lines: vec![TaxLine {
                name: "VAT".to_owned(),
                rate_bps: 1900,
                amount_cents: 475,
            }],
            discounts: vec![AppliedDiscount {
                code: Some("WELCOME10".to_owned()),
                amount_cents: 250,
            }],
            shipping_address: Some(address.clone()),
            billing_address: Some(address),
            shipping_method: Some(ChosenShipping {
                code: "standard".to_owned(),
                name: "Standard".to_owned(),
                price_cents: 725,
            }),
        },
        history: Vec::new(),
        created_at: at,
        updated_at: at,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_templates_pass_their_own_check() {
        for kind in DocumentKind::ALL {
            check(*kind, builtin(*kind)).expect("built-in template renders");
        }
    }

    #[test]
    fn an_invoice_shows_its_number_and_every_figure_escaped() {
        let mut order = sample_order();
        order.items[0].name = "<script>alert(1)</script>".to_owned();
        let invoice = InvoiceRecord {
            number: "INV-000042".to_owned(),
            sequence: 42,
            issued_at: order.updated_at,
        };
        let context = rules::context(
            DocumentKind::Invoice,
            Seller::default(),
            &order,
            Some(&invoice),
        );
        let html = render(builtin(DocumentKind::Invoice), &context).expect("renders");
        for shown in [
            "INV-000042",
            "ORD-000001",
            "29.75 EUR",
            "-2.50 EUR",
            "7.25 EUR",
            "Included VAT (19%)",
            "4.75 EUR",
        ] {
            assert!(html.contains(shown), "{shown} missing");
        }
        assert!(!html.contains("<script>alert"), "a product name is escaped");
        assert!(html.contains("&lt;script&gt;"));
    }

    #[test]
    fn a_packing_slip_says_what_is_left_to_pack() {
        let order = sample_order();
        let context = rules::context(DocumentKind::PackingSlip, Seller::default(), &order, None);
        assert_eq!(
            (
                context.order.items[0].shipped,
                context.order.items[0].to_ship
            ),
            (1, 1)
        );
        let html = render(builtin(DocumentKind::PackingSlip), &context).expect("renders");
        assert!(html.contains("2 Example Road") && html.contains("SAMPLE-1"));
        assert!(!html.contains("12.50"), "a packing slip shows no prices");
    }

    #[test]
    fn a_template_with_an_unknown_name_or_bad_syntax_is_refused_with_its_line() {
        let unknown =
            check(DocumentKind::Invoice, "<p>\n{{ order.nope }}</p>").expect_err("unknown");
        assert_eq!(unknown.line, Some(2), "{unknown}");
        let broken = check(DocumentKind::Invoice, "{% for x in %}").expect_err("syntax");
        assert!(broken.message.contains("syntax"), "{broken}");
        let endless = check(
            DocumentKind::Invoice,
            "{% for a in range(1000) %}{% for b in range(1000) %}{{ b }}{% endfor %}{% endfor %}",
        )
        .expect_err("out of fuel");
        assert!(endless.message.contains("fuel"), "{endless}");
        assert!(check(DocumentKind::Invoice, " ").is_err());
        assert!(check(DocumentKind::Invoice, &"x".repeat(MAX_TEMPLATE_BYTES + 1)).is_err());
    }
}
