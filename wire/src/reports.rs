//! Customers and the sales report (`/api/customers`, `/api/reports/sales`).
//!
//! Both count the same orders as net revenue does everywhere else (see
//! [`crate::orders::OrderAnalytics`]): an order counts once money was taken
//! for it, on the UTC day it was placed, at what it charged minus what was
//! refunded of it. So a customer's `total_spent_cents`, a report's
//! `net_cents` and the dashboard's revenue agree to the cent.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::enums::string_enum;
use crate::ids::UserId;
use crate::money::Currency;
use crate::orders::CurrencyAmount;

/// A buyer, registered or guest, by the email their orders were placed for.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Customer {
    pub email: String,
    /// The account with this email, once its email is verified (guest orders
    /// join an account only then).
    pub user_id: Option<UserId>,
    /// The account's name, or else the name on the latest order's billing or
    /// shipping address.
    pub name: Option<String>,
    /// Orders that took money (paid, partially or fully refunded since).
    pub orders_count: u64,
    /// Net spent in `currency`: charged minus refunded.
    pub total_spent_cents: i64,
    /// The currency of the latest order; `spent` has every currency.
    pub currency: Currency,
    /// Net spent per currency (amounts in different currencies are never added).
    pub spent: Vec<CurrencyAmount>,
    #[serde(with = "time::serde::rfc3339")]
    pub first_order_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub last_order_at: OffsetDateTime,
}

string_enum!(
    /// How a report's rows are grouped: by UTC day (`2026-12-07`), ISO week
    /// (`2026-W49`) or month (`2026-12`).
    ReportGroup, "report group" {
        Day => "day",
        Week => "week",
        Month => "month",
    }
);

/// One period's sales in one currency.
///
/// `gross_cents` is what the orders charged (goods after discounts, with
/// shipping and tax); `discount_cents`, `shipping_cents` and `tax_cents` say
/// how much of it, or of its reduction, each was; `net_cents` is gross minus
/// `refunds_cents`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SalesRow {
    pub period: String,
    pub currency: Currency,
    pub orders: u64,
    pub gross_cents: i64,
    pub discount_cents: i64,
    pub shipping_cents: i64,
    pub tax_cents: i64,
    pub refunds_cents: i64,
    pub net_cents: i64,
}

/// `GET /api/reports/sales`: the rows of the days `from` to `to` (UTC,
/// both included), oldest period first, then by currency. Periods without
/// sales have no row.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SalesReport {
    /// `YYYY-MM-DD`.
    pub from: String,
    /// `YYYY-MM-DD`.
    pub to: String,
    pub group: ReportGroup,
    pub rows: Vec<SalesRow>,
}
