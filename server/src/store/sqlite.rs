//! The SQLite backend: one writer connection, a pool of readers, WAL.
//!
//! SQLite allows one writer at a time, so writes go through a pool of exactly
//! one connection and queue in-process instead of spinning on `SQLITE_BUSY`;
//! every write is a `BEGIN IMMEDIATE` transaction, which takes the write lock up
//! front and so can never fail half-way on a lock upgrade. Readers use their
//! own connections and, under WAL, never block the writer nor wait for it.
//! All of it runs on tokio's blocking pool, never on the reactor threads.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use r2d2::{ManageConnection, Pool};
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};
use rusqlite_migration::{M, Migrations};
use shop_wire::users::{Address, Role, User};
use shop_wire::{Event, SessionId, UserId};
use time::OffsetDateTime;

mod carts;
mod catalog;
mod inventory;
mod notifications;
mod orders;
mod search;
mod writer;

use super::{
    EventQuery, EventStore, IdempotencyBegin, IdempotencyStore, NewEvent, ProfileUpdate,
    RefreshOutcome, RoleChange, SessionAuth, SessionRecord, SessionStore, Store, StoreError,
    StoreResult, StoredResponse, UserQuery, UserRecord, UserStore, now,
};

/// Migrations in order; the database's `user_version` counts how many ran.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_platform.sql"),
    include_str!("migrations/0002_notifications.sql"),
    include_str!("migrations/0003_catalog.sql"),
    include_str!("migrations/0004_commerce.sql"),
    include_str!("migrations/0005_search.sql"),
];

const READERS: u32 = 4;
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
const CHECKPOINT_EVERY: Duration = Duration::from_millis(500);
/// A WAL larger than this is truncated (waiting for readers) rather than
/// checkpointed passively, so it cannot grow without bound under steady reads.
const WAL_TRUNCATE_BYTES: u64 = 64 * 1024 * 1024;

/// How the database trades durability for commit latency.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Durability {
    /// `synchronous=NORMAL`: every acknowledged commit survives a crash or
    /// `kill -9` of the process; a power cut may lose the last few.
    #[default]
    Process,
    /// `synchronous=FULL`: commits also survive a power cut, at an fsync each.
    Power,
}

#[derive(Clone)]
pub struct SqliteStore {
    /// The checkpointer thread runs while any clone of the store is alive.
    _alive: Arc<()>,
    path: PathBuf,
    writer: writer::Writer,
    readers: Pool<SqliteConnectionManager>,
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
        let synchronous = match durability {
            Durability::Process => "NORMAL",
            Durability::Power => "FULL",
        };
        let manager = |extra: String| {
            SqliteConnectionManager::file(path).with_init(move |conn| {
                conn.busy_timeout(Duration::from_secs(5))?;
                conn.execute_batch(&format!(
                    "PRAGMA journal_mode = WAL;
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
        let writer_pragmas =
            format!("PRAGMA cache_size = -{WRITER_CACHE_KIB}; PRAGMA wal_autocheckpoint = 0;");
        let mut conn = manager(writer_pragmas).connect().map_err(backend)?;
        migrate(&mut conn)?;
        let writer = writer::Writer::start(conn).map_err(backend)?;
        let readers = Pool::builder()
            .max_size(READERS)
            .min_idle(Some(1))
            .build(manager(String::new()))
            .map_err(backend)?;
        let alive = Arc::new(());
        spawn_checkpointer(path.to_owned(), Arc::downgrade(&alive));
        Ok(SqliteStore {
            _alive: alive,
            path: path.to_owned(),
            writer,
            readers,
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
fn spawn_checkpointer(path: PathBuf, alive: Weak<()>) {
    let wal = {
        let mut name = path.clone().into_os_string();
        name.push("-wal");
        PathBuf::from(name)
    };
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
            if let Err(err) = conn.busy_timeout(Duration::from_secs(5)) {
                tracing::warn!(error = %err, "the WAL checkpointer has no busy timeout");
            }
            loop {
                std::thread::sleep(CHECKPOINT_EVERY);
                if alive.strong_count() == 0 {
                    return;
                }
                let size = std::fs::metadata(&wal).map_or(0, |m| m.len());
                let mode = if size > WAL_TRUNCATE_BYTES {
                    "TRUNCATE"
                } else {
                    "PASSIVE"
                };
                let checkpoint = format!("PRAGMA wal_checkpoint({mode})");
                if let Err(err) = conn.query_row(&checkpoint, [], |_| Ok(())) {
                    tracing::warn!(error = %err, mode, "WAL checkpoint failed; retrying");
                }
            }
        });
    if let Err(err) = started {
        tracing::error!(error = %err, "cannot start the WAL checkpointer");
    }
}

fn migrate(conn: &mut Connection) -> StoreResult<()> {
    let known = MIGRATIONS.len() as i64;
    let found: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found > known {
        return Err(StoreError::SchemaTooNew { found, known });
    }
    let migrations = Migrations::new(MIGRATIONS.iter().map(|sql| M::up(sql)).collect());
    migrations.to_latest(conn).map_err(backend)
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

const USER_COLUMNS: &str =
    "id, email, name, role, password_hash, addresses, created_at, updated_at";

fn user_row(row: &Row<'_>) -> rusqlite::Result<UserRecord> {
    let addresses: String = row.get("addresses")?;
    Ok(UserRecord {
        user: User {
            id: parse_column(row, "id")?,
            email: row.get("email")?,
            name: row.get("name")?,
            role: parse_column(row, "role")?,
            addresses: serde_json::from_str::<Vec<Address>>(&addresses).map_err(conversion)?,
            created_at: from_millis(row.get("created_at")?)?,
            updated_at: from_millis(row.get("updated_at")?)?,
        },
        password_hash: row.get("password_hash")?,
    })
}

const SESSION_COLUMNS: &str =
    "id, user_id, refresh_hash, user_agent, ip, created_at, last_used_at, expires_at, revoked_at";

fn session_row(row: &Row<'_>) -> rusqlite::Result<SessionRecord> {
    Ok(SessionRecord {
        id: parse_column(row, "id")?,
        user_id: parse_column(row, "user_id")?,
        refresh_hash: row.get("refresh_hash")?,
        user_agent: row.get("user_agent")?,
        ip: row.get("ip")?,
        created_at: from_millis(row.get("created_at")?)?,
        last_used_at: from_millis(row.get("last_used_at")?)?,
        expires_at: from_millis(row.get("expires_at")?)?,
        revoked_at: row
            .get::<_, Option<i64>>("revoked_at")?
            .map(from_millis)
            .transpose()?,
    })
}

fn event_row(row: &Row<'_>) -> rusqlite::Result<Event> {
    let data: String = row.get("data")?;
    Ok(Event {
        id: row.get::<_, i64>("id")? as u64,
        kind: row.get("type")?,
        occurred_at: from_millis(row.get("occurred_at")?)?,
        data: serde_json::from_str(&data).map_err(conversion)?,
    })
}

/// Appends events inside the caller's transaction, returning them with their ids.
fn append(tx: &Transaction<'_>, events: Vec<NewEvent>) -> StoreResult<Vec<Event>> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO events (type, occurred_at, data) VALUES (?1, ?2, ?3) RETURNING id",
    )?;
    events
        .into_iter()
        .map(|event| {
            let id: i64 = insert.query_row(
                params![
                    event.kind,
                    millis(event.occurred_at),
                    event.data.to_string()
                ],
                |row| row.get(0),
            )?;
            Ok(Event {
                id: id as u64,
                kind: event.kind.to_owned(),
                occurred_at: event.occurred_at,
                data: event.data,
            })
        })
        .collect()
}

#[async_trait]
impl UserStore for SqliteStore {
    async fn insert_user(
        &self,
        record: &UserRecord,
        events: Vec<NewEvent>,
    ) -> StoreResult<Vec<Event>> {
        let record = record.clone();
        self.write(move |tx| {
            let user = &record.user;
            let addresses = serde_json::to_string(&user.addresses).map_err(backend)?;
            tx.prepare_cached(&format!(
                "INSERT INTO users ({USER_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
            ))?
            .execute(params![
                user.id.as_str(),
                user.email,
                user.name,
                user.role.as_str(),
                record.password_hash,
                addresses,
                millis(user.created_at),
                millis(user.updated_at),
            ])
            .map_err(|err| {
                if is_unique_violation(&err) {
                    StoreError::Duplicate {
                        entity: "user",
                        field: "email",
                    }
                } else {
                    err.into()
                }
            })?;
            append(tx, events)
        })
        .await
    }

    async fn user(&self, id: &UserId) -> StoreResult<Option<UserRecord>> {
        let id = id.clone();
        self.read(move |conn| {
            conn.prepare_cached(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"))?
                .query_row([id.as_str()], user_row)
                .optional()
        })
        .await
    }

    async fn user_by_email(&self, email: &str) -> StoreResult<Option<UserRecord>> {
        let email = email.to_owned();
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {USER_COLUMNS} FROM users WHERE email = ?1"
            ))?
            .query_row([email], user_row)
            .optional()
        })
        .await
    }

    async fn list_users(&self, query: &UserQuery) -> StoreResult<(Vec<User>, u64)> {
        let query = query.clone();
        self.read(move |conn| {
            let role = query.role.map(Role::as_str);
            let pattern = query
                .text
                .as_ref()
                .map(|text| format!("%{}%", escape_like(text)));
            let filter = "(?1 IS NULL OR role = ?1)
                 AND (?2 IS NULL OR email LIKE ?2 ESCAPE '\\' OR name LIKE ?2 ESCAPE '\\')";
            let total: i64 = conn
                .prepare_cached(&format!("SELECT count(*) FROM users WHERE {filter}"))?
                .query_row(params![role, pattern], |row| row.get(0))?;
            let users = conn
                .prepare_cached(&format!(
                    "SELECT {USER_COLUMNS} FROM users WHERE {filter} ORDER BY id LIMIT ?3 OFFSET ?4"
                ))?
                .query_map(
                    params![role, pattern, query.limit, query.offset as i64],
                    |row| user_row(row).map(|record| record.user),
                )?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((users, total as u64))
        })
        .await
    }

    async fn count_users_with_role(&self, role: Role) -> StoreResult<u64> {
        self.read(move |conn| {
            conn.prepare_cached("SELECT count(*) FROM users WHERE role = ?1")?
                .query_row([role.as_str()], |row| row.get::<_, i64>(0))
                .map(|count| count as u64)
        })
        .await
    }

    async fn update_profile(
        &self,
        id: &UserId,
        update: &ProfileUpdate,
    ) -> StoreResult<Option<User>> {
        let id = id.clone();
        let update = update.clone();
        self.write(move |tx| {
            let addresses = update
                .addresses
                .as_ref()
                .map(serde_json::to_string)
                .transpose()
                .map_err(backend)?;
            tx.prepare_cached(&format!(
                "UPDATE users SET name = coalesce(?2, name), addresses = coalesce(?3, addresses),
                        updated_at = ?4
                 WHERE id = ?1 RETURNING {USER_COLUMNS}"
            ))?
            .query_row(
                params![id.as_str(), update.name, addresses, millis(now())],
                user_row,
            )
            .optional()
            .map(|record| record.map(|r| r.user))
            .map_err(StoreError::from)
        })
        .await
    }

    async fn set_password(
        &self,
        id: &UserId,
        hash: &str,
        keep: Option<&SessionId>,
    ) -> StoreResult<()> {
        let (id, hash, keep) = (id.clone(), hash.to_owned(), keep.cloned());
        self.write(move |tx| {
            let at = millis(now());
            tx.prepare_cached(
                "UPDATE users SET password_hash = ?2, updated_at = ?3 WHERE id = ?1",
            )?
            .execute(params![id.as_str(), hash, at])?;
            tx.prepare_cached(
                "UPDATE sessions SET revoked_at = ?3
                 WHERE user_id = ?1 AND revoked_at IS NULL AND id IS NOT ?2",
            )?
            .execute(params![
                id.as_str(),
                keep.as_ref().map(SessionId::as_str),
                at
            ])?;
            Ok(())
        })
        .await
    }

    async fn set_role(
        &self,
        id: &UserId,
        role: Role,
        events: Vec<NewEvent>,
    ) -> StoreResult<RoleChange> {
        let id = id.clone();
        self.write(move |tx| {
            let current: Option<String> = tx
                .prepare_cached("SELECT role FROM users WHERE id = ?1")?
                .query_row([id.as_str()], |row| row.get(0))
                .optional()?;
            let Some(current) = current else { return Ok(RoleChange::NotFound) };
            if current == Role::Admin.as_str() && role != Role::Admin {
                let admins: i64 = tx
                    .prepare_cached("SELECT count(*) FROM users WHERE role = 'admin'")?
                    .query_row([], |row| row.get(0))?;
                if admins <= 1 {
                    return Ok(RoleChange::LastAdmin);
                }
            }
            let record = tx
                .prepare_cached(&format!(
                    "UPDATE users SET role = ?2, updated_at = ?3 WHERE id = ?1 RETURNING {USER_COLUMNS}"
                ))?
                .query_row(params![id.as_str(), role.as_str(), millis(now())], user_row)?;
            Ok(RoleChange::Changed(record.user, append(tx, events)?))
        })
        .await
    }
}

fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

#[async_trait]
impl SessionStore for SqliteStore {
    async fn insert_session(
        &self,
        session: &SessionRecord,
        events: Vec<NewEvent>,
    ) -> StoreResult<Vec<Event>> {
        let s = session.clone();
        self.write(move |tx| {
            tx.prepare_cached(&format!(
                "INSERT INTO sessions ({SESSION_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
            ))?
            .execute(params![
                s.id.as_str(),
                s.user_id.as_str(),
                s.refresh_hash,
                s.user_agent,
                s.ip,
                millis(s.created_at),
                millis(s.last_used_at),
                millis(s.expires_at),
                s.revoked_at.map(millis),
            ])?;
            append(tx, events)
        })
        .await
    }

    async fn session_auth(&self, id: &SessionId) -> StoreResult<Option<SessionAuth>> {
        let id = id.clone();
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT s.user_id, u.role, s.expires_at, s.revoked_at IS NOT NULL AS revoked
                 FROM sessions s JOIN users u ON u.id = s.user_id WHERE s.id = ?1",
            )?
            .query_row([id.as_str()], |row| {
                Ok(SessionAuth {
                    user_id: parse_column(row, "user_id")?,
                    role: parse_column(row, "role")?,
                    expires_at: from_millis(row.get("expires_at")?)?,
                    revoked: row.get("revoked")?,
                })
            })
            .optional()
        })
        .await
    }

    async fn active_sessions(
        &self,
        user: &UserId,
        at: OffsetDateTime,
    ) -> StoreResult<Vec<SessionRecord>> {
        let user = user.clone();
        self.read(move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {SESSION_COLUMNS} FROM sessions
                 WHERE user_id = ?1 AND revoked_at IS NULL AND expires_at > ?2
                 ORDER BY id DESC"
            ))?
            .query_map(params![user.as_str(), millis(at)], session_row)?
            .collect()
        })
        .await
    }

    async fn rotate_refresh(
        &self,
        id: &SessionId,
        presented_hash: &str,
        new_hash: &str,
        expires_at: OffsetDateTime,
    ) -> StoreResult<RefreshOutcome> {
        let (id, presented, new_hash) =
            (id.clone(), presented_hash.to_owned(), new_hash.to_owned());
        self.write(move |tx| {
            let at = now();
            let session = tx
                .prepare_cached(&format!(
                    "SELECT {SESSION_COLUMNS} FROM sessions WHERE id = ?1"
                ))?
                .query_row([id.as_str()], session_row)
                .optional()?;
            let Some(session) = session.filter(|s| s.is_active(at)) else {
                return Ok(RefreshOutcome::Inactive);
            };
            if session.refresh_hash != presented {
                tx.prepare_cached("UPDATE sessions SET revoked_at = ?2 WHERE id = ?1")?
                    .execute(params![id.as_str(), millis(at)])?;
                return Ok(RefreshOutcome::ReuseDetected);
            }
            let rotated = tx
                .prepare_cached(&format!(
                    "UPDATE sessions SET refresh_hash = ?2, last_used_at = ?3, expires_at = ?4
                     WHERE id = ?1 RETURNING {SESSION_COLUMNS}"
                ))?
                .query_row(
                    params![id.as_str(), new_hash, millis(at), millis(expires_at)],
                    session_row,
                )?;
            Ok(RefreshOutcome::Rotated(rotated))
        })
        .await
    }

    async fn revoke_session(
        &self,
        id: &SessionId,
        user: &UserId,
        events: Vec<NewEvent>,
    ) -> StoreResult<Option<Vec<Event>>> {
        let (id, user) = (id.clone(), user.clone());
        self.write(move |tx| {
            let at = millis(now());
            let changed = tx
                .prepare_cached(
                    "UPDATE sessions SET revoked_at = ?3
                     WHERE id = ?1 AND user_id = ?2 AND revoked_at IS NULL AND expires_at > ?3",
                )?
                .execute(params![id.as_str(), user.as_str(), at])?;
            if changed == 0 {
                return Ok(None);
            }
            append(tx, events).map(Some)
        })
        .await
    }

    async fn purge_sessions(&self, before: OffsetDateTime) -> StoreResult<u64> {
        self.write(move |tx| {
            let cutoff = millis(before);
            let deleted = tx
                .prepare_cached("DELETE FROM sessions WHERE expires_at < ?1 OR revoked_at < ?1")?
                .execute([cutoff])?;
            Ok(deleted as u64)
        })
        .await
    }
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn append_events(&self, events: Vec<NewEvent>) -> StoreResult<Vec<Event>> {
        self.write(move |tx| append(tx, events)).await
    }

    async fn events_after(&self, after: u64, limit: u32) -> StoreResult<Vec<Event>> {
        self.read(move |conn| {
            conn.prepare_cached(
                "SELECT id, type, occurred_at, data FROM events WHERE id > ?1 ORDER BY id LIMIT ?2",
            )?
            .query_map(params![after as i64, limit], event_row)?
            .collect()
        })
        .await
    }

    async fn list_events(&self, query: &EventQuery) -> StoreResult<(Vec<Event>, u64)> {
        let query = query.clone();
        self.read(move |conn| {
            let mut clauses = Vec::new();
            let mut args = vec![rusqlite::types::Value::Integer(query.after as i64)];
            for pattern in &query.types {
                match pattern.strip_suffix('*') {
                    Some(prefix) => {
                        clauses.push("type LIKE ? ESCAPE '\\'");
                        args.push(format!("{}%", escape_like(prefix)).into());
                    }
                    None => {
                        clauses.push("type = ?");
                        args.push(pattern.clone().into());
                    }
                }
            }
            let types = if clauses.is_empty() {
                "1".to_owned()
            } else {
                clauses.join(" OR ")
            };
            let mut filter = format!("id > ? AND ({types})");
            for pattern in &query.excluded {
                match pattern.strip_suffix('*') {
                    Some(prefix) => {
                        filter.push_str(" AND type NOT LIKE ? ESCAPE '\\'");
                        args.push(format!("{}%", escape_like(prefix)).into());
                    }
                    None => {
                        filter.push_str(" AND type <> ?");
                        args.push(pattern.clone().into());
                    }
                }
            }
            let total: i64 = conn
                .prepare_cached(&format!("SELECT count(*) FROM events WHERE {filter}"))?
                .query_row(rusqlite::params_from_iter(&args), |row| row.get(0))?;
            args.push(query.limit.into());
            args.push((query.offset as i64).into());
            let events = conn
                .prepare_cached(&format!(
                    "SELECT id, type, occurred_at, data FROM events WHERE {filter} \
                     ORDER BY id LIMIT ? OFFSET ?"
                ))?
                .query_map(rusqlite::params_from_iter(&args), event_row)?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            Ok((events, total as u64))
        })
        .await
    }

    async fn latest_event_id(&self) -> StoreResult<u64> {
        self.read(|conn| {
            conn.query_row("SELECT coalesce(max(id), 0) FROM events", [], |row| {
                row.get::<_, i64>(0)
            })
            .map(|id| id as u64)
        })
        .await
    }
}

#[async_trait]
impl IdempotencyStore for SqliteStore {
    async fn begin_idempotent(
        &self,
        key: &str,
        fingerprint: &str,
        stale_after: time::Duration,
    ) -> StoreResult<IdempotencyBegin> {
        let (key, fingerprint) = (key.to_owned(), fingerprint.to_owned());
        self.write(move |tx| {
            let at = now();
            let existing = tx
                .prepare_cached(
                    "SELECT fingerprint, state, status, content_type, body, created_at
                     FROM idempotency_keys WHERE key = ?1",
                )?
                .query_row([&key], |row| {
                    Ok((
                        row.get::<_, String>(0)?,
                        row.get::<_, String>(1)?,
                        row.get::<_, Option<u16>>(2)?,
                        row.get::<_, Option<String>>(3)?,
                        row.get::<_, Option<Vec<u8>>>(4)?,
                        row.get::<_, i64>(5)?,
                    ))
                })
                .optional()?;
            match existing {
                None => {}
                Some((stored, ..)) if stored != fingerprint => return Ok(IdempotencyBegin::Mismatch),
                Some((_, state, Some(status), content_type, body, _)) if state == "done" => {
                    return Ok(IdempotencyBegin::Replay(StoredResponse {
                        status,
                        content_type,
                        body: body.unwrap_or_default(),
                    }));
                }
                Some((.., created_at)) if from_millis(created_at)? + stale_after > at => {
                    return Ok(IdempotencyBegin::InProgress);
                }
                Some(_) => {}
            }
            tx.prepare_cached(
                "INSERT INTO idempotency_keys (key, fingerprint, state, created_at)
                 VALUES (?1, ?2, 'in_progress', ?3)
                 ON CONFLICT (key) DO UPDATE SET state = 'in_progress', created_at = excluded.created_at",
            )?
            .execute(params![key, fingerprint, millis(at)])?;
            Ok(IdempotencyBegin::Started)
        })
        .await
    }

    async fn complete_idempotent(&self, key: &str, response: &StoredResponse) -> StoreResult<()> {
        let (key, response) = (key.to_owned(), response.clone());
        self.write(move |tx| {
            tx.prepare_cached(
                "UPDATE idempotency_keys SET state = 'done', status = ?2, content_type = ?3, body = ?4
                 WHERE key = ?1",
            )?
            .execute(params![key, response.status, response.content_type, response.body])?;
            Ok(())
        })
        .await
    }

    async fn abandon_idempotent(&self, key: &str) -> StoreResult<()> {
        let key = key.to_owned();
        self.write(move |tx| {
            tx.prepare_cached(
                "DELETE FROM idempotency_keys WHERE key = ?1 AND state = 'in_progress'",
            )?
            .execute([key])?;
            Ok(())
        })
        .await
    }

    async fn purge_idempotency(&self, before: OffsetDateTime) -> StoreResult<u64> {
        self.write(move |tx| {
            let deleted = tx
                .prepare_cached("DELETE FROM idempotency_keys WHERE created_at < ?1")?
                .execute([millis(before)])?;
            Ok(deleted as u64)
        })
        .await
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        self.read(|conn| conn.query_row("SELECT 1", [], |_| Ok(())))
            .await?;
        // The writer must answer too: a stuck write transaction is an outage.
        tokio::time::timeout(Duration::from_secs(2), self.write(|_| Ok(())))
            .await
            .map_err(|_| StoreError::Busy)?
    }

    fn backend(&self) -> &'static str {
        "sqlite"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A store on a fresh file in a temp dir, which lives as long as the guard.
    pub(super) fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store =
            SqliteStore::open(&dir.path().join("shop.db"), Durability::Process).expect("open");
        (dir, store)
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
        let events = store
            .insert_user(
                &ada,
                vec![NewEvent::now("user.registered", json!({"id": ada.user.id}))],
            )
            .await
            .expect("insert");
        assert_eq!(events[0].id, 1);

        let again = user("ADA@example.com");
        let err = store
            .insert_user(&again, vec![NewEvent::now("user.registered", json!({}))])
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

        let started = std::time::Instant::now();
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
}
