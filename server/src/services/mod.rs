//! The services behind the gateway, one module each, plus the cross-cutting
//! routes every service shares (health, events).

pub mod events;
pub mod health;
pub mod inventory;
pub mod notifications;
pub mod products;
pub mod search;
pub mod users;

use crate::auth::AuthUser;
use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// The largest page any list route returns.
pub const MAX_PAGE: u32 = 500;

/// A list route's `limit`: 50 when absent, refused outside 1..=[`MAX_PAGE`].
pub fn page_limit(limit: Option<u32>) -> AppResult<u32> {
    match limit.unwrap_or(50) {
        limit @ 1..=MAX_PAGE => Ok(limit),
        _ => Err(AppError::validation(
            "limit",
            format!("must be between 1 and {MAX_PAGE}"),
        )),
    }
}

/// Who made a change, as ledgers record it: the caller's email.
pub async fn actor(state: &AppState, caller: &AuthUser) -> AppResult<Option<String>> {
    let user = users::domain::get_user(state, &caller.user_id).await?;
    Ok(Some(user.email))
}

/// The eight services of SPEC section 2, by the name in their base path
/// `/api/<name>`; metrics and health are labelled with these.
pub use shop_wire::health::SERVICES as NAMES;
