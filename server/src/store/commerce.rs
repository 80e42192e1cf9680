//! The storage interface of carts, orders and payments.
//!
//! Each method is one transaction that does everything a step of the money
//! path needs at once: a cart line and the stock it holds, an order with
//! its reservations, a payment's outcome with the order's status and the
//! commit of its stock, a refund with its ledger. So a crash between two
//! steps leaves a state the next start can finish, never half of one step.

use async_trait::async_trait;
use shop_wire::cart::{Cart, CartId, CartStatus};
use shop_wire::events::{CartEvent, MakeEvent, PaymentEvent};
use shop_wire::money::Currency;
use shop_wire::orders::{Order, OrderAnalytics, OrderId, OrderStatus};
use shop_wire::payments::{
    MethodKind, Payment, PaymentAnalytics, PaymentId, PaymentStatus, Refund, RefundId,
};
use shop_wire::{Event, UserId};
use time::OffsetDateTime;

use super::{NewEvent, ReserveItem, StockEvents, StoreResult};

/// A cart with what only the server may see: the hash of its anonymous token.
#[derive(Clone, Debug)]
pub struct CartRecord {
    pub cart: Cart,
    pub token_hash: Option<String>,
}

#[derive(Clone, Debug)]
pub enum CartChange {
    /// Adds units to the SKU's line, making the line if there is none.
    Add {
        sku: String,
        quantity: i64,
    },
    /// Sets the line's quantity; the line must exist.
    Set {
        sku: String,
        quantity: i64,
    },
    Remove {
        sku: String,
    },
    Clear,
}

/// Why a line cannot be added or changed.
#[derive(Clone, Debug, PartialEq)]
pub enum LineRefusal {
    UnknownSku(String),
    Archived(String),
    Insufficient {
        sku: String,
        available: i64,
        requested: i64,
    },
    CurrencyMismatch {
        sku: String,
        expected: Currency,
        found: Currency,
    },
    NoLine(String),
    TooManyLines(usize),
}

#[derive(Clone, Debug)]
pub enum CartWrite {
    Written(Box<CartRecord>, Vec<Event>),
    NotFound,
    NotActive(CartStatus),
    VersionConflict { current: u64 },
    Refused(LineRefusal),
}

/// A new cart. A user's cart has `user_id`; an anonymous one has `token_hash`.
#[derive(Clone, Debug)]
pub struct NewCartRecord {
    pub id: CartId,
    pub user_id: Option<UserId>,
    pub token_hash: Option<String>,
    pub lines: Vec<ReserveItem>,
    pub expires_at: OffsetDateTime,
}

/// The event builders of the money path; each step logs its events in its own transaction.
#[derive(Clone, Copy)]
pub struct CommerceEvents {
    pub stock: StockEvents,
    /// Each takes the kind as its payload's constructor, e.g. `EventData::OrderPaid`.
    pub cart: fn(MakeEvent<CartEvent>, &Cart) -> NewEvent,
    pub order: fn(MakeEvent<Order>, &Order) -> NewEvent,
    pub payment: fn(MakeEvent<PaymentEvent>, &Payment, &Order, Option<&Refund>) -> NewEvent,
}

/// Context shared by a change: who makes it, until when stock is held.
#[derive(Clone, Debug)]
pub struct ChangeContext {
    pub actor: Option<String>,
    pub expires_at: OffsetDateTime,
}

#[derive(Clone, Debug)]
pub enum OrderSource {
    Items(Vec<ReserveItem>),
    /// Checkout from a cart: its lines, prices and reservations become the order's.
    Cart(CartId),
}

/// A payment attempt about to be made, recorded as `processing` before the provider is called.
#[derive(Clone, Debug)]
pub struct PaymentDraft {
    pub id: PaymentId,
    pub method: MethodKind,
    pub provider: &'static str,
    pub card_brand: Option<String>,
    pub card_last4: Option<String>,
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
}

#[derive(Clone, Debug)]
pub enum OrderCreate {
    Created {
        order: Box<Order>,
        payment: Option<Box<Payment>>,
        events: Vec<Event>,
    },
    /// The idempotency key was used for this order before.
    Existing(Box<Order>),
    Refused(LineRefusal),
    MixedCurrencies,
    CartNotFound,
    CartNotActive(CartStatus),
    CartEmpty,
}

#[derive(Clone, Debug)]
pub enum BeginPayment {
    Started {
        order: Box<Order>,
        payment: Box<Payment>,
        events: Vec<Event>,
    },
    NotFound,
    WrongStatus(OrderStatus),
    /// A payment of the order is already processing or awaiting settlement.
    InFlight(Box<Payment>),
    /// The order's hold on its stock ran out and the stock is gone.
    StockGone(LineRefusal),
}

/// What the provider said about a charge, as the store records it.
#[derive(Clone, Debug)]
pub enum ChargeResult {
    Succeeded {
        provider_ref: String,
        card_brand: Option<String>,
        card_last4: Option<String>,
    },
    Pending {
        provider_ref: String,
        hold_until: OffsetDateTime,
    },
    Failed {
        code: String,
        message: String,
        provider_ref: Option<String>,
    },
}

#[derive(Clone, Debug)]
pub enum PaymentDone {
    Paid {
        order: Box<Order>,
        payment: Box<Payment>,
        events: Vec<Event>,
    },
    /// Awaiting settlement (a bank transfer); the order stays pending.
    Pending {
        order: Box<Order>,
        payment: Box<Payment>,
        events: Vec<Event>,
    },
    Failed {
        order: Box<Order>,
        payment: Box<Payment>,
        events: Vec<Event>,
    },
    /// The money was taken but the stock could not be committed (the order
    /// was cancelled meanwhile, or its hold expired and the stock sold): the
    /// payment must be refunded.
    Unfulfillable {
        order: Box<Order>,
        payment: Box<Payment>,
        events: Vec<Event>,
    },
    NotFound,
    /// The payment was finished before (a repeat of a recovery).
    AlreadyFinished(Box<Payment>),
}

#[derive(Clone, Debug)]
pub struct RefundDraft {
    pub id: RefundId,
    /// None: all that is left.
    pub amount_cents: Option<i64>,
    pub reason: Option<String>,
    /// Cancel the order and restock once the refund succeeds.
    pub cancels_order: bool,
    pub actor: String,
}

#[derive(Clone, Debug)]
pub enum StartRefund {
    Started {
        refund: Box<Refund>,
        payment: Box<Payment>,
    },
    NotFound,
    NotRefundable(PaymentStatus),
    /// More than is left: captured minus refunded minus refunds in flight.
    Exceeds {
        refundable: i64,
    },
    NothingLeft,
}

#[derive(Clone, Debug)]
pub enum RefundResult {
    Succeeded { provider_ref: String },
    Failed { message: String },
}

#[derive(Clone, Debug)]
pub enum FinishRefund {
    Done {
        refund: Box<Refund>,
        payment: Box<Payment>,
        order: Box<Order>,
        events: Vec<Event>,
    },
    NotFound,
    AlreadyFinished(Box<Refund>),
}

/// A refund recorded as `processing` whose provider call has not been answered.
#[derive(Clone, Debug)]
pub struct PendingRefund {
    pub refund: Refund,
    pub provider: String,
    pub provider_ref: Option<String>,
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
    Done(Box<Order>, Vec<Event>),
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
    pub customer_email: Option<String>,
    /// A customer's own orders: by their account or their email.
    pub owner: Option<(UserId, String)>,
    pub from: Option<OffsetDateTime>,
    pub to: Option<OffsetDateTime>,
    pub limit: u32,
    pub offset: u64,
}

#[derive(Clone, Debug, Default)]
pub struct PaymentQuery {
    pub status: Option<PaymentStatus>,
    pub order_id: Option<OrderId>,
    pub method: Option<MethodKind>,
    /// A customer's own payments: those of their orders.
    pub owner: Option<(UserId, String)>,
    pub limit: u32,
    pub offset: u64,
}

#[async_trait]
pub trait CartStore: Send + Sync {
    /// Creates a cart holding stock for its lines, all or nothing. Fails with
    /// `Duplicate` when the user already has an active cart.
    async fn create_cart(
        &self,
        cart: NewCartRecord,
        actor: Option<String>,
        events: CommerceEvents,
    ) -> StoreResult<CartWrite>;
    async fn cart(&self, id: &CartId) -> StoreResult<Option<CartRecord>>;
    async fn active_cart_of(&self, user: &UserId) -> StoreResult<Option<CartRecord>>;
    async fn cart_by_token(&self, token_hash: &str) -> StoreResult<Option<CartRecord>>;
    /// Applies a change if the cart is active, unexpired and at `expected_version`
    /// (when given), keeping its reservations in step and extending its life.
    async fn change_cart(
        &self,
        id: &CartId,
        change: CartChange,
        expected_version: Option<u64>,
        context: ChangeContext,
        events: CommerceEvents,
    ) -> StoreResult<CartWrite>;
    /// Moves an anonymous cart's lines into the user's active cart (which the
    /// anonymous cart becomes when the user has none) and marks it `merged`.
    async fn merge_cart(
        &self,
        from: &CartId,
        user: &UserId,
        context: ChangeContext,
        events: CommerceEvents,
    ) -> StoreResult<CartWrite>;
    /// Expires up to `limit` active carts idle past their time, releasing their stock.
    async fn expire_carts(
        &self,
        now: OffsetDateTime,
        limit: u32,
        events: CommerceEvents,
    ) -> StoreResult<(u64, Vec<Event>)>;
}

#[async_trait]
pub trait OrderStore: Send + Sync {
    /// Validates and prices the lines, holds their stock, and records the
    /// order `pending` (with its payment `processing` when one is given).
    async fn create_order(
        &self,
        draft: OrderDraft,
        events: CommerceEvents,
    ) -> StoreResult<OrderCreate>;
    /// Records a new payment attempt of a pending order, holding its stock
    /// again if its hold ran out.
    async fn begin_payment(
        &self,
        order: &OrderId,
        payment: PaymentDraft,
        pay_by: OffsetDateTime,
        actor: String,
        events: CommerceEvents,
    ) -> StoreResult<BeginPayment>;
    /// Records the provider's answer: paid (stock committed, order paid),
    /// pending, or failed, in one transaction.
    async fn complete_payment(
        &self,
        payment: &PaymentId,
        result: ChargeResult,
        actor: String,
        events: CommerceEvents,
    ) -> StoreResult<PaymentDone>;
    async fn start_refund(
        &self,
        payment: &PaymentId,
        draft: RefundDraft,
    ) -> StoreResult<StartRefund>;
    /// Records the provider's answer to a refund, and, for a refund that
    /// cancels its order, the cancellation and the restock.
    async fn finish_refund(
        &self,
        refund: &RefundId,
        result: RefundResult,
        events: CommerceEvents,
    ) -> StoreResult<FinishRefund>;
    async fn transition_order(
        &self,
        order: &OrderId,
        request: TransitionRequest,
        events: CommerceEvents,
    ) -> StoreResult<TransitionOutcome>;
    /// Cancels up to `limit` pending orders whose time to pay ran out, releasing their stock.
    async fn expire_orders(
        &self,
        now: OffsetDateTime,
        limit: u32,
        events: CommerceEvents,
    ) -> StoreResult<(u64, Vec<Event>)>;
    async fn order(&self, key: &OrderKey) -> StoreResult<Option<Order>>;
    async fn list_orders(&self, query: &OrderQuery) -> StoreResult<(Vec<Order>, u64)>;
    async fn order_analytics(&self) -> StoreResult<OrderAnalytics>;
    async fn payment(&self, id: &PaymentId) -> StoreResult<Option<Payment>>;
    async fn list_payments(&self, query: &PaymentQuery) -> StoreResult<(Vec<Payment>, u64)>;
    async fn payment_analytics(&self) -> StoreResult<PaymentAnalytics>;
    /// Payments left `processing` (a crash while the provider was asked).
    async fn processing_payments(&self) -> StoreResult<Vec<Payment>>;
    /// Refunds left `processing`.
    async fn processing_refunds(&self) -> StoreResult<Vec<PendingRefund>>;
    /// How many orders are in each status, for the business gauges.
    async fn order_counts(&self) -> StoreResult<Vec<(OrderStatus, u64)>>;
}
