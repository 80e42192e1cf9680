//! Customers and the sales report (`/api/customers`, `/api/reports/sales`),
//! read only, for staff and for API keys with `customers:read` or
//! `reports:read`.
//!
//! Both read the orders as net revenue does (see `shop_wire::reports`), so
//! a customer's total, a report's net and the dashboard's revenue agree.
//! The rules here are which days a report covers and how it is written as
//! CSV; the store sums.

use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use shop_wire::reports::{Customer, ReportGroup, SalesReport, SalesRow};
use shop_wire::{ErrorBody, Page};
use time::macros::format_description;
use time::{Date, Duration, OffsetDateTime, Time};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::auth::Staff;
use crate::error::{AppError, AppResult};
use crate::gateway::json::{ApiJson, ApiQuery, page_offset};
use crate::services::error::{DomainError, DomainResult};
use crate::services::page_limit;
use crate::services::users::domain::normalize_email;
use crate::state::AppState;
use crate::store::{CustomerQuery, SalesQuery};

/// How many days a report covers when `from` is not given: `to` and the 29 before.
const DEFAULT_DAYS: i64 = 30;

pub fn customers_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_customers))
        .routes(routes!(get_customer))
}

pub fn reports_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(sales))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct CustomerParams {
    /// Text in the email or the name, any case.
    #[param(nullable = false)]
    q: Option<String>,
    /// Page size, 1-500 (default 50).
    #[param(nullable = false, minimum = 1, maximum = 500)]
    limit: Option<u32>,
    /// Customers to skip (default 0).
    #[param(nullable = false, minimum = 0, maximum = 1_000_000)]
    offset: Option<u64>,
}

/// Every buyer, registered or guest, with orders count, net spent and
/// first and last order; newest buyer first (staff).
#[utoipa::path(get, path = "", tag = "customers", security(("bearer" = [])), params(CustomerParams),
    responses((status = 200, body = Page<Customer>), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list_customers(
    State(state): State<AppState>,
    _: Staff,
    ApiQuery(params): ApiQuery<CustomerParams>,
) -> AppResult<ApiJson<Page<Customer>>> {
    let query = CustomerQuery {
        text: params
            .q
            .map(|q| q.trim().to_owned())
            .filter(|q| !q.is_empty()),
        limit: page_limit(params.limit)?,
        offset: page_offset(params.offset)?,
    };
    let (items, total) = state.store.customers(&query).await?;
    Ok(ApiJson(Page {
        items,
        total,
        limit: query.limit,
        offset: query.offset,
    }))
}

/// One buyer by the email their orders were placed for (staff).
#[utoipa::path(get, path = "/{email}", tag = "customers", security(("bearer" = [])),
    params(("email" = String, Path, description = "the customer's email, any case")),
    responses((status = 200, body = Customer), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get_customer(
    State(state): State<AppState>,
    _: Staff,
    Path(email): Path<String>,
) -> AppResult<ApiJson<Customer>> {
    let email = normalize_email("email", &email)?;
    let customer = state.store.customer(&email).await?;
    Ok(ApiJson(customer.ok_or_else(|| {
        DomainError::not_found(format!("a customer with orders for {email}"))
    })?))
}

/// `json` (default) or `csv`.
#[derive(Clone, Copy, Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ReportFormat {
    #[default]
    Json,
    Csv,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct SalesParams {
    /// The first day, `YYYY-MM-DD` (UTC; default: 29 days before `to`).
    #[param(nullable = false, format = Date)]
    from: Option<String>,
    /// The last day, included, `YYYY-MM-DD` (UTC; default: today).
    #[param(nullable = false, format = Date)]
    to: Option<String>,
    /// `day` (default), `week` (ISO weeks) or `month`.
    #[param(nullable = false)]
    group: Option<ReportGroup>,
    /// `json` (default) or `csv`.
    #[param(nullable = false)]
    format: Option<ReportFormat>,
}

/// Orders, gross, discounts, shipping, tax, refunds and net per period and
/// currency, for any days (staff). Orders count on the UTC day they were
/// placed, once money was taken for them.
#[utoipa::path(get, path = "/sales", tag = "reports", security(("bearer" = [])), params(SalesParams),
    responses((status = 200, description = "the report", content((SalesReport = "application/json"), (String = "text/csv"))),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn sales(
    State(state): State<AppState>,
    _: Staff,
    ApiQuery(params): ApiQuery<SalesParams>,
) -> AppResult<Response> {
    let today = OffsetDateTime::now_utc().date();
    let (from, to) = report_days(params.from.as_deref(), params.to.as_deref(), today)?;
    let group = params.group.unwrap_or(ReportGroup::Day);
    let query = SalesQuery {
        from: from.with_time(Time::MIDNIGHT).assume_utc(),
        to: day_after(to)?.with_time(Time::MIDNIGHT).assume_utc(),
        group,
    };
    let rows = state.store.sales(&query).await?;
    let report = SalesReport {
        from: from.to_string(),
        to: to.to_string(),
        group,
        rows,
    };
    Ok(match params.format.unwrap_or_default() {
        ReportFormat::Json => ApiJson(report).into_response(),
        ReportFormat::Csv => (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            sales_csv(&report.rows).map_err(AppError::internal)?,
        )
            .into_response(),
    })
}

fn parse_day(field: &str, text: &str) -> DomainResult<Date> {
    Date::parse(text.trim(), format_description!("[year]-[month]-[day]"))
        .map_err(|_| DomainError::validation(field, "must be a date, YYYY-MM-DD (e.g. 2026-01-31)"))
}

fn day_after(day: Date) -> DomainResult<Date> {
    day.next_day()
        .ok_or_else(|| DomainError::validation("to", "is past the last day there is"))
}

/// The days a report covers, both included: `to` defaults to `today`,
/// `from` to the [`DEFAULT_DAYS`] ending at `to`. A range that ends before
/// it starts is refused, naming `from`.
pub fn report_days(
    from: Option<&str>,
    to: Option<&str>,
    today: Date,
) -> DomainResult<(Date, Date)> {
    let to = to
        .map(|text| parse_day("to", text))
        .transpose()?
        .unwrap_or(today);
    let from = match from {
        Some(text) => parse_day("from", text)?,
        None => to
            .checked_sub(Duration::days(DEFAULT_DAYS - 1))
            .ok_or_else(|| DomainError::validation("to", "is too early for a default `from`"))?,
    };
    if from > to {
        return Err(DomainError::rejected(
            "invalid_range",
            "from",
            format!("the report would start on {from}, after its last day {to}"),
        ));
    }
    Ok((from, to))
}

/// The rows as CSV with a header row of their field names.
pub fn sales_csv(rows: &[SalesRow]) -> Result<String, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    if rows.is_empty() {
        // serde writes the header with the first row; with none, write it alone.
        writer.write_record([
            "period",
            "currency",
            "orders",
            "gross_cents",
            "discount_cents",
            "shipping_cents",
            "tax_cents",
            "refunds_cents",
            "net_cents",
        ])?;
    }
    for row in rows {
        writer.serialize(row)?;
    }
    let bytes = writer.into_inner().map_err(|err| err.into_error())?;
    Ok(String::from_utf8(bytes).expect("csv writes the UTF-8 it is given"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    #[test]
    fn a_report_covers_the_days_asked_or_the_last_thirty() {
        let today = date!(2026 - 12 - 07);
        assert_eq!(
            report_days(None, None, today).unwrap(),
            (date!(2026 - 11 - 08), today)
        );
        assert_eq!(
            report_days(Some("2026-01-01"), Some("2026-03-31"), today).unwrap(),
            (date!(2026 - 01 - 01), date!(2026 - 03 - 31))
        );
        assert_eq!(
            report_days(Some("2025-12-07"), None, today).unwrap(),
            (date!(2025 - 12 - 07), today)
        );
        // One day is a range too.
        assert_eq!(
            report_days(Some("2026-02-02"), Some("2026-02-02"), today).unwrap(),
            (date!(2026 - 02 - 02), date!(2026 - 02 - 02))
        );
    }

    #[test]
    fn a_backwards_or_unreadable_range_is_refused_naming_its_field() {
        let today = date!(2026 - 12 - 07);
        let field = |err: DomainError| match err {
            DomainError::Rejected { code, field, .. } => format!("{code}:{field}"),
            DomainError::Validation { message, .. } => message,
            other => panic!("unexpected {other:?}"),
        };
        assert_eq!(
            field(report_days(Some("2026-03-01"), Some("2026-02-01"), today).unwrap_err()),
            "invalid_range:from"
        );
        for (from, to, named) in [
            (Some("2026-02-30"), None, "from"),
            (Some("yesterday"), None, "from"),
            (None, Some("2026/01/01"), "to"),
            (None, Some(""), "to"),
        ] {
            let message = field(report_days(from, to, today).unwrap_err());
            assert!(message.starts_with(named), "{from:?} {to:?}: {message}");
        }
    }

    #[test]
    fn csv_has_a_header_even_without_rows_and_one_line_per_row() {
        assert_eq!(
            sales_csv(&[]).unwrap(),
            "period,currency,orders,gross_cents,discount_cents,shipping_cents,tax_cents,refunds_cents,net_cents\n"
        );
        let row = SalesRow {
            period: "2026-W49".to_owned(),
            currency: "EUR".parse().unwrap(),
            orders: 2,
            gross_cents: 5000,
            discount_cents: 500,
            shipping_cents: 499,
            tax_cents: 798,
            refunds_cents: 1000,
            net_cents: 4000,
        };
        assert_eq!(
            sales_csv(&[row]).unwrap(),
            "period,currency,orders,gross_cents,discount_cents,shipping_cents,tax_cents,refunds_cents,net_cents\n\
             2026-W49,EUR,2,5000,500,499,798,1000,4000\n"
        );
    }
}
