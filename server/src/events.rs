//! The event bus: a durable log plus in-process publish/subscribe.
//!
//! Every state change appends its events to the log in the same transaction
//! as the change (see [`crate::store`]); after the commit the service hands the
//! stored events to [`EventBus::publish`], which wakes live subscribers. A
//! subscriber that starts late, falls behind or reconnects reads the gap from
//! the log, so a stream from [`EventBus::stream_after`] has every event exactly
//! once and in id order.

use std::sync::Arc;

use futures::Stream;
use shop_wire::Event;
use tokio::sync::broadcast::{self, error::RecvError};

use crate::store::{Store, StoreError};

/// Live events buffered per subscriber before it must catch up from the log.
const LIVE_BUFFER: usize = 4096;
const CATCH_UP_BATCH: u32 = 500;

/// Sees every published event synchronously, before `publish` returns.
type Observer = Arc<dyn Fn(&Event) + Send + Sync>;

#[derive(Clone)]
pub struct EventBus {
    store: Arc<dyn Store>,
    live: broadcast::Sender<Arc<Event>>,
    observers: Arc<std::sync::RwLock<Vec<Observer>>>,
}

impl EventBus {
    pub fn new(store: Arc<dyn Store>) -> Self {
        let (live, _) = broadcast::channel(LIVE_BUFFER);
        EventBus {
            store,
            live,
            observers: Arc::default(),
        }
    }

    /// Calls `observer` with every event published from now on, inside
    /// `publish`: for in-memory state that must be current when the request
    /// that caused the event answers (the search index's stock levels). It
    /// must be quick and must not publish.
    pub fn observe(&self, observer: impl Fn(&Event) + Send + Sync + 'static) {
        self.observers
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(Arc::new(observer));
    }

    /// Announces events that are already committed to the log.
    pub fn publish(&self, events: Vec<Event>) {
        let observers = self
            .observers
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        for event in events {
            for observer in &observers {
                observer(&event);
            }
            metrics::counter!("shop_events_total", "type" => event.kind.clone()).increment(1);
            // No subscriber is not an error: the log has the event for whoever comes later.
            let _ = self.live.send(Arc::new(event));
        }
    }

    /// Every event with an id above `after`, then each new one as it is
    /// published, in id order and without duplicates, for as long as the stream is polled.
    pub fn stream_after(
        &self,
        after: u64,
    ) -> impl Stream<Item = Result<Event, StoreError>> + Send + 'static + use<> {
        // Subscribe before reading the log, so nothing published in between is missed.
        let mut live = self.live.subscribe();
        let store = self.store.clone();
        async_stream::try_stream! {
            let mut last = after;
            loop {
                loop {
                    let batch = store.events_after(last, CATCH_UP_BATCH).await?;
                    let full = batch.len() == CATCH_UP_BATCH as usize;
                    for event in batch {
                        last = event.id;
                        yield event;
                    }
                    if !full {
                        break;
                    }
                }
                loop {
                    match live.recv().await {
                        Ok(event) if event.id <= last => continue,
                        Ok(event) if event.id == last + 1 => {
                            last = event.id;
                            yield Event::clone(&event);
                        }
                        // Events committed concurrently can be published out of
                        // order, and a slow reader can lag: the log fills the gap.
                        Ok(_) | Err(RecvError::Lagged(_)) => break,
                        Err(RecvError::Closed) => return,
                    }
                }
            }
        }
    }
}

/// Matches event types against patterns like `order.*`, `user.registered` or `*`.
#[derive(Clone, Debug, Default)]
pub struct TypeFilter(Vec<String>);

impl TypeFilter {
    /// Comma-separated patterns; empty matches everything.
    pub fn parse(patterns: &str) -> Self {
        TypeFilter(
            patterns
                .split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect(),
        )
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn into_patterns(self) -> Vec<String> {
        self.0
    }

    pub fn matches(&self, kind: &str) -> bool {
        self.0.is_empty()
            || self
                .0
                .iter()
                .any(|pattern| match pattern.strip_suffix('*') {
                    Some(prefix) => kind.starts_with(prefix),
                    None => pattern == kind,
                })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewEvent;
    use crate::store::sqlite::{Durability, SqliteStore};
    use futures::StreamExt;

    #[test]
    fn type_patterns() {
        let filter = TypeFilter::parse("order.*, user.registered");
        assert!(filter.matches("order.paid"));
        assert!(filter.matches("user.registered"));
        assert!(!filter.matches("user.logged_in"));
        assert!(TypeFilter::parse("").matches("anything"));
    }

    #[tokio::test]
    async fn stream_replays_the_log_then_follows_live_events_in_order() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&dir.path().join("db"), Durability::Process).expect("open"));
        let bus = EventBus::new(store.clone());
        let stored = store
            .append_events((0..3).map(|_| NewEvent::example()).collect())
            .await
            .expect("append");
        bus.publish(stored);

        let mut stream = Box::pin(bus.stream_after(1));
        for expected in [2, 3] {
            assert_eq!(
                stream.next().await.expect("item").expect("event").id,
                expected
            );
        }
        // Published out of order (as concurrent commits can be): still delivered in order.
        let newer = store
            .append_events(vec![NewEvent::example(), NewEvent::example()])
            .await
            .expect("append");
        bus.publish(newer.into_iter().rev().collect());
        for expected in [4, 5] {
            assert_eq!(
                stream.next().await.expect("item").expect("event").id,
                expected
            );
        }
    }
}
