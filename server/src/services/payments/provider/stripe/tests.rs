//! The adapter against a fake Stripe on 127.0.0.1 that records every
//! request, so each test asserts what went over the wire as well as how
//! the answer was read.

use std::time::Duration;

use shop_wire::money::Currency;

use super::*;
use crate::breaker::BreakerState;
use crate::services::payments::provider::resilient::{Resilient, RetryPolicy};

// The fake is shared with the end-to-end tests; one file, compiled into both.
#[path = "../../../../../../tests/e2e/fake_stripe.rs"]
mod fake_stripe;

use fake_stripe::{FakeStripe, Recorded};

const KEY: &str = "sk_test_51Shop0000000000000000000";

async fn stripe() -> (Stripe, FakeStripe) {
    let (base, fake) = fake_stripe::start().await;
    // A trailing slash on the base must not double the path's.
    let stripe = Stripe::new(KEY, &format!("{base}/"), Duration::from_secs(5)).expect("client");
    (stripe, fake)
}

fn card(key: &str, number: &str) -> ChargeRequest {
    ChargeRequest {
        idempotency_key: key.to_owned(),
        amount_cents: 1999,
        currency: "EUR".parse().expect("a currency"),
        method: MethodDetails::Card {
            number: number.to_owned(),
            exp_month: 12,
            exp_year: 2030,
            cvc: Some("123".to_owned()),
        },
        description: "Order ORD-000042".to_owned(),
        order_id: "ord_01JD42".to_owned(),
    }
}

fn assert_authorized_post(request: &Recorded, path: &str, key: &str) {
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, path);
    assert_eq!(
        request.authorization.as_deref(),
        Some(&*format!("Bearer {KEY}"))
    );
    assert_eq!(request.idempotency_key.as_deref(), Some(key));
    assert_eq!(
        request.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
}

#[tokio::test]
async fn a_card_charge_is_a_confirmed_payment_intent() {
    let (stripe, fake) = stripe().await;
    let outcome = stripe
        .charge(&card("pay_01JD42", "4242 4242 4242 4242"))
        .await;
    let requests = fake.requests();
    assert_eq!(requests.len(), 1);
    let sent = &requests[0];
    assert_authorized_post(sent, "/v1/payment_intents", "pay_01JD42");
    for (key, value) in [
        ("amount", "1999"),
        ("currency", "eur"),
        ("confirm", "true"),
        ("description", "Order ORD-000042"),
        ("metadata[order_id]", "ord_01JD42"),
        ("metadata[payment_id]", "pay_01JD42"),
        ("payment_method_types[]", "card"),
        ("payment_method_data[type]", "card"),
        ("payment_method_data[card][number]", "4242424242424242"),
        ("payment_method_data[card][exp_month]", "12"),
        ("payment_method_data[card][exp_year]", "2030"),
        ("payment_method_data[card][cvc]", "123"),
        ("expand[]", "latest_charge"),
    ] {
        assert_eq!(sent.field(key), Some(value), "{key}");
    }
    assert_eq!(
        outcome,
        Ok(ChargeOutcome::Succeeded {
            provider_ref: "pi_fake1".into(),
            card_brand: Some("visa".into()),
            card_last4: Some("4242".into()),
        })
    );
}

#[tokio::test]
async fn a_402_card_error_is_a_decline_with_stripes_code() {
    let (stripe, fake) = stripe().await;
    let outcome = stripe
        .charge(&card("pay_2", "4000000000009995"))
        .await
        .expect("an answer");
    assert_eq!(
        outcome,
        ChargeOutcome::Declined {
            code: "insufficient_funds".into(),
            message: "Your card has insufficient funds.".into(),
            provider_ref: Some("pi_fake1".into()),
        }
    );
    // No decline_code: the error's code is used.
    let outcome = stripe
        .charge(&card("pay_3", "4000000000000069"))
        .await
        .expect("an answer");
    assert!(matches!(outcome, ChargeOutcome::Declined { code, .. } if code == "expired_card"));
    assert_eq!(fake.requests().len(), 2);
}

#[tokio::test]
async fn a_500_is_retried_through_resilient_with_the_same_key() {
    let (stripe, fake) = stripe().await;
    let provider = Resilient::with_policy(
        stripe,
        RetryPolicy {
            timeout: Duration::from_secs(5),
            attempts: 3,
            base: Duration::from_millis(1),
        },
        5,
        Duration::from_secs(60),
    );
    fake.fail_next(1);
    let outcome = provider
        .charge(&card("pay_retry", "4242424242424242"))
        .await;
    assert!(
        matches!(outcome, Ok(ChargeOutcome::Succeeded { .. })),
        "{outcome:?}"
    );
    let requests = fake.requests();
    assert_eq!(requests.len(), 2, "one failure, one success");
    for request in &requests {
        assert_authorized_post(request, "/v1/payment_intents", "pay_retry");
    }
    assert_eq!(
        requests[0].form, requests[1].form,
        "the retry is the same request"
    );
    assert_eq!(provider.circuit_state(), BreakerState::Closed);

    // A repeat after success (a crash before recording it) is Stripe's replay, not a new charge.
    let again = provider
        .charge(&card("pay_retry", "4242424242424242"))
        .await;
    assert_eq!(again, outcome);

    // Failures past the attempts are transient, and the decline is not retried.
    fake.fail_next(3);
    let failed = provider.charge(&card("pay_down", "4242424242424242")).await;
    assert!(
        matches!(&failed, Err(ProviderError::Transient(m)) if m.contains("500")),
        "{failed:?}"
    );
    let before = fake.requests().len();
    let declined = provider.charge(&card("pay_no", "4000000000000002")).await;
    assert!(
        matches!(declined, Ok(ChargeOutcome::Declined { code, .. }) if code == "generic_decline")
    );
    assert_eq!(fake.requests().len(), before + 1);
}

#[tokio::test]
async fn wallet_tokens_and_payment_methods() {
    let (stripe, fake) = stripe().await;
    let wallet = |key: &str, token: &str| ChargeRequest {
        method: MethodDetails::Wallet {
            token: token.to_owned(),
        },
        ..card(key, "")
    };
    let ok = stripe.charge(&wallet("pay_w1", "tok_mastercard")).await;
    assert!(
        matches!(&ok, Ok(ChargeOutcome::Succeeded { card_last4: Some(l), .. }) if l == "4444"),
        "{ok:?}"
    );
    let declined = stripe
        .charge(&wallet("pay_w2", "pm_card_chargeDeclinedInsufficientFunds"))
        .await;
    assert!(
        matches!(declined, Ok(ChargeOutcome::Declined { code, .. }) if code == "insufficient_funds")
    );
    let requests = fake.requests();
    assert_eq!(
        requests[0].field("payment_method_data[card][token]"),
        Some("tok_mastercard")
    );
    assert_eq!(requests[0].field("payment_method"), None);
    assert_eq!(
        requests[1].field("payment_method"),
        Some("pm_card_chargeDeclinedInsufficientFunds")
    );
    for request in &requests {
        assert_eq!(request.field("payment_method_data[card][number]"), None);
    }
}

#[tokio::test]
async fn a_bank_transfer_pends_until_funded() {
    let (stripe, fake) = stripe().await;
    let request = ChargeRequest {
        currency: Currency::USD,
        method: MethodDetails::BankTransfer,
        ..card("pay_bt", "")
    };
    let pending = stripe.charge(&request).await;
    let requests = fake.requests();
    assert_eq!(requests.len(), 2);
    assert_authorized_post(&requests[0], "/v1/customers", "pay_bt-customer");
    assert_authorized_post(&requests[1], "/v1/payment_intents", "pay_bt");
    assert_eq!(requests[1].field("customer"), Some("cus_fake1"));
    assert_eq!(
        requests[1].field("payment_method_types[]"),
        Some("customer_balance")
    );
    assert_eq!(
        requests[1].field("payment_method_options[customer_balance][bank_transfer][type]"),
        Some("us_bank_transfer")
    );
    let Ok(ChargeOutcome::Pending { provider_ref }) = pending else {
        panic!("expected pending, got {pending:?}");
    };
    assert_eq!(provider_ref, "pi_fake2");

    assert_eq!(
        stripe.settle(&provider_ref).await,
        Ok(ChargeOutcome::Pending {
            provider_ref: provider_ref.clone()
        })
    );
    assert!(fake.fund(&provider_ref));
    assert!(matches!(
        stripe.settle(&provider_ref).await,
        Ok(ChargeOutcome::Succeeded { provider_ref: r, .. }) if r == provider_ref
    ));
    let get = fake.requests().pop().expect("a request");
    assert_eq!(get.method, "GET");
    assert_eq!(get.path, "/v1/payment_intents/pi_fake2");
    assert!(get.query.contains("latest_charge"), "{}", get.query);
    assert_eq!(get.idempotency_key, None);
    assert_eq!(
        get.authorization.as_deref(),
        Some(&*format!("Bearer {KEY}"))
    );

    // Unknown intents are rejected; ids that are not ids never reach a URL.
    assert!(matches!(
        stripe.settle("pi_nothere").await,
        Err(ProviderError::Rejected(_))
    ));
    let count = fake.requests().len();
    for bad in ["../v1/refunds", "pi_1/../x", "", "ch_123"] {
        assert!(
            matches!(stripe.settle(bad).await, Err(ProviderError::Rejected(_))),
            "{bad}"
        );
    }
    assert_eq!(fake.requests().len(), count);

    let eur = ChargeRequest {
        method: MethodDetails::BankTransfer,
        ..card("pay_bt_eur", "")
    };
    assert!(
        matches!(stripe.charge(&eur).await, Err(ProviderError::Rejected(m)) if m.contains("EUR"))
    );
}

#[tokio::test]
async fn refunds_carry_the_key_the_reason_and_are_refused_past_the_charge() {
    let (stripe, fake) = stripe().await;
    let Ok(ChargeOutcome::Succeeded { provider_ref, .. }) =
        stripe.charge(&card("pay_r", "4242424242424242")).await
    else {
        panic!("the charge should succeed");
    };
    let refund = |key: &str, amount_cents: i64, reason: Option<&str>| RefundCall {
        idempotency_key: key.to_owned(),
        provider_ref: provider_ref.clone(),
        amount_cents,
        reason: reason.map(str::to_owned),
    };
    let first = stripe
        .refund(&refund("ref_1", 500, Some("arrived damaged")))
        .await;
    assert_eq!(
        first,
        Ok(RefundOutcome::Succeeded {
            provider_ref: "re_fake2".into()
        })
    );
    let sent = fake.requests().pop().expect("a request");
    assert_authorized_post(&sent, "/v1/refunds", "ref_1");
    for (key, value) in [
        ("payment_intent", provider_ref.as_str()),
        ("amount", "500"),
        ("reason", "requested_by_customer"),
        ("metadata[reason]", "arrived damaged"),
        ("metadata[refund_id]", "ref_1"),
    ] {
        assert_eq!(sent.field(key), Some(value), "{key}");
    }
    assert!(matches!(
        stripe
            .refund(&refund("ref_2", 100, Some("duplicate")))
            .await,
        Ok(RefundOutcome::Succeeded { .. })
    ));
    assert_eq!(
        fake.requests().pop().expect("a request").field("reason"),
        Some("duplicate")
    );
    // 1999 captured, 600 refunded: 1400 is too much.
    let too_much = stripe.refund(&refund("ref_3", 1400, None)).await;
    assert!(
        matches!(&too_much, Ok(RefundOutcome::Refused { message }) if message.contains("greater")),
        "{too_much:?}"
    );
    let unknown = RefundCall {
        provider_ref: "pi_unknown".into(),
        ..refund("ref_4", 100, None)
    };
    assert!(matches!(
        stripe.refund(&unknown).await,
        Ok(RefundOutcome::Refused { .. })
    ));
}

#[tokio::test]
async fn errors_are_classified_and_never_carry_the_key() {
    let (base, _fake) = fake_stripe::start().await;
    let live_key = "sk_live_do_not_leak_1234";
    let wrong = Stripe::new(live_key, &base, Duration::from_secs(5)).expect("client");
    let err = wrong
        .charge(&card("pay_k", "4242424242424242"))
        .await
        .unwrap_err();
    let ProviderError::Rejected(message) = &err else {
        panic!("a bad key is a rejection, got {err:?}");
    };
    assert!(message.contains("Invalid API Key"), "{message}");
    assert!(!message.contains("sk_"), "{message}");
    assert!(!format!("{wrong:?}").contains(live_key));

    // Nobody listening: transient.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let closed = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let nobody = Stripe::new(KEY, &closed, Duration::from_secs(5)).expect("client");
    let err = nobody
        .charge(&card("pay_c", "4242424242424242"))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ProviderError::Transient(m) if !m.contains("4242")),
        "{err:?}"
    );
}

#[tokio::test]
async fn an_answer_slower_than_the_timeout_is_transient() {
    let (base, fake) = fake_stripe::start().await;
    fake.slow_down(Duration::from_millis(500));
    let impatient = Stripe::new(KEY, &base, Duration::from_millis(50)).expect("client");
    let err = impatient
        .charge(&card("pay_slow", "4242424242424242"))
        .await
        .unwrap_err();
    assert!(matches!(err, ProviderError::Transient(_)), "{err:?}");
}

#[test]
fn scrub_masks_keys() {
    assert_eq!(
        scrub("Invalid API Key provided: sk_live_****1234 for rk_test_abc"),
        "Invalid API Key provided: [redacted] for [redacted]"
    );
}
