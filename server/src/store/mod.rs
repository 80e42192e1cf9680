//! The storage interface every service talks to.
//!
//! Services see only the traits below, never SQL: the SQLite implementation in
//! [`sqlite`] is the default, and a PostgreSQL backend (for several `shop serve`
//! nodes behind a load balancer) implements the same traits without a change in
//! any service. Methods are async so that a networked backend fits; the SQLite
//! backend runs its blocking calls on tokio's blocking pool.
//!
//! Each trait has its own file here, and the SQLite implementation of it the
//! same name under `sqlite/`, so another backend mirrors `sqlite/` file for
//! file. Each method's docs say what it guarantees in terms any backend can
//! keep; [`StoreError`] names failures the same way.
//!
//! The rules of the money path (cart rules, the order state machine, the
//! refund ceiling, stock availability) live in the services' `rules`
//! modules; each backend loads (and, on PostgreSQL, locks) what a step
//! decides from, calls the same rule, and writes what it decided, so no
//! backend repeats a rule. The durability setting is backend-neutral
//! ([`crate::config::Durability`]).
//!
//! A write that changes state also takes the events that describe the change
//! and appends them to the event log in the same transaction (an outbox), so
//! an acknowledged change always has its event and a rolled-back one never does.
//! The store then announces them itself, on its [`CommitFeed`], after the
//! commit and before the write returns (see [`EventStore`] for the order
//! this keeps): services never publish.

mod addresses;
mod analytics;
pub mod audit;
mod carts;
mod catalog;
#[cfg(test)]
mod contract;
pub mod copy;
mod documents;
mod events;
mod idempotency;
mod inventory;
mod keys;
mod notifications;
mod orders;
mod payments;
pub mod postgres;
mod pricing;
mod returns;
mod search;
mod sessions;
pub mod sqlite;
mod users;
mod webhooks;

use async_trait::async_trait;
use time::OffsetDateTime;

pub use addresses::*;
pub use analytics::*;
pub use audit::{AuditChange, AuditQuery, AuditStore};
pub use carts::*;
pub use catalog::*;
pub use documents::*;
pub use events::*;
pub use idempotency::*;
pub use inventory::*;
pub use keys::*;
pub use notifications::*;
pub use orders::*;
pub use payments::*;
pub use pricing::*;
pub use returns::*;
pub use search::*;
pub use sessions::*;
pub use sqlite::SqliteStore;
pub use users::*;
pub use webhooks::*;

/// Why a store call failed, in terms any backend can keep.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique field (an email, a SKU, an active cart per user) already has
    /// this value; nothing was written.
    #[error("a {entity} with this {field} already exists")]
    Duplicate {
        entity: &'static str,
        field: &'static str,
    },
    /// Another writer holds what this call needs; nothing was written, and
    /// the same call may be retried.
    #[error("the database is locked by another writer")]
    Busy,
    /// A follower of the event log found its cursor moved by another
    /// follower of the same name (on another node) since it read it;
    /// nothing was written, and the follower must read on from the cursor
    /// as it is now.
    #[error("the event cursor {consumer} was moved by another follower")]
    CursorMoved { consumer: &'static str },
    /// A text value the backend cannot hold (PostgreSQL's text has no NUL
    /// character); nothing was written, and no stored value can equal it.
    #[error("text with a NUL character (\\0) cannot be stored or matched")]
    UnstorableText,
    #[error(
        "the database schema is version {found}, newer than the {known} this build of shop knows; \
         run a newer shop, or point --db or --database-url at another database"
    )]
    SchemaTooNew { found: i64, known: i64 },
    /// The backend failed in a way the caller cannot act on (I/O, a broken
    /// invariant); the call's transaction, if any, was rolled back.
    /// (The cause is in the message and not also the error's source, or
    /// `{:#}` would print it twice, as every driver error already repeats
    /// its own source in its message.)
    #[error("database error: {0}")]
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The current time at the millisecond precision the store keeps, so a value
/// read back equals the value written.
pub fn now() -> OffsetDateTime {
    let now = OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000_000 * 1_000_000)
        .expect("truncating nanoseconds keeps them in range")
}

/// `text` as a `LIKE` pattern matching itself: its wildcards and the
/// backslash escaped with a backslash (the pattern's `ESCAPE '\'`).
fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// Everything the services need from storage.
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
    + PaymentStore
    + AnalyticsStore
    + SearchStore
    + KeyStore
    + AuditStore
    + WebhookStore
    + PricingStore
    + AddressStore
    + ReturnStore
    + DocumentStore
    + StoreHealth
    + Send
    + Sync
    + 'static
{
}

/// Whether a backend serves, apart from what it stores: a backend that
/// implements only some of the traits above (one under construction) still
/// answers these.
#[async_trait]
pub trait StoreHealth: Send + Sync {
    /// Whether the database serves: a read that really reaches it, and
    /// whether writes are moving (an error when a write has been stuck for
    /// seconds), learned without writing. Health checks call it, and a load
    /// balancer may poll them every second on every node, so it must cost
    /// a round trip, never a write transaction.
    async fn ping(&self) -> StoreResult<()>;
    /// Names the backend in health reports, e.g. `sqlite`.
    fn backend(&self) -> &'static str;
}
