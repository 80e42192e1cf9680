//! The storage interface of the event log.

use async_trait::async_trait;

use shop_wire::Event;
use shop_wire::events::EventData;
use time::OffsetDateTime;

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
/// describe (see the module docs), never changed or removed.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Appends events on their own, in one transaction; returns them with
    /// their ids, in order. Only tests log events without a change.
    #[cfg(test)]
    async fn append_events(&self, events: Vec<NewEvent>) -> StoreResult<Vec<Event>>;
    /// The events matching `query` and how many match in all.
    async fn list_events(&self, query: &EventQuery) -> StoreResult<(Vec<Event>, u64)>;
    /// Events with an id greater than `after`, oldest first.
    async fn events_after(&self, after: u64, limit: u32) -> StoreResult<Vec<Event>>;
    /// The id of the newest event, 0 when the log is empty.
    async fn latest_event_id(&self) -> StoreResult<u64>;
}
