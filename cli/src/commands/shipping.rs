//! `shop shipping zone`: the countries a shop ships to and how, with prices
//! (staff). A zone's methods are given as `CODE:KIND:AMOUNT[:THRESHOLD]`,
//! amounts as decimals in the zone's currency.

use shop_wire::Page;
use shop_wire::money::{Currency, parse_amount};
use shop_wire::pricing::{NewShippingZone, ShippingMethod, ShippingRate, ShippingZone};

use super::order::money;
use crate::context::Context;
use crate::error::CliError;
use crate::output::{CellKind, Column, Tabular};

#[derive(Debug, clap::Subcommand)]
pub enum ShippingCommand {
    /// Shipping zones: countries shipped to alike, each with its methods and prices.
    #[command(subcommand)]
    Zone(ZoneCommand),
}

#[derive(Debug, clap::Subcommand)]
pub enum ZoneCommand {
    /// Add a zone; a country belongs to one zone.
    #[command(after_help = "\
A method is CODE:KIND:AMOUNT[:THRESHOLD], KIND one of
  flat      AMOUNT per order
  per_kg    AMOUNT per started kilogram of the products' weight (only for weighed products)
  free_over AMOUNT, or nothing once the goods cost THRESHOLD
Example: shop shipping zone add --name EU --country DE --country AT --currency EUR \\
           --method standard:flat:4.90 --method heavy:per_kg:1.20 --method free:free_over:5.90:50")]
    Add {
        /// The zone's name, like EU.
        #[arg(long)]
        name: String,
        /// A country (ISO 3166-1 alpha-2, like DE); repeat for more.
        #[arg(long = "country", value_name = "CC", required = true)]
        countries: Vec<String>,
        /// The currency of the methods' prices; an order in another is not shipped by the zone.
        #[arg(long, default_value = "USD", value_parser = parse_currency)]
        currency: Currency,
        /// A method, CODE:KIND:AMOUNT[:THRESHOLD]; repeat for more.
        #[arg(
            long = "method",
            value_name = "CODE:KIND:AMOUNT[:THRESHOLD]",
            required = true
        )]
        methods: Vec<String>,
        /// Days to deliver, told to customers, for every method given.
        #[arg(long, value_name = "DAYS", value_parser = clap::value_parser!(u32).range(0..=365))]
        days: Option<u32>,
    },
    /// List the zones and their methods.
    List,
    /// Remove a zone (orders keep the shipping they were sold with).
    Remove {
        /// The zone's id (shz_...).
        id: String,
    },
}

fn parse_currency(text: &str) -> Result<Currency, String> {
    text.parse()
}

/// `CODE:KIND:AMOUNT[:THRESHOLD]`, amounts in `currency`.
fn parse_method(
    text: &str,
    currency: Currency,
    days: Option<u32>,
) -> Result<ShippingMethod, CliError> {
    let usage = |why: String| {
        CliError::Usage(format!(
            "--method `{text}`: {why} (CODE:KIND:AMOUNT[:THRESHOLD], like standard:flat:4.90)"
        ))
    };
    let parts: Vec<&str> = text.split(':').map(str::trim).collect();
    let amount = |part: &str| parse_amount(part, currency).map_err(usage);
    let rate = match parts.as_slice() {
        [_, "flat", price] => ShippingRate::Flat {
            amount_cents: amount(price)?,
        },
        [_, "per_kg", price] => ShippingRate::PerKg {
            amount_cents: amount(price)?,
        },
        [_, "free_over", price, threshold] => ShippingRate::FreeOver {
            amount_cents: amount(price)?,
            threshold_cents: amount(threshold)?,
        },
        _ => return Err(usage("not a method".to_owned())),
    };
    let code = parts[0].to_owned();
    Ok(ShippingMethod {
        name: code.clone(),
        code,
        rate,
        estimated_days: days,
    })
}

/// A zone's method as a table row, its prices written in the zone's currency.
#[derive(serde::Serialize)]
struct MethodRow<'a> {
    zone: &'a str,
    countries: String,
    code: &'a str,
    kind: &'static str,
    price: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    free_over: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    days: Option<u32>,
    id: String,
}

impl Tabular for MethodRow<'_> {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("zone", "zone"),
            Column::new("countries", "countries"),
            Column::new("method", "code").kind(CellKind::Id),
            Column::new("kind", "kind"),
            Column::new("price", "price").kind(CellKind::Id),
            Column::new("free over", "free_over").kind(CellKind::Id),
            Column::new("days", "days"),
            Column::new("id", "id").kind(CellKind::Id).wide(),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.id.clone()
    }
}

fn rows(zone: &ShippingZone) -> Vec<MethodRow<'_>> {
    zone.methods
        .iter()
        .map(|method| {
            let (kind, price, threshold) = match method.rate {
                ShippingRate::Flat { amount_cents } => ("flat", amount_cents, None),
                ShippingRate::PerKg { amount_cents } => ("per_kg", amount_cents, None),
                ShippingRate::FreeOver {
                    amount_cents,
                    threshold_cents,
                } => ("free_over", amount_cents, Some(threshold_cents)),
            };
            MethodRow {
                zone: &zone.name,
                countries: zone.countries.join(" "),
                code: &method.code,
                kind,
                price: money(price, zone.currency),
                free_over: threshold.map(|t| money(t, zone.currency)),
                days: method.estimated_days,
                id: zone.id.to_string(),
            }
        })
        .collect()
}

impl Tabular for ShippingZone {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("name", "name"),
            Column::new("countries", "countries"),
            Column::new("currency", "currency"),
            Column::new("id", "id").kind(CellKind::Id),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.id.to_string()
    }
}

impl ShippingCommand {
    pub async fn run(self, context: &Context) -> Result<(), CliError> {
        let client = context.client().await?;
        let mut output = context.output();
        let ShippingCommand::Zone(command) = self;
        match command {
            ZoneCommand::Add {
                name,
                countries,
                currency,
                methods,
                days,
            } => {
                let methods = methods
                    .iter()
                    .map(|text| parse_method(text, currency, days))
                    .collect::<Result<_, _>>()?;
                let zone: ShippingZone = client
                    .post("/api/shipping/zones")
                    .json(&NewShippingZone {
                        name,
                        countries,
                        currency,
                        methods,
                    })?
                    .send()
                    .await?;
                output.one(&zone)
            }
            ZoneCommand::List => {
                let page: Page<ShippingZone> = client.get("/api/shipping/zones").send().await?;
                if output.format() == crate::output::Format::Table {
                    let rows: Vec<MethodRow<'_>> = page.items.iter().flat_map(rows).collect();
                    return output.list(&(), &rows);
                }
                output.list(&page, &page.items)
            }
            ZoneCommand::Remove { id } => {
                let zone: ShippingZone = client
                    .delete(&format!("/api/shipping/zones/{id}"))
                    .send()
                    .await?;
                output.one(&zone)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_are_read_in_the_zones_currency() {
        let eur: Currency = "EUR".parse().expect("currency");
        let method = parse_method("free:free_over:5.90:50", eur, Some(2)).expect("valid");
        assert_eq!(
            method.rate,
            ShippingRate::FreeOver {
                amount_cents: 590,
                threshold_cents: 5000
            }
        );
        assert_eq!(method.estimated_days, Some(2));
        assert_eq!(
            parse_method("heavy:per_kg:1.2", eur, None)
                .expect("valid")
                .rate,
            ShippingRate::PerKg { amount_cents: 120 }
        );
        for bad in [
            "standard",
            "x:flat",
            "x:flat:4.999",
            "x:teleport:1",
            "x:free_over:1",
        ] {
            assert!(parse_method(bad, eur, None).is_err(), "{bad}");
        }
    }
}
