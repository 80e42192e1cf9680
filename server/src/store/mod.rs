//! The storage interface every service talks to.
//!
//! Services see only the traits below, never SQL: the SQLite implementation in
//! [`sqlite`] is the default, and a PostgreSQL backend (for several `shop serve`
//! nodes behind a load balancer) implements the same traits without a change in
//! any service. Methods are async so that a networked backend fits; the SQLite
//! backend runs its blocking calls on tokio's blocking pool.
//!
//! A write that changes state also takes the events that describe the change
//! and appends them to the event log in the same transaction (an outbox), so
//! an acknowledged change always has its event and a rolled-back one never does.

pub mod commerce;
pub mod sqlite;

use async_trait::async_trait;
use std::collections::BTreeMap;

use shop_wire::inventory::{
    Movement, ReconcileReport, Reservation, ReservationId, ReservationStatus, Stock,
};
use shop_wire::notifications::{
    Channel, Delivery, Notification, NotificationAnalytics, NotificationId, NotificationStatus,
    Priority, Rendered, Template,
};
use shop_wire::products::{Product, ProductId};
use shop_wire::search::SearchAnalytics;
use shop_wire::users::{Address, Role, User};
use shop_wire::{Event, SessionId, UserId};
use time::OffsetDateTime;

pub use commerce::*;
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("a {entity} with this {field} already exists")]
    Duplicate {
        entity: &'static str,
        field: &'static str,
    },
    #[error("the database is locked by another writer")]
    Busy,
    #[error(
        "the database schema is version {found}, newer than the {known} this build of shop knows; \
         run a newer shop, or point --db at another file"
    )]
    SchemaTooNew { found: i64, known: i64 },
    #[error("database error: {0}")]
    Backend(#[source] Box<dyn std::error::Error + Send + Sync>),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// An event about to be appended to the log; the store gives it its id.
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub kind: &'static str,
    pub occurred_at: OffsetDateTime,
    pub data: serde_json::Value,
}

impl NewEvent {
    pub fn now(kind: &'static str, data: serde_json::Value) -> Self {
        NewEvent {
            kind,
            occurred_at: now(),
            data,
        }
    }
}

/// The current time at the millisecond precision the store keeps, so a value
/// read back equals the value written.
pub fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000_000 * 1_000_000)
        .expect("truncating nanoseconds keeps them in range")
}

/// A user as stored: the public view plus the password hash.
#[derive(Clone, Debug)]
pub struct UserRecord {
    pub user: User,
    pub password_hash: String,
}

#[derive(Clone, Debug, Default)]
pub struct UserQuery {
    pub role: Option<Role>,
    /// Case-insensitive substring of the email or name.
    pub text: Option<String>,
    pub limit: u32,
    pub offset: u64,
}

#[derive(Clone, Debug, Default)]
pub struct ProfileUpdate {
    pub name: Option<String>,
    pub addresses: Option<Vec<Address>>,
}

#[derive(Clone, Debug)]
pub struct SessionRecord {
    pub id: SessionId,
    pub user_id: UserId,
    /// SHA-256 of the current refresh secret; the secret itself is never stored.
    pub refresh_hash: String,
    pub user_agent: Option<String>,
    pub ip: Option<String>,
    pub created_at: OffsetDateTime,
    pub last_used_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub revoked_at: Option<OffsetDateTime>,
}

impl SessionRecord {
    pub fn is_active(&self, at: OffsetDateTime) -> bool {
        self.revoked_at.is_none() && self.expires_at > at
    }
}

/// What the auth check needs to know about a session, read in one query.
#[derive(Clone, Debug)]
pub struct SessionAuth {
    pub user_id: UserId,
    pub role: Role,
    pub expires_at: OffsetDateTime,
    pub revoked: bool,
}

#[derive(Clone, Debug)]
pub enum RefreshOutcome {
    /// The presented secret was current; it is replaced and the session extended.
    Rotated(SessionRecord),
    /// The presented secret was an old one: someone replayed a used refresh
    /// token, so the session has been revoked to cut off whoever holds it.
    ReuseDetected,
    /// No such session, or it was revoked or has expired.
    Inactive,
}

/// A response kept for replay under an `Idempotency-Key`.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredResponse {
    pub status: u16,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum IdempotencyBegin {
    /// First use of the key: the caller runs the request and then completes or abandons it.
    Started,
    /// The key was used before with the same request: here is its response.
    Replay(StoredResponse),
    /// The key was used before with a different request.
    Mismatch,
    /// The first request with this key is still running.
    InProgress,
}

#[derive(Clone, Debug)]
pub enum RoleChange {
    Changed(User, Vec<Event>),
    NotFound,
    /// Refused: it would demote the only admin and leave the shop with none.
    LastAdmin,
}

#[async_trait]
pub trait UserStore: Send + Sync {
    /// Fails with [`StoreError::Duplicate`] when the email is taken (case-insensitively).
    async fn insert_user(
        &self,
        user: &UserRecord,
        events: Vec<NewEvent>,
    ) -> StoreResult<Vec<Event>>;
    async fn user(&self, id: &UserId) -> StoreResult<Option<UserRecord>>;
    async fn user_by_email(&self, email: &str) -> StoreResult<Option<UserRecord>>;
    async fn list_users(&self, query: &UserQuery) -> StoreResult<(Vec<User>, u64)>;
    async fn count_users_with_role(&self, role: Role) -> StoreResult<u64>;
    async fn update_profile(
        &self,
        id: &UserId,
        update: &ProfileUpdate,
    ) -> StoreResult<Option<User>>;
    /// Sets a new hash and revokes every session of the user except `keep`.
    async fn set_password(
        &self,
        id: &UserId,
        hash: &str,
        keep: Option<&SessionId>,
    ) -> StoreResult<()>;
    /// Changes a role atomically with the check that one admin always remains.
    async fn set_role(
        &self,
        id: &UserId,
        role: Role,
        events: Vec<NewEvent>,
    ) -> StoreResult<RoleChange>;
}

#[async_trait]
pub trait SessionStore: Send + Sync {
    async fn insert_session(
        &self,
        session: &SessionRecord,
        events: Vec<NewEvent>,
    ) -> StoreResult<Vec<Event>>;
    async fn session_auth(&self, id: &SessionId) -> StoreResult<Option<SessionAuth>>;
    /// The user's sessions that are neither revoked nor expired, newest first.
    async fn active_sessions(
        &self,
        user: &UserId,
        at: OffsetDateTime,
    ) -> StoreResult<Vec<SessionRecord>>;
    async fn rotate_refresh(
        &self,
        id: &SessionId,
        presented_hash: &str,
        new_hash: &str,
        expires_at: OffsetDateTime,
    ) -> StoreResult<RefreshOutcome>;
    /// Revokes one of the user's sessions and logs `events` with it; `None`
    /// (and no events) when it was not theirs or not active.
    async fn revoke_session(
        &self,
        id: &SessionId,
        user: &UserId,
        events: Vec<NewEvent>,
    ) -> StoreResult<Option<Vec<Event>>>;
    /// Deletes sessions that expired or were revoked before `before`; returns how many.
    async fn purge_sessions(&self, before: OffsetDateTime) -> StoreResult<u64>;
}

/// A page of the event log, oldest first.
#[derive(Clone, Debug, Default)]
pub struct EventQuery {
    pub after: u64,
    /// Type patterns, exact (`order.paid`) or a prefix ending in `*` (`order.*`); none matches all.
    pub types: Vec<String>,
    /// Patterns of the same kind whose events are left out, whatever `types` says.
    pub excluded: Vec<String>,
    pub limit: u32,
    pub offset: u64,
}

#[async_trait]
pub trait EventStore: Send + Sync {
    async fn append_events(&self, events: Vec<NewEvent>) -> StoreResult<Vec<Event>>;
    /// The events matching `query` and how many match in all.
    async fn list_events(&self, query: &EventQuery) -> StoreResult<(Vec<Event>, u64)>;
    /// Events with an id greater than `after`, oldest first.
    async fn events_after(&self, after: u64, limit: u32) -> StoreResult<Vec<Event>>;
    /// The id of the newest event, 0 when the log is empty.
    async fn latest_event_id(&self) -> StoreResult<u64>;
}

#[async_trait]
pub trait IdempotencyStore: Send + Sync {
    /// Claims `key` for a request with `fingerprint`. A claim left in progress
    /// for longer than `stale_after` (its request died with the process) is taken over.
    async fn begin_idempotent(
        &self,
        key: &str,
        fingerprint: &str,
        stale_after: time::Duration,
    ) -> StoreResult<IdempotencyBegin>;
    async fn complete_idempotent(&self, key: &str, response: &StoredResponse) -> StoreResult<()>;
    /// Releases a claim whose request failed in a way worth retrying.
    async fn abandon_idempotent(&self, key: &str) -> StoreResult<()>;
    async fn purge_idempotency(&self, before: OffsetDateTime) -> StoreResult<u64>;
}

#[derive(Clone, Debug, Default)]
pub struct NotificationQuery {
    pub status: Option<NotificationStatus>,
    pub channel: Option<Channel>,
    pub template: Option<String>,
    pub recipient: Option<String>,
    pub priority: Option<Priority>,
    pub limit: u32,
    pub offset: u64,
}

#[derive(Clone, Debug, Default)]
pub struct DeliveryQuery {
    pub channel: Option<Channel>,
    pub recipient: Option<String>,
    pub limit: u32,
    pub offset: u64,
}

/// How one delivery attempt ended, as the queue records it.
#[derive(Clone, Debug)]
pub enum AttemptOutcome {
    Sent,
    /// A transient failure: back to the queue (status `failed`) until `retry_at`.
    Retry {
        error: String,
        retry_at: OffsetDateTime,
    },
    /// Permanent, or out of attempts: status `dead`. `permanent` says which.
    Dead {
        error: String,
        permanent: bool,
    },
}

/// The end of one attempt on a claimed notification, written with its events
/// (and, for a local sink, its delivery record) in one transaction.
#[derive(Clone, Debug)]
pub struct Completion {
    pub id: NotificationId,
    pub attempt: u32,
    pub finished_at: OffsetDateTime,
    pub duration_ms: u64,
    pub rendered: Option<Rendered>,
    pub outcome: AttemptOutcome,
    /// What a local sink delivered; its `seq` is assigned by the store.
    pub delivery: Option<Delivery>,
    pub events: Vec<NewEvent>,
}

#[derive(Clone, Debug)]
pub enum Requeue {
    Requeued(Box<Notification>, Vec<Event>),
    NotFound,
    /// Refused: the notification is in this state.
    WrongState(NotificationStatus),
}

#[async_trait]
pub trait NotificationStore: Send + Sync {
    /// Inserts notifications, each with its events. One whose (event, template,
    /// recipient) is already queued (a reaction seen before) is skipped with its
    /// events. When `cursor` is given, that consumer's event cursor moves to it
    /// in the same transaction. Returns the events logged.
    async fn enqueue_notifications(
        &self,
        items: Vec<(Notification, Vec<NewEvent>)>,
        cursor: Option<(&'static str, u64)>,
    ) -> StoreResult<Vec<Event>>;
    /// One notification with its variables, rendered content and attempt history.
    async fn notification(&self, id: &NotificationId) -> StoreResult<Option<Notification>>;
    /// Newest first.
    async fn list_notifications(
        &self,
        query: &NotificationQuery,
    ) -> StoreResult<(Vec<Notification>, u64)>;
    /// Claims due notifications (`queued` or `failed`, `send_at <= now`), up to
    /// a limit per channel, highest priority first and FIFO within one: each is
    /// set `sending` with a lease until `lease_until` and its attempt counted.
    async fn claim_notifications(
        &self,
        now: OffsetDateTime,
        lease_until: OffsetDateTime,
        limits: Vec<(Channel, u32)>,
    ) -> StoreResult<Vec<Notification>>;
    /// Records finished attempts. A notification no longer `sending` (its lease
    /// was taken back) is left alone, and its events and delivery are dropped.
    async fn complete_attempts(&self, completions: Vec<Completion>) -> StoreResult<Vec<Event>>;
    /// Puts `sending` notifications whose lease expired before `now` back in the
    /// queue (a crash mid-send); returns how many.
    async fn release_expired_leases(&self, now: OffsetDateTime) -> StoreResult<u64>;
    /// Queues a notification again (attempts reset) if it is in one of `from`.
    async fn requeue_notification(
        &self,
        id: &NotificationId,
        from: &[NotificationStatus],
        at: OffsetDateTime,
        events: Vec<NewEvent>,
    ) -> StoreResult<Requeue>;
    /// Waiting notifications (`queued` or `failed`) by priority.
    async fn queue_depth(&self) -> StoreResult<BTreeMap<Priority, u64>>;
    async fn notification_analytics(&self) -> StoreResult<NotificationAnalytics>;
    /// What the local sinks recorded, newest first.
    async fn deliveries(&self, query: &DeliveryQuery) -> StoreResult<(Vec<Delivery>, u64)>;
    /// Creates or replaces a user-defined template; true when it was new.
    async fn save_template(&self, template: &Template) -> StoreResult<bool>;
    async fn stored_template(&self, name: &str, channel: Channel) -> StoreResult<Option<Template>>;
    async fn stored_templates(&self) -> StoreResult<Vec<Template>>;
    /// How far `consumer` has read the event log.
    async fn event_cursor(&self, consumer: &str) -> StoreResult<u64>;
    async fn set_event_cursor(&self, consumer: &str, event_id: u64) -> StoreResult<()>;
}

/// How a product is named in a request: `prd_...` or its SKU.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProductKey {
    Id(ProductId),
    Sku(String),
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProductStatus {
    #[default]
    Active,
    Archived,
    All,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ProductOrder {
    #[default]
    CreatedAt,
    Price,
    Name,
}

#[derive(Clone, Debug, Default)]
pub struct ProductQuery {
    /// A category path; matches it and every category below it.
    pub category: Option<String>,
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    /// Case-insensitive substring of the SKU, name or description.
    pub text: Option<String>,
    /// Only products with stock available (`Some(true)`) or without (`Some(false)`).
    pub in_stock: Option<bool>,
    pub status: ProductStatus,
    pub order: ProductOrder,
    pub descending: bool,
    pub limit: u32,
    pub offset: u64,
}

/// The stock a new product starts with.
#[derive(Clone, Copy, Debug)]
pub struct InitialStock {
    pub on_hand: i64,
    pub low_stock_threshold: i64,
}

#[derive(Clone, Debug)]
pub enum ProductWrite {
    Written(Box<Product>, Vec<Event>),
    NotFound,
    /// The stored product is at another version than the one the change was made to.
    VersionConflict {
        current: u64,
    },
}

#[derive(Clone, Debug)]
pub enum ProductDelete {
    Deleted(Box<Product>, Vec<Event>),
    NotFound,
    /// Refused: stock is held for it.
    InUse {
        active_reservations: u64,
    },
    /// Refused: orders name it, and their history must keep it.
    Ordered {
        orders: u64,
    },
}

/// One valid row of an import, by its line in the file.
#[derive(Clone, Debug)]
pub struct ImportRow {
    pub line: u64,
    /// The product as the row describes it; `id`, `version` and the times are
    /// filled from the stored product when the SKU exists.
    pub product: Product,
    pub stock: Option<i64>,
    pub low_stock_threshold: Option<i64>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ImportOutcome {
    Created,
    Updated,
    Unchanged,
    /// The row was valid on its own but cannot apply, e.g. a stock below what is reserved.
    Failed(String),
}

/// Builds the events of one committed product change.
pub type ProductEvents = fn(ProductChange, &Product) -> Vec<NewEvent>;

/// Builds the events of a deleted product.
pub type DeletedEvents = fn(&Product) -> Vec<NewEvent>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProductChange {
    Created,
    Updated,
}

#[async_trait]
pub trait CatalogStore: Send + Sync {
    /// Inserts a product and its stock row. Fails with [`StoreError::Duplicate`] on a taken SKU.
    async fn insert_product(
        &self,
        product: &Product,
        stock: InitialStock,
        actor: Option<String>,
        events: Vec<NewEvent>,
    ) -> StoreResult<Vec<Event>>;
    async fn product(&self, key: &ProductKey) -> StoreResult<Option<Product>>;
    async fn list_products(&self, query: &ProductQuery) -> StoreResult<(Vec<Product>, u64)>;
    /// Replaces a product if it is still at `expected_version`; the stored
    /// version becomes `expected_version + 1`.
    async fn update_product(
        &self,
        product: &Product,
        expected_version: u64,
        events: Vec<NewEvent>,
    ) -> StoreResult<ProductWrite>;
    /// Deletes a product with its stock and ledger, unless stock is reserved
    /// for it or an order names it.
    async fn delete_product(
        &self,
        key: &ProductKey,
        events: DeletedEvents,
    ) -> StoreResult<ProductDelete>;
    /// Active products per category path (only paths that hold products directly).
    async fn category_counts(&self) -> StoreResult<Vec<(String, u64)>>;
    /// Upserts a batch of rows by SKU in one transaction (or, with `dry_run`,
    /// works out what it would do and rolls back). One outcome per row, in order.
    async fn import_products(
        &self,
        rows: Vec<ImportRow>,
        default_threshold: i64,
        actor: Option<String>,
        dry_run: bool,
        events: (ProductEvents, StockEvents),
    ) -> StoreResult<(Vec<ImportOutcome>, Vec<Event>)>;
    /// Every product matching `status`, in id order, `batch` at a time from after `after`.
    async fn products_after(
        &self,
        after: Option<ProductId>,
        status: ProductStatus,
        batch: u32,
    ) -> StoreResult<Vec<Product>>;
}

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
    Changed(Box<Stock>, Vec<Event>),
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
    Reserved(Vec<Reservation>, Vec<Event>),
    UnknownSku(String),
    Insufficient {
        sku: String,
        available: i64,
        requested: i64,
    },
}

#[derive(Clone, Debug)]
pub enum ReservationWrite {
    Done(Box<Reservation>, Vec<Event>),
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
    ) -> StoreResult<(u64, Vec<Event>)>;
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
    ) -> StoreResult<(ReconcileReport, Vec<Event>)>;
}

/// A product as the search index takes it: with its stock and popularity.
#[derive(Clone, Debug)]
pub struct SearchDocument {
    pub product: Product,
    /// On hand minus reserved.
    pub available: i64,
    pub popularity: f32,
}

/// One search as analytics records it.
#[derive(Clone, Debug)]
pub struct SearchRecord {
    /// Normalized: lower case, no accents, single spaces.
    pub query: String,
    /// As asked, trimmed and cut to 200 characters.
    pub raw: String,
    pub filters: serde_json::Value,
    pub result_count: u64,
    pub latency_us: u64,
    pub cache_hit: bool,
    pub at: OffsetDateTime,
}

/// A product that was bought or viewed together with another.
#[derive(Clone, Debug, PartialEq)]
pub struct RelatedProduct {
    pub id: ProductId,
    pub co_purchases: u64,
    pub co_views: u64,
}

/// How often a product was bought and viewed; popularity is derived from these.
#[derive(Clone, Debug, PartialEq)]
pub struct ProductPopularity {
    pub id: ProductId,
    pub purchases: u64,
    pub views: u64,
}

impl ProductPopularity {
    /// A purchase counts as much as three views.
    pub fn score(purchases: u64, views: u64) -> f32 {
        (purchases * 3 + views) as f32
    }
}

#[async_trait]
pub trait SearchStore: Send + Sync {
    /// Every product (archived ones too) with its stock and popularity, in id
    /// order, `batch` at a time from after `after`: the start-up build.
    async fn search_documents_after(
        &self,
        after: Option<ProductId>,
        batch: u32,
    ) -> StoreResult<Vec<SearchDocument>>;
    /// These products as the index takes them; missing ones (deleted) are left out.
    async fn search_documents(&self, ids: Vec<ProductId>) -> StoreResult<Vec<SearchDocument>>;
    /// These products, in no particular order; missing ones are left out.
    async fn products_by_ids(&self, ids: Vec<ProductId>) -> StoreResult<Vec<Product>>;
    /// Records searches (raw and counted per hour) and logs their events.
    async fn record_searches(
        &self,
        records: Vec<SearchRecord>,
        events: Vec<NewEvent>,
    ) -> StoreResult<Vec<Event>>;
    /// Top and zero-result queries and volume per hour since `since`.
    async fn search_analytics(
        &self,
        since: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<SearchAnalytics>;
    /// The most searched queries since `since` that found something, with their counts.
    async fn popular_queries(
        &self,
        since: OffsetDateTime,
        limit: u32,
    ) -> StoreResult<Vec<(String, u64)>>;
    /// Counts paid orders (each a list of SKUs, repeated SKUs once) as
    /// purchases and co-purchases, and moves `cursor`'s consumer to its event
    /// id, in one transaction. Returns the new counts of the products involved.
    async fn record_purchases(
        &self,
        orders: Vec<Vec<String>>,
        cursor: (&'static str, u64),
    ) -> StoreResult<Vec<ProductPopularity>>;
    /// Counts a view, and a co-view with each product the session viewed in
    /// the `window` before it (at most `pair_with` of them). Returns the
    /// viewed product's new counts.
    async fn record_view(
        &self,
        product: ProductId,
        session: Option<String>,
        at: OffsetDateTime,
        window: time::Duration,
        pair_with: u32,
    ) -> StoreResult<ProductPopularity>;
    /// Products bought or viewed with `product`, strongest first (a co-purchase weighs three co-views).
    async fn related_products(
        &self,
        product: &ProductId,
        limit: u32,
    ) -> StoreResult<Vec<RelatedProduct>>;
    /// Deletes search records and views older than `before`; returns how many.
    async fn prune_search_history(&self, before: OffsetDateTime) -> StoreResult<u64>;
}

/// Everything the services need from storage.
#[async_trait]
pub trait Store:
    UserStore
    + SessionStore
    + EventStore
    + IdempotencyStore
    + NotificationStore
    + CatalogStore
    + InventoryStore
    + CartStore
    + OrderStore
    + SearchStore
    + Send
    + Sync
    + 'static
{
    /// A round trip to the database, for health checks.
    async fn ping(&self) -> StoreResult<()>;
    /// Names the backend in health reports, e.g. `sqlite`.
    fn backend(&self) -> &'static str;
}
