//! The rules of API keys, and the calls that apply them.

use shop_wire::KeyId;
use shop_wire::events::{EventData, KeyEvent};
use shop_wire::keys::{ApiKey, CreatedKey, NewKey, Scope};
use shop_wire::users::Role;
use time::OffsetDateTime;

use crate::auth::AuthUser;
use crate::auth::keys::new_secret;
use crate::services::error::{DomainError, DomainResult};
use crate::state::AppState;
use crate::store::{KeyRecord, NewEvent, now};

const NAME_MAX: usize = 100;

/// Checks a request for a key and returns its name and scopes, deduplicated in a stable order.
pub fn validate(request: &NewKey, at: OffsetDateTime) -> DomainResult<(String, Vec<Scope>)> {
    let name = request.name.trim();
    if name.is_empty() || name.chars().count() > NAME_MAX {
        return Err(DomainError::validation(
            "name",
            format!("must be 1-{NAME_MAX} characters"),
        ));
    }
    if request.scopes.is_empty() {
        return Err(DomainError::validation(
            "scopes",
            "name at least one scope, e.g. products:read",
        ));
    }
    if request.expires_at.is_some_and(|expires| expires <= at) {
        return Err(DomainError::validation(
            "expires_at",
            "must be in the future",
        ));
    }
    let mut scopes = request.scopes.clone();
    scopes.sort();
    scopes.dedup();
    Ok((name.to_owned(), scopes))
}

/// Whether `caller` may see or revoke `key`: its creator, or any admin.
pub fn may_manage(caller: &AuthUser, key: &ApiKey) -> bool {
    caller.role == Role::Admin || key.created_by == caller.user_id
}

pub async fn create(
    state: &AppState,
    caller: &AuthUser,
    request: NewKey,
) -> DomainResult<CreatedKey> {
    let at = now();
    let (name, scopes) = validate(&request, at)?;
    let secret = new_secret();
    let key = ApiKey {
        id: KeyId::generate(),
        name,
        scopes,
        prefix: secret.prefix,
        created_by: caller.user_id.clone(),
        created_at: at,
        last_used_at: None,
        expires_at: request.expires_at,
        revoked_at: None,
    };
    let event = NewEvent::now(EventData::KeyCreated(KeyEvent::from(&key)));
    state
        .store
        .insert_key(
            &KeyRecord {
                key: key.clone(),
                secret_hash: secret.hash,
            },
            vec![event],
        )
        .await?;
    Ok(CreatedKey {
        key,
        secret: secret.secret,
    })
}

pub async fn list(state: &AppState, caller: &AuthUser) -> DomainResult<Vec<ApiKey>> {
    let owner = (caller.role != Role::Admin).then_some(&caller.user_id);
    Ok(state.store.list_keys(owner).await?)
}

/// A key the caller may manage; another's is "not found", as it is not theirs to see.
pub async fn get(state: &AppState, caller: &AuthUser, id: &KeyId) -> DomainResult<ApiKey> {
    state
        .store
        .key(id)
        .await?
        .filter(|key| may_manage(caller, key))
        .ok_or_else(|| DomainError::not_found(format!("key {id}")))
}

/// Revokes a key at once; revoking a revoked key changes nothing.
pub async fn revoke(state: &AppState, caller: &AuthUser, id: &KeyId) -> DomainResult<ApiKey> {
    let key = get(state, caller, id).await?;
    if key.revoked_at.is_some() {
        return Ok(key);
    }
    let event = NewEvent::now(EventData::KeyRevoked(KeyEvent::from(&key)));
    state
        .store
        .revoke_key(id, now(), vec![event])
        .await?
        .ok_or_else(|| DomainError::not_found(format!("key {id}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(name: &str, scopes: &[&str], expires_at: Option<OffsetDateTime>) -> NewKey {
        NewKey {
            name: name.to_owned(),
            scopes: scopes.iter().map(|s| s.parse().expect("scope")).collect(),
            expires_at,
        }
    }

    #[test]
    fn a_key_needs_a_name_a_scope_and_a_future_expiry() {
        let at = now();
        assert!(validate(&request("", &["products:read"], None), at).is_err());
        assert!(validate(&request("erp", &[], None), at).is_err());
        assert!(validate(&request("erp", &["products:read"], Some(at)), at).is_err());
        let (name, scopes) = validate(
            &request(
                " erp ",
                &["orders:write", "products:read", "orders:write"],
                None,
            ),
            at,
        )
        .expect("valid");
        assert_eq!(name, "erp");
        assert_eq!(scopes.len(), 2, "duplicates are dropped");
    }
}
