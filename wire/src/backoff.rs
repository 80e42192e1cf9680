//! The one retry backoff of the project: the server's notification queue,
//! its payment provider calls and worker restarts, and the CLI's retries and
//! reconnects all wait by it.
//!
//! The wait before retry `n` (1-based) is `base * 2^(n-1)` capped at `cap`,
//! with **equal jitter** (the AWS Architecture Blog's name): a uniformly
//! random point in the upper half, `[nominal / 2, nominal]`. Retries of a
//! burst spread out, yet no retry comes sooner than half its nominal wait,
//! which full jitter (`[0, nominal]`) would allow.
//!
//! The randomness is an argument, so the schedule is a pure function that
//! tests can pin; callers pass a uniform draw from `[0, 1]`. A retry crate
//! (backon, backoff) would drive the loop itself, but half of these callers
//! have no loop: the queue stores the next attempt's time in the database.

use std::time::Duration;

/// Exponential growth from `base`, capped at `cap`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub cap: Duration,
}

impl Backoff {
    pub const fn new(base: Duration, cap: Duration) -> Self {
        Backoff { base, cap }
    }

    /// The wait before retry `attempt` (1 = the first retry) without jitter.
    pub fn nominal(&self, attempt: u32) -> Duration {
        let exponent = attempt.saturating_sub(1).min(31);
        self.base.saturating_mul(1u32 << exponent).min(self.cap)
    }

    /// The wait before retry `attempt`, at `jitter` (a uniform draw from
    /// `[0, 1]`, clamped) between half the nominal wait and all of it.
    pub fn delay(&self, attempt: u32, jitter: f64) -> Duration {
        let half = self.nominal(attempt) / 2;
        let extra = Duration::try_from_secs_f64(half.as_secs_f64() * jitter.clamp(0.0, 1.0))
            .map_or(half, |extra| extra.min(half));
        half.saturating_add(extra)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: Backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(10));

    #[test]
    fn doubles_per_attempt_until_the_cap() {
        let nominal: Vec<u128> = (1..=7).map(|n| POLICY.nominal(n).as_millis()).collect();
        assert_eq!(nominal, [500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
        assert_eq!(POLICY.nominal(0), POLICY.base);
        assert_eq!(POLICY.nominal(u32::MAX), POLICY.cap);
    }

    #[test]
    fn jitter_stays_in_the_upper_half() {
        assert_eq!(POLICY.delay(1, 0.0), Duration::from_millis(250));
        assert_eq!(POLICY.delay(1, 1.0), Duration::from_millis(500));
        assert_eq!(POLICY.delay(3, 0.5), Duration::from_millis(1500));
        // Out-of-range draws are clamped, never below half or above the cap.
        assert_eq!(POLICY.delay(1, -3.0), Duration::from_millis(250));
        assert_eq!(POLICY.delay(40, 7.0), POLICY.cap);
    }

    #[test]
    fn a_huge_base_saturates_instead_of_overflowing() {
        let policy = Backoff::new(Duration::MAX, Duration::MAX);
        assert_eq!(policy.nominal(30), Duration::MAX);
        assert!(policy.delay(30, 1.0) >= Duration::MAX / 2);
    }
}
