//! Payments: checking a payment method, charging through the provider and
//! recording its answer, refunds with their ledger, settlement of bank
//! transfers, and the recovery of calls a crash or an outage left open.
//!
//! Every provider call carries our payment or refund id as its idempotency
//! key, so a call repeated after a timeout or a restart is one charge or one
//! refund at the provider, and the gateway's `Idempotency-Key` makes a
//! client's retry of the whole request answer the first result.

use serde_json::json;
use shop_wire::Page;
use shop_wire::orders::Order;
use shop_wire::payments::{
    MethodKind, Payment, PaymentAnalytics, PaymentId, PaymentMethod, PaymentStatus, Refund,
    RefundId, RefundRequest,
};

use crate::auth::AuthUser;
use crate::services::error::{DomainError, DomainResult};
use crate::services::optional_note;
use crate::services::orders::events::COMMERCE_EVENTS;
use crate::services::products::domain::MAX_STOCK;
use crate::services::users::domain::get_user;
use crate::state::AppState;
use crate::store::{
    ChargeResult, FinishRefund, PaymentDone, PaymentDraft, PaymentQuery, RefundDraft, RefundResult,
    StartRefund, now,
};

use super::provider::card::{check_card, today};
use super::provider::{
    ChargeOutcome, ChargeRequest, MethodDetails, ProviderError, RefundCall, RefundOutcome,
};

const MAX_TOKEN: usize = 255;

/// A checked payment method, ready to charge: the record to make and what to send.
#[derive(Clone)]
pub struct Charge {
    pub draft: PaymentDraft,
    pub details: MethodDetails,
}

/// When an order's stock is released if it is still unpaid.
pub fn pay_by(state: &AppState) -> time::OffsetDateTime {
    now() + time::Duration::seconds(state.config.commerce.payment_window_seconds as i64)
}

/// Checks a payment method before anything is recorded: a card that cannot
/// be charged (a typo in the number, a past expiry) is a 400 naming the
/// field, and changes nothing.
pub fn prepare(state: &AppState, method: &PaymentMethod) -> DomainResult<Charge> {
    let provider = state.payments.name();
    let draft = |brand: Option<String>, last4: Option<String>| PaymentDraft {
        id: PaymentId::generate(),
        method: method.method,
        provider,
        card_brand: brand,
        card_last4: last4,
    };
    let unexpected = |field: &str, what: &str| {
        DomainError::validation(
            &format!("payment.{field}"),
            format!("is not used with {what} payments"),
        )
    };
    match method.method {
        MethodKind::Card => {
            if method.token.is_some() {
                return Err(unexpected("token", "card"));
            }
            let (Some(number), Some(month), Some(year)) =
                (&method.card_number, method.exp_month, method.exp_year)
            else {
                return Err(DomainError::validation(
                    "payment",
                    "a card payment needs card_number, exp_month and exp_year",
                ));
            };
            let card =
                check_card(number, month, year, method.cvc.as_deref(), today()).map_err(|err| {
                    DomainError::validation(&format!("payment.{}", err.field()), err.to_string())
                })?;
            Ok(Charge {
                draft: draft(
                    Some(card.brand.as_str().to_owned()),
                    Some(card.last4.clone()),
                ),
                details: MethodDetails::Card {
                    number: card.number,
                    exp_month: card.exp_month,
                    exp_year: card.exp_year,
                    cvc: method.cvc.clone(),
                },
            })
        }
        kind if kind.is_wallet() => {
            if method.card_number.is_some() || method.exp_month.is_some() {
                return Err(unexpected("card_number", "wallet"));
            }
            let token = method.token.as_deref().map(str::trim).unwrap_or_default();
            if token.is_empty()
                || token.len() > MAX_TOKEN
                || !token.bytes().all(|b| b.is_ascii_graphic())
            {
                return Err(DomainError::validation(
                    "payment.token",
                    format!(
                        "a {kind} payment needs the wallet's token (1-{MAX_TOKEN} visible characters)"
                    ),
                ));
            }
            Ok(Charge {
                draft: draft(None, None),
                details: MethodDetails::Wallet {
                    token: token.to_owned(),
                },
            })
        }
        _ => {
            if method.card_number.is_some() || method.token.is_some() {
                return Err(unexpected("card_number", "bank transfer"));
            }
            Ok(Charge {
                draft: draft(None, None),
                details: MethodDetails::BankTransfer,
            })
        }
    }
}

/// The error code of a decline: the provider's, when it is one we know.
fn decline_code(code: &str) -> &'static str {
    const KNOWN: [&str; 8] = [
        "card_declined",
        "insufficient_funds",
        "expired_card",
        "incorrect_number",
        "incorrect_cvc",
        "invalid_cvc",
        "invalid_token",
        "processing_error",
    ];
    KNOWN
        .into_iter()
        .find(|known| *known == code)
        .unwrap_or("payment_failed")
}

fn unavailable(err: &ProviderError, what: serde_json::Value) -> DomainError {
    DomainError::Unavailable {
        code: "payment_provider_unavailable",
        message: format!("{err}; it is recorded and will be confirmed when the provider answers"),
        details: what,
    }
}

/// Charges a payment recorded `processing` and records the answer.
pub async fn charge(
    state: &AppState,
    order: &Order,
    payment: &Payment,
    charge: Charge,
    actor: &str,
) -> DomainResult<Order> {
    let request = ChargeRequest {
        idempotency_key: payment.id.to_string(),
        amount_cents: payment.amount_cents,
        currency: payment.currency,
        method: charge.details,
        description: format!("Order {}", order.number),
        order_id: order.id.to_string(),
    };
    let charged = state
        .payments
        .charge_for(&request, &order.customer_email)
        .await;
    let result = match charged {
        Ok(outcome) => charge_result(state, outcome),
        Err(ProviderError::Rejected(message)) => ChargeResult::Failed {
            code: "provider_rejected".to_owned(),
            message,
            provider_ref: None,
        },
        Err(err) => {
            // It may have happened or not: the recovery worker will ask.
            metrics::counter!("shop_payments_total", "outcome" => "unknown").increment(1);
            return Err(unavailable(
                &err,
                json!({ "order_id": order.id, "order_number": order.number, "payment_id": payment.id }),
            ));
        }
    };
    record(state, &payment.id, result, actor).await
}

fn charge_result(state: &AppState, outcome: ChargeOutcome) -> ChargeResult {
    match outcome {
        ChargeOutcome::Succeeded {
            provider_ref,
            card_brand,
            card_last4,
        } => ChargeResult::Succeeded {
            provider_ref,
            card_brand,
            card_last4,
        },
        ChargeOutcome::Pending { provider_ref } => ChargeResult::Pending {
            provider_ref,
            hold_until: now()
                + time::Duration::seconds(
                    state.config.commerce.bank_transfer_window_seconds as i64,
                ),
        },
        ChargeOutcome::Declined {
            code,
            message,
            provider_ref,
        } => ChargeResult::Failed {
            code,
            message,
            provider_ref,
        },
    }
}

/// Records a provider's answer to a charge; a decline is 402 naming the
/// order, which stays pending and can be paid another way.
async fn record(
    state: &AppState,
    payment: &PaymentId,
    result: ChargeResult,
    actor: &str,
) -> DomainResult<Order> {
    let done = state
        .store
        .complete_payment(payment, result, actor.to_owned(), COMMERCE_EVENTS)
        .await?;
    match done {
        PaymentDone::Paid { order, payment, .. } => {
            metrics::counter!("shop_payments_total", "outcome" => "succeeded").increment(1);
            metrics::counter!("shop_revenue_cents_total", "currency" => payment.currency.code())
                .increment(payment.amount_cents.unsigned_abs());
            Ok(*order)
        }
        PaymentDone::Pending { order, .. } => {
            metrics::counter!("shop_payments_total", "outcome" => "pending").increment(1);
            Ok(*order)
        }
        PaymentDone::Failed { order, payment, .. } => {
            metrics::counter!("shop_payments_total", "outcome" => "failed").increment(1);
            let code = payment.failure_code.clone().unwrap_or_default();
            Err(DomainError::Declined {
                code: decline_code(&code),
                message: format!(
                    "the payment for {} was declined: {} (the order stays pending)",
                    order.number,
                    payment
                        .failure_message
                        .as_deref()
                        .unwrap_or_default()
                        .trim_end_matches('.')
                ),
                details: json!({
                    "order_id": order.id,
                    "order_number": order.number,
                    "payment_id": payment.id,
                    "decline_code": code,
                }),
            })
        }
        PaymentDone::Unfulfillable { order, payment, .. } => {
            tracing::warn!(order = %order.number, payment = %payment.id,
                "paid for an order that can no longer be fulfilled; refunding");
            let request = RefundRequest {
                amount_cents: None,
                reason: Some("the order could not be fulfilled".to_owned()),
            };
            refund(state, actor, &payment.id, request, true).await?;
            Err(DomainError::Conflict {
                code: "order_not_fulfillable",
                message: format!(
                    "{} could no longer be fulfilled (it was cancelled, or its stock sold while unpaid); the payment was refunded",
                    order.number
                ),
                details: json!({ "order_id": order.id, "payment_id": payment.id }),
            })
        }
        PaymentDone::NotFound => Err(DomainError::not_found(format!("payment {payment}"))),
        // A recovery finished it first: answer the order as it is now.
        PaymentDone::AlreadyFinished(payment) => state
            .store
            .order(&crate::store::OrderKey::Id(payment.order_id.clone()))
            .await?
            .ok_or_else(|| DomainError::not_found(format!("order {}", payment.order_id))),
    }
}

/// Refunds `amount_cents` (or all that is left) of a captured payment.
/// The amount is recorded before the provider is asked, so concurrent
/// refunds can never add up to more than was captured.
pub async fn refund(
    state: &AppState,
    actor: &str,
    payment: &PaymentId,
    request: RefundRequest,
    cancels_order: bool,
) -> DomainResult<Refund> {
    refund_as(
        state,
        actor,
        payment,
        request,
        cancels_order,
        RefundId::generate(),
    )
    .await
}

/// [`refund`] as the refund `id`, which the caller claimed for something
/// (a return) before the money moves.
pub async fn refund_as(
    state: &AppState,
    actor: &str,
    payment: &PaymentId,
    request: RefundRequest,
    cancels_order: bool,
    id: RefundId,
) -> DomainResult<Refund> {
    if let Some(amount) = request.amount_cents
        && !(1..=MAX_STOCK * 1000).contains(&amount)
    {
        return Err(DomainError::validation(
            "amount_cents",
            "must be a positive amount",
        ));
    }
    let reason = optional_note("reason", request.reason)?;
    let draft = RefundDraft {
        id,
        amount_cents: request.amount_cents,
        reason,
        cancels_order,
        actor: actor.to_owned(),
    };
    let (refund, payment) = match state.store.start_refund(payment, draft).await? {
        StartRefund::Started { refund, payment } => (*refund, *payment),
        StartRefund::NotFound => return Err(DomainError::not_found(format!("payment {payment}"))),
        StartRefund::NotRefundable(status) => {
            return Err(DomainError::Conflict {
                code: "not_refundable",
                message: format!(
                    "payment {payment} is {status}; only a captured payment is refunded"
                ),
                details: json!({ "status": status }),
            });
        }
        StartRefund::Exceeds { refundable } => {
            // In the payment's currency, as the amount was typed: 141.99 USD, not 14199.
            let left = match state.store.payment(payment).await? {
                Some(paid) => format!(
                    "{} {}",
                    shop_wire::money::format_amount(refundable, paid.currency),
                    paid.currency
                ),
                None => format!("{refundable} (minor units)"),
            };
            return Err(DomainError::Conflict {
                code: "refund_exceeds_captured",
                message: format!("only {left} of payment {payment} is left to refund"),
                details: json!({ "refundable_cents": refundable }),
            });
        }
        StartRefund::NothingLeft => {
            return Err(DomainError::Conflict {
                code: "refund_exceeds_captured",
                message: format!(
                    "payment {payment} is refunded in full (or the rest is being refunded now)"
                ),
                details: json!({ "refundable_cents": 0 }),
            });
        }
    };
    call_refund(state, refund, payment.provider_ref).await
}

/// Asks the provider for a refund recorded `processing` and records the answer.
async fn call_refund(
    state: &AppState,
    refund: Refund,
    charge_ref: Option<String>,
) -> DomainResult<Refund> {
    let result = match charge_ref {
        None => RefundResult::Failed {
            message: "the payment has no provider reference to refund".to_owned(),
        },
        Some(provider_ref) => {
            let call = RefundCall {
                idempotency_key: refund.id.to_string(),
                provider_ref,
                amount_cents: refund.amount_cents,
                reason: refund.reason.clone(),
            };
            match state.payments.provider().refund(&call).await {
                Ok(RefundOutcome::Succeeded { provider_ref }) => {
                    RefundResult::Succeeded { provider_ref }
                }
                Ok(RefundOutcome::Refused { message }) => RefundResult::Failed { message },
                Err(ProviderError::Rejected(message)) => RefundResult::Failed { message },
                Err(err) => {
                    return Err(unavailable(
                        &err,
                        json!({ "refund_id": refund.id, "payment_id": refund.payment_id }),
                    ));
                }
            }
        }
    };
    match state
        .store
        .finish_refund(&refund.id, result, COMMERCE_EVENTS)
        .await?
    {
        FinishRefund::Done { refund, .. } => {
            if refund.status == shop_wire::payments::RefundStatus::Failed {
                return Err(DomainError::Declined {
                    code: "refund_refused",
                    message: format!(
                        "the provider refused refund {}: {}",
                        refund.id,
                        refund.failure_message.clone().unwrap_or_default()
                    ),
                    details: json!({ "refund_id": refund.id, "payment_id": refund.payment_id }),
                });
            }
            metrics::counter!("shop_refunds_cents_total", "currency" => refund.currency.code())
                .increment(refund.amount_cents.unsigned_abs());
            Ok(*refund)
        }
        FinishRefund::NotFound => Err(DomainError::not_found(format!("refund {}", refund.id))),
        FinishRefund::AlreadyFinished(refund) => Ok(*refund),
    }
}

/// Confirms a bank transfer that has arrived (staff): the order is paid.
pub async fn settle(state: &AppState, caller: &AuthUser, id: &PaymentId) -> DomainResult<Payment> {
    let payment = state
        .store
        .payment(id)
        .await?
        .ok_or_else(|| DomainError::not_found(format!("payment {id}")))?;
    if payment.status != PaymentStatus::Pending {
        return Err(DomainError::Conflict {
            code: "not_pending",
            message: format!(
                "payment {id} is {}; only a pending transfer is settled",
                payment.status
            ),
            details: json!({ "status": payment.status }),
        });
    }
    let provider_ref = payment.provider_ref.clone().unwrap_or_default();
    let outcome = state
        .payments
        .provider()
        .settle(&provider_ref)
        .await
        .map_err(|err| unavailable(&err, json!({ "payment_id": id })))?;
    let actor = get_user(state, &caller.user_id).await?.email;
    record(state, id, charge_result(state, outcome), &actor).await?;
    get(state, caller, id).await
}

/// A payment the caller may see: of their own order, or any for staff.
pub async fn get(state: &AppState, caller: &AuthUser, id: &PaymentId) -> DomainResult<Payment> {
    let not_found = || DomainError::not_found(format!("payment {id}"));
    let payment = state.store.payment(id).await?.ok_or_else(not_found)?;
    if !caller.role.is_staff() {
        crate::services::orders::domain::get(state, caller, payment.order_id.as_str())
            .await
            .map_err(|_| not_found())?;
    }
    Ok(payment)
}

pub async fn list(
    state: &AppState,
    caller: &AuthUser,
    mut query: PaymentQuery,
) -> DomainResult<Page<Payment>> {
    if !caller.role.is_staff() {
        let user = get_user(state, &caller.user_id).await?;
        let email = crate::services::users::rules::guest_orders_email(&user).map(str::to_owned);
        query.owner = Some((caller.user_id.clone(), email));
    }
    let (items, total) = state.store.list_payments(&query).await?;
    Ok(Page {
        items,
        total,
        limit: query.limit,
        offset: query.offset,
    })
}

pub async fn analytics(state: &AppState) -> DomainResult<PaymentAnalytics> {
    Ok(state.store.payment_analytics().await?)
}

/// Finishes provider calls that a crash or an outage left open, once they
/// are older than `min_age` (younger ones may still be waiting for their
/// answer): a charge is looked up by its idempotency key and its outcome
/// recorded (not found means it never happened: the payment failed and the
/// order stays payable); a refund is asked again with the same key.
pub async fn recover(state: &AppState, min_age: time::Duration) -> anyhow::Result<(u64, u64)> {
    let cutoff = now() - min_age;
    let mut charges = 0;
    for payment in state.store.processing_payments().await? {
        if payment.updated_at > cutoff {
            continue;
        }
        let result = match state
            .payments
            .provider()
            .find_charge(payment.id.as_str())
            .await
        {
            Ok(Some(outcome)) => charge_result(state, outcome),
            Ok(None) => ChargeResult::Failed {
                code: "interrupted".to_owned(),
                message: "the charge was interrupted before the provider took it; pay again"
                    .to_owned(),
                provider_ref: None,
            },
            // Still unreachable: try again on the next round.
            Err(err) => {
                tracing::warn!(payment = %payment.id, error = %err, "cannot confirm a charge yet");
                continue;
            }
        };
        // A decline or an unfulfillable order is an error for a request, not for recovery.
        if let Err(err) = record(state, &payment.id, result, "system").await {
            tracing::info!(payment = %payment.id, error = %err, "recovered a charge that did not go through");
        }
        charges += 1;
    }
    let mut refunds = 0;
    for pending in state.store.processing_refunds().await? {
        if pending.refund.created_at > cutoff {
            continue;
        }
        match call_refund(state, pending.refund.clone(), pending.provider_ref).await {
            Ok(_) => refunds += 1,
            Err(err) => {
                tracing::warn!(refund = %pending.refund.id, error = %err, "refund not finished yet")
            }
        }
    }
    Ok((charges, refunds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_decline_codes_become_payment_failed() {
        assert_eq!(decline_code("insufficient_funds"), "insufficient_funds");
        assert_eq!(decline_code("card_declined"), "card_declined");
        assert_eq!(decline_code("do_not_honor"), "payment_failed");
    }
}
