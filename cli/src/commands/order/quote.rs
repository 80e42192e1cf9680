//! `shop order quote`: what an order would cost, without placing it, and
//! the `--ship-to`, `--shipping` and `--discount` options it shares with
//! `shop order create`.

use serde::Serialize;
use shop_wire::addresses::AddressId;
use shop_wire::cart::LineRequest;
use shop_wire::money::Currency;
use shop_wire::pricing::{PostalAddress, Quote, QuoteRequest, ShippingOption, TaxLine};

use super::super::tax::percent;
use super::create::parse_item;
use super::view::money;
use crate::client::ApiClient;
use crate::error::CliError;
use crate::output::{CellKind, Column, Format, Output, Tabular};

pub(super) const QUOTE_HELP: &str = "\
Examples:
  shop order quote --item MUG-01:2 --country DE
  shop order quote --item MUG-01:2 --ship-to address.json --shipping standard --discount WINTER10
An address file is JSON: {\"name\":\"Erika Mustermann\",\"line1\":\"Heidestr. 17\",
\"city\":\"Köln\",\"postal_code\":\"51147\",\"country\":\"DE\"} (line2, region and phone optional).
The table shows the breakdown and every shipping method for the address; -o json the quote as
the server sent it, with the same fields an order gets.";

/// Where an order goes, how, and its discount codes: shared by `order
/// create` and `order quote`.
#[derive(Debug, Clone, clap::Args)]
pub struct PricingArgs {
    /// The shipping address, a JSON file {name,line1,line2?,city,region?,postal_code,country,phone?}.
    #[arg(long = "ship-to", value_name = "FILE", value_parser = parse_address_file)]
    ship_to: Option<PostalAddress>,
    /// The country shipped to (ISO 3166-1 alpha-2, like DE), with --name, --line1, --city and
    /// --postal-code for an order; alone for a quote.
    #[arg(long, value_name = "CC", conflicts_with = "ship_to")]
    country: Option<String>,
    /// The region (state, province) shipped to, for regional tax rates.
    #[arg(long, value_name = "REGION", requires = "country")]
    region: Option<String>,
    /// The recipient, with --country.
    #[arg(long, value_name = "NAME", requires = "country")]
    name: Option<String>,
    /// The street and number, with --country.
    #[arg(long, value_name = "TEXT", requires = "country")]
    line1: Option<String>,
    /// The city, with --country.
    #[arg(long, value_name = "CITY", requires = "country")]
    city: Option<String>,
    /// The postal code, with --country.
    #[arg(long = "postal-code", value_name = "CODE", requires = "country")]
    postal_code: Option<String>,
    /// A saved address (adr_..., `shop address list`) to ship to.
    #[arg(long = "address", value_name = "ID", conflicts_with_all = ["ship_to", "country"])]
    address: Option<AddressId>,
    /// The shipping method's code (`shop order quote` lists them for an address).
    #[arg(long = "shipping", value_name = "METHOD")]
    shipping: Option<String>,
    /// A discount code; repeat for more.
    #[arg(long = "discount", value_name = "CODE")]
    discounts: Vec<String>,
}

fn parse_address_file(path: &str) -> Result<PostalAddress, String> {
    let text = std::fs::read_to_string(path).map_err(|err| format!("{path}: {err}"))?;
    serde_json::from_str(&text).map_err(|err| format!("{path}: not an address: {err}"))
}

impl PricingArgs {
    /// The full address given (a file, or the flags with --country),
    /// `None` when only a country is.
    pub(super) fn shipping_address(&self) -> Option<PostalAddress> {
        if let Some(address) = &self.ship_to {
            return Some(address.clone());
        }
        let country = self.country.clone()?;
        let name = self.name.clone()?;
        Some(PostalAddress {
            name,
            line1: self.line1.clone().unwrap_or_default(),
            line2: None,
            city: self.city.clone().unwrap_or_default(),
            region: self.region.clone(),
            postal_code: self.postal_code.clone().unwrap_or_default(),
            country,
            phone: None,
        })
    }

    /// The address an order ships to: a country alone does not make one.
    pub(super) fn order_address(&self) -> Result<Option<PostalAddress>, CliError> {
        match self.shipping_address() {
            None if self.country.is_some() => Err(CliError::Usage(
                "an order's --country needs --name, --line1, --city and --postal-code \
                 (or give --ship-to FILE)"
                    .to_owned(),
            )),
            address => Ok(address),
        }
    }

    pub(super) fn saved_address(&self) -> Option<AddressId> {
        self.address.clone()
    }

    pub(super) fn shipping_method(&self) -> Option<String> {
        self.shipping.clone()
    }

    pub(super) fn discount_codes(&self) -> Vec<String> {
        self.discounts.clone()
    }
}

#[derive(Debug, clap::Args)]
pub struct QuoteArgs {
    /// A line, SKU[:QTY] (like CHAIR-01:2); repeat for more.
    #[arg(long = "item", value_name = "SKU[:QTY]", value_parser = parse_item, required = true)]
    items: Vec<LineRequest>,
    #[command(flatten)]
    pricing: PricingArgs,
}

/// A quote as a table shows it: the breakdown, written in its currency.
#[derive(Serialize)]
struct QuoteView {
    subtotal: String,
    discount: String,
    shipping: String,
    tax: String,
    total: String,
    prices_include_tax: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    shipping_method: Option<String>,
}

impl Tabular for QuoteView {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[Column::new("total", "total").kind(CellKind::Id)];
        COLUMNS
    }

    fn id(&self) -> String {
        self.total.clone()
    }
}

/// `-o id` of a quote is what it charges, in minor units, for scripts.
impl Tabular for Quote {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[Column::new("total", "total_cents").kind(CellKind::Id)];
        COLUMNS
    }

    fn id(&self) -> String {
        self.total_cents.to_string()
    }
}

/// A tax line or a shipping method with its amount written in the currency.
#[derive(Serialize)]
struct Priced<'a> {
    name: &'a str,
    code: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    rate: Option<String>,
    amount: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    days: Option<u32>,
}

impl Tabular for Priced<'_> {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("code", "code").kind(CellKind::Id),
            Column::new("name", "name"),
            Column::new("rate", "rate").kind(CellKind::Id),
            Column::new("amount", "amount").kind(CellKind::Id),
            Column::new("days", "days"),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.code.to_owned()
    }
}

fn tax_row(line: &TaxLine, currency: Currency) -> Priced<'_> {
    Priced {
        name: &line.name,
        code: "tax",
        rate: Some(percent(line.rate_bps)),
        amount: money(line.amount_cents, currency),
        days: None,
    }
}

fn method_row(method: &ShippingOption, currency: Currency) -> Priced<'_> {
    Priced {
        name: &method.name,
        code: &method.code,
        rate: None,
        amount: money(method.price_cents, currency),
        days: method.estimated_days,
    }
}

/// A quote: on a terminal its breakdown, its tax lines and the shipping
/// methods as tables; otherwise the quote as the server sent it.
pub(super) fn print_quote(output: &mut Output, quote: &Quote) -> Result<(), CliError> {
    if output.format() != Format::Table {
        return output.one(quote);
    }
    let currency = quote.currency;
    output.one(&QuoteView {
        subtotal: money(quote.subtotal_cents, currency),
        discount: money(quote.discount_cents, currency),
        shipping: money(quote.shipping_cents, currency),
        tax: money(quote.tax_cents, currency),
        total: money(quote.total_cents, currency),
        prices_include_tax: quote.prices_include_tax,
        shipping_method: quote.shipping_method.as_ref().map(|m| m.code.clone()),
    })?;
    if !quote.tax_lines.is_empty() {
        eprintln!("\ntax:");
        let rows: Vec<Priced<'_>> = quote
            .tax_lines
            .iter()
            .map(|line| tax_row(line, currency))
            .collect();
        output.list(&(), &rows)?;
    }
    if !quote.shipping_methods.is_empty() {
        eprintln!("\nshipping methods:");
        let rows: Vec<Priced<'_>> = quote
            .shipping_methods
            .iter()
            .map(|method| method_row(method, currency))
            .collect();
        output.list(&(), &rows)?;
    }
    Ok(())
}

pub(super) async fn run(
    client: &ApiClient,
    output: &mut Output,
    args: QuoteArgs,
) -> Result<(), CliError> {
    let pricing = &args.pricing;
    let shipping_address = pricing.shipping_address();
    let country_only = shipping_address.is_none();
    let request = QuoteRequest {
        items: args.items,
        shipping_address,
        shipping_address_id: pricing.saved_address(),
        shipping_method: pricing.shipping_method(),
        discount_codes: pricing.discount_codes(),
        country: pricing.country.clone().filter(|_| country_only),
        region: pricing.region.clone().filter(|_| country_only),
        ..QuoteRequest::default()
    };
    let quote: Quote = client
        .post("/api/orders/quote")
        .json(&request)?
        .send()
        .await?;
    print_quote(output, &quote)
}
