//! The storage interface of returns (RMA).
//!
//! Each method is one transaction: a return with the units it takes from
//! its order's shipped lines, a step of its state machine with what the
//! step does to stock, and the event and audit entry of each.

use async_trait::async_trait;
use shop_wire::events::MakeEvent;
use shop_wire::orders::OrderId;
use shop_wire::payments::RefundId;
use shop_wire::returns::{NewReturnItem, Return, ReturnId, ReturnStatus};
use time::OffsetDateTime;

use super::{AuditChange, NewEvent, StoreResult};
use crate::services::returns::rules::ReturnRefusal;

/// How a return's event is made, by the returns service.
pub type ReturnEvents = fn(MakeEvent<Return>, &Return) -> NewEvent;

#[derive(Clone, Debug)]
pub struct ReturnDraft {
    pub id: ReturnId,
    pub order: OrderId,
    pub items: Vec<NewReturnItem>,
    pub note: Option<String>,
    /// Days after delivery (or the last shipment) that returns are taken.
    pub window_days: u32,
    pub now: OffsetDateTime,
}

#[derive(Clone, Debug)]
pub enum ReturnCreate {
    Created(Box<Return>),
    NotFound,
    /// Nothing was written.
    Refused(ReturnRefusal),
}

/// A step of a return's state machine.
#[derive(Clone, Debug)]
pub enum ReturnStep {
    Approve,
    /// Its units go back to the order's lines, to be returned again.
    Reject,
    /// Each line restocks as its SKU says in `lines`, else as `all` says
    /// (default: restock); restocked units go back on hand with a ledger entry.
    Receive {
        all: Option<bool>,
        lines: Vec<(String, bool)>,
    },
    /// Claims the return's refund for `refund`, before the payment is asked:
    /// only while it is `received` and no refund of it is in flight or done
    /// (a failed one may be claimed over).
    ///
    /// With `shipping_cents` above 0 the refund gives back the order's
    /// shipping too, unless another return of the order claimed it
    /// ([`ReturnMove::ShippingRefunded`]).
    ClaimRefund {
        refund: RefundId,
        shipping_cents: i64,
    },
    /// Gives up a claim whose refund never started (the payment refused it
    /// before any money moved), so the return may be refunded again.
    ReleaseRefund {
        refund: RefundId,
    },
    /// Its refund went through.
    Refunded,
}

#[derive(Clone, Debug)]
pub enum ReturnMove {
    Done(Box<Return>),
    NotFound,
    Illegal {
        from: ReturnStatus,
    },
    /// A refund of it was claimed already and has not failed.
    RefundClaimed(RefundId),
    /// Another return of the order gives its shipping back already.
    ShippingRefunded(shop_wire::returns::ReturnId),
}

#[derive(Clone, Debug, Default)]
pub struct ReturnQuery {
    pub status: Option<ReturnStatus>,
    /// Only requested, approved and received ones.
    pub open: bool,
    pub order: Option<OrderId>,
    /// A customer's own: those of orders of their account, or placed for
    /// their email when that is given (as [`super::OrderQuery::owner`]).
    pub owner: Option<(shop_wire::UserId, Option<String>)>,
    pub limit: u32,
    pub offset: u64,
}

#[async_trait]
pub trait ReturnStore: Send + Sync {
    /// Opens a return of shipped units of an order, as
    /// [`crate::services::returns::rules::decide_return`] decides. Each
    /// line's returned units grow only while they stay within its shipped
    /// units, so returns that race never return a unit twice.
    async fn create_return(
        &self,
        draft: ReturnDraft,
        events: ReturnEvents,
    ) -> StoreResult<ReturnCreate>;
    /// Moves a return one step, guarded on its current status.
    async fn move_return(
        &self,
        id: &ReturnId,
        step: ReturnStep,
        actor: String,
        note: Option<String>,
        events: ReturnEvents,
    ) -> StoreResult<ReturnMove>;
    async fn return_by_id(&self, id: &ReturnId) -> StoreResult<Option<Return>>;
    /// Newest first, with how many match.
    async fn list_returns(&self, query: &ReturnQuery) -> StoreResult<(Vec<Return>, u64)>;
}

/// The audit entry of a change of a return from `was` (its
/// [`audited_return`] before, or null) to `now`: named by the event `kind`
/// makes, or `return.refund_started` for a claimed refund, which has none.
pub(crate) fn return_change(
    was: serde_json::Value,
    now: &Return,
    kind: Option<MakeEvent<Return>>,
) -> AuditChange {
    let action = match kind {
        Some(kind) => shop_wire::events::EventData::kind(&kind(now.clone()))
            .as_str()
            .to_owned(),
        None => "return.refund_started".to_owned(),
    };
    AuditChange::diff(action, "return", now.id.as_str(), was, audited_return(now))
}

/// A return as its audit entries show it.
pub(crate) fn audited_return(found: &Return) -> serde_json::Value {
    serde_json::json!({
        "status": found.status,
        "refund_cents": found.refund_cents,
        "refund_id": found.refund_id,
        "items": found.items,
    })
}
