//! The storage interface of the order and payment analytics.

use async_trait::async_trait;
use shop_wire::orders::OrderAnalytics;
use shop_wire::payments::PaymentAnalytics;

use super::StoreResult;

#[async_trait]
pub trait AnalyticsStore: Send + Sync {
    async fn order_analytics(&self) -> StoreResult<OrderAnalytics>;
    async fn payment_analytics(&self) -> StoreResult<PaymentAnalytics>;
}
