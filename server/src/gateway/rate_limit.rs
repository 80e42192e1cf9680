//! Rate limiting per client address and per token (GCRA, from `governor`),
//! with a stricter per-address limit on login. Over the limit a client gets
//! 429 with `Retry-After`.

use std::hash::Hash;
use std::net::{IpAddr, Ipv4Addr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};

use sha2::{Digest, Sha256};
use shop_wire::SessionId;
use shop_wire::keys::is_key_secret;

use crate::auth::bearer_token;
use crate::auth::tokens::TokenKeys;
use crate::config::RateLimits;
use crate::error::AppError;
use crate::gateway::ClientAddr;

pub struct Limiters {
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// Keyed by the session a valid token names: spelling the same token
    /// differently (`bearer`, extra spaces) or asking for a fresh access
    /// token does not buy a fresh budget. An API key has a budget of its own.
    per_token: Option<DefaultKeyedRateLimiter<Bearer>>,
    /// Checks signatures, so a forged token cannot spend another session's budget.
    tokens: TokenKeys,
    login: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// Accounts one address may register; each sends a welcome email to an unverified address.
    register: Option<DefaultKeyedRateLimiter<IpAddr>>,
}

/// Whose budget a request spends.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Bearer {
    Session(SessionId),
    /// An API key, by the SHA-256 of its secret (one secret per key). A
    /// made-up key gets a budget that nothing else shares, and then 401.
    Key([u8; 32]),
}

fn keyed<K: Hash + Eq + Clone>(quota: Option<Quota>) -> Option<DefaultKeyedRateLimiter<K>> {
    quota.map(RateLimiter::keyed)
}

/// `n` per second with a burst of `2n`; `None` when `n` is 0 (limit off).
fn per_second(n: u32) -> Option<Quota> {
    let rate = NonZeroU32::new(n)?;
    let burst = NonZeroU32::new(n.saturating_mul(2)).unwrap_or(rate);
    Some(Quota::per_second(rate).allow_burst(burst))
}

impl Limiters {
    pub fn new(limits: &RateLimits, tokens: TokenKeys) -> Arc<Self> {
        let login = NonZeroU32::new(limits.login_per_minute).map(|n| {
            // A burst of a third of the minute's budget lets a person retry a typo at once.
            let burst = NonZeroU32::new((n.get() / 3).max(1)).unwrap_or(n);
            Quota::per_minute(n).allow_burst(burst)
        });
        Arc::new(Limiters {
            per_ip: keyed(per_second(limits.per_ip_per_second)),
            per_token: keyed(per_second(limits.per_token_per_second)),
            login: keyed(login),
            register: keyed(NonZeroU32::new(limits.register_per_hour).map(|n| {
                // A household or an office behind one address may register a few at once.
                let burst = NonZeroU32::new((n.get() / 4).max(1)).unwrap_or(n);
                Quota::per_hour(n).allow_burst(burst)
            })),
            tokens,
        })
    }

    /// Drops the state of clients that are back under their limit; keeps memory bounded.
    pub fn forget_idle(&self) {
        for limiter in [&self.per_ip, &self.login, &self.register]
            .into_iter()
            .flatten()
        {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        if let Some(limiter) = &self.per_token {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

fn check<K: Hash + Eq + Clone>(
    limiter: &Option<DefaultKeyedRateLimiter<K>>,
    key: &K,
) -> Result<(), Duration> {
    match limiter {
        Some(limiter) => limiter
            .check_key(key)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now())),
        None => Ok(()),
    }
}

fn client_ip(request: &Request) -> IpAddr {
    request
        .extensions()
        .get::<ConnectInfo<ClientAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.0.ip())
}

fn too_many(scope: &str, wait: Duration) -> Response {
    AppError::TooManyRequests {
        code: "rate_limited",
        message: format!("too many requests {scope}; retry after the time in Retry-After"),
        retry_after: wait,
    }
    .into_response()
}

pub async fn middleware(
    State(limiters): State<Arc<Limiters>>,
    request: Request,
    next: Next,
) -> Response {
    if let Err(wait) = check(&limiters.per_ip, &client_ip(&request)) {
        return too_many("from this address", wait);
    }
    // A token that does not verify gets 401 from the route; only the per-address limit applies to it.
    let bearer = bearer_token(request.headers()).and_then(|token| {
        if is_key_secret(token) {
            Some(Bearer::Key(Sha256::digest(token.as_bytes()).into()))
        } else {
            limiters
                .tokens
                .verify(token)
                .ok()
                .map(|claims| Bearer::Session(claims.sid))
        }
    });
    if let Some(bearer) = bearer
        && let Err(wait) = check(&limiters.per_token, &bearer)
    {
        return too_many("with this token", wait);
    }
    next.run(request).await
}

/// The stricter limit, layered on the login route only.
pub async fn login_middleware(
    State(limiters): State<Arc<Limiters>>,
    request: Request,
    next: Next,
) -> Response {
    if let Err(wait) = check(&limiters.login, &client_ip(&request)) {
        return too_many("to log in from this address", wait);
    }
    next.run(request).await
}

/// The registration limit, layered on the registration route only.
pub async fn register_middleware(
    State(limiters): State<Arc<Limiters>>,
    request: Request,
    next: Next,
) -> Response {
    if let Err(wait) = check(&limiters.register, &client_ip(&request)) {
        return too_many("to register from this address", wait);
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_api_key_spends_a_budget_of_its_own() {
        let limiters = Limiters::new(
            &RateLimits {
                per_ip_per_second: 0,
                per_token_per_second: 1,
                login_per_minute: 0,
                register_per_hour: 0,
            },
            TokenKeys::new(b"a test secret of at least 32 bytes!"),
        );
        let key = |secret: &str| Bearer::Key(Sha256::digest(secret.as_bytes()).into());
        let (one, other) = (key("shop_sk_one"), key("shop_sk_other"));
        assert!(check(&limiters.per_token, &one).is_ok());
        assert!(check(&limiters.per_token, &one).is_ok(), "a burst of two");
        assert!(
            check(&limiters.per_token, &one).is_err(),
            "then the key waits"
        );
        assert!(
            check(&limiters.per_token, &other).is_ok(),
            "another key is not held up"
        );
        assert!(check(&limiters.per_token, &Bearer::Session(SessionId::generate())).is_ok());
    }

    #[test]
    fn burst_then_refusal_with_a_wait() {
        let limiters = Limiters::new(
            &RateLimits {
                per_ip_per_second: 2,
                per_token_per_second: 0,
                login_per_minute: 3,
                register_per_hour: 0,
            },
            TokenKeys::new(b"a test secret of at least 32 bytes!"),
        );
        let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
        for _ in 0..4 {
            assert!(check(&limiters.per_ip, &ip).is_ok());
        }
        let wait = check(&limiters.per_ip, &ip).unwrap_err();
        assert!(wait <= Duration::from_millis(500), "{wait:?}");
        assert!(
            check(&limiters.per_token, &Bearer::Session(SessionId::generate())).is_ok(),
            "a limit of 0 is off"
        );
        assert!(check(&limiters.login, &ip).is_ok());
        assert!(
            check(&limiters.login, &ip).is_err(),
            "login allows a burst of a third of a minute's budget"
        );
    }
}
