//! The account rules a store applies inside its transaction: the shop
//! always keeps an admin, a refresh secret works once, an emailed token
//! works once and only for its purpose, and orders placed for an address
//! join an account only once its owner proved the address theirs.
//!
//! A store loads (and, on a networked database, locks) the rows, calls these,
//! and writes what they decide; their tests need no database.

use shop_wire::users::Role;
use time::OffsetDateTime;

use crate::store::{AccountToken, SessionRecord, TokenPurpose};

/// Why a role cannot change.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RoleRefusal {
    /// It would demote the only admin and leave the shop with none.
    LastAdmin,
}

/// Whether a user with role `current` may become `to` while the shop has
/// `admins` admins (counted with the rows locked, so two demotions cannot
/// both see the other admin).
pub fn check_role_change(current: Role, to: Role, admins: u64) -> Result<(), RoleRefusal> {
    if current == Role::Admin && to != Role::Admin && admins <= 1 {
        return Err(RoleRefusal::LastAdmin);
    }
    Ok(())
}

/// What presenting a refresh secret does to its session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RefreshDecision {
    /// The secret is current: replace it and extend the session.
    Rotate,
    /// The secret was current once and has been replaced: someone replayed a
    /// used token, so the session is revoked to cut off whoever holds it.
    RevokeForReuse,
    /// No such session, or it was revoked or has expired: nothing changes.
    Inactive,
}

/// Decides a refresh from the session as loaded and the hash of the secret presented.
pub fn decide_refresh(
    session: Option<&SessionRecord>,
    presented_hash: &str,
    at: OffsetDateTime,
) -> RefreshDecision {
    match session {
        Some(session) if session.is_active(at) => {
            if session.refresh_hash == presented_hash {
                RefreshDecision::Rotate
            } else {
                RefreshDecision::RevokeForReuse
            }
        }
        _ => RefreshDecision::Inactive,
    }
}

/// Why an emailed token does nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenRefusal {
    /// No such token, or one made for another purpose (a verification
    /// token never resets a password).
    Unknown,
    Expired,
    /// It was spent already: each token works once.
    Used,
}

/// Whether `token` (as loaded by its hash) may be spent for `purpose` at `at`.
pub fn check_token(
    token: Option<&AccountToken>,
    purpose: TokenPurpose,
    at: OffsetDateTime,
) -> Result<(), TokenRefusal> {
    let Some(token) = token.filter(|t| t.purpose == purpose) else {
        return Err(TokenRefusal::Unknown);
    };
    if token.used_at.is_some() {
        return Err(TokenRefusal::Used);
    }
    if token.expires_at <= at {
        return Err(TokenRefusal::Expired);
    }
    Ok(())
}

/// The address under which orders placed without the account (by a guest,
/// or by staff for a customer) belong to `user`: its email once verified,
/// and none before, so registering someone else's address shows nothing
/// of their orders.
pub fn guest_orders_email(user: &shop_wire::users::User) -> Option<&str> {
    user.email_verified.then_some(user.email.as_str())
}

#[cfg(test)]
mod tests {
    use shop_wire::{SessionId, UserId};
    use time::Duration;

    use super::*;

    fn token(purpose: TokenPurpose, at: OffsetDateTime) -> AccountToken {
        AccountToken {
            hash: "h".to_owned(),
            user_id: UserId::generate(),
            purpose,
            created_at: at,
            expires_at: at + Duration::minutes(30),
            used_at: None,
        }
    }

    #[test]
    fn a_token_works_once_for_its_purpose_before_it_expires() {
        let at = crate::store::now();
        let fresh = token(TokenPurpose::PasswordReset, at);
        assert_eq!(
            check_token(Some(&fresh), TokenPurpose::PasswordReset, at),
            Ok(())
        );
        assert_eq!(
            check_token(Some(&fresh), TokenPurpose::VerifyEmail, at),
            Err(TokenRefusal::Unknown)
        );
        assert_eq!(
            check_token(None, TokenPurpose::PasswordReset, at),
            Err(TokenRefusal::Unknown)
        );
        assert_eq!(
            check_token(Some(&fresh), TokenPurpose::PasswordReset, fresh.expires_at),
            Err(TokenRefusal::Expired)
        );
        let spent = AccountToken {
            used_at: Some(at),
            ..fresh
        };
        assert_eq!(
            check_token(Some(&spent), TokenPurpose::PasswordReset, at),
            Err(TokenRefusal::Used)
        );
    }

    #[test]
    fn guest_orders_join_only_a_verified_address() {
        let at = crate::store::now();
        let mut user = shop_wire::users::User {
            id: UserId::generate(),
            email: "carol@example.com".to_owned(),
            name: "Carol".to_owned(),
            role: Role::Customer,
            addresses: vec![],
            email_verified: false,
            created_at: at,
            updated_at: at,
        };
        assert_eq!(guest_orders_email(&user), None);
        user.email_verified = true;
        assert_eq!(guest_orders_email(&user), Some("carol@example.com"));
    }

    #[test]
    fn the_only_admin_keeps_the_role() {
        assert_eq!(
            check_role_change(Role::Admin, Role::Staff, 1),
            Err(RoleRefusal::LastAdmin)
        );
        assert_eq!(
            check_role_change(Role::Admin, Role::Customer, 0),
            Err(RoleRefusal::LastAdmin)
        );
        assert_eq!(check_role_change(Role::Admin, Role::Staff, 2), Ok(()));
        assert_eq!(check_role_change(Role::Admin, Role::Admin, 1), Ok(()));
        assert_eq!(check_role_change(Role::Staff, Role::Customer, 1), Ok(()));
    }

    fn session(hash: &str, at: OffsetDateTime) -> SessionRecord {
        SessionRecord {
            id: SessionId::generate(),
            user_id: UserId::generate(),
            refresh_hash: hash.to_owned(),
            user_agent: None,
            ip: None,
            created_at: at,
            last_used_at: at,
            expires_at: at + Duration::days(1),
            revoked_at: None,
        }
    }

    #[test]
    fn a_refresh_secret_works_once_and_its_replay_ends_the_session() {
        let at = crate::store::now();
        let live = session("current", at);
        assert_eq!(
            decide_refresh(Some(&live), "current", at),
            RefreshDecision::Rotate
        );
        assert_eq!(
            decide_refresh(Some(&live), "replaced", at),
            RefreshDecision::RevokeForReuse
        );
        assert_eq!(
            decide_refresh(None, "current", at),
            RefreshDecision::Inactive
        );
    }

    #[test]
    fn an_ended_session_refreshes_nothing_and_revokes_nothing() {
        let at = crate::store::now();
        let revoked = SessionRecord {
            revoked_at: Some(at),
            ..session("current", at)
        };
        let expired = SessionRecord {
            expires_at: at,
            ..session("current", at)
        };
        for ended in [revoked, expired] {
            assert_eq!(
                decide_refresh(Some(&ended), "current", at),
                RefreshDecision::Inactive
            );
            assert_eq!(
                decide_refresh(Some(&ended), "old", at),
                RefreshDecision::Inactive
            );
        }
    }
}
