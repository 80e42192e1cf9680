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
