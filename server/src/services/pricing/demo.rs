//! The pricing half of `shop serve --demo`: shipping zones for the United
//! States, the European Union and the rest of the world, sales tax and VAT
//! rates (with a reduced rate for books), and a sample code, so that a
//! newcomer's first checkout has an address, a method, tax and a discount.
//! Written through the same steps as the API, so the demo obeys every rule.

use shop_wire::money::Currency;
use shop_wire::pricing::{
    DiscountKind, NewDiscount, NewShippingZone, NewTaxRate, ShippingMethod, ShippingRate, countries,
};

use super::domain::{create_discount, create_rate, create_zone};
use crate::services::error::DomainResult;
use crate::state::AppState;

/// The sample code the README and the storefront's hints name.
pub const SAMPLE_CODE: &str = "WELCOME10";

/// The member states of the European Union.
const EU: [&str; 27] = [
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT",
    "LT", "LU", "LV", "MT", "NL", "PL", "PT", "RO", "SE", "SI", "SK",
];

fn method(code: &str, name: &str, rate: ShippingRate, days: u32) -> ShippingMethod {
    ShippingMethod {
        code: code.to_owned(),
        name: name.to_owned(),
        rate,
        estimated_days: Some(days),
    }
}

/// The demo's zones, priced in the catalog's currency.
fn zones(currency: Currency) -> Vec<NewShippingZone> {
    let elsewhere: Vec<String> = countries()
        .into_iter()
        .filter(|c| *c != "US" && !EU.contains(c))
        .map(str::to_owned)
        .collect();
    vec![
        NewShippingZone {
            name: "United States".to_owned(),
            countries: vec!["US".to_owned()],
            currency,
            methods: vec![
                method(
                    "standard",
                    "Standard (free over $75)",
                    ShippingRate::FreeOver {
                        amount_cents: 599,
                        threshold_cents: 7500,
                    },
                    5,
                ),
                method(
                    "express",
                    "Express",
                    ShippingRate::Flat { amount_cents: 1499 },
                    2,
                ),
            ],
        },
        NewShippingZone {
            name: "European Union".to_owned(),
            countries: EU.iter().map(|c| (*c).to_owned()).collect(),
            currency,
            methods: vec![
                method(
                    "standard",
                    "Standard",
                    ShippingRate::Flat { amount_cents: 1499 },
                    7,
                ),
                method(
                    "parcel",
                    "Parcel by weight",
                    ShippingRate::PerKg { amount_cents: 450 },
                    5,
                ),
            ],
        },
        NewShippingZone {
            name: "Rest of the world".to_owned(),
            countries: elsewhere,
            currency,
            methods: vec![method(
                "international",
                "International",
                ShippingRate::Flat { amount_cents: 2999 },
                14,
            )],
        },
    ]
}

fn rate(
    country: &str,
    region: Option<&str>,
    name: &str,
    bps: i64,
    category: Option<&str>,
) -> NewTaxRate {
    NewTaxRate {
        country: country.to_owned(),
        region: region.map(str::to_owned),
        name: name.to_owned(),
        rate_bps: bps,
        tax_category: category.map(str::to_owned),
    }
}

/// A US state's sales tax (on top of the price in dollars) and two EU
/// countries' VAT with their reduced rate for books.
fn rates() -> Vec<NewTaxRate> {
    vec![
        rate("US", Some("CA"), "California sales tax", 725, None),
        rate("DE", None, "MwSt 19%", 1900, None),
        rate("DE", None, "MwSt 7%", 700, Some("books")),
        rate("FR", None, "TVA 20%", 2000, None),
        rate("FR", None, "TVA 5.5%", 550, Some("books")),
    ]
}

/// Sets up the demo's zones, rates and sample code in `currency`.
pub async fn load(state: &AppState, currency: Currency) -> DomainResult<()> {
    for zone in zones(currency) {
        create_zone(state, zone).await?;
    }
    for rate in rates() {
        create_rate(state, rate).await?;
    }
    create_discount(
        state,
        NewDiscount {
            code: Some(SAMPLE_CODE.to_owned()),
            kind: DiscountKind::Percent,
            value: 1000,
            currency: None,
            min_subtotal_cents: Some(5000),
            starts_at: None,
            ends_at: None,
            usage_limit: None,
            per_customer_limit: Some(1),
            automatic: false,
        },
    )
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::pricing::tables::{check_rate, check_zone};

    #[test]
    fn the_demo_tables_pass_the_rules_and_cover_every_country_once() {
        let usd: Currency = "USD".parse().expect("USD");
        let mut seen = std::collections::BTreeSet::new();
        for zone in zones(usd) {
            let zone = check_zone(zone).expect("a valid zone");
            for country in zone.countries {
                assert!(seen.insert(country.clone()), "{country} in two zones");
            }
        }
        assert_eq!(seen.len(), countries().len());
        for rate in rates() {
            check_rate(rate).expect("a valid rate");
        }
    }
}
