//! Authentication and authorization: who is calling, and may they.
//!
//! [`AuthUser`] is an axum extractor: a handler that takes one is reachable
//! only with a valid, unexpired, unrevoked access token, and [`Staff`] and
//! [`Admin`] add the role check. No handler repeats this logic.
//!
//! The bearer may be an access token or an API key (`shop_sk_...`, see
//! [`keys`]): a key acts as its creator with the creator's current role,
//! and only on the routes its scopes cover ([`scopes`]). Either way the
//! extractor names the caller to the audit log of the request.

pub mod keys;
pub mod login_guard;
pub mod passwords;
pub mod scopes;
pub mod tokens;

use std::time::Duration;

use axum::extract::{FromRequestParts, OriginalUri};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use moka::sync::Cache;
use shop_wire::audit::{Actor, ActorKind};
use shop_wire::keys::is_key_secret;
use shop_wire::users::Role;
use shop_wire::{KeyId, SessionId, UserId};

use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::store::{SessionAuth, Store};

/// The caller of an authenticated route.
#[derive(Clone, Debug)]
pub struct AuthUser {
    pub user_id: UserId,
    /// The role as stored now, not as it was when the token was issued.
    pub role: Role,
    pub credential: Credential,
}

/// What the caller presented.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// An access token of this session (a person signed in).
    Session(SessionId),
    /// An API key made by the user.
    Key(KeyId),
}

impl AuthUser {
    /// The session of a signed-in person; `None` for an API key.
    pub fn session(&self) -> Option<&SessionId> {
        match &self.credential {
            Credential::Session(session) => Some(session),
            Credential::Key(_) => None,
        }
    }
}

/// The caller of a public route: nobody, or whoever the bearer token names.
/// A token that is sent must still be valid: a bad one is refused, not ignored.
#[derive(Clone, Debug)]
pub struct Viewer(pub Option<AuthUser>);

impl Viewer {
    pub fn is_staff(&self) -> bool {
        self.0.as_ref().is_some_and(|user| user.role.is_staff())
    }
}

/// A caller with staff rights (staff or admin).
#[derive(Clone, Debug)]
pub struct Staff(pub AuthUser);

/// A caller with admin rights.
#[derive(Clone, Debug)]
pub struct Admin(pub AuthUser);

/// Session state by id, so that checking a token does not cost a database
/// read on every request. Every revocation and role change in this process
/// invalidates the entry; the TTL bounds how long another node's revocation
/// could go unseen once several nodes share a database.
#[derive(Clone)]
pub struct SessionCache(Cache<SessionId, SessionAuth>);

impl SessionCache {
    pub fn new() -> Self {
        SessionCache(
            Cache::builder()
                .max_capacity(100_000)
                .time_to_live(Duration::from_secs(30))
                .build(),
        )
    }

    pub fn forget(&self, session: &SessionId) {
        self.0.invalidate(session);
    }

    /// Drops every entry, after a change that touches many sessions (a role or password change).
    pub fn forget_all(&self) {
        self.0.invalidate_all();
    }

    async fn get(&self, store: &dyn Store, session: &SessionId) -> AppResult<Option<SessionAuth>> {
        if let Some(auth) = self.0.get(session) {
            return Ok(Some(auth));
        }
        let auth = store.session_auth(session).await?;
        if let Some(auth) = &auth {
            self.0.insert(session.clone(), auth.clone());
        }
        Ok(auth)
    }
}

impl Default for SessionCache {
    fn default() -> Self {
        Self::new()
    }
}

/// The role `user` holds now through `session`; `None` once the session is
/// revoked, expired, or not theirs. Long-lived responses (the event stream)
/// ask again while they run, not only when they start.
pub async fn session_role(
    state: &AppState,
    session: &SessionId,
    user: &UserId,
) -> AppResult<Option<Role>> {
    let auth = state.sessions.get(state.store.as_ref(), session).await?;
    let now = time::OffsetDateTime::now_utc();
    Ok(auth
        .filter(|s| !s.revoked && s.expires_at > now && &s.user_id == user)
        .map(|s| s.role))
}

/// The role the caller holds now through the credential it presented;
/// `None` once that session or key has ended, or the key has expired.
pub async fn credential_role(state: &AppState, caller: &AuthUser) -> AppResult<Option<Role>> {
    match &caller.credential {
        Credential::Session(session) => session_role(state, session, &caller.user_id).await,
        Credential::Key(id) => {
            let now = time::OffsetDateTime::now_utc();
            let live = state.store.key(id).await?.is_some_and(|key| {
                key.revoked_at.is_none() && key.expires_at.is_none_or(|at| at > now)
            });
            if !live {
                return Ok(None);
            }
            Ok(state
                .store
                .user(&caller.user_id)
                .await?
                .map(|record| record.user.role))
        }
    }
}

/// The bearer token of a request, if it has one. The scheme is
/// case-insensitive and spaces around the token are ignored, as RFC 9110 allows.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let token = bearer_token(&parts.headers).ok_or_else(|| {
            AppError::unauthenticated(
                "unauthenticated",
                "this route needs an access token in `Authorization: Bearer <token>`",
            )
        })?;
        if is_key_secret(token) {
            // Nested routers see their own part of the path; the scope table wants all of it.
            let path = parts
                .extensions
                .get::<OriginalUri>()
                .map_or(parts.uri.path(), |uri| uri.0.path());
            return keys::authenticate(state, token, &parts.method, path).await;
        }
        let claims = state.tokens.verify(token)?;
        let auth = state
            .sessions
            .get(state.store.as_ref(), &claims.sid)
            .await?;
        let now = time::OffsetDateTime::now_utc();
        match auth.filter(|s| !s.revoked && s.expires_at > now && s.user_id == claims.sub) {
            Some(session) => {
                crate::store::audit::set_actor(Actor {
                    kind: ActorKind::User,
                    id: Some(claims.sub.to_string()),
                    email: Some(session.email),
                });
                Ok(AuthUser {
                    user_id: claims.sub,
                    role: session.role,
                    credential: Credential::Session(claims.sid),
                })
            }
            None => Err(AppError::unauthenticated(
                "session_revoked",
                "the session of this token has ended; log in again",
            )),
        }
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if !parts.headers.contains_key(AUTHORIZATION) {
            return Ok(Viewer(None));
        }
        AuthUser::from_request_parts(parts, state)
            .await
            .map(|user| Viewer(Some(user)))
    }
}

impl FromRequestParts<AppState> for Staff {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        if user.role.is_staff() {
            Ok(Staff(user))
        } else {
            Err(AppError::forbidden(
                "this route needs the staff or admin role",
            ))
        }
    }
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        if user.role == Role::Admin {
            Ok(Admin(user))
        } else {
            Err(AppError::forbidden("this route needs the admin role"))
        }
    }
}
