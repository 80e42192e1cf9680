//! The storage interface of stock, its movements and reservations.

use async_trait::async_trait;

use shop_wire::inventory::{
    Movement, MovementKind, ReconcileReport, Reservation, ReservationId, ReservationStatus, Stock,
};
use time::OffsetDateTime;

use super::{NewEvent, StoreResult};

#[derive(Clone, Debug, Default)]
pub struct StockQuery {
    /// Only SKUs with available stock at or under their threshold.
    pub low_only: bool,
    /// Case-insensitive substring of the SKU.
    pub text: Option<String>,
    /// Lowest available first (the default) or by SKU.
    pub by_sku: bool,
    pub limit: u32,
    pub offset: u64,
}

/// Why a ledger entry is written, before its counts are known.
#[derive(Clone, Debug)]
pub struct MovementDraft {
    pub kind: MovementKind,
    pub reason: Option<String>,
    pub actor: Option<String>,
    pub reference: Option<String>,
}

impl MovementDraft {
    pub fn initial(actor: Option<String>) -> Self {
        MovementDraft {
            kind: MovementKind::Set,
            reason: Some("initial stock".to_owned()),
            actor,
            reference: None,
        }
    }

    pub fn import(actor: Option<String>) -> Self {
        MovementDraft {
            kind: MovementKind::Set,
            reason: Some("import".to_owned()),
            actor,
            reference: None,
        }
    }
}

#[derive(Clone, Debug)]
pub enum StockOperation {
    /// A stocktake: the count on hand is now this.
    Set(i64),
    /// Goods in (positive) or out (negative).
    Adjust(i64),
}

#[derive(Clone, Debug)]
pub struct StockChange {
    pub sku: String,
    pub operation: StockOperation,
    pub low_stock_threshold: Option<i64>,
    pub reason: String,
    pub actor: Option<String>,
}

/// What one committed inventory change did, for the domain to name its events.
#[derive(Clone, Debug)]
pub struct StockEffect {
    pub stock: Stock,
    pub movement: Movement,
    pub reservation: Option<Reservation>,
    /// Available stock fell to or below the threshold with this change.
    pub became_low: bool,
}

/// Builds the events of one committed inventory change.
pub type StockEvents = fn(&StockEffect) -> Vec<NewEvent>;

#[derive(Clone, Debug)]
pub enum StockWrite {
    Changed(Box<Stock>),
    NotFound,
    /// Refused: the change would take on hand below 0 or below what is reserved.
    Insufficient {
        on_hand: i64,
        reserved: i64,
    },
}

#[derive(Clone, Debug)]
pub struct ReserveItem {
    pub sku: String,
    pub quantity: i64,
}

#[derive(Clone, Debug)]
pub enum ReserveOutcome {
    /// One reservation per item, in order.
    Reserved(Vec<Reservation>),
    UnknownSku(String),
    Insufficient {
        sku: String,
        available: i64,
        requested: i64,
    },
}

#[derive(Clone, Debug)]
pub enum ReservationWrite {
    Done(Box<Reservation>),
    NotFound,
    NotActive(ReservationStatus),
}

#[derive(Clone, Debug, Default)]
pub struct ReservationQuery {
    pub sku: Option<String>,
    pub status: Option<ReservationStatus>,
    pub reference: Option<String>,
    pub limit: u32,
    pub offset: u64,
}

#[async_trait]
pub trait InventoryStore: Send + Sync {
    async fn stock(&self, sku: &str) -> StoreResult<Option<Stock>>;
    async fn list_stock(&self, query: &StockQuery) -> StoreResult<(Vec<Stock>, u64)>;
    /// Sets or adjusts the count on hand in one statement guarded by the
    /// invariants, with its ledger entry and events.
    async fn change_stock(
        &self,
        change: StockChange,
        events: StockEvents,
    ) -> StoreResult<StockWrite>;
    /// Newest first.
    async fn movements(
        &self,
        sku: &str,
        limit: u32,
        offset: u64,
    ) -> StoreResult<(Vec<Movement>, u64)>;
    /// Holds stock for every item or for none of them.
    async fn reserve(
        &self,
        items: Vec<ReserveItem>,
        expires_at: OffsetDateTime,
        reference: Option<String>,
        actor: Option<String>,
        events: StockEvents,
    ) -> StoreResult<ReserveOutcome>;
    /// Moves an active reservation to `Released` (its stock is available
    /// again) or `Committed` (sold: on hand and reserved both drop).
    async fn finish_reservation(
        &self,
        id: &ReservationId,
        to: ReservationStatus,
        actor: Option<String>,
        events: StockEvents,
    ) -> StoreResult<ReservationWrite>;
    /// Expires up to `limit` active reservations due at `now`, returning their stock.
    async fn expire_reservations(
        &self,
        now: OffsetDateTime,
        limit: u32,
        events: StockEvents,
    ) -> StoreResult<u64>;
    async fn reservation(&self, id: &ReservationId) -> StoreResult<Option<Reservation>>;
    /// Newest first.
    async fn reservations(&self, query: &ReservationQuery) -> StoreResult<(Vec<Reservation>, u64)>;
    /// Checks the inventory invariants over the whole database in one
    /// transaction and, with `fix`, repairs what drifted (with ledger entries).
    async fn reconcile(
        &self,
        fix: bool,
        actor: Option<String>,
        events: StockEvents,
    ) -> StoreResult<ReconcileReport>;
}
