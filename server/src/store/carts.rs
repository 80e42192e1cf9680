//! The storage interface of carts, the first step of the money path.

use async_trait::async_trait;
use shop_wire::UserId;
use shop_wire::cart::{Cart, CartId, CartStatus};
use shop_wire::events::{CartEvent, MakeEvent, PaymentEvent};
use shop_wire::money::Currency;
use shop_wire::orders::Order;
use shop_wire::payments::{Payment, Refund};
use time::OffsetDateTime;

use super::{NewEvent, ReserveItem, StockEvents, StoreResult};
use crate::services::cart::rules::QuantityLimits;
/// A cart with what only the server may see: the hash of its anonymous token.
#[derive(Clone, Debug)]
pub struct CartRecord {
    pub cart: Cart,
    pub token_hash: Option<String>,
}

#[derive(Clone, Debug)]
pub enum CartChange {
    /// Adds units to the SKU's line, making the line if there is none.
    Add {
        sku: String,
        quantity: i64,
    },
    /// Adds several lines as [`CartChange::Add`] does, all or none.
    AddAll(Vec<ReserveItem>),
    /// Sets the line's quantity; the line must exist.
    Set {
        sku: String,
        quantity: i64,
    },
    Remove {
        sku: String,
    },
    Clear,
    /// Replaces what the cart keeps for its checkout (its lines stay).
    Checkout(Box<shop_wire::addresses::CartCheckout>),
}

/// Why a line cannot be added or changed.
#[derive(Clone, Debug, PartialEq)]
pub enum LineRefusal {
    UnknownSku(String),
    Archived(String),
    Insufficient {
        sku: String,
        available: i64,
        requested: i64,
    },
    CurrencyMismatch {
        sku: String,
        expected: Currency,
        found: Currency,
    },
    NoLine(String),
    TooManyLines(usize),
    /// More units of one SKU than a line may hold.
    LineLimit {
        sku: String,
        max: i64,
        requested: i64,
    },
    /// More units in all than a cart or order may hold.
    CartLimit {
        max: i64,
        requested: i64,
    },
    /// The caller's address already holds this many active carts.
    TooManyCarts(u32),
}

#[derive(Clone, Debug)]
pub enum CartWrite {
    Written(Box<CartRecord>),
    /// The change changed nothing; the cart is as it was, at its version.
    Unchanged(Box<CartRecord>),
    NotFound,
    NotActive(CartStatus),
    VersionConflict {
        current: u64,
    },
    Refused(LineRefusal),
}

/// A new cart. A user's cart has `user_id`; an anonymous one has `token_hash`.
#[derive(Clone, Debug)]
pub struct NewCartRecord {
    pub id: CartId,
    pub user_id: Option<UserId>,
    pub token_hash: Option<String>,
    pub lines: Vec<ReserveItem>,
    pub expires_at: OffsetDateTime,
    pub limits: QuantityLimits,
    /// An anonymous cart's client address, with the most active carts it may hold.
    pub client: Option<(String, u32)>,
}

/// The event builders of the money path; each step logs its events in its own transaction.
#[derive(Clone, Copy)]
pub struct CommerceEvents {
    pub stock: StockEvents,
    /// Each takes the kind as its payload's constructor, e.g. `EventData::OrderPaid`.
    pub cart: fn(MakeEvent<CartEvent>, &Cart) -> NewEvent,
    pub order: fn(MakeEvent<Order>, &Order) -> NewEvent,
    pub payment: fn(MakeEvent<PaymentEvent>, &Payment, &Order, Option<&Refund>) -> NewEvent,
}

/// Context shared by a change: who makes it, until when stock is held,
/// and how much a cart may hold.
#[derive(Clone, Debug)]
pub struct ChangeContext {
    pub actor: Option<String>,
    pub expires_at: OffsetDateTime,
    pub limits: QuantityLimits,
}

#[async_trait]
pub trait CartStore: Send + Sync {
    /// Creates a cart holding stock for its lines, all or nothing. Fails with
    /// `Duplicate` when the user already has an active cart.
    async fn create_cart(
        &self,
        cart: NewCartRecord,
        actor: Option<String>,
        events: CommerceEvents,
    ) -> StoreResult<CartWrite>;
    async fn cart(&self, id: &CartId) -> StoreResult<Option<CartRecord>>;
    async fn active_cart_of(&self, user: &UserId) -> StoreResult<Option<CartRecord>>;
    async fn cart_by_token(&self, token_hash: &str) -> StoreResult<Option<CartRecord>>;
    /// Applies a change if the cart is active, unexpired and at `expected_version`
    /// (when given), keeping its reservations in step and extending its life.
    async fn change_cart(
        &self,
        id: &CartId,
        change: CartChange,
        expected_version: Option<u64>,
        context: ChangeContext,
        events: CommerceEvents,
    ) -> StoreResult<CartWrite>;
    /// Moves an anonymous cart's lines into the user's active cart (which the
    /// anonymous cart becomes when the user has none) and marks it `merged`.
    async fn merge_cart(
        &self,
        from: &CartId,
        user: &UserId,
        context: ChangeContext,
        events: CommerceEvents,
    ) -> StoreResult<CartWrite>;
    /// Expires up to `limit` active carts idle past their time, releasing their stock.
    async fn expire_carts(
        &self,
        now: OffsetDateTime,
        limit: u32,
        events: CommerceEvents,
    ) -> StoreResult<u64>;
}
