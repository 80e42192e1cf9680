//! The PostgreSQL backend: a pool of connections, any number of writers, and
//! shared by any number of `shop serve` nodes.
//!
//! It implements every store trait, proven by the same store contract
//! suite as SQLite (races included), and `--database-url` starts the
//! server on it.
//!
//! Every change runs in one transaction through [`PgStore::write`], which
//! retries it whole when PostgreSQL aborts it for a serialization failure
//! or a deadlock, and appends the change's events last (see [`events`] for
//! why last, and how that keeps the log's commit order).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::future::BoxFuture;
use shop_wire::Event;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Connection, PgConnection, Postgres, Row, Transaction};
use tokio_util::sync::{CancellationToken, DropGuard};

mod addresses;
mod analytics;
mod audit;
mod carts;
mod catalog;
mod documents;
mod events;
mod filter;
mod idempotency;
mod inventory;
mod keys;
mod migrations;
mod notifications;
mod orders;
mod payments;
mod pricing;
mod returns;
mod search;
mod sessions;
#[cfg(any(test, feature = "postgres-tests"))]
pub mod testing;
mod users;
mod webhooks;

pub(crate) use migrations::migrate_in;

use super::{CommitFeed, NewEvent, Store, StoreError, StoreHealth, StoreResult};
use crate::config::Durability;

/// Connections per node. PostgreSQL's default `max_connections` is 100, so
/// a few nodes fit under it with room for `psql` and backups.
const CONNECTIONS: u32 = 16;
/// How long a call waits for a free connection before it is told busy. A
/// burst (a flash sale: hundreds of checkouts of one SKU, each holding its
/// stock row for a few milliseconds) queues for connections as it would
/// for SQLite's writer; 5 s turned 500 checkouts on two nodes into "busy"
/// answers. The gateway's request timeout (30 s by default) bounds what a
/// client waits in all.
const ACQUIRE_WAIT: Duration = Duration::from_secs(30);
/// Attempts of one change that PostgreSQL keeps aborting for a
/// serialization failure or a deadlock, before the caller is told busy.
const ATTEMPTS: u32 = 8;
/// The first pause before a retry; each next one doubles, so eight
/// attempts wait at most about a quarter of a second in all.
const FIRST_BACKOFF: Duration = Duration::from_millis(2);

pub struct PgStore {
    pool: PgPool,
    /// Where committed events are announced.
    feed: CommitFeed,
    /// The id of the last event this node announced. Held from appending a
    /// change's events until they are announced, and by the follower of
    /// other nodes' commits while it announces theirs, so this node
    /// announces every event of the log once and in id order (see [`events`]).
    announced: Arc<tokio::sync::Mutex<u64>>,
    /// Stops the follower of other nodes' commits with the store.
    _follower: DropGuard,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let options = self.pool.connect_options();
        f.debug_struct("PgStore")
            .field("host", &options.get_host())
            .field("database", &options.get_database())
            .finish()
    }
}

impl PgStore {
    /// Connects to the database at `url` (`postgres://user@host:port/name`)
    /// and applies pending migrations. A database migrated by a newer shop
    /// is refused rather than misread.
    ///
    /// `durability` maps onto `synchronous_commit`: with
    /// [`Durability::Process`] a commit returns once PostgreSQL has it in
    /// its WAL, before the WAL is flushed to disk, so it survives any crash
    /// of shop (and of PostgreSQL's own processes short of the machine),
    /// while a power cut or an OS crash of the database machine may lose
    /// the last fraction of a second, as with SQLite's `process`; and
    /// nothing is ever half-written. With [`Durability::Power`] each commit
    /// waits for the flush. Appends to the event log hold a lock to their
    /// commit (see [`events`]), so a flush per commit also caps how many
    /// changes commit a second.
    pub async fn connect(url: &str, durability: Durability) -> StoreResult<Self> {
        let synchronous_commit = match durability {
            Durability::Process => "off",
            Durability::Power => "on",
        };
        let options = url
            .parse::<PgConnectOptions>()
            .map_err(backend)?
            .options([("synchronous_commit", synchronous_commit)]);
        // One connection on its own first: a pool retries a refused
        // connection until its acquire timeout, which would hide a wrong
        // URL or a stopped server behind 30 s and a "timed out".
        PgConnection::connect_with(&options)
            .await
            .map_err(cannot_connect)?
            .close()
            .await
            .map_err(cannot_connect)?;
        let pool = PgPoolOptions::new()
            .max_connections(CONNECTIONS)
            .acquire_timeout(ACQUIRE_WAIT)
            // A connection is checked by the statement it runs: a ping per
            // checkout would double the round trips of a short change.
            .test_before_acquire(false)
            .connect_lazy_with(options);
        migrations::migrate(&pool).await?;
        let feed = CommitFeed::default();
        // What was committed before this node started is in the log for
        // whoever wants it; the feed announces what commits from now on.
        let latest: i64 = sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM events")
            .fetch_one(&pool)
            .await?;
        let announced = Arc::new(tokio::sync::Mutex::new(latest as u64));
        let stop = CancellationToken::new();
        tokio::spawn(events::follow_other_nodes(
            pool.clone(),
            feed.clone(),
            announced.clone(),
            stop.clone(),
        ));
        Ok(PgStore {
            pool,
            feed,
            announced,
            _follower: stop.drop_guard(),
        })
    }

    /// Runs `change` in one transaction and commits it with the events it
    /// returns, appended last; returns its value and the events as logged.
    ///
    /// When PostgreSQL aborts the transaction for a serialization failure
    /// or a deadlock, `change` runs again from the start in a new one (so it
    /// must do nothing outside its transaction), up to [`ATTEMPTS`] times;
    /// after that the caller gets [`StoreError::Busy`].
    async fn write<T, F>(&self, mut change: F) -> StoreResult<(T, Vec<Event>)>
    where
        T: Send,
        F: for<'t> FnMut(&'t mut PgConnection) -> BoxFuture<'t, StoreResult<(T, Vec<NewEvent>)>>
            + Send,
    {
        let mut backoff = FIRST_BACKOFF;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut tx = self.pool.begin().await?;
            let result = match change(&mut tx).await {
                Ok((value, events)) => self
                    .commit_with(tx, events)
                    .await
                    .map(|logged| (value, logged)),
                Err(err) => Err(err),
            };
            match result {
                Err(StoreError::Busy) if attempt < ATTEMPTS => {
                    metrics::counter!("shop_store_retries_total").increment(1);
                    tokio::time::sleep(backoff).await;
                    backoff *= 2;
                }
                result => return result,
            }
        }
    }

    /// Appends `events` to `tx` as its last statement, commits, and
    /// announces them; nothing to append commits at once.
    async fn commit_with(
        &self,
        mut tx: Transaction<'static, Postgres>,
        events: Vec<NewEvent>,
    ) -> StoreResult<Vec<Event>> {
        if events.is_empty() {
            tx.commit().await?;
            return Ok(Vec::new());
        }
        let (mut announced, appended) = self.append(&mut tx, events).await?;
        tx.commit().await?;
        *announced = appended.last;
        self.feed.committed(appended.missed);
        self.feed.committed(appended.logged.clone());
        Ok(appended.logged)
    }
}

impl Store for PgStore {}

#[async_trait]
impl StoreHealth for PgStore {
    async fn ping(&self) -> StoreResult<()> {
        // One round trip on a pooled connection: it proves the server
        // answers and a connection is free, and writes nothing.
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    fn backend(&self) -> &'static str {
        "postgres"
    }
}

/// Why the server could not be reached, said once: PostgreSQL's own message
/// where it answered, without the driver's layers around it.
fn cannot_connect(err: sqlx::Error) -> StoreError {
    let reason = match err.as_database_error() {
        Some(db) => db.message().to_owned(),
        None => match err {
            sqlx::Error::Io(io) => io.to_string(),
            other => other.to_string(),
        },
    };
    backend(std::io::Error::other(format!("cannot connect: {reason}")))
}

fn backend(err: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend(Box::new(err))
}

/// A text column parsed into its type (an id, an enum, a currency).
fn parse<T: std::str::FromStr>(row: &PgRow, column: &str) -> StoreResult<T>
where
    T::Err: std::fmt::Display,
{
    let text: String = row.try_get(column)?;
    text.parse()
        .map_err(|err: T::Err| backend(std::io::Error::other(format!("column {column}: {err}"))))
}

/// SQLSTATEs after which the transaction was rolled back and the same
/// change may simply run again.
const SERIALIZATION_FAILURE: &str = "40001";
const DEADLOCK_DETECTED: &str = "40P01";
const UNIQUE_VIOLATION: &str = "23505";
/// "invalid byte sequence": PostgreSQL's answer to a NUL in text.
const CHARACTER_NOT_IN_REPERTOIRE: &str = "22021";

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        if matches!(err, sqlx::Error::PoolTimedOut) {
            return StoreError::Busy;
        }
        let Some(db) = err.as_database_error() else {
            return backend(err);
        };
        match db.code().as_deref() {
            Some(SERIALIZATION_FAILURE | DEADLOCK_DETECTED) => StoreError::Busy,
            Some(CHARACTER_NOT_IN_REPERTOIRE) => StoreError::UnstorableText,
            Some(UNIQUE_VIOLATION) => {
                let (entity, field) = unique_field(db.constraint());
                StoreError::Duplicate { entity, field }
            }
            _ => backend(err),
        }
    }
}

/// What a unique constraint of the schema keeps unique, by its name.
fn unique_field(constraint: Option<&str>) -> (&'static str, &'static str) {
    match constraint {
        Some("idempotency_keys_pkey") => ("idempotency key", "key"),
        Some("products_sku_key") => ("product", "sku"),
        Some("users_email_key") => ("user", "email"),
        Some("shipping_zone_countries_pkey") => ("shipping zone", "country"),
        Some("tax_rates_scope") => ("tax rate", "country, region and tax_category"),
        Some("discounts_code_key") => ("discount", "code"),
        Some("carts_active_user") => ("active cart", "user"),
        Some("api_keys_secret_hash_key") => ("api key", "secret_hash"),
        Some("notification_templates_pkey") => ("template", "name and channel"),
        Some("webhooks_pkey") => ("webhook", "id"),
        _ => ("record", "key"),
    }
}
