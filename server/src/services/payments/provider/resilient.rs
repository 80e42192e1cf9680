//! [`Resilient`]: the timeout, retry and circuit breaker every outbound
//! payment call goes through, around whichever provider is configured.
//!
//! Only [`ProviderError::Transient`] is retried: a decline or a rejected
//! request gets the same answer however often it is asked. Retrying is safe
//! because every call carries our idempotency key, so a charge that did go
//! through before its answer was lost is found, not made twice. Waits grow
//! exponentially from `provider_retry_base_ms` with jitter, so many checkouts
//! failing at once do not retry in lockstep.
//!
//! The breaker counts consecutive transient failures across all calls; once
//! open, calls fail at once with [`ProviderError::CircuitOpen`] (checkout
//! answers quickly instead of every shopper waiting out the timeouts), and
//! after the cooldown one call probes the provider. A call that was tried at
//! least once and then stopped by the breaker ends with its last transient
//! error, not `CircuitOpen`: the provider may have acted on it, and
//! `CircuitOpen` promises that no call was made.

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use shop_wire::HealthStatus;
use shop_wire::backoff::Backoff;
use shop_wire::health::Check;

use super::{
    ChargeOutcome, ChargeRequest, PaymentProvider, ProviderError, RefundCall, RefundOutcome,
};
use crate::breaker::{BreakerState, Breakers};
use crate::config::CommerceConfig;

/// The gauge of the payment provider's breaker: 0 closed, 1 half-open, 2 open.
pub const CIRCUIT_GAUGE: &str = "shop_payments_circuit_state";
/// Provider calls by provider, operation and result, one per attempt.
pub const CALLS_COUNTER: &str = "shop_payments_provider_calls_total";

/// The longest single wait between attempts, however many there are.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The most one attempt may take.
    pub timeout: Duration,
    /// Attempts in all (1 = no retry).
    pub attempts: u32,
    /// The wait after the first failure; each later one about twice the one before.
    pub base: Duration,
}

impl RetryPolicy {
    pub fn from_config(config: &CommerceConfig) -> Self {
        RetryPolicy {
            timeout: Duration::from_millis(config.provider_timeout_ms),
            attempts: config.provider_attempts.max(1),
            base: Duration::from_millis(config.provider_retry_base_ms),
        }
    }

    /// The wait after failed attempt `attempt` (1-based), by the project's
    /// one backoff (equal jitter), so the waits still grow while concurrent
    /// callers spread out.
    pub fn backoff(&self, attempt: u32) -> Duration {
        Backoff::new(self.base, MAX_BACKOFF).delay(attempt, rand::random())
    }
}

/// A provider wrapped in a timeout, retries and a circuit breaker.
pub struct Resilient<P> {
    inner: P,
    policy: RetryPolicy,
    breakers: Breakers<&'static str>,
}

impl<P: PaymentProvider> Resilient<P> {
    pub fn new(inner: P, config: &CommerceConfig) -> Self {
        Self::with_policy(
            inner,
            RetryPolicy::from_config(config),
            config.breaker_threshold,
            Duration::from_millis(config.breaker_cooldown_ms),
        )
    }

    pub fn with_policy(
        inner: P,
        policy: RetryPolicy,
        breaker_threshold: u32,
        breaker_cooldown: Duration,
    ) -> Self {
        let breakers = Breakers::new(
            CIRCUIT_GAUGE,
            "provider",
            &[inner.name()],
            breaker_threshold,
            breaker_cooldown,
        );
        Resilient {
            inner,
            policy,
            breakers,
        }
    }

    #[cfg(test)]
    pub fn inner(&self) -> &P {
        &self.inner
    }

    pub fn circuit_state(&self) -> BreakerState {
        self.breakers.state(self.inner.name())
    }

    /// The payments health check of the provider: `ok` while the breaker is
    /// closed; `degraded` while it is open or probing (payments cannot be
    /// taken, but orders, refunds already recorded and history still work,
    /// and it heals itself, so it is not `down`).
    pub fn health(&self) -> Check {
        let state = self.circuit_state();
        Check {
            status: match state {
                BreakerState::Closed => HealthStatus::Ok,
                BreakerState::HalfOpen | BreakerState::Open => HealthStatus::Degraded,
            },
            message: Some(format!("{}, circuit {}", self.inner.name(), state.as_str())),
        }
    }

    /// Runs `call` under the policy; `operation` names it in metrics and logs.
    async fn run<T, F, Fut>(
        &self,
        operation: &'static str,
        source: Option<u64>,
        call: F,
    ) -> Result<T, ProviderError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, ProviderError>>,
    {
        let name = self.inner.name();
        let mut last_failure = None;
        for attempt in 1..=self.policy.attempts.max(1) {
            if let Err(wait) = self.breakers.try_call(name) {
                record(name, operation, "circuit_open");
                return Err(last_failure.unwrap_or(ProviderError::CircuitOpen {
                    retry_in_ms: u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                }));
            }
            let result = tokio::time::timeout(self.policy.timeout, call())
                .await
                .unwrap_or_else(|_| {
                    Err(ProviderError::Transient(format!(
                        "no answer from {name} within {} ms",
                        self.policy.timeout.as_millis()
                    )))
                });
            match result {
                Err(ProviderError::Transient(message)) => {
                    record(name, operation, "transient");
                    self.breakers.on_failure_from(name, source);
                    tracing::warn!(
                        provider = name,
                        operation,
                        attempt,
                        attempts = self.policy.attempts,
                        error = %message,
                        "payment provider call failed transiently"
                    );
                    last_failure = Some(ProviderError::Transient(message));
                    if attempt < self.policy.attempts {
                        tokio::time::sleep(self.policy.backoff(attempt)).await;
                    }
                }
                Err(ProviderError::CircuitOpen { retry_in_ms }) => {
                    // An inner breaker of its own: no call was made there either.
                    record(name, operation, "circuit_open");
                    return Err(last_failure.unwrap_or(ProviderError::CircuitOpen { retry_in_ms }));
                }
                other => {
                    record(
                        name,
                        operation,
                        if other.is_ok() {
                            "answered"
                        } else {
                            "rejected"
                        },
                    );
                    // A decline or a rejection is an answer: the provider is up.
                    self.breakers.on_answer(name);
                    return other;
                }
            }
        }
        Err(last_failure
            .unwrap_or_else(|| ProviderError::Transient(format!("{name}: no attempt was made"))))
    }
}

fn record(provider: &'static str, operation: &'static str, result: &'static str) {
    metrics::counter!(CALLS_COUNTER, "provider" => provider, "operation" => operation, "result" => result)
        .increment(1);
}

impl<P: PaymentProvider> Resilient<P> {
    /// A charge made for `customer`: its transient failures count against
    /// the breaker once per customer, however often that customer retries.
    pub async fn charge_for(
        &self,
        request: &ChargeRequest,
        customer: &str,
    ) -> Result<ChargeOutcome, ProviderError> {
        let source = source_of(customer);
        self.run("charge", Some(source), || self.inner.charge(request))
            .await
    }
}

/// A stable number for a customer, case aside, to tell sources apart.
fn source_of(customer: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    customer.to_ascii_lowercase().hash(&mut hasher);
    hasher.finish()
}

#[async_trait]
impl<P: PaymentProvider> PaymentProvider for Resilient<P> {
    fn name(&self) -> &'static str {
        self.inner.name()
    }

    async fn charge(&self, request: &ChargeRequest) -> Result<ChargeOutcome, ProviderError> {
        self.run("charge", None, || self.inner.charge(request))
            .await
    }

    async fn settle(&self, provider_ref: &str) -> Result<ChargeOutcome, ProviderError> {
        self.run("settle", None, || self.inner.settle(provider_ref))
            .await
    }

    async fn refund(&self, call: &RefundCall) -> Result<RefundOutcome, ProviderError> {
        self.run("refund", None, || self.inner.refund(call)).await
    }

    async fn find_charge(
        &self,
        idempotency_key: &str,
    ) -> Result<Option<ChargeOutcome>, ProviderError> {
        self.run("find_charge", None, || {
            self.inner.find_charge(idempotency_key)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU32, Ordering};

    use shop_wire::money::Currency;
    use tokio::time::Instant;

    use super::super::MethodDetails;
    use super::*;

    /// A provider that answers from a script, one entry per call, and counts calls.
    #[derive(Default)]
    struct Scripted {
        answers: Mutex<VecDeque<Result<ChargeOutcome, ProviderError>>>,
        calls: AtomicU32,
        /// When set, every call hangs this long before answering.
        hang: Option<Duration>,
    }

    impl Scripted {
        fn new(answers: Vec<Result<ChargeOutcome, ProviderError>>) -> Self {
            Scripted {
                answers: Mutex::new(answers.into()),
                ..Scripted::default()
            }
        }

        /// Queues the answer to a later call.
        fn script(&self, answer: Result<ChargeOutcome, ProviderError>) {
            self.answers.lock().expect("lock").push_back(answer);
        }

        fn calls(&self) -> u32 {
            self.calls.load(Ordering::SeqCst)
        }

        fn next(&self) -> Result<ChargeOutcome, ProviderError> {
            self.calls.fetch_add(1, Ordering::SeqCst);
            self.answers
                .lock()
                .expect("lock")
                .pop_front()
                .unwrap_or_else(|| Err(transient()))
        }
    }

    #[async_trait]
    impl PaymentProvider for Scripted {
        fn name(&self) -> &'static str {
            "scripted"
        }

        async fn charge(&self, _: &ChargeRequest) -> Result<ChargeOutcome, ProviderError> {
            if let Some(hang) = self.hang {
                tokio::time::sleep(hang).await;
            }
            self.next()
        }

        async fn settle(&self, _: &str) -> Result<ChargeOutcome, ProviderError> {
            self.next()
        }

        async fn refund(&self, _: &RefundCall) -> Result<RefundOutcome, ProviderError> {
            self.next().map(|_| RefundOutcome::Succeeded {
                provider_ref: "re_1".into(),
            })
        }

        async fn find_charge(&self, _: &str) -> Result<Option<ChargeOutcome>, ProviderError> {
            self.next().map(Some)
        }
    }

    fn transient() -> ProviderError {
        ProviderError::Transient("503".into())
    }

    fn ok() -> Result<ChargeOutcome, ProviderError> {
        Ok(ChargeOutcome::Succeeded {
            provider_ref: "ch_1".into(),
            card_brand: None,
            card_last4: None,
        })
    }

    fn declined() -> Result<ChargeOutcome, ProviderError> {
        Ok(ChargeOutcome::Declined {
            code: "card_declined".into(),
            message: "no".into(),
            provider_ref: None,
        })
    }

    fn request() -> ChargeRequest {
        ChargeRequest {
            idempotency_key: "pay_1".into(),
            amount_cents: 100,
            currency: Currency::USD,
            method: MethodDetails::BankTransfer,
            description: "Order ORD-1".into(),
            order_id: "ord_1".into(),
        }
    }

    const BASE: Duration = Duration::from_millis(100);

    fn wrap(
        inner: Scripted,
        attempts: u32,
        threshold: u32,
        cooldown: Duration,
    ) -> Resilient<Scripted> {
        Resilient::with_policy(
            inner,
            RetryPolicy {
                timeout: Duration::from_secs(1),
                attempts,
                base: BASE,
            },
            threshold,
            cooldown,
        )
    }

    #[test]
    fn backoff_grows_with_jitter_in_the_upper_half() {
        let policy = RetryPolicy {
            timeout: Duration::from_secs(1),
            attempts: 5,
            base: BASE,
        };
        for attempt in 1..=4u32 {
            let full = BASE * 2u32.pow(attempt - 1);
            for _ in 0..50 {
                let wait = policy.backoff(attempt);
                assert!(
                    wait >= full / 2 && wait <= full,
                    "attempt {attempt}: {wait:?}"
                );
            }
        }
        assert!(policy.backoff(40) <= MAX_BACKOFF);
    }

    // The clock is paused: sleeps and timeouts advance virtual time at once,
    // so the waits are measured exactly and nothing depends on the machine's speed.
    #[tokio::test(start_paused = true)]
    async fn retries_transient_failures_with_backoff_until_success() {
        let provider = wrap(
            Scripted::new(vec![Err(transient()), Err(transient()), ok()]),
            3,
            10,
            Duration::from_secs(60),
        );
        let started = Instant::now();
        assert_eq!(provider.charge(&request()).await, ok());
        assert_eq!(provider.inner().calls(), 3);
        // Two waits: at least 50 + 100 ms, at most 100 + 200 ms.
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_millis(150) && waited <= Duration::from_millis(300),
            "{waited:?}"
        );
        assert_eq!(provider.circuit_state(), BreakerState::Closed);
    }

    #[tokio::test(start_paused = true)]
    async fn attempts_are_bounded_and_the_last_error_is_returned() {
        let provider = wrap(Scripted::new(vec![]), 3, 10, Duration::from_secs(60));
        assert_eq!(provider.charge(&request()).await, Err(transient()));
        assert_eq!(provider.inner().calls(), 3);
        let single = wrap(Scripted::new(vec![]), 1, 10, Duration::from_secs(60));
        assert_eq!(single.settle("x").await, Err(transient()));
        assert_eq!(single.inner().calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn declines_and_rejections_are_not_retried() {
        let provider = wrap(
            Scripted::new(vec![declined()]),
            3,
            10,
            Duration::from_secs(60),
        );
        assert_eq!(provider.charge(&request()).await, declined());
        assert_eq!(provider.inner().calls(), 1);
        let rejected = ProviderError::Rejected("bad parameter".into());
        let provider = wrap(
            Scripted::new(vec![Err(rejected.clone())]),
            3,
            10,
            Duration::from_secs(60),
        );
        assert_eq!(provider.charge(&request()).await, Err(rejected));
        assert_eq!(provider.inner().calls(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_hung_call_times_out_and_is_retried() {
        let inner = Scripted {
            hang: Some(Duration::from_secs(5)),
            ..Scripted::new(vec![ok(), ok()])
        };
        let provider = wrap(inner, 2, 10, Duration::from_secs(60));
        let err = provider.charge(&request()).await.unwrap_err();
        assert!(
            matches!(&err, ProviderError::Transient(m) if m.contains("1000 ms")),
            "{err:?}"
        );
        // Both attempts started; neither answered in time.
        assert_eq!(provider.inner().calls(), 0);
        assert_eq!(provider.inner().answers.lock().expect("lock").len(), 2);
    }

    #[tokio::test(start_paused = true)]
    async fn the_breaker_opens_rejects_while_open_then_half_opens_and_closes() {
        let cooldown = Duration::from_secs(30);
        // No retries, so each charge is one attempt and the counts are plain.
        let provider = wrap(
            Scripted::new(vec![Err(transient()), Err(transient()), Err(transient())]),
            1,
            3,
            cooldown,
        );
        for _ in 0..3 {
            assert_eq!(provider.charge(&request()).await, Err(transient()));
        }
        assert_eq!(provider.circuit_state(), BreakerState::Open);
        assert_eq!(provider.health().status, HealthStatus::Degraded);

        // Open: no call reaches the provider.
        let err = provider.charge(&request()).await.unwrap_err();
        assert!(
            matches!(err, ProviderError::CircuitOpen { retry_in_ms } if retry_in_ms > 0 && retry_in_ms <= 30_000),
            "{err:?}"
        );
        assert_eq!(provider.inner().calls(), 3);

        tokio::time::advance(cooldown).await;
        // The probe fails: open again, one call made.
        provider.inner().script(Err(transient()));
        assert_eq!(provider.charge(&request()).await, Err(transient()));
        assert_eq!(provider.inner().calls(), 4);
        assert_eq!(provider.circuit_state(), BreakerState::Open);
        assert!(matches!(
            provider.charge(&request()).await,
            Err(ProviderError::CircuitOpen { .. })
        ));
        assert_eq!(provider.inner().calls(), 4);

        tokio::time::advance(cooldown).await;
        provider.inner().script(ok());
        assert_eq!(provider.charge(&request()).await, ok());
        assert_eq!(provider.inner().calls(), 5);
        assert_eq!(provider.circuit_state(), BreakerState::Closed);
        assert_eq!(provider.health().status, HealthStatus::Ok);
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_stopped_by_the_breaker_midway_reports_its_transient_error() {
        // Threshold 2, five attempts: the breaker opens after the second.
        let provider = wrap(Scripted::new(vec![]), 5, 2, Duration::from_secs(60));
        assert_eq!(provider.charge(&request()).await, Err(transient()));
        assert_eq!(provider.inner().calls(), 2);
        assert_eq!(provider.circuit_state(), BreakerState::Open);
    }

    #[tokio::test(start_paused = true)]
    async fn a_decline_closes_a_half_open_breaker() {
        let cooldown = Duration::from_secs(5);
        let provider = wrap(
            Scripted::new(vec![Err(transient()), declined()]),
            1,
            1,
            cooldown,
        );
        assert_eq!(provider.charge(&request()).await, Err(transient()));
        assert_eq!(provider.circuit_state(), BreakerState::Open);
        tokio::time::advance(cooldown).await;
        assert_eq!(provider.charge(&request()).await, declined());
        assert_eq!(provider.circuit_state(), BreakerState::Closed);
    }
}
