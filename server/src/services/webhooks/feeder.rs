//! The feeder: follows the event log from the `webhooks` cursor and queues
//! a delivery per subscribed endpoint and event.
//!
//! The deliveries and the cursor move commit together, and each delivery
//! is unique per (endpoint, event), so an event read twice (after a crash,
//! from the log again) is queued once. One transaction per chunk of events
//! read, and the cursor moves only from where the feeder read it, so of
//! several nodes' feeders one queues each chunk and the others read on
//! from where it got.

use std::sync::Arc;
use std::time::Duration;

use shop_wire::Event;
use shop_wire::events::EventKind;
use shop_wire::webhooks::Webhook;

use super::domain::plan;
use crate::events::{FOLLOW_CHUNK, moved_by_another_follower};
use crate::state::AppState;
use crate::store::{CursorMove, now};

pub const FEEDER: &str = "webhook_feeder";
/// The feeder's name in the store's event cursors.
pub const CURSOR: &str = "webhooks";

pub fn spawn(state: &AppState) {
    let worker_state = state.clone();
    state
        .workers
        .spawn_periodic(FEEDER, Duration::from_secs(1), move || {
            let state = worker_state.clone();
            async move {
                tokio::select! {
                    result = follow(&state) => result,
                    () = state.shutdown.cancelled() => Ok(()),
                }
            }
        });
}

/// Follows the event log from the stored cursor for as long as it runs, or
/// until another node's feeder moves the cursor: then this run ends, and
/// the next one reads on from where that one got.
async fn follow(state: &AppState) -> anyhow::Result<()> {
    let mut stored = state.store.event_cursor(CURSOR).await?;
    let mut follower = state.events.follow(stored, CURSOR);
    let mut unsaved = 0usize;
    // The endpoints, read again whenever the log says one changed: every
    // change to an endpoint logs a `webhook.*` event, and the log is read in
    // order, so an event is planned against the endpoints as they were
    // after every change logged before it (or later: an endpoint's
    // `created_at` keeps it from earlier events).
    let mut webhooks: Option<Vec<Webhook>> = None;
    while let Some(events) = follower.next().await {
        let events = events?;
        unsaved += events.len();
        let changed = events.iter().any(|e| {
            e.kind.starts_with("webhook.") && e.event_kind() != Some(EventKind::WebhookTest)
        });
        let current = match webhooks.take() {
            Some(known) if !changed => known,
            _ => state.store.active_webhooks().await?,
        };
        let saved = feed(state, &current, &events, stored, unsaved >= FOLLOW_CHUNK).await;
        webhooks = Some(current);
        match saved {
            Ok(Some(last)) => {
                stored = last;
                unsaved = 0;
            }
            Ok(None) => {}
            Err(err) if moved_by_another_follower(&err) => return Ok(()),
            Err(err) => return Err(err),
        }
    }
    Ok(())
}

/// Queues the deliveries `events` call for and moves the cursor from
/// `stored` past them in one transaction, or does nothing if another
/// node's feeder moved it first (see [`CursorMove`]). Events that call for
/// nothing move the cursor only now and then (`force`): rereading a few
/// after a restart is harmless. Returns where the cursor was saved, if it was.
pub async fn feed(
    state: &AppState,
    webhooks: &[Webhook],
    events: &[Arc<Event>],
    stored: u64,
    force: bool,
) -> anyhow::Result<Option<u64>> {
    let Some(last) = events.last().map(|e| e.id) else {
        return Ok(None);
    };
    let deliveries = plan(webhooks, events, now());
    if deliveries.is_empty() && !force {
        return Ok(None);
    }
    let cursor = CursorMove {
        consumer: CURSOR,
        from: stored,
        to: last,
    };
    let queued = state
        .store
        .enqueue_deliveries(deliveries, Some(cursor))
        .await?;
    if queued > 0 {
        state.webhooks.wake();
    }
    Ok(Some(last))
}
