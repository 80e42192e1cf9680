//! The services behind the gateway, one module each, plus the cross-cutting
//! routes every service shares (health, events).

pub mod audit;
pub mod cart;
pub mod documents;
pub mod error;
pub mod events;
pub mod health;
pub mod inventory;
pub mod keys;
pub mod notifications;
pub mod orders;
pub mod payments;
pub mod pricing;
pub mod products;
pub mod reports;
pub mod returns;
pub mod search;
pub mod users;
pub mod webhooks;

use axum::http::{HeaderMap, header};

use crate::auth::AuthUser;
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use error::{DomainError, DomainResult};

/// The largest page any list route returns.
pub const MAX_PAGE: u32 = 500;

/// A list route's `limit`: 50 when absent, refused outside 1..=[`MAX_PAGE`].
pub fn page_limit(limit: Option<u32>) -> DomainResult<u32> {
    match limit.unwrap_or(50) {
        limit @ 1..=MAX_PAGE => Ok(limit),
        _ => Err(DomainError::validation(
            "limit",
            format!("must be between 1 and {MAX_PAGE}"),
        )),
    }
}

/// The version an `If-Match` header names (`3`, `"3"` or `W/"3"`), for optimistic updates.
pub fn if_match_version(headers: &HeaderMap, what: &str) -> AppResult<Option<u64>> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    value
        .to_str()
        .ok()
        .map(|v| v.trim().trim_start_matches("W/").trim_matches('"'))
        .and_then(|v| v.parse().ok())
        .map(Some)
        .ok_or_else(|| {
            AppError::validation(
                "If-Match",
                format!("must be the {what}'s version, e.g. \"3\""),
            )
        })
}

/// The longest free-text note (a refund's reason, a status change's note).
const MAX_NOTE: usize = 500;

/// An optional note as people type it: trimmed, blank is none, at most
/// [`MAX_NOTE`] characters and no control characters.
pub fn optional_note(field: &str, note: Option<String>) -> DomainResult<Option<String>> {
    let Some(note) = note.map(|n| n.trim().to_owned()).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if note.chars().count() > MAX_NOTE || note.chars().any(char::is_control) {
        return Err(DomainError::validation(
            field,
            format!("must be at most {MAX_NOTE} characters, without control characters"),
        ));
    }
    Ok(Some(note))
}

/// Who made a change, as ledgers record it: the caller's email.
pub async fn actor(state: &AppState, caller: &AuthUser) -> DomainResult<Option<String>> {
    let user = users::domain::get_user(state, &caller.user_id).await?;
    Ok(Some(user.email))
}

/// The eight services of SPEC section 2, by the name in their base path
/// `/api/<name>`; metrics and health are labelled with these.
pub use shop_wire::health::SERVICES as NAMES;
