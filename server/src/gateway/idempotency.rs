//! `Idempotency-Key` for every mutating route.
//!
//! The first request with a key claims it durably, runs, and stores its
//! response; a retry with the same key and the same request gets that stored
//! response back (marked `Idempotent-Replayed: true`) without running again;
//! the same key with a different request is a 409.
//!
//! A key belongs to its caller, the [`Principal`]: the user a valid access
//! token names, the anonymous cart an `X-Cart-Token` names, or nobody
//! ("anonymous"). Keys are stored scoped to the principal, so two callers who
//! pick the same key never see each other's responses nor a 409 from each
//! other, and a retry after the access token was refreshed is still the same
//! caller and replays. The client's address is not a principal: addresses
//! are shared (NAT, proxies) and change (mobile), so anonymous callers
//! without a cart share the "anonymous" scope, as all of them did before.
//!
//! A request is the same when its method, path, query, principal and body
//! are. Server errors and 429s are not stored: the client may retry them for
//! real. Responses that carry a credential (login and refresh tokens, a new
//! anonymous cart's token) are marked [`CarriesSecret`] by their handlers
//! and never stored: the table would otherwise hold live secrets for a day.
//! A claim whose request ends without a response (a panic, or the server
//! shutting down mid-request) is released when the request ends.

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use shop_wire::UserId;
use shop_wire::cart::CART_TOKEN_HEADER;
use shop_wire::keys::is_key_secret;

use super::completion::is_mutating;
use crate::auth::bearer_token;
use crate::error::AppError;
use crate::state::AppState;
use crate::store::{IdempotencyBegin, StoredResponse};

pub const HEADER: &str = "idempotency-key";
pub const REPLAYED_HEADER: &str = "idempotent-replayed";
/// Responses are kept for replay this long.
pub const RETENTION: time::Duration = time::Duration::hours(24);
/// A claim older than this whose request never finished (the process died) can be retried.
const STALE_CLAIM: time::Duration = time::Duration::minutes(5);

/// A response extension: the response carries a credential and is never
/// stored for replay; its key is released, so a retry runs again.
#[derive(Clone, Copy, Debug)]
pub struct CarriesSecret;

/// Whose key it is.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Principal {
    /// The user a valid access token names, whichever token of theirs it is.
    User(UserId),
    /// An API key, by the SHA-256 of its secret: one secret per key, so
    /// this is the key (told apart without a database read), and a key's
    /// calls never replay its creator's, nor the other way round.
    Key(String),
    /// A bearer token that is not valid (expired, forged): scoped by its
    /// hash, so it shares nothing with anyone; its route will refuse it.
    Token(String),
    /// An anonymous cart session, by the hash of its `X-Cart-Token`.
    Cart(String),
    Anonymous,
}

impl Principal {
    fn of(state: &AppState, headers: &HeaderMap) -> Principal {
        if let Some(token) = bearer_token(headers) {
            if is_key_secret(token) {
                return Principal::Key(hash_hex(token.as_bytes()));
            }
            return match state.tokens.verify(token) {
                Ok(claims) => Principal::User(claims.sub),
                Err(_) => Principal::Token(hash_hex(token.as_bytes())),
            };
        }
        match headers
            .get(CART_TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            Some(cart) => Principal::Cart(hash_hex(cart.as_bytes())),
            None => Principal::Anonymous,
        }
    }

    /// The scope keys are stored under; it never contains a space, which a key cannot either.
    fn scope(&self) -> String {
        match self {
            Principal::User(id) => format!("user:{id}"),
            Principal::Key(hash) => format!("key:{hash}"),
            Principal::Token(hash) => format!("token:{hash}"),
            Principal::Cart(hash) => format!("cart:{hash}"),
            Principal::Anonymous => "anonymous".to_owned(),
        }
    }
}

fn hash_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

fn fingerprint(method: &Method, uri: &str, scope: &str, body: &[u8]) -> String {
    let mut hash = Sha256::new();
    for part in [method.as_str().as_bytes(), uri.as_bytes(), scope.as_bytes()] {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hash.update(body);
    hex::encode(hash.finalize())
}

fn valid_key(value: &HeaderValue) -> Option<String> {
    let key = value.to_str().ok()?;
    (!key.is_empty() && key.len() <= 255 && key.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| key.to_owned())
}

/// A key claimed for a running request: released when dropped unarmed,
/// i.e. when the request ends without [`Claim::settle`] (a panic unwinding
/// through it, or the server stopping the request).
struct Claim {
    state: AppState,
    key: Option<String>,
}

impl Claim {
    /// The request ended with a response: the caller stores or releases it.
    fn settle(mut self) -> String {
        self.key.take().expect("a claim is settled once")
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let Some(key) = self.key.take() else {
            return;
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let store = self.state.store.clone();
        runtime.spawn(async move {
            if let Err(err) = store.abandon_idempotent(&key).await {
                tracing::warn!(error = %err, "releasing an unfinished idempotency claim failed");
            }
        });
    }
}

pub async fn middleware(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, AppError> {
    let mutating = is_mutating(request.method());
    let Some(raw_key) = request.headers().get(HEADER).filter(|_| mutating) else {
        return Ok(next.run(request).await);
    };
    let key = valid_key(raw_key).ok_or_else(|| {
        AppError::validation(
            HEADER,
            "must be 1-255 visible ASCII characters, e.g. a UUID",
        )
    })?;
    let (parts, body) = request.into_parts();
    let body = to_bytes(body, state.config.body_limit_bytes)
        .await
        .map_err(|_| AppError::Status {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: "payload_too_large",
            message: "the request body is larger than the server accepts".to_owned(),
        })?;
    let scope = Principal::of(&state, &parts.headers).scope();
    let uri = parts.uri.path_and_query().map_or("", |pq| pq.as_str());
    let print = fingerprint(&parts.method, uri, &scope, &body);
    let scoped_key = format!("{scope} {key}");

    match state
        .store
        .begin_idempotent(&scoped_key, &print, STALE_CLAIM)
        .await?
    {
        IdempotencyBegin::Replay(stored) => Ok(replay(stored)),
        IdempotencyBegin::Mismatch => Err(AppError::conflict(
            "idempotency_key_reused",
            "this Idempotency-Key was already used for a different request",
        )),
        IdempotencyBegin::InProgress => Err(AppError::conflict(
            "idempotency_in_progress",
            "a request with this Idempotency-Key is still running; retry shortly",
        )),
        IdempotencyBegin::Started => {
            let claim = Claim {
                state: state.clone(),
                key: Some(scoped_key),
            };
            let response = next.run(Request::from_parts(parts, Body::from(body))).await;
            finish(&state, &claim.settle(), response).await
        }
    }
}

async fn finish(state: &AppState, key: &str, response: Response) -> Result<Response, AppError> {
    let status = response.status();
    let secret = response.extensions().get::<CarriesSecret>().is_some();
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS || secret {
        state.store.abandon_idempotent(key).await?;
        return Ok(response);
    }
    // The request has run: its response must be kept whatever its size, or a
    // retry would run it a second time.
    let (parts, body) = response.into_parts();
    let bytes = to_bytes(body, usize::MAX)
        .await
        .map_err(AppError::internal)?;
    let stored = StoredResponse {
        status: status.as_u16(),
        content_type: parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: bytes.to_vec(),
    };
    state.store.complete_idempotent(key, &stored).await?;
    Ok(Response::from_parts(parts, Body::from(bytes)))
}

fn replay(stored: StoredResponse) -> Response {
    let status = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    let mut response = (status, stored.body).into_response();
    let headers = response.headers_mut();
    if let Some(value) = stored
        .content_type
        .and_then(|ct| HeaderValue::from_str(&ct).ok())
    {
        headers.insert(header::CONTENT_TYPE, value);
    }
    headers.insert(REPLAYED_HEADER, HeaderValue::from_static("true"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_separates_callers_and_bodies() {
        let alice = Principal::User(UserId::generate()).scope();
        let bob = Principal::User(UserId::generate()).scope();
        let base = fingerprint(&Method::POST, "/api/x", &alice, b"{}");
        assert_eq!(base, fingerprint(&Method::POST, "/api/x", &alice, b"{}"));
        assert_ne!(base, fingerprint(&Method::POST, "/api/x", &bob, b"{}"));
        assert_ne!(base, fingerprint(&Method::POST, "/api/x", &alice, b"{ }"));
        assert_ne!(base, fingerprint(&Method::POST, "/api/y", &alice, b"{}"));
    }

    #[test]
    fn scopes_never_collide_across_kinds_of_principal() {
        let hash = hash_hex(b"x");
        let scopes = [
            Principal::Token(hash.clone()).scope(),
            Principal::Cart(hash).scope(),
            Principal::Anonymous.scope(),
        ];
        assert!(scopes.iter().all(|s| !s.contains(' ')));
        assert_ne!(scopes[0], scopes[1]);
    }
}
