//! Circuit breakers for calls to outside providers (notification channels,
//! payment providers), one state machine shared by both so they open, probe
//! and close the same way and publish their state the same way.
//!
//! After `threshold` consecutive transient failures a breaker opens and
//! callers stop calling (no attempts burnt on a provider that is down, no
//! requests piling up behind its timeouts). After `cooldown` one probe goes
//! through (half-open); its answer closes the breaker, its failure opens it
//! again for another cooldown. A probe that never reports (its caller gave
//! up mid-call) does not wedge the breaker: after another cooldown the next
//! caller probes instead.
//!
//! [`Breaker`] is the state machine with the clock passed in, so it is tested
//! without waiting; [`Breakers`] holds one per key behind a lock and keeps the
//! gauge `<metric>{<label>="<key>"}` (0 closed, 1 half-open, 2 open) current.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

// tokio's clock is the std clock unless a test pauses it; then cooldowns
// pass with the test's virtual time instead of real sleeps.
use tokio::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    HalfOpen,
    Open,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "closed",
            BreakerState::HalfOpen => "half_open",
            BreakerState::Open => "open",
        }
    }

    /// The value of the state gauges: 0 closed, 1 half-open, 2 open.
    pub fn gauge(self) -> f64 {
        match self {
            BreakerState::Closed => 0.0,
            BreakerState::HalfOpen => 1.0,
            BreakerState::Open => 2.0,
        }
    }
}

#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    cooldown: Duration,
    /// Consecutive transient failures, counting a source's repeats once.
    failures: u32,
    /// The sources of those failures that named one (at most `threshold`).
    sources: Vec<u64>,
    /// When the breaker opened, or when its current probe went out.
    opened_at: Option<Instant>,
    half_open: bool,
}

impl Breaker {
    /// A threshold of 0 behaves as 1: the first transient failure opens it.
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Breaker {
            threshold: threshold.max(1),
            cooldown,
            failures: 0,
            sources: Vec::new(),
            opened_at: None,
            half_open: false,
        }
    }

    pub fn state(&self) -> BreakerState {
        match (self.opened_at, self.half_open) {
            (None, _) => BreakerState::Closed,
            (Some(_), true) => BreakerState::HalfOpen,
            (Some(_), false) => BreakerState::Open,
        }
    }

    /// How many calls may go out now, out of `batch`: all while closed, none
    /// while open or while a probe is out, one probe once the cooldown is over.
    pub fn allowance(&mut self, now: Instant, batch: u32) -> u32 {
        match self.opened_at {
            None => batch,
            Some(at) if now.saturating_duration_since(at) >= self.cooldown => {
                self.half_open = true;
                // The probe's own cooldown: no second probe while it is out.
                self.opened_at = Some(now);
                batch.min(1)
            }
            Some(_) => 0,
        }
    }

    /// How long until the next probe may go out (zero when closed).
    pub fn retry_in(&self, now: Instant) -> Duration {
        self.opened_at.map_or(Duration::ZERO, |at| {
            self.cooldown
                .saturating_sub(now.saturating_duration_since(at))
        })
    }

    /// The provider answered (a success, or a permanent refusal, which says it is up).
    pub fn on_answer(&mut self) {
        self.failures = 0;
        self.sources.clear();
        self.opened_at = None;
        self.half_open = false;
    }

    pub fn on_transient_failure(&mut self, now: Instant) {
        self.on_failure_from(now, None);
    }

    /// A transient failure of a call made for `source` (a customer, say):
    /// repeats from one source count once, so one customer whose calls keep
    /// failing cannot open the breaker for everyone; failures of `threshold`
    /// different sources (or without one) in a row still do.
    pub fn on_failure_from(&mut self, now: Instant, source: Option<u64>) {
        let new = match source {
            None => true,
            Some(source) if self.sources.contains(&source) => false,
            Some(source) => {
                if self.sources.len() < self.threshold as usize {
                    self.sources.push(source);
                }
                true
            }
        };
        if new {
            self.failures = self.failures.saturating_add(1);
        }
        if self.half_open || self.failures >= self.threshold {
            self.opened_at = Some(now);
            self.half_open = false;
        }
    }
}

/// Breakers by key (a channel, a provider name), shared by the callers,
/// health checks and metrics; cheap to clone.
#[derive(Clone)]
pub struct Breakers<K> {
    inner: Arc<Mutex<BTreeMap<K, Breaker>>>,
    threshold: u32,
    cooldown: Duration,
    metric: &'static str,
    label: &'static str,
}

/// What a breaker is keyed by: its label value in the state gauge.
pub trait BreakerKey: Copy + Ord + Send + 'static {
    fn label(self) -> &'static str;
}

impl BreakerKey for &'static str {
    fn label(self) -> &'static str {
        self
    }
}

impl<K: BreakerKey> Breakers<K> {
    /// Breakers for `keys`, each published as closed in the gauge `metric`
    /// with its key as the label `label`, so dashboards see them from the start.
    pub fn new(
        metric: &'static str,
        label: &'static str,
        keys: &[K],
        threshold: u32,
        cooldown: Duration,
    ) -> Self {
        let breakers = Breakers {
            inner: Arc::new(Mutex::new(
                keys.iter()
                    .map(|k| (*k, Breaker::new(threshold, cooldown)))
                    .collect(),
            )),
            threshold,
            cooldown,
            metric,
            label,
        };
        for key in keys {
            breakers.publish(*key, BreakerState::Closed);
        }
        breakers
    }

    fn with<T>(&self, key: K, f: impl FnOnce(&mut Breaker) -> T) -> T {
        // A panic while holding the lock leaves a breaker in a consistent
        // state (every method is a few assignments), so poisoning is ignored.
        let mut all = self
            .inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let breaker = all
            .entry(key)
            .or_insert_with(|| Breaker::new(self.threshold, self.cooldown));
        let before = breaker.state();
        let out = f(breaker);
        let after = breaker.state();
        drop(all);
        if before != after {
            tracing::warn!(
                key = key.label(),
                kind = self.metric,
                from = before.as_str(),
                to = after.as_str(),
                "circuit breaker"
            );
            self.publish(key, after);
        }
        out
    }

    fn publish(&self, key: K, state: BreakerState) {
        metrics::gauge!(self.metric, self.label => key.label()).set(state.gauge());
    }

    pub fn allowance(&self, key: K, batch: u32) -> u32 {
        self.with(key, |b| b.allowance(Instant::now(), batch))
    }

    /// One call's permission: `Ok` to call now, or how long until a probe may go.
    pub fn try_call(&self, key: K) -> Result<(), Duration> {
        self.with(key, |b| {
            let now = Instant::now();
            if b.allowance(now, 1) == 1 {
                Ok(())
            } else {
                Err(b.retry_in(now))
            }
        })
    }

    pub fn on_answer(&self, key: K) {
        self.with(key, Breaker::on_answer);
    }

    pub fn on_transient_failure(&self, key: K) {
        self.with(key, |b| b.on_transient_failure(Instant::now()));
    }

    /// [`Breaker::on_failure_from`] for the breaker of `key`.
    pub fn on_failure_from(&self, key: K, source: Option<u64>) {
        self.with(key, |b| b.on_failure_from(Instant::now(), source));
    }

    pub fn state(&self, key: K) -> BreakerState {
        self.with(key, |b| b.state())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_probes_after_the_cooldown_and_closes_on_success() {
        let cooldown = Duration::from_secs(10);
        let mut breaker = Breaker::new(3, cooldown);
        let t0 = Instant::now();
        assert_eq!(breaker.allowance(t0, 64), 64);
        breaker.on_transient_failure(t0);
        breaker.on_transient_failure(t0);
        assert_eq!(breaker.state(), BreakerState::Closed);
        // A success in between resets the count.
        breaker.on_answer();
        breaker.on_transient_failure(t0);
        breaker.on_transient_failure(t0);
        assert_eq!(breaker.state(), BreakerState::Closed);
        breaker.on_transient_failure(t0);
        assert_eq!(breaker.state(), BreakerState::Open);
        assert_eq!(breaker.allowance(t0 + Duration::from_secs(5), 64), 0);
        assert_eq!(
            breaker.retry_in(t0 + Duration::from_secs(4)),
            Duration::from_secs(6)
        );

        // Cooldown over: one probe.
        assert_eq!(breaker.allowance(t0 + cooldown, 64), 1);
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        // The probe fails: open again, for a full cooldown.
        let t1 = t0 + cooldown;
        breaker.on_transient_failure(t1);
        assert_eq!(breaker.state(), BreakerState::Open);
        assert_eq!(breaker.allowance(t1 + Duration::from_secs(9), 64), 0);
        assert_eq!(breaker.allowance(t1 + cooldown, 64), 1);
        breaker.on_answer();
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert_eq!(breaker.allowance(t1 + cooldown, 64), 64);
    }

    #[test]
    fn one_probe_at_a_time_and_a_lost_probe_does_not_wedge_it() {
        let cooldown = Duration::from_secs(10);
        let mut breaker = Breaker::new(1, cooldown);
        let t0 = Instant::now();
        breaker.on_transient_failure(t0);
        assert_eq!(breaker.allowance(t0 + cooldown, 1), 1);
        // The probe is out: a concurrent caller is held back.
        assert_eq!(breaker.allowance(t0 + cooldown, 1), 0);
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        // The probe never reports; a cooldown later another one may go.
        assert_eq!(breaker.allowance(t0 + cooldown * 2, 1), 1);
    }

    #[test]
    fn keyed_breakers_are_independent() {
        let breakers = Breakers::new("test_circuit_state", "key", &["a", "b"], 2, Duration::ZERO);
        breakers.on_transient_failure("a");
        breakers.on_transient_failure("a");
        assert_eq!(breakers.state("a"), BreakerState::Open);
        assert_eq!(breakers.state("b"), BreakerState::Closed);
        assert_eq!(breakers.try_call("b"), Ok(()));
        // A zero cooldown: the next call is the probe.
        assert_eq!(breakers.try_call("a"), Ok(()));
        assert_eq!(breakers.state("a"), BreakerState::HalfOpen);
        breakers.on_answer("a");
        assert_eq!(breakers.state("a"), BreakerState::Closed);
    }

    #[test]
    fn one_sources_failures_count_once_and_many_sources_still_open_it() {
        let now = Instant::now();
        let mut breaker = Breaker::new(3, Duration::from_secs(30));
        for _ in 0..20 {
            breaker.on_failure_from(now, Some(7));
        }
        assert_eq!(breaker.state(), BreakerState::Closed);
        breaker.on_failure_from(now, Some(8));
        assert_eq!(breaker.state(), BreakerState::Closed);
        breaker.on_failure_from(now, Some(9));
        assert_eq!(breaker.state(), BreakerState::Open);
        // An answer forgets the sources.
        let mut breaker = Breaker::new(2, Duration::from_secs(30));
        breaker.on_failure_from(now, Some(1));
        breaker.on_answer();
        breaker.on_failure_from(now, Some(2));
        assert_eq!(breaker.state(), BreakerState::Closed);
        // Failures without a source each count.
        breaker.on_failure_from(now, None);
        assert_eq!(breaker.state(), BreakerState::Open);
    }
}
