//! The storage interface of users: accounts, roles and profiles.

use async_trait::async_trait;

use shop_wire::users::{Address, Role, User};
use shop_wire::{SessionId, UserId};

use super::{NewEvent, StoreResult};

/// A user as stored: the public view plus the password hash.
#[derive(Clone, Debug)]
pub struct UserRecord {
    pub user: User,
    pub password_hash: String,
}

#[derive(Clone, Debug, Default)]
pub struct UserQuery {
    pub role: Option<Role>,
    /// Case-insensitive substring of the email or name.
    pub text: Option<String>,
    pub limit: u32,
    pub offset: u64,
}

#[derive(Clone, Debug, Default)]
pub struct ProfileUpdate {
    pub name: Option<String>,
    pub addresses: Option<Vec<Address>>,
}

#[derive(Clone, Debug)]
pub enum RoleChange {
    Changed(User),
    NotFound,
    /// Refused: it would demote the only admin and leave the shop with none.
    LastAdmin,
}

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Fails with [`StoreError::Duplicate`] when the email is taken (case-insensitively).
    async fn insert_user(&self, user: &UserRecord, events: Vec<NewEvent>) -> StoreResult<()>;
    async fn user(&self, id: &UserId) -> StoreResult<Option<UserRecord>>;
    async fn user_by_email(&self, email: &str) -> StoreResult<Option<UserRecord>>;
    async fn list_users(&self, query: &UserQuery) -> StoreResult<(Vec<User>, u64)>;
    async fn count_users_with_role(&self, role: Role) -> StoreResult<u64>;
    /// Writes the given fields and logs `events` with them; None when there is no such user.
    async fn update_profile(
        &self,
        id: &UserId,
        update: &ProfileUpdate,
        events: Vec<NewEvent>,
    ) -> StoreResult<Option<User>>;
    /// Sets a new hash, revokes every session of the user except `keep` and
    /// logs `events`, in one transaction.
    async fn set_password(
        &self,
        id: &UserId,
        hash: &str,
        keep: Option<&SessionId>,
        events: Vec<NewEvent>,
    ) -> StoreResult<()>;
    /// Changes a role atomically with the check that one admin always remains.
    async fn set_role(
        &self,
        id: &UserId,
        role: Role,
        events: Vec<NewEvent>,
    ) -> StoreResult<RoleChange>;
}
