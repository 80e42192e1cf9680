//! The built-in provider (`simulated`): Stripe's test cards and tokens
//! without a network, so a shop works, and every payment path is testable,
//! with no account anywhere.
//!
//! It keeps no state. Every outcome is a function of the request, and every
//! reference is derived from our idempotency key (`sim_ch_<payment id>`,
//! `sim_bt_<payment id>`, `sim_re_<refund id>`). The payments service repeats
//! in-flight charges after a crash with the same key; a provider that
//! remembered charges in memory would have forgotten them by then and could
//! answer differently, or not know a reference it handed out. This one gives
//! the same answer before and after a restart, on any node, and needs no lock
//! on the checkout path.

use async_trait::async_trait;
use time::Date;

use super::card::{self, CardBrand};
use super::{
    ChargeOutcome, ChargeRequest, MethodDetails, PaymentProvider, ProviderError, RefundCall,
    RefundOutcome,
};

pub const NAME: &str = "simulated";

const CHARGE_PREFIX: &str = "sim_ch_";
const TRANSFER_PREFIX: &str = "sim_bt_";
const REFUND_PREFIX: &str = "sim_re_";

/// The longest idempotency key or wallet token taken (Stripe's limit for keys).
const MAX_TOKEN_LEN: usize = 255;

#[derive(Clone, Debug, Default)]
pub struct Simulated {
    /// A fixed "today" for expiry checks in tests; `None` is the real date.
    today: Option<Date>,
    /// Whether the outage test cards fail transiently (as a provider that is
    /// down would) or are declined. Off unless a test setup asks for it:
    /// anyone may type such a card, and an outage trips the breaker.
    outages: bool,
}

impl Simulated {
    pub fn new() -> Self {
        Simulated::default()
    }

    /// A provider whose calendar stands still, for tests of expiry.
    #[cfg(test)]
    pub fn with_today(today: Date) -> Self {
        Simulated {
            today: Some(today),
            ..Simulated::default()
        }
    }

    /// Whether the outage test cards simulate an outage (`commerce.simulate_outages`).
    pub fn with_outages(self, outages: bool) -> Self {
        Simulated { outages, ..self }
    }

    fn today(&self) -> Date {
        self.today.unwrap_or_else(card::today)
    }
}

/// What a test card or token does.
enum Scripted {
    Succeed,
    Decline(&'static str),
    /// A processing error: transient, so retries and the breaker can be exercised.
    Fail,
}

/// Stripe's special test card numbers; any other valid card succeeds.
fn scripted_card(number: &str) -> Scripted {
    match number {
        "4000000000000002" => Scripted::Decline("card_declined"),
        "4000000000009995" => Scripted::Decline("insufficient_funds"),
        "4000000000000069" => Scripted::Decline("expired_card"),
        "4000000000000127" => Scripted::Decline("incorrect_cvc"),
        "4000000000000119" => Scripted::Fail,
        _ => Scripted::Succeed,
    }
}

/// Stripe's test tokens (`tok_visa`) and payment methods (`pm_card_visa`):
/// the outcome, and the brand and last four digits of the card behind them.
fn scripted_token(token: &str) -> (Scripted, Option<(CardBrand, &'static str)>) {
    let name = token
        .strip_prefix("tok_")
        .or_else(|| token.strip_prefix("pm_card_"))
        .unwrap_or("");
    match name {
        "visa" => (Scripted::Succeed, Some((CardBrand::Visa, "4242"))),
        "visa_debit" => (Scripted::Succeed, Some((CardBrand::Visa, "5556"))),
        "mastercard" => (Scripted::Succeed, Some((CardBrand::Mastercard, "4444"))),
        "mastercard_debit" => (Scripted::Succeed, Some((CardBrand::Mastercard, "8210"))),
        "amex" => (Scripted::Succeed, Some((CardBrand::Amex, "8431"))),
        "discover" => (Scripted::Succeed, Some((CardBrand::Discover, "1117"))),
        "chargeDeclined" => (Scripted::Decline("card_declined"), None),
        "chargeDeclinedInsufficientFunds" => (Scripted::Decline("insufficient_funds"), None),
        "chargeDeclinedExpiredCard" => (Scripted::Decline("expired_card"), None),
        "chargeDeclinedIncorrectCvc" => (Scripted::Decline("incorrect_cvc"), None),
        "chargeDeclinedProcessingError" => (Scripted::Fail, None),
        _ => (Scripted::Succeed, None),
    }
}

/// The shopper-facing message of a decline code, in Stripe's words.
fn decline_message(code: &str) -> &'static str {
    match code {
        "insufficient_funds" => "Your card has insufficient funds.",
        "expired_card" => "Your card has expired.",
        "incorrect_cvc" => "Your card's security code is incorrect.",
        "invalid_cvc" => "Your card's security code is invalid.",
        "incorrect_number" => "Your card number is incorrect.",
        "invalid_token" => "The payment token is not valid.",
        _ => "Your card was declined.",
    }
}

fn declined(code: &str, message: &str, provider_ref: Option<String>) -> ChargeOutcome {
    ChargeOutcome::Declined {
        code: code.to_owned(),
        message: message.to_owned(),
        provider_ref,
    }
}

/// Printable ASCII without spaces, 1 to 255 characters: what a key or token looks like.
fn well_formed(token: &str) -> bool {
    !token.is_empty() && token.len() <= MAX_TOKEN_LEN && token.bytes().all(|b| b.is_ascii_graphic())
}

#[async_trait]
impl PaymentProvider for Simulated {
    fn name(&self) -> &'static str {
        NAME
    }

    async fn charge(&self, request: &ChargeRequest) -> Result<ChargeOutcome, ProviderError> {
        if !well_formed(&request.idempotency_key) {
            return Err(ProviderError::Rejected(
                "the idempotency key must be 1 to 255 printable characters".to_owned(),
            ));
        }
        if request.amount_cents <= 0 {
            return Err(ProviderError::Rejected(format!(
                "the amount must be positive, not {}",
                request.amount_cents
            )));
        }
        let charge_ref = format!("{CHARGE_PREFIX}{}", request.idempotency_key);
        let (scripted, card) = match &request.method {
            MethodDetails::BankTransfer => {
                return Ok(ChargeOutcome::Pending {
                    provider_ref: format!("{TRANSFER_PREFIX}{}", request.idempotency_key),
                });
            }
            MethodDetails::Card {
                number,
                exp_month,
                exp_year,
                cvc,
            } => {
                match card::check_card(number, *exp_month, *exp_year, cvc.as_deref(), self.today())
                {
                    Ok(checked) => (
                        scripted_card(&checked.number),
                        Some((checked.brand, checked.last4)),
                    ),
                    Err(err) => {
                        let code = err.decline_code();
                        return Ok(declined(code, &err.to_string(), Some(charge_ref)));
                    }
                }
            }
            MethodDetails::Wallet { token, .. } => {
                if !well_formed(token) {
                    return Ok(declined(
                        "invalid_token",
                        "The payment token must be 1 to 255 printable characters.",
                        None,
                    ));
                }
                let (scripted, card) = scripted_token(token);
                (
                    scripted,
                    card.map(|(brand, last4)| (brand, last4.to_owned())),
                )
            }
        };
        match scripted {
            Scripted::Succeed => {
                let (brand, last4) = card.unzip();
                Ok(ChargeOutcome::Succeeded {
                    provider_ref: charge_ref,
                    card_brand: brand.map(|b| b.as_str().to_owned()),
                    card_last4: last4,
                })
            }
            Scripted::Decline(code) => Ok(declined(code, decline_message(code), Some(charge_ref))),
            Scripted::Fail if self.outages => Err(ProviderError::Transient(
                "processing_error: An error occurred while processing your card.".to_owned(),
            )),
            Scripted::Fail => Ok(declined(
                "processing_error",
                "An error occurred while processing your card. Try again in a little bit.",
                Some(charge_ref),
            )),
        }
    }

    async fn settle(&self, provider_ref: &str) -> Result<ChargeOutcome, ProviderError> {
        match provider_ref.strip_prefix(TRANSFER_PREFIX) {
            Some(key) if well_formed(key) => Ok(ChargeOutcome::Succeeded {
                provider_ref: provider_ref.to_owned(),
                card_brand: None,
                card_last4: None,
            }),
            _ => Err(ProviderError::Rejected(format!(
                "no pending bank transfer `{provider_ref}` at the simulated provider"
            ))),
        }
    }

    async fn refund(&self, call: &RefundCall) -> Result<RefundOutcome, ProviderError> {
        if !well_formed(&call.idempotency_key) {
            return Err(ProviderError::Rejected(
                "the idempotency key must be 1 to 255 printable characters".to_owned(),
            ));
        }
        if call.amount_cents <= 0 {
            return Err(ProviderError::Rejected(format!(
                "the refund amount must be positive, not {}",
                call.amount_cents
            )));
        }
        let ours = [CHARGE_PREFIX, TRANSFER_PREFIX]
            .iter()
            .any(|p| call.provider_ref.strip_prefix(p).is_some_and(well_formed));
        if !ours {
            return Ok(RefundOutcome::Refused {
                message: format!(
                    "no charge `{}` at the simulated provider",
                    call.provider_ref
                ),
            });
        }
        Ok(RefundOutcome::Succeeded {
            provider_ref: format!("{REFUND_PREFIX}{}", call.idempotency_key),
        })
    }

    /// A simulated charge exists only in the answer it gave: what the card
    /// would have done cannot be known without the card, which is never
    /// stored. So a charge whose answer was lost never happened here, and
    /// the payments service records it failed (`interrupted`); no money of
    /// anyone's was involved.
    async fn find_charge(
        &self,
        idempotency_key: &str,
    ) -> Result<Option<ChargeOutcome>, ProviderError> {
        if !well_formed(idempotency_key) {
            return Err(ProviderError::Rejected(
                "the idempotency key must be 1 to 255 printable characters".to_owned(),
            ));
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use shop_wire::money::Currency;

    use super::*;

    fn provider() -> Simulated {
        Simulated::with_today(card::date(2026, 11, 15).expect("a real date"))
    }

    fn card_request(key: &str, number: &str) -> ChargeRequest {
        ChargeRequest {
            idempotency_key: key.to_owned(),
            amount_cents: 1999,
            currency: Currency::USD,
            method: MethodDetails::Card {
                number: number.to_owned(),
                exp_month: 12,
                exp_year: 2030,
                cvc: Some("123".to_owned()),
            },
            description: "Order ORD-000001".to_owned(),
            order_id: "ord_1".to_owned(),
        }
    }

    fn wallet_request(key: &str, token: &str) -> ChargeRequest {
        ChargeRequest {
            method: MethodDetails::Wallet {
                token: token.to_owned(),
            },
            ..card_request(key, "")
        }
    }

    fn code_of(outcome: &ChargeOutcome) -> Option<&str> {
        match outcome {
            ChargeOutcome::Declined { code, .. } => Some(code),
            _ => None,
        }
    }

    #[tokio::test]
    async fn test_cards() {
        let sim = provider();
        let ok = sim
            .charge(&card_request("pay_1", "4242 4242 4242 4242"))
            .await;
        assert_eq!(
            ok,
            Ok(ChargeOutcome::Succeeded {
                provider_ref: "sim_ch_pay_1".into(),
                card_brand: Some("visa".into()),
                card_last4: Some("4242".into()),
            })
        );
        // Any other valid card succeeds too, with its own brand.
        let amex = sim.charge(&card_request("pay_2", "378282246310005")).await;
        assert!(
            matches!(&amex, Ok(ChargeOutcome::Succeeded { card_brand: Some(b), card_last4: Some(l), .. }) if b == "amex" && l == "0005"),
            "{amex:?}"
        );
        for (number, code) in [
            ("4000000000000002", "card_declined"),
            ("4000000000009995", "insufficient_funds"),
            ("4000000000000069", "expired_card"),
            ("4000000000000127", "incorrect_cvc"),
            ("4242424242424241", "incorrect_number"),
            ("4242", "incorrect_number"),
        ] {
            let outcome = sim
                .charge(&card_request("pay_3", number))
                .await
                .expect("an answer");
            assert_eq!(code_of(&outcome), Some(code), "{number}: {outcome:?}");
            if let ChargeOutcome::Declined {
                message,
                provider_ref,
                ..
            } = &outcome
            {
                assert!(!message.is_empty());
                assert!(!message.contains(number), "the number leaked: {message}");
                assert_eq!(provider_ref.as_deref(), Some("sim_ch_pay_3"));
            }
        }
        // The outage card is a decline unless outages are simulated on purpose.
        let declined = sim.charge(&card_request("pay_4", "4000000000000119")).await;
        assert_eq!(
            declined.as_ref().ok().and_then(code_of),
            Some("processing_error")
        );
        let transient = provider()
            .with_outages(true)
            .charge(&card_request("pay_4", "4000000000000119"))
            .await;
        assert!(
            matches!(transient, Err(ProviderError::Transient(m)) if m.contains("processing_error"))
        );
    }

    #[tokio::test]
    async fn expiry_and_cvc_are_checked() {
        let sim = provider();
        let mut request = card_request("pay_1", "4242424242424242");
        request.method = MethodDetails::Card {
            number: "4242424242424242".into(),
            exp_month: 10,
            exp_year: 2026,
            cvc: None,
        };
        let outcome = sim.charge(&request).await.expect("an answer");
        assert_eq!(code_of(&outcome), Some("expired_card"));
        request.method = MethodDetails::Card {
            number: "4242424242424242".into(),
            exp_month: 11,
            exp_year: 2026,
            cvc: Some("12".into()),
        };
        let outcome = sim.charge(&request).await.expect("an answer");
        assert_eq!(code_of(&outcome), Some("invalid_cvc"));
    }

    #[tokio::test]
    async fn wallet_tokens() {
        let sim = provider();
        let ok = sim.charge(&wallet_request("pay_w", "tok_visa")).await;
        assert_eq!(
            ok,
            Ok(ChargeOutcome::Succeeded {
                provider_ref: "sim_ch_pay_w".into(),
                card_brand: Some("visa".into()),
                card_last4: Some("4242".into()),
            })
        );
        let other = sim
            .charge(&wallet_request("pay_w", "EC-8XK12345AB678901C"))
            .await;
        assert!(
            matches!(
                other,
                Ok(ChargeOutcome::Succeeded {
                    card_brand: None,
                    ..
                })
            ),
            "{other:?}"
        );
        for (token, code) in [
            ("tok_chargeDeclined", "card_declined"),
            ("pm_card_chargeDeclined", "card_declined"),
            ("tok_chargeDeclinedInsufficientFunds", "insufficient_funds"),
            ("tok_chargeDeclinedExpiredCard", "expired_card"),
            ("tok_chargeDeclinedIncorrectCvc", "incorrect_cvc"),
            ("", "invalid_token"),
            ("tok visa", "invalid_token"),
            ("tok_\u{7}", "invalid_token"),
            ("tok_é", "invalid_token"),
        ] {
            let outcome = sim
                .charge(&wallet_request("pay_w", token))
                .await
                .expect("an answer");
            assert_eq!(code_of(&outcome), Some(code), "{token:?}");
        }
        let long = "t".repeat(256);
        let outcome = sim
            .charge(&wallet_request("pay_w", &long))
            .await
            .expect("an answer");
        assert_eq!(code_of(&outcome), Some("invalid_token"));
        assert!(
            sim.charge(&wallet_request("pay_w", &long[..255]))
                .await
                .is_ok_and(|o| code_of(&o).is_none())
        );
        let transient = provider()
            .with_outages(true)
            .charge(&wallet_request(
                "pay_w",
                "tok_chargeDeclinedProcessingError",
            ))
            .await;
        assert!(matches!(transient, Err(ProviderError::Transient(_))));
    }

    #[tokio::test]
    async fn bank_transfers_pend_then_settle() {
        let sim = provider();
        let request = ChargeRequest {
            method: MethodDetails::BankTransfer,
            ..card_request("pay_bt", "")
        };
        let pending = sim.charge(&request).await;
        assert_eq!(
            pending,
            Ok(ChargeOutcome::Pending {
                provider_ref: "sim_bt_pay_bt".into()
            })
        );
        assert!(matches!(
            sim.settle("sim_bt_pay_bt").await,
            Ok(ChargeOutcome::Succeeded { provider_ref, .. }) if provider_ref == "sim_bt_pay_bt"
        ));
        for unknown in ["sim_bt_", "sim_ch_pay_1", "pi_123", ""] {
            assert!(
                matches!(sim.settle(unknown).await, Err(ProviderError::Rejected(_))),
                "{unknown:?}"
            );
        }
    }

    #[tokio::test]
    async fn refunds() {
        let sim = provider();
        let call = |provider_ref: &str, amount_cents: i64| RefundCall {
            idempotency_key: "ref_1".into(),
            provider_ref: provider_ref.into(),
            amount_cents,
            reason: Some("damaged".into()),
        };
        for charge in ["sim_ch_pay_1", "sim_bt_pay_2"] {
            assert_eq!(
                sim.refund(&call(charge, 500)).await,
                Ok(RefundOutcome::Succeeded {
                    provider_ref: "sim_re_ref_1".into()
                })
            );
        }
        assert!(matches!(
            sim.refund(&call("ch_3Nx", 500)).await,
            Ok(RefundOutcome::Refused { .. })
        ));
        assert!(matches!(
            sim.refund(&call("sim_ch_pay_1", 0)).await,
            Err(ProviderError::Rejected(_))
        ));
    }

    #[tokio::test]
    async fn deterministic_across_instances() {
        // Two instances stand for before and after a restart.
        let (before, after) = (provider(), provider());
        for number in ["4242424242424242", "4000000000000002", "4000000000009995"] {
            let request = card_request("pay_01JD0000000000000000000000", number);
            assert_eq!(before.charge(&request).await, after.charge(&request).await);
            assert_eq!(before.charge(&request).await, before.charge(&request).await);
        }
        let a = before
            .charge(&card_request("pay_a", "4242424242424242"))
            .await;
        let b = after
            .charge(&card_request("pay_b", "4242424242424242"))
            .await;
        assert_ne!(a, b, "different keys are different charges");
        assert!(matches!(
            before.charge(&card_request("", "4242424242424242")).await,
            Err(ProviderError::Rejected(_))
        ));
    }
}
