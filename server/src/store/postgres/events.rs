//! The event log in PostgreSQL: appended last in each change's transaction,
//! under a lock held to its commit, so ids are in commit order.
//!
//! A sequence alone would not keep the log's contract: ids would be handed
//! out in the order transactions insert, not the order they commit, so a
//! reader at cursor 7 could miss id 6 committing a moment later. Reading
//! only below the oldest running transaction (an `xid8` column against
//! `pg_snapshot_xmin`) would keep readers from skipping, but then ids would
//! not be in commit order, and this node could not announce its own
//! changes in id order before they return (the [`CommitFeed`] contract)
//! without waiting for every older transaction of every node. So instead
//! the append takes a transaction-scoped advisory lock, shared by all
//! nodes, gives the events the ids after the greatest one in the log, and
//! keeps the lock until the commit has made them visible. Appends are
//! serialized only for that moment: the insert and the commit, two round
//! trips, at the end of a transaction whose other work ran concurrently.
//! Ids are dense too, since a rolled-back change takes none.

use async_trait::async_trait;
use shop_wire::Event;
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, PgConnection, QueryBuilder, Row};
use time::OffsetDateTime;
use tokio::sync::MutexGuard;

use super::{PgStore, backend};
use crate::store::{CommitFeed, EventQuery, EventStore, NewEvent, StoreResult};

/// The advisory lock that orders appends to the log across all nodes.
const EVENT_LOG_LOCK: i64 = 0x73_686f_705f_6c6f; // "shop_lo"

fn event_row(row: &PgRow) -> StoreResult<Event> {
    let data: String = row.try_get("data")?;
    Ok(Event {
        id: row.try_get::<i64, _>("id")? as u64,
        kind: row.try_get("type")?,
        occurred_at: row.try_get("occurred_at")?,
        data: serde_json::from_str(&data).map_err(backend)?,
    })
}

const SELECT_EVENTS: &str = "SELECT id, type, occurred_at, data::text AS data FROM events";

impl PgStore {
    /// Appends `events` inside `tx`, which must commit next; returns them
    /// with their ids and the gate that keeps this node's announcements in
    /// id order, to be dropped once they are announced.
    ///
    /// Relies on `tx` being `READ COMMITTED` (the default): the insert's
    /// snapshot is taken after the lock is granted, so it sees the events
    /// of the append that held it before.
    pub(super) async fn append(
        &self,
        tx: &mut PgConnection,
        events: Vec<NewEvent>,
    ) -> StoreResult<(MutexGuard<'_, ()>, Vec<Event>)> {
        let gate = self.append_gate.lock().await;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(EVENT_LOG_LOCK)
            .execute(&mut *tx)
            .await?;
        let kinds: Vec<&str> = events.iter().map(|e| e.data.kind().as_str()).collect();
        let times: Vec<OffsetDateTime> = events.iter().map(|e| e.occurred_at).collect();
        let data: Vec<String> = events.iter().map(|e| e.data.to_json()).collect();
        let first: i64 = sqlx::query_scalar(
            "INSERT INTO events (id, type, occurred_at, data)
             SELECT last.id + e.n, e.type, e.occurred_at, e.data::jsonb
             FROM (SELECT coalesce(max(id), 0) AS id FROM events) AS last,
                  unnest($1::text[], $2::timestamptz[], $3::text[])
                      WITH ORDINALITY AS e(type, occurred_at, data, n)
             RETURNING id",
        )
        .bind(kinds)
        .bind(times)
        .bind(data)
        .fetch_all(&mut *tx)
        .await?
        .into_iter()
        .min()
        .ok_or_else(|| backend(std::io::Error::other("the log took no events")))?;
        let logged = events
            .into_iter()
            .zip(first..)
            .map(|(event, id)| event.logged(id as u64))
            .collect();
        Ok((gate, logged))
    }
}

#[async_trait]
impl EventStore for PgStore {
    fn feed(&self) -> &CommitFeed {
        &self.feed
    }

    #[cfg(test)]
    async fn append_events(&self, events: Vec<NewEvent>) -> StoreResult<Vec<Event>> {
        let (_, logged) = self
            .write(move |_| {
                let events = events.clone();
                Box::pin(async move { Ok(((), events)) })
            })
            .await?;
        Ok(logged)
    }

    #[cfg(test)]
    async fn append_events_holding(
        &self,
        events: Vec<NewEvent>,
        hold: std::time::Duration,
    ) -> StoreResult<Vec<Event>> {
        let mut tx = self.pool.begin().await?;
        let (gate, logged) = self.append(&mut tx, events).await?;
        tokio::time::sleep(hold).await;
        tx.commit().await?;
        self.feed.committed(logged.clone());
        drop(gate);
        Ok(logged)
    }

    async fn list_events(&self, query: &EventQuery) -> StoreResult<(Vec<Event>, u64)> {
        let filtered = |select: &'static str| {
            let mut sql = QueryBuilder::<sqlx::Postgres>::new(select);
            sql.push(" WHERE id > ").push_bind(query.after as i64);
            if !query.types.is_empty() {
                sql.push(" AND (");
                for (i, pattern) in query.types.iter().enumerate() {
                    if i > 0 {
                        sql.push(" OR ");
                    }
                    type_match(&mut sql, pattern);
                }
                sql.push(")");
            }
            for pattern in &query.excluded {
                sql.push(" AND NOT ");
                type_match(&mut sql, pattern);
            }
            sql
        };
        let total: i64 = filtered("SELECT count(*) FROM events")
            .build_query_scalar()
            .fetch_one(&self.pool)
            .await?;
        let mut page = filtered(SELECT_EVENTS);
        page.push(" ORDER BY id LIMIT ")
            .push_bind(i64::from(query.limit))
            .push(" OFFSET ")
            .push_bind(query.offset as i64);
        let events = page
            .build()
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(event_row)
            .collect::<StoreResult<_>>()?;
        Ok((events, total as u64))
    }

    async fn events_after(&self, after: u64, limit: u32) -> StoreResult<Vec<Event>> {
        let sql = format!("{SELECT_EVENTS} WHERE id > $1 ORDER BY id LIMIT $2");
        sqlx::query(AssertSqlSafe(sql))
            .bind(after as i64)
            .bind(i64::from(limit))
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(event_row)
            .collect()
    }

    async fn latest_event_id(&self) -> StoreResult<u64> {
        let id: i64 = sqlx::query_scalar("SELECT coalesce(max(id), 0) FROM events")
            .fetch_one(&self.pool)
            .await?;
        Ok(id as u64)
    }
}

/// The condition for one type pattern: `order.paid`, or `order.*` for a prefix.
fn type_match(sql: &mut QueryBuilder<sqlx::Postgres>, pattern: &str) {
    match pattern.strip_suffix('*') {
        Some(prefix) => {
            sql.push("starts_with(type, ")
                .push_bind(prefix.to_owned())
                .push(")");
        }
        None => {
            sql.push("type = ").push_bind(pattern.to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use crate::store::contract::slow_and_fast_appends_never_let_a_reader_skip;
    use crate::store::postgres::{PgStore, testing};

    /// The advisory lock, not only this node's gate, orders appends: a slow
    /// append on one node and a fast one on another.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn appends_from_two_nodes_keep_commit_order() {
        let (_database, url) = testing::database().await;
        let node_a = Arc::new(PgStore::connect(&url).await.expect("node a"));
        let node_b = Arc::new(PgStore::connect(&url).await.expect("node b"));
        slow_and_fast_appends_never_let_a_reader_skip(node_a, node_b).await;
    }
}
