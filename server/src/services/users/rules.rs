//! The account rules a store applies inside its transaction: the shop
//! always keeps an admin, and a refresh secret works once.
//!
//! A store loads (and, on a networked database, locks) the rows, calls these,
//! and writes what they decide; their tests need no database.

use shop_wire::users::Role;
use time::OffsetDateTime;

use crate::store::SessionRecord;

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

#[cfg(test)]
mod tests {
    use shop_wire::{SessionId, UserId};
    use time::Duration;

    use super::*;

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
