//! The rules of documents: which orders have an invoice, how its number
//! reads, and the figures a template is given (plain data, no database).

use serde::Serialize;
use shop_wire::documents::{DocumentKind, InvoiceRecord};
use shop_wire::money::Currency;
use shop_wire::orders::{FinancialStatus, Order};
use shop_wire::pricing::PostalAddress;
use time::OffsetDateTime;

use crate::services::orders::rules::took_money;

/// A template's HTML may be this long.
pub const MAX_TEMPLATE_BYTES: usize = 256 * 1024;
/// The prefix of invoice numbers may be this long.
pub const MAX_PREFIX_CHARS: usize = 16;

/// Why an order has no document of a kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocumentRefusal {
    /// No money was taken for it (pending, voided, or cancelled unpaid).
    NotInvoiceable(FinancialStatus),
}

/// An invoice is issued for an order that took money, whatever was
/// refunded of it since (the refund does not unmake the sale).
pub fn invoiceable(order: &Order) -> Result<(), DocumentRefusal> {
    if took_money(order.financial_status) {
        Ok(())
    } else {
        Err(DocumentRefusal::NotInvoiceable(order.financial_status))
    }
}

/// `INV-` and 42 -> `INV-000042`: six digits at least, so numbers sort as
/// text until the millionth.
pub fn invoice_number(prefix: &str, sequence: i64) -> String {
    format!("{prefix}{sequence:06}")
}

/// A prefix is at most 16 letters, digits, `-`, `/` or `_` (what tax
/// offices and accounting software accept), possibly none.
pub fn check_prefix(prefix: &str) -> Result<(), String> {
    if prefix.chars().count() > MAX_PREFIX_CHARS {
        return Err(format!(
            "the invoice number prefix is longer than {MAX_PREFIX_CHARS} characters"
        ));
    }
    match prefix
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '-' | '/' | '_')))
    {
        Some(c) => Err(format!(
            "the invoice number prefix may hold letters, digits, `-`, `/` and `_`, not {c:?}"
        )),
        None => Ok(()),
    }
}

/// A download's name before its extension: `invoice-INV-000042`. A prefix
/// may hold `/` (`2026/000042`), which no file name can, so it becomes `-`.
pub fn file_stem(document: &str, number: &str) -> String {
    format!("{document}-{}", number.replace('/', "-"))
}

/// Who sells: the top of every document.
#[derive(Clone, Debug, Default, Serialize, PartialEq)]
pub struct Seller {
    pub name: String,
    /// The postal address, one line each.
    pub address: Vec<String>,
    /// A VAT or tax registration number, printed on invoices.
    pub tax_id: Option<String>,
    pub email: Option<String>,
}

/// What a document template is given: every key is always there (absent
/// values are `none`), so a template never trips on an undefined name.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct DocumentContext {
    /// `invoice` or `packing_slip`.
    pub kind: DocumentKind,
    /// `Invoice` or `Packing slip`.
    pub title: &'static str,
    pub shop: Seller,
    /// Only on invoices.
    pub invoice: Option<InvoiceView>,
    pub order: OrderView,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct InvoiceView {
    pub number: String,
    /// `YYYY-MM-DD`, UTC.
    pub issued_on: String,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct OrderView {
    pub number: String,
    pub placed_on: String,
    pub status: String,
    pub financial_status: String,
    pub customer_email: String,
    pub currency: Currency,
    pub items: Vec<LineView>,
    pub item_count: i64,
    pub subtotal_cents: i64,
    pub discount_cents: i64,
    pub shipping_cents: i64,
    pub tax_cents: i64,
    pub total_cents: i64,
    pub refunded_cents: i64,
    /// Whether the prices shown already include the tax (then the tax
    /// lines say how much of the total was tax).
    pub prices_include_tax: bool,
    pub tax_lines: Vec<TaxLineView>,
    pub discounts: Vec<DiscountView>,
    pub shipping_method: Option<String>,
    pub shipping_address: Option<AddressView>,
    pub billing_address: Option<AddressView>,
    pub shipments: Vec<ShipmentView>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct LineView {
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    pub unit_price_cents: i64,
    pub line_total_cents: i64,
    /// Units already shipped, and those left to pack.
    pub shipped: i64,
    pub to_ship: i64,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct TaxLineView {
    pub name: String,
    /// `19%`, `7.25%`.
    pub rate: String,
    /// The name with its rate, as an invoice must show it: `VAT (19%)`, or
    /// just the name when it says the rate already (`MwSt 19%`).
    pub label: String,
    pub amount_cents: i64,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct DiscountView {
    /// The code, or `Promotion` for an automatic one.
    pub label: String,
    pub amount_cents: i64,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct AddressView {
    pub name: String,
    /// Street lines, then postal code and city, region, country.
    pub lines: Vec<String>,
    pub phone: Option<String>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ShipmentView {
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    pub shipped_on: String,
}

/// `YYYY-MM-DD` of an instant, in UTC.
pub fn day(at: OffsetDateTime) -> String {
    let date = at.date();
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

/// 725 basis points -> `7.25%`, 1900 -> `19%`.
pub fn percent(rate_bps: u32) -> String {
    let whole = rate_bps / 100;
    match rate_bps % 100 {
        0 => format!("{whole}%"),
        cents if cents % 10 == 0 => format!("{whole}.{}%", cents / 10),
        cents => format!("{whole}.{cents:02}%"),
    }
}

fn address_view(address: &PostalAddress) -> AddressView {
    let mut lines = vec![address.line1.clone()];
    lines.extend(address.line2.clone().filter(|line| !line.is_empty()));
    lines.push(
        format!("{} {}", address.postal_code, address.city)
            .trim()
            .to_owned(),
    );
    lines.extend(address.region.clone().filter(|region| !region.is_empty()));
    lines.push(address.country.clone());
    AddressView {
        name: address.name.clone(),
        lines,
        phone: address.phone.clone(),
    }
}

/// Units of each line shipped so far, by the order's shipments.
fn shipped_units(order: &Order, sku: &str) -> i64 {
    order
        .fulfillments
        .iter()
        .flat_map(|shipment| &shipment.items)
        .filter(|item| item.sku == sku)
        .map(|item| item.quantity)
        .sum()
}

/// The figures of one document of `order`.
pub fn context(
    kind: DocumentKind,
    seller: Seller,
    order: &Order,
    invoice: Option<&InvoiceRecord>,
) -> DocumentContext {
    let pricing = &order.pricing;
    let items = order
        .items
        .iter()
        .map(|item| {
            let shipped = shipped_units(order, &item.sku).min(item.quantity);
            LineView {
                sku: item.sku.clone(),
                name: item.name.clone(),
                quantity: item.quantity,
                unit_price_cents: item.unit_price_cents,
                line_total_cents: item.line_total_cents,
                shipped,
                to_ship: item.quantity - shipped,
            }
        })
        .collect();
    DocumentContext {
        kind,
        title: match kind {
            DocumentKind::Invoice => "Invoice",
            DocumentKind::PackingSlip => "Packing slip",
        },
        shop: seller,
        invoice: invoice.map(|invoice| InvoiceView {
            number: invoice.number.clone(),
            issued_on: day(invoice.issued_at),
        }),
        order: OrderView {
            number: order.number.clone(),
            placed_on: day(order.created_at),
            status: order.status.as_str().to_owned(),
            financial_status: order.financial_status.as_str().to_owned(),
            customer_email: order.customer_email.clone(),
            currency: order.currency,
            items,
            item_count: order.item_count,
            // Orders placed before pricing have no subtotal: their total is it.
            subtotal_cents: if pricing.subtotal_cents == 0 {
                order.items.iter().map(|item| item.line_total_cents).sum()
            } else {
                pricing.subtotal_cents
            },
            discount_cents: pricing.discount_cents,
            shipping_cents: pricing.shipping_cents,
            tax_cents: pricing.tax_cents,
            total_cents: order.total_cents,
            refunded_cents: order.refunded_cents,
            prices_include_tax: pricing.prices_include_tax,
            tax_lines: pricing
                .tax_lines
                .iter()
                .map(|line| {
                    let rate = percent(line.rate_bps);
                    TaxLineView {
                        label: if line.name.contains(&rate) {
                            line.name.clone()
                        } else {
                            format!("{} ({rate})", line.name)
                        },
                        name: line.name.clone(),
                        rate,
                        amount_cents: line.amount_cents,
                    }
                })
                .collect(),
            discounts: pricing
                .discounts
                .iter()
                .map(|discount| DiscountView {
                    label: discount
                        .code
                        .clone()
                        .unwrap_or_else(|| "Promotion".to_owned()),
                    amount_cents: discount.amount_cents,
                })
                .collect(),
            shipping_method: pricing.shipping_method.as_ref().map(|m| m.name.clone()),
            shipping_address: pricing.shipping_address.as_ref().map(address_view),
            billing_address: pricing
                .billing_address
                .as_ref()
                .or(pricing.shipping_address.as_ref())
                .map(address_view),
            shipments: order
                .fulfillments
                .iter()
                .map(|shipment| ShipmentView {
                    carrier: shipment.carrier.clone(),
                    tracking_number: shipment.tracking_number.clone(),
                    shipped_on: day(shipment.shipped_at),
                })
                .collect(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_keep_their_prefix_and_six_digits() {
        assert_eq!(invoice_number("INV-", 42), "INV-000042");
        assert_eq!(invoice_number("", 1_234_567), "1234567");
        assert!(check_prefix("INV-2026/").is_ok());
        assert!(check_prefix("").is_ok());
        assert!(check_prefix("INV 1").is_err());
        assert!(check_prefix("ABCDEFGHIJKLMNOPQ").is_err());
        assert_eq!(file_stem("invoice", "2026/000042"), "invoice-2026-000042");
    }

    #[test]
    fn rates_read_as_percentages() {
        assert_eq!(percent(1900), "19%");
        assert_eq!(percent(725), "7.25%");
        assert_eq!(percent(550), "5.5%");
        assert_eq!(percent(5), "0.05%");
    }

    #[test]
    fn only_orders_that_took_money_are_invoiced() {
        let mut order = crate::services::orders::events::sample_order("a@example.com", &["A"]);
        for (status, invoiced) in [
            (FinancialStatus::Pending, false),
            (FinancialStatus::Voided, false),
            (FinancialStatus::Paid, true),
            (FinancialStatus::PartiallyRefunded, true),
            (FinancialStatus::Refunded, true),
        ] {
            order.financial_status = status;
            assert_eq!(invoiceable(&order).is_ok(), invoiced, "{status}");
        }
    }
}
