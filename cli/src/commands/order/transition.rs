//! An order's life after checkout: pay a pending one, ship, deliver,
//! cancel, refund; with what to do next added to the errors one can act on.

use serde::Serialize;
use shop_wire::money::Currency;
use shop_wire::orders::{Order, OrderStatus};
use shop_wire::payments::{PaymentMethod, Refund, RefundRequest};

use super::super::confirm;
use super::super::product::Amount;
use super::view::{money, print_order};
use crate::client::ApiClient;
use crate::error::CliError;
use crate::output::Output;

/// A refund amount in minor units of `currency`: more than nothing.
pub(in crate::commands) fn refund_cents(
    amount: &Amount,
    currency: Currency,
) -> Result<i64, CliError> {
    let cents = amount.minor_units(currency, "--amount")?;
    if cents == 0 {
        return Err(CliError::Usage(
            "--amount: a refund of 0 refunds nothing".into(),
        ));
    }
    Ok(cents)
}

/// Adds what to do next to the errors a person can act on: a declined
/// payment leaves a pending order to pay again. (An illegal transition's
/// message already lists the allowed ones.)
pub(super) fn explain(err: CliError) -> CliError {
    let CliError::Api(mut api) = err else {
        return err;
    };
    let details = &api.detail.details;
    let text = |key: &str| details.get(key).and_then(serde_json::Value::as_str);
    let hint = match api.detail.code.as_str() {
        // The server says that the order stays pending; this says how to pay it.
        _ if api.status == 402 => text("order_number")
            .or(text("order_id"))
            .map(|order| format!("pay it with `shop order pay {order} --pay METHOD`")),
        _ => None,
    };
    if let Some(hint) = hint {
        api.detail.message = format!("{}; {hint}", api.detail.message.trim_end_matches('.'));
    }
    CliError::Api(api)
}

pub(super) async fn pay(
    client: &ApiClient,
    output: &mut Output,
    order: &str,
    method: &PaymentMethod,
) -> Result<(), CliError> {
    let order: Order = client
        .post(&format!("/api/orders/{order}/pay"))
        .json(method)?
        .send()
        .await
        .map_err(explain)?;
    print_order(output, &order)
}

pub(super) async fn transition(
    client: &ApiClient,
    output: &mut Output,
    order: &str,
    action: &str,
    body: &impl Serialize,
) -> Result<(), CliError> {
    let order: Order = client
        .post(&format!("/api/orders/{order}/{action}"))
        .json(body)?
        .send()
        .await
        .map_err(explain)?;
    print_order(output, &order)
}

/// Asks before money goes back to a customer (`order cancel`, a refund of
/// all that is left); off a terminal the caller must have passed `--yes`.
pub(in crate::commands) fn confirm_money(question: &str) -> Result<(), CliError> {
    if confirm(question, "--yes")? {
        Ok(())
    } else {
        Err(CliError::Other("cancelled; no money moved".into()))
    }
}

/// What is left of an order's payment to give back, if it was paid.
fn refundable(order: &Order) -> Option<i64> {
    let left = order.total_cents - order.refunded_cents;
    let paid = matches!(
        order.status,
        OrderStatus::Paid | OrderStatus::Shipped | OrderStatus::Delivered
    );
    (paid && left > 0).then_some(left)
}

/// Before cancelling a paid order, which refunds it: says how much goes back to whom.
pub(super) async fn confirm_cancel(client: &ApiClient, order: &str) -> Result<(), CliError> {
    let current: Order = client.get(&format!("/api/orders/{order}")).send().await?;
    match refundable(&current) {
        Some(left) if current.status == OrderStatus::Paid => confirm_money(&format!(
            "Cancel {}? {} goes back to {} and its {} items are restocked.",
            current.number,
            money(left, current.currency),
            current.customer_email,
            current.item_count
        )),
        _ => Ok(()),
    }
}

pub(super) struct RefundArgs<'a> {
    pub amount: Option<&'a Amount>,
    pub reason: Option<String>,
    pub yes: bool,
}

pub(super) async fn refund(
    client: &ApiClient,
    output: &mut Output,
    order: &str,
    args: RefundArgs<'_>,
) -> Result<(), CliError> {
    let RefundArgs {
        amount,
        reason,
        yes,
    } = args;
    let amount_cents = match amount {
        Some(amount) => {
            let current: Order = client.get(&format!("/api/orders/{order}")).send().await?;
            Some(refund_cents(amount, current.currency)?)
        }
        None if !yes => {
            let current: Order = client.get(&format!("/api/orders/{order}")).send().await?;
            if let Some(left) = refundable(&current) {
                confirm_money(&format!(
                    "Refund all that is left of {}, {}, to {}?",
                    current.number,
                    money(left, current.currency),
                    current.customer_email
                ))?;
            }
            None
        }
        None => None,
    };
    let refund: Refund = client
        .post(&format!("/api/orders/{order}/refund"))
        .json(&RefundRequest {
            amount_cents,
            reason,
        })?
        .send()
        .await?;
    output.one(&refund)
}

#[cfg(test)]
mod tests {
    use super::super::super::product::parse_price;
    use super::*;

    #[test]
    fn refund_amounts_are_exact_in_the_currency_and_more_than_nothing() {
        let amount = parse_price("12.50").expect("amount");
        assert_eq!(refund_cents(&amount, Currency::USD).ok(), Some(1250));
        let jpy: Currency = "JPY".parse().expect("JPY");
        let err = refund_cents(&amount, jpy).expect_err("JPY has no decimals");
        assert_eq!(err.exit_code(), 2);
        let zero = parse_price("0.00").expect("amount");
        assert_eq!(
            refund_cents(&zero, Currency::USD)
                .expect_err("zero")
                .exit_code(),
            2
        );
        assert!(parse_price("-5").is_err());
    }

    #[test]
    fn a_decline_says_how_to_pay_and_nothing_is_said_twice() {
        use crate::error::ApiError;
        let api = |status, code: &str, details| {
            CliError::Api(Box::new(ApiError {
                status,
                detail: shop_wire::ErrorDetail {
                    code: code.into(),
                    message: "Refused.".into(),
                    request_id: "r".into(),
                    details,
                },
            }))
        };
        let declined = explain(api(
            402,
            "card_declined",
            serde_json::json!({"order_id": "ord_x", "order_number": "ORD-000007", "payment_id": "pay_x"}),
        ));
        assert_eq!(declined.exit_code(), 7);
        assert_eq!(
            declined.to_string(),
            "Refused; pay it with `shop order pay ORD-000007 --pay METHOD`"
        );
        let illegal = explain(api(
            409,
            "illegal_transition",
            serde_json::json!({"from": "pending", "to": "shipped", "allowed": ["paid", "cancelled"]}),
        ));
        assert_eq!(illegal.exit_code(), 5);
        assert_eq!(
            illegal.to_string(),
            "Refused.",
            "the server's message lists the allowed moves; nothing is said twice"
        );
        let other = explain(api(404, "not_found", serde_json::json!({})));
        assert_eq!(other.to_string(), "Refused.");
    }
}
