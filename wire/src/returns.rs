//! Returns (RMA): shipped units a customer sends back, with a reason each.
//!
//! `requested -> approved | rejected`, `approved -> received -> refunded`.
//! Receiving a return restocks each line or not (damaged goods); its
//! refund goes through the order's payment like any refund.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::enums::string_enum;
pub use crate::ids::ReturnId;
use crate::ids::{OrderId, RefundId};
use crate::money::Currency;

string_enum!(
    /// `requested -> approved | rejected`, `approved -> received -> refunded`.
    ReturnStatus, "return status" {
        Requested => "requested",
        Approved => "approved",
        Rejected => "rejected",
        Received => "received",
        Refunded => "refunded",
    }
);

impl ReturnStatus {
    /// The statuses a return in this one may move to.
    pub fn next(self) -> &'static [ReturnStatus] {
        match self {
            ReturnStatus::Requested => &[ReturnStatus::Approved, ReturnStatus::Rejected],
            ReturnStatus::Approved => &[ReturnStatus::Received],
            ReturnStatus::Received => &[ReturnStatus::Refunded],
            ReturnStatus::Rejected | ReturnStatus::Refunded => &[],
        }
    }

    pub fn can_become(self, to: ReturnStatus) -> bool {
        self.next().contains(&to)
    }

    /// Still waiting on the shop: requested, approved or received.
    pub fn is_open(self) -> bool {
        !self.next().is_empty()
    }
}

/// Units of one SKU coming back, and why.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReturnItem {
    pub sku: String,
    pub quantity: i64,
    pub reason: String,
    /// The unit price the order was placed at.
    pub unit_price_cents: i64,
    /// Whether receiving put the units back on hand; `null` until received.
    pub restocked: Option<bool>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Return {
    pub id: ReturnId,
    pub order_id: OrderId,
    /// The order's number, e.g. `ORD-001042`.
    pub order_number: String,
    pub customer_email: String,
    pub status: ReturnStatus,
    pub items: Vec<ReturnItem>,
    pub note: Option<String>,
    /// What its refund gives back for its items: what they were charged
    /// (their prices, less their share of discounts, plus their share of
    /// tax added on top), never more than is left of the order's payment.
    pub refund_cents: i64,
    /// The order's shipping (with its tax) given back with the refund, when
    /// staff chose so; one return of an order at most. Absent from events
    /// logged before it existed, which read as 0.
    #[serde(default)]
    pub shipping_refund_cents: i64,
    pub currency: Currency,
    /// The refund of the order's payment, once it was started.
    pub refund_id: Option<RefundId>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// One line of `POST /api/orders/{id}/returns`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewReturnItem {
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64))]
    pub sku: String,
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 100000))]
    pub quantity: i64,
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 500))]
    pub reason: String,
}

/// `POST /api/orders/{id}/returns`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewReturn {
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 100))]
    pub items: Vec<NewReturnItem>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 500))]
    pub note: Option<String>,
}

/// Whether one SKU's units go back on hand.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RestockLine {
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64))]
    pub sku: String,
    pub restock: bool,
}

/// `POST /api/returns/{id}/receive`: `restock` for every line (default
/// true), or per line in `items` (lines not named follow `restock`).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReceiveReturn {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restock: Option<bool>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(max_items = 100))]
    pub items: Vec<RestockLine>,
}

/// `POST /api/returns/{id}/refund`: a note, and whether shipping goes back too.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct RefundReturn {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 500))]
    pub note: Option<String>,
    /// Give back the order's shipping too (with its tax), unless another
    /// return of the order did (409 `shipping_already_refunded`).
    #[serde(default)]
    pub include_shipping: bool,
}

/// `POST /api/returns/{id}/approve` and `/reject`: why, for the return's record.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReturnNote {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 500))]
    pub note: Option<String>,
}
