//! The storage interface of API keys.

use async_trait::async_trait;
use shop_wire::keys::{ApiKey, Scope};
use shop_wire::users::Role;
use shop_wire::{KeyId, UserId};
use time::OffsetDateTime;

use super::{NewEvent, StoreResult};

/// A key as stored: the listed view plus the hash of its secret.
#[derive(Clone, Debug)]
pub struct KeyRecord {
    pub key: ApiKey,
    /// SHA-256 (hex) of the secret; the secret itself is never stored.
    pub secret_hash: String,
}

/// What the auth check needs to know about a key, read in one query.
#[derive(Clone, Debug)]
pub struct KeyAuth {
    pub id: KeyId,
    pub user_id: UserId,
    pub email: String,
    /// The creator's role now, not when the key was made.
    pub role: Role,
    pub scopes: Vec<Scope>,
    pub expires_at: Option<OffsetDateTime>,
    pub revoked: bool,
}

#[async_trait]
pub trait KeyStore: Send + Sync {
    async fn insert_key(&self, key: &KeyRecord, events: Vec<NewEvent>) -> StoreResult<()>;
    async fn key_auth(&self, secret_hash: &str) -> StoreResult<Option<KeyAuth>>;
    async fn key(&self, id: &KeyId) -> StoreResult<Option<ApiKey>>;
    /// Keys newest first; only `owner`'s when given.
    async fn list_keys(&self, owner: Option<&UserId>) -> StoreResult<Vec<ApiKey>>;
    /// Revokes a key at `at` and logs `events`; `None` when there is no such
    /// key. A key already revoked is returned as it is, and nothing is written.
    async fn revoke_key(
        &self,
        id: &KeyId,
        at: OffsetDateTime,
        events: Vec<NewEvent>,
    ) -> StoreResult<Option<ApiKey>>;
    /// Records when keys were last used. Not a change anyone made: it is
    /// neither logged as an event nor audited.
    async fn touch_keys(&self, used: Vec<(KeyId, OffsetDateTime)>) -> StoreResult<()>;
}
