//! Orders: checkout, the status state machine, and order analytics.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::cart::{CartId, LineRequest};
use crate::enums::string_enum;
pub use crate::ids::{FulfillmentId, OrderId};
use crate::ids::{PaymentId, UserId};
use crate::money::Currency;
use crate::payments::PaymentMethod;
use crate::pricing::{OrderPricing, PostalAddress};

string_enum!(
    /// `pending -> paid -> shipped -> delivered`, and `pending|paid -> cancelled`.
    OrderStatus, "order status" {
        Pending => "pending",
        Paid => "paid",
        Shipped => "shipped",
        Delivered => "delivered",
        Cancelled => "cancelled",
    }
);

impl OrderStatus {
    /// The statuses an order in this one may move to.
    pub fn next(self) -> &'static [OrderStatus] {
        match self {
            OrderStatus::Pending => &[OrderStatus::Paid, OrderStatus::Cancelled],
            OrderStatus::Paid => &[OrderStatus::Shipped, OrderStatus::Cancelled],
            OrderStatus::Shipped => &[OrderStatus::Delivered],
            OrderStatus::Delivered | OrderStatus::Cancelled => &[],
        }
    }

    pub fn can_become(self, to: OrderStatus) -> bool {
        self.next().contains(&to)
    }
}

string_enum!(
    /// Where an order's money stands, beside its fulfilment `status`:
    /// `pending` (nothing taken yet), `paid`, `partially_refunded`,
    /// `refunded` (everything taken was given back) or `voided` (cancelled
    /// before any money was taken).
    FinancialStatus, "financial status" {
        Pending => "pending",
        Paid => "paid",
        PartiallyRefunded => "partially_refunded",
        Refunded => "refunded",
        Voided => "voided",
    }
);

/// How an order logged before `financial_status` existed reads.
fn financial_status_unrecorded() -> FinancialStatus {
    FinancialStatus::Pending
}

string_enum!(
    /// How much of an order went out, beside its `status`: `unfulfilled`,
    /// `partially_shipped` (some lines or units shipped, the order still
    /// `paid`), `shipped` or `delivered`.
    FulfillmentStatus, "fulfillment status" {
        Unfulfilled => "unfulfilled",
        PartiallyShipped => "partially_shipped",
        Shipped => "shipped",
        Delivered => "delivered",
    }
);

/// How an order logged before fulfilments existed reads.
fn fulfillment_status_unrecorded() -> FulfillmentStatus {
    FulfillmentStatus::Unfulfilled
}

/// Units of one SKU of an order, in a shipment (or asked to be shipped).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct FulfillmentItem {
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 64))]
    pub sku: String,
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 100000))]
    pub quantity: i64,
}

/// One shipment of an order: which units went, with which carrier and
/// tracking, and when it was shipped and delivered.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Fulfillment {
    pub id: FulfillmentId,
    pub items: Vec<FulfillmentItem>,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    /// The given URL, or the carrier's template filled with the tracking number.
    pub tracking_url: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub shipped_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub delivered_at: Option<OffsetDateTime>,
}

/// One line of an order, priced when the order was placed.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderItem {
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    pub unit_price_cents: i64,
    pub line_total_cents: i64,
}

/// One step of an order's status history.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusChange {
    pub from: Option<OrderStatus>,
    pub to: OrderStatus,
    /// Who made the change: an email, or `system` for the workers.
    pub actor: String,
    pub note: Option<String>,
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
}

/// Why the last payment attempt of a pending order failed.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PaymentFailure {
    pub code: String,
    pub message: String,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Order {
    pub id: OrderId,
    /// Human-friendly and sequential, e.g. `ORD-001042`; accepted wherever an id is.
    pub number: String,
    pub status: OrderStatus,
    /// Where its money stands. Absent from events logged before it existed,
    /// which read as `pending`.
    #[serde(default = "financial_status_unrecorded")]
    pub financial_status: FinancialStatus,
    pub items: Vec<OrderItem>,
    pub item_count: i64,
    pub total_cents: i64,
    /// The sum of succeeded refunds of its payment.
    pub refunded_cents: i64,
    pub currency: Currency,
    pub customer_email: String,
    pub user_id: Option<UserId>,
    /// The payment that paid it, or the latest attempt while it is pending.
    pub payment_id: Option<PaymentId>,
    pub cart_id: Option<CartId>,
    pub payment_error: Option<PaymentFailure>,
    /// The tracking number of its latest shipment that had one.
    pub tracking_number: Option<String>,
    /// How much of it went out; absent from events logged before
    /// fulfilments existed, which read as `unfulfilled`.
    #[serde(default = "fulfillment_status_unrecorded")]
    pub fulfillment_status: FulfillmentStatus,
    /// Its shipments, oldest first.
    #[serde(default)]
    pub fulfillments: Vec<Fulfillment>,
    /// Subtotal, discounts, shipping and tax (which make `total_cents`), and the addresses.
    #[serde(flatten)]
    pub pricing: OrderPricing,
    /// Oldest first; only in single-order answers, empty in lists.
    #[serde(default)]
    pub history: Vec<StatusChange>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
}

/// `POST /api/orders`: checkout from a cart (`cart_id`) or from explicit
/// `items` (scripting and admin use). Without `payment` the order is left
/// `pending` for a later `POST /api/orders/{id}/pay`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct NewOrder {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cart_id: Option<CartId>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<LineRequest>,
    /// Defaults to the caller's email; staff may order for any customer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub customer_email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment: Option<PaymentMethod>,
    /// Required when the shop ships (it has a shipping zone).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_address: Option<PostalAddress>,
    /// One of the caller's saved addresses, instead of `shipping_address`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shipping_address_id: Option<crate::addresses::AddressId>,
    /// Where the bill goes; tax follows it when nothing is shipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_address: Option<PostalAddress>,
    /// One of the caller's saved addresses, instead of `billing_address`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billing_address_id: Option<crate::addresses::AddressId>,
    /// A method's `code` from the zone of the shipping address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 40))]
    pub shipping_method: Option<String>,
    /// Discount codes, each at most once (a cart's own codes apply too).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[cfg_attr(feature = "openapi", schema(max_items = 10))]
    pub discount_codes: Vec<String>,
}

impl Order {
    /// The shipment an `order.shipped` or `order.partially_shipped` event is
    /// about: the newest of its fulfilments.
    pub fn latest_fulfillment(&self) -> Option<&Fulfillment> {
        self.fulfillments.last()
    }
}

/// `POST /api/orders/{id}/ship`: one shipment, of `items` or (without
/// them) of everything not shipped yet.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ShipOrder {
    /// A carrier's name, e.g. `ups`; a known one fills in `tracking_url`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 40))]
    pub carrier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 100))]
    pub tracking_number: Option<String>,
    /// Wins over the carrier's template; `http://` or `https://`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(max_length = 500))]
    pub tracking_url: Option<String>,
    /// What goes in this shipment; without it, everything not shipped yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[cfg_attr(feature = "openapi", schema(min_items = 1, max_items = 100))]
    pub items: Option<Vec<FulfillmentItem>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// `POST /api/orders/{id}/deliver` and `/cancel`: an optional note for the history.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct Transition {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Orders by status, revenue by day, average order value and best sellers,
/// each per currency (amounts in different currencies are never added).
///
/// Revenue is net revenue everywhere (here, the dashboard and `/metrics`):
/// what orders' payments captured minus what was refunded of them, counted
/// on the UTC day the order was placed. An order counts as sold while some
/// of its money is kept (financial status `paid` or `partially_refunded`);
/// the average order value is net revenue over sold orders.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct OrderAnalytics {
    pub counts_by_status: Vec<StatusCount>,
    /// Net revenue of the orders placed each day; `orders` counts the sold ones.
    pub revenue_by_day: Vec<DayRevenue>,
    pub average_order_value: Vec<CurrencyAmount>,
    pub top_products: Vec<TopProduct>,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct StatusCount {
    pub status: OrderStatus,
    pub count: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DayRevenue {
    /// `YYYY-MM-DD`, UTC.
    pub day: String,
    pub currency: Currency,
    pub orders: u64,
    pub revenue_cents: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CurrencyAmount {
    pub currency: Currency,
    pub amount_cents: i64,
}

#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TopProduct {
    pub sku: String,
    pub name: String,
    pub quantity: i64,
    pub revenue_cents: i64,
    pub currency: Currency,
}
