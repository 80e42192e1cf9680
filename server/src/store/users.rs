//! The storage interface of users: accounts, roles and profiles.

use async_trait::async_trait;

use shop_wire::users::{Address, Role, User};
use shop_wire::{SessionId, UserId};
use time::OffsetDateTime;

use super::{NewEvent, StoreResult};
use crate::services::users::rules::TokenRefusal;

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

/// What an emailed account token is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenPurpose {
    VerifyEmail,
    PasswordReset,
}

impl TokenPurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            TokenPurpose::VerifyEmail => "verify_email",
            TokenPurpose::PasswordReset => "password_reset",
        }
    }
}

impl std::str::FromStr for TokenPurpose {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [TokenPurpose::VerifyEmail, TokenPurpose::PasswordReset]
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| format!("unknown token purpose `{s}`"))
    }
}

/// A token sent by email, as stored: its hash, never the token.
#[derive(Clone, Debug, PartialEq)]
pub struct AccountToken {
    pub hash: String,
    pub user_id: UserId,
    pub purpose: TokenPurpose,
    pub created_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub used_at: Option<OffsetDateTime>,
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
    /// Notes that a reset email was asked for the user, with `events` (the
    /// request the reset email answers), in one transaction.
    async fn note_password_reset_request(
        &self,
        id: &UserId,
        at: OffsetDateTime,
        events: Vec<NewEvent>,
    ) -> StoreResult<()>;
    /// Stores tokens about to be emailed.
    async fn insert_account_tokens(&self, tokens: Vec<AccountToken>) -> StoreResult<()>;
    async fn account_token(&self, hash: &str) -> StoreResult<Option<AccountToken>>;
    /// Spends the `verify_email` token with this hash and marks its user's
    /// email verified, logging `events`, in one transaction. A token is
    /// spent once: of two calls that race, one verifies and the other is
    /// refused with [`TokenRefusal::Used`].
    async fn verify_email(
        &self,
        hash: &str,
        at: OffsetDateTime,
        events: Vec<NewEvent>,
    ) -> StoreResult<Result<User, TokenRefusal>>;
    /// Spends the `password_reset` token with this hash and, in the same
    /// transaction: sets the new password hash, ends every session of the
    /// user, spends their other reset tokens, marks the email verified (the
    /// token reached its mailbox) and logs `events`. Spent once, as
    /// [`UserStore::verify_email`].
    async fn reset_password(
        &self,
        hash: &str,
        password_hash: &str,
        at: OffsetDateTime,
        events: Vec<NewEvent>,
    ) -> StoreResult<Result<UserId, TokenRefusal>>;
    /// Deletes tokens that expired before `before`; returns how many.
    async fn purge_account_tokens(&self, before: OffsetDateTime) -> StoreResult<u64>;
}
