//! The payment provider interface: what the payments service asks of
//! whoever moves the money (the built-in simulated provider, or Stripe).
//!
//! Every call carries an idempotency key made from our own payment or refund
//! id, so a call repeated after a timeout or a crash (the recovery at start
//! repeats every charge still `processing`) is one charge at the provider.
//!
//! [`Providers`] is what the service holds: the configured provider
//! ([`stripe`] when a secret key is set, else [`simulated`]) inside
//! [`resilient`]'s timeout, retries and circuit breaker. [`card`] has the
//! checks a card passes before anything is charged.

pub mod card;
pub mod resilient;
pub mod simulated;
pub mod stripe;

use std::sync::Arc;

use async_trait::async_trait;
use shop_wire::health::Check;
use shop_wire::money::Currency;

use crate::config::CommerceConfig;
use resilient::Resilient;
use simulated::Simulated;
use stripe::Stripe;

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
    Wallet { token: String },
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
    /// What became of a charge made with this idempotency key, for the
    /// recovery of a charge whose answer was lost (a crash, a timeout):
    /// `None` when the provider never took it.
    async fn find_charge(
        &self,
        idempotency_key: &str,
    ) -> Result<Option<ChargeOutcome>, ProviderError>;
}

/// A shared provider is a provider, so one can be chosen at start and wrapped.
#[async_trait]
impl<T: PaymentProvider + ?Sized> PaymentProvider for Arc<T> {
    fn name(&self) -> &'static str {
        (**self).name()
    }

    async fn charge(&self, request: &ChargeRequest) -> Result<ChargeOutcome, ProviderError> {
        (**self).charge(request).await
    }

    async fn settle(&self, provider_ref: &str) -> Result<ChargeOutcome, ProviderError> {
        (**self).settle(provider_ref).await
    }

    async fn refund(&self, call: &RefundCall) -> Result<RefundOutcome, ProviderError> {
        (**self).refund(call).await
    }

    async fn find_charge(
        &self,
        idempotency_key: &str,
    ) -> Result<Option<ChargeOutcome>, ProviderError> {
        (**self).find_charge(idempotency_key).await
    }
}

/// The payment provider as the service uses it: every call already wrapped
/// in timeout, retries and the circuit breaker. Cheap to clone.
#[derive(Clone)]
pub struct Providers(Arc<Resilient<Arc<dyn PaymentProvider>>>);

#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("cannot set up the Stripe client: {0}")]
    Stripe(#[source] reqwest::Error),
}

impl Providers {
    /// Stripe when `SHOP_STRIPE_SECRET_KEY` is set (at `stripe_api_base`),
    /// else the simulated provider; either behind the configured timeout,
    /// retries and breaker.
    pub fn from_config(config: &CommerceConfig) -> Result<Self, SetupError> {
        let provider: Arc<dyn PaymentProvider> = match config
            .stripe_secret_key
            .as_deref()
            .filter(|k| !k.is_empty())
        {
            Some(key) => {
                let timeout = std::time::Duration::from_millis(config.provider_timeout_ms);
                Arc::new(
                    Stripe::new(key, &config.stripe_api_base, timeout)
                        .map_err(SetupError::Stripe)?,
                )
            }
            None => Arc::new(Simulated::new().with_outages(config.simulate_outages)),
        };
        Ok(Providers(Arc::new(Resilient::new(provider, config))))
    }

    /// The provider to call; it already times out, retries and breaks the circuit.
    pub fn provider(&self) -> &dyn PaymentProvider {
        self.0.as_ref()
    }

    /// A charge for `customer`, whose own failures alone never open the breaker.
    pub async fn charge_for(
        &self,
        request: &ChargeRequest,
        customer: &str,
    ) -> Result<ChargeOutcome, ProviderError> {
        self.0.charge_for(request, customer).await
    }

    /// `simulated` or `stripe`, to record with each payment.
    pub fn name(&self) -> &'static str {
        self.0.name()
    }

    /// The `provider` check of `GET /api/payments/health`.
    pub fn health(&self) -> Check {
        self.0.health()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_key_chooses_the_provider() {
        let simulated = Providers::from_config(&CommerceConfig::default()).expect("simulated");
        assert_eq!(simulated.name(), "simulated");
        assert_eq!(simulated.health().status, shop_wire::HealthStatus::Ok);
        let config = CommerceConfig {
            stripe_secret_key: Some("sk_test_123".into()),
            ..CommerceConfig::default()
        };
        let stripe = Providers::from_config(&config).expect("stripe");
        assert_eq!(stripe.name(), "stripe");
        let blank = CommerceConfig {
            stripe_secret_key: Some(String::new()),
            ..CommerceConfig::default()
        };
        assert_eq!(
            Providers::from_config(&blank).expect("simulated").name(),
            "simulated"
        );
    }
}
