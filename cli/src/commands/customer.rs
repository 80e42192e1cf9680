//! `shop customer`: every buyer, registered or guest, with orders count,
//! net spent and first and last order (staff).

use serde::Serialize;
use shop_wire::Page;
use shop_wire::reports::Customer;

use super::order::money;
use crate::client::path_segment;
use crate::context::Context;
use crate::error::CliError;
use crate::output::{CellKind, Column, Format, Tabular};

#[derive(Debug, clap::Subcommand)]
pub enum CustomerCommand {
    /// List buyers, newest first; search by email or name.
    #[command(after_help = "\
Examples:
  shop customer list
  shop customer list --search carol
  shop customer list -o csv > customers.csv")]
    List {
        /// Only those with this text in their email or name (any case).
        #[arg(long, short = 's', value_name = "TEXT")]
        search: Option<String>,
        /// How many to show.
        #[arg(long, default_value_t = 50)]
        limit: u32,
        /// How many to skip (for the next page).
        #[arg(long, default_value_t = 0)]
        offset: u64,
    },
    /// One buyer by email, with what they spent in each currency.
    Get {
        /// The email their orders were placed for.
        email: String,
    },
}

impl Tabular for Customer {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("email", "email"),
            Column::new("name", "name"),
            Column::new("orders", "orders_count").kind(CellKind::Id),
            Column::new("spent", "spent_total").kind(CellKind::Id),
            Column::new("first order", "first_order_at").kind(CellKind::Age),
            Column::new("last order", "last_order_at").kind(CellKind::Age),
            Column::new("account", "user_id").kind(CellKind::Id).wide(),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.email.clone()
    }

    fn display_fields(&self) -> Vec<(&'static str, String)> {
        vec![("spent_total", spent(self))]
    }
}

/// What they kept of their money in every currency, the latest order's first.
fn spent(customer: &Customer) -> String {
    let mut spent = vec![money(customer.total_spent_cents, customer.currency)];
    spent.extend(
        customer
            .spent
            .iter()
            .filter(|s| s.currency != customer.currency)
            .map(|s| money(s.amount_cents, s.currency)),
    );
    spent.join(", ")
}

/// One customer as a table shows them: money written in its currencies.
#[derive(Serialize)]
struct CustomerView<'a> {
    email: &'a str,
    name: Option<&'a str>,
    account: Option<String>,
    orders: u64,
    spent: String,
    first_order_at: String,
    last_order_at: String,
}

impl Tabular for CustomerView<'_> {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("first order at", "first_order_at").kind(CellKind::Time),
            Column::new("last order at", "last_order_at").kind(CellKind::Time),
        ];
        COLUMNS
    }

    fn id(&self) -> String {
        self.email.to_owned()
    }
}

impl CustomerCommand {
    pub async fn run(self, context: &Context) -> Result<(), CliError> {
        let client = context.client().await?;
        let mut output = context.output();
        match self {
            CustomerCommand::List {
                search,
                limit,
                offset,
            } => {
                let page: Page<Customer> = client
                    .get("/api/customers")
                    .query_opt("q", search)
                    .query("limit", limit.to_string())
                    .query("offset", offset.to_string())
                    .send()
                    .await?;
                output.list(&page, &page.items)
            }
            CustomerCommand::Get { email } => {
                let customer: Customer = client
                    .get(&format!("/api/customers/{}", path_segment(&email)))
                    .send()
                    .await?;
                if output.format() != Format::Table {
                    return output.one(&customer);
                }
                let rfc3339 = |at: time::OffsetDateTime| {
                    at.format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default()
                };
                output.one(&CustomerView {
                    email: &customer.email,
                    name: customer.name.as_deref(),
                    account: customer.user_id.as_ref().map(ToString::to_string),
                    orders: customer.orders_count,
                    spent: spent(&customer),
                    first_order_at: rfc3339(customer.first_order_at),
                    last_order_at: rfc3339(customer.last_order_at),
                })
            }
        }
    }
}
