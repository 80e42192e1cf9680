//! API keys as credentials: making a secret, and checking one on a request.
//!
//! A secret is `shop_sk_` and 32 random bytes (hex). Only its SHA-256 is
//! stored: the secret is high-entropy, so a fast hash is enough (nobody can
//! guess 256 bits, with or without a slow hash), and a lookup by hash costs
//! one indexed read instead of an argon2 run on every request.
//!
//! A checked key is cached by hash for at most [`CACHE_TTL`], like sessions;
//! a revocation or role change in this process empties the cache at once
//! (see [`KeyCache::forget_all`]), so a revoked key stops on its next request.

use std::time::Duration;

use axum::http::Method;
use moka::sync::Cache;
use rand::RngCore;
use shop_wire::audit::{Actor, ActorKind};
use shop_wire::events::EventKind;
use shop_wire::keys::{SECRET_PREFIX, granted};
use shop_wire::{Event, KeyId};
use time::OffsetDateTime;

use super::scopes::{self, Need};
use super::tokens::sha256_hex;
use super::{AuthUser, Credential};
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::store::KeyAuth;

/// How long a checked key may be trusted without asking the store again.
pub const CACHE_TTL: Duration = Duration::from_secs(30);
/// `last_used_at` is written at most this often per key.
pub const TOUCH_EVERY: Duration = Duration::from_secs(60);
/// Characters of the secret shown as its prefix (`shop_sk_` and 8 more).
const PREFIX_LEN: usize = SECRET_PREFIX.len() + 8;

/// A fresh secret, its visible prefix and the hash that is stored.
pub struct NewSecret {
    pub secret: String,
    pub prefix: String,
    pub hash: String,
}

pub fn new_secret() -> NewSecret {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret = format!("{SECRET_PREFIX}{}", hex::encode(bytes));
    NewSecret {
        prefix: secret[..PREFIX_LEN].to_owned(),
        hash: sha256_hex(&secret),
        secret,
    }
}

#[derive(Clone)]
pub struct KeyCache {
    by_hash: Cache<String, KeyAuth>,
    /// Keys whose `last_used_at` was written within [`TOUCH_EVERY`].
    touched: Cache<KeyId, ()>,
}

impl KeyCache {
    pub fn new() -> Self {
        KeyCache {
            by_hash: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(CACHE_TTL)
                .build(),
            touched: Cache::builder()
                .max_capacity(100_000)
                .time_to_live(TOUCH_EVERY)
                .build(),
        }
    }

    /// After a revocation or a creator's role change.
    pub fn forget_all(&self) {
        self.by_hash.invalidate_all();
    }

    /// Forgets every checked key after a committed event that may change
    /// what one may do: a revocation, a role change. Called by the store's
    /// commit feed before the write that made it answers.
    pub fn on_event(&self, event: &Event) {
        if matches!(
            event.event_kind(),
            Some(EventKind::KeyRevoked | EventKind::UserRoleChanged) | None
        ) {
            self.forget_all();
        }
    }
}

impl Default for KeyCache {
    fn default() -> Self {
        Self::new()
    }
}

fn refused(code: &'static str, message: String, details: serde_json::Value) -> AppError {
    AppError::Detailed {
        status: axum::http::StatusCode::FORBIDDEN,
        code,
        message,
        details,
    }
}

/// The caller a key secret names, for a request `method path`: 401 when the
/// key is unknown, revoked or expired; 403 when it lacks the route's scope.
pub async fn authenticate(
    state: &AppState,
    secret: &str,
    method: &Method,
    path: &str,
) -> AppResult<AuthUser> {
    let hash = sha256_hex(secret);
    let auth = match state.keys.by_hash.get(&hash) {
        Some(auth) => auth,
        None => {
            let found = state.store.key_auth(&hash).await?.ok_or_else(|| {
                AppError::unauthenticated("invalid_api_key", "the API key is not valid")
            })?;
            state.keys.by_hash.insert(hash, found.clone());
            found
        }
    };
    if auth.revoked {
        return Err(AppError::unauthenticated(
            "api_key_revoked",
            "the API key has been revoked",
        ));
    }
    let now = OffsetDateTime::now_utc();
    if auth.expires_at.is_some_and(|at| at <= now) {
        return Err(AppError::unauthenticated(
            "api_key_expired",
            "the API key has expired; make a new one",
        ));
    }
    match scopes::required(method, path) {
        Need::Refused => {
            return Err(refused(
                "key_not_allowed",
                "API keys cannot use this route; sign in as a person".to_owned(),
                serde_json::json!({}),
            ));
        }
        Need::Scope(needed) if !granted(&auth.scopes, needed) => {
            return Err(refused(
                "insufficient_scope",
                format!("this API key lacks the scope {needed}"),
                serde_json::json!({ "required_scope": needed.to_string() }),
            ));
        }
        Need::Scope(_) => {}
    }
    touch(state, &auth.id);
    crate::store::audit::set_actor(Actor {
        kind: ActorKind::ApiKey,
        id: Some(auth.id.to_string()),
        email: Some(auth.email.clone()),
    });
    Ok(AuthUser {
        user_id: auth.user_id,
        role: auth.role,
        credential: Credential::Key(auth.id),
    })
}

/// Records the key's use, at most once per [`TOUCH_EVERY`], off the request's path.
fn touch(state: &AppState, id: &KeyId) {
    if state.keys.touched.contains_key(id) {
        return;
    }
    state.keys.touched.insert(id.clone(), ());
    let (store, id) = (state.store.clone(), id.clone());
    tokio::spawn(async move {
        if let Err(err) = store.touch_keys(vec![(id, crate::store::now())]).await {
            tracing::warn!(error = %err, "recording an API key's use failed");
        }
    });
}
