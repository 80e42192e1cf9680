//! The storage interface of idempotency keys.

use async_trait::async_trait;

use time::OffsetDateTime;

use super::StoreResult;

/// A response kept for replay under an `Idempotency-Key`.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum IdempotencyBegin {
    /// First use of the key: the caller runs the request and then completes or abandons it.
    Started,
    /// The key was used before with the same request: here is its response.
    Replay(StoredResponse),
    /// The key was used before with a different request.
    Mismatch,
    /// The first request with this key is still running.
    InProgress,
}

/// A key's claim as stored.
#[derive(Clone, Debug)]
pub struct StoredClaim {
    pub fingerprint: String,
    /// The response, once the claim's request completed.
    pub response: Option<StoredResponse>,
    pub created_at: OffsetDateTime,
}

/// What a new claim of a key already claimed gets, the same on every
/// backend: `None` when the stored claim is stale and the new one takes it over.
pub fn reclaim(
    stored: StoredClaim,
    fingerprint: &str,
    stale_after: time::Duration,
    at: OffsetDateTime,
) -> Option<IdempotencyBegin> {
    if stored.fingerprint != fingerprint {
        return Some(IdempotencyBegin::Mismatch);
    }
    match stored.response {
        Some(response) => Some(IdempotencyBegin::Replay(response)),
        None if stored.created_at + stale_after > at => Some(IdempotencyBegin::InProgress),
        None => None,
    }
}

#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Claims `key` for a request with `fingerprint`, atomically: of any
    /// number of concurrent claims of a fresh key exactly one gets `Started`.
    /// A claim left in progress for longer than `stale_after` (its request
    /// died with the process) is taken over.
    async fn begin_idempotent(
        &self,
        key: &str,
        fingerprint: &str,
        stale_after: time::Duration,
    ) -> StoreResult<IdempotencyBegin>;
    /// Stores the response of a `Started` claim, so later uses of the key replay it.
    async fn complete_idempotent(&self, key: &str, response: &StoredResponse) -> StoreResult<()>;
    /// Releases a claim whose request failed in a way worth retrying.
    async fn abandon_idempotent(&self, key: &str) -> StoreResult<()>;
    /// Forgets keys first used before `before`; returns how many.
    async fn purge_idempotency(&self, before: OffsetDateTime) -> StoreResult<u64>;
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    fn claim(response: Option<StoredResponse>, age: Duration) -> StoredClaim {
        StoredClaim {
            fingerprint: "a".to_owned(),
            response,
            created_at: crate::store::now() - age,
        }
    }

    #[test]
    fn a_claim_replays_refuses_waits_or_is_taken_over() {
        let at = crate::store::now();
        let stale = Duration::minutes(5);
        let done = StoredResponse {
            status: 201,
            content_type: None,
            body: b"{}".to_vec(),
        };
        let fresh = claim(None, Duration::seconds(1));
        assert_eq!(
            reclaim(fresh.clone(), "b", stale, at),
            Some(IdempotencyBegin::Mismatch)
        );
        assert_eq!(
            reclaim(fresh, "a", stale, at),
            Some(IdempotencyBegin::InProgress)
        );
        assert_eq!(
            reclaim(claim(None, Duration::minutes(6)), "a", stale, at),
            None
        );
        assert_eq!(
            reclaim(
                claim(Some(done.clone()), Duration::hours(1)),
                "a",
                stale,
                at
            ),
            Some(IdempotencyBegin::Replay(done))
        );
    }
}
