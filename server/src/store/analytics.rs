//! The storage interface of the order and payment analytics.

use async_trait::async_trait;
use shop_wire::orders::{CurrencyAmount, OrderAnalytics};
use shop_wire::payments::PaymentAnalytics;
use shop_wire::reports::{Customer, ReportGroup, SalesRow};
use time::OffsetDateTime;

use super::StoreResult;

/// Which customers to list: `text` in the email or name (any case), newest
/// buyer first.
#[derive(Clone, Debug, Default)]
pub struct CustomerQuery {
    pub text: Option<String>,
    pub limit: u32,
    pub offset: u64,
}

/// The orders placed from `from` (included) to `to` (excluded), in periods.
#[derive(Clone, Debug)]
pub struct SalesQuery {
    pub from: OffsetDateTime,
    pub to: OffsetDateTime,
    pub group: ReportGroup,
}

#[async_trait]
pub trait AnalyticsStore: Send + Sync {
    async fn order_analytics(&self) -> StoreResult<OrderAnalytics>;
    /// Net revenue of every order so far, per currency, by the definition of
    /// [`OrderAnalytics`]: the sum of its `revenue_by_day` over all days.
    async fn net_revenue(&self) -> StoreResult<Vec<CurrencyAmount>>;
    async fn payment_analytics(&self) -> StoreResult<PaymentAnalytics>;
    /// A page of the buyers (emails with an order that took money, by the
    /// orders service's rule), with the total that match.
    async fn customers(&self, query: &CustomerQuery) -> StoreResult<(Vec<Customer>, u64)>;
    /// One buyer by the email their orders were placed for (any case), or
    /// `None` when no order of theirs took money.
    async fn customer(&self, email: &str) -> StoreResult<Option<Customer>>;
    /// The sales of each period and currency with orders in it, oldest first;
    /// figures by the definition of [`SalesRow`], orders counted by the
    /// orders service's rule, on the UTC day they were placed.
    async fn sales(&self, query: &SalesQuery) -> StoreResult<Vec<SalesRow>>;
}
