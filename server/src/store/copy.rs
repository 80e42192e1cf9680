//! `shop db copy`: a live SQLite shop copied into an empty PostgreSQL
//! database, the way from one node to several.
//!
//! Consistent on both sides: SQLite is read in one read transaction (under
//! WAL the server's writer goes on; the copy is the shop as of one commit),
//! and PostgreSQL is written in one transaction, migrations included, so a
//! copy that fails anywhere leaves the target as it was.
//!
//! Generic over tables: the plan is PostgreSQL's own catalog (its columns
//! and their types from `information_schema`, its foreign keys from
//! `pg_constraint` for the order of the tables), and each SQLite value is
//! converted by the PostgreSQL type of its column. The two schemas have the
//! same tables and columns but for what `NOT_COPIED` and `FROM_ROWID`
//! name; any other difference, and any type or value the copy does not
//! know, stops the copy with an error that names it, never a silent skip.
//!
//! The SQLite reader runs on a blocking thread and hands batches of rows to
//! the PostgreSQL writer through a short channel, so reading and writing
//! overlap and neither holds the whole shop in memory.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rusqlite::types::ValueRef;
use rusqlite::{Connection as SqliteConnection, OpenFlags};
use sqlx::postgres::PgConnectOptions;
use sqlx::query_builder::Separated;
use sqlx::{AssertSqlSafe, Connection, PgConnection, Postgres, QueryBuilder, Row};
use time::OffsetDateTime;
use tokio::sync::mpsc;

use super::StoreError;

/// PostgreSQL tables that SQLite has not: the schema's version (the
/// migrations' own), and the invoice series' counter, set from the invoices
/// copied.
const NOT_COPIED: &[&str] = &["schema_version", "invoice_counter"];
/// Columns only PostgreSQL has: identity columns that keep insertion order,
/// which SQLite keeps by `rowid`. They are filled from it.
const FROM_ROWID: &[(&str, &str)] = &[
    ("cart_discounts", "applied"),
    ("notification_attempts", "seq"),
];
/// Rows the migrations put in an empty database, by table: the event
/// consumers' cursors at the start of an empty log. They do not make a
/// target non-empty, and give way to the copied rows.
const SEEDED: &[(&str, &str)] = &[("event_cursors", "event_id = 0")];
/// Bind parameters in one statement: the protocol counts them in 16 bits.
const MAX_PARAMETERS: usize = 65_535;
/// Rows in one INSERT at most: larger statements gain little and the
/// batches in flight take more memory.
const MAX_BATCH_ROWS: usize = 1_000;
/// Batches the reader may be ahead of the writer.
const READ_AHEAD: usize = 4;

/// The figures compared between the two databases besides each table's
/// row count, as (name, table, aggregate): the money and the stock a
/// conversion slip would change without changing a count, and the log's
/// end, from which the next event id follows.
const FIGURES: &[(&str, &str, &str)] = &[
    ("stock.on_hand", "stock", "sum(on_hand)"),
    ("stock.reserved", "stock", "sum(reserved)"),
    ("payments.amount_cents", "payments", "sum(amount_cents)"),
    ("payments.refunded_cents", "payments", "sum(refunded_cents)"),
    ("refunds.amount_cents", "refunds", "sum(amount_cents)"),
    ("orders.total_cents", "orders", "sum(total_cents)"),
    ("orders.refunded_cents", "orders", "sum(refunded_cents)"),
    ("events.max_id", "events", "max(id)"),
];

#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    #[error("{0} does not exist (is it the server's --db?)")]
    NoDatabase(PathBuf),
    #[error("{0} is not a shop database")]
    NotShop(PathBuf),
    #[error(
        "the target database is not empty (table {0} has rows): \
         shop db copy fills an empty database only, and changed nothing"
    )]
    NotEmpty(String),
    #[error("the SQLite and PostgreSQL schemas differ: {0}")]
    Schema(String),
    #[error("{table}.{column}: {problem}")]
    Value {
        table: String,
        column: String,
        problem: String,
    },
    #[error(
        "the copy does not match its source: {figure} is {sqlite} in SQLite \
         but {postgres} in PostgreSQL; nothing was committed"
    )]
    Mismatch {
        figure: String,
        sqlite: i64,
        postgres: i64,
    },
    #[error("reading {path}: {reason}")]
    Sqlite {
        path: PathBuf,
        reason: rusqlite::Error,
    },
    #[error("the SQLite reader stopped: {0}")]
    Reader(String),
    #[error("PostgreSQL: {0}")]
    Postgres(#[from] sqlx::Error),
    #[error("migrating PostgreSQL: {0}")]
    Migrate(StoreError),
}

/// What a finished copy wrote and checked.
#[derive(Clone, Debug)]
pub struct CopyDone {
    /// Rows copied per table, in the order they were copied.
    pub tables: Vec<(String, u64)>,
    /// The figures of `FIGURES` (stock, money, the log's end), equal on both sides.
    pub figures: Vec<(String, i64)>,
    pub elapsed: Duration,
}

/// The PostgreSQL type of a column, which says how its SQLite value converts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    BigInt,
    Integer,
    SmallInt,
    /// SQLite's INTEGER 0 or 1.
    Boolean,
    /// SQLite's INTEGER unix milliseconds (see `sqlite::millis`).
    Timestamp,
    Text,
    /// SQLite's TEXT, bound as text and cast.
    Json,
    /// SQLite's TEXT holding a JSON array of strings (webhook patterns).
    TextArray,
    Bytes,
}

impl Kind {
    fn of(data_type: &str, udt_name: &str) -> Option<Kind> {
        Some(match (data_type, udt_name) {
            ("bigint", _) => Kind::BigInt,
            ("integer", _) => Kind::Integer,
            ("smallint", _) => Kind::SmallInt,
            ("boolean", _) => Kind::Boolean,
            ("timestamp with time zone", _) => Kind::Timestamp,
            ("text", _) => Kind::Text,
            ("jsonb", _) => Kind::Json,
            ("ARRAY", "_text") => Kind::TextArray,
            ("bytea", _) => Kind::Bytes,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug)]
struct Column {
    name: String,
    kind: Kind,
    /// Filled from SQLite's `rowid` (see [`FROM_ROWID`]).
    from_rowid: bool,
    identity: bool,
}

#[derive(Clone, Debug)]
struct Table {
    name: String,
    columns: Vec<Column>,
}

impl Table {
    /// Rows per INSERT: as many as fit under the protocol's parameters.
    fn batch_rows(&self) -> usize {
        (MAX_PARAMETERS / self.columns.len().max(1)).clamp(1, MAX_BATCH_ROWS)
    }

    fn has_identity(&self) -> bool {
        self.columns.iter().any(|column| column.identity)
    }
}

/// One SQLite value converted for its PostgreSQL column.
#[derive(Debug)]
enum Value {
    Null,
    BigInt(i64),
    Integer(i32),
    SmallInt(i16),
    Boolean(bool),
    Timestamp(OffsetDateTime),
    Text(String),
    TextArray(Vec<String>),
    Bytes(Vec<u8>),
}

/// What the reader sends the writer.
enum Read {
    /// Rows in all, for the progress; sent first.
    Total(u64),
    Rows {
        table: usize,
        rows: Vec<Vec<Value>>,
    },
}

/// What the reader found in its snapshot, to verify the copy against.
struct Snapshot {
    counts: Vec<u64>,
    figures: Vec<i64>,
}

/// Copies the shop database at `source` into the empty PostgreSQL database
/// at `target`, calling `progress` with (rows copied, rows in all) after
/// each batch. The target is migrated first, in the same transaction.
pub async fn copy(
    source: &Path,
    target: &str,
    mut progress: impl FnMut(u64, u64) + Send,
) -> Result<CopyDone, CopyError> {
    let started = Instant::now();
    if !source.exists() {
        return Err(CopyError::NoDatabase(source.to_owned()));
    }
    let options: PgConnectOptions = target.parse()?;
    let mut conn = PgConnection::connect_with(&options).await?;
    let mut tx = conn.begin().await?;
    super::postgres::migrate_in(&mut tx)
        .await
        .map_err(CopyError::Migrate)?;
    let plan = plan(&mut tx).await?;
    claim_empty(&mut tx, &plan).await?;

    let (sender, mut receiver) = mpsc::channel(READ_AHEAD);
    let reader = tokio::task::spawn_blocking({
        let (source, plan) = (source.to_owned(), plan.clone());
        move || read(&source, &plan, &sender)
    });
    let (mut done, mut total) = (0, 0);
    while let Some(read) = receiver.recv().await {
        match read {
            Read::Total(rows) => total = rows,
            Read::Rows { table, rows } => {
                done += rows.len() as u64;
                insert(&mut tx, &plan[table], rows).await?;
                progress(done, total);
            }
        }
    }
    let snapshot = reader
        .await
        .map_err(|err| CopyError::Reader(err.to_string()))??;

    let tables = verify_counts(&mut tx, &plan, &snapshot.counts).await?;
    let figures = verify_figures(&mut tx, &snapshot.figures).await?;
    continue_series(&mut tx, &plan).await?;
    tx.commit().await?;
    Ok(CopyDone {
        tables,
        figures,
        elapsed: started.elapsed(),
    })
}

/// Double-quoted, for names read from the catalog.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The tables to copy in foreign-key order, with their columns and types.
async fn plan(tx: &mut PgConnection) -> Result<Vec<Table>, CopyError> {
    let rows = sqlx::query(
        "SELECT c.table_name::text AS table_name, c.column_name::text AS column_name,
                c.data_type::text AS data_type, c.udt_name::text AS udt_name,
                c.is_identity::text = 'YES' AS identity
         FROM information_schema.columns c
         JOIN information_schema.tables t
           ON t.table_schema = c.table_schema AND t.table_name = c.table_name
         WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
         ORDER BY c.table_name, c.ordinal_position",
    )
    .fetch_all(&mut *tx)
    .await?;
    let mut tables: BTreeMap<String, Vec<Column>> = BTreeMap::new();
    for row in rows {
        let table: String = row.try_get("table_name")?;
        if NOT_COPIED.contains(&table.as_str()) {
            continue;
        }
        let name: String = row.try_get("column_name")?;
        let data_type: String = row.try_get("data_type")?;
        let udt_name: String = row.try_get("udt_name")?;
        let kind = Kind::of(&data_type, &udt_name).ok_or_else(|| CopyError::Value {
            table: table.clone(),
            column: name.clone(),
            problem: format!(
                "PostgreSQL type {data_type} ({udt_name}) is not one shop db copy converts"
            ),
        })?;
        let from_rowid = FROM_ROWID.contains(&(table.as_str(), name.as_str()));
        tables.entry(table).or_default().push(Column {
            name,
            kind,
            from_rowid,
            identity: row.try_get("identity")?,
        });
    }
    let edges = sqlx::query(
        "SELECT child.relname::text AS child, parent.relname::text AS parent
         FROM pg_constraint c
         JOIN pg_class child ON child.oid = c.conrelid
         JOIN pg_class parent ON parent.oid = c.confrelid
         JOIN pg_namespace n ON n.oid = child.relnamespace
         WHERE c.contype = 'f' AND n.nspname = current_schema()",
    )
    .fetch_all(&mut *tx)
    .await?
    .iter()
    .map(|row| Ok((row.try_get("child")?, row.try_get("parent")?)))
    .collect::<Result<Vec<(String, String)>, sqlx::Error>>()?;
    let order = foreign_key_order(tables.keys().cloned().collect(), &edges)?;
    Ok(order
        .into_iter()
        .map(|name| {
            let columns = tables.remove(&name).unwrap_or_default();
            Table { name, columns }
        })
        .collect())
}

/// `tables` ordered so that each comes after every table it references
/// (Kahn's algorithm, by name among the ready ones, so the order is stable).
/// A cycle, a self-reference included, would need deferred constraints:
/// it is refused by name rather than copied in an order that fails.
fn foreign_key_order(
    tables: BTreeSet<String>,
    edges: &[(String, String)],
) -> Result<Vec<String>, CopyError> {
    let mut waits_for: BTreeMap<&str, BTreeSet<&str>> = tables
        .iter()
        .map(|t| (t.as_str(), BTreeSet::new()))
        .collect();
    for (child, parent) in edges {
        if let Some(parents) = waits_for.get_mut(child.as_str())
            && tables.contains(parent)
        {
            parents.insert(parent.as_str());
        }
    }
    let mut order = Vec::with_capacity(tables.len());
    while !waits_for.is_empty() {
        let ready: Vec<&str> = waits_for
            .iter()
            .filter(|(_, parents)| parents.is_empty())
            .map(|(table, _)| *table)
            .collect();
        if ready.is_empty() {
            let stuck: Vec<&str> = waits_for.keys().copied().collect();
            return Err(CopyError::Schema(format!(
                "the foreign keys among {} form a cycle",
                stuck.join(", ")
            )));
        }
        for table in ready {
            waits_for.remove(table);
            for parents in waits_for.values_mut() {
                parents.remove(table);
            }
            order.push(table.to_owned());
        }
    }
    Ok(order)
}

/// Locks the target's tables against writers until the copy commits, then
/// refuses it unless every table is empty but for [`SEEDED`] rows, which
/// are removed to make way for the copied ones.
async fn claim_empty(tx: &mut PgConnection, plan: &[Table]) -> Result<(), CopyError> {
    let names: Vec<String> = plan.iter().map(|table| ident(&table.name)).collect();
    sqlx::query(AssertSqlSafe(format!(
        "LOCK TABLE {} IN EXCLUSIVE MODE",
        names.join(", ")
    )))
    .execute(&mut *tx)
    .await?;
    for table in plan {
        let seeded = SEEDED
            .iter()
            .find(|(name, _)| *name == table.name)
            .map(|(_, condition)| *condition);
        let data = match seeded {
            Some(condition) => format!("NOT ({condition})"),
            None => "true".to_owned(),
        };
        let found: bool = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT EXISTS (SELECT 1 FROM {} WHERE {data})",
            ident(&table.name)
        )))
        .fetch_one(&mut *tx)
        .await?;
        if found {
            return Err(CopyError::NotEmpty(table.name.clone()));
        }
        if seeded.is_some() {
            sqlx::query(AssertSqlSafe(format!("DELETE FROM {}", ident(&table.name))))
                .execute(&mut *tx)
                .await?;
        }
    }
    Ok(())
}

/// Reads `plan` from the SQLite file at `path` in one read transaction,
/// sending the rows in batches; returns the counts and figures of the same
/// snapshot. Stops early, without an error, when the writer has gone (its
/// error is the one to report).
fn read(path: &Path, plan: &[Table], out: &mpsc::Sender<Read>) -> Result<Snapshot, CopyError> {
    let sqlite = |reason| CopyError::Sqlite {
        path: path.to_owned(),
        reason,
    };
    // Read-write without create, as `shop db backup` opens it: a read-only
    // connection cannot take part in the WAL's shared index when the
    // server is not running.
    let conn = SqliteConnection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(sqlite)?;
    super::sqlite::wait_when_busy(&conn).map_err(sqlite)?;
    // The snapshot: every read below is inside this transaction.
    conn.execute_batch("BEGIN").map_err(sqlite)?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(sqlite)?;
    if version == 0 {
        return Err(CopyError::NotShop(path.to_owned()));
    }
    same_tables_and_columns(&conn, plan).map_err(|err| match err {
        Differs::Sqlite(reason) => sqlite(reason),
        Differs::Schema(what) => CopyError::Schema(what),
    })?;
    let mut counts = Vec::with_capacity(plan.len());
    for table in plan {
        let count: i64 = conn
            .query_row(
                &format!("SELECT count(*) FROM {}", ident(&table.name)),
                [],
                |row| row.get(0),
            )
            .map_err(sqlite)?;
        counts.push(count as u64);
    }
    let mut figures = Vec::with_capacity(FIGURES.len());
    for (_, table, aggregate) in FIGURES {
        let figure: i64 = conn
            .query_row(
                &format!("SELECT coalesce({aggregate}, 0) FROM {}", ident(table)),
                [],
                |row| row.get(0),
            )
            .map_err(sqlite)?;
        figures.push(figure);
    }
    if out.blocking_send(Read::Total(counts.iter().sum())).is_err() {
        return Ok(Snapshot { counts, figures });
    }
    for (index, table) in plan.iter().enumerate() {
        let select: Vec<String> = table
            .columns
            .iter()
            .map(|column| match column.from_rowid {
                true => "rowid".to_owned(),
                false => ident(&column.name),
            })
            .collect();
        let mut statement = conn
            .prepare(&format!(
                "SELECT {} FROM {}",
                select.join(", "),
                ident(&table.name)
            ))
            .map_err(sqlite)?;
        let mut rows = statement.query([]).map_err(sqlite)?;
        let per_batch = table.batch_rows();
        let mut batch = Vec::with_capacity(per_batch);
        while let Some(row) = rows.next().map_err(sqlite)? {
            let mut values = Vec::with_capacity(table.columns.len());
            for (at, column) in table.columns.iter().enumerate() {
                let value = row.get_ref(at).map_err(sqlite)?;
                values.push(
                    convert(value, column.kind).map_err(|problem| CopyError::Value {
                        table: table.name.clone(),
                        column: column.name.clone(),
                        problem,
                    })?,
                );
            }
            batch.push(values);
            if batch.len() == per_batch {
                let rows = std::mem::replace(&mut batch, Vec::with_capacity(per_batch));
                if out
                    .blocking_send(Read::Rows { table: index, rows })
                    .is_err()
                {
                    return Ok(Snapshot { counts, figures });
                }
            }
        }
        if !batch.is_empty()
            && out
                .blocking_send(Read::Rows {
                    table: index,
                    rows: batch,
                })
                .is_err()
        {
            return Ok(Snapshot { counts, figures });
        }
    }
    conn.execute_batch("COMMIT").map_err(sqlite)?;
    Ok(Snapshot { counts, figures })
}

enum Differs {
    Sqlite(rusqlite::Error),
    Schema(String),
}

impl From<rusqlite::Error> for Differs {
    fn from(err: rusqlite::Error) -> Self {
        Differs::Sqlite(err)
    }
}

/// Every SQLite table and column has its place in `plan`, and every column
/// of `plan` but those filled from `rowid` is in SQLite: a difference would
/// otherwise drop data or fail half way.
fn same_tables_and_columns(conn: &SqliteConnection, plan: &[Table]) -> Result<(), Differs> {
    let mut sqlite: HashMap<String, BTreeSet<String>> = HashMap::new();
    let mut statement = conn.prepare(
        "SELECT m.name, p.name FROM sqlite_schema m, pragma_table_info(m.name) p
         WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\'",
    )?;
    let mut rows = statement.query([])?;
    while let Some(row) = rows.next()? {
        sqlite.entry(row.get(0)?).or_default().insert(row.get(1)?);
    }
    let mut problems = Vec::new();
    for table in plan {
        let Some(mut columns) = sqlite.remove(&table.name) else {
            problems.push(format!("table {} is not in SQLite", table.name));
            continue;
        };
        for column in &table.columns {
            if !column.from_rowid && !columns.remove(&column.name) {
                problems.push(format!(
                    "column {}.{} is not in SQLite",
                    table.name, column.name
                ));
            }
        }
        for column in columns {
            problems.push(format!(
                "column {}.{column} is not in PostgreSQL",
                table.name
            ));
        }
    }
    let mut left: Vec<&String> = sqlite.keys().collect();
    left.sort();
    for table in left {
        problems.push(format!("table {table} is not in PostgreSQL"));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(Differs::Schema(problems.join("; ")))
    }
}

/// One SQLite value as its PostgreSQL column wants it; why not, otherwise.
fn convert(value: ValueRef<'_>, kind: Kind) -> Result<Value, String> {
    let text = |bytes: &[u8]| {
        String::from_utf8(bytes.to_vec())
            .map_err(|_| "SQLite holds text that is not UTF-8".to_owned())
    };
    Ok(match (kind, value) {
        (_, ValueRef::Null) => Value::Null,
        (Kind::BigInt, ValueRef::Integer(n)) => Value::BigInt(n),
        (Kind::Integer, ValueRef::Integer(n)) => Value::Integer(
            i32::try_from(n).map_err(|_| format!("{n} does not fit PostgreSQL's integer"))?,
        ),
        (Kind::SmallInt, ValueRef::Integer(n)) => Value::SmallInt(
            i16::try_from(n).map_err(|_| format!("{n} does not fit PostgreSQL's smallint"))?,
        ),
        (Kind::Boolean, ValueRef::Integer(0)) => Value::Boolean(false),
        (Kind::Boolean, ValueRef::Integer(1)) => Value::Boolean(true),
        (Kind::Timestamp, ValueRef::Integer(ms)) => Value::Timestamp(
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
                .map_err(|err| format!("{ms} ms is not a time: {err}"))?,
        ),
        (Kind::Text | Kind::Json, ValueRef::Text(bytes)) => Value::Text(text(bytes)?),
        (Kind::TextArray, ValueRef::Text(bytes)) => Value::TextArray(
            serde_json::from_slice(bytes)
                .map_err(|err| format!("SQLite holds no JSON array of strings: {err}"))?,
        ),
        (Kind::Bytes, ValueRef::Blob(bytes) | ValueRef::Text(bytes)) => {
            Value::Bytes(bytes.to_vec())
        }
        (kind, value) => {
            return Err(format!(
                "SQLite holds {value:?}, which does not convert to {kind:?}"
            ));
        }
    })
}

/// One multi-row INSERT of `rows` into `table`.
async fn insert(
    tx: &mut PgConnection,
    table: &Table,
    rows: Vec<Vec<Value>>,
) -> Result<(), CopyError> {
    let columns: Vec<String> = table.columns.iter().map(|c| ident(&c.name)).collect();
    let mut sql = QueryBuilder::<Postgres>::new(format!(
        "INSERT INTO {} ({}) ",
        ident(&table.name),
        columns.join(", ")
    ));
    // The copied ids, not new ones: references to them are copied too.
    if table.has_identity() {
        sql.push("OVERRIDING SYSTEM VALUE ");
    }
    sql.push_values(rows, |mut row, values| {
        for (value, column) in values.into_iter().zip(&table.columns) {
            bind(&mut row, column.kind, value);
        }
    });
    sql.build().execute(&mut *tx).await?;
    Ok(())
}

fn bind(row: &mut Separated<'_, Postgres, &'static str>, kind: Kind, value: Value) {
    match value {
        Value::Null => match kind {
            Kind::BigInt => row.push_bind(None::<i64>),
            Kind::Integer => row.push_bind(None::<i32>),
            Kind::SmallInt => row.push_bind(None::<i16>),
            Kind::Boolean => row.push_bind(None::<bool>),
            Kind::Timestamp => row.push_bind(None::<OffsetDateTime>),
            Kind::Text | Kind::Json => row.push_bind(None::<String>),
            Kind::TextArray => row.push_bind(None::<Vec<String>>),
            Kind::Bytes => row.push_bind(None::<Vec<u8>>),
        },
        Value::BigInt(n) => row.push_bind(n),
        Value::Integer(n) => row.push_bind(n),
        Value::SmallInt(n) => row.push_bind(n),
        Value::Boolean(b) => row.push_bind(b),
        Value::Timestamp(at) => row.push_bind(at),
        Value::Text(text) => row.push_bind(text),
        Value::TextArray(texts) => row.push_bind(texts),
        Value::Bytes(bytes) => row.push_bind(bytes),
    };
    if kind == Kind::Json {
        row.push_unseparated("::jsonb");
    }
}

/// Each table's rows in PostgreSQL, compared with SQLite's snapshot.
async fn verify_counts(
    tx: &mut PgConnection,
    plan: &[Table],
    counts: &[u64],
) -> Result<Vec<(String, u64)>, CopyError> {
    let mut tables = Vec::with_capacity(plan.len());
    for (table, &sqlite) in plan.iter().zip(counts) {
        let postgres: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT count(*) FROM {}",
            ident(&table.name)
        )))
        .fetch_one(&mut *tx)
        .await?;
        if postgres as u64 != sqlite {
            return Err(CopyError::Mismatch {
                figure: format!("the rows of {}", table.name),
                sqlite: sqlite as i64,
                postgres,
            });
        }
        tables.push((table.name.clone(), sqlite));
    }
    Ok(tables)
}

/// The [`FIGURES`] in PostgreSQL, compared with SQLite's snapshot.
async fn verify_figures(
    tx: &mut PgConnection,
    sqlite: &[i64],
) -> Result<Vec<(String, i64)>, CopyError> {
    let mut figures = Vec::with_capacity(FIGURES.len());
    for ((name, table, aggregate), &sqlite) in FIGURES.iter().zip(sqlite) {
        let postgres: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT coalesce({aggregate}, 0)::bigint FROM {}",
            ident(table)
        )))
        .fetch_one(&mut *tx)
        .await?;
        if postgres != sqlite {
            return Err(CopyError::Mismatch {
                figure: (*name).to_owned(),
                sqlite,
                postgres,
            });
        }
        figures.push(((*name).to_owned(), postgres));
    }
    Ok(figures)
}

/// Makes what PostgreSQL numbers itself continue after the copied numbers:
/// every identity column, the order numbers, and the invoice series.
///
/// Last before the commit, after the verification: `setval` is not undone
/// by a rollback, so on a target migrated before the copy a failed copy
/// would otherwise leave its sequences moved.
async fn continue_series(tx: &mut PgConnection, plan: &[Table]) -> Result<(), CopyError> {
    for table in plan {
        for column in table.columns.iter().filter(|column| column.identity) {
            sqlx::query(AssertSqlSafe(format!(
                "SELECT setval(pg_get_serial_sequence($1, $2), max({column}))
                 FROM {table} HAVING max({column}) IS NOT NULL",
                column = ident(&column.name),
                table = ident(&table.name),
            )))
            .bind(ident(&table.name))
            .bind(&column.name)
            .execute(&mut *tx)
            .await?;
        }
    }
    // The next order number follows the greatest copied (see 0006_orders.sql).
    sqlx::query(
        "SELECT setval('order_numbers', max(number)) FROM orders HAVING max(number) IS NOT NULL",
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "UPDATE invoice_counter SET last_sequence = (SELECT coalesce(max(sequence), 0) FROM invoices)",
    )
    .execute(&mut *tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use shop_wire::pricing::DiscountId;

    use super::*;
    use crate::config::Durability;
    use crate::store::postgres::{PgStore, testing};
    use crate::store::{
        CartStore, CatalogStore, DiscountKey, DocumentStore, EventStore, InventoryStore,
        InvoiceIssue, NotificationQuery, OrderQuery, OrderStore, PaymentQuery, PricingStore,
        ProductQuery, SqliteStore, StockQuery, Store, contract,
    };

    /// A SQLite shop with something in most tables, made through the store
    /// traits by contract checks that leave their data behind.
    async fn filled_sqlite() -> (tempfile::TempDir, Arc<SqliteStore>) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(
            SqliteStore::open(&dir.path().join("shop.db"), Durability::Process).expect("open"),
        );
        contract::searches_are_counted_per_hour_and_query(store.clone()).await;
        contract::a_cart_becomes_a_paid_order_and_a_cancelling_refund_restocks_it(store.clone())
            .await;
        contract::racing_invoices_take_one_gapless_number_each(store.clone()).await;
        contract::racing_returns_never_return_a_unit_twice(store.clone()).await;
        contract::webhook_deliveries_are_queued_once_claimed_once_and_replayable(store.clone())
            .await;
        contract::a_completion_after_its_lease_was_released_changes_nothing(store.clone()).await;
        contract::racing_checkouts_never_use_a_discount_past_its_limit(store.clone()).await;
        contract::an_address_book_keeps_its_limit_and_its_owner(store.clone()).await;
        contract::racing_followers_move_a_cursor_once(store.clone()).await;
        contract::views_by_one_viewer_pair_once(store.clone()).await;
        contract::touching_keys_never_moves_their_last_use_back(store.clone()).await;
        contract::tax_rates_are_one_per_scope_and_read_with_the_products(store.clone()).await;
        contract::racing_refreshes_with_one_secret_rotate_once(store.clone()).await;
        contract::racing_resets_spend_an_emailed_token_once(store.clone()).await;
        contract::exactly_one_concurrent_idempotency_claim_starts(store.clone()).await;
        // Two codes on one cart, whose order PostgreSQL keeps in an
        // identity column that SQLite keeps by rowid.
        contract::racing_cart_changes_at_one_version_apply_once(store.clone()).await;
        let cart = store
            .cart_by_token("token-hash")
            .await
            .expect("cart")
            .expect("the contract's cart");
        let mut five = store
            .discount(&DiscountKey::Code("TEN".to_owned()))
            .await
            .expect("discount")
            .expect("the contract's discount");
        five.id = DiscountId::generate();
        five.code = Some("FIVE".to_owned());
        five.times_used = 0;
        store
            .insert_discount(&five, Vec::new())
            .await
            .expect("a second discount");
        for code in ["TEN", "FIVE"] {
            assert!(
                store
                    .add_cart_discount(&cart.cart.id, code)
                    .await
                    .expect("add a code")
            );
        }
        (dir, store)
    }

    /// What the store traits read back of a shop, for comparing two of them.
    /// `value` as JSON with every object's keys sorted: PostgreSQL's
    /// `jsonb` keeps an event's payload keys in its own order, not in the
    /// order they were written, and the two must compare equal.
    fn canonical(value: &impl serde::Serialize) -> String {
        fn sorted(value: serde_json::Value) -> serde_json::Value {
            match value {
                serde_json::Value::Object(map) => {
                    let sorted: std::collections::BTreeMap<String, serde_json::Value> =
                        map.into_iter().map(|(k, v)| (k, sorted(v))).collect();
                    serde_json::Value::Object(sorted.into_iter().collect())
                }
                serde_json::Value::Array(items) => {
                    serde_json::Value::Array(items.into_iter().map(sorted).collect())
                }
                other => other,
            }
        }
        sorted(serde_json::to_value(value).expect("serializable")).to_string()
    }

    async fn seen<S: Store + ?Sized>(store: &S) -> Vec<String> {
        let products = store
            .list_products(&ProductQuery {
                limit: 1_000,
                ..ProductQuery::default()
            })
            .await
            .expect("products");
        let stock = store
            .list_stock(&StockQuery {
                by_sku: true,
                limit: 1_000,
                ..StockQuery::default()
            })
            .await
            .expect("stock");
        let orders = store
            .list_orders(&OrderQuery {
                limit: 1_000,
                ..OrderQuery::default()
            })
            .await
            .expect("orders");
        let mut one_by_one = Vec::new();
        for order in &orders.0 {
            one_by_one.push(format!(
                "{:?}",
                store
                    .order(&crate::store::OrderKey::Id(order.id.clone()))
                    .await
                    .expect("order")
            ));
        }
        let payments = store
            .list_payments(&PaymentQuery {
                limit: 1_000,
                ..PaymentQuery::default()
            })
            .await
            .expect("payments");
        let events = store.events_after(0, 100_000).await.expect("events");
        let notifications = store
            .list_notifications(&NotificationQuery {
                limit: 1_000,
                ..NotificationQuery::default()
            })
            .await
            .expect("notifications");
        let mut cursors = Vec::new();
        for consumer in ["notifications", "webhooks", "search"] {
            cursors.push(store.event_cursor(consumer).await.expect("cursor"));
        }
        vec![
            format!("{products:?}"),
            format!("{stock:?}"),
            format!("{orders:?}"),
            format!("{one_by_one:?}"),
            format!("{payments:?}"),
            canonical(&events),
            canonical(&notifications.0),
            format!("{:?}", store.list_webhooks(100, 0).await.expect("webhooks")),
            format!("{:?}", store.list_keys(None).await.expect("keys")),
            format!("{cursors:?}"),
            format!(
                "{:?}",
                store.cart_by_token("token-hash").await.expect("cart")
            ),
        ]
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_sqlite_shop_reads_back_the_same_from_its_postgres_copy_and_goes_on_numbering() {
        let (dir, sqlite) = filled_sqlite().await;
        let (database, url) = testing::database().await;
        let mut reports = Vec::new();
        let done = copy(&dir.path().join("shop.db"), &url, |done, all| {
            reports.push((done, all))
        })
        .await
        .expect("copy");
        let rows: u64 = done.tables.iter().map(|(_, rows)| rows).sum();
        assert!(rows > 300, "{done:?}");
        assert_eq!(
            reports.last(),
            Some(&(rows, rows)),
            "progress ends at every row"
        );
        let count = |name: &str| {
            done.tables
                .iter()
                .find(|(table, _)| table == name)
                .map(|(_, rows)| *rows)
        };
        for table in [
            "products",
            "stock",
            "orders",
            "payments",
            "refunds",
            "invoices",
            "returns",
            "webhooks",
            "webhook_deliveries",
            "notifications",
            "notification_attempts",
            "api_keys",
            "cart_discounts",
            "user_addresses",
            "audit_log",
            "events",
        ] {
            assert!(count(table) > Some(0), "{table} has rows to copy: {done:?}");
        }
        assert_eq!(
            count("schema_version"),
            None,
            "the schema's own is not copied"
        );
        let position = |name: &str| done.tables.iter().position(|(table, _)| table == name);
        assert!(position("orders") < position("payments"));
        assert!(position("payments") < position("refunds"));
        assert!(position("notifications") < position("notification_attempts"));
        let latest = sqlite.latest_event_id().await.expect("latest");
        assert!(
            done.figures
                .contains(&("events.max_id".to_owned(), latest as i64)),
            "{done:?}"
        );

        let pg = Arc::new(
            PgStore::connect(&url, crate::config::Durability::Process)
                .await
                .expect("open the copy"),
        );
        let cart = pg
            .cart_by_token("token-hash")
            .await
            .expect("cart")
            .expect("copied");
        assert_eq!(
            cart.cart.discount_codes,
            ["TEN", "FIVE"],
            "in the order applied"
        );
        let (before, after) = (seen(&*sqlite).await, seen(&*pg).await);
        for (from, to) in before.iter().zip(&after) {
            assert_eq!(from, to);
        }
        assert_eq!(pg.latest_event_id().await.expect("latest"), latest);

        // What PostgreSQL numbers itself goes on from the copied numbers.
        let (highest, _) = sqlite
            .list_orders(&OrderQuery {
                limit: 1_000,
                ..OrderQuery::default()
            })
            .await
            .expect("orders");
        // `ORD-001042`: the sequence's number behind the shop's prefix.
        let serial = |number: &str| -> i64 {
            let digits = number.trim_start_matches(|c: char| !c.is_ascii_digit());
            digits.parse().expect("an order number")
        };
        let highest = highest
            .iter()
            .map(|order| serial(&order.number))
            .max()
            .expect("orders");
        contract::add_product(&pg, "AFTER-COPY", 5).await;
        let (order, _) = contract::paid_order(&pg, "AFTER-COPY", 1).await;
        assert_eq!(
            serial(&order.number),
            highest + 1,
            "the next order number follows"
        );
        let (invoice, issued) = pg
            .issue_invoice(InvoiceIssue {
                order_id: order.id.clone(),
                prefix: "INV-".to_owned(),
                event: Box::new(move |invoice| {
                    crate::services::documents::domain::invoice_event(&order, invoice)
                }),
            })
            .await
            .expect("invoice");
        assert!(issued);
        assert_eq!(
            invoice.sequence,
            count("invoices").expect("invoices") as i64 + 1
        );
        let appended = pg.latest_event_id().await.expect("latest");
        assert!(appended > latest, "the log goes on after the copied ids");

        // A second copy finds the target in use and changes nothing.
        let seen_before = seen(&*pg).await;
        let refused = copy(&dir.path().join("shop.db"), &url, |_, _| {})
            .await
            .expect_err("the target is not empty");
        assert!(matches!(refused, CopyError::NotEmpty(_)), "{refused}");
        assert_eq!(seen(&*pg).await, seen_before);
        assert_eq!(pg.latest_event_id().await.expect("latest"), appended);
        drop(pg);
        drop(database);
    }

    /// An empty shop database changed by `sql` behind the store's back.
    fn altered(sql: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("temp dir");
        drop(SqliteStore::open(&dir.path().join("shop.db"), Durability::Process).expect("open"));
        let conn = SqliteConnection::open(dir.path().join("shop.db")).expect("reopen");
        conn.execute_batch(sql).expect("alter");
        dir
    }

    /// Nothing in the target's public schema: not even the migrations.
    async fn untouched(url: &str) -> bool {
        let mut conn = PgConnection::connect(url).await.expect("connect");
        let tables: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
        )
        .fetch_one(&mut conn)
        .await
        .expect("tables");
        tables == 0
    }

    #[tokio::test]
    async fn a_copy_that_fails_names_why_and_leaves_the_target_as_it_was() {
        let (database, url) = testing::database().await;

        let extra = altered("ALTER TABLE products ADD COLUMN colour TEXT");
        let refused = copy(&extra.path().join("shop.db"), &url, |_, _| {})
            .await
            .expect_err("a column PostgreSQL has not");
        assert!(
            matches!(&refused, CopyError::Schema(what) if what.contains("products.colour")),
            "{refused}"
        );
        assert!(untouched(&url).await, "the migrations were rolled back");

        let bad = altered(
            "PRAGMA ignore_check_constraints = ON;
             INSERT INTO discounts (id, code, kind, value, automatic, active, times_used, created_at)
             VALUES ('d1', 'ODD', 'percent', 10, 2, 1, 0, 0)",
        );
        let refused = copy(&bad.path().join("shop.db"), &url, |_, _| {})
            .await
            .expect_err("a boolean of 2");
        assert!(
            matches!(&refused, CopyError::Value { table, column, .. }
                if table == "discounts" && column == "automatic"),
            "{refused}"
        );
        assert!(untouched(&url).await, "nothing was written");

        let missing = copy(&extra.path().join("nope.db"), &url, |_, _| {}).await;
        assert!(
            matches!(missing, Err(CopyError::NoDatabase(_))),
            "{missing:?}"
        );
        drop(database);
    }

    #[test]
    fn tables_come_after_the_tables_they_reference_and_a_cycle_is_refused() {
        let tables = ["refunds", "orders", "payments", "products", "order_items"]
            .map(str::to_owned)
            .into_iter()
            .collect();
        let edge = |child: &str, parent: &str| (child.to_owned(), parent.to_owned());
        let edges = [
            edge("refunds", "payments"),
            edge("payments", "orders"),
            edge("order_items", "orders"),
            edge("order_items", "products"),
            edge("refunds", "elsewhere"),
        ];
        let order = foreign_key_order(tables, &edges).expect("an order");
        assert_eq!(
            order,
            ["orders", "products", "order_items", "payments", "refunds"]
        );

        let tables: BTreeSet<String> = ["a", "b", "c"].map(str::to_owned).into_iter().collect();
        let cycle = foreign_key_order(tables, &[edge("a", "b"), edge("b", "a")]);
        assert!(
            matches!(&cycle, Err(CopyError::Schema(what)) if what.contains("a, b")),
            "{cycle:?}"
        );
    }

    /// A product with its stock row and an event, in one transaction.
    async fn add_logged_product(store: &SqliteStore, sku: String) {
        let (product, ..) =
            crate::services::products::domain::product_from(shop_wire::products::ProductRequest {
                name: format!("Product {sku}"),
                sku,
                price_cents: 100,
                active: true,
                ..shop_wire::products::ProductRequest::default()
            })
            .expect("valid product");
        store
            .insert_product(
                &product,
                crate::store::InitialStock {
                    on_hand: 1,
                    low_stock_threshold: 0,
                },
                None,
                vec![crate::store::NewEvent::example()],
            )
            .await
            .expect("insert product");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_copy_under_steady_writes_is_one_snapshot() {
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Arc::new(
            SqliteStore::open(&dir.path().join("shop.db"), Durability::Process).expect("open"),
        );
        for n in 0..20 {
            add_logged_product(&store, format!("BASE-{n}")).await;
        }
        let stop = Arc::new(AtomicBool::new(false));
        let writes = {
            let (store, stop) = (store.clone(), stop.clone());
            tokio::spawn(async move {
                let mut written = 0_u64;
                while !stop.load(Ordering::Relaxed) {
                    add_logged_product(&store, format!("LIVE-{written}")).await;
                    written += 1;
                }
                written
            })
        };
        tokio::time::sleep(Duration::from_millis(30)).await;
        let (database, url) = testing::database().await;
        // A slow writer, so that SQLite commits while the copy reads.
        let done = copy(&dir.path().join("shop.db"), &url, |_, _| {
            std::thread::sleep(Duration::from_millis(20));
        })
        .await
        .expect("copy");
        stop.store(true, Ordering::Relaxed);
        let written = writes.await.expect("writer task");

        let pg = PgStore::connect(&url, crate::config::Durability::Process)
            .await
            .expect("open the copy");
        let (_, products) = pg
            .list_products(&ProductQuery {
                limit: 1,
                ..ProductQuery::default()
            })
            .await
            .expect("products");
        let (_, stock) = pg
            .list_stock(&StockQuery {
                limit: 1,
                ..StockQuery::default()
            })
            .await
            .expect("stock");
        let events = pg.latest_event_id().await.expect("events");
        assert_eq!((stock, events), (products, products), "{done:?}");
        assert!(
            products > 20 && products < 20 + written,
            "the snapshot falls among the writes: {products} of {}",
            20 + written
        );
        drop(pg);
        drop(database);
    }
}
