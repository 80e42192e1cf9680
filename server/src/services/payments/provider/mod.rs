//! The payment provider interface: what the payments service asks of
//! whoever moves the money (the built-in simulated provider, or Stripe).
//!
//! Every call carries an idempotency key made from our own payment or refund
//! id, so a call repeated after a timeout or a crash (the recovery at start
//! repeats every charge still `processing`) is one charge at the provider.
//!
//! [`simulated`] is the built-in provider; [`card`] has the checks a card
//! passes before anything is charged.

pub mod card;
pub mod simulated;

use async_trait::async_trait;
use shop_wire::money::Currency;
use shop_wire::payments::MethodKind;

/// What to charge and how. Card numbers live only in memory for the length of the call.
#[derive(Clone)]
pub struct ChargeRequest {
    /// Our payment id; the provider must treat a repeat of it as the same charge.
    pub idempotency_key: String,
    pub amount_cents: i64,
    pub currency: Currency,
    pub method: MethodDetails,
    /// Shown on the provider's dashboard, e.g. `Order ORD-001042`.
    pub description: String,
    /// Our order id, kept by the provider as metadata.
    pub order_id: String,
}

#[derive(Clone)]
pub enum MethodDetails {
    Card {
        number: String,
        exp_month: u32,
        exp_year: i32,
        cvc: Option<String>,
    },
    /// Apple Pay, Google Pay or PayPal, by the token the wallet gave the shopper.
    Wallet { kind: MethodKind, token: String },
    /// Pending until the transfer arrives and is settled.
    BankTransfer,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ChargeOutcome {
    /// The money is captured.
    Succeeded {
        provider_ref: String,
        card_brand: Option<String>,
        card_last4: Option<String>,
    },
    /// Accepted but not yet settled (a bank transfer): settle or cancel it later.
    Pending { provider_ref: String },
    /// Refused for good, e.g. `card_declined`, `insufficient_funds`,
    /// `expired_card`, `incorrect_number`; retrying the same request will not help.
    Declined {
        code: String,
        message: String,
        provider_ref: Option<String>,
    },
}

#[derive(Clone, Debug)]
pub struct RefundCall {
    /// Our refund id.
    pub idempotency_key: String,
    /// The charge's `provider_ref`.
    pub provider_ref: String,
    pub amount_cents: i64,
    pub currency: Currency,
    pub reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum RefundOutcome {
    Succeeded {
        provider_ref: String,
    },
    /// The provider refused the refund for good.
    Refused {
        message: String,
    },
}

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum ProviderError {
    /// No answer in time, a connection failure, a 5xx or a 429: it may have
    /// happened or not; repeating the call with the same key is safe.
    #[error("the payment provider is unavailable: {0}")]
    Transient(String),
    /// The provider says our request is wrong (a 4xx other than a decline):
    /// a bug or a misconfiguration, not worth retrying.
    #[error("the payment provider refused the request: {0}")]
    Rejected(String),
    /// The circuit breaker is open after repeated failures; no call was made.
    #[error("the payment provider is failing; calls are paused for {retry_in_ms} ms")]
    CircuitOpen { retry_in_ms: u64 },
}

#[async_trait]
pub trait PaymentProvider: Send + Sync {
    /// `simulated` or `stripe`, as payments record it.
    fn name(&self) -> &'static str;
    async fn charge(&self, request: &ChargeRequest) -> Result<ChargeOutcome, ProviderError>;
    /// Settles a pending charge (a bank transfer that has arrived).
    async fn settle(&self, provider_ref: &str) -> Result<ChargeOutcome, ProviderError>;
    async fn refund(&self, call: &RefundCall) -> Result<RefundOutcome, ProviderError>;
}
