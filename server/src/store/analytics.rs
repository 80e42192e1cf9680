//! The storage interface of the order and payment analytics.

use async_trait::async_trait;
use shop_wire::orders::{CurrencyAmount, OrderAnalytics};
use shop_wire::payments::PaymentAnalytics;

use super::StoreResult;

#[async_trait]
pub trait AnalyticsStore: Send + Sync {
    async fn order_analytics(&self) -> StoreResult<OrderAnalytics>;
    /// Net revenue of every order so far, per currency, by the definition of
    /// [`OrderAnalytics`]: the sum of its `revenue_by_day` over all days.
    async fn net_revenue(&self) -> StoreResult<Vec<CurrencyAmount>>;
    async fn payment_analytics(&self) -> StoreResult<PaymentAnalytics>;
}
