//! The event log in SQLite: appended inside each write's transaction, read by id.

use async_trait::async_trait;
use rusqlite::{Row, Transaction, params};
use shop_wire::Event;

use rusqlite::types::Value;

use super::filter::Filter;
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

/// Appends events inside the caller's transaction; the writer announces
/// them once that transaction commits. They move to the writer as they are,
/// typed: the wire shape of each (a JSON value) is made after the commit, off
/// the writer's thread (see [`super::writer`]).
pub(super) fn append(tx: &Transaction<'_>, events: Vec<NewEvent>) -> StoreResult<()> {
    let logged = insert(tx, events)?;
    super::writer::appended(logged)
}

/// [`append`], returning the events with their ids, for the few callers that use them.
pub(super) fn append_returning(
    tx: &Transaction<'_>,
    events: Vec<NewEvent>,
) -> StoreResult<Vec<Event>> {
    let logged = insert(tx, events)?;
    let returned = logged
        .iter()
        .map(|(id, event)| event.clone().logged(*id))
        .collect();
    super::writer::appended(logged)?;
    Ok(returned)
}

/// Inserts `events`; each with the id the log gave it.
fn insert(tx: &Transaction<'_>, events: Vec<NewEvent>) -> StoreResult<Vec<(u64, NewEvent)>> {
    let mut insert = tx.prepare_cached(
        "INSERT INTO events (type, occurred_at, data) VALUES (?1, ?2, ?3) RETURNING id",
    )?;
    events
        .into_iter()
        .map(|event| {
            let id: i64 = insert.query_row(
                params![
                    event.data.kind().as_str(),
                    millis(event.occurred_at),
                    event.data.to_json()
                ],
                |row| row.get(0),
            )?;
            Ok((id as u64, event))
        })
        .collect()
}

#[async_trait]
impl EventStore for SqliteStore {
    fn feed(&self) -> &CommitFeed {
        &self.feed
    }

    #[cfg(test)]
    async fn append_events(&self, events: Vec<NewEvent>) -> StoreResult<Vec<Event>> {
        self.write(move |tx| append_returning(tx, events)).await
    }

    #[cfg(test)]
    async fn append_events_holding(
        &self,
        events: Vec<NewEvent>,
        hold: std::time::Duration,
    ) -> StoreResult<Vec<Event>> {
        self.write_alone(move |tx| {
            let logged = append_returning(tx, events)?;
            std::thread::sleep(hold);
            Ok(logged)
        })
        .await
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
            let mut filter = Filter::default();
            filter.add_one("id > ?", query.after as i64);
            filter.any_of(
                query
                    .types
                    .iter()
                    .map(|pattern| type_match(pattern, ""))
                    .collect(),
            );
            for pattern in &query.excluded {
                let (condition, values) = type_match(pattern, "NOT ");
                filter.add(&condition, values);
            }
            let total = filter.count(conn, "FROM events")?;
            let select = "SELECT id, type, occurred_at, data FROM events";
            let page = (query.limit, query.offset);
            let events = filter.page(conn, select, "id", page, event_row)?;
            Ok((events, total))
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

/// The condition for one type pattern (`order.paid`, or `order.*` for a
/// prefix), or for its negation with `not` = `"NOT "`.
fn type_match(pattern: &str, not: &str) -> (String, Vec<Value>) {
    match pattern.strip_suffix('*') {
        Some(prefix) => (
            format!("type {not}LIKE ? ESCAPE '\\'"),
            vec![format!("{}%", escape_like(prefix)).into()],
        ),
        None => (format!("{not}type = ?"), vec![pattern.to_owned().into()]),
    }
}
