//! `shop discount`: discount codes and automatic promotions (staff).
//! Percents are typed as percents (`10`), amounts as decimals in their
//! currency, times as RFC 3339 or YYYY-MM-DD (UTC midnight).

use shop_wire::Page;
use shop_wire::money::Currency;
use shop_wire::pricing::{Discount, DiscountKind, NewDiscount};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::order::money;
use super::product::{Amount, parse_price};
use super::tax::{parse_percent, percent};
use crate::context::Context;
use crate::error::CliError;
use crate::output::{CellKind, Column, Tabular};

#[derive(Debug, clap::Subcommand)]
pub enum DiscountCommand {
    /// Add a discount code, or with --automatic a promotion every order that qualifies gets.
    #[command(after_help = "\
Examples:
  shop discount add --code WINTER10 --percent 10 --ends 2026-12-31 --limit 100
  shop discount add --code FIVE --amount 5.00 --currency USD --min-subtotal 25.00 --per-customer 1
  shop discount add --automatic --free-shipping --min-subtotal 50 --currency EUR")]
    #[command(group(clap::ArgGroup::new("kind").required(true).args(["percent", "amount", "free_shipping"])))]
    Add {
        /// The code customers type (kept upper case); leave out with --automatic.
        #[arg(long, required_unless_present = "automatic")]
        code: Option<String>,
        /// Percent off the goods, like 10 or 12.5.
        #[arg(long, value_name = "PERCENT", value_parser = parse_percent)]
        percent: Option<i64>,
        /// An amount off the goods, a decimal in --currency.
        #[arg(long, value_name = "AMOUNT", value_parser = parse_price, requires = "currency")]
        amount: Option<Amount>,
        /// Shipping costs nothing.
        #[arg(long)]
        free_shipping: bool,
        /// The currency of --amount and --min-subtotal.
        #[arg(long, value_parser = parse_currency)]
        currency: Option<Currency>,
        /// The least the goods must cost, a decimal in --currency (USD when not given).
        #[arg(long, value_name = "AMOUNT", value_parser = parse_price)]
        min_subtotal: Option<Amount>,
        /// Valid from (RFC 3339, or YYYY-MM-DD for midnight UTC).
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        starts: Option<OffsetDateTime>,
        /// Valid until, excluded (RFC 3339, or YYYY-MM-DD for midnight UTC).
        #[arg(long, value_name = "TIME", value_parser = parse_time)]
        ends: Option<OffsetDateTime>,
        /// Uses in all; a cancelled or fully refunded order gives its use back.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
        limit: Option<i64>,
        /// Uses per customer.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(i64).range(1..))]
        per_customer: Option<i64>,
        /// Applied to every order that meets its conditions, without a code.
        #[arg(long)]
        automatic: bool,
    },
    /// List discounts with how often each was used.
    List,
    /// Show one discount, by id (dsc_...) or code.
    Get {
        /// The discount's id or code.
        discount: String,
    },
    /// Disable a discount: no order gets it any more.
    Disable {
        /// The discount's id or code.
        discount: String,
    },
}

fn parse_currency(text: &str) -> Result<Currency, String> {
    text.parse()
}

fn parse_time(text: &str) -> Result<OffsetDateTime, String> {
    let text = text.trim();
    if let Ok(at) = OffsetDateTime::parse(text, &Rfc3339) {
        return Ok(at);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(text, &format)
        .map(|day| day.midnight().assume_utc())
        .map_err(|_| format!("`{text}` is not a time (RFC 3339, or YYYY-MM-DD)"))
}

impl Tabular for Discount {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("code", "code").kind(CellKind::Id),
            Column::new("kind", "kind"),
            Column::new("value", "off").kind(CellKind::Id),
            Column::new("used", "used"),
            Column::new("active", "active"),
            Column::new("ends", "ends_at").kind(CellKind::Time),
            Column::new("id", "id").kind(CellKind::Id).wide(),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.id.to_string()
    }

    fn display_fields(&self) -> Vec<(&'static str, String)> {
        let off = match self.kind {
            DiscountKind::Percent => percent(u32::try_from(self.value).unwrap_or(u32::MAX)),
            DiscountKind::Fixed => money(self.value, self.currency.unwrap_or_default()),
            DiscountKind::FreeShipping => "shipping".to_owned(),
        };
        let used = match self.usage_limit {
            Some(limit) => format!("{}/{limit}", self.times_used),
            None => self.times_used.to_string(),
        };
        let code = self
            .code
            .clone()
            .unwrap_or_else(|| "(automatic)".to_owned());
        vec![("off", off), ("used", used), ("code", code)]
    }
}

impl DiscountCommand {
    pub async fn run(self, context: &Context) -> Result<(), CliError> {
        let client = context.client().await?;
        let mut output = context.output();
        match self {
            DiscountCommand::Add {
                code,
                percent,
                amount,
                free_shipping,
                currency,
                min_subtotal,
                starts,
                ends,
                limit,
                per_customer,
                automatic,
            } => {
                let in_currency = currency.unwrap_or_default();
                let (kind, value) = match (percent, &amount, free_shipping) {
                    (Some(bps), _, _) => (DiscountKind::Percent, bps),
                    (_, Some(amount), _) => (
                        DiscountKind::Fixed,
                        amount.minor_units(in_currency, "--amount")?,
                    ),
                    _ => (DiscountKind::FreeShipping, 0),
                };
                let min_subtotal_cents = min_subtotal
                    .map(|m| m.minor_units(in_currency, "--min-subtotal"))
                    .transpose()?;
                let discount: Discount = client
                    .post("/api/discounts")
                    .json(&NewDiscount {
                        code,
                        kind,
                        value,
                        currency: currency.filter(|_| kind == DiscountKind::Fixed),
                        min_subtotal_cents,
                        starts_at: starts,
                        ends_at: ends,
                        usage_limit: limit,
                        per_customer_limit: per_customer,
                        automatic,
                    })?
                    .send()
                    .await?;
                output.one(&discount)
            }
            DiscountCommand::List => {
                let page: Page<Discount> = client.get("/api/discounts").send().await?;
                output.list(&page, &page.items)
            }
            DiscountCommand::Get { discount } => {
                let discount: Discount = client
                    .get(&format!("/api/discounts/{discount}"))
                    .send()
                    .await?;
                output.one(&discount)
            }
            DiscountCommand::Disable { discount } => {
                let discount: Discount = client
                    .post(&format!("/api/discounts/{discount}/disable"))
                    .send()
                    .await?;
                output.one(&discount)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_rfc3339_or_a_day() {
        let day = parse_time("2026-12-31").expect("a day");
        assert_eq!(
            day.format(&Rfc3339).expect("formats"),
            "2026-12-31T00:00:00Z"
        );
        assert!(parse_time("2026-12-31T10:00:00+01:00").is_ok());
        assert!(parse_time("tomorrow").is_err());
    }
}
