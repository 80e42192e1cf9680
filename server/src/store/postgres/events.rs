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
//!
//! Every node announces every event, its own and the other nodes', on its
//! [`CommitFeed`], once and in id order, so the search index, the caches
//! and the live stream of each node follow every node's changes. Other
//! nodes' events reach it two ways, both under the lock of this node's
//! announcements: an append that finds events it has not announced below
//! its own reads them in its transaction and announces them first, and a
//! follower woken by `LISTEN` (each append notifies the id of its last
//! event at commit), or every second should notifications fail, reads what
//! is new.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use shop_wire::Event;
use sqlx::postgres::{PgListener, PgPool, PgRow};
use sqlx::{AssertSqlSafe, PgConnection, QueryBuilder, Row};
use time::OffsetDateTime;
use tokio::sync::{Mutex, MutexGuard};
use tokio_util::sync::CancellationToken;

use super::{PgStore, backend};
use crate::store::{
    CommitFeed, CursorMove, EventQuery, EventStore, NewEvent, StoreError, StoreResult,
};

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

/// A change's events as appended, with what this node must announce
/// before them.
pub(super) struct Appended {
    /// Other nodes' events between this node's last announcement and this
    /// change's, in id order: all committed, since their appends held the
    /// log's lock before this one took it.
    pub missed: Vec<Event>,
    /// This change's events with their ids.
    pub logged: Vec<Event>,
    /// The id of this change's last event.
    pub last: u64,
}

impl PgStore {
    /// Appends `events` inside `tx`, which must commit next; returns them
    /// with their ids, the other nodes' events to announce before them, and
    /// the lock on this node's announcements, to be released (with the last
    /// id announced) once they are announced.
    ///
    /// Relies on `tx` being `READ COMMITTED` (the default): the insert's
    /// snapshot is taken after the lock is granted, so it sees the events
    /// of the append that held it before.
    pub(super) async fn append(
        &self,
        tx: &mut PgConnection,
        events: Vec<NewEvent>,
    ) -> StoreResult<(MutexGuard<'_, u64>, Appended)> {
        let announced = self.announced.lock().await;
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
        // Another node appended since this one last announced: its events
        // are read here, in the same transaction, so that an error leaves
        // nothing committed rather than a committed change that is not
        // announced. On one node this never runs.
        let missed = if first as u64 > *announced + 1 {
            let sql = format!("{SELECT_EVENTS} WHERE id > $1 AND id < $2 ORDER BY id");
            sqlx::query(AssertSqlSafe(sql))
                .bind(*announced as i64)
                .bind(first)
                .fetch_all(&mut *tx)
                .await?
                .iter()
                .map(event_row)
                .collect::<StoreResult<_>>()?
        } else {
            Vec::new()
        };
        let logged: Vec<Event> = events
            .into_iter()
            .zip(first..)
            .map(|(event, id)| event.logged(id as u64))
            .collect();
        let last = logged.last().map_or(*announced, |event| event.id);
        Ok((
            announced,
            Appended {
                missed,
                logged,
                last,
            },
        ))
    }
}

/// Moves a follower's cursor if it is still where the follower last
/// stored it; otherwise fails with [`StoreError::CursorMoved`], and the
/// caller's transaction rolls back. A cursor never stored is at 0.
///
/// Of two nodes' followers racing from one cursor, the second's upsert
/// waits for the first's row (or its insert of the row) to commit and then
/// finds the cursor moved: READ COMMITTED re-checks the condition on the
/// row as committed.
pub(super) async fn move_cursor(tx: &mut PgConnection, cursor: CursorMove) -> StoreResult<()> {
    let moved = sqlx::query(
        "INSERT INTO event_cursors (consumer, event_id) VALUES ($1, $3)
         ON CONFLICT (consumer) DO UPDATE SET event_id = excluded.event_id
         WHERE event_cursors.event_id = $2",
    )
    .bind(cursor.consumer)
    .bind(cursor.from as i64)
    .bind(cursor.to as i64)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if moved == 0 {
        return Err(StoreError::CursorMoved {
            consumer: cursor.consumer,
        });
    }
    Ok(())
}

/// The channel on which each append to the log is notified, with the id of
/// its last event (see the migration `0011_event_notify.sql`).
const EVENTS_CHANNEL: &str = "shop_events";
/// How often the log is read when no notification came: notifications are
/// lost while the listening connection is down, and this bounds how late
/// another node's change reaches this node then.
const POLL_FALLBACK: Duration = Duration::from_secs(1);
/// Events read from the log at a time while catching up.
const CATCH_UP_BATCH: i64 = 2048;

/// Brings what other nodes commit to this node's feed, for as long as
/// `stop` is not cancelled: woken by `LISTEN` on [`EVENTS_CHANNEL`], and at
/// least every [`POLL_FALLBACK`] whatever the listening connection does.
/// Events are announced under the same lock as this node's own commits, so
/// the feed sees every event once and in id order.
pub(super) async fn follow_other_nodes(
    pool: PgPool,
    feed: CommitFeed,
    announced: Arc<Mutex<u64>>,
    stop: CancellationToken,
) {
    let mut listener: Option<PgListener> = None;
    loop {
        if listener.is_none() {
            listener = listen(&pool).await;
        }
        let wake = async {
            match listener.as_mut() {
                Some(listening) => listening.try_recv().await,
                None => std::future::pending().await,
            }
        };
        let woken = tokio::select! {
            () = stop.cancelled() => return,
            woken = tokio::time::timeout(POLL_FALLBACK, wake) => woken,
        };
        // The last id an append logged: nothing to read when it has been
        // announced already (most often, this node's own change).
        let logged_up_to = match woken {
            Ok(Ok(Some(notification))) => notification.payload().parse::<u64>().ok(),
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "lost the event log's notifications; polling");
                listener = None;
                None
            }
            // Polling, or a reconnected listener that may have missed some.
            Ok(Ok(None)) | Err(_) => None,
        };
        let announced_up_to = *announced.lock().await;
        if logged_up_to.is_some_and(|id| id <= announced_up_to) {
            continue;
        }
        // The connection first, the lock second: appends wait for the lock
        // holding connections, so waiting for a connection while holding
        // the lock would deadlock once they hold them all.
        let caught_up = match pool.acquire().await {
            Ok(mut conn) => {
                let mut last = announced.lock().await;
                catch_up(&mut conn, &feed, &mut last).await
            }
            Err(err) => Err(err.into()),
        };
        if let Err(err) = caught_up {
            tracing::warn!(error = %err, "cannot read other nodes' events; retrying");
        }
    }
}

/// Listens on [`EVENTS_CHANNEL`]; none (polling only) when it cannot.
async fn listen(pool: &PgPool) -> Option<PgListener> {
    let mut listener = match PgListener::connect_with(pool).await {
        Ok(listener) => listener,
        Err(err) => {
            tracing::warn!(error = %err, "cannot listen for the event log's notifications; polling");
            return None;
        }
    };
    match listener.listen(EVENTS_CHANNEL).await {
        Ok(()) => Some(listener),
        Err(err) => {
            tracing::warn!(error = %err, "cannot listen for the event log's notifications; polling");
            None
        }
    }
}

/// Announces every event after `last`, moving it to the last one announced.
async fn catch_up(conn: &mut PgConnection, feed: &CommitFeed, last: &mut u64) -> StoreResult<()> {
    loop {
        let sql = format!("{SELECT_EVENTS} WHERE id > $1 ORDER BY id LIMIT $2");
        let batch = sqlx::query(AssertSqlSafe(sql))
            .bind(*last as i64)
            .bind(CATCH_UP_BATCH)
            .fetch_all(&mut *conn)
            .await?
            .iter()
            .map(event_row)
            .collect::<StoreResult<Vec<_>>>()?;
        let full = batch.len() as i64 == CATCH_UP_BATCH;
        let Some(newest) = batch.last().map(|event| event.id) else {
            return Ok(());
        };
        feed.committed(batch);
        *last = newest;
        if !full {
            return Ok(());
        }
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
        let (mut announced, appended) = self.append(&mut tx, events).await?;
        tokio::time::sleep(hold).await;
        tx.commit().await?;
        *announced = appended.last;
        self.feed.committed(appended.missed);
        self.feed.committed(appended.logged.clone());
        Ok(appended.logged)
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
    use std::time::Duration;

    use sqlx::postgres::PgListener;
    use tokio::sync::broadcast;

    use super::EVENTS_CHANNEL;
    use crate::config::Durability;
    use crate::store::contract::slow_and_fast_appends_never_let_a_reader_skip;
    use crate::store::postgres::{PgStore, testing};
    use crate::store::{EventStore, NewEvent};

    /// The ids a feed announces, until `count` have come or nothing has
    /// come for a few seconds (which is a failure of the caller's assert).
    async fn announced(
        feed: &mut broadcast::Receiver<Arc<shop_wire::Event>>,
        count: usize,
    ) -> Vec<u64> {
        let mut ids = Vec::new();
        while ids.len() < count {
            match tokio::time::timeout(Duration::from_secs(5), feed.recv()).await {
                Ok(Ok(event)) => ids.push(event.id),
                Ok(Err(err)) => panic!("the feed failed: {err}"),
                Err(_) => break,
            }
        }
        ids
    }

    /// Two nodes append at once, each from many tasks; each node's feed
    /// announces every event of the log, its own and the other's, once and
    /// in id order.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn each_node_announces_every_nodes_events_once_in_order() {
        let (_database, url) = testing::database().await;
        let nodes = [
            Arc::new(
                PgStore::connect(&url, Durability::Process)
                    .await
                    .expect("node a"),
            ),
            Arc::new(
                PgStore::connect(&url, Durability::Process)
                    .await
                    .expect("node b"),
            ),
        ];
        let mut feeds = nodes.clone().map(|node| node.feed().subscribe());
        let mut appends = Vec::new();
        for task in 0..16 {
            let node = nodes[task % 2].clone();
            appends.push(tokio::spawn(async move {
                let mut appended = 0;
                for round in 0..20 {
                    let events = vec![NewEvent::example(); 1 + (task + round) % 3];
                    appended += node.append_events(events).await.expect("append").len();
                }
                appended
            }));
        }
        let mut total = 0;
        for append in appends {
            total += append.await.expect("task");
        }
        let log: Vec<u64> = (1..=total as u64).collect();
        assert_eq!(
            nodes[0].latest_event_id().await.expect("latest"),
            total as u64
        );
        for (node, feed) in ["a", "b"].iter().zip(&mut feeds) {
            assert_eq!(announced(feed, total).await, log, "node {node}'s feed");
        }
    }

    /// An append notifies listeners at its commit with the id of its last
    /// event, so another node need not wait for its next poll.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_append_notifies_its_last_id_at_commit() {
        let (_database, url) = testing::database().await;
        let store = PgStore::connect(&url, Durability::Process)
            .await
            .expect("store");
        let mut listener = PgListener::connect(&url).await.expect("listener");
        listener.listen(EVENTS_CHANNEL).await.expect("listen");
        let logged = store
            .append_events(vec![NewEvent::example(); 3])
            .await
            .expect("append");
        let notification = tokio::time::timeout(Duration::from_secs(5), listener.recv())
            .await
            .expect("a notification")
            .expect("received");
        assert_eq!(notification.payload(), logged[2].id.to_string());
    }

    /// The advisory lock, not only this node's gate, orders appends: a slow
    /// append on one node and a fast one on another.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn appends_from_two_nodes_keep_commit_order() {
        let (_database, url) = testing::database().await;
        let node_a = Arc::new(
            PgStore::connect(&url, Durability::Process)
                .await
                .expect("node a"),
        );
        let node_b = Arc::new(
            PgStore::connect(&url, Durability::Process)
                .await
                .expect("node b"),
        );
        slow_and_fast_appends_never_let_a_reader_skip(node_a, node_b).await;
    }
}
