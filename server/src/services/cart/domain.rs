//! The cart's rules: who may see and change a cart, what a line may be,
//! and the errors each refusal becomes. The arithmetic of lines and their
//! stock happens in the store, in one transaction per change.

use std::net::IpAddr;

use rand::RngCore;
use serde_json::json;
use shop_wire::UserId;
use shop_wire::addresses::{CartCheckout, SetCartCheckout};
use shop_wire::cart::{Cart, CartId, CartStatus, LineRequest, NewCart};
use shop_wire::pricing::PostalAddress;

use crate::auth::AuthUser;
use crate::auth::tokens::sha256_hex;
use crate::services::actor;
use crate::services::cart::rules::{MAX_LINES, QuantityLimits};
use crate::services::error::{DomainError, DomainResult};
use crate::services::pricing::address::check_address;
use crate::services::pricing::address_book::{AddressChoice, choose, resolve};
use crate::services::pricing::tables::check_code;
use crate::services::products::domain::{MAX_STOCK, check_sku};
use crate::state::AppState;
use crate::store::{
    CartChange, CartRecord, CartWrite, ChangeContext, LineRefusal, NewCartRecord, ReserveItem,
    StoreError, now,
};

use crate::services::orders::events::COMMERCE_EVENTS;

/// Who is asking for a cart: a signed-in user, and/or the holder of an
/// anonymous cart's token, from a client address.
#[derive(Clone, Debug, Default)]
pub struct CartAccess {
    pub user: Option<AuthUser>,
    pub token: Option<String>,
    pub client: Option<IpAddr>,
}

impl CartAccess {
    /// Whether the caller owns the cart: it is their login's, or they hold its token.
    fn owns(&self, record: &CartRecord) -> bool {
        if let Some(user) = &self.user
            && record.cart.user_id.as_ref() == Some(&user.user_id)
        {
            return true;
        }
        match (&self.token, &record.token_hash) {
            (Some(token), Some(hash)) => sha256_hex(token) == *hash,
            _ => false,
        }
    }

    /// Staff see any cart (to help a customer), but only its owner changes
    /// it: a customer's held stock and the prices they saw are theirs.
    fn may(&self, record: &CartRecord, change: bool) -> bool {
        let staff = self.user.as_ref().is_some_and(|u| u.role.is_staff());
        self.owns(record) || (staff && !change)
    }
}

/// The error of a line that cannot be added, changed or ordered.
pub fn refusal_error(refusal: LineRefusal) -> DomainError {
    match refusal {
        LineRefusal::UnknownSku(sku) => DomainError::Missing {
            code: "unknown_sku",
            message: format!("no product has the SKU {sku}"),
        },
        LineRefusal::Archived(sku) => DomainError::Conflict {
            code: "product_archived",
            message: format!("{sku} is archived and can no longer be sold"),
            details: json!({ "sku": sku }),
        },
        LineRefusal::Insufficient {
            sku,
            available,
            requested,
        } => DomainError::Conflict {
            code: "insufficient_stock",
            message: format!("{sku} has {available} available; {requested} requested"),
            details: json!({ "sku": sku, "available": available, "requested": requested }),
        },
        LineRefusal::CurrencyMismatch {
            sku,
            expected,
            found,
        } => DomainError::Conflict {
            code: "currency_mismatch",
            message: format!(
                "{sku} is priced in {found}, but the cart is in {expected}; a cart holds one currency"
            ),
            details: json!({ "sku": sku, "expected": expected, "found": found }),
        },
        LineRefusal::NoLine(sku) => DomainError::Missing {
            code: "not_in_cart",
            message: format!("the cart has no line for {sku}"),
        },
        LineRefusal::TooManyLines(max) => DomainError::Conflict {
            code: "cart_full",
            message: format!("a cart holds at most {max} different products"),
            details: json!({ "max_lines": max }),
        },
        LineRefusal::LineLimit {
            sku,
            max,
            requested,
        } => DomainError::Conflict {
            code: "quantity_limit",
            message: format!("at most {max} of {sku} in one cart or order; {requested} requested"),
            details: json!({ "sku": sku, "max": max, "requested": requested }),
        },
        LineRefusal::CartLimit { max, requested } => DomainError::Conflict {
            code: "quantity_limit",
            message: format!("a cart holds at most {max} units in all; {requested} requested"),
            details: json!({ "max": max, "requested": requested }),
        },
        // Carts expire within the cart TTL; a minute is a fair first wait.
        LineRefusal::TooManyCarts(max) => DomainError::Throttled {
            code: "too_many_carts",
            message: format!(
                "this address already holds {max} active carts; use one of them, or wait for one to expire"
            ),
            retry_after: std::time::Duration::from_secs(60),
        },
    }
}

/// The error for a cart that can no longer change.
pub fn not_active(id: &str, status: CartStatus) -> DomainError {
    let (code, message) = match status {
        CartStatus::Expired => (
            "cart_expired",
            format!("cart {id} expired and its stock was released; start a new cart"),
        ),
        _ => (
            "cart_not_active",
            format!("cart {id} is {status} and can no longer change"),
        ),
    };
    DomainError::Conflict {
        code,
        message,
        details: json!({ "status": status }),
    }
}

fn version_conflict(id: &str, expected: Option<u64>, current: u64) -> DomainError {
    DomainError::Conflict {
        code: "version_conflict",
        message: format!(
            "cart {id} is at version {current}, not {}; reload it and try again",
            expected.map_or_else(|| "the one expected".to_owned(), |v| v.to_string())
        ),
        details: json!({ "current_version": current }),
    }
}

/// Checks a SKU and quantity as a line of a cart or an order asks for them.
pub fn check_line(sku: &str, quantity: i64, allow_zero: bool) -> DomainResult<ReserveItem> {
    check_sku(sku).map_err(|problem| DomainError::validation("sku", problem))?;
    let min = i64::from(!allow_zero);
    if !(min..=MAX_STOCK).contains(&quantity) {
        return Err(DomainError::validation(
            "quantity",
            format!("must be between {min} and {MAX_STOCK}"),
        ));
    }
    Ok(ReserveItem {
        sku: sku.to_owned(),
        quantity,
    })
}

fn check_lines(lines: &[LineRequest]) -> DomainResult<Vec<ReserveItem>> {
    if lines.len() > MAX_LINES {
        return Err(DomainError::validation(
            "items",
            format!("a cart has at most {MAX_LINES} lines"),
        ));
    }
    lines
        .iter()
        .map(|line| check_line(&line.sku, line.quantity, false))
        .collect()
}

/// The shop's caps on what one cart or order may hold.
pub fn limits(state: &AppState) -> QuantityLimits {
    QuantityLimits {
        per_line: state.config.commerce.max_line_quantity,
        per_cart: state.config.commerce.max_cart_quantity,
    }
}

fn context(state: &AppState, actor: Option<String>) -> ChangeContext {
    ChangeContext {
        actor,
        expires_at: now() + time::Duration::seconds(state.config.commerce.cart_ttl_seconds as i64),
        limits: limits(state),
    }
}

async fn actor_of(state: &AppState, access: &CartAccess) -> DomainResult<Option<String>> {
    match &access.user {
        Some(user) => actor(state, user).await,
        None => Ok(None),
    }
}

fn written(id: &str, answer: CartWrite, expected: Option<u64>) -> DomainResult<Cart> {
    match answer {
        CartWrite::Written(record) | CartWrite::Unchanged(record) => Ok(record.cart),
        CartWrite::NotFound => Err(DomainError::not_found(format!("cart {id}"))),
        CartWrite::NotActive(status) => Err(not_active(id, status)),
        CartWrite::VersionConflict { current } => Err(version_conflict(id, expected, current)),
        CartWrite::Refused(refusal) => Err(refusal_error(refusal)),
    }
}

/// A new anonymous cart's secret: 256 random bits, shown once.
fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!("ct_{}", hex::encode(bytes))
}

/// Makes a cart: a signed-in user's (their active one when they have one,
/// with the lines added to it), or an anonymous one whose token the answer
/// carries once. True when a cart was created.
pub async fn create(
    state: &AppState,
    access: &CartAccess,
    request: NewCart,
) -> DomainResult<(Cart, bool)> {
    let lines = check_lines(&request.items)?;
    let actor = actor_of(state, access).await?;
    if let Some(user) = &access.user
        && let Some(existing) = state.store.active_cart_of(&user.user_id).await?
    {
        if lines.is_empty() {
            return Ok((existing.cart, false));
        }
        // All lines or none: a refusal of one leaves no other held.
        let cart = apply(
            state,
            access,
            &existing.cart.id,
            CartChange::AddAll(lines),
            None,
        )
        .await?;
        return Ok((cart, false));
    }
    let token = access.user.is_none().then(new_token);
    let new = NewCartRecord {
        id: CartId::generate(),
        user_id: access.user.as_ref().map(|u| u.user_id.clone()),
        token_hash: token.as_deref().map(sha256_hex),
        lines,
        expires_at: context(state, None).expires_at,
        limits: limits(state),
        // Only anonymous carts count against their address: a signed-in
        // customer has one active cart, whatever their address.
        client: match (&access.user, access.client) {
            (None, Some(address)) => Some((
                address.to_string(),
                state.config.commerce.max_carts_per_address,
            )),
            _ => None,
        },
    };
    let id = new.id.to_string();
    match state.store.create_cart(new, actor, COMMERCE_EVENTS).await {
        Ok(answer) => {
            let mut cart = written(&id, answer, None)?;
            cart.token = token;
            Ok((cart, true))
        }
        // Two first requests of one user raced: the other made the cart.
        Err(StoreError::Duplicate { .. }) => match &access.user {
            Some(user) => {
                let record = state.store.active_cart_of(&user.user_id).await?;
                record
                    .map(|r| (r.cart, false))
                    .ok_or_else(|| DomainError::conflict("cart_not_active", "retry the request"))
            }
            None => Err(DomainError::conflict(
                "cart_not_active",
                "retry the request",
            )),
        },
        Err(err) => Err(err.into()),
    }
}

/// The caller's cart: a user's active cart, or the one their token names.
pub async fn current(state: &AppState, access: &CartAccess) -> DomainResult<Cart> {
    if let Some(user) = &access.user
        && let Some(record) = state.store.active_cart_of(&user.user_id).await?
    {
        return Ok(record.cart);
    }
    if let Some(token) = &access.token
        && let Some(record) = state.store.cart_by_token(&sha256_hex(token)).await?
    {
        return Ok(record.cart);
    }
    Err(DomainError::not_found(
        "an active cart for this caller (create one with POST /api/cart)",
    ))
}

/// A cart the caller may see. Someone else's cart is "not found", so that
/// cart ids cannot be probed.
pub async fn get(state: &AppState, access: &CartAccess, id: &str) -> DomainResult<Cart> {
    Ok(owned(state, access, id, false).await?.cart)
}

/// A cart the caller may see (`change`: and change), else "not found".
async fn owned(
    state: &AppState,
    access: &CartAccess,
    id: &str,
    change: bool,
) -> DomainResult<CartRecord> {
    let not_found = || DomainError::not_found(format!("cart {id}"));
    let id: CartId = id.parse().map_err(|_| not_found())?;
    match state.store.cart(&id).await? {
        Some(record) if access.may(&record, change) => Ok(record),
        Some(_) if access.user.as_ref().is_some_and(|u| u.role.is_staff()) => {
            Err(DomainError::forbidden(format!(
                "cart {id} is a customer's; only its owner changes it"
            )))
        }
        _ => Err(not_found()),
    }
}

/// Applies one change to a cart the caller may use.
pub async fn apply(
    state: &AppState,
    access: &CartAccess,
    id: &CartId,
    change: CartChange,
    expected_version: Option<u64>,
) -> DomainResult<Cart> {
    let record = owned(state, access, id.as_str(), true).await?;
    match &change {
        CartChange::Add { sku, quantity } => {
            check_line(sku, *quantity, false)?;
        }
        CartChange::AddAll(lines) => {
            for line in lines {
                check_line(&line.sku, line.quantity, false)?;
            }
        }
        CartChange::Set { sku, quantity } => {
            check_line(sku, *quantity, true)?;
        }
        CartChange::Remove { sku } => {
            check_sku(sku).map_err(|problem| DomainError::validation("sku", problem))?;
        }
        CartChange::Clear | CartChange::Checkout(_) => {}
    }
    let actor = actor_of(state, access).await?;
    let answer = state
        .store
        .change_cart(
            &record.cart.id,
            change,
            expected_version,
            context(state, actor),
            COMMERCE_EVENTS,
        )
        .await?;
    written(id.as_str(), answer, expected_version)
}

/// Sets what a cart keeps for its checkout: its addresses (written out or
/// from the caller's address book, checked as an order's are) and its
/// shipping method. An anonymous cart has no book to name addresses from.
pub async fn set_checkout(
    state: &AppState,
    access: &CartAccess,
    id: &CartId,
    request: SetCartCheckout,
    expected_version: Option<u64>,
) -> DomainResult<Cart> {
    let shipping = choose(
        "shipping_address",
        request.shipping_address,
        request.shipping_address_id,
    )?;
    let billing = choose(
        "billing_address",
        request.billing_address,
        request.billing_address_id,
    )?;
    let address = |at: &str, given: Option<PostalAddress>| {
        given.map(|address| check_address(at, address)).transpose()
    };
    let resolved = |choice| async {
        match (&access.user, choice) {
            (Some(user), choice) => resolve(state, &user.user_id, choice).await,
            (None, AddressChoice::Saved(saved)) => {
                Err(DomainError::not_found(format!("address {saved}")))
            }
            (None, AddressChoice::Given(address)) => Ok(Some(address)),
            (None, AddressChoice::Neither) => Ok(None),
        }
    };
    let checkout = CartCheckout {
        shipping_address: address("shipping_address", resolved(shipping).await?)?,
        billing_address: address("billing_address", resolved(billing).await?)?,
        shipping_method: request
            .shipping_method
            .map(|code| check_code("shipping_method", &code))
            .transpose()?,
    };
    apply(
        state,
        access,
        id,
        CartChange::Checkout(Box::new(checkout)),
        expected_version,
    )
    .await
}

/// Merges the anonymous cart a token names into the user's at login. A
/// merge that cannot happen (the cart expired, currencies differ) leaves
/// both carts as they are: the login itself must not fail for it.
pub async fn merge_at_login(state: &AppState, token: &str, user: &UserId) -> Option<Cart> {
    let record = match state.store.cart_by_token(&sha256_hex(token)).await {
        Ok(Some(record)) if record.cart.status == CartStatus::Active => record,
        Ok(_) => return None,
        Err(err) => {
            tracing::warn!(error = %err, "could not look up the cart to merge at login");
            return None;
        }
    };
    let id = record.cart.id.to_string();
    let answer = state
        .store
        .merge_cart(&record.cart.id, user, context(state, None), COMMERCE_EVENTS)
        .await;
    match answer
        .map_err(DomainError::from)
        .and_then(|a| written(&id, a, None))
    {
        Ok(cart) => Some(cart),
        Err(err) => {
            tracing::info!(cart = %id, error = %err, "the anonymous cart was not merged at login");
            None
        }
    }
}

/// Expires idle carts, a batch at a time, releasing their stock.
pub async fn sweep(state: &AppState) -> anyhow::Result<u64> {
    const BATCH: u32 = 200;
    let mut expired = 0;
    loop {
        let count = state
            .store
            .expire_carts(now(), BATCH, COMMERCE_EVENTS)
            .await?;
        expired += count;
        if count < u64::from(BATCH) {
            return Ok(expired);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::AppError;

    #[test]
    fn lines_need_a_valid_sku_and_a_positive_quantity() {
        assert!(check_line("MUG-1", 1, false).is_ok());
        assert!(check_line("MUG-1", 0, false).is_err());
        assert!(check_line("MUG-1", 0, true).is_ok());
        assert!(check_line("MUG-1", -3, true).is_err());
        assert!(check_line("mug 1", 1, false).is_err());
        assert!(check_line("MUG-1", MAX_STOCK + 1, false).is_err());
    }

    #[test]
    fn tokens_are_long_random_and_distinct() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert_eq!(a.len(), 3 + 64);
    }

    #[test]
    fn each_refusal_has_its_own_code() {
        let codes: Vec<&str> = [
            LineRefusal::UnknownSku("X".into()),
            LineRefusal::Archived("X".into()),
            LineRefusal::Insufficient {
                sku: "X".into(),
                available: 1,
                requested: 2,
            },
            LineRefusal::NoLine("X".into()),
            LineRefusal::TooManyLines(100),
            LineRefusal::LineLimit {
                sku: "X".into(),
                max: 1,
                requested: 2,
            },
            LineRefusal::TooManyCarts(3),
        ]
        .into_iter()
        .map(|r| AppError::from(refusal_error(r)).code())
        .collect();
        assert_eq!(
            codes,
            [
                "unknown_sku",
                "product_archived",
                "insufficient_stock",
                "not_in_cart",
                "cart_full",
                "quantity_limit",
                "too_many_carts"
            ]
        );
        assert_eq!(
            AppError::from(not_active("crt_x", CartStatus::Expired)).code(),
            "cart_expired"
        );
        assert_eq!(
            AppError::from(not_active("crt_x", CartStatus::CheckedOut)).code(),
            "cart_not_active"
        );
    }
}
