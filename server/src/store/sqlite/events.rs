//! The event log in SQLite: appended inside each write's transaction, read by id.

use async_trait::async_trait;
use rusqlite::{Row, Transaction, params};
use shop_wire::Event;

use super::{SqliteStore, conversion, escape_like, from_millis, millis};
use crate::store::{CommitFeed, EventQuery, EventStore, NewEvent, StoreResult};

fn event_row(row: &Row<'_>) -> rusqlite::Result<Event> {
    let data: String = row.get("data")?;
    Ok(Event {
        id: row.get::<_, i64>("id")? as u64,
        kind: row.get("type")?,
        occurred_at: from_millis(row.get("occurred_at")?)?,
        data: serde_json::from_str(&data).map_err(conversion)?,
    })
}

/// Appends events inside the caller's transaction, returning them with their
/// ids; the writer announces them once that transaction commits.
pub(super) fn append(tx: &Transaction<'_>, events: Vec<NewEvent>) -> StoreResult<Vec<Event>> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO events (type, occurred_at, data) VALUES (?1, ?2, ?3) RETURNING id",
    )?;
    events
        .into_iter()
        .map(|event| {
            let logged = event.logged(0);
            let id: i64 = insert.query_row(
                params![
                    logged.kind,
                    millis(logged.occurred_at),
                    logged.data.to_string()
                ],
                |row| row.get(0),
            )?;
            Ok(Event {
                id: id as u64,
                ..logged
            })
        })
        .collect::<StoreResult<Vec<_>>>()
        .and_then(|logged| {
            super::writer::appended(&logged)?;
            Ok(logged)
        })
}

#[async_trait]
impl EventStore for SqliteStore {
    fn feed(&self) -> &CommitFeed {
        &self.feed
    }

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
