//! The event bus: a durable log plus in-process publish/subscribe.
//!
//! Every state change appends its events to the log in the same transaction
//! as the change (see [`crate::store`]), and the store announces them on its
//! [`CommitFeed`] once that transaction has committed: no service publishes
//! anything. A subscriber that starts late, falls behind or reconnects reads
//! the gap from the log, so a stream from [`EventBus::stream_after`] has every
//! event exactly once and in id order.

use std::pin::Pin;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use shop_wire::Event;
use tokio::sync::broadcast::error::RecvError;

use crate::store::{CommitFeed, Store, StoreError};

/// Events read from the log at a time while catching up: a follower's whole chunk.
const CATCH_UP_BATCH: u32 = FOLLOW_CHUNK as u32;

/// The most events a follower of the log (notification reactions, webhook
/// deliveries, co-purchases) handles in one transaction, taking whatever is
/// ready up to this many. Each transaction waits for a group commit, so a
/// follower keeps up only if a chunk spans the events committed meanwhile:
/// 256 at a time fell behind the live feed under 2,000 checkouts/s (seven
/// events each) and read the gap back from the log forty times a second.
pub const FOLLOW_CHUNK: usize = 2048;

#[derive(Clone)]
pub struct EventBus {
    store: Arc<dyn Store>,
    feed: CommitFeed,
}

impl EventBus {
    pub fn new(store: Arc<dyn Store>) -> Self {
        let feed = store.feed().clone();
        EventBus { store, feed }
    }

    /// Calls `observer` with every event committed from now on, before the
    /// write that appended it returns (see [`CommitFeed::observe`]).
    pub fn observe(&self, observer: impl Fn(&Event) + Send + Sync + 'static) {
        self.feed.observe(observer);
    }

    /// The events of [`EventBus::stream_after`] in chunks, for a follower
    /// that handles each chunk in one transaction: a chunk is whatever has
    /// arrived, up to [`FOLLOW_CHUNK`] events.
    pub fn follow(&self, after: u64, follower: &'static str) -> Follower {
        Follower {
            chunks: Box::pin(
                self.stream_after(after, follower)
                    .ready_chunks(FOLLOW_CHUNK),
            ),
        }
    }

    /// Every event with an id above `after`, then each new one as it is
    /// committed, in id order and without duplicates, for as long as the stream is polled.
    /// Events are shared, not copied, between the live feed's readers.
    /// `follower` names the reader in the metrics of its catch-ups from the log.
    pub fn stream_after(
        &self,
        after: u64,
        follower: &'static str,
    ) -> impl Stream<Item = Result<Arc<Event>, StoreError>> + Send + 'static + use<> {
        // Subscribe before reading the log, so nothing committed in between is missed.
        let mut live = self.feed.subscribe();
        let store = self.store.clone();
        async_stream::try_stream! {
            let mut last = after;
            loop {
                loop {
                    let batch = store.events_after(last, CATCH_UP_BATCH).await?;
                    let full = batch.len() == CATCH_UP_BATCH as usize;
                    for event in batch {
                        last = event.id;
                        yield Arc::new(event);
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
                            yield event;
                        }
                        // A backend whose commits overlap may announce them out of
                        // order, and a slow reader can lag: the log fills the gap.
                        Ok(_) => {
                            metrics::counter!("shop_event_stream_catch_ups_total", "follower" => follower, "reason" => "gap").increment(1);
                            break;
                        }
                        Err(RecvError::Lagged(_)) => {
                            metrics::counter!("shop_event_stream_catch_ups_total", "follower" => follower, "reason" => "lagged").increment(1);
                            break;
                        }
                        Err(RecvError::Closed) => return,
                    }
                }
            }
        }
    }
}

/// Whether `err` says another follower of the same name (on another node)
/// moved the cursor: the follower should stop and read on from the cursor
/// as it is now, rather than fail.
pub fn moved_by_another_follower(err: &anyhow::Error) -> bool {
    matches!(
        err.downcast_ref::<StoreError>(),
        Some(StoreError::CursorMoved { .. })
    )
}

/// Events as a follower reads them: shared with the live feed's other readers.
type Followed = Result<Arc<Event>, StoreError>;

/// A reader of the log in chunks, from [`EventBus::follow`].
pub struct Follower {
    chunks: Pin<Box<dyn Stream<Item = Vec<Followed>> + Send>>,
}

impl Follower {
    /// The next chunk; `None` once the stream has ended.
    pub async fn next(&mut self) -> Option<Result<Vec<Arc<Event>>, StoreError>> {
        // Tokio's budget makes a task yield after 128 ready receives, which
        // cut every chunk to 128 events whatever was waiting: too few per
        // transaction to keep up. A chunk is bounded by FOLLOW_CHUNK anyway.
        let chunk = tokio::task::unconstrained(self.chunks.next()).await?;
        Some(chunk.into_iter().collect())
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

    fn store() -> (tempfile::TempDir, Arc<dyn Store>) {
        let dir = tempfile::tempdir().expect("temp dir");
        let store =
            Arc::new(SqliteStore::open(&dir.path().join("db"), Durability::Process).expect("open"));
        (dir, store)
    }

    #[tokio::test]
    async fn stream_replays_the_log_then_follows_committed_events_in_order() {
        let (_dir, store) = store();
        let bus = EventBus::new(store.clone());
        store
            .append_events((0..3).map(|_| NewEvent::example()).collect())
            .await
            .expect("append");

        let mut stream = Box::pin(bus.stream_after(1, "test"));
        for expected in [2, 3] {
            assert_eq!(
                stream.next().await.expect("item").expect("event").id,
                expected
            );
        }
        // Nobody publishes: the commit itself reaches the stream.
        store
            .append_events(vec![NewEvent::example(), NewEvent::example()])
            .await
            .expect("append");
        for expected in [4, 5] {
            assert_eq!(
                stream.next().await.expect("item").expect("event").id,
                expected
            );
        }
    }

    #[tokio::test]
    async fn events_announced_out_of_order_still_stream_in_order() {
        let (_dir, store) = store();
        // A feed of its own, so this test decides the order of announcements,
        // as a backend whose commits overlap might.
        let bus = EventBus {
            store: store.clone(),
            feed: CommitFeed::default(),
        };
        let mut stream = Box::pin(bus.stream_after(0, "test"));
        let logged = store
            .append_events(vec![NewEvent::example(), NewEvent::example()])
            .await
            .expect("append");
        bus.feed.committed(logged.into_iter().rev().collect());
        for expected in [1, 2] {
            assert_eq!(
                stream.next().await.expect("item").expect("event").id,
                expected
            );
        }
    }

    #[tokio::test]
    async fn observers_see_a_commit_before_its_write_returns_and_never_a_rollback() {
        let (_dir, store) = store();
        let bus = EventBus::new(store.clone());
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = seen.clone();
        bus.observe(move |event| sink.lock().expect("lock").push(event.id));
        let mut live = store.feed().subscribe();

        store
            .append_events(vec![NewEvent::example(), NewEvent::example()])
            .await
            .expect("append");
        assert_eq!(*seen.lock().expect("lock"), [1, 2]);

        // A user whose email is taken: the change and its event roll back.
        let user = |id| crate::store::UserRecord {
            user: shop_wire::users::User {
                id,
                email: "ada@example.com".to_owned(),
                name: "Ada".to_owned(),
                role: shop_wire::users::Role::Customer,
                addresses: vec![],
                email_verified: false,
                created_at: crate::store::now(),
                updated_at: crate::store::now(),
            },
            password_hash: "hash".to_owned(),
        };
        store
            .insert_user(
                &user(shop_wire::UserId::generate()),
                vec![NewEvent::example()],
            )
            .await
            .expect("first insert");
        let taken = store
            .insert_user(
                &user(shop_wire::UserId::generate()),
                vec![NewEvent::example()],
            )
            .await;
        assert!(taken.is_err());
        assert_eq!(*seen.lock().expect("lock"), [1, 2, 3]);
        let mut announced = Vec::new();
        while let Ok(event) = live.try_recv() {
            announced.push(event.id);
        }
        assert_eq!(
            announced,
            [1, 2, 3],
            "the rolled-back event was never announced"
        );
    }
}
