//! The storage interface of carts, orders and payments.
//!
//! Each method is one transaction that does everything a step of the money
//! path needs at once: a cart line and the stock it holds, an order with
//! its reservations, a payment's outcome with the order's status and the
//! commit of its stock, a refund with its ledger. So a crash between two
//! steps leaves a state the next start can finish, never half of one step.

use async_trait::async_trait;
use shop_wire::UserId;
use shop_wire::cart::{CartId, CartStatus};
use shop_wire::orders::{
    FinancialStatus, FulfillmentId, FulfillmentItem, Order, OrderId, OrderItem, OrderStatus,
};
use shop_wire::payments::{Payment, PaymentId};
use time::OffsetDateTime;

use super::{CommerceEvents, LineRefusal, PaymentDraft, ReserveItem, StoreResult};
use crate::services::cart::rules::{PriceChange, QuantityLimits};
use crate::services::orders::fulfilment::{ShipRefusal, ShippedLine};
use crate::services::orders::rules::LineHold;
use crate::services::pricing::rules::Unpriced;
/// An order line as a backend loads it for a step of the order: the line,
/// the reservation that holds its stock and whether that hold is still
/// active, and how many of its units shipped. The orders service's rules
/// read it through [`StoredItem::hold`] and [`StoredItem::shipped_line`].
#[derive(Clone, Debug)]
pub struct StoredItem {
    pub position: i64,
    pub item: OrderItem,
    pub reservation_id: Option<String>,
    pub held: bool,
    /// Units of the line its shipments took.
    pub shipped: i64,
}

impl StoredItem {
    pub fn hold(&self) -> LineHold {
        LineHold {
            sku: self.item.sku.clone(),
            quantity: self.item.quantity,
            held: self.held,
        }
    }

    pub fn shipped_line(&self) -> ShippedLine {
        ShippedLine {
            position: self.position,
            sku: self.item.sku.clone(),
            quantity: self.item.quantity,
            shipped: self.shipped,
        }
    }
}

#[derive(Clone, Debug)]
pub enum OrderSource {
    Items(Vec<ReserveItem>),
    /// Checkout from a cart: its lines, prices and reservations become the order's.
    Cart(CartId),
}

#[derive(Clone, Debug)]
pub struct OrderDraft {
    pub id: OrderId,
    pub customer_email: String,
    pub user_id: Option<UserId>,
    pub source: OrderSource,
    /// The checkout's `Idempotency-Key` (with the caller), when it had one.
    pub idempotency_key: Option<String>,
    /// Unpaid by then, the order is cancelled and its stock released.
    pub pay_by: OffsetDateTime,
    pub payment: Option<PaymentDraft>,
    pub actor: String,
    /// How much the order may hold, per line and in all.
    pub limits: QuantityLimits,
    /// The most unpaid orders `user_id` may have, this one included (`None`: no cap).
    pub max_unpaid: Option<u32>,
    /// Where it goes and how, for pricing.
    pub checkout: Checkout,
}

/// What an order is priced with besides its lines, which the store prices
/// with [`crate::services::pricing::rules::price_checkout`] at the unit
/// prices its transaction finds. The tables (`context`) are read before the
/// transaction, off the one writer: a zone or rate changed in between
/// prices the order as the shop stood when the request came in.
#[derive(Clone, Debug, Default)]
pub struct Checkout {
    pub context: super::PricingContext,
    /// The codes asked for with the order (the cart's own are in `context`).
    pub discount_codes: Vec<String>,
    pub shipping_address: Option<shop_wire::pricing::PostalAddress>,
    pub billing_address: Option<shop_wire::pricing::PostalAddress>,
    pub shipping_method: Option<String>,
    /// Currencies whose prices include tax.
    pub tax_inclusive: Vec<shop_wire::money::Currency>,
    pub shipping_taxable: bool,
}

#[derive(Clone, Debug)]
pub enum OrderCreate {
    Created {
        order: Box<Order>,
        payment: Option<Box<Payment>>,
    },
    /// The idempotency key was used for this order before.
    Existing(Box<Order>),
    Refused(LineRefusal),
    MixedCurrencies,
    CartNotFound,
    CartNotActive(CartStatus),
    CartEmpty,
    /// The customer already has this many unpaid orders; nothing was written.
    TooManyUnpaid(u32),
    /// Prices changed since the cart's lines were added: the cart now has
    /// today's prices (a new version) and nothing was ordered.
    PricesChanged(Vec<PriceChange>),
    /// The order cannot be priced as asked (no address or method where the
    /// shop ships, a method that does not ship there, a discount code that
    /// does not apply); nothing was written.
    Unpriceable(Unpriced),
    /// A discount's uses ran out while the order was placed: racing
    /// checkouts never use a discount more often than its limits allow.
    /// Nothing was written.
    DiscountUsedUp(super::ClaimRefusal),
}

#[derive(Clone, Debug)]
pub struct TransitionRequest {
    pub to: OrderStatus,
    pub actor: String,
    pub note: Option<String>,
    pub tracking_number: Option<String>,
}

#[derive(Clone, Debug)]
pub enum TransitionOutcome {
    Done(Box<Order>),
    NotFound,
    Illegal {
        from: OrderStatus,
    },
    /// A paid order with money left to refund: cancel it through a refund.
    NeedsRefund {
        payment_id: PaymentId,
    },
    /// A payment is being taken right now; try again in a moment.
    PaymentInFlight,
    /// Everything the order's payment took was refunded: nothing to ship.
    Refunded,
    /// Some of a paid order went out, so it is not cancelled.
    PartlyShipped,
}

/// One shipment of an order, its tracking worked out by the orders service.
#[derive(Clone, Debug)]
pub struct ShipmentDraft {
    pub id: FulfillmentId,
    /// What goes out; `None`: everything not shipped yet.
    pub items: Option<Vec<FulfillmentItem>>,
    pub carrier: Option<String>,
    pub tracking_number: Option<String>,
    pub tracking_url: Option<String>,
    pub actor: String,
    /// For the order's history, when the shipment completes the order.
    pub note: Option<String>,
}

#[derive(Clone, Debug)]
pub enum ShipOutcome {
    /// The order as it now is, the new fulfilment its last.
    Shipped(Box<Order>),
    NotFound,
    /// Nothing was written.
    Refused(ShipRefusal),
}

/// How an order is named: `ord_...` or its number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrderKey {
    Id(OrderId),
    Number(i64),
}

#[derive(Clone, Debug, Default)]
pub struct OrderQuery {
    pub status: Option<OrderStatus>,
    pub financial_status: Option<FinancialStatus>,
    pub customer_email: Option<String>,
    /// A customer's own orders: by their account, or placed for their email
    /// without it when that email is given (the caller decides when it is).
    pub owner: Option<(UserId, Option<String>)>,
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
    pub limit: u32,
    pub offset: u64,
}

#[async_trait]
pub trait OrderStore: Send + Sync {
    /// Validates and prices the lines, holds their stock, claims one use of
    /// each discount the price uses (guarded: never past a discount's total
    /// or per-customer limit), and records the order `pending` (with its
    /// payment `processing` when one is given).
    async fn create_order(
        &self,
        draft: OrderDraft,
        events: CommerceEvents,
    ) -> StoreResult<OrderCreate>;
    async fn transition_order(
        &self,
        order: &OrderId,
        request: TransitionRequest,
        events: CommerceEvents,
    ) -> StoreResult<TransitionOutcome>;
    /// Records one shipment as [`crate::services::orders::fulfilment::decide_shipment`]
    /// plans it. Each line's shipped units grow only while they stay within
    /// the line's quantity, so shipments that race never ship more of a line
    /// than was ordered: the one that comes second is refused with what is
    /// left. When nothing is left the order becomes `shipped`. The
    /// fulfilment, the audit entry and the event (`order.shipped`, or
    /// `order.partially_shipped` while something is left) are written with it.
    /// Moving an order to `shipped` with [`OrderStore::transition_order`]
    /// ships everything left the same way; moving it to `delivered` marks
    /// its fulfilments delivered.
    async fn ship_order(
        &self,
        order: &OrderId,
        draft: ShipmentDraft,
        events: CommerceEvents,
    ) -> StoreResult<ShipOutcome>;
    /// Cancels up to `limit` pending orders whose time to pay ran out, releasing their stock.
    async fn expire_orders(
        &self,
        now: OffsetDateTime,
        limit: u32,
        events: CommerceEvents,
    ) -> StoreResult<u64>;
    async fn order(&self, key: &OrderKey) -> StoreResult<Option<Order>>;
    async fn list_orders(&self, query: &OrderQuery) -> StoreResult<(Vec<Order>, u64)>;
    /// How many orders are in each status, for the business gauges.
    async fn order_counts(&self) -> StoreResult<Vec<(OrderStatus, u64)>>;
}
