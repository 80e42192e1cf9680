//! Returns: a customer (for their own orders) or staff opens one for
//! shipped units; staff approve, reject, receive and refund it. The rules
//! are in [`super::rules`]; the store applies them in one transaction per
//! step, and the refund goes through the payments service like any refund.

use serde_json::json;
use shop_wire::Page;
use shop_wire::orders::Order;
use shop_wire::payments::{RefundId, RefundRequest, RefundStatus};
use shop_wire::returns::{
    NewReturn, NewReturnItem, ReceiveReturn, RefundReturn, Return, ReturnId, ReturnStatus,
};

use super::return_event;
use super::rules::{self, ClaimedRefund, ReturnRefusal};
use crate::auth::AuthUser;
use crate::services::cart::domain::check_line;
use crate::services::error::{DomainError, DomainResult};
use crate::services::optional_note;
use crate::services::orders::domain as orders;
use crate::services::payments::domain as payments;
use crate::services::users::domain::get_user;
use crate::services::users::rules as user_rules;
use crate::state::AppState;
use crate::store::{OrderKey, ReturnCreate, ReturnDraft, ReturnMove, ReturnQuery, ReturnStep, now};

/// The most lines one return may have, as an order.
const MAX_LINES: usize = 100;

fn not_found(raw: &str) -> DomainError {
    DomainError::not_found(format!("return {raw}"))
}

fn staff_only(caller: &AuthUser) -> DomainResult<()> {
    if caller.role.is_staff() {
        Ok(())
    } else {
        Err(DomainError::forbidden("only staff move a return along"))
    }
}

/// A return's line as asked: a SKU, at least one unit, and a reason.
fn check_item(item: NewReturnItem) -> DomainResult<NewReturnItem> {
    let line = check_line(&item.sku, item.quantity, false)?;
    let reason = optional_note("reason", Some(item.reason))?
        .ok_or_else(|| DomainError::validation("reason", "say why each item comes back"))?;
    Ok(NewReturnItem {
        sku: line.sku,
        quantity: line.quantity,
        reason,
    })
}

/// Opens a return of shipped units of an order the caller may see.
pub async fn create(
    state: &AppState,
    caller: &AuthUser,
    order_raw: &str,
    request: NewReturn,
) -> DomainResult<Return> {
    let order = orders::get(state, caller, order_raw).await?;
    if request.items.is_empty() || request.items.len() > MAX_LINES {
        return Err(DomainError::validation(
            "items",
            format!("give 1 to {MAX_LINES} items"),
        ));
    }
    let items = request
        .items
        .into_iter()
        .map(check_item)
        .collect::<DomainResult<Vec<_>>>()?;
    let draft = ReturnDraft {
        id: ReturnId::generate(),
        order: order.id.clone(),
        items,
        note: optional_note("note", request.note)?,
        window_days: state.config.commerce.return_window_days,
        now: now(),
    };
    match state.store.create_return(draft, return_event).await? {
        ReturnCreate::Created(created) => Ok(*created),
        ReturnCreate::NotFound => Err(DomainError::not_found(format!("order {order_raw}"))),
        ReturnCreate::Refused(refusal) => Err(refused(&order, refusal)),
    }
}

fn refused(order: &Order, refusal: ReturnRefusal) -> DomainError {
    match refusal {
        ReturnRefusal::NothingShipped => DomainError::conflict(
            "not_shipped",
            format!(
                "nothing of {} has shipped; cancel or refund it instead",
                order.number
            ),
        ),
        ReturnRefusal::NotInOrder { sku } => DomainError::rejected(
            "not_in_order",
            "items",
            format!("{} has no line of {sku}", order.number),
        ),
        ReturnRefusal::Exceeds { sku, asked, left } => DomainError::Conflict {
            code: "return_exceeds_shipped",
            message: format!(
                "{asked} of {sku} asked to return, but only {left} of it shipped in {} and is in no other return",
                order.number
            ),
            details: json!({ "sku": sku, "asked": asked, "left": left }),
        },
        ReturnRefusal::WindowClosed { closed_at } => DomainError::Conflict {
            code: "return_window_closed",
            message: format!(
                "the return window of {} closed at {closed_at}",
                order.number
            ),
            details: json!({ "closed_at": closed_at.unix_timestamp() }),
        },
    }
}

/// A customer's query is narrowed to their own orders' returns.
pub async fn list(
    state: &AppState,
    caller: &AuthUser,
    mut query: ReturnQuery,
) -> DomainResult<Page<Return>> {
    if !caller.role.is_staff() {
        let user = get_user(state, &caller.user_id).await?;
        let email = user_rules::guest_orders_email(&user).map(str::to_owned);
        query.owner = Some((caller.user_id.clone(), email));
    }
    let (items, total) = state.store.list_returns(&query).await?;
    Ok(Page {
        items,
        total,
        limit: query.limit,
        offset: query.offset,
    })
}

/// A return the caller may see: one of their own orders', or any for staff.
pub async fn get(state: &AppState, caller: &AuthUser, raw: &str) -> DomainResult<Return> {
    let id: ReturnId = raw.parse().map_err(|_| not_found(raw))?;
    let found = state
        .store
        .return_by_id(&id)
        .await?
        .ok_or_else(|| not_found(raw))?;
    if !caller.role.is_staff() {
        // The order's own rule of who sees it; someone else's is "not found".
        orders::get(state, caller, found.order_id.as_str())
            .await
            .map_err(|_| not_found(raw))?;
    }
    Ok(found)
}

fn illegal(found: &Return, from: ReturnStatus, to: ReturnStatus) -> DomainError {
    let allowed: Vec<&str> = from.next().iter().map(|s| s.as_str()).collect();
    DomainError::Conflict {
        code: "illegal_transition",
        message: format!(
            "return {} is {from}; it cannot become {to} (allowed: {})",
            found.id,
            if allowed.is_empty() {
                "none".to_owned()
            } else {
                allowed.join(", ")
            }
        ),
        details: json!({ "from": from, "to": to, "allowed": allowed }),
    }
}

async fn step(
    state: &AppState,
    caller: &AuthUser,
    raw: &str,
    step: ReturnStep,
    to: ReturnStatus,
    note: Option<String>,
) -> DomainResult<Return> {
    staff_only(caller)?;
    let found = get(state, caller, raw).await?;
    let note = optional_note("note", note)?;
    let actor = get_user(state, &caller.user_id).await?.email;
    match state
        .store
        .move_return(&found.id, step, actor, note, return_event)
        .await?
    {
        ReturnMove::Done(moved) => Ok(*moved),
        ReturnMove::NotFound => Err(not_found(raw)),
        ReturnMove::Illegal { from } => Err(illegal(&found, from, to)),
        ReturnMove::RefundClaimed(refund) => Err(DomainError::Conflict {
            code: "refund_in_progress",
            message: format!("refund {refund} of return {} is under way", found.id),
            details: json!({ "refund_id": refund }),
        }),
        ReturnMove::ShippingRefunded(other) => Err(DomainError::Conflict {
            code: "shipping_already_refunded",
            message: format!("return {other} of the same order gives its shipping back already"),
            details: json!({ "return_id": other }),
        }),
    }
}

pub async fn approve(
    state: &AppState,
    caller: &AuthUser,
    raw: &str,
    note: Option<String>,
) -> DomainResult<Return> {
    step(
        state,
        caller,
        raw,
        ReturnStep::Approve,
        ReturnStatus::Approved,
        note,
    )
    .await
}

pub async fn reject(
    state: &AppState,
    caller: &AuthUser,
    raw: &str,
    note: Option<String>,
) -> DomainResult<Return> {
    step(
        state,
        caller,
        raw,
        ReturnStep::Reject,
        ReturnStatus::Rejected,
        note,
    )
    .await
}

/// The units arrived: each line restocks as asked (default: all do).
pub async fn receive(
    state: &AppState,
    caller: &AuthUser,
    raw: &str,
    request: ReceiveReturn,
) -> DomainResult<Return> {
    let lines = request
        .items
        .into_iter()
        .map(|line| (line.sku.trim().to_owned(), line.restock))
        .collect();
    let receive = ReturnStep::Receive {
        all: request.restock,
        lines,
    };
    step(state, caller, raw, receive, ReturnStatus::Received, None).await
}

/// Refunds a received return through its order's payment, with the same
/// ceiling and idempotency as any refund: the return claims the refund's
/// id first, so two refunds of one return cannot both start.
pub async fn refund(
    state: &AppState,
    caller: &AuthUser,
    raw: &str,
    request: RefundReturn,
) -> DomainResult<Return> {
    staff_only(caller)?;
    let found = get(state, caller, raw).await?;
    let order = state
        .store
        .order(&OrderKey::Id(found.order_id.clone()))
        .await?
        .ok_or_else(|| DomainError::not_found(format!("order {}", found.order_id)))?;
    let note = request.note;
    let refund_id = RefundId::generate();
    let claim = ReturnStep::ClaimRefund {
        refund: refund_id.clone(),
        shipping_cents: if request.include_shipping {
            rules::shipping_refund_cents(rules::OrderMoney::of(&order))
        } else {
            0
        },
    };
    let claimed = match step(state, caller, raw, claim, ReturnStatus::Refunded, None).await {
        Err(DomainError::Conflict {
            code: "refund_in_progress",
            ..
        }) => return finish_claimed(state, caller, raw, note, request.include_shipping).await,
        other => other?,
    };
    let Some(payment) = &order.payment_id else {
        return Err(DomainError::conflict(
            "not_refundable",
            format!("{} has no payment to refund", order.number),
        ));
    };
    let actor = get_user(state, &caller.user_id).await?.email;
    let request = RefundRequest {
        amount_cents: Some(claimed.refund_cents + claimed.shipping_refund_cents),
        reason: Some(format!("return {}", claimed.id)),
    };
    match payments::refund_as(state, &actor, payment, request, false, refund_id.clone()).await {
        Ok(refund) if refund.status == RefundStatus::Succeeded => {
            step(
                state,
                caller,
                raw,
                ReturnStep::Refunded,
                ReturnStatus::Refunded,
                note,
            )
            .await
        }
        // Still with the provider: the recovery worker finishes it, and a
        // later refund of the return marks it refunded.
        Ok(_) => get(state, caller, raw).await,
        Err(err) => {
            let release = ReturnStep::ReleaseRefund { refund: refund_id };
            step(state, caller, raw, release, ReturnStatus::Received, None).await?;
            Err(err)
        }
    }
}

/// A refund of the return was claimed before: done if it succeeded, made
/// again if it failed or a crash left the claim behind (see
/// [`rules::claimed_refund`]), else still under way.
async fn finish_claimed(
    state: &AppState,
    caller: &AuthUser,
    raw: &str,
    note: Option<String>,
    include_shipping: bool,
) -> DomainResult<Return> {
    let found = get(state, caller, raw).await?;
    let order = state
        .store
        .order(&OrderKey::Id(found.order_id.clone()))
        .await?;
    let payment = match order.and_then(|o| o.payment_id) {
        Some(id) => state.store.payment(&id).await?,
        None => None,
    };
    let recorded = payment.and_then(|p| {
        p.refunds
            .into_iter()
            .find(|r| Some(&r.id) == found.refund_id.as_ref())
            .map(|r| r.status)
    });
    match rules::claimed_refund(recorded, found.updated_at, now()) {
        ClaimedRefund::Done => {
            step(
                state,
                caller,
                raw,
                ReturnStep::Refunded,
                ReturnStatus::Refunded,
                note,
            )
            .await
        }
        ClaimedRefund::UnderWay => Err(DomainError::Conflict {
            code: "refund_in_progress",
            message: format!("the refund of return {} is under way", found.id),
            details: json!({ "refund_id": found.refund_id }),
        }),
        ClaimedRefund::Abandoned => {
            let Some(claimed) = found.refund_id.clone() else {
                return Err(DomainError::Internal(anyhow::anyhow!(
                    "return {} claims a refund without its id",
                    found.id
                )));
            };
            tracing::warn!(r#return = %found.id, refund = %claimed, "releasing a refund claim left behind; refunding again");
            let release = ReturnStep::ReleaseRefund { refund: claimed };
            step(state, caller, raw, release, ReturnStatus::Received, None).await?;
            let again = RefundReturn {
                note,
                include_shipping,
            };
            Box::pin(refund(state, caller, raw, again)).await
        }
    }
}
