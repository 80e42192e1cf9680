//! `shop return`: returns (RMA) of shipped units. A customer opens one for
//! their own order; staff approve or reject it, receive it (restocking
//! each line, or not with `--no-restock`) and refund it through the
//! order's payment.

use shop_wire::Page;
use shop_wire::returns::{
    NewReturn, NewReturnItem, ReceiveReturn, RefundReturn, Return, ReturnNote, ReturnStatus,
};

use super::order::{PricedLine, money, parse_text};
use super::{PageArgs, all_pages, choice, more_hint};
use crate::client::ApiClient;
use crate::context::Context;
use crate::error::CliError;
use crate::output::{CellKind, Column, Format, Output, Tabular};

#[derive(Debug, clap::Subcommand)]
pub enum ReturnCommand {
    /// Open a return of shipped units of an order, each with a reason.
    #[command(after_help = "\
A customer returns from their own orders, staff from any; only shipped units, not already in
another return, within the return window (by default 30 days after delivery).
Example: shop return create ORD-001042 --item CHAIR-01:1:'wobbly leg'")]
    Create {
        /// The order's id (ord_...) or number (ORD-001042).
        #[arg(value_name = "ORDER", value_parser = super::order::parse_order_ref)]
        order: String,
        /// SKU:QTY:REASON (repeatable).
        #[arg(long = "item", value_name = "SKU:QTY:REASON", required = true, value_parser = parse_return_item)]
        items: Vec<NewReturnItem>,
        /// A note kept with the return.
        #[arg(long, value_parser = parse_text)]
        note: Option<String>,
    },
    /// List returns, newest first: your own, or all for staff.
    List {
        /// Only this status: requested, approved, rejected, received or refunded.
        #[arg(long, value_parser = choice::<ReturnStatus>(ReturnStatus::ALL.iter().map(|s| s.as_str())))]
        status: Option<ReturnStatus>,
        /// Only those still waiting on the shop (requested, approved, received).
        #[arg(long)]
        open: bool,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Show one return.
    Get {
        /// The return's id (ret_...).
        #[arg(value_name = "RETURN", value_parser = parse_return_id)]
        id: String,
    },
    /// Approve a requested return (staff).
    Approve {
        /// The return's id (ret_...).
        #[arg(value_name = "RETURN", value_parser = parse_return_id)]
        id: String,
        /// A note kept with the return.
        #[arg(long, value_parser = parse_text)]
        note: Option<String>,
    },
    /// Reject a requested return (staff); its units may be returned again.
    Reject {
        /// The return's id (ret_...).
        #[arg(value_name = "RETURN", value_parser = parse_return_id)]
        id: String,
        /// Why, for the customer's email.
        #[arg(long, value_parser = parse_text)]
        note: Option<String>,
    },
    /// Record an approved return as arrived (staff): its units go back on hand.
    Receive {
        /// The return's id (ret_...).
        #[arg(value_name = "RETURN", value_parser = parse_return_id)]
        id: String,
        /// Do not restock (damaged goods); the units stay off the shelf.
        #[arg(long)]
        no_restock: bool,
    },
    /// Refund a received return through its order's payment (staff): what its items were
    /// charged, and with --include-shipping the order's shipping too.
    Refund {
        /// The return's id (ret_...).
        #[arg(value_name = "RETURN", value_parser = parse_return_id)]
        id: String,
        /// Give back the order's shipping (with its tax) as well; one return of an order at most.
        #[arg(long)]
        include_shipping: bool,
    },
}

fn parse_return_id(text: &str) -> Result<String, String> {
    let text = text.trim();
    text.parse::<shop_wire::returns::ReturnId>()
        .map(|id| id.as_str().to_owned())
        .map_err(|err| format!("`{text}`: {err}"))
}

/// `SKU:QTY:REASON`; the reason may itself hold colons.
fn parse_return_item(text: &str) -> Result<NewReturnItem, String> {
    let mut parts = text.splitn(3, ':');
    let (Some(sku), Some(quantity), Some(reason)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(format!(
            "`{text}` is not SKU:QTY:REASON (like CHAIR-01:1:'wobbly leg')"
        ));
    };
    let line = super::order::parse_item(&format!("{sku}:{quantity}"))?;
    let reason = parse_text(reason).map_err(|err| format!("`{text}`: the reason {err}"))?;
    Ok(NewReturnItem {
        sku: line.sku,
        quantity: line.quantity,
        reason,
    })
}

impl Tabular for Return {
    fn columns() -> &'static [Column] {
        const COLUMNS: &[Column] = &[
            Column::new("id", "id").kind(CellKind::Id),
            Column::new("order", "order_number").kind(CellKind::Id),
            Column::new("status", "status").kind(CellKind::Status),
            Column::new("items", "units"),
            Column::new("refund", "refund").kind(CellKind::Id),
            Column::new("customer", "customer_email"),
            Column::new("age", "created_at").kind(CellKind::Age),
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
        vec![
            ("units", units.join(", ")),
            ("refund", money(self.refund_cents, self.currency)),
        ]
    }
}

/// On a terminal the return and its lines as tables; otherwise the return.
fn print_return(output: &mut Output, found: &Return) -> Result<(), CliError> {
    if output.format() != Format::Table {
        return output.one(found);
    }
    output.one(found)?;
    let lines: Vec<PricedLine<'_>> = found
        .items
        .iter()
        .map(|item| {
            PricedLine::new(
                (&item.sku, &item.reason),
                item.quantity,
                item.unit_price_cents,
                item.unit_price_cents * item.quantity,
                found.currency,
            )
        })
        .collect();
    eprintln!();
    output.list(&(), &lines)
}

async fn list_page(
    client: &ApiClient,
    status: Option<ReturnStatus>,
    open: bool,
    (limit, offset): (u32, u64),
) -> Result<Page<Return>, CliError> {
    client
        .get("/api/returns")
        .query_opt("status", status)
        .query_opt("open", open.then_some("true"))
        .query("limit", limit.to_string())
        .query("offset", offset.to_string())
        .send()
        .await
}

impl ReturnCommand {
    pub async fn run(self, context: &Context) -> Result<(), CliError> {
        let client = context.client().await?;
        let mut output = context.output();
        let (path, body) = match self {
            ReturnCommand::Create { order, items, note } => {
                let created: Return = client
                    .post(&format!("/api/orders/{order}/returns"))
                    .json(&NewReturn { items, note })?
                    .send()
                    .await?;
                return print_return(&mut output, &created);
            }
            ReturnCommand::List { status, open, page } => {
                let found = if page.all {
                    all_pages(|limit, offset| list_page(&client, status, open, (limit, offset)))
                        .await?
                } else {
                    list_page(&client, status, open, (page.limit, page.offset)).await?
                };
                output.list(&found, &found.items)?;
                more_hint(&output, &found, "returns");
                return Ok(());
            }
            ReturnCommand::Get { id } => {
                let found: Return = client.get(&format!("/api/returns/{id}")).send().await?;
                return print_return(&mut output, &found);
            }
            ReturnCommand::Approve { id, note } => (
                format!("/api/returns/{id}/approve"),
                serde_json::to_value(ReturnNote { note }),
            ),
            ReturnCommand::Reject { id, note } => (
                format!("/api/returns/{id}/reject"),
                serde_json::to_value(ReturnNote { note }),
            ),
            ReturnCommand::Receive { id, no_restock } => (
                format!("/api/returns/{id}/receive"),
                serde_json::to_value(ReceiveReturn {
                    restock: Some(!no_restock),
                    items: Vec::new(),
                }),
            ),
            ReturnCommand::Refund {
                id,
                include_shipping,
            } => (
                format!("/api/returns/{id}/refund"),
                serde_json::to_value(RefundReturn {
                    note: None,
                    include_shipping,
                }),
            ),
        };
        let body = body.map_err(|err| CliError::Other(err.to_string()))?;
        let moved: Return = client.post(&path).json(&body)?.send().await?;
        print_return(&mut output, &moved)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_return_line_is_sku_quantity_and_a_reason_that_may_hold_colons() {
        let item = parse_return_item("CHAIR-01:2:broken: leg").expect("item");
        assert_eq!(
            (item.sku.as_str(), item.quantity, item.reason.as_str()),
            ("CHAIR-01", 2, "broken: leg")
        );
        for bad in [
            "CHAIR-01:2",
            "CHAIR-01:0:why",
            "CHAIR-01:x:why",
            "CHAIR-01:1: ",
        ] {
            assert!(parse_return_item(bad).is_err(), "{bad}");
        }
    }
}
