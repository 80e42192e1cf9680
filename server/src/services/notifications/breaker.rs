//! A circuit breaker per channel, written here because it is thirty lines:
//! after `threshold` consecutive transient failures the channel opens and
//! its notifications stay queued (no attempts burnt on a provider that is
//! down); after `cooldown` one probe goes through (half-open); its success
//! closes the breaker, its failure opens it again.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shop_wire::notifications::Channel;

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

    /// The `shop_notifications_circuit_state` gauge: 0 closed, 1 half-open, 2 open.
    fn gauge(self) -> f64 {
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
    failures: u32,
    opened_at: Option<Instant>,
    half_open: bool,
}

impl Breaker {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Breaker {
            threshold,
            cooldown,
            failures: 0,
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

    /// How many notifications may be tried now, out of `batch`: all while
    /// closed, none while open, one probe once the cooldown is over.
    pub fn allowance(&mut self, now: Instant, batch: u32) -> u32 {
        match self.opened_at {
            None => batch,
            Some(at) if now.duration_since(at) >= self.cooldown => {
                self.half_open = true;
                1
            }
            Some(_) => 0,
        }
    }

    /// The provider answered (a success, or a permanent refusal, which says it is up).
    pub fn on_answer(&mut self) {
        self.failures = 0;
        self.opened_at = None;
        self.half_open = false;
    }

    pub fn on_transient_failure(&mut self, now: Instant) {
        self.failures = self.failures.saturating_add(1);
        if self.half_open || self.failures >= self.threshold {
            self.opened_at = Some(now);
            self.half_open = false;
        }
    }
}

/// The breakers of all channels, shared by the worker, health and metrics.
#[derive(Clone)]
pub struct Breakers(Arc<Mutex<BTreeMap<Channel, Breaker>>>);

impl Breakers {
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        let breakers = Channel::ALL
            .iter()
            .map(|c| (*c, Breaker::new(threshold, cooldown)))
            .collect();
        let breakers = Breakers(Arc::new(Mutex::new(breakers)));
        for channel in Channel::ALL {
            breakers.publish(*channel, BreakerState::Closed);
        }
        breakers
    }

    fn with<T>(&self, channel: Channel, f: impl FnOnce(&mut Breaker) -> T) -> T {
        let mut all = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let breaker = all
            .entry(channel)
            .or_insert_with(|| Breaker::new(1, Duration::ZERO));
        let before = breaker.state();
        let out = f(breaker);
        let after = breaker.state();
        if before != after {
            tracing::warn!(%channel, from = before.as_str(), to = after.as_str(), "circuit breaker");
            self.publish(channel, after);
        }
        out
    }

    fn publish(&self, channel: Channel, state: BreakerState) {
        metrics::gauge!("shop_notifications_circuit_state", "channel" => channel.as_str())
            .set(state.gauge());
    }

    pub fn allowance(&self, channel: Channel, batch: u32) -> u32 {
        self.with(channel, |b| b.allowance(Instant::now(), batch))
    }

    pub fn on_answer(&self, channel: Channel) {
        self.with(channel, Breaker::on_answer);
    }

    pub fn on_transient_failure(&self, channel: Channel) {
        self.with(channel, |b| b.on_transient_failure(Instant::now()));
    }

    pub fn state(&self, channel: Channel) -> BreakerState {
        self.with(channel, |b| b.state())
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
}
