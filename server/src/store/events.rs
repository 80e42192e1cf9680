//! The storage interface of the event log, and the feed that announces
//! what it committed.

use std::panic::AssertUnwindSafe;
use std::sync::{Arc, PoisonError, RwLock};

use async_trait::async_trait;

use shop_wire::Event;
use shop_wire::events::EventData;
use time::OffsetDateTime;
use tokio::sync::broadcast;

use super::{StoreResult, now};

/// An event about to be appended to the log; the store gives it its id.
#[derive(Clone, Debug)]
pub struct NewEvent {
    pub occurred_at: OffsetDateTime,
    pub data: EventData,
}

impl NewEvent {
    pub fn now(data: EventData) -> Self {
        NewEvent {
            occurred_at: now(),
            data,
        }
    }

    /// Any event, for tests where which one does not matter.
    #[cfg(test)]
    pub fn example() -> Self {
        NewEvent::now(EventData::SearchQuery(
            shop_wire::events::SearchQueryEvent {
                query: "tee".to_owned(),
                normalized: "tee".to_owned(),
                filters: serde_json::json!({}),
                result_count: 1,
                latency_ms: 0.5,
                cache_hit: false,
            },
        ))
    }

    /// The event as logged, with the id the log gave it.
    pub fn logged(self, id: u64) -> Event {
        Event {
            id,
            kind: self.data.kind().as_str().to_owned(),
            occurred_at: self.occurred_at,
            data: self.data.to_value(),
        }
    }
}

/// A follower of the event log moving its stored cursor in the same
/// transaction as what it wrote for the events it read: from where it last
/// stored it to the last event it handled.
///
/// The write happens only if the cursor is still at `from`, and fails with
/// [`super::StoreError::CursorMoved`] otherwise, so followers of one name
/// running on several nodes never both handle an event: one moves the
/// cursor, the other writes nothing and reads on from where it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CursorMove {
    pub consumer: &'static str,
    pub from: u64,
    pub to: u64,
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

/// Live events buffered per subscriber before it must catch up from the log.
const LIVE_BUFFER: usize = 4096;

/// Sees every committed event synchronously, before the write that appended
/// it returns to its caller.
type Observer = Arc<dyn Fn(&Event) + Send + Sync>;

/// Announces the events of every committed change in this process: the
/// store's half of the event bus ([`crate::events::EventBus`]).
///
/// A change spreads from its commit, not from the code that asked for it:
/// the backend calls [`CommitFeed::committed`] once the transaction that
/// appended the events is durable, so a caller that is dropped or times out
/// after the commit cannot keep the change from the search index, the caches
/// or the live stream, and a change that rolled back is never announced.
///
/// The feed is this process's: a backend shared by several nodes must also
/// bring the other nodes' commits to it (e.g. PostgreSQL's `LISTEN/NOTIFY`
/// as a wake-up, then the events read from the log in id order), or their
/// changes reach this node's caches and stream only through their TTLs and
/// the log.
#[derive(Clone)]
pub struct CommitFeed {
    live: broadcast::Sender<Arc<Event>>,
    observers: Arc<RwLock<Vec<Observer>>>,
}

impl Default for CommitFeed {
    fn default() -> Self {
        let (live, _) = broadcast::channel(LIVE_BUFFER);
        CommitFeed {
            live,
            observers: Arc::default(),
        }
    }
}

impl CommitFeed {
    /// Calls `observer` with every event committed from now on, before the
    /// write that appended it answers: for in-memory state that must be
    /// current when the request that caused the event answers (the search
    /// index's stock levels). It runs on the backend's write path, so it
    /// must be quick, must not block on I/O and must not write to the store.
    pub fn observe(&self, observer: impl Fn(&Event) + Send + Sync + 'static) {
        self.observers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Arc::new(observer));
    }

    /// Each event committed from now on. A receiver that falls more than
    /// [`LIVE_BUFFER`] events behind lags and must read the gap from the log.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.live.subscribe()
    }

    /// For backends: announces events whose transaction has committed, in id
    /// order, before the writes that appended them return.
    pub fn committed(&self, events: Vec<Event>) {
        if events.is_empty() {
            return;
        }
        let observers = self
            .observers
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        for event in events {
            for observer in &observers {
                // An observer's bug must not take the write path down with it.
                if std::panic::catch_unwind(AssertUnwindSafe(|| observer(&event))).is_err() {
                    tracing::error!(event = event.id, kind = %event.kind, "an event observer panicked");
                }
            }
            metrics::counter!("shop_events_total", "type" => event.kind.clone()).increment(1);
            // No subscriber is not an error: the log has the event for whoever comes later.
            let _ = self.live.send(Arc::new(event));
        }
    }
}

/// The event log.
///
/// Its commit-order contract, which every backend keeps (a PostgreSQL log
/// must too, e.g. by taking ids under a lock held to the commit):
/// - ids increase in commit order: an event committed after another has a
///   greater id;
/// - a reader that has seen cursor N has seen every event with id <= N: no
///   event with a smaller id becomes visible later, so `events_after(N)`
///   never skips one.
///
/// Events are only ever appended, in the same transaction as the change they
/// describe (see the module docs), never changed or removed. Every appended
/// event is announced once on [`EventStore::feed`] after its transaction
/// commits and before the write that appended it returns, in id order; a
/// rolled-back one never is. So a reader that follows the feed from cursor
/// N, reading from the log whatever it missed (as
/// [`crate::events::EventBus::stream_after`] does), sees every event once
/// and in id order.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Where this store announces the events of its committed changes.
    fn feed(&self) -> &CommitFeed;
    /// Appends events on their own, in one transaction; returns them with
    /// their ids, in order. Only tests log events without a change.
    #[cfg(test)]
    async fn append_events(&self, events: Vec<NewEvent>) -> StoreResult<Vec<Event>>;
    /// [`EventStore::append_events`], holding the transaction open for
    /// `hold` once the events are in it, as a slow commit would: for checks
    /// that race a slow transaction against a fast one.
    #[cfg(test)]
    async fn append_events_holding(
        &self,
        events: Vec<NewEvent>,
        hold: std::time::Duration,
    ) -> StoreResult<Vec<Event>>;
    /// The events matching `query` and how many match in all.
    async fn list_events(&self, query: &EventQuery) -> StoreResult<(Vec<Event>, u64)>;
    /// Events with an id greater than `after`, oldest first.
    async fn events_after(&self, after: u64, limit: u32) -> StoreResult<Vec<Event>>;
    /// The id of the newest event, 0 when the log is empty.
    async fn latest_event_id(&self) -> StoreResult<u64>;
}
