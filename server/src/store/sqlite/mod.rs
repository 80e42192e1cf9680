//! The SQLite backend: one writer connection, a pool of readers, WAL.
//!
//! SQLite allows one writer at a time, so writes go through a pool of exactly
//! one connection and queue in-process instead of spinning on `SQLITE_BUSY`;
//! every write is a `BEGIN IMMEDIATE` transaction, which takes the write lock up
//! front and so can never fail half-way on a lock upgrade. Readers use their
//! own connections and, under WAL, never block the writer nor wait for it.
//! All of it runs on tokio's blocking pool, never on the reactor threads.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use r2d2::{ManageConnection, Pool};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, Row, Transaction};
use time::OffsetDateTime;

mod addresses;
mod analytics;
mod audit;
pub mod backup;
mod carts;
mod catalog;
#[cfg(test)]
mod checkout_cost;
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
mod users;
mod webhooks;
mod writer;

use events::append;
use migrations::migrate;

use super::{CommitFeed, Store, StoreError, StoreHealth, StoreResult, escape_like};

const READERS: u32 = 4;
/// The page size of a new database (one made before keeps its own; SQLite's
/// default is 4096). A commit writes every page it changed to the WAL, and a
/// checkout changes a page in each of about forty tables and indexes, most
/// by appending a row or two: with smaller pages a checkout costs the writer
/// and the checkpointer half the bytes. Checkout at 8 connections went from
/// 2,200/s, p99 14-16 ms to 2,500/s, p99 9 ms (1024 bytes: the same); an
/// import of 100,000 products from 5.2 s to 5.9 s (1024 bytes: 7.0 s).
const PAGE_BYTES: u32 = 2048;
/// Pages are read through a memory map instead of a `pread` per page miss:
/// an import or a category page touches many index pages, and the copies
/// into SQLite's own cache were most of its time. Mapped pages are the OS
/// page cache, shared, and dropped under memory pressure.
const MMAP_BYTES: u64 = 1 << 30;
/// The writer's page cache (the default is 2 MiB), so the indexes of a large
/// catalog stay in memory while a batch writes them. Readers keep the
/// default: they read through the memory map.
const WRITER_CACHE_KIB: u32 = 16 * 1024;
/// How often the checkpointer moves WAL frames into the database file.
/// Often, so that each pass has little to copy and fsync.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(100);
/// Under steady writes a passive checkpoint never catches up with the
/// writer, so the WAL is never restarted from its beginning and grows (a
/// checkout adds 60-130 KB: every page its commit changed). Past this much
/// the checkpointer has the writer restart it (see [`spawn_checkpointer`]).
/// Smaller is faster: a checkout's p99 at 8 connections was 10.8 ms with
/// 32 MiB, 17 ms with 64 MiB and 66 ms with 128 MiB, and at 64 connections
/// 36, 50 and 66 ms (reads look pages up in the WAL's index before the file).
const WAL_RESTART_BYTES: i64 = 32 * 1024 * 1024;
/// How long a restart may wait for readers on old snapshots; it holds off the
/// writer meanwhile, so it gives up early and tries again on the next pass.
const WAL_RESTART_WAIT_MS: u64 = 50;
/// The writer's catch-up copies what the passive passes left: the frames
/// committed while the last one ran. So it is asked for once a pass has
/// found at most this many new frames to copy (64 KiB), and so ran briefly:
/// each pass finds about what was committed while the one before ran. The
/// first, after [`CHECKPOINT_EVERY`], finds 20,000 frames under 2,000
/// checkouts/s and leaves 1,200; a catch-up after it held the writer for
/// 8-15 ms, one after passes down to 64 frames for 3 ms.
const WAL_CATCH_UP_LEFT_FRAMES: i64 = 16;
/// Passive passes in a row before the catch-up, however much they leave.
const WAL_CATCH_UP_PASSES: u32 = 6;
/// Past this much WAL the catch-ups have not restarted it (a long read held
/// an old snapshot throughout), and the checkpointer restarts it itself,
/// holding off the writer for as long as that takes.
const WAL_FORCE_RESTART_BYTES: i64 = 4 * WAL_RESTART_BYTES;
/// How long a connection waits for a lock before giving up with busy.
const BUSY_WAIT_MS: u64 = 5_000;
/// A writer inside one transaction for longer than this is stuck as far as
/// health is concerned: a group of changes takes milliseconds, an import
/// batch a fraction of a second, and callers queued behind it wait as long.
const WRITER_STUCK: Duration = Duration::from_secs(2);
/// How often a connection waiting for a lock looks again, for the first
/// [`BUSY_QUICK_TRIES`] looks. SQLite's own busy timeout sleeps 1, 2, 5, 10,
/// 15, 20... ms between looks: a restart waiting that way for readers that
/// are done within a millisecond held the writer off for 31 ms at the
/// median, and the writer waiting that way for a restart overslept it.
const BUSY_POLL: Duration = Duration::from_micros(100);
/// Quick looks (20 ms of them) before a wait slows to one look a millisecond:
/// a lock held longer than that is an outside process's, not a checkpoint's.
const BUSY_QUICK_TRIES: u32 = 200;

/// Waits for the server's writer as the store's own connections do: for a
/// connection opened beside a running server (`shop db backup`, `shop db copy`).
pub(crate) fn wait_when_busy(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_handler(Some(poll_busy::<BUSY_WAIT_MS>))
}

/// A busy handler that gives up after `LIMIT_MS` of waiting.
fn poll_busy<const LIMIT_MS: u64>(tries: i32) -> bool {
    let tries = u32::try_from(tries).unwrap_or(0);
    let slow = Duration::from_millis(1);
    let (waited, pause) = match tries.checked_sub(BUSY_QUICK_TRIES) {
        None => (BUSY_POLL * tries, BUSY_POLL),
        Some(slow_tries) => (BUSY_POLL * BUSY_QUICK_TRIES + slow * slow_tries, slow),
    };
    if waited >= Duration::from_millis(LIMIT_MS) {
        return false;
    }
    std::thread::sleep(pause);
    true
}

pub use crate::config::Durability;

/// Prepared statements kept per connection: more than the store's distinct
/// statements, so none is parsed twice.
const STATEMENT_CACHE: usize = 512;

#[derive(Clone)]
pub struct SqliteStore {
    /// The checkpointer thread runs while any clone of the store is alive.
    _alive: Arc<()>,
    path: PathBuf,
    writer: writer::Writer,
    readers: Pool<SqliteConnectionManager>,
    /// Where the writer announces committed events.
    feed: CommitFeed,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.path)
            .finish()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    /// A database written by a newer shop is refused rather than misread.
    pub fn open(path: &Path, durability: Durability) -> StoreResult<Self> {
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(backend)?;
        }
        // `NORMAL` under WAL syncs at checkpoints, not at each commit: a
        // process crash loses nothing, a power cut may lose the last commits.
        let synchronous = match durability {
            Durability::Process => "NORMAL",
            Durability::Power => "FULL",
        };
        let manager = |extra: String| {
            SqliteConnectionManager::file(path).with_init(move |conn| {
                conn.busy_handler(Some(poll_busy::<BUSY_WAIT_MS>))?;
                // rusqlite keeps 16 prepared statements by default; a checkout
                // alone runs more, so the writer re-parsed its own SQL on
                // every change (an eighth of its time under checkout load).
                conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
                // The page size first: it only takes on a new, empty
                // database, and not once it is in WAL mode.
                conn.execute_batch(&format!(
                    "PRAGMA page_size = {PAGE_BYTES};
                     PRAGMA journal_mode = WAL;
                     PRAGMA synchronous = {synchronous};
                     PRAGMA foreign_keys = ON;
                     PRAGMA temp_store = MEMORY;
                     PRAGMA mmap_size = {MMAP_BYTES};
                     {extra}"
                ))
            })
        };
        // The writer never checkpoints: a checkpoint inside a commit (SQLite's
        // default every 1,000 pages) fsyncs the database file on the request's
        // path, and was a third of an import's time. The checkpointer thread
        // does it instead, concurrently with writes.
        // The writer restarts the WAL once a checkpoint has copied all of it,
        // and then cuts the file back to the restart size.
        let writer_pragmas = format!(
            "PRAGMA cache_size = -{WRITER_CACHE_KIB}; PRAGMA wal_autocheckpoint = 0;
             PRAGMA journal_size_limit = {WAL_RESTART_BYTES};"
        );
        let mut conn = manager(writer_pragmas).connect().map_err(backend)?;
        migrate(&mut conn)?;
        let feed = CommitFeed::default();
        let catch_up = Arc::new(AtomicBool::new(false));
        let writer =
            writer::Writer::start(conn, feed.clone(), catch_up.clone()).map_err(backend)?;
        let readers = Pool::builder()
            .max_size(READERS)
            .min_idle(Some(1))
            .build(manager(String::new()))
            .map_err(backend)?;
        let alive = Arc::new(());
        spawn_checkpointer(path.to_owned(), Arc::downgrade(&alive), catch_up);
        Ok(SqliteStore {
            _alive: alive,
            path: path.to_owned(),
            writer,
            readers,
            feed,
        })
    }

    async fn read<T, F>(&self, query: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    {
        let pool = self.readers.clone();
        tokio::task::spawn_blocking(move || {
            let conn = pool.get().map_err(backend)?;
            query(&conn).map_err(StoreError::from)
        })
        .await
        .map_err(backend)?
    }

    /// Runs `work` in one `BEGIN IMMEDIATE` transaction (shared with other
    /// waiting changes, see [`writer`]): all of it commits or none.
    async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> StoreResult<T> + Send + 'static,
    {
        self.writer.write(work).await
    }

    /// How many statements the writer has run: a change's cost on the one writer.
    #[cfg(test)]
    pub fn writer_statements(&self) -> u64 {
        self.writer.statements()
    }

    /// [`SqliteStore::write`] in a transaction of its own, for big changes.
    async fn write_alone<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>) -> StoreResult<T> + Send + 'static,
    {
        self.writer.write_alone(work).await
    }
}

/// Checkpoints the WAL every [`CHECKPOINT_EVERY`] on a connection of its
/// own, until the store is dropped.
///
/// A passive checkpoint copies what no reader still needs and never blocks
/// the writer, but under steady writes it never copies all of the WAL, so
/// the WAL never starts again from its beginning. SQLite restarts it when
/// the writer begins a transaction with every frame copied and no reader
/// on an old snapshot. So once the WAL holds more than
/// [`WAL_RESTART_BYTES`] the checkpointer sets `catch_up`, and the writer,
/// between two transactions, copies the few frames the passive passes left
/// (see [`catch_up`]), as only it can with no write running.
///
/// A `RESTART` checkpoint here instead held off the writer for 7-13 ms
/// twice a second under checkout load, waiting for a moment with no reader
/// at all: the whole tail of a checkout at 8 connections.
fn spawn_checkpointer(path: PathBuf, alive: Weak<()>, catch_up: Arc<AtomicBool>) {
    let started = std::thread::Builder::new()
        .name("sqlite-checkpoint".to_owned())
        .spawn(move || {
            let conn = match Connection::open(&path) {
                Ok(conn) => conn,
                Err(err) => {
                    tracing::error!(error = %err, "the WAL checkpointer cannot open the database");
                    return;
                }
            };
            if let Err(err) = conn.busy_handler(Some(poll_busy::<WAL_RESTART_WAIT_MS>)) {
                tracing::warn!(error = %err, "the WAL checkpointer has no busy timeout");
            }
            let page_bytes = conn
                .query_row("PRAGMA page_size", [], |row| row.get::<_, i64>(0))
                .unwrap_or(4096);
            loop {
                std::thread::sleep(CHECKPOINT_EVERY);
                if alive.strong_count() == 0 {
                    return;
                }
                let Some(mut progress) = checkpoint(&conn, "PASSIVE", "checkpointer") else {
                    continue;
                };
                let wal_bytes = progress.frames * page_bytes;
                metrics::gauge!("shop_store_wal_bytes").set(wal_bytes as f64);
                if wal_bytes > WAL_FORCE_RESTART_BYTES {
                    checkpoint(&conn, "RESTART", "checkpointer");
                    continue;
                }
                if wal_bytes <= WAL_RESTART_BYTES {
                    continue;
                }
                for _ in 1..WAL_CATCH_UP_PASSES {
                    let Some(next) = checkpoint(&conn, "PASSIVE", "checkpointer") else {
                        break;
                    };
                    let found = next.frames - progress.copied;
                    progress = next;
                    if found <= WAL_CATCH_UP_LEFT_FRAMES {
                        break;
                    }
                }
                catch_up.store(true, Ordering::Relaxed);
            }
        });
    if let Err(err) = started {
        tracing::error!(error = %err, "cannot start the WAL checkpointer");
    }
}

/// On the writer's connection, between two of its transactions: copies the
/// rest of the WAL, so that the writer's next transaction starts the WAL
/// again from its beginning (unless a reader still holds an old snapshot;
/// the checkpointer then asks again after its next pass).
pub(super) fn catch_up(conn: &Connection) {
    checkpoint(conn, "PASSIVE", "writer");
}

/// How far a checkpoint got.
struct Checkpointed {
    /// Frames in the WAL.
    frames: i64,
    /// Frames of it now in the database file.
    copied: i64,
}

/// Runs one checkpoint in `mode` on `by`'s connection; how far it got, or
/// `None` when it failed.
fn checkpoint(conn: &Connection, mode: &'static str, by: &'static str) -> Option<Checkpointed> {
    let started = Instant::now();
    let progress = conn.query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |row| {
        Ok(Checkpointed {
            frames: row.get(1)?,
            copied: row.get(2)?,
        })
    });
    metrics::histogram!("shop_store_checkpoint_seconds", "mode" => mode, "by" => by)
        .record(started.elapsed().as_secs_f64());
    match progress {
        Ok(progress) => Some(progress),
        Err(err) => {
            tracing::warn!(error = %err, mode, by, "WAL checkpoint failed; retrying");
            None
        }
    }
}

fn backend(err: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::Backend(Box::new(err))
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        match err.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                StoreError::Busy
            }
            _ => backend(err),
        }
    }
}

fn millis(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

fn from_millis(ms: i64) -> rusqlite::Result<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).map_err(|err| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Integer, Box::new(err))
    })
}

fn conversion(err: impl std::error::Error + Send + Sync + 'static) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(err))
}

fn parse_column<T: std::str::FromStr>(row: &Row<'_>, column: &str) -> rusqlite::Result<T>
where
    T::Err: std::fmt::Display,
{
    let text: String = row.get(column)?;
    text.parse()
        .map_err(|err: T::Err| conversion(std::io::Error::other(format!("column {column}: {err}"))))
}

fn is_unique_violation(err: &rusqlite::Error) -> bool {
    matches!(
        err,
        rusqlite::Error::SqliteFailure(e, _)
            if e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
    )
}

impl Store for SqliteStore {}

#[async_trait]
impl StoreHealth for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        // Reads the first page, so a reader must really open a read
        // transaction on the file (`SELECT 1` alone touches nothing).
        self.read(|conn| conn.query_row("SELECT 1 FROM sqlite_schema LIMIT 1", [], |_| Ok(())))
            .await?;
        // The writer must be moving too, a stuck write transaction is an
        // outage; but it is only looked at, not sent a transaction.
        match self.writer.liveness() {
            writer::Liveness::Idle => Ok(()),
            writer::Liveness::Busy(running) if running < WRITER_STUCK => Ok(()),
            writer::Liveness::Busy(running) => Err(StoreError::Backend(
                format!(
                    "the database writer has been inside one transaction for {} ms",
                    running.as_millis()
                )
                .into(),
            )),
            writer::Liveness::Stopped => Err(StoreError::Backend(
                "the database writer has stopped".into(),
            )),
        }
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{
        EventStore, IdempotencyBegin, IdempotencyStore, NewEvent, RefreshOutcome, RoleChange,
        SessionRecord, SessionStore, StoredResponse, UserRecord, UserStore, now,
    };
    use shop_wire::events::EventData;
    use shop_wire::users::{Role, User};
    use shop_wire::{SessionId, UserId};

    /// A store on a fresh file in a temp dir, which lives as long as the guard.
    pub(super) fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store =
            SqliteStore::open(&dir.path().join("shop.db"), Durability::Process).expect("open");
        (dir, store)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ping_sends_the_writer_nothing_and_finds_it_stuck() {
        let (_dir, store) = store();
        store.ping().await.expect("a fresh store answers");
        let before = store.writer_statements();
        for _ in 0..20 {
            store.ping().await.expect("ping");
        }
        assert_eq!(
            store.writer_statements(),
            before,
            "a health check costs the writer nothing"
        );
        // A change that does not finish holds the writer.
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let held = {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .write(move |_| {
                        let _ = hold.recv();
                        Ok(())
                    })
                    .await
            })
        };
        tokio::time::sleep(WRITER_STUCK / 4).await;
        store
            .ping()
            .await
            .expect("a writer busy for a moment is not stuck");
        tokio::time::sleep(WRITER_STUCK).await;
        let stuck = store
            .ping()
            .await
            .expect_err("a stuck writer fails the ping");
        assert!(
            stuck.to_string().contains("inside one transaction"),
            "{stuck}"
        );
        release.send(()).expect("the change is still waiting");
        held.await.expect("task").expect("the held change commits");
        store
            .ping()
            .await
            .expect("answers again once the writer moves");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn ping_does_not_answer_while_no_reader_can_read() {
        let (_dir, store) = store();
        let (holding, held) = std::sync::mpsc::channel::<()>();
        let mut releases = Vec::new();
        let stalled: Vec<_> = (0..READERS)
            .map(|_| {
                let (release, wait) = std::sync::mpsc::channel::<()>();
                releases.push(release);
                let (store, holding) = (store.clone(), holding.clone());
                tokio::spawn(async move {
                    store
                        .read(move |conn| {
                            let _ = holding.send(());
                            let _ = wait.recv();
                            conn.query_row("SELECT 1", [], |_| Ok(()))
                        })
                        .await
                })
            })
            .collect();
        for _ in 0..READERS {
            held.recv_timeout(Duration::from_secs(10))
                .expect("every reader connection is taken");
        }
        let ping = tokio::time::timeout(Duration::from_millis(500), store.ping()).await;
        assert!(
            ping.is_err(),
            "answered with every reader stalled: {ping:?}"
        );
        drop(releases);
        for read in stalled {
            read.await.expect("task").expect("the stalled reads finish");
        }
        store.ping().await.expect("answers again");
    }

    #[test]
    fn a_new_database_has_small_pages_and_an_old_one_keeps_its_own() {
        let page_size = |path: &Path| {
            Connection::open(path)
                .expect("open")
                .query_row("PRAGMA page_size", [], |row| row.get::<_, u32>(0))
                .expect("page size")
        };
        let (dir, _store) = store();
        assert_eq!(page_size(&dir.path().join("shop.db")), PAGE_BYTES);
        let old = dir.path().join("old.db");
        Connection::open(&old)
            .expect("create")
            .execute_batch("PRAGMA page_size = 4096; CREATE TABLE t (n INTEGER);")
            .expect("an older database");
        let reopened = SqliteStore::open(&old, Durability::Process).expect("open the old one");
        drop(reopened);
        assert_eq!(page_size(&old), 4096);
    }

    fn user(email: &str) -> UserRecord {
        let at = now();
        UserRecord {
            user: User {
                id: UserId::generate(),
                email: email.to_owned(),
                name: "Ada".to_owned(),
                role: Role::Customer,
                addresses: vec![],
                email_verified: false,
                created_at: at,
                updated_at: at,
            },
            password_hash: "hash".to_owned(),
        }
    }

    #[tokio::test]
    async fn user_and_its_event_commit_together_and_emails_are_unique_ignoring_case() {
        let (_dir, store) = store();
        let ada = user("ada@example.com");
        store
            .insert_user(
                &ada,
                vec![NewEvent::now(EventData::UserRegistered((&ada.user).into()))],
            )
            .await
            .expect("insert");
        let events = store.events_after(0, 10).await.expect("events");
        assert_eq!((events.len(), events[0].id), (1, 1));

        let again = user("ADA@example.com");
        let err = store
            .insert_user(&again, vec![NewEvent::example()])
            .await
            .unwrap_err();
        assert!(matches!(err, StoreError::Duplicate { field: "email", .. }));
        // The failed insert's event was rolled back with it.
        assert_eq!(store.events_after(0, 10).await.expect("events").len(), 1);

        let found = store
            .user_by_email("Ada@Example.com")
            .await
            .expect("read")
            .expect("found");
        assert_eq!(found.user, ada.user);
    }

    #[tokio::test]
    async fn an_open_read_transaction_neither_blocks_a_write_nor_sees_it() {
        let (_dir, store) = store();
        store
            .insert_user(&user("first@example.com"), vec![])
            .await
            .expect("insert");
        // A reader mid-transaction, as a long list query would be.
        let reader = store.readers.get().expect("reader");
        reader.execute_batch("BEGIN").expect("begin");
        let count = |conn: &Connection| -> i64 {
            conn.query_row("SELECT count(*) FROM users", [], |row| row.get(0))
                .expect("count")
        };
        assert_eq!(count(&reader), 1);

        let started = Instant::now();
        store
            .insert_user(&user("second@example.com"), vec![])
            .await
            .expect("write while reading");
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(count(&reader), 1, "the reader keeps its snapshot");
        reader.execute_batch("COMMIT").expect("end read");
        assert_eq!(count(&reader), 2);
    }

    #[tokio::test]
    async fn a_newer_schema_is_refused_with_a_clear_message() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("shop.db");
        drop(SqliteStore::open(&path, Durability::Process).expect("open"));
        Connection::open(&path)
            .and_then(|conn| conn.pragma_update(None, "user_version", 99))
            .expect("bump version");
        let err = SqliteStore::open(&path, Durability::Process).unwrap_err();
        assert!(
            matches!(err, StoreError::SchemaTooNew { found: 99, .. }),
            "{err}"
        );
        assert!(err.to_string().contains("newer"));
    }

    #[tokio::test]
    async fn refresh_rotation_detects_reuse_of_an_old_secret() {
        let (_dir, store) = store();
        let ada = user("ada@example.com");
        store.insert_user(&ada, vec![]).await.expect("user");
        let at = now();
        let session = SessionRecord {
            id: SessionId::generate(),
            user_id: ada.user.id.clone(),
            refresh_hash: "first".to_owned(),
            user_agent: None,
            ip: None,
            created_at: at,
            last_used_at: at,
            expires_at: at + time::Duration::hours(1),
            revoked_at: None,
        };
        store
            .insert_session(&session, vec![])
            .await
            .expect("session");
        let later = at + time::Duration::hours(2);
        let rotated = store
            .rotate_refresh(&session.id, "first", "second", later)
            .await
            .expect("rotate");
        assert!(matches!(rotated, RefreshOutcome::Rotated(s) if s.expires_at == later));
        let replay = store
            .rotate_refresh(&session.id, "first", "third", later)
            .await
            .expect("replay");
        assert!(matches!(replay, RefreshOutcome::ReuseDetected));
        let after = store
            .rotate_refresh(&session.id, "second", "fourth", later)
            .await
            .expect("after");
        assert!(
            matches!(after, RefreshOutcome::Inactive),
            "a reused token revokes the session"
        );
    }

    #[tokio::test]
    async fn purge_removes_only_sessions_that_ended_before_the_cutoff() {
        let (_dir, store) = store();
        let ada = user("ada@example.com");
        store.insert_user(&ada, vec![]).await.expect("user");
        let at = now();
        let session = |expires_at, revoked_at| SessionRecord {
            id: SessionId::generate(),
            user_id: ada.user.id.clone(),
            refresh_hash: "h".to_owned(),
            user_agent: None,
            ip: None,
            created_at: at,
            last_used_at: at,
            expires_at,
            revoked_at,
        };
        let hour = time::Duration::hours(1);
        let expired = session(at - hour * 2, None);
        let revoked = session(at + hour, Some(at - hour * 2));
        let live = session(at + hour, None);
        let recently_revoked = session(at + hour, Some(at));
        for s in [&expired, &revoked, &live, &recently_revoked] {
            store.insert_session(s, vec![]).await.expect("insert");
        }
        assert_eq!(store.purge_sessions(at - hour).await.expect("purge"), 2);
        let left: Vec<_> = store
            .active_sessions(&ada.user.id, at)
            .await
            .expect("list")
            .into_iter()
            .map(|s| s.id)
            .collect();
        assert_eq!(left, vec![live.id.clone()]);
        assert!(
            store
                .session_auth(&recently_revoked.id)
                .await
                .expect("read")
                .is_some_and(|s| s.revoked)
        );
        assert!(
            store
                .session_auth(&expired.id)
                .await
                .expect("read")
                .is_none()
        );
    }

    #[tokio::test]
    async fn concurrent_demotions_never_leave_the_shop_without_an_admin() {
        let (_dir, store) = store();
        let mut admins = Vec::new();
        for email in ["a@example.com", "b@example.com"] {
            let mut record = user(email);
            record.user.role = Role::Admin;
            store.insert_user(&record, vec![]).await.expect("insert");
            admins.push(record.user.id);
        }
        let (first, second) = tokio::join!(
            store.set_role(&admins[0], Role::Customer, vec![]),
            store.set_role(&admins[1], Role::Customer, vec![]),
        );
        let outcomes = [first.expect("first"), second.expect("second")];
        let changed = outcomes
            .iter()
            .filter(|o| matches!(o, RoleChange::Changed(..)))
            .count();
        let refused = outcomes
            .iter()
            .filter(|o| matches!(o, RoleChange::LastAdmin))
            .count();
        assert_eq!((changed, refused), (1, 1));
        assert_eq!(
            store
                .count_users_with_role(Role::Admin)
                .await
                .expect("count"),
            1
        );
        let missing = UserId::generate();
        assert!(matches!(
            store
                .set_role(&missing, Role::Staff, vec![])
                .await
                .expect("set"),
            RoleChange::NotFound
        ));
    }

    #[tokio::test]
    async fn idempotency_claims_replays_and_mismatches() {
        let (_dir, store) = store();
        let stale = time::Duration::minutes(5);
        assert_eq!(
            store
                .begin_idempotent("k", "a", stale)
                .await
                .expect("begin"),
            IdempotencyBegin::Started
        );
        assert_eq!(
            store
                .begin_idempotent("k", "a", stale)
                .await
                .expect("begin"),
            IdempotencyBegin::InProgress
        );
        let response = StoredResponse {
            status: 201,
            content_type: Some("application/json".into()),
            body: b"{}".to_vec(),
        };
        store
            .complete_idempotent("k", &response)
            .await
            .expect("complete");
        assert_eq!(
            store
                .begin_idempotent("k", "a", stale)
                .await
                .expect("begin"),
            IdempotencyBegin::Replay(response)
        );
        assert_eq!(
            store
                .begin_idempotent("k", "b", stale)
                .await
                .expect("begin"),
            IdempotencyBegin::Mismatch
        );
        // A claim whose request died is taken over once stale.
        store
            .begin_idempotent("dead", "a", stale)
            .await
            .expect("begin");
        assert_eq!(
            store
                .begin_idempotent("dead", "a", time::Duration::ZERO)
                .await
                .expect("begin"),
            IdempotencyBegin::Started
        );
    }

    #[test]
    fn a_busy_wait_looks_quickly_then_slowly_and_gives_up_at_its_limit() {
        // 100 us looks for the first 20 ms, then 1 ms looks: 50 ms is 230 looks.
        assert!(poll_busy::<50>(0));
        assert!(poll_busy::<50>(199));
        assert!(poll_busy::<50>(229));
        assert!(!poll_busy::<50>(230));
        assert!(!poll_busy::<0>(0));
        assert!(
            !poll_busy::<5_000>(i32::MAX),
            "a count past any limit gives up"
        );
    }
}
