//! Wire types of the shop HTTP API.
//!
//! Everything that crosses the wire between `shop serve` and its clients (the
//! CLI, the dashboard, scripts) is declared here exactly once, so a field can
//! never be renamed on one side only. The server enables the `openapi` feature
//! to derive the OpenAPI schemas from these same types.

pub mod addresses;
pub mod audit;
pub mod backoff;
pub mod cart;
pub mod csv_cell;
pub mod documents;
pub mod enums;
pub mod error;
pub mod events;
pub mod fixtures;
pub mod health;
pub mod ids;
pub mod inventory;
pub mod keys;
pub mod list;
pub mod money;
pub mod notifications;
pub mod orders;
pub mod payments;
pub mod pricing;
pub mod products;
pub mod reports;
pub mod returns;
#[cfg(feature = "openapi")]
pub mod schemas;
pub mod search;
pub mod users;
pub mod webhooks;

pub use error::{ErrorBody, ErrorDetail};
pub use events::Event;
pub use health::{HealthStatus, ServiceHealth, SystemHealth};
pub use ids::{
    CartId, KeyId, NotificationId, OrderId, PaymentId, ProductId, RefundId, ReservationId,
    SessionId, UserId, WebhookDeliveryId, WebhookId,
};
pub use list::Page;
pub use users::*;
