//! The storage interface of payments and refunds.

use async_trait::async_trait;
use shop_wire::UserId;
use shop_wire::orders::{Order, OrderId, OrderStatus};
use shop_wire::payments::{MethodKind, Payment, PaymentId, PaymentStatus, Refund, RefundId};
use time::OffsetDateTime;

use super::{CommerceEvents, LineRefusal, StoreResult};
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
pub enum BeginPayment {
    Started {
        order: Box<Order>,
        payment: Box<Payment>,
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
    },
    /// Awaiting settlement (a bank transfer); the order stays pending.
    Pending {
        order: Box<Order>,
    },
    Failed {
        order: Box<Order>,
        payment: Box<Payment>,
    },
    /// The money was taken but the stock could not be committed (the order
    /// was cancelled meanwhile, or its hold expired and the stock sold): the
    /// payment must be refunded.
    Unfulfillable {
        order: Box<Order>,
        payment: Box<Payment>,
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
    Done { refund: Box<Refund> },
    NotFound,
    AlreadyFinished(Box<Refund>),
}

/// A refund recorded as `processing` whose provider call has not been answered.
#[derive(Clone, Debug)]
pub struct PendingRefund {
    pub refund: Refund,
    pub provider_ref: Option<String>,
}

#[derive(Clone, Debug, Default)]
pub struct PaymentQuery {
    pub status: Option<PaymentStatus>,
    pub order_id: Option<OrderId>,
    pub method: Option<MethodKind>,
    /// A customer's own payments: those of their orders (see [`OrderQuery::owner`]).
    pub owner: Option<(UserId, Option<String>)>,
    pub limit: u32,
    pub offset: u64,
}

#[async_trait]
pub trait PaymentStore: Send + Sync {
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
    async fn payment(&self, id: &PaymentId) -> StoreResult<Option<Payment>>;
    async fn list_payments(&self, query: &PaymentQuery) -> StoreResult<(Vec<Payment>, u64)>;
    /// Payments left `processing` (a crash while the provider was asked).
    async fn processing_payments(&self) -> StoreResult<Vec<Payment>>;
    /// Refunds left `processing`.
    async fn processing_refunds(&self) -> StoreResult<Vec<PendingRefund>>;
}
