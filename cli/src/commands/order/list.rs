//! `shop order list`: orders newest first, by status, customer and date.

use shop_wire::Page;
use shop_wire::orders::{FinancialStatus, Order, OrderStatus};
use time::OffsetDateTime;

use super::super::{PageArgs, all_pages, choice, more_hint, parse_email};
use crate::client::ApiClient;
use crate::error::CliError;
use crate::output::Output;

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only this status: pending, paid, shipped, delivered or cancelled.
    #[arg(long, value_parser = choice::<OrderStatus>(OrderStatus::ALL.iter().map(|s| s.as_str())))]
    status: Option<OrderStatus>,
    /// Only orders whose money stands so: pending, paid, partially_refunded, refunded or voided.
    #[arg(long, value_name = "STATUS", value_parser = choice::<FinancialStatus>(FinancialStatus::ALL.iter().map(|s| s.as_str())))]
    financial_status: Option<FinancialStatus>,
    /// Only this customer's orders.
    #[arg(long, value_name = "EMAIL", value_parser = parse_email)]
    customer: Option<String>,
    /// Only orders placed at or after this day (2026-11-01) or time (RFC 3339).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    from: Option<String>,
    /// Only orders placed before this day's end (2026-11-30) or this time (RFC 3339).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    to: Option<String>,
    #[command(flatten)]
    page: PageArgs,
}

/// A day (`2026-11-01`) or an RFC 3339 time, passed on as typed.
fn parse_date(text: &str) -> Result<String, String> {
    let text = text.trim();
    let day = time::macros::format_description!("[year]-[month]-[day]");
    let valid = time::Date::parse(text, &day).is_ok()
        || OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).is_ok();
    if valid {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "`{text}` is neither a day like 2026-11-01 nor an RFC 3339 time like 2026-11-01T09:00:00Z"
        ))
    }
}

pub(super) async fn run(
    client: &ApiClient,
    output: &mut Output,
    args: &ListArgs,
) -> Result<(), CliError> {
    let page = if args.page.all {
        all_pages(|limit, offset| list_page(client, args, limit, offset)).await?
    } else {
        list_page(client, args, args.page.limit, args.page.offset).await?
    };
    output.list(&page, &page.items)?;
    more_hint(output, &page, "orders");
    Ok(())
}

async fn list_page(
    client: &ApiClient,
    args: &ListArgs,
    limit: u32,
    offset: u64,
) -> Result<Page<Order>, CliError> {
    client
        .get("/api/orders")
        .query_opt("status", args.status)
        .query_opt("financial_status", args.financial_status)
        .query_opt("customer", args.customer.as_deref())
        .query_opt("from", args.from.as_deref())
        .query_opt("to", args.to.as_deref())
        .query("limit", limit.to_string())
        .query("offset", offset.to_string())
        .send()
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_days_or_rfc3339_times() {
        assert!(parse_date("2026-11-01").is_ok());
        assert!(parse_date("2026-11-01T09:00:00Z").is_ok());
        for bad in ["2026-13-01", "yesterday", "2026-11-01 09:00"] {
            assert!(parse_date(bad).is_err(), "{bad}");
        }
    }
}
