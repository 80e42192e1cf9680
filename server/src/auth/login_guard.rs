//! Brute-force protection for login, per account and client address.
//!
//! The gateway already limits login attempts per client address; this guard
//! slows the guessing of one account from one address. The key is the pair
//! (the caller passes `email from address`), so an attacker elsewhere cannot
//! lock the owner, the admin included, out of their own account. After
//! [`FREE_ATTEMPTS`] consecutive failures the pair's logins are refused for
//! a delay that doubles with each further failure, up to [`MAX_LOCKOUT`]. A
//! success clears the count. Refusals answer 429 with `Retry-After`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub const FREE_ATTEMPTS: u32 = 5;
pub const FIRST_LOCKOUT: Duration = Duration::from_secs(30);
pub const MAX_LOCKOUT: Duration = Duration::from_secs(15 * 60);
/// An account with no failed attempt for this long starts again from zero.
const FORGET_AFTER: Duration = Duration::from_secs(3600);

#[derive(Debug)]
struct Failures {
    count: u32,
    last: Instant,
    locked_until: Option<Instant>,
}

#[derive(Debug, Default)]
pub struct LoginGuard {
    accounts: Mutex<HashMap<String, Failures>>,
}

impl LoginGuard {
    /// `Err(wait)` while the account is locked.
    pub fn check(&self, email: &str, now: Instant) -> Result<(), Duration> {
        let accounts = self
            .accounts
            .lock()
            .expect("login guard lock is never poisoned");
        match accounts.get(email).and_then(|f| f.locked_until) {
            Some(until) if until > now => Err(until - now),
            _ => Ok(()),
        }
    }

    pub fn record_failure(&self, email: &str, now: Instant) {
        let mut accounts = self
            .accounts
            .lock()
            .expect("login guard lock is never poisoned");
        let failures = accounts.entry(email.to_owned()).or_insert(Failures {
            count: 0,
            last: now,
            locked_until: None,
        });
        if now.duration_since(failures.last) > FORGET_AFTER {
            failures.count = 0;
        }
        failures.count += 1;
        failures.last = now;
        if failures.count >= FREE_ATTEMPTS {
            let doublings = (failures.count - FREE_ATTEMPTS).min(16);
            let lockout = (FIRST_LOCKOUT * 2u32.pow(doublings)).min(MAX_LOCKOUT);
            failures.locked_until = Some(now + lockout);
        }
    }

    pub fn record_success(&self, email: &str) {
        self.accounts
            .lock()
            .expect("login guard lock is never poisoned")
            .remove(email);
    }

    /// Forgets accounts idle long enough that their count would reset anyway.
    pub fn prune(&self, now: Instant) -> usize {
        let mut accounts = self
            .accounts
            .lock()
            .expect("login guard lock is never poisoned");
        let before = accounts.len();
        accounts.retain(|_, f| {
            now.duration_since(f.last) <= FORGET_AFTER || f.locked_until.is_some_and(|u| u > now)
        });
        before - accounts.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locks_after_free_attempts_and_doubles_up_to_the_cap() {
        let guard = LoginGuard::default();
        let t0 = Instant::now();
        for _ in 0..FREE_ATTEMPTS - 1 {
            guard.record_failure("a@x.io", t0);
            assert!(guard.check("a@x.io", t0).is_ok());
        }
        guard.record_failure("a@x.io", t0);
        assert_eq!(guard.check("a@x.io", t0), Err(FIRST_LOCKOUT));
        guard.record_failure("a@x.io", t0);
        assert_eq!(guard.check("a@x.io", t0), Err(FIRST_LOCKOUT * 2));
        for _ in 0..20 {
            guard.record_failure("a@x.io", t0);
        }
        assert_eq!(guard.check("a@x.io", t0), Err(MAX_LOCKOUT));
        assert!(guard.check("a@x.io", t0 + MAX_LOCKOUT).is_ok());
        assert!(
            guard.check("other@x.io", t0).is_ok(),
            "other accounts are unaffected"
        );
        guard.record_success("a@x.io");
        assert!(guard.check("a@x.io", t0).is_ok());
    }

    #[test]
    fn prune_forgets_idle_accounts_only() {
        let guard = LoginGuard::default();
        let t0 = Instant::now();
        guard.record_failure("idle@x.io", t0);
        let later = t0 + FORGET_AFTER + Duration::from_secs(1);
        guard.record_failure("fresh@x.io", later);
        assert_eq!(guard.prune(later), 1);
    }
}
