//! The storage interface of sessions and their refresh tokens.

use async_trait::async_trait;

use shop_wire::users::Role;
use shop_wire::{SessionId, UserId};
use time::OffsetDateTime;

use super::{NewEvent, StoreResult};

#[derive(Clone, Debug)]
pub struct SessionRecord {
    pub id: SessionId,
    pub user_id: UserId,
    /// SHA-256 of the current refresh secret; the secret itself is never stored.
    pub refresh_hash: String,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub created_at: OffsetDateTime,
    pub last_used_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

impl SessionRecord {
    pub fn is_active(&self, at: OffsetDateTime) -> bool {
        self.revoked_at.is_none() && self.expires_at > at
    }
}

/// What the auth check needs to know about a session, read in one query.
#[derive(Clone, Debug)]
pub struct SessionAuth {
    pub user_id: UserId,
    /// The user's email, as the audit log names them.
    pub email: String,
    pub role: Role,
    pub expires_at: OffsetDateTime,
    pub revoked: bool,
}

#[derive(Clone, Debug)]
pub enum RefreshOutcome {
    /// The presented secret was current; it is replaced and the session extended.
    Rotated(SessionRecord),
    /// The presented secret was an old one: someone replayed a used refresh
    /// token, so the session has been revoked to cut off whoever holds it.
    ReuseDetected,
    /// No such session, or it was revoked or has expired.
    Inactive,
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn insert_session(
        &self,
        session: &SessionRecord,
        events: Vec<NewEvent>,
    ) -> StoreResult<()>;
    async fn session_auth(&self, id: &SessionId) -> StoreResult<Option<SessionAuth>>;
    /// The user's sessions that are neither revoked nor expired, newest first.
    async fn active_sessions(
        &self,
        user: &UserId,
        at: OffsetDateTime,
    ) -> StoreResult<Vec<SessionRecord>>;
    async fn rotate_refresh(
        &self,
        id: &SessionId,
        presented_hash: &str,
        new_hash: &str,
        expires_at: OffsetDateTime,
    ) -> StoreResult<RefreshOutcome>;
    /// Revokes one of the user's sessions and logs `events` with it; false
    /// (and no events) when it was not theirs or not active.
    async fn revoke_session(
        &self,
        id: &SessionId,
        user: &UserId,
        events: Vec<NewEvent>,
    ) -> StoreResult<bool>;
    /// Deletes sessions that expired or were revoked before `before`; returns how many.
    async fn purge_sessions(&self, before: OffsetDateTime) -> StoreResult<u64>;
}
