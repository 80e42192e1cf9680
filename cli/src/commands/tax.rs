//! `shop tax rate`: the tax rates of countries and their regions, for every
//! product or one tax category (staff). Rates are typed as percents
//! (`19`, `7.25`) and travel as basis points.

use shop_wire::Page;
use shop_wire::pricing::{NewTaxRate, TaxRate};

use crate::context::Context;
use crate::error::CliError;
use crate::output::{CellKind, Column, Tabular};

#[derive(Debug, clap::Subcommand)]
pub enum TaxCommand {
    /// Tax rates by country and region.
    #[command(subcommand)]
    Rate(RateCommand),
}

#[derive(Debug, clap::Subcommand)]
pub enum RateCommand {
    /// Add a rate; one per country, region and tax category.
    #[command(after_help = "\
Examples:
  shop tax rate add --country DE --name 'MwSt 19%' --rate 19
  shop tax rate add --country DE --name 'MwSt 7%' --rate 7 --category books
  shop tax rate add --country US --region CA --name 'California' --rate 7.25
A region's rate applies on top of the country's; a category's replaces the standard rate for
products of that category (shop product update SKU --tax-category books).")]
    Add {
        /// ISO 3166-1 alpha-2, like DE.
        #[arg(long, value_name = "CC")]
        country: String,
        /// A region of the country (a US state, a province), like CA.
        #[arg(long)]
        region: Option<String>,
        /// The name on invoices, like 'MwSt 19%'.
        #[arg(long)]
        name: String,
        /// The rate in percent, like 19 or 7.25 (0-100, at most two decimals).
        #[arg(long, value_name = "PERCENT", value_parser = parse_percent)]
        rate: i64,
        /// Only for products of this tax category, like books.
        #[arg(long, value_name = "CATEGORY")]
        category: Option<String>,
    },
    /// List the rates.
    List,
    /// Remove a rate (orders keep the tax they were sold with).
    Remove {
        /// The rate's id (txr_...).
        id: String,
    },
}

/// `19` or `7.25` (percent) as basis points: 1900, 725.
pub(crate) fn parse_percent(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits(whole) || !digits(fraction) || fraction.len() > 2 {
        return Err(format!(
            "`{text}` is not a percent (like 19 or 7.25, at most two decimals)"
        ));
    }
    let whole: i64 = whole
        .parse()
        .map_err(|_| format!("`{text}` is too large"))?;
    let fraction: i64 = format!("{fraction:0<2}").parse().unwrap_or(0);
    let bps = whole.saturating_mul(100).saturating_add(fraction);
    if bps > 10_000 {
        return Err(format!("`{text}` is more than 100%"));
    }
    Ok(bps)
}

/// `725` basis points as `7.25%`.
pub(crate) fn percent(bps: u32) -> String {
    let whole = bps / 100;
    match bps % 100 {
        0 => format!("{whole}%"),
        part if part % 10 == 0 => format!("{whole}.{}%", part / 10),
        part => format!("{whole}.{part:02}%"),
    }
}

impl Tabular for TaxRate {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("country", "country").kind(CellKind::Id),
            Column::new("region", "region"),
            Column::new("name", "name"),
            Column::new("rate", "rate").kind(CellKind::Id),
            Column::new("category", "tax_category"),
            Column::new("id", "id").kind(CellKind::Id),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.id.to_string()
    }

    fn display_fields(&self) -> Vec<(&'static str, String)> {
        vec![("rate", percent(self.rate_bps))]
    }
}

impl TaxCommand {
    pub async fn run(self, context: &Context) -> Result<(), CliError> {
        let client = context.client().await?;
        let mut output = context.output();
        let TaxCommand::Rate(command) = self;
        match command {
            RateCommand::Add {
                country,
                region,
                name,
                rate,
                category,
            } => {
                let rate: TaxRate = client
                    .post("/api/tax/rates")
                    .json(&NewTaxRate {
                        country,
                        region,
                        name,
                        rate_bps: rate,
                        tax_category: category,
                    })?
                    .send()
                    .await?;
                output.one(&rate)
            }
            RateCommand::List => {
                let page: Page<TaxRate> = client.get("/api/tax/rates").send().await?;
                output.list(&page, &page.items)
            }
            RateCommand::Remove { id } => {
                let rate: TaxRate = client
                    .delete(&format!("/api/tax/rates/{id}"))
                    .send()
                    .await?;
                output.one(&rate)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percents_become_basis_points_and_back() {
        assert_eq!(parse_percent("19"), Ok(1900));
        assert_eq!(parse_percent("7.25"), Ok(725));
        assert_eq!(parse_percent("7.5"), Ok(750));
        assert_eq!(parse_percent("100"), Ok(10_000));
        for bad in ["", "-1", "100.01", "7.255", "abc", "1e2"] {
            assert!(parse_percent(bad).is_err(), "{bad}");
        }
        assert_eq!(percent(1900), "19%");
        assert_eq!(percent(725), "7.25%");
        assert_eq!(percent(750), "7.5%");
        assert_eq!(percent(5), "0.05%");
    }
}
