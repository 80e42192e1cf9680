//! `shop report sales`: orders, gross, discounts, shipping, tax, refunds
//! and net per day, ISO week or month and currency, for any days (staff).
//! `-o csv` gives an accountant the figures in minor units.

use shop_wire::reports::{ReportGroup, SalesReport, SalesRow};

use super::order::money;
use crate::context::Context;
use crate::error::CliError;
use crate::output::{CellKind, Column, Tabular};

#[derive(Debug, clap::Subcommand)]
pub enum ReportCommand {
    /// Sales per period and currency; an order counts on the UTC day it was
    /// placed, once money was taken for it, net of what was refunded.
    #[command(after_help = "\
Examples:
  shop report sales                                   # the last 30 days, by day
  shop report sales --from 2026-01-01 --to 2026-12-31 --group month
  shop report sales --from 2026-10-01 --group week -o csv > q4.csv")]
    Sales {
        /// The first day, YYYY-MM-DD (UTC) [default: 29 days before --to].
        #[arg(long, value_name = "DATE")]
        from: Option<String>,
        /// The last day, included, YYYY-MM-DD (UTC) [default: today].
        #[arg(long, value_name = "DATE")]
        to: Option<String>,
        /// One row per day, ISO week or month (and currency).
        #[arg(long, default_value = "day", value_parser = parse_group)]
        group: ReportGroup,
    },
}

fn parse_group(text: &str) -> Result<ReportGroup, String> {
    text.parse()
}

impl Tabular for SalesRow {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("period", "period").kind(CellKind::Id),
            Column::new("orders", "orders").kind(CellKind::Id),
            Column::new("gross", "gross").kind(CellKind::Id),
            Column::new("discounts", "discounts").kind(CellKind::Id),
            Column::new("shipping", "shipping").kind(CellKind::Id),
            Column::new("tax", "tax").kind(CellKind::Id),
            Column::new("refunds", "refunds").kind(CellKind::Id),
            Column::new("net", "net").kind(CellKind::Id),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.period.clone()
    }

    fn display_fields(&self) -> Vec<(&'static str, String)> {
        let m = |cents| money(cents, self.currency);
        vec![
            ("gross", m(self.gross_cents)),
            ("discounts", m(self.discount_cents)),
            ("shipping", m(self.shipping_cents)),
            ("tax", m(self.tax_cents)),
            ("refunds", m(self.refunds_cents)),
            ("net", m(self.net_cents)),
        ]
    }
}

impl ReportCommand {
    pub async fn run(self, context: &Context) -> Result<(), CliError> {
        let client = context.client().await?;
        let mut output = context.output();
        let ReportCommand::Sales { from, to, group } = self;
        let report: SalesReport = client
            .get("/api/reports/sales")
            .query_opt("from", from)
            .query_opt("to", to)
            .query("group", group.as_str())
            .send()
            .await?;
        output.list(&report, &report.rows)
    }
}
